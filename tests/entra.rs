//! Entra ID sign-in against the emulator's Entra ID: the whole authorization code + PKCE flow over real
//! HTTP, roles from groups, every way a sign-in is refused, and the emulated identity provider's own
//! contract (discovery, keys, token endpoint errors).

use crate::support::*;
use app::auth::Role;
use mlops_console::emulator::entra::{CONSOLE_CLIENT_ID, CONSOLE_CLIENT_SECRET, USERS};
use reqwest::header::COOKIE;
use serde_json::Value;
use std::collections::HashMap;

fn query(url: &str) -> HashMap<String, String> {
    url::Url::parse("http://console.invalid/")
        .unwrap()
        .join(url)
        .unwrap()
        .query_pairs()
        .map(|(k, v)| (k.into_owned(), v.into_owned()))
        .collect()
}

/// A sign-in started and the account picked at the emulated Entra ID: the callback URL it sends the
/// browser to, and the flow cookie the browser holds.
async fn pick(app: &TestApp, account: &str) -> (String, String) {
    let c = no_redirects(None);
    let r = c
        .get(format!("{}/signin/entra?next=/cost", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 303);
    let flow = set_cookie(&r, "mlops_oidc").expect("the flow cookie");
    assert!(
        flow.contains("HttpOnly") && flow.contains("SameSite=Lax"),
        "{flow}"
    );
    let authorize = location(&r);
    let q = query(&authorize);
    assert_eq!(q["code_challenge_method"], "S256");
    assert_eq!(q["response_type"], "code");
    assert!(q["nonce"].len() >= 32 && q["state"].len() >= 32);
    let page = c.get(&authorize).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains(account) || account == "cancel");
    let mut form: Vec<(String, String)> = q.into_iter().collect();
    form.push(("account".into(), account.into()));
    let picked = c
        .post(authorize.split('?').next().unwrap())
        .form(&form)
        .send()
        .await
        .unwrap();
    assert_eq!(picked.status(), 303, "{:?}", picked.text().await);
    (location(&picked), pair(&flow))
}

/// Follows the callback with the browser's flow cookie: the session cookie, or where it was sent back to.
async fn callback(url: &str, flow: &str) -> Result<String, String> {
    let r = no_redirects(None)
        .get(url)
        .header(COOKIE, flow)
        .send()
        .await
        .unwrap();
    match set_cookie(&r, "mlops_session") {
        Some(s) if r.status() == 200 => {
            let body = r.text().await.unwrap();
            assert!(
                body.contains("url=/cost"),
                "on to the page asked for: {body}"
            );
            Ok(pair(&s))
        }
        _ => Err(query(&location(&r))
            .get("error")
            .cloned()
            .unwrap_or_default()),
    }
}

async fn me(app: &TestApp, session: &str) -> Value {
    me_with(app, session).await.json().await.unwrap()
}

fn upn(i: usize) -> &'static str {
    USERS[i].1
}

fn entra_config(db: &TestDb) -> mlops_console::config::Config {
    let mut c = config(db);
    c.oidc_issuer = Some("emulator".into());
    c
}

#[tokio::test]
async fn entra_sign_in_gives_each_person_the_role_of_their_groups() {
    let db = TestDb::new().await;
    let app = TestApp::start(entra_config(&db)).await;
    let page = reqwest::get(format!("{}/signin", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(page.contains("Sign in with Microsoft Entra ID"), "{page}");

    for (i, role) in [(0, Role::Admin), (1, Role::Operator), (2, Role::Viewer)] {
        let (url, flow) = pick(&app, upn(i)).await;
        let session = callback(&url, &flow).await.expect("signed in");
        let who = me(&app, &session).await;
        assert_eq!(who["name"], upn(i));
        assert_eq!(who["display_name"], USERS[i].2);
        assert_eq!(who["role"], role.as_str(), "{who}");
    }
    // Accounts are recorded as Entra's, with the person's object id.
    let users: Value = app.json("/api/v1/users").await.1;
    let omar = users
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["name"] == upn(1))
        .unwrap();
    assert_eq!(omar["source"], "entra");
    // Signing in again keeps one account.
    let (url, flow) = pick(&app, upn(1)).await;
    let session = callback(&url, &flow).await.expect("signed in again");
    // Neither the code, the flow's state, the session nor the client secret reaches a log line.
    let logs = std::fs::read_to_string(log_path()).unwrap();
    let q = query(&url);
    for (what, secret) in [
        ("code", q["code"].as_str()),
        ("state", q["state"].as_str()),
        ("session", session.trim_start_matches("mlops_session=")),
        ("client secret", CONSOLE_CLIENT_SECRET),
    ] {
        assert!(secret.len() >= 16, "{what}");
        assert!(!logs.contains(secret), "the {what} is in the log");
    }
    let n: i64 = sqlx::query_scalar("select count(*) from users where source = 'entra'")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(n, 3);
    let audit: Value = app.json("/api/v1/audit?action=signin").await.1;
    let text = audit.to_string();
    assert!(
        text.contains(upn(0)) && text.contains("\"method\":\"entra\""),
        "{text}"
    );

    // Admins see the sign-in configuration in effect, with the secret only as "set".
    let (status, settings) = app.text("/api/v1/settings").await;
    assert_eq!(status, 200);
    assert!(
        settings.contains("MLOPS_OIDC_ROLE_GROUPS") && settings.contains("admin ← "),
        "{settings}"
    );
    assert!(
        !settings.contains(CONSOLE_CLIENT_SECRET),
        "no secret in the settings"
    );
    let (_, page) = app.text("/admin").await;
    assert!(page.contains("Groups → roles") && page.contains("/signin/entra/callback"));
    assert!(!page.contains(CONSOLE_CLIENT_SECRET));
    app.server.stop().await;
}

#[tokio::test]
async fn entra_sign_ins_are_refused_without_a_role_a_matching_browser_or_a_fresh_code() {
    let db = TestDb::new().await;
    let app = TestApp::start(entra_config(&db)).await;

    // In no mapped group: no account, no session.
    let (url, flow) = pick(&app, upn(3)).await;
    let err = callback(&url, &flow).await.unwrap_err();
    assert!(err.contains("none of the groups"), "{err}");

    // Cancelled at Entra ID.
    let (url, flow) = pick(&app, "cancel").await;
    let err = callback(&url, &flow).await.unwrap_err();
    assert!(err.contains("AADSTS65004"), "{err}");

    // A callback in a browser that did not start the sign-in (login CSRF): refused, and the code is
    // not spent — the browser that started it still signs in.
    let (url, flow) = pick(&app, upn(2)).await;
    let err = callback(&url, "mlops_oidc=someone-elses")
        .await
        .unwrap_err();
    assert!(err.contains("not started in this browser"), "{err}");
    assert!(callback(&url, "").await.is_err(), "no flow cookie at all");
    callback(&url, &flow).await.expect("the right browser");
    // A code is good once.
    let err = callback(&url, &flow).await.unwrap_err();
    assert!(err.contains("already used"), "{err}");

    // A local account of the same name is never taken over.
    app.user(upn(1), Role::Viewer).await;
    let (url, flow) = pick(&app, upn(1)).await;
    let err = callback(&url, &flow).await.unwrap_err();
    assert!(err.contains("already exists"), "{err}");

    // A disabled Entra account stays out, whatever its groups say; its role is its groups'.
    let (url, flow) = pick(&app, upn(0)).await;
    let session = callback(&url, &flow).await.expect("first sign-in");
    let r = app
        .http
        .patch(format!("{}/api/v1/users/{}", app.url, upn(0)))
        .json(&serde_json::json!({"role": "viewer"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 422);
    assert!(r.text().await.unwrap().contains("groups"));
    assert_eq!(me(&app, &session).await["role"], "admin", "unchanged");
    let r = app
        .http
        .patch(format!("{}/api/v1/users/{}", app.url, upn(0)))
        .json(&serde_json::json!({"disabled": true}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert_eq!(
        me_with(&app, &session).await.status(),
        401,
        "the open session ends too"
    );
    let (url, flow) = pick(&app, upn(0)).await;
    let err = callback(&url, &flow).await.unwrap_err();
    assert!(err.contains("disabled"), "{err}");

    let refused: Vec<(String, String)> = sqlx::query_as(
        "select actor, outcome from audit_log where action = 'signin' and outcome <> 'ok' order by id",
    )
    .fetch_all(&db.pool().await)
    .await
    .unwrap();
    assert!(
        refused.contains(&(upn(3).to_string(), "denied".to_string())),
        "{refused:?}"
    );
    app.server.stop().await;
}

#[tokio::test]
async fn entra_sign_in_is_off_unless_configured() {
    let db = TestDb::new().await;
    let app = TestApp::start(config(&db)).await;
    let r = no_redirects(None)
        .get(format!("{}/signin/entra", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let page = reqwest::get(format!("{}/signin", app.url))
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(!page.contains("Entra"), "no Entra button");
    app.server.stop().await;
}

#[tokio::test]
async fn the_emulated_entra_id_speaks_entras_protocol() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let tenant = mlops_console::emulator::seed::TENANT;
    let c = no_redirects(None);
    let meta: Value = c
        .get(format!(
            "{}/{tenant}/v2.0/.well-known/openid-configuration",
            emu.url
        ))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(meta["issuer"], format!("{}/{tenant}/v2.0", emu.url));
    assert_eq!(meta["id_token_signing_alg_values_supported"][0], "RS256");
    let keys: Value = c
        .get(meta["jwks_uri"].as_str().unwrap())
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let key = &keys["keys"][0];
    assert_eq!(key["kty"], "RSA");
    assert!(key["n"].as_str().unwrap().len() > 300 && key["kid"].is_string());

    let token_url = meta["token_endpoint"].as_str().unwrap().to_string();
    let token = |form: Vec<(&'static str, String)>| {
        let c = c.clone();
        let url = token_url.clone();
        async move {
            let r = c.post(url).form(&form).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    // Unknown app, wrong secret, unknown grant: Entra's error JSON with its AADSTS codes.
    let (status, body) = token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", "not-an-app".into()),
        ("client_secret", "x".into()),
    ])
    .await;
    assert_eq!(
        (status, body["error_codes"][0].as_u64()),
        (400, Some(700016))
    );
    let (status, body) = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", CONSOLE_CLIENT_ID.into()),
        ("client_secret", "wrong".into()),
        ("code", "x".into()),
    ])
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"], "invalid_client");
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS7000215"));
    let (status, body) = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", CONSOLE_CLIENT_ID.into()),
        ("client_secret", CONSOLE_CLIENT_SECRET.into()),
        ("code", "never-issued".into()),
    ])
    .await;
    assert_eq!(
        (status, body["error"].as_str()),
        (400, Some("invalid_grant"))
    );
    // Client credentials, as azure_identity's ClientSecretCredential asks.
    let (status, body) = token(vec![
        ("grant_type", "client_credentials".into()),
        ("client_id", CONSOLE_CLIENT_ID.into()),
        ("client_secret", CONSOLE_CLIENT_SECRET.into()),
        ("scope", "https://management.azure.com/.default".into()),
    ])
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["token_type"], "Bearer");
    assert!(body["expires_in"].as_i64().unwrap() > 3000);

    // A PKCE verifier that does not match the challenge spends the code for nothing.
    let authorize = meta["authorization_endpoint"].as_str().unwrap();
    let redirect = "http://127.0.0.1:1/signin/entra/callback";
    let picked = c
        .post(authorize)
        .form(&[
            ("client_id", CONSOLE_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", redirect),
            ("scope", "openid profile"),
            ("state", "s"),
            ("nonce", "n"),
            (
                "code_challenge",
                "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM",
            ),
            ("code_challenge_method", "S256"),
            ("account", upn(2)),
        ])
        .send()
        .await
        .unwrap();
    let back = query(&location(&picked));
    assert_eq!(back["state"], "s");
    let (status, body) = token(vec![
        ("grant_type", "authorization_code".into()),
        ("client_id", CONSOLE_CLIENT_ID.into()),
        ("client_secret", CONSOLE_CLIENT_SECRET.into()),
        ("code", back["code"].clone()),
        ("redirect_uri", redirect.into()),
        ("code_verifier", "not-the-verifier".into()),
    ])
    .await;
    assert_eq!(status, 400);
    assert!(body["error_description"]
        .as_str()
        .unwrap()
        .starts_with("AADSTS50148"));

    // A redirect URI the app never registered gets Entra's error page, not a redirect.
    let r = c
        .get(authorize)
        .query(&[
            ("client_id", CONSOLE_CLIENT_ID),
            ("response_type", "code"),
            ("redirect_uri", "https://evil.example/steal"),
            ("scope", "openid"),
        ])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    assert!(r.text().await.unwrap().contains("AADSTS50011"));
    emu.stop().await;
}

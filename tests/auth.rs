//! Sign-in, roles and audit: the role matrix over every route (pages, server functions, the JSON API),
//! CSRF, session fixation, expiry and sign-out, slowed brute force, the API token lifecycle, the audit
//! log, and no secret in any log line.

use crate::support::*;
use app::auth::Role;
use mlops_console::auth::policy::{self, Access};
use reqwest::header::{COOKIE, ORIGIN};
use reqwest::{Method, StatusCode};
use serde_json::{json, Value};
use std::time::Duration;

async fn token(app: &TestApp, role: Role) -> String {
    mlops_console::auth::create_token(
        &app.server.state.db,
        &format!("matrix-{}", role.as_str()),
        role,
        "tests",
        1,
    )
    .await
    .unwrap()
    .token
}

/// Every route the console serves: server functions, pages, and the JSON API (read from its source,
/// so a route added there is in this test without anyone remembering to add it).
fn all_routes() -> Vec<(Method, String)> {
    let mut out: Vec<(Method, String)> = leptos::server_fn::axum::server_fn_paths()
        .map(|(path, method)| {
            (
                Method::from_bytes(method.as_str().as_bytes()).unwrap(),
                path.to_string(),
            )
        })
        .collect();
    for r in leptos_axum::generate_route_list(app::App) {
        out.push((Method::GET, r.path().to_string()));
    }
    for file in ["server/src/api.rs", "server/src/auth/routes.rs"] {
        let text = std::fs::read_to_string(workspace_root().join(file)).unwrap();
        for chunk in text.split(".route(").skip(1) {
            let path = chunk.split('"').nth(1).unwrap().to_string();
            let until = chunk.find(".route(").unwrap_or(chunk.len());
            let handlers = &chunk[..until.min(chunk.find("\n}").unwrap_or(chunk.len()))];
            for (name, method) in [
                ("get(", Method::GET),
                ("post(", Method::POST),
                ("put(", Method::PUT),
                ("delete(", Method::DELETE),
                ("patch(", Method::PATCH),
            ] {
                if handlers.contains(&format!(".{name}"))
                    || handlers.contains(&format!("routing::{name}"))
                    || handlers.contains(&format!(" {name}"))
                    || handlers.contains(&format!("\n{name}"))
                    || handlers.contains(&format!("({name}"))
                {
                    out.push((method.clone(), path.clone()));
                }
            }
        }
    }
    out.retain(|(_, p)| !p.contains("{*"));
    out.sort_by_key(|(m, p)| (p.clone(), m.to_string()));
    out.dedup();
    out
}

fn sample(path: &str) -> String {
    path.split('/')
        .map(|s| {
            if s.starts_with('{') || s.starts_with(':') {
                "x"
            } else {
                s
            }
        })
        .collect::<Vec<_>>()
        .join("/")
}

#[tokio::test]
async fn every_route_needs_its_role_and_unlisted_routes_never_reach_a_handler() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let routes = all_routes();
    assert!(routes.len() > 60, "{routes:?}");
    let missing: Vec<String> = routes
        .iter()
        .filter(|(m, p)| policy::access(m, &sample(p)).is_none())
        .map(|(m, p)| format!("{m} {p}"))
        .collect();
    assert!(
        missing.is_empty(),
        "routes with no role in auth/policy.rs: {missing:?}"
    );

    let clients = [
        (None, no_redirects(None)),
        (
            Some(Role::Viewer),
            no_redirects(Some(&token(&app, Role::Viewer).await)),
        ),
        (
            Some(Role::Operator),
            no_redirects(Some(&token(&app, Role::Operator).await)),
        ),
        (
            Some(Role::Admin),
            no_redirects(Some(&token(&app, Role::Admin).await)),
        ),
    ];
    let mut wrong = Vec::new();
    for (method, path) in &routes {
        let url = format!("{}{}", app.url, sample(path));
        let Some(Access::Role(need)) = policy::access(method, &sample(path)) else {
            continue;
        };
        let server_fn = path.starts_with("/api/") && !path.starts_with("/api/v1/");
        for (role, client) in &clients {
            let mut req = client.request(method.clone(), &url).header(
                "accept",
                if server_fn || path.starts_with("/api/") {
                    "application/json"
                } else {
                    "text/html"
                },
            );
            if method != Method::GET {
                req = if server_fn {
                    req.header("content-type", "application/x-www-form-urlencoded")
                        .body("")
                } else {
                    // Malformed on purpose: an allowed caller gets a 4xx from the handler, never a change.
                    req.header("content-type", "application/json").body("{")
                };
            }
            let status = req.send().await.unwrap().status();
            let ok = match role {
                None if method == Method::GET && !path.starts_with("/api/") => {
                    status == StatusCode::SEE_OTHER
                }
                None => status == StatusCode::UNAUTHORIZED,
                Some(r) if *r < need => status == StatusCode::FORBIDDEN,
                Some(_) => status != StatusCode::UNAUTHORIZED && status != StatusCode::FORBIDDEN,
            };
            if !ok {
                wrong.push(format!(
                    "{method} {path} as {role:?} (needs {need:?}) → {status}"
                ));
            }
        }
    }
    assert!(wrong.is_empty(), "{}", wrong.join("\n"));
    // Not registered: no handler sees it, whoever asks.
    let admin = &clients[3].1;
    assert_eq!(
        admin
            .delete(format!("{}/api/v1/runs/x", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    assert_eq!(
        admin
            .post(format!("{}/api/nosuchfunction", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    app.server.stop().await;
}

/// Signs in with a form post from the console's own origin; returns the session cookie (`name=value`).
async fn sign_in(
    app: &TestApp,
    name: &str,
    password: &str,
    planted: Option<&str>,
) -> (StatusCode, Option<String>, String) {
    let mut req = no_redirects(None)
        .post(format!("{}/signin", app.url))
        .header(ORIGIN, &app.url)
        .form(&[("name", name), ("password", password), ("next", "/runs")]);
    if let Some(c) = planted {
        req = req.header(COOKIE, c);
    }
    let r = req.send().await.unwrap();
    (r.status(), set_cookie(&r, "mlops_session"), location(&r))
}

async fn csrf_of(app: &TestApp, cookie: &str) -> String {
    let me: Value = no_redirects(None)
        .post(format!("{}/api/whoami", app.url))
        .header(COOKIE, cookie)
        .header("content-type", "application/x-www-form-urlencoded")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    me["csrf"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn browser_mutations_need_the_same_origin_and_the_sessions_token() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let password = app.user("olga", Role::Operator).await;
    let (status, cookie, location) = sign_in(&app, "olga", &password, None).await;
    assert_eq!(
        (status, location.as_str()),
        (StatusCode::SEE_OTHER, "/runs")
    );
    let cookie = pair(&cookie.unwrap());
    let csrf = csrf_of(&app, &cookie).await;
    assert_eq!(csrf.len(), 64);
    let url = format!(
        "{}/api/v1/alerts/00000000-0000-0000-0000-000000000000/state",
        app.url
    );
    let send = |origin: Option<&str>, token: Option<&str>| {
        let mut req = no_redirects(None)
            .post(&url)
            .header(COOKIE, &cookie)
            .json(&json!({"state": "Closed"}));
        if let Some(o) = origin {
            req = req.header(ORIGIN, o);
        }
        if let Some(t) = token {
            req = req.header("x-csrf-token", t);
        }
        async move { req.send().await.unwrap().status() }
    };
    assert_eq!(send(None, Some(&csrf)).await, 403, "no origin");
    assert_eq!(send(Some(&app.url), None).await, 403, "no token");
    assert_eq!(
        send(Some(&app.url), Some("0".repeat(64).as_str())).await,
        403,
        "wrong token"
    );
    assert_eq!(
        send(Some("http://evil.example"), Some(&csrf)).await,
        403,
        "another site"
    );
    assert_eq!(
        send(Some(&app.url), Some(&csrf)).await,
        404,
        "passes the check; the alert does not exist"
    );

    // Server functions: the token travels in the form.
    let form = |with_token: bool| {
        let mut body = vec![
            ("direction", "sideways".to_string()),
            ("reason_text", String::new()),
            ("idempotency_key", "k".into()),
        ];
        if with_token {
            body.push(("csrf_token", csrf.clone()));
        }
        no_redirects(None)
            .post(format!("{}/api/runbook", app.url))
            .header(COOKIE, &cookie)
            .header(ORIGIN, &app.url)
            .header("accept", "application/json")
            .form(&body)
    };
    assert_eq!(form(false).send().await.unwrap().status(), 403);
    assert_eq!(
        form(true).send().await.unwrap().status(),
        422,
        "checked, then refused for its bad input"
    );

    // Reads need no token, even an admin's lists (the page refetches them after each change).
    let admin_password = app.user("ada", Role::Admin).await;
    let (_, admin_cookie, _) = sign_in(&app, "ada", &admin_password, None).await;
    let admin_cookie = pair(&admin_cookie.unwrap());
    for read in ["users", "tokens", "runs", "overview"] {
        let r = no_redirects(None)
            .post(format!("{}/api/{read}", app.url))
            .header(COOKIE, &admin_cookie)
            .header(ORIGIN, &app.url)
            .header("accept", "application/json")
            .header("content-type", "application/x-www-form-urlencoded")
            .body(if read == "runs" {
                "filter[limit]=5"
            } else {
                ""
            })
            .send()
            .await
            .unwrap();
        assert_ne!(r.status(), 403, "{read}: reads are not CSRF-checked");
    }

    // A sign-in posted from elsewhere is refused (login CSRF).
    let r = no_redirects(None)
        .post(format!("{}/signin", app.url))
        .header(ORIGIN, "http://evil.example")
        .form(&[("name", "olga"), ("password", password.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 403);
    app.server.stop().await;
}

#[tokio::test]
async fn sessions_rotate_at_sign_in_end_at_sign_out_and_expire() {
    let db = TestDb::new().await;
    let mut cfg = config(&db);
    cfg.session_max_secs = 3;
    let app = TestApp::ready(cfg).await;
    let password = app.user("sam", Role::Viewer).await;

    // A session id planted before sign-in is not the one after it.
    let planted = "mlops_session=attacker-chosen-session-id";
    let (_, cookie, _) = sign_in(&app, "sam", &password, Some(planted)).await;
    let first = cookie.expect("a session cookie");
    assert!(
        first.contains("HttpOnly")
            && first.contains("SameSite=Strict")
            && !first.contains("Secure"),
        "{first}"
    );
    let first = pair(&first);
    assert_ne!(first, planted);
    assert_eq!(me_with(&app, planted).await.status(), 401);
    assert_eq!(me_with(&app, &first).await.status(), 200);

    // Signing in again rotates the id; the old one is dead.
    let (_, again, _) = sign_in(&app, "sam", &password, Some(&first)).await;
    let second = pair(&again.unwrap());
    assert_ne!(second, first);
    assert_eq!(
        me_with(&app, &first).await.status(),
        401,
        "the id before sign-in no longer works"
    );
    assert_eq!(me_with(&app, &second).await.status(), 200);

    // Sign-out ends it on the server: the cookie is worthless afterwards.
    let csrf = csrf_of(&app, &second).await;
    let r = no_redirects(None)
        .post(format!("{}/signout", app.url))
        .header(COOKIE, &second)
        .header(ORIGIN, &app.url)
        .form(&[("csrf_token", csrf.as_str())])
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), StatusCode::SEE_OTHER);
    assert_eq!(me_with(&app, &second).await.status(), 401);

    // However busy, a session ends `session_max_secs` after sign-in.
    let (_, third, _) = sign_in(&app, "sam", &password, None).await;
    let third = pair(&third.unwrap());
    assert_eq!(me_with(&app, &third).await.status(), 200);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    assert_eq!(me_with(&app, &third).await.status(), 401);
    let page = no_redirects(None)
        .get(format!("{}/runs", app.url))
        .header(COOKIE, &third)
        .header("accept", "text/html")
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(page.headers()["location"]
        .to_str()
        .unwrap()
        .starts_with("/signin?next="));
    app.server.stop().await;
}

#[tokio::test]
async fn sign_in_attempts_slow_down_and_never_tell_which_accounts_exist() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let password = app.user("bruno", Role::Viewer).await;
    let (_, cookie, wrong) = sign_in(&app, "bruno", "not-the-password", None).await;
    assert!(cookie.is_none());
    let (_, _, unknown) = sign_in(&app, "nobody-here", "not-the-password", None).await;
    let error = |loc: &str| {
        url::Url::parse(&format!("http://x{loc}"))
            .unwrap()
            .query_pairs()
            .find(|(k, _)| k == "error")
            .map(|(_, v)| v.into_owned())
            .unwrap()
    };
    assert_eq!(
        error(&wrong),
        error(&unknown),
        "the same answer for a wrong password and an unknown name"
    );
    assert_eq!(error(&wrong), "Wrong name or password.");
    sign_in(&app, "bruno", "again-wrong", None).await;
    // Three failures from this address: the next try waits, even with the right password.
    let (_, cookie, slowed) = sign_in(&app, "bruno", &password, None).await;
    assert!(
        cookie.is_none() && error(&slowed).starts_with("Too many attempts"),
        "{slowed}"
    );
    let (_, audit) = app.json("/api/v1/audit?action=signin").await;
    let outcomes: Vec<&str> = audit["entries"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["outcome"].as_str().unwrap())
        .collect();
    assert_eq!(outcomes, ["denied", "failed", "failed", "failed"]);
    app.server.stop().await;
}

#[tokio::test]
async fn api_tokens_are_shown_once_work_until_revoked_and_expire() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let r = app
        .http
        .post(format!("{}/api/v1/tokens", app.url))
        .json(&json!({"name": "ci", "role": "operator", "days": 30}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    let created: Value = r.json().await.unwrap();
    let secret = created["token"].as_str().unwrap().to_string();
    assert!(secret.starts_with("mlc_") && secret.len() == 68);
    let ci = no_redirects(Some(&secret));
    let me: Value = ci
        .get(format!("{}/api/v1/me", app.url))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (me["name"].as_str(), me["role"].as_str()),
        (Some("token:ci"), Some("operator"))
    );
    let (_, listed) = app.text("/api/v1/tokens").await;
    assert!(
        listed.contains(&secret[..12]) && !listed.contains(&secret),
        "listed by prefix only"
    );
    let stored: String = sqlx::query_scalar("select token_hash from api_tokens where name = 'ci'")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert!(stored != secret && !stored.contains("mlc_"));

    // Viewers cannot make tokens; bad input is a 422.
    let viewer = app.client_as(Role::Viewer).await;
    assert_eq!(
        viewer
            .post(format!("{}/api/v1/tokens", app.url))
            .json(&json!({"name": "x", "role": "admin"}))
            .send()
            .await
            .unwrap()
            .status(),
        403
    );
    assert_eq!(
        app.http
            .post(format!("{}/api/v1/tokens", app.url))
            .json(&json!({"name": "x", "role": "root"}))
            .send()
            .await
            .unwrap()
            .status(),
        422
    );

    let id = created["view"]["id"].as_str().unwrap();
    assert_eq!(
        app.http
            .delete(format!("{}/api/v1/tokens/{id}", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        204
    );
    let r = ci
        .get(format!("{}/api/v1/me", app.url))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));

    let old =
        mlops_console::auth::create_token(&app.server.state.db, "old", Role::Viewer, "tests", 1)
            .await
            .unwrap();
    sqlx::query(
        "update api_tokens set expires_at = now() - interval '1 minute' where name = 'old'",
    )
    .execute(&db.pool().await)
    .await
    .unwrap();
    assert_eq!(
        no_redirects(Some(&old.token))
            .get(format!("{}/api/v1/me", app.url))
            .send()
            .await
            .unwrap()
            .status(),
        401
    );
    app.server.stop().await;
}

#[tokio::test]
async fn every_mutation_is_audited_with_its_reason_and_the_log_is_append_only() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let operator = app.client_as(Role::Operator).await;
    let viewer = app.client_as(Role::Viewer).await;
    let url = format!("{}/api/v1/runbooks/Scale-MLOps-Resources/start", app.url);
    let body = json!({"parameters": {"ScaleDirection": "down"}, "reason": "nightly scale down"});
    assert_eq!(
        viewer.post(&url).json(&body).send().await.unwrap().status(),
        403
    );
    let r = operator.post(&url).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 202);
    let run: Value = r.json().await.unwrap();
    let r = app
        .http
        .post(format!("{}/api/v1/users", app.url))
        .json(
            &json!({"name": "newbie", "role": "viewer", "password": "a very long secret password"}),
        )
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let (_, audit) = app.json("/api/v1/audit?action=runbooks").await;
    let entries = audit["entries"].as_array().unwrap();
    assert_eq!(entries.len(), 2, "{audit}");
    assert_eq!(
        (entries[0]["outcome"].as_str(), entries[0]["actor"].as_str()),
        (Some("ok"), Some("token:tests-operator"))
    );
    assert_eq!(entries[0]["reason"], "nightly scale down");
    assert_eq!(entries[0]["run_id"], run["run_id"]);
    assert_eq!(entries[0]["target"], "runbooks/Scale-MLOps-Resources/start");
    assert_eq!(
        (
            entries[1]["outcome"].as_str(),
            entries[1]["status"].as_i64()
        ),
        (Some("denied"), Some(403))
    );
    let (_, users) = app.json("/api/v1/audit?action=users").await;
    assert_eq!(users["entries"][0]["parameters"]["password"], "[redacted]");
    let (_, run_detail) = app
        .json(&format!("/api/v1/runs/{}", run["run_id"].as_str().unwrap()))
        .await;
    assert_eq!(run_detail["requested_by"], "token:tests-operator");

    let pool = db.pool().await;
    for sql in [
        "update audit_log set reason = 'rewritten'",
        "delete from audit_log",
        "truncate audit_log",
    ] {
        let err = sqlx::query(sql)
            .execute(&pool)
            .await
            .unwrap_err()
            .to_string();
        assert!(err.contains("append-only"), "{sql}: {err}");
    }
    let (status, html) = app.text("/audit").await;
    assert_eq!(status, 200);
    assert!(html.contains("nightly scale down"));
    app.server.stop().await;
}

#[tokio::test]
async fn viewers_run_saved_queries_but_not_free_form_kql() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let viewer = app.client_as(Role::Viewer).await;
    let run = |q: &str| {
        viewer
            .post(format!("{}/api/v1/queries", app.url))
            .json(&json!({"source": "app-insights", "query": q, "timespan": "P1D"}))
            .send()
    };
    assert_eq!(
        run("requests\n| where name contains 'score'\n| summarize avg(duration)")
            .await
            .unwrap()
            .status(),
        200
    );
    let refused = run("requests | take 1").await.unwrap();
    assert_eq!(refused.status(), 403);
    assert!(refused.text().await.unwrap().contains("operator"));
    app.server.stop().await;
}

#[tokio::test]
async fn no_secret_reaches_a_log_line() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let password = app.user("logan", Role::Operator).await;
    let (_, cookie, _) = sign_in(&app, "logan", &password, None).await;
    let session = pair(&cookie.unwrap())
        .trim_start_matches("mlops_session=")
        .to_string();
    let created: Value = app
        .http
        .post(format!("{}/api/v1/tokens", app.url))
        .json(&json!({"name": "logged", "role": "viewer"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let token = created["token"].as_str().unwrap().to_string();
    no_redirects(Some(&token))
        .get(format!("{}/api/v1/me", app.url))
        .send()
        .await
        .unwrap();
    // The pipeline reads the endpoint's key and stores it in Key Vault.
    let r = app
        .http
        .post(format!("{}/api/v1/pipelines/train-deploy", app.url))
        .json(&json!({}))
        .send()
        .await
        .unwrap();
    let accepted: Value = r.json().await.unwrap();
    let done = app.finished(accepted["run_id"].as_str().unwrap()).await;
    assert_eq!(done["status"], "succeeded", "{done}");
    let key: String = sqlx::query_scalar("select body->>'value' from emulator.objects where kind = 'secret' and key like '%/secrets/endpoint-key'")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    let logs = std::fs::read_to_string(log_path()).unwrap();
    assert!(
        logs.contains("/api/v1/pipelines/train-deploy"),
        "the log has this test's requests"
    );
    for (what, secret) in [
        ("password", &password),
        ("session id", &session),
        ("API token", &token),
        ("endpoint key", &key),
    ] {
        assert!(secret.len() >= 16, "{what}");
        assert!(!logs.contains(secret.as_str()), "the {what} is in the log");
    }
    app.server.stop().await;
}

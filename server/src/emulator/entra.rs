//! Microsoft Entra ID's OpenID Connect endpoints, for one tenant with a handful of people in three groups:
//! discovery (`/{tenant}/v2.0/.well-known/openid-configuration`), the authorization endpoint (a page where
//! you pick who signs in — there are no passwords: this is an identity provider for demos and tests),
//! the token endpoint (authorization code with PKCE, and client credentials) and the signing keys
//! (`/{tenant}/discovery/v2.0/keys`). ID tokens are RS256 JWTs in Entra's v2.0 shape, with a `groups`
//! claim. Errors are Entra's: `AADSTS…` codes, on a page for the browser or in the token endpoint's JSON.

use super::{base_url, Emulator};
use aws_lc_rs::rsa::KeyPair;
use aws_lc_rs::signature::{KeyPair as _, RSA_PKCS1_SHA256};
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{Html, IntoResponse, Redirect, Response};
use axum::{Form, Json};
use base64::engine::general_purpose::URL_SAFE_NO_PAD as B64;
use base64::Engine;
use serde::Deserialize;
use serde_json::{json, Value};
use sha2::{Digest, Sha256};
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// The console's app registration in the emulated tenant.
pub const CONSOLE_CLIENT_ID: &str = "3b9c6f2e-8d41-4a7e-b5c0-6e2f9a1d7c58";
/// Its client secret: a well-known value, like Azurite's account key — the emulator is not a vault.
pub const CONSOLE_CLIENT_SECRET: &str = "emulator-console-secret";
/// Redirect URIs the registration accepts: any `http(s)://host[:port]` with this path.
pub const REDIRECT_PATH: &str = "/signin/entra/callback";

/// The tenant's groups: object id, display name.
pub const GROUPS: [(&str, &str); 3] = [
    ("6a1f0c3e-2b7d-4e95-9c48-1d3a5b7e9f02", "MLOps Admins"),
    ("b4e8d2a6-7c19-4f3b-8a5e-2c6d0e9f1a73", "MLOps Operators"),
    ("e2c7a9f1-5d3b-4b86-a0e4-7f9c1b3d5a64", "MLOps Viewers"),
];

/// The tenant's people: object id, user principal name, display name, group ids.
pub const USERS: [(&str, &str, &str, &[&str]); 4] = [
    (
        "0f5a9d3c-1e7b-4c28-9a6f-3b8e2d4c6a10",
        "ada.admin@mlopsdemo.onmicrosoft.com",
        "Ada Admin",
        &[GROUPS[0].0],
    ),
    (
        "1c7e3a5f-9b2d-4d64-8e1a-5f3c7b9d2e21",
        "omar.operator@mlopsdemo.onmicrosoft.com",
        "Omar Operator",
        &[GROUPS[1].0, GROUPS[2].0],
    ),
    (
        "2d9b5c7a-3f4e-4a86-b2c3-7a5e9d1f4b32",
        "vera.viewer@mlopsdemo.onmicrosoft.com",
        "Vera Viewer",
        &[GROUPS[2].0],
    ),
    (
        "3e1d7f9b-5a6c-4c08-94e5-9c7a1f3b6d43",
        "gus.guest@mlopsdemo.onmicrosoft.com",
        "Gus Guest",
        &[],
    ),
];

const CODE_LIFETIME: Duration = Duration::from_secs(600);
const TOKEN_LIFETIME_SECS: i64 = 3600;

/// The tenant's signing key and the authorization codes not yet redeemed.
pub struct Directory {
    key: KeyPair,
    kid: String,
    codes: Mutex<HashMap<String, Grant>>,
}

/// What an authorization code stands for.
#[derive(Clone)]
struct Grant {
    tenant: String,
    client_id: String,
    redirect_uri: String,
    challenge: Option<String>,
    nonce: Option<String>,
    scope: String,
    user: usize,
    issued: Instant,
}

impl Directory {
    pub fn new() -> Directory {
        // aws-lc generates a 2048-bit key in milliseconds, even in a debug build.
        let key = KeyPair::generate(aws_lc_rs::rsa::KeySize::Rsa2048)
            .expect("the platform can generate an RSA key");
        let kid = B64.encode(&Sha256::digest(key.public_key().as_ref())[..15]);
        Directory {
            key,
            kid,
            codes: Mutex::new(HashMap::new()),
        }
    }

    /// A signed JWT of `claims` (RS256, with this tenant's key id).
    pub(crate) fn sign(&self, claims: &Value) -> String {
        let header = json!({"typ": "JWT", "alg": "RS256", "kid": self.kid});
        let message = format!(
            "{}.{}",
            B64.encode(header.to_string()),
            B64.encode(claims.to_string())
        );
        let mut signature = vec![0; self.key.public_modulus_len()];
        self.key
            .sign(
                &RSA_PKCS1_SHA256,
                &aws_lc_rs::rand::SystemRandom::new(),
                message.as_bytes(),
                &mut signature,
            )
            .expect("RSA signing does not fail with a valid key");
        format!("{message}.{}", B64.encode(signature))
    }

    pub(crate) fn jwks(&self, issuer: &str) -> Value {
        let public = self.key.public_key();
        json!({"keys": [{
            "kty": "RSA",
            "use": "sig",
            "kid": self.kid,
            "x5t": self.kid,
            "n": B64.encode(public.modulus().big_endian_without_leading_zero()),
            "e": B64.encode(public.exponent().big_endian_without_leading_zero()),
            "issuer": issuer,
        }]})
    }
}

impl Default for Directory {
    fn default() -> Self {
        Directory::new()
    }
}

fn issuer(base: &str, tenant: &str) -> String {
    format!("{base}/{tenant}/v2.0")
}

/// `GET /{tenant}/v2.0/.well-known/openid-configuration`
pub async fn discovery(Path(tenant): Path<String>, headers: HeaderMap) -> Response {
    let base = base_url(&headers);
    let oauth = format!("{base}/{tenant}/oauth2/v2.0");
    Json(json!({
        "token_endpoint": format!("{oauth}/token"),
        "token_endpoint_auth_methods_supported": ["client_secret_post", "private_key_jwt", "client_secret_basic"],
        "jwks_uri": format!("{base}/{tenant}/discovery/v2.0/keys"),
        "response_modes_supported": ["query", "fragment", "form_post"],
        "subject_types_supported": ["pairwise"],
        "id_token_signing_alg_values_supported": ["RS256"],
        "response_types_supported": ["code", "id_token", "code id_token", "id_token token"],
        "scopes_supported": ["openid", "profile", "email", "offline_access"],
        "issuer": issuer(&base, &tenant),
        "request_uri_parameter_supported": false,
        "userinfo_endpoint": format!("{base}/oidc/userinfo"),
        "authorization_endpoint": format!("{oauth}/authorize"),
        "device_authorization_endpoint": format!("{oauth}/devicecode"),
        "http_logout_supported": true,
        "frontchannel_logout_supported": true,
        "end_session_endpoint": format!("{oauth}/logout"),
        "claims_supported": ["sub", "iss", "cloud_instance_name", "cloud_instance_host_name", "cloud_graph_host_name", "msgraph_host", "aud", "exp", "iat", "auth_time", "acr", "nonce", "preferred_username", "name", "tid", "ver", "at_hash", "c_hash", "email"],
        "kerberos_endpoint": format!("{base}/{tenant}/kerberos"),
        "tenant_region_scope": "NA",
        "cloud_instance_name": "microsoftonline.com",
        "cloud_graph_host_name": "graph.windows.net",
        "msgraph_host": "graph.microsoft.com",
        "rbac_url": "https://pas.windows.net",
    }))
    .into_response()
}

/// `GET /{tenant}/discovery/v2.0/keys`
pub async fn keys(
    State(emu): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
) -> Response {
    Json(emu.inner.entra.jwks(&issuer(&base_url(&headers), &tenant))).into_response()
}

/// The authorization request's parameters (query on GET, form on POST with the chosen account).
#[derive(Deserialize, Default, Clone)]
pub struct Authorize {
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    response_type: String,
    #[serde(default)]
    redirect_uri: String,
    #[serde(default)]
    scope: String,
    #[serde(default)]
    state: Option<String>,
    #[serde(default)]
    nonce: Option<String>,
    #[serde(default)]
    code_challenge: Option<String>,
    #[serde(default)]
    code_challenge_method: Option<String>,
    #[serde(default)]
    response_mode: Option<String>,
    #[serde(default)]
    login_hint: Option<String>,
    /// POST only: the account picked, or `cancel`.
    #[serde(default)]
    account: Option<String>,
}

fn redirect_ok(uri: &str) -> bool {
    url::Url::parse(uri).is_ok_and(|u| {
        matches!(u.scheme(), "http" | "https")
            && u.path() == REDIRECT_PATH
            && u.query().is_none()
            && u.fragment().is_none()
    })
}

/// An error Entra shows on its own page (it cannot trust the redirect URI with it).
fn error_page(status: StatusCode, code: u32, message: &str) -> Response {
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to your account</title></head>\
         <body style=\"font-family: system-ui, sans-serif; max-width: 36rem; margin: 4rem auto\">\
         <h1>Sorry, but we’re having trouble signing you in.</h1><p id=\"error\">AADSTS{code}: {}</p>\
         <p style=\"color:#666\">Emulated Microsoft Entra ID</p></body></html>",
        escape(message)
    );
    (status, Html(body)).into_response()
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Checks what Entra checks before it shows anything: the app and the redirect URI. `Some` is the error
/// page to show instead.
fn unknown_app(a: &Authorize) -> Option<Response> {
    if a.client_id != CONSOLE_CLIENT_ID {
        return Some(error_page(
            StatusCode::BAD_REQUEST,
            700016,
            &format!("Application with identifier '{}' was not found in the directory 'mlopsdemo'. This can happen if the application has not been installed by the administrator of the tenant or consented to by any user in the tenant.", a.client_id),
        ));
    }
    if !redirect_ok(&a.redirect_uri) {
        return Some(error_page(
            StatusCode::BAD_REQUEST,
            50011,
            &format!("The redirect URI '{}' specified in the request does not match the redirect URIs configured for the application '{}'.", a.redirect_uri, a.client_id),
        ));
    }
    None
}

/// An error Entra sends back to the app on its redirect URI.
fn redirect_error(a: &Authorize, error: &str, description: &str) -> Response {
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("error", error)
        .append_pair("error_description", description);
    if let Some(s) = &a.state {
        q.append_pair("state", s);
    }
    Redirect::to(&format!("{}?{}", a.redirect_uri, q.finish())).into_response()
}

/// Whatever is wrong with the request itself, as Entra reports it to the app.
fn request_error(a: &Authorize) -> Option<Response> {
    if a.response_type != "code" {
        return Some(redirect_error(
            a,
            "unsupported_response_type",
            &format!(
                "AADSTS700054: response_type '{}' is not enabled for the application.",
                a.response_type
            ),
        ));
    }
    if !a.scope.split_whitespace().any(|s| s == "openid") {
        return Some(redirect_error(a, "invalid_request", "AADSTS900144: The request body must contain the following parameter: 'scope' with 'openid'."));
    }
    if a.code_challenge.is_some() && a.code_challenge_method.as_deref() != Some("S256") {
        return Some(redirect_error(a, "invalid_request", "AADSTS501491: Invalid size of Code_Challenge parameter, or code_challenge_method other than S256."));
    }
    if a.response_mode.as_deref().is_some_and(|m| m != "query") {
        return Some(redirect_error(
            a,
            "invalid_request",
            "AADSTS900144: The emulator returns codes in the query only (response_mode=query).",
        ));
    }
    None
}

/// `GET /{tenant}/oauth2/v2.0/authorize`: the account picker.
pub async fn authorize_page(
    Path(tenant): Path<String>,
    axum::extract::Query(a): axum::extract::Query<Authorize>,
) -> Response {
    if let Some(r) = unknown_app(&a).or_else(|| request_error(&a)) {
        return r;
    }
    let hidden: String = [
        ("client_id", Some(a.client_id.as_str())),
        ("response_type", Some(a.response_type.as_str())),
        ("redirect_uri", Some(a.redirect_uri.as_str())),
        ("scope", Some(a.scope.as_str())),
        ("state", a.state.as_deref()),
        ("nonce", a.nonce.as_deref()),
        ("code_challenge", a.code_challenge.as_deref()),
        ("code_challenge_method", a.code_challenge_method.as_deref()),
    ]
    .iter()
    .filter_map(|(k, v)| {
        v.map(|v| {
            format!(
                "<input type=\"hidden\" name=\"{k}\" value=\"{}\">",
                escape(v)
            )
        })
    })
    .collect();
    let hint = a
        .login_hint
        .as_deref()
        .unwrap_or_default()
        .to_ascii_lowercase();
    let accounts: String = USERS
        .iter()
        .map(|(_, upn, name, groups)| {
            let group_names: Vec<&str> = groups
                .iter()
                .filter_map(|g| GROUPS.iter().find(|(id, _)| id == g).map(|(_, n)| *n))
                .collect();
            let groups = if group_names.is_empty() {
                "no groups".to_string()
            } else {
                group_names.join(", ")
            };
            let focus = if *upn == hint { " autofocus" } else { "" };
            format!(
                "<li><button type=\"submit\" name=\"account\" value=\"{upn}\" data-account=\"{upn}\"{focus}>\
                 <strong>{name}</strong><br><span>{upn}</span><br><small>{groups}</small></button></li>"
            )
        })
        .collect();
    let body = format!(
        "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>Sign in to your account</title>\
         <style>body{{font-family:system-ui,sans-serif;max-width:28rem;margin:4rem auto;color:#1b1b1b}}\
         ul{{list-style:none;padding:0}}li button{{width:100%;text-align:left;padding:.7rem 1rem;margin:.3rem 0;\
         border:1px solid #ccc;background:#fff;border-radius:4px;cursor:pointer;font:inherit}}\
         li button:hover{{background:#f3f6fb}}span,small{{color:#555}}.cancel{{margin-top:1rem}}</style></head>\
         <body><h1>Pick an account</h1>\
         <p>Emulated Microsoft Entra ID · tenant <code>{tenant}</code>. There are no passwords here: \
         this identity provider is for demos and tests.</p>\
         <form method=\"post\">{hidden}<ul>{accounts}</ul>\
         <button class=\"cancel\" type=\"submit\" name=\"account\" value=\"cancel\">Cancel</button></form></body></html>",
        tenant = escape(&tenant)
    );
    Html(body).into_response()
}

/// `POST /{tenant}/oauth2/v2.0/authorize`: the account picked; back to the app with a code.
pub async fn authorize(
    State(emu): State<Emulator>,
    Path(tenant): Path<String>,
    Form(a): Form<Authorize>,
) -> Response {
    if let Some(r) = unknown_app(&a).or_else(|| request_error(&a)) {
        return r;
    }
    let account = a.account.clone().unwrap_or_default();
    if account == "cancel" {
        return redirect_error(
            &a,
            "access_denied",
            "AADSTS65004: User declined to consent to access the app.",
        );
    }
    let Some(user) = USERS.iter().position(|(_, upn, _, _)| *upn == account) else {
        return error_page(
            StatusCode::BAD_REQUEST,
            50034,
            "The user account does not exist in the directory.",
        );
    };
    let code = format!("1.{}", crate::auth::random_hex());
    let mut codes = emu.inner.entra.codes.lock().expect("codes lock");
    codes.retain(|_, g| g.issued.elapsed() < CODE_LIFETIME);
    codes.insert(
        code.clone(),
        Grant {
            tenant,
            client_id: a.client_id.clone(),
            redirect_uri: a.redirect_uri.clone(),
            challenge: a.code_challenge.clone(),
            nonce: a.nonce.clone(),
            scope: a.scope.clone(),
            user,
            issued: Instant::now(),
        },
    );
    drop(codes);
    let mut q = url::form_urlencoded::Serializer::new(String::new());
    q.append_pair("code", &code);
    if let Some(s) = &a.state {
        q.append_pair("state", s);
    }
    q.append_pair("session_state", &uuid::Uuid::new_v4().to_string());
    Redirect::to(&format!("{}?{}", a.redirect_uri, q.finish())).into_response()
}

#[derive(Deserialize)]
pub struct TokenRequest {
    #[serde(default)]
    grant_type: String,
    #[serde(default)]
    client_id: String,
    #[serde(default)]
    client_secret: Option<String>,
    #[serde(default)]
    code: Option<String>,
    #[serde(default)]
    redirect_uri: Option<String>,
    #[serde(default)]
    code_verifier: Option<String>,
    #[serde(default)]
    scope: Option<String>,
}

/// The token endpoint's error JSON.
fn token_error(status: StatusCode, error: &str, code: u32, message: &str) -> Response {
    let now = chrono::Utc::now().format("%Y-%m-%d %H:%M:%SZ");
    let trace = uuid::Uuid::new_v4();
    let correlation = uuid::Uuid::new_v4();
    (
        status,
        Json(json!({
            "error": error,
            "error_description": format!("AADSTS{code}: {message} Trace ID: {trace} Correlation ID: {correlation} Timestamp: {now}"),
            "error_codes": [code],
            "timestamp": now.to_string(),
            "trace_id": trace,
            "correlation_id": correlation,
        })),
    )
        .into_response()
}

/// Client id and secret from the form or from HTTP Basic (`client_secret_basic`).
fn client_credentials(headers: &HeaderMap, t: &TokenRequest) -> (String, Option<String>) {
    let basic = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Basic "))
        .and_then(|b| base64::engine::general_purpose::STANDARD.decode(b).ok())
        .and_then(|b| String::from_utf8(b).ok())
        .and_then(|s| {
            let (id, secret) = s.split_once(':')?;
            let decode = |p: &str| {
                url::form_urlencoded::parse(format!("x={p}").as_bytes())
                    .next()
                    .map(|(_, v)| v.into_owned())
            };
            Some((decode(id)?, decode(secret)?))
        });
    match basic {
        Some((id, secret)) => (id, Some(secret)),
        None => (t.client_id.clone(), t.client_secret.clone()),
    }
}

/// `POST /{tenant}/oauth2/v2.0/token`
pub async fn token(
    State(emu): State<Emulator>,
    Path(tenant): Path<String>,
    headers: HeaderMap,
    Form(t): Form<TokenRequest>,
) -> Response {
    let (client_id, secret) = client_credentials(&headers, &t);
    if client_id != CONSOLE_CLIENT_ID {
        return token_error(StatusCode::BAD_REQUEST, "unauthorized_client", 700016, &format!("Application with identifier '{client_id}' was not found in the directory 'mlopsdemo'."));
    }
    if secret.as_deref() != Some(CONSOLE_CLIENT_SECRET) {
        return token_error(StatusCode::UNAUTHORIZED, "invalid_client", 7000215, "Invalid client secret provided. Ensure the secret being sent in the request is the client secret value, not the client secret ID, for a secret added to app '3b9c6f2e-8d41-4a7e-b5c0-6e2f9a1d7c58'.");
    }
    let base = base_url(&headers);
    let now = chrono::Utc::now().timestamp();
    match t.grant_type.as_str() {
        "authorization_code" => {
            let code = t.code.clone().unwrap_or_default();
            // A code is good once: taken out of the map whatever happens next.
            let grant = emu
                .inner
                .entra
                .codes
                .lock()
                .expect("codes lock")
                .remove(&code);
            let Some(g) =
                grant.filter(|g| g.issued.elapsed() < CODE_LIFETIME && g.tenant == tenant)
            else {
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant", 70008, "The provided authorization code or refresh token has expired due to inactivity, or was already redeemed. Send a new interactive authorization request for this user and resource.");
            };
            if g.client_id != client_id
                || t.redirect_uri.as_deref() != Some(g.redirect_uri.as_str())
            {
                return token_error(StatusCode::BAD_REQUEST, "invalid_grant", 500112, "The reply address does not match the reply address that was provided when requesting the authorization code.");
            }
            if let Some(challenge) = &g.challenge {
                let verifier = t.code_verifier.as_deref().unwrap_or_default();
                if B64.encode(Sha256::digest(verifier.as_bytes())) != *challenge {
                    return token_error(StatusCode::BAD_REQUEST, "invalid_grant", 50148, "The code_verifier does not match the code_challenge supplied in the authorization request for PKCE.");
                }
            }
            let (oid, upn, name, groups) = USERS[g.user];
            let issuer = issuer(&base, &g.tenant);
            // `sub` is pairwise: the same person has a different subject in each app.
            let sub = B64.encode(&Sha256::digest(format!("{oid}/{client_id}").as_bytes())[..24]);
            let mut id_claims = json!({
                "aud": client_id,
                "iss": issuer,
                "iat": now,
                "nbf": now,
                "exp": now + TOKEN_LIFETIME_SECS,
                "name": name,
                "oid": oid,
                "preferred_username": upn,
                "email": upn,
                "rh": "0.emulated.",
                "sub": sub,
                "tid": g.tenant,
                "uti": uuid::Uuid::new_v4().simple().to_string(),
                "ver": "2.0",
                "groups": groups,
            });
            if let Some(nonce) = &g.nonce {
                id_claims["nonce"] = json!(nonce);
            }
            let access_claims = json!({
                "aud": "00000003-0000-0000-c000-000000000000",
                "iss": format!("https://sts.windows.net/{}/", g.tenant),
                "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_SECS,
                "oid": oid, "upn": upn, "name": name, "tid": g.tenant,
                "scp": "openid profile email", "ver": "1.0",
            });
            let d = &emu.inner.entra;
            Json(json!({
                "token_type": "Bearer",
                "scope": g.scope,
                "expires_in": TOKEN_LIFETIME_SECS - 1,
                "ext_expires_in": TOKEN_LIFETIME_SECS - 1,
                "access_token": d.sign(&access_claims),
                "id_token": d.sign(&id_claims),
            }))
            .into_response()
        }
        "client_credentials" => {
            let scope = t.scope.clone().unwrap_or_default();
            let Some(resource) = scope.strip_suffix("/.default").filter(|r| !r.is_empty()) else {
                return token_error(StatusCode::BAD_REQUEST, "invalid_scope", 1002012, &format!("The provided value for scope {scope} is not valid. Client credential flows must have a scope value with /.default suffixed to the resource identifier (application ID URI)."));
            };
            let claims = json!({
                "aud": resource,
                "iss": format!("https://sts.windows.net/{tenant}/"),
                "iat": now, "nbf": now, "exp": now + TOKEN_LIFETIME_SECS,
                "appid": client_id, "tid": tenant, "idtyp": "app", "ver": "1.0",
            });
            Json(json!({
                "token_type": "Bearer",
                "expires_in": TOKEN_LIFETIME_SECS - 1,
                "ext_expires_in": TOKEN_LIFETIME_SECS - 1,
                "access_token": emu.inner.entra.sign(&claims),
            }))
            .into_response()
        }
        other => token_error(
            StatusCode::BAD_REQUEST,
            "unsupported_grant_type",
            70003,
            &format!("The app requested an unsupported grant type '{other}'."),
        ),
    }
}

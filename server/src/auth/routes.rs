//! Sign-in and sign-out (plain form posts, so they work before any script loads), who am I, and the
//! admin API for users and tokens, and the audit log.

use super::{audit, entra, SESSION_CSRF, SESSION_SINCE, SESSION_USER};
use crate::api::{ApiError, JsonBody};
use crate::AppState;
use app::auth::{
    AuditFilter, AuditList, NewToken, NewUser, RequestUser, Role, TokenView, UserView,
};
use app::error::AppError;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::{IntoResponse, Redirect, Response};
use axum::routing::{get, patch, post};
use axum::{Extension, Form, Json, Router};
use serde::Deserialize;
use std::net::SocketAddr;
use tower_sessions::Session;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/signin", post(sign_in))
        .route("/signout", post(sign_out))
        .route("/signin/entra", get(entra_start))
        .route("/signin/entra/callback", get(entra_callback))
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/users/{name}", patch(update_user))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/audit", get(audit_log))
        .route("/api/v1/settings", get(settings))
}

#[derive(Deserialize)]
struct SignIn {
    name: String,
    password: String,
    #[serde(default)]
    next: String,
}

/// Only a path on this site: never an open redirect.
fn local(next: &str) -> &str {
    if next.starts_with('/') && !next.starts_with("//") && !next.starts_with("/\\") {
        next
    } else {
        "/"
    }
}

fn back_to_sign_in(error: &str, next: &str) -> Response {
    let q = url::form_urlencoded::Serializer::new(String::new())
        .append_pair("error", error)
        .append_pair("next", next)
        .finish();
    Redirect::to(&format!("/signin?{q}")).into_response()
}

async fn sign_in(
    State(s): State<AppState>,
    session: Session,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Form(form): Form<SignIn>,
) -> Response {
    let next = local(&form.next).to_string();
    // A sign-in posted from another site (login CSRF) is refused.
    if !super::middleware::same_origin(&headers) {
        return (
            StatusCode::FORBIDDEN,
            "Sign in from the console's own sign-in page.",
        )
            .into_response();
    }
    let name = form.name.trim().to_ascii_lowercase();
    let keys = vec![format!("account:{name}"), format!("addr:{}", addr.ip())];
    let ip = addr.ip();
    let record = |outcome, status| record_sign_in(&s.db, &name, ip, "password", outcome, status);
    if let Some(wait) = s.auth.throttle.check(&keys) {
        record("denied", StatusCode::TOO_MANY_REQUESTS).await;
        return back_to_sign_in(
            &format!(
                "Too many attempts; wait {} s and try again.",
                wait.as_secs().max(1)
            ),
            &next,
        );
    }
    let user = match super::check_password(&s.db, &name, &form.password).await {
        Ok(u) => u,
        Err(_) => return back_to_sign_in("Sign-in is unavailable; try again shortly.", &next),
    };
    let Some((name, _display, _role)) = user else {
        s.auth.throttle.failed(&keys);
        record("failed", StatusCode::UNAUTHORIZED).await;
        return back_to_sign_in("Wrong name or password.", &next);
    };
    s.auth.throttle.succeeded(&keys[0]);
    if start_session(&session, &name).await.is_err() {
        return back_to_sign_in("Sign-in is unavailable; try again shortly.", &next);
    }
    record("ok", StatusCode::SEE_OTHER).await;
    Redirect::to(&next).into_response()
}

/// A signed-in session for `name`. A new session id: an id planted before (session fixation) is
/// worthless after it.
async fn start_session(
    session: &Session,
    name: &str,
) -> Result<(), tower_sessions::session::Error> {
    session.cycle_id().await?;
    session.insert(SESSION_USER, name).await?;
    session.insert(SESSION_CSRF, super::random_hex()).await?;
    session
        .insert(SESSION_SINCE, chrono::Utc::now().timestamp_millis())
        .await
}

/// A sign-in attempt in the audit log, with its real outcome.
async fn record_sign_in(
    db: &sqlx::PgPool,
    name: &str,
    address: std::net::IpAddr,
    method: &str,
    outcome: &'static str,
    status: StatusCode,
) {
    audit::record(
        db,
        audit::Record {
            actor: name,
            actor_kind: "anonymous",
            role: None,
            action: "signin",
            target: name,
            parameters: serde_json::json!({ "method": method }),
            outcome,
            status: status.as_u16(),
            reason: None,
            run_id: None,
            address: Some(address.to_string()),
        },
    )
    .await
}

#[derive(Deserialize)]
struct EntraStart {
    #[serde(default)]
    next: String,
}

/// The cookie binding a sign-in under way to this browser (`Lax`: it must come back with the redirect
/// from Entra's domain, which a `Strict` cookie does not).
fn flow_cookie(value: &str, secure: bool, max_age: std::time::Duration) -> String {
    format!(
        "{}={value}; Path=/signin/entra; HttpOnly; SameSite=Lax; Max-Age={}{}",
        entra::FLOW_COOKIE,
        max_age.as_secs(),
        if secure { "; Secure" } else { "" }
    )
}

fn entra_not_configured() -> Response {
    (
        StatusCode::NOT_FOUND,
        "Entra ID sign-in is not configured on this console (MLOPS_OIDC_ISSUER).",
    )
        .into_response()
}

/// `GET /signin/entra`: off to Entra ID's authorization endpoint.
async fn entra_start(State(s): State<AppState>, Query(q): Query<EntraStart>) -> Response {
    let Some(oidc) = s.auth.oidc.as_ref() else {
        return entra_not_configured();
    };
    let next = local(&q.next);
    match oidc.start(&s.db, next).await {
        Ok(started) => (
            [(
                header::SET_COOKIE,
                flow_cookie(&started.state, s.auth.rules.secure, entra::FLOW_TTL),
            )],
            Redirect::to(&started.authorize_url),
        )
            .into_response(),
        Err(e) => back_to_sign_in(&e.to_string(), next),
    }
}

#[derive(Deserialize)]
struct EntraCallback {
    #[serde(default)]
    code: String,
    #[serde(default)]
    state: String,
    #[serde(default)]
    error: Option<String>,
    #[serde(default)]
    error_description: Option<String>,
}

/// `GET /signin/entra/callback`: back from Entra ID with a code (or an error).
async fn entra_callback(
    State(s): State<AppState>,
    session: Session,
    ConnectInfo(addr): ConnectInfo<SocketAddr>,
    headers: HeaderMap,
    Query(q): Query<EntraCallback>,
) -> Response {
    let Some(oidc) = s.auth.oidc.as_ref() else {
        return entra_not_configured();
    };
    let clear = flow_cookie("", s.auth.rules.secure, std::time::Duration::ZERO);
    let fail = |message: &str| {
        let mut r = back_to_sign_in(message, "/");
        if let Ok(v) = header::HeaderValue::from_str(&clear) {
            r.headers_mut().append(header::SET_COOKIE, v);
        }
        r
    };
    let ip = addr.ip();
    // The state must be the one this browser started with: a code from someone else's sign-in
    // (login CSRF) finds no cookie to match.
    let ours = headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .filter_map(|c| c.trim().split_once('='))
        .any(|(k, v)| k == entra::FLOW_COOKIE && !v.is_empty() && v == q.state);
    if !ours {
        record_sign_in(
            &s.db,
            "entra",
            ip,
            "entra",
            "denied",
            StatusCode::BAD_REQUEST,
        )
        .await;
        return fail(
            "This sign-in was not started in this browser, or it took too long; start again.",
        );
    }
    if let Some(error) = q.error.as_deref() {
        let why = q.error_description.as_deref().unwrap_or(error);
        record_sign_in(
            &s.db,
            "entra",
            ip,
            "entra",
            "failed",
            StatusCode::UNAUTHORIZED,
        )
        .await;
        return fail(&format!("Entra ID did not sign you in: {why}"));
    }
    let (who, signed) = match oidc.finish(&s.db, &q.state, &q.code).await {
        Ok((claims, next)) => {
            let signed = match oidc.role(&claims) {
                Ok(role) => entra::upsert_user(&s.db, &claims, role).await,
                Err(e) => Err(e),
            };
            (claims.account_name(), signed.map(|name| (name, next)))
        }
        Err(e) => ("entra".to_string(), Err(e)),
    };
    let (name, next) = match signed {
        Ok(v) => v,
        Err(e) => {
            let outcome = match e {
                entra::SignInError::Refused(_) => "denied",
                entra::SignInError::Unavailable(_) => "failed",
            };
            record_sign_in(&s.db, &who, ip, "entra", outcome, StatusCode::FORBIDDEN).await;
            return fail(&e.to_string());
        }
    };
    if start_session(&session, &name).await.is_err() {
        return fail("Sign-in is unavailable; try again shortly.");
    }
    record_sign_in(&s.db, &name, ip, "entra", "ok", StatusCode::OK).await;
    // A page of our own rather than a redirect: the browser then sends the `Strict` session cookie on
    // the next navigation, which it would not on a redirect chain that began on Entra's domain.
    let next = local(&next).to_string();
    let attr = next
        .replace('&', "&amp;")
        .replace('"', "&quot;")
        .replace('<', "&lt;");
    (
        [
            (header::SET_COOKIE, clear),
            (header::CACHE_CONTROL, "no-store".to_string()),
        ],
        axum::response::Html(format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><meta http-equiv=\"refresh\" content=\"0;url={attr}\"><title>Signed in</title></head><body><p>Signed in. <a href=\"{attr}\">Continue</a></p></body></html>"
        )),
    )
        .into_response()
}

async fn sign_out(session: Session) -> Response {
    // Deleted on the server: the cookie is worthless even if someone kept it.
    let _ = session.flush().await;
    Redirect::to("/signin").into_response()
}

/// `GET /api/v1/me`: who the request is from.
async fn me(user: Option<Extension<RequestUser>>) -> Result<Json<serde_json::Value>, ApiError> {
    let Extension(u) = user.ok_or(ApiError(AppError::Unauthorized("Sign in first.".into())))?;
    Ok(Json(
        serde_json::json!({"name": u.name, "display_name": u.display_name, "role": u.role}),
    ))
}

async fn users(State(s): State<AppState>) -> Result<Json<Vec<UserView>>, ApiError> {
    Ok(Json(super::list_users(&s.db).await?))
}

#[derive(Deserialize)]
pub struct AddUser {
    pub name: String,
    #[serde(default)]
    pub display_name: Option<String>,
    pub role: String,
    #[serde(default)]
    pub password: Option<String>,
}

fn role_of(s: &str) -> Result<Role, AppError> {
    Role::parse(s)
        .ok_or_else(|| AppError::Invalid(format!("role: '{s}' is not viewer, operator or admin")))
}

async fn add_user(
    State(s): State<AppState>,
    JsonBody(u): JsonBody<AddUser>,
) -> Result<Response, ApiError> {
    let role = role_of(&u.role)?;
    let new: NewUser = super::add_user(
        &s.db,
        &u.name,
        u.display_name.as_deref(),
        role,
        u.password.as_deref().filter(|p| !p.is_empty()),
    )
    .await?;
    Ok((StatusCode::CREATED, Json(new)).into_response())
}

#[derive(Deserialize)]
struct UpdateUser {
    #[serde(default)]
    role: Option<String>,
    #[serde(default)]
    disabled: Option<bool>,
}

async fn update_user(
    State(s): State<AppState>,
    Path(name): Path<String>,
    JsonBody(u): JsonBody<UpdateUser>,
) -> Result<Json<UserView>, ApiError> {
    let role = u.role.as_deref().map(role_of).transpose()?;
    Ok(Json(
        super::update_user(&s.db, &name, role, u.disabled).await?,
    ))
}

async fn tokens(State(s): State<AppState>) -> Result<Json<Vec<TokenView>>, ApiError> {
    Ok(Json(super::list_tokens(&s.db).await?))
}

#[derive(Deserialize)]
struct CreateToken {
    name: String,
    role: String,
    #[serde(default = "ninety")]
    days: i64,
}

fn ninety() -> i64 {
    90
}

async fn create_token(
    State(s): State<AppState>,
    user: Option<Extension<RequestUser>>,
    JsonBody(t): JsonBody<CreateToken>,
) -> Result<Response, ApiError> {
    let role = role_of(&t.role)?;
    let by = user.map(|Extension(u)| u.name).unwrap_or_else(super::actor);
    let new: NewToken = super::create_token(&s.db, &t.name, role, &by, t.days).await?;
    Ok((StatusCode::CREATED, Json(new)).into_response())
}

async fn revoke_token(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> Result<StatusCode, ApiError> {
    super::revoke_token(&s.db, &id).await?;
    s.auth.tokens.forget();
    Ok(StatusCode::NO_CONTENT)
}

async fn audit_log(
    State(s): State<AppState>,
    Query(f): Query<AuditFilter>,
) -> Result<Json<AuditList>, ApiError> {
    Ok(Json(audit::list(&s.db, &f).await?))
}

/// `GET /api/v1/settings`: the configuration in effect, no secret values.
async fn settings(State(s): State<AppState>) -> Json<Vec<app::auth::SettingsGroup>> {
    Json(s.settings.as_ref().clone())
}

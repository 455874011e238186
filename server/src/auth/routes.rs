//! Sign-in and sign-out (plain form posts, so they work before any script loads), who am I, and the
//! admin API for users and tokens, and the audit log.

use super::{audit, SESSION_CSRF, SESSION_SINCE, SESSION_USER};
use crate::api::{ApiError, JsonBody};
use crate::AppState;
use app::auth::{
    AuditFilter, AuditList, NewToken, NewUser, RequestUser, Role, TokenView, UserView,
};
use app::error::AppError;
use axum::extract::{ConnectInfo, Path, Query, State};
use axum::http::{HeaderMap, StatusCode};
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
        .route("/api/v1/me", get(me))
        .route("/api/v1/users", get(users).post(add_user))
        .route("/api/v1/users/{name}", patch(update_user))
        .route("/api/v1/tokens", get(tokens).post(create_token))
        .route("/api/v1/tokens/{id}", axum::routing::delete(revoke_token))
        .route("/api/v1/audit", get(audit_log))
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
    let record = |outcome: &'static str, status: StatusCode| {
        let (db, name) = (s.db.clone(), name.clone());
        async move {
            audit::record(
                &db,
                audit::Record {
                    actor: &name,
                    actor_kind: "anonymous",
                    role: None,
                    action: "signin",
                    target: &name,
                    parameters: serde_json::json!({}),
                    outcome,
                    status: status.as_u16(),
                    reason: None,
                    run_id: None,
                    address: Some(addr.ip().to_string()),
                },
            )
            .await
        }
    };
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
    // A new session id at sign-in: an id planted before (session fixation) is worthless after it.
    let started = async {
        session.cycle_id().await?;
        session.insert(SESSION_USER, &name).await?;
        session.insert(SESSION_CSRF, super::random_hex()).await?;
        session
            .insert(SESSION_SINCE, chrono::Utc::now().timestamp_millis())
            .await
    };
    if started.await.is_err() {
        return back_to_sign_in("Sign-in is unavailable; try again shortly.", &next);
    }
    record("ok", StatusCode::SEE_OTHER).await;
    Redirect::to(&next).into_response()
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

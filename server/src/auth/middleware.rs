//! The gate every request passes: who is asking (bearer API token or browser session), whether the
//! route lets them (default deny), the CSRF check for browser mutations (same origin and the session's
//! token), the actor the request acts for, and an audit entry for every mutation — refused ones too.

use super::policy::{self, Access};
use super::{audit, HttpStatus, Kind, Principal, ACTOR, SESSION_CSRF, SESSION_SINCE, SESSION_USER};
use crate::AppState;
use app::auth::{RequestUser, Role};
use app::error::AppError;
use axum::body::{to_bytes, Body, Bytes};
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{header, HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Redirect, Response};
use serde_json::{json, Value};
use std::net::SocketAddr;
use tower_sessions::Session;

const BODY_LIMIT: usize = 4 * 1024 * 1024;

/// Is this call a server function (its errors are the app's `AppError` JSON)?
fn server_fn(path: &str) -> bool {
    path.strip_prefix("/api/").is_some_and(|e| !e.contains('/'))
}

fn wants_page(method: &Method, path: &str, headers: &HeaderMap) -> bool {
    method == Method::GET
        && !path.starts_with("/api/")
        && headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_none_or(|a| a.contains("text/html") || a.contains("*/*"))
}

/// A refusal in the shape the caller understands: the app's error for server functions, the API's
/// envelope for JSON routes, a small page for browsers.
fn refuse(
    status: StatusCode,
    error: AppError,
    method: &Method,
    path: &str,
    headers: &HeaderMap,
) -> Response {
    if server_fn(path) {
        return (
            status,
            [(header::CONTENT_TYPE, "application/json")],
            serde_json::to_string(&error).unwrap_or_default(),
        )
            .into_response();
    }
    if wants_page(method, path, headers) {
        let body = format!(
            "<!DOCTYPE html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><link rel=\"stylesheet\" href=\"/pkg/mlops_console.css\"></head><body><main class=\"page\"><section class=\"card error\" role=\"alert\"><h1>{}</h1><p>{}</p><p><a href=\"/\">Back to the overview</a> · <a href=\"/signin\">Sign in as someone else</a></p></section></main></body></html>",
            status.canonical_reason().unwrap_or("Refused"),
            status.canonical_reason().unwrap_or("Refused"),
            html_escape(&error.to_string())
        );
        return (
            status,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            body,
        )
            .into_response();
    }
    let mut r = (
        status,
        axum::Json(json!({"error": {"code": error.code(), "message": error.to_string()}})),
    )
        .into_response();
    if status == StatusCode::UNAUTHORIZED {
        r.headers_mut().insert(
            header::WWW_AUTHENTICATE,
            header::HeaderValue::from_static("Bearer realm=\"mlops-console\""),
        );
    }
    r
}

fn html_escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

fn bearer(headers: &HeaderMap) -> Option<&str> {
    headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| {
            v.strip_prefix("Bearer ")
                .or_else(|| v.strip_prefix("bearer "))
        })
        .map(str::trim)
}

/// Who is asking. `Err` answers a bad bearer token at once.
async fn identify(
    s: &AppState,
    headers: &HeaderMap,
    session: &Session,
) -> Result<Principal, AppError> {
    if let Some(token) = bearer(headers) {
        return match s.auth.tokens.principal(&s.db, token).await? {
            Some((name, role)) => Ok(Principal {
                display_name: name.clone(),
                name,
                role: Some(role),
                kind: Kind::Token,
                csrf: None,
            }),
            None => Err(AppError::Unauthorized(
                "The API token is invalid, expired or revoked.".into(),
            )),
        };
    }
    let Ok(Some(name)) = session.get::<String>(SESSION_USER).await else {
        return Ok(Principal::anonymous());
    };
    let since = session
        .get::<i64>(SESSION_SINCE)
        .await
        .ok()
        .flatten()
        .unwrap_or(0);
    let expired =
        chrono::Utc::now().timestamp_millis() - since > s.auth.rules.absolute.as_millis() as i64;
    let user = if expired {
        None
    } else {
        super::session_user(&s.db, &name).await?
    };
    let Some((display_name, role)) = user else {
        // Expired, disabled or deleted: the session ends here, on the server too.
        let _ = session.flush().await;
        return Ok(Principal::anonymous());
    };
    let csrf = session.get::<String>(SESSION_CSRF).await.ok().flatten();
    Ok(Principal {
        name,
        display_name,
        role: Some(role),
        kind: Kind::User,
        csrf,
    })
}

/// Same origin: the `Origin` (or else `Referer`) names this host.
pub(crate) fn same_origin(headers: &HeaderMap) -> bool {
    let Some(host) = headers.get(header::HOST).and_then(|v| v.to_str().ok()) else {
        return false;
    };
    let from = headers
        .get(header::ORIGIN)
        .or_else(|| headers.get(header::REFERER))
        .and_then(|v| v.to_str().ok())
        .and_then(|v| url::Url::parse(v).ok());
    from.is_some_and(|u| {
        let authority = match u.port() {
            Some(p) => format!("{}:{p}", u.host_str().unwrap_or_default()),
            None => u.host_str().unwrap_or_default().to_string(),
        };
        authority.eq_ignore_ascii_case(host)
    })
}

/// The request's fields: a JSON object, or the pairs of a form.
fn fields(headers: &HeaderMap, body: &Bytes) -> Value {
    let ct = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default();
    if ct.starts_with("application/x-www-form-urlencoded") {
        let mut m = serde_json::Map::new();
        for (k, v) in url::form_urlencoded::parse(body) {
            m.insert(k.into_owned(), Value::String(v.into_owned()));
        }
        Value::Object(m)
    } else {
        serde_json::from_slice(body).unwrap_or(Value::Null)
    }
}

fn reason_of(f: &Value) -> Option<String> {
    ["reason", "reason_text", "comment"]
        .iter()
        .find_map(|k| f.get(*k).and_then(Value::as_str))
        .map(str::to_string)
        .filter(|s| !s.trim().is_empty())
}

/// What the audit log calls a request: the server function or the API route pattern.
fn action_of(method: &Method, path: &str) -> String {
    if let Some(e) = path.strip_prefix("/api/").filter(|e| !e.contains('/')) {
        return format!("fn:{e}");
    }
    policy::ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && policy::fits(p, path))
        .map(|(m, p, _)| format!("{m} {p}"))
        .unwrap_or_else(|| format!("{method} {path}"))
}

fn target_of(path: &str, f: &Value) -> String {
    if server_fn(path) {
        for k in ["endpoint", "deployment", "id", "name", "training_run"] {
            if let Some(v) = f.get(k).and_then(Value::as_str).filter(|v| !v.is_empty()) {
                return v.to_string();
            }
        }
        return String::new();
    }
    path.trim_start_matches("/api/v1/").to_string()
}

/// The run a mutation started: `run_id` in a JSON answer, or a server function's run id.
fn run_of(body: &Bytes) -> Option<uuid::Uuid> {
    match serde_json::from_slice::<Value>(body).ok()? {
        Value::String(s) => uuid::Uuid::parse_str(&s).ok(),
        v => v
            .get("run_id")
            .and_then(Value::as_str)
            .and_then(|s| uuid::Uuid::parse_str(s).ok()),
    }
}

pub async fn guard(
    State(s): State<AppState>,
    session: Session,
    request: Request,
    next: Next,
) -> Response {
    let (mut parts, body) = request.into_parts();
    let (method, path) = (parts.method.clone(), parts.uri.path().to_string());
    let address = parts
        .extensions
        .get::<ConnectInfo<SocketAddr>>()
        .map(|c| c.0.ip().to_string());
    let principal = match identify(&s, &parts.headers, &session).await {
        Ok(p) => p,
        Err(e) => return refuse(e.http_status(), e, &method, &path, &parts.headers),
    };
    let mutation = policy::is_mutation(&method, &path);
    let headers = parts.headers.clone();
    // Mutations are read whole (for the CSRF token and the audit log); everything else streams through.
    let (body, original) = if mutation {
        match to_bytes(body, BODY_LIMIT).await {
            Ok(b) => (b, None),
            Err(_) => {
                return refuse(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    AppError::BadRequest("The request body is too large.".into()),
                    &method,
                    &path,
                    &headers,
                )
            }
        }
    } else {
        (Bytes::new(), Some(body))
    };
    let audit = |status: StatusCode, outcome: &'static str, run: Option<uuid::Uuid>| {
        let f = fields(&headers, &body);
        let action = action_of(&method, &path);
        let target = target_of(&path, &f);
        let (db, principal, address) = (s.db.clone(), principal.clone(), address.clone());
        async move {
            audit::record(
                &db,
                audit::Record {
                    actor: &principal.name,
                    actor_kind: principal.kind.as_str(),
                    role: principal.role.map(Role::as_str),
                    action: &action,
                    target: &target,
                    reason: reason_of(&f),
                    parameters: f,
                    outcome,
                    status: status.as_u16(),
                    run_id: run,
                    address,
                },
            )
            .await
        }
    };
    let denied = match policy::access(&method, &path) {
        None => Some((
            StatusCode::NOT_FOUND,
            AppError::NotFound("There is nothing at this address.".into()),
        )),
        Some(Access::Public) => None,
        Some(Access::Role(need)) => match principal.role {
            None => {
                if wants_page(&method, &path, &headers) {
                    let next =
                        url::form_urlencoded::byte_serialize(parts.uri.to_string().as_bytes())
                            .collect::<String>();
                    return Redirect::to(&format!("/signin?next={next}")).into_response();
                }
                Some((
                    StatusCode::UNAUTHORIZED,
                    AppError::Unauthorized("Sign in first (or send an API token).".into()),
                ))
            }
            Some(have) if have < need => Some((
                StatusCode::FORBIDDEN,
                AppError::Forbidden(format!(
                    "This needs the {} role; you are {}.",
                    need.as_str(),
                    have.as_str()
                )),
            )),
            Some(_) => None,
        },
    };
    let denied = denied.or_else(|| {
        (mutation && principal.kind == Kind::User && !csrf_ok(&headers, &body, principal.csrf.as_deref())).then(|| {
            (StatusCode::FORBIDDEN, AppError::Forbidden("The request did not come from this console's own pages (CSRF check failed); reload the page and try again.".into()))
        })
    });
    if let Some((status, error)) = denied {
        if mutation {
            audit(status, "denied", None).await;
        }
        return refuse(status, error, &method, &path, &headers);
    }
    if let Some(role) = principal.role {
        parts.extensions.insert(RequestUser {
            name: principal.name.clone(),
            display_name: principal.display_name.clone(),
            role,
            csrf: principal.csrf.clone(),
        });
    }
    let request = Request::from_parts(parts, original.unwrap_or_else(|| Body::from(body.clone())));
    let mut response = ACTOR.scope(principal.name.clone(), next.run(request)).await;
    if server_fn(&path) && response.status() == StatusCode::INTERNAL_SERVER_ERROR {
        response = with_error_status(response).await;
    }
    if !mutation {
        return response;
    }
    let (resp_parts, resp_body) = response.into_parts();
    let bytes = to_bytes(resp_body, BODY_LIMIT).await.unwrap_or_default();
    let status = resp_parts.status;
    let outcome = if status.is_success() || status.is_redirection() {
        "ok"
    } else if status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN {
        "denied"
    } else {
        "failed"
    };
    audit(status, outcome, run_of(&bytes)).await;
    Response::from_parts(resp_parts, Body::from(bytes))
}

/// Server functions answer every error with 500; bad input, conflicts and refusals get their own
/// status (400, 404, 409, 422, …) from the error they carry, so no client mistakes them for a crash.
async fn with_error_status(response: Response) -> Response {
    let (mut parts, body) = response.into_parts();
    let bytes = to_bytes(body, BODY_LIMIT).await.unwrap_or_default();
    if let Ok(error) = serde_json::from_slice::<AppError>(&bytes) {
        parts.status = error.http_status();
    }
    Response::from_parts(parts, Body::from(bytes))
}

fn csrf_ok(headers: &HeaderMap, body: &Bytes, expected: Option<&str>) -> bool {
    let Some(expected) = expected else {
        return false;
    };
    if !same_origin(headers) {
        return false;
    }
    let sent = headers
        .get("x-csrf-token")
        .and_then(|v| v.to_str().ok())
        .map(str::to_string)
        .or_else(|| {
            fields(headers, body)
                .get("csrf_token")
                .and_then(Value::as_str)
                .map(str::to_string)
        });
    sent.is_some_and(|t| constant_eq(t.as_bytes(), expected.as_bytes()))
}

fn constant_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

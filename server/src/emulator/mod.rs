//! An emulator of the Azure REST APIs mlops-console uses, like Azurite or LocalStack: real paths at the
//! root, any api-version, Azure's status codes, error envelopes, paging and throttling headers, seeded with
//! the estate and kept in Postgres. In-process by default; standalone with `mlops-console emulator`.

pub mod acr;
pub mod alerts;
mod arm;
pub mod automation;
pub mod cost;
mod dataplane;
pub mod entra;
pub mod faults;
pub mod graph;
pub mod k8s;
pub mod kql;
pub mod ml;
pub mod online;
pub mod query;
pub mod seed;
pub mod store;
pub mod telemetry;

use app::model::Estate;
use axum::body::Body;
use axum::extract::{Path, Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{delete, get, post};
use axum::{Json, Router};
use faults::{FaultSpec, Faults};
use serde_json::json;
use sqlx::PgPool;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;

use crate::azure::wire::ErrorResponse;

/// How the emulator behaves where Azure takes its time.
#[derive(Clone, Debug)]
pub struct Options {
    /// Each stage of a training job (NotStarted, Queued, Starting, Running ×3, Finalizing) lasts this long.
    pub job_step: std::time::Duration,
}

impl Default for Options {
    fn default() -> Self {
        Options {
            job_step: std::time::Duration::from_secs(3),
        }
    }
}

#[derive(Clone)]
pub struct Emulator {
    inner: Arc<Inner>,
}

struct Inner {
    store: store::Store,
    estate: Estate,
    faults: Faults,
    /// Cost Management's query-unit budget.
    qpu: cost::Qpu,
    /// Items per page of ARM lists; smaller than Azure's so paging is always exercised.
    page_size: i64,
    /// How long each stage of a training job takes.
    job_step: std::time::Duration,
    /// A crude read budget for `x-ms-ratelimit-remaining-subscription-reads`.
    reads: AtomicI64,
    /// Entra ID: the tenant's signing key and pending authorization codes.
    entra: entra::Directory,
}

impl Emulator {
    /// The emulator over `db`, seeding the estate on first use.
    pub async fn start(
        db: PgPool,
        estate: Estate,
        options: Options,
    ) -> Result<Emulator, sqlx::Error> {
        let store = store::Store::new(db);
        // The seed grows with the emulator: each generation adds what it brings, once.
        let generation = format!("{}#{}", estate.name, seed::GENERATION);
        if store.seed_once(&generation, seed::objects(&estate)).await? {
            tracing::info!(estate = %estate.name, "emulator seeded");
        }
        Ok(Emulator {
            inner: Arc::new(Inner {
                store,
                estate,
                faults: Faults::default(),
                qpu: cost::Qpu::default(),
                page_size: 10,
                job_step: options.job_step,
                reads: AtomicI64::new(12_000),
                entra: entra::Directory::new(),
            }),
        })
    }

    pub fn router(&self) -> Router {
        Router::new()
            .route(
                "/_emulator/faults",
                get(list_faults).post(add_fault).delete(clear_faults),
            )
            .route("/_emulator/faults/{id}", delete(remove_fault))
            .route(
                "/_emulator/health",
                get(|| async { Json(json!({"status": "ok"})) }),
            )
            .route("/keyvault/{vault}/secrets", get(dataplane::list_secrets))
            .route(
                "/keyvault/{vault}/secrets/{name}",
                axum::routing::put(dataplane::set_secret),
            )
            .route(
                "/acr/{registry}/oauth2/exchange",
                post(dataplane::acr_exchange),
            )
            .route("/acr/{registry}/oauth2/token", post(dataplane::acr_token))
            .route(
                "/acr/{registry}/acr/v1/_catalog",
                get(dataplane::acr_catalog),
            )
            .route("/acr/{registry}/acr/v1/{*rest}", get(dataplane::acr_tags))
            .route("/_emulator/acr-logs/{*path}", get(acr::log))
            .route(
                "/v1/{collection}/{id}/query",
                get(query::query).post(query::query),
            )
            .route("/mlflow/v2.0/{*rest}", get(ml::mlflow))
            .route(
                "/{tenant}/v2.0/.well-known/openid-configuration",
                get(entra::discovery),
            )
            .route(
                "/{tenant}/oauth2/v2.0/authorize",
                get(entra::authorize_page).post(entra::authorize),
            )
            .route("/{tenant}/oauth2/v2.0/token", post(entra::token))
            .route("/{tenant}/discovery/v2.0/keys", get(entra::keys))
            .route(
                "/aks/{cluster}/apis/apps/v1/namespaces/{ns}/deployments/{*rest}",
                get(k8s::deployments)
                    .put(k8s::deployments)
                    .patch(k8s::deployments),
            )
            .fallback(arm::dispatch)
            .layer(middleware::from_fn_with_state(self.clone(), envelope))
            .with_state(self.clone())
    }
}

/// An ARM-style error response.
pub(crate) fn arm_error(status: StatusCode, code: &str, message: impl Into<String>) -> Response {
    (status, Json(ErrorResponse::new(code, message))).into_response()
}

/// The base URL of the emulator as the caller reached it, for absolute `nextLink`s.
pub(crate) fn base_url(headers: &HeaderMap) -> String {
    let host = headers
        .get("host")
        .and_then(|h| h.to_str().ok())
        .unwrap_or("127.0.0.1");
    format!("http://{host}")
}

pub(crate) fn has_bearer(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|v| v.len() > 7 && v[..7].eq_ignore_ascii_case("bearer "))
}

/// Around every request: injected faults first, then Azure's request-id and rate-limit headers.
async fn envelope(State(emu): State<Emulator>, request: Request, next: Next) -> Response {
    let path = request.uri().path().to_string();
    let method = request.method().to_string();
    if !path.starts_with("/_emulator") {
        let effect = emu.inner.faults.check(&method, &path);
        if let Some(latency) = effect.latency {
            tokio::time::sleep(latency).await;
        }
        if let Some((status, retry_after)) = effect.status {
            return injected(status, retry_after);
        }
    }
    let mut response = next.run(request).await;
    let h = response.headers_mut();
    let id = uuid::Uuid::new_v4().to_string();
    if let Ok(v) = HeaderValue::from_str(&id) {
        h.insert("x-ms-request-id", v.clone());
        h.insert("x-ms-correlation-request-id", v);
    }
    if method == "GET" || path.ends_with("/resources") {
        let left = emu.inner.reads.fetch_sub(1, Ordering::Relaxed).max(0);
        if left == 0 {
            emu.inner.reads.store(12_000, Ordering::Relaxed);
        }
        h.insert(
            "x-ms-ratelimit-remaining-subscription-reads",
            HeaderValue::from(left),
        );
    }
    response
}

fn injected(status: u16, retry_after: Option<u64>) -> Response {
    let status = StatusCode::from_u16(status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    let (code, message) = match status.as_u16() {
        429 => ("TooManyRequests", "The request is being throttled as the limit has been reached for operation type - Read. For more information, see https://aka.ms/srpthrottlinglimits"),
        503 => ("ServiceUnavailable", "The service is temporarily unavailable. Please retry the request."),
        500 => ("InternalServerError", "Encountered internal server error. Diagnostic information: timestamp, activity id."),
        _ => ("InjectedFault", "A fault injected through /_emulator/faults."),
    };
    let mut response = arm_error(status, code, message);
    if let Some(after) = retry_after {
        response
            .headers_mut()
            .insert("retry-after", HeaderValue::from(after));
    }
    if status == StatusCode::TOO_MANY_REQUESTS {
        response.headers_mut().insert(
            "x-ms-ratelimit-remaining-subscription-reads",
            HeaderValue::from(0),
        );
    }
    response
}

async fn list_faults(State(emu): State<Emulator>) -> Json<serde_json::Value> {
    Json(json!({ "value": emu.inner.faults.list() }))
}

async fn add_fault(State(emu): State<Emulator>, body: axum::body::Bytes) -> Response {
    let spec: FaultSpec = match serde_json::from_slice(&body) {
        Ok(spec) => spec,
        Err(e) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                format!("The fault is not valid JSON of the expected shape: {e}"),
            )
        }
    };
    if let Err(reason) = spec.validate() {
        return arm_error(StatusCode::BAD_REQUEST, "InvalidFault", reason);
    }
    (StatusCode::CREATED, Json(emu.inner.faults.add(spec))).into_response()
}

async fn clear_faults(State(emu): State<Emulator>) -> StatusCode {
    emu.inner.faults.clear();
    StatusCode::NO_CONTENT
}

async fn remove_fault(State(emu): State<Emulator>, Path(id): Path<String>) -> Response {
    match id.parse::<u64>() {
        Ok(id) if emu.inner.faults.remove(id) => StatusCode::NO_CONTENT.into_response(),
        _ => arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("There is no fault '{id}'."),
        ),
    }
}

/// Serves the emulator alone on `listener` until `shutdown` resolves.
pub async fn serve(
    emulator: Emulator,
    listener: tokio::net::TcpListener,
    shutdown: impl std::future::Future<Output = ()> + Send + 'static,
) -> std::io::Result<()> {
    use axum::serve::ListenerExt;
    axum::serve(listener.tap_io(crate::no_delay), emulator.router())
        .with_graceful_shutdown(shutdown)
        .await
}

pub(crate) type Resp = Response<Body>;

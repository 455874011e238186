//! The JSON API (`/api/v1`) and the health probes. Errors use an ARM-like envelope:
//! `{"error":{"code","message"}}` with the matching status; internals stay in the log.

use crate::AppState;
use app::error::AppError;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use serde_json::json;

/// The REST error: an [`AppError`] as JSON with its status.
pub struct ApiError(pub AppError);

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let status =
            StatusCode::from_u16(self.0.status()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        (
            status,
            Json(json!({"error": {"code": self.0.code(), "message": self.0.to_string()}})),
        )
            .into_response()
    }
}

impl From<AppError> for ApiError {
    fn from(e: AppError) -> Self {
        ApiError(e)
    }
}

type ApiResult<T> = Result<Json<T>, ApiError>;

pub fn routes() -> Router<AppState> {
    Router::new()
        .route("/api/v1/estate", get(estate))
        .route("/api/v1/resources", get(resources))
        .route("/api/v1/resources/{name}", get(resource))
        .route("/api/v1/inventory/refresh", post(refresh))
        .route("/api/v1/jobs/training", post(submit_training))
        .route("/api/v1/models", post(register_model))
        .route(
            "/api/v1/endpoints/{name}/deployments",
            post(create_deployment),
        )
        .route(
            "/api/v1/endpoints/{name}/traffic",
            axum::routing::put(set_traffic),
        )
        .route(
            "/api/v1/endpoints/{name}/deployments/{deployment}",
            axum::routing::delete(delete_deployment),
        )
        .route("/api/v1/endpoints/{name}/rollback", post(rollback))
        .route("/api/v1/aks/deployments/{name}/scale", post(scale_aks))
        .route("/api/v1/aks/deployments/{name}/rollout", post(rollout_aks))
        .route("/api/v1/images/build", post(build_image))
        .route("/api/v1/pipelines/train-deploy", post(train_deploy))
        .route("/api/v1/runbooks/{name}/start", post(start_runbook))
        .route("/api/v1/queries", post(run_query))
        .route("/api/v1/queries/saved", get(saved_queries).post(save_query))
        .route("/api/v1/queries/recent", get(recent_queries))
        .route("/api/v1/queries/csv", get(query_csv))
        .route("/api/v1/endpoints/{name}/health", get(endpoint_health))
        .route("/api/v1/cost", get(get_cost))
        .route("/api/v1/cost/refresh", post(refresh_cost))
        .route("/api/v1/alerts", get(list_alerts))
        .route("/api/v1/alerts/{id}/state", post(alert_state))
        .route("/api/v1/runs", get(list_runs))
        .route("/api/v1/runs/{id}", get(get_run))
        .route(
            "/api/v1/{*rest}",
            get(unknown).post(unknown).put(unknown).delete(unknown),
        )
        .route("/healthz", get(|| async { Json(json!({"status": "ok"})) }))
        .route("/readyz", get(readyz))
}

async fn estate(State(s): State<AppState>) -> Json<app::model::EstateInfo> {
    Json(s.inventory.info().clone())
}

async fn resources(State(s): State<AppState>) -> ApiResult<serde_json::Value> {
    let o = s.inventory.overview()?;
    Ok(Json(json!({
        "freshness": o.freshness,
        "resources": o.resources,
        "undeclared": o.undeclared,
        "dependencies": o.dependencies,
    })))
}

async fn resource(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<serde_json::Value> {
    let p = s.inventory.resource(&name)?;
    let mut body = serde_json::to_value(&p.resource).map_err(|_| ApiError(AppError::Internal))?;
    body["freshness"] =
        serde_json::to_value(&p.freshness).map_err(|_| ApiError(AppError::Internal))?;
    Ok(Json(body))
}

async fn refresh(State(s): State<AppState>) -> Response {
    let outcome = s.inventory.refresh().await;
    let status = if outcome.ok {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    (status, Json(outcome)).into_response()
}

/// A JSON body, with our error shape when it is not valid JSON of the expected form.
pub struct JsonBody<T>(pub T);

impl<S: Send + Sync, T: serde::de::DeserializeOwned> axum::extract::FromRequest<S> for JsonBody<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, Self::Rejection> {
        match Json::<T>::from_request(req, state).await {
            Ok(Json(v)) => Ok(JsonBody(v)),
            Err(rejection) => Err(ApiError(AppError::BadRequest(rejection.body_text()))),
        }
    }
}

/// The `Idempotency-Key` header, if any.
fn idempotency_key(headers: &axum::http::HeaderMap) -> Result<Option<String>, ApiError> {
    match headers.get("idempotency-key").map(|v| v.to_str()) {
        None => Ok(None),
        Some(Ok(k)) => Ok(Some(k.to_string())),
        Some(Err(_)) => Err(ApiError(AppError::BadRequest(
            "Idempotency-Key: visible ASCII only".into(),
        ))),
    }
}

/// 202 with the run (the first run, `created: false`, for a repeated idempotency key).
fn accepted((id, created): (uuid::Uuid, bool)) -> Response {
    let url = format!("/api/v1/runs/{id}");
    let mut response = (
        StatusCode::ACCEPTED,
        Json(json!({"run_id": id, "run_url": url, "created": created})),
    )
        .into_response();
    if let Ok(v) = axum::http::HeaderValue::from_str(&url) {
        response
            .headers_mut()
            .insert(axum::http::header::LOCATION, v);
    }
    response
}

/// `POST /api/v1/jobs/training`.
async fn submit_training(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    JsonBody(spec): JsonBody<app::model::TrainingJobSpec>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .submit_training(&spec, &crate::auth::actor(), key.as_deref())
            .await?,
    ))
}

/// `POST /api/v1/models`: register the next version from a succeeded training run.
async fn register_model(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    JsonBody(spec): JsonBody<app::model::ModelSpec>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs.register_model(&spec, key.as_deref()).await?,
    ))
}

/// `POST /api/v1/endpoints/{name}/deployments`: a deployment at 0% traffic.
async fn create_deployment(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(spec): JsonBody<app::model::DeploymentSpec>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .create_deployment(&name, &spec, key.as_deref())
            .await?,
    ))
}

/// `DELETE /api/v1/endpoints/{name}/deployments/{deployment}`: a retired deployment (no traffic).
async fn delete_deployment(
    State(s): State<AppState>,
    Path((name, deployment)): Path<(String, String)>,
    headers: axum::http::HeaderMap,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .delete_deployment(&name, &deployment, None, key.as_deref())
            .await?,
    ))
}

/// `PUT /api/v1/endpoints/{name}/traffic`.
async fn set_traffic(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(spec): JsonBody<app::model::TrafficSpec>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .set_traffic(
                &name,
                &spec,
                crate::runs::deploy::TRAFFIC_UPDATE,
                key.as_deref(),
            )
            .await?,
    ))
}

#[derive(serde::Deserialize, Default)]
struct RollbackBody {
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/endpoints/{name}/rollback`: restore the split before the last change.
async fn rollback(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    body: axum::body::Bytes,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let body: RollbackBody = if body.is_empty() {
        RollbackBody::default()
    } else {
        serde_json::from_slice(&body)
            .map_err(|e| ApiError(AppError::BadRequest(format!("body: {e}"))))?
    };
    Ok(accepted(
        s.runs.rollback(&name, body.reason, key.as_deref()).await?,
    ))
}

/// `POST /api/v1/pipelines/train-deploy`: the whole workflow as a parent run.
async fn train_deploy(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    JsonBody(spec): JsonBody<crate::runs::pipeline::PipelineSpec>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs.start_pipeline(&spec, key.as_deref()).await?,
    ))
}

#[derive(serde::Deserialize)]
struct ScaleBody {
    replicas: i64,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/aks/deployments/{name}/scale`: `{replicas, reason?}`.
async fn scale_aks(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<ScaleBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .scale_aks(&name, body.replicas, body.reason.as_deref(), key.as_deref())
            .await?,
    ))
}

#[derive(serde::Deserialize)]
struct RunbookBody {
    #[serde(default = "empty_object")]
    parameters: serde_json::Value,
    #[serde(default)]
    reason: Option<String>,
}

fn empty_object() -> serde_json::Value {
    json!({})
}

/// `POST /api/v1/runbooks/{name}/start`: `{parameters?, reason?}`.
#[derive(serde::Deserialize)]
struct RolloutBody {
    image: String,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/aks/deployments/{name}/rollout` with `{"image": "inference:v3"}`.
async fn rollout_aks(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<RolloutBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .rollout_aks(&name, &body.image, body.reason.as_deref(), key.as_deref())
            .await?,
    ))
}

#[derive(serde::Deserialize)]
struct BuildBody {
    image: String,
    #[serde(default)]
    build_args: std::collections::BTreeMap<String, String>,
    #[serde(default)]
    reason: Option<String>,
}

/// `POST /api/v1/images/build` with `{"image": "inference:v3", "build_args": {}}`.
async fn build_image(
    State(s): State<AppState>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<BuildBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .build_image(
                &body.image,
                &body.build_args,
                body.reason.as_deref(),
                key.as_deref(),
            )
            .await?,
    ))
}

async fn start_runbook(
    State(s): State<AppState>,
    Path(name): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(body): JsonBody<RunbookBody>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    Ok(accepted(
        s.runs
            .start_runbook(
                &name,
                &body.parameters,
                body.reason.as_deref(),
                key.as_deref(),
            )
            .await?,
    ))
}

async fn list_runs(
    State(s): State<AppState>,
    axum::extract::Query(filter): axum::extract::Query<app::model::RunFilter>,
) -> ApiResult<app::model::RunList> {
    Ok(Json(s.runs.list(&filter).await?))
}

async fn get_run(
    State(s): State<AppState>,
    Path(id): Path<String>,
) -> ApiResult<app::model::RunDetail> {
    Ok(Json(s.runs.detail(&id).await?))
}

/// The request's user and role (the middleware has checked there is one).
fn who(user: Option<axum::Extension<app::auth::RequestUser>>) -> (String, app::auth::Role) {
    user.map(|axum::Extension(u)| (u.name, u.role))
        .unwrap_or_else(|| (crate::auth::actor(), app::auth::Role::Viewer))
}

/// `POST /api/v1/queries`: `{source, query, timespan}` → the result table.
async fn run_query(
    State(s): State<AppState>,
    user: Option<axum::Extension<app::auth::RequestUser>>,
    JsonBody(req): JsonBody<app::query::QueryRequest>,
) -> ApiResult<app::query::QueryResult> {
    let (name, role) = who(user);
    Ok(Json(s.observe.run(&name, role, &req).await?))
}

/// `GET /api/v1/queries/csv?source=&timespan=&query=`: the result as a CSV download.
async fn query_csv(
    State(s): State<AppState>,
    user: Option<axum::Extension<app::auth::RequestUser>>,
    axum::extract::Query(req): axum::extract::Query<app::query::QueryRequest>,
) -> Result<Response, ApiError> {
    let (name, role) = who(user);
    let result = s.observe.run(&name, role, &req).await?;
    Ok((
        [
            (axum::http::header::CONTENT_TYPE, "text/csv; charset=utf-8"),
            (
                axum::http::header::CONTENT_DISPOSITION,
                "attachment; filename=\"query.csv\"",
            ),
        ],
        app::query::to_csv(&result),
    )
        .into_response())
}

async fn saved_queries(State(s): State<AppState>) -> ApiResult<Vec<app::query::SavedQuery>> {
    Ok(Json(s.observe.saved(&crate::auth::actor()).await?))
}

/// `POST /api/v1/queries/saved`: `{name, source, query, timespan?, description?}` → 201.
async fn save_query(
    State(s): State<AppState>,
    JsonBody(q): JsonBody<app::query::NewSavedQuery>,
) -> Result<Response, ApiError> {
    let saved = s.observe.save(&crate::auth::actor(), &q).await?;
    Ok((StatusCode::CREATED, Json(saved)).into_response())
}

async fn recent_queries(State(s): State<AppState>) -> ApiResult<Vec<app::query::RecentQuery>> {
    Ok(Json(s.observe.recent(&crate::auth::actor(), 50).await?))
}

async fn endpoint_health(
    State(s): State<AppState>,
    Path(name): Path<String>,
) -> ApiResult<app::query::EndpointHealth> {
    Ok(Json(s.observe.endpoint_health(&name).await?))
}

/// `GET /api/v1/cost`: month to date, forecast, budget, breakdowns (from the console's cache).
async fn get_cost(State(s): State<AppState>) -> ApiResult<app::cost::CostView> {
    Ok(Json(s.costs.view()?))
}

/// `POST /api/v1/cost/refresh`: fetch from Cost Management now.
async fn refresh_cost(State(s): State<AppState>) -> ApiResult<app::cost::CostView> {
    Ok(Json(s.costs.refresh().await?))
}

#[derive(serde::Deserialize)]
struct AlertFilter {
    #[serde(default)]
    state: Option<String>,
}

/// `GET /api/v1/alerts?state=New|Acknowledged|Closed`: fired alerts, the rule and the action group.
async fn list_alerts(
    State(s): State<AppState>,
    axum::extract::Query(f): axum::extract::Query<AlertFilter>,
) -> ApiResult<app::cost::AlertsView> {
    let state = match f.state.as_deref().filter(|v| !v.is_empty()) {
        None => None,
        Some(v) => Some(crate::runs::alerts::checked_state(
            &app::cost::AlertStateChange {
                state: v.to_string(),
                comment: String::new(),
            },
        )?),
    };
    Ok(Json(s.alerts.view(state).await?))
}

/// `POST /api/v1/alerts/{id}/state` with `{state, comment}`: 200 with the run and the alert as it is now.
async fn alert_state(
    State(s): State<AppState>,
    Path(id): Path<String>,
    headers: axum::http::HeaderMap,
    JsonBody(change): JsonBody<app::cost::AlertStateChange>,
) -> Result<Response, ApiError> {
    let key = idempotency_key(&headers)?;
    let (run, alert) =
        crate::change_alert_state(&s.alerts, &s.runs, &id, &change, key.as_deref()).await?;
    let detail = s.runs.detail(&run.to_string()).await?;
    let alert = match alert {
        Some(a) => a,
        None => s.alerts.find(&id).await?,
    };
    let status = if detail.summary.status == app::model::RunStatus::Succeeded {
        StatusCode::OK
    } else {
        StatusCode::BAD_GATEWAY
    };
    Ok((
        status,
        Json(json!({"run_id": run, "run": detail, "alert": alert})),
    )
        .into_response())
}

async fn unknown() -> ApiError {
    ApiError(AppError::NotFound(
        "There is no such API route; see the README for the API.".into(),
    ))
}

async fn readyz(State(s): State<AppState>) -> Response {
    let db = sqlx::query_scalar::<_, i32>("select 1")
        .fetch_one(&s.db)
        .await
        .is_ok();
    let loaded = s.inventory.is_loaded();
    let status = if db && loaded {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (
        status,
        Json(json!({"database": db, "inventory_loaded": loaded})),
    )
        .into_response()
}

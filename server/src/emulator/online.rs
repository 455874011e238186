//! Azure ML model versions, online endpoints and deployments: long-running PUTs answered with
//! `Azure-AsyncOperation`, provisioningState Creating/Updating → Succeeded/Failed as time passes, 409 for a
//! write while an endpoint or deployment is busy, traffic validated as the service does, and listKeys.

use super::store::Object;
use super::{arm_error, base_url, Emulator, Resp};
use axum::body::Bytes;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub const ENDPOINT: &str = "online-endpoint";
pub const DEPLOYMENT: &str = "online-deployment";
pub const MODEL_VERSION: &str = "model-version";
pub const OPERATION: &str = "operation";
/// When an endpoint's traffic split took effect: the telemetry follows it.
pub const TRAFFIC_EVENT: &str = "traffic-event";

fn user_error(status: StatusCode, code: &str, message: impl Into<String>) -> Resp {
    arm_error(status, code, message)
}

/// Azure ML's 400 for a body that is not JSON.
fn not_json() -> Resp {
    user_error(
        StatusCode::BAD_REQUEST,
        "UserError",
        "The request body is not valid JSON.",
    )
}

/// When a long-running write ends and how.
fn busy_until(o: &Object) -> Option<DateTime<Utc>> {
    o.body
        .pointer("/_emulator/busy_until")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
}

pub fn is_busy(o: &Object) -> bool {
    busy_until(o).is_some_and(|t| Utc::now() < t)
}

/// The body as Azure shows it now: provisioningState from the clock, the emulator's bookkeeping removed.
pub fn render(o: &Object) -> Value {
    let mut body = o.body.clone();
    let state = match (
        is_busy(o),
        o.body.pointer("/_emulator/verb"),
        o.body.pointer("/_emulator/final"),
    ) {
        (true, Some(verb), _) => verb.clone(),
        (false, _, Some(fin)) => fin.clone(),
        _ => json!("Succeeded"),
    };
    body["properties"]["provisioningState"] = state;
    if let Some(m) = body.as_object_mut() {
        m.remove("_emulator");
    }
    body
}

fn async_headers(response: &mut Resp, headers: &HeaderMap, emu: &Emulator, op: &str) {
    let url = format!(
        "{}/subscriptions/{}/providers/Microsoft.MachineLearningServices/locations/{}/mfeOperationsStatus/{op}?api-version=2025-09-01",
        base_url(headers),
        emu.inner.estate.subscription_id,
        emu.inner.estate.location
    );
    if let Ok(v) = HeaderValue::from_str(&url) {
        response.headers_mut().insert("azure-asyncoperation", v);
    }
    response.headers_mut().insert(
        "x-ms-async-operation-timeout",
        HeaderValue::from_static("PT1H"),
    );
    response
        .headers_mut()
        .insert("retry-after", HeaderValue::from_static("1"));
}

async fn start_operation(
    emu: &Emulator,
    resource: &str,
    until: DateTime<Utc>,
    fin: &str,
) -> Result<String, sqlx::Error> {
    let op = uuid::Uuid::new_v4().simple().to_string();
    let key = format!("/operations/{op}");
    emu.inner
        .store
        .upsert(OPERATION, &key, "/operations", &json!({"resource": resource, "busy_until": until.to_rfc3339(), "final": fin, "started": Utc::now().to_rfc3339()}))
        .await?;
    Ok(op)
}

/// Stores the resource of a long-running write, starts its operation, and answers 201 (new) or 200 with
/// `Azure-AsyncOperation`.
#[allow(clippy::too_many_arguments)]
async fn write_lro(
    emu: &Emulator,
    headers: &HeaderMap,
    kind: &str,
    path: &str,
    parent: &str,
    body: &Value,
    until: DateTime<Utc>,
    fin: &str,
    existed: bool,
) -> Resp {
    let stored = match emu.inner.store.upsert(kind, path, parent, body).await {
        Ok(o) => o,
        Err(e) => return super::arm::db_error(e),
    };
    let op = match start_operation(emu, path, until, fin).await {
        Ok(op) => op,
        Err(e) => return super::arm::db_error(e),
    };
    let status = if existed {
        StatusCode::OK
    } else {
        StatusCode::CREATED
    };
    let mut r = (status, Json(render(&stored))).into_response();
    async_headers(&mut r, headers, emu, &op);
    r
}

/// `GET …/locations/{loc}/mfeOperationsStatus/{id}`.
pub async fn operation(emu: &Emulator, id: &str) -> Resp {
    match emu
        .inner
        .store
        .get(OPERATION, &format!("/operations/{id}"))
        .await
    {
        Ok(Some(o)) => {
            let until: Option<DateTime<Utc>> =
                o.body["busy_until"].as_str().and_then(|t| t.parse().ok());
            let done = until.is_none_or(|t| Utc::now() >= t);
            let fin = o.body["final"].as_str().unwrap_or("Succeeded");
            let mut body = json!({"id": id, "name": id, "status": if done { fin } else { "InProgress" }, "startTime": o.body["started"]});
            if done {
                body["endTime"] = json!(until.map(|t| t.to_rfc3339()));
            }
            if done && fin == "Failed" {
                body["error"] = json!({"code": "DeploymentFailed", "message": "The deployment failed: the scoring container did not become ready (emulated failure)."});
            }
            Json(body).into_response()
        }
        Ok(None) => arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("Operation '{id}' was not found."),
        ),
        Err(e) => super::arm::db_error(e),
    }
}

/// `PUT {workspace}/models/{name}/versions/{version}`.
pub async fn put_model_version(
    emu: &Emulator,
    path: &str,
    workspace: &str,
    name: &str,
    version: &str,
    body: &Bytes,
) -> Resp {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return not_json();
    };
    if v.pointer("/properties/modelUri")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return user_error(
            StatusCode::BAD_REQUEST,
            "UserError",
            "properties.modelUri is required.",
        );
    }
    let exists = matches!(emu.inner.store.get(MODEL_VERSION, path).await, Ok(Some(_)));
    v["id"] = json!(path);
    v["name"] = json!(version);
    v["type"] = json!("Microsoft.MachineLearningServices/workspaces/models/versions");
    if v["properties"]["modelType"].is_null() {
        v["properties"]["modelType"] = json!("custom_model");
    }
    v["properties"]["provisioningState"] = json!("Succeeded");
    match emu
        .inner
        .store
        .upsert(
            MODEL_VERSION,
            path,
            &format!("{workspace}/models/{name}/versions"),
            &v,
        )
        .await
    {
        Ok(_) => (
            if exists {
                StatusCode::OK
            } else {
                StatusCode::CREATED
            },
            Json(v),
        )
            .into_response(),
        Err(e) => super::arm::db_error(e),
    }
}

/// Validates a traffic or mirror map against the endpoint's deployments.
async fn check_traffic(
    emu: &Emulator,
    endpoint: &str,
    traffic: &Value,
    mirror: bool,
) -> Result<(), String> {
    let Some(map) = traffic.as_object() else {
        return if traffic.is_null() {
            Ok(())
        } else {
            Err("traffic must be an object of deployment names to percentages".into())
        };
    };
    let mut total = 0i64;
    for (name, weight) in map {
        let Some(w) = weight.as_i64().filter(|w| (0..=100).contains(w)) else {
            return Err(format!(
                "traffic for '{name}' must be a whole percentage from 0 to 100"
            ));
        };
        if mirror && w > 50 {
            return Err(format!(
                "mirror traffic for '{name}' is {w}%; at most 50% can be mirrored"
            ));
        }
        match emu
            .inner
            .store
            .get(DEPLOYMENT, &format!("{endpoint}/deployments/{name}"))
            .await
        {
            Ok(Some(_)) => {}
            _ => {
                return Err(format!(
                    "deployment '{name}' does not exist in this endpoint"
                ))
            }
        }
        total += w;
    }
    if !mirror && total != 0 && total != 100 {
        return Err(format!("traffic must total 100 (or 0); it totals {total}"));
    }
    Ok(())
}

/// `PUT {workspace}/onlineEndpoints/{name}`: create, or replace (traffic changes are made this way).
pub async fn put_endpoint(
    emu: &Emulator,
    headers: &HeaderMap,
    path: &str,
    workspace: &str,
    body: &Bytes,
) -> Resp {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return not_json();
    };
    let existing = match emu.inner.store.get(ENDPOINT, path).await {
        Ok(e) => e,
        Err(e) => return super::arm::db_error(e),
    };
    if let Some(e) = &existing {
        if is_busy(e) {
            return user_error(StatusCode::CONFLICT, "Conflict", "The endpoint is busy: an operation is in progress (Updating). Retry when it has finished.");
        }
    }
    if let Err(reason) = check_traffic(emu, path, &v["properties"]["traffic"], false).await {
        return user_error(StatusCode::BAD_REQUEST, "BadArgument", reason);
    }
    if let Err(reason) = check_traffic(emu, path, &v["properties"]["mirrorTraffic"], true).await {
        return user_error(StatusCode::BAD_REQUEST, "BadArgument", reason);
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    let until = Utc::now() + chrono::Duration::from_std(emu.inner.job_step * 2).unwrap_or_default();
    v["id"] = json!(path);
    v["name"] = json!(name);
    v["type"] = json!("Microsoft.MachineLearningServices/workspaces/onlineEndpoints");
    if v["properties"]["traffic"].is_null() {
        v["properties"]["traffic"] = json!({});
    }
    v["properties"]["scoringUri"] = json!(format!(
        "https://{name}.{}.inference.ml.azure.com/score",
        emu.inner.estate.location
    ));
    v["properties"]["swaggerUri"] = json!(format!(
        "https://{name}.{}.inference.ml.azure.com/swagger.json",
        emu.inner.estate.location
    ));
    v["_emulator"] = json!({"busy_until": until.to_rfc3339(), "verb": if existing.is_some() { "Updating" } else { "Creating" }, "final": "Succeeded"});
    let answer = write_lro(
        emu,
        headers,
        ENDPOINT,
        path,
        &format!("{workspace}/onlineendpoints"),
        &v,
        until,
        "Succeeded",
        existing.is_some(),
    )
    .await;
    if answer.status().is_success() {
        let events = format!("{path}/trafficevents");
        let event = json!({"at": until.to_rfc3339(), "traffic": v["properties"]["traffic"]});
        let key = format!("{events}/{}", until.timestamp_micros());
        if let Err(e) = emu
            .inner
            .store
            .upsert(TRAFFIC_EVENT, &key, &events, &event)
            .await
        {
            return super::arm::db_error(e);
        }
    }
    answer
}

/// `PUT {endpoint}/deployments/{name}`.
pub async fn put_deployment(
    emu: &Emulator,
    headers: &HeaderMap,
    path: &str,
    endpoint: &str,
    body: &Bytes,
) -> Resp {
    let Ok(mut v) = serde_json::from_slice::<Value>(body) else {
        return not_json();
    };
    match emu.inner.store.get(ENDPOINT, endpoint).await {
        Ok(Some(e)) if is_busy(&e) => {
            return user_error(
                StatusCode::CONFLICT,
                "Conflict",
                "The endpoint is busy: an operation is in progress. Retry when it has finished.",
            )
        }
        Ok(Some(_)) => {}
        Ok(None) => {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "The online endpoint was not found.",
            )
        }
        Err(e) => return super::arm::db_error(e),
    }
    let existing = match emu.inner.store.get(DEPLOYMENT, path).await {
        Ok(e) => e,
        Err(e) => return super::arm::db_error(e),
    };
    if existing.as_ref().is_some_and(is_busy) {
        return user_error(
            StatusCode::CONFLICT,
            "Conflict",
            "The deployment is busy: an operation is in progress.",
        );
    }
    let capacity = v
        .pointer("/sku/capacity")
        .and_then(Value::as_i64)
        .unwrap_or(1);
    if !(1..=20).contains(&capacity) {
        return user_error(
            StatusCode::BAD_REQUEST,
            "BadArgument",
            format!("sku.capacity must be between 1 and 20; got {capacity}"),
        );
    }
    if v.pointer("/properties/instanceType")
        .and_then(Value::as_str)
        .is_none_or(str::is_empty)
    {
        return user_error(
            StatusCode::BAD_REQUEST,
            "BadArgument",
            "properties.instanceType is required.",
        );
    }
    let model = v
        .pointer("/properties/model")
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string();
    if !matches!(
        emu.inner.store.get(MODEL_VERSION, &model).await,
        Ok(Some(_))
    ) {
        return user_error(
            StatusCode::BAD_REQUEST,
            "BadArgument",
            format!("The model '{model}' was not found in the workspace."),
        );
    }
    let fails = v
        .pointer("/properties/environmentVariables/EMULATOR_FAIL")
        .and_then(Value::as_str)
        == Some("true");
    let name = path.rsplit('/').next().unwrap_or_default();
    let until = Utc::now() + chrono::Duration::from_std(emu.inner.job_step * 3).unwrap_or_default();
    let fin = if fails { "Failed" } else { "Succeeded" };
    v["id"] = json!(path);
    v["name"] = json!(name);
    v["type"] = json!("Microsoft.MachineLearningServices/workspaces/onlineEndpoints/deployments");
    v["sku"]["capacity"] = json!(capacity);
    v["_emulator"] = json!({"busy_until": until.to_rfc3339(), "verb": if existing.is_some() { "Updating" } else { "Creating" }, "final": fin});
    write_lro(
        emu,
        headers,
        DEPLOYMENT,
        path,
        &format!("{endpoint}/deployments"),
        &v,
        until,
        fin,
        existing.is_some(),
    )
    .await
}

/// `DELETE {endpoint}/deployments/{name}`: refused while it takes traffic.
pub async fn delete_deployment(
    emu: &Emulator,
    headers: &HeaderMap,
    path: &str,
    endpoint: &str,
) -> Resp {
    let name = path
        .rsplit('/')
        .next()
        .unwrap_or_default()
        .to_ascii_lowercase();
    if let Ok(Some(e)) = emu.inner.store.get(ENDPOINT, endpoint).await {
        let weight = e.body["properties"]["traffic"]
            .as_object()
            .and_then(|t| {
                t.iter()
                    .find(|(k, _)| k.to_ascii_lowercase() == name)
                    .map(|(_, w)| w.as_i64().unwrap_or(0))
            })
            .unwrap_or(0);
        if weight > 0 {
            return user_error(
                StatusCode::BAD_REQUEST,
                "BadArgument",
                format!(
                    "Deployment '{name}' takes {weight}% of the traffic; move its traffic first."
                ),
            );
        }
    }
    match emu.inner.store.delete(DEPLOYMENT, path).await {
        Ok(true) => {
            let op = match start_operation(emu, path, Utc::now(), "Succeeded").await {
                Ok(op) => op,
                Err(e) => return super::arm::db_error(e),
            };
            let mut r = StatusCode::ACCEPTED.into_response();
            async_headers(&mut r, headers, emu, &op);
            if let Some(v) = r.headers().get("azure-asyncoperation").cloned() {
                r.headers_mut().insert("location", v);
            }
            r
        }
        Ok(false) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => super::arm::db_error(e),
    }
}

/// `POST {endpoint}/listKeys`: keys derived from the endpoint, stable across calls.
pub async fn list_keys(emu: &Emulator, endpoint: &str) -> Resp {
    match emu.inner.store.get(ENDPOINT, endpoint).await {
        Ok(Some(o)) => {
            let seed = o.created_at.timestamp_micros();
            let key = |n: i64| {
                format!(
                    "{:032x}",
                    (seed as u128).wrapping_mul(0x9e37_79b9_7f4a_7c15 + n as u128)
                )
            };
            Json(json!({"primaryKey": key(1), "secondaryKey": key(2)})).into_response()
        }
        Ok(None) => arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The online endpoint was not found.",
        ),
        Err(e) => super::arm::db_error(e),
    }
}

/// `POST {deployment}/getLogs` with `{"containerType", "tail"}`: the container's log as `{"content"}`.
pub async fn get_logs(emu: &Emulator, deployment: &str, body: &Bytes) -> Resp {
    let req: Value = if body.is_empty() {
        json!({})
    } else {
        match serde_json::from_slice(body) {
            Ok(v) => v,
            Err(_) => return not_json(),
        }
    };
    let container = req["containerType"].as_str().unwrap_or("InferenceServer");
    if !matches!(container, "InferenceServer" | "StorageInitializer") {
        return user_error(
            StatusCode::BAD_REQUEST,
            "BadArgument",
            format!(
                "containerType '{container}' is not one of InferenceServer, StorageInitializer."
            ),
        );
    }
    let tail = match &req["tail"] {
        Value::Null => 5000,
        t => match t.as_u64() {
            Some(n) if n <= 10_000 => n as usize,
            _ => {
                return user_error(
                    StatusCode::BAD_REQUEST,
                    "BadArgument",
                    "tail must be a whole number of lines up to 10000.",
                )
            }
        },
    };
    let o = match emu.inner.store.get(DEPLOYMENT, deployment).await {
        Ok(Some(o)) => o,
        Ok(None) => {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                "The online deployment was not found.",
            )
        }
        Err(e) => return super::arm::db_error(e),
    };
    let shown = render(&o);
    let state = shown["properties"]["provisioningState"]
        .as_str()
        .unwrap_or_default();
    let model = shown["properties"]["model"].as_str().unwrap_or_default();
    let at = |s: i64| {
        (o.created_at
            + chrono::Duration::from_std(emu.inner.job_step).unwrap_or_default() * s as i32)
            .format("%Y-%m-%d %H:%M:%S,%3f")
            .to_string()
    };
    let lines: Vec<String> = if container == "StorageInitializer" {
        vec![
            format!("{} | INFO | Downloading {model}", at(0)),
            format!(
                "{} | INFO | Model downloaded to /var/azureml-app/azureml-models",
                at(1)
            ),
        ]
    } else {
        let mut l = vec![
            format!("{} | INFO | Starting gunicorn 20.1.0", at(1)),
            format!("{} | INFO | Booting worker with pid: 41", at(1)),
            format!("{} | INFO | Loading model {model}", at(2)),
        ];
        match state {
            "Failed" => {
                l.push(format!("{} | ERROR | Worker failed to boot: init() raised RuntimeError: model could not be loaded", at(3)));
                l.push(format!(
                    "{} | ERROR | Liveness probe failed: HTTP 502",
                    at(3)
                ));
            }
            "Creating" | "Updating" => {}
            _ => {
                l.push(format!(
                    "{} | INFO | init() complete; listening on 0.0.0.0:5001",
                    at(3)
                ));
                l.push(format!("{} | INFO | 200 POST /score 41ms", at(4)));
            }
        }
        l
    };
    let skip = lines.len().saturating_sub(tail);
    Json(json!({"content": lines[skip..].join("\n")})).into_response()
}

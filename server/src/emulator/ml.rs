//! Azure Machine Learning command jobs: PUT/GET/list, a status that moves NotStarted → Queued → Starting →
//! Running → Finalizing → Completed as time passes (one stage per `job_step`), Failed when the job asks for
//! it (an input or tag `emulator_fail` = `true`), and MLflow metrics that grow while it runs. The status is
//! derived from the creation time, so the job carries on while the console is down, as in Azure.

use super::store::Object;
use super::{arm_error, Emulator, Resp};
use crate::azure::wire::{Job, MlflowMetric, MlflowRun, MlflowRunData, MlflowRunResponse};
use axum::body::Bytes;
use axum::extract::{Query, State};
use axum::http::{StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const JOB: &str = "job";

const STAGES: [&str; 7] = [
    "NotStarted",
    "Queued",
    "Starting",
    "Running",
    "Running",
    "Running",
    "Finalizing",
];

fn wants_failure(body: &Value) -> bool {
    let p = &body["properties"];
    p.pointer("/inputs/emulator_fail/value")
        .and_then(Value::as_str)
        == Some("true")
        || p.pointer("/tags/emulator_fail").and_then(Value::as_str) == Some("true")
}

/// The stage index reached at `now`.
fn stage(emu: &Emulator, created: DateTime<Utc>, now: DateTime<Utc>) -> usize {
    let step = emu.inner.job_step.as_millis().max(1) as i64;
    ((now - created).num_milliseconds().max(0) / step) as usize
}

/// The job's status at `now`.
pub fn status_at(emu: &Emulator, job: &Object, now: DateTime<Utc>) -> &'static str {
    let n = stage(emu, job.created_at, now);
    if wants_failure(&job.body) && n >= 4 {
        return "Failed";
    }
    STAGES.get(n).copied().unwrap_or("Completed")
}

fn render(emu: &Emulator, job: &Object) -> Value {
    let mut body = job.body.clone();
    body["properties"]["status"] = json!(status_at(emu, job, Utc::now()));
    body["systemData"] = json!({
        "createdAt": job.created_at.to_rfc3339(), "createdBy": "mlops-console", "createdByType": "Application",
        "lastModifiedAt": job.changed_at.to_rfc3339(), "lastModifiedBy": "mlops-console", "lastModifiedByType": "Application"
    });
    body
}

fn user_error(status: StatusCode, message: impl Into<String>) -> Resp {
    arm_error(status, "UserError", message)
}

/// `PUT {workspace}/jobs/{name}`: validates like the service, then 201 with status NotStarted.
pub async fn put_job(
    emu: &Emulator,
    path: &str,
    workspace: &str,
    name: &str,
    body: &Bytes,
) -> Resp {
    match emu.inner.store.get_arm(workspace).await {
        Ok(Some(_)) => {}
        Ok(None) => {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The workspace '{workspace}' was not found."),
            )
        }
        Err(e) => return super::arm::db_error(e),
    }
    let job: Job = match serde_json::from_slice(body) {
        Ok(j) => j,
        Err(e) => {
            return user_error(
                StatusCode::BAD_REQUEST,
                format!("The request body is not a valid job: {e}"),
            )
        }
    };
    let p = &job.properties;
    if p.job_type != "Command" {
        return user_error(
            StatusCode::BAD_REQUEST,
            format!(
                "jobType '{}' is not supported by the emulator; use Command.",
                p.job_type
            ),
        );
    }
    for (field, value) in [
        ("command", &p.command),
        ("environmentId", &p.environment_id),
        ("computeId", &p.compute_id),
    ] {
        if value.as_deref().is_none_or(|v| v.trim().is_empty()) {
            return user_error(
                StatusCode::BAD_REQUEST,
                format!("properties.{field} is required for a command job."),
            );
        }
    }
    if !name
        .chars()
        .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
        || name.len() > 255
    {
        return user_error(
            StatusCode::BAD_REQUEST,
            format!("'{name}' is not a valid job name."),
        );
    }
    let mut stored = serde_json::to_value(&job).unwrap_or(Value::Null);
    stored["id"] = json!(path);
    stored["name"] = json!(name);
    stored["type"] = json!("Microsoft.MachineLearningServices/workspaces/jobs");
    stored["properties"]["status"] = json!("NotStarted");
    match emu
        .inner
        .store
        .insert(JOB, path, &format!("{workspace}/jobs"), &stored)
        .await
    {
        Ok(Some(o)) => (StatusCode::CREATED, Json(render(emu, &o))).into_response(),
        Ok(None) => user_error(
            StatusCode::CONFLICT,
            format!("A job named '{name}' already exists in this workspace; job names are unique."),
        ),
        Err(e) => super::arm::db_error(e),
    }
}

pub async fn get_job(emu: &Emulator, path: &str) -> Option<Resp> {
    match emu.inner.store.get(JOB, path).await {
        Ok(Some(o)) => Some(Json(render(emu, &o)).into_response()),
        Ok(None) => None,
        Err(e) => Some(super::arm::db_error(e)),
    }
}

pub async fn list_jobs(emu: &Emulator, collection: &str) -> Resp {
    match emu.inner.store.children(JOB, collection, 0, 1000).await {
        Ok(jobs) => Json(json!({"value": jobs.iter().map(|j| render(emu, j)).collect::<Vec<_>>(), "nextLink": null})).into_response(),
        Err(e) => super::arm::db_error(e),
    }
}

/// Deterministic metrics for a job: loss falls and accuracy rises with each running step.
fn metrics(job: &Object, steps: usize) -> Vec<MlflowMetric> {
    let seed = job
        .key
        .bytes()
        .fold(7u64, |h, b| h.wrapping_mul(31).wrapping_add(b as u64));
    let jitter = (seed % 1000) as f64 / 1000.0;
    let ts = job.created_at.timestamp_millis();
    (0..steps)
        .flat_map(|i| {
            let x = (i + 1) as f64;
            [
                MlflowMetric {
                    key: "loss".into(),
                    value: 0.25 + 0.6 * (-0.45 * x).exp() + 0.02 * jitter,
                    timestamp: ts,
                    step: i as i64,
                },
                MlflowMetric {
                    key: "accuracy".into(),
                    value: 0.62 + 0.26 * (1.0 - (-0.5 * x).exp()) + 0.03 * jitter,
                    timestamp: ts,
                    step: i as i64,
                },
            ]
        })
        .collect()
}

/// The job's `user_logs/std_log.txt` as far as it has got at `now`: one line per stage and training step.
fn std_log(emu: &Emulator, job: &Object, now: DateTime<Utc>) -> String {
    let n = stage(emu, job.created_at, now);
    let p = &job.body["properties"];
    let mut out = String::new();
    if n < 2 {
        return out;
    }
    out.push_str(&format!(
        "Starting command job on {}\n",
        p["computeId"].as_str().unwrap_or("compute")
    ));
    if let Some(inputs) = p["inputs"].as_object() {
        for (name, input) in inputs {
            let value = input["uri"]
                .as_str()
                .or(input["value"].as_str())
                .unwrap_or("");
            out.push_str(&format!("Input {name}: {value}\n"));
        }
    }
    if n < 3 {
        return out;
    }
    out.push_str(&format!("$ {}\n", p["command"].as_str().unwrap_or("")));
    let failed = status_at(emu, job, now) == "Failed";
    let steps = n.saturating_sub(2).min(4);
    let all = metrics(job, steps);
    for pair in all.chunks(2) {
        let line: Vec<String> = pair
            .iter()
            .map(|m| format!("{}={:.4}", m.key, m.value))
            .collect();
        out.push_str(&format!("epoch {}: {}\n", pair[0].step + 1, line.join(" ")));
    }
    if failed {
        out.push_str("Traceback (most recent call last):\n  File \"train.py\", line 42, in <module>\nRuntimeError: training failed (emulator_fail was requested)\n");
    } else if n >= 6 {
        out.push_str("Saved the model to outputs/model\n");
        if n >= 7 {
            out.push_str("Run completed\n");
        }
    }
    out
}

fn mlflow_error(status: StatusCode, code: &str, message: String) -> Resp {
    (
        status,
        Json(json!({"error_code": code, "message": message})),
    )
        .into_response()
}

/// The workspace's MLflow tracking server under `/mlflow/v2.0{workspace}`: `GET …/api/2.0/mlflow/runs/get?run_id=`
/// (the latest value of each metric), `GET …/api/2.0/mlflow/artifacts/list?run_id=&path=` and
/// `GET …/get-artifact?run_uuid=&path=user_logs/std_log.txt` (the job's log so far, as text).
pub async fn mlflow(
    State(emu): State<Emulator>,
    uri: Uri,
    Query(q): Query<HashMap<String, String>>,
) -> Resp {
    let path = uri.path().strip_prefix("/mlflow/v2.0").unwrap_or_default();
    let (workspace, call) = match [
        "/api/2.0/mlflow/runs/get",
        "/api/2.0/mlflow/artifacts/list",
        "/get-artifact",
    ]
    .into_iter()
    .find_map(|c| path.strip_suffix(c).map(|w| (w, c)))
    {
        Some(found) => found,
        None => {
            return mlflow_error(
                StatusCode::NOT_FOUND,
                "ENDPOINT_NOT_FOUND",
                "No such MLflow endpoint.".into(),
            )
        }
    };
    let param = if call == "/get-artifact" {
        "run_uuid"
    } else {
        "run_id"
    };
    let Some(run_id) = q.get(param) else {
        return mlflow_error(
            StatusCode::BAD_REQUEST,
            "INVALID_PARAMETER_VALUE",
            format!("Missing value for required parameter '{param}'."),
        );
    };
    let job = match emu
        .inner
        .store
        .get(JOB, &format!("{workspace}/jobs/{run_id}"))
        .await
    {
        Ok(Some(j)) => j,
        Ok(None) => {
            return mlflow_error(
                StatusCode::NOT_FOUND,
                "RESOURCE_DOES_NOT_EXIST",
                format!("Run '{run_id}' not found."),
            )
        }
        Err(e) => return super::arm::db_error(e),
    };
    let now = Utc::now();
    match call {
        "/get-artifact" => {
            if q.get("path").map(String::as_str) != Some("user_logs/std_log.txt") {
                return mlflow_error(
                    StatusCode::NOT_FOUND,
                    "RESOURCE_DOES_NOT_EXIST",
                    format!(
                        "No artifact '{}' in run '{run_id}'.",
                        q.get("path").cloned().unwrap_or_default()
                    ),
                );
            }
            (
                [(
                    axum::http::header::CONTENT_TYPE,
                    "text/plain; charset=utf-8",
                )],
                std_log(&emu, &job, now),
            )
                .into_response()
        }
        "/api/2.0/mlflow/artifacts/list" => {
            let log = std_log(&emu, &job, now);
            let files = if log.is_empty() {
                json!([])
            } else {
                json!([{"path": "user_logs/std_log.txt", "is_dir": false, "file_size": log.len()}])
            };
            Json(json!({"root_uri": format!("azureml://{workspace}/jobs/{run_id}/artifacts"), "files": files})).into_response()
        }
        _ => {
            let steps = stage(&emu, job.created_at, now).saturating_sub(2).min(4);
            let mut latest: Vec<MlflowMetric> = Vec::new();
            for m in metrics(&job, steps) {
                match latest.iter_mut().find(|l| l.key == m.key) {
                    Some(l) => *l = m,
                    None => latest.push(m),
                }
            }
            let mlflow_status = match status_at(&emu, &job, now) {
                "Completed" => "FINISHED",
                "Failed" => "FAILED",
                "Running" | "Finalizing" => "RUNNING",
                _ => "SCHEDULED",
            };
            Json(MlflowRunResponse {
                run: MlflowRun {
                    info: json!({"run_id": run_id, "experiment_id": "1", "status": mlflow_status, "start_time": job.created_at.timestamp_millis()}),
                    data: MlflowRunData { metrics: latest },
                },
            })
            .into_response()
        }
    }
}

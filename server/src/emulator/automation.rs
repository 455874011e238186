//! Azure Automation runbook jobs: `PUT {account}/jobs/{name}` starts the runbook (201, status New), the
//! status moves New → Activating → Running → Completed as time passes, `GET …/output` is text/plain.

use super::{arm_error, Emulator, Resp};
use axum::body::Bytes;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

pub const JOB: &str = "automation-job";

const STAGES: [&str; 4] = ["New", "Activating", "Running", "Running"];

fn status_at(emu: &Emulator, job: &super::store::Object) -> &'static str {
    let steps = (Utc::now() - job.created_at).num_milliseconds().max(0)
        / emu.inner.job_step.as_millis().max(1) as i64;
    STAGES.get(steps as usize).copied().unwrap_or("Completed")
}

fn render(emu: &Emulator, job: &super::store::Object) -> Value {
    let mut b = job.body.clone();
    let status = status_at(emu, job);
    b["properties"]["status"] = json!(status);
    b["properties"]["provisioningState"] = json!(if status == "Completed" {
        "Succeeded"
    } else {
        "Processing"
    });
    b["properties"]["creationTime"] = json!(job.created_at.to_rfc3339());
    if status != "New" {
        b["properties"]["startTime"] = json!(job.created_at.to_rfc3339());
    }
    if status == "Completed" {
        b["properties"]["endTime"] = json!((job.created_at
            + chrono::Duration::from_std(emu.inner.job_step * 4).unwrap_or_default())
        .to_rfc3339());
    }
    b
}

/// `PUT {account}/jobs/{name}`.
pub async fn put_job(emu: &Emulator, path: &str, account: &str, body: &Bytes) -> Resp {
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The request body is not valid JSON.",
        );
    };
    let Some(runbook) = req
        .pointer("/properties/runbook/name")
        .and_then(Value::as_str)
    else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "properties.runbook.name is required.",
        );
    };
    let runbook_id = format!("{account}/runbooks/{runbook}");
    if !matches!(emu.inner.store.get_arm(&runbook_id).await, Ok(Some(_))) {
        return arm_error(
            StatusCode::NOT_FOUND,
            "NotFound",
            format!("The runbook '{runbook}' was not found."),
        );
    }
    let name = path.rsplit('/').next().unwrap_or_default();
    let stored = json!({"id": path, "name": name, "type": "Microsoft.Automation/AutomationAccounts/Jobs",
        "properties": {"jobId": uuid::Uuid::new_v4().to_string(), "runbook": {"name": runbook},
            "parameters": req.pointer("/properties/parameters").cloned().unwrap_or(json!({})),
            "runOn": req.pointer("/properties/runOn").cloned().unwrap_or(json!("")), "startedBy": "mlops-console",
            "exception": null, "lastModifiedTime": Utc::now().to_rfc3339()}});
    match emu
        .inner
        .store
        .insert(JOB, path, &format!("{account}/jobs"), &stored)
        .await
    {
        Ok(Some(o)) => (StatusCode::CREATED, Json(render(emu, &o))).into_response(),
        Ok(None) => arm_error(
            StatusCode::CONFLICT,
            "Conflict",
            format!("A job named '{name}' already exists."),
        ),
        Err(e) => super::arm::db_error(e),
    }
}

pub async fn get_job(emu: &Emulator, path: &str) -> Resp {
    match emu.inner.store.get(JOB, path).await {
        Ok(Some(o)) => Json(render(emu, &o)).into_response(),
        Ok(None) => arm_error(StatusCode::NOT_FOUND, "NotFound", "The job was not found."),
        Err(e) => super::arm::db_error(e),
    }
}

/// `GET {job}/output`: what the runbook wrote, as text.
pub async fn output(emu: &Emulator, job_path: &str) -> Resp {
    match emu.inner.store.get(JOB, job_path).await {
        Ok(Some(o)) => {
            let status = status_at(emu, &o);
            let params = &o.body["properties"]["parameters"];
            let mut text = format!("Scale-MLOps-Resources started with {params}\n");
            if matches!(status, "Running" | "Completed") {
                text.push_str("Checking node pool utilisation of the AKS cluster…\n");
            }
            if status == "Completed" {
                let direction = params["ScaleDirection"].as_str().unwrap_or("down");
                text.push_str(&format!("Scaled {direction}: inference node pool and ml-inference replicas adjusted.\nDone.\n"));
            }
            ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
        }
        Ok(None) => arm_error(StatusCode::NOT_FOUND, "NotFound", "The job was not found."),
        Err(e) => super::arm::db_error(e),
    }
}

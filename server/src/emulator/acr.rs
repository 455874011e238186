//! ACR Tasks quick builds (`az acr build`): `POST {registry}/scheduleRun` with a `DockerBuildRequest`
//! queues a run `ca1`, `ca2`, …; `GET {registry}/runs/{id}` moves Queued → Running → Succeeded as time
//! passes (Failed when the build arguments ask for it); `POST …/runs/{id}/listLogSasUrl` links to the
//! build log. The pushed tags are written when the run is queued with the time the push completes, and
//! the registry's data plane lists a tag only once that time has come, so the image appears in the
//! registry exactly when the run succeeds, whether or not anyone is watching.

use super::store::{self, Object};
use super::{arm_error, Emulator, Resp};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

pub const RUN: &str = "acr-run";
/// Stages of a build, one per emulator step; after them it has succeeded (or failed).
const STAGES: [&str; 4] = ["Queued", "Running", "Running", "Running"];

fn wants_failure(body: &Value) -> bool {
    body.pointer("/properties/arguments")
        .and_then(Value::as_array)
        .is_some_and(|args| {
            args.iter()
                .any(|a| a["name"] == "EMULATOR_FAIL" && a["value"] == "true")
        })
}

fn step(emu: &Emulator) -> chrono::Duration {
    chrono::Duration::from_std(emu.inner.job_step).unwrap_or_default()
}

fn status_at(emu: &Emulator, run: &Object, now: DateTime<Utc>) -> &'static str {
    let n = (now - run.created_at).num_milliseconds().max(0)
        / emu.inner.job_step.as_millis().max(1) as i64;
    match STAGES.get(n as usize) {
        Some(s) => s,
        None if wants_failure(&run.body) => "Failed",
        None => "Succeeded",
    }
}

fn render(emu: &Emulator, run: &Object) -> Value {
    let mut b = run.body.clone();
    let status = status_at(emu, run, Utc::now());
    let p = &mut b["properties"];
    p["status"] = json!(status);
    p["createTime"] = json!(run.created_at.to_rfc3339());
    if status != "Queued" {
        p["startTime"] = json!((run.created_at + step(emu)).to_rfc3339());
    }
    if matches!(status, "Succeeded" | "Failed") {
        p["finishTime"] = json!((run.created_at + step(emu) * STAGES.len() as i32).to_rfc3339());
        p["provisioningState"] = json!("Succeeded");
    }
    if status != "Succeeded" {
        p["outputImages"] = json!(null);
    }
    b
}

/// `POST {registry}/scheduleRun`: validates the build request like the service, queues the run, answers
/// 200 with it (status Queued).
pub async fn schedule_run(emu: &Emulator, registry: &str, body: &Bytes) -> Resp {
    let reg = match emu.inner.store.get_arm(registry).await {
        Ok(Some(r)) => r,
        Ok(None) => {
            return arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The Resource '{registry}' was not found."),
            )
        }
        Err(e) => return super::arm::db_error(e),
    };
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidRequestContent",
            "The request content was invalid and could not be deserialized.",
        );
    };
    if req["type"] != "DockerBuildRequest" {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            format!(
                "The run request type {} is not supported by the emulator; use DockerBuildRequest.",
                req["type"]
            ),
        );
    }
    for field in ["dockerFilePath", "sourceLocation"] {
        if req[field].as_str().is_none_or(|v| v.trim().is_empty()) {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidParameter",
                format!("The parameter '{field}' is required."),
            );
        }
    }
    if req
        .pointer("/platform/os")
        .and_then(Value::as_str)
        .is_none()
    {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "The parameter 'platform.os' is required.",
        );
    }
    let images: Vec<(String, String)> = req["imageNames"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(Value::as_str)
                .map(split_image)
                .collect()
        })
        .unwrap_or_default();
    if images.is_empty() || images.iter().any(|(repo, tag)| !image_ok(repo, tag)) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "InvalidParameter",
            "imageNames must be one or more 'repository:tag' names (lowercase repository, tag of letters, digits, '.', '_' and '-').",
        );
    }
    let login = reg.body["properties"]["loginServer"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    let registry_name = registry.rsplit('/').next().unwrap_or_default().to_string();
    let runs = format!("{registry}/runs");
    let taken = match emu.inner.store.children(RUN, &runs, 0, 100_000).await {
        Ok(r) => r.len(),
        Err(e) => return super::arm::db_error(e),
    };
    let fail = wants_failure(&json!({"properties": {"arguments": req["arguments"]}}));
    for n in taken + 1..taken + 20 {
        let id = format!("ca{n}");
        let path = format!("{runs}/{id}");
        let digest = digest_of(&path);
        let outputs: Vec<Value> = images
            .iter()
            .map(|(repo, tag)| json!({"registry": login, "repository": repo, "tag": tag, "digest": digest}))
            .collect();
        let stored = json!({"id": path, "name": id, "type": "Microsoft.ContainerRegistry/registries/runs",
            "properties": {"runId": id, "status": "Queued", "runType": "QuickRun", "isArchiveEnabled": false,
                "platform": req["platform"], "agentConfiguration": {"cpu": 2}, "provisioningState": "Succeeded",
                "sourceLocation": req["sourceLocation"], "dockerFilePath": req["dockerFilePath"],
                "arguments": req["arguments"], "outputImages": outputs}});
        match emu.inner.store.insert(RUN, &path, &runs, &stored).await {
            Ok(Some(o)) => {
                if !fail {
                    let done = o.created_at + step(emu) * STAGES.len() as i32;
                    for (repo, tag) in &images {
                        if let Err(e) =
                            push_tag(emu, &registry_name, repo, tag, &digest, done).await
                        {
                            return super::arm::db_error(e);
                        }
                    }
                }
                return Json(render(emu, &o)).into_response();
            }
            Ok(None) => continue,
            Err(e) => return super::arm::db_error(e),
        }
    }
    arm_error(
        StatusCode::CONFLICT,
        "Conflict",
        "Could not allocate a run id.",
    )
}

fn split_image(name: &str) -> (String, String) {
    match name.rsplit_once(':') {
        Some((repo, tag)) => (repo.to_string(), tag.to_string()),
        None => (name.to_string(), "latest".to_string()),
    }
}

fn image_ok(repo: &str, tag: &str) -> bool {
    !repo.is_empty()
        && repo.len() <= 256
        && repo
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && !tag.is_empty()
        && tag.len() <= 128
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

fn digest_of(path: &str) -> String {
    let h = path.bytes().fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
        (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
    });
    format!(
        "sha256:{h:016x}{:016x}{h:016x}{:016x}",
        !h,
        h.rotate_left(17)
    )
}

/// Adds (or moves) `tag` in `repo`, visible from `at`.
async fn push_tag(
    emu: &Emulator,
    registry: &str,
    repo: &str,
    tag: &str,
    digest: &str,
    at: DateTime<Utc>,
) -> Result<(), sqlx::Error> {
    let parent = format!("/acr/{registry}");
    let key = format!("{parent}/{repo}");
    let mut body = match emu.inner.store.get(store::REPOSITORY, &key).await? {
        Some(o) => o.body,
        None => json!({"name": repo, "tags": []}),
    };
    let at = at.to_rfc3339_opts(chrono::SecondsFormat::Millis, true);
    let entry = json!({"name": tag, "digest": digest, "createdTime": at, "lastUpdateTime": at, "signed": false,
        "changeableAttributes": {"deleteEnabled": true, "writeEnabled": true, "readEnabled": true, "listEnabled": true}});
    let tags = body["tags"].as_array_mut();
    match tags {
        Some(tags) => {
            tags.retain(|t| t["name"] != tag);
            tags.push(entry);
        }
        None => body["tags"] = json!([entry]),
    }
    emu.inner
        .store
        .upsert(store::REPOSITORY, &key, &parent, &body)
        .await
        .map(drop)
}

/// Whether a stored tag has been pushed by `now`.
pub fn tag_visible(tag: &Value, now: DateTime<Utc>) -> bool {
    tag["createdTime"]
        .as_str()
        .and_then(|t| t.parse::<DateTime<Utc>>().ok())
        .is_none_or(|t| t <= now)
}

pub async fn get_run(emu: &Emulator, path: &str) -> Resp {
    match emu.inner.store.get(RUN, path).await {
        Ok(Some(o)) => Json(render(emu, &o)).into_response(),
        Ok(None) => not_found(path),
        Err(e) => super::arm::db_error(e),
    }
}

pub async fn list_runs(emu: &Emulator, registry: &str) -> Resp {
    match emu
        .inner
        .store
        .children(RUN, &format!("{registry}/runs"), 0, 1000)
        .await
    {
        Ok(mut runs) => {
            runs.sort_by_key(|r| std::cmp::Reverse(r.created_at));
            Json(json!({"value": runs.iter().map(|r| render(emu, r)).collect::<Vec<_>>(), "nextLink": null}))
                .into_response()
        }
        Err(e) => super::arm::db_error(e),
    }
}

fn not_found(path: &str) -> Resp {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!(
            "The run '{}' was not found.",
            path.rsplit('/').next().unwrap_or_default()
        ),
    )
}

/// `POST {run}/listLogSasUrl`: a link to the build log (in Azure, a blob with a SAS token).
pub async fn log_link(emu: &Emulator, headers: &HeaderMap, run_path: &str) -> Resp {
    match emu.inner.store.get(RUN, run_path).await {
        Ok(Some(_)) => Json(json!({"logLink": format!(
            "{}/_emulator/acr-logs{run_path}?sv=2024-11-04&sr=b&sp=r&sig=emulator",
            super::base_url(headers)
        )}))
        .into_response(),
        Ok(None) => not_found(run_path),
        Err(e) => super::arm::db_error(e),
    }
}

/// `GET /_emulator/acr-logs/{run id}`: the build log so far, as text.
pub async fn log(State(emu): State<Emulator>, Path(path): Path<String>) -> Resp {
    let o = match emu.inner.store.get(RUN, &format!("/{path}")).await {
        Ok(Some(o)) => o,
        Ok(None) => return (StatusCode::NOT_FOUND, "BlobNotFound").into_response(),
        Err(e) => return super::arm::db_error(e),
    };
    let run = o.body["name"].as_str().unwrap_or_default().to_string();
    let status = status_at(&emu, &o, Utc::now());
    let p = &o.body["properties"];
    let images: Vec<String> = p["outputImages"]
        .as_array()
        .into_iter()
        .flatten()
        .map(|i| {
            format!(
                "{}/{}:{}",
                i["registry"].as_str().unwrap_or(""),
                i["repository"].as_str().unwrap_or(""),
                i["tag"].as_str().unwrap_or("")
            )
        })
        .collect();
    let mut text = format!("Queued a build with ID: {run}\nWaiting for an agent...\n");
    if status != "Queued" {
        text.push_str(&format!(
            "Step 1/4 : FROM mcr.microsoft.com/azureml/minimal-ubuntu22.04-py39-cpu-inference:latest\nStep 2/4 : COPY {} .\nStep 3/4 : RUN pip install -r requirements.txt\n",
            p["sourceLocation"].as_str().unwrap_or(".")
        ));
    }
    match status {
        "Succeeded" => {
            text.push_str("Step 4/4 : CMD [\"python\", \"score.py\"]\n");
            for image in &images {
                text.push_str(&format!("Successfully tagged {image}\nPushing {image}\n"));
            }
            text.push_str(&format!("Run ID: {run} was successful\n"));
        }
        "Failed" => text.push_str(&format!(
            "ERROR: failed to solve: process \"pip install -r requirements.txt\" did not complete successfully: exit code: 1\nRun ID: {run} failed\n"
        )),
        _ => {}
    }
    ([(header::CONTENT_TYPE, "text/plain; charset=utf-8")], text).into_response()
}

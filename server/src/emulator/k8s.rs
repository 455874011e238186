//! The AKS cluster's Kubernetes API for the `ml-inference` Deployment, served under `/aks/{cluster}` (in
//! Azure, `https://{fqdn}`): get and replace a Deployment (rollout of a new image), and its `scale`
//! subresource (GET, merge-patch PATCH). Ready replicas follow the spec as time passes; errors are
//! Kubernetes `Status` objects.

use super::{has_bearer, Emulator, Resp};
use axum::body::Bytes;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::Utc;
use serde_json::{json, Value};

pub const DEPLOYMENT: &str = "k8s-deployment";

fn status(code: StatusCode, reason: &str, message: impl Into<String>) -> Resp {
    (
        code,
        Json(
            json!({"kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message.into(), "reason": reason, "code": code.as_u16()}),
        ),
    )
        .into_response()
}

pub fn key(cluster: &str, ns: &str, name: &str) -> String {
    format!("/aks/{cluster}/namespaces/{ns}/deployments/{name}")
}

/// The seeded `ml-inference` Deployment of the seed's kubernetes/ml-inference-deployment.yaml.
pub fn seed(cluster: &str, registry: &str) -> (String, Value) {
    let body = json!({"apiVersion": "apps/v1", "kind": "Deployment",
        "metadata": {"name": "ml-inference", "namespace": "default", "labels": {"app": "ml-inference"}, "generation": 1},
        "spec": {"replicas": 2, "selector": {"matchLabels": {"app": "ml-inference"}},
            "template": {"metadata": {"labels": {"app": "ml-inference"}},
                "spec": {"containers": [{"name": "inference", "image": format!("{registry}.azurecr.io/inference:latest"), "ports": [{"containerPort": 8080}]}]}}},
        "_emulator": {"from_replicas": 2, "changed": Utc::now().to_rfc3339()}});
    (key(cluster, "default", "ml-inference"), body)
}

/// Whether the kubelet could pull `image`: images of an Azure registry must have been pushed there.
async fn pullable(emu: &Emulator, image: &str) -> Result<bool, sqlx::Error> {
    let Some((host, rest)) = image.split_once('/') else {
        return Ok(true);
    };
    let Some(registry) = host.strip_suffix(".azurecr.io") else {
        return Ok(true);
    };
    let (repo, tag) = rest.rsplit_once(':').unwrap_or((rest, "latest"));
    let now = Utc::now();
    Ok(emu
        .inner
        .store
        .get(super::store::REPOSITORY, &format!("/acr/{registry}/{repo}"))
        .await?
        .is_some_and(|r| {
            r.body["tags"].as_array().is_some_and(|tags| {
                tags.iter()
                    .any(|t| t["name"] == tag && super::acr::tag_visible(t, now))
            })
        }))
}

/// The Deployment as the API server shows it now: replicas converge one per stage after a change; pods of
/// an image that cannot be pulled never become ready, and after three stages the rollout reports
/// `ProgressDeadlineExceeded` as Kubernetes does.
fn render(emu: &Emulator, body: &Value) -> Value {
    let mut b = body.clone();
    let want = b["spec"]["replicas"].as_i64().unwrap_or(0);
    let from = b
        .pointer("/_emulator/from_replicas")
        .and_then(Value::as_i64)
        .unwrap_or(want);
    let changed: chrono::DateTime<Utc> = b
        .pointer("/_emulator/changed")
        .and_then(Value::as_str)
        .and_then(|t| t.parse().ok())
        .unwrap_or_else(Utc::now);
    let steps = (Utc::now() - changed).num_milliseconds().max(0)
        / emu.inner.job_step.as_millis().max(1) as i64;
    let ready = if want >= from {
        (from + steps).min(want)
    } else {
        (from - steps).max(want)
    };
    let updated = if steps >= 1 { want } else { 0 };
    let pullable = b.pointer("/_emulator/pullable") != Some(&json!(false));
    let ready = if pullable { ready } else { 0 };
    let progressing = if pullable || steps < 3 {
        json!({"type": "Progressing", "status": "True", "reason": if ready == want { "NewReplicaSetAvailable" } else { "ReplicaSetUpdated" },
            "message": format!("ReplicaSet \"{}\" is progressing.", b["metadata"]["name"].as_str().unwrap_or_default())})
    } else {
        json!({"type": "Progressing", "status": "False", "reason": "ProgressDeadlineExceeded",
            "message": format!("ReplicaSet \"{}\" has timed out progressing.", b["metadata"]["name"].as_str().unwrap_or_default())})
    };
    b["status"] = json!({"observedGeneration": b["metadata"]["generation"], "replicas": want.max(ready),
        "readyReplicas": ready, "availableReplicas": ready, "updatedReplicas": updated,
        "conditions": [{"type": "Available", "status": if ready >= want.min(1) { "True" } else { "False" }}, progressing]});
    if let Some(m) = b.as_object_mut() {
        m.remove("_emulator");
    }
    b
}

fn scale_of(name: &str, ns: &str, d: &Value) -> Value {
    json!({"kind": "Scale", "apiVersion": "autoscaling/v1", "metadata": {"name": name, "namespace": ns},
        "spec": {"replicas": d["spec"]["replicas"]}, "status": {"replicas": d["status"]["readyReplicas"], "selector": "app=ml-inference"}})
}

async fn load(
    emu: &Emulator,
    cluster: &str,
    ns: &str,
    name: &str,
) -> Result<Option<super::store::Object>, Resp> {
    emu.inner
        .store
        .get(DEPLOYMENT, &key(cluster, ns, name))
        .await
        .map_err(super::arm::db_error)
}

fn not_found(name: &str) -> Resp {
    status(
        StatusCode::NOT_FOUND,
        "NotFound",
        format!("deployments.apps \"{name}\" not found"),
    )
}

/// `GET|PUT /aks/{cluster}/apis/apps/v1/namespaces/{ns}/deployments/{name}[/scale]`, PATCH on `/scale`.
pub async fn deployments(
    State(emu): State<Emulator>,
    Path((cluster, ns, rest)): Path<(String, String, String)>,
    method: axum::http::Method,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    if !has_bearer(&headers) {
        return status(StatusCode::UNAUTHORIZED, "Unauthorized", "Unauthorized");
    }
    let (name, sub) = match rest.split_once('/') {
        Some((n, s)) => (n.to_string(), Some(s.to_string())),
        None => (rest.clone(), None),
    };
    let Some(current) = (match load(&emu, &cluster, &ns, &name).await {
        Ok(c) => c,
        Err(r) => return r,
    }) else {
        return not_found(&name);
    };
    let k = key(&cluster, &ns, &name);
    let parent = format!("/aks/{cluster}/namespaces/{ns}/deployments");
    match (method.as_str(), sub.as_deref()) {
        ("GET", None) => Json(render(&emu, &current.body)).into_response(),
        ("GET", Some("scale")) => {
            Json(scale_of(&name, &ns, &render(&emu, &current.body))).into_response()
        }
        ("PATCH", Some("scale")) => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            if !ct.starts_with("application/merge-patch+json")
                && !ct.starts_with("application/strategic-merge-patch+json")
            {
                return status(StatusCode::UNSUPPORTED_MEDIA_TYPE, "UnsupportedMediaType", format!("the body of the request was in an unknown format - accepted media types include: application/merge-patch+json; got '{ct}'"));
            }
            let Some(replicas) = serde_json::from_slice::<Value>(&body)
                .ok()
                .and_then(|v| v.pointer("/spec/replicas").and_then(Value::as_i64))
            else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "spec.replicas is required",
                );
            };
            if replicas < 0 {
                return status(StatusCode::UNPROCESSABLE_ENTITY, "Invalid", format!("Scale.autoscaling \"{name}\" is invalid: spec.replicas: Invalid value: {replicas}: must be greater than or equal to 0"));
            }
            let now_ready = render(&emu, &current.body)["status"]["readyReplicas"]
                .as_i64()
                .unwrap_or(0);
            let mut b = current.body.clone();
            b["spec"]["replicas"] = json!(replicas);
            b["_emulator"] =
                json!({"from_replicas": now_ready, "changed": Utc::now().to_rfc3339()});
            match emu.inner.store.upsert(DEPLOYMENT, &k, &parent, &b).await {
                Ok(o) => Json(scale_of(&name, &ns, &render(&emu, &o.body))).into_response(),
                Err(e) => super::arm::db_error(e),
            }
        }
        ("PUT", None) => {
            let Ok(mut next) = serde_json::from_slice::<Value>(&body) else {
                return status(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "the body is not a Deployment",
                );
            };
            if next["kind"] != "Deployment"
                || next["spec"]["template"]["spec"]["containers"]
                    .as_array()
                    .is_none_or(|c| c.is_empty())
            {
                return status(
                    StatusCode::UNPROCESSABLE_ENTITY,
                    "Invalid",
                    "a Deployment with at least one container is required",
                );
            }
            let generation = current.body["metadata"]["generation"].as_i64().unwrap_or(1) + 1;
            next["metadata"]["generation"] = json!(generation);
            let image = next
                .pointer("/spec/template/spec/containers/0/image")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string();
            let pullable = match pullable(&emu, &image).await {
                Ok(p) => p,
                Err(e) => return super::arm::db_error(e),
            };
            next["_emulator"] = json!({"from_replicas": 0, "changed": Utc::now().to_rfc3339(), "pullable": pullable});
            match emu.inner.store.upsert(DEPLOYMENT, &k, &parent, &next).await {
                Ok(o) => Json(render(&emu, &o.body)).into_response(),
                Err(e) => super::arm::db_error(e),
            }
        }
        _ => status(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            "the server does not allow this method on the requested resource",
        ),
    }
}

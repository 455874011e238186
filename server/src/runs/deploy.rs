//! Models, online deployments and traffic as runs: register a model from a completed training run, add
//! a deployment at 0% traffic (creating the endpoint first when needed), change the split, roll back.
//! Every input is checked before anything is sent; a busy endpoint is refused, never half-changed.

use super::{internal, Runs};
use crate::azure::error::AzureError;
use crate::db::runs::{self as q, NewRun};
use app::error::AppError;
use app::model::{azure_name_ok, DeploymentSpec, ModelSpec, RunStatus, TrafficSpec};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

pub const MODEL_REGISTER: &str = "model-register";
pub const DEPLOYMENT_CREATE: &str = "deployment-create";
pub const TRAFFIC_UPDATE: &str = "traffic-update";
pub const ROLLBACK: &str = "rollback";
pub const DEPLOYMENT_DELETE: &str = "deployment-delete";

fn azure_refusal(e: AzureError) -> AppError {
    match e.status() {
        Some(409) => AppError::Conflict(format!(
            "The endpoint is busy with another change; nothing was changed. ({e})"
        )),
        Some(400) | Some(404) => AppError::Invalid(e.to_string()),
        _ => AppError::Unavailable(e.to_string()),
    }
}

fn state_of(resource: &Value) -> String {
    resource
        .pointer("/properties/provisioningState")
        .and_then(Value::as_str)
        .unwrap_or("Succeeded")
        .to_string()
}

impl Runs {
    fn endpoint_path(&self, endpoint: &str) -> String {
        format!("{}/onlineEndpoints/{endpoint}", self.workspace())
    }

    /// Records a run (or finds the one a repeated idempotency key made) and, when new, its request.
    pub(super) async fn new_run(
        &self,
        kind: &str,
        target: &str,
        parameters: &Value,
        reason: Option<&str>,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let run = NewRun {
            kind,
            target,
            parameters,
            requested_by: &crate::auth::actor(),
            reason,
            parent_id: None,
            idempotency_key: key,
        };
        let (id, new) = q::insert_or_find(&self.db, &run).await.map_err(internal)?;
        if new {
            q::transition(&self.db, id, "submitting", None, Some("requested"))
                .await
                .map_err(internal)?;
        }
        Ok((id, new))
    }

    /// Registers the next version of `spec.name` from a succeeded training run (synchronous in Azure).
    pub async fn register_model(
        &self,
        spec: &ModelSpec,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        if !spec
            .name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
            || spec.name.is_empty()
        {
            return Err(AppError::Invalid(
                "name: letters, digits, '-', '_' and '.' only".into(),
            ));
        }
        let training = Uuid::parse_str(&spec.training_run)
            .map_err(|_| AppError::Invalid("training_run: not a run id".into()))?;
        let run = q::get(&self.db, training)
            .await
            .map_err(internal)?
            .ok_or_else(|| {
                AppError::Invalid(format!("training_run: there is no run '{training}'"))
            })?;
        if run.kind != super::TRAINING_JOB || run.status != RunStatus::Succeeded.as_str() {
            return Err(AppError::Invalid(
                "training_run: a training job that succeeded is needed to register a model".into(),
            ));
        }
        let job = super::job_name(training);
        let versions = self
            .client
            .list_ml(&format!(
                "{}/models/{}/versions",
                self.workspace(),
                spec.name
            ))
            .await
            .map_err(azure_refusal)?;
        let next = versions
            .iter()
            .filter_map(|v| v["name"].as_str()?.parse::<i64>().ok())
            .max()
            .unwrap_or(0)
            + 1;
        let parameters = json!({"training_run": training.to_string(), "name": spec.name, "version": next.to_string(), "job": job});
        let target = format!("{}:{next}", spec.name);
        let (id, new) = self
            .new_run(
                MODEL_REGISTER,
                &target,
                &parameters,
                spec.reason.as_deref(),
                key,
            )
            .await?;
        if !new {
            return Ok((id, false));
        }
        let body = json!({"properties": {"modelType": "custom_model", "modelUri": format!("azureml://jobs/{job}/outputs/model"),
            "description": format!("Registered by mlops-console from run {training}"), "tags": {"training_run": training.to_string()}}});
        let path = format!("{}/models/{}/versions/{next}", self.workspace(), spec.name);
        let result = self.client.put_ml(&path, &body).await.map(|v| {
            let azure_id = v["id"].as_str().unwrap_or(&path).to_string();
            (azure_id, format!("Registered {target} from job {job}"))
        });
        self.finish_now(id, result, "Azure refused the model")
            .await?;
        Ok((id, true))
    }

    /// Adds a deployment at 0% traffic, creating the endpoint first when it does not exist yet.
    pub async fn create_deployment(
        &self,
        endpoint: &str,
        spec: &DeploymentSpec,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let mut problems = Vec::new();
        if !azure_name_ok(endpoint) {
            problems.push(format!("endpoint: '{endpoint}' must be 3–32 letters, digits or hyphens, starting with a letter"));
        }
        if !azure_name_ok(&spec.deployment) {
            problems.push(format!(
                "deployment: '{}' must be 3–32 letters, digits or hyphens, starting with a letter",
                spec.deployment
            ));
        }
        if !(1..=20).contains(&spec.instance_count) {
            problems.push(format!(
                "instance_count: {} is not between 1 and 20",
                spec.instance_count
            ));
        }
        if let Some(bad) = spec
            .environment_variables
            .keys()
            .find(|k| !app::model::env_name_ok(k))
        {
            problems.push(format!(
                "environment_variables: '{bad}' is not a variable name (letters, digits and _)"
            ));
        }
        let model = spec
            .model
            .split_once(':')
            .filter(|(n, v)| !n.is_empty() && v.parse::<u32>().is_ok());
        if model.is_none() {
            problems.push("model: name:version, e.g. diabetes-classifier:1".into());
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems.join("; ")));
        }
        let (name, version) = model.expect("checked above");
        let model_id = format!("{}/models/{name}/versions/{version}", self.workspace());
        if self
            .client
            .get_ml(&model_id)
            .await
            .map_err(azure_refusal)?
            .is_none()
        {
            return Err(AppError::Invalid(format!(
                "model: there is no version {version} of '{name}'"
            )));
        }
        let endpoint_path = self.endpoint_path(endpoint);
        let existing = self
            .client
            .get_ml(&endpoint_path)
            .await
            .map_err(azure_refusal)?;
        if let Some(ep) = &existing {
            if matches!(state_of(ep).as_str(), "Creating" | "Updating" | "Deleting") {
                return Err(AppError::Conflict(format!(
                    "Endpoint '{endpoint}' is busy ({}); nothing was changed.",
                    state_of(ep)
                )));
            }
        }
        let parameters = json!({"endpoint": endpoint, "deployment": spec.deployment, "model": model_id,
            "instance_type": spec.instance_type, "instance_count": spec.instance_count,
            "environment_variables": spec.environment_variables});
        let target = format!("{endpoint}/{}", spec.deployment);
        let (id, new) = self
            .new_run(
                DEPLOYMENT_CREATE,
                &target,
                &parameters,
                spec.reason.as_deref(),
                key,
            )
            .await?;
        if !new {
            return Ok((id, false));
        }
        if existing.is_none() {
            let body = json!({"location": self.estate.location, "identity": {"type": "SystemAssigned"}, "properties": {"authMode": "Key", "traffic": {}}});
            if let Err(e) = self.client.put_ml(&endpoint_path, &body).await {
                return self.fail_start(id, e).await;
            }
            q::log(&self.db, id, &format!("Creating endpoint {endpoint}"))
                .await
                .map_err(internal)?;
            q::set_outputs(&self.db, id, &json!({"phase": "endpoint"}))
                .await
                .map_err(internal)?;
            q::transition(&self.db, id, "running", Some("Creating"), Some("endpoint"))
                .await
                .map_err(internal)?;
        } else {
            self.put_deployment(id, &parameters).await?;
        }
        q::poll_now(&self.db, id).await.map_err(internal)?;
        Ok((id, true))
    }

    async fn put_deployment(&self, id: Uuid, p: &Value) -> Result<(), AppError> {
        let endpoint = p["endpoint"].as_str().unwrap_or_default();
        let deployment = p["deployment"].as_str().unwrap_or_default();
        let body = json!({"location": self.estate.location, "sku": {"name": "Default", "capacity": p["instance_count"]},
            "properties": {"endpointComputeType": "Managed", "model": p["model"], "instanceType": p["instance_type"],
                "environmentVariables": p.get("environment_variables").cloned().unwrap_or(json!({}))}});
        let path = format!("{}/deployments/{deployment}", self.endpoint_path(endpoint));
        match self.client.put_ml(&path, &body).await {
            Ok(v) => {
                q::set_azure_id(&self.db, id, v["id"].as_str().unwrap_or(&path))
                    .await
                    .map_err(internal)?;
                q::set_outputs(&self.db, id, &json!({"phase": "deployment"}))
                    .await
                    .map_err(internal)?;
                q::log(
                    &self.db,
                    id,
                    &format!("Deploying {deployment} to {endpoint} at 0% traffic"),
                )
                .await
                .map_err(internal)?;
                q::transition(
                    &self.db,
                    id,
                    "running",
                    Some(&state_of(&v)),
                    Some("deployment"),
                )
                .await
                .map_err(internal)?;
            }
            Err(e) => {
                self.fail_start(id, e).await?;
            }
        }
        Ok(())
    }

    /// Changes the split (and mirror) of an endpoint by a PUT of the whole endpoint, recording the split
    /// it replaces so that one click can restore it.
    pub async fn set_traffic(
        &self,
        endpoint: &str,
        spec: &TrafficSpec,
        kind: &str,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems.join("; ")));
        }
        let path = self.endpoint_path(endpoint);
        let mut ep = self
            .client
            .get_ml(&path)
            .await
            .map_err(azure_refusal)?
            .ok_or_else(|| AppError::NotFound(format!("There is no endpoint '{endpoint}'.")))?;
        let state = state_of(&ep);
        if state != "Succeeded" {
            return Err(AppError::Conflict(format!("Endpoint '{endpoint}' is {state}; wait until it has finished. Nothing was changed.")));
        }
        let deployments = self
            .client
            .list_ml(&format!("{path}/deployments"))
            .await
            .map_err(azure_refusal)?;
        for name in spec.traffic.keys().chain(spec.mirror.keys()) {
            match deployments.iter().find(|d| d["name"].as_str().is_some_and(|n| n.eq_ignore_ascii_case(name))) {
                None => return Err(AppError::Invalid(format!("'{name}' is not a deployment of endpoint '{endpoint}'"))),
                Some(d) if state_of(d) != "Succeeded" && spec.traffic.get(name).is_some_and(|w| *w > 0) => {
                    return Err(AppError::Invalid(format!("deployment '{name}' is {}; only a deployment that succeeded can take traffic", state_of(d))))
                }
                Some(_) => {}
            }
        }
        let previous = json!({"traffic": ep["properties"]["traffic"].clone(), "mirror": ep["properties"]["mirrorTraffic"].clone()});
        let parameters = json!({"endpoint": endpoint, "traffic": spec.traffic, "mirror": spec.mirror, "previous": previous});
        let (id, new) = self
            .new_run(kind, endpoint, &parameters, spec.reason.as_deref(), key)
            .await?;
        if !new {
            return Ok((id, false));
        }
        ep["properties"]["traffic"] = json!(spec.traffic);
        ep["properties"]["mirrorTraffic"] = json!(spec.mirror);
        match self.client.put_ml(&path, &ep).await {
            Ok(v) => {
                q::set_azure_id(&self.db, id, &path)
                    .await
                    .map_err(internal)?;
                q::log(
                    &self.db,
                    id,
                    &format!(
                        "Traffic of {endpoint}: {} (was {})",
                        json!(spec.traffic),
                        previous["traffic"]
                    ),
                )
                .await
                .map_err(internal)?;
                q::transition(&self.db, id, "running", Some(&state_of(&v)), None)
                    .await
                    .map_err(internal)?;
                q::poll_now(&self.db, id).await.map_err(internal)?;
                Ok((id, true))
            }
            Err(e) if e.status() == Some(409) => {
                q::set_error(&self.db, id, &e.to_string())
                    .await
                    .map_err(internal)?;
                q::transition(&self.db, id, "failed", None, Some("endpoint busy"))
                    .await
                    .map_err(internal)?;
                Err(azure_refusal(e))
            }
            Err(e) => self.fail_start(id, e).await,
        }
    }

    /// Deletes a retired deployment: one that takes no traffic (live or mirrored).
    pub async fn delete_deployment(
        &self,
        endpoint: &str,
        deployment: &str,
        reason: Option<&str>,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        if !azure_name_ok(endpoint) || !azure_name_ok(deployment) {
            return Err(AppError::Invalid(
                "endpoint and deployment: 3–32 letters, digits or hyphens, starting with a letter"
                    .into(),
            ));
        }
        let path = self.endpoint_path(endpoint);
        let ep = self
            .client
            .get_ml(&path)
            .await
            .map_err(azure_refusal)?
            .ok_or_else(|| AppError::NotFound(format!("There is no endpoint '{endpoint}'.")))?;
        for map in ["traffic", "mirrorTraffic"] {
            let weight = ep["properties"][map][deployment].as_i64().unwrap_or(0);
            if weight > 0 {
                return Err(AppError::Conflict(format!("Deployment '{deployment}' takes {weight}% ({map}); move its traffic before deleting it.")));
            }
        }
        let dep_path = format!("{path}/deployments/{deployment}");
        if self
            .client
            .get_ml(&dep_path)
            .await
            .map_err(azure_refusal)?
            .is_none()
        {
            return Err(AppError::NotFound(format!(
                "There is no deployment '{deployment}' in '{endpoint}'."
            )));
        }
        let parameters = json!({"endpoint": endpoint, "deployment": deployment});
        let (id, new) = self
            .new_run(
                DEPLOYMENT_DELETE,
                &format!("{endpoint}/{deployment}"),
                &parameters,
                reason,
                key,
            )
            .await?;
        if !new {
            return Ok((id, false));
        }
        match self.client.delete_ml(&dep_path).await {
            Ok(()) => {
                q::set_azure_id(&self.db, id, &dep_path)
                    .await
                    .map_err(internal)?;
                q::log(
                    &self.db,
                    id,
                    &format!("Deleting deployment {deployment} of {endpoint}"),
                )
                .await
                .map_err(internal)?;
                q::transition(&self.db, id, "running", Some("Deleting"), None)
                    .await
                    .map_err(internal)?;
                q::poll_now(&self.db, id).await.map_err(internal)?;
            }
            Err(e) => {
                self.fail_start(id, e).await?;
            }
        }
        Ok((id, true))
    }

    /// Restores the split the latest succeeded traffic change replaced.
    pub async fn rollback(
        &self,
        endpoint: &str,
        reason: Option<String>,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let last = sqlx::query_scalar!(
            r#"select parameters from runs where kind in ('traffic-update', 'rollback') and target = $1 and status = 'succeeded'
               order by finished_at desc limit 1"#,
            endpoint
        )
        .fetch_optional(&self.db)
        .await
        .map_err(internal)?
        .ok_or_else(|| AppError::Conflict(format!("There is no earlier traffic split of '{endpoint}' to roll back to.")))?;
        let to_map = |v: &Value| -> std::collections::BTreeMap<String, i64> {
            v.as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, w)| Some((k.clone(), w.as_i64()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let spec = TrafficSpec {
            traffic: to_map(&last["previous"]["traffic"]),
            mirror: to_map(&last["previous"]["mirror"]),
            reason,
        };
        if spec.traffic.values().sum::<i64>() != 100 {
            return Err(AppError::Conflict(
                "The split before the last change sent no traffic anywhere; set a split instead."
                    .into(),
            ));
        }
        self.set_traffic(endpoint, &spec, ROLLBACK, key).await
    }

    /// Tracker step for endpoint and deployment runs: follow provisioningState; start the deployment once
    /// a new endpoint is ready.
    pub(super) async fn poll_lro(
        &self,
        run: &crate::db::runs::RunRow,
    ) -> Result<Duration, sqlx::Error> {
        let p = &run.parameters;
        let endpoint = p["endpoint"].as_str().unwrap_or_default();
        let phase = q::outputs(&self.db, run.id).await?["phase"]
            .as_str()
            .unwrap_or("")
            .to_string();
        if run.kind == DEPLOYMENT_DELETE {
            let path = format!(
                "{}/deployments/{}",
                self.endpoint_path(endpoint),
                p["deployment"].as_str().unwrap_or_default()
            );
            match self.client.get_ml(&path).await {
                Ok(None) => {
                    q::log(&self.db, run.id, "Finished: succeeded").await?;
                    q::transition(&self.db, run.id, "succeeded", Some("Deleted"), None).await?;
                }
                Ok(Some(_)) | Err(_) => return Ok(self.poll * 2),
            }
            return Ok(self.poll);
        }
        let path = match (run.kind.as_str(), phase.as_str()) {
            (DEPLOYMENT_CREATE, "deployment") => format!(
                "{}/deployments/{}",
                self.endpoint_path(endpoint),
                p["deployment"].as_str().unwrap_or_default()
            ),
            (DEPLOYMENT_CREATE, _) | (TRAFFIC_UPDATE | ROLLBACK, _) => self.endpoint_path(endpoint),
            _ => return Ok(self.poll * 10),
        };
        let resource = match self.client.get_ml(&path).await {
            Ok(Some(r)) => r,
            Ok(None) => {
                q::set_error(&self.db, run.id, "The resource no longer exists in Azure").await?;
                q::transition(&self.db, run.id, "failed", None, Some("not found")).await?;
                return Ok(self.poll);
            }
            Err(e) => return Ok(self.backoff(&e)),
        };
        let state = state_of(&resource);
        match state.as_str() {
            "Succeeded" if run.kind == DEPLOYMENT_CREATE && phase == "endpoint" => {
                q::log(&self.db, run.id, &format!("Endpoint {endpoint} is ready")).await?;
                if let Err(e) = self.put_deployment(run.id, p).await {
                    tracing::error!(run = %run.id, error = %e, "could not start the deployment");
                }
            }
            "Succeeded" | "Failed" | "Canceled" => {
                let ours = match state.as_str() {
                    "Succeeded" => "succeeded",
                    "Failed" => "failed",
                    _ => "canceled",
                };
                if run.kind == DEPLOYMENT_CREATE {
                    // The container's own account of the rollout, most useful when it failed.
                    if let Ok(text) = self.client.deployment_logs(&path, 50).await {
                        q::append_stream(
                            &self.db,
                            run.id,
                            "container_lines",
                            "container │ ",
                            &text,
                        )
                        .await?;
                    }
                }
                if ours != "succeeded" {
                    q::set_error(
                        &self.db,
                        run.id,
                        &format!("Azure ended the operation {state}; traffic was not changed"),
                    )
                    .await?;
                }
                q::log(&self.db, run.id, &format!("Finished: {ours}")).await?;
                q::transition(&self.db, run.id, ours, Some(&state), None).await?;
            }
            other => {
                if run.azure_status.as_deref() != Some(other) {
                    q::transition(&self.db, run.id, "running", Some(other), None).await?;
                }
            }
        }
        Ok(self.poll)
    }
}

impl Runs {
    /// The workspace's online endpoints with their deployments and split, read live from Azure.
    pub async fn endpoints(&self) -> Result<Vec<app::model::EndpointView>, AppError> {
        let ws = self.workspace();
        let endpoints = self
            .client
            .list_ml(&format!("{ws}/onlineEndpoints"))
            .await
            .map_err(azure_refusal)?;
        let split = |v: &Value| -> std::collections::BTreeMap<String, i64> {
            v.as_object()
                .map(|o| {
                    o.iter()
                        .filter_map(|(k, w)| Some((k.clone(), w.as_i64()?)))
                        .collect()
                })
                .unwrap_or_default()
        };
        let mut out = Vec::new();
        for ep in endpoints {
            let name = ep["name"].as_str().unwrap_or_default().to_string();
            let deployments = self
                .client
                .list_ml(&format!("{}/deployments", self.endpoint_path(&name)))
                .await
                .map_err(azure_refusal)?;
            out.push(app::model::EndpointView {
                state: state_of(&ep),
                scoring_uri: ep["properties"]["scoringUri"].as_str().map(str::to_string),
                traffic: split(&ep["properties"]["traffic"]),
                mirror: split(&ep["properties"]["mirrorTraffic"]),
                deployments: deployments
                    .iter()
                    .map(|d| {
                        let model = d["properties"]["model"].as_str().unwrap_or_default();
                        // …/models/{name}/versions/{version} → name:version
                        let parts: Vec<&str> = model.rsplit('/').collect();
                        let model = match parts.as_slice() {
                            [version, "versions", name, ..] => format!("{name}:{version}"),
                            _ => model.to_string(),
                        };
                        app::model::DeploymentView {
                            name: d["name"].as_str().unwrap_or_default().to_string(),
                            model,
                            instance_type: d["properties"]["instanceType"]
                                .as_str()
                                .unwrap_or_default()
                                .to_string(),
                            instance_count: d["sku"]["capacity"].as_i64().unwrap_or(1),
                            state: state_of(d),
                        }
                    })
                    .collect(),
                name,
            });
        }
        Ok(out)
    }
}

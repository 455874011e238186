//! Operations as runs: build an inference image in the registry (ACR Tasks), roll an image out to the AKS
//! `ml-inference` deployment, scale it, and start the `Scale-MLOps-Resources` runbook.

use super::{internal, Runs};
use crate::azure::error::AzureError;
use crate::db::runs as q;
use app::error::AppError;
use app::model::Role;
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

pub const AKS_SCALE: &str = "aks-scale";
pub const RUNBOOK: &str = "runbook";
pub const IMAGE_BUILD: &str = "image-build";
pub const AKS_ROLLOUT: &str = "aks-rollout";
const NAMESPACE: &str = "default";

fn refusal(e: AzureError) -> AppError {
    match e.status() {
        Some(404) => AppError::NotFound(e.to_string()),
        Some(400) | Some(422) => AppError::Invalid(e.to_string()),
        Some(409) => AppError::Conflict(e.to_string()),
        _ => AppError::Unavailable(e.to_string()),
    }
}

/// A Kubernetes object name (RFC 1123 label).
fn k8s_name_ok(name: &str) -> bool {
    (1..=63).contains(&name.len())
        && name
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
        && !name.starts_with('-')
        && !name.ends_with('-')
}

/// `repository:tag` as a registry accepts it.
fn image_ok(image: &str) -> bool {
    let Some((repo, tag)) = image.rsplit_once(':') else {
        return false;
    };
    (1..=256).contains(&repo.len())
        && repo
            .chars()
            .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || "._-/".contains(c))
        && !repo.starts_with(['.', '-', '/'])
        && (1..=128).contains(&tag.len())
        && tag
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "._-".contains(c))
}

impl Runs {
    fn cluster(&self) -> String {
        self.estate.resource_id(Role::Aks)
    }

    fn automation(&self) -> String {
        self.estate.resource_id(Role::AutomationAccount)
    }

    /// Scales a deployment on the AKS cluster; the run ends when the ready replicas match.
    pub async fn scale_aks(
        &self,
        name: &str,
        replicas: i64,
        reason: Option<&str>,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        if !k8s_name_ok(name) {
            return Err(AppError::Invalid(format!(
                "'{name}' is not a Kubernetes deployment name"
            )));
        }
        if !(0..=50).contains(&replicas) {
            return Err(AppError::Invalid(format!(
                "replicas: {replicas} is not between 0 and 50"
            )));
        }
        let current = self
            .client
            .kube_deployment(&self.cluster(), NAMESPACE, name)
            .await
            .map_err(refusal)?;
        let from = current["spec"]["replicas"].as_i64().unwrap_or(0);
        let parameters = json!({"deployment": name, "namespace": NAMESPACE, "replicas": replicas, "previous": from});
        let target = format!("{}/{NAMESPACE}/{name}", self.estate.resources.aks);
        let (id, new) = self
            .new_run(AKS_SCALE, &target, &parameters, reason, key)
            .await?;
        if !new {
            return Ok((id, false));
        }
        match self
            .client
            .kube_scale(&self.cluster(), NAMESPACE, name, replicas)
            .await
        {
            Ok(_) => {
                self.accepted(
                    id,
                    &format!("Scaling {name} from {from} to {replicas} replicas"),
                    "running",
                    "Scaling",
                )
                .await?;
            }
            Err(e) => return self.fail_start(id, e).await,
        }
        Ok((id, true))
    }

    fn registry(&self) -> String {
        self.estate.resource_id(Role::ContainerRegistry)
    }

    /// The registry's login server, `{name}.azurecr.io`.
    pub(crate) fn login_server(&self) -> String {
        format!("{}.azurecr.io", self.estate.resources.container_registry)
    }

    /// Builds `image` (`repository:tag`) from the inference code with ACR Tasks and pushes it to the
    /// estate's registry, as `az acr build` does; `build_args` become Docker build arguments.
    pub async fn build_image(
        &self,
        image: &str,
        build_args: &std::collections::BTreeMap<String, String>,
        reason: Option<&str>,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        if !image_ok(image) {
            return Err(AppError::Invalid(format!(
                "image: '{image}' is not repository:tag (lowercase repository; tag of letters, digits, '.', '_', '-')"
            )));
        }
        if let Some(bad) = build_args
            .keys()
            .find(|k| k.is_empty() || !k.chars().all(|c| c.is_ascii_alphanumeric() || c == '_'))
        {
            return Err(AppError::Invalid(format!(
                "build_args: '{bad}' is not a build argument name"
            )));
        }
        let source = "src/inference";
        let parameters = json!({"image": image, "registry": self.login_server(), "source": source,
            "dockerfile": "Dockerfile", "build_args": build_args});
        let target = format!("{}/{image}", self.estate.resources.container_registry);
        let (id, new) = self
            .new_run(IMAGE_BUILD, &target, &parameters, reason, key)
            .await?;
        if !new {
            return Ok((id, false));
        }
        let request = json!({"type": "DockerBuildRequest", "imageNames": [image], "isPushEnabled": true,
            "sourceLocation": source, "dockerFilePath": "Dockerfile",
            "arguments": build_args.iter().map(|(k, v)| json!({"name": k, "value": v, "isSecret": false})).collect::<Vec<_>>(),
            "platform": {"os": "Linux", "architecture": "amd64"}, "agentConfiguration": {"cpu": 2}});
        match self
            .client
            .acr_schedule_run(&self.registry(), &request)
            .await
        {
            Ok(v) => {
                let acr_run = v["name"].as_str().unwrap_or_default().to_string();
                q::set_azure_id(&self.db, id, v["id"].as_str().unwrap_or(&acr_run))
                    .await
                    .map_err(internal)?;
                q::merge_outputs(&self.db, id, &json!({"acr_run": acr_run}))
                    .await
                    .map_err(internal)?;
                self.accepted(
                    id,
                    &format!("Queued build {acr_run} of {}/{image}", self.login_server()),
                    "queued",
                    "Queued",
                )
                .await?;
            }
            Err(e) => return self.fail_start(id, e).await,
        }
        Ok((id, true))
    }

    /// Rolls `image` out to a deployment on the AKS cluster (`kubectl set image` + `rollout status`):
    /// the run ends when every replica runs the new template, or fails when the rollout stalls.
    pub async fn rollout_aks(
        &self,
        name: &str,
        image: &str,
        reason: Option<&str>,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        if !k8s_name_ok(name) {
            return Err(AppError::Invalid(format!(
                "'{name}' is not a Kubernetes deployment name"
            )));
        }
        let bare = image
            .strip_prefix(&format!("{}/", self.login_server()))
            .unwrap_or(image);
        if !image_ok(bare) {
            return Err(AppError::Invalid(format!(
                "image: '{image}' is not repository:tag in {}",
                self.login_server()
            )));
        }
        let image = format!("{}/{bare}", self.login_server());
        let mut current = self
            .client
            .kube_deployment(&self.cluster(), NAMESPACE, name)
            .await
            .map_err(refusal)?;
        let previous = current
            .pointer("/spec/template/spec/containers/0/image")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_string();
        let parameters = json!({"deployment": name, "namespace": NAMESPACE, "image": image, "previous": previous});
        let target = format!("{}/{NAMESPACE}/{name}", self.estate.resources.aks);
        let (id, new) = self
            .new_run(AKS_ROLLOUT, &target, &parameters, reason, key)
            .await?;
        if !new {
            return Ok((id, false));
        }
        current["spec"]["template"]["spec"]["containers"][0]["image"] = json!(image);
        if let Some(m) = current.as_object_mut() {
            m.remove("status");
        }
        match self
            .client
            .kube_apply(&self.cluster(), NAMESPACE, name, current)
            .await
        {
            Ok(applied) => {
                q::merge_outputs(
                    &self.db,
                    id,
                    &json!({"generation": applied["metadata"]["generation"]}),
                )
                .await
                .map_err(internal)?;
                self.accepted(
                    id,
                    &format!("Rolling out {image} to {name} (was {previous})"),
                    "running",
                    "Progressing",
                )
                .await?;
            }
            Err(e) => return self.fail_start(id, e).await,
        }
        Ok((id, true))
    }

    /// Starts the estate's runbook with `parameters`.
    pub async fn start_runbook(
        &self,
        runbook: &str,
        parameters: &Value,
        reason: Option<&str>,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        if !runbook.eq_ignore_ascii_case(&self.estate.resources.runbook) {
            return Err(AppError::NotFound(format!(
                "There is no runbook '{runbook}' in {}.",
                self.estate.resources.automation_account
            )));
        }
        if !parameters.is_object() {
            return Err(AppError::Invalid(
                "parameters: an object of name to value".into(),
            ));
        }
        let target = format!("{}/{runbook}", self.estate.resources.automation_account);
        let (id, new) = self
            .new_run(
                RUNBOOK,
                &target,
                &json!({"runbook": runbook, "parameters": parameters}),
                reason,
                key,
            )
            .await?;
        if !new {
            return Ok((id, false));
        }
        let job = format!("run-{}", &id.simple().to_string()[..12]);
        match self
            .client
            .start_runbook_job(&self.automation(), &job, runbook, parameters)
            .await
        {
            Ok(v) => {
                q::set_azure_id(&self.db, id, v["id"].as_str().unwrap_or(&job))
                    .await
                    .map_err(internal)?;
                q::set_outputs(&self.db, id, &json!({"job": job}))
                    .await
                    .map_err(internal)?;
                q::log(&self.db, id, &format!("Started runbook job {job}"))
                    .await
                    .map_err(internal)?;
                let status = v["properties"]["status"]
                    .as_str()
                    .unwrap_or("New")
                    .to_string();
                q::transition(&self.db, id, "queued", Some(&status), None)
                    .await
                    .map_err(internal)?;
                q::poll_now(&self.db, id).await.map_err(internal)?;
            }
            Err(e) => return self.fail_start(id, e).await,
        }
        Ok((id, true))
    }

    /// Tracker step for operation runs.
    pub(super) async fn poll_ops(&self, run: &q::RunRow) -> Result<Duration, sqlx::Error> {
        match run.kind.as_str() {
            AKS_SCALE => {
                let p = &run.parameters;
                let name = p["deployment"].as_str().unwrap_or_default();
                let want = p["replicas"].as_i64().unwrap_or(0);
                let d = match self
                    .client
                    .kube_deployment(&self.cluster(), NAMESPACE, name)
                    .await
                {
                    Ok(d) => d,
                    Err(_) => return Ok(self.poll * 3),
                };
                let ready = d["status"]["readyReplicas"].as_i64().unwrap_or(0);
                let azure = format!("{ready}/{want} ready");
                if ready == want && d["spec"]["replicas"].as_i64() == Some(want) {
                    q::log(&self.db, run.id, &format!("{name}: {azure}")).await?;
                    q::log(&self.db, run.id, "Finished: succeeded").await?;
                    q::transition(&self.db, run.id, "succeeded", Some(&azure), None).await?;
                } else if run.azure_status.as_deref() != Some(azure.as_str()) {
                    q::transition(&self.db, run.id, "running", Some(&azure), None).await?;
                }
            }
            RUNBOOK => {
                let job = q::outputs(&self.db, run.id).await?["job"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string();
                let v = match self.client.runbook_job(&self.automation(), &job).await {
                    Ok(v) => v,
                    Err(_) => return Ok(self.poll * 3),
                };
                let status = v["properties"]["status"]
                    .as_str()
                    .unwrap_or("New")
                    .to_string();
                let ours = match status.as_str() {
                    "Completed" => "succeeded",
                    "Failed" | "Suspended" => "failed",
                    "Stopped" => "canceled",
                    "Running" | "Stopping" | "Resuming" | "Suspending" => "running",
                    _ => "queued",
                };
                if run.azure_status.as_deref() != Some(status.as_str()) {
                    if matches!(ours, "succeeded" | "failed" | "canceled") {
                        if let Ok(text) = self.client.runbook_output(&self.automation(), &job).await
                        {
                            for line in text.lines().filter(|l| !l.trim().is_empty()) {
                                q::log(&self.db, run.id, line).await?;
                            }
                        }
                        q::log(&self.db, run.id, &format!("Finished: {ours}")).await?;
                    }
                    q::transition(&self.db, run.id, ours, Some(&status), None).await?;
                }
            }
            IMAGE_BUILD => return self.poll_build(run).await,
            AKS_ROLLOUT => return self.poll_rollout(run).await,
            _ => return Ok(self.poll * 10),
        }
        Ok(self.poll)
    }

    async fn poll_build(&self, run: &q::RunRow) -> Result<Duration, sqlx::Error> {
        let acr_run = q::outputs(&self.db, run.id).await?["acr_run"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        let v = match self.client.acr_run(&self.registry(), &acr_run).await {
            Ok(v) => v,
            Err(e) => return Ok(self.backoff(&e)),
        };
        let status = v["properties"]["status"]
            .as_str()
            .unwrap_or("Queued")
            .to_string();
        let ours = match status.as_str() {
            "Succeeded" => "succeeded",
            "Failed" | "Error" | "Timeout" => "failed",
            "Canceled" => "canceled",
            "Started" | "Running" => "running",
            _ => "queued",
        };
        if ours != "queued" {
            if let Ok(text) = self.client.acr_run_log(&self.registry(), &acr_run).await {
                q::append_stream(&self.db, run.id, "build_lines", "build │ ", &text).await?;
            }
        }
        if run.azure_status.as_deref() != Some(status.as_str()) {
            if ours == "succeeded" {
                let digest = v
                    .pointer("/properties/outputImages/0/digest")
                    .and_then(Value::as_str)
                    .unwrap_or("?");
                let image = run.parameters["image"].as_str().unwrap_or_default();
                q::log(
                    &self.db,
                    run.id,
                    &format!("Pushed {}/{image}@{digest}", self.login_server()),
                )
                .await?;
            } else if matches!(ours, "failed" | "canceled") {
                q::set_error(
                    &self.db,
                    run.id,
                    &format!("The build {acr_run} ended {status}; see the build log"),
                )
                .await?;
            }
            if matches!(ours, "succeeded" | "failed" | "canceled") {
                q::log(&self.db, run.id, &format!("Finished: {ours}")).await?;
            }
            q::transition(&self.db, run.id, ours, Some(&status), None).await?;
        }
        Ok(self.poll)
    }

    async fn poll_rollout(&self, run: &q::RunRow) -> Result<Duration, sqlx::Error> {
        let p = &run.parameters;
        let name = p["deployment"].as_str().unwrap_or_default();
        let d = match self
            .client
            .kube_deployment(&self.cluster(), NAMESPACE, name)
            .await
        {
            Ok(d) => d,
            Err(e) => return Ok(self.backoff(&e)),
        };
        let want = d["spec"]["replicas"].as_i64().unwrap_or(0);
        let st = &d["status"];
        let (updated, ready) = (
            st["updatedReplicas"].as_i64().unwrap_or(0),
            st["readyReplicas"].as_i64().unwrap_or(0),
        );
        let observed = st["observedGeneration"].as_i64().unwrap_or(0)
            >= d["metadata"]["generation"].as_i64().unwrap_or(0);
        let stalled = st["conditions"].as_array().and_then(|c| {
            c.iter()
                .find(|c| c["type"] == "Progressing" && c["reason"] == "ProgressDeadlineExceeded")
        });
        let azure = format!("{updated}/{want} updated, {ready} ready");
        if let Some(c) = stalled {
            let msg = format!(
                "The rollout stalled (ProgressDeadlineExceeded): {} Check that {} can be pulled.",
                c["message"].as_str().unwrap_or_default(),
                p["image"].as_str().unwrap_or_default()
            );
            q::set_error(&self.db, run.id, &msg).await?;
            q::log(&self.db, run.id, &msg).await?;
            q::log(&self.db, run.id, "Finished: failed").await?;
            q::transition(
                &self.db,
                run.id,
                "failed",
                Some("ProgressDeadlineExceeded"),
                None,
            )
            .await?;
        } else if observed && updated == want && ready == want {
            q::log(
                &self.db,
                run.id,
                &format!("deployment \"{name}\" successfully rolled out ({azure})"),
            )
            .await?;
            q::log(&self.db, run.id, "Finished: succeeded").await?;
            q::transition(&self.db, run.id, "succeeded", Some(&azure), None).await?;
        } else if run.azure_status.as_deref() != Some(azure.as_str()) {
            q::log(&self.db, run.id, &format!("Waiting for rollout: {azure}")).await?;
            q::transition(&self.db, run.id, "running", Some(&azure), None).await?;
        }
        Ok(self.poll)
    }
}

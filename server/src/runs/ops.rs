//! Operations as runs: scale the AKS `ml-inference` deployment, start the `Scale-MLOps-Resources` runbook.

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
                q::log(
                    &self.db,
                    id,
                    &format!("Scaling {name} from {from} to {replicas} replicas"),
                )
                .await
                .map_err(internal)?;
                q::transition(&self.db, id, "running", Some("Scaling"), None)
                    .await
                    .map_err(internal)?;
                q::poll_now(&self.db, id).await.map_err(internal)?;
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
            _ => return Ok(self.poll * 10),
        }
        Ok(self.poll)
    }
}

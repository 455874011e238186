//! The seed's "Complete Workflow Example" in one click: train → register the model → build its inference
//! image in the registry → deploy it to the staging endpoint at 0% traffic → store the endpoint key in Key
//! Vault → roll the image out to the AKS `ml-inference` deployment. A parent run with a child run per
//! step, driven by the tracker; it stops at the first failure, and endpoint traffic is never changed by it.

use super::deploy::MODEL_REGISTER;
use super::{internal, Runs};
use crate::db::runs as q;
use app::error::AppError;
use app::model::{DeploymentSpec, ModelSpec, Role, RunStatus, TrainingJobSpec};
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use std::time::Duration;
use uuid::Uuid;

pub const PIPELINE: &str = "pipeline";
pub const SECRET_SET: &str = "secret-set";
const STEPS: [&str; 6] = [
    "train",
    "register",
    "build-image",
    "deploy",
    "store-key",
    "rollout-aks",
];
/// The AKS deployment the pipeline rolls the new image out to.
const AKS_DEPLOYMENT: &str = "ml-inference";

/// `POST /api/v1/pipelines/train-deploy`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct PipelineSpec {
    #[serde(default = "TrainingJobSpec::seed_default")]
    pub training: TrainingJobSpec,
    #[serde(default = "staging")]
    pub endpoint: String,
    #[serde(default = "one")]
    pub instance_count: i64,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The model version a register step made.
fn version_of(register: Option<&q::RunRow>) -> String {
    register
        .and_then(|r| r.parameters["version"].as_str().map(str::to_string))
        .unwrap_or_default()
}

fn staging() -> String {
    "ml-endpoint-staging".into()
}

fn one() -> i64 {
    1
}

impl Runs {
    pub async fn start_pipeline(
        &self,
        spec: &PipelineSpec,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let mut problems = spec.training.problems();
        if !app::model::azure_name_ok(&spec.endpoint) {
            problems.push(format!(
                "endpoint: '{}' must be 3–32 letters, digits or hyphens, starting with a letter",
                spec.endpoint
            ));
        }
        if !(1..=20).contains(&spec.instance_count) {
            problems.push(format!(
                "instance_count: {} is not between 1 and 20",
                spec.instance_count
            ));
        }
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems.join("; ")));
        }
        let parameters = serde_json::to_value(spec).map_err(|_| AppError::Internal)?;
        let (id, new) = self
            .new_run(
                PIPELINE,
                &spec.endpoint,
                &parameters,
                spec.reason.as_deref(),
                key,
            )
            .await?;
        if new {
            q::log(
                &self.db,
                id,
                &format!(
                    "Train and deploy to {}: {}",
                    spec.endpoint,
                    STEPS.join(" → ")
                ),
            )
            .await
            .map_err(internal)?;
            q::transition(&self.db, id, "running", Some("train"), None)
                .await
                .map_err(internal)?;
            q::poll_now(&self.db, id).await.map_err(internal)?;
        }
        Ok((id, new))
    }

    /// Starts step `step` as a child run; the key `{parent}:{step}` makes a retried start return the same child.
    async fn start_step(
        &self,
        parent: Uuid,
        spec: &PipelineSpec,
        step: usize,
        previous: Option<&q::RunRow>,
    ) -> Result<Uuid, AppError> {
        let key = format!("{parent}:{step}");
        let (child, _) = match STEPS[step] {
            "train" => {
                self.submit_training(&spec.training, &crate::auth::actor(), Some(&key))
                    .await?
            }
            "register" => {
                let training = previous.map(|r| r.id.to_string()).unwrap_or_default();
                self.register_model(
                    &ModelSpec {
                        training_run: training,
                        name: "diabetes-classifier".into(),
                        reason: spec.reason.clone(),
                    },
                    Some(&key),
                )
                .await?
            }
            "build-image" => {
                self.build_image(
                    &format!("inference:v{}", version_of(previous)),
                    &Default::default(),
                    spec.reason.as_deref(),
                    Some(&key),
                )
                .await?
            }
            "deploy" => {
                let version = version_of(previous);
                let deployment = DeploymentSpec {
                    deployment: format!("model-v{version}"),
                    model: format!("diabetes-classifier:{version}"),
                    instance_type: "Standard_DS2_v2".into(),
                    instance_count: spec.instance_count,
                    environment_variables: Default::default(),
                    reason: spec.reason.clone(),
                };
                self.create_deployment(&spec.endpoint, &deployment, Some(&key))
                    .await?
            }
            "rollout-aks" => {
                self.rollout_aks(
                    AKS_DEPLOYMENT,
                    &format!("inference:v{}", version_of(previous)),
                    spec.reason.as_deref(),
                    Some(&key),
                )
                .await?
            }
            _ => self.store_endpoint_key(&spec.endpoint, Some(&key)).await?,
        };
        sqlx::query!(
            "update runs set parent_id = $1 where id = $2 and parent_id is null",
            parent,
            child
        )
        .execute(&self.db)
        .await
        .map_err(internal)?;
        Ok(child)
    }

    /// Reads the endpoint's primary key and stores it in the estate's Key Vault as `endpoint-key`.
    /// The key itself is never written to the run, its log or the server's log.
    pub async fn store_endpoint_key(
        &self,
        endpoint: &str,
        key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let vault = self.estate.name_of(Role::KeyVault).to_string();
        let parameters = json!({"endpoint": endpoint, "vault": vault, "secret": "endpoint-key"});
        let (id, new) = self
            .new_run(
                SECRET_SET,
                &format!("{vault}/endpoint-key"),
                &parameters,
                None,
                key,
            )
            .await?;
        if !new {
            return Ok((id, false));
        }
        let outcome = async {
            let keys = self
                .client
                .endpoint_keys(&format!("{}/onlineEndpoints/{endpoint}", self.workspace()))
                .await?;
            let primary = keys["primaryKey"].as_str().unwrap_or_default();
            self.client
                .set_secret(&vault, "endpoint-key", primary)
                .await
        }
        .await;
        let result = outcome.map(|secret_id| {
            (
                secret_id,
                format!("Stored the key of {endpoint} as endpoint-key in {vault}"),
            )
        });
        self.finish_now(id, result, "could not store the key")
            .await?;
        Ok((id, true))
    }

    /// Tracker step for a pipeline: start the current step, or move on when its child has ended.
    pub(super) async fn poll_pipeline(&self, run: &q::RunRow) -> Result<Duration, sqlx::Error> {
        let spec: PipelineSpec = match serde_json::from_value(run.parameters.clone()) {
            Ok(s) => s,
            Err(_) => {
                q::transition(
                    &self.db,
                    run.id,
                    "failed",
                    None,
                    Some("parameters unreadable"),
                )
                .await?;
                return Ok(self.poll);
            }
        };
        let mut state: Value = q::outputs(&self.db, run.id).await?;
        let step = state["step"].as_u64().unwrap_or(0) as usize;
        let child = state["child"]
            .as_str()
            .and_then(|c| Uuid::parse_str(c).ok());
        let Some(child) = child else {
            let previous = match state["previous"]
                .as_str()
                .and_then(|c| Uuid::parse_str(c).ok())
            {
                Some(p) => q::get(&self.db, p).await?,
                None => None,
            };
            // Each step acts for whoever asked for the pipeline.
            let started = crate::auth::ACTOR
                .scope(
                    run.requested_by.clone(),
                    self.start_step(run.id, &spec, step, previous.as_ref()),
                )
                .await;
            match started {
                Ok(c) => {
                    state["child"] = json!(c.to_string());
                    q::set_outputs(&self.db, run.id, &state).await?;
                    q::log(
                        &self.db,
                        run.id,
                        &format!(
                            "Step {}/{}: {} → run {c}",
                            step + 1,
                            STEPS.len(),
                            STEPS[step]
                        ),
                    )
                    .await?;
                }
                Err(AppError::Conflict(reason)) => {
                    q::log(
                        &self.db,
                        run.id,
                        &format!("Step {} waits: {reason}", STEPS[step]),
                    )
                    .await?;
                    return Ok(self.poll * 5);
                }
                Err(e) => {
                    let msg = format!("Step {} could not start: {e}", STEPS[step]);
                    q::set_error(&self.db, run.id, &msg).await?;
                    q::log(&self.db, run.id, &msg).await?;
                    q::log(&self.db, run.id, "Finished: failed (traffic unchanged)").await?;
                    q::transition(&self.db, run.id, "failed", Some(STEPS[step]), None).await?;
                }
            }
            return Ok(self.poll);
        };
        let Some(c) = q::get(&self.db, child).await? else {
            return Ok(self.poll);
        };
        match RunStatus::parse(&c.status) {
            Some(RunStatus::Succeeded) => {
                let next = step + 1;
                if next == STEPS.len() {
                    q::log(&self.db, run.id, "Finished: succeeded").await?;
                    q::transition(&self.db, run.id, "succeeded", Some("done"), None).await?;
                } else {
                    let keep = if c.kind == MODEL_REGISTER || c.kind == super::TRAINING_JOB {
                        json!(c.id.to_string())
                    } else {
                        state["previous"].clone()
                    };
                    let state = json!({"step": next, "previous": keep});
                    q::set_outputs(&self.db, run.id, &state).await?;
                    q::transition(&self.db, run.id, "running", Some(STEPS[next]), None).await?;
                    return Ok(Duration::ZERO.max(self.poll / 2));
                }
            }
            Some(RunStatus::Failed | RunStatus::Canceled) => {
                let msg = format!(
                    "Step {} failed: {}",
                    STEPS[step],
                    c.error.clone().unwrap_or_else(|| c.status.clone())
                );
                q::set_error(&self.db, run.id, &msg).await?;
                q::log(&self.db, run.id, &msg).await?;
                q::log(&self.db, run.id, "Finished: failed (traffic unchanged)").await?;
                q::transition(&self.db, run.id, "failed", Some(STEPS[step]), None).await?;
            }
            _ => {}
        }
        Ok(self.poll)
    }
}

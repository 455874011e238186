//! Runs: every action recorded in Postgres from request to terminal state, and the tracker that follows
//! each run in flight. Any number of replicas share the work through leases (`FOR UPDATE SKIP LOCKED`), so
//! each run is polled by one replica at a time and each transition is recorded once; a restarted replica
//! resumes whatever is still in flight.

pub mod alerts;
pub mod deploy;
pub mod ops;
pub mod pipeline;

use crate::azure::error::AzureError;
use crate::azure::wire::{Job, JobInput, JobProperties, MlflowRunResponse};
use crate::azure::AzureClient;
use crate::db::runs::{self as q, NewRun, RunRow};
use app::error::AppError;
use app::model::{
    Estate, LogLine, Metric, Role, RunDetail, RunFilter, RunList, RunStatus, RunSummary,
    TrainingJobSpec, Transition,
};
use chrono::{DateTime, Utc};
use sqlx::PgPool;
use std::sync::Arc;
use std::time::Duration;
use uuid::Uuid;

pub const TRAINING_JOB: &str = "training-job";

pub struct Runs {
    db: PgPool,
    client: Arc<AzureClient>,
    estate: Estate,
    /// This replica's name in leases.
    owner: String,
    poll: Duration,
}

pub(crate) fn internal(e: sqlx::Error) -> AppError {
    tracing::error!(error = %e, "runs: database error");
    AppError::Internal
}

/// Azure ML's job status in our words.
pub fn status_of_job(azure: &str) -> RunStatus {
    match azure {
        "Completed" => RunStatus::Succeeded,
        "Failed" | "NotResponding" => RunStatus::Failed,
        "Canceled" => RunStatus::Canceled,
        "Running" | "Finalizing" | "CancelRequested" => RunStatus::Running,
        _ => RunStatus::Queued,
    }
}

/// The job name a run submits: derived from the run, so a resumed submission cannot create a second job.
pub(crate) fn job_name(run: Uuid) -> String {
    format!("train-{}", &run.simple().to_string()[..12])
}

impl Runs {
    pub fn new(db: PgPool, client: Arc<AzureClient>, estate: Estate, poll: Duration) -> Runs {
        Runs {
            db,
            client,
            estate,
            owner: format!("{}-{}", std::process::id(), Uuid::new_v4().simple()),
            poll,
        }
    }

    pub fn estate(&self) -> &Estate {
        &self.estate
    }

    pub(crate) fn workspace(&self) -> String {
        self.estate.resource_id(Role::MlWorkspace)
    }

    fn job_body(&self, spec: &TrainingJobSpec) -> Job {
        let ws = self.workspace();
        let asset = |s: &str, kind: &str| {
            // `azureml:name:version` → the workspace asset's ARM id, as the CLI resolves it.
            match s.strip_prefix("azureml:").and_then(|r| r.split_once(':')) {
                Some((name, version)) => format!("{ws}/{kind}/{name}/versions/{version}"),
                None => s.to_string(),
            }
        };
        Job {
            properties: JobProperties {
                job_type: "Command".into(),
                display_name: spec.display_name.clone(),
                experiment_name: Some(spec.experiment_name.clone()),
                command: Some(spec.command.clone()),
                code_id: Some(asset(&spec.code, "codes")),
                environment_id: Some(asset(&spec.environment, "environments")),
                compute_id: Some(format!("{ws}/computes/{}", spec.compute.trim())),
                inputs: spec
                    .inputs
                    .iter()
                    .map(|(k, v)| {
                        (
                            k.clone(),
                            JobInput {
                                job_input_type: "literal".into(),
                                value: Some(v.clone()),
                                ..Default::default()
                            },
                        )
                    })
                    .collect(),
                tags: [("submitted-by".to_string(), "mlops-console".to_string())]
                    .into_iter()
                    .collect(),
                ..Default::default()
            },
            ..Default::default()
        }
    }

    /// Records and submits a training job; a repeated idempotency key returns the first run.
    /// Returns the run id and whether this call created it.
    pub async fn submit_training(
        &self,
        spec: &TrainingJobSpec,
        requested_by: &str,
        idempotency_key: Option<&str>,
    ) -> Result<(Uuid, bool), AppError> {
        let problems = spec.problems();
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems.join("; ")));
        }
        if idempotency_key.is_some_and(|k| k.is_empty() || k.len() > 200) {
            return Err(AppError::BadRequest(
                "Idempotency-Key: 1 to 200 characters".into(),
            ));
        }
        let parameters = serde_json::to_value(spec).map_err(|_| AppError::Internal)?;
        let (id, new) = q::insert_or_find(
            &self.db,
            &NewRun {
                kind: TRAINING_JOB,
                target: "",
                parameters: &parameters,
                requested_by,
                reason: spec.reason.as_deref(),
                parent_id: None,
                idempotency_key,
            },
        )
        .await
        .map_err(internal)?;
        if !new {
            return Ok((id, false));
        }
        let name = job_name(id);
        sqlx::query!(
            "update runs set target = $2 where id = $1",
            id,
            format!("{}/jobs/{name}", self.estate.resources.ml_workspace)
        )
        .execute(&self.db)
        .await
        .map_err(internal)?;
        q::transition(&self.db, id, "submitting", None, Some("requested"))
            .await
            .map_err(internal)?;
        q::log(
            &self.db,
            id,
            &format!(
                "Submitting command job {name} to {}",
                self.estate.resources.ml_workspace
            ),
        )
        .await
        .map_err(internal)?;
        self.send_job(id, &name, spec).await?;
        Ok((id, true))
    }

    /// PUTs the job once. On a clear refusal the run fails; when the answer is lost, the tracker finds out.
    async fn send_job(&self, id: Uuid, name: &str, spec: &TrainingJobSpec) -> Result<(), AppError> {
        match self
            .client
            .create_job(&self.workspace(), name, &self.job_body(spec))
            .await
        {
            Ok(job) => {
                let azure = job.properties.status.unwrap_or_else(|| "NotStarted".into());
                q::set_azure_id(&self.db, id, job.id.as_deref().unwrap_or(name))
                    .await
                    .map_err(internal)?;
                q::transition(
                    &self.db,
                    id,
                    status_of_job(&azure).as_str(),
                    Some(&azure),
                    None,
                )
                .await
                .map_err(internal)?;
                q::log(&self.db, id, &format!("Azure accepted the job: {azure}"))
                    .await
                    .map_err(internal)?;
                q::poll_now(&self.db, id).await.map_err(internal)?;
            }
            Err(AzureError::Api { status: 409, .. }) => {
                // Our name is taken: an earlier attempt of this same run got through after all.
                q::log(
                    &self.db,
                    id,
                    "The job already exists in Azure; following it",
                )
                .await
                .map_err(internal)?;
                q::poll_now(&self.db, id).await.map_err(internal)?;
            }
            Err(
                e @ AzureError::Api {
                    status: 400..=499, ..
                },
            ) if e.status() != Some(429) => {
                let msg = e.to_string();
                q::set_error(&self.db, id, &msg).await.map_err(internal)?;
                q::transition(&self.db, id, "failed", None, Some("Azure refused the job"))
                    .await
                    .map_err(internal)?;
                q::log(&self.db, id, &format!("Azure refused the job: {msg}"))
                    .await
                    .map_err(internal)?;
            }
            Err(e) => {
                // Maybe created, maybe not: the job name is fixed, so the tracker can look it up and decide.
                tracing::warn!(run = %id, error = %e, "job submission did not get an answer; the tracker will resolve it");
                q::log(
                    &self.db,
                    id,
                    &format!("No answer from Azure yet ({e}); will check again"),
                )
                .await
                .map_err(internal)?;
                q::poll_now(&self.db, id).await.map_err(internal)?;
            }
        }
        Ok(())
    }

    /// Ends a run whose Azure call answered at once: on success the Azure id and a log line, on failure
    /// the error, with `failure` as the transition's note.
    pub(crate) async fn finish_now(
        &self,
        id: Uuid,
        result: Result<(String, String), AzureError>,
        failure: &str,
    ) -> Result<(), AppError> {
        match result {
            Ok((azure_id, line)) => {
                q::set_azure_id(&self.db, id, &azure_id)
                    .await
                    .map_err(internal)?;
                q::log(&self.db, id, &line).await.map_err(internal)?;
                q::transition(&self.db, id, "succeeded", Some("Succeeded"), None)
                    .await
                    .map_err(internal)?;
            }
            Err(e) => {
                q::set_error(&self.db, id, &e.to_string())
                    .await
                    .map_err(internal)?;
                q::transition(&self.db, id, "failed", None, Some(failure))
                    .await
                    .map_err(internal)?;
            }
        }
        Ok(())
    }

    /// A run Azure has accepted: its first log line, the transition, and the tracker told to look now.
    pub(crate) async fn accepted(
        &self,
        id: Uuid,
        line: &str,
        status: &str,
        azure: &str,
    ) -> Result<(), AppError> {
        q::log(&self.db, id, line).await.map_err(internal)?;
        q::transition(&self.db, id, status, Some(azure), None)
            .await
            .map_err(internal)?;
        q::poll_now(&self.db, id).await.map_err(internal)
    }

    /// When to look again after Azure did not answer: when it said (Retry-After), else in three polls.
    pub(crate) fn backoff(&self, e: &AzureError) -> Duration {
        match e {
            AzureError::Api {
                retry_after: Some(after),
                ..
            } => (*after).max(self.poll),
            _ => self.poll * 3,
        }
    }

    /// Ends a run whose first call to Azure was refused: the error, a log line, and the failed transition.
    pub(crate) async fn fail_start(
        &self,
        id: Uuid,
        e: AzureError,
    ) -> Result<(Uuid, bool), AppError> {
        q::set_error(&self.db, id, &e.to_string())
            .await
            .map_err(internal)?;
        q::log(&self.db, id, &format!("Azure refused: {e}"))
            .await
            .map_err(internal)?;
        q::transition(&self.db, id, "failed", None, Some("Azure refused"))
            .await
            .map_err(internal)?;
        Ok((id, true))
    }

    /// One pass of the tracker: lease what is due and poll it.
    pub async fn track_once(&self) -> Result<usize, sqlx::Error> {
        let lease = (self.poll.as_secs_f64() * 10.0).max(10.0);
        let due = q::claim_due(&self.db, &self.owner, 16, lease).await?;
        let n = due.len();
        futures::future::join_all(due.into_iter().map(|run| self.track(run))).await;
        Ok(n)
    }

    async fn track(&self, run: RunRow) {
        let next = match self.poll_run(&run).await {
            Ok(next) => next,
            Err(e) => {
                tracing::error!(run = %run.id, error = %e, "tracking a run failed");
                self.poll * 5
            }
        };
        if let Err(e) = q::release(&self.db, run.id, &self.owner, next.as_secs_f64()).await {
            tracing::error!(run = %run.id, error = %e, "could not release a run");
        }
    }

    /// Looks at one run in Azure and records what changed. Returns when to look again.
    async fn poll_run(&self, run: &RunRow) -> Result<Duration, sqlx::Error> {
        match run.kind.as_str() {
            TRAINING_JOB => {}
            ops::AKS_SCALE | ops::RUNBOOK | ops::IMAGE_BUILD | ops::AKS_ROLLOUT => {
                return self.poll_ops(run).await
            }
            pipeline::PIPELINE => return self.poll_pipeline(run).await,
            pipeline::SECRET_SET | deploy::MODEL_REGISTER | alerts::ALERT_STATE => {
                return Ok(self.poll * 10)
            }
            _ => return self.poll_lro(run).await,
        }
        let name = job_name(run.id);
        let job = match self.client.get_job(&self.workspace(), &name).await {
            Ok(job) => job,
            Err(e) if e.is_not_found() && run.status == "submitting" => {
                // The submission never reached Azure (or we died first): the name is unused, so send it now.
                let spec: TrainingJobSpec = match serde_json::from_value(run.parameters.clone()) {
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
                q::log(&self.db, run.id, "Resuming the submission").await?;
                if let Err(e) = self.send_job(run.id, &name, &spec).await {
                    tracing::error!(run = %run.id, error = %e, "resubmission failed");
                }
                return Ok(self.poll);
            }
            Err(e) if e.is_not_found() => {
                q::set_error(&self.db, run.id, "The job no longer exists in Azure").await?;
                q::transition(&self.db, run.id, "failed", None, Some("job not found")).await?;
                return Ok(self.poll);
            }
            Err(AzureError::Api {
                retry_after: Some(after),
                ..
            }) => return Ok(after.max(self.poll)),
            Err(e) => {
                tracing::warn!(run = %run.id, error = %e, "could not read the job; will retry");
                return Ok(self.poll * 3);
            }
        };
        if run.azure_id.is_none() {
            q::set_azure_id(&self.db, run.id, job.id.as_deref().unwrap_or(&name)).await?;
        }
        let azure = job
            .properties
            .status
            .clone()
            .unwrap_or_else(|| "NotStarted".into());
        let ours = status_of_job(&azure);
        // Everything a finished run shows (metrics, error, last log line) is written before the
        // transition that makes it terminal, so a reader who sees the end sees all of it.
        if matches!(
            ours,
            RunStatus::Running | RunStatus::Succeeded | RunStatus::Failed
        ) {
            if let Ok(MlflowRunResponse { run: mlflow }) =
                self.client.job_metrics(&self.workspace(), &name).await
            {
                let metrics: Vec<Metric> = mlflow
                    .data
                    .metrics
                    .into_iter()
                    .map(|m| Metric {
                        key: m.key,
                        value: m.value,
                        step: m.step,
                    })
                    .collect();
                if !metrics.is_empty() {
                    q::merge_outputs(&self.db, run.id, &serde_json::json!({ "metrics": metrics }))
                        .await?;
                }
            }
            if let Ok(text) = self.client.job_log(&self.workspace(), &name).await {
                q::append_stream(&self.db, run.id, "log_lines", "std_log │ ", &text).await?;
            }
        }
        if run.azure_status.as_deref() != Some(azure.as_str()) {
            q::log(&self.db, run.id, &format!("Azure status: {azure}")).await?;
            if ours.is_terminal() {
                if ours == RunStatus::Failed {
                    q::set_error(&self.db, run.id, &format!("The job ended {azure} in Azure"))
                        .await?;
                }
                q::log(&self.db, run.id, &format!("Finished: {}", ours.as_str())).await?;
            }
            q::transition(&self.db, run.id, ours.as_str(), Some(&azure), None).await?;
        }
        Ok(self.poll)
    }

    /// Runs the tracker until the task is dropped.
    pub fn spawn_tracker(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(me.poll.min(Duration::from_millis(500)));
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                if let Err(e) = me.track_once().await {
                    tracing::error!(error = %e, "the run tracker could not reach the database");
                }
            }
        })
    }

    pub async fn detail(&self, id: &str) -> Result<RunDetail, AppError> {
        let not_found = || AppError::NotFound(format!("There is no run '{id}'."));
        let uuid = Uuid::parse_str(id).map_err(|_| not_found())?;
        let run = q::get(&self.db, uuid)
            .await
            .map_err(internal)?
            .ok_or_else(not_found)?;
        let transitions = q::transitions(&self.db, uuid).await.map_err(internal)?;
        let logs = q::logs(&self.db, uuid, 2000).await.map_err(internal)?;
        let outputs = q::outputs(&self.db, uuid).await.map_err(internal)?;
        let metrics: Vec<Metric> = outputs
            .get("metrics")
            .and_then(|m| serde_json::from_value(m.clone()).ok())
            .unwrap_or_default();
        Ok(RunDetail {
            parameters: run.parameters.clone(),
            reason: run.reason.clone(),
            azure_id: run.azure_id.clone(),
            parent_id: run.parent_id.map(|p| p.to_string()),
            error: run.error.clone(),
            summary: summary(run.into()),
            transitions: transitions
                .into_iter()
                .map(|t| Transition {
                    status: RunStatus::parse(&t.status).unwrap_or(RunStatus::Running),
                    azure_status: t.azure_status,
                    at: t.at,
                    note: t.note,
                })
                .collect(),
            logs: logs
                .into_iter()
                .map(|l| LogLine {
                    at: l.at,
                    line: l.line,
                })
                .collect(),
            metrics,
        })
    }

    pub async fn list(&self, f: &RunFilter) -> Result<RunList, AppError> {
        let limit = f.limit.unwrap_or(50);
        if !(1..=200).contains(&limit) {
            return Err(AppError::BadRequest("limit: 1 to 200".into()));
        }
        let time = |what: &str, v: &Option<String>| -> Result<Option<DateTime<Utc>>, AppError> {
            v.as_deref()
                .filter(|s| !s.is_empty())
                .map(|s| {
                    DateTime::parse_from_rfc3339(s)
                        .map(|t| t.with_timezone(&Utc))
                        .map_err(|_| {
                            AppError::BadRequest(format!(
                                "{what}: an RFC 3339 time such as 2026-12-01T00:00:00Z"
                            ))
                        })
                })
                .transpose()
        };
        if let Some(s) = f.status.as_deref().filter(|s| !s.is_empty()) {
            if RunStatus::parse(s).is_none() {
                return Err(AppError::BadRequest(format!(
                    "status: one of {}",
                    RunStatus::ALL.map(RunStatus::as_str).join(", ")
                )));
            }
        }
        let before = match f.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(c) => Some(decode_cursor(c).ok_or_else(|| {
                AppError::BadRequest("cursor: not one this server gave out".into())
            })?),
        };
        let nonempty = |v: &Option<String>| v.clone().filter(|s| !s.trim().is_empty());
        let filter = q::ListFilter {
            kind: nonempty(&f.kind),
            status: nonempty(&f.status),
            target: nonempty(&f.target),
            requested_by: nonempty(&f.requested_by),
            since: time("since", &f.since)?,
            until: time("until", &f.until)?,
            before,
        };
        let mut rows = q::list(&self.db, &filter, limit + 1)
            .await
            .map_err(internal)?;
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last().map(|r| encode_cursor(r.created_at, r.id)))
            .flatten();
        Ok(RunList {
            runs: rows.into_iter().map(summary).collect(),
            next_cursor,
        })
    }
}

fn summary(r: q::ListRow) -> RunSummary {
    RunSummary {
        id: r.id.to_string(),
        kind: r.kind,
        target: r.target,
        status: RunStatus::parse(&r.status).unwrap_or(RunStatus::Running),
        azure_status: r.azure_status,
        requested_by: r.requested_by,
        created_at: r.created_at,
        finished_at: r.finished_at,
    }
}

/// `<micros since epoch>.<uuid>`: opaque to clients, exact for the keyset.
pub fn encode_cursor(at: DateTime<Utc>, id: Uuid) -> String {
    format!("{}.{}", at.timestamp_micros(), id.simple())
}

pub fn decode_cursor(c: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (micros, id) = c.split_once('.')?;
    Some((
        DateTime::from_timestamp_micros(micros.parse().ok()?)?,
        Uuid::parse_str(id).ok()?,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cursors_round_trip_and_reject_garbage() {
        let at = DateTime::from_timestamp_micros(1_764_800_000_123_456).unwrap();
        let id = Uuid::new_v4();
        assert_eq!(decode_cursor(&encode_cursor(at, id)), Some((at, id)));
        assert_eq!(decode_cursor("nope"), None);
        assert_eq!(decode_cursor("12.not-a-uuid"), None);
    }

    #[test]
    fn azure_statuses_map_to_ours() {
        assert_eq!(status_of_job("NotStarted"), RunStatus::Queued);
        assert_eq!(status_of_job("Starting"), RunStatus::Queued);
        assert_eq!(status_of_job("Running"), RunStatus::Running);
        assert_eq!(status_of_job("Finalizing"), RunStatus::Running);
        assert_eq!(status_of_job("Completed"), RunStatus::Succeeded);
        assert_eq!(status_of_job("Failed"), RunStatus::Failed);
        assert_eq!(status_of_job("Canceled"), RunStatus::Canceled);
    }

    #[test]
    fn job_names_are_fixed_by_the_run() {
        let id = Uuid::new_v4();
        assert_eq!(job_name(id), job_name(id));
        assert!(job_name(id).starts_with("train-") && job_name(id).len() == 18);
    }
}

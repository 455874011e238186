//! Azure Machine Learning: command jobs (create, get) and their MLflow metrics.

use super::credential::ARM_SCOPE;
use super::error::{AzureError, Result};
use super::wire::{Job, MlflowRunResponse};
use super::AzureClient;

pub const ML_API: &str = "2025-09-01";

impl AzureClient {
    /// Creates a job. A write: sent once, never retried blindly (the caller decides, knowing the name).
    pub async fn create_job(&self, workspace_id: &str, name: &str, job: &Job) -> Result<Job> {
        let body = serde_json::to_value(job).map_err(|e| AzureError::Decode {
            service: "Azure Machine Learning".into(),
            reason: e.to_string(),
        })?;
        let created = self
            .put_ml(&format!("{workspace_id}/jobs/{name}"), &body)
            .await?;
        serde_json::from_value(created).map_err(|e| AzureError::Decode {
            service: "Azure Machine Learning".into(),
            reason: e.to_string(),
        })
    }

    pub async fn get_job(&self, workspace_id: &str, name: &str) -> Result<Job> {
        let url = format!(
            "{}{workspace_id}/jobs/{name}?api-version={ML_API}",
            self.endpoints().arm
        );
        self.get_json(&url, ARM_SCOPE).await
    }

    /// The metrics a job logged, from the workspace's MLflow tracking server.
    pub async fn job_metrics(&self, workspace_id: &str, name: &str) -> Result<MlflowRunResponse> {
        let url = format!(
            "{}/mlflow/v2.0{workspace_id}/api/2.0/mlflow/runs/get?run_id={name}",
            self.endpoints().mlflow
        );
        self.get_json(&url, ARM_SCOPE).await
    }

    /// The job's log so far (`user_logs/std_log.txt` among its MLflow artifacts); empty before it starts.
    pub async fn job_log(&self, workspace_id: &str, name: &str) -> Result<String> {
        let url = format!(
            "{}/mlflow/v2.0{workspace_id}/get-artifact?path=user_logs/std_log.txt&run_uuid={name}",
            self.endpoints().mlflow
        );
        self.get_text(&url, ARM_SCOPE).await
    }
}

impl AzureClient {
    fn ml_url(&self, path: &str) -> String {
        format!("{}{path}?api-version={ML_API}", self.endpoints().arm)
    }

    /// A write: sent once. Azure's refusals (409 busy, 400 invalid) come back as [`AzureError::Api`].
    pub async fn put_ml(&self, path: &str, body: &serde_json::Value) -> Result<serde_json::Value> {
        self.send_write(
            "Azure Machine Learning",
            reqwest::Method::PUT,
            &self.ml_url(path),
            ARM_SCOPE,
            Some(body),
        )
        .await
    }

    /// A read of any Azure ML resource; `None` when it does not exist.
    pub async fn get_ml(&self, path: &str) -> Result<Option<serde_json::Value>> {
        match self.get_json(&self.ml_url(path), ARM_SCOPE).await {
            Ok(v) => Ok(Some(v)),
            Err(e) if e.is_not_found() => Ok(None),
            Err(e) => Err(e),
        }
    }

    pub async fn list_ml(&self, path: &str) -> Result<Vec<serde_json::Value>> {
        self.list_all(&self.ml_url(path), ARM_SCOPE).await
    }
}

impl AzureClient {
    /// `POST {endpoint}/listKeys`: the endpoint's keys. Secrets: never log or render them.
    pub async fn endpoint_keys(&self, endpoint_path: &str) -> Result<serde_json::Value> {
        let url = format!(
            "{}{endpoint_path}/listKeys?api-version={ML_API}",
            self.endpoints().arm
        );
        let auth = self.bearer(ARM_SCOPE).await?;
        // Reading keys changes nothing, so it is retried like a read.
        let response = self
            .send_read(&url, || {
                self.http().post(&url).header("Authorization", &auth)
            })
            .await?;
        Self::json(&url, response).await
    }
}

impl AzureClient {
    /// Deletes an Azure ML resource (202 + Location while it goes, 204 when already gone). Sent once.
    pub async fn delete_ml(&self, path: &str) -> Result<()> {
        self.send_write(
            "Azure Machine Learning",
            reqwest::Method::DELETE,
            &self.ml_url(path),
            ARM_SCOPE,
            None,
        )
        .await
        .map(drop)
    }

    /// `POST {deployment}/getLogs`: the last `tail` lines of the inference server's container log.
    pub async fn deployment_logs(&self, deployment_path: &str, tail: u32) -> Result<String> {
        let url = format!(
            "{}{deployment_path}/getLogs?api-version={ML_API}",
            self.endpoints().arm
        );
        let auth = self.bearer(ARM_SCOPE).await?;
        let body = serde_json::json!({"containerType": "InferenceServer", "tail": tail});
        // Reading logs changes nothing, so it is retried like a read.
        let response = self
            .send_read(&url, || {
                self.http()
                    .post(&url)
                    .header("Authorization", &auth)
                    .json(&body)
            })
            .await?;
        let v: serde_json::Value = Self::json(&url, response).await?;
        Ok(v["content"].as_str().unwrap_or_default().to_string())
    }
}

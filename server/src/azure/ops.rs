//! Operations beyond Azure ML: the AKS cluster's Kubernetes API (deployments and their scale) and Azure
//! Automation runbook jobs.

use super::credential::ARM_SCOPE;
use super::error::{AzureError, Result};
use super::AzureClient;
use serde_json::Value;

/// The AKS server application: tokens for Entra-integrated clusters' API servers are issued for it.
pub const AKS_SCOPE: &str = "6dae42f8-4368-4678-94ff-3960e28e3630/.default";
pub const AUTOMATION_API: &str = "2024-10-23";
/// ACR Tasks (runs, scheduleRun).
pub const ACR_TASKS_API: &str = "2019-06-01-preview";

impl AzureClient {
    /// The cluster's API server: under the emulator's `/aks/{cluster}`, or the cluster's FQDN in Azure.
    async fn kube_base(&self, cluster_id: &str) -> Result<String> {
        if let Some(base) = &self.endpoints().aks {
            let name = cluster_id.rsplit('/').next().unwrap_or_default();
            return Ok(base.replace("{name}", name));
        }
        let cluster = self.get_resource(cluster_id, "2025-10-01").await?;
        let fqdn = cluster
            .properties
            .as_ref()
            .and_then(|p| p.get("fqdn"))
            .and_then(Value::as_str)
            .ok_or_else(|| AzureError::Decode {
                service: "AKS".into(),
                reason: "the cluster has no fqdn".into(),
            })?;
        Ok(format!("https://{fqdn}"))
    }

    async fn kube(
        &self,
        method: reqwest::Method,
        cluster_id: &str,
        path: &str,
        body: Option<Value>,
    ) -> Result<Value> {
        let url = format!("{}{path}", self.kube_base(cluster_id).await?);
        let auth = self.bearer(AKS_SCOPE).await?;
        let mut req = self
            .http()
            .request(method.clone(), &url)
            .header("Authorization", auth);
        if let Some(b) = body {
            let ct = if method == reqwest::Method::PATCH {
                "application/merge-patch+json"
            } else {
                "application/json"
            };
            req = req.header("Content-Type", ct).body(b.to_string());
        }
        let response = if method == reqwest::Method::GET {
            let auth = self.bearer(AKS_SCOPE).await?;
            self.send_read(&url, || {
                self.http().get(&url).header("Authorization", &auth)
            })
            .await?
        } else {
            let r = req.send().await.map_err(|e| AzureError::Transport {
                service: "Kubernetes API".into(),
                reason: e.to_string(),
            })?;
            if !r.status().is_success() {
                return Err(kube_error(r).await);
            }
            r
        };
        Self::json(&url, response).await
    }

    pub async fn kube_deployment(&self, cluster_id: &str, ns: &str, name: &str) -> Result<Value> {
        self.kube(
            reqwest::Method::GET,
            cluster_id,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
            None,
        )
        .await
    }

    /// `PUT …/deployments/{name}`: replaces the Deployment, which rolls out a changed pod template. Sent once.
    pub async fn kube_apply(
        &self,
        cluster_id: &str,
        ns: &str,
        name: &str,
        deployment: Value,
    ) -> Result<Value> {
        self.kube(
            reqwest::Method::PUT,
            cluster_id,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}"),
            Some(deployment),
        )
        .await
    }

    /// `PATCH …/deployments/{name}/scale` with `{"spec":{"replicas":n}}`. A write: sent once.
    pub async fn kube_scale(
        &self,
        cluster_id: &str,
        ns: &str,
        name: &str,
        replicas: i64,
    ) -> Result<Value> {
        let body = serde_json::json!({"spec": {"replicas": replicas}});
        self.kube(
            reqwest::Method::PATCH,
            cluster_id,
            &format!("/apis/apps/v1/namespaces/{ns}/deployments/{name}/scale"),
            Some(body),
        )
        .await
    }

    /// Starts a runbook job with a name the caller chose. A write: sent once.
    pub async fn start_runbook_job(
        &self,
        account_id: &str,
        job: &str,
        runbook: &str,
        parameters: &Value,
    ) -> Result<Value> {
        let url = format!(
            "{}{account_id}/jobs/{job}?api-version={AUTOMATION_API}",
            self.endpoints().arm
        );
        let body = serde_json::json!({"properties": {"runbook": {"name": runbook}, "parameters": parameters, "runOn": ""}});
        self.send_write(
            "Azure Automation",
            reqwest::Method::PUT,
            &url,
            ARM_SCOPE,
            Some(&body),
        )
        .await
    }

    pub async fn runbook_job(&self, account_id: &str, job: &str) -> Result<Value> {
        let url = format!(
            "{}{account_id}/jobs/{job}?api-version={AUTOMATION_API}",
            self.endpoints().arm
        );
        self.get_json(&url, ARM_SCOPE).await
    }

    /// The job's output stream, as text.
    pub async fn runbook_output(&self, account_id: &str, job: &str) -> Result<String> {
        let url = format!(
            "{}{account_id}/jobs/{job}/output?api-version={AUTOMATION_API}",
            self.endpoints().arm
        );
        self.get_text(&url, ARM_SCOPE).await
    }
}

/// A Kubernetes `Status` error as a typed error.
async fn kube_error(r: reqwest::Response) -> AzureError {
    let status = r.status().as_u16();
    let body: Value = r.json().await.unwrap_or(Value::Null);
    AzureError::Api {
        service: "Kubernetes API".into(),
        status,
        code: body["reason"].as_str().unwrap_or("Failure").to_string(),
        message: body["message"].as_str().unwrap_or_default().to_string(),
        request_id: None,
        retry_after: None,
    }
}

impl AzureClient {
    /// `POST {registry}/scheduleRun`: an ACR Tasks quick build (`az acr build`). A write: sent once.
    pub async fn acr_schedule_run(&self, registry_id: &str, request: &Value) -> Result<Value> {
        let url = format!(
            "{}{registry_id}/scheduleRun?api-version={ACR_TASKS_API}",
            self.endpoints().arm
        );
        self.send_write(
            "Azure Container Registry",
            reqwest::Method::POST,
            &url,
            ARM_SCOPE,
            Some(request),
        )
        .await
    }

    pub async fn acr_run(&self, registry_id: &str, run_id: &str) -> Result<Value> {
        let url = format!(
            "{}{registry_id}/runs/{run_id}?api-version={ACR_TASKS_API}",
            self.endpoints().arm
        );
        self.get_json(&url, ARM_SCOPE).await
    }

    /// The build log so far: `listLogSasUrl` links to a blob readable with its SAS alone.
    pub async fn acr_run_log(&self, registry_id: &str, run_id: &str) -> Result<String> {
        let url = format!(
            "{}{registry_id}/runs/{run_id}/listLogSasUrl?api-version={ACR_TASKS_API}",
            self.endpoints().arm
        );
        let auth = self.bearer(ARM_SCOPE).await?;
        let link = self
            .send_read(&url, || {
                self.http().post(&url).header("Authorization", &auth)
            })
            .await?;
        let link: Value = Self::json(&url, link).await?;
        let blob = link["logLink"].as_str().unwrap_or_default().to_string();
        let response = self.send_read(&blob, || self.http().get(&blob)).await?;
        response.text().await.map_err(|e| AzureError::Transport {
            service: "Azure Storage".into(),
            reason: e.to_string(),
        })
    }
}

//! The Azure client: one reqwest client with timeouts, a base URL per service, cached tokens, paging,
//! and retries with backoff that honour `Retry-After` — for reads only; writes are never blindly retried.
//! The same code runs against Azure and the emulator: only [`Endpoints`] and the credential differ.

pub mod arm;
pub mod cost;
pub mod credential;
pub mod dataplane;
pub mod error;
pub mod ml;
pub mod monitor;
pub mod ops;
pub mod wire;

use azure_core::credentials::TokenCredential;
use credential::TokenCache;
use error::{AzureError, Result};
use reqwest::{RequestBuilder, Response, StatusCode};
use serde::de::DeserializeOwned;
use std::sync::Arc;
use std::time::Duration;

/// Where each service lives. Data-plane hosts are per resource: `{name}` is replaced by its name.
#[derive(Clone, Debug)]
pub struct Endpoints {
    pub arm: String,
    pub key_vault: String,
    pub acr: String,
    /// Azure ML's MLflow tracking host (regional in Azure).
    pub mlflow: String,
    /// AKS API servers by cluster name; `None` in Azure, where each cluster's FQDN is read from ARM.
    pub aks: Option<String>,
    /// The Log Analytics query API (`/v1/workspaces/{id}/query`).
    pub log_analytics: String,
    /// The Application Insights query API (`/v1/apps/{id}/query`).
    pub app_insights: String,
}

impl Endpoints {
    pub fn azure(arm: &str, location: &str) -> Endpoints {
        Endpoints {
            arm: arm.trim_end_matches('/').to_string(),
            key_vault: "https://{name}.vault.azure.net".into(),
            acr: "https://{name}.azurecr.io".into(),
            mlflow: format!("https://{location}.api.azureml.ms"),
            aks: None,
            log_analytics: "https://api.loganalytics.io".into(),
            app_insights: "https://api.applicationinsights.io".into(),
        }
    }

    /// The emulator serves ARM at its root and each data plane under a path, as Azurite does.
    pub fn emulator(base: &str) -> Endpoints {
        let base = base.trim_end_matches('/');
        Endpoints {
            arm: base.to_string(),
            key_vault: format!("{base}/keyvault/{{name}}"),
            acr: format!("{base}/acr/{{name}}"),
            mlflow: base.to_string(),
            aks: Some(format!("{base}/aks/{{name}}")),
            log_analytics: base.to_string(),
            app_insights: base.to_string(),
        }
    }

    pub fn vault(&self, name: &str) -> String {
        self.key_vault.replace("{name}", name)
    }

    pub fn registry(&self, name: &str) -> String {
        self.acr.replace("{name}", name)
    }
}

/// How reads are retried.
#[derive(Clone, Debug)]
pub struct RetryPolicy {
    pub max_attempts: u32,
    pub base_delay: Duration,
    /// The longest wait, whatever `Retry-After` says: a page should not hang for ten minutes.
    pub max_delay: Duration,
}

impl Default for RetryPolicy {
    fn default() -> Self {
        RetryPolicy {
            max_attempts: 4,
            base_delay: Duration::from_millis(400),
            max_delay: Duration::from_secs(20),
        }
    }
}

pub struct AzureClient {
    http: reqwest::Client,
    endpoints: Endpoints,
    tokens: TokenCache,
    retry: RetryPolicy,
}

/// `Retry-After` in whole seconds (Azure never sends the HTTP-date form on these APIs).
/// `Retry-After`, or Cost Management's own `x-ms-ratelimit-microsoft.costmanagement-*-retry-after`
/// (query units, entity or tenant limits), whichever asks for the longest wait.
fn retry_after(response: &Response) -> Option<Duration> {
    response
        .headers()
        .iter()
        .filter(|(name, _)| {
            let n = name.as_str();
            n == "retry-after"
                || (n.starts_with("x-ms-ratelimit-microsoft.costmanagement-")
                    && n.ends_with("-retry-after"))
        })
        .filter_map(|(_, v)| v.to_str().ok()?.trim().parse::<u64>().ok())
        .max()
        .map(Duration::from_secs)
}

/// The service a URL belongs to, for messages: scheme, host and port, never the query.
fn service_of(url: &str) -> String {
    url::Url::parse(url)
        .map(|u| format!("{}://{}", u.scheme(), u.authority()))
        .unwrap_or_else(|_| "Azure".into())
}

impl AzureClient {
    pub fn new(
        endpoints: Endpoints,
        credential: Arc<dyn TokenCredential>,
        retry: RetryPolicy,
    ) -> Result<AzureClient> {
        let http = reqwest::Client::builder()
            .connect_timeout(Duration::from_secs(5))
            .timeout(Duration::from_secs(30))
            .pool_idle_timeout(Duration::from_secs(30))
            .user_agent(concat!("mlops-console/", env!("CARGO_PKG_VERSION")))
            .build()
            .map_err(|e| AzureError::Transport {
                service: "http client".into(),
                reason: e.to_string(),
            })?;
        Ok(AzureClient {
            http,
            endpoints,
            tokens: TokenCache::new(credential),
            retry,
        })
    }

    pub fn endpoints(&self) -> &Endpoints {
        &self.endpoints
    }

    pub(crate) fn http(&self) -> &reqwest::Client {
        &self.http
    }

    pub(crate) async fn bearer(&self, scope: &str) -> Result<String> {
        Ok(format!(
            "Bearer {}",
            self.tokens.token(scope).await?.secret()
        ))
    }

    /// Sends a read, retrying throttling, server faults and lost connections with backoff.
    /// `build` makes a fresh request for each attempt.
    pub(crate) async fn send_read(
        &self,
        url: &str,
        build: impl Fn() -> RequestBuilder,
    ) -> Result<Response> {
        let service = service_of(url);
        let mut attempt = 0;
        loop {
            attempt += 1;
            let result: Result<Response> = match build()
                .header("x-ms-client-request-id", uuid::Uuid::new_v4().to_string())
                .send()
                .await
            {
                Ok(response) if response.status().is_success() => return Ok(response),
                Ok(response) => Err(Self::api_error(&service, response).await),
                Err(e) => Err(AzureError::Transport {
                    service: service.clone(),
                    reason: transport_reason(&e),
                }),
            };
            let err = result.unwrap_err();
            if !err.is_transient() || attempt >= self.retry.max_attempts {
                return Err(err);
            }
            let backoff = self.retry.base_delay * 2u32.pow(attempt - 1);
            let wait = match &err {
                AzureError::Api {
                    retry_after: Some(after),
                    ..
                } => *after,
                _ => backoff,
            }
            .min(self.retry.max_delay);
            tracing::warn!(%service, attempt, wait_ms = wait.as_millis() as u64, error = %err, "retrying a read");
            tokio::time::sleep(wait).await;
        }
    }

    /// Reads Azure's error envelope (ARM, Key Vault and OCI shapes) into a typed error.
    pub(crate) async fn api_error(service: &str, response: Response) -> AzureError {
        let status = response.status();
        let after = retry_after(&response);
        let request_id = response
            .headers()
            .get("x-ms-request-id")
            .and_then(|v| v.to_str().ok())
            .map(str::to_string);
        let body = response.bytes().await.unwrap_or_default();
        let (code, message) = match serde_json::from_slice::<wire::ErrorResponse>(&body) {
            // Log Analytics and Key Vault put the specific reason in `innererror`: keep it.
            Ok(e) => match e
                .error
                .innererror
                .as_ref()
                .and_then(|i| Some((i.get("code")?.as_str()?, i.get("message")?.as_str()?)))
            {
                Some((inner_code, inner)) => (
                    e.error.code,
                    format!("{} ({inner_code}: {inner})", e.error.message),
                ),
                None => (e.error.code, e.error.message),
            },
            Err(_) => match serde_json::from_slice::<serde_json::Value>(&body)
                .ok()
                .and_then(|v| v.get("errors")?.get(0).cloned())
            {
                Some(oci) => (
                    oci.get("code")
                        .and_then(|c| c.as_str())
                        .unwrap_or("Error")
                        .to_string(),
                    oci.get("message")
                        .and_then(|c| c.as_str())
                        .unwrap_or_default()
                        .to_string(),
                ),
                None => (
                    status
                        .canonical_reason()
                        .unwrap_or("Error")
                        .replace(' ', ""),
                    format!("HTTP {}", status.as_u16()),
                ),
            },
        };
        AzureError::Api {
            service: service.to_string(),
            status: status.as_u16(),
            code,
            message,
            request_id,
            retry_after: after
                .or((status == StatusCode::TOO_MANY_REQUESTS).then_some(Duration::from_secs(1))),
        }
    }

    pub(crate) async fn json<T: DeserializeOwned>(url: &str, response: Response) -> Result<T> {
        let bytes = response.bytes().await.map_err(|e| AzureError::Transport {
            service: service_of(url),
            reason: transport_reason(&e),
        })?;
        serde_json::from_slice(&bytes).map_err(|e| AzureError::Decode {
            service: service_of(url),
            reason: e.to_string(),
        })
    }

    /// GET a JSON document with a token for `scope`.
    pub async fn get_json<T: DeserializeOwned>(&self, url: &str, scope: &str) -> Result<T> {
        let auth = self.bearer(scope).await?;
        let response = self
            .send_read(url, || self.http.get(url).header("Authorization", &auth))
            .await?;
        Self::json(url, response).await
    }

    /// GET a text document (logs, runbook output) with a token for `scope`.
    pub async fn get_text(&self, url: &str, scope: &str) -> Result<String> {
        let auth = self.bearer(scope).await?;
        let response = self
            .send_read(url, || self.http.get(url).header("Authorization", &auth))
            .await?;
        response.text().await.map_err(|e| AzureError::Transport {
            service: service_of(url),
            reason: transport_reason(&e),
        })
    }

    /// A write (PUT, POST, PATCH, DELETE) with a JSON body: sent once, never retried blindly. Azure's
    /// refusals (409 busy, 400 invalid) come back as [`AzureError::Api`]; an empty answer reads as `null`.
    pub(crate) async fn send_write(
        &self,
        service: &str,
        method: reqwest::Method,
        url: &str,
        scope: &str,
        body: Option<&serde_json::Value>,
    ) -> Result<serde_json::Value> {
        let auth = self.bearer(scope).await?;
        let mut request = self.http.request(method, url).header("Authorization", auth);
        if let Some(body) = body {
            request = request.json(body);
        }
        let response = request.send().await.map_err(|e| AzureError::Transport {
            service: service.to_string(),
            reason: transport_reason(&e),
        })?;
        if !response.status().is_success() {
            return Err(Self::api_error(service, response).await);
        }
        let bytes = response.bytes().await.map_err(|e| AzureError::Transport {
            service: service.to_string(),
            reason: transport_reason(&e),
        })?;
        if bytes.is_empty() {
            return Ok(serde_json::Value::Null);
        }
        serde_json::from_slice(&bytes).map_err(|e| AzureError::Decode {
            service: service.to_string(),
            reason: e.to_string(),
        })
    }

    /// Every item of an ARM-style list, following `nextLink` until it is missing or null.
    pub async fn list_all<T: DeserializeOwned>(&self, first: &str, scope: &str) -> Result<Vec<T>> {
        let mut items = Vec::new();
        let mut next = Some(first.to_string());
        let mut pages = 0;
        while let Some(url) = next.take() {
            let page: wire::Page<T> = self.get_json(&url, scope).await?;
            items.extend(page.value);
            next = page.next_link.filter(|l| !l.is_empty());
            pages += 1;
            if pages > 1000 {
                return Err(AzureError::Decode {
                    service: service_of(first),
                    reason: "more than 1000 pages: the next links do not end".into(),
                });
            }
        }
        Ok(items)
    }
}

fn transport_reason(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        "timed out".into()
    } else if e.is_connect() {
        "connection refused or unreachable".into()
    } else {
        // reqwest's Display includes the URL; keep only the kind of failure.
        let mut source: Option<&dyn std::error::Error> = std::error::Error::source(e);
        let mut last = "request failed".to_string();
        while let Some(s) = source {
            last = s.to_string();
            source = s.source();
        }
        last
    }
}

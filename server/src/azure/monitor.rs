//! Log Analytics and Application Insights queries (`POST /v1/workspaces/{id}/query`,
//! `POST /v1/apps/{id}/query`): KQL in, `tables` out. A query reads, so it is retried like a read
//! (throttling with `Retry-After`); a bad query is Azure's 400 with the reason in the error.

use super::credential::{APP_INSIGHTS_SCOPE, LOG_ANALYTICS_SCOPE};
use super::error::Result;
use super::wire::LogQueryResponse;
use super::AzureClient;
use std::time::Duration;

/// Which query API.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Api {
    /// `{id}` is the workspace's customerId.
    LogAnalytics,
    /// `{id}` is the component's AppId.
    AppInsights,
}

impl AzureClient {
    /// Runs `query` over `timespan` (ISO 8601), waiting at most `wait` for the service.
    pub async fn log_query(
        &self,
        api: Api,
        id: &str,
        query: &str,
        timespan: &str,
        wait: Duration,
    ) -> Result<LogQueryResponse> {
        let (base, collection, scope) = match api {
            Api::LogAnalytics => (
                &self.endpoints().log_analytics,
                "workspaces",
                LOG_ANALYTICS_SCOPE,
            ),
            Api::AppInsights => (&self.endpoints().app_insights, "apps", APP_INSIGHTS_SCOPE),
        };
        let url = format!("{base}/v1/{collection}/{id}/query");
        let auth = self.bearer(scope).await?;
        let body = serde_json::json!({"query": query, "timespan": timespan});
        let prefer = format!("wait={}, include-render=true", wait.as_secs().max(1));
        let response = self
            .send_read(&url, || {
                self.http()
                    .post(&url)
                    .header("Authorization", &auth)
                    .header("Prefer", &prefer)
                    .timeout(wait + Duration::from_secs(5))
                    .json(&body)
            })
            .await?;
        Self::json(&url, response).await
    }
}

//! Cost Management queries, Consumption budgets and Alerts Management. Cost queries are POSTs that read,
//! so they are retried like reads, honouring the QPU retry headers Cost Management throttles with.

use super::credential::ARM_SCOPE;
use super::error::Result;
use super::wire::CostQueryResult;
use super::AzureClient;
use serde_json::Value;

pub const COST_API: &str = "2025-03-01";
pub const BUDGETS_API: &str = "2024-08-01";
pub const ALERTS_API: &str = "2018-05-05";

impl AzureClient {
    /// `POST {scope}/providers/Microsoft.CostManagement/query`, following `nextLink` (same body).
    pub async fn cost_query(&self, scope: &str, body: &Value) -> Result<CostQueryResult> {
        let mut url = format!(
            "{}{scope}/providers/Microsoft.CostManagement/query?api-version={COST_API}",
            self.endpoints().arm
        );
        let auth = self.bearer(ARM_SCOPE).await?;
        let mut all: Option<CostQueryResult> = None;
        for _ in 0..100 {
            let response = self
                .send_read(&url, || {
                    self.http()
                        .post(&url)
                        .header("Authorization", &auth)
                        .json(body)
                })
                .await?;
            let page: CostQueryResult = Self::json(&url, response).await?;
            let next = page.properties.next_link.clone().filter(|l| !l.is_empty());
            match &mut all {
                Some(a) => a.properties.rows.extend(page.properties.rows),
                None => all = Some(page),
            }
            match next {
                Some(n) => url = n,
                None => break,
            }
        }
        Ok(all.expect("at least one page"))
    }

    /// The budgets at `scope` (Consumption).
    pub async fn budgets(&self, scope: &str) -> Result<Vec<Value>> {
        let url = format!(
            "{}{scope}/providers/Microsoft.Consumption/budgets?api-version={BUDGETS_API}",
            self.endpoints().arm
        );
        self.list_all(&url, ARM_SCOPE).await
    }

    /// Fired alerts in the subscription, with Alerts Management's filters (`alertState`, `severity`, …).
    pub async fn alerts(
        &self,
        subscription_id: &str,
        filters: &[(&str, &str)],
    ) -> Result<Vec<Value>> {
        let mut url = format!(
            "{}/subscriptions/{subscription_id}/providers/Microsoft.AlertsManagement/alerts?api-version={ALERTS_API}",
            self.endpoints().arm
        );
        for (k, v) in filters {
            url.push_str(&format!(
                "&{k}={}",
                url::form_urlencoded::byte_serialize(v.as_bytes()).collect::<String>()
            ));
        }
        self.list_all(&url, ARM_SCOPE).await
    }

    /// `POST {alert}/changestate?newState=…` with the comment. A write: sent once.
    pub async fn change_alert_state(
        &self,
        alert_id: &str,
        state: &str,
        comment: &str,
    ) -> Result<Value> {
        let url = format!(
            "{}{alert_id}/changestate?api-version={ALERTS_API}&newState={state}",
            self.endpoints().arm
        );
        let body = serde_json::json!({"comments": comment});
        self.send_write(
            "Alerts Management",
            reqwest::Method::POST,
            &url,
            ARM_SCOPE,
            Some(&body),
        )
        .await
    }

    /// `GET {alert}/history`: state changes and their comments.
    pub async fn alert_history(&self, alert_id: &str) -> Result<Value> {
        let url = format!(
            "{}{alert_id}/history?api-version={ALERTS_API}",
            self.endpoints().arm
        );
        self.get_json(&url, ARM_SCOPE).await
    }
}

//! Alerts: the fired alerts of the subscription (live from Alerts Management), the estate's alert rules
//! and action groups, and open alerts by severity for the overview (refreshed every minute).

use crate::azure::AzureClient;
use app::cost::{ActionGroupView, AlertCounts, AlertView, AlertsView, RuleView};
use app::error::AppError;
use app::model::{Estate, Role};
use chrono::{DateTime, Utc};
use serde_json::Value;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

const RULES_API: &str = "2023-12-01";
const ACTION_GROUPS_API: &str = "2023-01-01";

pub struct Alerts {
    client: Arc<AzureClient>,
    estate: Estate,
    counts: RwLock<AlertCounts>,
}

fn unavailable(what: &str, e: impl std::fmt::Display) -> AppError {
    AppError::Unavailable(format!("{what}: {e}"))
}

fn s(v: &Value) -> String {
    v.as_str().unwrap_or_default().to_string()
}

impl Alerts {
    pub fn new(client: Arc<AzureClient>, estate: Estate) -> Alerts {
        Alerts {
            client,
            estate,
            counts: RwLock::new(AlertCounts::default()),
        }
    }

    fn view_of(&self, v: &Value) -> AlertView {
        let e = &v["properties"]["essentials"];
        let azure_id = s(&v["id"]);
        let rule = s(&e["alertRule"]);
        AlertView {
            id: azure_id.rsplit('/').next().unwrap_or_default().to_string(),
            name: s(&v["name"]),
            severity: s(&e["severity"]),
            state: s(&e["alertState"]),
            condition: s(&e["monitorCondition"]),
            target: s(&e["targetResourceName"]),
            target_type: s(&e["targetResourceType"]),
            underutilization: rule.eq_ignore_ascii_case(&self.estate.resource_id(Role::AlertRule)),
            rule: rule.rsplit('/').next().unwrap_or_default().to_string(),
            since: e["startDateTime"]
                .as_str()
                .and_then(|t| t.parse::<DateTime<Utc>>().ok()),
            description: s(&e["description"]),
            last_modified_by: s(&e["lastModifiedUserName"]),
            azure_id,
        }
    }

    /// Fired alerts, newest first; `state` filters on New, Acknowledged or Closed.
    pub async fn list(&self, state: Option<&str>) -> Result<Vec<AlertView>, AppError> {
        let mut filters = vec![("timeRange", "30d")];
        if let Some(st) = state {
            filters.push(("alertState", st));
        }
        let raw = self
            .client
            .alerts(&self.estate.subscription_id, &filters)
            .await
            .map_err(|e| unavailable("Alerts Management", e))?;
        let alerts: Vec<AlertView> = raw.iter().map(|v| self.view_of(v)).collect();
        if state.is_none() {
            self.remember(&alerts);
        }
        Ok(alerts)
    }

    fn remember(&self, alerts: &[AlertView]) {
        let mut open: BTreeMap<String, usize> = BTreeMap::new();
        for a in alerts.iter().filter(|a| a.is_open()) {
            *open.entry(a.severity.clone()).or_default() += 1;
        }
        *self.counts.write().expect("alert counts") = AlertCounts {
            open: open.into_iter().collect(),
            as_of: Some(Utc::now()),
        };
    }

    pub fn counts(&self) -> AlertCounts {
        self.counts.read().expect("alert counts").clone()
    }

    /// One alert by its GUID.
    pub async fn find(&self, id: &str) -> Result<AlertView, AppError> {
        self.list(None)
            .await?
            .into_iter()
            .find(|a| a.id.eq_ignore_ascii_case(id))
            .ok_or_else(|| AppError::NotFound(format!("There is no alert '{id}'.")))
    }

    /// The alerts page: alerts, the estate's rule and action group.
    pub async fn view(&self, state: Option<&str>) -> Result<AlertsView, AppError> {
        let alerts = self.list(state).await?;
        let rule = self
            .client
            .get_resource(&self.estate.resource_id(Role::AlertRule), RULES_API)
            .await
            .map_err(|e| unavailable("the alert rule", e))?;
        let group = self
            .client
            .get_resource(
                &self.estate.resource_id(Role::ActionGroup),
                ACTION_GROUPS_API,
            )
            .await
            .map_err(|e| unavailable("the action group", e))?;
        let rp = rule.properties.clone().unwrap_or_default();
        let c = &rp["criteria"]["allOf"][0];
        let gp = group.properties.clone().unwrap_or_default();
        Ok(AlertsView {
            alerts,
            rules: vec![RuleView {
                name: rule.name.clone(),
                description: s(&rp["description"]),
                severity: rp["severity"].as_i64().unwrap_or(3),
                enabled: rp["enabled"].as_bool().unwrap_or(false),
                query: s(&c["query"]),
                condition: format!(
                    "{} {} {} ({})",
                    s(&c["metricMeasureColumn"]),
                    s(&c["operator"]),
                    c["threshold"],
                    s(&c["timeAggregation"])
                ),
                frequency: s(&rp["evaluationFrequency"]),
                window: s(&rp["windowSize"]),
                action_groups: rp["actions"]["actionGroups"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|g| s(g).rsplit('/').next().unwrap_or_default().to_string())
                    .collect(),
            }],
            action_groups: vec![ActionGroupView {
                name: group.name.clone(),
                short_name: s(&gp["groupShortName"]),
                enabled: gp["enabled"].as_bool().unwrap_or(false),
                emails: gp["emailReceivers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| s(&r["emailAddress"]))
                    .collect(),
                runbooks: gp["automationRunbookReceivers"]
                    .as_array()
                    .into_iter()
                    .flatten()
                    .map(|r| s(&r["runbookName"]))
                    .collect(),
            }],
            runbook: self.estate.resources.runbook.clone(),
        })
    }

    /// Keeps the overview's counts fresh.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                if let Err(e) = me.list(None).await {
                    tracing::debug!(error = %e, "could not refresh alert counts");
                }
                tokio::time::sleep(std::time::Duration::from_secs(60)).await;
            }
        })
    }
}

//! Cost: month-to-date spend against the budget, a forecast, daily spend, breakdowns by resource and by
//! service, and past months — fetched from Cost Management on a schedule (its data changes a few times a
//! day and its API is throttled), kept in Postgres, and served from there with its "as of".

use crate::azure::wire::CostQueryResult;
use crate::azure::AzureClient;
use app::cost::{forecast, Breakdown, CostSummary, CostView, MonthCost, Threshold};
use app::error::AppError;
use app::model::Estate;
use chrono::{Datelike, Duration, NaiveDate, Timelike, Utc};
use serde_json::{json, Value};
use sqlx::PgPool;
use std::collections::BTreeMap;
use std::sync::{Arc, RwLock};

/// Past months shown beside this one.
const PAST_MONTHS: u32 = 3;

pub struct Costs {
    db: PgPool,
    client: Arc<AzureClient>,
    estate: Estate,
    latest: RwLock<Option<CostView>>,
    refresh: tokio::sync::Mutex<()>,
    pub every: std::time::Duration,
}

fn number(v: &Value) -> f64 {
    v.as_f64()
        .or_else(|| v.as_str().and_then(|s| s.parse().ok()))
        .unwrap_or(0.0)
}

/// Rows as maps of column name to cell.
fn records(r: &CostQueryResult) -> Vec<BTreeMap<String, Value>> {
    r.properties
        .rows
        .iter()
        .map(|row| {
            r.properties
                .columns
                .iter()
                .zip(row)
                .map(|(c, v)| (c.name.clone(), v.clone()))
                .collect()
        })
        .collect()
}

fn amount(rec: &BTreeMap<String, Value>) -> f64 {
    ["Cost", "PreTaxCost", "CostUSD", "PreTaxCostUSD"]
        .iter()
        .find_map(|k| rec.get(*k))
        .map(number)
        .unwrap_or(0.0)
}

fn text(rec: &BTreeMap<String, Value>, k: &str) -> String {
    rec.get(k)
        .and_then(Value::as_str)
        .unwrap_or_default()
        .to_string()
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

fn round2(v: f64) -> f64 {
    (v * 100.0).round() / 100.0
}

impl Costs {
    pub fn new(
        db: PgPool,
        client: Arc<AzureClient>,
        estate: Estate,
        every: std::time::Duration,
    ) -> Costs {
        Costs {
            db,
            client,
            estate,
            latest: RwLock::new(None),
            refresh: tokio::sync::Mutex::new(()),
            every,
        }
    }

    fn scope(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.estate.subscription_id, self.estate.resource_group
        )
    }

    /// The last stored view, loaded at start so a restart serves at once.
    pub async fn load(&self) -> Result<(), sqlx::Error> {
        let row = sqlx::query_scalar!(
            "select body from cost_snapshots order by fetched_at desc, id desc limit 1"
        )
        .fetch_optional(&self.db)
        .await?;
        if let Some(view) = row.and_then(|b| serde_json::from_value::<CostView>(b).ok()) {
            *self.latest.write().expect("cost lock") = Some(view);
        }
        Ok(())
    }

    /// The cached view (never calls Azure).
    pub fn view(&self) -> Result<CostView, AppError> {
        self.latest
            .read()
            .expect("cost lock")
            .clone()
            .ok_or_else(|| {
                AppError::Unavailable(
                    "Cost data has not been fetched yet; it is on its way.".into(),
                )
            })
    }

    pub fn summary(&self) -> Option<CostSummary> {
        self.latest
            .read()
            .expect("cost lock")
            .as_ref()
            .map(|v| CostSummary {
                as_of: v.as_of,
                month_to_date: v.month_to_date,
                budget: v.budget,
                forecast: v.forecast.amount,
                currency: v.currency.clone(),
            })
    }

    async fn query(&self, body: Value) -> Result<Vec<BTreeMap<String, Value>>, AppError> {
        self.client
            .cost_query(&self.scope(), &body)
            .await
            .map(|r| records(&r))
            .map_err(|e| AppError::Unavailable(format!("Cost Management: {e}")))
    }

    /// Fetches everything from Azure (seven queries, well inside the QPU budget), stores and serves it.
    /// On failure the last view stays, marked with the reason.
    pub async fn refresh(&self) -> Result<CostView, AppError> {
        let _one_at_a_time = self.refresh.lock().await;
        match self.fetch().await {
            Ok(view) => {
                let body = serde_json::to_value(&view).map_err(|_| AppError::Internal)?;
                sqlx::query!("insert into cost_snapshots (body) values ($1)", body)
                    .execute(&self.db)
                    .await
                    .map_err(|e| {
                        tracing::error!(error = %e, "could not store a cost snapshot");
                        AppError::Internal
                    })?;
                let _ = sqlx::query!("delete from cost_snapshots where id not in (select id from cost_snapshots order by fetched_at desc limit 50)")
                    .execute(&self.db)
                    .await;
                *self.latest.write().expect("cost lock") = Some(view.clone());
                Ok(view)
            }
            Err(e) => {
                tracing::warn!(error = %e, "cost refresh failed; keeping the last data");
                if let Some(v) = self.latest.write().expect("cost lock").as_mut() {
                    v.stale_reason = Some(e.to_string());
                }
                Err(e)
            }
        }
    }

    async fn fetch(&self) -> Result<CostView, AppError> {
        let now = Utc::now();
        let today = now.date_naive();
        let mtd = |granularity: &str, grouping: Value| {
            json!({"type": "ActualCost", "timeframe": "MonthToDate", "dataset": {"granularity": granularity,
                "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}, "grouping": grouping}})
        };
        let daily_rows = self.query(mtd("Daily", json!([]))).await?;
        let by_resource_rows = self
            .query(mtd("None", json!([{"type": "Dimension", "name": "ResourceId"}, {"type": "Dimension", "name": "ResourceType"}])))
            .await?;
        let by_service_rows = self
            .query(mtd(
                "None",
                json!([{"type": "Dimension", "name": "ServiceName"}]),
            ))
            .await?;
        let mut months = Vec::new();
        let mut start = month_start(today);
        for _ in 0..PAST_MONTHS {
            let end = start - Duration::days(1);
            start = month_start(end);
            let rows = self
                .query(json!({"type": "ActualCost", "timeframe": "Custom",
                    "timePeriod": {"from": format!("{start}T00:00:00Z"), "to": format!("{end}T23:59:59Z")},
                    "dataset": {"granularity": "None", "aggregation": {"totalCost": {"name": "Cost", "function": "Sum"}}}}))
                .await?;
            let total: f64 = rows.iter().map(amount).sum();
            months.push((start.format("%Y-%m").to_string(), total));
        }
        let budgets = self
            .client
            .budgets(&self.scope())
            .await
            .map_err(|e| AppError::Unavailable(format!("Consumption budgets: {e}")))?;
        let budget = budgets.first().cloned().unwrap_or(Value::Null);
        let budget_amount = budget["properties"]["amount"]
            .as_f64()
            .unwrap_or(self.estate.budget_usd);
        let currency = daily_rows
            .first()
            .map(|r| text(r, "Currency"))
            .filter(|c| !c.is_empty())
            .unwrap_or_else(|| "USD".into());

        let mut daily: Vec<(NaiveDate, f64)> = daily_rows
            .iter()
            .filter_map(|r| {
                let d = r.get("UsageDate").map(number)? as i64;
                let date = NaiveDate::from_ymd_opt(
                    (d / 10_000) as i32,
                    (d / 100 % 100) as u32,
                    (d % 100) as u32,
                )?;
                Some((date, amount(r)))
            })
            .collect();
        daily.sort_by_key(|(d, _)| *d);
        let month_to_date: f64 = daily.iter().map(|(_, c)| c).sum();
        let fraction = now.num_seconds_from_midnight() as f64 / 86_400.0;
        let forecast = forecast(&daily, today, fraction);

        let mut by_resource: Vec<Breakdown> = by_resource_rows
            .iter()
            .map(|r| {
                let id = text(r, "ResourceId");
                Breakdown {
                    name: id.rsplit('/').next().unwrap_or_default().to_string(),
                    detail: text(r, "ResourceType"),
                    id,
                    amount: round2(amount(r)),
                }
            })
            .collect();
        by_resource.sort_by(|a, b| b.amount.total_cmp(&a.amount));
        let mut by_service: Vec<Breakdown> = by_service_rows
            .iter()
            .map(|r| Breakdown {
                name: text(r, "ServiceName"),
                id: String::new(),
                detail: String::new(),
                amount: round2(amount(r)),
            })
            .collect();
        by_service.sort_by(|a, b| b.amount.total_cmp(&a.amount));

        let mut thresholds: Vec<Threshold> = budget["properties"]["notifications"]
            .as_object()
            .into_iter()
            .flatten()
            .filter(|(_, n)| n["enabled"] != json!(false))
            .map(|(_, n)| {
                let percent = n["threshold"].as_f64().unwrap_or(100.0);
                let at = budget_amount * percent / 100.0;
                Threshold {
                    percent,
                    amount: round2(at),
                    crossed: month_to_date > at,
                    forecast_crosses: forecast.amount > at,
                    contacts: n["contactEmails"]
                        .as_array()
                        .into_iter()
                        .flatten()
                        .filter_map(|e| e.as_str().map(str::to_string))
                        .collect(),
                }
            })
            .collect();
        thresholds.sort_by(|a, b| a.percent.total_cmp(&b.percent));

        Ok(CostView {
            as_of: now,
            stale_reason: None,
            currency,
            budget_name: budget["name"].as_str().unwrap_or("budget").to_string(),
            budget: budget_amount,
            month_to_date: round2(month_to_date),
            forecast,
            daily: daily.into_iter().map(|(d, c)| (d, round2(c))).collect(),
            by_resource,
            by_service,
            thresholds,
            months: months
                .into_iter()
                .map(|(month, amount)| MonthCost {
                    month,
                    amount: round2(amount),
                    percent_of_budget: if budget_amount > 0.0 {
                        round2(amount / budget_amount * 100.0)
                    } else {
                        0.0
                    },
                })
                .collect(),
        })
    }

    /// When the view is older than `every` (or missing), at start and then on schedule, refresh it.
    pub fn spawn_refresher(self: &Arc<Self>) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            loop {
                let age = me
                    .latest
                    .read()
                    .expect("cost lock")
                    .as_ref()
                    .map(|v| Utc::now() - v.as_of);
                let due = age.is_none_or(|a| a.to_std().unwrap_or_default() >= me.every);
                if due && me.refresh().await.is_err() {
                    // Try again soon rather than waiting the whole interval.
                    tokio::time::sleep(std::time::Duration::from_secs(60)).await;
                    continue;
                }
                let wait = age
                    .filter(|_| !due)
                    .and_then(|a| me.every.checked_sub(a.to_std().unwrap_or_default()))
                    .unwrap_or(me.every);
                tokio::time::sleep(wait.max(std::time::Duration::from_secs(1))).await;
            }
        })
    }
}

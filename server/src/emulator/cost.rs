//! Cost Management and Consumption: `POST {scope}/providers/Microsoft.CostManagement/query` over
//! deterministic daily costs for each resource of the estate (a few cents to about a dollar a day each,
//! with training days costing more), grouped and bucketed like the service, under its QPU throttling (12
//! query units per 10 seconds: 429 with `x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after`); and
//! the estate's monthly budget (`Microsoft.Consumption/budgets`) with its 75% and 100% notifications and
//! `currentSpend` from the same costs.

use super::{arm_error, Emulator, Resp};
use app::model::Role;
use axum::body::Bytes;
use axum::http::{HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Datelike, Duration, NaiveDate, Timelike, Utc};
use serde_json::{json, Value};
use std::collections::{BTreeMap, VecDeque};
use std::sync::Mutex;

/// Query units per window, as documented.
pub const QPU_LIMIT: usize = 12;
pub const QPU_WINDOW: std::time::Duration = std::time::Duration::from_secs(10);

/// The recent queries' times, for the QPU budget.
#[derive(Default)]
pub struct Qpu(Mutex<VecDeque<std::time::Instant>>);

impl Qpu {
    /// Takes one unit, or says how long until one is free.
    fn take(&self) -> Result<usize, std::time::Duration> {
        let mut q = self.0.lock().expect("qpu lock");
        let now = std::time::Instant::now();
        while q
            .front()
            .is_some_and(|t| now.duration_since(*t) >= QPU_WINDOW)
        {
            q.pop_front();
        }
        if q.len() >= QPU_LIMIT {
            let oldest = *q.front().expect("non-empty");
            return Err(QPU_WINDOW - now.duration_since(oldest));
        }
        q.push_back(now);
        Ok(QPU_LIMIT - q.len())
    }
}

/// What each role costs a day, and how the bill names it.
fn rate(role: Role) -> Option<(f64, &'static str)> {
    Some(match role {
        Role::Aks => (1.06, "Azure Kubernetes Service"),
        Role::MlWorkspace => (0.22, "Azure Machine Learning"),
        Role::ContainerRegistry => (0.167, "Container Registry"),
        Role::StorageAccount => (0.061, "Storage"),
        Role::KeyVault => (0.012, "Key Vault"),
        Role::AppInsights => (0.094, "Application Insights"),
        Role::LogAnalytics => (0.31, "Log Analytics"),
        Role::AutomationAccount => (0.008, "Automation"),
        Role::AlertRule => (0.05, "Azure Monitor"),
        Role::Vnet => (0.003, "Virtual Network"),
        _ => return None,
    })
}

/// One resource's cost on one day (the whole day, or what has accrued of today).
struct Cost {
    day: NaiveDate,
    resource_id: String,
    resource_type: String,
    service: &'static str,
    amount: f64,
}

fn jitter(key: &str, day: NaiveDate) -> f64 {
    let h = key
        .bytes()
        .chain(day.to_string().bytes())
        .fold(0xcbf2_9ce4_8422_2325u64, |h, b| {
            (h ^ b as u64).wrapping_mul(0x100_0000_01b3)
        });
    (h % 10_000) as f64 / 10_000.0
}

/// Every resource's cost for each day from `from` to `to` (inclusive), as of `now`.
fn costs(emu: &Emulator, from: NaiveDate, to: NaiveDate, now: DateTime<Utc>) -> Vec<Cost> {
    let estate = &emu.inner.estate;
    let today = now.date_naive();
    let mut out = Vec::new();
    let mut day = from;
    while day <= to && day <= today {
        let share = if day == today {
            (now.num_seconds_from_midnight() as f64 / 86_400.0).max(0.01)
        } else {
            1.0
        };
        for role in Role::ALL {
            let Some((base, service)) = rate(role) else {
                continue;
            };
            let id = estate.resource_id(role).to_ascii_lowercase();
            let mut amount = base * (0.88 + 0.24 * jitter(&id, day));
            // Training days: compute in the workspace costs more, about one day in four.
            if role == Role::MlWorkspace && jitter("training", day) < 0.27 {
                amount += 0.9 + 2.2 * jitter("training-hours", day);
            }
            out.push(Cost {
                day,
                resource_type: role.arm_type().to_ascii_lowercase(),
                resource_id: id,
                service,
                amount: amount * share,
            });
        }
        day = day.succ_opt().unwrap_or(day);
    }
    out
}

fn bad(message: impl Into<String>) -> Resp {
    arm_error(StatusCode::BAD_REQUEST, "BadRequest", message)
}

fn month_start(d: NaiveDate) -> NaiveDate {
    d.with_day(1).unwrap_or(d)
}

/// The days a `timeframe` covers.
fn period(req: &Value, now: DateTime<Utc>) -> Result<(NaiveDate, NaiveDate), String> {
    let today = now.date_naive();
    let timeframe = req["timeframe"].as_str().unwrap_or("MonthToDate");
    Ok(match timeframe {
        "MonthToDate" | "BillingMonthToDate" => (month_start(today), today),
        "WeekToDate" => (
            today - Duration::days(today.weekday().num_days_from_monday() as i64),
            today,
        ),
        "TheLastMonth" | "TheLastBillingMonth" => {
            let end = month_start(today) - Duration::days(1);
            (month_start(end), end)
        }
        "Custom" => {
            let date = |k: &str| {
                req.pointer(&format!("/timePeriod/{k}"))
                    .and_then(Value::as_str)
                    .and_then(|s| s.get(..10))
                    .and_then(|s| NaiveDate::parse_from_str(s, "%Y-%m-%d").ok())
                    .ok_or_else(|| format!("timePeriod.{k} is required for a Custom timeframe"))
            };
            let (from, to) = (date("from")?, date("to")?);
            if to < from {
                return Err("timePeriod.to is before timePeriod.from".into());
            }
            if (to - from).num_days() > 366 {
                return Err("A Custom timePeriod can span at most one year".into());
            }
            (from, to)
        }
        other => return Err(format!("The timeframe '{other}' is not supported; use MonthToDate, TheLastMonth, WeekToDate or Custom")),
    })
}

/// `POST {scope}/providers/Microsoft.CostManagement/query`.
pub async fn query(emu: &Emulator, scope: &str, body: &Bytes) -> Resp {
    let remaining = match emu.inner.qpu.take() {
        Ok(r) => r,
        Err(wait) => {
            let mut r = arm_error(
                StatusCode::TOO_MANY_REQUESTS,
                "429",
                "Too many requests. Please retry.",
            );
            let secs = wait.as_secs() + 1;
            if let Ok(v) = HeaderValue::from_str(&secs.to_string()) {
                r.headers_mut()
                    .insert("x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after", v);
            }
            return r;
        }
    };
    let Ok(req) = serde_json::from_slice::<Value>(body) else {
        return bad("The request body is not valid JSON.");
    };
    if !matches!(
        req["type"].as_str(),
        Some("ActualCost" | "AmortizedCost" | "Usage")
    ) {
        return bad("type must be ActualCost, AmortizedCost or Usage.");
    }
    let now = Utc::now();
    let (from, to) = match period(&req, now) {
        Ok(p) => p,
        Err(m) => return bad(m),
    };
    let dataset = &req["dataset"];
    let daily = match dataset["granularity"].as_str().unwrap_or("None") {
        "Daily" => true,
        "None" => false,
        other => {
            return bad(format!(
                "The granularity '{other}' is not supported; use Daily or None."
            ))
        }
    };
    let cost_column = dataset["aggregation"]
        .as_object()
        .and_then(|a| a.values().next())
        .and_then(|a| a["name"].as_str())
        .unwrap_or(if req["type"] == "Usage" {
            "PreTaxCost"
        } else {
            "Cost"
        })
        .to_string();
    if !matches!(
        cost_column.as_str(),
        "Cost" | "PreTaxCost" | "CostUSD" | "PreTaxCostUSD"
    ) {
        return bad(format!(
            "The aggregation column '{cost_column}' is not supported; use Cost or PreTaxCost."
        ));
    }
    let mut groups = Vec::new();
    for g in dataset["grouping"].as_array().into_iter().flatten() {
        let name = g["name"].as_str().unwrap_or_default();
        if !matches!(
            name,
            "ResourceId"
                | "ResourceType"
                | "ServiceName"
                | "ResourceGroup"
                | "ResourceGroupName"
                | "ResourceLocation"
                | "MeterCategory"
        ) {
            return bad(format!("The grouping dimension '{name}' is not supported."));
        }
        groups.push(name.to_string());
    }
    if groups.len() > 2 {
        return bad("At most two grouping dimensions are allowed.");
    }
    let estate = &emu.inner.estate;
    let rg_scope = format!(
        "/subscriptions/{}/resourcegroups/{}",
        estate.subscription_id, estate.resource_group
    )
    .to_ascii_lowercase();
    let scope_l = format!("/{}", scope.trim_start_matches('/')).to_ascii_lowercase();
    let in_scope = |c: &Cost| c.resource_id.starts_with(&scope_l) || rg_scope.starts_with(&scope_l);
    let mut sums: BTreeMap<(Option<u32>, Vec<String>), f64> = BTreeMap::new();
    for c in costs(emu, from, to, now).into_iter().filter(in_scope) {
        let key: Vec<String> = groups
            .iter()
            .map(|g| match g.as_str() {
                "ResourceId" => c.resource_id.clone(),
                "ResourceType" => c.resource_type.clone(),
                "ServiceName" | "MeterCategory" => c.service.to_string(),
                "ResourceLocation" => estate.location.clone(),
                _ => estate.resource_group.to_ascii_lowercase(),
            })
            .collect();
        let day = daily.then(|| c.day.format("%Y%m%d").to_string().parse().unwrap_or(0));
        *sums.entry((day, key)).or_default() += c.amount;
    }
    let mut columns = vec![json!({"name": cost_column, "type": "Number"})];
    columns.extend(groups.iter().map(|g| json!({"name": g, "type": "String"})));
    if daily {
        columns.push(json!({"name": "UsageDate", "type": "Number"}));
    }
    columns.push(json!({"name": "Currency", "type": "String"}));
    let rows: Vec<Value> = sums
        .into_iter()
        .map(|((day, key), amount)| {
            let mut row = vec![json!((amount * 1e6).round() / 1e6)];
            row.extend(key.into_iter().map(Value::from));
            if let Some(d) = day {
                row.push(json!(d));
            }
            row.push(json!("USD"));
            Value::Array(row)
        })
        .collect();
    let name = uuid::Uuid::new_v4().to_string();
    let mut r = Json(json!({"id": format!("{}/providers/Microsoft.CostManagement/query/{name}", scope.trim_end_matches('/')), "name": name,
        "type": "Microsoft.CostManagement/query", "location": null, "sku": null, "eTag": null,
        "properties": {"nextLink": null, "columns": columns, "rows": rows}}))
    .into_response();
    for (k, v) in [
        (
            "x-ms-ratelimit-microsoft.costmanagement-qpu-consumed",
            "1".to_string(),
        ),
        (
            "x-ms-ratelimit-microsoft.costmanagement-qpu-remaining",
            format!("QueryResource={remaining}"),
        ),
    ] {
        if let Ok(v) = HeaderValue::from_str(&v) {
            r.headers_mut().insert(k, v);
        }
    }
    r
}

/// The estate's budget name.
pub fn budget_name(emu: &Emulator) -> String {
    format!("{}-monthly-budget", emu.inner.estate.name)
}

fn budget(emu: &Emulator, scope: &str) -> Value {
    let estate = &emu.inner.estate;
    let now = Utc::now();
    let today = now.date_naive();
    let spend: f64 = costs(emu, month_start(today), today, now)
        .iter()
        .map(|c| c.amount)
        .sum();
    let action_group = estate.resource_id(Role::ActionGroup);
    let notification = |threshold: u32| {
        json!({"enabled": true, "operator": "GreaterThan", "threshold": threshold, "thresholdType": "Actual",
            "contactEmails": ["devops@example.com"], "contactRoles": ["Owner"], "contactGroups": [action_group], "locale": "en-us"})
    };
    let name = budget_name(emu);
    json!({"id": format!("{}/providers/Microsoft.Consumption/budgets/{name}", scope.trim_end_matches('/')), "name": name,
        "type": "Microsoft.Consumption/budgets", "eTag": "\"1db5c0e2a7f3c4e\"",
        "properties": {"category": "Cost", "amount": estate.budget_usd, "timeGrain": "Monthly",
            "timePeriod": {"startDate": "2026-01-01T00:00:00Z", "endDate": "2027-12-31T00:00:00Z"},
            "currentSpend": {"amount": (spend * 100.0).round() / 100.0, "unit": "USD"},
            "notifications": {"Actual_GreaterThan_75_Percent": notification(75), "Actual_GreaterThan_100_Percent": notification(100)}}})
}

/// `GET {scope}/providers/Microsoft.Consumption/budgets[/{name}]`.
pub async fn budgets(emu: &Emulator, scope: &str, name: Option<&str>) -> Resp {
    let estate = &emu.inner.estate;
    let sub = format!("/subscriptions/{}", estate.subscription_id).to_ascii_lowercase();
    let scope_l = scope.to_ascii_lowercase();
    let ours = scope_l == sub
        || scope_l
            == format!(
                "{sub}/resourcegroups/{}",
                estate.resource_group.to_ascii_lowercase()
            );
    match name {
        None => Json(json!({"value": if ours { vec![budget(emu, scope)] } else { vec![] }, "nextLink": null})).into_response(),
        Some(n) if ours && n.eq_ignore_ascii_case(&budget_name(emu)) => Json(budget(emu, scope)).into_response(),
        Some(n) => arm_error(StatusCode::NOT_FOUND, "NotFound", format!("The budget '{n}' was not found.")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_qpu_budget_refuses_the_thirteenth_query_in_ten_seconds() {
        let q = Qpu::default();
        for left in (0..QPU_LIMIT).rev() {
            assert_eq!(q.take(), Ok(left));
        }
        let wait = q.take().unwrap_err();
        assert!(wait <= QPU_WINDOW && wait > std::time::Duration::from_secs(9));
    }

    #[test]
    fn timeframes_cover_the_right_days() {
        let now: DateTime<Utc> = "2026-12-04T12:00:00Z".parse().unwrap();
        let d = |s: &str| NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap();
        assert_eq!(
            period(&json!({"timeframe": "MonthToDate"}), now),
            Ok((d("2026-12-01"), d("2026-12-04")))
        );
        assert_eq!(
            period(&json!({"timeframe": "TheLastMonth"}), now),
            Ok((d("2026-11-01"), d("2026-11-30")))
        );
        assert_eq!(
            period(
                &json!({"timeframe": "Custom", "timePeriod": {"from": "2026-10-01T00:00:00Z", "to": "2026-10-31T23:59:59Z"}}),
                now
            ),
            Ok((d("2026-10-01"), d("2026-10-31")))
        );
        assert!(period(&json!({"timeframe": "Custom"}), now).is_err());
        assert!(period(&json!({"timeframe": "Yesterday"}), now).is_err());
    }
}

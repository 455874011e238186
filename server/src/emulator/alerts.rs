//! Alerts Management: fired alerts, evaluated from the estate's scheduled query rules over the emulator's
//! telemetry — the underutilization rule's query runs over its window, and each dimension that breaks the
//! threshold becomes an alert (once; it stays until it is closed). `GET …/alerts` with Azure's filters and
//! `ctoken` paging, `GET …/alerts/{id}`, `POST …/alerts/{id}/changestate?newState=` with `{comments}`, and
//! `GET …/alerts/{id}/history`.

use super::kql;
use super::telemetry::{Product, Telemetry};
use super::{arm_error, base_url, Emulator, Resp};
use app::model::Role;
use axum::body::Bytes;
use axum::http::{HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use chrono::{DateTime, Duration, Utc};
use serde_json::{json, Value};
use std::collections::HashMap;

pub const ALERT: &str = "alert";
const PAGE: usize = 25;

fn parse_duration(iso: &str) -> Duration {
    let hours = iso
        .trim_start_matches("PT")
        .strip_suffix('H')
        .and_then(|h| h.parse::<i64>().ok());
    let minutes = iso
        .trim_start_matches("PT")
        .strip_suffix('M')
        .and_then(|m| m.parse::<i64>().ok());
    match (hours, minutes) {
        (Some(h), _) => Duration::hours(h),
        (_, Some(m)) => Duration::minutes(m),
        _ => Duration::hours(1),
    }
}

fn sub_alerts(emu: &Emulator) -> String {
    format!(
        "/subscriptions/{}/providers/microsoft.alertsmanagement/alerts",
        emu.inner.estate.subscription_id
    )
    .to_ascii_lowercase()
}

/// Runs the estate's log alert rule and records an alert for each dimension it fires on.
pub async fn evaluate(emu: &Emulator) -> Result<(), sqlx::Error> {
    let estate = &emu.inner.estate;
    let rule_id = estate.resource_id(Role::AlertRule);
    let Some(rule) = emu.inner.store.get_arm(&rule_id).await? else {
        return Ok(());
    };
    let p = &rule.body["properties"];
    if p["enabled"] != json!(true) {
        return Ok(());
    }
    let Some(criterion) = p.pointer("/criteria/allOf/0") else {
        return Ok(());
    };
    let query = criterion["query"].as_str().unwrap_or_default().to_string();
    let measure = criterion["metricMeasureColumn"]
        .as_str()
        .unwrap_or("AggregatedValue")
        .to_string();
    let threshold = criterion["threshold"].as_f64().unwrap_or(0.0);
    let operator = criterion["operator"]
        .as_str()
        .unwrap_or("GreaterThan")
        .to_string();
    let window = parse_duration(p["windowSize"].as_str().unwrap_or("PT1H"));
    let telemetry = Telemetry::load(emu, Product::LogAnalytics).await?;
    let now = telemetry.now();
    let range = kql::TimeRange {
        start: now - window,
        end: now,
    };
    let out = match tokio::task::spawn_blocking(move || {
        kql::run(&query, &telemetry, now, &range, 10_000)
    })
    .await
    {
        Ok(Ok(out)) => out,
        _ => return Ok(()),
    };
    let col = |name: &str| out.table.columns.iter().position(|c| c.name == name);
    let (Some(value_at), dim_at, resource_at) =
        (col(&measure), col("Computer"), col("_ResourceId"))
    else {
        return Ok(());
    };
    let parent = sub_alerts(emu);
    for row in &out.table.rows {
        let value = match &row[value_at] {
            kql::Value::Real(v) => *v,
            kql::Value::Long(v) => *v as f64,
            _ => continue,
        };
        let fires = match operator.as_str() {
            "LessThan" => value < threshold,
            "LessThanOrEqual" => value <= threshold,
            "GreaterThanOrEqual" => value >= threshold,
            _ => value > threshold,
        };
        if !fires {
            continue;
        }
        let text = |i: Option<usize>| match i.map(|i| &row[i]) {
            Some(kql::Value::String(s)) => s.clone(),
            _ => String::new(),
        };
        let computer = text(dim_at);
        let target = match text(resource_at) {
            t if t.is_empty() => estate.resource_id(Role::LogAnalytics),
            t => t,
        };
        let guid = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{rule_id}|{computer}").as_bytes(),
        );
        let id = format!("{target}/providers/Microsoft.AlertsManagement/alerts/{guid}");
        let key = format!("{parent}/{guid}");
        let started = (now - window).to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
        let segments: Vec<&str> = target.split('/').collect();
        let body = json!({"id": id, "type": "Microsoft.AlertsManagement/alerts", "name": rule.body["name"],
            "properties": {"essentials": {
                "severity": format!("Sev{}", p["severity"].as_i64().unwrap_or(3)), "signalType": "Log",
                "alertState": "New", "monitorCondition": "Fired", "monitorService": "Log Alerts V2",
                "targetResource": target.to_ascii_lowercase(), "targetResourceName": segments.last().copied().unwrap_or_default(),
                "targetResourceGroup": estate.resource_group.to_ascii_lowercase(), "targetResourceType": segments.get(segments.len().saturating_sub(2)).copied().unwrap_or_default().to_ascii_lowercase(),
                "sourceCreatedId": guid.to_string(), "alertRule": rule_id, "startDateTime": started, "lastModifiedDateTime": started,
                "lastModifiedUserName": "System", "actionStatus": {"isSuppressed": false},
                "description": format!("{} {computer}: {measure} = {value:.1} ({operator} {threshold})", p["description"].as_str().unwrap_or_default())},
            "egressConfig": {},
            "context": {"condition": {"metricMeasureColumn": measure, "operator": operator, "threshold": threshold, "windowSize": p["windowSize"],
                "dimensions": [{"name": "Computer", "value": computer}], "metricValue": (value * 100.0).round() / 100.0}}},
            "_history": [{"at": started, "event": "AlertCreated", "newValue": "New", "comments": "", "user": "System"}]});
        emu.inner.store.insert(ALERT, &key, &parent, &body).await?;
    }
    Ok(())
}

fn render(o: &Value) -> Value {
    let mut b = o.clone();
    if let Some(m) = b.as_object_mut() {
        m.remove("_history");
    }
    b
}

fn guid_of(path: &str) -> Option<String> {
    let lower = path.to_ascii_lowercase();
    let i = lower.find("/providers/microsoft.alertsmanagement/alerts/")?;
    let rest = &path[i + "/providers/microsoft.alertsmanagement/alerts/".len()..];
    rest.split('/').next().map(str::to_ascii_lowercase)
}

async fn load(emu: &Emulator, path: &str) -> Result<Option<super::store::Object>, Resp> {
    let Some(guid) = guid_of(path) else {
        return Ok(None);
    };
    if let Err(e) = evaluate(emu).await {
        return Err(super::arm::db_error(e));
    }
    emu.inner
        .store
        .get(ALERT, &format!("{}/{guid}", sub_alerts(emu)))
        .await
        .map_err(super::arm::db_error)
}

fn not_found() -> Resp {
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        "The alert was not found.",
    )
}

/// `GET {scope}/providers/Microsoft.AlertsManagement/alerts` with Azure's filters and `ctoken` paging.
pub async fn list(
    emu: &Emulator,
    headers: &HeaderMap,
    path: &str,
    q: &HashMap<String, String>,
) -> Resp {
    if let Err(e) = evaluate(emu).await {
        return super::arm::db_error(e);
    }
    let all = match emu
        .inner
        .store
        .children(ALERT, &sub_alerts(emu), 0, 10_000)
        .await
    {
        Ok(a) => a,
        Err(e) => return super::arm::db_error(e),
    };
    let scope = path.to_ascii_lowercase();
    let scope = scope
        .split("/providers/microsoft.alertsmanagement")
        .next()
        .unwrap_or_default()
        .to_string();
    let range = match q.get("timerange").map(String::as_str) {
        None => None,
        Some("1h") => Some(Duration::hours(1)),
        Some("1d") => Some(Duration::days(1)),
        Some("7d") => Some(Duration::days(7)),
        Some("30d") => Some(Duration::days(30)),
        Some(other) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "BadRequest",
                format!("Invalid timeRange '{other}': use 1h, 1d, 7d or 30d."),
            )
        }
    };
    let now = Utc::now();
    let matches = |e: &Value, field: &str, param: &str| {
        q.get(param).is_none_or(|want| {
            want.split(',').any(|w| {
                e[field]
                    .as_str()
                    .is_some_and(|v| v.eq_ignore_ascii_case(w.trim()))
            })
        })
    };
    let mut items: Vec<Value> = all
        .iter()
        .map(|o| &o.body)
        .filter(|b| {
            let e = &b["properties"]["essentials"];
            e["targetResource"]
                .as_str()
                .is_some_and(|t| t.starts_with(&scope))
                && matches(e, "alertState", "alertstate")
                && matches(e, "monitorCondition", "monitorcondition")
                && matches(e, "severity", "severity")
                && matches(e, "targetResourceGroup", "targetresourcegroup")
                && range.is_none_or(|r| {
                    e["startDateTime"]
                        .as_str()
                        .and_then(|s| s.parse::<DateTime<Utc>>().ok())
                        .is_some_and(|t| now - t <= r)
                })
        })
        .map(render)
        .collect();
    items.sort_by(|a, b| {
        let at = |v: &Value| {
            v["properties"]["essentials"]["startDateTime"]
                .as_str()
                .unwrap_or_default()
                .to_string()
        };
        at(b)
            .cmp(&at(a))
            .then_with(|| a["id"].as_str().cmp(&b["id"].as_str()))
    });
    let page = q
        .get("pagecount")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(PAGE)
        .clamp(1, 250);
    let offset = q
        .get("ctoken")
        .and_then(|c| c.parse::<usize>().ok())
        .unwrap_or(0);
    let next = (items.len() > offset + page).then(|| {
        let mut params: Vec<String> = q
            .iter()
            .filter(|(k, _)| k.as_str() != "ctoken")
            .map(|(k, v)| format!("{k}={v}"))
            .collect();
        params.sort();
        params.push(format!("ctoken={}", offset + page));
        format!("{}{path}?{}", base_url(headers), params.join("&"))
    });
    let value: Vec<Value> = items.into_iter().skip(offset).take(page).collect();
    Json(json!({"value": value, "nextLink": next})).into_response()
}

pub async fn get(emu: &Emulator, path: &str) -> Resp {
    match load(emu, path).await {
        Ok(Some(o)) => Json(render(&o.body)).into_response(),
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

/// `POST {alert}/changestate?newState=New|Acknowledged|Closed` with an optional `{"comments": "…"}`.
pub async fn change_state(
    emu: &Emulator,
    path: &str,
    q: &HashMap<String, String>,
    body: &Bytes,
) -> Resp {
    let state = q.get("newstate").map(String::as_str).unwrap_or_default();
    let Some(state) = ["New", "Acknowledged", "Closed"]
        .into_iter()
        .find(|s| s.eq_ignore_ascii_case(state))
    else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            format!(
                "The value '{state}' is not valid for newState: use New, Acknowledged or Closed."
            ),
        );
    };
    let comments = if body.is_empty() {
        String::new()
    } else {
        match serde_json::from_slice::<Value>(body) {
            Ok(v) => v["comments"].as_str().unwrap_or_default().to_string(),
            Err(_) => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The request body is not valid JSON.",
                )
            }
        }
    };
    let o = match load(emu, path).await {
        Ok(Some(o)) => o,
        Ok(None) => return not_found(),
        Err(r) => return r,
    };
    let mut b = o.body.clone();
    let now = Utc::now().to_rfc3339_opts(chrono::SecondsFormat::Secs, true);
    let old = b["properties"]["essentials"]["alertState"].clone();
    b["properties"]["essentials"]["alertState"] = json!(state);
    b["properties"]["essentials"]["lastModifiedDateTime"] = json!(now);
    b["properties"]["essentials"]["lastModifiedUserName"] = json!("mlops-console");
    if let Some(h) = b["_history"].as_array_mut() {
        h.push(json!({"at": now, "event": "StateChange", "oldValue": old, "newValue": state, "comments": comments, "user": "mlops-console"}));
    }
    let parent = sub_alerts(emu);
    match emu.inner.store.upsert(ALERT, &o.key, &parent, &b).await {
        Ok(_) => Json(render(&b)).into_response(),
        Err(e) => super::arm::db_error(e),
    }
}

/// `GET {alert}/history`: its state changes with their comments.
pub async fn history(emu: &Emulator, path: &str) -> Resp {
    match load(emu, path).await {
        Ok(Some(o)) => {
            let id = o.body["id"].clone();
            let modifications: Vec<Value> = o.body["_history"]
                .as_array()
                .into_iter()
                .flatten()
                .map(|h| json!({"event": h["event"], "oldValue": h["oldValue"], "newValue": h["newValue"], "modifiedAt": h["at"],
                    "modifiedBy": h["user"], "comments": h["comments"], "description": format!("State changed to {}", h["newValue"].as_str().unwrap_or_default())}))
                .collect();
            Json(json!({"id": format!("{}/history/default", id.as_str().unwrap_or_default()), "type": "Microsoft.AlertsManagement/alerts/history", "name": "default",
                "properties": {"alertId": id, "modifications": modifications}}))
            .into_response()
        }
        Ok(None) => not_found(),
        Err(r) => r,
    }
}

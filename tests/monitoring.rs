//! Cost and alerts end to end: cost fetched once and served from Postgres, the QPU throttle waited out,
//! alert states changed through the emulator and recorded as runs, bad input refused.

use crate::support::*;
use serde_json::{json, Value};
use std::time::{Duration, Instant};

async fn cost_ready(app: &TestApp) -> Value {
    wait_for(
        "the first cost refresh",
        Duration::from_secs(30),
        || async { app.get("/api/v1/cost").await.status() == 200 },
    )
    .await;
    app.json("/api/v1/cost").await.1
}

async fn fault_hits(app: &TestApp) -> Value {
    app.http
        .get(format!("{}/_emulator/faults", app.emulator_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

#[tokio::test]
async fn cost_is_fetched_once_then_served_from_the_cache() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let cost = cost_ready(&app).await;
    assert_eq!(cost["budget"], 75.0);
    assert_eq!(cost["currency"], "USD");
    let mtd = cost["month_to_date"].as_f64().unwrap();
    let daily: f64 = cost["daily"]
        .as_array()
        .unwrap()
        .iter()
        .map(|d| d[1].as_f64().unwrap())
        .sum();
    assert!((mtd - daily).abs() < 0.05, "{mtd} vs {daily}");
    let by_resource: f64 = cost["by_resource"]
        .as_array()
        .unwrap()
        .iter()
        .map(|b| b["amount"].as_f64().unwrap())
        .sum();
    assert!((mtd - by_resource).abs() < 0.05, "{mtd} vs {by_resource}");
    assert!(cost["by_resource"][0]["name"]
        .as_str()
        .is_some_and(|n| !n.is_empty()));
    assert!(cost["by_service"].as_array().unwrap().len() >= 5);
    assert!(cost["forecast"]["amount"].as_f64().unwrap() >= mtd);
    assert!(cost["forecast"]["method"]
        .as_str()
        .unwrap()
        .starts_with("Linear"));
    let thresholds: Vec<f64> = cost["thresholds"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["percent"].as_f64().unwrap())
        .collect();
    assert_eq!(thresholds, [75.0, 100.0]);
    assert_eq!(
        cost["thresholds"][0]["contacts"],
        json!(["devops@example.com"])
    );
    assert_eq!(cost["months"].as_array().unwrap().len(), 3);

    // Count what reaches Cost Management from here on.
    let spy = json!({"path": "/subscriptions/*/Microsoft.CostManagement/query", "latency_ms": 1});
    app.http
        .post(format!("{}/_emulator/faults", app.emulator_url()))
        .json(&spy)
        .send()
        .await
        .unwrap();
    for path in ["/cost", "/cost", "/api/v1/cost", "/"] {
        let (status, html) = app.text(path).await;
        assert_eq!(status, 200, "{path}");
        if path == "/cost" {
            assert!(
                html.contains("Month to date") && html.contains("$75.00") && html.contains("As of"),
                "{html}"
            );
        }
    }
    assert_eq!(
        fault_hits(&app).await["value"][0]["hits"],
        0,
        "page loads never call the cost API"
    );
    let (status, refreshed) = app.post("/api/v1/cost/refresh").await;
    assert_eq!(status, 200, "{refreshed}");
    assert_eq!(
        fault_hits(&app).await["value"][0]["hits"],
        6,
        "a refresh: month to date daily, by resource, by service, three past months"
    );
    let (_, html) = app.text("/").await;
    assert!(
        html.contains("data-testid=\"spend-widget\"")
            && html.contains("data-testid=\"alerts-widget\"")
    );
    app.server.stop().await;
}

#[tokio::test]
async fn a_cost_refresh_waits_out_the_qpu_throttle() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    cost_ready(&app).await;
    let estate = mlops_console::config::load_estate(None).unwrap();
    let url = format!(
        "{}/subscriptions/{}/resourceGroups/{}/providers/Microsoft.CostManagement/query?api-version=2025-03-01",
        app.emulator_url(),
        estate.subscription_id,
        estate.resource_group
    );
    let body = json!({"type": "ActualCost", "timeframe": "MonthToDate", "dataset": {"granularity": "None"}});
    let mut throttled = None;
    for _ in 0..13 {
        let r = app
            .http
            .post(&url)
            .bearer_auth("t")
            .json(&body)
            .send()
            .await
            .unwrap();
        if r.status() == 429 {
            throttled = r
                .headers()
                .get("x-ms-ratelimit-microsoft.costmanagement-qpu-retry-after")
                .map(|v| v.to_str().unwrap().to_string());
            break;
        }
        assert!(r
            .headers()
            .contains_key("x-ms-ratelimit-microsoft.costmanagement-qpu-remaining"));
    }
    let wait: u64 = throttled
        .expect("the 13th query in 10 s is refused")
        .parse()
        .unwrap();
    assert!((1..=10).contains(&wait));
    let started = Instant::now();
    let (status, refreshed) = app.post("/api/v1/cost/refresh").await;
    assert_eq!(status, 200, "{refreshed}");
    assert!(
        started.elapsed() >= Duration::from_millis(900),
        "the client waited for the QPU budget"
    );
    app.server.stop().await;
}

#[tokio::test]
async fn alerts_fire_from_the_data_and_change_state_as_runs() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let (status, view) = app.json("/api/v1/alerts").await;
    assert_eq!(status, 200, "{view}");
    let alerts = view["alerts"].as_array().unwrap();
    assert_eq!(alerts.len(), 3, "one per AKS node under 20% CPU: {view}");
    assert!(alerts.iter().all(|a| a["state"] == "New"
        && a["severity"] == "Sev3"
        && a["underutilization"] == true
        && a["condition"] == "Fired"));
    assert_eq!(
        view["rules"][0]["name"],
        "mlopsnew-dev-underutilization-alert"
    );
    assert_eq!(
        view["action_groups"][0]["emails"],
        json!(["devops@example.com"])
    );
    let id = alerts[0]["id"].as_str().unwrap().to_string();

    let post = |id: String, body: Value| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(format!("{}/api/v1/alerts/{id}/state", app.url))
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, bad) = post(id.clone(), json!({"state": "Resolved", "comment": "x"})).await;
    assert_eq!(status, 422, "{bad}");
    assert!(bad["error"]["message"]
        .as_str()
        .unwrap()
        .contains("New, Acknowledged, Closed"));
    let (status, missing) = post(
        "00000000-0000-0000-0000-000000000000".into(),
        json!({"state": "Closed"}),
    )
    .await;
    assert_eq!(status, 404, "{missing}");

    let (status, done) = post(
        id.clone(),
        json!({"state": "Acknowledged", "comment": "looking at node pool size"}),
    )
    .await;
    assert_eq!(status, 200, "{done}");
    assert_eq!(done["alert"]["state"], "Acknowledged");
    assert_eq!(done["run"]["kind"], "alert-state");
    assert_eq!(done["run"]["status"], "succeeded");
    assert_eq!(done["run"]["reason"], "looking at node pool size");
    let (_, acked) = app.json("/api/v1/alerts?state=Acknowledged").await;
    assert_eq!(acked["alerts"].as_array().unwrap().len(), 1);
    let (status, _) = app.json("/api/v1/alerts?state=Resolved").await;
    assert_eq!(status, 422);

    // Azure keeps the comment in the alert's history.
    let azure_id = done["alert"]["azure_id"].as_str().unwrap();
    let history: Value = app
        .http
        .get(format!(
            "{}{azure_id}/history?api-version=2018-05-05",
            app.emulator_url()
        ))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let last = history["properties"]["modifications"]
        .as_array()
        .unwrap()
        .last()
        .unwrap()
        .clone();
    assert_eq!(
        (last["newValue"].as_str(), last["comments"].as_str()),
        (Some("Acknowledged"), Some("looking at node pool size"))
    );

    // Closing it as well; the overview's count drops.
    let (status, _) = post(id, json!({"state": "Closed", "comment": "scaled down"})).await;
    assert_eq!(status, 200);
    let (_, all) = app.json("/api/v1/alerts?state=New").await;
    assert_eq!(all["alerts"].as_array().unwrap().len(), 2);
    app.server.stop().await;
}

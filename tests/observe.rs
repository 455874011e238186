//! Observe end to end: every saved query through the console's API, the real client and the emulator's
//! query endpoints; Azure's answers and errors in Azure's shapes; bad queries, truncation, the row cap,
//! the per-user limit, saved and recent queries, and rollout health that follows the traffic.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

async fn query(app: &TestApp, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .post(format!("{}/api/v1/queries", app.url))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

#[tokio::test]
async fn every_saved_query_runs_end_to_end_and_answers_with_data() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let (status, saved) = app.json("/api/v1/queries/saved").await;
    assert_eq!(status, 200);
    let saved = saved.as_array().unwrap();
    assert!(saved.len() >= 9, "{saved:?}");
    for q in saved {
        let (status, result) = query(
            &app,
            &json!({"source": q["source"], "query": q["query"], "timespan": q["timespan"]}),
        )
        .await;
        assert_eq!(status, 200, "{}: {result}", q["name"]);
        assert!(
            result["row_count"].as_u64().unwrap() > 0,
            "{} returned no rows: {result}",
            q["name"]
        );
        assert!(result["partial"].is_null());
    }
    // The seed's own: an average latency in a plausible range.
    let (_, avg) = query(&app, &json!({"source": "app-insights", "query": "requests | where name contains 'score' | summarize avg(duration)", "timespan": "P1D"})).await;
    assert_eq!(
        avg["columns"],
        json!([{"name": "avg_duration", "type": "real"}])
    );
    let ms = avg["rows"][0][0].as_f64().unwrap();
    assert!((10.0..200.0).contains(&ms), "{avg}");
    // Time series come back typed and ordered, ready to draw.
    let (_, series) = query(&app, &json!({"source": "app-insights", "query": "requests | summarize count() by bin(timestamp, 1h) | order by timestamp asc", "timespan": "PT12H"})).await;
    assert_eq!(series["columns"][0]["type"], "datetime");
    assert_eq!(series["columns"][1]["type"], "long");
    assert!(series["rows"][0][1].is_number(), "{series}");
    let (_, recent) = app.json("/api/v1/queries/recent").await;
    assert!(
        recent.as_array().unwrap().len() >= saved.len(),
        "every run is recorded"
    );
    app.server.stop().await;
}

#[tokio::test]
async fn bad_queries_get_the_reason_and_truncation_is_flagged() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    for (q, expect) in [
        ("requests | where", "SyntaxError"),
        ("requests | where nosuchcolumn > 1", "SEM0100"),
        ("Requests | take 1", "did you mean 'requests'"),
        ("requests | join (dependencies) on id", "join"),
        ("requests | where duration > 'slow'", "SEM0101"),
    ] {
        let (status, body) = query(
            &app,
            &json!({"source": "app-insights", "query": q, "timespan": "PT1H"}),
        )
        .await;
        assert_eq!(status, 400, "{q}: {body}");
        let message = body["error"]["message"].as_str().unwrap();
        assert!(message.contains(expect), "{q}: {message}");
    }
    for body in [
        json!({"source": "app-insights", "query": "requests", "timespan": "PT2H"}),
        json!({"source": "app-insights", "query": "  ", "timespan": "PT1H"}),
    ] {
        let (status, answer) = query(&app, &body).await;
        assert_eq!(status, 422, "{answer}");
    }
    let (status, _) = query(&app, &json!({"source": "cosmos", "query": "requests"})).await;
    assert!((400..500).contains(&status));

    // The service stops at its limit and says so; the console passes that on.
    let (status, cut) = query(&app, &json!({"source": "app-insights", "query": "set truncationmaxrecords = 25;\nrequests", "timespan": "P1D"})).await;
    assert_eq!(status, 200, "{cut}");
    assert_eq!(cut["row_count"], 25);
    assert!(
        cut["partial"].as_str().unwrap().contains("exceeded"),
        "{cut}"
    );
    // The console keeps at most 5,000 rows for display and says how many there were.
    let (_, big) = query(
        &app,
        &json!({"source": "log-analytics", "query": "Perf", "timespan": "P1D"}),
    )
    .await;
    assert_eq!(big["capped"], true, "{}", big["row_count"]);
    assert_eq!(big["rows"].as_array().unwrap().len(), 5000);
    assert!(big["row_count"].as_u64().unwrap() > 5000);
    app.server.stop().await;
}

#[tokio::test]
async fn the_emulator_answers_in_azures_shapes() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let estate = mlops_console::config::load_estate(None).unwrap();
    let path = format!("/v1/workspaces/{}/query", estate.log_analytics_workspace_id);
    let body = json!({"query": "Perf | take 3", "timespan": "PT1H"});
    let r = emu
        .call(reqwest::Method::POST, &path, false, Some(&body))
        .await;
    assert_eq!(r.status(), 401);
    let ok: Value = emu
        .call(reqwest::Method::POST, &path, true, Some(&body))
        .await
        .json()
        .await
        .unwrap();
    let keys = |v: &Value| v.as_object().unwrap().keys().cloned().collect::<Vec<_>>();
    assert_eq!(keys(&ok), ["tables"]);
    let mut table_keys = keys(&ok["tables"][0]);
    table_keys.sort();
    assert_eq!(table_keys, ["columns", "name", "rows"]);
    assert_eq!(ok["tables"][0]["rows"].as_array().unwrap().len(), 3);
    let bad: Value = emu
        .call(
            reqwest::Method::POST,
            &path,
            true,
            Some(&json!({"query": "Perf | where"})),
        )
        .await
        .json()
        .await
        .unwrap();
    assert_eq!(bad["error"]["code"], "BadArgumentError");
    assert_eq!(bad["error"]["innererror"]["code"], "SyntaxError");
    let get = emu
        .get(&format!(
            "/v1/apps/{}/query?query=requests%20%7C%20count&timespan=PT1H",
            estate.app_insights_app_id
        ))
        .await;
    assert_eq!(get.status(), 200);
    let other = emu
        .call(
            reqwest::Method::POST,
            "/v1/workspaces/00000000-0000-0000-0000-000000000000/query",
            true,
            Some(&body),
        )
        .await;
    assert_eq!(other.status(), 404);
    emu.stop().await;
}

#[tokio::test]
async fn queries_are_saved_listed_and_limited_per_user() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let new = json!({"name": "slow scoring", "source": "app-insights", "query": "requests | where duration > 100", "timespan": "PT6H"});
    let post = |body: Value| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(format!("{}/api/v1/queries/saved", app.url))
                .json(&body)
                .send()
                .await
                .unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, saved) = post(new.clone()).await;
    assert_eq!(status, 201, "{saved}");
    assert_eq!(saved["builtin"], false);
    let (status, again) = post(new).await;
    assert_eq!(status, 409, "{again}");
    let (status, bad) =
        post(json!({"name": "", "source": "app-insights", "query": "requests"})).await;
    assert_eq!(status, 422, "{bad}");
    let (_, all) = app.json("/api/v1/queries/saved").await;
    assert!(all
        .as_array()
        .unwrap()
        .iter()
        .any(|q| q["name"] == "slow scoring"));

    // Five queries may be in flight for one user; the sixth is told to wait.
    let fault = json!({"path": "/v1/*", "latency_ms": 1500});
    app.http
        .post(format!("{}/_emulator/faults", app.emulator_url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    let body = json!({"source": "app-insights", "query": "requests | count", "timespan": "PT1H"});
    let answers = futures::future::join_all((0..6).map(|_| query(&app, &body))).await;
    let statuses: Vec<u16> = answers.iter().map(|(s, _)| *s).collect();
    assert_eq!(
        statuses.iter().filter(|s| **s == 200).count(),
        5,
        "{statuses:?}"
    );
    let (_, refused) = answers
        .iter()
        .find(|(s, _)| *s == 429)
        .expect("one refused");
    assert!(refused["error"]["message"]
        .as_str()
        .unwrap()
        .contains("At most 5"));
    app.server.stop().await;
}

#[tokio::test]
async fn rollout_health_follows_the_traffic_to_each_deployment() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let (_, empty) = app
        .json("/api/v1/endpoints/ml-endpoint-staging/health")
        .await;
    assert_eq!(empty["deployments"], json!([]), "no endpoint, no requests");

    let post = |path: String, body: Value| {
        let app = &app;
        async move {
            let r = app
                .http
                .post(format!("{}{path}", app.url))
                .json(&body)
                .send()
                .await
                .unwrap();
            let accepted: Value = r.json().await.unwrap();
            app.finished(accepted["run_id"].as_str().unwrap()).await
        }
    };
    let training = post(
        "/api/v1/jobs/training".into(),
        serde_json::to_value(app::model::TrainingJobSpec::seed_default()).unwrap(),
    )
    .await;
    let model = post(
        "/api/v1/models".into(),
        json!({"training_run": training["id"]}),
    )
    .await;
    let version = model["parameters"]["version"].as_str().unwrap().to_string();
    let blue = post(
        "/api/v1/endpoints/ml-endpoint-staging/deployments".into(),
        json!({"deployment": "blue", "model": format!("diabetes-classifier:{version}")}),
    )
    .await;
    assert_eq!(blue["status"], "succeeded", "{blue}");
    let r = app
        .http
        .put(format!(
            "{}/api/v1/endpoints/ml-endpoint-staging/traffic",
            app.url
        ))
        .json(&json!({"traffic": {"blue": 100}}))
        .send()
        .await
        .unwrap();
    let accepted: Value = r.json().await.unwrap();
    app.finished(accepted["run_id"].as_str().unwrap()).await;

    wait_for("blue's requests to show", Duration::from_secs(30), || {
        let app = &app;
        async move {
            let (_, h) = app
                .json("/api/v1/endpoints/ml-endpoint-staging/health")
                .await;
            h["deployments"].as_array().is_some_and(|d| !d.is_empty())
        }
    })
    .await;
    let (_, health) = app
        .json("/api/v1/endpoints/ml-endpoint-staging/health")
        .await;
    let d = &health["deployments"][0];
    assert_eq!(d["deployment"], "blue");
    assert!(
        d["requests"].as_i64().unwrap() >= 1 && d["p95_ms"].as_f64().unwrap() > 0.0,
        "{health}"
    );
    assert_eq!(health["series"]["columns"][1]["name"], "timestamp");
    app.server.stop().await;
}

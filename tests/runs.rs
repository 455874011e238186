//! Training jobs as runs: submitted through the API, tracked to a terminal state against the emulator,
//! recorded in Postgres, safe to send twice, resumed after a restart, tracked once by several replicas.

use crate::support::*;
use serde_json::{json, Value};

fn spec() -> Value {
    serde_json::to_value(app::model::TrainingJobSpec::seed_default()).unwrap()
}

async fn submit(app: &TestApp, body: &Value, key: Option<&str>) -> (u16, Value) {
    let mut req = app
        .http
        .post(format!("{}/api/v1/jobs/training", app.url))
        .json(body);
    if let Some(k) = key {
        req = req.header("Idempotency-Key", k);
    }
    let r = req.send().await.unwrap();
    (r.status().as_u16(), r.json().await.unwrap())
}

fn statuses(run: &Value) -> Vec<String> {
    run["transitions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| {
            format!(
                "{}/{}",
                t["status"].as_str().unwrap(),
                t["azure_status"].as_str().unwrap_or("")
            )
        })
        .collect()
}

const FULL_PATH: [&str; 7] = [
    "submitting/",
    "queued/NotStarted",
    "queued/Queued",
    "queued/Starting",
    "running/Running",
    "running/Finalizing",
    "succeeded/Completed",
];

/// The transitions are a subsequence of the job's path through Azure, each recorded once.
fn assert_on_path(run: &Value) {
    let seen = statuses(run);
    let mut path = FULL_PATH.iter();
    for s in &seen {
        assert!(
            path.any(|p| p == s),
            "transition {s} out of order or repeated in {seen:?}"
        );
    }
}

#[tokio::test]
async fn a_training_job_runs_to_completion_on_record() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let mut body = spec();
    body["reason"] = json!("weekly retrain");
    let (status, accepted) = submit(&app, &body, Some("k-1")).await;
    assert_eq!(status, 202, "{accepted}");
    let id = accepted["run_id"].as_str().unwrap().to_string();

    let run = app.finished(&id).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_eq!(run["kind"], "training-job");
    assert_eq!(run["reason"], "weekly retrain");
    assert_eq!(run["requested_by"], "token:tests");
    assert!(run["target"]
        .as_str()
        .unwrap()
        .starts_with("mlopsnew-dev-mlw/jobs/train-"));
    assert!(run["azure_id"]
        .as_str()
        .unwrap()
        .contains("/workspaces/mlopsnew-dev-mlw/jobs/train-"));
    assert!(run["finished_at"].is_string());
    let seen = statuses(&run);
    assert_eq!(seen.first().map(String::as_str), Some("submitting/"));
    assert_eq!(seen.last().map(String::as_str), Some("succeeded/Completed"));
    assert_on_path(&run);
    let metrics: Vec<&str> = run["metrics"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["key"].as_str().unwrap())
        .collect();
    assert!(
        metrics.contains(&"accuracy") && metrics.contains(&"loss"),
        "{metrics:?}"
    );
    let log = log_lines(&run);
    assert!(
        log.iter().any(|l| l.starts_with("Submitting command job"))
            && log.iter().any(|l| l.contains("Finished: succeeded"))
    );
    // The job's own log streams in as it runs, each line once, all of it before the end.
    let job_log: Vec<&String> = log.iter().filter(|l| l.starts_with("std_log │ ")).collect();
    assert!(
        job_log.iter().any(|l| l.contains("epoch 1: loss=")),
        "{log:?}"
    );
    assert_eq!(
        job_log.last().map(|l| l.as_str()),
        Some("std_log │ Run completed"),
        "{log:?}"
    );
    let mut unique = job_log.clone();
    unique.dedup();
    assert_eq!(unique.len(), job_log.len(), "no line twice: {log:?}");
    let end = log
        .iter()
        .position(|l| l.contains("Finished: succeeded"))
        .unwrap();
    assert!(
        log.iter()
            .position(|l| l == "std_log │ Run completed")
            .unwrap()
            < end
    );

    // The run page shows it.
    let (code, html) = app.text(&format!("/runs/{id}")).await;
    assert_eq!(code, 200);
    assert!(
        html.contains("succeeded") && html.contains("weekly retrain") && html.contains("accuracy")
    );
    app.server.stop().await;
}

#[tokio::test]
async fn a_failing_job_fails_the_run_with_the_reason() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let mut body = spec();
    body["inputs"]["emulator_fail"] = json!("true");
    let (_, accepted) = submit(&app, &body, None).await;
    let run = app.finished(accepted["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "failed");
    assert_eq!(run["azure_status"], "Failed");
    assert!(run["error"].as_str().unwrap().contains("Failed"));
    app.server.stop().await;
}

#[tokio::test]
async fn the_same_key_twice_is_one_job() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let body = spec();
    let (a, b) = tokio::join!(
        submit(&app, &body, Some("double-click")),
        submit(&app, &body, Some("double-click"))
    );
    assert_eq!((a.0, b.0), (202, 202));
    assert_eq!(
        a.1["run_id"], b.1["run_id"],
        "a repeat returns the first run"
    );
    assert_eq!(
        [a.1["created"].as_bool(), b.1["created"].as_bool()]
            .iter()
            .filter(|c| **c == Some(true))
            .count(),
        1
    );
    app.finished(a.1["run_id"].as_str().unwrap()).await;
    let jobs: i64 = sqlx::query_scalar("select count(*) from emulator.objects where kind = 'job'")
        .fetch_one(&db.pool().await)
        .await
        .unwrap();
    assert_eq!(jobs, 1, "exactly one job reached Azure");
    let (_, third) = submit(&app, &body, Some("another-click")).await;
    assert_ne!(third["run_id"], a.1["run_id"]);
    app.server.stop().await;
}

#[tokio::test]
async fn bad_input_is_refused_before_anything_is_sent() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let mut body = spec();
    body["command"] = json!("  ");
    body["compute"] = json!("cpu cluster!");
    let (status, err) = submit(&app, &body, None).await;
    assert_eq!(status, 422);
    assert_eq!(err["error"]["code"], "ValidationFailed");
    let msg = err["error"]["message"].as_str().unwrap();
    assert!(msg.contains("command") && msg.contains("compute"), "{msg}");

    let r = app
        .http
        .post(format!("{}/api/v1/jobs/training", app.url))
        .header("content-type", "application/json")
        .body("{not json")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let err: Value = r.json().await.unwrap();
    assert_eq!(err["error"]["code"], "BadRequest");

    let pool = db.pool().await;
    let jobs: i64 = sqlx::query_scalar("select count(*) from emulator.objects where kind = 'job'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let runs: i64 = sqlx::query_scalar("select count(*) from runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!((jobs, runs), (0, 0));
    app.server.stop().await;
}

#[tokio::test]
async fn a_lost_answer_is_resolved_without_a_second_job() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let emu = app.emulator_url();
    let fault =
        json!({"path": "/subscriptions/*/jobs/*", "method": "PUT", "status": 503, "times": 1});
    app.http
        .post(format!("{emu}/_emulator/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    let (status, accepted) = submit(&app, &spec(), None).await;
    assert_eq!(status, 202);
    let run = app.finished(accepted["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    let log = log_lines(&run);
    assert!(
        log.iter().any(|l| l.contains("No answer from Azure")),
        "{log:?}"
    );
    app.server.stop().await;
}

#[tokio::test]
async fn a_restart_resumes_runs_in_flight_while_azure_carries_on() {
    let db = TestDb::new().await;
    let emulator = StandaloneEmulator::start(&db).await;
    let mut c = config(&db);
    c.emulator_url = Some(emulator.url.clone());
    let app = TestApp::ready(c.clone()).await;
    let (_, accepted) = submit(&app, &spec(), None).await;
    let id = accepted["run_id"].as_str().unwrap().to_string();
    app.server.stop().await; // killed mid-run; the job goes on in "Azure"

    let app = TestApp::ready(c).await;
    let run = app.finished(&id).await;
    assert_eq!(run["status"], "succeeded");
    assert_on_path(&run);
    app.server.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn two_replicas_track_each_run_once() {
    let db = TestDb::new().await;
    let emulator = StandaloneEmulator::start(&db).await;
    let mut c = config(&db);
    c.emulator_url = Some(emulator.url.clone());
    let a = TestApp::ready(c.clone()).await;
    let b = TestApp::ready(c).await;
    let mut ids = Vec::new();
    for i in 0..6 {
        let app = if i % 2 == 0 { &a } else { &b };
        let (_, accepted) = submit(app, &spec(), None).await;
        ids.push(accepted["run_id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        let run = a.finished(id).await;
        assert_eq!(run["status"], "succeeded");
        assert_on_path(&run);
        let lines = log_lines(&run);
        let finished_lines = lines.iter().filter(|l| l.starts_with("Finished")).count();
        assert_eq!(finished_lines, 1, "one replica finished the run: {lines:?}");
    }
    a.server.stop().await;
    b.server.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn runs_list_filters_and_pages_by_keyset() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let mut ids = Vec::new();
    for _ in 0..5 {
        let (_, accepted) = submit(&app, &spec(), None).await;
        ids.push(accepted["run_id"].as_str().unwrap().to_string());
    }
    for id in &ids {
        app.finished(id).await;
    }
    let mut seen = Vec::new();
    let mut cursor: Option<String> = None;
    loop {
        let path = match &cursor {
            Some(c) => format!("/api/v1/runs?limit=2&cursor={c}"),
            None => "/api/v1/runs?limit=2".to_string(),
        };
        let (status, page) = app.json(&path).await;
        assert_eq!(status, 200, "{page}");
        seen.extend(
            page["runs"]
                .as_array()
                .unwrap()
                .iter()
                .map(|r| r["id"].as_str().unwrap().to_string()),
        );
        match page["next_cursor"].as_str() {
            Some(c) => cursor = Some(c.to_string()),
            None => break,
        }
    }
    let mut expected = ids.clone();
    expected.reverse();
    assert_eq!(seen, expected, "newest first, each once");

    let (_, filtered) = app
        .json("/api/v1/runs?status=succeeded&kind=training-job&requested_by=token:tests")
        .await;
    assert_eq!(filtered["runs"].as_array().unwrap().len(), 5);
    let (_, none) = app.json("/api/v1/runs?status=failed").await;
    assert_eq!(none["runs"].as_array().unwrap().len(), 0);
    let (_, none) = app.json("/api/v1/runs?until=2000-01-01T00:00:00Z").await;
    assert_eq!(none["runs"].as_array().unwrap().len(), 0);

    for bad in [
        "/api/v1/runs?status=done",
        "/api/v1/runs?cursor=xyz",
        "/api/v1/runs?since=yesterday",
        "/api/v1/runs?limit=0",
    ] {
        let (status, err) = app.json(bad).await;
        assert_eq!(status, 400, "{bad}: {err}");
        assert!(err["error"]["message"].is_string());
    }
    let (status, _) = app.json("/api/v1/runs/not-a-uuid").await;
    assert_eq!(status, 404);
    let (status, html) = app
        .text(&format!("/runs/compare?a={}&b={}", ids[0], ids[1]))
        .await;
    assert_eq!(status, 200);
    assert!(html.contains(&ids[0][..8]) && html.contains(&ids[1][..8]));
    assert!(html.contains("data-metric=\"accuracy\"") && html.contains("data-metric=\"loss\""));
    let (status, _) = app
        .text(&format!("/runs/compare?a={}&b=nope", ids[0]))
        .await;
    assert_eq!(status, 404);
    let (status, html) = app.text("/runs?status=succeeded").await;
    assert_eq!(status, 200);
    assert!(html.contains(&ids[0][..8]));
    app.server.stop().await;
}

#[tokio::test]
async fn a_throttling_storm_slows_the_tracker_but_loses_and_repeats_nothing() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    // Every read of any job is throttled for a while, with Azure's Retry-After.
    let fault = json!({"path": "/subscriptions/*/jobs/*", "method": "GET", "status": 429, "retry_after": 1, "times": 6});
    let armed = app
        .http
        .post(format!("{}/_emulator/faults", app.emulator_url()))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(armed.status(), 201);
    let (status, accepted) = submit(&app, &spec(), None).await;
    assert_eq!(status, 202, "{accepted}");
    let run = app.finished(accepted["run_id"].as_str().unwrap()).await;
    assert_eq!(run["status"], "succeeded", "{run}");
    assert_on_path(&run);
    let faults: Value = app
        .http
        .get(format!("{}/_emulator/faults", app.emulator_url()))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    // A fault leaves the list once it has been applied `times` times: all six throttles were met.
    assert_eq!(faults["value"], json!([]), "the storm was met: {faults}");
    app.server.stop().await;
}

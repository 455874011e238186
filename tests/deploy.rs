//! From a training run to a blue/green rollout: register a model, deploy at 0%, shift traffic, roll back —
//! each a run, each input checked before anything is sent, a busy endpoint refused, a failed deployment
//! leaving traffic as it was.

use crate::support::*;
use serde_json::{json, Value};
use std::time::Duration;

const EP: &str = "ml-endpoint-staging";

async fn send(app: &TestApp, method: reqwest::Method, path: &str, body: &Value) -> (u16, Value) {
    let r = app
        .http
        .request(method, format!("{}{path}", app.url))
        .json(body)
        .send()
        .await
        .unwrap();
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

/// Sends a trigger, expects 202, and waits for the run to end.
async fn run(app: &TestApp, method: reqwest::Method, path: &str, body: Value) -> Value {
    let (status, accepted) = send(app, method, path, &body).await;
    assert_eq!(status, 202, "{path}: {accepted}");
    app.finished(accepted["run_id"].as_str().unwrap()).await
}

async fn traffic(app: &TestApp) -> Value {
    let path = format!(
        "{}/subscriptions/b2b8a5e6-9a34-494b-ba62-fe9be95bd398/resourceGroups/mlopsnew-dev-rg/providers/Microsoft.MachineLearningServices/workspaces/mlopsnew-dev-mlw/onlineEndpoints/{EP}?api-version=2025-09-01",
        app.emulator_url()
    );
    let ep: Value = app
        .http
        .get(path)
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    ep["properties"]["traffic"].clone()
}

async fn aks_deployment(app: &TestApp) -> Value {
    app.http
        .get(format!(
            "{}/aks/mlopsnew-dev-aks/apis/apps/v1/namespaces/default/deployments/ml-inference",
            app.emulator_url()
        ))
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap()
}

async fn trained_model(app: &TestApp) -> String {
    let spec = serde_json::to_value(app::model::TrainingJobSpec::seed_default()).unwrap();
    let training = run(app, reqwest::Method::POST, "/api/v1/jobs/training", spec).await;
    assert_eq!(training["status"], "succeeded");
    training["id"].as_str().unwrap().to_string()
}

#[tokio::test]
async fn train_register_deploy_shift_and_roll_back() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let post = reqwest::Method::POST;
    let training = trained_model(&app).await;

    let v1 = run(
        &app,
        post.clone(),
        "/api/v1/models",
        json!({"training_run": training}),
    )
    .await;
    assert_eq!(
        (v1["status"].as_str(), v1["target"].as_str()),
        (Some("succeeded"), Some("diabetes-classifier:1"))
    );
    let v2 = run(
        &app,
        post.clone(),
        "/api/v1/models",
        json!({"training_run": training, "reason": "retrain"}),
    )
    .await;
    assert_eq!(v2["target"], "diabetes-classifier:2");

    let deployments = format!("/api/v1/endpoints/{EP}/deployments");
    let blue = run(
        &app,
        post.clone(),
        &deployments,
        json!({"deployment": "blue", "model": "diabetes-classifier:1"}),
    )
    .await;
    assert_eq!(blue["status"], "succeeded", "{blue}");
    let log = log_lines(&blue);
    assert!(
        log.iter().any(|l| l.starts_with("Creating endpoint"))
            && log.iter().any(|l| l.contains("at 0% traffic")),
        "{log:?}"
    );

    let put = reqwest::Method::PUT;
    let split = format!("/api/v1/endpoints/{EP}/traffic");
    assert_eq!(
        run(&app, put.clone(), &split, json!({"traffic": {"blue": 100}})).await["status"],
        "succeeded"
    );
    let green = run(
        &app,
        post.clone(),
        &deployments,
        json!({"deployment": "green", "model": "diabetes-classifier:2", "instance_count": 2}),
    )
    .await;
    assert_eq!(green["status"], "succeeded");
    assert_eq!(
        traffic(&app).await,
        json!({"blue": 100}),
        "a new deployment takes no traffic"
    );

    let canary = run(
        &app,
        put.clone(),
        &split,
        json!({"traffic": {"blue": 90, "green": 10}, "reason": "canary"}),
    )
    .await;
    assert_eq!(canary["status"], "succeeded");
    assert_eq!(traffic(&app).await, json!({"blue": 90, "green": 10}));

    let back = run(
        &app,
        post.clone(),
        &format!("/api/v1/endpoints/{EP}/rollback"),
        json!({"reason": "latency up"}),
    )
    .await;
    assert_eq!(
        (back["status"].as_str(), back["kind"].as_str()),
        (Some("succeeded"), Some("rollback"))
    );
    assert_eq!(
        traffic(&app).await,
        json!({"blue": 100}),
        "rollback restores the previous split"
    );

    // green is retired: it takes no traffic, so it can be deleted; blue takes traffic, so it cannot.
    let (status, err) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/endpoints/{EP}/deployments/blue"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 409, "{err}");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("move its traffic"));
    let deleted = run(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/endpoints/{EP}/deployments/green"),
        json!({}),
    )
    .await;
    assert_eq!(
        (deleted["status"].as_str(), deleted["azure_status"].as_str()),
        (Some("succeeded"), Some("Deleted"))
    );
    let (status, _) = send(
        &app,
        reqwest::Method::DELETE,
        &format!("/api/v1/endpoints/{EP}/deployments/green"),
        &json!({}),
    )
    .await;
    assert_eq!(status, 404);
    app.server.stop().await;
}

#[tokio::test]
async fn bad_input_and_busy_endpoints_are_refused_with_nothing_sent() {
    let db = TestDb::new().await;
    let emulator = StandaloneEmulator::start_with(&db, Duration::from_millis(400)).await;
    let mut c = config(&db);
    c.emulator_url = Some(emulator.url.clone());
    let app = TestApp::ready(c).await;
    let post = reqwest::Method::POST;
    let put = reqwest::Method::PUT;
    let training = trained_model(&app).await;
    run(
        &app,
        post.clone(),
        "/api/v1/models",
        json!({"training_run": training}),
    )
    .await;
    let deployments = format!("/api/v1/endpoints/{EP}/deployments");
    run(
        &app,
        post.clone(),
        &deployments,
        json!({"deployment": "blue", "model": "diabetes-classifier:1"}),
    )
    .await;
    let pool = db.pool().await;
    let runs_before: i64 = sqlx::query_scalar("select count(*) from runs")
        .fetch_one(&pool)
        .await
        .unwrap();

    let split = format!("/api/v1/endpoints/{EP}/traffic");
    let cases = [
        (
            post.clone(),
            deployments.clone(),
            json!({"deployment": "1blue", "model": "diabetes-classifier:1"}),
            "deployment",
        ),
        (
            post.clone(),
            deployments.clone(),
            json!({"deployment": "bl", "model": "diabetes-classifier:1"}),
            "deployment",
        ),
        (
            post.clone(),
            deployments.clone(),
            json!({"deployment": "green", "model": "diabetes-classifier:9"}),
            "no version 9",
        ),
        (
            post.clone(),
            deployments.clone(),
            json!({"deployment": "green", "model": "diabetes-classifier:1", "instance_count": 0}),
            "instance_count",
        ),
        (
            post.clone(),
            "/api/v1/endpoints/Bad_Name/deployments".to_string(),
            json!({"deployment": "green", "model": "diabetes-classifier:1"}),
            "endpoint",
        ),
        (
            put.clone(),
            split.clone(),
            json!({"traffic": {"blue": 90}}),
            "total 100",
        ),
        (
            put.clone(),
            split.clone(),
            json!({"traffic": {"blue": 100}, "mirror": {"blue": 60}}),
            "50%",
        ),
        (
            put.clone(),
            split.clone(),
            json!({"traffic": {"blue": 50, "nope": 50}}),
            "not a deployment",
        ),
        (
            post.clone(),
            "/api/v1/models".to_string(),
            json!({"training_run": "not-a-run"}),
            "training_run",
        ),
    ];
    for (method, path, body, needle) in cases {
        let (status, err) = send(&app, method, &path, &body).await;
        assert_eq!(status, 422, "{path} {body}: {err}");
        assert!(
            err["error"]["message"].as_str().unwrap().contains(needle),
            "{path} {body}: {err}"
        );
    }
    let (status, _) = send(
        &app,
        put.clone(),
        "/api/v1/endpoints/no-such-endpoint/traffic",
        &json!({"traffic": {"blue": 100}}),
    )
    .await;
    assert_eq!(status, 404);
    let runs_after: i64 = sqlx::query_scalar("select count(*) from runs")
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(runs_before, runs_after, "refused requests start no run");

    // While one change is in flight, a second is refused (409) and nothing is half-applied.
    let (status, first) = send(
        &app,
        put.clone(),
        &split,
        &json!({"traffic": {"blue": 100}}),
    )
    .await;
    assert_eq!(status, 202, "{first}");
    let (status, busy) = send(
        &app,
        put.clone(),
        &split,
        &json!({"traffic": {"blue": 100}, "reason": "again"}),
    )
    .await;
    assert_eq!(status, 409, "{busy}");
    assert!(
        busy["error"]["message"]
            .as_str()
            .unwrap()
            .contains("Nothing was changed")
            || busy["error"]["message"]
                .as_str()
                .unwrap()
                .contains("nothing was changed")
    );
    assert_eq!(
        app.finished(first["run_id"].as_str().unwrap()).await["status"],
        "succeeded"
    );

    // A deployment Azure fails leaves the split as it was.
    let fault = json!({"path": "/subscriptions/*/deployments/green", "method": "PUT", "status": 500, "times": 1});
    app.http
        .post(format!("{}/_emulator/faults", emulator.url))
        .json(&fault)
        .send()
        .await
        .unwrap();
    let failed = run(
        &app,
        post.clone(),
        &deployments,
        json!({"deployment": "green", "model": "diabetes-classifier:1"}),
    )
    .await;
    assert_eq!(failed["status"], "failed");
    assert!(failed["error"].as_str().unwrap().contains("500"));
    app.server.stop().await;
    emulator.stop().await;
}

#[tokio::test]
async fn aks_is_scaled_and_the_runbook_runs_as_runs() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let post = reqwest::Method::POST;
    let scaled = run(
        &app,
        post.clone(),
        "/api/v1/aks/deployments/ml-inference/scale",
        json!({"replicas": 3, "reason": "load test"}),
    )
    .await;
    assert_eq!(scaled["status"], "succeeded", "{scaled}");
    assert_eq!(scaled["azure_status"], "3/3 ready");
    assert_eq!(scaled["parameters"]["previous"], 2);
    let kube = format!(
        "{}/aks/mlopsnew-dev-aks/apis/apps/v1/namespaces/default/deployments/ml-inference/scale",
        app.emulator_url()
    );
    let scale: Value = app
        .http
        .get(&kube)
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        (scale["kind"].as_str(), scale["spec"]["replicas"].as_i64()),
        (Some("Scale"), Some(3))
    );

    for (path, body, code) in [
        (
            "/api/v1/aks/deployments/ml-inference/scale",
            json!({"replicas": -1}),
            422,
        ),
        (
            "/api/v1/aks/deployments/ML_Inference/scale",
            json!({"replicas": 1}),
            422,
        ),
        (
            "/api/v1/aks/deployments/nope/scale",
            json!({"replicas": 1}),
            404,
        ),
        ("/api/v1/runbooks/Other-Runbook/start", json!({}), 404),
        (
            "/api/v1/runbooks/Scale-MLOps-Resources/start",
            json!({"parameters": [1, 2]}),
            422,
        ),
    ] {
        let (status, err) = send(&app, post.clone(), path, &body).await;
        assert_eq!(status, code, "{path} {body}: {err}");
        assert!(err["error"]["message"].is_string());
    }

    let book = run(&app, post.clone(), "/api/v1/runbooks/Scale-MLOps-Resources/start",
        json!({"parameters": {"ResourceGroupName": "mlopsnew-dev-rg", "ScaleDirection": "down"}, "reason": "underutilised"})).await;
    assert_eq!(
        (book["status"].as_str(), book["azure_status"].as_str()),
        (Some("succeeded"), Some("Completed")),
        "{book}"
    );
    let log = log_lines(&book);
    assert!(
        log.iter().any(|l| l.starts_with("Scaled down")),
        "the runbook's output is in the log: {log:?}"
    );
    app.server.stop().await;
}

#[tokio::test]
async fn the_train_and_deploy_pipeline_runs_each_step_as_a_child_and_stops_at_a_failure() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let post = reqwest::Method::POST;
    let parent = run(
        &app,
        post.clone(),
        "/api/v1/pipelines/train-deploy",
        json!({"reason": "release 1"}),
    )
    .await;
    assert_eq!(parent["status"], "succeeded", "{parent}");
    let id = parent["id"].as_str().unwrap();
    let pool = db.pool().await;
    let children: Vec<(String, String)> = sqlx::query_as(
        "select kind, status from runs where parent_id = $1::uuid order by created_at",
    )
    .bind(id)
    .fetch_all(&pool)
    .await
    .unwrap();
    let kinds: Vec<&str> = children.iter().map(|(k, _)| k.as_str()).collect();
    assert_eq!(
        kinds,
        [
            "training-job",
            "model-register",
            "image-build",
            "deployment-create",
            "secret-set",
            "aks-rollout"
        ]
    );
    assert!(children.iter().all(|(_, s)| s == "succeeded"));
    // The image the registry built is the one AKS now runs.
    let version: String = sqlx::query_scalar(
        "select parameters->>'version' from runs where parent_id = $1::uuid and kind = 'model-register'",
    )
    .bind(id)
    .fetch_one(&pool)
    .await
    .unwrap();
    let image = format!("mlopsnewdevacr3kxldb.azurecr.io/inference:v{version}");
    let d = aks_deployment(&app).await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        image.as_str()
    );
    assert_eq!(
        traffic(&app).await,
        json!({}),
        "the pipeline deploys at 0% and changes no traffic"
    );

    // The endpoint key is in Key Vault, and nowhere in the runs.
    let stored: String = sqlx::query_scalar("select body->>'value' from emulator.objects where kind = 'secret' and key like '%/secrets/endpoint-key'")
        .fetch_one(&pool)
        .await
        .unwrap();
    let (_, all_runs) = app.text("/api/v1/runs?limit=200").await;
    let logs: Vec<String> = sqlx::query_scalar("select line from run_logs")
        .fetch_all(&pool)
        .await
        .unwrap();
    assert!(
        stored.len() >= 32
            && !all_runs.contains(&stored)
            && !logs.iter().any(|l| l.contains(&stored))
    );

    let mut failing = json!({"training": app::model::TrainingJobSpec::seed_default()});
    failing["training"]["inputs"]["emulator_fail"] = json!("true");
    let failed = run(&app, post, "/api/v1/pipelines/train-deploy", failing).await;
    assert_eq!(
        (failed["status"].as_str(), failed["azure_status"].as_str()),
        (Some("failed"), Some("train")),
        "{failed}"
    );
    assert!(failed["error"].as_str().unwrap().contains("train"));
    let steps: i64 = sqlx::query_scalar("select count(*) from runs where parent_id = $1::uuid")
        .bind(failed["id"].as_str().unwrap())
        .fetch_one(&pool)
        .await
        .unwrap();
    assert_eq!(steps, 1, "nothing after the failed step was started");
    app.server.stop().await;
}

#[tokio::test]
async fn an_image_is_built_in_the_registry_and_rolled_out_to_aks_and_a_missing_image_stalls() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let post = reqwest::Method::POST;

    // Bad input is refused before anything is sent.
    for (path, body) in [
        ("/api/v1/images/build", json!({"image": "Inference:v9"})),
        ("/api/v1/images/build", json!({"image": "inference"})),
        (
            "/api/v1/images/build",
            json!({"image": "inference:v9", "build_args": {"a b": "1"}}),
        ),
        (
            "/api/v1/aks/deployments/ml-inference/rollout",
            json!({"image": "inference:bad tag"}),
        ),
        (
            "/api/v1/aks/deployments/ML_Inference/rollout",
            json!({"image": "inference:v1"}),
        ),
    ] {
        let (status, body) = send(&app, post.clone(), path, &body).await;
        assert_eq!(status, 422, "{path}: {body}");
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|e| !e.is_empty()),
            "{body}"
        );
    }

    let built = run(
        &app,
        post.clone(),
        "/api/v1/images/build",
        json!({"image": "inference:v9", "reason": "hotfix"}),
    )
    .await;
    assert_eq!(
        (built["status"].as_str(), built["azure_status"].as_str()),
        (Some("succeeded"), Some("Succeeded")),
        "{built}"
    );
    let log = log_lines(&built);
    assert!(
        log.iter().any(|l| l.starts_with("build │ ")
            && l.contains("Successfully tagged mlopsnewdevacr3kxldb.azurecr.io/inference:v9")),
        "{log:?}"
    );
    assert!(
        log.iter()
            .any(|l| l.starts_with("Pushed mlopsnewdevacr3kxldb.azurecr.io/inference:v9@sha256:")),
        "{log:?}"
    );

    let failing = run(
        &app,
        post.clone(),
        "/api/v1/images/build",
        json!({"image": "inference:v10", "build_args": {"EMULATOR_FAIL": "true"}}),
    )
    .await;
    assert_eq!(failing["status"], "failed", "{failing}");
    assert!(failing["error"].as_str().unwrap().contains("build log"));
    assert!(log_lines(&failing)
        .iter()
        .any(|l| l.contains("did not complete successfully")));

    let rolled = run(
        &app,
        post.clone(),
        "/api/v1/aks/deployments/ml-inference/rollout",
        json!({"image": "inference:v9"}),
    )
    .await;
    assert_eq!(rolled["status"], "succeeded", "{rolled}");
    let d = aks_deployment(&app).await;
    assert_eq!(
        d["spec"]["template"]["spec"]["containers"][0]["image"],
        "mlopsnewdevacr3kxldb.azurecr.io/inference:v9"
    );
    assert_eq!(d["status"]["readyReplicas"], d["spec"]["replicas"]);
    assert!(log_lines(&rolled)
        .iter()
        .any(|l| l.contains("successfully rolled out")));

    // v10 never made it to the registry: its pods cannot pull it and the rollout stalls.
    let stalled = run(
        &app,
        post,
        "/api/v1/aks/deployments/ml-inference/rollout",
        json!({"image": "inference:v10"}),
    )
    .await;
    assert_eq!(
        (stalled["status"].as_str(), stalled["azure_status"].as_str()),
        (Some("failed"), Some("ProgressDeadlineExceeded")),
        "{stalled}"
    );
    assert!(stalled["error"].as_str().unwrap().contains("inference:v10"));
    app.server.stop().await;
}

#[tokio::test]
async fn a_deployment_azure_fails_leaves_traffic_alone_and_its_container_log_is_kept() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let post = reqwest::Method::POST;
    let training = trained_model(&app).await;
    let model = run(
        &app,
        post.clone(),
        "/api/v1/models",
        json!({"training_run": training}),
    )
    .await;
    let version = model["parameters"]["version"].as_str().unwrap().to_string();
    let blue = run(&app, post.clone(), &format!("/api/v1/endpoints/{EP}/deployments"),
        json!({"deployment": "blue", "model": format!("diabetes-classifier:{version}"), "instance_count": 1})).await;
    assert_eq!(blue["status"], "succeeded", "{blue}");
    assert!(
        log_lines(&blue)
            .iter()
            .any(|l| l.starts_with("container │ ") && l.contains("init() complete")),
        "{blue}"
    );
    let shifted = run(
        &app,
        reqwest::Method::PUT,
        &format!("/api/v1/endpoints/{EP}/traffic"),
        json!({"traffic": {"blue": 100}}),
    )
    .await;
    assert_eq!(shifted["status"], "succeeded");

    // Azure answers the PUT, then the deployment fails mid-operation (its container never boots).
    let pool = db.pool().await;
    let before = traffic(&app).await;
    let (status, accepted) = send(&app, post, &format!("/api/v1/endpoints/{EP}/deployments"),
        &json!({"deployment": "green", "model": format!("diabetes-classifier:{version}"), "instance_count": 1,
                "environment_variables": {"EMULATOR_FAIL": "true"}})).await;
    assert_eq!(status, 202, "{accepted}");
    let green = app.finished(accepted["run_id"].as_str().unwrap()).await;
    assert_eq!(
        (green["status"].as_str(), green["azure_status"].as_str()),
        (Some("failed"), Some("Failed")),
        "{green}"
    );
    assert!(green["error"]
        .as_str()
        .unwrap()
        .contains("traffic was not changed"));
    assert!(
        log_lines(&green)
            .iter()
            .any(|l| l.contains("Worker failed to boot")),
        "{green}"
    );
    assert_eq!(traffic(&app).await, before);
    let transitions: Vec<String> = sqlx::query_scalar(
        "select status from run_transitions where run_id = $1::uuid order by at, id",
    )
    .bind(green["id"].as_str().unwrap())
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(transitions.last().map(String::as_str), Some("failed"));
    app.server.stop().await;
}

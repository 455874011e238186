//! The console and its emulator end to end: pages, API shapes, faults, staleness, restarts.

use crate::support::*;
use std::time::{Duration, Instant};

#[tokio::test]
async fn overview_shows_the_whole_estate() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let (status, html) = app.text("/").await;
    assert_eq!(status, 200);
    for name in seed_names() {
        assert!(html.contains(&name), "overview misses {name}");
    }
    for heading in [
        "Machine learning",
        "Containers &amp; compute",
        "Data &amp; secrets",
        "Monitoring",
        "Networking &amp; identity",
        "Cost management",
    ] {
        assert!(
            html.contains(heading),
            "overview misses the group {heading}"
        );
    }
    assert!(html.contains("EMULATOR"), "emulator mode is not shown");
    assert!(
        html.contains("b2b8a5e6-9a34-494b-ba62-fe9be95bd398") && html.contains("mlopsnew-dev-rg")
    );
    assert!(html.contains("East US") && html.contains("Development"));
    assert!(
        html.contains("Tags on every resource") && html.contains("managed-by: terraform"),
        "tags are not shown"
    );
    assert!(
        html.contains("<svg class=\"depgraph\""),
        "no dependency graph"
    );
    assert!(html.contains("mlops_console.js"), "no hydration script");
    app.server.stop().await;
}

#[tokio::test]
async fn every_resource_page_shows_what_matters_for_its_type() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let expect: &[(&str, &[&str])] = &[
        (
            "mlopsnew-dev-mlw",
            &[
                "Linked resources",
                "mlopsnewdevst3kxldb",
                "mlopsnew-dev-kv-3kxldb",
                "mlopsnewdevacr3kxldb",
                "mlopsnew-dev-ml-identity",
            ],
        ),
        (
            "mlopsnew-dev-aks",
            &["Node pools", "Standard_DS2_v2", "1.31.2", "Running"],
        ),
        (
            "mlopsnewdevacr3kxldb",
            &[
                "Repositories",
                "inference",
                "latest",
                "mlopsnewdevacr3kxldb.azurecr.io",
            ],
        ),
        (
            "mlopsnew-dev-kv-3kxldb",
            &[
                "Secrets",
                "model-api-key",
                "db-connection-string",
                "Expires",
            ],
        ),
        (
            "mlopsnewdevst3kxldb",
            &[
                "Blob containers",
                "datasets",
                "models",
                "logs",
                "cost-exports",
            ],
        ),
        ("mlopsnew-dev-ai", &["Application ID", "mlopsnew-dev-law"]),
        (
            "mlopsnew-dev-law",
            &["8c3f1e2a-6d4b-4f7a-b9e0-2a1c5d7e9f30", "PerGB2018"],
        ),
        (
            "mlopsnew-dev-ml-identity",
            &[
                "Role assignments",
                "Storage Blob Data Contributor",
                "AcrPull",
                "Key Vault Secrets User",
            ],
        ),
        (
            "mlopsnew-dev-vnet",
            &[
                "Subnets",
                "training-subnet",
                "10.0.1.0/24",
                "inference-subnet",
                "10.0.2.0/24",
                "private-endpoints-subnet",
                "10.0.3.0/24",
            ],
        ),
        (
            "mlopsnew-dev-ml-nsg",
            &["Security rules", "AllowAzureMLInbound", "training-subnet"],
        ),
        (
            "mlopsnew-dev-aks-nsg",
            &["Security rules", "AllowHttpsInbound", "inference-subnet"],
        ),
        (
            "mlopsnew-dev-auto-cost",
            &["Runbooks", "Scale-MLOps-Resources"],
        ),
        (
            "Scale-MLOps-Resources",
            &["PowerShell72", "Published", "mlopsnew-dev-auto-cost"],
        ),
        (
            "mlopsnew-dev-cost-alerts-ag",
            &["Receivers", "devops@example.com", "Scale-MLOps-Resources"],
        ),
        (
            "mlopsnew-dev-underutilization-alert",
            &[
                "Condition",
                "LessThan",
                "20",
                "PT6H",
                "mlopsnew-dev-cost-alerts-ag",
            ],
        ),
    ];
    assert_eq!(expect.len(), 15);
    for (name, needles) in expect {
        let (status, html) = app.text(&format!("/resources/{name}")).await;
        assert_eq!(status, 200, "{name}");
        for needle in *needles {
            assert!(html.contains(needle), "{name}: page misses {needle:?}");
        }
    }
    app.server.stop().await;
}

#[tokio::test]
async fn secret_values_never_reach_a_page_or_the_api() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let values: Vec<String> =
        sqlx::query_scalar("select body->>'value' from emulator.objects where kind = 'secret'")
            .fetch_all(&db.pool().await)
            .await
            .unwrap();
    assert_eq!(values.len(), 4);
    let (_, page) = app.text("/resources/mlopsnew-dev-kv-3kxldb").await;
    let (_, api) = app.text("/api/v1/resources/mlopsnew-dev-kv-3kxldb").await;
    let (_, all) = app.text("/api/v1/resources").await;
    for v in &values {
        assert!(
            !page.contains(v) && !api.contains(v) && !all.contains(v),
            "a secret value leaked"
        );
    }
    app.server.stop().await;
}

#[tokio::test]
async fn api_shapes_and_errors() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;

    let (status, estate) = app.json("/api/v1/estate").await;
    assert_eq!(status, 200);
    assert_eq!(
        estate["subscription_id"],
        "b2b8a5e6-9a34-494b-ba62-fe9be95bd398"
    );
    assert_eq!(estate["resource_group"], "mlopsnew-dev-rg");
    assert_eq!(estate["budget_usd"], 75.0);
    assert_eq!(estate["mode"], "emulator");
    assert_eq!(estate["emulator_url"], app.emulator_url());

    let (status, list) = app.json("/api/v1/resources").await;
    assert_eq!(status, 200);
    let resources = list["resources"].as_array().unwrap();
    assert_eq!(resources.len(), 15);
    for r in resources {
        for key in ["name", "role", "category", "type", "id", "status", "tags"] {
            assert!(r.get(key).is_some(), "resource misses {key}: {r}");
        }
    }
    assert_eq!(list["freshness"]["stale"], false);
    assert_eq!(list["dependencies"].as_array().unwrap().len(), 14);

    let (status, aks) = app.json("/api/v1/resources/mlopsnew-dev-aks").await;
    assert_eq!(status, 200);
    assert_eq!(aks["type"], "Microsoft.ContainerService/managedClusters");
    assert_eq!(
        aks["status"],
        serde_json::json!({"kind": "provisioned", "state": "Succeeded"})
    );
    assert!(aks["facts"]["tables"][0]["rows"].as_array().unwrap().len() == 2);

    let (status, err) = app.json("/api/v1/resources/not-a-resource").await;
    assert_eq!(status, 404);
    assert_eq!(err["error"]["code"], "NotFound");
    assert!(err["error"]["message"]
        .as_str()
        .unwrap()
        .contains("not-a-resource"));

    let (status, err) = app.json("/api/v1/nothing-here").await;
    assert_eq!(
        (status, err["error"]["code"].as_str()),
        (404, Some("NotFound"))
    );

    let (status, _) = app.text("/resources/not-a-resource").await;
    assert_eq!(status, 404, "an unknown resource page answers 404");

    let (status, _) = app.json("/healthz").await;
    assert_eq!(status, 200);
    let (status, ready) = app.json("/readyz").await;
    assert_eq!(
        (
            status,
            ready["database"].as_bool(),
            ready["inventory_loaded"].as_bool()
        ),
        (200, Some(true), Some(true))
    );

    let before = list["freshness"]["fetched_at"].clone();
    let (status, refreshed) = app.post("/api/v1/inventory/refresh").await;
    assert_eq!(status, 200);
    assert_eq!(refreshed["ok"], true);
    assert_ne!(refreshed["freshness"]["fetched_at"], before);
    app.server.stop().await;
}

#[tokio::test]
async fn throttling_is_waited_out_with_retry_after() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let emu = app.emulator_url();
    let fault = serde_json::json!({"path": "/subscriptions/*/resources", "method": "GET", "status": 429, "retry_after": 1, "times": 2});
    let r = app
        .http
        .post(format!("{emu}/_emulator/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);

    let started = Instant::now();
    let (status, refreshed) = app.post("/api/v1/inventory/refresh").await;
    assert_eq!(
        (status, refreshed["ok"].as_bool()),
        (200, Some(true)),
        "{refreshed}"
    );
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "the client did not wait Retry-After twice"
    );
    let faults: serde_json::Value = app
        .http
        .get(format!("{emu}/_emulator/faults"))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(
        faults["value"].as_array().unwrap().len(),
        0,
        "both throttled answers were used"
    );
    app.server.stop().await;
}

#[tokio::test]
async fn persistent_failure_keeps_the_last_snapshot_and_says_so() {
    let db = TestDb::new().await;
    let app = TestApp::ready(config(&db)).await;
    let emu = app.emulator_url();
    let fault = serde_json::json!({"path": "*", "status": 500});
    app.http
        .post(format!("{emu}/_emulator/faults"))
        .json(&fault)
        .send()
        .await
        .unwrap();

    let (status, refreshed) = app.post("/api/v1/inventory/refresh").await;
    assert_eq!(status, 502);
    assert_eq!(refreshed["ok"], false);
    assert!(refreshed["freshness"]["last_error"]
        .as_str()
        .unwrap()
        .contains("500"));

    let (status, html) = app.text("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-stale=\"true\"") && html.contains("Stale"));
    for name in seed_names() {
        assert!(html.contains(&name));
    }
    app.http
        .delete(format!("{emu}/_emulator/faults"))
        .send()
        .await
        .unwrap();
    let (status, refreshed) = app.post("/api/v1/inventory/refresh").await;
    assert_eq!(
        (status, refreshed["freshness"]["stale"].as_bool()),
        (200, Some(false))
    );
    app.server.stop().await;
}

#[tokio::test]
async fn emulator_down_serves_the_stored_snapshot_after_a_restart() {
    let db = TestDb::new().await;
    let emulator = StandaloneEmulator::start(&db).await;
    let mut c = config(&db);
    c.emulator_url = Some(emulator.url.clone());
    let app = TestApp::ready(c.clone()).await;
    app.server.stop().await;
    emulator.stop().await;

    // Azure is gone and the console restarts: the last snapshot comes from Postgres, labelled stale.
    let app = TestApp::start(c).await;
    let probe = format!("{}/api/v1/resources", app.url);
    wait_for(
        "the failed first refresh",
        Duration::from_secs(30),
        || async {
            let v: serde_json::Value = app
                .http
                .get(&probe)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            v["freshness"]["last_error"].is_string()
        },
    )
    .await;
    let (status, html) = app.text("/").await;
    assert_eq!(status, 200);
    assert!(html.contains("data-stale=\"true\""), "not labelled stale");
    assert!(html.contains("could not reach"), "the reason is not shown");
    for name in seed_names() {
        assert!(html.contains(&name));
    }
    let (status, page) = app.text("/resources/mlopsnew-dev-vnet").await;
    assert_eq!(status, 200);
    assert!(page.contains("10.0.3.0/24"));
    app.server.stop().await;
}

#[tokio::test]
async fn first_start_with_azure_down_is_a_clear_503_not_an_empty_page() {
    let db = TestDb::new().await;
    let mut c = config(&db);
    c.emulator_url = Some("http://127.0.0.1:9".into());
    let app = TestApp::start(c).await;
    let probe = format!("{}/api/v1/resources", app.url);
    wait_for(
        "the failed first refresh",
        Duration::from_secs(30),
        || async {
            let r = app.http.get(&probe).send().await.unwrap();
            let v: serde_json::Value = r.json().await.unwrap();
            v["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("not answering"))
        },
    )
    .await;
    let (status, html) = app.text("/").await;
    assert_eq!(status, 503);
    assert!(html.contains("Azure is not answering"));
    let (status, _) = app.json("/readyz").await;
    assert_eq!(status, 503);
    app.server.stop().await;
}

//! The emulator speaks Azure's protocol, and the real client reads it: auth and api-version rules,
//! ARM's error envelopes, `nextLink` and `$skipToken` paging, fault injection, state kept in Postgres.

use crate::support::*;
use mlops_console::azure::credential::StaticTokenCredential;
use mlops_console::azure::{AzureClient, Endpoints, RetryPolicy};
use reqwest::Method;
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;

const SUB: &str = "b2b8a5e6-9a34-494b-ba62-fe9be95bd398";
const RG: &str =
    "/subscriptions/b2b8a5e6-9a34-494b-ba62-fe9be95bd398/resourceGroups/mlopsnew-dev-rg";

fn client(url: &str) -> AzureClient {
    let retry = RetryPolicy {
        max_attempts: 3,
        base_delay: Duration::from_millis(20),
        max_delay: Duration::from_secs(2),
    };
    AzureClient::new(
        Endpoints::emulator(url),
        Arc::new(StaticTokenCredential("t".into())),
        retry,
    )
    .unwrap()
}

/// Status and JSON body of a response.
async fn answer(r: reqwest::Response) -> (u16, Value) {
    (r.status().as_u16(), r.json().await.unwrap_or(Value::Null))
}

fn header(r: &reqwest::Response, name: &str) -> String {
    r.headers()
        .get(name)
        .map(|v| v.to_str().unwrap().to_string())
        .unwrap_or_default()
}

#[tokio::test]
async fn arm_rules_and_error_envelopes() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;

    let r = emu
        .call(
            Method::GET,
            &format!("{RG}?api-version=2025-04-01"),
            false,
            None,
        )
        .await;
    assert!(!header(&r, "www-authenticate").is_empty());
    let (status, body) = answer(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (401, Some("AuthenticationFailed"))
    );

    let (status, body) = answer(emu.get(RG).await).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (400, Some("MissingApiVersionParameter"))
    );

    // Any api-version is accepted, and ids compare case-insensitively as in ARM.
    let r = emu
        .get(&format!("{}?api-version=1999-01-01", RG.to_uppercase()))
        .await;
    assert_eq!(r.status(), 200);
    assert!(!header(&r, "x-ms-request-id").is_empty());
    assert!(!header(&r, "x-ms-ratelimit-remaining-subscription-reads").is_empty());

    let (status, body) = answer(
        emu.get(&format!(
            "{RG}/providers/Microsoft.Compute/virtualMachines/nope?api-version=2024-01-01"
        ))
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Microsoft.Compute/virtualMachines/nope"));

    let (status, body) = answer(
        emu.get(&format!(
            "/subscriptions/{SUB}/resourceGroups/other-rg/resources?api-version=2025-04-01"
        ))
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceGroupNotFound"))
    );

    let subs = emu.get_json("/subscriptions?api-version=2022-12-01").await;
    assert_eq!(subs["value"][0]["subscriptionId"], SUB);
    let groups = emu
        .get_json(&format!(
            "/subscriptions/{SUB}/resourcegroups?api-version=2025-04-01"
        ))
        .await;
    assert_eq!(groups["value"][0]["name"], "mlopsnew-dev-rg");
    let (status, _) = answer(
        emu.get("/subscriptions/00000000-0000-0000-0000-000000000000?api-version=2022-12-01")
            .await,
    )
    .await;
    assert_eq!(status, 404);

    let (status, body) = answer(
        emu.call(
            Method::DELETE,
            &format!("{RG}?api-version=2025-04-01"),
            true,
            None,
        )
        .await,
    )
    .await;
    assert_eq!(status, 405);
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());
    emu.stop().await;
}

#[tokio::test]
async fn lists_page_with_next_links_and_expand() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let first = format!(
        "{RG}/resources?api-version=2025-04-01&$expand=createdTime,changedTime,provisioningState"
    );
    let page = emu.get_json(&first).await;
    assert_eq!(page["value"].as_array().unwrap().len(), 10);
    let next = page["nextLink"].as_str().expect("a second page");
    assert!(
        next.starts_with(&emu.url),
        "nextLink is absolute, on the emulator: {next}"
    );
    let item = &page["value"][0];
    assert!(
        item["createdTime"].is_string()
            && item["changedTime"].is_string()
            && item["provisioningState"].is_string()
    );
    assert!(
        item.get("properties").is_none(),
        "list items carry no properties"
    );

    let page2 = emu.get_json(next).await;
    assert_eq!(page2["value"].as_array().unwrap().len(), 5);
    assert!(page2["nextLink"].is_null());

    let (status, _) = answer(
        emu.get(&format!(
            "{RG}/resources?api-version=2025-04-01&$expand=everything"
        ))
        .await,
    )
    .await;
    assert_eq!(status, 400);

    // The real client follows the links to the end.
    let all = client(&emu.url)
        .list_resources_in_group(SUB, "mlopsnew-dev-rg")
        .await
        .unwrap();
    assert_eq!(all.len(), 15);
    assert!(all.iter().all(|r| r.created_time.is_some()));
    emu.stop().await;
}

#[tokio::test]
async fn resource_graph_pages_with_skip_tokens_and_refuses_unknown_kql() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let c = client(&emu.url);
    let q = "Resources | where resourceGroup =~ 'mlopsnew-dev-rg' | project id, name, type, state = properties.provisioningState | order by id asc";
    let rows = c
        .resource_graph_paged(&[SUB.to_string()], q, 4)
        .await
        .unwrap();
    assert_eq!(rows.len(), 15, "four pages of four, three, joined");
    let mut ids: Vec<&str> = rows.iter().map(|r| r["id"].as_str().unwrap()).collect();
    let before = ids.clone();
    ids.sort_by_key(|s| s.to_ascii_lowercase());
    assert_eq!(ids, before, "stable order across pages");
    // Types without a provisioningState (identities, action groups, runbooks) project null, as in Azure.
    assert!(rows
        .iter()
        .all(|r| r["state"] == "Succeeded" || r["state"].is_null()));
    assert!(rows.iter().filter(|r| r["state"] == "Succeeded").count() >= 10);
    assert!(rows
        .iter()
        .all(|r| r["type"].as_str().unwrap() == r["type"].as_str().unwrap().to_ascii_lowercase()));

    let graph = "/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01";
    let bad = json!({"query": "Resources | summarize count() by type"});
    let (status, body) = answer(emu.call(Method::POST, graph, true, Some(&bad)).await).await;
    assert_eq!(
        (status, body["error"]["details"][0]["code"].as_str()),
        (400, Some("InvalidQuery"))
    );
    assert!(body["error"]["details"][1]["message"]
        .as_str()
        .unwrap()
        .contains("summarize"));

    let too_many = json!({"query": "Resources", "options": {"$top": 5000}});
    let (status, _) = answer(emu.call(Method::POST, graph, true, Some(&too_many)).await).await;
    assert_eq!(status, 400);
    emu.stop().await;
}

#[tokio::test]
async fn data_planes_need_their_tokens_and_never_list_values() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let secrets = "/keyvault/mlopsnew-dev-kv-3kxldb/secrets?api-version=7.4";
    let r = emu.call(Method::GET, secrets, false, None).await;
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").contains("resource=\"https://vault.azure.net\""));

    let page = emu.get_json(&format!("{secrets}&maxresults=3")).await;
    let items = page["value"].as_array().unwrap();
    assert_eq!(items.len(), 3);
    assert!(page["nextLink"].as_str().unwrap().contains("$skiptoken="));
    assert!(items.iter().all(|s| s.get("value").is_none()));

    let r = emu
        .call(
            Method::GET,
            "/acr/mlopsnewdevacr3kxldb/acr/v1/_catalog",
            false,
            None,
        )
        .await;
    assert_eq!(r.status(), 401);
    assert!(header(&r, "www-authenticate").contains("realm="));

    let c = client(&emu.url);
    assert_eq!(
        c.list_secrets("mlopsnew-dev-kv-3kxldb")
            .await
            .unwrap()
            .len(),
        4
    );
    let login = "mlopsnewdevacr3kxldb.azurecr.io";
    let repos = c
        .acr_repositories("mlopsnewdevacr3kxldb", login)
        .await
        .unwrap();
    assert_eq!(repos, vec!["inference", "preprocessing"]);
    let tags = c
        .acr_tags("mlopsnewdevacr3kxldb", login, "inference")
        .await
        .unwrap();
    assert!(tags.tags.iter().any(|t| t.name == "latest"));
    emu.stop().await;
}

#[tokio::test]
async fn faults_throttle_fail_and_delay_then_clear() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let add = |fault: Value| {
        let emu = &emu;
        async move {
            emu.call(Method::POST, "/_emulator/faults", false, Some(&fault))
                .await
                .status()
                .as_u16()
        }
    };
    assert_eq!(
        add(json!({"path": "/x", "status": 200})).await,
        400,
        "a non-error status is refused"
    );
    assert_eq!(
        add(json!({"path": "/x"})).await,
        400,
        "a fault that does nothing is refused"
    );

    assert_eq!(
        add(json!({"path": RG, "status": 429, "retry_after": 7, "times": 1})).await,
        201
    );
    let rg = format!("{RG}?api-version=2025-04-01");
    let r = emu.get(&rg).await;
    assert_eq!(header(&r, "retry-after"), "7");
    let (status, body) = answer(r).await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (429, Some("TooManyRequests"))
    );
    assert_eq!(emu.get(&rg).await.status(), 200, "used up after one time");

    // A 503 that never ends: the client gives up after its attempts with a typed error.
    add(json!({"path": "*", "status": 503})).await;
    let err = client(&emu.url)
        .list_resources_in_group(SUB, "mlopsnew-dev-rg")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    let armed = emu
        .call(Method::GET, "/_emulator/faults", false, None)
        .await
        .json::<Value>()
        .await
        .unwrap();
    assert_eq!(armed["value"][0]["hits"], 3, "three attempts were made");
    assert_eq!(
        emu.call(Method::DELETE, "/_emulator/faults", false, None)
            .await
            .status(),
        204
    );

    // Latency: a read that waits, then answers.
    add(json!({"path": "*", "latency_ms": 300, "times": 1})).await;
    let started = std::time::Instant::now();
    assert_eq!(emu.get(&rg).await.status(), 200);
    assert!(started.elapsed() >= Duration::from_millis(300));
    emu.stop().await;
}

#[tokio::test]
async fn the_cloud_remembers_across_restarts() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    emu.stop().await;
    // Something changed in the cloud while it was down (a later issue's writes do this through the API).
    let pool = db.pool().await;
    sqlx::query("delete from emulator.objects where kind = 'resource' and key like '%/runbooks/%'")
        .execute(&pool)
        .await
        .unwrap();
    let emu = StandaloneEmulator::start(&db).await;
    let all = client(&emu.url)
        .list_resources_in_group(SUB, "mlopsnew-dev-rg")
        .await
        .unwrap();
    assert_eq!(
        all.len(),
        14,
        "a restart does not re-seed what the cloud no longer holds"
    );
    emu.stop().await;
}

#[tokio::test]
async fn key_vault_takes_new_secret_versions_and_still_lists_no_values() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let path = "/keyvault/mlopsnew-dev-kv-3kxldb/secrets/endpoint-key?api-version=7.4";
    let secret = json!({"value": "s3cr3t-value-for-test", "contentType": "text/plain"});
    let (status, _) = answer(emu.call(Method::PUT, path, false, Some(&secret)).await).await;
    assert_eq!(status, 401);
    let (status, bundle) = answer(emu.call(Method::PUT, path, true, Some(&secret)).await).await;
    assert_eq!(status, 200);
    assert!(bundle["id"]
        .as_str()
        .unwrap()
        .contains("/secrets/endpoint-key/"));
    let (status, _) = answer(
        emu.call(Method::PUT, path, true, Some(&json!({"contentType": "x"})))
            .await,
    )
    .await;
    assert_eq!(status, 400, "a value is required");
    let list = emu
        .get("/keyvault/mlopsnew-dev-kv-3kxldb/secrets?api-version=7.4")
        .await
        .text()
        .await
        .unwrap();
    assert!(list.contains("endpoint-key") && !list.contains("s3cr3t-value-for-test"));
    emu.stop().await;
}

#[tokio::test]
async fn acr_builds_push_their_tag_when_they_succeed_and_logs_are_readable() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start_with(&db, Duration::from_millis(400)).await;
    let registry =
        format!("{RG}/providers/Microsoft.ContainerRegistry/registries/mlopsnewdevacr3kxldb");
    let c = client(&emu.url);
    let login = "mlopsnewdevacr3kxldb.azurecr.io";

    // Refused like the service: a request type it does not run, no image names.
    for bad in [
        json!({"type": "FileTaskRunRequest", "taskFilePath": "acr-task.yaml", "platform": {"os": "Linux"}}),
        json!({"type": "DockerBuildRequest", "imageNames": [], "dockerFilePath": "Dockerfile", "sourceLocation": "src", "platform": {"os": "Linux"}}),
        json!({"type": "DockerBuildRequest", "imageNames": ["Bad:tag"], "dockerFilePath": "Dockerfile", "sourceLocation": "src", "platform": {"os": "Linux"}}),
    ] {
        let (status, body) = answer(
            emu.call(
                Method::POST,
                &format!("{registry}/scheduleRun?api-version=2019-06-01-preview"),
                true,
                Some(&bad),
            )
            .await,
        )
        .await;
        assert_eq!(
            (status, body["error"]["code"].as_str()),
            (400, Some("InvalidParameter")),
            "{body}"
        );
    }

    let request = json!({"type": "DockerBuildRequest", "imageNames": ["inference:v7"], "isPushEnabled": true,
        "sourceLocation": "src/inference", "dockerFilePath": "Dockerfile", "platform": {"os": "Linux"}});
    let queued = c.acr_schedule_run(&registry, &request).await.unwrap();
    let run = queued["name"].as_str().unwrap().to_string();
    assert_eq!(queued["properties"]["status"], "Queued");
    assert!(queued["id"]
        .as_str()
        .unwrap()
        .ends_with(&format!("/runs/{run}")));
    let tags = c
        .acr_tags("mlopsnewdevacr3kxldb", login, "inference")
        .await
        .unwrap();
    assert!(
        !tags.tags.iter().any(|t| t.name == "v7"),
        "not pushed before the build ends"
    );

    wait_for("the build to succeed", Duration::from_secs(10), || {
        let (c, registry, run) = (&c, &registry, &run);
        async move {
            let v = c.acr_run(registry, run).await.unwrap();
            v["properties"]["status"] == "Succeeded"
        }
    })
    .await;
    let done = c.acr_run(&registry, &run).await.unwrap();
    assert_eq!(done["properties"]["outputImages"][0]["tag"], "v7");
    let tags = c
        .acr_tags("mlopsnewdevacr3kxldb", login, "inference")
        .await
        .unwrap();
    assert!(
        tags.tags.iter().any(|t| t.name == "v7"),
        "pushed once it succeeded"
    );
    let log = c.acr_run_log(&registry, &run).await.unwrap();
    assert!(
        log.contains(&format!("Successfully tagged {login}/inference:v7")),
        "{log}"
    );
    let list = emu
        .get_json(&format!("{registry}/runs?api-version=2019-06-01-preview"))
        .await;
    assert_eq!(list["value"][0]["name"], run.as_str());
    emu.stop().await;
}

#[tokio::test]
async fn job_logs_and_deployment_logs_read_like_azure() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start_with(&db, Duration::from_millis(60)).await;
    let ws =
        format!("{RG}/providers/Microsoft.MachineLearningServices/workspaces/mlopsnew-dev-mlw");
    let c = client(&emu.url);
    let job: mlops_console::azure::wire::Job = serde_json::from_value(json!({"properties": {
        "jobType": "Command", "command": "python train.py", "environmentId": "azureml:sklearn-env:1",
        "computeId": format!("{ws}/computes/cpu-cluster"), "inputs": {"training_data": {"jobInputType": "uri_folder", "uri": "azureml:diabetes-data:1"}}}}))
    .unwrap();
    c.create_job(&ws, "log-job", &job).await.unwrap();
    assert_eq!(
        c.job_log(&ws, "log-job").await.unwrap(),
        "",
        "nothing before it starts"
    );
    tokio::time::sleep(Duration::from_millis(60 * 8)).await;
    let log = c.job_log(&ws, "log-job").await.unwrap();
    assert!(
        log.contains("Input training_data: azureml:diabetes-data:1")
            && log.contains("epoch 4: loss=")
            && log.ends_with("Run completed\n"),
        "{log}"
    );
    let missing = emu
        .get(&format!(
            "/mlflow/v2.0{ws}/get-artifact?path=outputs/nothing&run_uuid=log-job"
        ))
        .await;
    assert_eq!(missing.status(), 404);

    let deployment = format!("{ws}/onlineEndpoints/none/deployments/none");
    let (status, body) = answer(
        emu.call(
            Method::POST,
            &format!("{deployment}/getLogs?api-version=2025-09-01"),
            true,
            Some(&json!({"tail": 10})),
        )
        .await,
    )
    .await;
    assert_eq!(
        (status, body["error"]["code"].as_str()),
        (404, Some("ResourceNotFound"))
    );
    emu.stop().await;
}

//! The emulator speaks Azure's protocol, and the real client reads it: auth and api-version rules,
//! ARM's error envelopes, `nextLink` and `$skipToken` paging, fault injection, state kept in Postgres.

#[path = "support/mod.rs"]
mod support;

use mlops_console::azure::credential::StaticTokenCredential;
use mlops_console::azure::{AzureClient, Endpoints, RetryPolicy};
use serde_json::{json, Value};
use std::sync::Arc;
use std::time::Duration;
use support::*;

const SUB: &str = "b2b8a5e6-9a34-494b-ba62-fe9be95bd398";

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

#[tokio::test]
async fn arm_rules_and_error_envelopes() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let http = reqwest::Client::new();
    let rg = format!(
        "{}/subscriptions/{SUB}/resourceGroups/mlopsnew-dev-rg",
        emu.url
    );

    let r = http
        .get(format!("{rg}?api-version=2025-04-01"))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers().contains_key("www-authenticate"));
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "AuthenticationFailed");

    let r = http.get(&rg).bearer_auth("t").send().await.unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "MissingApiVersionParameter");

    // Any api-version is accepted, and ids compare case-insensitively as in ARM.
    let r = http
        .get(format!(
            "{}?api-version=1999-01-01",
            rg.to_uppercase().replace("HTTP://", "http://")
        ))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    assert!(r.headers().contains_key("x-ms-request-id"));
    assert!(r
        .headers()
        .contains_key("x-ms-ratelimit-remaining-subscription-reads"));

    let r = http
        .get(format!(
            "{rg}/providers/Microsoft.Compute/virtualMachines/nope?api-version=2024-01-01"
        ))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ResourceNotFound");
    assert!(body["error"]["message"]
        .as_str()
        .unwrap()
        .contains("Microsoft.Compute/virtualMachines/nope"));

    let r = http
        .get(format!(
            "{}/subscriptions/{SUB}/resourceGroups/other-rg/resources?api-version=2025-04-01",
            emu.url
        ))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 404);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "ResourceGroupNotFound");

    let r = http
        .delete(format!("{rg}?api-version=2025-04-01"))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 405);
    let body: Value = r.json().await.unwrap();
    assert!(body["error"]["code"].is_string() && body["error"]["message"].is_string());
    emu.stop().await;
}

#[tokio::test]
async fn lists_page_with_next_links_and_expand() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let http = reqwest::Client::new();
    let first = format!("{}/subscriptions/{SUB}/resourceGroups/mlopsnew-dev-rg/resources?api-version=2025-04-01&$expand=createdTime,changedTime,provisioningState", emu.url);
    let page: Value = http
        .get(&first)
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
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

    let page2: Value = http
        .get(next)
        .bearer_auth("t")
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(page2["value"].as_array().unwrap().len(), 5);
    assert!(page2["nextLink"].is_null());

    let bad = format!("{}/subscriptions/{SUB}/resourceGroups/mlopsnew-dev-rg/resources?api-version=2025-04-01&$expand=everything", emu.url);
    assert_eq!(
        http.get(&bad)
            .bearer_auth("t")
            .send()
            .await
            .unwrap()
            .status(),
        400
    );

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

    let http = reqwest::Client::new();
    let url = format!(
        "{}/providers/Microsoft.ResourceGraph/resources?api-version=2024-04-01",
        emu.url
    );
    let r = http
        .post(&url)
        .bearer_auth("t")
        .json(&json!({"query": "Resources | summarize count() by type"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["details"][0]["code"], "InvalidQuery");
    assert!(body["error"]["details"][1]["message"]
        .as_str()
        .unwrap()
        .contains("summarize"));

    let r = http
        .post(&url)
        .bearer_auth("t")
        .json(&json!({"query": "Resources", "options": {"$top": 5000}}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400);
    emu.stop().await;
}

#[tokio::test]
async fn data_planes_need_their_tokens_and_never_list_values() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let http = reqwest::Client::new();
    let r = http
        .get(format!(
            "{}/keyvault/mlopsnew-dev-kv-3kxldb/secrets?api-version=7.4",
            emu.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("resource=\"https://vault.azure.net\""));

    let r = http
        .get(format!(
            "{}/keyvault/mlopsnew-dev-kv-3kxldb/secrets?api-version=7.4&maxresults=3",
            emu.url
        ))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    let page: Value = r.json().await.unwrap();
    assert_eq!(page["value"].as_array().unwrap().len(), 3);
    assert!(page["nextLink"].as_str().unwrap().contains("$skiptoken="));
    assert!(page["value"]
        .as_array()
        .unwrap()
        .iter()
        .all(|s| s.get("value").is_none()));

    let r = http
        .get(format!(
            "{}/acr/mlopsnewdevacr3kxldb/acr/v1/_catalog",
            emu.url
        ))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 401);
    assert!(r.headers()["www-authenticate"]
        .to_str()
        .unwrap()
        .contains("realm="));

    let c = client(&emu.url);
    let secrets = c.list_secrets("mlopsnew-dev-kv-3kxldb").await.unwrap();
    assert_eq!(secrets.len(), 4);
    let repos = c
        .acr_repositories("mlopsnewdevacr3kxldb", "mlopsnewdevacr3kxldb.azurecr.io")
        .await
        .unwrap();
    assert_eq!(repos, vec!["inference", "preprocessing"]);
    let tags = c
        .acr_tags(
            "mlopsnewdevacr3kxldb",
            "mlopsnewdevacr3kxldb.azurecr.io",
            "inference",
        )
        .await
        .unwrap();
    assert!(tags.tags.iter().any(|t| t.name == "latest"));
    emu.stop().await;
}

#[tokio::test]
async fn faults_throttle_fail_and_delay_then_clear() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let http = reqwest::Client::new();
    let faults = format!("{}/_emulator/faults", emu.url);

    let r = http
        .post(&faults)
        .json(&json!({"path": "/x", "status": 200}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 400, "a non-error status is refused");
    let r = http.post(&faults).body("not json").send().await.unwrap();
    assert_eq!(r.status(), 400);

    let rg = format!("/subscriptions/{SUB}/resourceGroups/mlopsnew-dev-rg");
    http.post(&faults)
        .json(&json!({"path": rg, "status": 429, "retry_after": 7, "times": 1}))
        .send()
        .await
        .unwrap();
    let r = http
        .get(format!("{}{rg}?api-version=2025-04-01", emu.url))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 429);
    assert_eq!(r.headers()["retry-after"], "7");
    let body: Value = r.json().await.unwrap();
    assert_eq!(body["error"]["code"], "TooManyRequests");
    let r = http
        .get(format!("{}{rg}?api-version=2025-04-01", emu.url))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200, "used up after one time");

    // A 503 that never ends: the client gives up after its attempts with a typed error.
    http.post(&faults)
        .json(&json!({"path": "*", "status": 503}))
        .send()
        .await
        .unwrap();
    let err = client(&emu.url)
        .list_resources_in_group(SUB, "mlopsnew-dev-rg")
        .await
        .unwrap_err();
    assert_eq!(err.status(), Some(503));
    let listed: Value = http
        .get(&faults)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(listed["value"][0]["hits"], 3, "three attempts were made");
    assert_eq!(http.delete(&faults).send().await.unwrap().status(), 204);

    // Latency: a read that waits, then answers.
    http.post(&faults)
        .json(&json!({"path": "*", "latency_ms": 300, "times": 1}))
        .send()
        .await
        .unwrap();
    let started = std::time::Instant::now();
    let r = http
        .get(format!("{}{rg}?api-version=2025-04-01", emu.url))
        .bearer_auth("t")
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
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

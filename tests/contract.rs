//! The wire contract: every relevant official example in `shared/azure-examples` deserialises with our
//! wire types (the field names map, not just "no error"), and the emulator answers in the same shapes.

use crate::support::*;
use mlops_console::azure::wire::*;
use serde::de::DeserializeOwned;
use serde::Serialize;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::PathBuf;

fn examples() -> PathBuf {
    let dir = std::env::var("MLOPS_AZURE_EXAMPLES")
        .map(PathBuf::from)
        .unwrap_or_else(|_| workspace_root().join("../shared/azure-examples"));
    assert!(
        dir.is_dir(),
        "the Azure examples are missing at {} (set MLOPS_AZURE_EXAMPLES)",
        dir.display()
    );
    dir
}

fn example(file: &str) -> Value {
    let path = examples().join(file);
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap()
}

fn response(file: &str) -> Value {
    let e = example(file);
    let responses = &e["responses"];
    responses["200"]["body"]
        .clone()
        .as_object()
        .map(|_| responses["200"]["body"].clone())
        .unwrap_or_else(|| responses["201"]["body"].clone())
}

/// Deserialises `json` as `T`, then checks every value `T` kept equals the example's at the same place:
/// a misspelt field would come back empty, a mistyped one would fail here.
fn roundtrip<T: DeserializeOwned + Serialize>(what: &str, json: &Value) -> T {
    let typed: T = serde_json::from_value(json.clone()).unwrap_or_else(|e| panic!("{what}: {e}"));
    let back = serde_json::to_value(&typed).unwrap();
    fn same(what: &str, path: &str, ours: &Value, theirs: &Value) {
        match (ours, theirs) {
            (Value::Null, _) => {}
            (Value::Object(o), Value::Object(t)) => {
                for (k, v) in o {
                    if let Some(tv) = t.get(k) {
                        same(what, &format!("{path}.{k}"), v, tv);
                    } else if !v.is_null()
                        && v != &Value::Array(vec![])
                        && v != &Value::Object(Default::default())
                    {
                        panic!(
                            "{what}: we produced {path}.{k} = {v} which the example does not have"
                        );
                    }
                }
            }
            (Value::Array(o), Value::Array(t)) => {
                for (i, (a, b)) in o.iter().zip(t).enumerate() {
                    same(what, &format!("{path}[{i}]"), a, b);
                }
            }
            (Value::Number(a), Value::Number(b)) => {
                assert_eq!(a.as_f64(), b.as_f64(), "{what}: {path}")
            }
            (a, b) => assert_eq!(a, b, "{what}: {path}"),
        }
    }
    same(what, "", &back, json);
    typed
}

fn resource_with<P: DeserializeOwned + Serialize + Default>(file: &str) -> (GenericResource, P) {
    let body = response(file);
    let r: GenericResource = roundtrip(file, &body);
    let p: P = roundtrip(
        &format!("{file} properties"),
        body.get("properties").unwrap_or(&Value::Null),
    );
    (r, p)
}

#[test]
fn arm_resources_deserialise_with_their_typed_properties() {
    let (ws, p) =
        resource_with::<WorkspaceProperties>("machinelearningservices/Workspace_get.json");
    assert_eq!(
        ws.resource_type,
        "Microsoft.MachineLearningServices/workspaces"
    );
    assert!(
        p.storage_account.is_some()
            && p.key_vault.is_some()
            && p.application_insights.is_some()
            && p.container_registry.is_some()
    );

    let (_, p) =
        resource_with::<ManagedClusterProperties>("containerservice/ManagedClustersGet.json");
    assert!(
        !p.agent_pool_profiles.is_empty() && p.kubernetes_version.is_some() && p.fqdn.is_some()
    );
    assert!(p.agent_pool_profiles[0].count.is_some() && p.agent_pool_profiles[0].vm_size.is_some());
    let list: Page<GenericResource> = roundtrip(
        "ManagedClustersList",
        &response("containerservice/ManagedClustersList.json"),
    );
    assert!(!list.value.is_empty());
    let _: Page<GenericResource> = roundtrip(
        "ListByResourceGroup",
        &response("containerservice/ManagedClustersListByResourceGroup.json"),
    );
    let pool: AgentPoolProfile = roundtrip(
        "AgentPoolsGet",
        &response("containerservice/AgentPoolsGet.json")["properties"],
    );
    assert!(pool.vm_size.is_some());

    let (_, p) = resource_with::<RegistryProperties>("containerregistry/RegistryGet.json");
    assert!(p.login_server.is_some());
    let (_, p) = resource_with::<VaultProperties>("keyvault/getVault.json");
    assert!(p.vault_uri.is_some() && p.sku.is_some());
    let (st, p) =
        resource_with::<StorageAccountProperties>("storage/StorageAccountGetProperties.json");
    assert!(st.sku.is_some() && p.primary_endpoints.is_some());
    let (ai, p) = resource_with::<ComponentProperties>("applicationinsights/ComponentsGet.json");
    assert!(ai.tags.is_empty(), "Components_Get sends tags as \"\"");
    assert!(p.app_id.is_some() && p.workspace_resource_id.is_some());
    let (_, p) = resource_with::<LogAnalyticsProperties>("operationalinsights/WorkspacesGet.json");
    assert!(p.customer_id.is_some() && p.retention_in_days.is_some());
    let (_, p) = resource_with::<IdentityProperties>("msi/IdentityGet.json");
    assert!(p.client_id.is_some() && p.principal_id.is_some());
    let (_, p) = resource_with::<VirtualNetworkProperties>("network/VirtualNetworkGet.json");
    assert!(p.address_space.is_some());
    let (_, p) =
        resource_with::<NetworkSecurityGroupProperties>("network/NetworkSecurityGroupGet.json");
    assert!(!p.default_security_rules.is_empty() || !p.security_rules.is_empty());
    let (_, p) =
        resource_with::<AutomationAccountProperties>("automation/getAutomationAccount.json");
    assert!(p.state.is_some() || p.sku.is_some());
    let (_, p) = resource_with::<RunbookProperties>("automation/getRunbook.json");
    assert!(p.runbook_type.is_some());
    let (_, p) = resource_with::<ActionGroupProperties>("monitor/getActionGroup.json");
    assert!(!p.email_receivers.is_empty() && p.email_receivers[0].email_address.is_some());
    let (_, p) =
        resource_with::<ScheduledQueryRuleProperties>("monitor/getScheduledQueryRule.json");
    let criteria = p.criteria.expect("criteria");
    assert!(criteria.all_of[0].query.is_some() && criteria.all_of[0].operator.is_some());
    let rg: ResourceGroup = roundtrip(
        "ResourceGroups_Get",
        &response("resources/ResourceGroups_Get.json"),
    );
    assert!(!rg.name.is_empty());
}

#[test]
fn lists_and_data_planes_deserialise() {
    let containers: Page<BlobContainer> = roundtrip(
        "BlobContainersList",
        &response("storage/BlobContainersList.json"),
    );
    assert!(!containers.value.is_empty());
    let secrets: Page<SecretItem> =
        roundtrip("GetSecrets", &response("keyvault/GetSecrets-example.json"));
    assert!(secrets.next_link.is_some());
    assert_eq!(secrets.value[0].name(), "listsecrettest0");
    assert!(secrets.value[0].attributes.created.is_some());
    let repos: Repositories = roundtrip(
        "GetRepositoryList",
        &response("containerregistry/GetRepositoryList.json"),
    );
    assert!(!repos.repositories.is_empty());
    let tags: TagList = roundtrip("GetTagList", &response("containerregistry/GetTagList.json"));
    assert!(tags.tags[0].digest.is_some() && tags.image_name.is_some());
}

#[test]
fn resource_graph_requests_and_responses_deserialise() {
    for file in [
        "ResourcesBasicQuery",
        "ResourcesFilterQuery",
        "ResourcesFirstPageQuery",
        "ResourcesNextPageQuery",
    ] {
        let e = example(&format!("resourcegraph/{file}.json"));
        let request: QueryRequest = roundtrip(file, &e["parameters"]["query"]);
        assert!(!request.query.is_empty());
        let response: QueryResponse = roundtrip(file, &e["responses"]["200"]["body"]);
        assert!(response.result_truncated == "true" || response.result_truncated == "false");
        if file == "ResourcesNextPageQuery" {
            assert!(response.skip_token.is_some() && request.options.unwrap().skip_token.is_some());
        }
    }
}

fn keys(v: &Value) -> BTreeSet<String> {
    v.as_object()
        .map(|o| o.keys().cloned().collect())
        .unwrap_or_default()
}

/// The emulator's resources use only field names the official examples use (top level and
/// `properties`), apart from a few real fields those particular examples happen to leave out.
#[tokio::test]
async fn emulator_resources_have_the_shapes_of_the_examples() {
    let db = TestDb::new().await;
    let emu = StandaloneEmulator::start(&db).await;
    let estate = mlops_console::config::load_estate(None).unwrap();
    let http = reqwest::Client::new();
    use app::model::Role;
    let cases: &[(Role, &str, &[&str])] = &[
        (
            Role::MlWorkspace,
            "machinelearningservices/Workspace_get.json",
            &[
                "workspaceId",
                "mlFlowTrackingUri",
                "primaryUserAssignedIdentity",
                "serverlessComputeSettings",
                "provisioningState",
            ],
        ),
        (
            Role::Aks,
            "containerservice/ManagedClustersGet.json",
            &["powerState", "currentKubernetesVersion", "addonProfiles"],
        ),
        (
            Role::ContainerRegistry,
            "containerregistry/RegistryGet.json",
            &["publicNetworkAccess"],
        ),
        (
            Role::KeyVault,
            "keyvault/getVault.json",
            &[
                "enableSoftDelete",
                "softDeleteRetentionInDays",
                "enablePurgeProtection",
                "enableRbacAuthorization",
                "provisioningState",
            ],
        ),
        (
            Role::StorageAccount,
            "storage/StorageAccountGetProperties.json",
            &[
                "accessTier",
                "allowBlobPublicAccess",
                "isHnsEnabled",
                "minimumTlsVersion",
            ],
        ),
        (
            Role::AppInsights,
            "applicationinsights/ComponentsGet.json",
            &["RetentionInDays"],
        ),
        (
            Role::LogAnalytics,
            "operationalinsights/WorkspacesGet.json",
            &["workspaceCapping"],
        ),
        (Role::ManagedIdentity, "msi/IdentityGet.json", &[]),
        (
            Role::Vnet,
            "network/VirtualNetworkGet.json",
            &["enableDdosProtection"],
        ),
        (
            Role::MlNsg,
            "network/NetworkSecurityGroupGet.json",
            &["securityRules", "subnets"],
        ),
        (
            Role::AutomationAccount,
            "automation/getAutomationAccount.json",
            &["publicNetworkAccess", "disableLocalAuth"],
        ),
        (
            Role::Runbook,
            "automation/getRunbook.json",
            &["jobCount", "parameters"],
        ),
        (Role::ActionGroup, "monitor/getActionGroup.json", &[]),
        (
            Role::AlertRule,
            "monitor/getScheduledQueryRule.json",
            &[
                "resourceIdColumn",
                "targetResourceTypes",
                "autoMitigate",
                "displayName",
            ],
        ),
    ];
    let mut problems = Vec::new();
    for (role, file, extra) in cases {
        let id = estate.resource_id(*role);
        let url = format!("{}{id}?api-version={}", emu.url, role.api_version());
        let r = http.get(&url).bearer_auth("t").send().await.unwrap();
        assert_eq!(r.status(), 200, "{role:?}");
        let ours: Value = r.json().await.unwrap();
        let theirs = response(file);
        let top: BTreeSet<String> = keys(&ours).difference(&keys(&theirs)).cloned().collect();
        let top: Vec<&String> = top
            .iter()
            .filter(|k| !["etag", "kind", "sku", "identity", "tags"].contains(&k.as_str()))
            .collect();
        if !top.is_empty() {
            problems.push(format!("{role:?}: top-level fields not in {file}: {top:?}"));
        }
        let props: BTreeSet<String> = keys(&ours["properties"])
            .difference(&keys(&theirs["properties"]))
            .cloned()
            .collect();
        let unknown: Vec<&String> = props
            .iter()
            .filter(|k| !extra.contains(&k.as_str()))
            .collect();
        if !unknown.is_empty() {
            problems.push(format!("{role:?}: properties not in {file}: {unknown:?}"));
        }
        // And the emulator's body reads with the same wire type as the example.
        let _: GenericResource = serde_json::from_value(ours).unwrap();
    }
    emu.stop().await;
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

#[test]
fn azure_ml_jobs_and_online_endpoints_deserialise() {
    let created: Job = roundtrip(
        "Job create",
        &response("machinelearningservices/Job_CommandJob_createOrUpdate.json"),
    );
    assert_eq!(created.properties.status.as_deref(), Some("NotStarted"));
    assert!(created
        .properties
        .inputs
        .values()
        .all(|i| !i.job_input_type.is_empty()));
    let _: Job = roundtrip(
        "Job get",
        &response("machinelearningservices/Job_CommandJob_get.json"),
    );
    let list: Page<Job> = roundtrip(
        "Job list",
        &response("machinelearningservices/Job_CommandJob_list.json"),
    );
    assert!(!list.value.is_empty());
    let request: Job = roundtrip(
        "Job request",
        &example("machinelearningservices/Job_CommandJob_createOrUpdate.json")["parameters"]
            ["body"],
    );
    assert_eq!(request.properties.job_type, "Command");
    for file in [
        "Workspace_OnlineEndpoint_get.json",
        "Workspace_OnlineEndpoint_createOrUpdate.json",
        "OnlineDeployment_ManagedOnlineDeployment_get.json",
        "OnlineDeployment_ManagedOnlineDeployment_createOrUpdate.json",
        "Workspace_ModelVersion_createOrUpdate.json",
    ] {
        let body = response(&format!("machinelearningservices/{file}"));
        let r: GenericResource = roundtrip(file, &body);
        assert!(r.properties.is_some(), "{file}");
    }
    let endpoint = response("machinelearningservices/Workspace_OnlineEndpoint_get.json");
    assert!(
        endpoint["properties"]["traffic"].is_object(),
        "traffic is a map of deployment to percent"
    );
    let deployment =
        response("machinelearningservices/OnlineDeployment_ManagedOnlineDeployment_get.json");
    assert!(
        deployment["sku"]["capacity"].is_i64(),
        "instance count is sku.capacity"
    );
}

#[test]
fn log_analytics_and_app_insights_answers_deserialise() {
    use mlops_console::azure::wire::LogQueryResponse;
    for file in [
        "operationalinsights/oms-post-example.json",
        "operationalinsights/oms-get-example.json",
        "applicationinsights/query-post.json",
        "applicationinsights/query-get.json",
    ] {
        let answer: LogQueryResponse = roundtrip(file, &response(file));
        let table = &answer.tables[0];
        assert_eq!(table.name, "PrimaryResult", "{file}");
        assert!(
            table.rows.iter().all(|r| r.len() == table.columns.len()),
            "{file}"
        );
        let request = &example(file)["parameters"]["body"];
        if request.is_object() {
            assert!(request["query"].is_string(), "{file}");
        }
    }
}

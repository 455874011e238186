//! The estate of the seed as Azure would hold it: the 15 resources with their types' real properties,
//! plus what lives beside them (storage containers, Key Vault secrets, ACR repositories, role assignments).

use super::store::{self, NewObject};
use app::model::{Estate, Role};
use serde_json::{json, Value};

/// Bumped when the seed gains objects, so existing emulator databases receive them.
pub const GENERATION: u32 = 3;

/// Built-in role definitions (their ids are the same in every tenant).
pub const ROLE_DEFINITIONS: [(&str, &str, &str); 3] = [
    (
        "ba92f5b4-2d11-453d-a403-e96b0029c9fe",
        "Storage Blob Data Contributor",
        "Read, write, and delete Azure Storage containers and blobs.",
    ),
    (
        "7f951dda-4ed3-4680-a7ca-43fe172d538d",
        "AcrPull",
        "acr pull",
    ),
    (
        "4633458b-17de-408a-b874-0445c86b69e6",
        "Key Vault Secrets User",
        "Read secret contents.",
    ),
];

pub const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const IDENTITY_PRINCIPAL: &str = "3b1f6c2e-8a4d-4e57-9c1a-5d2e7f8a9b01";
const IDENTITY_CLIENT: &str = "9d4e2a7b-1c3f-4b6a-8e5d-0f7a2c9b3e14";
const CREATED: &str = "2026-10-14T09:12:31.4821734Z";
const CHANGED: &str = "2026-12-01T16:40:02.1093345Z";

fn tags(e: &Estate) -> Value {
    json!({"environment": e.environment.to_ascii_lowercase(), "project": e.name, "managed-by": "terraform"})
}

fn resource(e: &Estate, role: Role, extra: Value) -> NewObject {
    let id = e.resource_id(role);
    let mut body = json!({
        "id": id,
        "name": e.name_of(role),
        "type": role.arm_type(),
        "location": e.location,
        "tags": tags(e),
    });
    if let (Value::Object(b), Value::Object(x)) = (&mut body, extra) {
        b.extend(x);
    }
    let parent = id
        .rsplit_once('/')
        .map(|(p, _)| p.to_string())
        .unwrap_or_default();
    NewObject {
        kind: store::RESOURCE,
        id,
        parent,
        body,
    }
}

/// Everything the emulator holds for `e` when first started.
pub fn objects(e: &Estate) -> Vec<NewObject> {
    let id = |r| e.resource_id(r);
    let rg = e.resource_group_id();
    let vnet = id(Role::Vnet);
    let subnet = |name: &str| format!("{vnet}/subnets/{name}");
    let sub = &e.subscription_id;
    let mut out = vec![NewObject {
        kind: store::RESOURCE_GROUP,
        id: rg.clone(),
        parent: format!("/subscriptions/{sub}/resourcegroups"),
        body: json!({"id": rg, "name": e.resource_group, "type": "Microsoft.Resources/resourceGroups",
            "location": e.location, "tags": tags(e), "properties": {"provisioningState": "Succeeded"}}),
    }];

    out.push(resource(e, Role::MlWorkspace, json!({
        "identity": {"type": "SystemAssigned,UserAssigned", "principalId": "5c2d9e4f-7a1b-4c3d-8e6f-1a2b3c4d5e6f", "tenantId": TENANT,
            "userAssignedIdentities": {id(Role::ManagedIdentity): {"clientId": IDENTITY_CLIENT, "principalId": IDENTITY_PRINCIPAL}}},
        "sku": {"name": "Basic", "tier": "Basic"},
        "kind": "Default",
        "properties": {
            "friendlyName": e.name_of(Role::MlWorkspace), "description": "MLOps workspace (Terraform)",
            "storageAccount": id(Role::StorageAccount), "keyVault": id(Role::KeyVault),
            "applicationInsights": id(Role::AppInsights), "containerRegistry": id(Role::ContainerRegistry),
            "primaryUserAssignedIdentity": id(Role::ManagedIdentity),
            "discoveryUrl": format!("https://{}.api.azureml.ms/discovery", e.location),
            "mlFlowTrackingUri": format!("azureml://{}.api.azureml.ms/mlflow/v1.0{}", e.location, id(Role::MlWorkspace)),
            "workspaceId": "0f2d8c4a-3b6e-4f1a-9d7c-2e5b8a1f4c6d", "hbiWorkspace": false, "publicNetworkAccess": "Enabled",
            "serverlessComputeSettings": {"serverlessComputeCustomSubnet": subnet("training-subnet"), "serverlessComputeNoPublicIP": true},
            "provisioningState": "Succeeded"
        }
    })));

    out.push(resource(e, Role::Aks, json!({
        "identity": {"type": "SystemAssigned", "principalId": "8e1f3a5c-2d4b-4c6e-9f8a-7b1c3d5e7f90", "tenantId": TENANT},
        "sku": {"name": "Base", "tier": "Free"},
        "properties": {
            "provisioningState": "Succeeded", "powerState": {"code": "Running"},
            "kubernetesVersion": "1.31", "currentKubernetesVersion": "1.31.2",
            "dnsPrefix": "mlopsnew-dev", "fqdn": "mlopsnew-dev-4k2j8f1q.hcp.eastus.azmk8s.io",
            "nodeResourceGroup": format!("MC_{}_{}_{}", e.resource_group, e.name_of(Role::Aks), e.location),
            "agentPoolProfiles": [
                {"name": "system", "count": 2, "vmSize": "Standard_DS2_v2", "mode": "System", "osType": "Linux",
                 "orchestratorVersion": "1.31.2", "enableAutoScaling": false, "vnetSubnetID": subnet("inference-subnet"),
                 "provisioningState": "Succeeded", "powerState": {"code": "Running"}},
                {"name": "inference", "count": 2, "vmSize": "Standard_DS3_v2", "mode": "User", "osType": "Linux",
                 "orchestratorVersion": "1.31.2", "enableAutoScaling": true, "minCount": 1, "maxCount": 5,
                 "vnetSubnetID": subnet("inference-subnet"), "provisioningState": "Succeeded", "powerState": {"code": "Running"}}
            ],
            "networkProfile": {"networkPlugin": "azure", "networkPolicy": "azure", "serviceCidr": "10.100.0.0/16", "dnsServiceIP": "10.100.0.10", "loadBalancerSku": "standard"},
            "addonProfiles": {"omsagent": {"enabled": true, "config": {"logAnalyticsWorkspaceResourceID": id(Role::LogAnalytics)}}}
        }
    })));

    let acr = e.name_of(Role::ContainerRegistry);
    out.push(resource(e, Role::ContainerRegistry, json!({
        "sku": {"name": "Basic", "tier": "Basic"},
        "properties": {"loginServer": format!("{acr}.azurecr.io"), "adminUserEnabled": false, "creationDate": CREATED,
            "provisioningState": "Succeeded", "publicNetworkAccess": "Enabled"}
    })));

    let kv = e.name_of(Role::KeyVault);
    out.push(resource(e, Role::KeyVault, json!({
        "properties": {"vaultUri": format!("https://{kv}.vault.azure.net/"), "tenantId": TENANT,
            "sku": {"family": "A", "name": "standard"}, "enableSoftDelete": true, "softDeleteRetentionInDays": 7,
            "enablePurgeProtection": false, "enableRbacAuthorization": true, "provisioningState": "Succeeded"}
    })));

    let st = e.name_of(Role::StorageAccount);
    out.push(resource(e, Role::StorageAccount, json!({
        "sku": {"name": "Standard_LRS", "tier": "Standard"}, "kind": "StorageV2",
        "properties": {"primaryEndpoints": {"blob": format!("https://{st}.blob.core.windows.net/"), "dfs": format!("https://{st}.dfs.core.windows.net/")},
            "accessTier": "Hot", "supportsHttpsTrafficOnly": true, "minimumTlsVersion": "TLS1_2", "allowBlobPublicAccess": false,
            "isHnsEnabled": false, "provisioningState": "Succeeded", "creationTime": CREATED}
    })));

    out.push(resource(e, Role::AppInsights, json!({
        "kind": "web",
        "properties": {"ApplicationId": e.name_of(Role::AppInsights), "AppId": e.app_insights_app_id, "Application_Type": "web",
            "Flow_Type": "Bluefield", "Request_Source": "rest", "CreationDate": CREATED, "TenantId": sub,
            "WorkspaceResourceId": id(Role::LogAnalytics), "RetentionInDays": 90, "IngestionMode": "LogAnalytics",
            "SamplingPercentage": 100.0, "provisioningState": "Succeeded",
            "publicNetworkAccessForIngestion": "Enabled", "publicNetworkAccessForQuery": "Enabled"}
    })));

    out.push(resource(e, Role::LogAnalytics, json!({
        "properties": {"customerId": e.log_analytics_workspace_id, "sku": {"name": "PerGB2018"}, "retentionInDays": 30,
            "workspaceCapping": {"dailyQuotaGb": -1.0}, "provisioningState": "Succeeded",
            "publicNetworkAccessForIngestion": "Enabled", "publicNetworkAccessForQuery": "Enabled"}
    })));

    out.push(resource(e, Role::ManagedIdentity, json!({
        "properties": {"tenantId": TENANT, "principalId": IDENTITY_PRINCIPAL, "clientId": IDENTITY_CLIENT}
    })));

    let nsg_for = |name: &str| match name {
        "inference-subnet" => Some(id(Role::AksNsg)),
        "training-subnet" => Some(id(Role::MlNsg)),
        _ => None,
    };
    let subnets: Vec<Value> = [("training-subnet", "10.0.1.0/24"), ("inference-subnet", "10.0.2.0/24"), ("private-endpoints-subnet", "10.0.3.0/24")]
        .iter()
        .map(|(name, prefix)| {
            let mut props = json!({"addressPrefix": prefix, "provisioningState": "Succeeded", "privateEndpointNetworkPolicies": "Disabled"});
            if let Some(nsg) = nsg_for(name) {
                props["networkSecurityGroup"] = json!({"id": nsg});
            }
            json!({"id": subnet(name), "name": name, "type": "Microsoft.Network/virtualNetworks/subnets", "properties": props})
        })
        .collect();
    out.push(resource(e, Role::Vnet, json!({
        "etag": "W/\"7f1b2c3d-4e5f-6a7b-8c9d-0e1f2a3b4c5d\"",
        "properties": {"addressSpace": {"addressPrefixes": ["10.0.0.0/16"]}, "subnets": subnets, "provisioningState": "Succeeded",
            "enableDdosProtection": false}
    })));

    let rule = |nsg: &str,
                name: &str,
                priority: i64,
                direction: &str,
                access: &str,
                protocol: &str,
                src: &str,
                ports: &str,
                desc: &str| {
        json!({"id": format!("{nsg}/securityRules/{name}"), "name": name, "type": "Microsoft.Network/networkSecurityGroups/securityRules",
            "properties": {"description": desc, "protocol": protocol, "sourcePortRange": "*", "destinationPortRange": ports,
                "sourceAddressPrefix": src, "destinationAddressPrefix": "*", "access": access, "priority": priority,
                "direction": direction, "provisioningState": "Succeeded"}})
    };
    let ml_nsg = id(Role::MlNsg);
    out.push(resource(e, Role::MlNsg, json!({
        "properties": {"provisioningState": "Succeeded", "subnets": [{"id": subnet("training-subnet")}],
            "securityRules": [
                rule(&ml_nsg, "AllowAzureMLInbound", 100, "Inbound", "Allow", "Tcp", "AzureMachineLearning", "44224", "Azure ML compute instance management"),
                rule(&ml_nsg, "AllowBatchNodeManagement", 110, "Inbound", "Allow", "Tcp", "BatchNodeManagement", "29876-29877", "Batch node management for compute clusters"),
                rule(&ml_nsg, "AllowVnetInbound", 200, "Inbound", "Allow", "*", "VirtualNetwork", "*", "Traffic inside the VNet"),
                rule(&ml_nsg, "DenyInternetInbound", 4000, "Inbound", "Deny", "*", "Internet", "*", "No direct internet access to training nodes")
            ]}
    })));
    let aks_nsg = id(Role::AksNsg);
    out.push(resource(e, Role::AksNsg, json!({
        "properties": {"provisioningState": "Succeeded", "subnets": [{"id": subnet("inference-subnet")}],
            "securityRules": [
                rule(&aks_nsg, "AllowHttpsInbound", 100, "Inbound", "Allow", "Tcp", "Internet", "443", "Scoring traffic through the ingress"),
                rule(&aks_nsg, "AllowInferencePort", 110, "Inbound", "Allow", "Tcp", "VirtualNetwork", "8080", "ml-inference containerPort"),
                rule(&aks_nsg, "AllowAzureLoadBalancer", 120, "Inbound", "Allow", "*", "AzureLoadBalancer", "*", "Health probes"),
                rule(&aks_nsg, "DenyAllInbound", 4096, "Inbound", "Deny", "*", "*", "*", "Default deny")
            ]}
    })));

    out.push(resource(e, Role::AutomationAccount, json!({
        "identity": {"type": "SystemAssigned", "principalId": "2a4c6e8f-1b3d-4f5a-8c7e-9d0f1a2b3c4d", "tenantId": TENANT},
        "properties": {"sku": {"name": "Basic"}, "state": "Ok", "creationTime": CREATED, "lastModifiedTime": CHANGED,
            "publicNetworkAccess": true, "disableLocalAuth": false}
    })));
    out.push(resource(e, Role::Runbook, json!({
        "properties": {"runbookType": "PowerShell72", "state": "Published", "logVerbose": false, "logProgress": true,
            "description": "Scales AKS node pools and online deployments down when the estate is underutilised.",
            "creationTime": CREATED, "lastModifiedTime": CHANGED, "jobCount": 0,
            "parameters": {"ResourceGroupName": {"type": "System.String", "isMandatory": true, "position": 0},
                           "ScaleDirection": {"type": "System.String", "isMandatory": false, "position": 1, "defaultValue": "down"}}}
    })));

    let mut ag = resource(
        e,
        Role::ActionGroup,
        json!({
            "properties": {"groupShortName": "costalerts", "enabled": true,
                "emailReceivers": [{"name": "devops", "emailAddress": "devops@example.com", "useCommonAlertSchema": true, "status": "Enabled"}],
                "smsReceivers": [], "webhookReceivers": [], "armRoleReceivers": [],
                "automationRunbookReceivers": [{"name": "scale-down", "automationAccountId": id(Role::AutomationAccount),
                    "runbookName": e.name_of(Role::Runbook), "webhookResourceId": format!("{}/webhooks/alert-scale-down", id(Role::AutomationAccount)),
                    "isGlobalRunbook": false, "useCommonAlertSchema": true}]}
        }),
    );
    ag.body["location"] = json!("Global");
    out.push(ag);

    out.push(resource(e, Role::AlertRule, json!({
        "kind": "LogAlert",
        "properties": {"displayName": e.name_of(Role::AlertRule), "description": "AKS nodes below 20% CPU for 6 hours: scale down to save cost.",
            "severity": 3, "enabled": true, "scopes": [id(Role::LogAnalytics)], "evaluationFrequency": "PT1H", "windowSize": "PT6H",
            "targetResourceTypes": ["Microsoft.OperationalInsights/workspaces"],
            "criteria": {"allOf": [{"query": "Perf | where ObjectName == 'K8SNode' and CounterName == 'cpuUsagePercentage' | summarize AggregatedValue = avg(CounterValue) by Computer, _ResourceId",
                "timeAggregation": "Average", "metricMeasureColumn": "AggregatedValue", "resourceIdColumn": "_ResourceId",
                "dimensions": [{"name": "Computer", "operator": "Include", "values": ["*"]}], "operator": "LessThan", "threshold": 20.0,
                "failingPeriods": {"numberOfEvaluationPeriods": 1, "minFailingPeriodsToAlert": 1}}]},
            "actions": {"actionGroups": [id(Role::ActionGroup)], "customProperties": {"reason": "underutilized"}},
            "autoMitigate": true, "muteActionsDuration": "PT6H"}
    })));

    // Storage containers (ARM view), secrets, repositories, role assignments.
    let containers = format!(
        "{}/blobServices/default/containers",
        id(Role::StorageAccount)
    );
    for name in [
        "azureml-blobstore-0f2d8c4a",
        "datasets",
        "models",
        "logs",
        "cost-exports",
    ] {
        out.push(NewObject {
            kind: store::CONTAINER,
            id: format!("{containers}/{name}"),
            parent: containers.clone(),
            body: json!({"id": format!("{containers}/{name}"), "name": name, "type": "Microsoft.Storage/storageAccounts/blobServices/containers",
                "etag": "\"0x8DD1A2B3C4D5E6F\"",
                "properties": {"publicAccess": "None", "leaseStatus": "Unlocked", "leaseState": "Available",
                    "lastModifiedTime": CREATED, "hasImmutabilityPolicy": false, "hasLegalHold": false}}),
        });
    }
    let vault = format!("/keyvault/{kv}");
    for (name, content_type, exp) in [
        ("model-api-key", "text/plain", Some(1_798_761_600i64)),
        ("db-connection-string", "text/plain", Some(1_767_225_600)),
        ("endpoint-key", "text/plain", None),
        ("storage-sas-token", "text/plain", Some(1_765_584_000)),
    ] {
        out.push(NewObject {
            kind: store::SECRET,
            id: format!("{vault}/secrets/{name}"),
            parent: vault.clone(),
            body: json!({"name": name, "contentType": content_type,
                // The emulator never returns values from list calls; this one exists only to be real.
                "value": format!("emulator-{}", uuid::Uuid::new_v4()),
                "attributes": {"enabled": true, "exp": exp, "created": 1_760_432_000, "updated": 1_764_604_800, "recoveryLevel": "CustomizedRecoverable+Purgeable", "recoverableDays": 7},
                "tags": {"managed-by": "terraform"}}),
        });
    }
    let registry = format!("/acr/{acr}");
    for (repo, tags) in [
        (
            "inference",
            vec![
                ("latest", "2026-12-01T10:02:11Z"),
                ("v1", "2026-11-20T14:31:05Z"),
                ("3f9c2ab", "2026-12-01T10:02:11Z"),
            ],
        ),
        ("preprocessing", vec![("v1", "2026-11-02T08:15:44Z")]),
    ] {
        out.push(NewObject {
            kind: store::REPOSITORY,
            id: format!("{registry}/{repo}"),
            parent: registry.clone(),
            body: json!({"name": repo, "tags": tags.iter().enumerate().map(|(i, (t, at))| json!({
                "name": t, "digest": format!("sha256:{:064x}", (i as u64 + 1).wrapping_mul(0x9e37_79b9_7f4a_7c15u64)), "createdTime": at, "lastUpdateTime": at,
                "signed": false, "changeableAttributes": {"deleteEnabled": true, "writeEnabled": true, "readEnabled": true, "listEnabled": true}
            })).collect::<Vec<_>>()}),
        });
    }
    for (scope, def) in [
        (id(Role::StorageAccount), ROLE_DEFINITIONS[0].0),
        (id(Role::ContainerRegistry), ROLE_DEFINITIONS[1].0),
        (id(Role::KeyVault), ROLE_DEFINITIONS[2].0),
    ] {
        let name = uuid::Uuid::new_v5(
            &uuid::Uuid::NAMESPACE_URL,
            format!("{scope}{def}").as_bytes(),
        )
        .to_string();
        let ra = format!("{scope}/providers/Microsoft.Authorization/roleAssignments/{name}");
        out.push(NewObject {
            kind: store::ROLE_ASSIGNMENT,
            id: ra.clone(),
            parent: format!("{scope}/providers/Microsoft.Authorization/roleAssignments"),
            body: json!({"id": ra, "name": name, "type": "Microsoft.Authorization/roleAssignments",
                "properties": {"roleDefinitionId": format!("/subscriptions/{sub}/providers/Microsoft.Authorization/roleDefinitions/{def}"),
                    "principalId": IDENTITY_PRINCIPAL, "principalType": "ServicePrincipal", "scope": scope,
                    "createdOn": CREATED, "updatedOn": CREATED}}),
        });
    }
    let (key, body) = super::k8s::seed(e.name_of(Role::Aks), acr);
    out.push(NewObject {
        kind: super::k8s::DEPLOYMENT,
        parent: key
            .rsplit_once('/')
            .map(|x| x.0.to_string())
            .unwrap_or_default(),
        id: key,
        body,
    });
    out
}

/// A built-in role definition's body, as ARM returns it at any scope.
pub fn role_definition(scope_prefix: &str, guid: &str) -> Option<Value> {
    ROLE_DEFINITIONS.iter().find(|(g, _, _)| g.eq_ignore_ascii_case(guid)).map(|(g, name, desc)| {
        json!({"id": format!("{scope_prefix}/providers/Microsoft.Authorization/roleDefinitions/{g}"), "name": g,
            "type": "Microsoft.Authorization/roleDefinitions",
            "properties": {"roleName": name, "type": "BuiltInRole", "description": desc, "assignableScopes": ["/"]}})
    })
}

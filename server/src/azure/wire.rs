//! Azure's wire types for the calls mlops-console makes, shared by the client and the emulator so the two
//! can never disagree silently. Lenient where Azure is (missing fields default), exact in names.

use serde::{Deserialize, Deserializer, Serialize};
use serde_json::Value;
use std::collections::BTreeMap;

// ---------------------------------------------------------------------------------------------- common

/// ARM's error envelope: `{"error":{"code","message","target"?,"details"?}}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ErrorResponse {
    pub error: ErrorDetail,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ErrorDetail {
    pub code: String,
    pub message: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub target: Option<String>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub details: Vec<ErrorDetail>,
    /// Key Vault and the data planes nest a second code here.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub innererror: Option<Value>,
}

impl ErrorResponse {
    pub fn new(code: impl Into<String>, message: impl Into<String>) -> Self {
        ErrorResponse {
            error: ErrorDetail {
                code: code.into(),
                message: message.into(),
                target: None,
                details: Vec::new(),
                innererror: None,
            },
        }
    }
}

/// A page of a list: `{"value":[…],"nextLink":…}`. A page may be empty and still have a next link.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Page<T> {
    #[serde(default = "Vec::new")]
    pub value: Vec<T>,
    #[serde(default)]
    pub next_link: Option<String>,
}

/// Tags as a map; some services send `""` for none (Components_Get does).
fn tags<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeMap<String, String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        Map(BTreeMap<String, Option<String>>),
        Other(serde::de::IgnoredAny),
    }
    Ok(match Option::<Tags>::deserialize(d)? {
        Some(Tags::Map(m)) => m
            .into_iter()
            .map(|(k, v)| (k, v.unwrap_or_default()))
            .collect(),
        _ => BTreeMap::new(),
    })
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Sku {
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub tier: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub capacity: Option<i64>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub family: Option<String>,
}

/// Any ARM resource: the envelope every type shares, with `properties` left as JSON for the typed
/// views below.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct GenericResource {
    pub id: String,
    pub name: String,
    #[serde(rename = "type")]
    pub resource_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub location: Option<String>,
    #[serde(
        default,
        deserialize_with = "tags",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sku: Option<Sku>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub kind: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub identity: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub properties: Option<Value>,
    /// Present in list results when `$expand=provisioningState`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub provisioning_state: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created_time: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub changed_time: Option<String>,
}

impl GenericResource {
    /// `properties.provisioningState`, or the expanded top-level one; missing means Succeeded.
    pub fn provisioning_state(&self) -> String {
        self.provisioning_state
            .clone()
            .or_else(|| {
                self.properties
                    .as_ref()
                    .and_then(|p| p.get("provisioningState"))
                    .and_then(Value::as_str)
                    .map(str::to_string)
            })
            .unwrap_or_else(|| "Succeeded".to_string())
    }

    /// The properties as one type's typed view.
    pub fn properties_as<T: serde::de::DeserializeOwned + Default>(
        &self,
    ) -> Result<T, serde_json::Error> {
        match &self.properties {
            Some(p) => serde_json::from_value(p.clone()),
            None => Ok(T::default()),
        }
    }
}

/// `GET /subscriptions/{s}/resourcegroups/{rg}`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct ResourceGroup {
    pub id: String,
    pub name: String,
    pub location: String,
    #[serde(default, deserialize_with = "tags")]
    pub tags: BTreeMap<String, String>,
    #[serde(default)]
    pub properties: Option<Value>,
}

// -------------------------------------------------------------------------------------- Resource Graph

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryRequest {
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub subscriptions: Vec<String>,
    pub query: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub options: Option<QueryRequestOptions>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct QueryRequestOptions {
    #[serde(rename = "$top", default, skip_serializing_if = "Option::is_none")]
    pub top: Option<i64>,
    #[serde(rename = "$skip", default, skip_serializing_if = "Option::is_none")]
    pub skip: Option<i64>,
    #[serde(
        rename = "$skipToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_token: Option<String>,
    #[serde(
        rename = "resultFormat",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub result_format: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct QueryResponse {
    pub total_records: i64,
    pub count: i64,
    /// The string "true" or "false", not a boolean.
    pub result_truncated: String,
    #[serde(
        rename = "$skipToken",
        default,
        skip_serializing_if = "Option::is_none"
    )]
    pub skip_token: Option<String>,
    /// objectArray format: one JSON object per row.
    pub data: Value,
    #[serde(default)]
    pub facets: Vec<Value>,
}

// ------------------------------------------------------------------------------- typed properties views

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WorkspaceProperties {
    pub friendly_name: Option<String>,
    pub description: Option<String>,
    pub storage_account: Option<String>,
    pub key_vault: Option<String>,
    pub application_insights: Option<String>,
    pub container_registry: Option<String>,
    pub primary_user_assigned_identity: Option<String>,
    pub discovery_url: Option<String>,
    pub ml_flow_tracking_uri: Option<String>,
    pub public_network_access: Option<String>,
    pub hbi_workspace: Option<bool>,
    pub workspace_id: Option<String>,
    pub provisioning_state: Option<String>,
    pub serverless_compute_settings: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct PowerState {
    pub code: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AgentPoolProfile {
    pub name: Option<String>,
    pub count: Option<i64>,
    pub vm_size: Option<String>,
    pub mode: Option<String>,
    pub os_type: Option<String>,
    pub orchestrator_version: Option<String>,
    pub enable_auto_scaling: Option<bool>,
    pub min_count: Option<i64>,
    pub max_count: Option<i64>,
    #[serde(rename = "vnetSubnetID")]
    pub vnet_subnet_id: Option<String>,
    pub provisioning_state: Option<String>,
    pub power_state: Option<PowerState>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ManagedClusterProperties {
    pub provisioning_state: Option<String>,
    pub power_state: Option<PowerState>,
    pub kubernetes_version: Option<String>,
    pub current_kubernetes_version: Option<String>,
    pub dns_prefix: Option<String>,
    pub fqdn: Option<String>,
    pub agent_pool_profiles: Vec<AgentPoolProfile>,
    pub network_profile: Option<Value>,
    pub addon_profiles: Option<BTreeMap<String, Value>>,
    pub node_resource_group: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RegistryProperties {
    pub login_server: Option<String>,
    pub admin_user_enabled: Option<bool>,
    pub creation_date: Option<String>,
    pub provisioning_state: Option<String>,
    pub public_network_access: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VaultProperties {
    pub vault_uri: Option<String>,
    pub tenant_id: Option<String>,
    pub sku: Option<Sku>,
    pub enable_soft_delete: Option<bool>,
    pub soft_delete_retention_in_days: Option<i64>,
    pub enable_purge_protection: Option<bool>,
    pub enable_rbac_authorization: Option<bool>,
    pub provisioning_state: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct StorageAccountProperties {
    pub primary_endpoints: Option<BTreeMap<String, Value>>,
    pub access_tier: Option<String>,
    pub supports_https_traffic_only: Option<bool>,
    pub minimum_tls_version: Option<String>,
    pub allow_blob_public_access: Option<bool>,
    pub is_hns_enabled: Option<bool>,
    pub provisioning_state: Option<String>,
    pub creation_time: Option<String>,
}

/// Application Insights components use PascalCase property names.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(default)]
pub struct ComponentProperties {
    #[serde(rename = "AppId")]
    pub app_id: Option<String>,
    #[serde(rename = "Application_Type")]
    pub application_type: Option<String>,
    #[serde(rename = "WorkspaceResourceId")]
    pub workspace_resource_id: Option<String>,
    #[serde(rename = "RetentionInDays")]
    pub retention_in_days: Option<i64>,
    #[serde(rename = "IngestionMode")]
    pub ingestion_mode: Option<String>,
    #[serde(rename = "SamplingPercentage")]
    pub sampling_percentage: Option<f64>,
    #[serde(rename = "provisioningState")]
    pub provisioning_state: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct LogAnalyticsProperties {
    pub customer_id: Option<String>,
    pub sku: Option<Sku>,
    pub retention_in_days: Option<i64>,
    pub workspace_capping: Option<Value>,
    pub provisioning_state: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct IdentityProperties {
    pub tenant_id: Option<String>,
    pub principal_id: Option<String>,
    pub client_id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubResource {
    pub id: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SubnetProperties {
    pub address_prefix: Option<String>,
    pub address_prefixes: Vec<String>,
    pub network_security_group: Option<SubResource>,
    pub provisioning_state: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Subnet {
    pub id: Option<String>,
    pub name: Option<String>,
    pub properties: SubnetProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AddressSpace {
    pub address_prefixes: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct VirtualNetworkProperties {
    pub address_space: Option<AddressSpace>,
    pub subnets: Vec<Subnet>,
    pub provisioning_state: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityRuleProperties {
    pub description: Option<String>,
    pub protocol: Option<String>,
    pub source_port_range: Option<String>,
    pub destination_port_range: Option<String>,
    pub destination_port_ranges: Vec<String>,
    pub source_address_prefix: Option<String>,
    pub destination_address_prefix: Option<String>,
    pub access: Option<String>,
    pub priority: Option<i64>,
    pub direction: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecurityRule {
    pub id: Option<String>,
    pub name: Option<String>,
    pub properties: SecurityRuleProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct NetworkSecurityGroupProperties {
    pub security_rules: Vec<SecurityRule>,
    pub default_security_rules: Vec<SecurityRule>,
    pub subnets: Vec<SubResource>,
    pub provisioning_state: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutomationAccountProperties {
    pub sku: Option<Sku>,
    pub state: Option<String>,
    pub creation_time: Option<String>,
    pub last_modified_time: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RunbookProperties {
    pub runbook_type: Option<String>,
    pub state: Option<String>,
    pub description: Option<String>,
    pub log_verbose: Option<bool>,
    pub log_progress: Option<bool>,
    pub creation_time: Option<String>,
    pub last_modified_time: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct EmailReceiver {
    pub name: Option<String>,
    pub email_address: Option<String>,
    pub use_common_alert_schema: Option<bool>,
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct AutomationRunbookReceiver {
    pub name: Option<String>,
    pub automation_account_id: Option<String>,
    pub runbook_name: Option<String>,
    pub webhook_resource_id: Option<String>,
    pub is_global_runbook: Option<bool>,
    pub use_common_alert_schema: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct WebhookReceiver {
    pub name: Option<String>,
    pub service_uri: Option<String>,
    pub use_common_alert_schema: Option<bool>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ActionGroupProperties {
    pub group_short_name: Option<String>,
    pub enabled: Option<bool>,
    pub email_receivers: Vec<EmailReceiver>,
    pub webhook_receivers: Vec<WebhookReceiver>,
    pub automation_runbook_receivers: Vec<AutomationRunbookReceiver>,
    pub sms_receivers: Vec<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct FailingPeriods {
    pub number_of_evaluation_periods: Option<i64>,
    pub min_failing_periods_to_alert: Option<i64>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Condition {
    pub query: Option<String>,
    pub time_aggregation: Option<String>,
    pub metric_measure_column: Option<String>,
    pub metric_name: Option<String>,
    pub operator: Option<String>,
    pub threshold: Option<f64>,
    pub failing_periods: Option<FailingPeriods>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Criteria {
    pub all_of: Vec<Condition>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct Actions {
    pub action_groups: Vec<String>,
    pub custom_properties: Option<BTreeMap<String, String>>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct ScheduledQueryRuleProperties {
    pub display_name: Option<String>,
    pub description: Option<String>,
    pub severity: Option<i64>,
    pub enabled: Option<bool>,
    pub scopes: Vec<String>,
    pub evaluation_frequency: Option<String>,
    pub window_size: Option<String>,
    pub criteria: Option<Criteria>,
    pub actions: Option<Actions>,
    pub auto_mitigate: Option<bool>,
}

// -------------------------------------------------------------------------- child lists and role data

/// `…/blobServices/default/containers` items.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct BlobContainerProperties {
    pub public_access: Option<String>,
    pub last_modified_time: Option<String>,
    pub lease_state: Option<String>,
    pub has_legal_hold: Option<bool>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct BlobContainer {
    #[serde(default)]
    pub id: Option<String>,
    pub name: String,
    #[serde(default)]
    pub properties: BlobContainerProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleAssignmentProperties {
    pub role_definition_id: String,
    pub principal_id: String,
    pub principal_type: Option<String>,
    pub scope: String,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleAssignment {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub properties: RoleAssignmentProperties,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct RoleDefinitionProperties {
    pub role_name: String,
    pub description: Option<String>,
    #[serde(rename = "type")]
    pub role_type: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RoleDefinition {
    pub id: String,
    pub name: String,
    #[serde(default)]
    pub properties: RoleDefinitionProperties,
}

// ------------------------------------------------------------------------------- Key Vault data plane

/// Secret metadata from `GET {vault}/secrets`: never a value. Times are Unix epoch seconds.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct SecretAttributes {
    pub enabled: Option<bool>,
    pub nbf: Option<i64>,
    pub exp: Option<i64>,
    pub created: Option<i64>,
    pub updated: Option<i64>,
    pub recovery_level: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct SecretItem {
    pub id: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub content_type: Option<String>,
    #[serde(default)]
    pub attributes: SecretAttributes,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub tags: BTreeMap<String, String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub managed: Option<bool>,
}

impl SecretItem {
    /// The secret's name: the last segment of its id.
    pub fn name(&self) -> &str {
        self.id
            .trim_end_matches('/')
            .rsplit('/')
            .next()
            .unwrap_or_default()
    }
}

// ------------------------------------------------------------------------------------- ACR data plane

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Repositories {
    #[serde(default)]
    pub repositories: Vec<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagAttributes {
    pub name: String,
    pub digest: Option<String>,
    pub created_time: Option<String>,
    pub last_update_time: Option<String>,
    pub signed: Option<bool>,
    pub changeable_attributes: Option<Value>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase", default)]
pub struct TagList {
    pub registry: Option<String>,
    pub image_name: Option<String>,
    pub tags: Vec<TagAttributes>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AcrRefreshToken {
    pub refresh_token: String,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AcrAccessToken {
    pub access_token: String,
}

// ------------------------------------------------------------------------------ Azure Machine Learning

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobInput {
    pub job_input_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub value: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub uri: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
}

/// A command job's properties (the parts we send and read; the rest passes through as JSON).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct JobProperties {
    pub job_type: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub display_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub experiment_name: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub command: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub environment_id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub compute_id: Option<String>,
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub inputs: BTreeMap<String, JobInput>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub outputs: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub limits: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub resources: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub services: Option<Value>,
    #[serde(
        default,
        skip_serializing_if = "BTreeMap::is_empty",
        deserialize_with = "tags"
    )]
    pub tags: BTreeMap<String, String>,
    /// Set by the service: NotStarted, Queued, Starting, Running, Finalizing, Completed, Failed, Canceled, …
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub status: Option<String>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Job {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    #[serde(rename = "type", default, skip_serializing_if = "Option::is_none")]
    pub resource_type: Option<String>,
    pub properties: JobProperties,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub system_data: Option<Value>,
}

/// Azure ML's job statuses that end a job.
pub fn job_status_is_terminal(status: &str) -> bool {
    matches!(status, "Completed" | "Failed" | "Canceled")
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MlflowMetric {
    pub key: String,
    pub value: f64,
    #[serde(default)]
    pub timestamp: i64,
    #[serde(default)]
    pub step: i64,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MlflowRunData {
    #[serde(default)]
    pub metrics: Vec<MlflowMetric>,
}

#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MlflowRun {
    #[serde(default)]
    pub info: Value,
    #[serde(default)]
    pub data: MlflowRunData,
}

/// `GET …/api/2.0/mlflow/runs/get?run_id=` (Azure ML's MLflow tracking server).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct MlflowRunResponse {
    pub run: MlflowRun,
}

/// The answer of the Log Analytics and Application Insights query APIs.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogQueryResponse {
    pub tables: Vec<LogTable>,
    /// Set on partial results (row or size limits): `{code: "PartialError", message, details}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub error: Option<ErrorDetail>,
    /// With `Prefer: include-render=true`: `{visualization: "timechart", …}`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub render: Option<Value>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub statistics: Option<Value>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogTable {
    pub name: String,
    pub columns: Vec<LogColumn>,
    /// Cells as Azure sends them (App Insights sends longs as strings).
    pub rows: Vec<Vec<Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

/// A Cost Management query's answer: columns (`Cost`/`PreTaxCost`, the groupings, `UsageDate` when
/// daily, `Currency`) and rows in that order.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostQueryResult {
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub id: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    pub properties: CostQueryProperties,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct CostQueryProperties {
    #[serde(default)]
    pub next_link: Option<String>,
    pub columns: Vec<CostColumn>,
    pub rows: Vec<Vec<Value>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct CostColumn {
    pub name: String,
    #[serde(rename = "type")]
    pub ty: String,
}

//! The DTOs the pages render and the REST API returns: the estate, its resources and their type-specific facts.
//! Built on the server from Azure's wire types; never database rows.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

/// What the estate file declares: where the estate lives and the names Terraform gave its 15 resources.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Estate {
    pub name: String,
    pub environment: String,
    pub subscription_id: String,
    pub resource_group: String,
    pub location: String,
    pub budget_usd: f64,
    pub app_insights_app_id: String,
    pub log_analytics_workspace_id: String,
    pub resources: EstateResources,
}

/// The declared name of each resource, one field per role.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstateResources {
    pub ml_workspace: String,
    pub aks: String,
    pub container_registry: String,
    pub key_vault: String,
    pub storage_account: String,
    pub app_insights: String,
    pub log_analytics: String,
    pub managed_identity: String,
    pub vnet: String,
    pub ml_nsg: String,
    pub aks_nsg: String,
    pub automation_account: String,
    pub runbook: String,
    pub action_group: String,
    pub alert_rule: String,
}

impl Estate {
    pub fn name_of(&self, role: Role) -> &str {
        let r = &self.resources;
        match role {
            Role::MlWorkspace => &r.ml_workspace,
            Role::Aks => &r.aks,
            Role::ContainerRegistry => &r.container_registry,
            Role::KeyVault => &r.key_vault,
            Role::StorageAccount => &r.storage_account,
            Role::AppInsights => &r.app_insights,
            Role::LogAnalytics => &r.log_analytics,
            Role::ManagedIdentity => &r.managed_identity,
            Role::Vnet => &r.vnet,
            Role::MlNsg => &r.ml_nsg,
            Role::AksNsg => &r.aks_nsg,
            Role::AutomationAccount => &r.automation_account,
            Role::Runbook => &r.runbook,
            Role::ActionGroup => &r.action_group,
            Role::AlertRule => &r.alert_rule,
        }
    }

    pub fn role_of(&self, name: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|role| self.name_of(*role).eq_ignore_ascii_case(name))
    }

    pub fn resource_group_id(&self) -> String {
        format!(
            "/subscriptions/{}/resourceGroups/{}",
            self.subscription_id, self.resource_group
        )
    }

    /// The ARM id Terraform gave the resource in `role`.
    pub fn resource_id(&self, role: Role) -> String {
        let name = self.name_of(role);
        match role {
            Role::Runbook => format!(
                "{}/providers/Microsoft.Automation/automationAccounts/{}/runbooks/{}",
                self.resource_group_id(),
                self.resources.automation_account,
                name
            ),
            _ => format!(
                "{}/providers/{}/{}",
                self.resource_group_id(),
                role.arm_type(),
                name
            ),
        }
    }
}

/// The part each resource plays in the estate.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Role {
    MlWorkspace,
    Aks,
    ContainerRegistry,
    KeyVault,
    StorageAccount,
    AppInsights,
    LogAnalytics,
    ManagedIdentity,
    Vnet,
    MlNsg,
    AksNsg,
    AutomationAccount,
    Runbook,
    ActionGroup,
    AlertRule,
}

impl Role {
    pub const ALL: [Role; 15] = [
        Role::MlWorkspace,
        Role::Aks,
        Role::ContainerRegistry,
        Role::KeyVault,
        Role::StorageAccount,
        Role::AppInsights,
        Role::LogAnalytics,
        Role::ManagedIdentity,
        Role::Vnet,
        Role::MlNsg,
        Role::AksNsg,
        Role::AutomationAccount,
        Role::Runbook,
        Role::ActionGroup,
        Role::AlertRule,
    ];

    /// The ARM resource type, as Azure spells it.
    pub fn arm_type(self) -> &'static str {
        match self {
            Role::MlWorkspace => "Microsoft.MachineLearningServices/workspaces",
            Role::Aks => "Microsoft.ContainerService/managedClusters",
            Role::ContainerRegistry => "Microsoft.ContainerRegistry/registries",
            Role::KeyVault => "Microsoft.KeyVault/vaults",
            Role::StorageAccount => "Microsoft.Storage/storageAccounts",
            Role::AppInsights => "Microsoft.Insights/components",
            Role::LogAnalytics => "Microsoft.OperationalInsights/workspaces",
            Role::ManagedIdentity => "Microsoft.ManagedIdentity/userAssignedIdentities",
            Role::Vnet => "Microsoft.Network/virtualNetworks",
            Role::MlNsg | Role::AksNsg => "Microsoft.Network/networkSecurityGroups",
            Role::AutomationAccount => "Microsoft.Automation/automationAccounts",
            Role::Runbook => "Microsoft.Automation/automationAccounts/runbooks",
            Role::ActionGroup => "Microsoft.Insights/actionGroups",
            Role::AlertRule => "Microsoft.Insights/scheduledQueryRules",
        }
    }

    /// The provider api-version used to GET this type by id (a Microsoft.Resources version would be refused).
    pub fn api_version(self) -> &'static str {
        match self {
            Role::MlWorkspace => "2025-09-01",
            Role::Aks => "2025-10-01",
            Role::ContainerRegistry => "2025-04-01",
            Role::KeyVault => "2025-05-01",
            Role::StorageAccount => "2025-06-01",
            Role::AppInsights => "2020-02-02",
            Role::LogAnalytics => "2025-02-01",
            Role::ManagedIdentity => "2024-11-30",
            Role::Vnet | Role::MlNsg | Role::AksNsg => "2025-01-01",
            Role::AutomationAccount | Role::Runbook => "2024-10-23",
            Role::ActionGroup => "2023-01-01",
            Role::AlertRule => "2023-12-01",
        }
    }

    /// What the portal calls this type.
    pub fn type_label(self) -> &'static str {
        match self {
            Role::MlWorkspace => "Azure Machine Learning workspace",
            Role::Aks => "Kubernetes service",
            Role::ContainerRegistry => "Container registry",
            Role::KeyVault => "Key Vault",
            Role::StorageAccount => "Storage account",
            Role::AppInsights => "Application Insights",
            Role::LogAnalytics => "Log Analytics workspace",
            Role::ManagedIdentity => "Managed Identity",
            Role::Vnet => "Virtual network",
            Role::MlNsg | Role::AksNsg => "Network security group",
            Role::AutomationAccount => "Automation Account",
            Role::Runbook => "Runbook",
            Role::ActionGroup => "Action group",
            Role::AlertRule => "Log search alert rule",
        }
    }

    pub fn category(self) -> Category {
        match self {
            Role::MlWorkspace => Category::MachineLearning,
            Role::Aks | Role::ContainerRegistry => Category::ContainersCompute,
            Role::KeyVault | Role::StorageAccount => Category::DataSecrets,
            Role::AppInsights | Role::LogAnalytics => Category::Monitoring,
            Role::ManagedIdentity | Role::Vnet | Role::MlNsg | Role::AksNsg => {
                Category::NetworkingIdentity
            }
            Role::AutomationAccount | Role::Runbook | Role::ActionGroup | Role::AlertRule => {
                Category::CostManagement
            }
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Category {
    MachineLearning,
    ContainersCompute,
    DataSecrets,
    Monitoring,
    NetworkingIdentity,
    CostManagement,
}

impl Category {
    pub const ALL: [Category; 6] = [
        Category::MachineLearning,
        Category::ContainersCompute,
        Category::DataSecrets,
        Category::Monitoring,
        Category::NetworkingIdentity,
        Category::CostManagement,
    ];

    pub fn label(self) -> &'static str {
        match self {
            Category::MachineLearning => "Machine learning",
            Category::ContainersCompute => "Containers & compute",
            Category::DataSecrets => "Data & secrets",
            Category::Monitoring => "Monitoring",
            Category::NetworkingIdentity => "Networking & identity",
            Category::CostManagement => "Cost management",
        }
    }
}

/// Whether a declared resource was found in Azure, and in what state.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case", tag = "kind", content = "state")]
pub enum Status {
    /// Found; carries ARM's provisioningState (missing means Succeeded).
    Provisioned(String),
    /// Declared in the estate file but absent from the resource group.
    Missing,
}

impl Status {
    pub fn label(&self) -> String {
        match self {
            Status::Provisioned(state) => state.clone(),
            Status::Missing => "Missing".to_string(),
        }
    }

    pub fn is_healthy(&self) -> bool {
        matches!(self, Status::Provisioned(s) if s == "Succeeded")
    }
}

/// One resource as the overview lists it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceSummary {
    pub name: String,
    pub role: Role,
    pub category: Category,
    #[serde(rename = "type")]
    pub arm_type: String,
    pub type_label: String,
    pub id: String,
    pub location: Option<String>,
    pub status: Status,
    pub sku: Option<String>,
    pub tags: BTreeMap<String, String>,
    pub created_time: Option<DateTime<Utc>>,
    pub changed_time: Option<DateTime<Utc>>,
}

/// One resource with what matters for its type.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourceDetail {
    #[serde(flatten)]
    pub summary: ResourceSummary,
    pub facts: Facts,
    /// Declared dependencies touching this resource.
    pub dependencies: Vec<Dependency>,
}

/// A labelled value for a facts table.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Fact {
    pub label: String,
    pub value: String,
}

impl Fact {
    pub fn new(label: impl Into<String>, value: impl Into<String>) -> Self {
        Fact {
            label: label.into(),
            value: value.into(),
        }
    }
}

/// A small table: column headers and rows of cells.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Table {
    pub title: String,
    pub columns: Vec<String>,
    pub rows: Vec<Vec<String>>,
    /// Shown when there are no rows.
    pub empty: String,
}

/// What matters for a resource's type: key facts, then a few tables (node pools, subnets, rules, …).
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct Facts {
    pub facts: Vec<Fact>,
    pub tables: Vec<Table>,
    /// Parts that could not be read (a data-plane call failed); the rest of the page still shows.
    pub warnings: Vec<String>,
}

/// A dependency edge of the seed's "Resource Dependencies", and whether Azure's own data shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Dependency {
    pub from: String,
    pub to: String,
    pub relation: String,
    /// True when the live properties of `from` reference `to`'s id.
    pub observed: bool,
}

/// Where the data came from and how fresh it is.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Freshness {
    pub fetched_at: Option<DateTime<Utc>>,
    pub age_seconds: Option<i64>,
    /// The last refresh failed (or none succeeded yet): what is shown is the last good snapshot.
    pub stale: bool,
    /// Why the last refresh failed, in words fit for a user.
    pub last_error: Option<String>,
}

/// The estate header shown on every page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EstateInfo {
    #[serde(flatten)]
    pub estate: Estate,
    /// "emulator" or "azure".
    pub mode: String,
    /// The emulator's base URL in emulator mode (its fault API lives under `/_emulator`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub emulator_url: Option<String>,
}

/// Everything the overview page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Overview {
    pub estate: EstateInfo,
    pub freshness: Freshness,
    pub resources: Vec<ResourceSummary>,
    /// Resources found in the resource group that the estate file does not declare.
    pub undeclared: Vec<String>,
    pub dependencies: Vec<Dependency>,
}

/// The overview page: the inventory with the spend and open-alert widgets, in one answer.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct OverviewPage {
    pub overview: Overview,
    /// `None` until the first cost refresh has landed.
    pub cost: Option<crate::cost::CostSummary>,
    pub alerts: crate::cost::AlertCounts,
}

impl Overview {
    /// What the overview page needs of each resource: name, type label, status, location, tags (and
    /// category, for grouping). The page carries its data again for hydration, so the rest — ids, ARM
    /// types, SKUs, timestamps, which the REST API and resource pages keep — is left out of it.
    pub fn for_page(mut self) -> Overview {
        for r in &mut self.resources {
            r.id = String::new();
            r.arm_type = String::new();
            r.sku = None;
            r.created_time = None;
            r.changed_time = None;
        }
        self
    }
}

/// Everything a resource page shows.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResourcePage {
    pub estate: EstateInfo,
    pub freshness: Freshness,
    pub resource: ResourceDetail,
}

/// The answer to a refresh request.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RefreshOutcome {
    pub ok: bool,
    pub freshness: Freshness,
}

/// The seed's "Resource Dependencies": (from, to, relation).
pub const DECLARED_DEPENDENCIES: [(Role, Role, &str); 14] = [
    (Role::MlWorkspace, Role::StorageAccount, "uses"),
    (Role::MlWorkspace, Role::KeyVault, "uses"),
    (Role::MlWorkspace, Role::AppInsights, "uses"),
    (Role::MlWorkspace, Role::LogAnalytics, "uses"),
    (Role::MlWorkspace, Role::ManagedIdentity, "uses"),
    (Role::MlWorkspace, Role::Vnet, "uses"),
    (Role::Aks, Role::ContainerRegistry, "pulls from"),
    (Role::Aks, Role::Vnet, "uses"),
    (Role::Aks, Role::AksNsg, "uses"),
    (Role::Aks, Role::LogAnalytics, "logs to"),
    (Role::Runbook, Role::AutomationAccount, "runs in"),
    (Role::AlertRule, Role::ActionGroup, "notifies"),
    (Role::AlertRule, Role::LogAnalytics, "queries"),
    (Role::ActionGroup, Role::AutomationAccount, "triggers"),
];

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_category_has_a_role_and_roles_are_distinct() {
        for c in Category::ALL {
            assert!(Role::ALL.iter().any(|r| r.category() == c), "{c:?} empty");
        }
        let mut all = Role::ALL.to_vec();
        all.sort();
        all.dedup();
        assert_eq!(all.len(), 15);
    }

    #[test]
    fn role_serialises_kebab_case() {
        assert_eq!(
            serde_json::to_string(&Role::MlWorkspace).unwrap(),
            "\"ml-workspace\""
        );
    }
}

// ------------------------------------------------------------------------------------------------ runs

/// Our status for a run, whatever Azure calls it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum RunStatus {
    Submitting,
    Queued,
    Running,
    Succeeded,
    Failed,
    Canceled,
}

impl RunStatus {
    pub const ALL: [RunStatus; 6] = [
        RunStatus::Submitting,
        RunStatus::Queued,
        RunStatus::Running,
        RunStatus::Succeeded,
        RunStatus::Failed,
        RunStatus::Canceled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            RunStatus::Submitting => "submitting",
            RunStatus::Queued => "queued",
            RunStatus::Running => "running",
            RunStatus::Succeeded => "succeeded",
            RunStatus::Failed => "failed",
            RunStatus::Canceled => "canceled",
        }
    }

    pub fn parse(s: &str) -> Option<RunStatus> {
        RunStatus::ALL.into_iter().find(|r| r.as_str() == s)
    }

    pub fn is_terminal(self) -> bool {
        matches!(
            self,
            RunStatus::Succeeded | RunStatus::Failed | RunStatus::Canceled
        )
    }
}

/// One run as lists show it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunSummary {
    pub id: String,
    pub kind: String,
    pub target: String,
    pub status: RunStatus,
    pub azure_status: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Transition {
    pub status: RunStatus,
    pub azure_status: Option<String>,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LogLine {
    pub at: DateTime<Utc>,
    pub line: String,
}

/// A metric a training job logged (last value per key).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Metric {
    pub key: String,
    pub value: f64,
    pub step: i64,
}

/// One run with everything on record.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunDetail {
    #[serde(flatten)]
    pub summary: RunSummary,
    pub parameters: serde_json::Value,
    pub reason: Option<String>,
    pub azure_id: Option<String>,
    pub parent_id: Option<String>,
    pub error: Option<String>,
    pub transitions: Vec<Transition>,
    pub logs: Vec<LogLine>,
    pub metrics: Vec<Metric>,
}

/// Filters of the runs list; every field optional.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct RunFilter {
    pub kind: Option<String>,
    pub status: Option<String>,
    /// Substring of the target.
    pub target: Option<String>,
    pub requested_by: Option<String>,
    /// RFC 3339 bounds on `created_at`.
    pub since: Option<String>,
    pub until: Option<String>,
    /// Opaque cursor from the previous page.
    pub cursor: Option<String>,
    pub limit: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RunList {
    pub runs: Vec<RunSummary>,
    /// Pass as `cursor` for the next (older) page; absent on the last page.
    pub next_cursor: Option<String>,
}

/// A command job to submit, in the shape of the seed's `jobs/train-job.yml`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainingJobSpec {
    #[serde(default)]
    pub display_name: Option<String>,
    #[serde(default = "default_experiment")]
    pub experiment_name: String,
    pub command: String,
    /// Code asset, e.g. `azureml:diabetes-train-code:1` or a local path already uploaded.
    pub code: String,
    /// Environment, e.g. `azureml:AzureML-sklearn-1.5:1`.
    pub environment: String,
    /// Compute target name, e.g. `cpu-cluster`.
    pub compute: String,
    /// Literal inputs, e.g. `{"epochs": "10"}`.
    #[serde(default)]
    pub inputs: BTreeMap<String, String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// The training form as the browser sends it (`form[field]` names); `inputs` is one `name=value` a line.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct TrainingForm {
    pub display_name: String,
    pub experiment_name: String,
    pub command: String,
    pub code: String,
    pub environment: String,
    pub compute: String,
    pub inputs: String,
    pub reason: String,
    pub idempotency_key: String,
}

impl TrainingForm {
    pub fn into_spec(self) -> Result<TrainingJobSpec, String> {
        Ok(TrainingJobSpec {
            display_name: Some(self.display_name).filter(|s| !s.trim().is_empty()),
            experiment_name: self.experiment_name,
            command: self.command,
            code: self.code,
            environment: self.environment,
            compute: self.compute,
            inputs: parse_inputs(&self.inputs)?,
            reason: Some(self.reason).filter(|s| !s.trim().is_empty()),
        })
    }
}

/// `name=value` lines into inputs; blank lines are skipped.
pub fn parse_inputs(text: &str) -> Result<BTreeMap<String, String>, String> {
    text.lines()
        .map(str::trim)
        .filter(|l| !l.is_empty())
        .map(|l| match l.split_once('=') {
            Some((k, v)) if !k.trim().is_empty() => {
                Ok((k.trim().to_string(), v.trim().to_string()))
            }
            _ => Err(format!("inputs: '{l}' is not name=value")),
        })
        .collect()
}

/// Inputs as the form shows them.
pub fn format_inputs(inputs: &BTreeMap<String, String>) -> String {
    inputs
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join("\n")
}

fn default_experiment() -> String {
    "diabetes-classifier".into()
}

impl TrainingJobSpec {
    /// The seed's training job.
    pub fn seed_default() -> TrainingJobSpec {
        TrainingJobSpec {
            display_name: Some("train-diabetes-classifier".into()),
            experiment_name: default_experiment(),
            command: "python train.py --data ${{inputs.training_data}} --epochs ${{inputs.epochs}}"
                .into(),
            code: "azureml:diabetes-train-code:1".into(),
            environment: "azureml:AzureML-sklearn-1.5:1".into(),
            compute: "cpu-cluster".into(),
            inputs: [
                ("epochs".to_string(), "10".to_string()),
                (
                    "training_data".to_string(),
                    "azureml:diabetes-data:1".to_string(),
                ),
            ]
            .into_iter()
            .collect(),
            reason: None,
        }
    }

    /// Problems with the spec, each naming the field; empty when it can be sent.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.command.trim().is_empty() {
            p.push("command: give the command the job runs".to_string());
        }
        if self.command.len() > 4000 {
            p.push("command: at most 4000 characters".to_string());
        }
        for (field, value) in [
            ("code", &self.code),
            ("environment", &self.environment),
            ("compute", &self.compute),
        ] {
            if value.trim().is_empty() {
                p.push(format!("{field}: required"));
            }
        }
        let name_ok = |s: &str| {
            !s.is_empty()
                && s.len() <= 255
                && s.chars()
                    .all(|c| c.is_ascii_alphanumeric() || "-_.".contains(c))
        };
        if !name_ok(&self.experiment_name) {
            p.push(
                "experiment_name: letters, digits, '-', '_' and '.' only, 1–255 characters"
                    .to_string(),
            );
        }
        if !self.compute.trim().is_empty() && !name_ok(self.compute.trim()) {
            p.push("compute: a compute target name (letters, digits, '-', '_', '.')".to_string());
        }
        for key in self.inputs.keys() {
            if !name_ok(key) || key.contains('.') {
                p.push(format!("inputs: '{key}' is not a valid input name"));
            }
        }
        for (input, _) in self.inputs.iter().filter(|(_, v)| v.len() > 2000) {
            p.push(format!("inputs: '{input}' is longer than 2000 characters"));
        }
        p
    }
}

/// Register a model version from a completed training run.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ModelSpec {
    pub training_run: String,
    #[serde(default = "default_model")]
    pub name: String,
    #[serde(default)]
    pub reason: Option<String>,
}

fn default_model() -> String {
    "diabetes-classifier".into()
}

/// Add a deployment of a model version to an online endpoint, at 0% traffic.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentSpec {
    pub deployment: String,
    /// `name:version`, e.g. `diabetes-classifier:1`.
    pub model: String,
    #[serde(default = "default_instance_type")]
    pub instance_type: String,
    #[serde(default = "one")]
    pub instance_count: i64,
    /// The container's environment (`properties.environmentVariables`).
    #[serde(default)]
    pub environment_variables: BTreeMap<String, String>,
    #[serde(default)]
    pub reason: Option<String>,
}

/// An environment variable name as the container runtime takes it.
pub fn env_name_ok(name: &str) -> bool {
    name.len() <= 128
        && name.starts_with(|c: char| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_')
}

/// `KEY=value` lines (blank lines ignored) as a map; the error names the first bad line.
pub fn parse_env(text: &str) -> Result<BTreeMap<String, String>, String> {
    let mut out = BTreeMap::new();
    for (n, line) in text.lines().enumerate() {
        let line = line.trim();
        if line.is_empty() {
            continue;
        }
        match line.split_once('=') {
            Some((k, v)) if env_name_ok(k.trim()) => {
                out.insert(k.trim().to_string(), v.trim().to_string());
            }
            _ => {
                return Err(format!(
                    "environment: line {} is not NAME=value (NAME of letters, digits and _)",
                    n + 1
                ))
            }
        }
    }
    Ok(out)
}

fn default_instance_type() -> String {
    "Standard_DS2_v2".into()
}

fn one() -> i64 {
    1
}

/// A traffic split for an endpoint's deployments (whole percentages).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrafficSpec {
    pub traffic: BTreeMap<String, i64>,
    #[serde(default)]
    pub mirror: BTreeMap<String, i64>,
    #[serde(default)]
    pub reason: Option<String>,
}

impl TrafficSpec {
    /// Problems found before anything is sent: totals, ranges, names.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        for (name, w) in self.traffic.iter().chain(&self.mirror) {
            if !azure_name_ok(name) {
                p.push(format!("'{name}' is not a deployment name"));
            }
            if !(0..=100).contains(w) {
                p.push(format!("{name}: {w}% is not between 0 and 100"));
            }
        }
        let total: i64 = self.traffic.values().sum();
        if total != 100 {
            p.push(format!("traffic must total 100%; it totals {total}%"));
        }
        for (name, w) in &self.mirror {
            if *w > 50 {
                p.push(format!("mirror {name}: at most 50% can be mirrored"));
            }
            if *w > 0 && self.traffic.get(name).is_some_and(|live| *live > 0) {
                p.push(format!(
                    "mirror {name}: a deployment that takes live traffic cannot also be mirrored to"
                ));
            }
        }
        if self.mirror.values().filter(|w| **w > 0).count() > 1 {
            p.push("mirror: traffic can be mirrored to one deployment only".into());
        }
        p
    }
}

/// Azure ML's rule for endpoint and deployment names: 3–32 characters, letters, digits and hyphens,
/// starting with a letter and not ending with a hyphen.
pub fn azure_name_ok(name: &str) -> bool {
    (3..=32).contains(&name.len())
        && name.starts_with(|c: char| c.is_ascii_alphabetic())
        && !name.ends_with('-')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
}

/// An online endpoint as the endpoints page shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointView {
    pub name: String,
    pub state: String,
    pub scoring_uri: Option<String>,
    pub traffic: BTreeMap<String, i64>,
    pub mirror: BTreeMap<String, i64>,
    pub deployments: Vec<DeploymentView>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentView {
    pub name: String,
    /// `name:version`.
    pub model: String,
    pub instance_type: String,
    pub instance_count: i64,
    pub state: String,
}

/// `blue=90, green=10` → a split.
pub fn parse_split(text: &str) -> Result<BTreeMap<String, i64>, String> {
    text.split([',', '\n'])
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| match p.split_once('=') {
            Some((k, v)) => v
                .trim()
                .trim_end_matches('%')
                .parse::<i64>()
                .map(|w| (k.trim().to_string(), w))
                .map_err(|_| format!("'{p}': the percentage is not a whole number")),
            None => Err(format!("'{p}' is not deployment=percent")),
        })
        .collect()
}

//! What matters for each type: Azure's wire types turned into the facts and tables a resource page shows.

use crate::azure::wire::*;
use app::model::{Fact, Facts, Role, Table};
use chrono::{DateTime, Utc};

/// Data-plane and child data fetched beside the resource itself.
#[derive(Default)]
pub struct Extras {
    pub secrets: Option<Vec<SecretItem>>,
    pub repositories: Option<Vec<(String, Vec<String>)>>,
    pub containers: Option<Vec<BlobContainer>>,
    pub role_assignments: Option<Vec<(String, String)>>,
    pub runbooks: Option<Vec<String>>,
    pub warnings: Vec<String>,
}

fn opt(v: Option<impl ToString>) -> String {
    v.map(|v| v.to_string()).unwrap_or_else(|| "—".into())
}

fn yes_no(v: Option<bool>) -> String {
    match v {
        Some(true) => "Yes".into(),
        Some(false) => "No".into(),
        None => "—".into(),
    }
}

/// The last segment of an ARM id: the name a person recognises.
pub fn name_of(id: &str) -> String {
    id.trim_end_matches('/')
        .rsplit('/')
        .next()
        .unwrap_or(id)
        .to_string()
}

fn epoch(t: Option<i64>) -> String {
    t.and_then(|s| DateTime::<Utc>::from_timestamp(s, 0))
        .map(|d| d.format("%Y-%m-%d").to_string())
        .unwrap_or_else(|| "never".into())
}

fn table(title: &str, columns: &[&str], rows: Vec<Vec<String>>, empty: &str) -> Table {
    Table {
        title: title.into(),
        columns: columns.iter().map(|c| c.to_string()).collect(),
        rows,
        empty: empty.into(),
    }
}

/// The facts for `role` from the resource's properties and its extras.
pub fn build(role: Role, r: &GenericResource, extras: Extras, now: DateTime<Utc>) -> Facts {
    let mut facts = Vec::new();
    let mut tables = Vec::new();
    let mut warnings = extras.warnings;
    macro_rules! props {
        ($t:ty) => {
            match r.properties_as::<$t>() {
                Ok(p) => p,
                Err(e) => {
                    warnings.push(format!("Could not read this resource's properties: {e}"));
                    <$t>::default()
                }
            }
        };
    }
    match role {
        Role::MlWorkspace => {
            let p = props!(WorkspaceProperties);
            facts.push(Fact::new("Workspace ID", opt(p.workspace_id)));
            facts.push(Fact::new(
                "Public network access",
                opt(p.public_network_access),
            ));
            facts.push(Fact::new("High business impact", yes_no(p.hbi_workspace)));
            facts.push(Fact::new("Discovery URL", opt(p.discovery_url)));
            let links = [
                ("Storage account", p.storage_account),
                ("Key Vault", p.key_vault),
                ("Application Insights", p.application_insights),
                ("Container registry", p.container_registry),
                ("User-assigned identity", p.primary_user_assigned_identity),
                (
                    "Serverless compute subnet",
                    p.serverless_compute_settings
                        .as_ref()
                        .and_then(|s| s.get("serverlessComputeCustomSubnet"))
                        .and_then(|v| v.as_str())
                        .map(str::to_string),
                ),
            ];
            let rows = links
                .into_iter()
                .filter_map(|(what, id)| id.map(|id| vec![what.to_string(), name_of(&id), id]))
                .collect();
            tables.push(table(
                "Linked resources",
                &["Link", "Name", "Resource ID"],
                rows,
                "No linked resources.",
            ));
        }
        Role::Aks => {
            let p = props!(ManagedClusterProperties);
            facts.push(Fact::new(
                "Kubernetes version",
                opt(p.current_kubernetes_version.or(p.kubernetes_version)),
            ));
            facts.push(Fact::new(
                "Power state",
                opt(p.power_state.and_then(|s| s.code)),
            ));
            facts.push(Fact::new("API server", opt(p.fqdn)));
            let plugin = p
                .network_profile
                .as_ref()
                .and_then(|n| n.get("networkPlugin"))
                .and_then(|v| v.as_str())
                .map(str::to_string);
            facts.push(Fact::new("Network plugin", opt(plugin)));
            let monitoring = p
                .addon_profiles
                .as_ref()
                .and_then(|a| a.get("omsagent"))
                .and_then(|o| o.pointer("/config/logAnalyticsWorkspaceResourceID"))
                .and_then(|v| v.as_str())
                .map(name_of);
            facts.push(Fact::new("Container insights", opt(monitoring)));
            let rows = p
                .agent_pool_profiles
                .into_iter()
                .map(|a| {
                    let scale = match (a.enable_auto_scaling, a.min_count, a.max_count) {
                        (Some(true), Some(min), Some(max)) => format!("autoscale {min}–{max}"),
                        _ => "manual".into(),
                    };
                    vec![
                        opt(a.name),
                        opt(a.mode),
                        opt(a.count),
                        opt(a.vm_size),
                        scale,
                        opt(a.orchestrator_version),
                        opt(a.power_state.and_then(|s| s.code)),
                        opt(a.vnet_subnet_id.map(|s| name_of(&s))),
                    ]
                })
                .collect();
            tables.push(table(
                "Node pools",
                &[
                    "Pool", "Mode", "Nodes", "VM size", "Scaling", "Version", "Power", "Subnet",
                ],
                rows,
                "No node pools.",
            ));
        }
        Role::ContainerRegistry => {
            let p = props!(RegistryProperties);
            facts.push(Fact::new("Login server", opt(p.login_server)));
            facts.push(Fact::new("Admin user", yes_no(p.admin_user_enabled)));
            facts.push(Fact::new(
                "Public network access",
                opt(p.public_network_access),
            ));
            if let Some(repos) = extras.repositories {
                let rows = repos
                    .into_iter()
                    .map(|(name, tags)| vec![name, tags.len().to_string(), tags.join(", ")])
                    .collect();
                tables.push(table(
                    "Repositories",
                    &["Repository", "Tags", "Newest first"],
                    rows,
                    "No repositories.",
                ));
            }
        }
        Role::KeyVault => {
            let p = props!(VaultProperties);
            facts.push(Fact::new("Vault URI", opt(p.vault_uri)));
            facts.push(Fact::new("Soft delete", yes_no(p.enable_soft_delete)));
            facts.push(Fact::new(
                "Purge protection",
                yes_no(p.enable_purge_protection),
            ));
            facts.push(Fact::new(
                "RBAC authorization",
                yes_no(p.enable_rbac_authorization),
            ));
            if let Some(secrets) = extras.secrets {
                let rows = secrets
                    .iter()
                    .map(|s| {
                        let expires = s.attributes.exp;
                        let state =
                            match expires.and_then(|e| DateTime::<Utc>::from_timestamp(e, 0)) {
                                Some(at) if at < now => "Expired".to_string(),
                                Some(at) if at < now + chrono::Duration::days(30) => {
                                    "Expires soon".to_string()
                                }
                                _ if s.attributes.enabled == Some(false) => "Disabled".to_string(),
                                _ => "Active".to_string(),
                            };
                        vec![
                            s.name().to_string(),
                            opt(s.content_type.clone()),
                            epoch(expires),
                            epoch(s.attributes.updated),
                            state,
                        ]
                    })
                    .collect();
                tables.push(table(
                    "Secrets (names only; values are never shown)",
                    &["Name", "Content type", "Expires", "Updated", "State"],
                    rows,
                    "No secrets.",
                ));
            }
        }
        Role::StorageAccount => {
            let p = props!(StorageAccountProperties);
            facts.push(Fact::new("Kind", opt(r.kind.clone())));
            facts.push(Fact::new("Access tier", opt(p.access_tier)));
            facts.push(Fact::new(
                "HTTPS only",
                yes_no(p.supports_https_traffic_only),
            ));
            facts.push(Fact::new("Minimum TLS", opt(p.minimum_tls_version)));
            facts.push(Fact::new(
                "Public blob access",
                yes_no(p.allow_blob_public_access),
            ));
            if let Some(containers) = extras.containers {
                let rows = containers
                    .into_iter()
                    .map(|c| {
                        vec![
                            c.name,
                            opt(c.properties.public_access),
                            opt(c.properties.lease_state),
                            opt(c
                                .properties
                                .last_modified_time
                                .map(|t| t.chars().take(10).collect::<String>())),
                        ]
                    })
                    .collect();
                tables.push(table(
                    "Blob containers",
                    &["Container", "Public access", "Lease", "Modified"],
                    rows,
                    "No containers.",
                ));
            }
        }
        Role::AppInsights => {
            let p = props!(ComponentProperties);
            facts.push(Fact::new("Application ID", opt(p.app_id)));
            facts.push(Fact::new("Application type", opt(p.application_type)));
            facts.push(Fact::new(
                "Workspace",
                opt(p.workspace_resource_id.map(|w| name_of(&w))),
            ));
            facts.push(Fact::new("Ingestion mode", opt(p.ingestion_mode)));
            facts.push(Fact::new("Retention (days)", opt(p.retention_in_days)));
        }
        Role::LogAnalytics => {
            let p = props!(LogAnalyticsProperties);
            facts.push(Fact::new("Workspace ID (customer ID)", opt(p.customer_id)));
            facts.push(Fact::new("Retention (days)", opt(p.retention_in_days)));
            let quota = p
                .workspace_capping
                .and_then(|c| c.get("dailyQuotaGb").and_then(|q| q.as_f64()))
                .map(|q| {
                    if q < 0.0 {
                        "Unlimited".to_string()
                    } else {
                        format!("{q} GB")
                    }
                });
            facts.push(Fact::new("Daily cap", opt(quota)));
        }
        Role::ManagedIdentity => {
            let p = props!(IdentityProperties);
            facts.push(Fact::new("Client ID", opt(p.client_id)));
            facts.push(Fact::new("Principal ID", opt(p.principal_id)));
            facts.push(Fact::new("Tenant ID", opt(p.tenant_id)));
            if let Some(assignments) = extras.role_assignments {
                let rows = assignments
                    .into_iter()
                    .map(|(role, scope)| vec![role, name_of(&scope), scope])
                    .collect();
                tables.push(table(
                    "Role assignments",
                    &["Role", "On", "Scope"],
                    rows,
                    "No role assignments.",
                ));
            }
        }
        Role::Vnet => {
            let p = props!(VirtualNetworkProperties);
            facts.push(Fact::new(
                "Address space",
                p.address_space
                    .map(|a| a.address_prefixes.join(", "))
                    .unwrap_or_else(|| "—".into()),
            ));
            let rows = p
                .subnets
                .into_iter()
                .map(|s| {
                    let prefix = s
                        .properties
                        .address_prefix
                        .clone()
                        .unwrap_or_else(|| s.properties.address_prefixes.join(", "));
                    vec![
                        opt(s.name),
                        prefix,
                        opt(s
                            .properties
                            .network_security_group
                            .and_then(|n| n.id)
                            .map(|id| name_of(&id))),
                    ]
                })
                .collect();
            tables.push(table(
                "Subnets",
                &["Subnet", "Address range", "Network security group"],
                rows,
                "No subnets.",
            ));
        }
        Role::MlNsg | Role::AksNsg => {
            let p = props!(NetworkSecurityGroupProperties);
            facts.push(Fact::new(
                "Attached to subnets",
                p.subnets
                    .iter()
                    .filter_map(|s| s.id.as_deref().map(name_of))
                    .collect::<Vec<_>>()
                    .join(", "),
            ));
            let mut rules = p.security_rules;
            rules.sort_by_key(|r| (r.properties.direction.clone(), r.properties.priority));
            let rows = rules
                .into_iter()
                .map(|r| {
                    let q = r.properties;
                    let ports = q
                        .destination_port_range
                        .clone()
                        .unwrap_or_else(|| q.destination_port_ranges.join(", "));
                    vec![
                        opt(q.priority),
                        opt(r.name),
                        opt(q.direction),
                        opt(q.access),
                        opt(q.protocol),
                        opt(q.source_address_prefix),
                        ports,
                        opt(q.description),
                    ]
                })
                .collect();
            tables.push(table(
                "Security rules",
                &[
                    "Priority",
                    "Name",
                    "Direction",
                    "Access",
                    "Protocol",
                    "Source",
                    "Ports",
                    "Why",
                ],
                rows,
                "No custom rules: only Azure's defaults apply.",
            ));
        }
        Role::AutomationAccount => {
            let p = props!(AutomationAccountProperties);
            facts.push(Fact::new("State", opt(p.state)));
            if let Some(runbooks) = extras.runbooks {
                let rows = runbooks.into_iter().map(|r| vec![r]).collect();
                tables.push(table("Runbooks", &["Runbook"], rows, "No runbooks."));
            }
        }
        Role::Runbook => {
            let p = props!(RunbookProperties);
            facts.push(Fact::new("Runbook type", opt(p.runbook_type)));
            facts.push(Fact::new("State", opt(p.state)));
            facts.push(Fact::new("Description", opt(p.description)));
            facts.push(Fact::new("Last modified", opt(p.last_modified_time)));
            let account = r.id.split("/runbooks/").next().map(name_of);
            facts.push(Fact::new("Automation account", opt(account)));
        }
        Role::ActionGroup => {
            let p = props!(ActionGroupProperties);
            facts.push(Fact::new("Short name", opt(p.group_short_name)));
            facts.push(Fact::new("Enabled", yes_no(p.enabled)));
            let mut rows: Vec<Vec<String>> = p
                .email_receivers
                .into_iter()
                .map(|e| {
                    vec![
                        "Email".into(),
                        opt(e.name),
                        opt(e.email_address),
                        opt(e.status),
                    ]
                })
                .collect();
            rows.extend(p.automation_runbook_receivers.into_iter().map(|a| {
                vec![
                    "Automation runbook".into(),
                    opt(a.name),
                    format!(
                        "{} in {}",
                        opt(a.runbook_name),
                        opt(a.automation_account_id.map(|i| name_of(&i)))
                    ),
                    "Enabled".into(),
                ]
            }));
            rows.extend(p.webhook_receivers.into_iter().map(|w| {
                vec![
                    "Webhook".into(),
                    opt(w.name),
                    "(URL hidden)".into(),
                    "Enabled".into(),
                ]
            }));
            tables.push(table(
                "Receivers",
                &["Kind", "Name", "Target", "Status"],
                rows,
                "No receivers.",
            ));
        }
        Role::AlertRule => {
            let p = props!(ScheduledQueryRuleProperties);
            facts.push(Fact::new("Display name", opt(p.display_name)));
            facts.push(Fact::new(
                "Severity",
                opt(p.severity.map(|s| format!("Sev{s}"))),
            ));
            facts.push(Fact::new("Enabled", yes_no(p.enabled)));
            facts.push(Fact::new("Evaluated every", opt(p.evaluation_frequency)));
            facts.push(Fact::new("Window", opt(p.window_size)));
            facts.push(Fact::new("Description", opt(p.description)));
            let rows = p
                .criteria
                .map(|c| c.all_of)
                .unwrap_or_default()
                .into_iter()
                .map(|c| {
                    let condition = format!(
                        "{} of {} {} {}",
                        opt(c.time_aggregation),
                        opt(c.metric_measure_column.or(c.metric_name)),
                        opt(c.operator),
                        opt(c.threshold)
                    );
                    vec![condition, opt(c.query)]
                })
                .collect();
            tables.push(table(
                "Condition",
                &["Fires when", "Query"],
                rows,
                "No condition.",
            ));
            let groups = p
                .actions
                .map(|a| {
                    a.action_groups
                        .iter()
                        .map(|g| vec![name_of(g), g.clone()])
                        .collect()
                })
                .unwrap_or_default();
            tables.push(table(
                "Action groups",
                &["Name", "Resource ID"],
                groups,
                "No action groups.",
            ));
        }
    }
    Facts {
        facts,
        tables,
        warnings,
    }
}

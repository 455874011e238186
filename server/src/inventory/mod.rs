//! Inventory: the estate fetched through the Azure client, stored as snapshots in Postgres, served from
//! the latest snapshot, refreshed on an interval and on demand. When Azure fails, the last snapshot is
//! served, labelled stale with its age — never an empty page.

pub mod facts;

use crate::azure::error::AzureError;
use crate::azure::wire::{BlobContainer, GenericResource};
use crate::azure::AzureClient;
use crate::db;
use app::error::AppError;
use app::model::{
    Dependency, EstateInfo, Freshness, Overview, RefreshOutcome, ResourceDetail, ResourcePage,
    ResourceSummary, Role, Status, DECLARED_DEPENDENCIES,
};
use chrono::{DateTime, Utc};
use facts::Extras;
use serde::{Deserialize, Serialize};
use sqlx::PgPool;
use std::sync::{Arc, RwLock};

/// One refresh's result, as stored in `inventory_snapshots.body`.
#[derive(Clone, Debug, Serialize, Deserialize)]
pub struct Snapshot {
    pub fetched_at: DateTime<Utc>,
    pub resources: Vec<ResourceDetail>,
    pub undeclared: Vec<String>,
    pub dependencies: Vec<Dependency>,
}

#[derive(Default)]
struct Current {
    snapshot: Option<Arc<Snapshot>>,
    last_error: Option<String>,
}

pub struct Inventory {
    db: PgPool,
    client: Arc<AzureClient>,
    info: EstateInfo,
    current: RwLock<Current>,
    /// One refresh at a time; a second caller waits and gets the fresh result.
    refreshing: tokio::sync::Mutex<()>,
}

impl Inventory {
    /// The inventory, with the latest stored snapshot loaded (so a restart serves at once).
    pub async fn load(
        db: PgPool,
        client: Arc<AzureClient>,
        info: EstateInfo,
    ) -> Result<Inventory, sqlx::Error> {
        let e = &info.estate;
        let stored =
            db::inventory::latest(&db, &info.mode, &e.subscription_id, &e.resource_group).await?;
        let snapshot = stored.and_then(|row| match serde_json::from_value::<Snapshot>(row.body) {
            Ok(s) => Some(Arc::new(s)),
            Err(err) => {
                // An older shape after an upgrade: the next refresh replaces it.
                tracing::warn!(id = row.id, error = %err, "ignoring a stored snapshot that no longer reads");
                None
            }
        });
        Ok(Inventory {
            db,
            client,
            info,
            current: RwLock::new(Current {
                snapshot,
                last_error: None,
            }),
            refreshing: tokio::sync::Mutex::new(()),
        })
    }

    pub fn info(&self) -> &EstateInfo {
        &self.info
    }

    pub fn is_loaded(&self) -> bool {
        self.current
            .read()
            .expect("inventory lock")
            .snapshot
            .is_some()
    }

    fn read(&self) -> (Option<Arc<Snapshot>>, Freshness) {
        let current = self.current.read().expect("inventory lock");
        let now = Utc::now();
        let snapshot = current.snapshot.clone();
        let freshness = Freshness {
            fetched_at: snapshot.as_ref().map(|s| s.fetched_at),
            age_seconds: snapshot
                .as_ref()
                .map(|s| (now - s.fetched_at).num_seconds().max(0)),
            stale: current.last_error.is_some() || snapshot.is_none(),
            last_error: current.last_error.clone(),
        };
        (snapshot, freshness)
    }

    fn no_snapshot(freshness: &Freshness) -> AppError {
        AppError::Unavailable(match &freshness.last_error {
            Some(e) => format!("The inventory has not been fetched yet, and Azure is not answering: {e}"),
            None => "The inventory is being fetched from Azure for the first time; try again in a moment.".into(),
        })
    }

    pub fn overview(&self) -> Result<Overview, AppError> {
        let (snapshot, freshness) = self.read();
        let s = snapshot.ok_or_else(|| Self::no_snapshot(&freshness))?;
        Ok(Overview {
            estate: self.info.clone(),
            freshness,
            resources: s.resources.iter().map(|r| r.summary.clone()).collect(),
            undeclared: s.undeclared.clone(),
            dependencies: s.dependencies.clone(),
        })
    }

    pub fn resource(&self, name: &str) -> Result<ResourcePage, AppError> {
        let (snapshot, freshness) = self.read();
        let s = snapshot.ok_or_else(|| Self::no_snapshot(&freshness))?;
        let resource = s
            .resources
            .iter()
            .find(|r| r.summary.name.eq_ignore_ascii_case(name))
            .cloned()
            .ok_or_else(|| {
                AppError::NotFound(format!(
                    "There is no resource named '{name}' in this estate."
                ))
            })?;
        Ok(ResourcePage {
            estate: self.info.clone(),
            freshness,
            resource,
        })
    }

    /// Fetches a new snapshot now; on failure keeps the last one and remembers why.
    pub async fn refresh(&self) -> RefreshOutcome {
        let started = Utc::now();
        let _guard = self.refreshing.lock().await;
        // Someone else refreshed while we waited: their result is as fresh as ours would be.
        let already = {
            let c = self.current.read().expect("inventory lock");
            c.snapshot.as_ref().is_some_and(|s| s.fetched_at >= started) && c.last_error.is_none()
        };
        if !already {
            match self.collect().await {
                Ok(snapshot) => {
                    if let Err(e) = self.store(&snapshot).await {
                        tracing::error!(error = %e, "could not store the inventory snapshot");
                    }
                    let mut c = self.current.write().expect("inventory lock");
                    c.snapshot = Some(Arc::new(snapshot));
                    c.last_error = None;
                }
                Err(e) => {
                    tracing::warn!(error = %e, "inventory refresh failed; serving the last snapshot");
                    self.current.write().expect("inventory lock").last_error = Some(e.to_string());
                }
            }
        }
        let (_, freshness) = self.read();
        RefreshOutcome {
            ok: freshness.last_error.is_none(),
            freshness,
        }
    }

    async fn store(&self, snapshot: &Snapshot) -> Result<(), sqlx::Error> {
        let e = &self.info.estate;
        let body = serde_json::to_value(snapshot).expect("snapshots serialise");
        let mut tx = self.db.begin().await?;
        db::inventory::insert(
            &mut *tx,
            &self.info.mode,
            &e.subscription_id,
            &e.resource_group,
            snapshot.fetched_at,
            &body,
        )
        .await?;
        db::inventory::prune(
            &mut *tx,
            &self.info.mode,
            &e.subscription_id,
            &e.resource_group,
            500,
        )
        .await?;
        tx.commit().await
    }

    /// Refreshes now and then every `every`, until the task is dropped.
    pub fn spawn_refresher(
        self: &Arc<Self>,
        every: std::time::Duration,
    ) -> tokio::task::JoinHandle<()> {
        let me = Arc::clone(self);
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(every);
            tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
            loop {
                tick.tick().await;
                me.refresh().await;
            }
        })
    }

    /// One pass over Azure: the group's resources, their properties from Resource Graph (GET by id for
    /// any Graph has not indexed yet), and each type's extras.
    async fn collect(&self) -> Result<Snapshot, AzureError> {
        let e = &self.info.estate;
        let listed = self
            .client
            .list_resources_in_group(&e.subscription_id, &e.resource_group)
            .await?;
        let query = format!(
            "Resources | where resourceGroup =~ '{}' | project id, name, type, location, tags, sku, kind, identity, properties | order by id asc",
            e.resource_group.replace('\'', "")
        );
        let rows = self
            .client
            .resource_graph(std::slice::from_ref(&e.subscription_id), &query)
            .await?;
        let properties: std::collections::HashMap<String, serde_json::Value> = rows
            .into_iter()
            .filter_map(|row| {
                let id = row.get("id")?.as_str()?.to_ascii_lowercase();
                Some((id, row.get("properties")?.clone()))
            })
            .collect();

        let now = Utc::now();
        let mut matched = vec![false; listed.len()];
        let mut found: Vec<(Role, GenericResource)> = Vec::new();
        for role in Role::ALL {
            let name = e.name_of(role);
            let hit = listed.iter().position(|r| {
                r.resource_type.eq_ignore_ascii_case(role.arm_type())
                    && r.id
                        .to_ascii_lowercase()
                        .ends_with(&format!("/{}", name.to_ascii_lowercase()))
            });
            if let Some(i) = hit {
                matched[i] = true;
                let mut resource = listed[i].clone();
                resource.properties = match properties.get(&resource.id.to_ascii_lowercase()) {
                    Some(p) => Some(p.clone()),
                    // Resource Graph lags ARM for new resources: read it directly.
                    None => {
                        self.client
                            .get_resource(&resource.id, role.api_version())
                            .await?
                            .properties
                    }
                };
                found.push((role, resource));
            }
        }

        let extras =
            futures::future::join_all(found.iter().map(|(role, r)| self.extras(*role, r))).await;
        let mut resources: Vec<ResourceDetail> = Vec::new();
        for role in Role::ALL {
            let detail = match found.iter().position(|(r, _)| *r == role) {
                Some(i) => {
                    let r = &found[i].1;
                    let extra = std::mem::take(&mut *extras[i].lock().expect("extras"));
                    ResourceDetail {
                        // ARM lists child resources as "parent/child": show the declared name.
                        summary: ResourceSummary {
                            name: e.name_of(role).to_string(),
                            ..summary(role, r)
                        },
                        facts: facts::build(role, r, extra, now),
                        dependencies: vec![],
                    }
                }
                None => ResourceDetail {
                    summary: ResourceSummary {
                        name: e.name_of(role).to_string(),
                        role,
                        category: role.category(),
                        arm_type: role.arm_type().into(),
                        type_label: role.type_label().into(),
                        id: e.resource_id(role),
                        location: None,
                        status: Status::Missing,
                        sku: None,
                        tags: Default::default(),
                        created_time: None,
                        changed_time: None,
                    },
                    facts: app::model::Facts {
                        warnings: vec![
                            "Declared in the estate file but not found in the resource group."
                                .into(),
                        ],
                        ..Default::default()
                    },
                    dependencies: vec![],
                },
            };
            resources.push(detail);
        }

        let dependencies: Vec<Dependency> = DECLARED_DEPENDENCIES
            .iter()
            .map(|(from, to, relation)| {
                let from_id = e.resource_id(*from).to_ascii_lowercase();
                let to_id = e.resource_id(*to).to_ascii_lowercase();
                let observed = found
                    .iter()
                    .find(|(r, _)| r == from)
                    .is_some_and(|(_, res)| {
                        from_id.starts_with(&format!("{to_id}/"))
                            || res.properties.as_ref().is_some_and(|p| {
                                p.to_string().to_ascii_lowercase().contains(&to_id)
                            })
                    });
                Dependency {
                    from: e.name_of(*from).to_string(),
                    to: e.name_of(*to).to_string(),
                    relation: relation.to_string(),
                    observed,
                }
            })
            .collect();
        for r in resources.iter_mut() {
            r.dependencies = dependencies
                .iter()
                .filter(|d| d.from == r.summary.name || d.to == r.summary.name)
                .cloned()
                .collect();
        }
        let undeclared = listed
            .iter()
            .zip(matched)
            .filter(|(_, m)| !m)
            .map(|(r, _)| r.name.clone())
            .collect();
        Ok(Snapshot {
            fetched_at: Utc::now(),
            resources,
            undeclared,
            dependencies,
        })
    }

    /// Child and data-plane data for one resource. A failure here is a warning on that resource's page,
    /// not a failed refresh.
    async fn extras(&self, role: Role, r: &GenericResource) -> std::sync::Mutex<Extras> {
        let mut x = Extras::default();
        let warn = |what: &str, e: AzureError| format!("Could not list {what}: {e}");
        match role {
            Role::KeyVault => match self.client.list_secrets(&r.name).await {
                Ok(s) => x.secrets = Some(s),
                Err(e) => x.warnings.push(warn("the vault's secrets", e)),
            },
            Role::ContainerRegistry => {
                let login = r
                    .properties
                    .as_ref()
                    .and_then(|p| p.get("loginServer"))
                    .and_then(|v| v.as_str())
                    .map(str::to_string)
                    .unwrap_or_else(|| format!("{}.azurecr.io", r.name));
                match self.client.acr_repositories(&r.name, &login).await {
                    Ok(names) => {
                        let mut repos = Vec::new();
                        for name in names {
                            match self.client.acr_tags(&r.name, &login, &name).await {
                                Ok(t) => {
                                    repos.push((name, t.tags.into_iter().map(|t| t.name).collect()))
                                }
                                Err(e) => x.warnings.push(warn(&format!("the tags of {name}"), e)),
                            }
                        }
                        x.repositories = Some(repos);
                    }
                    Err(e) => x.warnings.push(warn("the registry's repositories", e)),
                }
            }
            Role::StorageAccount => {
                let path = format!("{}/blobServices/default/containers", r.id);
                match self
                    .client
                    .list_children::<BlobContainer>(&path, crate::azure::arm::STORAGE_API)
                    .await
                {
                    Ok(c) => x.containers = Some(c),
                    Err(e) => x.warnings.push(warn("the blob containers", e)),
                }
            }
            Role::ManagedIdentity => {
                let principal = r
                    .properties
                    .as_ref()
                    .and_then(|p| p.get("principalId"))
                    .and_then(|v| v.as_str())
                    .unwrap_or_default()
                    .to_string();
                let scope = format!("/subscriptions/{}", self.info.estate.subscription_id);
                match self.client.role_assignments_for(&scope, &principal).await {
                    Ok(assignments) => {
                        let mut rows = Vec::new();
                        for a in assignments {
                            let role_name = match self
                                .client
                                .role_definition(&a.properties.role_definition_id)
                                .await
                            {
                                Ok(d) => d.properties.role_name,
                                Err(_) => facts::name_of(&a.properties.role_definition_id),
                            };
                            rows.push((role_name, a.properties.scope));
                        }
                        x.role_assignments = Some(rows);
                    }
                    Err(e) => x.warnings.push(warn("the identity's role assignments", e)),
                }
            }
            Role::AutomationAccount => {
                let path = format!("{}/runbooks", r.id);
                match self
                    .client
                    .list_children::<GenericResource>(&path, role.api_version())
                    .await
                {
                    Ok(rbs) => x.runbooks = Some(rbs.into_iter().map(|r| r.name).collect()),
                    Err(e) => x.warnings.push(warn("the runbooks", e)),
                }
            }
            _ => {}
        }
        std::sync::Mutex::new(x)
    }
}

fn parse_time(t: &Option<String>) -> Option<DateTime<Utc>> {
    t.as_deref()
        .and_then(|t| DateTime::parse_from_rfc3339(t).ok())
        .map(|t| t.with_timezone(&Utc))
}

fn summary(role: Role, r: &GenericResource) -> ResourceSummary {
    ResourceSummary {
        name: r.name.clone(),
        role,
        category: role.category(),
        arm_type: r.resource_type.clone(),
        type_label: role.type_label().into(),
        id: r.id.clone(),
        location: r.location.clone(),
        status: Status::Provisioned(r.provisioning_state()),
        // Some types keep their SKU inside properties (Key Vault, Log Analytics).
        sku: r.sku.as_ref().and_then(|s| s.name.clone()).or_else(|| {
            r.properties
                .as_ref()
                .and_then(|p| p.pointer("/sku/name"))
                .and_then(|v| v.as_str())
                .map(str::to_string)
        }),
        tags: r.tags.clone(),
        created_time: parse_time(&r.created_time),
        changed_time: parse_time(&r.changed_time),
    }
}

//! The estate's telemetry, generated on demand and deterministic: the same minute always holds the same
//! rows, so a query asked twice answers the same. It follows what happens in the emulator — scoring
//! requests go to the deployments the endpoint's traffic split names at that minute (from the split's
//! history), a deployment with `EMULATOR_UNHEALTHY=true` in its environment is slower and fails more, the
//! AKS `ml-inference` service serves steadily, node CPU stays low (so the underutilization alert holds),
//! and every write the emulator took shows in `AzureActivity`.
//!
//! App Insights tables: `requests`, `dependencies`, `exceptions`, `customMetrics`. Log Analytics tables:
//! `ContainerLog`, `AzureDiagnostics`, `Perf`, `InsightsMetrics`, `KubePodInventory`, `AzureActivity`.

use super::kql::{Catalog, Column, Table, TimeRange, Ty, Value};
use super::{k8s, online, Emulator};
use app::model::Role;
use chrono::{DateTime, Duration, DurationRound, Utc};
use serde_json::json;
use std::collections::BTreeMap;

/// How far back telemetry exists (Log Analytics keeps 30 days; a week is plenty to look at).
const HISTORY_DAYS: i64 = 8;
/// Scoring requests per minute an endpoint receives in total, split by traffic.
const ENDPOINT_RATE: f64 = 12.0;
const NODES: [&str; 3] = [
    "aks-nodepool1-38479271-vmss000000",
    "aks-nodepool1-38479271-vmss000001",
    "aks-nodepool1-38479271-vmss000002",
];

#[derive(Clone, Copy, PartialEq)]
pub enum Product {
    AppInsights,
    LogAnalytics,
}

struct Deployment {
    name: String,
    model: String,
    unhealthy: bool,
    since: DateTime<Utc>,
}

struct Endpoint {
    name: String,
    host: String,
    /// Splits in the order they took effect.
    splits: Vec<(DateTime<Utc>, BTreeMap<String, i64>)>,
    deployments: Vec<Deployment>,
}

struct Activity {
    at: DateTime<Utc>,
    operation: String,
    resource: String,
}

/// A snapshot of the emulator's state, enough to generate any window of telemetry.
pub struct Telemetry {
    product: Product,
    now: DateTime<Utc>,
    endpoints: Vec<Endpoint>,
    replicas: i64,
    image: String,
    activity: Vec<Activity>,
    cluster: String,
    workspace: String,
    subscription: String,
    resource_group: String,
}

/// One generated scoring request; several tables are views of the same requests.
struct Request {
    at: DateTime<Utc>,
    id: String,
    role: String,
    endpoint: Option<String>,
    host: String,
    model: String,
    instance: String,
    duration: f64,
    code: u16,
}

/// splitmix64: a tiny deterministic generator, seeded per minute and role.
struct Rng(u64);

impl Rng {
    fn new(parts: &[&str], minute: i64) -> Rng {
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ minute as u64;
        for p in parts {
            for b in p.bytes() {
                h = (h ^ b as u64).wrapping_mul(0x100_0000_01b3);
            }
        }
        Rng(h)
    }

    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9e37_79b9_7f4a_7c15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
        z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        (self.next() >> 11) as f64 / (1u64 << 53) as f64
    }

    fn hex(&mut self) -> String {
        format!("{:016x}", self.next())
    }
}

fn minutes(range: &TimeRange, now: DateTime<Utc>) -> impl Iterator<Item = DateTime<Utc>> {
    let floor = (now - Duration::days(HISTORY_DAYS)).max(range.start);
    let first = floor.duration_trunc(Duration::minutes(1)).unwrap_or(floor);
    let end = range.end.min(now);
    (0..)
        .map(move |i| first + Duration::minutes(i))
        .take_while(move |m| *m <= end)
}

fn col(name: &str, ty: Ty) -> Column {
    Column::new(name, ty)
}

fn s(v: impl Into<String>) -> Value {
    Value::String(v.into())
}

impl Telemetry {
    pub async fn load(emu: &Emulator, product: Product) -> Result<Telemetry, sqlx::Error> {
        let estate = &emu.inner.estate;
        let store = &emu.inner.store;
        let workspace = estate.resource_id(Role::MlWorkspace);
        let mut endpoints = Vec::new();
        for ep in store
            .children(
                online::ENDPOINT,
                &format!("{workspace}/onlineendpoints"),
                0,
                100,
            )
            .await?
        {
            let rendered = online::render(&ep);
            let name = rendered["name"].as_str().unwrap_or_default().to_string();
            let mut splits: Vec<(DateTime<Utc>, BTreeMap<String, i64>)> = store
                .children(
                    online::TRAFFIC_EVENT,
                    &format!("{}/trafficevents", ep.key),
                    0,
                    10_000,
                )
                .await?
                .into_iter()
                .filter_map(|e| {
                    let at = e.body["at"].as_str()?.parse().ok()?;
                    let traffic = serde_json::from_value(e.body["traffic"].clone()).ok()?;
                    Some((at, traffic))
                })
                .collect();
            if splits.is_empty() {
                let traffic = serde_json::from_value(rendered["properties"]["traffic"].clone())
                    .unwrap_or_default();
                splits.push((ep.created_at, traffic));
            }
            splits.sort_by_key(|(at, _)| *at);
            let deployments = store
                .children(
                    online::DEPLOYMENT,
                    &format!("{}/deployments", ep.key),
                    0,
                    100,
                )
                .await?
                .into_iter()
                .map(|d| Deployment {
                    name: d.body["name"].as_str().unwrap_or_default().to_string(),
                    model: d.body["properties"]["model"]
                        .as_str()
                        .and_then(|m| m.split("/models/").nth(1))
                        .unwrap_or_default()
                        .replace("/versions/", ":"),
                    unhealthy: d
                        .body
                        .pointer("/properties/environmentVariables/EMULATOR_UNHEALTHY")
                        .and_then(|v| v.as_str())
                        == Some("true"),
                    since: d.created_at,
                })
                .collect();
            endpoints.push(Endpoint {
                host: format!("{name}.{}.inference.ml.azure.com", estate.location),
                name,
                splits,
                deployments,
            });
        }
        let cluster = estate.resource_id(Role::Aks);
        let kube = store
            .get(
                k8s::DEPLOYMENT,
                &k8s::key(&estate.resources.aks, "default", "ml-inference"),
            )
            .await?;
        let (replicas, image) = kube
            .map(|k| {
                (
                    k.body["spec"]["replicas"].as_i64().unwrap_or(2),
                    k.body
                        .pointer("/spec/template/spec/containers/0/image")
                        .and_then(|v| v.as_str())
                        .unwrap_or_default()
                        .to_string(),
                )
            })
            .unwrap_or((2, String::new()));
        let mut activity = Vec::new();
        if product == Product::LogAnalytics {
            for kind in [
                super::ml::JOB,
                online::ENDPOINT,
                online::DEPLOYMENT,
                online::MODEL_VERSION,
                super::automation::JOB,
                super::acr::RUN,
            ] {
                let prefix = format!("/subscriptions/{}", estate.subscription_id);
                for o in store.under(kind, &prefix, 0, 5_000).await? {
                    let resource = o.body["id"].as_str().unwrap_or(&o.key).to_string();
                    let operation = operation_of(&resource);
                    activity.push(Activity {
                        at: o.created_at,
                        operation: operation.clone(),
                        resource: resource.clone(),
                    });
                    if o.changed_at > o.created_at + Duration::seconds(1) {
                        activity.push(Activity {
                            at: o.changed_at,
                            operation,
                            resource,
                        });
                    }
                }
            }
            activity.sort_by_key(|a| a.at);
        }
        Ok(Telemetry {
            product,
            now: Utc::now(),
            endpoints,
            replicas: replicas.max(0),
            image,
            activity,
            cluster,
            workspace,
            subscription: estate.subscription_id.clone(),
            resource_group: estate.resource_group.clone(),
        })
    }

    pub fn now(&self) -> DateTime<Utc> {
        self.now
    }

    /// Every scoring request in `range`, oldest first.
    fn requests(&self, range: &TimeRange) -> Vec<Request> {
        let mut out = Vec::new();
        for minute in minutes(range, self.now) {
            let m = minute.timestamp() / 60;
            // The AKS service: steady, healthy.
            let mut rng = Rng::new(&["ml-inference"], m);
            let n = 3 + (rng.next() % 3) as usize;
            for i in 0..n {
                out.push(self.request(
                    &mut rng,
                    minute,
                    i,
                    n,
                    "ml-inference",
                    None,
                    "ml-inference.default.svc",
                    &self.image,
                    false,
                ));
            }
            for ep in &self.endpoints {
                // The endpoint's callers send at a steady rate; each request goes where the split in
                // effect at its own moment sends it, so a shift shows from the next request on.
                let mut rng = Rng::new(&[&ep.name], m);
                let n = (ENDPOINT_RATE + rng.unit() * 3.0 - 1.5).round().max(1.0) as usize;
                for i in 0..n {
                    let at = minute
                        + Duration::milliseconds(
                            (60_000 * i / n) as i64 + (rng.next() % 900) as i64,
                        );
                    let Some((_, split)) = ep.splits.iter().rev().find(|(t, _)| *t <= at) else {
                        continue;
                    };
                    let live: Vec<(&Deployment, i64)> = ep
                        .deployments
                        .iter()
                        .filter(|d| d.since <= at)
                        .filter_map(|d| split.get(&d.name).filter(|w| **w > 0).map(|w| (d, *w)))
                        .collect();
                    let total: i64 = live.iter().map(|(_, w)| w).sum();
                    if total == 0 {
                        continue;
                    }
                    let mut pick = (rng.next() % total as u64) as i64;
                    let Some((d, _)) = live.iter().find(|(_, w)| {
                        pick -= w;
                        pick < 0
                    }) else {
                        continue;
                    };
                    let mut r = self.request(
                        &mut rng,
                        minute,
                        i,
                        n,
                        &d.name,
                        Some(&ep.name),
                        &ep.host,
                        &d.model,
                        d.unhealthy,
                    );
                    r.at = at;
                    out.push(r);
                }
            }
        }
        out.retain(|r| range.contains(r.at) && r.at <= self.now);
        out.sort_by(|a, b| a.at.cmp(&b.at).then_with(|| a.id.cmp(&b.id)));
        out
    }

    #[allow(clippy::too_many_arguments)]
    fn request(
        &self,
        rng: &mut Rng,
        minute: DateTime<Utc>,
        i: usize,
        n: usize,
        role: &str,
        endpoint: Option<&str>,
        host: &str,
        model: &str,
        unhealthy: bool,
    ) -> Request {
        let offset = (60_000 * i / n.max(1)) as i64 + (rng.next() % 900) as i64;
        // Log-normal-ish latency around 38 ms; an unhealthy deployment is ~3.5× slower with a long tail.
        let z = (rng.unit() + rng.unit() + rng.unit() - 1.5) * 1.2;
        let (base, error_rate) = if unhealthy {
            (135.0, 0.09)
        } else {
            (38.0, 0.004)
        };
        let duration = (base * z.exp() * 100.0).round() / 100.0;
        let code = if rng.unit() < error_rate {
            if rng.unit() < 0.7 {
                500
            } else {
                503
            }
        } else {
            200
        };
        Request {
            at: minute + Duration::milliseconds(offset),
            id: rng.hex(),
            role: role.to_string(),
            endpoint: endpoint.map(str::to_string),
            host: host.to_string(),
            model: model.to_string(),
            instance: format!("{role}-{}", rng.next() % 3),
            duration,
            code,
        }
    }

    fn node_id(&self, node: &str) -> String {
        format!("{}/nodes/{node}", self.cluster)
    }

    fn table_requests(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("timestamp", Ty::Datetime),
            col("id", Ty::String),
            col("name", Ty::String),
            col("url", Ty::String),
            col("duration", Ty::Real),
            col("resultCode", Ty::String),
            col("success", Ty::Bool),
            col("cloud_RoleName", Ty::String),
            col("cloud_RoleInstance", Ty::String),
            col("operation_Name", Ty::String),
            col("itemCount", Ty::Int),
            col("customDimensions", Ty::Dynamic),
        ];
        let rows = self
            .requests(range)
            .into_iter()
            .map(|r| {
                vec![
                    Value::Datetime(r.at),
                    s(r.id),
                    s("POST /score"),
                    s(format!("https://{}/score", r.host)),
                    Value::Real(r.duration),
                    s(r.code.to_string()),
                    Value::Bool(r.code < 400),
                    s(r.role.clone()),
                    s(r.instance),
                    s("POST /score"),
                    Value::Long(1),
                    Value::Dynamic(
                        json!({"endpoint": r.endpoint, "deployment": r.role, "model": r.model}),
                    ),
                ]
            })
            .collect();
        Table {
            name: "requests".into(),
            columns,
            rows,
        }
    }

    fn table_dependencies(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("timestamp", Ty::Datetime),
            col("id", Ty::String),
            col("name", Ty::String),
            col("type", Ty::String),
            col("target", Ty::String),
            col("duration", Ty::Real),
            col("resultCode", Ty::String),
            col("success", Ty::Bool),
            col("cloud_RoleName", Ty::String),
        ];
        let mut rows = Vec::new();
        for r in self.requests(range) {
            let mut rng = Rng::new(&[&r.id], 0);
            // Every fourth request reads a feature from storage; failed requests often failed here.
            if !rng.next().is_multiple_of(4) && r.code < 400 {
                continue;
            }
            let failed = r.code >= 500 && rng.unit() < 0.6;
            let (name, kind, target) = if rng.unit() < 0.8 {
                (
                    "GET /features/latest.parquet",
                    "Azure blob",
                    "mlopsnewdevst3kxldb.blob.core.windows.net",
                )
            } else {
                (
                    "GET /secrets/feature-store-key",
                    "Azure Key Vault",
                    "mlopsnew-dev-kv-3kxldb.vault.azure.net",
                )
            };
            rows.push(vec![
                Value::Datetime(r.at),
                s(rng.hex()),
                s(name),
                s(kind),
                s(target),
                Value::Real((4.0 + rng.unit() * 20.0 + if failed { 900.0 } else { 0.0 }).round()),
                s(if failed { "503" } else { "200" }),
                Value::Bool(!failed),
                s(r.role),
            ]);
        }
        Table {
            name: "dependencies".into(),
            columns,
            rows,
        }
    }

    fn table_exceptions(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("timestamp", Ty::Datetime),
            col("problemId", Ty::String),
            col("type", Ty::String),
            col("outerMessage", Ty::String),
            col("severityLevel", Ty::Int),
            col("cloud_RoleName", Ty::String),
            col("operation_Id", Ty::String),
        ];
        let rows = self
            .requests(range)
            .into_iter()
            .filter(|r| r.code >= 500)
            .map(|r| {
                let (kind, message) = match r.id.as_bytes()[0] % 3 {
                    0 => ("TimeoutError", "Feature store read timed out after 5s"),
                    1 => (
                        "ValueError",
                        "Input contains NaN, infinity or a value too large for dtype('float64')",
                    ),
                    _ => ("MemoryError", "Unable to allocate array for the batch"),
                };
                vec![
                    Value::Datetime(r.at),
                    s(format!("{kind} at score.run")),
                    s(kind),
                    s(message),
                    Value::Long(3),
                    s(r.role),
                    s(r.id),
                ]
            })
            .collect();
        Table {
            name: "exceptions".into(),
            columns,
            rows,
        }
    }

    fn table_custom_metrics(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("timestamp", Ty::Datetime),
            col("name", Ty::String),
            col("value", Ty::Real),
            col("valueCount", Ty::Int),
            col("cloud_RoleName", Ty::String),
        ];
        let mut per_minute: BTreeMap<(DateTime<Utc>, String), (f64, i64)> = BTreeMap::new();
        for r in self.requests(range) {
            let minute = r.at.duration_trunc(Duration::minutes(1)).unwrap_or(r.at);
            let mut rng = Rng::new(&[&r.id, "confidence"], 0);
            let e = per_minute.entry((minute, r.role)).or_default();
            e.0 += 0.78 + rng.unit() * 0.2;
            e.1 += 1;
        }
        let rows = per_minute
            .into_iter()
            .map(|((at, role), (sum, n))| {
                vec![
                    Value::Datetime(at),
                    s("prediction_confidence"),
                    Value::Real((sum / n as f64 * 1000.0).round() / 1000.0),
                    Value::Long(n),
                    s(role),
                ]
            })
            .collect();
        Table {
            name: "customMetrics".into(),
            columns,
            rows,
        }
    }

    fn table_container_log(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("TimeGenerated", Ty::Datetime),
            col("Computer", Ty::String),
            col("ContainerID", Ty::String),
            col("Image", Ty::String),
            col("Name", Ty::String),
            col("LogEntrySource", Ty::String),
            col("LogEntry", Ty::String),
            col("_ResourceId", Ty::String),
        ];
        let rows = self
            .requests(range)
            .into_iter()
            .filter(|r| r.role == "ml-inference")
            .map(|r| {
                let node = NODES[(r.id.as_bytes()[1] % 3) as usize];
                let (source, entry) = if r.code >= 500 {
                    (
                        "stderr",
                        format!(
                            "ERROR {} POST /score {:.0}ms request_id={}",
                            r.code, r.duration, r.id
                        ),
                    )
                } else {
                    (
                        "stdout",
                        format!(
                            "INFO 200 POST /score {:.0}ms request_id={}",
                            r.duration, r.id
                        ),
                    )
                };
                vec![
                    Value::Datetime(r.at),
                    s(node),
                    s(format!("containerd://{}", &r.instance)),
                    s(self.image.clone()),
                    s(format!("default/{}", r.instance)),
                    s(source),
                    s(entry),
                    s(self.cluster.clone()),
                ]
            })
            .collect();
        Table {
            name: "ContainerLog".into(),
            columns,
            rows,
        }
    }

    fn table_azure_diagnostics(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("TimeGenerated", Ty::Datetime),
            col("Category", Ty::String),
            col("OperationName", Ty::String),
            col("ResourceProvider", Ty::String),
            col("Resource", Ty::String),
            col("ResultType", Ty::String),
            col("endpoint_s", Ty::String),
            col("deployment_s", Ty::String),
            col("Message", Ty::String),
            col("_ResourceId", Ty::String),
        ];
        let ws_name = self
            .workspace
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_ascii_uppercase();
        let rows = self
            .requests(range)
            .into_iter()
            .filter(|r| r.code < 400 && r.id.as_bytes()[2] % 2 == 0)
            .map(|r| {
                vec![
                    Value::Datetime(r.at),
                    s("ModelDataCollectionEvent"),
                    s("ModelDataCollection"),
                    s("MICROSOFT.MACHINELEARNINGSERVICES"),
                    s(ws_name.clone()),
                    s("Succeeded"),
                    s(r.endpoint.clone().unwrap_or_default()),
                    s(r.role.clone()),
                    s(format!(
                        "Collected 1 input row and 1 prediction for {} ({})",
                        r.role, r.model
                    )),
                    s(self.workspace.clone()),
                ]
            })
            .collect();
        Table {
            name: "AzureDiagnostics".into(),
            columns,
            rows,
        }
    }

    /// Node CPU between 6% and 15% of capacity: low enough, for six hours and more, to fire the
    /// underutilization alert (CPU < 20%).
    fn cpu(&self, node: &str, minute: i64) -> f64 {
        let mut rng = Rng::new(&[node, "cpu"], minute);
        let wave = ((minute as f64) / 90.0).sin() * 2.5;
        ((9.0 + wave + rng.unit() * 4.0) * 100.0).round() / 100.0
    }

    fn table_perf(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("TimeGenerated", Ty::Datetime),
            col("Computer", Ty::String),
            col("ObjectName", Ty::String),
            col("CounterName", Ty::String),
            col("InstanceName", Ty::String),
            col("CounterValue", Ty::Real),
            col("_ResourceId", Ty::String),
        ];
        let mut rows = Vec::new();
        for minute in minutes(range, self.now) {
            let m = minute.timestamp() / 60;
            for node in NODES {
                let pct = self.cpu(node, m);
                for (counter, value) in [
                    ("cpuUsagePercentage", pct),
                    ("cpuUsageNanoCores", pct / 100.0 * 2e9),
                    ("cpuCapacityNanoCores", 2e9),
                ] {
                    rows.push(vec![
                        Value::Datetime(minute),
                        s(node),
                        s("K8SNode"),
                        s(counter),
                        s(self.node_id(node)),
                        Value::Real(value),
                        s(self.cluster.clone()),
                    ]);
                }
            }
        }
        Table {
            name: "Perf".into(),
            columns,
            rows,
        }
    }

    fn table_insights_metrics(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("TimeGenerated", Ty::Datetime),
            col("Computer", Ty::String),
            col("Origin", Ty::String),
            col("Namespace", Ty::String),
            col("Name", Ty::String),
            col("Val", Ty::Real),
            col("Tags", Ty::Dynamic),
            col("_ResourceId", Ty::String),
        ];
        let mut rows = Vec::new();
        for minute in minutes(range, self.now).filter(|m| m.timestamp() % 300 == 0) {
            for node in NODES {
                rows.push(vec![
                    Value::Datetime(minute), s(node), s("container.azm.ms/telegraf"), s("container.azm.ms/node"),
                    s("cpuUsagePercentage"), Value::Real(self.cpu(node, minute.timestamp() / 60)),
                    Value::Dynamic(json!({"hostName": node, "container.azm.ms/clusterName": self.cluster.rsplit('/').next()})),
                    s(self.cluster.clone()),
                ]);
            }
        }
        Table {
            name: "InsightsMetrics".into(),
            columns,
            rows,
        }
    }

    fn table_kube_pods(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("TimeGenerated", Ty::Datetime),
            col("Computer", Ty::String),
            col("ClusterName", Ty::String),
            col("Namespace", Ty::String),
            col("Name", Ty::String),
            col("PodStatus", Ty::String),
            col("ControllerName", Ty::String),
            col("ContainerName", Ty::String),
            col("ContainerRestartCount", Ty::Int),
            col("_ResourceId", Ty::String),
        ];
        let cluster_name = self
            .cluster
            .rsplit('/')
            .next()
            .unwrap_or_default()
            .to_string();
        let mut rows = Vec::new();
        for minute in minutes(range, self.now).filter(|m| m.timestamp() % 300 == 0) {
            for i in 0..self.replicas {
                rows.push(vec![
                    Value::Datetime(minute),
                    s(NODES[i as usize % 3]),
                    s(cluster_name.clone()),
                    s("default"),
                    s(format!("ml-inference-7d9f8c6b5-{i}")),
                    s("Running"),
                    s("ml-inference-7d9f8c6b5"),
                    s("inference"),
                    Value::Long(0),
                    s(self.cluster.clone()),
                ]);
            }
        }
        Table {
            name: "KubePodInventory".into(),
            columns,
            rows,
        }
    }

    fn table_activity(&self, range: &TimeRange) -> Table {
        let columns = vec![
            col("TimeGenerated", Ty::Datetime),
            col("OperationNameValue", Ty::String),
            col("ActivityStatusValue", Ty::String),
            col("CategoryValue", Ty::String),
            col("Level", Ty::String),
            col("Caller", Ty::String),
            col("ResourceGroup", Ty::String),
            col("SubscriptionId", Ty::String),
            col("_ResourceId", Ty::String),
        ];
        let rows = self
            .activity
            .iter()
            .filter(|a| range.contains(a.at))
            .map(|a| {
                vec![
                    Value::Datetime(a.at),
                    s(a.operation.clone()),
                    s("Success"),
                    s("Administrative"),
                    s("Informational"),
                    s("mlops-console"),
                    s(self.resource_group.clone()),
                    s(self.subscription.clone()),
                    s(a.resource.clone()),
                ]
            })
            .collect();
        Table {
            name: "AzureActivity".into(),
            columns,
            rows,
        }
    }
}

/// `MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/ONLINEENDPOINTS/WRITE` for a resource id.
fn operation_of(id: &str) -> String {
    let parts: Vec<&str> = id.split('/').collect();
    let Some(p) = parts
        .iter()
        .rposition(|s| s.eq_ignore_ascii_case("providers"))
    else {
        return "MICROSOFT.RESOURCES/WRITE".into();
    };
    let provider = parts.get(p + 1).copied().unwrap_or_default();
    let types: Vec<&str> = parts[p + 2..].iter().step_by(2).copied().collect();
    format!("{provider}/{}/WRITE", types.join("/")).to_ascii_uppercase()
}

const APP_TABLES: [&str; 4] = ["requests", "dependencies", "exceptions", "customMetrics"];
const LOG_TABLES: [&str; 6] = [
    "ContainerLog",
    "AzureDiagnostics",
    "Perf",
    "InsightsMetrics",
    "KubePodInventory",
    "AzureActivity",
];

impl Catalog for Telemetry {
    fn table(&self, name: &str, range: &TimeRange) -> Option<Table> {
        match (self.product, name) {
            (Product::AppInsights, "requests") => Some(self.table_requests(range)),
            (Product::AppInsights, "dependencies") => Some(self.table_dependencies(range)),
            (Product::AppInsights, "exceptions") => Some(self.table_exceptions(range)),
            (Product::AppInsights, "customMetrics") => Some(self.table_custom_metrics(range)),
            (Product::LogAnalytics, "ContainerLog") => Some(self.table_container_log(range)),
            (Product::LogAnalytics, "AzureDiagnostics") => {
                Some(self.table_azure_diagnostics(range))
            }
            (Product::LogAnalytics, "Perf") => Some(self.table_perf(range)),
            (Product::LogAnalytics, "InsightsMetrics") => Some(self.table_insights_metrics(range)),
            (Product::LogAnalytics, "KubePodInventory") => Some(self.table_kube_pods(range)),
            (Product::LogAnalytics, "AzureActivity") => Some(self.table_activity(range)),
            _ => None,
        }
    }

    fn table_names(&self) -> Vec<String> {
        match self.product {
            Product::AppInsights => APP_TABLES.map(String::from).to_vec(),
            Product::LogAnalytics => LOG_TABLES.map(String::from).to_vec(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::emulator::kql;

    fn at(s: &str) -> DateTime<Utc> {
        s.parse().unwrap()
    }

    fn split(pairs: &[(&str, i64)]) -> BTreeMap<String, i64> {
        pairs.iter().map(|(k, v)| (k.to_string(), *v)).collect()
    }

    /// blue takes everything until 11:00, then half; green (unhealthy) exists from 10:00.
    fn telemetry(product: Product) -> Telemetry {
        let now = at("2026-12-04T12:00:00Z");
        Telemetry {
            product,
            now,
            endpoints: vec![Endpoint {
                name: "ml-endpoint-staging".into(),
                host: "ml-endpoint-staging.eastus.inference.ml.azure.com".into(),
                splits: vec![
                    (at("2026-12-04T09:00:00Z"), split(&[("blue", 100)])),
                    (at("2026-12-04T11:00:00Z"), split(&[("blue", 50), ("green", 50)])),
                ],
                deployments: vec![
                    Deployment { name: "blue".into(), model: "diabetes-classifier:1".into(), unhealthy: false, since: at("2026-12-04T08:00:00Z") },
                    Deployment { name: "green".into(), model: "diabetes-classifier:2".into(), unhealthy: true, since: at("2026-12-04T10:00:00Z") },
                ],
            }],
            replicas: 2,
            image: "acr.azurecr.io/inference:v1".into(),
            activity: vec![],
            cluster: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.ContainerService/managedClusters/aks".into(),
            workspace: "/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws".into(),
            subscription: "s".into(),
            resource_group: "rg".into(),
        }
    }

    fn run(t: &Telemetry, query: &str, timespan: &str) -> Vec<Vec<kql::Value>> {
        let range = kql::parse_timespan(timespan, t.now).unwrap();
        kql::run(query, t, t.now, &range, 100_000)
            .unwrap()
            .table
            .rows
    }

    fn real(v: &kql::Value) -> f64 {
        match v {
            kql::Value::Real(f) => *f,
            kql::Value::Long(n) => *n as f64,
            other => panic!("not a number: {other:?}"),
        }
    }

    #[test]
    fn requests_follow_the_traffic_split_and_an_unhealthy_deployment_shows() {
        let t = telemetry(Product::AppInsights);
        let before = run(&t, "requests | where timestamp < datetime(2026-12-04T11:00:00Z) and cloud_RoleName != 'ml-inference' | summarize count() by cloud_RoleName", "PT2H");
        assert_eq!(before.len(), 1, "only blue before the shift: {before:?}");
        assert_eq!(before[0][0], kql::Value::String("blue".into()));
        let after = run(&t, "requests | where timestamp >= datetime(2026-12-04T11:00:00Z) and cloud_RoleName != 'ml-inference' | summarize n = count(), p95 = percentile(duration, 95), errors = countif(success == false) by cloud_RoleName | order by cloud_RoleName asc", "PT2H");
        assert_eq!(after.len(), 2, "{after:?}");
        let (blue, green) = (&after[0], &after[1]);
        let (nb, ng) = (real(&blue[1]), real(&green[1]));
        assert!(
            (nb - ng).abs() / (nb + ng) < 0.2,
            "an even split: {nb} vs {ng}"
        );
        assert!(
            (nb + ng) > 60.0 * 10.0,
            "about 12 a minute for an hour: {}",
            nb + ng
        );
        assert!(
            real(&green[2]) > 2.0 * real(&blue[2]),
            "green is slower: {after:?}"
        );
        assert!(
            real(&green[3]) > real(&blue[3]) + 10.0,
            "and fails more: {after:?}"
        );
    }

    #[test]
    fn the_same_window_always_holds_the_same_rows() {
        let t = telemetry(Product::AppInsights);
        let q = "requests | where timestamp > ago(30m) | project timestamp, id, duration, cloud_RoleName";
        assert_eq!(run(&t, q, "PT1H"), run(&t, q, "PT1H"));
        let exceptions = run(&t, "exceptions | summarize count()", "PT1H");
        let failures = run(&t, "requests | summarize countif(success == false)", "PT1H");
        assert_eq!(exceptions, failures, "one exception per failed request");
    }

    #[test]
    fn node_cpu_stays_under_the_underutilization_threshold_for_six_hours() {
        let t = telemetry(Product::LogAnalytics);
        let rows = run(&t, "Perf | where ObjectName == 'K8SNode' and CounterName == 'cpuUsagePercentage' | summarize AggregatedValue = avg(CounterValue), peak = max(CounterValue) by Computer", "PT6H");
        assert_eq!(rows.len(), 3, "three nodes");
        for r in rows {
            assert!(real(&r[1]) < 20.0 && real(&r[2]) < 20.0, "{r:?}");
        }
        let logs = run(
            &t,
            "ContainerLog | where TimeGenerated > ago(1h) | count",
            "PT1H",
        );
        assert!(real(&logs[0][0]) > 100.0, "{logs:?}");
        let diag = run(&t, "AzureDiagnostics | where Category == 'ModelDataCollectionEvent' | summarize dcount(deployment_s)", "PT1H");
        assert_eq!(
            real(&diag[0][0]),
            3.0,
            "blue, green and the AKS service collect data"
        );
    }

    #[test]
    fn each_product_has_its_own_tables() {
        let app = telemetry(Product::AppInsights);
        let logs = telemetry(Product::LogAnalytics);
        let range = kql::parse_timespan("PT1H", app.now).unwrap();
        for name in APP_TABLES {
            assert!(
                app.table(name, &range).is_some() && logs.table(name, &range).is_none(),
                "{name}"
            );
        }
        for name in LOG_TABLES {
            assert!(
                logs.table(name, &range).is_some() && app.table(name, &range).is_none(),
                "{name}"
            );
        }
        let err = kql::run("Perf | take 1", &app, app.now, &range, 10).unwrap_err();
        assert_eq!(err.code, kql::UNRESOLVED);
        assert_eq!(operation_of("/subscriptions/s/resourceGroups/rg/providers/Microsoft.MachineLearningServices/workspaces/ws/onlineEndpoints/e"),
            "MICROSOFT.MACHINELEARNINGSERVICES/WORKSPACES/ONLINEENDPOINTS/WRITE");
    }
}

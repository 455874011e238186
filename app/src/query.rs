//! Observe: KQL queries against App Insights and Log Analytics — what is asked, what comes back, the saved
//! queries every team starts with, and how a result becomes a chart or a CSV file.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Where a query runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "kebab-case")]
pub enum Source {
    AppInsights,
    LogAnalytics,
}

impl Source {
    pub const ALL: [Source; 2] = [Source::AppInsights, Source::LogAnalytics];

    pub fn as_str(self) -> &'static str {
        match self {
            Source::AppInsights => "app-insights",
            Source::LogAnalytics => "log-analytics",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Source::AppInsights => "App Insights",
            Source::LogAnalytics => "Log Analytics",
        }
    }

    pub fn parse(s: &str) -> Option<Source> {
        Source::ALL.into_iter().find(|x| x.as_str() == s)
    }
}

/// The time ranges offered (ISO 8601 durations, as the query APIs take them).
pub const TIMESPANS: [(&str, &str); 6] = [
    ("PT15M", "Last 15 minutes"),
    ("PT1H", "Last hour"),
    ("PT6H", "Last 6 hours"),
    ("PT12H", "Last 12 hours"),
    ("P1D", "Last 24 hours"),
    ("P7D", "Last 7 days"),
];

pub fn timespan_ok(t: &str) -> bool {
    TIMESPANS.iter().any(|(v, _)| *v == t)
}

/// The longest query text accepted.
pub const MAX_QUERY_LEN: usize = 10_000;

/// `POST /api/v1/queries`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryRequest {
    pub source: Source,
    pub query: String,
    #[serde(default = "one_hour")]
    pub timespan: String,
}

fn one_hour() -> String {
    "PT1H".into()
}

impl QueryRequest {
    /// Problems found before anything is sent.
    pub fn problems(&self) -> Vec<String> {
        let mut p = Vec::new();
        if self.query.trim().is_empty() {
            p.push("query: write a KQL query".into());
        }
        if self.query.len() > MAX_QUERY_LEN {
            p.push(format!("query: at most {MAX_QUERY_LEN} characters"));
        }
        if !timespan_ok(&self.timespan) {
            p.push(format!(
                "timespan: '{}' is not one of {}",
                self.timespan,
                TIMESPANS.map(|(v, _)| v).join(", ")
            ));
        }
        p
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct ResultColumn {
    pub name: String,
    /// Azure's column type: bool, datetime, dynamic, int, long, real, string, guid, decimal, timespan.
    #[serde(rename = "type")]
    pub ty: String,
}

impl ResultColumn {
    pub fn numeric(&self) -> bool {
        matches!(self.ty.as_str(), "int" | "long" | "real" | "decimal")
    }
}

/// A query's answer as the console shows it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct QueryResult {
    pub columns: Vec<ResultColumn>,
    pub rows: Vec<Vec<Value>>,
    /// Rows the service returned (before the console's display cap).
    pub row_count: usize,
    /// The service's own words when it returned partial results (row or size limits, timeouts).
    pub partial: Option<String>,
    /// The console kept only the first `row_cap` rows.
    pub capped: bool,
    pub elapsed_ms: u64,
    /// The `render` operator's chart kind, when the query asks for one.
    pub render: Option<String>,
}

/// A saved query: the built-in ones (`builtin`), and those users saved.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SavedQuery {
    pub id: String,
    pub name: String,
    pub source: Source,
    pub query: String,
    pub timespan: String,
    pub description: String,
    pub builtin: bool,
    pub owner: Option<String>,
}

/// `POST /api/v1/queries/saved`.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewSavedQuery {
    pub name: String,
    pub source: Source,
    pub query: String,
    #[serde(default = "one_hour")]
    pub timespan: String,
    #[serde(default)]
    pub description: String,
}

impl NewSavedQuery {
    pub fn problems(&self) -> Vec<String> {
        let mut p = QueryRequest {
            source: self.source,
            query: self.query.clone(),
            timespan: self.timespan.clone(),
        }
        .problems();
        if self.name.trim().is_empty() || self.name.len() > 100 {
            p.push("name: 1–100 characters".into());
        }
        p
    }
}

/// A query a user ran, newest first on the page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct RecentQuery {
    pub source: Source,
    pub query: String,
    pub timespan: String,
    pub ran_at: chrono::DateTime<chrono::Utc>,
    pub elapsed_ms: i64,
    pub rows: Option<i64>,
    pub error: Option<String>,
}

fn builtin(
    id: &str,
    name: &str,
    source: Source,
    timespan: &str,
    description: &str,
    query: &str,
) -> SavedQuery {
    SavedQuery {
        id: id.into(),
        name: name.into(),
        source,
        query: query.into(),
        timespan: timespan.into(),
        description: description.into(),
        builtin: true,
        owner: None,
    }
}

/// The queries every team starts with: the seed's three, and what a rollout decision needs.
pub fn builtin_queries() -> Vec<SavedQuery> {
    use Source::*;
    vec![
        builtin("score-latency", "Average scoring latency", AppInsights, "P1D",
            "The seed's App Insights query (az monitor app-insights query).",
            "requests\n| where name contains 'score'\n| summarize avg(duration)"),
        builtin("requests-by-deployment", "Requests per deployment", AppInsights, "PT6H",
            "Scoring requests every 5 minutes, one line per deployment.",
            "requests\n| where name contains 'score'\n| summarize requests = count() by cloud_RoleName, bin(timestamp, 5m)\n| order by timestamp asc\n| render timechart"),
        builtin("latency-by-deployment", "Latency p50/p95 per deployment", AppInsights, "PT6H",
            "Scoring latency percentiles every 15 minutes, per deployment.",
            "requests\n| where name contains 'score'\n| summarize p50 = percentile(duration, 50), p95 = percentile(duration, 95) by cloud_RoleName, bin(timestamp, 15m)\n| order by timestamp asc\n| render timechart"),
        builtin("error-rate-by-deployment", "Error rate per deployment", AppInsights, "PT6H",
            "Failed scoring requests as a percentage, every 15 minutes, per deployment.",
            "requests\n| where name contains 'score'\n| summarize error_rate = round(100.0 * countif(success == false) / count(), 2) by cloud_RoleName, bin(timestamp, 15m)\n| order by timestamp asc\n| render timechart"),
        builtin("dependency-failures", "Dependency failures", AppInsights, "P1D",
            "Calls to storage, Key Vault and the registry that failed, by target.",
            "dependencies\n| where success == false\n| summarize failures = count() by target, type, resultCode\n| order by failures desc"),
        builtin("exceptions-by-type", "Exceptions by type", AppInsights, "P1D",
            "Exceptions thrown by the scoring code, most frequent first.",
            "exceptions\n| summarize count() by type, cloud_RoleName\n| order by count_ desc\n| render barchart"),
        builtin("model-data-collection", "Model data collection events", LogAnalytics, "P1D",
            "The seed's Log Analytics query for deployment logs.",
            "AzureDiagnostics\n| where Category == 'ModelDataCollectionEvent'"),
        builtin("container-logs", "Container logs, last hour", LogAnalytics, "PT1H",
            "The seed's container log query.",
            "ContainerLog\n| where TimeGenerated > ago(1h)\n| project TimeGenerated, Computer, LogEntrySource, LogEntry\n| order by TimeGenerated desc"),
        builtin("cpu-by-node", "CPU by node over 6 hours", LogAnalytics, "PT6H",
            "AKS node CPU every 15 minutes; the underutilization alert fires below 20% for 6 hours.",
            "Perf\n| where ObjectName == 'K8SNode' and CounterName == 'cpuUsagePercentage'\n| summarize cpu = avg(CounterValue) by Computer, bin(TimeGenerated, 15m)\n| order by TimeGenerated asc\n| render timechart"),
    ]
}

/// How a result can be drawn.
#[derive(Clone, Debug, PartialEq)]
pub enum ChartShape {
    /// A datetime column on x; one line per numeric column, or per value of a string column.
    Time {
        x: usize,
        series: Option<usize>,
        values: Vec<usize>,
    },
    /// A string column as categories, numeric columns as bars.
    Bars { label: usize, values: Vec<usize> },
}

/// The chart a result suggests: time series when there is a datetime and a number, bars when a string
/// labels a number and there are not too many rows; `render` picks between them when both fit.
pub fn chart_shape(result: &QueryResult) -> Option<ChartShape> {
    let cols = &result.columns;
    let values: Vec<usize> = (0..cols.len()).filter(|&i| cols[i].numeric()).collect();
    if values.is_empty() || result.rows.is_empty() {
        return None;
    }
    let time = cols.iter().position(|c| c.ty == "datetime");
    let label = cols.iter().position(|c| c.ty == "string");
    let wants_bars = result
        .render
        .as_deref()
        .is_some_and(|r| r.contains("bar") || r.contains("column") || r.contains("pie"));
    match (time, label) {
        (Some(x), series) if !wants_bars => Some(ChartShape::Time { x, series, values }),
        (_, Some(label)) if result.rows.len() <= 50 => Some(ChartShape::Bars { label, values }),
        (Some(x), series) => Some(ChartShape::Time { x, series, values }),
        _ => None,
    }
}

/// A cell as text: strings bare, numbers and the rest as JSON.
pub fn cell_text(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        Value::Number(n) => match n.as_f64() {
            Some(f) if n.is_f64() => {
                let s = format!("{f:.4}");
                s.trim_end_matches('0').trim_end_matches('.').to_string()
            }
            _ => n.to_string(),
        },
        other => other.to_string(),
    }
}

/// The result as RFC 4180 CSV (header row, quoted where needed).
pub fn to_csv(result: &QueryResult) -> String {
    fn field(s: &str) -> String {
        if s.contains([',', '"', '\n', '\r']) {
            format!("\"{}\"", s.replace('"', "\"\""))
        } else {
            s.to_string()
        }
    }
    let mut out = result
        .columns
        .iter()
        .map(|c| field(&c.name))
        .collect::<Vec<_>>()
        .join(",");
    out.push_str("\r\n");
    for row in &result.rows {
        out.push_str(
            &row.iter()
                .map(|v| field(&cell_text(v)))
                .collect::<Vec<_>>()
                .join(","),
        );
        out.push_str("\r\n");
    }
    out
}

/// A number from a cell: JSON numbers, and numbers sent as strings (App Insights sends longs that way).
pub fn number(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => s.parse().ok(),
        _ => None,
    }
}

/// Only the named columns of a result (in that order); unknown names are skipped.
pub fn project(result: &QueryResult, names: &[&str]) -> QueryResult {
    let idx: Vec<usize> = names
        .iter()
        .filter_map(|n| result.columns.iter().position(|c| c.name == *n))
        .collect();
    QueryResult {
        columns: idx.iter().map(|&i| result.columns[i].clone()).collect(),
        rows: result
            .rows
            .iter()
            .map(|r| {
                idx.iter()
                    .map(|&i| r.get(i).cloned().unwrap_or(Value::Null))
                    .collect()
            })
            .collect(),
        render: Some("timechart".into()),
        ..result.clone()
    }
}

/// Rollout health of one deployment over the last hour, for the endpoints page.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct DeploymentHealth {
    pub deployment: String,
    pub requests: i64,
    pub p95_ms: Option<f64>,
    pub error_rate: Option<f64>,
}

/// Health per deployment, and the five-minute series behind it.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EndpointHealth {
    pub endpoint: String,
    pub deployments: Vec<DeploymentHealth>,
    pub series: QueryResult,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn result(cols: &[(&str, &str)], rows: Vec<Vec<Value>>) -> QueryResult {
        QueryResult {
            columns: cols
                .iter()
                .map(|(n, t)| ResultColumn {
                    name: n.to_string(),
                    ty: t.to_string(),
                })
                .collect(),
            row_count: rows.len(),
            rows,
            partial: None,
            capped: false,
            elapsed_ms: 1,
            render: None,
        }
    }

    #[test]
    fn csv_quotes_what_needs_quoting() {
        let r = result(
            &[("name", "string"), ("n", "long")],
            vec![
                vec![json!("a,b"), json!(1)],
                vec![json!("say \"hi\""), json!(null)],
            ],
        );
        assert_eq!(to_csv(&r), "name,n\r\n\"a,b\",1\r\n\"say \"\"hi\"\"\",\r\n");
    }

    #[test]
    fn charts_follow_the_columns() {
        let ts = result(
            &[
                ("cloud_RoleName", "string"),
                ("timestamp", "datetime"),
                ("p95", "real"),
            ],
            vec![vec![
                json!("blue"),
                json!("2026-12-04T10:00:00Z"),
                json!(41.5),
            ]],
        );
        assert_eq!(
            chart_shape(&ts),
            Some(ChartShape::Time {
                x: 1,
                series: Some(0),
                values: vec![2]
            })
        );
        let mut bars = result(
            &[("type", "string"), ("count_", "long")],
            vec![vec![json!("E"), json!("3")]],
        );
        assert_eq!(
            chart_shape(&bars),
            Some(ChartShape::Bars {
                label: 0,
                values: vec![1]
            })
        );
        bars.columns[1].ty = "string".into();
        assert_eq!(chart_shape(&bars), None, "nothing numeric, nothing to draw");
    }

    #[test]
    fn requests_are_checked_before_sending() {
        let ok = QueryRequest {
            source: Source::AppInsights,
            query: "requests".into(),
            timespan: "PT1H".into(),
        };
        assert!(ok.problems().is_empty());
        let bad = QueryRequest {
            query: " ".into(),
            timespan: "PT2H".into(),
            ..ok
        };
        assert_eq!(bad.problems().len(), 2);
        assert!(builtin_queries().iter().all(|q| timespan_ok(&q.timespan)));
    }
}

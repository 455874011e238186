//! Observe: KQL queries against the estate's App Insights and Log Analytics, with the limits a shared
//! console needs (a timeout, at most five queries in flight per user, a row cap), saved queries and each
//! user's recent ones in Postgres, and the rollout health the endpoints page shows.

use crate::azure::error::AzureError;
use crate::azure::monitor::Api;
use crate::azure::wire::LogQueryResponse;
use crate::azure::AzureClient;
use app::auth::Role;
use app::error::AppError;
use app::model::Estate;
use app::query::{
    builtin_queries, number, DeploymentHealth, EndpointHealth, NewSavedQuery, QueryRequest,
    QueryResult, RecentQuery, ResultColumn, SavedQuery, Source,
};
use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::sync::Semaphore;
use uuid::Uuid;

/// Queries one user may have in flight, as the Log Analytics API allows.
pub const PER_USER: usize = 5;

pub struct Observe {
    db: PgPool,
    client: Arc<AzureClient>,
    estate: Estate,
    /// The most rows a result keeps for display and download.
    pub row_cap: usize,
    /// How long the service may take (`Prefer: wait`).
    pub timeout: Duration,
    slots: Mutex<HashMap<String, Arc<Semaphore>>>,
}

fn internal(e: sqlx::Error) -> AppError {
    tracing::error!(error = %e, "observe: database error");
    AppError::Internal
}

/// Azure's answer to a query, as the user's error: a bad query is theirs to fix (400), a timeout or an
/// unreachable service is not a console failure either.
fn query_error(e: AzureError, timeout: Duration) -> AppError {
    match e.status() {
        Some(400) => AppError::BadRequest(match &e {
            AzureError::Api { message, .. } => message.clone(),
            other => other.to_string(),
        }),
        Some(504) => AppError::Unavailable(format!(
            "The query did not finish within {} s; narrow the time range or summarize more.",
            timeout.as_secs()
        )),
        Some(429) => AppError::TooManyRequests(format!("Azure is throttling queries: {e}")),
        Some(404) => AppError::NotFound(e.to_string()),
        _ => AppError::Unavailable(e.to_string()),
    }
}

/// The service's cells in the column's type: App Insights sends longs as strings.
fn typed(columns: &[ResultColumn], rows: Vec<Vec<Value>>) -> Vec<Vec<Value>> {
    rows.into_iter()
        .map(|row| {
            row.into_iter()
                .zip(columns)
                .map(|(v, c)| match (&v, c.numeric()) {
                    (Value::String(s), true) => s
                        .parse::<i64>()
                        .map(Value::from)
                        .or_else(|_| s.parse::<f64>().map(Value::from))
                        .unwrap_or(v),
                    _ => v,
                })
                .collect()
        })
        .collect()
}

impl Observe {
    pub fn new(db: PgPool, client: Arc<AzureClient>, estate: Estate) -> Observe {
        Observe {
            db,
            client,
            estate,
            row_cap: 5_000,
            timeout: Duration::from_secs(60),
            slots: Mutex::new(HashMap::new()),
        }
    }

    fn slot(&self, user: &str) -> Arc<Semaphore> {
        let mut slots = self.slots.lock().expect("query slots");
        slots
            .entry(user.to_string())
            .or_insert_with(|| Arc::new(Semaphore::new(PER_USER)))
            .clone()
    }

    async fn send(&self, req: &QueryRequest) -> Result<LogQueryResponse, AzureError> {
        let (api, id) = match req.source {
            Source::AppInsights => (Api::AppInsights, &self.estate.app_insights_app_id),
            Source::LogAnalytics => (Api::LogAnalytics, &self.estate.log_analytics_workspace_id),
        };
        self.client
            .log_query(api, id, &req.query, &req.timespan, self.timeout)
            .await
    }

    /// Runs a query for `user`, checked first, recorded after (with its outcome). Viewers run saved
    /// queries only; free-form KQL needs the operator role.
    pub async fn run(
        &self,
        user: &str,
        role: Role,
        req: &QueryRequest,
    ) -> Result<QueryResult, AppError> {
        let problems = req.problems();
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems.join("; ")));
        }
        if role < Role::Operator {
            let saved = self.saved(user).await?;
            let same = |a: &str, b: &str| a.split_whitespace().eq(b.split_whitespace());
            if !saved
                .iter()
                .any(|q| q.source == req.source && same(&q.query, &req.query))
            {
                return Err(AppError::Forbidden(
                    "Viewers run saved queries; free-form KQL needs the operator role.".into(),
                ));
            }
        }
        let slot = self.slot(user);
        let Ok(_permit) = slot.try_acquire() else {
            return Err(AppError::TooManyRequests(format!(
                "At most {PER_USER} queries can run at once; wait for one to finish."
            )));
        };
        let started = Instant::now();
        let answer = self.send(req).await;
        let elapsed = started.elapsed().as_millis() as u64;
        let result = answer
            .map_err(|e| query_error(e, self.timeout))
            .and_then(|r| self.shape(r, elapsed));
        let (rows, error) = match &result {
            Ok(r) => (Some(r.row_count as i64), None),
            Err(e) => (None, Some(e.to_string())),
        };
        sqlx::query!(
            "insert into query_history (requested_by, source, query, timespan, elapsed_ms, row_count, error)
             values ($1, $2, $3, $4, $5, $6, $7)",
            user,
            req.source.as_str(),
            req.query,
            req.timespan,
            elapsed as i64,
            rows,
            error
        )
        .execute(&self.db)
        .await
        .map_err(internal)?;
        result
    }

    fn shape(&self, r: LogQueryResponse, elapsed_ms: u64) -> Result<QueryResult, AppError> {
        let Some(table) = r.tables.into_iter().next() else {
            return Ok(QueryResult {
                columns: Vec::new(),
                rows: Vec::new(),
                row_count: 0,
                partial: None,
                capped: false,
                elapsed_ms,
                render: None,
            });
        };
        let columns: Vec<ResultColumn> = table
            .columns
            .into_iter()
            .map(|c| ResultColumn {
                name: c.name,
                ty: c.ty,
            })
            .collect();
        let row_count = table.rows.len();
        let mut rows = table.rows;
        let capped = rows.len() > self.row_cap;
        rows.truncate(self.row_cap);
        let partial = r.error.map(|e| {
            let detail = e
                .details
                .first()
                .map(|d| d.message.clone())
                .unwrap_or_default();
            format!("{} {detail}", e.message).trim().to_string()
        });
        Ok(QueryResult {
            rows: typed(&columns, rows),
            columns,
            row_count,
            partial,
            capped,
            elapsed_ms,
            render: r
                .render
                .and_then(|v| v["visualization"].as_str().map(str::to_string)),
        })
    }

    /// The built-in queries, then `user`'s own.
    pub async fn saved(&self, user: &str) -> Result<Vec<SavedQuery>, AppError> {
        let rows = sqlx::query!(
            "select id, name, source, query, timespan, description, owner from saved_queries
             where owner = $1 order by name",
            user
        )
        .fetch_all(&self.db)
        .await
        .map_err(internal)?;
        let mut all = builtin_queries();
        all.extend(rows.into_iter().filter_map(|r| {
            Some(SavedQuery {
                id: r.id.to_string(),
                name: r.name,
                source: Source::parse(&r.source)?,
                query: r.query,
                timespan: r.timespan,
                description: r.description,
                builtin: false,
                owner: Some(r.owner),
            })
        }));
        Ok(all)
    }

    /// Saves a query under `name` for `user`; a name already used is a conflict, not an overwrite.
    pub async fn save(&self, user: &str, q: &NewSavedQuery) -> Result<SavedQuery, AppError> {
        let problems = q.problems();
        if !problems.is_empty() {
            return Err(AppError::Invalid(problems.join("; ")));
        }
        let id = Uuid::new_v4();
        let name = q.name.trim();
        let inserted = sqlx::query!(
            "insert into saved_queries (id, name, source, query, timespan, description, owner)
             values ($1, $2, $3, $4, $5, $6, $7) on conflict (owner, name) do nothing",
            id,
            name,
            q.source.as_str(),
            q.query,
            q.timespan,
            q.description,
            user
        )
        .execute(&self.db)
        .await
        .map_err(internal)?
        .rows_affected();
        if inserted == 0 {
            return Err(AppError::Conflict(format!(
                "You already have a saved query named '{name}'."
            )));
        }
        Ok(SavedQuery {
            id: id.to_string(),
            name: name.to_string(),
            source: q.source,
            query: q.query.clone(),
            timespan: q.timespan.clone(),
            description: q.description.clone(),
            builtin: false,
            owner: Some(user.to_string()),
        })
    }

    /// `user`'s latest queries, newest first.
    pub async fn recent(&self, user: &str, limit: i64) -> Result<Vec<RecentQuery>, AppError> {
        let rows = sqlx::query!(
            r#"select source, query, timespan, ran_at as "ran_at: DateTime<Utc>", elapsed_ms, row_count, error
               from query_history where requested_by = $1 order by ran_at desc, id desc limit $2"#,
            user,
            limit.clamp(1, 100)
        )
        .fetch_all(&self.db)
        .await
        .map_err(internal)?;
        Ok(rows
            .into_iter()
            .filter_map(|r| {
                Some(RecentQuery {
                    source: Source::parse(&r.source)?,
                    query: r.query,
                    timespan: r.timespan,
                    ran_at: r.ran_at,
                    elapsed_ms: r.elapsed_ms,
                    rows: r.row_count,
                    error: r.error,
                })
            })
            .collect())
    }

    /// Latency p95 and error rate per deployment of `endpoint` over the last hour, and every 5 minutes.
    pub async fn endpoint_health(&self, endpoint: &str) -> Result<EndpointHealth, AppError> {
        if !app::model::azure_name_ok(endpoint) {
            return Err(AppError::Invalid(format!(
                "'{endpoint}' is not an endpoint name"
            )));
        }
        let scope = format!(
            "requests\n| where timestamp > ago(1h) and url startswith 'https://{endpoint}.'"
        );
        let totals = QueryRequest {
            source: Source::AppInsights,
            query: format!("{scope}\n| summarize requests = count(), p95 = percentile(duration, 95), error_rate = round(100.0 * countif(success == false) / count(), 2) by cloud_RoleName\n| order by cloud_RoleName asc"),
            timespan: "PT1H".into(),
        };
        let series = QueryRequest {
            source: Source::AppInsights,
            query: format!("{scope}\n| summarize p95 = percentile(duration, 95), error_rate = round(100.0 * countif(success == false) / count(), 2) by cloud_RoleName, bin(timestamp, 5m)\n| order by timestamp asc"),
            timespan: "PT1H".into(),
        };
        let (totals, series) = tokio::join!(self.send(&totals), self.send(&series));
        let totals = self.shape(totals.map_err(|e| query_error(e, self.timeout))?, 0)?;
        let series = self.shape(series.map_err(|e| query_error(e, self.timeout))?, 0)?;
        let deployments = totals
            .rows
            .iter()
            .map(|r| DeploymentHealth {
                deployment: r
                    .first()
                    .and_then(Value::as_str)
                    .unwrap_or_default()
                    .to_string(),
                requests: r.get(1).and_then(number).unwrap_or(0.0) as i64,
                p95_ms: r.get(2).and_then(number),
                error_rate: r.get(3).and_then(number),
            })
            .collect();
        Ok(EndpointHealth {
            endpoint: endpoint.to_string(),
            deployments,
            series,
        })
    }
}

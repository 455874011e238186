//! Runs: every action, its transitions and log lines, the tracker's leases, and keyset-paged lists.

use super::to_time;
use chrono::{DateTime, Utc};
use sqlx::PgExecutor;
use uuid::Uuid;

#[derive(Clone, Debug)]
pub struct RunRow {
    pub id: Uuid,
    pub kind: String,
    pub target: String,
    pub parameters: serde_json::Value,
    pub requested_by: String,
    pub reason: Option<String>,
    pub status: String,
    pub azure_status: Option<String>,
    pub azure_id: Option<String>,
    pub parent_id: Option<Uuid>,
    pub error: Option<String>,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

pub struct NewRun<'a> {
    pub kind: &'a str,
    pub target: &'a str,
    pub parameters: &'a serde_json::Value,
    pub requested_by: &'a str,
    pub reason: Option<&'a str>,
    pub parent_id: Option<Uuid>,
    pub idempotency_key: Option<&'a str>,
}

/// Inserts a run in `submitting`, or finds the run an earlier request with the same key made.
/// Returns the id and whether it is new.
pub async fn insert_or_find(
    db: impl PgExecutor<'_> + Copy,
    run: &NewRun<'_>,
) -> Result<(Uuid, bool), sqlx::Error> {
    let id = Uuid::new_v4();
    let inserted = sqlx::query_scalar!(
        // Not due for the tracker until the submitter has had its chance; after a crash, the tracker resumes it.
        r#"insert into runs (id, kind, target, parameters, requested_by, reason, status, parent_id, idempotency_key, next_poll_at)
           values ($1, $2, $3, $4, $5, $6, 'submitting', $7, $8, now() + interval '30 seconds')
           on conflict (kind, idempotency_key) where idempotency_key is not null do nothing
           returning id"#,
        id,
        run.kind,
        run.target,
        run.parameters,
        run.requested_by,
        run.reason,
        run.parent_id,
        run.idempotency_key
    )
    .fetch_optional(db)
    .await?;
    if let Some(id) = inserted {
        return Ok((id, true));
    }
    let existing = sqlx::query_scalar!(
        "select id from runs where kind = $1 and idempotency_key = $2",
        run.kind,
        run.idempotency_key
    )
    .fetch_one(db)
    .await?;
    Ok((existing, false))
}

/// Records a transition once (a second replica recording the same one is a no-op) and moves the run.
pub async fn transition(
    db: impl PgExecutor<'_> + Copy,
    id: Uuid,
    status: &str,
    azure_status: Option<&str>,
    note: Option<&str>,
) -> Result<bool, sqlx::Error> {
    let recorded = sqlx::query!(
        r#"insert into run_transitions (run_id, status, azure_status, note) values ($1, $2, $3, $4)
           on conflict (run_id, status, coalesce(azure_status, '')) do nothing"#,
        id,
        status,
        azure_status,
        note
    )
    .execute(db)
    .await?
    .rows_affected()
        == 1;
    let terminal = matches!(status, "succeeded" | "failed" | "canceled");
    sqlx::query!(
        r#"update runs set status = $2, azure_status = coalesce($3, azure_status), updated_at = now(),
               finished_at = case when $4 then coalesce(finished_at, now()) else finished_at end
           where id = $1"#,
        id,
        status,
        azure_status,
        terminal
    )
    .execute(db)
    .await?;
    Ok(recorded)
}

pub async fn log(db: impl PgExecutor<'_>, id: Uuid, line: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "insert into run_logs (run_id, line) values ($1, $2)",
        id,
        line
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Appends the lines of an Azure-side log that are new since the last call: `text` is the whole log so
/// far, `counter` the outputs field that remembers how many lines were taken. One transaction, so a
/// crash never repeats or loses a line.
pub async fn append_stream(
    db: &sqlx::PgPool,
    id: Uuid,
    counter: &str,
    prefix: &str,
    text: &str,
) -> Result<(), sqlx::Error> {
    let mut tx = db.begin().await?;
    let seen = sqlx::query_scalar!(
        "select coalesce((outputs ->> $2)::bigint, 0) from runs where id = $1 for update",
        id,
        counter
    )
    .fetch_optional(&mut *tx)
    .await?
    .flatten()
    .unwrap_or(0)
    .max(0) as usize;
    let lines: Vec<String> = text
        .lines()
        .skip(seen)
        .map(|l| format!("{prefix}{l}"))
        .collect();
    if lines.is_empty() {
        return Ok(());
    }
    sqlx::query!(
        "insert into run_logs (run_id, line) select $1, l from unnest($2::text[]) with ordinality as t(l, n) order by n",
        id,
        &lines
    )
    .execute(&mut *tx)
    .await?;
    sqlx::query!(
        "update runs set outputs = outputs || jsonb_build_object($2::text, $3::bigint), updated_at = now() where id = $1",
        id,
        counter,
        (seen + lines.len()) as i64
    )
    .execute(&mut *tx)
    .await?;
    tx.commit().await
}

/// Sets the fields of `patch` in the run's outputs, keeping the others.
pub async fn merge_outputs(
    db: impl PgExecutor<'_>,
    id: Uuid,
    patch: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update runs set outputs = outputs || $2, updated_at = now() where id = $1",
        id,
        patch
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn set_azure_id(
    db: impl PgExecutor<'_>,
    id: Uuid,
    azure_id: &str,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update runs set azure_id = $2, updated_at = now() where id = $1",
        id,
        azure_id
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Hands a run to the tracker now.
pub async fn poll_now(db: impl PgExecutor<'_>, id: Uuid) -> Result<(), sqlx::Error> {
    sqlx::query!("update runs set next_poll_at = now() where id = $1", id)
        .execute(db)
        .await?;
    Ok(())
}

pub async fn set_outputs(
    db: impl PgExecutor<'_>,
    id: Uuid,
    outputs: &serde_json::Value,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update runs set outputs = $2, updated_at = now() where id = $1",
        id,
        outputs
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn outputs(db: impl PgExecutor<'_>, id: Uuid) -> Result<serde_json::Value, sqlx::Error> {
    sqlx::query_scalar!("select outputs from runs where id = $1", id)
        .fetch_one(db)
        .await
}

pub async fn set_error(db: impl PgExecutor<'_>, id: Uuid, error: &str) -> Result<(), sqlx::Error> {
    sqlx::query!(
        "update runs set error = $2, updated_at = now() where id = $1",
        id,
        error
    )
    .execute(db)
    .await?;
    Ok(())
}

/// Leases up to `limit` runs that are due, for `lease` seconds, skipping rows other replicas hold.
pub async fn claim_due(
    db: impl PgExecutor<'_>,
    owner: &str,
    limit: i64,
    lease_secs: f64,
) -> Result<Vec<RunRow>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"update runs set lease_owner = $1, lease_until = now() + make_interval(secs => $3)
           where id in (
               select id from runs
               where finished_at is null and next_poll_at <= now() and (lease_until is null or lease_until < now())
               order by next_poll_at
               limit $2
               for update skip locked)
           returning id, kind, target, parameters, requested_by, reason, status, azure_status, azure_id, parent_id, error,
                     created_at as "created_at: DateTime<Utc>", finished_at as "finished_at: DateTime<Utc>""#,
        owner,
        limit,
        lease_secs
    )
    .fetch_all(db)
    .await
}

/// Gives a run back to the queue, to be looked at again after `after_secs`; only by its lease holder.
pub async fn release(
    db: impl PgExecutor<'_>,
    id: Uuid,
    owner: &str,
    after_secs: f64,
) -> Result<(), sqlx::Error> {
    sqlx::query!(
        r#"update runs set lease_owner = null, lease_until = null, next_poll_at = now() + make_interval(secs => $3)
           where id = $1 and lease_owner = $2"#,
        id,
        owner,
        after_secs
    )
    .execute(db)
    .await?;
    Ok(())
}

pub async fn get(db: impl PgExecutor<'_>, id: Uuid) -> Result<Option<RunRow>, sqlx::Error> {
    sqlx::query_as!(
        RunRow,
        r#"select id, kind, target, parameters, requested_by, reason, status, azure_status, azure_id, parent_id, error,
                  created_at as "created_at: DateTime<Utc>", finished_at as "finished_at: DateTime<Utc>"
           from runs where id = $1"#,
        id
    )
    .fetch_optional(db)
    .await
}

pub struct TransitionRow {
    pub status: String,
    pub azure_status: Option<String>,
    pub at: DateTime<Utc>,
    pub note: Option<String>,
}

pub async fn transitions(
    db: impl PgExecutor<'_>,
    id: Uuid,
) -> Result<Vec<TransitionRow>, sqlx::Error> {
    sqlx::query_as!(
        TransitionRow,
        r#"select status, azure_status, at as "at: DateTime<Utc>", note from run_transitions
           where run_id = $1 order by at, id"#,
        id
    )
    .fetch_all(db)
    .await
}

pub struct LogRow {
    pub at: DateTime<Utc>,
    pub line: String,
}

pub async fn logs(
    db: impl PgExecutor<'_>,
    id: Uuid,
    limit: i64,
) -> Result<Vec<LogRow>, sqlx::Error> {
    sqlx::query_as!(
        LogRow,
        r#"select at as "at: DateTime<Utc>", line from run_logs where run_id = $1 order by id limit $2"#,
        id,
        limit
    )
    .fetch_all(db)
    .await
}

/// Filters for [`list`]; `None` means any.
#[derive(Default)]
pub struct ListFilter {
    pub kind: Option<String>,
    pub status: Option<String>,
    pub target: Option<String>,
    pub requested_by: Option<String>,
    pub since: Option<DateTime<Utc>>,
    pub until: Option<DateTime<Utc>>,
    /// Keyset: only runs older than this (created_at, id).
    pub before: Option<(DateTime<Utc>, Uuid)>,
}

/// A run as lists show it: no parameters, no logs.
pub struct ListRow {
    pub id: Uuid,
    pub kind: String,
    pub target: String,
    pub status: String,
    pub azure_status: Option<String>,
    pub requested_by: String,
    pub created_at: DateTime<Utc>,
    pub finished_at: Option<DateTime<Utc>>,
}

impl From<RunRow> for ListRow {
    fn from(r: RunRow) -> ListRow {
        ListRow {
            id: r.id,
            kind: r.kind,
            target: r.target,
            status: r.status,
            azure_status: r.azure_status,
            requested_by: r.requested_by,
            created_at: r.created_at,
            finished_at: r.finished_at,
        }
    }
}

/// Newest first, `limit` at a time, by keyset on (created_at, id).
pub async fn list(
    db: impl PgExecutor<'_>,
    f: &ListFilter,
    limit: i64,
) -> Result<Vec<ListRow>, sqlx::Error> {
    let target = f.target.as_ref().map(|t| {
        format!(
            "%{}%",
            t.replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        )
    });
    sqlx::query_as!(
        ListRow,
        r#"select id, kind, target, status, azure_status, requested_by,
                  created_at as "created_at: DateTime<Utc>", finished_at as "finished_at: DateTime<Utc>"
           from runs
           where ($1::text is null or kind = $1)
             and ($2::text is null or status = $2)
             and ($3::text is null or target ilike $3)
             and ($4::text is null or requested_by = $4)
             and ($5::timestamptz is null or created_at >= $5)
             and ($6::timestamptz is null or created_at < $6)
             and ($7::timestamptz is null or (created_at, id) < ($7, $8::uuid))
           order by created_at desc, id desc
           limit $9"#,
        f.kind,
        f.status,
        target,
        f.requested_by,
        f.since.map(to_time),
        f.until.map(to_time),
        f.before.map(|b| to_time(b.0)),
        f.before.map(|b| b.1),
        limit
    )
    .fetch_all(db)
    .await
}

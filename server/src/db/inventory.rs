//! Inventory snapshots: each successful refresh, kept so the last good one is served after a restart
//! or while Azure is not answering.

use chrono::{DateTime, Utc};
use sqlx::PgExecutor;

pub struct SnapshotRow {
    pub id: i64,
    pub fetched_at: DateTime<Utc>,
    pub body: serde_json::Value,
}

pub async fn insert(
    db: impl PgExecutor<'_>,
    source: &str,
    subscription_id: &str,
    resource_group: &str,
    fetched_at: DateTime<Utc>,
    body: &serde_json::Value,
) -> Result<i64, sqlx::Error> {
    sqlx::query_scalar!(
        r#"insert into inventory_snapshots (source, subscription_id, resource_group, fetched_at, body)
           values ($1, $2, $3, $4, $5)
           returning id"#,
        source,
        subscription_id,
        resource_group,
        super::to_time(fetched_at),
        body
    )
    .fetch_one(db)
    .await
}

pub async fn latest(
    db: impl PgExecutor<'_>,
    source: &str,
    subscription_id: &str,
    resource_group: &str,
) -> Result<Option<SnapshotRow>, sqlx::Error> {
    sqlx::query_as!(
        SnapshotRow,
        r#"select id, fetched_at as "fetched_at: DateTime<Utc>", body
           from inventory_snapshots
           where source = $1 and subscription_id = $2 and resource_group = $3
           order by fetched_at desc
           limit 1"#,
        source,
        subscription_id,
        resource_group
    )
    .fetch_optional(db)
    .await
}

/// Keeps the newest `keep` snapshots of an estate; refreshes every few minutes would otherwise grow forever.
pub async fn prune(
    db: impl PgExecutor<'_>,
    source: &str,
    subscription_id: &str,
    resource_group: &str,
    keep: i64,
) -> Result<u64, sqlx::Error> {
    let done = sqlx::query!(
        r#"delete from inventory_snapshots
           where source = $1 and subscription_id = $2 and resource_group = $3
             and id not in (
               select id from inventory_snapshots
               where source = $1 and subscription_id = $2 and resource_group = $3
               order by fetched_at desc limit $4)"#,
        source,
        subscription_id,
        resource_group,
        keep
    )
    .execute(db)
    .await?;
    Ok(done.rows_affected())
}

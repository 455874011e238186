//! Postgres: the pool, migrations (applied at start; failure stops the start), one module per aggregate.

pub mod inventory;
pub mod runs;

use sqlx::postgres::{PgConnectOptions, PgPoolOptions};
use sqlx::PgPool;
use std::str::FromStr;
use std::time::Duration;

pub static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("../migrations");

/// Connects and applies every pending migration.
pub async fn connect(url: &str) -> Result<PgPool, sqlx::Error> {
    let options = PgConnectOptions::from_str(url)?.application_name("mlops-console");
    let pool = PgPoolOptions::new()
        .max_connections(10)
        .acquire_timeout(Duration::from_secs(5))
        .connect_with(options)
        .await?;
    MIGRATOR.run(&pool).await?;
    Ok(pool)
}

/// sqlx prefers `time` when both date crates are enabled (tower-sessions brings `time`); the app speaks chrono.
pub fn to_time(t: chrono::DateTime<chrono::Utc>) -> time::OffsetDateTime {
    time::OffsetDateTime::from_unix_timestamp_nanos(t.timestamp_micros() as i128 * 1000)
        .expect("a chrono timestamp is within time's range")
}

//! The audit log: one append-only row per mutation (and per refused attempt) — who, when, what, target,
//! parameters with secrets redacted, outcome, the reason given, the run it started.

use app::auth::{AuditEntry, AuditFilter, AuditList};
use app::error::AppError;
use chrono::{DateTime, Utc};
use serde_json::{Map, Value};
use sqlx::PgPool;
use uuid::Uuid;

pub struct Record<'a> {
    pub actor: &'a str,
    pub actor_kind: &'a str,
    pub role: Option<&'a str>,
    pub action: &'a str,
    pub target: &'a str,
    pub parameters: Value,
    pub outcome: &'a str,
    pub status: u16,
    pub reason: Option<String>,
    pub run_id: Option<Uuid>,
    pub address: Option<String>,
}

/// Field names whose values are never recorded.
fn secret_name(k: &str) -> bool {
    let k = k.to_ascii_lowercase();
    [
        "password",
        "secret",
        "token",
        "key",
        "csrf",
        "authorization",
        "cookie",
        "session",
    ]
    .iter()
    .any(|s| k.contains(s))
        && k != "idempotency_key"
}

/// The parameters with every secret-looking field replaced.
pub fn redact(v: Value) -> Value {
    match v {
        Value::Object(m) => Value::Object(
            m.into_iter()
                .map(|(k, v)| {
                    if secret_name(&k) {
                        (k, Value::String("[redacted]".into()))
                    } else {
                        (k, redact(v))
                    }
                })
                .collect::<Map<String, Value>>(),
        ),
        Value::Array(a) => Value::Array(a.into_iter().map(redact).collect()),
        other => other,
    }
}

pub async fn record(db: &PgPool, r: Record<'_>) {
    let reason = r
        .reason
        .map(|s| s.trim().chars().take(2000).collect::<String>())
        .filter(|s| !s.is_empty());
    let done = sqlx::query!(
        "insert into audit_log (actor, actor_kind, role, action, target, parameters, outcome, status, reason, run_id, address)
         values ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
        r.actor,
        r.actor_kind,
        r.role,
        r.action,
        r.target,
        redact(r.parameters),
        r.outcome,
        r.status as i32,
        reason,
        r.run_id,
        r.address
    )
    .execute(db)
    .await;
    if let Err(e) = done {
        tracing::error!(error = %e, action = r.action, "could not write the audit log");
    }
}

fn time(s: &Option<String>, field: &str) -> Result<Option<DateTime<Utc>>, AppError> {
    match s.as_deref().filter(|s| !s.is_empty()) {
        None => Ok(None),
        Some(t) => t
            .parse::<DateTime<Utc>>()
            .map(Some)
            .map_err(|_| AppError::Invalid(format!("{field}: '{t}' is not an RFC 3339 time"))),
    }
}

/// Newest first, filtered, a page at a time (`cursor` = the last id seen).
pub async fn list(db: &PgPool, f: &AuditFilter) -> Result<AuditList, AppError> {
    let since = time(&f.since, "since")?;
    let until = time(&f.until, "until")?;
    let limit = f.limit.unwrap_or(50).clamp(1, 200);
    let like = |s: &Option<String>| {
        s.as_deref().filter(|s| !s.is_empty()).map(|s| {
            format!(
                "%{}%",
                s.replace('\\', "\\\\")
                    .replace('%', "\\%")
                    .replace('_', "\\_")
            )
        })
    };
    let rows = sqlx::query!(
        r#"select id, at as "at: DateTime<Utc>", actor, actor_kind, role, action, target, parameters, outcome, status, reason, run_id
           from audit_log
           where ($1::text is null or actor ilike $1)
             and ($2::text is null or action ilike $2)
             and ($3::text is null or target ilike $3)
             and ($4::text is null or outcome = $4)
             and ($5::timestamptz is null or at >= $5)
             and ($6::timestamptz is null or at < $6)
             and ($7::bigint is null or id < $7)
           order by id desc limit $8"#,
        like(&f.actor),
        like(&f.action),
        like(&f.target),
        f.outcome.as_deref().filter(|s| !s.is_empty()),
        since.map(crate::db::to_time),
        until.map(crate::db::to_time),
        f.cursor,
        limit + 1
    )
    .fetch_all(db)
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "could not read the audit log");
        AppError::Internal
    })?;
    let more = rows.len() as i64 > limit;
    let entries: Vec<AuditEntry> = rows
        .into_iter()
        .take(limit as usize)
        .map(|r| AuditEntry {
            id: r.id,
            at: r.at,
            actor: r.actor,
            actor_kind: r.actor_kind,
            role: r.role,
            action: r.action,
            target: r.target,
            parameters: r.parameters,
            outcome: r.outcome,
            status: r.status,
            reason: r.reason,
            run_id: r.run_id.map(|u| u.to_string()),
        })
        .collect();
    let next_cursor = if more {
        entries.last().map(|e| e.id)
    } else {
        None
    };
    Ok(AuditList {
        entries,
        next_cursor,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn secrets_are_redacted_at_any_depth() {
        let v = redact(
            json!({"password": "p", "reason": "r", "idempotency_key": "k",
            "nested": {"api_token": "t", "list": [{"client_secret": "s"}]}, "csrf_token": "c"}),
        );
        assert_eq!(
            v,
            json!({"password": "[redacted]", "reason": "r", "idempotency_key": "k",
            "nested": {"api_token": "[redacted]", "list": [{"client_secret": "[redacted]"}]}, "csrf_token": "[redacted]"})
        );
    }
}

//! The emulator's state in its own Postgres schema, so a restart does not make the "cloud" forget.
//! Keys are lower-cased ids: ARM ids compare case-insensitively.

use chrono::{DateTime, Utc};
use serde_json::Value;
use sqlx::PgPool;

pub const RESOURCE: &str = "resource";
pub const RESOURCE_GROUP: &str = "resource-group";
pub const CONTAINER: &str = "container";
pub const ROLE_ASSIGNMENT: &str = "role-assignment";
pub const SECRET: &str = "secret";
pub const REPOSITORY: &str = "repository";

/// Kinds served by a plain ARM GET of their id.
pub const ARM_KINDS: [&str; 4] = [RESOURCE, RESOURCE_GROUP, CONTAINER, ROLE_ASSIGNMENT];

#[derive(Clone, Debug)]
pub struct Object {
    pub key: String,
    pub body: Value,
    pub created_at: DateTime<Utc>,
    pub changed_at: DateTime<Utc>,
}

/// One object to seed: (kind, id, parent id, body).
pub struct NewObject {
    pub kind: &'static str,
    pub id: String,
    pub parent: String,
    pub body: Value,
}

#[derive(Clone)]
pub struct Store {
    db: PgPool,
}

impl Store {
    pub fn new(db: PgPool) -> Store {
        Store { db }
    }

    /// Seeds `objects` once per estate, in one transaction; later starts keep whatever changed since.
    pub async fn seed_once(
        &self,
        estate: &str,
        objects: Vec<NewObject>,
    ) -> Result<bool, sqlx::Error> {
        let mut tx = self.db.begin().await?;
        let fresh = sqlx::query!(
            "insert into emulator.seeded (estate) values ($1) on conflict do nothing",
            estate
        )
        .execute(&mut *tx)
        .await?
        .rows_affected()
            == 1;
        if fresh {
            for o in objects {
                sqlx::query!(
                    r#"insert into emulator.objects (kind, key, parent, body, created_at, changed_at)
                       values ($1, $2, $3, $4, now() - interval '51 days', now() - interval '3 days')
                       on conflict (kind, key) do nothing"#,
                    o.kind,
                    o.id.to_ascii_lowercase(),
                    o.parent.to_ascii_lowercase(),
                    o.body
                )
                .execute(&mut *tx)
                .await?;
            }
        }
        tx.commit().await?;
        Ok(fresh)
    }

    /// The ARM object at `id`, of any ARM-served kind.
    pub async fn get_arm(&self, id: &str) -> Result<Option<Object>, sqlx::Error> {
        let kinds: Vec<String> = ARM_KINDS.iter().map(|k| k.to_string()).collect();
        sqlx::query_as!(
            Object,
            r#"select key, body, created_at as "created_at: DateTime<Utc>", changed_at as "changed_at: DateTime<Utc>" from emulator.objects
               where key = $1 and kind = any($2) limit 1"#,
            id.to_ascii_lowercase(),
            &kinds
        )
        .fetch_optional(&self.db)
        .await
    }

    /// One object of `kind` by id.
    pub async fn get(&self, kind: &str, id: &str) -> Result<Option<Object>, sqlx::Error> {
        sqlx::query_as!(
            Object,
            r#"select key, body, created_at as "created_at: DateTime<Utc>", changed_at as "changed_at: DateTime<Utc>"
               from emulator.objects where kind = $1 and key = $2"#,
            kind,
            id.to_ascii_lowercase()
        )
        .fetch_optional(&self.db)
        .await
    }

    /// Creates an object; `None` when one with that id already exists.
    pub async fn insert(
        &self,
        kind: &str,
        id: &str,
        parent: &str,
        body: &Value,
    ) -> Result<Option<Object>, sqlx::Error> {
        sqlx::query_as!(
            Object,
            r#"insert into emulator.objects (kind, key, parent, body) values ($1, $2, $3, $4)
               on conflict (kind, key) do nothing
               returning key, body, created_at as "created_at: DateTime<Utc>", changed_at as "changed_at: DateTime<Utc>""#,
            kind,
            id.to_ascii_lowercase(),
            parent.to_ascii_lowercase(),
            body
        )
        .fetch_optional(&self.db)
        .await
    }

    /// Creates or replaces an object, keeping its creation time.
    pub async fn upsert(
        &self,
        kind: &str,
        id: &str,
        parent: &str,
        body: &Value,
    ) -> Result<Object, sqlx::Error> {
        sqlx::query_as!(
            Object,
            r#"insert into emulator.objects (kind, key, parent, body) values ($1, $2, $3, $4)
               on conflict (kind, key) do update set body = excluded.body, changed_at = now()
               returning key, body, created_at as "created_at: DateTime<Utc>", changed_at as "changed_at: DateTime<Utc>""#,
            kind,
            id.to_ascii_lowercase(),
            parent.to_ascii_lowercase(),
            body
        )
        .fetch_one(&self.db)
        .await
    }

    pub async fn delete(&self, kind: &str, id: &str) -> Result<bool, sqlx::Error> {
        let done = sqlx::query!(
            "delete from emulator.objects where kind = $1 and key = $2",
            kind,
            id.to_ascii_lowercase()
        )
        .execute(&self.db)
        .await?;
        Ok(done.rows_affected() == 1)
    }

    /// Objects of `kind` under `parent`, in id order, one page at a time.
    pub async fn children(
        &self,
        kind: &str,
        parent: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Object>, sqlx::Error> {
        sqlx::query_as!(
            Object,
            r#"select key, body, created_at as "created_at: DateTime<Utc>", changed_at as "changed_at: DateTime<Utc>" from emulator.objects
               where kind = $1 and parent = $2 order by key offset $3 limit $4"#,
            kind,
            parent.to_ascii_lowercase(),
            offset,
            limit
        )
        .fetch_all(&self.db)
        .await
    }

    /// Objects of `kind` whose id starts with `prefix` (every resource of a group or subscription).
    pub async fn under(
        &self,
        kind: &str,
        prefix: &str,
        offset: i64,
        limit: i64,
    ) -> Result<Vec<Object>, sqlx::Error> {
        let pattern = format!(
            "{}/%",
            prefix
                .to_ascii_lowercase()
                .replace('\\', "\\\\")
                .replace('%', "\\%")
                .replace('_', "\\_")
        );
        sqlx::query_as!(
            Object,
            r#"select key, body, created_at as "created_at: DateTime<Utc>", changed_at as "changed_at: DateTime<Utc>" from emulator.objects
               where kind = $1 and key like $2 order by key offset $3 limit $4"#,
            kind,
            pattern,
            offset,
            limit
        )
        .fetch_all(&self.db)
        .await
    }
}

//! Sign-in, roles and API tokens. Local accounts keep argon2id hashes; API tokens are stored as SHA-256
//! digests and shown once; sign-in attempts are slowed per account and per address; every request is
//! checked against the route policy ([`policy`]) by the [`middleware`], which also writes the audit log.

pub mod audit;
pub mod entra;
pub mod middleware;
pub mod policy;
pub mod routes;

use app::auth::{NewToken, NewUser, Role, TokenView, UserView};
use app::error::AppError;
use argon2::password_hash::{
    rand_core::OsRng, PasswordHash, PasswordHasher, PasswordVerifier, SaltString,
};
use argon2::Argon2;
use chrono::{DateTime, Utc};
use rand::Rng;
use sha2::{Digest, Sha256};
use sqlx::PgPool;
use std::collections::HashMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Session keys.
pub const SESSION_USER: &str = "user";
pub const SESSION_CSRF: &str = "csrf";
/// When the session signed in, in Unix milliseconds.
pub const SESSION_SINCE: &str = "signed_in_at_ms";
/// API tokens start with this, so they are recognisable (and greppable by secret scanners).
pub const TOKEN_PREFIX: &str = "mlc_";

/// Who is making a request.
#[derive(Clone, Debug, PartialEq)]
pub struct Principal {
    pub name: String,
    pub role: Option<Role>,
    pub kind: Kind,
    /// The session's CSRF token (browser sessions only).
    pub csrf: Option<String>,
    pub display_name: String,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kind {
    User,
    Token,
    Anonymous,
}

impl Kind {
    pub fn as_str(self) -> &'static str {
        match self {
            Kind::User => "user",
            Kind::Token => "token",
            Kind::Anonymous => "anonymous",
        }
    }
}

impl Principal {
    pub fn anonymous() -> Principal {
        Principal {
            name: "anonymous".into(),
            role: None,
            kind: Kind::Anonymous,
            csrf: None,
            display_name: "anonymous".into(),
        }
    }
}

tokio::task_local! {
    /// The name of whoever the current request acts for: runs, queries and the audit log read it.
    pub static ACTOR: String;
}

/// Who the current task acts for (`system` outside a request).
pub fn actor() -> String {
    ACTOR
        .try_with(|a| a.clone())
        .unwrap_or_else(|_| "system".into())
}

fn internal(e: sqlx::Error) -> AppError {
    tracing::error!(error = %e, "auth: database error");
    AppError::Internal
}

pub fn hash_password(password: &str) -> Result<String, AppError> {
    Argon2::default()
        .hash_password(password.as_bytes(), &SaltString::generate(&mut OsRng))
        .map(|h| h.to_string())
        .map_err(|_| AppError::Internal)
}

/// Checks `password` against `hash`; with no hash (unknown account), still spends the same time.
pub fn verify_password(password: &str, hash: Option<&str>) -> bool {
    static DUMMY: std::sync::OnceLock<String> = std::sync::OnceLock::new();
    let dummy = DUMMY.get_or_init(|| hash_password("not a real password").unwrap_or_default());
    let (h, real) = match hash {
        Some(h) => (h, true),
        None => (dummy.as_str(), false),
    };
    let ok = PasswordHash::new(h)
        .map(|parsed| {
            Argon2::default()
                .verify_password(password.as_bytes(), &parsed)
                .is_ok()
        })
        .unwrap_or(false);
    ok && real
}

/// A random password of 20 characters that are easy to read and type.
pub fn generate_password() -> String {
    const ALPHABET: &[u8] = b"abcdefghjkmnpqrstuvwxyzABCDEFGHJKLMNPQRSTUVWXYZ23456789";
    let mut rng = rand::thread_rng();
    (0..20)
        .map(|_| ALPHABET[rng.gen_range(0..ALPHABET.len())] as char)
        .collect()
}

/// 32 random bytes as hex: CSRF tokens and the secret part of API tokens.
pub fn random_hex() -> String {
    let bytes: [u8; 32] = rand::thread_rng().gen();
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

pub fn token_digest(token: &str) -> String {
    Sha256::digest(token.as_bytes())
        .iter()
        .map(|b| format!("{b:02x}"))
        .collect()
}

fn password_ok(p: &str) -> Result<(), AppError> {
    if p.chars().count() < 12 || p.len() > 256 {
        return Err(AppError::Invalid("password: 12 to 256 characters".into()));
    }
    Ok(())
}

struct UserRow {
    name: String,
    display_name: String,
    role: String,
    source: String,
    disabled: bool,
    created_at: DateTime<Utc>,
}

fn user_view(r: UserRow) -> Option<UserView> {
    Some(UserView {
        role: Role::parse(&r.role)?,
        name: r.name,
        display_name: r.display_name,
        source: r.source,
        disabled: r.disabled,
        created_at: r.created_at,
    })
}

/// Creates a local account. Without a password, one is generated and returned (to show once).
pub async fn add_user(
    db: &PgPool,
    name: &str,
    display_name: Option<&str>,
    role: Role,
    password: Option<&str>,
) -> Result<NewUser, AppError> {
    let name = name.trim().to_ascii_lowercase();
    if !app::auth::user_name_ok(&name) {
        return Err(AppError::Invalid(
            "name: 2–64 lowercase letters, digits, '.', '_', '-' or '@'".into(),
        ));
    }
    let generated = password.is_none().then(generate_password);
    let password = password
        .map(str::to_string)
        .or(generated.clone())
        .unwrap_or_default();
    password_ok(&password)?;
    let hash = hash_password(&password)?;
    let display = display_name
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .unwrap_or(&name)
        .to_string();
    let inserted = sqlx::query_as!(
        UserRow,
        r#"insert into users (id, name, display_name, role, password_hash) values ($1, $2, $3, $4, $5)
           on conflict (name) do nothing
           returning name, display_name, role, source, disabled, created_at as "created_at: DateTime<Utc>""#,
        Uuid::new_v4(),
        name,
        display,
        role.as_str(),
        hash
    )
    .fetch_optional(db)
    .await
    .map_err(internal)?;
    let user = inserted
        .and_then(user_view)
        .ok_or_else(|| AppError::Conflict(format!("There is already a user '{name}'.")))?;
    Ok(NewUser {
        user,
        password: generated,
    })
}

pub async fn list_users(db: &PgPool) -> Result<Vec<UserView>, AppError> {
    let rows = sqlx::query_as!(
        UserRow,
        r#"select name, display_name, role, source, disabled, created_at as "created_at: DateTime<Utc>" from users order by name"#
    )
    .fetch_all(db)
    .await
    .map_err(internal)?;
    Ok(rows.into_iter().filter_map(user_view).collect())
}

/// Changes a user's role or disables them; the last enabled admin cannot be demoted or disabled.
pub async fn update_user(
    db: &PgPool,
    name: &str,
    role: Option<Role>,
    disabled: Option<bool>,
) -> Result<UserView, AppError> {
    let mut tx = db.begin().await.map_err(internal)?;
    sqlx::query!("lock table users in share row exclusive mode")
        .execute(&mut *tx)
        .await
        .map_err(internal)?;
    let row = sqlx::query_as!(
        UserRow,
        // An Entra ID account's role is its groups' (set again at each sign-in): only local roles change here.
        r#"update users set role = case when source = 'local' then coalesce($2, role) else role end,
             disabled = coalesce($3, disabled) where name = $1
           returning name, display_name, role, source, disabled, created_at as "created_at: DateTime<Utc>""#,
        name.to_ascii_lowercase(),
        role.map(Role::as_str),
        disabled
    )
    .fetch_optional(&mut *tx)
    .await
    .map_err(internal)?
    .ok_or_else(|| AppError::NotFound(format!("There is no user '{name}'.")))?;
    if role.is_some_and(|r| r.as_str() != row.role) {
        return Err(AppError::Invalid(format!(
            "role: '{name}' signs in with Entra ID, whose groups give the role at each sign-in (MLOPS_OIDC_ROLE_GROUPS); change their groups instead"
        )));
    }
    let admins =
        sqlx::query_scalar!("select count(*) from users where role = 'admin' and not disabled")
            .fetch_one(&mut *tx)
            .await
            .map_err(internal)?
            .unwrap_or(0);
    if admins == 0 {
        return Err(AppError::Conflict(
            "That would leave no admin; make someone else admin first.".into(),
        ));
    }
    tx.commit().await.map_err(internal)?;
    user_view(row).ok_or(AppError::Internal)
}

/// With no users at all, creates `admin` with a generated password and returns it (printed once at start).
pub async fn ensure_first_admin(db: &PgPool) -> Result<Option<String>, AppError> {
    let any = sqlx::query_scalar!("select exists (select 1 from users)")
        .fetch_one(db)
        .await
        .map_err(internal)?
        .unwrap_or(true);
    if any {
        return Ok(None);
    }
    match add_user(db, "admin", Some("Administrator"), Role::Admin, None).await {
        Ok(new) => Ok(new.password),
        Err(AppError::Conflict(_)) => Ok(None),
        Err(e) => Err(e),
    }
}

/// Checks a local account's password. `None` for a wrong name, a wrong password, a disabled account or
/// an Entra account — the caller cannot tell which (and neither can an attacker).
pub async fn check_password(
    db: &PgPool,
    name: &str,
    password: &str,
) -> Result<Option<(String, String, Role)>, AppError> {
    let row = sqlx::query!(
        "select name, display_name, role, password_hash, disabled from users where name = $1",
        name.trim().to_ascii_lowercase()
    )
    .fetch_optional(db)
    .await
    .map_err(internal)?;
    let hash = row.as_ref().and_then(|r| r.password_hash.clone());
    let ok = verify_password(password, hash.as_deref());
    Ok(row
        .filter(|r| ok && !r.disabled)
        .and_then(|r| Some((r.name, r.display_name, Role::parse(&r.role)?))))
}

/// The user behind a session, if still allowed in.
pub async fn session_user(db: &PgPool, name: &str) -> Result<Option<(String, Role)>, AppError> {
    let row = sqlx::query!(
        "select display_name, role, disabled from users where name = $1",
        name
    )
    .fetch_optional(db)
    .await
    .map_err(internal)?;
    Ok(row
        .filter(|r| !r.disabled)
        .and_then(|r| Some((r.display_name, Role::parse(&r.role)?))))
}

struct TokenRow {
    id: Uuid,
    name: String,
    role: String,
    prefix: String,
    created_by: String,
    created_at: DateTime<Utc>,
    expires_at: DateTime<Utc>,
    revoked_at: Option<DateTime<Utc>>,
    last_used_at: Option<DateTime<Utc>>,
}

fn token_view(r: TokenRow) -> Option<TokenView> {
    Some(TokenView {
        id: r.id.to_string(),
        role: Role::parse(&r.role)?,
        name: r.name,
        prefix: r.prefix,
        created_by: r.created_by,
        created_at: r.created_at,
        expires_at: r.expires_at,
        revoked_at: r.revoked_at,
        last_used_at: r.last_used_at,
    })
}

/// Creates an API token valid for `days`; the token is returned once and only its digest is kept.
pub async fn create_token(
    db: &PgPool,
    name: &str,
    role: Role,
    created_by: &str,
    days: i64,
) -> Result<NewToken, AppError> {
    let name = name.trim();
    if name.is_empty() || name.len() > 100 {
        return Err(AppError::Invalid("name: 1–100 characters".into()));
    }
    if !(1..=366).contains(&days) {
        return Err(AppError::Invalid("days: 1 to 366".into()));
    }
    let token = format!("{TOKEN_PREFIX}{}", random_hex());
    let prefix = token[..12].to_string();
    let row = sqlx::query_as!(
        TokenRow,
        r#"insert into api_tokens (id, name, role, token_hash, prefix, created_by, expires_at)
           values ($1, $2, $3, $4, $5, $6, now() + make_interval(days => $7))
           returning id, name, role, prefix, created_by, created_at as "created_at: DateTime<Utc>",
                     expires_at as "expires_at: DateTime<Utc>", revoked_at as "revoked_at: DateTime<Utc>",
                     last_used_at as "last_used_at: DateTime<Utc>""#,
        Uuid::new_v4(),
        name,
        role.as_str(),
        token_digest(&token),
        prefix,
        created_by,
        days as i32
    )
    .fetch_one(db)
    .await
    .map_err(internal)?;
    Ok(NewToken {
        token,
        view: token_view(row).ok_or(AppError::Internal)?,
    })
}

pub async fn list_tokens(db: &PgPool) -> Result<Vec<TokenView>, AppError> {
    let rows = sqlx::query_as!(
        TokenRow,
        r#"select id, name, role, prefix, created_by, created_at as "created_at: DateTime<Utc>",
                  expires_at as "expires_at: DateTime<Utc>", revoked_at as "revoked_at: DateTime<Utc>",
                  last_used_at as "last_used_at: DateTime<Utc>"
           from api_tokens order by created_at desc"#
    )
    .fetch_all(db)
    .await
    .map_err(internal)?;
    Ok(rows.into_iter().filter_map(token_view).collect())
}

pub async fn revoke_token(db: &PgPool, id: &str) -> Result<(), AppError> {
    let id = Uuid::parse_str(id)
        .map_err(|_| AppError::NotFound(format!("There is no token '{id}'.")))?;
    let done = sqlx::query!(
        "update api_tokens set revoked_at = coalesce(revoked_at, now()) where id = $1",
        id
    )
    .execute(db)
    .await
    .map_err(internal)?;
    if done.rows_affected() == 0 {
        return Err(AppError::NotFound(format!("There is no token '{id}'.")));
    }
    Ok(())
}

/// The name and role behind a bearer token that is neither revoked nor expired (and its expiry).
pub async fn token_principal(
    db: &PgPool,
    token: &str,
) -> Result<Option<(String, Role, DateTime<Utc>)>, AppError> {
    if !token.starts_with(TOKEN_PREFIX) {
        return Ok(None);
    }
    let row = sqlx::query!(
        r#"update api_tokens set last_used_at = now()
           where token_hash = $1 and revoked_at is null and expires_at > now()
           returning name, role, expires_at as "expires_at: DateTime<Utc>""#,
        token_digest(token)
    )
    .fetch_optional(db)
    .await
    .map_err(internal)?;
    Ok(row.and_then(|r| {
        Some((
            format!("token:{}", r.name),
            Role::parse(&r.role)?,
            r.expires_at,
        ))
    }))
}

/// How long a checked token is trusted without asking the database again. Revoking through this
/// console forgets at once; a revocation made elsewhere (the CLI, another replica) holds within this.
pub const TOKEN_RECHECK: Duration = Duration::from_secs(30);

/// Tokens checked recently, by digest: API clients send one per request, and a database write per
/// request (for `last_used_at`) would cost more than the request itself.
#[derive(Default)]
pub struct TokenCache {
    checked: Mutex<HashMap<String, Checked>>,
}

/// A token's name, role and expiry, and when the database last confirmed them.
type Checked = (String, Role, DateTime<Utc>, Instant);

impl TokenCache {
    pub async fn principal(
        &self,
        db: &PgPool,
        token: &str,
    ) -> Result<Option<(String, Role)>, AppError> {
        let digest = token_digest(token);
        if let Some((name, role, expires, at)) =
            self.checked.lock().expect("token cache").get(&digest)
        {
            if at.elapsed() < TOKEN_RECHECK && *expires > Utc::now() {
                return Ok(Some((name.clone(), *role)));
            }
        }
        let found = token_principal(db, token).await?;
        let mut cache = self.checked.lock().expect("token cache");
        match found {
            Some((name, role, expires)) => {
                if cache.len() > 10_000 {
                    cache.clear();
                }
                cache.insert(digest, (name.clone(), role, expires, Instant::now()));
                Ok(Some((name, role)))
            }
            None => {
                cache.remove(&digest);
                Ok(None)
            }
        }
    }

    /// After a revocation: every token is checked again on its next use.
    pub fn forget(&self) {
        self.checked.lock().expect("token cache").clear();
    }
}

/// Failed sign-ins per account and per address: after a few, each further try must wait longer
/// (1 s, 2 s, 4 s … up to 15 minutes), and a success clears the account's count.
#[derive(Default)]
pub struct Throttle {
    failures: Mutex<HashMap<String, (u32, Instant)>>,
}

/// Free tries before the waits begin.
const FREE_TRIES: u32 = 3;

impl Throttle {
    fn wait_for(n: u32) -> Duration {
        if n < FREE_TRIES {
            return Duration::ZERO;
        }
        Duration::from_secs(1u64 << (n - FREE_TRIES).min(10)).min(Duration::from_secs(900))
    }

    /// How long the longest-waiting key still has to wait, if any.
    pub fn check(&self, keys: &[String]) -> Option<Duration> {
        let map = self.failures.lock().expect("throttle lock");
        keys.iter()
            .filter_map(|k| map.get(k))
            .filter_map(|(n, last)| Self::wait_for(*n).checked_sub(last.elapsed()))
            .filter(|d| !d.is_zero())
            .max()
    }

    pub fn failed(&self, keys: &[String]) {
        let mut map = self.failures.lock().expect("throttle lock");
        if map.len() > 100_000 {
            map.retain(|_, (_, last)| last.elapsed() < Duration::from_secs(900));
        }
        for k in keys {
            let e = map.entry(k.clone()).or_insert((0, Instant::now()));
            if e.1.elapsed() > Duration::from_secs(900) {
                e.0 = 0;
            }
            e.0 += 1;
            e.1 = Instant::now();
        }
    }

    pub fn succeeded(&self, account: &str) {
        self.failures.lock().expect("throttle lock").remove(account);
    }
}

/// The console's sign-in state: the database, the sign-in throttle and the session rules.
pub struct Auth {
    /// Entra ID sign-in, when configured.
    pub oidc: Option<entra::Oidc>,
    pub throttle: Throttle,
    pub rules: SessionRules,
    pub tokens: TokenCache,
}

/// The HTTP status an auth error answers with.
pub trait HttpStatus {
    fn http_status(&self) -> axum::http::StatusCode;
}

impl HttpStatus for AppError {
    fn http_status(&self) -> axum::http::StatusCode {
        axum::http::StatusCode::from_u16(self.status())
            .unwrap_or(axum::http::StatusCode::INTERNAL_SERVER_ERROR)
    }
}

/// How sessions behave.
#[derive(Clone, Debug)]
pub struct SessionRules {
    /// Cookies only over https.
    pub secure: bool,
    /// A session ends this long after sign-in, however active.
    pub absolute: Duration,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn passwords_hash_with_argon2id_and_verify() {
        let h = hash_password("correct horse battery").unwrap();
        assert!(h.starts_with("$argon2id$"));
        assert!(verify_password("correct horse battery", Some(&h)));
        assert!(!verify_password("wrong", Some(&h)));
        assert!(
            !verify_password("anything", None),
            "no account: never valid"
        );
        assert_eq!(generate_password().len(), 20);
        assert_ne!(random_hex(), random_hex());
    }

    #[test]
    fn the_throttle_backs_off_after_a_few_failures() {
        let t = Throttle::default();
        let keys = vec!["account:bob".to_string(), "addr:1.2.3.4".to_string()];
        for _ in 0..FREE_TRIES {
            assert_eq!(t.check(&keys), None);
            t.failed(&keys);
        }
        let wait = t.check(&keys).expect("now it waits");
        assert!(wait <= Duration::from_secs(1));
        t.failed(&keys);
        assert!(t.check(&keys).unwrap() > Duration::from_secs(1));
        t.succeeded("account:bob");
        assert!(t.check(&keys[..1]).is_none() && t.check(&keys[1..]).is_some());
        assert_eq!(Throttle::wait_for(40), Duration::from_secs(900));
    }
}

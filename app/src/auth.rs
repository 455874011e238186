//! Who is signed in, what their role lets them do, and the audit trail — shared by pages and server.

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

/// Roles, each including the ones before it.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    /// Managers: overview, resources, cost, alerts, runs, saved queries, the audit log.
    Viewer,
    /// + trigger jobs, deployments, traffic, scale, runbooks; acknowledge alerts; free-form KQL.
    Operator,
    /// + users, API tokens, settings.
    Admin,
}

impl Role {
    pub const ALL: [Role; 3] = [Role::Viewer, Role::Operator, Role::Admin];

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Viewer => "viewer",
            Role::Operator => "operator",
            Role::Admin => "admin",
        }
    }

    pub fn parse(s: &str) -> Option<Role> {
        Role::ALL
            .into_iter()
            .find(|r| r.as_str().eq_ignore_ascii_case(s.trim()))
    }
}

/// How people can sign in, besides a local account (the server provides it to the pages).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct SignInMethods {
    /// Microsoft Entra ID (OpenID Connect) is configured.
    pub entra: bool,
}

/// The signed-in user as pages see them. `csrf` goes into every form that changes something.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Me {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub csrf: String,
}

impl Me {
    pub fn can(&self, role: Role) -> bool {
        self.role >= role
    }
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditEntry {
    pub id: i64,
    pub at: DateTime<Utc>,
    pub actor: String,
    pub actor_kind: String,
    pub role: Option<String>,
    pub action: String,
    pub target: String,
    pub parameters: serde_json::Value,
    pub outcome: String,
    pub status: i32,
    pub reason: Option<String>,
    pub run_id: Option<String>,
}

/// `GET /api/v1/audit` filters; `cursor` pages to older entries.
#[derive(Clone, Debug, Default, PartialEq, Serialize, Deserialize)]
pub struct AuditFilter {
    #[serde(default)]
    pub actor: Option<String>,
    #[serde(default)]
    pub action: Option<String>,
    #[serde(default)]
    pub target: Option<String>,
    #[serde(default)]
    pub outcome: Option<String>,
    #[serde(default)]
    pub since: Option<String>,
    #[serde(default)]
    pub until: Option<String>,
    #[serde(default)]
    pub cursor: Option<i64>,
    #[serde(default)]
    pub limit: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct AuditList {
    pub entries: Vec<AuditEntry>,
    pub next_cursor: Option<i64>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct UserView {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    pub source: String,
    pub disabled: bool,
    pub created_at: DateTime<Utc>,
}

#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TokenView {
    pub id: String,
    pub name: String,
    pub role: Role,
    /// The first characters, to recognise a token without revealing it.
    pub prefix: String,
    pub created_by: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
    pub revoked_at: Option<DateTime<Utc>>,
    pub last_used_at: Option<DateTime<Utc>>,
}

/// A token just created: the secret is in `token`, shown this once.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewToken {
    pub token: String,
    pub view: TokenView,
}

/// A user just created: `password` is set when the console generated it (shown this once).
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NewUser {
    pub user: UserView,
    pub password: Option<String>,
}

/// A user name as accounts take it: 2–64 lowercase letters, digits, `.`, `_`, `-`, `@`.
pub fn user_name_ok(name: &str) -> bool {
    (2..=64).contains(&name.len())
        && name.chars().all(|c| {
            c.is_ascii_lowercase() || c.is_ascii_digit() || matches!(c, '.' | '_' | '-' | '@')
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn roles_include_the_lower_ones() {
        assert!(Role::Admin > Role::Operator && Role::Operator > Role::Viewer);
        assert_eq!(Role::parse(" Operator "), Some(Role::Operator));
        assert_eq!(Role::parse("root"), None);
        assert!(user_name_ok("alice@example.com") && !user_name_ok("Alice") && !user_name_ok("a"));
    }
}

/// The signed-in user of a request, put in its extensions by the server's auth middleware.
#[derive(Clone, Debug, PartialEq)]
pub struct RequestUser {
    pub name: String,
    pub display_name: String,
    pub role: Role,
    /// Set for browser sessions.
    pub csrf: Option<String>,
}

impl From<RequestUser> for Me {
    fn from(u: RequestUser) -> Me {
        Me {
            name: u.name,
            display_name: u.display_name,
            role: u.role,
            csrf: u.csrf.unwrap_or_default(),
        }
    }
}

/// The signed-in user of the request being served (server functions and server rendering).
#[cfg(feature = "ssr")]
pub fn request_user() -> Option<RequestUser> {
    leptos::prelude::use_context::<http::request::Parts>()
        .and_then(|p| p.extensions.get::<RequestUser>().cloned())
}

/// One line of the configuration in effect, as admins see it (secrets only as "set").
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct Setting {
    pub name: String,
    pub value: String,
    /// The environment variable (or flag) that sets it.
    pub from: String,
}

/// Settings under a heading.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct SettingsGroup {
    pub title: String,
    pub settings: Vec<Setting>,
}

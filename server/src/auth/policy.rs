//! Who may call what: every page, server function and API route with the least role it needs. Default
//! deny — a request that matches no entry never reaches a handler, whoever sends it, and the
//! authorization matrix test fails for any route missing here.

use app::auth::Role;
use axum::http::Method;

/// What a route needs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Access {
    /// Anyone, signed in or not (sign-in, health, static files).
    Public,
    /// Signed in with at least this role.
    Role(Role),
}

use Access::{Public, Role as R};
use Role::{Admin, Operator, Viewer};

/// Pages (GET).
pub const PAGES: &[(&str, Access)] = &[
    ("/", R(Viewer)),
    ("/resources/{name}", R(Viewer)),
    ("/runs", R(Viewer)),
    ("/runs/compare", R(Viewer)),
    ("/runs/{id}", R(Viewer)),
    ("/train", R(Operator)),
    ("/endpoints", R(Viewer)),
    ("/queries", R(Viewer)),
    ("/cost", R(Viewer)),
    ("/alerts", R(Viewer)),
    ("/audit", R(Viewer)),
    ("/admin", R(Admin)),
    ("/signin", Public),
];

/// Server functions (`POST /api/{endpoint}`), by endpoint, and whether each changes something (those are
/// CSRF-checked for browser sessions and audited; the others only read).
pub const SERVER_FNS: &[(&str, Access, Change)] = &[
    ("whoami", Public, Read),
    ("overview", R(Viewer), Read),
    ("resource", R(Viewer), Read),
    ("runs", R(Viewer), Read),
    ("run", R(Viewer), Read),
    ("endpoints", R(Viewer), Read),
    ("endpoint-health", R(Viewer), Read),
    ("query", R(Viewer), Read),
    ("saved-queries", R(Viewer), Read),
    ("recent-queries", R(Viewer), Read),
    ("cost", R(Viewer), Read),
    ("alerts", R(Viewer), Read),
    ("audit", R(Viewer), Read),
    ("users", R(Admin), Read),
    ("tokens", R(Admin), Read),
    ("settings", R(Admin), Read),
    ("refresh", R(Viewer), Write),
    ("cost-refresh", R(Viewer), Write),
    ("train", R(Operator), Write),
    ("traffic", R(Operator), Write),
    ("rollback", R(Operator), Write),
    ("deploy", R(Operator), Write),
    ("register-model", R(Operator), Write),
    ("train-deploy", R(Operator), Write),
    ("save-query", R(Operator), Write),
    ("alert-state", R(Operator), Write),
    ("runbook", R(Operator), Write),
    ("user-add", R(Admin), Write),
    ("user-update", R(Admin), Write),
    ("token-create", R(Admin), Write),
    ("token-revoke", R(Admin), Write),
];

/// Whether a server function changes something.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Change {
    Read,
    Write,
}

use Change::{Read, Write};

/// The JSON API and the console's own endpoints.
pub const ROUTES: &[(&str, &str, Access)] = &[
    ("GET", "/healthz", Public),
    ("GET", "/readyz", Public),
    ("POST", "/signin", Public),
    ("POST", "/signout", Public),
    ("GET", "/signin/entra", Public),
    ("GET", "/signin/entra/callback", Public),
    ("GET", "/api/v1/me", R(Viewer)),
    ("GET", "/api/v1/estate", R(Viewer)),
    ("GET", "/api/v1/resources", R(Viewer)),
    ("GET", "/api/v1/resources/{name}", R(Viewer)),
    ("POST", "/api/v1/inventory/refresh", R(Viewer)),
    ("GET", "/api/v1/runs", R(Viewer)),
    ("GET", "/api/v1/runs/{id}", R(Viewer)),
    ("POST", "/api/v1/queries", R(Viewer)),
    ("GET", "/api/v1/queries/saved", R(Viewer)),
    ("POST", "/api/v1/queries/saved", R(Operator)),
    ("GET", "/api/v1/queries/recent", R(Viewer)),
    ("GET", "/api/v1/queries/csv", R(Viewer)),
    ("GET", "/api/v1/endpoints/{name}/health", R(Viewer)),
    ("GET", "/api/v1/cost", R(Viewer)),
    ("POST", "/api/v1/cost/refresh", R(Viewer)),
    ("GET", "/api/v1/alerts", R(Viewer)),
    ("GET", "/api/v1/audit", R(Viewer)),
    ("POST", "/api/v1/jobs/training", R(Operator)),
    ("POST", "/api/v1/models", R(Operator)),
    ("POST", "/api/v1/endpoints/{name}/deployments", R(Operator)),
    ("PUT", "/api/v1/endpoints/{name}/traffic", R(Operator)),
    (
        "DELETE",
        "/api/v1/endpoints/{name}/deployments/{deployment}",
        R(Operator),
    ),
    ("POST", "/api/v1/endpoints/{name}/rollback", R(Operator)),
    ("POST", "/api/v1/aks/deployments/{name}/scale", R(Operator)),
    (
        "POST",
        "/api/v1/aks/deployments/{name}/rollout",
        R(Operator),
    ),
    ("POST", "/api/v1/images/build", R(Operator)),
    ("POST", "/api/v1/pipelines/train-deploy", R(Operator)),
    ("POST", "/api/v1/runbooks/{name}/start", R(Operator)),
    ("POST", "/api/v1/alerts/{id}/state", R(Operator)),
    ("GET", "/api/v1/users", R(Admin)),
    ("POST", "/api/v1/users", R(Admin)),
    ("PATCH", "/api/v1/users/{name}", R(Admin)),
    ("GET", "/api/v1/tokens", R(Admin)),
    ("GET", "/api/v1/settings", R(Admin)),
    ("POST", "/api/v1/tokens", R(Admin)),
    ("DELETE", "/api/v1/tokens/{id}", R(Admin)),
];

/// Static files the site serves (the wasm, its JS, the stylesheet, the icon).
fn static_file(path: &str) -> bool {
    path.starts_with("/pkg/")
        || (path.matches('/').count() == 1
            && [".svg", ".png", ".ico", ".txt", ".css", ".html"]
                .iter()
                .any(|ext| path.ends_with(ext)))
}

/// Whether `path` fits `pattern`, where `{x}` (or `:x`) matches one segment.
pub fn fits(pattern: &str, path: &str) -> bool {
    let p: Vec<&str> = pattern.trim_end_matches('/').split('/').collect();
    let s: Vec<&str> = path.trim_end_matches('/').split('/').collect();
    p.len() == s.len()
        && p.iter().zip(&s).all(|(a, b)| {
            (a.starts_with('{') && a.ends_with('}') && !b.is_empty())
                || (a.starts_with(':') && !b.is_empty())
                || a == b
        })
}

/// The access a request needs, or `None` when no route is registered for it (denied).
pub fn access(method: &Method, path: &str) -> Option<Access> {
    if let Some(endpoint) = path.strip_prefix("/api/").filter(|e| !e.contains('/')) {
        if method == Method::POST || method == Method::GET {
            if let Some((_, a, _)) = SERVER_FNS.iter().find(|(e, _, _)| *e == endpoint) {
                return Some(*a);
            }
        }
    }
    if let Some((_, _, a)) = ROUTES
        .iter()
        .find(|(m, p, _)| *m == method.as_str() && fits(p, path))
    {
        return Some(*a);
    }
    if method == Method::GET || method == Method::HEAD {
        if static_file(path) {
            return Some(Public);
        }
        // Specific pages win over patterns (`/runs/compare` before `/runs/{id}`).
        if let Some((_, a)) = PAGES.iter().find(|(p, _)| *p == path) {
            return Some(*a);
        }
        if let Some((_, a)) = PAGES.iter().find(|(p, _)| fits(p, path)) {
            return Some(*a);
        }
    }
    None
}

/// Is this a request that changes something (audited, and CSRF-checked for browser sessions)?
pub fn is_mutation(method: &Method, path: &str) -> bool {
    if method == Method::GET || method == Method::HEAD || method == Method::OPTIONS {
        return false;
    }
    match path.strip_prefix("/api/").filter(|e| !e.contains('/')) {
        // Server functions are all POSTs; the table says which change something.
        Some(endpoint) => SERVER_FNS
            .iter()
            .any(|(e, _, c)| *e == endpoint && *c == Write),
        // Sign-in audits itself (with its real outcome) and carries no session to check.
        None => !matches!(path, "/api/v1/queries" | "/signin"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_resolve_to_their_roles() {
        let get = Method::GET;
        let post = Method::POST;
        assert_eq!(access(&get, "/runs/compare"), Some(R(Viewer)));
        assert_eq!(access(&get, "/runs/abc"), Some(R(Viewer)));
        assert_eq!(access(&get, "/pkg/mlops_console.wasm"), Some(Public));
        assert_eq!(access(&post, "/api/traffic"), Some(R(Operator)));
        assert_eq!(
            access(&Method::PUT, "/api/v1/endpoints/x/traffic"),
            Some(R(Operator))
        );
        assert_eq!(access(&post, "/api/v1/tokens"), Some(R(Admin)));
        assert_eq!(access(&post, "/api/nosuchfn"), None, "unregistered: denied");
        assert_eq!(access(&get, "/secret/place"), None);
        assert_eq!(access(&Method::DELETE, "/api/v1/runs/x"), None);
        assert!(is_mutation(&post, "/api/traffic") && !is_mutation(&post, "/api/overview"));
        assert!(!is_mutation(&post, "/api/users") && is_mutation(&post, "/api/user-add"));
        assert!(is_mutation(&post, "/api/v1/alerts/x/state") && !is_mutation(&get, "/api/v1/runs"));
    }
}

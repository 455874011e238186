//! Data planes: Key Vault secret metadata under `/keyvault/{vault}`, ACR under `/acr/{registry}`.

use super::store;
use super::{base_url, has_bearer, Emulator, Resp};
use axum::extract::{Form, Path, Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;

fn kv_error(status: StatusCode, code: &str, message: &str) -> Resp {
    (
        status,
        Json(json!({"error": {"code": code, "message": message}})),
    )
        .into_response()
}

/// `GET {vault}/secrets`: ids and attributes, never values; `maxresults` and `$skiptoken` paging.
pub async fn list_secrets(
    State(emu): State<Emulator>,
    Path(vault): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Resp {
    if !has_bearer(&headers) {
        let mut r = kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer authorization=\"https://login.microsoftonline.com/72f988bf-86f1-41af-91ab-2d7cd011db47\", resource=\"https://vault.azure.net\""),
        );
        return r;
    }
    if !q.contains_key("api-version") {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid or missing api-version.",
        );
    }
    let max = match q.get("maxresults").map(|m| m.parse::<i64>()) {
        None => 25,
        Some(Ok(n)) if (1..=25).contains(&n) => n,
        Some(_) => {
            return kv_error(
                StatusCode::BAD_REQUEST,
                "BadParameter",
                "maxresults must be between 1 and 25.",
            )
        }
    };
    let offset = q
        .get("$skiptoken")
        .and_then(|t| t.parse::<i64>().ok())
        .unwrap_or(0)
        .max(0);
    let parent = format!("/keyvault/{vault}");
    let items = match emu
        .inner
        .store
        .children(store::SECRET, &parent, offset, max + 1)
        .await
    {
        Ok(items) => items,
        Err(e) => {
            tracing::error!(error = %e, "emulator store failed");
            return kv_error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalError",
                "The emulator's store failed.",
            );
        }
    };
    if items.is_empty() && offset == 0 {
        let known = emu
            .inner
            .estate
            .resources
            .key_vault
            .eq_ignore_ascii_case(&vault);
        if !known {
            return kv_error(
                StatusCode::NOT_FOUND,
                "VaultNotFound",
                "The vault does not exist.",
            );
        }
    }
    let base = base_url(&headers);
    let more = items.len() as i64 > max;
    let value: Vec<Value> = items
        .into_iter()
        .take(max as usize)
        .map(|o| {
            let b = o.body;
            let mut item = json!({
                "id": format!("{base}{parent}/secrets/{}", b["name"].as_str().unwrap_or_default()),
                "attributes": b["attributes"],
            });
            for key in ["contentType", "tags", "managed"] {
                if let Some(v) = b.get(key) {
                    item[key] = v.clone();
                }
            }
            item
        })
        .collect();
    let next = more.then(|| {
        format!(
            "{base}{parent}/secrets?api-version={}&$skiptoken={}&maxresults={max}",
            q["api-version"],
            offset + max
        )
    });
    Json(json!({"value": value, "nextLink": next})).into_response()
}

fn acr_unauthorized(headers: &HeaderMap, registry: &str, scope: &str) -> Resp {
    let mut r = (
        StatusCode::UNAUTHORIZED,
        Json(json!({"errors": [{"code": "UNAUTHORIZED", "message": "authentication required, visit https://aka.ms/acr/authorization for more information."}]})),
    )
        .into_response();
    let challenge = format!(
        "Bearer realm=\"{}/acr/{registry}/oauth2/token\",service=\"{registry}.azurecr.io\",scope=\"{scope}\"",
        base_url(headers)
    );
    if let Ok(v) = HeaderValue::from_str(&challenge) {
        r.headers_mut().insert("www-authenticate", v);
    }
    r
}

fn known_registry(emu: &Emulator, registry: &str) -> bool {
    emu.inner
        .estate
        .resources
        .container_registry
        .eq_ignore_ascii_case(registry)
}

/// `POST /oauth2/exchange`: an Entra token for an ACR refresh token.
pub async fn acr_exchange(
    State(emu): State<Emulator>,
    Path(registry): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Resp {
    if !known_registry(&emu, &registry) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match (form.get("grant_type").map(String::as_str), form.get("access_token")) {
        (Some("access_token"), Some(t)) if !t.is_empty() => {
            Json(json!({"refresh_token": format!("emulator-refresh-{}", uuid::Uuid::new_v4())})).into_response()
        }
        _ => (StatusCode::BAD_REQUEST, Json(json!({"errors": [{"code": "BAD_REQUEST", "message": "grant_type=access_token and access_token are required"}]}))).into_response(),
    }
}

/// `POST /oauth2/token`: a refresh token for an access token with a scope.
pub async fn acr_token(
    State(emu): State<Emulator>,
    Path(registry): Path<String>,
    Form(form): Form<HashMap<String, String>>,
) -> Resp {
    if !known_registry(&emu, &registry) {
        return StatusCode::NOT_FOUND.into_response();
    }
    match (form.get("grant_type").map(String::as_str), form.get("refresh_token"), form.get("scope")) {
        (Some("refresh_token"), Some(t), Some(_)) if t.starts_with("emulator-refresh-") => {
            Json(json!({"access_token": format!("emulator-access-{}", uuid::Uuid::new_v4())})).into_response()
        }
        _ => (StatusCode::UNAUTHORIZED, Json(json!({"errors": [{"code": "UNAUTHORIZED", "message": "invalid refresh token or missing scope"}]}))).into_response(),
    }
}

fn has_acr_token(headers: &HeaderMap) -> bool {
    headers
        .get("authorization")
        .and_then(|h| h.to_str().ok())
        .is_some_and(|v| v.starts_with("Bearer emulator-access-"))
}

/// `GET /acr/v1/_catalog?n=&last=`, with a `Link` header to the next page.
pub async fn acr_catalog(
    State(emu): State<Emulator>,
    Path(registry): Path<String>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
) -> Resp {
    if !has_acr_token(&headers) {
        return acr_unauthorized(&headers, &registry, "registry:catalog:*");
    }
    let n = q
        .get("n")
        .and_then(|n| n.parse::<usize>().ok())
        .unwrap_or(100)
        .clamp(1, 1000);
    let repos = match emu
        .inner
        .store
        .children(store::REPOSITORY, &format!("/acr/{registry}"), 0, 10_000)
        .await
    {
        Ok(r) => r,
        Err(_) => return StatusCode::INTERNAL_SERVER_ERROR.into_response(),
    };
    let now = chrono::Utc::now();
    let mut names: Vec<String> = repos
        .iter()
        .filter(|o| {
            o.body["tags"]
                .as_array()
                .is_some_and(|t| t.iter().any(|t| super::acr::tag_visible(t, now)))
        })
        .filter_map(|o| o.body["name"].as_str().map(str::to_string))
        .collect();
    names.sort();
    let after: Vec<String> = names
        .into_iter()
        .filter(|name| {
            q.get("last")
                .is_none_or(|last| name.as_str() > last.as_str())
        })
        .collect();
    let page: Vec<String> = after.iter().take(n).cloned().collect();
    let mut r = Json(json!({"repositories": page})).into_response();
    if after.len() > n {
        let link = format!(
            "</acr/{registry}/acr/v1/_catalog?last={}&n={n}>; rel=\"next\"",
            page.last().cloned().unwrap_or_default()
        );
        if let Ok(v) = HeaderValue::from_str(&link) {
            r.headers_mut().insert("link", v);
        }
    }
    r
}

/// `GET /acr/v1/{repository}/_tags`.
pub async fn acr_tags(
    State(emu): State<Emulator>,
    Path((registry, rest)): Path<(String, String)>,
    headers: HeaderMap,
) -> Resp {
    let Some(repo) = rest.strip_suffix("/_tags") else {
        return (StatusCode::NOT_FOUND, Json(json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}))).into_response();
    };
    if !has_acr_token(&headers) {
        return acr_unauthorized(
            &headers,
            &registry,
            &format!("repository:{repo}:metadata_read"),
        );
    }
    let key = format!("/acr/{registry}/{repo}");
    let repos = emu
        .inner
        .store
        .children(store::REPOSITORY, &format!("/acr/{registry}"), 0, 10_000)
        .await
        .unwrap_or_default();
    match repos.into_iter().find(|o| o.key == key.to_ascii_lowercase()) {
        Some(o) => {
            let now = chrono::Utc::now();
            let mut tags: Vec<&Value> = o.body["tags"]
                .as_array()
                .into_iter()
                .flatten()
                .filter(|t| super::acr::tag_visible(t, now))
                .collect();
            tags.sort_by(|a, b| b["createdTime"].as_str().cmp(&a["createdTime"].as_str()));
            Json(json!({"registry": format!("{registry}.azurecr.io"), "imageName": repo, "tags": tags})).into_response()
        }
        None => (StatusCode::NOT_FOUND, Json(json!({"errors": [{"code": "NAME_UNKNOWN", "message": "repository name not known to registry"}]}))).into_response(),
    }
}

/// `PUT {vault}/secrets/{name}`: a new version of a secret. Answers with the secret bundle, as Key Vault does.
pub async fn set_secret(
    State(emu): State<Emulator>,
    Path((vault, name)): Path<(String, String)>,
    Query(q): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: axum::body::Bytes,
) -> Resp {
    if !has_bearer(&headers) {
        return kv_error(
            StatusCode::UNAUTHORIZED,
            "Unauthorized",
            "AKV10000: Request is missing a Bearer or PoP token.",
        );
    }
    if !q.contains_key("api-version") {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request URI contains an invalid or missing api-version.",
        );
    }
    if !emu
        .inner
        .estate
        .resources
        .key_vault
        .eq_ignore_ascii_case(&vault)
    {
        return kv_error(
            StatusCode::NOT_FOUND,
            "VaultNotFound",
            "The vault does not exist.",
        );
    }
    if name.is_empty()
        || name.len() > 127
        || !name.chars().all(|c| c.is_ascii_alphanumeric() || c == '-')
    {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The secret name must be 1-127 letters, digits and hyphens.",
        );
    }
    let Ok(req) = serde_json::from_slice::<Value>(&body) else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "The request body is not valid JSON.",
        );
    };
    let Some(value) = req.get("value").and_then(Value::as_str) else {
        return kv_error(
            StatusCode::BAD_REQUEST,
            "BadParameter",
            "value is required.",
        );
    };
    let now = chrono::Utc::now().timestamp();
    let version = uuid::Uuid::new_v4().simple().to_string();
    let attributes = json!({"enabled": req.pointer("/attributes/enabled").and_then(Value::as_bool).unwrap_or(true),
        "exp": req.pointer("/attributes/exp"), "nbf": req.pointer("/attributes/nbf"),
        "created": now, "updated": now, "recoveryLevel": "CustomizedRecoverable+Purgeable", "recoverableDays": 7});
    let parent = format!("/keyvault/{vault}");
    let stored = json!({"name": name, "value": value, "version": version, "contentType": req.get("contentType"),
        "attributes": attributes, "tags": req.get("tags").cloned().unwrap_or(json!({}))});
    if let Err(e) = emu
        .inner
        .store
        .upsert(
            store::SECRET,
            &format!("{parent}/secrets/{name}"),
            &parent,
            &stored,
        )
        .await
    {
        tracing::error!(error = %e, "emulator store failed");
        return kv_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "The emulator's store failed.",
        );
    }
    Json(json!({"value": value, "id": format!("{}{parent}/secrets/{name}/{version}", base_url(&headers)),
        "contentType": stored["contentType"], "attributes": attributes, "tags": stored["tags"]}))
    .into_response()
}

//! Azure Resource Manager: resource groups, resources by id, lists with `nextLink` paging and `$expand`,
//! child collections, role assignments and definitions, and Resource Graph queries.

use super::store::{self, Object};
use super::{arm_error, base_url, graph, has_bearer, online, seed, Emulator, Resp};
use crate::azure::wire::{QueryRequest, QueryResponse};
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Map, Value};
use std::collections::HashMap;

fn params(uri: &Uri) -> HashMap<String, String> {
    uri.query()
        .map(|q| {
            url::form_urlencoded::parse(q.as_bytes())
                .map(|(k, v)| (k.to_ascii_lowercase(), v.into_owned()))
                .collect()
        })
        .unwrap_or_default()
}

pub(crate) fn db_error(e: sqlx::Error) -> Resp {
    tracing::error!(error = %e, "emulator store failed");
    arm_error(
        StatusCode::INTERNAL_SERVER_ERROR,
        "InternalServerError",
        "The emulator's store failed; see its log.",
    )
}

pub async fn dispatch(
    State(emu): State<Emulator>,
    method: Method,
    uri: Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    if !has_bearer(&headers) {
        let mut r = arm_error(
            StatusCode::UNAUTHORIZED,
            "AuthenticationFailed",
            "Authentication failed. The 'Authorization' header is missing.",
        );
        r.headers_mut().insert(
            "www-authenticate",
            HeaderValue::from_static("Bearer authorization_uri=\"https://login.microsoftonline.com/common\", error=\"invalid_token\", error_description=\"The authentication failed because of missing 'Authorization' header.\""),
        );
        return r;
    }
    let q = params(&uri);
    if !q.contains_key("api-version") {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "MissingApiVersionParameter",
            "The api-version query parameter (?api-version=) is required for all requests.",
        );
    }
    let path = uri.path().trim_end_matches('/').to_string();
    let lower = path.to_ascii_lowercase();
    let seg: Vec<&str> = lower.split('/').skip(1).collect();

    match (method.clone(), seg.as_slice()) {
        (Method::POST, ["providers", "microsoft.resourcegraph", "resources"]) => {
            resource_graph(&emu, &body).await
        }
        (
            Method::PUT,
            [.., "providers", "microsoft.machinelearningservices", "workspaces", _, "jobs", name],
        ) => {
            let workspace = path.rsplitn(3, '/').nth(2).unwrap_or_default().to_string();
            let name = path.rsplit('/').next().unwrap_or(name).to_string();
            super::ml::put_job(&emu, &path, &workspace, &name, &body).await
        }
        (
            Method::GET,
            [.., "providers", "microsoft.machinelearningservices", "workspaces", _, "jobs"],
        ) => super::ml::list_jobs(&emu, &path).await,
        (
            Method::GET,
            [.., "providers", "microsoft.machinelearningservices", "workspaces", _, "jobs", _],
        ) => match super::ml::get_job(&emu, &path).await {
            Some(r) => r,
            None => arm_error(
                StatusCode::NOT_FOUND,
                "UserError",
                format!(
                    "Job '{}' was not found.",
                    path.rsplit('/').next().unwrap_or_default()
                ),
            ),
        },
        (
            Method::GET,
            ["subscriptions", _, "providers", "microsoft.machinelearningservices", "locations", _, "mfeoperationsstatus", id],
        ) => online::operation(&emu, id).await,
        (Method::PUT, [.., "workspaces", _, "models", name, "versions", version]) => {
            let workspace = parent_of(&path, 4);
            let (name, version) = (name.to_string(), version.to_string());
            online::put_model_version(&emu, &path, &workspace, &name, &version, &body).await
        }
        (Method::GET, [.., "workspaces", _, "models", _, "versions"]) => {
            list_kind(&emu, online::MODEL_VERSION, &path, false).await
        }
        (Method::GET, [.., "workspaces", _, "models", _, "versions", _]) => {
            get_kind(&emu, online::MODEL_VERSION, &path, false).await
        }
        (Method::PUT, [.., "workspaces", _, "onlineendpoints", _]) => {
            let workspace = parent_of(&path, 2);
            online::put_endpoint(&emu, &headers, &path, &workspace, &body).await
        }
        (Method::PATCH, [.., "workspaces", _, "onlineendpoints", _]) => {
            patch_endpoint(&emu, &path, &body).await
        }
        (Method::GET, [.., "workspaces", _, "onlineendpoints"]) => {
            list_kind(&emu, online::ENDPOINT, &path, true).await
        }
        (Method::GET, [.., "workspaces", _, "onlineendpoints", _]) => {
            get_kind(&emu, online::ENDPOINT, &path, true).await
        }
        (Method::POST, [.., "onlineendpoints", _, "listkeys"]) => {
            online::list_keys(&emu, &parent_of(&path, 1)).await
        }
        (Method::PUT, [.., "onlineendpoints", _, "deployments", _]) => {
            let endpoint = parent_of(&path, 2);
            online::put_deployment(&emu, &headers, &path, &endpoint, &body).await
        }
        (Method::DELETE, [.., "onlineendpoints", _, "deployments", _]) => {
            let endpoint = parent_of(&path, 2);
            online::delete_deployment(&emu, &headers, &path, &endpoint).await
        }
        (Method::GET, [.., "onlineendpoints", _, "deployments"]) => {
            list_kind(&emu, online::DEPLOYMENT, &path, true).await
        }
        (Method::GET, [.., "onlineendpoints", _, "deployments", _]) => {
            get_kind(&emu, online::DEPLOYMENT, &path, true).await
        }
        (Method::PUT, [.., "automationaccounts", _, "jobs", _]) => {
            super::automation::put_job(&emu, &path, &parent_of(&path, 2), &body).await
        }
        (Method::GET, [.., "automationaccounts", _, "jobs", _]) => {
            super::automation::get_job(&emu, &path).await
        }
        (Method::GET, [.., "automationaccounts", _, "jobs", _, "output"]) => {
            super::automation::output(&emu, &parent_of(&path, 1)).await
        }
        (Method::POST, [.., "microsoft.containerregistry", "registries", _, "schedulerun"]) => {
            super::acr::schedule_run(&emu, &parent_of(&path, 1), &body).await
        }
        (Method::GET, [.., "microsoft.containerregistry", "registries", _, "runs"]) => {
            super::acr::list_runs(&emu, &parent_of(&path, 1)).await
        }
        (Method::GET, [.., "microsoft.containerregistry", "registries", _, "runs", _]) => {
            super::acr::get_run(&emu, &path).await
        }
        (Method::POST, [.., "registries", _, "runs", _, "listlogsasurl"]) => {
            super::acr::log_link(&emu, &headers, &parent_of(&path, 1)).await
        }
        (Method::POST, [.., "onlineendpoints", _, "deployments", _, "getlogs"]) => {
            online::get_logs(&emu, &parent_of(&path, 1), &body).await
        }
        (Method::POST, [.., "providers", "microsoft.costmanagement", "query"]) => {
            super::cost::query(&emu, &parent_of(&path, 3), &body).await
        }
        (Method::GET, [.., "providers", "microsoft.consumption", "budgets"]) => {
            super::cost::budgets(&emu, &parent_of(&path, 3), None).await
        }
        (Method::GET, [.., "providers", "microsoft.consumption", "budgets", _]) => {
            let name = path.rsplit('/').next().unwrap_or_default().to_string();
            super::cost::budgets(&emu, &parent_of(&path, 4), Some(&name)).await
        }
        (Method::GET, [.., "providers", "microsoft.alertsmanagement", "alerts"]) => {
            super::alerts::list(&emu, &headers, &path, &q).await
        }
        (Method::GET, [.., "providers", "microsoft.alertsmanagement", "alerts", _]) => {
            super::alerts::get(&emu, &path).await
        }
        (Method::GET, [.., "providers", "microsoft.alertsmanagement", "alerts", _, "history"]) => {
            super::alerts::history(&emu, &path).await
        }
        (
            Method::POST,
            [.., "providers", "microsoft.alertsmanagement", "alerts", _, "changestate"],
        ) => super::alerts::change_state(&emu, &path, &q, &body).await,
        (Method::GET, ["subscriptions"]) => {
            Json(json!({"value": [subscription(&emu)], "nextLink": null})).into_response()
        }
        (Method::GET, ["subscriptions", sub]) => {
            if sub.eq_ignore_ascii_case(&emu.inner.estate.subscription_id) {
                Json(subscription(&emu)).into_response()
            } else {
                arm_error(
                    StatusCode::NOT_FOUND,
                    "SubscriptionNotFound",
                    format!("The subscription '{sub}' could not be found."),
                )
            }
        }
        (Method::GET, ["subscriptions", _, "resourcegroups"]) => {
            match emu.inner.store.children(store::RESOURCE_GROUP, &lower, 0, 1000).await {
                Ok(groups) => Json(json!({"value": groups.into_iter().map(|g| g.body).collect::<Vec<_>>(), "nextLink": null})).into_response(),
                Err(e) => db_error(e),
            }
        }
        (Method::GET, ["subscriptions", _, "resourcegroups", _, "resources"]) => {
            list_group(&emu, &headers, &path, &q).await
        }
        (Method::GET, [.., "providers", "microsoft.authorization", "roleassignments"]) => {
            role_assignments(&emu, &seg, &q).await
        }
        (Method::GET, [.., "providers", "microsoft.authorization", "roledefinitions", guid]) => {
            let scope = path[..path
                .to_ascii_lowercase()
                .find("/providers/microsoft.authorization")
                .unwrap_or(0)]
                .to_string();
            match seed::role_definition(&scope, guid) {
                Some(def) => Json(def).into_response(),
                None => arm_error(
                    StatusCode::NOT_FOUND,
                    "RoleDefinitionDoesNotExist",
                    "The specified role definition with ID '".to_string()
                        + guid
                        + "' does not exist.",
                ),
            }
        }
        (Method::GET, ["subscriptions", _, ..]) => {
            get_or_list(&emu, &headers, &path, &seg, &q).await
        }
        (Method::GET, _) => arm_error(
            StatusCode::NOT_FOUND,
            "PathNotFound",
            format!("The path '{path}' is not an Azure Resource Manager path the emulator serves."),
        ),
        _ => arm_error(
            StatusCode::METHOD_NOT_ALLOWED,
            "MethodNotAllowed",
            format!("The emulator does not support {method} on '{path}'."),
        ),
    }
}

/// `path` without its last `n` segments.
fn parent_of(path: &str, n: usize) -> String {
    let mut p = path;
    for _ in 0..n {
        p = p.rsplit_once('/').map(|x| x.0).unwrap_or_default();
    }
    p.to_string()
}

async fn get_kind(emu: &Emulator, kind: &str, path: &str, lro: bool) -> Resp {
    match emu.inner.store.get(kind, path).await {
        Ok(Some(o)) => Json(if lro { online::render(&o) } else { o.body }).into_response(),
        Ok(None) => {
            let name = path.rsplit('/').next().unwrap_or_default();
            arm_error(
                StatusCode::NOT_FOUND,
                "ResourceNotFound",
                format!("The resource '{name}' was not found."),
            )
        }
        Err(e) => db_error(e),
    }
}

async fn list_kind(emu: &Emulator, kind: &str, path: &str, lro: bool) -> Resp {
    match emu.inner.store.children(kind, path, 0, 1000).await {
        Ok(items) => {
            let value: Vec<Value> = items
                .iter()
                .map(|o| {
                    if lro {
                        online::render(o)
                    } else {
                        o.body.clone()
                    }
                })
                .collect();
            Json(json!({"value": value, "nextLink": null})).into_response()
        }
        Err(e) => db_error(e),
    }
}

/// Online endpoints take only `tags` and `identity` in a PATCH; `properties` are changed by PUT.
async fn patch_endpoint(emu: &Emulator, path: &str, body: &Bytes) -> Resp {
    let Ok(patch) = serde_json::from_slice::<Value>(body) else {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "UserError",
            "The request body is not valid JSON.",
        );
    };
    if patch.get("properties").is_some() {
        return arm_error(StatusCode::BAD_REQUEST, "BadArgument", "PATCH accepts only tags and identity; PUT the whole endpoint to change its properties (such as traffic).");
    }
    match emu.inner.store.get(online::ENDPOINT, path).await {
        Ok(Some(mut o)) => {
            for key in ["tags", "identity"] {
                if let Some(v) = patch.get(key) {
                    o.body[key] = v.clone();
                }
            }
            match emu
                .inner
                .store
                .upsert(online::ENDPOINT, path, &parent_of(path, 1), &o.body)
                .await
            {
                Ok(o) => Json(online::render(&o)).into_response(),
                Err(e) => db_error(e),
            }
        }
        Ok(None) => arm_error(
            StatusCode::NOT_FOUND,
            "ResourceNotFound",
            "The online endpoint was not found.",
        ),
        Err(e) => db_error(e),
    }
}

/// The one subscription the emulator holds, as `GET /subscriptions/{id}` returns it.
fn subscription(emu: &Emulator) -> Value {
    let id = &emu.inner.estate.subscription_id;
    json!({"id": format!("/subscriptions/{id}"), "subscriptionId": id, "tenantId": seed::TENANT,
        "displayName": format!("{} (emulator)", emu.inner.estate.name), "state": "Enabled",
        "subscriptionPolicies": {"locationPlacementId": "Public_2014-09-01", "quotaId": "PayAsYouGo_2014-09-01", "spendingLimit": "Off"},
        "authorizationSource": "RoleBased"})
}

/// A page of `items` with a `nextLink` carrying the offset in `$skiptoken`.
fn page(
    items: Vec<Value>,
    more: bool,
    headers: &HeaderMap,
    path: &str,
    q: &HashMap<String, String>,
    offset: i64,
) -> Resp {
    let next = more.then(|| {
        let mut url =
            url::Url::parse(&format!("{}{}", base_url(headers), path)).expect("valid URL");
        {
            let mut pairs = url.query_pairs_mut();
            for (k, v) in q {
                if k != "$skiptoken" {
                    pairs.append_pair(k, v);
                }
            }
            pairs.append_pair("$skiptoken", &offset.to_string());
        }
        url.to_string()
    });
    Json(json!({"value": items, "nextLink": next})).into_response()
}

/// The offset in `$skiptoken`; `None` for a token this emulator did not issue.
fn offset_of(q: &HashMap<String, String>) -> Option<i64> {
    match q.get("$skiptoken") {
        None => Some(0),
        Some(t) => t.parse::<i64>().ok().filter(|n| *n >= 0),
    }
}

fn invalid_skip_token() -> Resp {
    arm_error(
        StatusCode::BAD_REQUEST,
        "InvalidSkipToken",
        "The provided $skipToken is not valid.",
    )
}

/// `GET /subscriptions/{s}/resourceGroups/{rg}/resources`: list items carry no `properties`; `$expand`
/// adds createdTime, changedTime and provisioningState; `$filter=resourceType eq '…'` and `$top` apply.
async fn list_group(
    emu: &Emulator,
    headers: &HeaderMap,
    path: &str,
    q: &HashMap<String, String>,
) -> Resp {
    let rg = &path[..path.len() - "/resources".len()];
    match emu.inner.store.get_arm(rg).await {
        Ok(Some(_)) => {}
        Ok(None) => return group_not_found(rg),
        Err(e) => return db_error(e),
    }
    let Some(offset) = offset_of(q) else {
        return invalid_skip_token();
    };
    let expand: Vec<String> = q
        .get("$expand")
        .map(|e| {
            e.split(',')
                .map(|s| s.trim().to_ascii_lowercase())
                .collect()
        })
        .unwrap_or_default();
    for e in &expand {
        if !["createdtime", "changedtime", "provisioningstate"].contains(&e.as_str()) {
            return arm_error(StatusCode::BAD_REQUEST, "InvalidExpand", format!("The $expand value '{e}' is not supported. Allowed: createdTime, changedTime, provisioningState."));
        }
    }
    let type_filter = match q.get("$filter") {
        None => None,
        Some(f) => match f.split_once(" eq ") {
            Some((field, value)) if field.trim().eq_ignore_ascii_case("resourceType") => {
                Some(value.trim().trim_matches('\'').to_ascii_lowercase())
            }
            _ => return arm_error(StatusCode::BAD_REQUEST, "InvalidFilter", format!("The $filter '{f}' is not supported by the emulator; use resourceType eq '<type>'.")),
        },
    };
    let top = match q.get("$top").map(|t| t.parse::<i64>()) {
        None => None,
        Some(Ok(n)) if n > 0 => Some(n),
        Some(_) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidTop",
                "$top must be a positive integer.",
            )
        }
    };
    let size = top.unwrap_or(emu.inner.page_size).min(emu.inner.page_size);
    // Filter in memory: an estate's group holds tens of resources, not millions.
    let all = match emu.inner.store.under(store::RESOURCE, rg, 0, 10_000).await {
        Ok(all) => all,
        Err(e) => return db_error(e),
    };
    let matching: Vec<&Object> = all
        .iter()
        .filter(|o| {
            type_filter.as_deref().is_none_or(|t| {
                o.body
                    .get("type")
                    .and_then(Value::as_str)
                    .is_some_and(|ty| ty.eq_ignore_ascii_case(t))
            })
        })
        .collect();
    let items: Vec<Value> = matching
        .iter()
        .skip(offset as usize)
        .take(size as usize)
        .map(|o| list_item(o, &expand))
        .collect();
    let more = (offset + size) < matching.len() as i64;
    page(items, more, headers, path, q, offset + size)
}

fn list_item(o: &Object, expand: &[String]) -> Value {
    let mut m = Map::new();
    for key in [
        "id",
        "name",
        "type",
        "location",
        "tags",
        "sku",
        "kind",
        "identity",
        "managedBy",
    ] {
        if let Some(v) = o.body.get(key) {
            m.insert(key.into(), v.clone());
        }
    }
    for e in expand {
        match e.as_str() {
            "createdtime" => m.insert(
                "createdTime".into(),
                json!(o
                    .created_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            ),
            "changedtime" => m.insert(
                "changedTime".into(),
                json!(o
                    .changed_at
                    .to_rfc3339_opts(chrono::SecondsFormat::Micros, true)),
            ),
            _ => m.insert(
                "provisioningState".into(),
                o.body
                    .pointer("/properties/provisioningState")
                    .cloned()
                    .unwrap_or(json!("Succeeded")),
            ),
        };
    }
    Value::Object(m)
}

fn group_not_found(rg_id: &str) -> Resp {
    let name = rg_id.rsplit('/').next().unwrap_or_default();
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceGroupNotFound",
        format!("Resource group '{name}' could not be found."),
    )
}

/// A resource (or resource group, container, role assignment) by id; else the children under a
/// collection path; else ARM's not-found errors.
async fn get_or_list(
    emu: &Emulator,
    headers: &HeaderMap,
    path: &str,
    seg: &[&str],
    q: &HashMap<String, String>,
) -> Resp {
    match emu.inner.store.get_arm(path).await {
        Ok(Some(o)) => return Json(o.body).into_response(),
        Ok(None) => {}
        Err(e) => return db_error(e),
    }
    if seg.len() >= 4 {
        let rg = format!("/{}", seg[..4].join("/"));
        match emu.inner.store.get_arm(&rg).await {
            Ok(Some(_)) => {}
            Ok(None) => return group_not_found(&rg),
            Err(e) => return db_error(e),
        }
    }
    let Some(offset) = offset_of(q) else {
        return invalid_skip_token();
    };
    let size = emu.inner.page_size;
    for kind in [store::RESOURCE, store::CONTAINER] {
        match emu.inner.store.children(kind, path, offset, size + 1).await {
            Ok(items) if !items.is_empty() || offset > 0 => {
                let more = items.len() as i64 > size;
                let items = items
                    .into_iter()
                    .take(size as usize)
                    .map(|o| o.body)
                    .collect();
                return page(items, more, headers, path, q, offset + size);
            }
            Ok(_) => {}
            Err(e) => return db_error(e),
        }
    }
    // An empty collection under an existing resource is an empty list, as Azure answers.
    let parent = path.rsplit_once('/').map(|x| x.0).unwrap_or_default();
    let grandparent = parent.rsplit_once('/').map(|x| x.0).unwrap_or_default();
    for candidate in [parent, grandparent] {
        if seg.len() > 8 && matches!(emu.inner.store.get_arm(candidate).await, Ok(Some(_))) {
            return Json(json!({"value": [], "nextLink": null})).into_response();
        }
    }
    // The message names the resource as the caller spelt it.
    let original: Vec<&str> = path.split('/').skip(1).collect();
    let (ty, name) = match original.as_slice() {
        [_, _, _, _, p, ns, ty, name, ..] if p.eq_ignore_ascii_case("providers") => {
            (format!("{ns}/{ty}"), name.to_string())
        }
        _ => (
            String::new(),
            path.rsplit('/').next().unwrap_or_default().to_string(),
        ),
    };
    let rg = original.get(3).copied().unwrap_or_default();
    arm_error(
        StatusCode::NOT_FOUND,
        "ResourceNotFound",
        format!("The Resource '{ty}/{name}' under resource group '{rg}' was not found. For more details please go to https://aka.ms/ARMResourceNotFoundFix"),
    )
}

/// Role assignments visible at a scope (at, above and below it), optionally for one principal.
async fn role_assignments(emu: &Emulator, seg: &[&str], q: &HashMap<String, String>) -> Resp {
    let sub = match seg {
        ["subscriptions", s, ..] => format!("/subscriptions/{s}"),
        _ => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidScope",
                "Role assignments are listed at a subscription scope or below.",
            )
        }
    };
    let principal = match q.get("$filter") {
        None => None,
        Some(f) => match f.split_once(" eq ") {
            Some((field, value)) if field.trim().eq_ignore_ascii_case("principalId") => {
                Some(value.trim().trim_matches('\'').to_ascii_lowercase())
            }
            _ if f.trim().eq_ignore_ascii_case("atScope()") => None,
            _ => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "UnsupportedQuery",
                    format!("The filter '{f}' is not supported."),
                )
            }
        },
    };
    let all = match emu
        .inner
        .store
        .under(store::ROLE_ASSIGNMENT, &sub, 0, 10_000)
        .await
    {
        Ok(all) => all,
        Err(e) => return db_error(e),
    };
    let value: Vec<Value> = all
        .into_iter()
        .map(|o| o.body)
        .filter(|b| {
            principal.as_deref().is_none_or(|p| {
                b.pointer("/properties/principalId")
                    .and_then(Value::as_str)
                    .is_some_and(|id| id.eq_ignore_ascii_case(p))
            })
        })
        .collect();
    Json(json!({"value": value, "nextLink": null})).into_response()
}

/// `POST /providers/Microsoft.ResourceGraph/resources`, paging with `$skipToken`.
async fn resource_graph(emu: &Emulator, body: &Bytes) -> Resp {
    let request: QueryRequest = match serde_json::from_slice(body) {
        Ok(r) => r,
        Err(e) => {
            return arm_error(
                StatusCode::BAD_REQUEST,
                "InvalidRequestContent",
                format!("The request content was invalid and could not be deserialized: {e}"),
            )
        }
    };
    let options = request.options.unwrap_or_default();
    let top = options.top.unwrap_or(100);
    if !(1..=1000).contains(&top) {
        return arm_error(
            StatusCode::BAD_REQUEST,
            "BadRequest",
            "The $top option must be between 1 and 1000.",
        );
    }
    let offset = match options.skip_token.as_deref() {
        None => options.skip.unwrap_or(0).max(0),
        Some(t) => match t.parse::<i64>() {
            Ok(n) if n >= 0 => n,
            _ => {
                return arm_error(
                    StatusCode::BAD_REQUEST,
                    "BadRequest",
                    "The $skipToken is not valid.",
                )
            }
        },
    };
    let subscriptions = if request.subscriptions.is_empty() {
        vec![emu.inner.estate.subscription_id.clone()]
    } else {
        request.subscriptions
    };
    let mut rows = Vec::new();
    for sub in &subscriptions {
        match emu
            .inner
            .store
            .under(
                store::RESOURCE,
                &format!("/subscriptions/{sub}"),
                0,
                100_000,
            )
            .await
        {
            Ok(objects) => rows.extend(objects.iter().map(|o| graph::row(&o.body, sub))),
            Err(e) => return db_error(e),
        }
    }
    let rows = match graph::run(&request.query, rows) {
        Ok(rows) => rows,
        Err(graph::QueryError(reason)) => {
            let mut err = crate::azure::wire::ErrorResponse::new(
                "BadRequest",
                "Please provide below info when asking for support: timestamp, correlationId.",
            );
            err.error.details = vec![
                crate::azure::wire::ErrorDetail { code: "InvalidQuery".into(), message: "Query is invalid. Please refer to the documentation for the Azure Resource Graph service and fix the error before retrying.".into(), target: None, details: vec![], innererror: None },
                crate::azure::wire::ErrorDetail { code: "ParserFailure".into(), message: reason, target: None, details: vec![], innererror: None },
            ];
            return (StatusCode::BAD_REQUEST, Json(err)).into_response();
        }
    };
    let total = rows.len() as i64;
    let data: Vec<Value> = rows
        .into_iter()
        .skip(offset as usize)
        .take(top as usize)
        .collect();
    let next = offset + data.len() as i64;
    let response = QueryResponse {
        total_records: total,
        count: data.len() as i64,
        result_truncated: "false".into(),
        skip_token: (next < total).then(|| next.to_string()),
        data: Value::Array(data),
        facets: vec![],
    };
    let mut r = Json(response).into_response();
    r.headers_mut()
        .insert("x-ms-user-quota-remaining", HeaderValue::from(14));
    r.headers_mut().insert(
        "x-ms-user-quota-resets-after",
        HeaderValue::from_static("00:00:05"),
    );
    r
}

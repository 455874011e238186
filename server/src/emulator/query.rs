//! The Log Analytics and Application Insights query APIs: `POST /v1/workspaces/{customerId}/query` and
//! `POST /v1/apps/{appId}/query` (and their GET forms with `?query=&timespan=`), answering
//! `{"tables":[…]}` from the [`telemetry`](super::telemetry) through the [`kql`](super::kql) subset.
//! Bad KQL is Azure's 400 `BadArgumentError` with the inner `SyntaxError`/`SEM…` code; results past the
//! row limit (500,000, or `set truncationmaxrecords = N;`) come back with Azure's `PartialError`;
//! `Prefer: wait=N` bounds the time (504 past it), `include-render` and `include-statistics` add those
//! sections.

use super::kql::{self, QueryError, TimeRange};
use super::telemetry::{Product, Telemetry};
use super::{has_bearer, Emulator, Resp};
use axum::body::Bytes;
use axum::extract::{Path, Query, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::response::IntoResponse;
use axum::Json;
use serde_json::{json, Value};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Azure's documented per-query row limit.
pub const ROW_LIMIT: usize = 500_000;
const DEFAULT_WAIT: u64 = 180;
const MAX_WAIT: u64 = 600;

fn error(status: StatusCode, code: &str, message: &str) -> Resp {
    (
        status,
        Json(json!({"error": {"message": message, "code": code}})),
    )
        .into_response()
}

fn bad_query(e: &QueryError) -> Resp {
    (StatusCode::BAD_REQUEST, Json(kql::error_json(e))).into_response()
}

/// Leading `set option = value;` statements: the row limit, or none at all.
fn options(query: &str) -> Result<(usize, &str), QueryError> {
    let mut rest = query.trim_start();
    let mut cap = ROW_LIMIT;
    while let Some(stmt) = rest.strip_prefix("set ") {
        let Some((option, after)) = stmt.split_once(';') else {
            return Err(QueryError::new(
                kql::SYNTAX_ERROR,
                "A 'set' statement must end with ';'",
            ));
        };
        let (name, value) = match option.split_once('=') {
            Some((n, v)) => (n.trim(), Some(v.trim())),
            None => (option.trim(), None),
        };
        match (name, value) {
            ("truncationmaxrecords", Some(v)) => {
                cap = v.parse().map_err(|_| QueryError::new(kql::SYNTAX_ERROR, format!("truncationmaxrecords takes a whole number, not '{v}'")))?;
            }
            ("notruncation", None) => cap = ROW_LIMIT,
            _ => return Err(QueryError::new(kql::UNSUPPORTED, format!("The request option '{name}' is not supported by the emulator; use truncationmaxrecords or notruncation"))),
        }
        rest = after.trim_start();
    }
    Ok((cap, rest))
}

/// What `Prefer` asks for: the wait in seconds, render and statistics sections.
fn prefer(headers: &HeaderMap) -> (u64, bool, bool) {
    let mut wait = DEFAULT_WAIT;
    let (mut render, mut stats) = (false, false);
    for value in headers
        .get_all("prefer")
        .iter()
        .filter_map(|v| v.to_str().ok())
    {
        for part in value.split(',').map(str::trim) {
            if let Some(w) = part.strip_prefix("wait=") {
                wait = w.parse().unwrap_or(DEFAULT_WAIT).min(MAX_WAIT);
            }
            render |= part == "include-render=true";
            stats |= part == "include-statistics=true";
        }
    }
    (wait, render, stats)
}

/// `POST|GET /v1/{workspaces|apps}/{id}/query`.
pub async fn query(
    State(emu): State<Emulator>,
    Path((collection, id)): Path<(String, String)>,
    method: Method,
    Query(params): Query<HashMap<String, String>>,
    headers: HeaderMap,
    body: Bytes,
) -> Resp {
    if !has_bearer(&headers) {
        return error(
            StatusCode::UNAUTHORIZED,
            "AuthorizationRequiredError",
            "Valid authentication was not provided",
        );
    }
    let estate = &emu.inner.estate;
    let product = match collection.as_str() {
        "workspaces" if id.eq_ignore_ascii_case(&estate.log_analytics_workspace_id) => {
            Product::LogAnalytics
        }
        "apps" if id.eq_ignore_ascii_case(&estate.app_insights_app_id) => Product::AppInsights,
        "workspaces" | "apps" => {
            return error(
                StatusCode::NOT_FOUND,
                "PathNotFoundError",
                &format!("The requested path does not exist: no {collection} '{id}'"),
            )
        }
        _ => {
            return error(
                StatusCode::NOT_FOUND,
                "PathNotFoundError",
                "The requested path does not exist",
            )
        }
    };
    let (text, timespan) = if method == Method::GET {
        (
            params.get("query").cloned(),
            params.get("timespan").cloned(),
        )
    } else {
        match serde_json::from_slice::<Value>(&body) {
            Ok(v) => (
                v["query"].as_str().map(str::to_string),
                v["timespan"].as_str().map(str::to_string),
            ),
            Err(_) => {
                return bad_query(&QueryError::new(
                    "InvalidJson",
                    "The request body is not JSON with a 'query'",
                ))
            }
        }
    };
    let Some(text) = text.filter(|q| !q.trim().is_empty()) else {
        return bad_query(&QueryError::new(
            "MissingQuery",
            "The 'query' property is required",
        ));
    };
    let (wait, with_render, with_stats) = prefer(&headers);
    let telemetry = match Telemetry::load(&emu, product).await {
        Ok(t) => t,
        Err(e) => return super::arm::db_error(e),
    };
    let now = telemetry.now();
    let range = match timespan {
        Some(t) => match kql::parse_timespan(&t, now) {
            Ok(r) => r,
            Err(e) => return bad_query(&e),
        },
        None => TimeRange {
            start: now - chrono::Duration::days(30),
            end: now,
        },
    };
    let started = Instant::now();
    let work = tokio::task::spawn_blocking(move || {
        let (cap, query) = options(&text)?;
        kql::run(query, &telemetry, now, &range, cap)
    });
    let out = match tokio::time::timeout(Duration::from_secs(wait), work).await {
        Err(_) => {
            return error(
                StatusCode::GATEWAY_TIMEOUT,
                "GatewayTimeout",
                &format!("The query did not complete within {wait} seconds (Prefer: wait={wait})"),
            )
        }
        Ok(Err(_)) => {
            return error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "InternalServerError",
                "The query engine failed; see the emulator's log.",
            )
        }
        Ok(Ok(Err(e))) => return bad_query(&e),
        Ok(Ok(Ok(out))) => out,
    };
    let mut answer = kql::to_json(&out);
    if out.truncated {
        let rows = out.table.rows.len();
        answer["error"] = json!({"code": "PartialError", "message": "There were some errors when processing your query.",
            "details": [{"code": "EngineError", "message": format!("Query result set has exceeded the internal record count limit {rows} records (E_QUERY_RESULT_SET_TOO_LARGE; see https://aka.ms/kustoquerylimits)"),
                "innererror": {"code": "-2133196797", "message": "Query result set has exceeded the internal record count limit", "severity": 2, "severityName": "Error"}}]});
    }
    if with_render {
        if let Some(r) = &out.render {
            answer["render"] = json!({"visualization": r});
        }
    }
    if with_stats {
        answer["statistics"] = json!({"query": {"executionTime": started.elapsed().as_secs_f64(), "resourceUsage": {}}});
    }
    Json(answer).into_response()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn set_statements_set_the_row_limit() {
        assert_eq!(
            options("requests | take 1").unwrap(),
            (ROW_LIMIT, "requests | take 1")
        );
        assert_eq!(
            options("set truncationmaxrecords = 10; requests").unwrap(),
            (10, "requests")
        );
        assert_eq!(
            options("set notruncation;\nrequests").unwrap(),
            (ROW_LIMIT, "requests")
        );
        assert_eq!(
            options("set query_now = 1; requests").unwrap_err().code,
            kql::UNSUPPORTED
        );
        assert_eq!(
            options("set truncationmaxrecords = x; r").unwrap_err().code,
            kql::SYNTAX_ERROR
        );
    }
}

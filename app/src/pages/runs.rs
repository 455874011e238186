//! Run history: the list with filters and keyset pages, and one run's live timeline, logs and metrics.

use crate::api::{get_run, list_runs};
use crate::components::{urlencode, ErrorPanel, IfRole, Loading, Shell};
use crate::model::{RunDetail, RunFilter, RunStatus};
use leptos::prelude::*;
use leptos_router::hooks::{use_params_map, use_query_map};
use std::time::Duration;

#[component]
pub fn RunStatusPill(status: RunStatus) -> impl IntoView {
    let class = match status {
        RunStatus::Succeeded => "pill ok",
        RunStatus::Failed | RunStatus::Canceled => "pill bad",
        _ => "pill busy",
    };
    view! { <span class=class data-status=status.as_str()>{status.as_str()}</span> }
}

fn when(t: chrono::DateTime<chrono::Utc>) -> String {
    t.format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

#[component]
pub fn RunsPage() -> impl IntoView {
    let query = use_query_map();
    let filter = move || {
        let q = query.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        RunFilter {
            kind: get("kind"),
            status: get("status"),
            target: get("target"),
            requested_by: get("requested_by"),
            since: get("since"),
            until: get("until"),
            cursor: get("cursor"),
            limit: None,
        }
    };
    let runs = Resource::new(filter, list_runs);
    let value = move |k: &'static str| query.read().get(k).unwrap_or_default();
    view! {
        <Shell estate=None>
            <div class="page-head">
                <h1>"Runs"</h1>
                <IfRole role=crate::auth::Role::Operator><a class="button" href="/train">"New training job"</a></IfRole>
            </div>
            <form class="filters card" method="get" action="/runs">
                <label>"Kind"<input name="kind" placeholder="training-job" value=move || value("kind")/></label>
                <label>"Status"
                    <select name="status">
                        <option value="">"any"</option>
                        {RunStatus::ALL.into_iter().map(|s| view! {
                            <option value=s.as_str() selected=move || value("status") == s.as_str()>{s.as_str()}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Target contains"<input name="target" value=move || value("target")/></label>
                <label>"Requested by"<input name="requested_by" value=move || value("requested_by")/></label>
                <label>"Since"<input name="since" placeholder="2026-12-01T00:00:00Z" value=move || value("since")/></label>
                <label>"Until"<input name="until" placeholder="RFC 3339" value=move || value("until")/></label>
                <button type="submit" class="button">"Filter"</button>
            </form>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match runs.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok(list) => {
                            let next = list.next_cursor.map(|c| {
                                let q = query.read();
                                let mut params: Vec<String> = ["kind", "status", "target", "requested_by", "since", "until"]
                                    .iter()
                                    .filter_map(|k| q.get(k).filter(|v| !v.is_empty()).map(|v| format!("{k}={}", urlencode(&v))))
                                    .collect();
                                params.push(format!("cursor={c}"));
                                view! { <a class="button secondary" href=format!("/runs?{}", params.join("&"))>"Older runs →"</a> }
                            });
                            let rows = list.runs.into_iter().map(|r| view! {
                                <tr data-run=r.id.clone()>
                                    <td><a href=format!("/runs/{}", r.id) class="mono">{r.id[..8].to_string()}</a></td>
                                    <td>{r.kind}</td>
                                    <td class="mono">{r.target}</td>
                                    <td><RunStatusPill status=r.status/></td>
                                    <td>{r.azure_status.unwrap_or_default()}</td>
                                    <td>{r.requested_by}</td>
                                    <td>{when(r.created_at)}</td>
                                </tr>
                            }).collect_view();
                            view! {
                                <section class="card">
                                    <table class="grid">
                                        <thead><tr><th>"Run"</th><th>"Kind"</th><th>"Target"</th><th>"Status"</th><th>"Azure"</th><th>"Requested by"</th><th>"Requested"</th></tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                    <div class="pager">{next}</div>
                                </section>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </Shell>
    }
}

#[component]
pub fn RunPage() -> impl IntoView {
    let params = use_params_map();
    let (tick, set_tick) = signal(0u64);
    let run = Resource::new(
        move || (params.read().get("id").unwrap_or_default(), tick.get()),
        |(id, _)| get_run(id),
    );
    // While the run is in flight, look again every second (in the browser only).
    Effect::new(move |_| {
        if let Ok(handle) = set_interval_with_handle(
            move || {
                let done = run
                    .get_untracked()
                    .and_then(|r| r.ok())
                    .is_some_and(|r| r.summary.status.is_terminal());
                if !done {
                    set_tick.update(|t| *t += 1);
                }
            },
            Duration::from_secs(1),
        ) {
            on_cleanup(move || handle.clear());
        }
    });
    view! {
        <Shell estate=None>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match run.await {
                        Ok(r) => view! { <RunView run=r/> }.into_any(),
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}

#[component]
fn RunView(run: RunDetail) -> impl IntoView {
    let RunDetail {
        summary,
        parameters,
        reason,
        azure_id,
        parent_id,
        error,
        transitions,
        logs,
        metrics,
    } = run;
    let timeline = transitions
        .into_iter()
        .map(|t| {
            view! {
                <li>
                    <RunStatusPill status=t.status/>
                    " " <span class="mono">{t.azure_status.unwrap_or_default()}</span>
                    " " <span class="muted">{when(t.at)}</span>
                    {t.note.map(|n| view! { " " <span class="muted">{format!("— {n}")}</span> })}
                </li>
            }
        })
        .collect_view();
    let log_text = logs
        .iter()
        .map(|l| format!("{}  {}", l.at.format("%H:%M:%S%.3f"), l.line))
        .collect::<Vec<_>>()
        .join("\n");
    let metric_rows = metrics
        .into_iter()
        .map(|m| view! { <tr><td>{m.key}</td><td class="num">{format!("{:.4}", m.value)}</td><td>{m.step}</td></tr> })
        .collect_view();
    let params = serde_json::to_string_pretty(&parameters).unwrap_or_default();
    view! {
        <nav class="crumbs"><a href="/runs">"Runs"</a>" / "{summary.id[..8].to_string()}</nav>
        <div class="page-head">
            <div>
                <h1 class="resource-title">{summary.kind.clone()}" "<span class="muted">{summary.target.clone()}</span></h1>
                <p class="muted">"Requested by "{summary.requested_by.clone()}" at "{when(summary.created_at)}
                    {reason.map(|r| format!(" — “{r}”"))}</p>
            </div>
            <div class="run-status" data-testid="run-status"><RunStatusPill status=summary.status/></div>
        </div>
        {error.map(|e| view! { <div class="banner stale" role="alert">{e}</div> })}
        <section class="card">
            <dl class="facts">
                <div><dt>"Run ID"</dt><dd class="mono">{summary.id.clone()}</dd></div>
                <div><dt>"Azure status"</dt><dd>{summary.azure_status.clone().unwrap_or_else(|| "—".into())}</dd></div>
                <div><dt>"Finished"</dt><dd>{summary.finished_at.map(when).unwrap_or_else(|| "in flight".into())}</dd></div>
                <div><dt>"Parent run"</dt><dd>{parent_id.map(|p| view! { <a href=format!("/runs/{p}")>{p[..8].to_string()}</a> }.into_any()).unwrap_or_else(|| "—".into_any())}</dd></div>
                <div class="wide"><dt>"Azure ID"</dt><dd class="mono">{azure_id.unwrap_or_else(|| "—".into())}</dd></div>
            </dl>
        </section>
        <div class="two">
            <section class="card"><h2>"Timeline"</h2><ol class="timeline">{timeline}</ol></section>
            <section class="card"><h2>"Metrics"</h2>
                <table class="grid"><thead><tr><th>"Metric"</th><th>"Last value"</th><th>"Step"</th></tr></thead>
                <tbody>{metric_rows}</tbody></table>
            </section>
        </div>
        <section class="card"><h2>"Log"</h2><pre class="log" data-testid="run-log">{log_text}</pre></section>
        <section class="card"><h2>"Parameters"</h2><pre class="log">{params}</pre></section>
        <form class="card filters" method="get" action="/runs/compare">
            <input type="hidden" name="a" value=summary.id.clone()/>
            <label>"Compare with run"<input name="b" placeholder="run id" required/></label>
            <button type="submit" class="button secondary">"Compare"</button>
        </form>
    }
}

/// Two training runs side by side: their metrics and the parameters that differ.
#[component]
pub fn ComparePage() -> impl IntoView {
    let query = use_query_map();
    let pair = Resource::new(
        move || {
            let q = query.read();
            (
                q.get("a").unwrap_or_default(),
                q.get("b").unwrap_or_default(),
            )
        },
        |(a, b)| async move {
            let (a, b) = futures::join!(get_run(a), get_run(b));
            Ok::<_, crate::error::AppError>((a?, b?))
        },
    );
    view! {
        <Shell estate=None>
            <nav class="crumbs"><a href="/runs">"Runs"</a>" / compare"</nav>
            <h1>"Compare runs"</h1>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match pair.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok((a, b)) => view! { <Comparison a b/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}

#[component]
fn Comparison(a: RunDetail, b: RunDetail) -> impl IntoView {
    let mut keys: Vec<String> = a
        .metrics
        .iter()
        .chain(&b.metrics)
        .map(|m| m.key.clone())
        .collect();
    keys.sort();
    keys.dedup();
    let value = |r: &RunDetail, k: &str| r.metrics.iter().find(|m| m.key == k).map(|m| m.value);
    let fmt = |v: Option<f64>| v.map(|v| format!("{v:.4}")).unwrap_or_else(|| "—".into());
    let metric_rows = keys
        .iter()
        .map(|k| {
            let (va, vb) = (value(&a, k), value(&b, k));
            let delta = match (va, vb) {
                (Some(x), Some(y)) => format!("{:+.4}", y - x),
                _ => "—".into(),
            };
            view! { <tr data-metric=k.clone()><td>{k.clone()}</td><td class="num">{fmt(va)}</td><td class="num">{fmt(vb)}</td><td class="num">{delta}</td></tr> }
        })
        .collect_view();
    let flat = |v: &serde_json::Value| -> Vec<(String, String)> {
        let mut out = Vec::new();
        if let Some(o) = v.as_object() {
            for (k, x) in o {
                match x.as_object() {
                    Some(inner) => out.extend(inner.iter().map(|(ik, iv)| {
                        (
                            format!("{k}.{ik}"),
                            iv.as_str()
                                .map(str::to_string)
                                .unwrap_or_else(|| iv.to_string()),
                        )
                    })),
                    None => out.push((
                        k.clone(),
                        x.as_str()
                            .map(str::to_string)
                            .unwrap_or_else(|| x.to_string()),
                    )),
                }
            }
        }
        out
    };
    let (pa, pb) = (flat(&a.parameters), flat(&b.parameters));
    let mut names: Vec<String> = pa.iter().chain(&pb).map(|(k, _)| k.clone()).collect();
    names.sort();
    names.dedup();
    let get = |p: &[(String, String)], k: &str| {
        p.iter()
            .find(|(n, _)| n == k)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let param_rows = names
        .into_iter()
        .filter(|k| get(&pa, k) != get(&pb, k))
        .map(|k| view! { <tr><td class="mono">{k.clone()}</td><td>{get(&pa, &k)}</td><td>{get(&pb, &k)}</td></tr> })
        .collect_view();
    let head = |r: &RunDetail| {
        view! {
            <a href=format!("/runs/{}", r.summary.id) class="mono">{r.summary.id[..8].to_string()}</a>
            " " <RunStatusPill status=r.summary.status/>
        }
    };
    view! {
        <section class="card">
            <h2>"Metrics"</h2>
            <table class="grid compare">
                <thead><tr><th>"Metric"</th><th>{head(&a)}</th><th>{head(&b)}</th><th>"B − A"</th></tr></thead>
                <tbody>{metric_rows}</tbody>
            </table>
        </section>
        <section class="card">
            <h2>"Parameters that differ"</h2>
            <table class="grid">
                <thead><tr><th>"Parameter"</th><th>"A"</th><th>"B"</th></tr></thead>
                <tbody>{param_rows}</tbody>
            </table>
        </section>
    }
}

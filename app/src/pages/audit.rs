//! The audit log: every change anyone made (or tried to), who, when, what, the outcome and why.

use crate::api::audit_log;
use crate::auth::AuditFilter;
use crate::components::{urlencode, ErrorPanel, Loading, Shell};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn AuditPage() -> impl IntoView {
    let q = use_query_map();
    let filter = move || {
        let q = q.read();
        let get = |k: &str| q.get(k).filter(|v| !v.is_empty());
        AuditFilter {
            actor: get("actor"),
            action: get("action"),
            target: get("target"),
            outcome: get("outcome"),
            since: get("since"),
            until: get("until"),
            cursor: get("cursor").and_then(|c| c.parse().ok()),
            limit: None,
        }
    };
    let entries = Resource::new(filter, audit_log);
    let value = move |k: &'static str| q.read().get(k).unwrap_or_default();
    view! {
        <Shell estate=None>
            <div class="page-head"><h1>"Audit log"</h1></div>
            <form class="filters card" method="get" action="/audit">
                <label>"Who"<input name="actor" value=move || value("actor")/></label>
                <label>"Action"<input name="action" placeholder="traffic" value=move || value("action")/></label>
                <label>"Target"<input name="target" value=move || value("target")/></label>
                <label>"Outcome"
                    <select name="outcome">
                        {["", "ok", "denied", "failed"].into_iter().map(|o| view! {
                            <option value=o selected=move || value("outcome") == o>{if o.is_empty() { "any" } else { o }}</option>
                        }).collect_view()}
                    </select>
                </label>
                <label>"Since"<input name="since" placeholder="2026-12-01T00:00:00Z" value=move || value("since")/></label>
                <button type="submit" class="button">"Filter"</button>
            </form>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match entries.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok(list) => {
                            let older = list.next_cursor.map(|c| {
                                let q = q.read();
                                let mut params: Vec<String> = ["actor", "action", "target", "outcome", "since", "until"]
                                    .iter()
                                    .filter_map(|k| q.get(k).filter(|v| !v.is_empty()).map(|v| format!("{k}={}", urlencode(&v))))
                                    .collect();
                                params.push(format!("cursor={c}"));
                                view! { <a class="button secondary" href=format!("/audit?{}", params.join("&"))>"Older entries →"</a> }
                            });
                            let rows = list.entries.into_iter().map(|e| {
                                let class = match e.outcome.as_str() { "ok" => "pill ok", "denied" => "pill bad", _ => "pill busy" };
                                let params = e.parameters.as_object().map(|m| m.iter()
                                    .filter(|(k, _)| !matches!(k.as_str(), "idempotency_key" | "reason_text" | "reason" | "comment" | "csrf_token"))
                                    .map(|(k, v)| format!("{k}={}", v.as_str().map(str::to_string).unwrap_or_else(|| v.to_string())))
                                    .collect::<Vec<_>>().join(", ")).unwrap_or_default();
                                view! {
                                    <tr data-audit=e.id>
                                        <td class="mono small">{e.at.format("%Y-%m-%d %H:%M:%S").to_string()}</td>
                                        <td>{e.actor.clone()}<div class="muted small">{e.role.clone().unwrap_or_default()}</div></td>
                                        <td class="mono">{e.action.clone()}</td>
                                        <td class="mono">{e.target.clone()}</td>
                                        <td><span class=class>{e.outcome.clone()}</span><span class="muted small">{format!(" {}", e.status)}</span></td>
                                        <td data-testid="audit-reason">{e.reason.clone().unwrap_or_default()}</td>
                                        <td class="small">{params}</td>
                                        <td>{e.run_id.clone().map(|r| view! { <a href=format!("/runs/{r}")>"run"</a> })}</td>
                                    </tr>
                                }
                            }).collect_view();
                            view! {
                                <section class="card">
                                    <table class="grid audit">
                                        <thead><tr><th>"When (UTC)"</th><th>"Who"</th><th>"Action"</th><th>"Target"</th><th>"Outcome"</th><th>"Reason"</th><th>"Parameters"</th><th></th></tr></thead>
                                        <tbody>{rows}</tbody>
                                    </table>
                                    {older}
                                </section>
                            }.into_any()
                        }
                    }
                })}
            </Transition>
        </Shell>
    }
}

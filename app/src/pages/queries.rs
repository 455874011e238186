//! Queries: saved and recent KQL queries beside an editor; the result as a typed table, a chart when it is
//! a series, its time and row count, a warning when the service returned partial results, and CSV.
//! The query lives in the URL (`?source=&t=&q=`), so a result is a link to share and Back works.

use crate::api::{recent_queries, run_query, saved_queries, SaveQuery};
use crate::auth::Role;
use crate::components::{urlencode, CsrfField, ErrorPanel, IfRole, Loading, Shell};
use crate::query::{cell_text, QueryResult, Source, TIMESPANS};
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

/// The page address that runs a query.
pub fn query_href(source: Source, timespan: &str, query: &str) -> String {
    format!(
        "/queries?source={}&t={}&q={}",
        source.as_str(),
        urlencode(timespan),
        urlencode(query)
    )
}

#[component]
pub fn QueriesPage() -> impl IntoView {
    let params = use_query_map();
    let source = move || {
        params
            .read()
            .get("source")
            .and_then(|s| Source::parse(&s))
            .unwrap_or(Source::AppInsights)
    };
    let timespan = move || params.read().get("t").unwrap_or_else(|| "PT1H".into());
    let text = move || params.read().get("q").unwrap_or_default();
    let result = Resource::new(
        move || (source(), text(), timespan()),
        |(source, query, timespan)| async move {
            if query.trim().is_empty() {
                return None;
            }
            Some(run_query(source.as_str().to_string(), query, timespan).await)
        },
    );
    let saved = Resource::new(|| (), |_| saved_queries());
    let save = ServerAction::<SaveQuery>::new();
    // After the query has run (and been recorded), so it is listed.
    let recent = Resource::new(
        move || (text(), save.version().get(), result.get().is_some()),
        |_| recent_queries(),
    );
    view! {
        <Shell estate=None>
            <div class="page-head"><h1>"Queries"</h1></div>
            <div class="queries">
                <aside class="card saved-list">
                    <h2>"Saved"</h2>
                    <Transition fallback=Loading>
                        {move || Suspend::new(async move {
                            match saved.await {
                                Err(e) => view! { <p class="form-error">{e.to_string()}</p> }.into_any(),
                                Ok(list) => view! {
                                    <ul>
                                        {list.into_iter().map(|q| view! {
                                            <li data-saved=q.id.clone()>
                                                <a href=query_href(q.source, &q.timespan, &q.query) title=q.description.clone()>{q.name.clone()}</a>
                                                <span class="muted">{if q.builtin { q.source.label().to_string() } else { format!("{} · yours", q.source.label()) }}</span>
                                            </li>
                                        }).collect_view()}
                                    </ul>
                                }.into_any(),
                            }
                        })}
                    </Transition>
                    <h2>"Recent"</h2>
                    <Transition fallback=Loading>
                        {move || Suspend::new(async move {
                            match recent.await {
                                Err(_) => ().into_any(),
                                Ok(list) if list.is_empty() => view! { <p class="muted">"Queries you run appear here."</p> }.into_any(),
                                Ok(list) => view! {
                                    <ul class="recent">
                                        {list.into_iter().map(|q| {
                                            let first = q.query.lines().next().unwrap_or_default().to_string();
                                            let outcome = match (&q.error, q.rows) {
                                                (Some(_), _) => "error".to_string(),
                                                (None, Some(n)) => format!("{n} rows"),
                                                _ => String::new(),
                                            };
                                            view! {
                                                <li>
                                                    <a class="mono" href=query_href(q.source, &q.timespan, &q.query)>{first}</a>
                                                    <span class="muted">{format!("{} · {} · {} ms", q.ran_at.format("%H:%M:%S"), outcome, q.elapsed_ms)}</span>
                                                </li>
                                            }
                                        }).collect_view()}
                                    </ul>
                                }.into_any(),
                            }
                        })}
                    </Transition>
                </aside>
                <section class="editor-and-result">
                    <form class="card query-editor" method="get" action="/queries" id="query-form">
                        <div class="row">
                            <label>"Source"
                                <select name="source">
                                    {Source::ALL.into_iter().map(|s| view! {
                                        <option value=s.as_str() selected=move || source() == s>{s.label()}</option>
                                    }).collect_view()}
                                </select>
                            </label>
                            <label>"Time range"
                                <select name="t">
                                    {TIMESPANS.into_iter().map(|(v, label)| view! {
                                        <option value=v selected=move || timespan() == v>{label}</option>
                                    }).collect_view()}
                                </select>
                            </label>
                            <button type="submit" class="button" data-action="run-query">"Run"</button>
                            <span class="muted">"Ctrl+Enter runs"</span>
                        </div>
                        <textarea name="q" class="mono kql" rows="7" spellcheck="false" aria-label="KQL query"
                            placeholder="requests | where name contains 'score' | summarize avg(duration)"
                            on:keydown=|ev| {
                                if ev.key() == "Enter" && (ev.ctrl_key() || ev.meta_key()) {
                                    ev.prevent_default();
                                    submit_query_form();
                                }
                            }
                            prop:value=text>{text}</textarea>
                    </form>
                    <Transition fallback=Loading>
                        {move || Suspend::new(async move {
                            match result.await {
                                None => view! {
                                    <section class="card empty"><p>"Pick a saved query or write one, then Run. "
                                        "The supported KQL: table | where, project, extend, summarize (count, sum, avg, min, max, dcount, percentile(s), countif) by columns and bin(), order/sort by, top, take/limit, render."</p></section>
                                }.into_any(),
                                Some(Err(e)) if matches!(e, crate::error::AppError::BadRequest(_) | crate::error::AppError::Invalid(_) | crate::error::AppError::TooManyRequests(_)) => view! {
                                    <section class="card query-error" role="alert"><h2>"The query was not run"</h2><p class="mono">{e.to_string()}</p></section>
                                }.into_any(),
                                Some(Err(e)) => view! { <ErrorPanel error=e/> }.into_any(),
                                Some(Ok(r)) => view! {
                                    <ResultView result=r csv=csv_href(source(), &timespan(), &text())/>
                                    <IfRole role=Role::Operator><SaveForm save source=source() timespan=timespan() query=text()/></IfRole>
                                }.into_any(),
                            }
                        })}
                    </Transition>
                </section>
            </div>
        </Shell>
    }
}

/// Ctrl+Enter in the editor: submit the form as the Run button would (in the browser only).
fn submit_query_form() {
    #[cfg(feature = "hydrate")]
    {
        use wasm_bindgen::JsCast;
        if let Some(form) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.get_element_by_id("query-form"))
            .and_then(|e| e.dyn_into::<web_sys::HtmlFormElement>().ok())
        {
            let _ = form.request_submit();
        }
    }
}

#[component]
fn SaveForm(
    save: ServerAction<SaveQuery>,
    source: Source,
    timespan: String,
    query: String,
) -> impl IntoView {
    let outcome = move || {
        save.value().get().map(|r| match r {
            Ok(q) => view! { <span class="ok-text" role="status">{format!("Saved as '{}'", q.name)}</span> }.into_any(),
            Err(e) => view! { <span class="form-error" role="alert">{e.to_string()}</span> }.into_any(),
        })
    };
    view! {
        <ActionForm action=save attr:class="card inline save-query">
            <CsrfField/>
            <input type="hidden" name="source" value=source.as_str()/>
            <input type="hidden" name="timespan" value=timespan/>
            <input type="hidden" name="query" value=query/>
            <label>"Save as "<input name="name" required maxlength="100" placeholder="my query"/></label>
            <button type="submit" class="button secondary" data-action="save-query">"Save"</button>
            {outcome}
        </ActionForm>
    }
}

/// The same query as a CSV download.
fn csv_href(source: Source, timespan: &str, query: &str) -> String {
    format!(
        "/api/v1/queries/csv?source={}&timespan={}&query={}",
        source.as_str(),
        urlencode(timespan),
        urlencode(query)
    )
}

#[component]
pub fn ResultView(result: QueryResult, csv: String) -> impl IntoView {
    let chart = crate::chart::render(&result);
    let shown = result.rows.len();
    let meta = format!(
        "{} row{} · {} ms",
        result.row_count,
        if result.row_count == 1 { "" } else { "s" },
        result.elapsed_ms
    );
    let partial = result.partial.clone().map(|p| {
        view! {
            <div class="banner stale partial-warning" role="alert">
                <strong>"Partial results. "</strong>{format!("The service stopped before the end of the result: {p} ")}
                "Narrow the time range, filter more, or summarize."
            </div>
        }
    });
    let capped = result.capped.then(|| {
        view! {
            <div class="banner stale capped-warning" role="alert">
                {format!("Showing the first {shown} of {} rows.", result.row_count)}
            </div>
        }
    });
    let head = result
        .columns
        .iter()
        .map(|c| view! { <th title=c.ty.clone()>{c.name.clone()}<span class="type">{c.ty.clone()}</span></th> })
        .collect_view();
    let numeric: Vec<bool> = result.columns.iter().map(|c| c.numeric()).collect();
    let rows = result
        .rows
        .iter()
        .map(|r| {
            let cells = r
                .iter()
                .enumerate()
                .map(|(i, v)| {
                    let class = if numeric.get(i).copied().unwrap_or(false) {
                        "num"
                    } else {
                        ""
                    };
                    view! { <td class=class>{cell_text(v)}</td> }
                })
                .collect_view();
            view! { <tr>{cells}</tr> }
        })
        .collect_view();
    view! {
        <section class="card result" data-rows=result.row_count>
            <div class="result-head">
                <span class="meta" data-testid="result-meta">{meta}</span>
                <a class="button secondary" href=csv download="query.csv" data-action="csv">"Download CSV"</a>
            </div>
            {partial}
            {capped}
            {chart.map(|svg| view! { <div class="chart-box" inner_html=svg></div> })}
            <div class="table-scroll">
                <table class="grid result-table">
                    <thead><tr>{head}</tr></thead>
                    <tbody>{rows}</tbody>
                </table>
            </div>
        </section>
    }
}

//! One resource: its summary, the facts that matter for its type, and its dependencies.

use crate::api::{get_resource, RefreshInventory};
use crate::components::{region_label, ErrorPanel, FreshnessBar, Loading, Shell, StatusPill};
use crate::model::{ResourceDetail, ResourcePage as Page, Table};
use leptos::prelude::*;
use leptos_router::hooks::use_params_map;

#[component]
pub fn ResourcePage() -> impl IntoView {
    let params = use_params_map();
    let refresh = ServerAction::<RefreshInventory>::new();
    let page = Resource::new(
        move || {
            (
                params.read().get("name").unwrap_or_default(),
                refresh.version().get(),
            )
        },
        |(name, _)| get_resource(name),
    );
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match page.await {
                    Ok(p) => view! { <ResourceView page=p refresh/> }.into_any(),
                    Err(e) => view! { <Shell estate=None><ErrorPanel error=e/></Shell> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn ResourceView(page: Page, refresh: ServerAction<RefreshInventory>) -> impl IntoView {
    let Page {
        estate,
        freshness,
        resource,
    } = page;
    let ResourceDetail {
        summary,
        facts,
        dependencies,
    } = resource;
    let tags = summary
        .tags
        .iter()
        .map(|(k, v)| view! { <span class="tag">{format!("{k}: {v}")}</span> })
        .collect_view();
    let when = |t: Option<chrono::DateTime<chrono::Utc>>| {
        t.map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
            .unwrap_or_else(|| "—".into())
    };
    let key_facts = facts
        .facts
        .into_iter()
        .map(|f| view! { <div><dt>{f.label}</dt><dd>{f.value}</dd></div> })
        .collect_view();
    let warnings = facts
        .warnings
        .into_iter()
        .map(|w| view! { <div class="banner stale">{w}</div> })
        .collect_view();
    let tables = facts
        .tables
        .into_iter()
        .map(|t| view! { <FactTable table=t/> })
        .collect_view();
    let deps = dependencies
        .into_iter()
        .map(|d| {
            let (other, arrow) = if d.from == summary.name {
                (d.to.clone(), format!("{} →", d.relation))
            } else {
                (d.from.clone(), format!("← {}", d.relation))
            };
            let seen = if d.observed {
                "seen in Azure"
            } else {
                "declared only"
            };
            view! {
                <li>
                    <span class="muted">{arrow}</span>" "
                    <a href=format!("/resources/{other}")>{other.clone()}</a>
                    " "<span class={if d.observed { "pill ok" } else { "pill busy" }}>{seen}</span>
                </li>
            }
        })
        .collect_view();
    view! {
        <Shell estate=Some(estate)>
            <nav class="crumbs"><a href="/">"Overview"</a>" / "{summary.category.label()}</nav>
            <div class="page-head">
                <div>
                    <h1 class="resource-title">{summary.name.clone()}</h1>
                    <p class="muted">{summary.type_label.clone()}" · "<span class="mono">{summary.arm_type.clone()}</span></p>
                </div>
                <FreshnessBar freshness refresh/>
            </div>
            {warnings}
            <section class="card">
                <dl class="facts">
                    <div><dt>"Status"</dt><dd><StatusPill status=summary.status.clone()/></dd></div>
                    <div><dt>"Location"</dt><dd>{summary.location.as_deref().map(region_label).unwrap_or_else(|| "—".into())}</dd></div>
                    <div><dt>"SKU"</dt><dd>{summary.sku.clone().unwrap_or_else(|| "—".into())}</dd></div>
                    <div><dt>"Created"</dt><dd>{when(summary.created_time)}</dd></div>
                    <div><dt>"Changed"</dt><dd>{when(summary.changed_time)}</dd></div>
                    {key_facts}
                    <div class="wide"><dt>"Resource ID"</dt><dd class="mono">{summary.id.clone()}</dd></div>
                    <div class="wide"><dt>"Tags"</dt><dd class="tags">{tags}</dd></div>
                </dl>
            </section>
            {tables}
            <section class="card">
                <h2>"Dependencies"</h2>
                <ul class="deps">{deps}</ul>
            </section>
        </Shell>
    }
}

#[component]
fn FactTable(table: Table) -> impl IntoView {
    let head = table
        .columns
        .into_iter()
        .map(|c| view! { <th>{c}</th> })
        .collect_view();
    let body = if table.rows.is_empty() {
        view! { <tr><td class="muted" colspan="99">{table.empty}</td></tr> }.into_any()
    } else {
        table
            .rows
            .into_iter()
            .map(|row| view! { <tr>{row.into_iter().map(|c| view! { <td>{c}</td> }).collect_view()}</tr> })
            .collect_view()
            .into_any()
    };
    view! {
        <section class="card">
            <h2>{table.title}</h2>
            <table class="grid"><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>
        </section>
    }
}

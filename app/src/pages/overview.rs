//! The overview: the estate header, every declared resource grouped by category, and the dependency graph.

use crate::api::{get_overview, RefreshInventory};
use crate::components::{region_label, ErrorPanel, FreshnessBar, Loading, Shell, StatusPill};
use crate::cost::{AlertCounts, CostSummary};
use crate::graph::dependency_svg;
use crate::model::{Category, Overview, OverviewPage, ResourceSummary, Status};
use leptos::prelude::*;
use std::collections::BTreeMap;

#[component]
pub fn OverviewPage() -> impl IntoView {
    let refresh = ServerAction::<RefreshInventory>::new();
    let overview = Resource::new(move || refresh.version().get(), |_| get_overview());
    view! {
        <Suspense fallback=Loading>
            {move || Suspend::new(async move {
                match overview.await {
                    Ok(page) => view! { <OverviewView page refresh/> }.into_any(),
                    Err(e) => view! { <Shell estate=None><ErrorPanel error=e/></Shell> }.into_any(),
                }
            })}
        </Suspense>
    }
}

#[component]
fn OverviewView(page: OverviewPage, refresh: ServerAction<RefreshInventory>) -> impl IntoView {
    let OverviewPage {
        overview,
        cost,
        alerts,
    } = page;
    let Overview {
        estate,
        freshness,
        resources,
        undeclared,
        dependencies,
    } = overview;
    let total = resources.len();
    let healthy = resources.iter().filter(|r| r.status.is_healthy()).count();
    let missing = resources
        .iter()
        .filter(|r| r.status == Status::Missing)
        .count();
    let svg = dependency_svg(&resources, &dependencies);
    // Tags every found resource carries are shown once; rows show only what differs.
    let found: Vec<&ResourceSummary> = resources
        .iter()
        .filter(|r| r.status != Status::Missing)
        .collect();
    let common: BTreeMap<String, String> = found
        .first()
        .map(|first| {
            first
                .tags
                .iter()
                .filter(|(k, v)| found.iter().all(|r| r.tags.get(*k) == Some(v)))
                .map(|(k, v)| (k.clone(), v.clone()))
                .collect()
        })
        .unwrap_or_default();
    let other_tags = found
        .iter()
        .any(|r| r.tags.iter().any(|(k, v)| common.get(k) != Some(v)));
    let title = format!("{} estate", estate.estate.name);
    let groups = Category::ALL
        .into_iter()
        .map(|c| {
            let rows: Vec<ResourceSummary> = resources
                .iter()
                .filter(|r| r.category == c)
                .cloned()
                .collect();
            view! { <CategoryCard category=c rows common=common.clone() other_tags/> }
        })
        .collect_view();
    let undeclared_note = (!undeclared.is_empty()).then(|| {
        view! {
            <div class="banner info">
                {format!(
                    "{} resource(s) in the resource group are not declared in the estate file: {}",
                    undeclared.len(),
                    undeclared.join(", ")
                )}
            </div>
        }
    });
    view! {
        <Shell estate=Some(estate)>
            <div class="page-head">
                <h1>{title}</h1>
                <FreshnessBar freshness refresh/>
            </div>
            <section class="tiles">
                <div class="tile"><span class="num">{total}</span><span>"resources declared"</span></div>
                <div class="tile ok"><span class="num">{healthy}</span><span>"provisioned"</span></div>
                <div class={if missing > 0 { "tile bad" } else { "tile" }}>
                    <span class="num">{missing}</span><span>"missing in Azure"</span>
                </div>
                <div class="tile"><span class="num">{undeclared.len()}</span><span>"undeclared"</span></div>
            </section>
            <Widgets cost alerts/>
            {undeclared_note}
            {(!common.is_empty()).then(|| {
                let tags = common
                    .iter()
                    .map(|(k, v)| view! { <span class="tag">{format!("{k}: {v}")}</span> })
                    .collect_view();
                view! { <p class="common-tags muted">"Tags on every resource: " {tags}</p> }
            })}
            <div class="groups">{groups}</div>
            <section class="card">
                <h2>"Resource dependencies"</h2>
                <p class="muted legend">
                    <span class="key observed"></span>"referenced in the resource's Azure properties"
                    <span class="key declared"></span>"declared only"
                </p>
                <div class="graph" inner_html=svg></div>
            </section>
        </Shell>
    }
}

#[component]
fn CategoryCard(
    category: Category,
    rows: Vec<ResourceSummary>,
    common: BTreeMap<String, String>,
    /// Whether any resource has tags beyond the common ones (else the column is left out).
    other_tags: bool,
) -> impl IntoView {
    let rows = rows
        .into_iter()
        .map(|r| {
            let href = format!("/resources/{}", r.name);
            let tags = r
                .tags
                .iter()
                .filter(|(k, v)| common.get(*k) != Some(*v))
                .map(|(k, v)| view! { <span class="tag">{format!("{k}: {v}")}</span> })
                .collect_view();
            let location = r
                .location
                .as_deref()
                .map(region_label)
                .unwrap_or_else(|| "—".into());
            view! {
                <tr data-resource=r.name.clone()>
                    <td><a href=href class="resource-link">{r.name.clone()}</a></td>
                    <td>{r.type_label.clone()}</td>
                    <td><StatusPill status=r.status.clone()/></td>
                    <td>{location}</td>
                    {other_tags.then(|| view! { <td class="tags">{tags}</td> })}
                </tr>
            }
        })
        .collect_view();
    view! {
        <section class="card category">
            <h2>{category.label()}</h2>
            <table class="grid">
                <thead><tr><th>"Name"</th><th>"Type"</th><th>"Status"</th><th>"Location"</th>{other_tags.then(|| view! { <th>"Other tags"</th> })}</tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
    }
}

/// Spend against the budget and open alerts by severity, from the console's caches.
#[component]
fn Widgets(cost: Option<CostSummary>, alerts: AlertCounts) -> impl IntoView {
    let spend = match cost {
        Some(c) => {
            let share = if c.budget > 0.0 {
                (c.month_to_date / c.budget * 100.0).min(100.0)
            } else {
                0.0
            };
            let class = if c.forecast > c.budget {
                "meter warn"
            } else {
                "meter"
            };
            view! {
                <a class="tile widget" href="/cost" data-testid="spend-widget">
                    <span class="num">{format!("${:.2}", c.month_to_date)}</span>
                    <span>{format!("of ${:.0} budget this month · forecast ${:.2}", c.budget, c.forecast)}</span>
                    <span class=class><span style=format!("width: {share:.1}%")></span></span>
                </a>
            }
            .into_any()
        }
        None => {
            view! { <a class="tile widget" href="/cost"><span>"Cost data is on its way"</span></a> }
                .into_any()
        }
    };
    let total: usize = alerts.open.iter().map(|(_, n)| n).sum();
    let by_sev = alerts
        .open
        .into_iter()
        .map(|(sev, n)| view! { <span class="pill info" data-severity=sev.clone()>{format!("{sev}: {n}")}</span> })
        .collect_view();
    view! {
        <section class="tiles widgets">
            {spend}
            <a class={if total > 0 { "tile widget bad" } else { "tile widget ok" }} href="/alerts" data-testid="alerts-widget">
                <span class="num">{total}</span>
                <span>"open alerts"</span>
                <span class="sev">{by_sev}</span>
            </a>
        </section>
    }
}

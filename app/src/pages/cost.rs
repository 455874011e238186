//! Cost: what a manager opens on Monday — spend against the budget at a glance, the forecast and how it
//! was made, the thresholds, daily spend, where the money goes, and past months. Served from the
//! console's cache, with its "as of".

use crate::api::{get_cost, RefreshCost};
use crate::components::{CsrfField, ErrorPanel, Loading, Shell};
use crate::cost::{Breakdown, CostView};
use crate::query::{QueryResult, ResultColumn};
use leptos::prelude::*;

pub fn money(v: f64) -> String {
    format!("${v:.2}")
}

fn age(t: chrono::DateTime<chrono::Utc>) -> String {
    let mins = (chrono::Utc::now() - t).num_minutes().max(0);
    match mins {
        0 => "just now".into(),
        m if m < 120 => format!("{m} min ago"),
        m => format!("{} h ago", m / 60),
    }
}

fn bars(items: &[Breakdown]) -> Option<String> {
    let result = QueryResult {
        columns: vec![
            ResultColumn {
                name: "name".into(),
                ty: "string".into(),
            },
            ResultColumn {
                name: "cost".into(),
                ty: "real".into(),
            },
        ],
        rows: items
            .iter()
            .filter(|b| b.amount > 0.0)
            .map(|b| vec![serde_json::json!(b.name), serde_json::json!(b.amount)])
            .collect(),
        row_count: items.len(),
        partial: None,
        capped: false,
        elapsed_ms: 0,
        render: Some("barchart".into()),
    };
    crate::chart::render(&result)
}

#[component]
pub fn CostPage() -> impl IntoView {
    let refresh = ServerAction::<RefreshCost>::new();
    let cost = Resource::new(move || refresh.version().get(), |_| get_cost());
    view! {
        <Shell estate=None>
            <div class="page-head">
                <h1>"Cost"</h1>
                <ActionForm action=refresh attr:class="inline">
                    <CsrfField/>
                    <button type="submit" class="button secondary" data-action="refresh-cost" disabled=move || refresh.pending().get()>
                        {move || if refresh.pending().get() { "Refreshing…" } else { "Refresh from Azure" }}
                    </button>
                </ActionForm>
            </div>
            {move || refresh.value().get().and_then(|r| r.err()).map(|e| view! {
                <div class="banner stale" role="alert">{format!("Refresh failed: {e}")}</div>
            })}
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match cost.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok(v) => view! { <CostBody v/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}

#[component]
fn CostBody(v: CostView) -> impl IntoView {
    let marks: Vec<f64> = v
        .thresholds
        .iter()
        .map(|t| t.percent / 100.0)
        .filter(|m| *m < 1.0)
        .collect();
    let gauge = crate::chart::gauge(v.month_to_date, v.budget, &marks);
    let over = v.forecast.amount - v.budget;
    let per_day = v.budget / v.forecast.days_in_month as f64;
    let daily: Vec<(String, f64)> = v
        .daily
        .iter()
        .map(|(d, c)| (d.format("%d %b").to_string(), *c))
        .collect();
    let daily_chart = crate::chart::columns(
        &daily,
        v.forecast.days_in_month as usize,
        Some((per_day, &format!("budget per day {}", money(per_day)))),
    );
    let thresholds = v
        .thresholds
        .iter()
        .map(|t| {
            let (class, state) = match (t.crossed, t.forecast_crosses) {
                (true, _) => ("pill bad", "crossed"),
                (false, true) => ("pill busy", "forecast to cross"),
                _ => ("pill ok", "not reached"),
            };
            view! {
                <li data-threshold=t.percent>
                    <strong>{format!("{:.0}% ({})", t.percent, money(t.amount))}</strong>" "
                    <span class=class>{state}</span>
                    <span class="muted">{format!(" · notifies {}", t.contacts.join(", "))}</span>
                </li>
            }
        })
        .collect_view();
    let resources = v.by_resource.iter().map(|b| view! {
        <tr><td><a href=format!("/resources/{}", b.name)>{b.name.clone()}</a></td><td class="muted">{b.detail.clone()}</td><td class="num">{money(b.amount)}</td></tr>
    }).collect_view();
    let services = v
        .by_service
        .iter()
        .map(|b| {
            view! {
                <tr><td>{b.name.clone()}</td><td class="num">{money(b.amount)}</td></tr>
            }
        })
        .collect_view();
    let months = v.months.iter().map(|m| view! {
        <tr>
            <td>{m.month.clone()}</td>
            <td class="num">{money(m.amount)}</td>
            <td class="num"><span class={if m.percent_of_budget > 100.0 { "pill bad" } else if m.percent_of_budget > 75.0 { "pill busy" } else { "pill ok" }}>{format!("{:.0}%", m.percent_of_budget)}</span></td>
        </tr>
    }).collect_view();
    let resource_bars = bars(&v.by_resource);
    let service_bars = bars(&v.by_service);
    view! {
        <p class="muted as-of" data-testid="as-of">
            {format!("As of {} UTC ({}) · budget {} · {}", v.as_of.format("%Y-%m-%d %H:%M"), age(v.as_of), v.budget_name, v.currency)}
        </p>
        {v.stale_reason.clone().map(|r| view! { <div class="banner stale" role="alert">{format!("Showing the last data fetched; the latest refresh failed: {r}")}</div> })}
        <div class="cost-top">
            <section class="card gauge-card">
                <h2>"Month to date"</h2>
                <div inner_html=gauge></div>
                <p class="big" data-testid="mtd">{format!("{} of {}", money(v.month_to_date), money(v.budget))}</p>
            </section>
            <section class="card">
                <h2>"Forecast to month end"</h2>
                <p class="big" data-testid="forecast">{money(v.forecast.amount)}</p>
                <p class={if over > 0.0 { "bad-text" } else { "ok-text" }}>
                    {if over > 0.0 { format!("{} over budget", money(over)) } else { format!("{} under budget", money(-over)) }}
                </p>
                <p class="muted method">{v.forecast.method.clone()}</p>
                <h3>"Budget thresholds"</h3>
                <ul class="thresholds">{thresholds}</ul>
            </section>
        </div>
        <section class="card">
            <h2>"Daily spend this month"</h2>
            {daily_chart.map(|svg| view! { <div class="chart-box" inner_html=svg></div> })}
        </section>
        <div class="cost-split">
            <section class="card">
                <h2>"By resource"</h2>
                {resource_bars.map(|svg| view! { <div class="chart-box" inner_html=svg></div> })}
                <table class="grid"><thead><tr><th>"Resource"</th><th>"Type"</th><th>"Month to date"</th></tr></thead><tbody>{resources}</tbody></table>
            </section>
            <section class="card">
                <h2>"By service"</h2>
                {service_bars.map(|svg| view! { <div class="chart-box" inner_html=svg></div> })}
                <table class="grid"><thead><tr><th>"Service"</th><th>"Month to date"</th></tr></thead><tbody>{services}</tbody></table>
            </section>
        </div>
        <section class="card">
            <h2>"Previous months"</h2>
            <table class="grid"><thead><tr><th>"Month"</th><th>"Spend"</th><th>"Of budget"</th></tr></thead><tbody>{months}</tbody></table>
        </section>
    }
}

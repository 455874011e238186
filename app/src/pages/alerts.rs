//! Alerts: what is firing (severity, state, condition, target, since when), acknowledge or close with a
//! comment, the runbook one click from an underutilization alert, and the rules and action groups.

use crate::api::{get_alerts, ChangeAlertState, StartRunbook};
use crate::auth::Role;
use crate::components::{CsrfField, ErrorPanel, Loading, Shell};
use crate::cost::{AlertView, AlertsView};
use leptos::prelude::*;
use leptos_router::hooks::{use_navigate, use_query_map};

fn severity_class(sev: &str) -> &'static str {
    match sev {
        "Sev0" | "Sev1" => "pill bad",
        "Sev2" => "pill busy",
        _ => "pill info",
    }
}

#[component]
pub fn AlertsPage() -> impl IntoView {
    let params = use_query_map();
    let state = move || params.read().get("state").unwrap_or_default();
    let change = ServerAction::<ChangeAlertState>::new();
    let runbook = ServerAction::<StartRunbook>::new();
    let alerts = Resource::new(
        move || (state(), change.version().get()),
        |(s, _)| get_alerts(Some(s)),
    );
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = runbook.value().get() {
            navigate(&format!("/runs/{id}"), Default::default());
        }
    });
    let error = move || {
        [
            change.value().get().map(|r| r.map(drop)),
            runbook.value().get().map(|r| r.map(drop)),
        ]
        .into_iter()
        .flatten()
        .find_map(|r| r.err())
        .map(|e| view! { <div class="banner stale form-error" role="alert">{e.to_string()}</div> })
    };
    let tab = move |label: &'static str, value: &'static str| {
        view! {
            <a href=if value.is_empty() { "/alerts".to_string() } else { format!("/alerts?state={value}") }
                class=move || if state() == value { "tab active" } else { "tab" }>{label}</a>
        }
    };
    view! {
        <Shell estate=None>
            <div class="page-head"><h1>"Alerts"</h1></div>
            <nav class="tabs">{tab("All", "")}{tab("New", "New")}{tab("Acknowledged", "Acknowledged")}{tab("Closed", "Closed")}</nav>
            {error}
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    let can_act = crate::components::can(Role::Operator);
                    match alerts.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok(v) => view! { <AlertsBody v change runbook can_act/> }.into_any(),
                    }
                })}
            </Transition>
        </Shell>
    }
}

#[component]
fn AlertsBody(
    v: AlertsView,
    change: ServerAction<ChangeAlertState>,
    runbook: ServerAction<StartRunbook>,
    can_act: bool,
) -> impl IntoView {
    let AlertsView {
        alerts,
        rules,
        action_groups,
        runbook: runbook_name,
    } = v;
    let rows = if alerts.is_empty() {
        view! { <tr><td colspan="7" class="muted">"No alerts here."</td></tr> }.into_any()
    } else {
        alerts
            .into_iter()
            .map(|a| view! { <AlertRow a change runbook runbook_name=runbook_name.clone() can_act/> })
            .collect_view()
            .into_any()
    };
    let rules = rules.into_iter().map(|r| view! {
        <li>
            <strong>{r.name.clone()}</strong>" "<span class="pill info">{format!("Sev{}", r.severity)}</span>" "
            <span class={if r.enabled { "pill ok" } else { "pill bad" }}>{if r.enabled { "enabled" } else { "disabled" }}</span>
            <p class="muted">{r.description.clone()}</p>
            <p>{format!("Every {} over {}: {} → {}", r.frequency, r.window, r.condition, r.action_groups.join(", "))}</p>
            <pre class="mono">{r.query.clone()}</pre>
        </li>
    }).collect_view();
    let groups = action_groups.into_iter().map(|g| view! {
        <li>
            <strong>{g.name.clone()}</strong>{format!(" ({})", g.short_name)}" "
            <span class={if g.enabled { "pill ok" } else { "pill bad" }}>{if g.enabled { "enabled" } else { "disabled" }}</span>
            <p>{format!("Mails {}", g.emails.join(", "))}{(!g.runbooks.is_empty()).then(|| format!("; runs {}", g.runbooks.join(", ")))}</p>
        </li>
    }).collect_view();
    view! {
        <section class="card">
            <table class="grid alerts">
                <thead><tr><th>"Severity"</th><th>"Alert"</th><th>"State"</th><th>"Condition"</th><th>"Target"</th><th>"Since"</th><th>"Act"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
        </section>
        <div class="cost-split">
            <section class="card"><h2>"Alert rules"</h2><ul class="plain">{rules}</ul></section>
            <section class="card"><h2>"Action groups"</h2><ul class="plain">{groups}</ul></section>
        </div>
    }
}

#[component]
fn AlertRow(
    a: AlertView,
    change: ServerAction<ChangeAlertState>,
    runbook: ServerAction<StartRunbook>,
    runbook_name: String,
    can_act: bool,
) -> impl IntoView {
    let since = a
        .since
        .map(|t| t.format("%Y-%m-%d %H:%M UTC").to_string())
        .unwrap_or_default();
    let reason = format!("alert {}: {}", a.id, a.description);
    let current = a.state.clone();
    let scale = (a.underutilization && can_act).then(move || view! {
        <ActionForm action=runbook attr:class="inline">
            <CsrfField/>
            <input type="hidden" name="direction" value="down"/>
            <input type="hidden" name="reason_text" value=reason/>
            <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
            <button type="submit" class="button secondary" data-action="runbook" title=format!("Start {runbook_name} with ScaleDirection=down")>
                {format!("Scale down ({runbook_name})")}
            </button>
        </ActionForm>
    });
    let next = if a.state == "New" {
        "Acknowledged"
    } else {
        "Closed"
    };
    let form_id = a.id.clone();
    view! {
        <tr data-alert=a.id.clone() data-state=a.state.clone()>
            <td><span class=severity_class(&a.severity)>{a.severity.clone()}</span></td>
            <td><strong>{a.name.clone()}</strong><div class="muted small">{a.description.clone()}</div></td>
            <td data-testid="alert-state">{a.state.clone()}</td>
            <td>{a.condition.clone()}</td>
            <td>{format!("{} ({})", a.target, a.target_type)}</td>
            <td>{since}</td>
            <td class="act">
                {can_act.then(|| view! {
                <ActionForm action=change attr:class="inline alert-state">
                    <CsrfField/>
                    <input type="hidden" name="id" value=form_id/>
                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                    <select name="state" aria-label="new state">
                        {["Acknowledged", "Closed", "New"].into_iter().filter(move |s| *s != current).map(|s| view! {
                            <option value=s selected=s == next>{s}</option>
                        }).collect_view()}
                    </select>
                    <input name="comment" placeholder="comment" size="18" maxlength="2000"/>
                    <button type="submit" class="button secondary" data-action="set-state">"Set"</button>
                </ActionForm>
                })}
                {scale}
            </td>
        </tr>
    }
}

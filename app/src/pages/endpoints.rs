//! Online endpoints: each endpoint's deployments and split, presets to shift traffic, one-click rollback,
//! and a form to add a deployment at 0%. Every button is a run, followed on its own page.

use crate::api::{
    endpoint_health, list_endpoints, AddDeployment, RollbackTraffic, SetTraffic, TrainAndDeploy,
};
use crate::auth::Role;
use crate::components::{CsrfField, ErrorPanel, Loading, Shell};
use crate::model::{EndpointView, TrafficSpec};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;
use std::collections::BTreeMap;

/// Goes to the run an action started, once it answers.
fn follow<T>(action: ServerAction<T>)
where
    T: leptos::server_fn::ServerFn<Output = String, Error = crate::error::AppError>
        + Clone
        + Send
        + Sync
        + 'static,
{
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = action.value().get() {
            navigate(&format!("/runs/{id}"), Default::default());
        }
    });
}

#[component]
pub fn EndpointsPage() -> impl IntoView {
    let set_traffic = ServerAction::<SetTraffic>::new();
    let rollback = ServerAction::<RollbackTraffic>::new();
    let add = ServerAction::<AddDeployment>::new();
    let pipeline = ServerAction::<TrainAndDeploy>::new();
    follow(pipeline);
    follow(set_traffic);
    follow(rollback);
    follow(add);
    let endpoints = Resource::new(|| (), |_| list_endpoints());
    let error = move || {
        [
            set_traffic.value().get(),
            rollback.value().get(),
            add.value().get(),
        ]
        .into_iter()
        .flatten()
        .find_map(|r| r.err())
        .map(|e| view! { <div class="banner stale form-error" role="alert">{e.to_string()}</div> })
    };
    // One wait for who is asking and what there is: the actions render only for operators.
    view! {
        <Shell estate=None>
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    let can_act = crate::components::can(Role::Operator);
                    let list = endpoints.await;
                    view! {
                        <div class="page-head">
                            <h1>"Online endpoints"</h1>
                            {can_act.then(|| view! {
                                <ActionForm action=pipeline attr:class="inline">
                                    <CsrfField/>
                                    <input type="hidden" name="endpoint" value="ml-endpoint-staging"/>
                                    <input name="reason_text" placeholder="reason" size="16" aria-label="reason"/>
                                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                                    <button type="submit" class="button" data-action="train-deploy" disabled=move || pipeline.pending().get()
                                        title="Train, register the model, build its image, deploy it to ml-endpoint-staging at 0%, store the endpoint key and roll the image out to AKS">
                                        "Train and deploy"
                                    </button>
                                </ActionForm>
                            })}
                        </div>
                        {error}
                        {match list {
                            Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                            Ok(list) if list.is_empty() => view! {
                                <section class="card empty">
                                    <p>"No online endpoints yet. Add the first deployment below; the endpoint is created with it."</p>
                                </section>
                            }.into_any(),
                            Ok(list) => list
                                .into_iter()
                                .map(|ep| view! { <EndpointCard ep set_traffic rollback can_act/> })
                                .collect_view()
                                .into_any(),
                        }}
                        {can_act.then(|| view! {
                            <section class="card">
                                <h2>"Add a deployment (at 0% traffic)"</h2>
                                <ActionForm action=add attr:class="form">
                                    <CsrfField/>
                                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                                    <label>"Endpoint"<input name="endpoint" required value="ml-endpoint-staging"/></label>
                                    <label>"Deployment"<input name="deployment" required placeholder="green"/></label>
                                    <label>"Model (name:version)"<input name="model" required value="diabetes-classifier:1"/></label>
                                    <label>"Instances"<input name="instance_count" type="number" min="1" max="20" value="1"/></label>
                                    <label class="wide">"Environment variables (NAME=value, one per line)"
                                        <textarea name="environment" rows="2" class="mono" placeholder="LOG_LEVEL=info"></textarea></label>
                                    <label class="wide">"Reason"<input name="reason_text" placeholder="why (kept in the audit log)"/></label>
                                    <div class="wide"><button type="submit" class="button" data-action="deploy" disabled=move || add.pending().get()>"Deploy"</button></div>
                                </ActionForm>
                            </section>
                        })}
                    }
                })}
            </Transition>
        </Shell>
    }
}

#[component]
fn EndpointCard(
    ep: EndpointView,
    set_traffic: ServerAction<SetTraffic>,
    rollback: ServerAction<RollbackTraffic>,
    can_act: bool,
) -> impl IntoView {
    let EndpointView {
        name,
        state,
        scoring_uri,
        traffic,
        mirror,
        deployments,
    } = ep;
    let editor_names: Vec<String> = deployments.iter().map(|d| d.name.clone()).collect();
    let editor = view! { <SplitEditor endpoint=name.clone() names=editor_names traffic=traffic.clone() mirror set_traffic/> };
    let rows = deployments
        .iter()
        .map(|d| {
            let weight = traffic.get(&d.name).copied().unwrap_or(0);
            view! {
                <tr data-deployment=d.name.clone()>
                    <td class="mono">{d.name.clone()}</td>
                    <td>{d.model.clone()}</td>
                    <td>{format!("{} × {}", d.instance_count, d.instance_type)}</td>
                    <td>{d.state.clone()}</td>
                    <td class="num" data-traffic=weight>{format!("{weight}%")}</td>
                </tr>
            }
        })
        .collect_view();
    // Presets for the first two deployments (blue/green): all on one, canary, half, all on the other.
    let names: Vec<String> = deployments.iter().map(|d| d.name.clone()).collect();
    let ep_name = name.clone();
    let presets = (names.len() >= 2).then(move || {
        let (a, b) = (names[0].clone(), names[1].clone());
        [(100, 0), (90, 10), (50, 50), (0, 100)]
            .into_iter()
            .map(|(x, y)| {
                let split = format!("{a}={x}, {b}={y}");
                let name = ep_name.clone();
                view! {
                    <ActionForm action=set_traffic attr:class="inline">
                        <CsrfField/>
                        <input type="hidden" name="endpoint" value=name/>
                        <input type="hidden" name="split" value=split/>
                        <input type="hidden" name="reason_text" value=""/>
                        <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                        <button type="submit" class="button secondary" data-preset=format!("{x}/{y}")>{format!("{x} / {y}")}</button>
                    </ActionForm>
                }
            })
            .collect_view()
    });
    let (for_split, for_rollback) = (name.clone(), name.clone());
    let current = traffic
        .iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ");
    view! {
        <section class="card endpoint" data-endpoint=name.clone()>
            <h2>{name.clone()}" "<span class=state_class(&state)>{state.clone()}</span></h2>
            <p class="muted mono">{scoring_uri.unwrap_or_default()}</p>
            <table class="grid">
                <thead><tr><th>"Deployment"</th><th>"Model"</th><th>"Instances"</th><th>"State"</th><th>"Traffic"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <HealthPanel endpoint=name.clone()/>
            {can_act.then(|| view! {
            {editor}
            <div class="actions">
                {presets}
                <ActionForm action=set_traffic attr:class="inline">
                    <CsrfField/>
                    <input type="hidden" name="endpoint" value=for_split/>
                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                    <input name="split" value=current aria-label="traffic split" size="24"/>
                    <input name="reason_text" placeholder="reason" size="16"/>
                    <button type="submit" class="button secondary">"Set split"</button>
                </ActionForm>
                <ActionForm action=rollback attr:class="inline">
                    <CsrfField/>
                    <input type="hidden" name="endpoint" value=for_rollback/>
                    <input name="reason_text" placeholder="reason" size="14" aria-label="rollback reason"/>
                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                    <button type="submit" class="button danger" data-action="rollback">"Roll back"</button>
                </ActionForm>
            </div>
            })}
        </section>
    }
}

/// The pill for a provisioning state.
fn state_class(state: &str) -> &'static str {
    match state {
        "Succeeded" => "pill ok",
        "Failed" | "Canceled" => "pill bad",
        _ => "pill busy",
    }
}

fn as_text(map: &BTreeMap<String, i64>) -> String {
    map.iter()
        .map(|(k, v)| format!("{k}={v}"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// Sliders for the live split and the mirror: the total and every rule are checked as they move (the
/// same checks the server makes), and Apply stays disabled until the split is valid.
#[component]
fn SplitEditor(
    endpoint: String,
    names: Vec<String>,
    traffic: BTreeMap<String, i64>,
    mirror: BTreeMap<String, i64>,
    set_traffic: ServerAction<SetTraffic>,
) -> impl IntoView {
    if names.is_empty() {
        return ().into_any();
    }
    let live = RwSignal::new(
        names
            .iter()
            .map(|n| (n.clone(), traffic.get(n).copied().unwrap_or(0)))
            .collect::<BTreeMap<_, _>>(),
    );
    let mirrored = RwSignal::new(
        names
            .iter()
            .map(|n| (n.clone(), mirror.get(n).copied().unwrap_or(0)))
            .collect::<BTreeMap<_, _>>(),
    );
    let spec = move || TrafficSpec {
        traffic: live.get(),
        mirror: mirrored.get().into_iter().filter(|(_, w)| *w > 0).collect(),
        reason: None,
    };
    let problems = move || spec().problems();
    let total = move || live.get().values().sum::<i64>();
    let rows = names
        .into_iter()
        .map(|n| {
            let (a, b, c, d) = (n.clone(), n.clone(), n.clone(), n.clone());
            view! {
                <tr data-slider=n.clone()>
                    <td class="mono">{n.clone()}</td>
                    <td>
                        <input type="range" min="0" max="100" step="1" aria-label=format!("{n} traffic")
                            prop:value=move || live.get().get(&a).copied().unwrap_or(0).to_string()
                            on:input=move |ev| {
                                let w = event_target_value(&ev).parse().unwrap_or(0);
                                live.update(|m| { m.insert(b.clone(), w); });
                            }/>
                    </td>
                    <td class="num" data-live=n.clone()>{move || format!("{}%", live.get().get(&c).copied().unwrap_or(0))}</td>
                    <td>
                        <input type="number" min="0" max="50" step="1" class="mirror" aria-label=format!("{n} mirror")
                            prop:value=move || mirrored.get().get(&d).copied().unwrap_or(0).to_string()
                            on:input={
                                let n = n.clone();
                                move |ev| {
                                    let w = event_target_value(&ev).parse().unwrap_or(0);
                                    mirrored.update(|m| { m.insert(n.clone(), w); });
                                }
                            }/>
                        "%"
                    </td>
                </tr>
            }
        })
        .collect_view();
    view! {
        <details class="split-editor">
            <summary>"Edit split and mirror"</summary>
            <table class="grid">
                <thead><tr><th>"Deployment"</th><th>"Live traffic"</th><th></th><th>"Mirror (≤ 50%)"</th></tr></thead>
                <tbody>{rows}</tbody>
                <tfoot><tr>
                    <td>"Total"</td><td></td>
                    <td class="num" data-total="" class:bad=move || total() != 100>{move || format!("{}%", total())}</td>
                    <td></td>
                </tr></tfoot>
            </table>
            <ul class="problems" role="alert">
                {move || problems().into_iter().map(|p| view! { <li>{p}</li> }).collect_view()}
            </ul>
            <ActionForm action=set_traffic attr:class="inline">
                <CsrfField/>
                <input type="hidden" name="endpoint" value=endpoint/>
                <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                <input type="hidden" name="split" prop:value=move || as_text(&spec().traffic)/>
                <input type="hidden" name="mirror" prop:value=move || as_text(&spec().mirror)/>
                <input name="reason_text" placeholder="reason" size="20"/>
                <button type="submit" class="button" data-action="apply-split"
                    disabled=move || !problems().is_empty() || set_traffic.pending().get()>"Apply"</button>
            </ActionForm>
        </details>
    }
    .into_any()
}

/// Latency p95 and error rate per deployment over the last hour, side by side, from App Insights: the
/// data behind promote or roll back.
#[component]
fn HealthPanel(endpoint: String) -> impl IntoView {
    let health = Resource::new(move || endpoint.clone(), endpoint_health);
    view! {
        <Transition fallback=Loading>
            {move || Suspend::new(async move {
                match health.await {
                    Err(e) => view! { <p class="muted">{format!("Rollout health unavailable: {e}")}</p> }.into_any(),
                    Ok(h) if h.deployments.is_empty() => view! {
                        <p class="muted health-empty">"No scoring requests in the last hour."</p>
                    }.into_any(),
                    Ok(h) => {
                        let rows = h.deployments.iter().map(|d| view! {
                            <tr data-health=d.deployment.clone()>
                                <td class="mono">{d.deployment.clone()}</td>
                                <td class="num">{d.requests}</td>
                                <td class="num" data-p95=d.p95_ms.map(|v| format!("{v:.1}"))>{d.p95_ms.map(|v| format!("{v:.1} ms")).unwrap_or_default()}</td>
                                <td class="num" data-errors=d.error_rate.map(|v| format!("{v:.2}"))>{d.error_rate.map(|v| format!("{v:.2}%")).unwrap_or_default()}</td>
                            </tr>
                        }).collect_view();
                        let latency = crate::chart::render(&crate::query::project(&h.series, &["cloud_RoleName", "timestamp", "p95"]));
                        let errors = crate::chart::render(&crate::query::project(&h.series, &["cloud_RoleName", "timestamp", "error_rate"]));
                        view! {
                            <div class="health">
                                <h3>"Rollout health, last hour"</h3>
                                <table class="grid">
                                    <thead><tr><th>"Deployment"</th><th>"Requests"</th><th>"Latency p95"</th><th>"Error rate"</th></tr></thead>
                                    <tbody>{rows}</tbody>
                                </table>
                                <div class="health-charts">
                                    <figure><figcaption>"Latency p95 (ms), 5-minute bins"</figcaption>{latency.map(|svg| view! { <div class="chart-box" inner_html=svg></div> })}</figure>
                                    <figure><figcaption>"Error rate (%), 5-minute bins"</figcaption>{errors.map(|svg| view! { <div class="chart-box" inner_html=svg></div> })}</figure>
                                </div>
                            </div>
                        }.into_any()
                    }
                }
            })}
        </Transition>
    }
}

//! Online endpoints: each endpoint's deployments and split, presets to shift traffic, one-click rollback,
//! and a form to add a deployment at 0%. Every button is a run, followed on its own page.

use crate::api::{list_endpoints, AddDeployment, RollbackTraffic, SetTraffic, TrainAndDeploy};
use crate::components::{ErrorPanel, Loading, Shell};
use crate::model::EndpointView;
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

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
    view! {
        <Shell estate=None>
            <div class="page-head">
                <h1>"Online endpoints"</h1>
                <ActionForm action=pipeline attr:class="inline">
                    <input type="hidden" name="endpoint" value="ml-endpoint-staging"/>
                    <input type="hidden" name="reason_text" value=""/>
                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                    <button type="submit" class="button" data-action="train-deploy" disabled=move || pipeline.pending().get()
                        title="Train, register the model, deploy it to ml-endpoint-staging at 0% and store the endpoint key">
                        "Train and deploy"
                    </button>
                </ActionForm>
            </div>
            {error}
            <Transition fallback=Loading>
                {move || Suspend::new(async move {
                    match endpoints.await {
                        Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                        Ok(list) if list.is_empty() => view! {
                            <section class="card empty">
                                <p>"No online endpoints yet. Add the first deployment below; the endpoint is created with it."</p>
                            </section>
                        }.into_any(),
                        Ok(list) => list
                            .into_iter()
                            .map(|ep| view! { <EndpointCard ep set_traffic rollback/> })
                            .collect_view()
                            .into_any(),
                    }
                })}
            </Transition>
            <section class="card">
                <h2>"Add a deployment (at 0% traffic)"</h2>
                <ActionForm action=add attr:class="form">
                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                    <label>"Endpoint"<input name="endpoint" required value="ml-endpoint-staging"/></label>
                    <label>"Deployment"<input name="deployment" required placeholder="green"/></label>
                    <label>"Model (name:version)"<input name="model" required value="diabetes-classifier:1"/></label>
                    <label>"Instances"<input name="instance_count" type="number" min="1" max="20" value="1"/></label>
                    <div class="wide"><button type="submit" class="button" disabled=move || add.pending().get()>"Deploy"</button></div>
                </ActionForm>
            </section>
        </Shell>
    }
}

#[component]
fn EndpointCard(
    ep: EndpointView,
    set_traffic: ServerAction<SetTraffic>,
    rollback: ServerAction<RollbackTraffic>,
) -> impl IntoView {
    let EndpointView {
        name,
        state,
        scoring_uri,
        traffic,
        mirror: _,
        deployments,
    } = ep;
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
            <h2>{name.clone()}" "<span class="pill busy">{state}</span></h2>
            <p class="muted mono">{scoring_uri.unwrap_or_default()}</p>
            <table class="grid">
                <thead><tr><th>"Deployment"</th><th>"Model"</th><th>"Instances"</th><th>"State"</th><th>"Traffic"</th></tr></thead>
                <tbody>{rows}</tbody>
            </table>
            <div class="actions">
                {presets}
                <ActionForm action=set_traffic attr:class="inline">
                    <input type="hidden" name="endpoint" value=for_split/>
                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                    <input name="split" value=current aria-label="traffic split" size="24"/>
                    <input name="reason_text" placeholder="reason" size="16"/>
                    <button type="submit" class="button secondary">"Set split"</button>
                </ActionForm>
                <ActionForm action=rollback attr:class="inline">
                    <input type="hidden" name="endpoint" value=for_rollback/>
                    <input type="hidden" name="reason_text" value=""/>
                    <input type="hidden" name="idempotency_key" value=uuid::Uuid::new_v4().to_string()/>
                    <button type="submit" class="button danger" data-action="rollback">"Roll back"</button>
                </ActionForm>
            </div>
        </section>
    }
}

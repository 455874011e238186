//! Submit a training job: the seed's `jobs/train-job.yml`, as a form. One click is one job: the form
//! carries an idempotency key, so a double click or a resent form returns the first run.

use crate::api::SubmitTraining;
use crate::components::{CsrfField, Shell};
use crate::model::{format_inputs, TrainingJobSpec};
use leptos::prelude::*;
use leptos_router::hooks::use_navigate;

#[component]
pub fn TrainPage() -> impl IntoView {
    let submit = ServerAction::<SubmitTraining>::new();
    let key = uuid::Uuid::new_v4().to_string();
    let spec = TrainingJobSpec::seed_default();
    let navigate = use_navigate();
    Effect::new(move |_| {
        if let Some(Ok(id)) = submit.value().get() {
            navigate(&format!("/runs/{id}"), Default::default());
        }
    });
    let pending = submit.pending();
    let error = move || {
        submit.value().get().and_then(|r| r.err()).map(
            |e| view! { <div class="banner stale form-error" role="alert">{e.to_string()}</div> },
        )
    };
    view! {
        <Shell estate=None>
            <nav class="crumbs"><a href="/runs">"Runs"</a>" / new training job"</nav>
            <h1>"Submit a training job"</h1>
            <p class="muted">"A command job in the Azure ML workspace, as "<span class="mono">"az ml job create --file jobs/train-job.yml"</span>" would send it."</p>
            {error}
            <ActionForm action=submit attr:class="card form">
                <CsrfField/>
                <input type="hidden" name="form[idempotency_key]" value=key/>
                <label>"Display name"<input name="form[display_name]" value=spec.display_name.clone().unwrap_or_default()/></label>
                <label>"Experiment"<input name="form[experiment_name]" required value=spec.experiment_name.clone()/></label>
                <label class="wide">"Command"<textarea name="form[command]" rows="2" required>{spec.command.clone()}</textarea></label>
                <label>"Code"<input name="form[code]" required value=spec.code.clone()/></label>
                <label>"Environment"<input name="form[environment]" required value=spec.environment.clone()/></label>
                <label>"Compute"<input name="form[compute]" required value=spec.compute.clone()/></label>
                <label class="wide">"Inputs (one name=value a line)"<textarea name="form[inputs]" rows="3">{format_inputs(&spec.inputs)}</textarea></label>
                <label class="wide">"Reason (recorded with the run)"<input name="form[reason]" placeholder="why this run"/></label>
                <div class="wide">
                    <button type="submit" class="button" disabled=move || pending.get()>
                        {move || if pending.get() { "Submitting…" } else { "Submit training job" }}
                    </button>
                </div>
            </ActionForm>
        </Shell>
    }
}

//! Server functions: thin adapters from the pages to the server's [`Backend`].
// A form's fields are its server function's arguments, one per input; the macro's generated client
// function carries them all.
#![allow(clippy::too_many_arguments)]

use crate::error::AppError;
use crate::model::{RefreshOutcome, ResourcePage, RunDetail, RunFilter, RunList};
use leptos::prelude::*;

/// What the server provides to server functions; implemented by the `server` crate over its inventory.
#[cfg(feature = "ssr")]
pub trait Backend: Send + Sync + 'static {
    /// The overview from the latest snapshot (never calls Azure).
    fn overview(&self) -> Result<crate::model::Overview, AppError>;
    /// One resource from the latest snapshot (never calls Azure).
    fn resource(&self, name: &str) -> Result<ResourcePage, AppError>;
    /// Fetch a new snapshot from Azure now.
    fn refresh(&self) -> BoxFuture<'_, RefreshOutcome>;
    fn runs(&self, filter: RunFilter) -> BoxFuture<'_, Result<RunList, AppError>>;
    fn run(&self, id: String) -> BoxFuture<'_, Result<RunDetail, AppError>>;
    /// Records and submits a training job; returns the run id (the first run's, for a repeated key).
    fn submit_training(
        &self,
        spec: crate::model::TrainingJobSpec,
        idempotency_key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
}

/// The deployment side of the backend: endpoints and the actions on them.
#[cfg(feature = "ssr")]
pub trait Deployments: Send + Sync + 'static {
    fn endpoints(&self) -> BoxFuture<'_, Result<Vec<crate::model::EndpointView>, AppError>>;
    fn set_traffic(
        &self,
        endpoint: String,
        spec: crate::model::TrafficSpec,
        key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
    fn rollback(
        &self,
        endpoint: String,
        reason: Option<String>,
        key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
    fn create_deployment(
        &self,
        endpoint: String,
        spec: crate::model::DeploymentSpec,
        key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
    fn register_model(
        &self,
        spec: crate::model::ModelSpec,
        key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
    /// The seed's whole workflow (train → register → deploy at 0% → store the key) as one parent run.
    fn train_and_deploy(
        &self,
        endpoint: String,
        reason: Option<String>,
        key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
}

#[cfg(feature = "ssr")]
pub type SharedDeployments = std::sync::Arc<dyn Deployments>;

#[cfg(feature = "ssr")]
fn deployments() -> Result<SharedDeployments, AppError> {
    use_context::<SharedDeployments>().ok_or(AppError::Internal)
}

#[cfg(feature = "ssr")]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[cfg(feature = "ssr")]
pub type SharedBackend = std::sync::Arc<dyn Backend>;

#[cfg(feature = "ssr")]
fn backend() -> Result<SharedBackend, AppError> {
    use_context::<SharedBackend>().ok_or(AppError::Internal)
}

#[server(endpoint = "overview")]
pub async fn get_overview() -> Result<crate::model::OverviewPage, AppError> {
    let overview = backend()?.overview()?.for_page();
    let m = monitoring()?;
    Ok(crate::model::OverviewPage {
        overview,
        cost: m.cost_summary(),
        alerts: m.alert_counts(),
    })
}

#[server(endpoint = "resource")]
pub async fn get_resource(name: String) -> Result<ResourcePage, AppError> {
    backend()?.resource(&name)
}

#[server(endpoint = "refresh")]
pub async fn refresh_inventory(
    #[server(default)] csrf_token: String,
) -> Result<RefreshOutcome, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    Ok(backend()?.refresh().await)
}

#[server(endpoint = "runs")]
pub async fn list_runs(filter: RunFilter) -> Result<RunList, AppError> {
    backend()?.runs(filter).await
}

#[server(endpoint = "run")]
pub async fn get_run(id: String) -> Result<RunDetail, AppError> {
    backend()?.run(id).await
}

/// Submits the training form; returns the run id.
#[server(endpoint = "train")]
pub async fn submit_training(
    form: crate::model::TrainingForm,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    let key = Some(form.idempotency_key.clone()).filter(|k| !k.is_empty());
    let spec = form.into_spec().map_err(AppError::Invalid)?;
    backend()?.submit_training(spec, key).await
}

#[cfg(feature = "ssr")]
fn key(k: String) -> Option<String> {
    Some(k).filter(|k| !k.is_empty())
}

#[cfg(feature = "ssr")]
fn reason(r: String) -> Option<String> {
    Some(r).filter(|r| !r.trim().is_empty())
}

#[server(endpoint = "endpoints")]
pub async fn list_endpoints() -> Result<Vec<crate::model::EndpointView>, AppError> {
    deployments()?.endpoints().await
}

/// `split` is `blue=90, green=10`.
#[server(endpoint = "traffic")]
pub async fn set_traffic(
    endpoint: String,
    split: String,
    #[server(default)] mirror: String,
    reason_text: String,
    idempotency_key: String,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    let traffic = crate::model::parse_split(&split).map_err(AppError::Invalid)?;
    let mirror = crate::model::parse_split(&mirror).map_err(AppError::Invalid)?;
    let spec = crate::model::TrafficSpec {
        traffic,
        mirror,
        reason: reason(reason_text),
    };
    deployments()?
        .set_traffic(endpoint, spec, key(idempotency_key))
        .await
}

#[server(endpoint = "rollback")]
pub async fn rollback_traffic(
    endpoint: String,
    reason_text: String,
    idempotency_key: String,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    deployments()?
        .rollback(endpoint, reason(reason_text), key(idempotency_key))
        .await
}

#[server(endpoint = "deploy")]
pub async fn add_deployment(
    endpoint: String,
    deployment: String,
    model: String,
    instance_count: String,
    #[server(default)] environment: String,
    #[server(default)] reason_text: String,
    idempotency_key: String,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    let instance_count = instance_count
        .trim()
        .parse::<i64>()
        .map_err(|_| AppError::Invalid("instance_count: a whole number".into()))?;
    let environment_variables = crate::model::parse_env(&environment).map_err(AppError::Invalid)?;
    let spec = crate::model::DeploymentSpec {
        deployment,
        model,
        instance_type: "Standard_DS2_v2".into(),
        instance_count,
        environment_variables,
        reason: reason(reason_text),
    };
    deployments()?
        .create_deployment(endpoint, spec, key(idempotency_key))
        .await
}

#[server(endpoint = "register-model")]
pub async fn register_model(
    training_run: String,
    idempotency_key: String,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    let spec = crate::model::ModelSpec {
        training_run,
        name: "diabetes-classifier".into(),
        reason: None,
    };
    deployments()?
        .register_model(spec, key(idempotency_key))
        .await
}

#[server(endpoint = "train-deploy")]
pub async fn train_and_deploy(
    endpoint: String,
    reason_text: String,
    idempotency_key: String,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    deployments()?
        .train_and_deploy(endpoint, reason(reason_text), key(idempotency_key))
        .await
}

/// Observe: KQL queries, saved and recent ones, and an endpoint's rollout health.
#[cfg(feature = "ssr")]
pub trait Queries: Send + Sync + 'static {
    fn run_query(
        &self,
        req: crate::query::QueryRequest,
    ) -> BoxFuture<'_, Result<crate::query::QueryResult, AppError>>;
    fn saved_queries(&self) -> BoxFuture<'_, Result<Vec<crate::query::SavedQuery>, AppError>>;
    fn save_query(
        &self,
        q: crate::query::NewSavedQuery,
    ) -> BoxFuture<'_, Result<crate::query::SavedQuery, AppError>>;
    fn recent_queries(&self) -> BoxFuture<'_, Result<Vec<crate::query::RecentQuery>, AppError>>;
    fn endpoint_health(
        &self,
        endpoint: String,
    ) -> BoxFuture<'_, Result<crate::query::EndpointHealth, AppError>>;
}

#[cfg(feature = "ssr")]
pub type SharedQueries = std::sync::Arc<dyn Queries>;

#[cfg(feature = "ssr")]
fn queries() -> Result<SharedQueries, AppError> {
    use_context::<SharedQueries>().ok_or(AppError::Internal)
}

#[cfg(feature = "ssr")]
fn source_of(source: &str) -> Result<crate::query::Source, AppError> {
    crate::query::Source::parse(source).ok_or_else(|| {
        AppError::Invalid(format!(
            "source: '{source}' is not app-insights or log-analytics"
        ))
    })
}

#[server(endpoint = "query")]
pub async fn run_query(
    source: String,
    query: String,
    timespan: String,
) -> Result<crate::query::QueryResult, AppError> {
    let req = crate::query::QueryRequest {
        source: source_of(&source)?,
        query,
        timespan,
    };
    queries()?.run_query(req).await
}

#[server(endpoint = "saved-queries")]
pub async fn saved_queries() -> Result<Vec<crate::query::SavedQuery>, AppError> {
    queries()?.saved_queries().await
}

#[server(endpoint = "recent-queries")]
pub async fn recent_queries() -> Result<Vec<crate::query::RecentQuery>, AppError> {
    queries()?.recent_queries().await
}

#[server(endpoint = "save-query")]
pub async fn save_query(
    name: String,
    source: String,
    query: String,
    timespan: String,
    #[server(default)] csrf_token: String,
) -> Result<crate::query::SavedQuery, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    let q = crate::query::NewSavedQuery {
        name,
        source: source_of(&source)?,
        query,
        timespan,
        description: String::new(),
    };
    queries()?.save_query(q).await
}

#[server(endpoint = "endpoint-health")]
pub async fn endpoint_health(endpoint: String) -> Result<crate::query::EndpointHealth, AppError> {
    queries()?.endpoint_health(endpoint).await
}

/// Cost and alerts: cached cost, live alerts, and the actions on them.
#[cfg(feature = "ssr")]
pub trait Monitoring: Send + Sync + 'static {
    /// The cached cost view (never calls Azure).
    fn cost(&self) -> Result<crate::cost::CostView, AppError>;
    fn cost_summary(&self) -> Option<crate::cost::CostSummary>;
    fn refresh_cost(&self) -> BoxFuture<'_, Result<crate::cost::CostView, AppError>>;
    fn alerts(
        &self,
        state: Option<String>,
    ) -> BoxFuture<'_, Result<crate::cost::AlertsView, AppError>>;
    fn alert_counts(&self) -> crate::cost::AlertCounts;
    fn change_alert_state(
        &self,
        id: String,
        change: crate::cost::AlertStateChange,
        key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
    fn start_runbook(
        &self,
        parameters: serde_json::Value,
        reason: Option<String>,
        key: Option<String>,
    ) -> BoxFuture<'_, Result<String, AppError>>;
}

#[cfg(feature = "ssr")]
pub type SharedMonitoring = std::sync::Arc<dyn Monitoring>;

#[cfg(feature = "ssr")]
fn monitoring() -> Result<SharedMonitoring, AppError> {
    use_context::<SharedMonitoring>().ok_or(AppError::Internal)
}

#[server(endpoint = "cost")]
pub async fn get_cost() -> Result<crate::cost::CostView, AppError> {
    monitoring()?.cost()
}

#[server(endpoint = "cost-refresh")]
pub async fn refresh_cost(
    #[server(default)] csrf_token: String,
) -> Result<crate::cost::CostView, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    monitoring()?.refresh_cost().await
}

/// What the overview shows about money and alerts (both from caches).
#[server(endpoint = "alerts")]
pub async fn get_alerts(state: Option<String>) -> Result<crate::cost::AlertsView, AppError> {
    monitoring()?.alerts(state.filter(|s| !s.is_empty())).await
}

#[server(endpoint = "alert-state")]
pub async fn change_alert_state(
    id: String,
    state: String,
    comment: String,
    idempotency_key: String,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    monitoring()?
        .change_alert_state(
            id,
            crate::cost::AlertStateChange { state, comment },
            key(idempotency_key),
        )
        .await
}

#[server(endpoint = "runbook")]
pub async fn start_runbook(
    direction: String,
    reason_text: String,
    idempotency_key: String,
    #[server(default)] csrf_token: String,
) -> Result<String, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    if !matches!(direction.as_str(), "down" | "up") {
        return Err(AppError::Invalid(format!(
            "direction: '{direction}' is not up or down"
        )));
    }
    monitoring()?
        .start_runbook(
            serde_json::json!({"ScaleDirection": direction}),
            reason(reason_text),
            key(idempotency_key),
        )
        .await
}

/// Accounts, API tokens and the audit log.
#[cfg(feature = "ssr")]
pub trait Accounts: Send + Sync + 'static {
    fn users(&self) -> BoxFuture<'_, Result<Vec<crate::auth::UserView>, AppError>>;
    fn add_user(
        &self,
        name: String,
        display_name: String,
        role: crate::auth::Role,
    ) -> BoxFuture<'_, Result<crate::auth::NewUser, AppError>>;
    fn update_user(
        &self,
        name: String,
        role: Option<crate::auth::Role>,
        disabled: Option<bool>,
    ) -> BoxFuture<'_, Result<crate::auth::UserView, AppError>>;
    fn tokens(&self) -> BoxFuture<'_, Result<Vec<crate::auth::TokenView>, AppError>>;
    fn create_token(
        &self,
        name: String,
        role: crate::auth::Role,
        days: i64,
        by: String,
    ) -> BoxFuture<'_, Result<crate::auth::NewToken, AppError>>;
    fn revoke_token(&self, id: String) -> BoxFuture<'_, Result<(), AppError>>;
    fn audit(
        &self,
        filter: crate::auth::AuditFilter,
    ) -> BoxFuture<'_, Result<crate::auth::AuditList, AppError>>;
    /// The configuration in effect (no secret values).
    fn settings(&self) -> Vec<crate::auth::SettingsGroup>;
}

#[cfg(feature = "ssr")]
pub type SharedAccounts = std::sync::Arc<dyn Accounts>;

#[cfg(feature = "ssr")]
fn accounts() -> Result<SharedAccounts, AppError> {
    use_context::<SharedAccounts>().ok_or(AppError::Internal)
}

#[cfg(feature = "ssr")]
fn role_of(role: &str) -> Result<crate::auth::Role, AppError> {
    crate::auth::Role::parse(role).ok_or_else(|| {
        AppError::Invalid(format!("role: '{role}' is not viewer, operator or admin"))
    })
}

/// The signed-in user (with the session's CSRF token for forms), or `None`.
#[server(endpoint = "whoami")]
pub async fn whoami() -> Result<Option<crate::auth::Me>, AppError> {
    Ok(crate::auth::request_user().map(crate::auth::Me::from))
}

/// The configuration in effect: admins only.
#[server(endpoint = "settings")]
pub async fn settings() -> Result<Vec<crate::auth::SettingsGroup>, AppError> {
    Ok(accounts()?.settings())
}

#[server(endpoint = "users")]
pub async fn list_users() -> Result<Vec<crate::auth::UserView>, AppError> {
    accounts()?.users().await
}

#[server(endpoint = "user-add")]
pub async fn add_user(
    name: String,
    display_name: String,
    role: String,
    #[server(default)] csrf_token: String,
) -> Result<crate::auth::NewUser, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    accounts()?
        .add_user(name, display_name, role_of(&role)?)
        .await
}

#[server(endpoint = "user-update")]
pub async fn update_user(
    name: String,
    #[server(default)] role: String,
    #[server(default)] disabled: String,
    #[server(default)] csrf_token: String,
) -> Result<crate::auth::UserView, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    let role = Some(role)
        .filter(|r| !r.is_empty())
        .map(|r| role_of(&r))
        .transpose()?;
    let disabled = match disabled.as_str() {
        "" => None,
        "true" => Some(true),
        "false" => Some(false),
        other => {
            return Err(AppError::Invalid(format!(
                "disabled: '{other}' is not true or false"
            )))
        }
    };
    accounts()?.update_user(name, role, disabled).await
}

#[server(endpoint = "tokens")]
pub async fn list_tokens() -> Result<Vec<crate::auth::TokenView>, AppError> {
    accounts()?.tokens().await
}

#[server(endpoint = "token-create")]
pub async fn create_token(
    name: String,
    role: String,
    days: String,
    #[server(default)] csrf_token: String,
) -> Result<crate::auth::NewToken, AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    let days = days
        .trim()
        .parse::<i64>()
        .map_err(|_| AppError::Invalid("days: a whole number".into()))?;
    let by = crate::auth::request_user()
        .map(|u| u.name)
        .unwrap_or_default();
    accounts()?
        .create_token(name, role_of(&role)?, days, by)
        .await
}

#[server(endpoint = "token-revoke")]
pub async fn revoke_token(
    id: String,
    #[server(default)] csrf_token: String,
) -> Result<(), AppError> {
    // Checked by the server before the call gets here (the CSRF token travels with the form).
    let _ = csrf_token;
    accounts()?.revoke_token(id).await
}

#[server(endpoint = "audit")]
pub async fn audit_log(
    filter: crate::auth::AuditFilter,
) -> Result<crate::auth::AuditList, AppError> {
    accounts()?.audit(filter).await
}

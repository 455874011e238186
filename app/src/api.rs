//! Server functions: thin adapters from the pages to the server's [`Backend`].

use crate::error::AppError;
use crate::model::{Overview, RefreshOutcome, ResourcePage, RunDetail, RunFilter, RunList};
use leptos::prelude::*;

/// What the server provides to server functions; implemented by the `server` crate over its inventory.
#[cfg(feature = "ssr")]
pub trait Backend: Send + Sync + 'static {
    /// The overview from the latest snapshot (never calls Azure).
    fn overview(&self) -> Result<Overview, AppError>;
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

#[cfg(feature = "ssr")]
pub type BoxFuture<'a, T> = std::pin::Pin<Box<dyn std::future::Future<Output = T> + Send + 'a>>;

#[cfg(feature = "ssr")]
pub type SharedBackend = std::sync::Arc<dyn Backend>;

#[cfg(feature = "ssr")]
fn backend() -> Result<SharedBackend, AppError> {
    use_context::<SharedBackend>().ok_or(AppError::Internal)
}

#[server(endpoint = "overview")]
pub async fn get_overview() -> Result<Overview, AppError> {
    backend()?.overview()
}

#[server(endpoint = "resource")]
pub async fn get_resource(name: String) -> Result<ResourcePage, AppError> {
    backend()?.resource(&name)
}

#[server(endpoint = "refresh")]
pub async fn refresh_inventory() -> Result<RefreshOutcome, AppError> {
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
pub async fn submit_training(form: crate::model::TrainingForm) -> Result<String, AppError> {
    let key = Some(form.idempotency_key.clone()).filter(|k| !k.is_empty());
    let spec = form.into_spec().map_err(AppError::Invalid)?;
    backend()?.submit_training(spec, key).await
}

//! Server functions: thin adapters from the pages to the server's [`Backend`].

use crate::error::AppError;
use crate::model::{Overview, RefreshOutcome, ResourcePage};
use leptos::prelude::*;

/// What the server provides to server functions; implemented by the `server` crate over its inventory.
#[cfg(feature = "ssr")]
pub trait Backend: Send + Sync + 'static {
    /// The overview from the latest snapshot (never calls Azure).
    fn overview(&self) -> Result<Overview, AppError>;
    /// One resource from the latest snapshot (never calls Azure).
    fn resource(&self, name: &str) -> Result<ResourcePage, AppError>;
    /// Fetch a new snapshot from Azure now.
    fn refresh(
        &self,
    ) -> std::pin::Pin<Box<dyn std::future::Future<Output = RefreshOutcome> + Send + '_>>;
}

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

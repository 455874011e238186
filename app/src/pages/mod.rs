//! One module per page.

pub mod admin;
pub mod alerts;
pub mod audit;
pub mod cost;
pub mod endpoints;
pub mod overview;
pub mod queries;
pub mod resource;
pub mod runs;
pub mod signin;
pub mod train;

use crate::components::Shell;
use leptos::prelude::*;

/// Sets the response status while rendering on the server (a 404 page must not answer 200).
pub fn set_status(code: u16) {
    #[cfg(feature = "ssr")]
    if let Some(options) = use_context::<leptos_axum::ResponseOptions>() {
        if let Ok(status) = http_status(code) {
            options.set_status(status);
        }
    }
    #[cfg(not(feature = "ssr"))]
    let _ = code;
}

#[cfg(feature = "ssr")]
fn http_status(code: u16) -> Result<http::StatusCode, ()> {
    http::StatusCode::from_u16(code).map_err(|_| ())
}

#[component]
pub fn NotFound() -> impl IntoView {
    set_status(404);
    view! {
        <Shell estate=None>
            <section class="card empty">
                <h1>"Page not found"</h1>
                <p>"There is nothing at this address. " <a href="/">"Back to the overview"</a></p>
            </section>
        </Shell>
    }
}

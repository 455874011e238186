//! mlops-console's pages: server-rendered by the `server` crate, hydrated in the browser from this crate's wasm.
#![recursion_limit = "256"]

pub mod api;
pub mod auth;
pub mod chart;
pub mod components;
pub mod cost;
pub mod error;
pub mod graph;
pub mod model;
pub mod pages;
pub mod query;

use leptos::prelude::*;
use leptos_meta::{provide_meta_context, MetaTags, Stylesheet, Title};
use leptos_router::{
    components::{Route, Router, Routes},
    path, SsrMode,
};

/// The HTML document around the app, rendered on the server only.
pub fn shell(options: LeptosOptions) -> impl IntoView {
    view! {
        <!DOCTYPE html>
        <html lang="en">
            <head>
                <meta charset="utf-8"/>
                <meta name="viewport" content="width=device-width, initial-scale=1"/>
                <link rel="icon" href="/favicon.svg" type="image/svg+xml"/>
                <HydrationScripts options/>
                <MetaTags/>
            </head>
            <body>
                <App/>
            </body>
        </html>
    }
}

#[component]
pub fn App() -> impl IntoView {
    provide_meta_context();
    components::provide_me();
    // Runs only in the browser, once hydration has attached: tests and scripts wait on this marker.
    Effect::new(move |_| {
        #[cfg(feature = "hydrate")]
        if let Some(body) = web_sys::window()
            .and_then(|w| w.document())
            .and_then(|d| d.body())
        {
            let _ = body.set_attribute("data-hydrated", "true");
        }
    });
    view! {
        <Stylesheet id="leptos" href="/pkg/mlops_console.css"/>
        <Title text="mlops-console"/>
        <Router>
            <Routes fallback=pages::NotFound>
                <Route path=path!("/") view=pages::overview::OverviewPage ssr=SsrMode::Async/>
                <Route path=path!("/resources/:name") view=pages::resource::ResourcePage ssr=SsrMode::Async/>
                <Route path=path!("/runs") view=pages::runs::RunsPage ssr=SsrMode::Async/>
                <Route path=path!("/runs/compare") view=pages::runs::ComparePage ssr=SsrMode::Async/>
                <Route path=path!("/runs/:id") view=pages::runs::RunPage ssr=SsrMode::Async/>
                <Route path=path!("/train") view=pages::train::TrainPage/>
                <Route path=path!("/endpoints") view=pages::endpoints::EndpointsPage ssr=SsrMode::Async/>
                <Route path=path!("/queries") view=pages::queries::QueriesPage ssr=SsrMode::Async/>
                <Route path=path!("/cost") view=pages::cost::CostPage ssr=SsrMode::Async/>
                <Route path=path!("/alerts") view=pages::alerts::AlertsPage ssr=SsrMode::Async/>
                <Route path=path!("/audit") view=pages::audit::AuditPage ssr=SsrMode::Async/>
                <Route path=path!("/admin") view=pages::admin::AdminPage ssr=SsrMode::Async/>
                <Route path=path!("/signin") view=pages::signin::SignInPage/>
            </Routes>
        </Router>
    }
}

#[cfg(feature = "hydrate")]
#[wasm_bindgen::prelude::wasm_bindgen]
pub fn hydrate() {
    console_error_panic_hook::set_once();
    leptos::mount::hydrate_body(App);
}

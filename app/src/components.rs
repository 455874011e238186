//! Pieces every page uses: the frame with the estate header, status pills, the freshness bar, error panels.

use crate::api::RefreshInventory;
use crate::auth::{Me, Role};
use crate::error::AppError;
use crate::model::{EstateInfo, Freshness, Status};
use leptos::prelude::*;

/// The page frame: the estate header (environment, subscription, resource group, region, mode) and navigation.
#[component]
pub fn Shell(estate: Option<EstateInfo>, children: Children) -> impl IntoView {
    let header = estate.map(|info| {
        let emulator = info.mode == "emulator";
        let e = info.estate;
        view! {
            <dl class="estate">
                <div><dt>"Environment"</dt><dd>{e.environment}</dd></div>
                <div><dt>"Subscription"</dt><dd class="mono">{e.subscription_id}</dd></div>
                <div><dt>"Resource group"</dt><dd class="mono">{e.resource_group}</dd></div>
                <div><dt>"Region"</dt><dd>{region_label(&e.location)}</dd></div>
            </dl>
            {emulator.then(|| view! {
                <span class="badge emulator" title="Data comes from the embedded Azure emulator, not from Azure">
                    "EMULATOR"
                </span>
            })}
        }
    });
    view! {
        <header class="topbar">
            <a class="brand" href="/">
                <span class="logo" aria-hidden="true">"◆"</span>
                "mlops-console"
            </a>
            <nav>
                <a href="/">"Overview"</a>
                <a href="/runs">"Runs"</a>
                <IfRole role=Role::Operator><a href="/train">"Train"</a></IfRole>
                <a href="/endpoints">"Endpoints"</a>
                <a href="/queries">"Queries"</a>
                <a href="/cost">"Cost"</a>
                <a href="/alerts">"Alerts"</a>
                <a href="/audit">"Audit"</a>
                <IfRole role=Role::Admin><a href="/admin">"Admin"</a></IfRole>
            </nav>
            <div class="estate-header">{header}</div>
            <UserMenu/>
        </header>
        <main class="page">{children()}</main>
    }
}

/// "eastus" → "East US", as the portal shows it.
pub fn region_label(location: &str) -> String {
    match location.to_ascii_lowercase().replace(' ', "").as_str() {
        "eastus" => "East US".into(),
        "eastus2" => "East US 2".into(),
        "westus" => "West US".into(),
        "westus2" => "West US 2".into(),
        "westeurope" => "West Europe".into(),
        "northeurope" => "North Europe".into(),
        "global" => "Global".into(),
        other => other.to_string(),
    }
}

#[component]
pub fn StatusPill(status: Status) -> impl IntoView {
    let class = match &status {
        Status::Missing => "pill bad",
        s if s.is_healthy() => "pill ok",
        Status::Provisioned(s) if s == "Failed" || s == "Canceled" => "pill bad",
        Status::Provisioned(_) => "pill busy",
    };
    view! { <span class=class>{status.label()}</span> }
}

/// "12 s", "5 min", "3 h", "2 d".
pub fn age_label(seconds: i64) -> String {
    match seconds {
        s if s < 60 => format!("{} s", s.max(0)),
        s if s < 3600 => format!("{} min", s / 60),
        s if s < 86_400 => format!("{} h", s / 3600),
        s => format!("{} d", s / 86_400),
    }
}

/// How fresh the data is, a stale warning when the last refresh failed, and the refresh button.
#[component]
pub fn FreshnessBar(
    freshness: Freshness,
    refresh: ServerAction<RefreshInventory>,
) -> impl IntoView {
    let fetched = match (freshness.fetched_at, freshness.age_seconds) {
        (Some(at), Some(age)) => format!(
            "Fetched from Azure Resource Manager {} ago ({})",
            age_label(age),
            at.format("%Y-%m-%d %H:%M:%S UTC")
        ),
        _ => "Not fetched yet".to_string(),
    };
    let stale = freshness.stale.then(|| {
        let reason = freshness
            .last_error
            .clone()
            .unwrap_or_else(|| "no refresh has succeeded yet".into());
        let age = freshness
            .age_seconds
            .map(age_label)
            .map(|a| format!("Stale: showing the last snapshot, {a} old. "))
            .unwrap_or_else(|| "Stale. ".to_string());
        view! {
            <div class="banner stale" role="status" data-stale="true">
                <strong>{age}</strong>
                {format!("The last refresh failed: {reason}")}
            </div>
        }
    });
    let pending = refresh.pending();
    view! {
        {stale}
        <div class="freshness">
            <span class="muted" data-testid="fetched-at">{fetched}</span>
            <ActionForm action=refresh attr:class="inline">
                <CsrfField/>
                <button type="submit" class="button" disabled=move || pending.get()>
                    {move || if pending.get() { "Refreshing…" } else { "Refresh" }}
                </button>
            </ActionForm>
        </div>
    }
}

/// A page-level error panel.
#[component]
pub fn ErrorPanel(error: AppError) -> impl IntoView {
    crate::pages::set_status(error.status());
    let title = match &error {
        AppError::NotFound(_) => "Not found",
        AppError::Unavailable(_) => "Azure is not answering",
        _ => "Something went wrong",
    };
    view! {
        <section class="card error" role="alert">
            <h1>{title}</h1>
            <p>{error.to_string()}</p>
            <p><a href="/">"Back to the overview"</a></p>
        </section>
    }
}

#[component]
pub fn Loading() -> impl IntoView {
    view! { <p class="muted loading">"Loading…"</p> }
}

/// Percent-encodes `s` for a query string.
pub fn urlencode(s: &str) -> String {
    s.bytes()
        .map(|b| match b {
            b'A'..=b'Z' | b'a'..=b'z' | b'0'..=b'9' | b'-' | b'_' | b'.' | b'~' => {
                (b as char).to_string()
            }
            b => format!("%{b:02X}"),
        })
        .collect()
}

/// The signed-in user (with the session's CSRF token for forms), or `None`: known synchronously on the
/// server from the request, written into the page once, and read back when the page hydrates — no
/// request and no suspense boundary for it.
#[derive(Clone, Debug)]
struct SignedIn(Option<Me>);

pub fn provide_me() {
    let me = leptos::server::SharedValue::new(|| {
        #[cfg(feature = "ssr")]
        {
            crate::auth::request_user().map(Me::from)
        }
        #[cfg(not(feature = "ssr"))]
        {
            None
        }
    });
    provide_context(SignedIn(me.into_inner()));
}

/// The signed-in user, or `None`.
pub fn signed_in() -> Option<Me> {
    use_context::<SignedIn>().and_then(|s| s.0)
}

/// Whether the signed-in user has at least `role`.
pub fn can(role: Role) -> bool {
    signed_in().is_some_and(|m| m.can(role))
}

/// The hidden field every form that changes something carries: the session's CSRF token.
#[component]
pub fn CsrfField() -> impl IntoView {
    signed_in().map(|m| view! { <input type="hidden" name="csrf_token" value=m.csrf/> })
}

/// Shows its children only to users with at least `role` (the server checks again on every call).
#[component]
pub fn IfRole(role: Role, children: ChildrenFn) -> impl IntoView {
    can(role).then(|| children())
}

/// Who is signed in, their role, and sign-out.
#[component]
fn UserMenu() -> impl IntoView {
    signed_in().map(|m| {
        view! {
            <form class="user-menu" method="post" action="/signout">
                <span class="who" data-testid="who" data-role=m.role.as_str()>{m.display_name}" · "{m.role.as_str()}</span>
                <input type="hidden" name="csrf_token" value=m.csrf/>
                <button type="submit" class="button secondary small">"Sign out"</button>
            </form>
        }
    })
}

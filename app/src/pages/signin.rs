//! Sign-in: a plain form posted to the server (it works before any script loads). The error, if any,
//! is the same whatever was wrong, so it tells nobody which accounts exist.

use crate::auth::SignInMethods;
use leptos::prelude::*;
use leptos_router::hooks::use_query_map;

#[component]
pub fn SignInPage() -> impl IntoView {
    let q = use_query_map();
    let error = move || q.read().get("error").filter(|e| !e.is_empty());
    let next = move || q.read().get("next").unwrap_or_else(|| "/".into());
    // Known on the server; carried into the page for hydration.
    let methods =
        SharedValue::new(|| use_context::<SignInMethods>().unwrap_or_default()).into_inner();
    let entra = methods.entra.then(|| {
        view! {
            <a class="button secondary entra" data-action="signin-entra" rel="external"
                href=move || format!("/signin/entra?next={}", crate::components::urlencode(&next()))>
                "Sign in with Microsoft Entra ID"
            </a>
            <p class="divider muted small">"or with a console account"</p>
        }
    });
    view! {
        <main class="signin">
            <form class="card signin-form" method="post" action="/signin">
                <h1><span class="logo" aria-hidden="true">"◆ "</span>"mlops-console"</h1>
                <p class="muted">"Sign in to the ML platform's control plane."</p>
                {move || error().map(|e| view! { <div class="banner stale form-error" role="alert">{e}</div> })}
                {entra}
                <input type="hidden" name="next" value=next/>
                <label>"Name"<input name="name" autocomplete="username" required autofocus/></label>
                <label>"Password"<input name="password" type="password" autocomplete="current-password" required/></label>
                <button type="submit" class="button" data-action="signin">"Sign in"</button>
                <p class="muted small">"On a first start the console prints the password of the `admin` account once. "
                    "Accounts are added by an admin, or with `mlops-console users add`."</p>
            </form>
        </main>
    }
}

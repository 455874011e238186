//! Admin: accounts (add, change role, disable), API tokens (create — shown once — and revoke), and the
//! settings in effect.

use crate::api::{
    list_tokens, list_users, settings, AddUser, CreateToken, RevokeToken, UpdateUser,
};
use crate::auth::Role;
use crate::components::{CsrfField, ErrorPanel, Loading, Shell};
use leptos::prelude::*;

#[component]
pub fn AdminPage() -> impl IntoView {
    let add = ServerAction::<AddUser>::new();
    let update = ServerAction::<UpdateUser>::new();
    let create = ServerAction::<CreateToken>::new();
    let revoke = ServerAction::<RevokeToken>::new();
    let users = Resource::new(
        move || (add.version().get(), update.version().get()),
        |_| list_users(),
    );
    let tokens = Resource::new(
        move || (create.version().get(), revoke.version().get()),
        |_| list_tokens(),
    );
    let settings = Resource::new(|| (), |_| settings());
    let roles = move || {
        Role::ALL
            .into_iter()
            .map(|r| view! { <option value=r.as_str()>{r.as_str()}</option> })
            .collect_view()
    };
    view! {
        <Shell estate=None>
            <div class="page-head"><h1>"Admin"</h1></div>
            <section class="card">
                <h2>"Users"</h2>
                {move || update.value().get().and_then(|r| r.err()).map(|e| view! { <div class="banner stale" role="alert">{e.to_string()}</div> })}
                <Transition fallback=Loading>
                    {move || Suspend::new(async move {
                        match users.await {
                            Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                            Ok(list) => view! {
                                <table class="grid">
                                    <thead><tr><th>"Name"</th><th>"Display name"</th><th>"Role"</th><th>"Source"</th><th>"State"</th><th></th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|u| {
                                            let name = u.name.clone();
                                            view! {
                                                <tr data-user=u.name.clone()>
                                                    <td class="mono">{u.name.clone()}</td>
                                                    <td>{u.display_name.clone()}</td>
                                                    <td>{u.role.as_str()}</td>
                                                    <td>{u.source.clone()}</td>
                                                    <td>{if u.disabled { "disabled" } else { "active" }}</td>
                                                    <td>
                                                        <ActionForm action=update attr:class="inline">
                                                            <CsrfField/>
                                                            <input type="hidden" name="name" value=name.clone()/>
                                                            <select name="role" aria-label="role" disabled=u.source == "entra"
                                                                title=if u.source == "entra" { "Set by the person's Entra ID groups at each sign-in" } else { "" }>
                                                                {Role::ALL.into_iter().map(|r| view! { <option value=r.as_str() selected=r == u.role>{r.as_str()}</option> }).collect_view()}
                                                            </select>
                                                            <select name="disabled" aria-label="state">
                                                                <option value="false" selected=!u.disabled>"active"</option>
                                                                <option value="true" selected=u.disabled>"disabled"</option>
                                                            </select>
                                                            <button type="submit" class="button secondary">"Save"</button>
                                                        </ActionForm>
                                                    </td>
                                                </tr>
                                            }
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                        }
                    })}
                </Transition>
                <h3>"Add a user"</h3>
                <ActionForm action=add attr:class="form">
                    <CsrfField/>
                    <label>"Name"<input name="name" required placeholder="alice"/></label>
                    <label>"Display name"<input name="display_name" placeholder="Alice Example"/></label>
                    <label>"Role"<select name="role">{roles}</select></label>
                    <div class="wide"><button type="submit" class="button" data-action="add-user">"Add"</button></div>
                </ActionForm>
                {move || add.value().get().map(|r| match r {
                    Ok(n) => view! {
                        <div class="banner info" role="status">
                            {format!("Added {} ({}). ", n.user.name, n.user.role.as_str())}
                            {n.password.map(|p| view! { "Their password, shown this once: " <code class="secret-once">{p}</code> })}
                        </div>
                    }.into_any(),
                    Err(e) => view! { <div class="banner stale" role="alert">{e.to_string()}</div> }.into_any(),
                })}
            </section>
            <section class="card">
                <h2>"API tokens"</h2>
                <p class="muted">"For the JSON API: " <code>"Authorization: Bearer mlc_…"</code>". Only a digest is kept; a token is shown once."</p>
                <Transition fallback=Loading>
                    {move || Suspend::new(async move {
                        match tokens.await {
                            Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                            Ok(list) => view! {
                                <table class="grid">
                                    <thead><tr><th>"Name"</th><th>"Role"</th><th>"Starts with"</th><th>"Created"</th><th>"Expires"</th><th>"Last used"</th><th></th></tr></thead>
                                    <tbody>
                                        {list.into_iter().map(|t| { let id = t.id.clone(); view! {
                                            <tr data-token=t.id.clone()>
                                                <td>{t.name.clone()}</td>
                                                <td>{t.role.as_str()}</td>
                                                <td class="mono">{format!("{}…", t.prefix)}</td>
                                                <td>{format!("{} by {}", t.created_at.format("%Y-%m-%d"), t.created_by)}</td>
                                                <td>{t.expires_at.format("%Y-%m-%d").to_string()}</td>
                                                <td>{t.last_used_at.map(|d| d.format("%Y-%m-%d %H:%M").to_string()).unwrap_or_else(|| "never".into())}</td>
                                                <td>{match t.revoked_at {
                                                    Some(r) => view! { <span class="pill bad">{format!("revoked {}", r.format("%Y-%m-%d"))}</span> }.into_any(),
                                                    None => view! {
                                                        <ActionForm action=revoke attr:class="inline">
                                                            <CsrfField/>
                                                            <input type="hidden" name="id" value=id/>
                                                            <button type="submit" class="button danger">"Revoke"</button>
                                                        </ActionForm>
                                                    }.into_any(),
                                                }}</td>
                                            </tr>
                                        }}).collect_view()}
                                    </tbody>
                                </table>
                            }.into_any(),
                        }
                    })}
                </Transition>
                <h3>"Create a token"</h3>
                <ActionForm action=create attr:class="form">
                    <CsrfField/>
                    <label>"Name"<input name="name" required placeholder="ci-pipeline"/></label>
                    <label>"Role"<select name="role">{roles}</select></label>
                    <label>"Days valid"<input name="days" type="number" min="1" max="366" value="90"/></label>
                    <div class="wide"><button type="submit" class="button" data-action="create-token">"Create"</button></div>
                </ActionForm>
                {move || create.value().get().map(|r| match r {
                    Ok(t) => view! {
                        <div class="banner info" role="status">
                            {format!("Token '{}' ({}) — copy it now, it is not shown again: ", t.view.name, t.view.role.as_str())}
                            <code class="secret-once">{t.token}</code>
                        </div>
                    }.into_any(),
                    Err(e) => view! { <div class="banner stale" role="alert">{e.to_string()}</div> }.into_any(),
                })}
            </section>
            <section class="card" data-testid="settings">
                <h2>"Settings"</h2>
                <p class="muted">"What this console runs with. They are set by flags or environment variables ("
                    <code>"mlops-console --help"</code>") and take effect at the next start; secrets show only as set."</p>
                <Transition fallback=Loading>
                    {move || Suspend::new(async move {
                        match settings.await {
                            Err(e) => view! { <ErrorPanel error=e/> }.into_any(),
                            Ok(groups) => groups.into_iter().map(|g| view! {
                                <h3>{g.title}</h3>
                                <table class="grid settings">
                                    <tbody>
                                        {g.settings.into_iter().map(|s| view! {
                                            <tr><th scope="row">{s.name}</th><td class="mono">{s.value}</td><td class="muted mono">{s.from}</td></tr>
                                        }).collect_view()}
                                    </tbody>
                                </table>
                            }).collect_view().into_any(),
                        }
                    })}
                </Transition>
            </section>
        </Shell>
    }
}

-- Entra ID sign-in: the person's object id (stable across renames), and sign-ins under way.
alter table users add column external_id text unique;
alter table users add constraint users_entra_has_id check (source <> 'entra' or external_id is not null);

-- One row per sign-in started and not yet finished: single use, ten minutes.
create table oidc_pending (
    state text primary key,
    nonce text not null,
    verifier text not null,
    next text not null,
    created_at timestamptz not null default now()
);
create index oidc_pending_created_at on oidc_pending (created_at);

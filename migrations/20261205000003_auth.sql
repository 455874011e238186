-- Sign-in, roles, API tokens and the audit log.
create table users (
    id uuid primary key,
    name text not null unique check (name = lower(name) and length(name) between 2 and 64),
    display_name text not null,
    role text not null check (role in ('viewer', 'operator', 'admin')),
    -- argon2id PHC string; null for accounts that sign in with Entra ID.
    password_hash text,
    source text not null default 'local' check (source in ('local', 'entra')),
    disabled boolean not null default false,
    created_at timestamptz not null default now()
);

create table api_tokens (
    id uuid primary key,
    name text not null,
    role text not null check (role in ('viewer', 'operator', 'admin')),
    -- sha256 of the token; the token itself is shown once and never stored.
    token_hash text not null unique,
    prefix text not null,
    created_by text not null,
    created_at timestamptz not null default now(),
    expires_at timestamptz not null,
    revoked_at timestamptz,
    last_used_at timestamptz
);

create table audit_log (
    id bigserial primary key,
    at timestamptz not null default now(),
    actor text not null,
    actor_kind text not null check (actor_kind in ('user', 'token', 'anonymous', 'system')),
    role text,
    action text not null,
    target text not null default '',
    parameters jsonb not null default '{}',
    outcome text not null check (outcome in ('ok', 'denied', 'failed')),
    status integer not null,
    reason text,
    run_id uuid,
    address text
);
create index audit_log_at on audit_log (at desc, id desc);
create index audit_log_actor on audit_log (actor, at desc);

-- Append-only: what happened stays as it was recorded.
create function audit_log_append_only() returns trigger language plpgsql as $$
begin
    raise exception 'audit_log is append-only';
end $$;
create trigger audit_log_no_update before update or delete on audit_log
    for each row execute function audit_log_append_only();
create trigger audit_log_no_truncate before truncate on audit_log
    for each statement execute function audit_log_append_only();

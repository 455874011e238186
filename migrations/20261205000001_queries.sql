-- Observe: the queries users saved, and every query run (who, what, how long, how it ended).
create table saved_queries (
    id uuid primary key,
    name text not null,
    source text not null check (source in ('app-insights', 'log-analytics')),
    query text not null,
    timespan text not null,
    description text not null default '',
    owner text not null,
    created_at timestamptz not null default now(),
    unique (owner, name)
);

create table query_history (
    id bigserial primary key,
    requested_by text not null,
    source text not null,
    query text not null,
    timespan text not null,
    ran_at timestamptz not null default now(),
    elapsed_ms bigint not null,
    row_count bigint,
    error text
);
create index query_history_by_user on query_history (requested_by, ran_at desc);

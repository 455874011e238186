-- Cost data changes a few times a day and the API is throttled: the console keeps what it fetched.
create table cost_snapshots (
    id bigserial primary key,
    fetched_at timestamptz not null default now(),
    body jsonb not null
);
create index cost_snapshots_latest on cost_snapshots (fetched_at desc);

-- Run history: every action is a run, tracked from request to terminal state.
create table runs (
    id uuid primary key,
    kind text not null,
    -- What it acts on, as a person names it (e.g. "mlopsnew-dev-mlw/jobs/train-…").
    target text not null,
    parameters jsonb not null,
    requested_by text not null,
    reason text,
    -- submitting → queued → running → succeeded | failed | canceled
    status text not null,
    -- Azure's own status word (NotStarted, Running, Completed, …), as last seen.
    azure_status text,
    azure_id text,
    parent_id uuid references runs (id),
    idempotency_key text,
    error text,
    -- What the run produced that is worth keeping (e.g. a training job's last metrics).
    outputs jsonb not null default '{}',
    created_at timestamptz not null default now(),
    updated_at timestamptz not null default now(),
    finished_at timestamptz,
    -- The tracker: which replica holds the run, until when, and when to look again.
    lease_owner text,
    lease_until timestamptz,
    next_poll_at timestamptz not null default now(),
    constraint runs_status_known check (status in ('submitting', 'queued', 'running', 'succeeded', 'failed', 'canceled'))
);
-- A repeated trigger with the same key returns the first run.
create unique index runs_idempotency on runs (kind, idempotency_key) where idempotency_key is not null;
-- Keyset pagination, newest first.
create index runs_created on runs (created_at desc, id desc);
-- The tracker's work queue: only runs in flight.
create index runs_in_flight on runs (next_poll_at) where finished_at is null;

create table run_transitions (
    id bigserial primary key,
    run_id uuid not null references runs (id) on delete cascade,
    status text not null,
    azure_status text,
    at timestamptz not null default now(),
    note text
);
-- Each Azure status is recorded once per run, however many replicas track it.
create unique index run_transitions_once on run_transitions (run_id, status, coalesce(azure_status, ''));
create index run_transitions_run on run_transitions (run_id, at);

create table run_logs (
    id bigserial primary key,
    run_id uuid not null references runs (id) on delete cascade,
    at timestamptz not null default now(),
    line text not null
);
create index run_logs_run on run_logs (run_id, id);

-- Inventory snapshots: each successful refresh of the estate from Azure Resource Manager.
create table inventory_snapshots (
    id bigserial primary key,
    fetched_at timestamptz not null default now(),
    -- "emulator" or "azure": a snapshot from one is never shown as the other's.
    source text not null,
    subscription_id text not null,
    resource_group text not null,
    -- The inventory as the pages show it (server-side `Inventory`, JSON).
    body jsonb not null
);
create index inventory_snapshots_latest on inventory_snapshots (source, subscription_id, resource_group, fetched_at desc);

-- The emulator's "cloud": what Azure would hold, kept across restarts like Azure keeps it.
create schema emulator;

create table emulator.objects (
    -- "resource" for ARM resources; data-plane kinds such as "secret", "container", "repository", "role-assignment".
    kind text not null,
    -- Lower-cased id: ARM ids are case-insensitive.
    key text not null,
    -- The id of what it belongs to (lower-cased): the resource group for resources, the vault for secrets, …
    parent text not null,
    body jsonb not null,
    created_at timestamptz not null default now(),
    changed_at timestamptz not null default now(),
    primary key (kind, key)
);
create index emulator_objects_parent on emulator.objects (kind, parent, key);

-- Which estates have been seeded, so a deleted resource stays deleted after a restart.
create table emulator.seeded (
    estate text primary key,
    seeded_at timestamptz not null default now()
);

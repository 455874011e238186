//! Every integration test, in one binary: the harness in `support`, one module per area.

mod support;

mod auth;
mod browser;
mod contract;
mod deploy;
mod emulator;
mod entra;
mod full_stack;
mod monitoring;
mod observe;
mod runs;

//! StepSync's integration tests, in one binary so the AWS SDK, dynoxide, axum and the rest
//! are linked once: the real adapters and handlers against local AWS (dynoxide, and moto
//! where the DynamoDB adapter's contract must hold on both), the fake providers on loopback,
//! and the checks that `template.yaml` and `docs/openapi.yaml` agree with the code.
//!
//! Each module is one area (`handlers` holds what was `functions.rs`: the name would shadow the
//! `functions` crate); its tests are named `module::case` (the adapter contract's
//! `module::dynoxide::case` and `module::moto::case`). The console's browser test is its own
//! target (`tests/browser.rs`): it drives Chromium through node.

mod budget;
mod challenges_api;
mod chaos;
mod device_upload;
mod engine;
mod events;
mod faults;
mod garmin;
mod google_health;
mod handlers;
mod local_stack;
mod log_capture;
mod misfit;
mod model;
mod nudges;
mod openapi;
mod organizer_api;
mod oura;
mod polar;
mod policies;
mod store;
mod sync_api;
mod template;
mod withings;

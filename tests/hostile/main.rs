//! The hostile-input suite: Dockerfiles, contexts, archives, layers, registry responses, stored
//! content and worker requests written by an attacker. Each test asserts a clean error, nothing
//! written outside the root it targets, and nothing left behind. They need root.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

#[path = "../e2e/support.rs"]
#[allow(dead_code)]
mod support;

mod archives;
mod confinement;
mod dockerfile;
mod registry;
mod store;
mod worker;

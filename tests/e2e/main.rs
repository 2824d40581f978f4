//! End-to-end tests: the real `xbuild` binary building real Dockerfiles, RUN steps through
//! runc on overlayfs, checked with the real image tools. They need root.
#![allow(clippy::unwrap_used, clippy::expect_used, missing_docs)]

mod cache_export;
mod cli;
mod conformance;
mod embedding;
mod exporter;
mod image_tree;
mod registry;
mod remote;
mod run_access;
mod skeleton;
mod solver;
mod stages;
mod support;

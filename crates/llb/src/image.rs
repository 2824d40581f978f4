//! The image configuration a build output carries, as the frontend computed it.

use serde::{Deserialize, Serialize};
use std::collections::BTreeMap;

use crate::Digest;

/// The runtime configuration of an image (the `config` object of an OCI image config).
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct ImageConfig {
    /// `USER`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `ENV`, as `KEY=value` in order.
    #[serde(default)]
    pub env: Vec<String>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `WORKDIR`.
    #[serde(default, skip_serializing_if = "String::is_empty")]
    pub working_dir: String,
    /// `LABEL`.
    #[serde(default, skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
}

/// One entry of the image's history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the step ran (RFC 3339); `None` for this build's steps, filled in at export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction, in BuildKit's style (`RUN /bin/sh -c make # buildkit`).
    pub created_by: String,
    /// A comment (`buildkit.dockerfile.v0` for BuildKit's steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default)]
    pub empty_layer: bool,
    /// For this build's layer steps: the vertex whose result holds the step's changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<Digest>,
}

/// A named result of a build: the vertex holding its filesystem and its image metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The output's name (the target stage's name, or `default`).
    pub name: String,
    /// The vertex whose result is the image's root filesystem.
    pub vertex: Digest,
    /// The runtime configuration.
    pub config: ImageConfig,
    /// History: the base image's entries, then one per step of this build.
    pub history: Vec<HistoryEntry>,
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, … as OCI names them.
    pub architecture: String,
}

//! [`BuildOptions`]: the options of one build.

use std::collections::{BTreeMap, HashMap};
use std::path::PathBuf;
use std::sync::Arc;

use crate::dockerfile::dockerignore;
use crate::{
    CacheSpec, CancellationToken, Compression, Error, OutputSpec, SecretSource, SharedSink,
};

/// Options of one build.
#[derive(Clone, Debug)]
pub struct BuildOptions {
    /// The build context directory.
    pub context: PathBuf,
    /// The Dockerfile (default: `Dockerfile` in the context). With
    /// [`dockerfile_text`](Self::dockerfile_text), only the name errors show.
    pub dockerfile: Option<PathBuf>,
    /// The Dockerfile's text, when it does not come from a file.
    pub dockerfile_text: Option<String>,
    /// The `.dockerignore` patterns; read from `<Dockerfile>.dockerignore` or the context's
    /// `.dockerignore` when `None`.
    pub ignore_patterns: Option<Vec<String>>,
    /// Tags for the image (`name:tag`).
    pub tags: Vec<String>,
    /// Where the result goes; the local store when empty.
    pub outputs: Vec<OutputSpec>,
    /// Run every step, ignoring cached results.
    pub no_cache: bool,
    /// `--build-arg` values.
    pub build_args: BTreeMap<String, String>,
    /// Layer compression of outputs that do not choose one.
    pub compression: Compression,
    /// `SOURCE_DATE_EPOCH`: this build's times (history, config, layer files) are clamped to
    /// it, so the same inputs give the same image digest.
    pub source_date_epoch: Option<i64>,
    /// Secrets by id for `RUN --mount=type=secret` (`--secret`).
    pub secrets: HashMap<String, SecretSource>,
    /// SSH agent sockets by id for `RUN --mount=type=ssh` (`--ssh`).
    pub ssh: HashMap<String, PathBuf>,
    /// Re-resolve every base image in its registry, even when the local store has it.
    pub pull: bool,
    /// Push the tagged image to the registries its tags name (`--push`).
    pub push: bool,
    /// `--target`: the stage to build (default: the last).
    pub target: Option<String>,
    /// `--label` values for the image.
    pub labels: BTreeMap<String, String>,
    /// `--platform` (`linux/amd64`); the host's when unset.
    pub platform: Option<String>,
    /// Build cache to import before solving (`--cache-from`).
    pub cache_from: Vec<CacheSpec>,
    /// Where to export build cache after solving (`--cache-to`).
    pub cache_to: Vec<CacheSpec>,
    /// Where progress events go (nowhere by default; see [`event_stream`](crate::event_stream) for a stream).
    pub progress: SharedSink,
    /// Cancels the build: running steps are killed and everything they held (containers,
    /// mounts, uncommitted snapshots) is released before [`Builder::build`](crate::Builder::build) returns
    /// [`Error::Cancelled`]. An export already writing finishes first.
    pub cancel: CancellationToken,
    /// The `security.insecure` entitlement (`--allow security.insecure`), which
    /// `RUN --security=insecure` needs.
    pub allow_insecure: bool,
    /// The `network.host` entitlement (`--allow network.host`), which `RUN --network=host`
    /// needs.
    pub allow_network_host: bool,
    /// Reads the build context through this source rather than as the directory `context`
    /// (a remote worker's laid-out context, whose checksums it already knows); its
    /// [`dir`](xbuild_runtime::Source::dir) must be `context`.
    pub context_source: Option<Arc<dyn xbuild_runtime::Source>>,
}

impl BuildOptions {
    /// Options to build the context directory `context` with its `Dockerfile`.
    pub fn new(context: impl Into<PathBuf>) -> Self {
        BuildOptions {
            context: context.into(),
            dockerfile: None,
            tags: Vec::new(),
            outputs: Vec::new(),
            no_cache: false,
            build_args: BTreeMap::new(),
            compression: Compression::Gzip,
            source_date_epoch: None,
            secrets: HashMap::new(),
            ssh: HashMap::new(),
            pull: false,
            push: false,
            target: None,
            labels: BTreeMap::new(),
            platform: None,
            allow_insecure: false,
            allow_network_host: false,
            cache_from: Vec::new(),
            cache_to: Vec::new(),
            progress: SharedSink::default(),
            cancel: CancellationToken::new(),
            dockerfile_text: None,
            ignore_patterns: None,
            context_source: None,
        }
    }

    /// The `.dockerignore` patterns of the build (see [`ignore_patterns`](Self::ignore_patterns)).
    pub fn context_ignore_patterns(&self) -> Result<Vec<String>, Error> {
        dockerignore(self)
    }

    /// The Dockerfile's name as errors and `explain` show it.
    pub fn dockerfile_name(&self) -> String {
        self.dockerfile
            .clone()
            .unwrap_or_else(|| self.context.join("Dockerfile"))
            .display()
            .to_string()
    }
}

/// Parses a `SOURCE_DATE_EPOCH` value: whole seconds since 1970, not negative.
pub fn parse_epoch(v: &str) -> Result<i64, Error> {
    v.trim()
        .parse::<i64>()
        .ok()
        .filter(|e| *e >= 0)
        .ok_or_else(|| Error::SourceDateEpoch(v.to_string()))
}

//! The `xbuild` command line: a thin layer over the [`xbuild`] library and the
//! [`xbuild_worker`] server.

mod human;
mod progress;
mod template;

use anyhow::{Context, Result};
use clap::{Args, Parser, Subcommand};
use std::io::{BufRead, IsTerminal, Write};
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use xbuild::context_input::{self, ContextArg, PreparedContext};
use xbuild::worker::client::{self, Built, Remote};
use xbuild::{ArchiveFormat, BuildFlags, BuildOptions, Builder, Environment, ImageFilter};

use template::Format;

#[derive(Parser)]
#[command(name = "xbuild", version, about = "A Dockerfile build engine")]
struct Cli {
    /// The xbuild root: content store, snapshots, cache index.
    #[arg(long, global = true, env = "XBUILD_ROOT")]
    root: Option<PathBuf>,
    /// The OCI runtime binary for RUN steps (default: runc on PATH).
    #[arg(long, global = true)]
    oci_runtime: Option<PathBuf>,
    /// How snapshots are mounted: `overlay`, `native` (copies) or `auto`.
    #[arg(long, global = true, default_value = "auto")]
    snapshotter: String,
    /// A registry (`HOST[:PORT]`) to reach over plain HTTP; repeatable. localhost and 127.0.0.1
    /// always are.
    #[arg(long = "insecure-registry", global = true, value_name = "HOST[:PORT]")]
    insecure_registries: Vec<String>,
    #[command(subcommand)]
    command: Command,
}

// Parsed once per process: the size of the `build` variant does not matter.
#[allow(clippy::large_enum_variant)]
#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile and a context directory.
    Build {
        /// Name and optionally a tag (`name:tag`); repeatable.
        #[arg(short = 't', long = "tag")]
        tags: Vec<String>,
        /// The Dockerfile (default: CONTEXT/Dockerfile; `-`: standard input).
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Output: `type=image` (default), `type=oci,dest=DIR|FILE.tar`,
        /// `type=docker,dest=FILE.tar[,name=REF]`, `type=local,dest=DIR`, `type=tar,dest=FILE`;
        /// `,compression=gzip|zstd|uncompressed` for image, oci and docker. Repeatable.
        #[arg(short = 'o', long = "output")]
        outputs: Vec<String>,
        /// Do not use the cache.
        #[arg(long)]
        no_cache: bool,
        /// A build-time variable, `KEY=VALUE`; repeatable. `SOURCE_DATE_EPOCH` (also read from
        /// the environment) clamps the image's times for reproducible builds.
        #[arg(long = "build-arg")]
        build_args: Vec<String>,
        /// How to show progress.
        #[arg(long, value_enum, default_value = "auto")]
        progress: progress::Mode,
        /// Write the image ID to this file.
        #[arg(long)]
        iidfile: Option<PathBuf>,
        /// Write the build's result as JSON to this file (buildx's keys:
        /// `containerimage.digest`, `containerimage.config.digest`, `containerimage.descriptor`,
        /// `image.name`).
        #[arg(long)]
        metadata_file: Option<PathBuf>,
        /// Print only the image ID.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// A secret for `RUN --mount=type=secret`: `id=ID,src=PATH` or `id=ID,env=VAR`.
        #[arg(long = "secret")]
        secrets: Vec<String>,
        /// An SSH agent for `RUN --mount=type=ssh`: `default` ($SSH_AUTH_SOCK) or `ID=SOCKET`.
        #[arg(long = "ssh")]
        ssh: Vec<String>,
        /// Always look base images up in their registry, even when the local store has them.
        #[arg(long)]
        pull: bool,
        /// Push the image to the registries its tags name (same as `--output type=image,push=true`).
        #[arg(long)]
        push: bool,
        /// Use a build cache: `type=registry,ref=HOST/REPO:TAG` (or just the reference),
        /// `type=local,src=DIR`; an image pushed with an inline cache is named as a registry
        /// cache. Repeatable.
        #[arg(long = "cache-from", value_name = "SPEC")]
        cache_from: Vec<String>,
        /// Export the build cache: `type=registry,ref=HOST/REPO:TAG`, `type=local,dest=DIR`
        /// (`,mode=min|max`, `,export-mounts=true` to carry `RUN --mount=type=cache`
        /// contents), or `type=inline` (into the pushed image). Repeatable.
        #[arg(long = "cache-to", value_name = "SPEC")]
        cache_to: Vec<String>,
        /// Only run the build checks: report every error and warning, build nothing.
        #[arg(long)]
        check: bool,
        /// Build this stage (default: the last).
        #[arg(long)]
        target: Option<String>,
        /// An image label, `KEY=VALUE`; repeatable.
        #[arg(long = "label")]
        labels: Vec<String>,
        /// The platform to build for (`linux/amd64`).
        #[arg(long)]
        platform: Option<String>,
        /// Where to send the build (`xbuild worker`s).
        #[command(flatten)]
        remote: RemoteArgs,
        /// Grant an entitlement: `security.insecure` (for `RUN --security=insecure`) or
        /// `network.host` (for `RUN --network=host`); repeatable.
        #[arg(long = "allow")]
        allow: Vec<String>,
        /// The most bytes a context (or Dockerfile) on standard input may hold, as sent and as
        /// unpacked (`500M`, `16G`).
        #[arg(long, default_value = "16G", value_parser = parse_size)]
        max_context_size: u64,
        /// The build context: a directory, `-` (a tar archive, maybe compressed, or a
        /// Dockerfile on standard input) or a git URL (`https://HOST/REPO.git#REF:DIR`,
        /// `git@HOST:REPO`, `git://HOST/REPO`).
        context: String,
    },
    /// Serve builds to `xbuild build --remote` clients over gRPC.
    Worker(WorkerArgs),
    /// Pull an image from its registry into the local store.
    Pull {
        /// The image (`alpine`, `HOST:PORT/REPO:TAG`, `REPO@sha256:…`).
        image: String,
    },
    /// Push an image from the local store to the registry its name points at.
    Push {
        /// The image (`HOST[:PORT]/REPO:TAG`).
        image: String,
    },
    /// Store credentials for a registry in Docker's config.json (checked against the registry).
    Login {
        /// The registry (default: Docker Hub).
        server: Option<String>,
        /// The user name.
        #[arg(short = 'u', long)]
        username: String,
        /// Read the password from standard input.
        #[arg(long)]
        password_stdin: bool,
    },
    /// Import a flat rootfs tarball (plain, gzip or zstd; `-` for stdin) as an image.
    Import(ImportArgs),
    /// Write an image's flattened filesystem as a tar.
    Export(ExportArgs),
    /// List images.
    Images(ImagesArgs),
    /// Manage images.
    Image {
        #[command(subcommand)]
        command: ImageCommand,
    },
    /// Create a tag TARGET that refers to the image SOURCE.
    Tag(TagArgs),
    /// Remove images (untag; delete an image when no tag is left).
    Rmi(RmiArgs),
    /// Print images as `docker image inspect` does (`--raw`: the stored manifest and config).
    Inspect(InspectArgs),
    /// Show an image's history: its steps, newest first, with layer sizes.
    History(HistoryArgs),
    /// Save images to a tar archive (docker-archive or OCI layout).
    Save(SaveArgs),
    /// Load images from a docker-archive or an OCI layout (tar or directory).
    Load(LoadArgs),
    /// Show the files added (A), changed (C) and deleted (D) from IMAGE1 to IMAGE2.
    Diff(DiffArgs),
    /// Remove build cache that no running build holds and no tagged image is made of.
    Prune {
        /// Also the unpacked layers of tagged images, and cache mounts when no build runs.
        #[arg(short = 'a', long)]
        all: bool,
        /// Remove least recently used cache only until it takes at most this much
        /// (`512MB`, `10GB`).
        #[arg(long, value_parser = parse_size)]
        keep_storage: Option<u64>,
        /// Do not prompt (xbuild never does; accepted for `docker builder prune` users).
        #[arg(short = 'f', long)]
        force: bool,
    },
    /// Show what the build cache and the image store take on disk.
    Du {
        /// `table` or `json`.
        #[arg(long, default_value = "table")]
        format: String,
    },
    /// Check the content store.
    Store {
        #[command(subcommand)]
        command: StoreCommand,
    },
    /// Inspect what xbuild makes of a Dockerfile.
    Debug {
        #[command(subcommand)]
        command: DebugCommand,
    },
}

#[derive(Subcommand)]
enum StoreCommand {
    /// Check every blob against its digest (removing corrupt ones) and every image's
    /// manifest, config and layers; exit code 1 when anything was wrong.
    Verify,
}

#[derive(Subcommand)]
enum ImageCommand {
    /// Remove untagged images (`-a`: all images) and the blobs nothing uses.
    Prune(PruneArgs),
    /// List images.
    #[command(alias = "list")]
    Ls(ImagesArgs),
    /// Remove images.
    Rm(RmiArgs),
    /// Create a tag TARGET that refers to the image SOURCE.
    Tag(TagArgs),
    /// Print images as `docker image inspect` does (`--raw`: the stored manifest and config).
    Inspect(InspectArgs),
    /// Show an image's history.
    History(HistoryArgs),
    /// Save images to a tar archive.
    Save(SaveArgs),
    /// Load images from an archive.
    Load(LoadArgs),
    /// Import a flat rootfs tarball as an image.
    Import(ImportArgs),
}

#[derive(Args)]
struct RemoteArgs {
    /// Send the build to a worker, `HOST:PORT`; with `A,B` the next is tried when one cannot
    /// be reached or dies mid-build.
    #[arg(long, value_delimiter = ',')]
    remote: Vec<String>,
    /// The CA (PEM) of the workers' certificates: connect over TLS.
    #[arg(long)]
    remote_tls_ca: Option<PathBuf>,
    /// This client's certificate (PEM), for workers that require one.
    #[arg(long)]
    remote_cert: Option<PathBuf>,
    /// This client's key (PEM).
    #[arg(long)]
    remote_key: Option<PathBuf>,
    /// A file holding the workers' bearer token.
    #[arg(long)]
    remote_token_file: Option<PathBuf>,
}

#[derive(Args)]
struct WorkerArgs {
    /// Where to listen, `HOST:PORT`.
    #[arg(long)]
    listen: std::net::SocketAddr,
    /// Import build cache from and export it to this registry reference (`mode=max`), to
    /// share it with other workers.
    #[arg(long)]
    cache_registry: Option<String>,
    /// At most this many RUN steps at once, across all builds.
    #[arg(long, default_value_t = 4)]
    max_parallel: usize,
    /// Refuse builds whose context holds more file bytes (`500M`, `2G`).
    #[arg(long, default_value = "4G", value_parser = parse_size)]
    max_context_size: u64,
    /// The server certificate (PEM): serve over TLS.
    #[arg(long)]
    tls_cert: Option<PathBuf>,
    /// The server certificate's key (PEM).
    #[arg(long)]
    tls_key: Option<PathBuf>,
    /// Require client certificates signed by this CA (PEM).
    #[arg(long)]
    tls_client_ca: Option<PathBuf>,
    /// Require the bearer token this file holds.
    #[arg(long)]
    token_file: Option<PathBuf>,
    /// Allow plain TCP on an address other than loopback.
    #[arg(long)]
    insecure: bool,
    /// Serve clients with neither a certificate (--tls-client-ca) nor a token (--token-file)
    /// on an address other than loopback: anyone who reaches it runs builds as root.
    #[arg(long)]
    allow_unauthenticated: bool,
    /// Let clients be granted this entitlement (`security.insecure`, `network.host`) when
    /// they ask for it with `--allow`; repeatable.
    #[arg(long = "allow-insecure-entitlement", value_name = "NAME")]
    allow_insecure_entitlement: Vec<String>,
}

/// The `--remote*` flags as the library's settings of a remote build (whose rules are
/// [`Remote::check`]'s).
impl From<RemoteArgs> for Remote {
    fn from(a: RemoteArgs) -> Self {
        Remote {
            addrs: a.remote,
            tls_ca: a.remote_tls_ca,
            cert: a.remote_cert,
            key: a.remote_key,
            token_file: a.remote_token_file,
        }
    }
}

/// The `xbuild worker` flags as the library's settings of a worker (whose rules are
/// [`WorkerOptions::check`](xbuild_worker::WorkerOptions::check)'s); `--max-parallel` is the
/// builder's. The errors sent to clients name the worker's settings by these flags.
impl From<WorkerArgs> for xbuild_worker::WorkerOptions {
    fn from(a: WorkerArgs) -> Self {
        xbuild_worker::WorkerOptions {
            listen: a.listen,
            cache_registry: a.cache_registry,
            max_context_size: a.max_context_size,
            tls_cert: a.tls_cert,
            tls_key: a.tls_key,
            tls_client_ca: a.tls_client_ca,
            token_file: a.token_file,
            insecure: a.insecure,
            allow_unauthenticated: a.allow_unauthenticated,
            entitlements: a.allow_insecure_entitlement,
            describe: |e| worker_message(e).unwrap_or_else(|| e.to_string()),
        }
    }
}

#[derive(Args)]
struct ImportArgs {
    /// The tarball (`-` for stdin).
    tarball: PathBuf,
    /// The image name, `name[:tag]` (none: an untagged image).
    name: Option<String>,
}

#[derive(Args)]
struct ExportArgs {
    /// The image.
    image: String,
    /// The output file (`-` for stdout).
    #[arg(short = 'o', long = "output")]
    output: PathBuf,
}

#[derive(Args)]
struct ImagesArgs {
    /// Only images whose reference matches (`name[:tag]`, wildcards allowed).
    reference: Option<String>,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Show manifest digests.
    #[arg(long)]
    digests: bool,
    /// Do not truncate IDs.
    #[arg(long)]
    no_trunc: bool,
    /// Filter: `dangling=true|false`, `label=KEY[=VALUE]`, `before=IMAGE`, `since=IMAGE`,
    /// `reference=PATTERN`; repeatable.
    #[arg(short = 'f', long = "filter")]
    filters: Vec<String>,
    /// Go-template-like format (`{{.ID}}`, `{{.Repository}}`, `{{.Tag}}`, `{{.Digest}}`,
    /// `{{.CreatedSince}}`, `{{.CreatedAt}}`, `{{.Size}}`), `table …`, or `json`.
    #[arg(long)]
    format: Option<String>,
    /// Accepted for Docker compatibility (xbuild has no intermediate images).
    #[arg(short = 'a', long)]
    all: bool,
}

#[derive(Args)]
struct PruneArgs {
    /// Remove every image, not just untagged ones.
    #[arg(short = 'a', long)]
    all: bool,
    /// Do not ask for confirmation.
    #[arg(short = 'f', long)]
    force: bool,
}

#[derive(Args)]
struct TagArgs {
    /// The image (name or ID).
    source: String,
    /// The new name, `name[:tag]`.
    target: String,
}

#[derive(Args)]
struct RmiArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
    /// Remove an image named by ID even when several tags point at it.
    #[arg(short = 'f', long)]
    force: bool,
}

#[derive(Args)]
#[command(after_help = "\
Output: a JSON array with one object per image in the shape of `docker image inspect`: Id (the \
config digest), RepoTags, RepoDigests, Created, Author, Config (the container config: Env, Cmd, \
Entrypoint, Labels, WorkingDir, User, ExposedPorts, Volumes, StopSignal, Healthcheck, OnBuild, \
Shell, ArgsEscaped), Architecture, Os, Size, RootFS {Type, Layers}, Metadata, and Descriptor \
(the manifest's mediaType, digest and size).

With --raw: one object per image with Id, RepoTags, Digest (the manifest digest), Manifest (the \
stored image manifest) and Config (the stored OCI image config, runtime settings under \
`config`), as they are.

--format applies to each object: `{{.Id}}`, `{{.Config.Env}}`, `{{json .Config.Labels}}`, \
`{{json .}}`, `{{.Descriptor.digest}}`; with --raw: `{{.Digest}}`, `{{json .Config.config}}`.")]
struct InspectArgs {
    /// The images (names, IDs, or `name@sha256:…` manifest or index digests).
    #[arg(required = true)]
    images: Vec<String>,
    /// Go-template-like format applied to each image (`{{.Id}}`, `{{json .Config.Labels}}`).
    #[arg(short = 'f', long)]
    format: Option<String>,
    /// Print the stored manifest and OCI config as they are instead of Docker's shape.
    #[arg(long)]
    raw: bool,
}

#[derive(Args)]
struct HistoryArgs {
    /// The image (name or ID).
    image: String,
    /// Do not truncate IDs and commands.
    #[arg(long)]
    no_trunc: bool,
    /// Only show image IDs.
    #[arg(short = 'q', long)]
    quiet: bool,
    /// Go-template-like format (`{{.ID}}`, `{{.CreatedSince}}`, `{{.CreatedBy}}`, `{{.Size}}`,
    /// `{{.Comment}}`), `table …`, or `json`.
    #[arg(long)]
    format: Option<String>,
}

#[derive(Args)]
struct SaveArgs {
    /// Images (names or IDs).
    #[arg(required = true)]
    images: Vec<String>,
    /// The archive to write (default: stdout, unless it is a terminal).
    #[arg(short = 'o', long = "output")]
    output: Option<PathBuf>,
    /// `docker` (a docker-archive, with the OCI layout inside) or `oci`.
    #[arg(long, default_value = "docker")]
    format: String,
}

#[derive(Args)]
struct LoadArgs {
    /// The archive (tar file, or OCI layout directory; default: stdin).
    #[arg(short = 'i', long = "input")]
    input: Option<PathBuf>,
    /// Print nothing.
    #[arg(short = 'q', long)]
    quiet: bool,
}

#[derive(Args)]
struct DiffArgs {
    /// The image compared from.
    image1: String,
    /// The image compared to.
    image2: String,
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Print the parsed Dockerfile.
    Parse {
        /// The Dockerfile (`-` for stdin).
        #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
        file: PathBuf,
        /// `json` (the syntax tree and diagnostics) or `tree` (BuildKit's AST dump format).
        #[arg(long, default_value = "json")]
        format: String,
        /// Only run the build checks and report every error and warning: `build --check`'s
        /// checks, without a context; bases the local store lacks are checked as empty images.
        #[arg(long)]
        check: bool,
    },
    /// Print the build graph with each vertex's digest.
    Graph {
        /// The Dockerfile.
        #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
        file: PathBuf,
        /// `json` or `dot` (with `--explain`: `text` or `json`).
        #[arg(long)]
        format: Option<String>,
        /// The stage to build (default: the last).
        #[arg(long)]
        target: Option<String>,
        /// A build-time variable, `KEY=VALUE`; repeatable.
        #[arg(long = "build-arg")]
        build_args: Vec<String>,
        /// Explain the last build: which steps hit the cache and, for each miss, what changed.
        #[arg(long)]
        explain: bool,
    },
    /// Print the checksum a `COPY . /` of a context is keyed by, and how long it took.
    ContextChecksum {
        /// Read every file (no stat cache).
        #[arg(long)]
        cold: bool,
        /// The context directory.
        context: PathBuf,
    },
}

/// Parses a size such as `512MB`, `10g` or `1048576` (units are powers of 1024, as Docker's).
fn parse_size(s: &str) -> Result<u64, String> {
    let t = s.trim().to_ascii_lowercase();
    let split = t
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(t.len());
    let (num, unit) = t.split_at(split);
    let n: f64 = num
        .parse()
        .map_err(|_| format!("{s:?} is not a size (e.g. 512MB, 10GB)"))?;
    let mult: u64 = match unit.trim() {
        "" | "b" => 1,
        "k" | "kb" | "kib" => 1 << 10,
        "m" | "mb" | "mib" => 1 << 20,
        "g" | "gb" | "gib" => 1 << 30,
        "t" | "tb" | "tib" => 1 << 40,
        u => {
            return Err(format!(
                "{s:?}: unknown unit {u:?} (use B, KB, MB, GB or TB)"
            ));
        }
    };
    Ok((n * mult as f64) as u64)
}

fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_env("XBUILD_LOG")
                .unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("{}", describe(&e));
            ExitCode::from(exit_code(&e))
        }
    }
}

/// An error in the command line's arguments (exit code 2, as clap's own).
#[derive(Debug, thiserror::Error)]
#[error("{0}")]
struct UsageError(String);

fn usage(message: impl Into<String>) -> anyhow::Error {
    UsageError(message.into()).into()
}

/// 2 for a usage error (ours or the library's), 1 for anything else (a failed build).
fn exit_code(e: &anyhow::Error) -> u8 {
    let library_usage = e
        .downcast_ref::<xbuild::Error>()
        .is_some_and(xbuild::Error::is_usage);
    if library_usage || e.downcast_ref::<UsageError>().is_some() {
        2
    } else {
        1
    }
}

/// The error with its chain and, for Dockerfile and step failures, the details a user needs.
fn describe(e: &anyhow::Error) -> String {
    let color = std::io::stderr().is_terminal();
    let library = e.downcast_ref::<xbuild::Error>();
    if let Some(rendered) = library.and_then(|e| e.rendered_diagnostics(color)) {
        return rendered;
    }
    let text = |cause: &(dyn std::error::Error + 'static)| {
        if let Some(library) = cause.downcast_ref() {
            return library_message(library);
        }
        let flagged = if let Some(remote) = cause.downcast_ref() {
            remote_message(remote)
        } else if let Some(worker) = cause.downcast_ref() {
            worker_message(worker)
        } else {
            None
        };
        flagged.unwrap_or_else(|| cause.to_string())
    };
    let mut out = format!("error: {}", text(e.as_ref()));
    if let Some(step) = library.and_then(xbuild::Error::step_failure) {
        if let Some(l) = step.location {
            out.push_str(&format!("\n  at {l}"));
        }
        if !step.output_tail.is_empty() {
            out.push_str("\n  last output:");
            for l in step.output_tail {
                out.push_str(&format!("\n    {l}"));
            }
        }
    }
    for cause in e.chain().skip(1) {
        let text = text(cause);
        if !out.contains(&text) {
            out.push_str(&format!("\n  caused by: {text}"));
        }
    }
    out
}

/// The command-line flag of a library option.
fn flag(option: xbuild::OptionName) -> &'static str {
    use xbuild::OptionName as O;
    match option {
        O::Output => "--output",
        O::CacheFrom => "--cache-from",
        O::CacheTo => "--cache-to",
        O::BuildArg => "--build-arg",
        O::Label => "--label",
        O::Allow => "--allow",
        O::Secret => "--secret",
        O::Ssh => "--ssh",
        O::Platform => "--platform",
        O::Dockerfile => "-f",
        O::MaxContextSize => "--max-context-size",
        O::RemoteTlsCa => "--remote-tls-ca",
        O::RemoteCert => "--remote-cert",
        O::RemoteKey => "--remote-key",
        O::RemoteTokenFile => "--remote-token-file",
        O::WorkerTlsCert => "--tls-cert",
        O::WorkerTlsKey => "--tls-key",
        O::WorkerTlsClientCa => "--tls-client-ca",
        O::WorkerTokenFile => "--token-file",
    }
}

/// A certificate, key or token file's error, naming the file by the flag that gave it (the
/// library's message starts with the option's name).
fn option_file_message(e: &xbuild::worker::OptionFileError) -> String {
    let text = e.to_string();
    let option = e.option();
    match text.strip_prefix(&option.to_string()) {
        Some(rest) => format!("{}{rest}", flag(option)),
        None => text,
    }
}

/// A remote build's error (`xbuild build --remote`) as the command line words it, for those
/// about settings that have a flag; `None` for the others, whose library message stands.
fn remote_message(e: &xbuild::worker::Error) -> Option<String> {
    use xbuild::worker::{Error as E, RemoteUnsupported as U, TlsProblem as T};
    Some(match e {
        E::NoWorker => "--remote needs at least one worker address".into(),
        E::Unsupported {
            what: U::SecretsOrSsh,
        } => "--secret and --ssh are not sent to remote workers; build locally to use them".into(),
        E::Unsupported { what: U::Cache } => {
            "--cache-from/--cache-to are set on the worker (--cache-registry), not by a remote client"
                .into()
        }
        E::Unsupported {
            what: U::SeveralOutputs,
        } => "a remote build writes one --output; give only one".into(),
        E::Tls(T::CertWithoutKey | T::KeyWithoutCert) => {
            "--remote-cert and --remote-key go together".into()
        }
        E::Tls(T::CertWithoutCa) => {
            "--remote-cert/--remote-key need --remote-tls-ca (the CA of the worker's certificate)"
                .into()
        }
        E::Tls(T::Endpoint { addr, source }) => format!("--remote {addr}: {source}"),
        E::BadToken { path } => format!(
            "--remote-token-file {}: not a valid bearer token",
            path.display()
        ),
        E::OptionFile(f) => option_file_message(f),
        _ => return None,
    })
}

/// An error of `xbuild worker` as the command line words it, for those about settings that
/// have a flag; `None` for the others, whose library message stands. The worker also words
/// the errors it sends its clients so ([`WorkerOptions::describe`](xbuild_worker::WorkerOptions::describe)).
fn worker_message(e: &xbuild_worker::Error) -> Option<String> {
    use xbuild_worker::{Error as E, TlsSetup as T};
    Some(match e {
        E::Tls(T::CertWithoutKey | T::KeyWithoutCert) => {
            "--tls-cert and --tls-key go together".into()
        }
        E::Tls(T::ClientCaWithoutCert) => "--tls-client-ca needs --tls-cert and --tls-key".into(),
        E::Tls(T::Identity(source)) => format!("--tls-cert/--tls-key: {source}"),
        E::PlainTcp { addr } => format!(
            "--listen {addr}: plain TCP is only served on loopback; give --tls-cert and --tls-key, or --insecure"
        ),
        E::Listen { addr, source } => format!("--listen {addr}: {source}"),
        E::OptionFile(f) => option_file_message(f),
        E::Unauthenticated { addr } => format!(
            "--listen {addr}: TLS without --tls-client-ca or --token-file lets anyone who reaches {addr} run builds as root on this machine; require client certificates (--tls-client-ca CA.pem) or a token (--token-file FILE), or pass --allow-unauthenticated to serve anyone"
        ),
        // Sent to the client, whose user learns how this worker is to be started.
        E::EntitlementNotAllowed { name } => format!(
            "granting entitlement {name} is not allowed by this worker's configuration: start the worker with --allow-insecure-entitlement {name}, or build without --allow {name}"
        ),
        E::TokenRequired => "a valid bearer token is required (--remote-token-file)".into(),
        E::ContextTooLarge { bytes, limit } => format!(
            "the build context holds {bytes} bytes of files, over this worker's --max-context-size of {limit} bytes; leave files out with a .dockerignore"
        ),
        _ => return None,
    })
}

/// A library error as the command line words it: the options it names, by their flags.
fn library_message(e: &xbuild::Error) -> String {
    use xbuild::{CacheSpecError, Conflict, Error as E, OptionError};
    match e {
        E::Worker(remote) => remote_message(remote).unwrap_or_else(|| e.to_string()),
        E::ContextTooLarge { limit, entry } => format!(
            "the build context on standard input holds more than {flag} ({limit} bytes){}; pass a larger {flag} or send a smaller context",
            entry
                .as_ref()
                .map(|e| format!(" at member {e:?}"))
                .unwrap_or_default(),
            flag = flag(xbuild::OptionName::MaxContextSize),
        ),
        E::Conflict(Conflict::PushWithoutImageOutput) => {
            "--push needs an image output (type=image or type=registry)".into()
        }
        E::Conflict(Conflict::PushWithoutName) => {
            "--push needs a name to push to: add -t HOST/REPO:TAG".into()
        }
        E::Conflict(Conflict::DockerfileWithStdinDockerfile) => {
            "-f cannot be used when standard input is a Dockerfile rather than a tar archive".into()
        }
        E::CacheSpec {
            problem: CacheSpecError::InlineImport,
            ..
        } => {
            "--cache-from type=inline: name the image instead: --cache-from type=registry,ref=IMAGE"
                .into()
        }
        E::InvalidOption {
            option,
            value,
            problem: OptionError::NoSshAgent,
        } => {
            let ssh = flag(*option);
            format!("{ssh} {value}: SSH_AUTH_SOCK is not set; pass {ssh} {value}=SOCKET")
        }
        _ => {
            let text = e.to_string();
            // The library's message starts with the option's name: swapped for its flag.
            let Some(option) = e.option() else {
                return text;
            };
            let Some(rest) = text.strip_prefix(&option.to_string()) else {
                return text;
            };
            let invalid = if matches!(e, E::Output { .. } | E::CacheSpec { .. }) {
                "invalid "
            } else {
                ""
            };
            format!("{invalid}{}{rest}", flag(option))
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = cli.root.clone().unwrap_or_else(xbuild::default_root);
    let mut builder = Builder::new(&root).with_registry_options(xbuild::RegistryOptions {
        insecure: cli.insecure_registries.clone(),
        ..Default::default()
    });
    if let Some(r) = &cli.oci_runtime {
        builder = builder.with_runtime(r);
    }
    let kind = cli
        .snapshotter
        .parse::<xbuild::SnapshotterKind>()
        .map_err(|e| usage(format!("--snapshotter: {e}")))?;
    builder = builder.with_snapshotter(kind);
    let runtime = || {
        tokio::runtime::Builder::new_multi_thread()
            .enable_all()
            .build()
            .context("starting the async runtime")
    };
    match cli.command {
        Command::Build {
            tags,
            file,
            outputs,
            no_cache,
            build_args,
            progress,
            iidfile,
            metadata_file,
            quiet,
            secrets,
            ssh,
            pull,
            push,
            cache_from,
            cache_to,
            check,
            target,
            labels,
            platform,
            remote,
            allow,
            max_context_size,
            context,
        } => {
            let prepared = prepare_context(&context, file, &root, max_context_size)?;
            let flags = BuildFlags {
                tags,
                outputs,
                no_cache,
                build_args,
                secrets,
                ssh,
                pull,
                push,
                cache_from,
                cache_to,
                target,
                labels,
                platform,
                allow,
            };
            if check {
                let report = builder.check(&flags.check_options(&prepared)?)?;
                return Ok(print_check(
                    &report.file,
                    &report.source_text,
                    &report.diagnostics,
                ));
            }
            let mut opts = flags.build_options(&prepared, &Environment::from_process())?;
            let mode = if quiet {
                progress::Mode::Quiet
            } else {
                progress
            };
            let printer = Arc::new(progress::Printer::new(mode));
            opts.progress = printer.clone().into();
            let rt = runtime()?;
            // Ctrl-C cancels the build: its running steps' containers are killed and every
            // mount and snapshot they held is released before xbuild exits.
            let cancel = opts.cancel.clone();
            let remote = Remote::from(remote);
            let result = rt.block_on(async {
                let build = async {
                    let r = match client::build_here_or_remote(&builder, &opts, &remote).await? {
                        Built::Local(r) => return Ok(r),
                        Built::Remote(r) => r,
                    };
                    printer.note(&format!(
                        "xbuild: built on worker {}: it received {} context file(s), {} byte(s), of {} entries; {} layer(s), {} byte(s) came back, {} were here already{}",
                        r.worker,
                        r.files_sent,
                        r.bytes_sent,
                        r.context_entries,
                        r.layers_received,
                        r.layer_bytes_received,
                        r.layers_present,
                        if r.manifest_sent {
                            ""
                        } else {
                            " (it held this context already: no manifest was sent)"
                        }
                    ));
                    Ok::<_, xbuild::Error>(r.result)
                };
                tokio::pin!(build);
                tokio::select! {
                    r = &mut build => r.map_err(anyhow::Error::from),
                    _ = tokio::signal::ctrl_c() => {
                        cancel.cancel();
                        let _ = build.await;
                        Err(anyhow::anyhow!("interrupted"))
                    }
                }
            });
            printer.finish();
            let result = result?;
            printer.note(&format!(
                "xbuild: {} step(s) executed, {} cached",
                result.executed, result.cached
            ));
            for t in &result.tags {
                printer.note(&format!("naming to {t}"));
            }
            for p in &result.pushed {
                printer.note(&pushed_note(p));
            }
            for c in &result.cache_exports {
                printer.note(&format!(
                    "cache exported to {}: {} record(s), index {}, {} blob(s) uploaded",
                    c.target, c.records, c.index, c.uploaded
                ));
            }
            if let Some(id) = &result.image_id {
                if let Some(p) = iidfile {
                    std::fs::write(&p, id.as_str())
                        .with_context(|| format!("writing --iidfile {}", p.display()))?;
                }
                println!("{id}");
            }
            if let Some(p) = metadata_file {
                result
                    .write_metadata(&p)
                    .with_context(|| format!("writing --metadata-file {}", p.display()))?;
            }
        }
        Command::Worker(a) => worker(builder, a, runtime()?)?,
        Command::Pull { image } => {
            let p = runtime()?.block_on(builder.pull(&image))?;
            eprintln!(
                "{}: pulled manifest {} ({} blob(s) downloaded, {} already present)",
                p.name, p.manifest, p.fetched, p.present
            );
            println!("{}", p.id);
        }
        Command::Push { image } => {
            let p = runtime()?.block_on(builder.push(&image))?;
            eprintln!("{}", pushed_note(&p));
            println!("{}", p.manifest);
        }
        Command::Login {
            server,
            username,
            password_stdin,
        } => {
            if !password_stdin {
                anyhow::bail!(
                    "login: pass the password on standard input with --password-stdin (it would show in the process list as an argument)"
                );
            }
            let password = std::io::read_to_string(std::io::stdin()).context("reading stdin")?;
            let password = password.trim_end_matches(['\n', '\r']);
            if password.is_empty() {
                anyhow::bail!("login: the password on standard input is empty");
            }
            let server = server.unwrap_or_default();
            let path = runtime()?.block_on(builder.login(&server, &username, password))?;
            eprintln!("Login Succeeded (credentials stored in {})", path.display());
        }
        Command::Import(a) => import(&builder, a)?,
        Command::Export(a) => export(&builder, a)?,
        Command::Images(a) => images(&builder, a)?,
        Command::Tag(a) => builder.tag(&a.source, &a.target)?,
        Command::Rmi(a) => return rmi(&builder, a),
        Command::Inspect(a) => inspect(&builder, a)?,
        Command::History(a) => history(&builder, a)?,
        Command::Save(a) => save(&builder, a)?,
        Command::Load(a) => load(&builder, a)?,
        Command::Prune {
            all,
            keep_storage,
            force: _,
        } => {
            let r = builder.prune_cache(&xbuild::PruneOptions { all, keep_storage })?;
            if r.recovered > 0 {
                println!("Cleaned up after {} build(s) that died", r.recovered);
            }
            println!(
                "Deleted {} snapshot(s) and {} cache record(s){}",
                r.snapshots,
                r.records,
                if r.cache_mounts > 0 {
                    format!(", {} cache mount(s)", r.cache_mounts)
                } else {
                    String::new()
                }
            );
            println!("Total reclaimed space: {}", human::size(r.reclaimed, 4));
        }
        Command::Du { format } => {
            let du = builder.disk_usage()?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&du)?),
                "table" => print_du(&du),
                other => anyhow::bail!("--format {other}: expected table or json"),
            }
        }
        Command::Diff(a) => {
            let mut out = std::io::stdout().lock();
            for c in builder.diff(&a.image1, &a.image2)? {
                writeln!(out, "{c}")?;
            }
        }
        Command::Image { command } => match command {
            ImageCommand::Prune(a) => prune(&builder, a)?,
            ImageCommand::Ls(a) => images(&builder, a)?,
            ImageCommand::Rm(a) => return rmi(&builder, a),
            ImageCommand::Tag(a) => builder.tag(&a.source, &a.target)?,
            ImageCommand::Inspect(a) => inspect(&builder, a)?,
            ImageCommand::History(a) => history(&builder, a)?,
            ImageCommand::Save(a) => save(&builder, a)?,
            ImageCommand::Load(a) => load(&builder, a)?,
            ImageCommand::Import(a) => import(&builder, a)?,
        },
        Command::Store {
            command: StoreCommand::Verify,
        } => return verify_store(&builder),
        Command::Debug { command } => return debug(&builder, command),
    }
    Ok(ExitCode::SUCCESS)
}

fn import(builder: &Builder, a: ImportArgs) -> Result<()> {
    let epoch = Environment::from_process().epoch()?;
    let id = builder.import(&a.tarball, a.name.as_deref(), epoch)?;
    println!("{id}");
    Ok(())
}

fn export(builder: &Builder, a: ExportArgs) -> Result<()> {
    builder.export_to(&a.image, &a.output)?;
    Ok(())
}

const IMAGE_HEADERS: &[(&str, &str)] = &[
    ("ID", "IMAGE ID"),
    ("Repository", "REPOSITORY"),
    ("Tag", "TAG"),
    ("Digest", "DIGEST"),
    ("CreatedSince", "CREATED"),
    ("CreatedAt", "CREATED AT"),
    ("Size", "SIZE"),
    ("VirtualSize", "VIRTUAL SIZE"),
    ("SharedSize", "SHARED SIZE"),
    ("UniqueSize", "UNIQUE SIZE"),
    ("Containers", "CONTAINERS"),
];

fn images(builder: &Builder, a: ImagesArgs) -> Result<()> {
    let mut filters = a.filters.clone();
    if let Some(r) = &a.reference {
        filters.push(format!("reference={r}"));
    }
    let filter = ImageFilter::parse(&filters)?;
    let rows = builder.images_filtered(&filter)?;
    let now = std::time::SystemTime::now();
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            serde_json::json!({
                "Containers": "N/A",
                "CreatedAt": human::created_at(r.created.as_deref()),
                "CreatedSince": human::since(r.created.as_deref(), now),
                "Digest": r.manifest.as_str(),
                "ID": if a.no_trunc { r.id.as_str() } else { r.id.short() },
                "Repository": r.repository,
                "SharedSize": "N/A",
                "Size": human::size(r.size, 3),
                "Tag": r.tag,
                "UniqueSize": "N/A",
                "VirtualSize": human::size(r.size, 4),
            })
        })
        .collect();
    let spec = match (&a.format, a.quiet, a.digests) {
        (_, true, _) => "{{.ID}}".to_string(),
        (Some(f), _, _) => f.clone(),
        (None, _, true) => {
            "table {{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}"
                .into()
        }
        (None, _, false) => {
            "table {{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.CreatedSince}}\t{{.Size}}".into()
        }
    };
    let _ = a.all;
    print!("{}", Format::parse(&spec)?.render(&values, IMAGE_HEADERS));
    Ok(())
}

fn verify_store(builder: &Builder) -> Result<ExitCode> {
    let r = builder.verify_store()?;
    for c in &r.corrupt {
        println!(
            "corrupt: blob {} ({}) hashes to {}; removed",
            c.digest,
            c.path.display(),
            c.actual
        );
    }
    for b in &r.broken {
        let name = b
            .tags
            .first()
            .cloned()
            .unwrap_or_else(|| b.manifest.to_string());
        println!("broken: image {name} ({})", b.manifest);
        for p in &b.problems {
            println!("  {p}");
        }
        println!("  pull, load or rebuild it (or remove it with `xbuild rmi {name}`)");
    }
    println!(
        "checked {} blob(s), {}: {} corrupt, {} broken image(s)",
        r.blobs,
        human::size(r.bytes, 4),
        r.corrupt.len(),
        r.broken.len()
    );
    Ok(if r.clean() {
        ExitCode::SUCCESS
    } else {
        ExitCode::from(1)
    })
}

fn rmi(builder: &Builder, a: RmiArgs) -> Result<ExitCode> {
    let mut code = ExitCode::SUCCESS;
    for name in &a.images {
        match builder.remove(name, a.force) {
            Ok(lines) => {
                for l in lines {
                    println!("{l}");
                }
            }
            Err(e) => {
                eprintln!("Error: {}", library_message(&e));
                code = ExitCode::from(1);
            }
        }
    }
    Ok(code)
}

fn prune(builder: &Builder, a: PruneArgs) -> Result<()> {
    if !a.force {
        let what = if a.all {
            "all images"
        } else {
            "all dangling images"
        };
        eprint!("WARNING! This will remove {what}.\nAre you sure you want to continue? [y/N] ");
        let mut answer = String::new();
        std::io::stdin().lock().read_line(&mut answer)?;
        if !matches!(answer.trim(), "y" | "Y" | "yes") {
            return Ok(());
        }
    }
    let (removed, bytes) = builder.prune(a.all)?;
    if !removed.is_empty() {
        println!("Deleted Images:");
        for r in &removed {
            match r {
                xbuild::Removed::Untagged(t) => println!("untagged: {t}"),
                xbuild::Removed::Deleted(d) => println!("deleted: {d}"),
            }
        }
        println!();
    }
    println!("Total reclaimed space: {}", human::size(bytes, 4));
    Ok(())
}

fn inspect(builder: &Builder, a: InspectArgs) -> Result<()> {
    let format = a.format.as_deref().map(Format::parse).transpose()?;
    let mut found = Vec::new();
    let mut missing = None;
    for name in &a.images {
        match builder.inspect(name) {
            Ok(d) => found.push(d),
            // As Docker: the images found are printed, then the error for those that are not.
            Err(e @ xbuild::Error::NoSuchImage(_)) => missing = missing.or(Some(e)),
            Err(e) => return Err(e.into()),
        }
    }
    if a.raw {
        print_images(
            &found.iter().map(|d| d.raw()).collect::<Vec<_>>(),
            format.as_ref(),
        )?;
    } else {
        print_images(
            &found.iter().map(|d| d.docker()).collect::<Vec<_>>(),
            format.as_ref(),
        )?;
    }
    match missing {
        Some(e) => Err(e.into()),
        None => Ok(()),
    }
}

/// Prints images with `format` applied to each, else as Docker prints JSON: an array indented by
/// four spaces, fields in their declared order.
fn print_images<T: serde::Serialize>(docs: &[T], format: Option<&Format>) -> Result<()> {
    match format {
        Some(f) => {
            let rows = docs
                .iter()
                .map(serde_json::to_value)
                .collect::<Result<Vec<_>, _>>()?;
            print!("{}", f.render(&rows, &[]));
        }
        None => {
            let mut out = Vec::new();
            let fmt = serde_json::ser::PrettyFormatter::with_indent(b"    ");
            serde::Serialize::serialize(
                docs,
                &mut serde_json::Serializer::with_formatter(&mut out, fmt),
            )?;
            println!("{}", String::from_utf8_lossy(&out));
        }
    }
    Ok(())
}

fn history(builder: &Builder, a: HistoryArgs) -> Result<()> {
    let rows = builder.history(&a.image)?;
    let now = std::time::SystemTime::now();
    let values: Vec<serde_json::Value> = rows
        .iter()
        .map(|r| {
            let id = match &r.id {
                Some(d) if a.no_trunc => d.to_string(),
                Some(d) => d.short().to_string(),
                None => "<missing>".to_string(),
            };
            let by = r.created_by.replace('\t', " ");
            serde_json::json!({
                "ID": id,
                "CreatedAt": human::created_at(r.created.as_deref()),
                "CreatedSince": human::since(r.created.as_deref(), now),
                "CreatedBy": if a.no_trunc { by } else { human::ellipsis(&by, 45) },
                "Size": human::size(r.size, 3),
                "Comment": r.comment,
            })
        })
        .collect();
    let spec = match (&a.format, a.quiet) {
        (_, true) => "{{.ID}}".to_string(),
        (Some(f), _) => f.clone(),
        (None, _) => {
            "table {{.ID}}\t{{.CreatedSince}}\t{{.CreatedBy}}\t{{.Size}}\t{{.Comment}}".into()
        }
    };
    let headers = [
        ("ID", "IMAGE"),
        ("CreatedSince", "CREATED"),
        ("CreatedAt", "CREATED AT"),
        ("CreatedBy", "CREATED BY"),
        ("Size", "SIZE"),
        ("Comment", "COMMENT"),
    ];
    print!("{}", Format::parse(&spec)?.render(&values, &headers));
    Ok(())
}

fn save(builder: &Builder, a: SaveArgs) -> Result<()> {
    let format = match a.format.as_str() {
        "docker" => ArchiveFormat::Docker,
        "oci" => ArchiveFormat::Oci,
        other => anyhow::bail!("--format {other}: expected docker or oci"),
    };
    let dest = match a.output {
        Some(p) => p,
        None if std::io::stdout().is_terminal() => {
            anyhow::bail!("cowardly refusing to save to a terminal; use the -o flag or redirect")
        }
        None => PathBuf::from("-"),
    };
    builder.save(&a.images, format, &dest)?;
    Ok(())
}

fn load(builder: &Builder, a: LoadArgs) -> Result<()> {
    let input = a.input.unwrap_or_else(|| PathBuf::from("-"));
    if input.as_os_str() == "-" && std::io::stdin().is_terminal() {
        anyhow::bail!("requested load from stdin, but stdin is a terminal; use -i FILE");
    }
    for l in builder.load(&input)? {
        if a.quiet {
            continue;
        }
        if l.names.is_empty() {
            println!("Loaded image ID: {}", l.id);
        }
        for n in &l.names {
            println!("Loaded image: {n}");
        }
    }
    Ok(())
}

fn debug(builder: &Builder, command: DebugCommand) -> Result<ExitCode> {
    match command {
        DebugCommand::Parse {
            file,
            format,
            check,
        } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let name = file.display().to_string();
            if check {
                // The same validation as `build --check`, without a context or base images.
                let report = builder.check_text(&name, &text);
                return Ok(print_check(&name, &text, &report.diagnostics));
            }
            let parsed = xbuild::parse(&text);
            match format.as_str() {
                "json" => {
                    let out = serde_json::json!({
                        "dockerfile": parsed.dockerfile,
                        "diagnostics": parsed.diagnostics,
                    });
                    println!("{}", serde_json::to_string_pretty(&out)?);
                }
                "tree" => print!("{}", parsed.dockerfile.dump()),
                other => anyhow::bail!("--format {other}: expected json or tree"),
            }
            if parsed.has_errors() {
                let errors: Vec<_> = parsed.errors().cloned().collect();
                eprint!(
                    "{}",
                    xbuild::render_diagnostics(
                        &name,
                        &text,
                        &errors,
                        std::io::stderr().is_terminal()
                    )
                );
                return Ok(ExitCode::from(1));
            }
        }
        DebugCommand::Graph {
            explain: true,
            format,
            ..
        } => {
            let Some(e) = builder.explain()? else {
                anyhow::bail!(
                    "no build recorded on {}: run `xbuild build` first",
                    builder.root().display()
                );
            };
            match format.as_deref().unwrap_or("text") {
                "json" => println!("{}", serde_json::to_string_pretty(&e)?),
                "text" => print_explanation(&e),
                other => anyhow::bail!("--format {other}: expected text or json"),
            }
        }
        DebugCommand::ContextChecksum { cold, context } => {
            let start = std::time::Instant::now();
            let (sum, paths) = builder.context_checksum(&context, cold)?;
            println!(
                "{sum}  {paths} paths  {:.3}s",
                start.elapsed().as_secs_f64()
            );
        }
        DebugCommand::Graph {
            file,
            format,
            target,
            build_args,
            ..
        } => {
            let context = file
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."));
            let mut opts = BuildOptions::new(context);
            opts.dockerfile = Some(file);
            opts.target = target;
            opts.build_args = xbuild::key_values(xbuild::OptionName::BuildArg, &build_args)?;
            let def = builder.lower(&opts)?;
            match format.as_deref().unwrap_or("json") {
                "dot" => print!("{}", def.to_dot()),
                "json" => println!("{}", def.to_json()?),
                other => anyhow::bail!("--format {other}: expected json or dot"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `xbuild worker`: serves until interrupted.
fn worker(builder: Builder, a: WorkerArgs, rt: tokio::runtime::Runtime) -> Result<()> {
    let builder = builder.with_max_parallel_steps(a.max_parallel);
    rt.block_on(xbuild_worker::serve(
        builder,
        a.into(),
        |addr| eprintln!("xbuild worker listening on {addr}"),
        async {
            let _ = tokio::signal::ctrl_c().await;
        },
    ))?;
    Ok(())
}

/// The build context the `PATH | - | URL` argument and `-f` name, unpacked or cloned into a
/// scratch directory under the xbuild root `root` when it is not a local directory; what
/// standard input brings may hold at most `max_size` bytes.
fn prepare_context(
    arg: &str,
    file: Option<PathBuf>,
    root: &std::path::Path,
    max_size: u64,
) -> Result<PreparedContext> {
    let file_stdin = file.as_deref().is_some_and(|f| f.as_os_str() == "-");
    let stdin_tty = std::io::stdin().is_terminal();
    if (file_stdin || arg == "-") && stdin_tty {
        return Err(usage(
            "standard input is a terminal: pipe a tar archive or a Dockerfile into `-`",
        ));
    }
    let given = if file_stdin { None } else { file };
    let prepared = match ContextArg::parse(arg) {
        ContextArg::Stdin if file_stdin => {
            return Err(usage(
                "can't use standard input for both the build context and the Dockerfile",
            ));
        }
        ContextArg::Stdin => {
            context_input::from_stdin(std::io::stdin().lock(), given.as_deref(), root, max_size)?
        }
        ContextArg::Git(url) => context_input::from_git(&url, given.as_deref(), root)?,
        ContextArg::Dir(dir) => {
            let mut p = PreparedContext::dir(dir);
            p.dockerfile = given;
            p
        }
    };
    if file_stdin {
        return Ok(context_input::dockerfile_from_stdin(
            std::io::stdin().lock(),
            prepared,
            root,
            max_size,
        )?);
    }
    Ok(prepared)
}

fn pushed_note(p: &xbuild::Pushed) -> String {
    format!(
        "pushed {} ({}): {} blob(s) uploaded, {} mounted, {} already present",
        p.reference, p.manifest, p.uploaded, p.mounted, p.present
    )
}

/// Prints every diagnostic of a check run and a summary; fails when any is an error.
fn print_check(file: &str, text: &str, diagnostics: &[xbuild::Diagnostic]) -> ExitCode {
    let color = std::io::stdout().is_terminal();
    print!(
        "{}",
        xbuild::render_diagnostics(file, text, diagnostics, color)
    );
    let errors = diagnostics
        .iter()
        .filter(|d| d.severity == xbuild::Severity::Error)
        .count();
    let warnings = diagnostics.len() - errors;
    println!("{file}: {errors} error(s), {warnings} warning(s)");
    if errors > 0 {
        ExitCode::from(1)
    } else {
        ExitCode::SUCCESS
    }
}

fn print_du(du: &xbuild::DiskUsage) {
    println!("{:<24} {:>8} {:>12}", "TYPE", "COUNT", "SIZE");
    let rows = [
        ("snapshots", du.snapshots, Some(du.snapshot_bytes)),
        ("  held by running builds", du.in_use.0, Some(du.in_use.1)),
        (
            "  tagged images' layers",
            du.image_layers.0,
            Some(du.image_layers.1),
        ),
        ("cache records", du.records, None),
        ("cache mounts", du.cache_mounts.0, Some(du.cache_mounts.1)),
        ("blobs", du.blobs.0, Some(du.blobs.1)),
    ];
    for (what, n, size) in rows {
        let size = size.map_or_else(|| "-".to_string(), |b| human::size(b, 4));
        println!("{what:<24} {n:>8} {size:>12}");
    }
    println!(
        "{:<24} {:>8} {:>12}",
        "metadata",
        "-",
        human::size(du.metadata, 4)
    );
    println!(
        "Reclaimable: {} by `xbuild prune`, {} by `xbuild prune --all`",
        human::size(du.reclaimable, 4),
        human::size(du.reclaimable_all, 4)
    );
}

fn print_explanation(e: &xbuild::Explanation) {
    let ran = e.vertices.iter().filter(|v| !v.reasons.is_empty()).count();
    println!(
        "last build: {}{}, {}: {} step(s), {} cached, {} not",
        e.started,
        e.dockerfile
            .as_deref()
            .map(|d| format!(" ({d})"))
            .unwrap_or_default(),
        if e.success { "succeeded" } else { "failed" },
        e.vertices.len(),
        e.vertices.len() - ran,
        ran
    );
    for v in &e.vertices {
        let outcome = match v.outcome {
            xbuild::StepOutcome::Cached => "CACHED",
            xbuild::StepOutcome::Ran => "RAN",
            xbuild::StepOutcome::Failed => "FAILED",
            xbuild::StepOutcome::Cancelled => "CANCELLED",
        };
        let at = v
            .location
            .as_deref()
            .map(|l| format!("  ({l})"))
            .unwrap_or_default();
        println!("{outcome:<9} {}{at}", v.name);
        for r in &v.reasons {
            println!("          {r}");
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn library_errors_name_options_by_their_flags() {
        let e = xbuild::OutputSpec::parse("type=foo").unwrap_err();
        assert_eq!(
            library_message(&e),
            "invalid --output \"type=foo\": unknown type \"foo\"; expected one of image, registry, oci, docker, local, tar"
        );
        let e = xbuild::CacheSpec::parse_to("type=s3").unwrap_err();
        assert!(
            library_message(&e)
                .starts_with("invalid --cache-to \"type=s3\": type=s3 is not supported"),
            "{e}"
        );
        let e = xbuild::key_values(xbuild::OptionName::Label, &["x".into()]).unwrap_err();
        assert_eq!(library_message(&e), "--label \"x\": expected KEY=VALUE");
        let e = xbuild::Error::ContextTooLarge {
            limit: 10,
            entry: None,
        };
        assert_eq!(
            library_message(&e),
            "the build context on standard input holds more than --max-context-size (10 bytes); pass a larger --max-context-size or send a smaller context"
        );
        let e = xbuild::Error::NoSuchImage("x".into());
        assert_eq!(library_message(&e), e.to_string());
    }

    #[test]
    fn remote_and_worker_settings_are_named_by_their_flags() {
        use xbuild::worker::{Error as R, RemoteUnsupported, TlsProblem};
        let e = xbuild::Error::from(R::Unsupported {
            what: RemoteUnsupported::SeveralOutputs,
        });
        assert_eq!(
            library_message(&e),
            "a remote build writes one --output; give only one"
        );
        let e = anyhow::Error::from(xbuild::Error::from(R::Tls(TlsProblem::CertWithoutKey)));
        assert_eq!(
            describe(&e),
            "error: --remote-cert and --remote-key go together"
        );
        assert_eq!(exit_code(&e), 1, "as before: not a usage error");
        let e = xbuild::Error::from(R::Lost {
            addr: "w:1".into(),
            cause: xbuild::worker::LostCause::NoOutcome,
        });
        assert_eq!(library_message(&e), e.to_string());
        let e = anyhow::Error::from(xbuild_worker::Error::from(
            xbuild_worker::TlsSetup::ClientCaWithoutCert,
        ));
        assert_eq!(
            describe(&e),
            "error: --tls-client-ca needs --tls-cert and --tls-key"
        );
        let e = anyhow::Error::from(xbuild_worker::Error::PlainTcp {
            addr: "0.0.0.0:7443".parse().unwrap(),
        });
        assert!(
            describe(&e).starts_with("error: --listen 0.0.0.0:7443: plain TCP"),
            "{e}"
        );
    }

    #[test]
    fn files_named_by_options_are_named_by_their_flags() {
        use xbuild::OptionName;
        use xbuild::worker::{Error as R, OptionFileError, read_token};
        let missing = std::path::Path::new("/nonexistent/xbuild-token");
        let e = read_token(OptionName::RemoteTokenFile, missing).unwrap_err();
        assert!(
            matches!(
                &e,
                OptionFileError::Unreadable {
                    option: OptionName::RemoteTokenFile,
                    ..
                }
            ),
            "{e:?}"
        );
        assert!(!e.to_string().contains("--"), "library terms: {e}");
        let e = anyhow::Error::from(xbuild::Error::from(R::from(e)));
        assert!(
            describe(&e).starts_with("error: --remote-token-file /nonexistent/xbuild-token: "),
            "{}",
            describe(&e)
        );
        let e = read_token(OptionName::WorkerTlsClientCa, missing).unwrap_err();
        let e = anyhow::Error::from(xbuild_worker::Error::from(e));
        assert!(
            describe(&e).starts_with("error: --tls-client-ca /nonexistent/xbuild-token: "),
            "{}",
            describe(&e)
        );
    }

    #[test]
    fn worker_refusals_name_the_workers_flags() {
        use xbuild_worker::Error as W;
        let e = W::Unauthenticated {
            addr: "0.0.0.0:7443".parse().unwrap(),
        };
        assert!(!e.to_string().contains("--"), "library terms: {e}");
        let text = describe(&anyhow::Error::from(e));
        assert!(
            text.contains("--allow-unauthenticated") && text.contains("--tls-client-ca"),
            "{text}"
        );
        // What a client is sent is worded by the options `xbuild worker` serves with.
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            worker: WorkerArgs,
        }
        let flags = Flags::try_parse_from(["worker", "--listen", "127.0.0.1:0"]).unwrap();
        let opts = xbuild_worker::WorkerOptions::from(flags.worker);
        let e = W::EntitlementNotAllowed {
            name: "network.host".into(),
        };
        assert!(!e.to_string().contains("--"), "library terms: {e}");
        assert!(
            (opts.describe)(&e)
                .contains("start the worker with --allow-insecure-entitlement network.host"),
            "{}",
            (opts.describe)(&e)
        );
        let e = W::ContextTooLarge { bytes: 2, limit: 1 };
        assert!(!e.to_string().contains("--"), "library terms: {e}");
        assert!((opts.describe)(&e).contains("--max-context-size of 1 bytes"));
        let e = W::UnknownEntitlement { name: "x".into() };
        assert_eq!((opts.describe)(&e), e.to_string());
        let library = xbuild_worker::WorkerOptions::new("127.0.0.1:0".parse().unwrap());
        assert_eq!(
            (library.describe)(&W::TokenRequired),
            "a valid bearer token is required"
        );
    }

    #[test]
    fn remote_flags_become_the_librarys_settings() {
        #[derive(Parser)]
        struct Flags {
            #[command(flatten)]
            remote: RemoteArgs,
        }
        let flags = Flags::try_parse_from([
            "build",
            "--remote",
            "a:1,b:2",
            "--remote-tls-ca",
            "ca.pem",
            "--remote-token-file",
            "t",
        ])
        .unwrap();
        let r = Remote::from(flags.remote);
        assert_eq!(r.addrs, ["a:1", "b:2"]);
        assert_eq!(r.tls_ca, Some(PathBuf::from("ca.pem")));
        assert_eq!(r.token_file, Some(PathBuf::from("t")));
        assert_eq!((r.cert, r.key), (None, None));
    }

    #[test]
    fn describe_renders_the_library_error_with_flags() {
        let e = anyhow::Error::from(xbuild::Error::from(xbuild::Conflict::PushWithoutName));
        assert_eq!(
            describe(&e),
            "error: --push needs a name to push to: add -t HOST/REPO:TAG"
        );
        assert_eq!(exit_code(&e), 2);
    }
}

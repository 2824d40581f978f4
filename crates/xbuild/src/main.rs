//! The `xbuild` command line: a thin layer over the [`xbuild`] crate.

mod progress;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand};
use std::io::IsTerminal;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;

use xbuild::{BuildOptions, Builder, OutputSpec};

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
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Build an image from a Dockerfile and a context directory.
    Build {
        /// Name and optionally a tag (`name:tag`); repeatable.
        #[arg(short = 't', long = "tag")]
        tags: Vec<String>,
        /// The Dockerfile (default: CONTEXT/Dockerfile).
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// Output destination: `type=image`, `type=oci,dest=DIR|FILE.tar`, `type=tar,dest=FILE`.
        #[arg(short = 'o', long = "output")]
        outputs: Vec<String>,
        /// Do not use the cache.
        #[arg(long)]
        no_cache: bool,
        /// A build-time variable, `KEY=VALUE`; repeatable.
        #[arg(long = "build-arg")]
        build_args: Vec<String>,
        /// Build this stage (and only the stages it needs).
        #[arg(long)]
        target: Option<String>,
        /// How to show progress.
        #[arg(long, value_enum, default_value = "auto")]
        progress: progress::Mode,
        /// Write the image ID to this file.
        #[arg(long)]
        iidfile: Option<PathBuf>,
        /// Print only the image ID.
        #[arg(short = 'q', long)]
        quiet: bool,
        /// A secret for `RUN --mount=type=secret`: `id=ID,src=PATH` or `id=ID,env=VAR`.
        #[arg(long = "secret")]
        secrets: Vec<String>,
        /// An SSH agent for `RUN --mount=type=ssh`: `default` ($SSH_AUTH_SOCK) or `ID=SOCKET`.
        #[arg(long = "ssh")]
        ssh: Vec<String>,
        /// The build context directory.
        context: PathBuf,
    },
    /// Import a flat rootfs tarball (plain or gzip) as an image, like `docker import`.
    Import {
        /// The tarball.
        tarball: PathBuf,
        /// The image name, `name[:tag]`.
        name: String,
    },
    /// Write an image's flattened filesystem as a tar.
    Export {
        /// The image.
        image: String,
        /// The output file (`-` for stdout).
        #[arg(short = 'o', long = "output")]
        output: PathBuf,
    },
    /// List images.
    Images {
        /// Only show image IDs.
        #[arg(short = 'q', long)]
        quiet: bool,
    },
    /// Print an image's config as JSON.
    Inspect {
        /// The image.
        image: String,
    },
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
    /// Inspect what xbuild makes of a Dockerfile.
    Debug {
        #[command(subcommand)]
        command: DebugCommand,
    },
}

#[derive(Subcommand)]
enum DebugCommand {
    /// Print the parsed Dockerfile.
    Parse {
        /// The Dockerfile (`-` for stdin).
        #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
        file: PathBuf,
    },
    /// Print the build graph with each vertex's digest; with `--explain`, why each step of
    /// the last build on this root ran or came from the cache.
    Graph {
        /// The Dockerfile.
        #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
        file: PathBuf,
        /// `json` or `dot` (with `--explain`: `text` or `json`).
        #[arg(long)]
        format: Option<String>,
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
            ExitCode::from(1)
        }
    }
}

/// The error with its chain and, for Dockerfile and step failures, the details a user needs.
fn describe(e: &anyhow::Error) -> String {
    let color = std::io::stderr().is_terminal();
    if let Some(xbuild::Error::Dockerfile {
        file,
        source_text,
        diagnostics,
    }) = e.downcast_ref::<xbuild::Error>()
    {
        return xbuild::render_diagnostics(file, source_text, diagnostics, color);
    }
    let mut out = format!("error: {e}");
    if let Some(xbuild::Error::Solve(xbuild_solver::Error::Vertex {
        location, source, ..
    })) = e.downcast_ref::<xbuild::Error>()
    {
        if let Some(l) = location {
            out.push_str(&format!("\n  at {l}"));
        }
        if let xbuild_solver::Error::Runtime(xbuild_runtime::Error::ExecFailed { tail, .. }) =
            source.as_ref()
            && !tail.is_empty()
        {
            out.push_str("\n  last output:");
            for l in tail {
                out.push_str(&format!("\n    {l}"));
            }
        }
    }
    for cause in e.chain().skip(1) {
        let text = cause.to_string();
        if !out.contains(&text) {
            out.push_str(&format!("\n  caused by: {text}"));
        }
    }
    out
}

fn run(cli: Cli) -> Result<ExitCode> {
    let root = cli.root.clone().unwrap_or_else(xbuild::default_root);
    let mut builder = Builder::new(&root);
    if let Some(r) = &cli.oci_runtime {
        builder = builder.with_runtime(r);
    }
    let kind: xbuild::SnapshotterKind = cli
        .snapshotter
        .parse()
        .map_err(|e: xbuild_runtime::Error| anyhow::anyhow!("--snapshotter: {e}"))?;
    builder = builder.with_snapshotter(kind);
    match cli.command {
        Command::Build {
            tags,
            file,
            outputs,
            no_cache,
            build_args,
            target,
            progress,
            iidfile,
            quiet,
            secrets,
            ssh,
            context,
        } => {
            let mut opts = BuildOptions::new(context);
            opts.dockerfile = file;
            opts.tags = tags;
            opts.no_cache = no_cache;
            opts.target = target;
            for o in outputs {
                opts.outputs.push(OutputSpec::parse(&o)?);
            }
            for sec in secrets {
                let (id, src) = xbuild::SecretSource::parse(&sec)?;
                opts.secrets.insert(id, src);
            }
            for s in ssh {
                let (id, sock) = match s.split_once('=') {
                    Some((id, p)) => (id.to_string(), PathBuf::from(p)),
                    None => (
                        s.clone(),
                        std::env::var_os("SSH_AUTH_SOCK")
                            .map(PathBuf::from)
                            .ok_or_else(|| {
                                anyhow::anyhow!(
                                    "--ssh {s}: SSH_AUTH_SOCK is not set; pass --ssh {s}=SOCKET"
                                )
                            })?,
                    ),
                };
                opts.ssh.insert(id, sock);
            }
            for a in build_args {
                let (k, v) = a
                    .split_once('=')
                    .ok_or_else(|| anyhow::anyhow!("--build-arg {a:?}: expected KEY=VALUE"))?;
                opts.build_args.insert(k.to_string(), v.to_string());
            }
            let mode = if quiet {
                progress::Mode::Quiet
            } else {
                progress
            };
            let printer = Arc::new(progress::Printer::new(mode));
            let rt = tokio::runtime::Builder::new_multi_thread()
                .enable_all()
                .build()
                .context("starting the async runtime")?;
            // Ctrl-C drops the build: its running step's container is killed and every mount
            // and snapshot it held is released before xbuild exits.
            let result = rt.block_on(async {
                tokio::select! {
                    r = builder.build(&opts, printer.clone()) => r.map_err(anyhow::Error::from),
                    _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
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
            if let Some(p) = iidfile {
                std::fs::write(&p, result.image_id.as_str())
                    .with_context(|| format!("writing --iidfile {}", p.display()))?;
            }
            println!("{}", result.image_id);
        }
        Command::Import { tarball, name } => {
            let img = builder.import(&tarball, &name)?;
            println!("{}", img.id);
        }
        Command::Export { image, output } => {
            if output.as_os_str() == "-" {
                builder.export(&image, std::io::stdout().lock())?;
            } else {
                let tmp = output.with_extension("partial");
                let f = std::fs::File::create(&tmp)
                    .with_context(|| format!("creating {}", tmp.display()))?;
                builder.export(&image, std::io::BufWriter::new(f))?;
                std::fs::rename(&tmp, &output)
                    .with_context(|| format!("writing {}", output.display()))?;
            }
        }
        Command::Images { quiet } => {
            let images = builder.images()?;
            if quiet {
                for i in images {
                    println!("{}", i.id.short());
                }
            } else {
                println!(
                    "{:<40} {:<16} {:<14} {:<16} SIZE",
                    "REPOSITORY", "TAG", "IMAGE ID", "CREATED"
                );
                for i in images {
                    println!(
                        "{:<40} {:<16} {:<14} {:<16} {}",
                        i.repository,
                        i.tag,
                        i.id.short(),
                        since(i.created.as_deref()),
                        human_size(i.size)
                    );
                }
            }
        }
        Command::Inspect { image } => {
            let (manifest, m, c) = builder.inspect(&image)?;
            let out = serde_json::json!({
                "Id": m.config.digest,
                "Manifest": manifest,
                "Config": c,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
        }
        Command::Prune {
            all,
            keep_storage,
            force: _,
        } => {
            let r = builder.prune(&xbuild::PruneOptions { all, keep_storage })?;
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
            println!("Total reclaimed space: {}", human_size(r.reclaimed));
        }
        Command::Du { format } => {
            let du = builder.disk_usage()?;
            match format.as_str() {
                "json" => println!("{}", serde_json::to_string_pretty(&du)?),
                "table" => print_du(&du),
                other => anyhow::bail!("--format {other}: expected table or json"),
            }
        }
        Command::Debug { command } => return debug(&builder, command),
    }
    Ok(ExitCode::SUCCESS)
}

fn debug(builder: &Builder, command: DebugCommand) -> Result<ExitCode> {
    match command {
        DebugCommand::Parse { file } => {
            let text = if file.as_os_str() == "-" {
                std::io::read_to_string(std::io::stdin()).context("reading stdin")?
            } else {
                std::fs::read_to_string(&file)
                    .with_context(|| format!("reading {}", file.display()))?
            };
            let parsed = xbuild_parser::parse(&text);
            let out = serde_json::json!({
                "dockerfile": parsed.dockerfile,
                "diagnostics": parsed.diagnostics,
            });
            println!("{}", serde_json::to_string_pretty(&out)?);
            if parsed.has_errors() {
                eprint!(
                    "{}",
                    xbuild::render_diagnostics(
                        &file.display().to_string(),
                        &text,
                        &parsed.diagnostics,
                        false
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
        DebugCommand::Graph { file, format, .. } => {
            let context = file
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."));
            let mut opts = BuildOptions::new(context);
            opts.dockerfile = Some(file);
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

fn print_du(du: &xbuild::DiskUsage) {
    println!("{:<24} {:>8} {:>12}", "TYPE", "COUNT", "SIZE");
    let rows = [
        ("snapshots", du.snapshots, du.snapshot_bytes),
        ("  held by running builds", du.in_use.0, du.in_use.1),
        (
            "  tagged images' layers",
            du.image_layers.0,
            du.image_layers.1,
        ),
        ("cache records", du.records, 0),
        ("cache mounts", du.cache_mounts.0, du.cache_mounts.1),
        ("blobs", du.blobs.0, du.blobs.1),
    ];
    for (what, n, size) in rows {
        let size = if what == "cache records" {
            "-".to_string()
        } else {
            human_size(size)
        };
        println!("{what:<24} {n:>8} {size:>12}");
    }
    println!(
        "{:<24} {:>8} {:>12}",
        "metadata",
        "-",
        human_size(du.metadata)
    );
    println!(
        "Reclaimable: {} by `xbuild prune`, {} by `xbuild prune --all`",
        human_size(du.reclaimable),
        human_size(du.reclaimable_all)
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
            xbuild_cache::history::Outcome::Cached => "CACHED",
            xbuild_cache::history::Outcome::Ran => "RAN",
            xbuild_cache::history::Outcome::Failed => "FAILED",
            xbuild_cache::history::Outcome::Cancelled => "CANCELLED",
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

fn since(created: Option<&str>) -> String {
    let Some(t) = created.and_then(|c| humantime::parse_rfc3339_weak(c).ok()) else {
        return "N/A".into();
    };
    let secs = std::time::SystemTime::now()
        .duration_since(t)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    match secs {
        0..=59 => format!("{secs} seconds ago"),
        60..=3599 => format!("{} minutes ago", secs / 60),
        3600..=86399 => format!("{} hours ago", secs / 3600),
        _ => format!("{} days ago", secs / 86400),
    }
}

fn human_size(n: u64) -> String {
    let n = n as f64;
    if n >= 1e9 {
        format!("{:.3}GB", n / 1e9)
    } else if n >= 1e6 {
        format!("{:.3}MB", n / 1e6)
    } else if n >= 1e3 {
        format!("{:.3}kB", n / 1e3)
    } else {
        format!("{n}B")
    }
}

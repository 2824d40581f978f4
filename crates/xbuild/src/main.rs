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
        /// How to show progress.
        #[arg(long, value_enum, default_value = "auto")]
        progress: progress::Mode,
        /// Write the image ID to this file.
        #[arg(long)]
        iidfile: Option<PathBuf>,
        /// Print only the image ID.
        #[arg(short = 'q', long)]
        quiet: bool,
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
        /// `json` (the syntax tree and diagnostics) or `tree` (BuildKit's AST dump format).
        #[arg(long, default_value = "json")]
        format: String,
        /// Only run the build checks and report every error and warning.
        #[arg(long)]
        check: bool,
    },
    /// Print the build graph with each vertex's digest.
    Graph {
        /// The Dockerfile.
        #[arg(short = 'f', long = "file", default_value = "Dockerfile")]
        file: PathBuf,
        /// `json` or `dot`.
        #[arg(long, default_value = "json")]
        format: String,
        /// The stage to build (default: the last).
        #[arg(long)]
        target: Option<String>,
        /// A build-time variable, `KEY=VALUE`; repeatable.
        #[arg(long = "build-arg")]
        build_args: Vec<String>,
    },
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
    match cli.command {
        Command::Build {
            tags,
            file,
            outputs,
            no_cache,
            build_args,
            progress,
            iidfile,
            quiet,
            check,
            target,
            labels,
            platform,
            context,
        } => {
            let mut opts = BuildOptions::new(context);
            opts.dockerfile = file;
            opts.target = target;
            opts.platform = platform;
            opts.labels = key_values("--label", &labels)?;
            if check {
                let report = builder.check(&opts)?;
                return Ok(print_check(
                    &report.file,
                    &report.source_text,
                    &report.diagnostics,
                ));
            }
            opts.tags = tags;
            opts.no_cache = no_cache;
            for o in outputs {
                opts.outputs.push(OutputSpec::parse(&o)?);
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
            let result = rt.block_on(builder.build(&opts, printer.clone()))?;
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
        Command::Debug { command } => return debug(&builder, command),
    }
    Ok(ExitCode::SUCCESS)
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
            let parsed = xbuild_parser::parse(&text);
            if check {
                return Ok(print_check(&name, &text, &parsed.diagnostics));
            }
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
            file,
            format,
            target,
            build_args,
        } => {
            let context = file
                .parent()
                .map(|p| p.to_path_buf())
                .unwrap_or_else(|| PathBuf::from("."));
            let mut opts = BuildOptions::new(context);
            opts.dockerfile = Some(file);
            opts.target = target;
            opts.build_args = key_values("--build-arg", &build_args)?;
            let def = builder.lower(&opts)?;
            match format.as_str() {
                "dot" => print!("{}", def.to_dot()),
                "json" => println!("{}", def.to_json()?),
                other => anyhow::bail!("--format {other}: expected json or dot"),
            }
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// `KEY=VALUE` arguments of a repeatable flag.
fn key_values(flag: &str, items: &[String]) -> Result<std::collections::BTreeMap<String, String>> {
    let mut out = std::collections::BTreeMap::new();
    for a in items {
        let (k, v) = a
            .split_once('=')
            .ok_or_else(|| anyhow::anyhow!("{flag} {a:?}: expected KEY=VALUE"))?;
        out.insert(k.to_string(), v.to_string());
    }
    Ok(out)
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

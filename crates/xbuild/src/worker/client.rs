//! `xbuild build --remote`: sends a build to a worker and brings its output back.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::str::FromStr;
use std::time::Instant;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_stream::wrappers::ReceiverStream;
use tonic::metadata::MetadataValue;
use tonic::transport::{Certificate, Channel, ClientTlsConfig, Endpoint, Identity};
use tonic::{Code, Request, Status};
use xbuild_cache::statcache::StatCache;
use xbuild_llb::Digest;
use xbuild_solver::{Event, ProgressSink};

use super::context::{self, Manifest};
use super::image::{Received, Receiver};
use super::proto::{
    self, BlobWants, BuildRequest, ClientMessage, FileData, ManifestChunk, Outcome, client_message,
    output, worker_client::WorkerClient, worker_message,
};
use super::{
    ConnectError, Error, FEATURES_HEADER, LostCause, MANIFEST_DIGEST_FEATURE, ProtocolViolation,
    RemoteUnsupported, TlsProblem, WorkerStatus, install_crypto, read_option_file, read_token,
};
use crate::{BuildOptions, BuildResult, Builder, OptionName, OutputSpec, Timings};

/// Where the workers are and how to authenticate to them.
#[derive(Clone, Debug, Default)]
pub struct Remote {
    /// Worker addresses (`HOST:PORT`), tried in order: the next one when a worker cannot be
    /// reached or dies mid-build.
    pub addrs: Vec<String>,
    /// The CA (PEM) that signed the workers' certificates; TLS when set.
    pub tls_ca: Option<PathBuf>,
    /// This client's certificate (PEM), for workers that require one (mTLS).
    pub cert: Option<PathBuf>,
    /// This client's key (PEM).
    pub key: Option<PathBuf>,
    /// A file holding the bearer token workers require.
    pub token_file: Option<PathBuf>,
}

impl Remote {
    /// Plain connections to `addrs`.
    pub fn new(addrs: Vec<String>) -> Self {
        Remote {
            addrs,
            ..Remote::default()
        }
    }

    /// Checks the settings that go together: at least one worker address; a client
    /// certificate and its key, both or neither; either of them only with the CA (TLS).
    /// [`build`] checks them before anything else.
    pub fn check(&self) -> Result<(), Error> {
        if self.addrs.is_empty() {
            return Err(Error::NoWorker);
        }
        match (&self.cert, &self.key) {
            (Some(_), None) => Err(TlsProblem::CertWithoutKey.into()),
            (None, Some(_)) => Err(TlsProblem::KeyWithoutCert.into()),
            (Some(_), Some(_)) if self.tls_ca.is_none() => Err(TlsProblem::CertWithoutCa.into()),
            _ => Ok(()),
        }
    }
}

/// What a remote build did.
#[derive(Clone, Debug)]
pub struct RemoteResult {
    /// The build's result, as a local build reports it (`config` is not carried back).
    pub result: BuildResult,
    /// The worker that ran it.
    pub worker: String,
    /// Context files (distinct contents) the worker asked for and received.
    pub files_sent: u64,
    /// Their bytes.
    pub bytes_sent: u64,
    /// Entries the context manifest listed.
    pub context_entries: u64,
    /// Image layers that came back from the worker (0 when the output came as an archive).
    pub layers_received: u64,
    /// Their bytes.
    pub layer_bytes_received: u64,
    /// Image layers the local content store already had, which did not come back.
    pub layers_present: u64,
    /// The context manifest was sent; `false` when the worker held a layout of exactly this
    /// context already (it answered the manifest's digest).
    pub manifest_sent: bool,
}

/// A build and where it ran.
#[derive(Clone, Debug)]
pub enum Built {
    /// Here, by the builder itself.
    Local(BuildResult),
    /// On a worker.
    Remote(RemoteResult),
}

/// Builds `opts` with `builder` when `remote` names no worker, else sends it to the workers
/// as [`build`] does: the choice `xbuild build [--remote ADDR]` makes.
pub async fn build_here_or_remote(
    builder: &Builder,
    opts: &BuildOptions,
    remote: &Remote,
) -> Result<Built, crate::Error> {
    if remote.addrs.is_empty() {
        return builder.build(opts).await.map(Built::Local);
    }
    build(builder, opts, remote).await.map(Built::Remote)
}

/// Where the output archive goes once it is back.
#[derive(Clone, Debug)]
enum Place {
    /// Loaded into the local image store.
    Load,
    /// Written to this file (`-`: stdout).
    Write(PathBuf),
    /// Unpacked into this directory.
    Unpack(PathBuf),
}

/// Sends the build `opts` describes to the first worker of `remote` that completes it, and
/// writes its output as a local build would (the local store, an OCI layout, a
/// docker-archive, a directory or a tar).
pub async fn build(
    builder: &Builder,
    opts: &BuildOptions,
    remote: &Remote,
) -> Result<RemoteResult, crate::Error> {
    let started = Instant::now();
    remote.check()?;
    let unsupported = |what| Error::Unsupported { what };
    if !opts.secrets.is_empty() || !opts.ssh.is_empty() {
        return Err(unsupported(RemoteUnsupported::SecretsOrSsh).into());
    }
    if !opts.cache_from.is_empty() || !opts.cache_to.is_empty() {
        return Err(unsupported(RemoteUnsupported::Cache).into());
    }
    let (req, place) = request(opts)?;
    // The first worker's connection and the local content store (where an image comes back)
    // are opened while the context is scanned.
    let first = {
        let (addr, remote) = (remote.addrs[0].clone(), remote.clone());
        tokio::spawn(async move { connect(&addr, &remote).await })
    };
    let store = {
        let b = builder.clone();
        tokio::task::spawn_blocking(move || b.store().map(|_| ()))
    };
    let manifest = {
        let root = builder.root().to_path_buf();
        let context = opts.context.clone();
        let ignore = req.ignore_patterns.clone();
        tokio::task::spawn_blocking(move || -> Result<Manifest, crate::Error> {
            xbuild_cache::close_root(&root)?;
            let cache = StatCache::load(&root)?;
            let m = context::scan(&context, &ignore, &cache)?;
            cache.save()?;
            Ok(m)
        })
        .await
        .map_err(|source| crate::InternalError::Task {
            what: "scanning the context",
            source,
        })??
    };
    // A store that does not open says so when the image comes back.
    if let Ok(Err(e)) = store.await {
        tracing::debug!("opening the content store: {e}");
    }
    let mut req = req;
    req.context_entries = manifest.entries.len() as u64;
    req.context_bytes = manifest.bytes;
    req.manifest_digest = manifest.digest.to_vec();
    let tmp = builder.root().join("remote-output");
    std::fs::create_dir_all(&tmp).map_err(crate::io(&tmp))?;
    let tmp = tmp.join(format!("{}.part", rand::random::<u64>()));
    let _cleanup = RemoveOnDrop(tmp.clone());
    let mut last = None;
    let mut first = Some(first);
    for (i, addr) in remote.addrs.iter().enumerate() {
        let connected = first.take();
        let attempt = tokio::select! {
            r = build_on(builder, addr, remote, connected, &req, &manifest, opts, &tmp) => r,
            _ = opts.cancel.cancelled() => return Err(crate::Error::Cancelled),
        };
        match attempt {
            Ok((outcome, image, manifest_sent)) => {
                let layers = image
                    .as_ref()
                    .map_or((0, 0), |i| (i.layers_received, i.layers_present));
                let result = finish(
                    builder, opts, &req, &place, &tmp, addr, &outcome, image, started,
                )
                .await?;
                return Ok(RemoteResult {
                    result,
                    worker: addr.clone(),
                    files_sent: outcome.files_received,
                    bytes_sent: outcome.bytes_received,
                    context_entries: outcome.context_entries,
                    layers_received: layers.0 as u64,
                    layer_bytes_received: outcome.blob_bytes_sent,
                    layers_present: layers.1 as u64,
                    manifest_sent,
                });
            }
            Err(e) if e.retryable() && i + 1 < remote.addrs.len() => {
                tracing::warn!("{e}; trying {}", remote.addrs[i + 1]);
                last = Some(e);
            }
            Err(e) => return Err(e.into()),
        }
    }
    Err(last.unwrap_or(Error::NoWorker).into())
}

/// The request for `opts`, and where its output goes.
fn request(opts: &BuildOptions) -> Result<(BuildRequest, Place), crate::Error> {
    let (name, text) = Builder::read_dockerfile(opts)?;
    let ignore = opts.context_ignore_patterns()?;
    let outputs = if opts.outputs.is_empty() {
        vec![OutputSpec::Image {
            names: Vec::new(),
            compression: None,
            push: false,
        }]
    } else {
        opts.outputs.clone()
    };
    if outputs.len() > 1 {
        return Err(Error::Unsupported {
            what: RemoteUnsupported::SeveralOutputs,
        }
        .into());
    }
    let mut push = opts.push;
    let mut out = proto::Output::default();
    let compression =
        |c: &Option<crate::Compression>| c.map(|c| c.name().to_string()).unwrap_or_default();
    let place = match &outputs[0] {
        OutputSpec::Image {
            names,
            compression: c,
            push: p,
        } => {
            push |= *p;
            out.set_kind(output::Kind::Oci);
            out.names = opts.tags.iter().chain(names).cloned().collect();
            out.compression = compression(c);
            Place::Load
        }
        OutputSpec::Oci {
            dest,
            dir,
            names,
            compression: c,
        } => {
            out.set_kind(output::Kind::Oci);
            out.names = opts.tags.iter().chain(names).cloned().collect();
            out.compression = compression(c);
            if *dir {
                Place::Unpack(dest.clone())
            } else {
                Place::Write(dest.clone())
            }
        }
        OutputSpec::Docker {
            dest,
            names,
            compression: c,
        } => {
            out.set_kind(output::Kind::Docker);
            out.names = opts.tags.iter().chain(names).cloned().collect();
            out.compression = compression(c);
            Place::Write(dest.clone())
        }
        OutputSpec::Tar { dest } => {
            out.set_kind(output::Kind::Tar);
            Place::Write(dest.clone())
        }
        OutputSpec::Local { dest } => {
            out.set_kind(output::Kind::Tar);
            Place::Unpack(dest.clone())
        }
    };
    let context = opts
        .context
        .canonicalize()
        .map_err(crate::io(&opts.context))?;
    let req = BuildRequest {
        dockerfile_name: name,
        dockerfile_text: text,
        target: opts.target.clone().unwrap_or_default(),
        build_args: opts.build_args.clone().into_iter().collect(),
        labels: opts.labels.clone().into_iter().collect(),
        platform: opts.platform.clone().unwrap_or_default(),
        no_cache: opts.no_cache,
        pull: opts.pull,
        source_date_epoch: opts.source_date_epoch,
        ignore_patterns: ignore,
        tags: opts.tags.clone(),
        push,
        output: Some(out),
        context_key: format!("{}:{}", hostname(), context.display()),
        context_entries: 0,
        context_bytes: 0,
        image_by_blobs: true,
        manifest_digest: Vec::new(),
        entitlements: [
            (opts.allow_insecure, "security.insecure"),
            (opts.allow_network_host, "network.host"),
        ]
        .into_iter()
        .filter(|(asked, _)| *asked)
        .map(|(_, name)| name.to_string())
        .collect(),
    };
    Ok((req, place))
}

fn hostname() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .map(|h| h.trim().to_string())
        .unwrap_or_default()
}

/// Connects to `addr` as `remote` says.
async fn connect(addr: &str, remote: &Remote) -> Result<Channel, Error> {
    install_crypto();
    let scheme = if remote.tls_ca.is_some() {
        "https"
    } else {
        "http"
    };
    remote.check()?;
    let bad = |source| TlsProblem::Endpoint {
        addr: addr.to_string(),
        source,
    };
    let mut endpoint = Endpoint::from_shared(format!("{scheme}://{addr}")).map_err(bad)?;
    if let Some(ca) = &remote.tls_ca {
        let mut tls = ClientTlsConfig::new().ca_certificate(Certificate::from_pem(
            read_option_file(OptionName::RemoteTlsCa, ca)?,
        ));
        // `Remote::check` refused a certificate without its key and the other way round.
        if let (Some(c), Some(k)) = (&remote.cert, &remote.key) {
            tls = tls.identity(Identity::from_pem(
                read_option_file(OptionName::RemoteCert, c)?,
                read_option_file(OptionName::RemoteKey, k)?,
            ));
        }
        endpoint = endpoint.tls_config(tls).map_err(bad)?;
    }
    endpoint
        .connect_timeout(std::time::Duration::from_secs(10))
        .connect()
        .await
        .map_err(|e| Error::Connect {
            addr: addr.to_string(),
            source: ConnectError::Transport(e),
        })
}

/// What a gRPC status means for the client.
fn status_error(addr: &str, s: &Status) -> Error {
    let addr = addr.to_string();
    let status = WorkerStatus::from(s);
    match s.code() {
        Code::Unauthenticated | Code::PermissionDenied => Error::Refused { addr, status },
        _ => Error::Lost {
            addr,
            cause: LostCause::Status(status),
        },
    }
}

/// Runs the build on one worker (over `connected`, when its connection is being made
/// already); an output archive lands in `tmp`, an image that comes back by blobs in the local
/// store. Also says whether the manifest was sent.
#[allow(clippy::too_many_arguments)]
async fn build_on(
    builder: &Builder,
    addr: &str,
    remote: &Remote,
    connected: Option<tokio::task::JoinHandle<Result<Channel, Error>>>,
    req: &BuildRequest,
    manifest: &Manifest,
    opts: &BuildOptions,
    tmp: &Path,
) -> Result<(Outcome, Option<Received>, bool), Error> {
    let channel = match connected {
        Some(c) => c.await.map_err(|e| Error::Connect {
            addr: addr.to_string(),
            source: ConnectError::Task(e),
        })??,
        None => connect(addr, remote).await?,
    };
    let token = match &remote.token_file {
        Some(f) => {
            let t = read_token(OptionName::RemoteTokenFile, f)?;
            Some(
                MetadataValue::try_from(format!("Bearer {t}"))
                    .map_err(|_| Error::BadToken { path: f.clone() })?,
            )
        }
        None => None,
    };
    let mut client = WorkerClient::with_interceptor(channel, move |mut r: Request<()>| {
        if let Some(t) = &token {
            r.metadata_mut().insert("authorization", t.clone());
        }
        Ok(r)
    })
    .max_decoding_message_size(16 << 20);
    let (tx, rx) = mpsc::channel::<ClientMessage>(16);
    let response = client
        .build(ReceiverStream::new(rx))
        .await
        .map_err(|s| status_error(addr, &s))?;
    // A worker that takes the manifest's digest first says so in the response header.
    let by_digest = response
        .metadata()
        .get(FEATURES_HEADER)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.split(',').any(|f| f.trim() == MANIFEST_DIGEST_FEATURE));
    let mut inbound = response.into_inner();
    // The manifest goes out while the worker answers; a failed send means the worker ended
    // the stream, and its reason comes on `inbound`. A worker that takes the digest first
    // gets the manifest only when it asks (ContextStatus without laid_out).
    let mut manifest_sent = !by_digest;
    let mut sender = if by_digest {
        if tx
            .send(ClientMessage {
                msg: Some(client_message::Msg::Request(req.clone())),
            })
            .await
            .is_err()
        {
            tracing::debug!("the worker ended the stream before the request");
        }
        None
    } else {
        Some(send_manifest(&tx, Some(req.clone()), manifest))
    };
    let mut out: Option<tokio::fs::File> = None;
    let mut image: Option<Receiver> = None;
    let violation = |violation| Error::Protocol {
        worker: addr.to_string(),
        violation: Box::new(violation),
    };
    loop {
        let m = match inbound.message().await {
            Ok(Some(m)) => m,
            Ok(None) => {
                return Err(Error::Lost {
                    addr: addr.to_string(),
                    cause: LostCause::NoOutcome,
                });
            }
            Err(s) => return Err(status_error(addr, &s)),
        };
        match m.msg {
            Some(worker_message::Msg::Status(status)) => {
                if !by_digest || sender.is_some() {
                    return Err(violation(ProtocolViolation::UnrequestedStatus));
                }
                if !status.laid_out {
                    sender = Some(send_manifest(&tx, None, manifest));
                    manifest_sent = true;
                }
            }
            Some(worker_message::Msg::Need(need)) => {
                if let Some(s) = sender.take() {
                    let _ = s.await;
                }
                let contents = manifest.contents();
                for d in need.files {
                    let digest = <[u8; 32]>::try_from(d.as_slice())
                        .map_err(|_| violation(ProtocolViolation::DigestLength))?;
                    let path = contents
                        .get(&digest)
                        .ok_or_else(|| violation(ProtocolViolation::UnknownContent(digest)))?;
                    if send_file(&tx, digest, path).await.is_err() {
                        break;
                    }
                }
            }
            Some(worker_message::Msg::Event(e)) => {
                if let Some(e) = from_proto(e) {
                    opts.progress.event(e);
                }
            }
            Some(worker_message::Msg::Output(o)) => {
                if out.is_none() {
                    let f = tokio::fs::File::create(tmp)
                        .await
                        .map_err(|source| Error::Io {
                            path: tmp.to_path_buf(),
                            source,
                        })?;
                    out = Some(f);
                }
                if let Some(f) = out.as_mut() {
                    f.write_all(&o.chunk).await.map_err(|source| Error::Io {
                        path: tmp.to_path_buf(),
                        source,
                    })?;
                }
            }
            Some(worker_message::Msg::Offer(offer)) => {
                if image.is_some() || out.is_some() {
                    return Err(violation(ProtocolViolation::SecondOutput));
                }
                let store = builder
                    .store()
                    .map_err(|e| Error::LocalStore(Box::new(e)))?;
                let (receiver, wants) = Receiver::new(addr, store, offer)?;
                image = Some(receiver);
                let wants = ClientMessage {
                    msg: Some(client_message::Msg::Wants(BlobWants { digests: wants })),
                };
                // A failed send means the worker ended the stream; its reason comes next.
                let _ = tx.send(wants).await;
            }
            Some(worker_message::Msg::Blob(data)) => {
                let Some(receiver) = image.as_mut() else {
                    return Err(violation(ProtocolViolation::BlobBeforeOffer));
                };
                receiver.chunk(data)?;
            }
            Some(worker_message::Msg::Outcome(o)) => {
                if let Some(mut f) = out.take() {
                    f.flush().await.map_err(|source| Error::Io {
                        path: tmp.to_path_buf(),
                        source,
                    })?;
                }
                if !o.error.is_empty() {
                    return Err(Error::Failed {
                        addr: addr.to_string(),
                        message: o.error,
                    });
                }
                let received = match image.take() {
                    Some(r) => {
                        if r.manifest_digest().as_str() != o.manifest {
                            return Err(violation(ProtocolViolation::ImageMismatch {
                                offered: r.manifest_digest().clone(),
                                reported: o.manifest,
                            }));
                        }
                        let done = tokio::task::spawn_blocking(move || r.finish())
                            .await
                            .map_err(|source| Error::Task {
                                what: "receiving the image",
                                source,
                            })??;
                        Some(done)
                    }
                    None => None,
                };
                return Ok((o, received, manifest_sent));
            }
            None => return Err(violation(ProtocolViolation::EmptyMessage)),
        }
    }
}

/// Starts sending `req` (when given) and then the context manifest, in chunks; the task ends
/// early (`Err`) when the worker ended the stream.
fn send_manifest(
    tx: &mpsc::Sender<ClientMessage>,
    req: Option<BuildRequest>,
    manifest: &Manifest,
) -> tokio::task::JoinHandle<Result<(), ()>> {
    let tx = tx.clone();
    let chunks: Vec<Vec<proto::Entry>> = manifest
        .entries
        .chunks(MANIFEST_CHUNK)
        .map(<[proto::Entry]>::to_vec)
        .collect();
    tokio::spawn(async move {
        let send = |m| {
            let tx = &tx;
            async move {
                tx.send(ClientMessage { msg: Some(m) })
                    .await
                    .map_err(|_| ())
            }
        };
        if let Some(req) = req {
            send(client_message::Msg::Request(req)).await?;
        }
        let n = chunks.len().max(1);
        let mut chunks = chunks.into_iter();
        for i in 0..n {
            send(client_message::Msg::Manifest(ManifestChunk {
                entries: chunks.next().unwrap_or_default(),
                last: i + 1 == n,
            }))
            .await?;
        }
        Ok(())
    })
}

/// Entries per manifest message.
const MANIFEST_CHUNK: usize = 2000;

/// Sends one context file's content in chunks.
async fn send_file(
    tx: &mpsc::Sender<ClientMessage>,
    digest: [u8; 32],
    path: &Path,
) -> Result<(), ()> {
    let mut f = tokio::fs::File::open(path).await.map_err(|_| ())?;
    let mut buf = vec![0u8; 1 << 20];
    let mut pending: Option<Vec<u8>> = None;
    loop {
        let n = f.read(&mut buf).await.map_err(|_| ())?;
        if n == 0 {
            let chunk = pending.take().unwrap_or_default();
            return tx
                .send(ClientMessage {
                    msg: Some(client_message::Msg::Data(FileData {
                        digest: digest.to_vec(),
                        chunk,
                        last: true,
                    })),
                })
                .await
                .map_err(|_| ());
        }
        if let Some(chunk) = pending.replace(buf[..n].to_vec()) {
            tx.send(ClientMessage {
                msg: Some(client_message::Msg::Data(FileData {
                    digest: digest.to_vec(),
                    chunk,
                    last: false,
                })),
            })
            .await
            .map_err(|_| ())?;
        }
    }
}

/// A protocol event as the solver's progress sinks take it.
fn from_proto(e: proto::Event) -> Option<Event> {
    use proto::event::Kind;
    let vertex = Digest::from_str(&e.vertex).ok()?;
    Some(match e.kind() {
        Kind::Started => Event::Started {
            vertex,
            name: e.text,
        },
        Kind::Waiting => Event::Waiting {
            vertex,
            name: e.text,
        },
        Kind::Cached => Event::Cached {
            vertex,
            name: e.text,
        },
        Kind::Log => Event::Log {
            vertex,
            stream: if e.stderr { "stderr" } else { "stdout" },
            line: e.text,
        },
        Kind::Done => Event::Done {
            vertex,
            seconds: e.seconds,
        },
        Kind::Failed => Event::Failed {
            vertex,
            error: e.text,
        },
    })
}

/// Puts the output where the build's output goes and makes the result: an image received by
/// blobs is tagged in the local store, or written as the archive the worker would have sent
/// (into `tmp`, then placed as that archive would be); an archive in `tmp` is placed.
#[allow(clippy::too_many_arguments)]
async fn finish(
    builder: &Builder,
    opts: &BuildOptions,
    req: &BuildRequest,
    place: &Place,
    tmp: &Path,
    worker: &str,
    o: &Outcome,
    image: Option<Received>,
    started: Instant,
) -> Result<BuildResult, crate::Error> {
    let place = place.clone();
    let b = builder.clone();
    let src = tmp.to_path_buf();
    let out = req.output.clone().unwrap_or_default();
    let epoch = opts.source_date_epoch;
    let (config, descriptor) = match &image {
        Some(i) => (Some(i.config.clone()), Some(i.manifest.clone())),
        None => (None, None),
    };
    tokio::task::spawn_blocking(move || match image {
        Some(image) => place_image(&b, &image, &out, epoch, &place, &src),
        None => place_output(&b, &place, &src),
    })
    .await
    .map_err(|source| crate::InternalError::Task {
        what: "writing the output",
        source,
    })??;
    let digest = |s: &str| Digest::from_str(s).ok();
    let mut pushed = Vec::new();
    for p in &o.pushed {
        let (Ok(reference), Some(manifest)) = (
            xbuild_registry::parse_reference(&p.reference),
            digest(&p.manifest),
        ) else {
            return Err(Error::Protocol {
                worker: worker.to_string(),
                violation: Box::new(ProtocolViolation::BadPush {
                    reference: p.reference.clone(),
                    manifest: p.manifest.clone(),
                }),
            }
            .into());
        };
        pushed.push(crate::Pushed {
            reference,
            manifest,
            uploaded: p.uploaded as usize,
            mounted: p.mounted as usize,
            present: p.present as usize,
        });
    }
    Ok(BuildResult {
        image_id: digest(&o.image_id),
        manifest: digest(&o.manifest),
        tags: opts.tags.clone(),
        pushed,
        executed: o.executed as usize,
        cached: o.cached as usize,
        config,
        manifest_descriptor: descriptor,
        timings: Timings {
            total: started.elapsed(),
            ..Timings::default()
        },
        ..BuildResult::default()
    })
}

/// Puts an image received into the local store where the output goes: tags it with the
/// output's names, or writes the archive the output's kind names (with the names and
/// creation time the worker would have given it) to `tmp` and places that.
fn place_image(
    builder: &Builder,
    image: &Received,
    out: &proto::Output,
    epoch: Option<i64>,
    place: &Place,
    tmp: &Path,
) -> Result<(), crate::Error> {
    let store = &image.store;
    if let Place::Load = place {
        crate::store::record_image(store, &image.manifest.digest)?;
        for n in &out.names {
            crate::store::tag(store, n, &image.manifest.digest)?;
        }
        return Ok(());
    }
    let format = match out.kind() {
        output::Kind::Docker => xbuild_exporter::ArchiveFormat::Docker,
        _ => xbuild_exporter::ArchiveFormat::Oci,
    };
    let created = epoch
        .map(xbuild_exporter::rfc3339)
        .unwrap_or_else(crate::outputs::now_rfc3339);
    let archive = [xbuild_exporter::ArchiveImage {
        manifest: image.manifest.clone(),
        names: out.names.clone(),
    }];
    let f = std::fs::File::create(tmp).map_err(crate::io(tmp))?;
    let mut w = std::io::BufWriter::with_capacity(1 << 20, f);
    xbuild_exporter::write_archive(store, &archive, format, Some(&created), &mut w)?;
    w.flush().map_err(crate::io(tmp))?;
    drop(w);
    place_output(builder, place, tmp)
}

fn place_output(builder: &Builder, place: &Place, src: &Path) -> Result<(), crate::Error> {
    match place {
        Place::Load => builder.load(src).map(|_| ()),
        Place::Write(dest) if dest.as_os_str() == "-" => {
            let mut f = std::fs::File::open(src).map_err(crate::io(src))?;
            std::io::copy(&mut f, &mut std::io::stdout().lock())
                .map(|_| ())
                .map_err(crate::io(dest))
        }
        Place::Write(dest) => {
            if std::fs::rename(src, dest).is_err() {
                std::fs::copy(src, dest).map_err(crate::io(dest))?;
            }
            Ok(())
        }
        Place::Unpack(dest) => {
            std::fs::create_dir_all(dest).map_err(crate::io(dest))?;
            let f = std::fs::File::open(src).map_err(crate::io(src))?;
            let mut archive = tar::Archive::new(std::io::BufReader::new(f));
            archive.set_preserve_permissions(true);
            archive.unpack(dest).map_err(crate::io(dest))
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn remote_settings_that_do_not_go_together_are_refused_before_anything_else() {
        let ok = Remote::new(vec!["w:1".into()]);
        assert!(ok.check().is_ok());
        assert!(matches!(Remote::default().check(), Err(Error::NoWorker)));
        let with = |cert: bool, key: bool, ca: bool| Remote {
            cert: cert.then(|| "c.pem".into()),
            key: key.then(|| "k.pem".into()),
            tls_ca: ca.then(|| "ca.pem".into()),
            ..ok.clone()
        };
        assert!(with(true, true, true).check().is_ok());
        assert!(with(false, false, true).check().is_ok());
        assert!(matches!(
            with(true, false, true).check(),
            Err(Error::Tls(TlsProblem::CertWithoutKey))
        ));
        assert!(matches!(
            with(false, true, false).check(),
            Err(Error::Tls(TlsProblem::KeyWithoutCert))
        ));
        let e = with(true, true, false).check().unwrap_err();
        assert!(matches!(e, Error::Tls(TlsProblem::CertWithoutCa)), "{e}");
        assert!(!e.to_string().contains("--"), "library terms: {e}");
    }

    #[test]
    fn a_workers_status_is_kept_typed() {
        let e = status_error("w:1", &Status::permission_denied("no entry"));
        assert!(
            matches!(
                &e,
                Error::Refused { addr, status: WorkerStatus { code: Code::PermissionDenied, message } }
                    if addr == "w:1" && message == "no entry"
            ),
            "{e:?}"
        );
        assert_eq!(e.to_string(), "worker w:1 refused the build: no entry");
        assert!(!e.retryable());
        let e = status_error("w:1", &Status::unavailable(""));
        assert!(
            matches!(
                &e,
                Error::Lost {
                    cause: LostCause::Status(WorkerStatus {
                        code: Code::Unavailable,
                        ..
                    }),
                    ..
                }
            ),
            "{e:?}"
        );
        assert_eq!(
            e.to_string(),
            "worker w:1: the connection was lost before the build finished: Unavailable"
        );
        assert!(e.retryable());
    }

    #[tokio::test]
    async fn a_worker_that_cannot_be_reached_gives_the_transports_causes() {
        // A port just listened on and closed: the connection is refused at once.
        let addr = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .unwrap()
            .to_string();
        let e = connect(&addr, &Remote::new(vec![addr.clone()]))
            .await
            .unwrap_err();
        let Error::Connect {
            addr: named,
            source: ConnectError::Transport(t),
        } = &e
        else {
            panic!("{e:?}");
        };
        assert_eq!(named, &addr);
        let text = e.to_string();
        let prefix = format!("worker {addr}: cannot connect: ");
        assert!(
            text.starts_with(&prefix) && text.len() > prefix.len() + t.to_string().len(),
            "the causes, not only the transport's own message: {text}"
        );
        assert!(e.retryable());
    }

    #[test]
    fn a_protocol_violation_names_the_worker() {
        let e = Error::Protocol {
            worker: "10.0.0.1:7443".into(),
            violation: Box::new(ProtocolViolation::UnknownContent([0xab; 32])),
        };
        assert_eq!(
            e.to_string(),
            format!(
                "protocol error: worker 10.0.0.1:7443: asked for {} which the context does not hold",
                "ab".repeat(32)
            )
        );
    }
}

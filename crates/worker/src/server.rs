//! `xbuild worker`: serves builds over gRPC.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Instant;

use tokio::io::AsyncReadExt;
use tokio::sync::{mpsc, oneshot};
use tokio_stream::wrappers::{ReceiverStream, TcpListenerStream};
use tonic::transport::{Certificate, Identity, Server, ServerTlsConfig};
use tonic::{Request, Response, Status, Streaming};
use xbuild_cache::statcache::StatCache;
use xbuild_dockerignore::Filter;
use xbuild_runtime::{Checksum, ContentHashes, Selection, Source, checksum_with};
use xbuild_solver::{Event, ProgressSink};

use xbuild::worker::context::manifest_digest;
use xbuild::worker::proto::{
    self, ClientMessage, Need, Outcome, OutputData, WorkerMessage, client_message, output,
    worker_message, worker_server,
};
use xbuild::worker::{install_crypto, read_option_file, read_token};
use xbuild::{
    BuildOptions, Builder, CacheMode, CacheSpec, CancellationToken, Compression, OptionName,
    OutputSpec, SharedSink,
};

use crate::context::{self, FileStore};
use crate::{Error, TlsSetup};

/// How `xbuild worker` serves.
#[derive(Clone, Debug)]
pub struct WorkerOptions {
    /// Where to listen.
    pub listen: SocketAddr,
    /// Imports cache from and exports it to this registry reference (`mode=max`).
    pub cache_registry: Option<String>,
    /// Requests whose context holds more file bytes are refused.
    pub max_context_size: u64,
    /// The server certificate and key (PEM); TLS when set.
    pub tls_cert: Option<PathBuf>,
    /// The server certificate's key.
    pub tls_key: Option<PathBuf>,
    /// Clients must present a certificate this CA (PEM) signed (mTLS).
    pub tls_client_ca: Option<PathBuf>,
    /// Clients must send the bearer token this file holds.
    pub token_file: Option<PathBuf>,
    /// Allow plain TCP on an address other than loopback.
    pub insecure: bool,
    /// Serve clients that present no certificate and no token on an address other than
    /// loopback (anyone who reaches it runs builds as root).
    pub allow_unauthenticated: bool,
    /// The entitlements clients may be granted: `security.insecure`, `network.host`.
    pub entitlements: Vec<String>,
    /// How a request's error is worded to the client (it sends the text): [`Error`]'s
    /// `Display` by default, in this crate's terms. An embedder that names the worker's
    /// settings its own way (a command line, by its flags) words them here, for the client's
    /// user to know which setting of the worker refused them
    /// ([`Error::EntitlementNotAllowed`]).
    pub describe: fn(&Error) -> String,
}

impl WorkerOptions {
    /// Plain TCP on `listen`, no cache registry, contexts up to 4 GiB.
    pub fn new(listen: SocketAddr) -> Self {
        WorkerOptions {
            listen,
            cache_registry: None,
            max_context_size: 4 << 30,
            tls_cert: None,
            tls_key: None,
            tls_client_ca: None,
            token_file: None,
            insecure: false,
            allow_unauthenticated: false,
            entitlements: Vec::new(),
            describe: Error::to_string,
        }
    }

    /// Checks the settings that go together, as [`serve`] does before anything else: known
    /// entitlements; a server certificate and its key, both or neither; a client CA only
    /// with them; plain TCP only on loopback unless [`insecure`](Self::insecure); and, on an
    /// address other than loopback, client authentication (a client CA or a token) unless
    /// [`allow_unauthenticated`](Self::allow_unauthenticated), for such a worker runs
    /// anyone's builds as root.
    pub fn check(&self) -> Result<(), Error> {
        for name in &self.entitlements {
            if !ENTITLEMENTS.contains(&name.as_str()) {
                return Err(Error::UnknownEntitlement { name: name.clone() });
            }
        }
        let loopback = self.listen.ip().is_loopback();
        if !self.authenticated() && !loopback && !self.allow_unauthenticated {
            return Err(Error::Unauthenticated { addr: self.listen });
        }
        match (&self.tls_cert, &self.tls_key) {
            (Some(_), Some(_)) => Ok(()),
            (Some(_), None) => Err(TlsSetup::CertWithoutKey.into()),
            (None, Some(_)) => Err(TlsSetup::KeyWithoutCert.into()),
            (None, None) if self.tls_client_ca.is_some() => {
                Err(TlsSetup::ClientCaWithoutCert.into())
            }
            (None, None) if !loopback && !self.insecure => {
                Err(Error::PlainTcp { addr: self.listen })
            }
            (None, None) => Ok(()),
        }
    }

    /// Clients must authenticate: by a certificate (a client CA) or a token.
    fn authenticated(&self) -> bool {
        self.tls_client_ca.is_some() || self.token_file.is_some()
    }
}

/// Serves builds with `builder` until `shutdown` resolves; `on_listen` learns the bound address.
pub async fn serve(
    builder: Builder,
    opts: WorkerOptions,
    on_listen: impl FnOnce(SocketAddr),
    shutdown: impl Future<Output = ()>,
) -> Result<(), Error> {
    install_crypto();
    opts.check()?;
    if opts.allow_unauthenticated && !opts.authenticated() && !opts.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %opts.listen,
            "serving builds without client authentication (allow_unauthenticated): anyone who reaches this address runs builds as root on this machine"
        );
    }
    let mut server = Server::builder();
    // `WorkerOptions::check` refused a certificate without its key and the other way round.
    if let (Some(cert), Some(key)) = (&opts.tls_cert, &opts.tls_key) {
        let identity = Identity::from_pem(
            read_option_file(OptionName::WorkerTlsCert, cert)?,
            read_option_file(OptionName::WorkerTlsKey, key)?,
        );
        let mut tls = ServerTlsConfig::new().identity(identity);
        if let Some(ca) = &opts.tls_client_ca {
            tls = tls.client_ca_root(Certificate::from_pem(read_option_file(
                OptionName::WorkerTlsClientCa,
                ca,
            )?));
        }
        server = server.tls_config(tls).map_err(TlsSetup::Identity)?;
    }
    let token = match &opts.token_file {
        Some(f) => Some(read_token(OptionName::WorkerTokenFile, f)?),
        None => None,
    };
    // Clients' files and outputs: open to root alone.
    let root = builder.root().join("worker");
    context::private_dir(&root)?;
    let state = Arc::new(State {
        files: FileStore::open(root.join("files"))?,
        contexts: root.join("contexts"),
        out: root.join("out"),
        builder,
        cache_registry: opts.cache_registry.clone(),
        max_context_size: opts.max_context_size,
        entitlements: opts.entitlements.clone(),
        describe: opts.describe,
        locks: std::sync::Mutex::new(HashMap::new()),
        builds: AtomicU64::new(0),
        layouts: tokio::sync::RwLock::new(()),
        sums: std::sync::Mutex::default(),
    });
    for d in [&state.contexts, &state.out] {
        context::private_dir(d)?;
    }
    let listen = |source| Error::Listen {
        addr: opts.listen,
        source,
    };
    let listener = tokio::net::TcpListener::bind(opts.listen)
        .await
        .map_err(listen)?;
    let addr = listener.local_addr().map_err(listen)?;
    on_listen(addr);
    let describe = opts.describe;
    let service = tonic::service::interceptor::InterceptedService::new(
        worker_server::WorkerServer::new(Service(state)).max_decoding_message_size(16 << 20),
        move |req: Request<()>| check_token(token.as_deref(), describe, req),
    );
    server
        .add_service(service)
        .serve_with_incoming_shutdown(TcpListenerStream::new(listener), shutdown)
        .await
        .map_err(|source| Error::Serve { addr, source })
}

/// The entitlements a worker can grant (BuildKit's names).
const ENTITLEMENTS: [&str; 2] = ["security.insecure", "network.host"];

/// The entitlements `req` asks for, each granted only when the worker was started with it
/// (`granted`); the first one that is not is an error naming the entitlement.
fn entitlements(req: &proto::BuildRequest, granted: &[String]) -> Result<Entitlements, Error> {
    let mut out = Entitlements::default();
    for name in &req.entitlements {
        if !ENTITLEMENTS.contains(&name.as_str()) {
            return Err(Error::UnknownEntitlement { name: name.clone() });
        }
        if !granted.contains(name) {
            return Err(Error::EntitlementNotAllowed { name: name.clone() });
        }
        match name.as_str() {
            "security.insecure" => out.insecure = true,
            _ => out.network_host = true,
        }
    }
    Ok(out)
}

/// The entitlements a build was granted.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
struct Entitlements {
    /// `security.insecure`: `RUN --security=insecure`.
    insecure: bool,
    /// `network.host`: `RUN --network=host`.
    network_host: bool,
}

/// Refuses a request without the bearer token (when one is required), worded by `describe`.
fn check_token(
    token: Option<&str>,
    describe: fn(&Error) -> String,
    req: Request<()>,
) -> Result<Request<()>, Status> {
    let Some(want) = token else {
        return Ok(req);
    };
    let got = req
        .metadata()
        .get("authorization")
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if constant_time_eq(got.as_bytes(), want.as_bytes()) {
        Ok(req)
    } else {
        Err(Status::unauthenticated(describe(&Error::TokenRequired)))
    }
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

struct State {
    builder: Builder,
    files: FileStore,
    contexts: PathBuf,
    out: PathBuf,
    cache_registry: Option<String>,
    max_context_size: u64,
    /// The entitlements clients may be granted.
    entitlements: Vec<String>,
    /// How a request's error is worded to the client ([`WorkerOptions::describe`]).
    describe: fn(&Error) -> String,
    /// One lock per client context directory: builds of the same context take turns.
    locks: std::sync::Mutex<HashMap<String, Arc<tokio::sync::Mutex<()>>>>,
    builds: AtomicU64,
    /// Held shared by each build from asking for contents until its context is laid out, and
    /// exclusively by the file store's garbage collection.
    layouts: tokio::sync::RwLock<()>,
    /// The context checksums known of each layout (by context key), for the manifest it holds.
    sums: std::sync::Mutex<HashMap<String, Arc<Sums>>>,
}

/// Context checksums of one manifest, by selection (see [`LaidOutContext`]).
#[derive(Debug)]
struct Sums {
    /// The manifest's digest.
    digest: [u8; 32],
    by_selection: std::sync::Mutex<HashMap<[u8; 32], [u8; 32]>>,
}

impl State {
    /// The checksums known of the layout `key`, which holds the manifest `digest`.
    fn sums(&self, key: &str, digest: [u8; 32]) -> Arc<Sums> {
        let Ok(mut all) = self.sums.lock() else {
            return Arc::new(Sums::new(digest));
        };
        let s = all
            .entry(key.to_string())
            .or_insert_with(|| Arc::new(Sums::new(digest)));
        if s.digest != digest {
            *s = Arc::new(Sums::new(digest));
        }
        s.clone()
    }
}

impl Sums {
    fn new(digest: [u8; 32]) -> Self {
        Sums {
            digest,
            by_selection: std::sync::Mutex::default(),
        }
    }
}

/// A context laid out by this worker. A context checksum is computed by walking it, exactly
/// as a local build walks its context, once per manifest and selection; a build of the same
/// manifest again takes it from `sums`, since it depends only on what the manifest lists
/// (and the worker checked every content it lists against its blake3 hash on receipt). The
/// layout itself is read (walked, copied from, mounted) only once [`context::repair`] checked
/// it unchanged since the worker wrote it, or laid it out again.
#[derive(Debug)]
struct LaidOutContext {
    dir: PathBuf,
    sums: Arc<Sums>,
    files: FileStore,
    /// The root whose stat cache a repair seeds.
    root: PathBuf,
    /// The outcome of checking the layout, once this build needed it; set from the start
    /// when this build laid it out.
    checked: std::sync::Mutex<Option<Result<(), String>>>,
    /// Where a layout that could not be repaired points copies (it does not exist).
    unusable: PathBuf,
}

impl LaidOutContext {
    fn new(state: &State, dir: PathBuf, sums: Arc<Sums>, fresh: bool) -> Self {
        LaidOutContext {
            unusable: dir.with_extension("changed-outside-the-worker"),
            dir,
            sums,
            files: state.files.clone(),
            root: state.builder.root().to_path_buf(),
            checked: std::sync::Mutex::new(fresh.then_some(Ok(()))),
        }
    }

    /// Checks the layout (and repairs it) the first time this build reads it.
    fn check(&self) -> Result<(), String> {
        let mut checked = self
            .checked
            .lock()
            .map_err(|_| "the context layout check is poisoned".to_string())?;
        if let Some(r) = checked.as_ref() {
            return r.clone();
        }
        let r = StatCache::load(&self.root)
            .map_err(|e| e.to_string())
            .and_then(|hashes| {
                let repaired =
                    context::repair(&self.dir, &self.files, &hashes).map_err(|e| e.to_string())?;
                if repaired {
                    tracing::warn!(
                        layout = %self.dir.display(),
                        "the context layout was changed outside the worker; laid it out again"
                    );
                    hashes.save().map_err(|e| e.to_string())?;
                }
                Ok(())
            });
        if let Err(e) = &r {
            tracing::error!(layout = %self.dir.display(), "{e}");
        }
        *checked = Some(r.clone());
        r
    }
}

/// What identifies a selection of a context: the context's filter (its `Debug` form names
/// each compiled pattern) and everything of the selection.
fn selection_key(filter: Option<&Filter>, sel: &Selection<'_>) -> [u8; 32] {
    let mut h = blake3::Hasher::new();
    let mut part = |b: &[u8]| {
        h.update(&(b.len() as u64).to_le_bytes());
        h.update(b);
    };
    part(format!("{filter:?}").as_bytes());
    part(sel.src.as_bytes());
    part(&[u8::from(sel.allow_wildcard), u8::from(sel.follow)]);
    for list in [sel.include, sel.exclude] {
        part(&(list.len() as u64).to_le_bytes());
        for p in list {
            part(p.as_bytes());
        }
    }
    *h.finalize().as_bytes()
}

impl Source for LaidOutContext {
    fn dir(&self) -> &Path {
        match self.check() {
            Ok(()) => &self.dir,
            Err(_) => &self.unusable,
        }
    }

    fn checksum(
        &self,
        filter: Option<&Filter>,
        sel: &Selection<'_>,
        hashes: &dyn ContentHashes,
        paths: bool,
    ) -> Result<Checksum, xbuild_runtime::Error> {
        if !paths && let Some(total) = self.known_checksum(filter, sel) {
            return Ok(Checksum {
                total,
                paths: Vec::new(),
            });
        }
        let key = selection_key(filter, sel);
        self.check().map_err(|e| xbuild_runtime::Error::Io {
            path: self.dir.clone(),
            source: std::io::Error::other(e),
        })?;
        let c = checksum_with(&self.dir, filter, sel, hashes, paths)?;
        if let Ok(mut m) = self.sums.by_selection.lock() {
            m.insert(key, c.total);
        }
        Ok(c)
    }

    fn known_checksum(&self, filter: Option<&Filter>, sel: &Selection<'_>) -> Option<[u8; 32]> {
        let key = selection_key(filter, sel);
        self.sums
            .by_selection
            .lock()
            .ok()
            .and_then(|m| m.get(&key).copied())
    }
}

/// Context layouts unused for this long are removed, with the contents only they listed.
const CONTEXT_RETENTION: std::time::Duration = std::time::Duration::from_secs(7 * 86400);

/// What a build did that its outcome does not carry.
#[derive(Default)]
struct Metrics {
    /// The transfer figures of the outcome.
    outcome: Outcome,
    /// The context layout changed: contents may have lost their last reference.
    layout_changed: bool,
}

struct Service(Arc<State>);

type Reply = Result<WorkerMessage, Status>;

#[tonic::async_trait]
impl worker_server::Worker for Service {
    type BuildStream = ReceiverStream<Reply>;

    async fn build(
        &self,
        req: Request<Streaming<ClientMessage>>,
    ) -> Result<Response<Self::BuildStream>, Status> {
        let (tx, rx) = mpsc::channel(64);
        let state = self.0.clone();
        let n = state.builds.fetch_add(1, Ordering::Relaxed) + 1;
        tokio::spawn(async move {
            let started = Instant::now();
            let cancel = CancellationToken::new();
            let watch = {
                let (tx, cancel) = (tx.clone(), cancel.clone());
                tokio::spawn(async move {
                    tx.closed().await;
                    cancel.cancel();
                })
            };
            let mut metrics = Metrics::default();
            let run: std::pin::Pin<Box<dyn Future<Output = Result<Outcome, String>> + Send>> =
                Box::pin(session(
                    &state,
                    req.into_inner(),
                    &tx,
                    &cancel,
                    &mut metrics,
                ));
            let mut outcome = settle(n, run).await;
            outcome.files_received = metrics.outcome.files_received;
            outcome.bytes_received = metrics.outcome.bytes_received;
            outcome.context_entries = metrics.outcome.context_entries;
            outcome.seconds = started.elapsed().as_secs_f64();
            tracing::info!(
                build = n,
                error = %outcome.error,
                files_received = outcome.files_received,
                bytes_received = outcome.bytes_received,
                "build finished"
            );
            let _ = tx
                .send(Ok(msg(worker_message::Msg::Outcome(outcome))))
                .await;
            watch.abort();
            if metrics.layout_changed {
                collect_garbage(&state).await;
            }
        });
        let mut response = Response::new(ReceiverStream::new(rx));
        response.metadata_mut().insert(
            xbuild::worker::FEATURES_HEADER,
            tonic::metadata::MetadataValue::from_static(xbuild::worker::MANIFEST_DIGEST_FEATURE),
        );
        Ok(response)
    }
}

/// What a build session ends with: its outcome, its error as a failed outcome, or, when the
/// session panicked (a bug), a failed outcome saying so. The client always hears how its build
/// ended, and the worker goes on serving others (what the session held is released as it
/// unwinds).
async fn settle(build: u64, run: impl Future<Output = Result<Outcome, String>>) -> Outcome {
    use futures_util::FutureExt as _;
    let error = match std::panic::AssertUnwindSafe(run).catch_unwind().await {
        Ok(Ok(outcome)) => return outcome,
        Ok(Err(message)) => message,
        Err(panic) => {
            let what = panic
                .downcast_ref::<&str>()
                .map(|s| s.to_string())
                .or_else(|| panic.downcast_ref::<String>().cloned())
                .unwrap_or_else(|| "a panic without a message".to_string());
            tracing::error!(build, panic = %what, "a build session panicked");
            format!(
                "the worker failed while running this build (a bug in xbuild: {what}); the build was abandoned and nothing of it was kept; please report it"
            )
        }
    };
    Outcome {
        error,
        ..Outcome::default()
    }
}

/// Removes stale context layouts and the contents no layout lists; skipped (left to the next
/// build) while another build is receiving or laying out its context.
async fn collect_garbage(state: &Arc<State>) {
    let Ok(_held) = state.layouts.try_write() else {
        return;
    };
    let (files, contexts) = (state.files.clone(), state.contexts.clone());
    match tokio::task::spawn_blocking(move || {
        context::collect_garbage(&files, &contexts, CONTEXT_RETENTION)
    })
    .await
    {
        Ok(Ok(c)) => tracing::info!(
            files = c.files,
            bytes = c.bytes,
            contexts = c.contexts,
            "removed context files no layout lists"
        ),
        Ok(Err(e)) => tracing::warn!("cleaning the context file store: {e}"),
        Err(e) => tracing::warn!("cleaning the context file store: {e}"),
    }
}

fn msg(m: worker_message::Msg) -> WorkerMessage {
    WorkerMessage { msg: Some(m) }
}

/// Receives the next client message; the stream ending or breaking is an error.
async fn next(inbound: &mut Streaming<ClientMessage>) -> Result<client_message::Msg, String> {
    match inbound.message().await {
        Ok(Some(ClientMessage { msg: Some(m) })) => Ok(m),
        Ok(_) => Err("the client ended the request early".into()),
        Err(e) => Err(format!("receiving from the client: {}", e.message())),
    }
}

/// One build: request, context transfer, build, output. Returns the outcome to send.
async fn session(
    state: &State,
    mut inbound: Streaming<ClientMessage>,
    tx: &mpsc::Sender<Reply>,
    cancel: &CancellationToken,
    progress: &mut Metrics,
) -> Result<Outcome, String> {
    let client_message::Msg::Request(req) = next(&mut inbound).await? else {
        return Err("the client must send its BuildRequest first".into());
    };
    let too_big = |bytes: u64| {
        (state.describe)(&Error::ContextTooLarge {
            bytes,
            limit: state.max_context_size,
        })
    };
    if req.context_bytes > state.max_context_size {
        return Err(too_big(req.context_bytes));
    }
    let granted = entitlements(&req, &state.entitlements).map_err(|e| (state.describe)(&e))?;
    // Builds of the same client context take turns over its directory.
    let key = blake3::hash(req.context_key.as_bytes()).to_hex()[..32].to_string();
    let dir = state.contexts.join(&key);
    let lock = state
        .locks
        .lock()
        .map_err(|_| "the context lock table is poisoned".to_string())?
        .entry(key.clone())
        .or_default()
        .clone();
    let mut turn = None;
    let mut layout = None;
    if !req.manifest_digest.is_empty() {
        let digest = <[u8; 32]>::try_from(req.manifest_digest.as_slice())
            .map_err(|_| "the manifest digest is not 32 bytes".to_string())?;
        let held = take_turn(&lock).await;
        let found = {
            let _layouts = state.layouts.read().await;
            let dir = dir.clone();
            tokio::task::spawn_blocking(move || context::laid_out(&dir, &digest))
                .await
                .map_err(|e| format!("checking the context layout: {e}"))?
        };
        if let Some(r) = found {
            if r.bytes > state.max_context_size {
                return Err(too_big(r.bytes));
            }
            progress.outcome.context_entries = r.entries;
            turn = Some(held);
            layout = Some(r.digest);
        }
        let status = proto::ContextStatus {
            laid_out: layout.is_some(),
        };
        tx.send(Ok(msg(worker_message::Msg::Status(status))))
            .await
            .map_err(|_| "the client went away".to_string())?;
    }
    let (layout, fresh, _turn) = match (layout, turn) {
        (Some(d), Some(t)) => (d, false, t),
        _ => {
            let received = receive_context(state, &req, &mut inbound, tx, progress, &dir, &lock);
            let (d, fresh, turn) = received.await?;
            progress.layout_changed = fresh || progress.outcome.files_received > 0;
            (d, fresh, turn)
        }
    };
    let sums = state.sums(&key, layout);
    let out = state
        .out
        .join(format!("{key}.{}.out", rand::random::<u64>()));
    let _cleanup = RemoveOnDrop(out.clone());
    let mut opts = build_options(state, &req, dir.clone(), &out)?;
    opts.allow_insecure = granted.insecure;
    opts.allow_network_host = granted.network_host;
    opts.context_source = Some(Arc::new(LaidOutContext::new(state, dir, sums, fresh)));
    opts.cancel = cancel.clone();
    let (etx, erx) = mpsc::unbounded_channel();
    opts.progress = SharedSink::new(Forward(etx.clone()));
    let pump = tokio::spawn(pump(erx, tx.clone()));
    let build: std::pin::Pin<
        Box<dyn Future<Output = Result<xbuild::BuildResult, xbuild::Error>> + Send>,
    > = Box::pin(state.builder.build(&opts));
    let result = build.await;
    drop(opts);
    let (flushed, wait) = oneshot::channel();
    let _ = etx.send(Pumped::Flush(flushed));
    drop(etx);
    let _ = wait.await;
    pump.abort();
    let result = result.map_err(|e| render_error(&e))?;
    let mut outcome = Outcome::default();
    if by_blobs(&req) {
        let manifest = result.manifest_descriptor.as_ref().ok_or_else(|| {
            "the build made no image to send (internal: an image output without a manifest)"
                .to_string()
        })?;
        send_image(state, manifest, &mut inbound, tx, &mut outcome).await?;
    } else if output_kind(&req) != output::Kind::None {
        send_file(&out, tx).await?;
    }
    Ok(Outcome {
        image_id: result
            .image_id
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        manifest: result
            .manifest
            .map(|d| d.as_str().to_string())
            .unwrap_or_default(),
        executed: result.executed as u64,
        cached: result.cached as u64,
        pushed: result
            .pushed
            .iter()
            .map(|p| proto::Pushed {
                reference: p.reference.to_string(),
                manifest: p.manifest.as_str().to_string(),
                uploaded: p.uploaded as u64,
                mounted: p.mounted as u64,
                present: p.present as u64,
            })
            .collect(),
        ..outcome
    })
}

/// Receives the context manifest and the contents the worker lacks, and lays the context
/// out in `dir`, taking its turn over it (`lock`); returns the manifest's digest, whether it
/// laid the context out (rather than finding it laid out), and the turn, which the build
/// holds until it is done.
async fn receive_context(
    state: &State,
    req: &proto::BuildRequest,
    inbound: &mut Streaming<ClientMessage>,
    tx: &mpsc::Sender<Reply>,
    progress: &mut Metrics,
    dir: &Path,
    lock: &Arc<tokio::sync::Mutex<()>>,
) -> Result<([u8; 32], bool, tokio::sync::OwnedMutexGuard<()>), String> {
    let metrics = &mut progress.outcome;
    let too_big = |bytes: u64| {
        (state.describe)(&Error::ContextTooLarge {
            bytes,
            limit: state.max_context_size,
        })
    };
    let mut entries = Vec::new();
    loop {
        let client_message::Msg::Manifest(chunk) = next(inbound).await? else {
            return Err("expected the context manifest after the request".into());
        };
        entries.extend(chunk.entries);
        if entries.len() as u64 > context::MAX_ENTRIES {
            return Err(Error::TooManyEntries {
                limit: context::MAX_ENTRIES,
            }
            .to_string());
        }
        if entries.len() as u64 > req.context_entries {
            return Err("the context manifest lists more entries than announced".into());
        }
        if chunk.last {
            break;
        }
    }
    metrics.context_entries = entries.len() as u64;
    let bytes: u64 = entries
        .iter()
        .filter(|e| e.kind() == proto::entry::Kind::File)
        .fold(0u64, |sum, e| sum.saturating_add(e.size));
    if bytes > state.max_context_size {
        return Err(too_big(bytes));
    }
    // The whole manifest, before anything touches the disk.
    context::validate(&entries).map_err(|e| (state.describe)(&e))?;
    // Until the context is laid out, its contents must stay in the store.
    let layouts = state.layouts.read().await;
    let sizes: HashMap<Vec<u8>, u64> = entries.iter().map(|e| (e.digest.clone(), e.size)).collect();
    let missing = state.files.missing(&entries);
    let need = Need {
        files: missing.iter().map(|d| d.to_vec()).collect(),
    };
    tx.send(Ok(msg(worker_message::Msg::Need(need))))
        .await
        .map_err(|_| "the client went away".to_string())?;
    let mut pending: std::collections::BTreeSet<[u8; 32]> = missing.into_iter().collect();
    let mut current: Option<context::Incoming> = None;
    while !pending.is_empty() {
        let client_message::Msg::Data(data) = next(inbound).await? else {
            return Err("expected the context files the worker asked for".into());
        };
        let digest = <[u8; 32]>::try_from(data.digest.as_slice())
            .map_err(|_| "a file's digest is not 32 bytes".to_string())?;
        if current.as_ref().is_none_or(|c| c.digest() != digest) {
            if !pending.contains(&digest) {
                return Err(format!(
                    "the client sent {} which the worker did not ask for",
                    hex::encode(digest)
                ));
            }
            current = Some(state.files.begin(digest).map_err(|e| e.to_string())?);
        }
        let Some(inc) = current.as_mut() else {
            return Err("no file is being received".into());
        };
        inc.write(&data.chunk).map_err(|e| e.to_string())?;
        metrics.bytes_received += data.chunk.len() as u64;
        if inc.bytes > sizes.get(digest.as_slice()).copied().unwrap_or(0) {
            return Err(format!(
                "the client sent more bytes for {} than the manifest lists",
                hex::encode(digest)
            ));
        }
        if data.last {
            if let Some(inc) = current.take() {
                inc.commit()?;
            }
            pending.remove(&digest);
            metrics.files_received += 1;
        }
    }
    let turn = take_turn(lock).await;
    let (dir, files) = (dir.to_path_buf(), state.files.clone());
    let root = state.builder.root().to_path_buf();
    let laid = tokio::task::spawn_blocking(move || -> Result<([u8; 32], bool), Error> {
        let digest = manifest_digest(&entries);
        if context::laid_out(&dir, &digest).is_some() {
            return Ok((digest, false));
        }
        let hashes = StatCache::load(&root)?;
        context::materialize(&dir, &entries, &files, &hashes)?;
        hashes.save()?;
        Ok((digest, true))
    })
    .await
    .map_err(|e| format!("laying out the context: {e}"))?
    .map_err(|e| format!("laying out the context: {e}"))?;
    drop(layouts);
    Ok((laid.0, laid.1, turn))
}

/// Waits for a build's turn over a context directory.
fn take_turn(
    lock: &Arc<tokio::sync::Mutex<()>>,
) -> std::pin::Pin<Box<dyn Future<Output = tokio::sync::OwnedMutexGuard<()>> + Send>> {
    Box::pin(lock.clone().lock_owned())
}

/// The kind of output the request asks for.
fn output_kind(req: &proto::BuildRequest) -> output::Kind {
    output::Kind::try_from(req.output.as_ref().map_or(0, |o| o.kind)).unwrap_or(output::Kind::None)
}

/// True when the image goes back by blobs (ImageOffer, BlobWants, BlobData) rather than as an
/// archive: the client asked for it and the output is an image.
fn by_blobs(req: &proto::BuildRequest) -> bool {
    req.image_by_blobs && matches!(output_kind(req), output::Kind::Oci | output::Kind::Docker)
}

/// Offers the built image to the client and sends the layer blobs it lacks, checking that it
/// asks only for the image's layers; counts what went in `outcome`.
async fn send_image(
    state: &State,
    manifest: &xbuild_cache::oci::Descriptor,
    inbound: &mut Streaming<ClientMessage>,
    tx: &mpsc::Sender<Reply>,
    outcome: &mut Outcome,
) -> Result<(), String> {
    let store = state.builder.store().map_err(|e| e.to_string())?;
    // Held until the blobs are sent: `prune` leaves them alone meanwhile.
    let _lease = store.lease().map_err(|e| e.to_string())?;
    let manifest_bytes = store
        .read_blob(&manifest.digest)
        .map_err(|e| e.to_string())?;
    let doc: xbuild_cache::oci::Manifest = serde_json::from_slice(&manifest_bytes)
        .map_err(|e| format!("manifest {}: {e}", manifest.digest))?;
    let config = store
        .read_blob(&doc.config.digest)
        .map_err(|e| e.to_string())?;
    let offer = proto::ImageOffer {
        manifest_digest: manifest.digest.as_str().to_string(),
        manifest_media_type: manifest.media_type.clone(),
        manifest: manifest_bytes,
        config,
    };
    tx.send(Ok(msg(worker_message::Msg::Offer(offer))))
        .await
        .map_err(|_| "the client went away".to_string())?;
    let client_message::Msg::Wants(wants) = next(inbound).await? else {
        return Err("expected the blobs the client wants after the image offer".into());
    };
    let layers: HashMap<&str, &xbuild_cache::oci::Descriptor> =
        doc.layers.iter().map(|l| (l.digest.as_str(), l)).collect();
    let mut asked = std::collections::BTreeSet::new();
    for d in &wants.digests {
        if !layers.contains_key(d.as_str()) {
            return Err(format!(
                "the client asked for blob {d:?}, which is not a layer of image {}",
                manifest.digest
            ));
        }
        if !asked.insert(d.as_str()) {
            return Err(format!("the client asked for blob {d} twice"));
        }
    }
    outcome.blobs_present = (layers.len() - asked.len()) as u64;
    for d in &wants.digests {
        let path = store.blob_path(&layers[d.as_str()].digest);
        outcome.blob_bytes_sent += send_chunks(&path, tx, |chunk, last| {
            worker_message::Msg::Blob(proto::BlobData {
                digest: d.clone(),
                chunk,
                last,
            })
        })
        .await?;
        outcome.blobs_sent += 1;
    }
    Ok(())
}

/// An error as the client shows it: Dockerfile diagnostics rendered with their lines.
fn render_error(e: &xbuild::Error) -> String {
    match e {
        xbuild::Error::Dockerfile {
            file,
            source_text,
            diagnostics,
        } => xbuild::render_diagnostics(file, source_text, diagnostics, false),
        other => other.to_string(),
    }
}

/// The build options a request asks for, building in `context` and writing the output
/// archive to `out`.
fn build_options(
    state: &State,
    req: &proto::BuildRequest,
    context: PathBuf,
    out: &Path,
) -> Result<BuildOptions, String> {
    let mut opts = BuildOptions::new(context);
    opts.dockerfile_text = Some(req.dockerfile_text.clone());
    opts.dockerfile = (!req.dockerfile_name.is_empty()).then(|| req.dockerfile_name.clone().into());
    opts.ignore_patterns = Some(req.ignore_patterns.clone());
    opts.target = (!req.target.is_empty()).then(|| req.target.clone());
    opts.build_args = req.build_args.clone().into_iter().collect();
    opts.labels = req.labels.clone().into_iter().collect();
    opts.platform = (!req.platform.is_empty()).then(|| req.platform.clone());
    opts.no_cache = req.no_cache;
    opts.pull = req.pull;
    opts.source_date_epoch = req.source_date_epoch;
    opts.tags = req.tags.clone();
    opts.push = req.push;
    if let Some(r) = &state.cache_registry {
        let spec = CacheSpec::Registry {
            reference: r.clone(),
            mode: CacheMode::Max,
            export_mounts: false,
        };
        opts.cache_from = vec![spec.clone()];
        opts.cache_to = vec![spec];
    }
    let o = req.output.clone().unwrap_or_default();
    let compression = if o.compression.is_empty() {
        None
    } else {
        Some(Compression::parse(&o.compression).map_err(|e| e.to_string())?)
    };
    let dest = out.to_path_buf();
    let kind = if by_blobs(req) {
        // The image goes back by blobs: it only needs to be in the worker's store.
        output::Kind::None
    } else {
        output_kind(req)
    };
    let spec = match kind {
        output::Kind::None => OutputSpec::Image {
            names: Vec::new(),
            compression,
            push: req.push,
        },
        output::Kind::Oci => OutputSpec::Oci {
            dest,
            dir: false,
            names: o.names,
            compression,
        },
        output::Kind::Docker => OutputSpec::Docker {
            dest,
            names: o.names,
            compression,
        },
        output::Kind::Tar => OutputSpec::Tar { dest },
    };
    opts.outputs = vec![spec];
    Ok(opts)
}

/// Streams the output archive to the client.
async fn send_file(path: &Path, tx: &mpsc::Sender<Reply>) -> Result<(), String> {
    send_chunks(path, tx, |chunk, _| {
        worker_message::Msg::Output(OutputData { chunk })
    })
    .await
    .map(|_| ())
}

/// Streams the file `path` to the client in chunks of up to 1 MiB, each made a message by
/// `wrap` (which learns whether it is the last; an empty file is one empty last chunk).
/// Returns the bytes sent.
async fn send_chunks(
    path: &Path,
    tx: &mpsc::Sender<Reply>,
    wrap: impl Fn(Vec<u8>, bool) -> worker_message::Msg,
) -> Result<u64, String> {
    let mut f = tokio::fs::File::open(path)
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?;
    let len = f
        .metadata()
        .await
        .map_err(|e| format!("{}: {e}", path.display()))?
        .len();
    let mut sent = 0u64;
    loop {
        let want = (len - sent).min(1 << 20) as usize;
        let mut buf = vec![0u8; want];
        f.read_exact(&mut buf)
            .await
            .map_err(|e| format!("{}: {e}", path.display()))?;
        sent += want as u64;
        let last = sent == len;
        tx.send(Ok(msg(wrap(buf, last))))
            .await
            .map_err(|_| "the client went away".to_string())?;
        if last {
            return Ok(sent);
        }
    }
}

struct RemoveOnDrop(PathBuf);

impl Drop for RemoveOnDrop {
    fn drop(&mut self) {
        let _ = std::fs::remove_file(&self.0);
    }
}

enum Pumped {
    Event(proto::Event),
    /// Everything sent before this was forwarded.
    Flush(oneshot::Sender<()>),
}

/// Forwards the build's progress events to the client.
struct Forward(mpsc::UnboundedSender<Pumped>);

impl ProgressSink for Forward {
    fn event(&self, e: Event) {
        let _ = self.0.send(Pumped::Event(to_proto(e)));
    }
}

async fn pump(mut rx: mpsc::UnboundedReceiver<Pumped>, tx: mpsc::Sender<Reply>) {
    while let Some(p) = rx.recv().await {
        match p {
            Pumped::Event(e) => {
                if tx
                    .send(Ok(msg(worker_message::Msg::Event(e))))
                    .await
                    .is_err()
                {
                    return;
                }
            }
            Pumped::Flush(done) => {
                let _ = done.send(());
            }
        }
    }
}

/// A solver event as the protocol carries it.
fn to_proto(e: Event) -> proto::Event {
    use proto::event::Kind;
    let mut p = proto::Event::default();
    let (vertex, kind) = match e {
        Event::Started { vertex, name } => {
            p.text = name;
            (vertex, Kind::Started)
        }
        Event::Waiting { vertex, name } => {
            p.text = name;
            (vertex, Kind::Waiting)
        }
        Event::Cached { vertex, name } => {
            p.text = name;
            (vertex, Kind::Cached)
        }
        Event::Log {
            vertex,
            stream,
            line,
        } => {
            p.text = line;
            p.stderr = stream == "stderr";
            (vertex, Kind::Log)
        }
        Event::Done { vertex, seconds } => {
            p.seconds = seconds;
            (vertex, Kind::Done)
        }
        Event::Failed { vertex, error } => {
            p.text = error;
            (vertex, Kind::Failed)
        }
    };
    p.vertex = vertex.as_str().to_string();
    p.set_kind(kind);
    p
}

#[cfg(test)]
mod tests {
    use super::*;
    use xbuild_runtime::NoContentHashes;

    #[tokio::test]
    async fn worker_session_that_panics_still_tells_its_client_how_the_build_ended() {
        let ok = settle(1, async {
            Ok(Outcome {
                executed: 3,
                ..Outcome::default()
            })
        })
        .await;
        assert_eq!((ok.executed, ok.error.as_str()), (3, ""));
        let failed = settle(2, async { Err("no context".to_string()) }).await;
        assert_eq!(failed.error, "no context");
        let panicked = settle(3, async {
            let v: Vec<u8> = Vec::new();
            // An index out of bounds, as a bug would make it.
            #[allow(clippy::indexing_slicing)]
            let byte = v[usize::from(v.is_empty())];
            Ok(Outcome {
                executed: u64::from(byte),
                ..Outcome::default()
            })
        })
        .await;
        assert!(
            panicked.error.starts_with(
                "the worker failed while running this build (a bug in xbuild: index out of bounds"
            ),
            "{}",
            panicked.error
        );
    }

    #[test]
    fn a_laid_out_context_gives_the_checksums_a_local_build_computes() {
        let t = tempfile::tempdir().unwrap();
        let dir = t.path().join("ctx");
        std::fs::create_dir_all(dir.join("a/b")).unwrap();
        std::fs::write(dir.join("a/b/f"), "f").unwrap();
        std::fs::write(dir.join("a/g"), "g").unwrap();
        std::fs::write(dir.join("h"), "h").unwrap();
        let ctx = LaidOutContext {
            dir: dir.clone(),
            sums: Arc::new(Sums::new([7; 32])),
            files: FileStore::open(t.path().join("files")).unwrap(),
            root: t.path().to_path_buf(),
            checked: std::sync::Mutex::new(Some(Ok(()))),
            unusable: t.path().join("unusable"),
        };
        let filter = Filter::new(&[], &["a/g".to_string()]).unwrap();
        let exclude = ["b".to_string()];
        let selections = [
            Selection {
                src: "a",
                ..Selection::default()
            },
            Selection {
                src: "a",
                exclude: &exclude,
                ..Selection::default()
            },
            Selection {
                src: "*",
                allow_wildcard: true,
                ..Selection::default()
            },
        ];
        for f in [None, filter.as_ref()] {
            for sel in &selections {
                let local = checksum_with(&dir, f, sel, &NoContentHashes, false).unwrap();
                assert_eq!(ctx.known_checksum(f, sel), None);
                let walked = ctx.checksum(f, sel, &NoContentHashes, false).unwrap();
                assert_eq!(walked, local);
                assert_eq!(ctx.known_checksum(f, sel), Some(local.total));
                // Known now: the same checksum, with no walk (the directory is gone).
                std::fs::rename(&dir, t.path().join("away")).unwrap();
                let known = ctx.checksum(f, sel, &NoContentHashes, false).unwrap();
                assert_eq!(known.total, local.total);
                std::fs::rename(t.path().join("away"), &dir).unwrap();
            }
        }
        let keys: std::collections::BTreeSet<[u8; 32]> = [None, filter.as_ref()]
            .iter()
            .flat_map(|f| selections.iter().map(|s| selection_key(*f, s)))
            .collect();
        assert_eq!(keys.len(), 6, "each filter and selection has its own key");
    }

    #[test]
    fn an_entitlement_the_worker_was_not_started_with_is_refused_in_library_terms() {
        let req = proto::BuildRequest {
            entitlements: vec!["network.host".into()],
            ..proto::BuildRequest::default()
        };
        let e = entitlements(&req, &[]).unwrap_err();
        assert!(
            matches!(&e, Error::EntitlementNotAllowed { name } if name == "network.host"),
            "{e}"
        );
        assert!(!e.to_string().contains("--"), "library terms: {e}");
        let opts = WorkerOptions::new("127.0.0.1:0".parse().unwrap());
        assert_eq!((opts.describe)(&e), e.to_string());
        let granted = entitlements(&req, &["network.host".into()]).unwrap();
        assert!(granted.network_host && !granted.insecure);
    }

    #[test]
    fn worker_settings_that_do_not_go_together_are_refused_before_anything_else() {
        let local = WorkerOptions::new("127.0.0.1:0".parse().unwrap());
        assert!(local.check().is_ok());
        let with = |f: &dyn Fn(&mut WorkerOptions)| {
            let mut o = local.clone();
            f(&mut o);
            o.check()
        };
        let e = with(&|o| o.tls_cert = Some("c.pem".into())).unwrap_err();
        assert!(matches!(e, Error::Tls(TlsSetup::CertWithoutKey)), "{e}");
        let e = with(&|o| o.tls_key = Some("k.pem".into())).unwrap_err();
        assert!(matches!(e, Error::Tls(TlsSetup::KeyWithoutCert)), "{e}");
        let e = with(&|o| o.tls_client_ca = Some("ca.pem".into())).unwrap_err();
        assert!(
            matches!(e, Error::Tls(TlsSetup::ClientCaWithoutCert)),
            "{e}"
        );
        let e = with(&|o| o.entitlements = vec!["root".into()]).unwrap_err();
        assert!(matches!(e, Error::UnknownEntitlement { .. }), "{e}");
        let anywhere: SocketAddr = "0.0.0.0:0".parse().unwrap();
        let e = with(&|o| o.listen = anywhere).unwrap_err();
        assert!(matches!(e, Error::Unauthenticated { .. }), "{e}");
        assert!(!e.to_string().contains("--"), "library terms: {e}");
        let e = with(&|o| {
            o.listen = anywhere;
            o.token_file = Some("token".into());
        })
        .unwrap_err();
        assert!(matches!(e, Error::PlainTcp { .. }), "{e}");
        assert!(!e.to_string().contains("--"), "library terms: {e}");
        assert!(
            with(&|o| {
                o.listen = anywhere;
                o.token_file = Some("token".into());
                o.insecure = true;
            })
            .is_ok()
        );
    }
}

//! RUN confinement: seccomp, capability sets, the isolated default network and its entitlement.
//!
//! Each check runs inside a real step and compares with what Docker gives a container.

use std::io::{BufRead, BufReader, Write};
use std::net::TcpListener;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::{Duration, Instant};

use crate::support::TestRoot;

/// Docker's default capability set as the kernel prints it (`CapEff` of root in a container).
const DOCKER_CAPS: &str = "00000000a80425fb";

/// The `Cap*` lines of a `/proc/self/status`, as (name, mask).
fn caps(status: &str) -> Vec<(String, String)> {
    status
        .lines()
        .filter_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.starts_with("Cap")
                .then(|| (k.to_string(), v.trim().to_string()))
        })
        .collect()
}

fn expected(inh: &str, prm: &str, eff: &str, bnd: &str, amb: &str) -> Vec<(String, String)> {
    [
        ("CapInh", inh),
        ("CapPrm", prm),
        ("CapEff", eff),
        ("CapBnd", bnd),
        ("CapAmb", amb),
    ]
    .iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect()
}

const NONE: &str = "0000000000000000";

#[test]
fn a_sandboxed_step_has_dockers_seccomp_filter_and_cannot_unshare() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN grep '^Seccomp:' /proc/self/status > /seccomp \\\n\
             && (unshare -U -r -m true 2>/unshare.err && echo allowed || echo denied) > /unshare \\\n\
             && (unshare -m true 2>/dev/null && echo allowed || echo denied) > /unshare-mount \\\n\
             && (unshare -n true 2>/dev/null && echo allowed || echo denied) > /unshare-net\n\
             USER app\n\
             RUN grep '^Seccomp:' /proc/self/status > /tmp/seccomp-app \\\n\
             && (unshare -U -r -m true 2>/dev/null && echo allowed || echo denied) > /tmp/unshare-app\n",
        )],
    );
    t.build(&ctx, &["-t", "seccomp:1"]).ok();
    let fs = t.export("seccomp:1");
    assert_eq!(
        fs.text("seccomp"),
        "Seccomp:\t2\n",
        "a seccomp filter is on"
    );
    assert_eq!(
        fs.text("unshare"),
        "denied\n",
        "unshare -U -r -m must fail as under Docker"
    );
    assert!(
        fs.text("unshare.err").contains("Operation not permitted"),
        "EPERM, as Docker's profile returns: {}",
        fs.text("unshare.err")
    );
    assert_eq!(fs.text("unshare-mount"), "denied\n");
    assert_eq!(fs.text("unshare-net"), "denied\n");
    assert_eq!(fs.text("tmp/seccomp-app"), "Seccomp:\t2\n");
    assert_eq!(fs.text("tmp/unshare-app"), "denied\n");
    t.finish();
}

#[test]
fn an_insecure_step_is_unconfined() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN --security=insecure grep '^Seccomp:' /proc/self/status > /seccomp \\\n\
             && (unshare -U -r -m true && echo allowed || echo denied) > /unshare\n",
        )],
    );
    t.build(
        &ctx,
        &["-t", "unconfined:1", "--allow", "security.insecure"],
    )
    .ok();
    let fs = t.export("unconfined:1");
    assert_eq!(fs.text("seccomp"), "Seccomp:\t0\n");
    assert_eq!(fs.text("unshare"), "allowed\n");
    t.finish();
}

#[test]
fn capability_sets_match_dockers_for_root_and_for_other_users() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN mkdir -m 1777 /out && grep '^Cap' /proc/self/status > /out/root\n\
             USER app\n\
             RUN grep '^Cap' /proc/self/status > /out/app \\\n\
             && (chown app /etc/passwd 2>/dev/null && echo chowned || echo denied) > /out/app-chown\n\
             USER 1000:1000\n\
             RUN grep '^Cap' /proc/self/status > /out/uid\n\
             USER nobody\n\
             RUN sh -c 'grep ^Cap /proc/self/status' > /out/nobody-child\n",
        )],
    );
    t.build(&ctx, &["-t", "caps:1"]).ok();
    let fs = t.export("caps:1");
    assert_eq!(
        caps(&fs.text("out/root")),
        expected(NONE, DOCKER_CAPS, DOCKER_CAPS, DOCKER_CAPS, NONE),
        "root: Docker's default set, nothing inheritable or ambient"
    );
    let user = expected(NONE, NONE, NONE, DOCKER_CAPS, NONE);
    assert_eq!(caps(&fs.text("out/app")), user, "USER app");
    assert_eq!(caps(&fs.text("out/uid")), user, "USER 1000:1000");
    assert_eq!(
        caps(&fs.text("out/nobody-child")),
        user,
        "a child process of a non-root user inherits nothing either"
    );
    assert_eq!(fs.text("out/app-chown"), "denied\n");
    t.finish();
}

/// A TCP service on the host's 127.0.0.1 that answers every connection with a secret and
/// counts them; stopped when dropped.
struct HostService {
    port: u16,
    hits: Arc<AtomicUsize>,
    stop: Arc<AtomicBool>,
    thread: Option<std::thread::JoinHandle<()>>,
}

const SECRET: &str = "host-loopback-secret-7f3a";

impl HostService {
    fn start() -> Self {
        let listener = TcpListener::bind("127.0.0.1:0").unwrap();
        listener.set_nonblocking(true).unwrap();
        let port = listener.local_addr().unwrap().port();
        let hits = Arc::new(AtomicUsize::new(0));
        let stop = Arc::new(AtomicBool::new(false));
        let (h, s) = (hits.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            // Bounded: at most ten minutes, whatever happens to the test.
            let deadline = Instant::now() + Duration::from_secs(600);
            while !s.load(Ordering::Relaxed) && Instant::now() < deadline {
                match listener.accept() {
                    Ok((mut conn, _)) => {
                        h.fetch_add(1, Ordering::Relaxed);
                        let _ = conn.write_all(format!("{SECRET}\n").as_bytes());
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(20)),
                }
            }
        });
        HostService {
            port,
            hits,
            stop,
            thread: Some(thread),
        }
    }

    fn hits(&self) -> usize {
        self.hits.load(Ordering::Relaxed)
    }
}

impl Drop for HostService {
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        if let Some(t) = self.thread.take() {
            let _ = t.join();
        }
    }
}

/// Nothing of the build's network namespace is left under the root.
fn no_netns_left(t: &TestRoot) {
    let dir = t.root().join("netns");
    if dir.exists() {
        let left: Vec<_> = std::fs::read_dir(&dir).unwrap().flatten().collect();
        assert!(left.is_empty(), "network namespaces left behind: {left:?}");
    }
}

/// slirp4netns processes serving a namespace under `root`.
fn slirps_of(root: &std::path::Path) -> Vec<String> {
    let ps = Command::new("ps").args(["-eo", "args"]).output().unwrap();
    String::from_utf8_lossy(&ps.stdout)
        .lines()
        .filter(|l| l.contains("slirp4netns") && l.contains(root.to_str().unwrap()))
        .map(str::to_string)
        .collect()
}

#[test]
fn the_default_network_cannot_reach_the_hosts_loopback() {
    let service = HostService::start();
    let port = service.port;
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox:local\n\
                 RUN mkdir /out \\\n\
                 && (nc -w 3 127.0.0.1 {port} </dev/null > /out/lo 2>&1; echo $? >> /out/lo) \\\n\
                 && (nc -w 3 10.0.2.2 {port} </dev/null > /out/gw 2>&1; echo $? >> /out/gw) \\\n\
                 && ls /sys/class/net > /out/ifaces && cat /proc/net/route > /out/route \\\n\
                 && ip -4 addr show tap0 > /out/addr && cat /etc/resolv.conf > /out/resolv\n\
                 RUN nc -w 3 127.0.0.1 {port} </dev/null > /out/second 2>&1; echo $? >> /out/second\n"
            ),
        )],
    );
    t.build(&ctx, &["-t", "isolated:1"]).ok();
    let fs = t.export("isolated:1");
    for f in ["out/lo", "out/gw", "out/second"] {
        let text = fs.text(f);
        assert!(
            !text.contains(SECRET),
            "{f}: the step reached the host: {text}"
        );
        assert!(!text.ends_with("\n0\n"), "{f}: nc succeeded: {text}");
    }
    assert_eq!(service.hits(), 0, "the host's service was reached");
    // Outbound access: slirp4netns's tap device, address and default route via 10.0.2.2.
    let ifaces: Vec<String> = fs.text("out/ifaces").lines().map(str::to_string).collect();
    assert_eq!(ifaces, vec!["lo", "tap0"], "an isolated namespace");
    let route = fs.text("out/route");
    assert!(
        route
            .lines()
            .any(|l| l.split_whitespace().take(3).collect::<Vec<_>>()
                == ["tap0", "00000000", "0202000A"]),
        "default route via 10.0.2.2 on tap0: {route}"
    );
    assert!(
        fs.text("out/addr").contains("inet 10.0.2.100/24"),
        "{}",
        fs.text("out/addr")
    );
    let resolv = fs.text("out/resolv");
    assert!(
        resolv.contains("nameserver") && !resolv.contains("nameserver 127."),
        "a reachable resolver: {resolv}"
    );
    assert!(
        slirps_of(&t.root()).is_empty(),
        "slirp4netns outlived the build"
    );
    no_netns_left(&t);
    t.finish();
}

#[test]
fn host_network_needs_the_entitlement_and_then_reaches_the_hosts_loopback() {
    let service = HostService::start();
    let port = service.port;
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            &format!(
                "FROM busybox:local\n\
                 RUN echo before > /before\n\
                 RUN --network=host nc -w 3 127.0.0.1 {port} </dev/null > /reached\n"
            ),
        )],
    );
    let r = t.build(&ctx, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("--allow network.host") && r.stderr.contains("Dockerfile:3"),
        "{}",
        r.stderr
    );
    assert_eq!(r.count("started"), 0, "nothing runs before the refusal");
    assert_eq!(service.hits(), 0);
    // The same refusal for `--allow` of another entitlement only.
    let r = t.build(&ctx, &["--allow", "security.insecure"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(r.stderr.contains("--allow network.host"), "{}", r.stderr);

    t.build(&ctx, &["-t", "hostnet:1", "--allow", "network.host"])
        .ok();
    assert_eq!(t.export("hostnet:1").text("reached"), format!("{SECRET}\n"));
    assert!(service.hits() >= 1);
    t.finish();
}

#[test]
fn a_killed_builds_network_is_gone_with_it() {
    let t = TestRoot::with_busybox();
    let marker = format!("netns-kill-{}", std::process::id());
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            &format!("FROM busybox:local\nRUN echo {marker} && sleep 5\n"),
        )],
    );
    let mut child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress=json"])
        .arg(&ctx)
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let err = child.stderr.take().unwrap();
    let mut seen = Vec::new();
    for l in BufReader::new(err).lines() {
        let l = l.unwrap();
        let hit = l.contains(&marker) && l.contains("\"log\"");
        seen.push(l);
        if hit {
            break;
        }
    }
    assert!(seen.last().is_some_and(|l| l.contains(&marker)), "{seen:?}");
    let netns = t.root().join("netns");
    assert_eq!(std::fs::read_dir(&netns).unwrap().count(), 1);
    assert_eq!(slirps_of(&t.root()).len(), 1, "one slirp4netns per build");
    // SIGKILL: none of xbuild's own cleanup runs; slirp4netns sees its exit fd close.
    child.kill().unwrap();
    child.wait().unwrap();
    let deadline = Instant::now() + Duration::from_secs(10);
    while !slirps_of(&t.root()).is_empty() && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(50));
    }
    assert!(
        slirps_of(&t.root()).is_empty(),
        "slirp4netns outlived a killed xbuild"
    );
    // The next command cleans up after the dead session.
    let ctx2 = t.context("ctx2", &[("Dockerfile", "FROM busybox:local\nRUN true\n")]);
    t.build(&ctx2, &[]).ok();
    no_netns_left(&t);
    t.finish();
}

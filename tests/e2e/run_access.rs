//! What a RUN step may reach beyond its sandbox: `--security=insecure` (behind the
//! `security.insecure` entitlement) and the caller's SSH agent (`--mount=type=ssh`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};

use crate::support::TestRoot;

#[test]
fn insecure_runs_need_the_entitlement_and_get_every_capability() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN mkdir -p /mnt/t && (mount -t tmpfs none /mnt/t 2>/dev/null && echo mounted || echo denied) > /sandbox\n\
             RUN --security=insecure mount -t tmpfs none /mnt/t && touch /mnt/t/x && umount /mnt/t \\\n\
             && grep CapEff /proc/self/status > /capeff && grep ' /sys ' /proc/mounts > /sys-mount\n",
        )],
    );
    let r = t.build(&ctx, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr.contains("--allow security.insecure") && r.stderr.contains("Dockerfile:3"),
        "{}",
        r.stderr
    );
    assert_eq!(r.count("started"), 0, "nothing runs before the refusal");

    t.build(&ctx, &["-t", "insecure:1", "--allow", "security.insecure"])
        .ok();
    let fs = t.export("insecure:1");
    assert_eq!(
        fs.text("sandbox"),
        "denied\n",
        "the default sandbox cannot mount"
    );
    let caps = fs.text("capeff");
    let caps = u64::from_str_radix(caps.split_whitespace().nth(1).unwrap(), 16).unwrap();
    const CAP_SYS_ADMIN: u64 = 1 << 21;
    assert_ne!(caps & CAP_SYS_ADMIN, 0, "CapEff {caps:x}");
    let sys = fs.text("sys-mount");
    assert!(
        sys.split_whitespace().nth(3).unwrap().starts_with("rw"),
        "{sys}"
    );
    t.finish();
}

/// Issue 16 #7: RUN could write `/etc/hosts` and `/etc/resolv.conf`; BuildKit binds both
/// read-only (also for insecure steps), so a write fails and neither reaches a layer, while
/// `/etc/hostname` is the image's own file.
#[test]
fn run_cannot_write_etc_hosts_or_resolv_conf_and_neither_reaches_a_layer() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN (echo '1.2.3.4 x' >> /etc/hosts && echo wrote || echo refused) > /hosts-result\n\
             RUN (echo 'nameserver 9.9.9.9' > /etc/resolv.conf && echo wrote || echo refused) > /resolv-result\n\
             RUN --security=insecure (echo '1.2.3.4 x' >> /etc/hosts && echo wrote || echo refused) > /insecure-result\n\
             RUN echo mine > /etc/hostname\n",
        )],
    );
    t.build(&ctx, &["-t", "etc:1", "--allow", "security.insecure"])
        .ok();
    let fs = t.export("etc:1");
    assert_eq!(fs.text("hosts-result"), "refused\n");
    assert_eq!(fs.text("resolv-result"), "refused\n");
    assert_eq!(fs.text("insecure-result"), "refused\n");
    assert_eq!(fs.text("etc/hostname"), "mine\n");
    for p in ["etc/hosts", "etc/resolv.conf"] {
        assert!(
            !fs.has(p) || fs.text(p).is_empty(),
            "{p} reached the image: {:?}",
            fs.text(p)
        );
    }
    t.finish();
}

/// An `ssh-agent` of the test's own, killed when dropped.
struct Agent {
    child: Child,
    socket: PathBuf,
}

impl Drop for Agent {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path) -> Agent {
    let socket = dir.join("agent.sock");
    let child = Command::new("ssh-agent")
        .arg("-D")
        .arg("-a")
        .arg(&socket)
        .stdout(Stdio::null())
        .spawn()
        .expect("ssh-agent (openssh-client) is installed");
    let agent = Agent { child, socket };
    for _ in 0..200 {
        if agent.socket.exists() {
            return agent;
        }
        std::thread::sleep(std::time::Duration::from_millis(10));
    }
    panic!("ssh-agent did not create {}", agent.socket.display());
}

/// Copies `binary` and the shared libraries it loads (per `ldd`) into `dest`, flat, so that
/// `dest/ld.so --library-path dest dest/NAME` runs it in a rootfs without them.
fn bundle(binary: &Path, dest: &Path) {
    std::fs::create_dir_all(dest).unwrap();
    let out = Command::new("ldd").arg(binary).output().unwrap();
    assert!(out.status.success());
    for line in String::from_utf8(out.stdout).unwrap().lines() {
        let path = line
            .split("=>")
            .last()
            .unwrap()
            .split_whitespace()
            .next()
            .unwrap_or("");
        if !path.starts_with('/') {
            continue;
        }
        let name = if line.contains("ld-linux") {
            "ld.so".to_string()
        } else {
            Path::new(path)
                .file_name()
                .unwrap()
                .to_string_lossy()
                .into_owned()
        };
        std::fs::copy(path, dest.join(name)).unwrap();
    }
    std::fs::copy(binary, dest.join(binary.file_name().unwrap())).unwrap();
}

#[test]
fn ssh_mount_forwards_the_callers_agent() {
    let t = TestRoot::with_busybox();
    let agent = start_agent(t.dir.path());
    let key = t.path("id_ed25519");
    let st = Command::new("ssh-keygen")
        .args([
            "-q",
            "-t",
            "ed25519",
            "-N",
            "",
            "-C",
            "xbuild-e2e-key",
            "-f",
        ])
        .arg(&key)
        .status()
        .unwrap();
    assert!(st.success());
    let st = Command::new("ssh-add")
        .arg("-q")
        .arg(&key)
        .env("SSH_AUTH_SOCK", &agent.socket)
        .status()
        .unwrap();
    assert!(st.success());
    let fingerprint = String::from_utf8(
        Command::new("ssh-keygen")
            .arg("-lf")
            .arg(key.with_extension("pub"))
            .output()
            .unwrap()
            .stdout,
    )
    .unwrap();
    let fingerprint = fingerprint.split_whitespace().nth(1).unwrap().to_string();

    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN --mount=type=ssh --mount=type=bind,source=tools,target=/tools \\\n\
             test -S \"$SSH_AUTH_SOCK\" && /tools/ld.so --library-path /tools /tools/ssh-add -l > /keys\n",
        )],
    );
    bundle(Path::new("/usr/bin/ssh-add"), &ctx.join("tools"));
    let sock = agent.socket.to_str().unwrap().to_string();
    let sock = sock.as_str();
    let args = [
        "build",
        "--progress=plain",
        "--ssh",
        "default",
        "-t",
        "ssh:1",
        ctx.to_str().unwrap(),
    ];
    let r = t.xbuild_with(&[("SSH_AUTH_SOCK", sock)], "", &args);
    r.ok();
    let keys = t.export("ssh:1").text("keys");
    assert!(
        keys.contains(&fingerprint) && keys.contains("xbuild-e2e-key"),
        "ssh-add -l in the step: {keys}"
    );

    // With the agent gone the same step cannot list keys: the check above went through it.
    drop(agent);
    let r = t.xbuild_with(
        &[("SSH_AUTH_SOCK", sock)],
        "",
        &[
            "build",
            "--progress=plain",
            "--no-cache",
            "--ssh",
            "default",
            ctx.to_str().unwrap(),
        ],
    );
    assert_eq!(r.code, 1, "{}", r.stderr);
    t.finish();
}

//! The OCI runtime `config.json` of a RUN step, as Docker's builder makes it.

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilities, LinuxCapabilitiesBuilder, LinuxDeviceBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use std::collections::HashSet;
use std::path::Path;

use crate::Error;
use crate::user::Identity;

/// The options of the `/etc/resolv.conf` and `/etc/hosts` binds (BuildKit's `withROBind`).
const ETC_BIND: &[&str] = &["nosuid", "noexec", "nodev", "rbind", "ro"];

/// The hostname RUN steps see, as in BuildKit.
pub const HOSTNAME: &str = "buildkitsandbox";

/// Docker's default capability set: a step's bounding set, and root's permitted and effective
/// sets (`CapEff: 00000000a80425fb`).
pub(crate) const CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::Fsetid,
    Capability::Fowner,
    Capability::Mknod,
    Capability::NetRaw,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setfcap,
    Capability::Setpcap,
    Capability::NetBindService,
    Capability::SysChroot,
    Capability::Kill,
    Capability::AuditWrite,
];

/// Every capability, in the kernel's numbering (`CAP_CHOWN` is 0).
const ALL_CAPS: &[Capability] = &[
    Capability::Chown,
    Capability::DacOverride,
    Capability::DacReadSearch,
    Capability::Fowner,
    Capability::Fsetid,
    Capability::Kill,
    Capability::Setgid,
    Capability::Setuid,
    Capability::Setpcap,
    Capability::LinuxImmutable,
    Capability::NetBindService,
    Capability::NetBroadcast,
    Capability::NetAdmin,
    Capability::NetRaw,
    Capability::IpcLock,
    Capability::IpcOwner,
    Capability::SysModule,
    Capability::SysRawio,
    Capability::SysChroot,
    Capability::SysPtrace,
    Capability::SysPacct,
    Capability::SysAdmin,
    Capability::SysBoot,
    Capability::SysNice,
    Capability::SysResource,
    Capability::SysTime,
    Capability::SysTtyConfig,
    Capability::Mknod,
    Capability::Lease,
    Capability::AuditWrite,
    Capability::AuditControl,
    Capability::Setfcap,
    Capability::MacOverride,
    Capability::MacAdmin,
    Capability::Syslog,
    Capability::WakeAlarm,
    Capability::BlockSuspend,
    Capability::AuditRead,
    Capability::Perfmon,
    Capability::Bpf,
    Capability::CheckpointRestore,
];

/// The capabilities xbuild itself has (`CapEff` of `/proc/self/status`), which is what
/// `RUN --security=insecure` gets, as BuildKit's insecure mode.
fn own_caps() -> Result<HashSet<Capability>, Error> {
    let status = std::fs::read_to_string("/proc/self/status")
        .map_err(|e| Error::OwnCapabilities(e.to_string()))?;
    let bits = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| Error::OwnCapabilities("it has no CapEff line".into()))?;
    Ok(ALL_CAPS
        .iter()
        .enumerate()
        .filter(|(i, _)| bits & (1u64 << i) != 0)
        .map(|(_, c)| *c)
        .collect())
}

/// Devices `RUN --security=insecure` also gets, as BuildKit's insecure mode adds them:
/// (path, major, minor).
const INSECURE_DEVICES: &[(&str, i64, i64)] = &[
    ("/dev/kmsg", 1, 11),
    ("/dev/cuse", 10, 203),
    ("/dev/fuse", 10, 229),
];

const MASKED: &[&str] = &[
    "/proc/asound",
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/devices/virtual/powercap",
];

const READONLY: &[&str] = &[
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];

/// What a RUN step needs besides its rootfs.
#[derive(Clone, Debug)]
pub struct ExecSpec {
    /// argv.
    pub args: Vec<String>,
    /// `KEY=value` environment.
    pub env: Vec<String>,
    /// Working directory (absolute).
    pub cwd: String,
    /// `user[:group]` to resolve in the rootfs.
    pub user: String,
    /// The network.
    pub network: xbuild_llb::NetworkMode,
    /// `RUN --mount`s, resolved to the host, in order.
    pub mounts: Vec<ExecMount>,
    /// `RUN --security=insecure`: every capability, writable /sys and /proc, nothing masked,
    /// every device allowed (BuildKit's insecure mode; the caller checks the entitlement).
    pub insecure: bool,
}

/// A `RUN --mount` as the runtime mounts it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum ExecMount {
    /// A host file or directory bind-mounted at `target`.
    Bind {
        /// Where it appears in the container (absolute).
        target: String,
        /// The host path (already resolved: no symlink left to follow).
        source: std::path::PathBuf,
        /// Read-only.
        readonly: bool,
    },
    /// A fresh tmpfs at `target`.
    Tmpfs {
        /// Where it appears in the container (absolute).
        target: String,
        /// Size limit in bytes.
        size: Option<u64>,
    },
}

impl ExecMount {
    /// Where the mount appears in the container.
    pub fn target(&self) -> &str {
        match self {
            ExecMount::Bind { target, .. } | ExecMount::Tmpfs { target, .. } => target,
        }
    }
}

fn spec_err(e: impl std::fmt::Display) -> Error {
    Error::Spec {
        part: "process, mounts and namespaces",
        reason: e.to_string(),
    }
}

/// Every character and block device allowed, and the devices BuildKit's insecure mode adds.
fn insecure_devices(linux: LinuxBuilder) -> Result<LinuxBuilder, Error> {
    let rules = [LinuxDeviceType::C, LinuxDeviceType::B]
        .into_iter()
        .map(|t| {
            LinuxDeviceCgroupBuilder::default()
                .allow(true)
                .typ(t)
                .access("rwm")
                .build()
                .map_err(spec_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let resources = LinuxResourcesBuilder::default()
        .devices(rules)
        .build()
        .map_err(spec_err)?;
    let devices = INSECURE_DEVICES
        .iter()
        .map(|(path, major, minor)| {
            LinuxDeviceBuilder::default()
                .path(*path)
                .typ(LinuxDeviceType::C)
                .major(*major)
                .minor(*minor)
                .file_mode(0o666u32)
                .uid(0u32)
                .gid(0u32)
                .build()
                .map_err(spec_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    Ok(linux.resources(resources).devices(devices))
}

/// The capability sets of a step, every one of them written out (the OCI spec crate fills a
/// set left out with `CAP_AUDIT_WRITE`, `CAP_KILL` and `CAP_NET_BIND_SERVICE`, which is how
/// non-root users once kept them). As Docker and BuildKit: root gets Docker's default set in
/// bounding, permitted and effective; any other user only the bounding set, so that it holds
/// none until it runs a setuid or file-capability binary (`sudo`, `su`, `ping`), which may
/// grant it capabilities within the bounding set, as under Docker and BuildKit (whose
/// executor sets `WithNewPrivileges`: `no_new_privileges` is off). Nothing is inheritable or
/// ambient.
/// `insecure` (`RUN --security=insecure`) gets xbuild's own capabilities in every set.
fn capabilities(insecure: bool, uid: u32) -> Result<LinuxCapabilities, Error> {
    let none = HashSet::new;
    let (bounding, held, passed) = if insecure {
        let own = own_caps()?;
        (own.clone(), own.clone(), own)
    } else {
        let default: HashSet<Capability> = CAPS.iter().copied().collect();
        let held = if uid == 0 { default.clone() } else { none() };
        (default, held, none())
    };
    LinuxCapabilitiesBuilder::default()
        .bounding(bounding)
        .permitted(held.clone())
        .effective(held)
        .inheritable(passed.clone())
        .ambient(passed)
        .build()
        .map_err(spec_err)
}

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, Error> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

/// The network namespace of a step.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum NetNs<'a> {
    /// The host's (`--network=host`).
    Host,
    /// A new one with only a loopback interface (`--network=none`).
    Loopback,
    /// The namespace bind-mounted at this path (the isolated default network).
    Join(&'a Path),
}

/// The runtime spec for `exec` on `rootfs`, with `/etc` files from `etc_dir`, in the network
/// namespace `net`.
pub(crate) fn build(
    rootfs: &Path,
    exec: &ExecSpec,
    id: &Identity,
    etc_dir: &Path,
    net: NetNs<'_>,
) -> Result<Spec, Error> {
    let capabilities = capabilities(exec.insecure, id.uid)?;
    let user = UserBuilder::default()
        .uid(id.uid)
        .gid(id.gid)
        .additional_gids(id.additional_gids.clone())
        .build()
        .map_err(spec_err)?;
    let rlimit = PosixRlimitBuilder::default()
        .typ(PosixRlimitType::RlimitNofile)
        .hard(1024u64)
        .soft(1024u64)
        .build()
        .map_err(spec_err)?;
    let process = ProcessBuilder::default()
        .terminal(false)
        .user(user)
        .args(exec.args.clone())
        .env(exec.env.clone())
        .cwd(exec.cwd.clone())
        .capabilities(capabilities)
        .rlimits(vec![rlimit])
        // BuildKit's executor (`oci.WithNewPrivileges`) and `docker run` leave it off: a
        // `USER app` step may still `sudo`.
        .no_new_privileges(false)
        .build()
        .map_err(spec_err)?;
    let etc = |name: &str| etc_dir.join(name).display().to_string();
    let mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"])?,
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "strictatime", "mode=755", "size=65536k"],
        )?,
        mount(
            "/dev/pts",
            "devpts",
            "devpts",
            &[
                "nosuid",
                "noexec",
                "newinstance",
                "ptmxmode=0666",
                "mode=0620",
                "gid=5",
            ],
        )?,
        mount(
            "/dev/shm",
            "tmpfs",
            "shm",
            &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
        )?,
        mount(
            "/dev/mqueue",
            "mqueue",
            "mqueue",
            &["nosuid", "noexec", "nodev"],
        )?,
        mount(
            "/sys",
            "sysfs",
            "sysfs",
            &[
                "nosuid",
                "noexec",
                "nodev",
                if exec.insecure { "rw" } else { "ro" },
            ],
        )?,
        // Read-only, as BuildKit's `withROBind`: a step cannot change them, and neither reaches
        // a layer. `/etc/hostname` is the image's own file, as in BuildKit.
        mount("/etc/resolv.conf", "bind", &etc("resolv.conf"), ETC_BIND)?,
        mount("/etc/hosts", "bind", &etc("hosts"), ETC_BIND)?,
    ];
    let mut mounts = mounts;
    for m in &exec.mounts {
        mounts.push(match m {
            ExecMount::Bind {
                target,
                source,
                readonly,
            } => mount(
                target,
                "bind",
                &source.display().to_string(),
                &["rbind", if *readonly { "ro" } else { "rw" }],
            )?,
            ExecMount::Tmpfs { target, size } => {
                let size = size.map(|s| format!("size={s}"));
                let mut opts = vec!["nosuid", "nodev", "mode=1777"];
                if let Some(s) = &size {
                    opts.push(s);
                }
                mount(target, "tmpfs", "tmpfs", &opts)?
            }
        });
    }
    let mut ns = vec![
        (LinuxNamespaceType::Pid, None),
        (LinuxNamespaceType::Ipc, None),
        (LinuxNamespaceType::Uts, None),
        (LinuxNamespaceType::Mount, None),
    ];
    match net {
        NetNs::Host => {}
        NetNs::Loopback => ns.push((LinuxNamespaceType::Network, None)),
        NetNs::Join(path) => ns.push((LinuxNamespaceType::Network, Some(path))),
    }
    let namespaces = ns
        .into_iter()
        .map(|(t, path)| {
            let b = LinuxNamespaceBuilder::default().typ(t);
            match path {
                Some(p) => b.path(p),
                None => b,
            }
            .build()
            .map_err(spec_err)
        })
        .collect::<Result<Vec<_>, _>>()?;
    let listed = |paths: &[&str]| -> Vec<String> {
        if exec.insecure {
            Vec::new()
        } else {
            paths.iter().map(|s| s.to_string()).collect()
        }
    };
    let mut linux = LinuxBuilder::default()
        .namespaces(namespaces)
        .masked_paths(listed(MASKED))
        .readonly_paths(listed(READONLY));
    if exec.insecure {
        // Unconfined, as BuildKit's insecure mode.
        linux = insecure_devices(linux)?;
    } else {
        linux = linux.seccomp(crate::seccomp::default_profile(CAPS)?);
    }
    let linux = linux.build().map_err(spec_err)?;
    SpecBuilder::default()
        .version("1.0.2-dev")
        .root(
            RootBuilder::default()
                .path(rootfs)
                .readonly(false)
                .build()
                .map_err(spec_err)?,
        )
        .hostname(HOSTNAME)
        .process(process)
        .mounts(mounts)
        .linux(linux)
        .build()
        .map_err(spec_err)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn exec(insecure: bool) -> ExecSpec {
        ExecSpec {
            args: vec!["/bin/true".into()],
            env: vec![],
            cwd: "/".into(),
            user: String::new(),
            network: xbuild_llb::NetworkMode::Default,
            mounts: vec![],
            insecure,
        }
    }

    fn spec_for(uid: u32, insecure: bool, net: NetNs<'_>) -> serde_json::Value {
        let id = Identity {
            uid,
            gid: uid,
            additional_gids: vec![],
        };
        let spec = build(
            Path::new("/rootfs"),
            &exec(insecure),
            &id,
            Path::new("/bundle"),
            net,
        )
        .unwrap();
        serde_json::to_value(&spec).unwrap()
    }

    /// The capability sets as the kernel's bit masks (`CapBnd` of `/proc/PID/status`).
    fn masks(spec: &serde_json::Value) -> [(String, u64); 5] {
        [
            "bounding",
            "permitted",
            "effective",
            "inheritable",
            "ambient",
        ]
        .map(|set| {
            let names = spec["process"]["capabilities"][set]
                .as_array()
                .unwrap_or_else(|| panic!("{set} is not written out: {spec}"));
            let mask = names.iter().fold(0u64, |m, n| {
                let bit = ALL_CAPS
                    .iter()
                    .position(|c| serde_json::to_value(c).unwrap() == *n)
                    .unwrap();
                m | 1 << bit
            });
            (set.to_string(), mask)
        })
    }

    /// Docker's `CapEff` for root.
    const DOCKER_ROOT: u64 = 0xa80425fb;

    #[test]
    fn root_gets_dockers_default_set_and_nothing_inheritable_or_ambient() {
        let m = masks(&spec_for(0, false, NetNs::Loopback));
        assert_eq!(
            m,
            [
                ("bounding".into(), DOCKER_ROOT),
                ("permitted".into(), DOCKER_ROOT),
                ("effective".into(), DOCKER_ROOT),
                ("inheritable".into(), 0),
                ("ambient".into(), 0),
            ]
        );
    }

    #[test]
    fn non_root_user_keeps_no_ambient_inheritable_or_effective_capabilities() {
        let m = masks(&spec_for(1000, false, NetNs::Loopback));
        assert_eq!(
            m,
            [
                ("bounding".into(), DOCKER_ROOT),
                ("permitted".into(), 0),
                ("effective".into(), 0),
                ("inheritable".into(), 0),
                ("ambient".into(), 0),
            ]
        );
    }

    #[test]
    fn setuid_binaries_keep_working_as_under_buildkit_no_new_privileges_is_off() {
        for uid in [0, 1000] {
            let spec = spec_for(uid, false, NetNs::Loopback);
            assert_eq!(
                spec["process"].get("noNewPrivileges"),
                Some(&serde_json::json!(false)),
                "{spec}"
            );
        }
    }

    #[test]
    fn sandboxed_steps_get_dockers_seccomp_profile_and_insecure_ones_none() {
        let spec = spec_for(0, false, NetNs::Loopback);
        let seccomp = &spec["linux"]["seccomp"];
        assert_eq!(seccomp["defaultAction"], "SCMP_ACT_ERRNO", "{seccomp}");
        assert_eq!(seccomp["defaultErrnoRet"], 1);
        let insecure = spec_for(0, true, NetNs::Loopback);
        assert!(insecure["linux"].get("seccomp").is_none(), "{insecure}");
    }

    #[test]
    fn network_namespaces() {
        let net = |spec: &serde_json::Value| -> Vec<serde_json::Value> {
            spec["linux"]["namespaces"]
                .as_array()
                .unwrap()
                .iter()
                .filter(|n| n["type"] == "network")
                .cloned()
                .collect()
        };
        assert!(net(&spec_for(0, false, NetNs::Host)).is_empty());
        assert_eq!(
            net(&spec_for(0, false, NetNs::Loopback)),
            vec![serde_json::json!({"type": "network"})]
        );
        assert_eq!(
            net(&spec_for(0, false, NetNs::Join(Path::new("/x/netns/n")))),
            vec![serde_json::json!({"type": "network", "path": "/x/netns/n"})]
        );
    }
}

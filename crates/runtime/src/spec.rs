//! The OCI runtime `config.json` of a RUN step, as Docker's builder makes it.

use oci_spec::runtime::{
    Capability, LinuxBuilder, LinuxCapabilitiesBuilder, LinuxDeviceBuilder,
    LinuxDeviceCgroupBuilder, LinuxDeviceType, LinuxNamespaceBuilder, LinuxNamespaceType,
    LinuxResourcesBuilder, Mount, MountBuilder, PosixRlimitBuilder, PosixRlimitType,
    ProcessBuilder, RootBuilder, Spec, SpecBuilder, UserBuilder,
};
use std::collections::HashSet;
use std::path::Path;

use xbuild_llb::NetworkMode;

use crate::Error;
use crate::user::Identity;

/// The hostname RUN steps see, as in BuildKit.
pub const HOSTNAME: &str = "buildkitsandbox";

/// Docker's default capability set.
const CAPS: &[Capability] = &[
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
        .map_err(|e| Error::Runtime(format!("reading /proc/self/status: {e}")))?;
    let bits = status
        .lines()
        .find_map(|l| l.strip_prefix("CapEff:"))
        .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        .ok_or_else(|| Error::Runtime("/proc/self/status has no CapEff line".into()))?;
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
    pub network: NetworkMode,
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
    Error::Runtime(format!("building the OCI runtime spec: {e}"))
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

fn mount(dest: &str, typ: &str, source: &str, options: &[&str]) -> Result<Mount, Error> {
    MountBuilder::default()
        .destination(dest)
        .typ(typ)
        .source(source)
        .options(options.iter().map(|s| s.to_string()).collect::<Vec<_>>())
        .build()
        .map_err(spec_err)
}

/// The runtime spec for `exec` on `rootfs`, with `/etc` files from `etc_dir`.
pub(crate) fn build(
    rootfs: &Path,
    exec: &ExecSpec,
    id: &Identity,
    etc_dir: &Path,
) -> Result<Spec, Error> {
    let caps: HashSet<Capability> = if exec.insecure {
        own_caps()?
    } else {
        CAPS.iter().copied().collect()
    };
    let mut capabilities = LinuxCapabilitiesBuilder::default();
    if exec.insecure {
        capabilities = capabilities.ambient(caps.clone()).inheritable(caps.clone());
    }
    let capabilities = capabilities
        .bounding(caps.clone())
        .effective(caps.clone())
        .permitted(caps)
        .build()
        .map_err(spec_err)?;
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
        .no_new_privileges(true)
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
        mount(
            "/etc/resolv.conf",
            "bind",
            &etc("resolv.conf"),
            &["rbind", "rw"],
        )?,
        mount("/etc/hosts", "bind", &etc("hosts"), &["rbind", "rw"])?,
        mount("/etc/hostname", "bind", &etc("hostname"), &["rbind", "rw"])?,
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
        LinuxNamespaceType::Pid,
        LinuxNamespaceType::Ipc,
        LinuxNamespaceType::Uts,
        LinuxNamespaceType::Mount,
    ];
    if exec.network == NetworkMode::None {
        ns.push(LinuxNamespaceType::Network);
    }
    let namespaces = ns
        .into_iter()
        .map(|t| {
            LinuxNamespaceBuilder::default()
                .typ(t)
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
        linux = insecure_devices(linux)?;
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

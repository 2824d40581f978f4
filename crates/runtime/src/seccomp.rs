//! Docker's default seccomp profile, as the OCI runtime `linux.seccomp` section runc takes.
//!
//! The data below is the content of moby's `profiles/seccomp/default.json` (the syscall
//! allow-list, its argument filters and its capability-, architecture- and kernel-conditional
//! rules), written as Rust data; [`profile`] evaluates the conditions the way Docker does when
//! it loads the profile: against the native architecture, the running kernel and the step's
//! bounding capability set. Everything not allowed fails with `EPERM`, as under Docker.
//!
//! With Docker's default capabilities (no `CAP_SYS_ADMIN`) this denies `unshare`, `mount`,
//! `setns`, `clone` with any namespace flag (and `clone3`, with `ENOSYS` so that libc falls
//! back to `clone`), `bpf`, `perf_event_open`, keyring, module, reboot and clock syscalls,
//! and `socket(AF_ALG)`/`socket(AF_VSOCK)`.

use std::collections::HashSet;
use std::sync::OnceLock;

use oci_spec::runtime::{
    Arch, Capability, LinuxSeccomp, LinuxSeccompAction, LinuxSeccompArgBuilder,
    LinuxSeccompOperator, LinuxSyscall,
};

use crate::Error;

/// `EPERM`: what a syscall outside the profile returns.
const EPERM: u32 = 1;

/// `ENOSYS`: what `clone3` returns without `CAP_SYS_ADMIN`, so that libc falls back to `clone`,
/// whose flags the filter can see.
const ENOSYS: u32 = 38;

/// The namespace flags of `clone` (`CLONE_NEWNS | CLONE_NEWCGROUP | CLONE_NEWUTS |
/// CLONE_NEWIPC | CLONE_NEWUSER | CLONE_NEWPID | CLONE_NEWNET`), none of which a step without
/// `CAP_SYS_ADMIN` may pass.
const CLONE_NAMESPACES: u64 = 0x7E02_0000;

/// What a rule does to the syscalls it names.
#[derive(Clone, Copy, Debug)]
enum Action {
    /// Let them run.
    Allow,
    /// Fail with this errno.
    Errno(u32),
}

/// A condition on one syscall argument.
#[derive(Clone, Copy, Debug)]
struct Arg {
    index: usize,
    value: u64,
    op: LinuxSeccompOperator,
}

/// When a rule applies (`includes`: all of these hold) or does not (`excludes`: any holds).
#[derive(Clone, Copy, Debug)]
struct When {
    /// Capabilities in the step's bounding set.
    caps: &'static [Capability],
    /// Native architectures, by Docker's (Go's) names.
    arches: &'static [&'static str],
    /// The running kernel is at least this (major, minor).
    min_kernel: Option<(u32, u32)>,
}

const ANY: When = When {
    caps: &[],
    arches: &[],
    min_kernel: None,
};

const fn caps(caps: &'static [Capability]) -> When {
    When {
        caps,
        arches: &[],
        min_kernel: None,
    }
}

const fn arches(arches: &'static [&'static str]) -> When {
    When {
        caps: &[],
        arches,
        min_kernel: None,
    }
}

/// One entry of the profile's `syscalls`.
#[derive(Clone, Copy, Debug)]
struct Rule {
    names: &'static [&'static str],
    action: Action,
    /// A condition on an argument (the profile has at most one per rule).
    arg: Option<Arg>,
    includes: When,
    excludes: When,
}

const fn allow(names: &'static [&'static str], includes: When) -> Rule {
    Rule {
        names,
        action: Action::Allow,
        arg: None,
        includes,
        excludes: ANY,
    }
}

const fn allow_arg(
    name: &'static [&'static str],
    index: usize,
    op: LinuxSeccompOperator,
    value: u64,
) -> Rule {
    Rule {
        names: name,
        action: Action::Allow,
        arg: Some(Arg { index, value, op }),
        includes: ANY,
        excludes: ANY,
    }
}

use LinuxSeccompOperator::{
    ScmpCmpEq as EQ, ScmpCmpGt as GT, ScmpCmpLt as LT, ScmpCmpMaskedEq as MASKED_EQ,
};

/// Syscalls every step may make.
const ALLOWED: &[&str] = &[
    "accept",
    "accept4",
    "access",
    "adjtimex",
    "alarm",
    "bind",
    "brk",
    "cachestat",
    "capget",
    "capset",
    "chdir",
    "chmod",
    "chown",
    "chown32",
    "clock_adjtime",
    "clock_adjtime64",
    "clock_getres",
    "clock_getres_time64",
    "clock_gettime",
    "clock_gettime64",
    "clock_nanosleep",
    "clock_nanosleep_time64",
    "close",
    "close_range",
    "connect",
    "copy_file_range",
    "creat",
    "dup",
    "dup2",
    "dup3",
    "epoll_create",
    "epoll_create1",
    "epoll_ctl",
    "epoll_ctl_old",
    "epoll_pwait",
    "epoll_pwait2",
    "epoll_wait",
    "epoll_wait_old",
    "eventfd",
    "eventfd2",
    "execve",
    "execveat",
    "exit",
    "exit_group",
    "faccessat",
    "faccessat2",
    "fadvise64",
    "fadvise64_64",
    "fallocate",
    "fanotify_mark",
    "fchdir",
    "fchmod",
    "fchmodat",
    "fchmodat2",
    "fchown",
    "fchown32",
    "fchownat",
    "fcntl",
    "fcntl64",
    "fdatasync",
    "fgetxattr",
    "flistxattr",
    "flock",
    "fork",
    "fremovexattr",
    "fsetxattr",
    "fstat",
    "fstat64",
    "fstatat64",
    "fstatfs",
    "fstatfs64",
    "fsync",
    "ftruncate",
    "ftruncate64",
    "futex",
    "futex_requeue",
    "futex_time64",
    "futex_wait",
    "futex_waitv",
    "futex_wake",
    "futimesat",
    "getcpu",
    "getcwd",
    "getdents",
    "getdents64",
    "getegid",
    "getegid32",
    "geteuid",
    "geteuid32",
    "getgid",
    "getgid32",
    "getgroups",
    "getgroups32",
    "getitimer",
    "getpeername",
    "getpgid",
    "getpgrp",
    "getpid",
    "getppid",
    "getpriority",
    "getrandom",
    "getresgid",
    "getresgid32",
    "getresuid",
    "getresuid32",
    "getrlimit",
    "get_robust_list",
    "getrusage",
    "getsid",
    "getsockname",
    "getsockopt",
    "get_thread_area",
    "gettid",
    "gettimeofday",
    "getuid",
    "getuid32",
    "getxattr",
    "getxattrat",
    "inotify_add_watch",
    "inotify_init",
    "inotify_init1",
    "inotify_rm_watch",
    "io_cancel",
    "ioctl",
    "io_destroy",
    "io_getevents",
    "io_pgetevents",
    "io_pgetevents_time64",
    "ioprio_get",
    "ioprio_set",
    "io_setup",
    "io_submit",
    "ipc",
    "kill",
    "landlock_add_rule",
    "landlock_create_ruleset",
    "landlock_restrict_self",
    "lchown",
    "lchown32",
    "lgetxattr",
    "link",
    "linkat",
    "listen",
    "listmount",
    "listxattr",
    "listxattrat",
    "llistxattr",
    "_llseek",
    "lremovexattr",
    "lseek",
    "lsetxattr",
    "lstat",
    "lstat64",
    "madvise",
    "map_shadow_stack",
    "membarrier",
    "memfd_create",
    "memfd_secret",
    "mincore",
    "mkdir",
    "mkdirat",
    "mknod",
    "mknodat",
    "mlock",
    "mlock2",
    "mlockall",
    "mmap",
    "mmap2",
    "mprotect",
    "mq_getsetattr",
    "mq_notify",
    "mq_open",
    "mq_timedreceive",
    "mq_timedreceive_time64",
    "mq_timedsend",
    "mq_timedsend_time64",
    "mq_unlink",
    "mremap",
    "mseal",
    "msgctl",
    "msgget",
    "msgrcv",
    "msgsnd",
    "msync",
    "munlock",
    "munlockall",
    "munmap",
    "name_to_handle_at",
    "nanosleep",
    "newfstatat",
    "_newselect",
    "open",
    "openat",
    "openat2",
    "pause",
    "pidfd_open",
    "pidfd_send_signal",
    "pipe",
    "pipe2",
    "pkey_alloc",
    "pkey_free",
    "pkey_mprotect",
    "poll",
    "ppoll",
    "ppoll_time64",
    "prctl",
    "pread64",
    "preadv",
    "preadv2",
    "prlimit64",
    "process_mrelease",
    "pselect6",
    "pselect6_time64",
    "pwrite64",
    "pwritev",
    "pwritev2",
    "read",
    "readahead",
    "readlink",
    "readlinkat",
    "readv",
    "recv",
    "recvfrom",
    "recvmmsg",
    "recvmmsg_time64",
    "recvmsg",
    "remap_file_pages",
    "removexattr",
    "removexattrat",
    "rename",
    "renameat",
    "renameat2",
    "restart_syscall",
    "riscv_hwprobe",
    "rmdir",
    "rseq",
    "rt_sigaction",
    "rt_sigpending",
    "rt_sigprocmask",
    "rt_sigqueueinfo",
    "rt_sigreturn",
    "rt_sigsuspend",
    "rt_sigtimedwait",
    "rt_sigtimedwait_time64",
    "rt_tgsigqueueinfo",
    "sched_getaffinity",
    "sched_getattr",
    "sched_getparam",
    "sched_get_priority_max",
    "sched_get_priority_min",
    "sched_getscheduler",
    "sched_rr_get_interval",
    "sched_rr_get_interval_time64",
    "sched_setaffinity",
    "sched_setattr",
    "sched_setparam",
    "sched_setscheduler",
    "sched_yield",
    "seccomp",
    "select",
    "semctl",
    "semget",
    "semop",
    "semtimedop",
    "semtimedop_time64",
    "send",
    "sendfile",
    "sendfile64",
    "sendmmsg",
    "sendmsg",
    "sendto",
    "setfsgid",
    "setfsgid32",
    "setfsuid",
    "setfsuid32",
    "setgid",
    "setgid32",
    "setgroups",
    "setgroups32",
    "setitimer",
    "setpgid",
    "setpriority",
    "setregid",
    "setregid32",
    "setresgid",
    "setresgid32",
    "setresuid",
    "setresuid32",
    "setreuid",
    "setreuid32",
    "setrlimit",
    "set_robust_list",
    "setsid",
    "setsockopt",
    "set_thread_area",
    "set_tid_address",
    "setuid",
    "setuid32",
    "setxattr",
    "setxattrat",
    "shmat",
    "shmctl",
    "shmdt",
    "shmget",
    "shutdown",
    "sigaltstack",
    "signalfd",
    "signalfd4",
    "sigprocmask",
    "sigreturn",
    "socketcall",
    "socketpair",
    "splice",
    "stat",
    "stat64",
    "statfs",
    "statfs64",
    "statmount",
    "statx",
    "symlink",
    "symlinkat",
    "sync",
    "sync_file_range",
    "syncfs",
    "sysinfo",
    "tee",
    "tgkill",
    "time",
    "timer_create",
    "timer_delete",
    "timer_getoverrun",
    "timer_gettime",
    "timer_gettime64",
    "timer_settime",
    "timer_settime64",
    "timerfd_create",
    "timerfd_gettime",
    "timerfd_gettime64",
    "timerfd_settime",
    "timerfd_settime64",
    "times",
    "tkill",
    "truncate",
    "truncate64",
    "ugetrlimit",
    "umask",
    "uname",
    "unlink",
    "unlinkat",
    "uretprobe",
    "utime",
    "utimensat",
    "utimensat_time64",
    "utimes",
    "vfork",
    "vmsplice",
    "wait4",
    "waitid",
    "waitpid",
    "write",
    "writev",
];

/// The profile's rules, in its order.
const RULES: &[Rule] = &[
    allow(ALLOWED, ANY),
    allow(
        &["process_vm_readv", "process_vm_writev", "ptrace"],
        When {
            caps: &[],
            arches: &[],
            min_kernel: Some((4, 8)),
        },
    ),
    // Every socket family but AF_ALG (38) and AF_VSOCK (40).
    allow_arg(&["socket"], 0, LT, 38),
    allow_arg(&["socket"], 0, EQ, 39),
    allow_arg(&["socket"], 0, GT, 40),
    // PER_LINUX, PER_LINUX32, UNAME26, UNAME26|PER_LINUX32 and the query 0xffffffff.
    allow_arg(&["personality"], 0, EQ, 0x0),
    allow_arg(&["personality"], 0, EQ, 0x8),
    allow_arg(&["personality"], 0, EQ, 0x20000),
    allow_arg(&["personality"], 0, EQ, 0x20008),
    allow_arg(&["personality"], 0, EQ, 0xffff_ffff),
    allow(&["sync_file_range2", "swapcontext"], arches(&["ppc64le"])),
    allow(
        &[
            "arm_fadvise64_64",
            "arm_sync_file_range",
            "sync_file_range2",
            "breakpoint",
            "cacheflush",
            "set_tls",
        ],
        arches(&["arm", "arm64"]),
    ),
    allow(&["arch_prctl"], arches(&["amd64", "x32"])),
    allow(&["modify_ldt"], arches(&["amd64", "x32", "x86"])),
    allow(
        &[
            "s390_pci_mmio_read",
            "s390_pci_mmio_write",
            "s390_runtime_instr",
        ],
        arches(&["s390", "s390x"]),
    ),
    allow(&["riscv_flush_icache"], arches(&["riscv64"])),
    allow(&["open_by_handle_at"], caps(&[Capability::DacReadSearch])),
    allow(
        &[
            "bpf",
            "clone",
            "clone3",
            "fanotify_init",
            "fsconfig",
            "fsmount",
            "fsopen",
            "fspick",
            "lookup_dcookie",
            "lsm_get_self_attr",
            "lsm_list_modules",
            "lsm_set_self_attr",
            "mount",
            "mount_setattr",
            "move_mount",
            "open_tree",
            "perf_event_open",
            "quotactl",
            "quotactl_fd",
            "setdomainname",
            "sethostname",
            "setns",
            "syslog",
            "umount",
            "umount2",
            "unshare",
        ],
        caps(&[Capability::SysAdmin]),
    ),
    Rule {
        names: &["clone"],
        action: Action::Allow,
        arg: Some(Arg {
            index: 0,
            value: CLONE_NAMESPACES,
            op: MASKED_EQ,
        }),
        includes: ANY,
        excludes: When {
            caps: &[Capability::SysAdmin],
            arches: &["s390", "s390x"],
            min_kernel: None,
        },
    },
    // s390 passes clone's flags second.
    Rule {
        names: &["clone"],
        action: Action::Allow,
        arg: Some(Arg {
            index: 1,
            value: CLONE_NAMESPACES,
            op: MASKED_EQ,
        }),
        includes: arches(&["s390", "s390x"]),
        excludes: caps(&[Capability::SysAdmin]),
    },
    Rule {
        names: &["clone3"],
        action: Action::Errno(ENOSYS),
        arg: None,
        includes: ANY,
        excludes: caps(&[Capability::SysAdmin]),
    },
    allow(&["reboot"], caps(&[Capability::SysBoot])),
    allow(&["chroot"], caps(&[Capability::SysChroot])),
    allow(
        &["delete_module", "init_module", "finit_module"],
        caps(&[Capability::SysModule]),
    ),
    allow(&["acct"], caps(&[Capability::SysPacct])),
    allow(
        &[
            "kcmp",
            "pidfd_getfd",
            "process_madvise",
            "process_vm_readv",
            "process_vm_writev",
            "ptrace",
        ],
        caps(&[Capability::SysPtrace]),
    ),
    allow(&["iopl", "ioperm"], caps(&[Capability::SysRawio])),
    allow(
        &["settimeofday", "stime", "clock_settime", "clock_settime64"],
        caps(&[Capability::SysTime]),
    ),
    allow(&["vhangup"], caps(&[Capability::SysTtyConfig])),
    allow(
        &[
            "get_mempolicy",
            "mbind",
            "set_mempolicy",
            "set_mempolicy_home_node",
        ],
        caps(&[Capability::SysNice]),
    ),
    allow(&["syslog"], caps(&[Capability::Syslog])),
    allow(&["bpf"], caps(&[Capability::Bpf])),
    allow(&["perf_event_open"], caps(&[Capability::Perfmon])),
];

/// The native architecture by Docker's (Go's) name, and the seccomp architectures of its
/// `archMap` entry (the native one and those whose binaries it also runs).
///
/// One deliberate difference on amd64: Docker also lists x32, the ILP32 ABI of x86-64. Debian,
/// Ubuntu, Fedora and Arch kernels do not run x32 system calls (Debian's only with
/// `syscall.x32=y` on the kernel command line), and x32's half of the filter costs runc
/// about 7 ms on every RUN step; left out, an x32 system call is refused by the filter
/// instead of by the kernel. i386 (x86) binaries, which `linux/386` images hold, keep Docker's
/// rules.
fn native() -> (&'static str, &'static [Arch]) {
    if cfg!(target_arch = "x86_64") {
        ("amd64", &[Arch::ScmpArchX86_64, Arch::ScmpArchX86])
    } else if cfg!(target_arch = "aarch64") {
        ("arm64", &[Arch::ScmpArchAarch64, Arch::ScmpArchArm])
    } else if cfg!(target_arch = "s390x") {
        ("s390x", &[Arch::ScmpArchS390x, Arch::ScmpArchS390])
    } else if cfg!(target_arch = "riscv64") {
        ("riscv64", &[Arch::ScmpArchRiscv64])
    } else if cfg!(target_arch = "loongarch64") {
        ("loong64", &[Arch::ScmpArchLoongarch64])
    } else if cfg!(all(target_arch = "powerpc64", target_endian = "little")) {
        ("ppc64le", &[Arch::ScmpArchPpc64le])
    } else if cfg!(target_arch = "arm") {
        ("arm", &[Arch::ScmpArchArm])
    } else if cfg!(target_arch = "x86") {
        ("x86", &[Arch::ScmpArchX86])
    } else {
        // An architecture Docker's archMap does not list: the runtime's native one.
        ("", &[Arch::ScmpArchNative])
    }
}

/// The running kernel's (major, minor), `None` when `uname` says something unparsable.
fn kernel() -> Option<(u32, u32)> {
    let release = std::fs::read_to_string("/proc/sys/kernel/osrelease").ok()?;
    parse_release(release.trim())
}

/// (major, minor) of a kernel release string such as `6.1.0-18-amd64`.
fn parse_release(release: &str) -> Option<(u32, u32)> {
    let number = |part: &str| {
        let digits = part.len() - part.trim_start_matches(|c: char| c.is_ascii_digit()).len();
        part[..digits].parse::<u32>().ok()
    };
    let mut parts = release.split('.');
    Some((number(parts.next()?)?, number(parts.next()?)?))
}

/// Where a profile is evaluated.
struct Host<'a> {
    arch: &'a str,
    kernel: Option<(u32, u32)>,
    bounding: &'a HashSet<Capability>,
}

impl Rule {
    /// Whether the rule is part of the profile on `host`, as Docker decides it: any exclusion
    /// drops it, and every inclusion must hold. An unknown kernel version counts as too old.
    fn applies(&self, host: &Host<'_>) -> bool {
        let at_least = |v: (u32, u32)| host.kernel.is_some_and(|k| k >= v);
        let ex = &self.excludes;
        if ex.arches.contains(&host.arch)
            || ex.caps.iter().any(|c| host.bounding.contains(c))
            || ex.min_kernel.is_some_and(at_least)
        {
            return false;
        }
        let inc = &self.includes;
        (inc.arches.is_empty() || inc.arches.contains(&host.arch))
            && inc.caps.iter().all(|c| host.bounding.contains(c))
            && inc.min_kernel.is_none_or(at_least)
    }

    fn syscall(&self) -> Result<LinuxSyscall, Error> {
        let mut s = LinuxSyscall::default();
        s.set_names(self.names.iter().map(|n| n.to_string()).collect());
        match self.action {
            Action::Allow => {
                s.set_action(LinuxSeccompAction::ScmpActAllow);
            }
            Action::Errno(errno) => {
                s.set_action(LinuxSeccompAction::ScmpActErrno);
                s.set_errno_ret(Some(errno));
            }
        }
        if let Some(a) = self.arg {
            let arg = LinuxSeccompArgBuilder::default()
                .index(a.index)
                .value(a.value)
                .op(a.op)
                .build()
                .map_err(|e| Error::Spec {
                    part: "seccomp profile",
                    reason: e.to_string(),
                })?;
            s.set_args(Some(vec![arg]));
        }
        Ok(s)
    }
}

fn evaluate(host: &Host<'_>, archs: &[Arch]) -> Result<LinuxSeccomp, Error> {
    let mut profile = LinuxSeccomp::default();
    profile.set_default_action(LinuxSeccompAction::ScmpActErrno);
    profile.set_default_errno_ret(Some(EPERM));
    profile.set_architectures(Some(archs.to_vec()));
    profile.set_syscalls(Some(
        RULES
            .iter()
            .filter(|r| r.applies(host))
            .map(Rule::syscall)
            .collect::<Result<_, _>>()?,
    ));
    Ok(profile)
}

/// Docker's default profile for a step whose bounding set is Docker's default capability set
/// `default_caps` (the one every sandboxed step gets), on this machine; built once per process.
pub(crate) fn default_profile(default_caps: &[Capability]) -> Result<LinuxSeccomp, Error> {
    static PROFILE: OnceLock<LinuxSeccomp> = OnceLock::new();
    if let Some(p) = PROFILE.get() {
        return Ok(p.clone());
    }
    let (arch, archs) = native();
    let bounding = default_caps.iter().copied().collect();
    let host = Host {
        arch,
        kernel: kernel(),
        bounding: &bounding,
    };
    let built = evaluate(&host, archs)?;
    Ok(PROFILE.get_or_init(|| built).clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn on(arch: &str, kernel: (u32, u32), extra: &[Capability]) -> LinuxSeccomp {
        let bounding: HashSet<Capability> =
            crate::spec::CAPS.iter().chain(extra).copied().collect();
        let host = Host {
            arch,
            kernel: Some(kernel),
            bounding: &bounding,
        };
        evaluate(&host, &[Arch::ScmpArchX86_64]).unwrap()
    }

    /// A rule as (action, errno, args as (index, value, op)).
    type Seen = (
        LinuxSeccompAction,
        Option<u32>,
        Vec<(usize, u64, LinuxSeccompOperator)>,
    );

    /// The rules naming `name`.
    fn rules_for(p: &LinuxSeccomp, name: &str) -> Vec<Seen> {
        p.syscalls()
            .iter()
            .flatten()
            .filter(|s| s.names().iter().any(|n| n == name))
            .map(|s| {
                let args = s
                    .args()
                    .iter()
                    .flatten()
                    .map(|a| (a.index(), a.value(), a.op()))
                    .collect();
                (s.action(), s.errno_ret(), args)
            })
            .collect()
    }

    #[test]
    fn dockers_default_denies_namespaces_and_mounts() {
        let p = on("amd64", (6, 1), &[]);
        assert_eq!(p.default_action(), LinuxSeccompAction::ScmpActErrno);
        assert_eq!(p.default_errno_ret(), Some(EPERM));
        for denied in [
            "unshare",
            "setns",
            "mount",
            "umount2",
            "bpf",
            "keyctl",
            "reboot",
            "init_module",
        ] {
            assert!(rules_for(&p, denied).is_empty(), "{denied} is allowed");
        }
        assert_eq!(
            rules_for(&p, "clone"),
            vec![(
                LinuxSeccompAction::ScmpActAllow,
                None,
                vec![(0, CLONE_NAMESPACES, LinuxSeccompOperator::ScmpCmpMaskedEq)]
            )]
        );
        assert_eq!(
            rules_for(&p, "clone3"),
            vec![(LinuxSeccompAction::ScmpActErrno, Some(ENOSYS), vec![])]
        );
        // CAP_SYS_CHROOT is in Docker's default set; the x86 ones apply on amd64.
        for allowed in ["chroot", "arch_prctl", "modify_ldt", "ptrace", "execve"] {
            assert_eq!(rules_for(&p, allowed).len(), 1, "{allowed}");
        }
        assert!(rules_for(&p, "set_tls").is_empty());
        assert_eq!(rules_for(&p, "socket").len(), 3);
        assert_eq!(rules_for(&p, "personality").len(), 5);
    }

    #[test]
    fn conditions_follow_capabilities_arch_and_kernel() {
        let admin = on("amd64", (6, 1), &[Capability::SysAdmin]);
        assert_eq!(
            rules_for(&admin, "clone"),
            vec![(LinuxSeccompAction::ScmpActAllow, None, vec![])]
        );
        assert_eq!(rules_for(&admin, "unshare").len(), 1);
        assert_eq!(rules_for(&admin, "clone3").len(), 1);
        let arm = on("arm64", (6, 1), &[]);
        assert_eq!(rules_for(&arm, "set_tls").len(), 1);
        assert!(rules_for(&arm, "arch_prctl").is_empty());
        let s390 = on("s390x", (6, 1), &[]);
        assert_eq!(
            rules_for(&s390, "clone")[0].2,
            vec![(1, CLONE_NAMESPACES, LinuxSeccompOperator::ScmpCmpMaskedEq)]
        );
        // Before 4.8 ptrace could bypass seccomp: only CAP_SYS_PTRACE allows it then.
        let old = on("amd64", (4, 4), &[]);
        assert!(rules_for(&old, "ptrace").is_empty());
    }

    #[test]
    fn kernel_releases() {
        assert_eq!(parse_release("6.18.44-fc-v1272"), Some((6, 18)));
        assert_eq!(parse_release("4.8.0"), Some((4, 8)));
        assert_eq!(parse_release("5.15+"), Some((5, 15)));
        assert_eq!(parse_release("6.9rc1"), Some((6, 9)));
        assert_eq!(parse_release("garbage"), None);
        assert!(kernel().is_some());
    }

    #[test]
    fn the_allow_list_has_no_duplicates() {
        let mut seen = HashSet::new();
        for n in ALLOWED {
            assert!(seen.insert(n), "{n} twice");
        }
    }
}

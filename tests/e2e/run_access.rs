//! What a RUN step may reach beyond its sandbox: `--security=insecure` (behind the
//! `security.insecure` entitlement) and the caller's SSH agent (`--mount=type=ssh`).

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

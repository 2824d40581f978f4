//! The embedding API as the CLI uses it: cancelling a build (Ctrl-C sets the build's
//! cancellation token) stops its running container and leaves nothing behind.

use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use crate::support::TestRoot;

#[test]
fn an_interrupted_build_stops_its_container_and_leaves_nothing_mounted() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[("Dockerfile", "FROM busybox:local\nRUN sleep 60\n")],
    );
    let child = Command::new(env!("CARGO_BIN_EXE_xbuild"))
        .arg("--root")
        .arg(t.root())
        .args(["build", "--progress=plain"])
        .arg(&ctx)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let state = t.root().join("runc");
    let deadline = Instant::now() + Duration::from_secs(60);
    while !std::fs::read_dir(&state).is_ok_and(|mut d| d.next().is_some()) {
        assert!(Instant::now() < deadline, "the RUN step never started");
        std::thread::sleep(Duration::from_millis(20));
    }
    let started = Instant::now();
    let st = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(st.success());
    let out = child.wait_with_output().unwrap();
    assert!(!out.status.success());
    assert!(
        started.elapsed() < Duration::from_secs(30),
        "the build ran on after the interrupt"
    );
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("interrupted"), "{stderr}");
    t.finish();
}

//! Multi-stage builds: stages on demand, `COPY --from`, `--target`, ARG scoping, checks.

use crate::support::TestRoot;

#[test]
fn multi_stage_copy_from_and_target() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "ARG GREETING=hello\n\
             FROM busybox:local AS build\n\
             ARG GREETING\n\
             RUN echo \"$GREETING from build\" > /made\n\
             FROM busybox:local AS unused\n\
             RUN exit 1\n\
             FROM build AS second\n\
             RUN echo second >> /made\n\
             FROM scratch\n\
             COPY --from=second /made /made\n\
             COPY --from=0 /bin/busybox /busybox\n",
        )],
    );
    t.build(&ctx, &["-t", "ms:1"]).ok();
    let fs = t.export("ms:1");
    assert_eq!(fs.text("made"), "hello from build\nsecond\n");
    assert!(fs.has("busybox"));
    t.build(
        &ctx,
        &[
            "-t",
            "ms:build",
            "--target",
            "build",
            "--build-arg",
            "GREETING=hi",
        ],
    )
    .ok();
    assert_eq!(t.export("ms:build").text("made"), "hi from build\n");
    let r = t.build(&ctx, &["--target", "nope"]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    assert!(
        r.stderr
            .contains("target stage \"nope\" could not be found"),
        "{}",
        r.stderr
    );
    assert!(
        r.stderr.contains("stages are: build, unused, second"),
        "{}",
        r.stderr
    );
    t.finish();
}

#[test]
fn build_check_reports_without_building() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local AS Build\nMAINTAINER me\nENV X=$UNDEFINED\nCMD echo hi\n",
        )],
    );
    let r = t.build(&ctx, &["--check"]);
    assert_eq!(r.code, 0, "{}", r.stderr);
    for rule in [
        "StageNameCasing",
        "MaintainerDeprecated",
        "UndefinedVar",
        "JSONArgsRecommended",
    ] {
        assert!(r.stdout.contains(rule), "{rule} missing in {}", r.stdout);
    }
    assert_eq!(r.count("started"), 0, "--check builds nothing");
    t.finish();
}

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

/// `debug parse --check` used to stop at the parser's checks and missed what lowering finds
/// (an unknown `--mount` type, for one); it now runs `build --check`'s validation.
#[test]
fn debug_parse_check_reports_what_build_check_reports() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local AS Build\n\
             ENV X=$UNDEFINED\n\
             RUN --mount=type=bogus,target=/x true\n\
             FROM scratch\n\
             COPY --chown=app f /f\n",
        )],
    );
    let file = ctx.join("Dockerfile");
    let build = t.build(&ctx, &["--check"]);
    let parse = t.xbuild(&["debug", "parse", "--check", "-f", file.to_str().unwrap()]);
    for r in [&build, &parse] {
        assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
        for needle in [
            "unsupported mount type \"bogus\"",
            "invalid user index: -1",
            "StageNameCasing",
            // Kept beside the errors (they were dropped once lowering failed).
            "UndefinedVar",
            ": 2 error(s), 2 warning(s)",
        ] {
            assert!(
                r.stdout.contains(needle),
                "{needle} missing in {}",
                r.stdout
            );
        }
    }
    assert_eq!(build.count("started"), 0, "--check builds nothing");

    // Without the base image (and with no store at all) the instruction checks still run;
    // the unknown base's environment is unknown, so UndefinedVar stays quiet.
    let bare = TestRoot::new();
    let df = bare.context(
        "ctx",
        &[
            (
                "bad.Dockerfile",
                "FROM golang:1.22\nRUN --mount=type=bogus,target=/x true\n",
            ),
            (
                "ok.Dockerfile",
                "FROM golang:1.22\nENV X=$GOPATH\nWORKDIR ${APP_HOME}app\n",
            ),
        ],
    );
    let check = |name: &str| {
        bare.xbuild(&[
            "debug",
            "parse",
            "--check",
            "-f",
            df.join(name).to_str().unwrap(),
        ])
    };
    let r = check("bad.Dockerfile");
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("unsupported mount type \"bogus\""),
        "{}",
        r.stdout
    );
    assert!(
        !r.stdout.contains("not in the local image store"),
        "{}",
        r.stdout
    );
    let r = check("ok.Dockerfile");
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(!r.stdout.contains("UndefinedVar"), "{}", r.stdout);
    // `${APP_HOME}app` expands to the relative `app` here; the real base defines APP_HOME.
    assert!(!r.stdout.contains("WorkdirRelativePath"), "{}", r.stdout);
    assert!(!bare.root().exists(), "a check creates no root");
    t.finish();
    bare.finish();
}

#[test]
fn proxy_build_args_reach_run_without_arg_and_leave_no_trace() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM busybox:local\n\
             RUN echo \"$HTTP_PROXY|$http_proxy|$NO_PROXY|$no_proxy|$HTTPS_PROXY\" > /proxy\n",
        )],
    );
    let first = t
        .build(
            &ctx,
            &[
                "-t",
                "p:1",
                "--build-arg",
                "http_proxy=http://proxy.example:3128",
                "--build-arg",
                "no_proxy=localhost",
            ],
        )
        .ok();
    assert!(
        first.stderr.contains("1 step(s) executed"),
        "{}",
        first.stderr
    );
    assert!(
        !first.stderr.contains("not consumed"),
        "proxy args are predefined: {}",
        first.stderr
    );
    assert_eq!(
        t.export("p:1").text("proxy"),
        "http://proxy.example:3128|http://proxy.example:3128|localhost|localhost|\n"
    );
    let inspect = t.xbuild(&["inspect", "--raw", "p:1"]).ok().stdout;
    assert!(
        !inspect.to_ascii_lowercase().contains("proxy.example"),
        "the proxy must not reach the image config or history: {inspect}"
    );
    // Another proxy is not another build: the cache key leaves proxies out, as BuildKit's.
    let second = t
        .build(
            &ctx,
            &["-t", "p:2", "--build-arg", "HTTP_PROXY=http://other:8080"],
        )
        .ok();
    assert!(
        second.stderr.contains("0 step(s) executed, 1 cached"),
        "{}",
        second.stderr
    );
    t.finish();
}

/// BUILDPLATFORM named the target under `--platform`, and the target's variant was dropped;
/// Docker 20.10's BuildKit labels this image `b=linux/amd64 t=linux/arm/v7 v=v7` on amd64.
#[test]
fn buildplatform_is_the_host_and_targetplatform_keeps_the_variant() {
    let t = TestRoot::new();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM scratch\n\
             ARG BUILDPLATFORM TARGETPLATFORM TARGETVARIANT\n\
             LABEL b=$BUILDPLATFORM t=$TARGETPLATFORM v=$TARGETVARIANT\n",
        )],
    );
    t.build(&ctx, &["--platform", "linux/arm/v7", "-t", "plat:arm"])
        .ok();
    let out = t.xbuild(&["inspect", "plat:arm"]).ok();
    let v: serde_json::Value = serde_json::from_str(&out.stdout).unwrap();
    let host = if cfg!(target_arch = "aarch64") {
        "linux/arm64"
    } else {
        "linux/amd64"
    };
    let labels = &v[0]["Config"]["Labels"];
    assert_eq!(labels["b"], host, "{labels}");
    assert_eq!(labels["t"], "linux/arm/v7", "{labels}");
    assert_eq!(labels["v"], "v7", "{labels}");
    assert_eq!(v[0]["Architecture"], "arm");
    assert_eq!(v[0]["Variant"], "v7");
    t.finish();
}

#[test]
fn from_platform_selects_the_base_image_platform() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "FROM --platform=$BUILDPLATFORM busybox:local AS build\n\
             RUN echo built > /out\n\
             FROM busybox:local\n\
             COPY --from=build /out /out\n",
        )],
    );
    t.build(&ctx, &["-t", "plat:1"]).ok();
    assert_eq!(t.export("plat:1").text("out"), "built\n");
    // The local busybox is the host's platform: another one must come from a registry, as
    // with Docker, and the error says why it was looked for.
    let other = if cfg!(target_arch = "aarch64") {
        "linux/amd64"
    } else {
        "linux/arm64"
    };
    let ctx = t.context(
        "cross",
        &[(
            "Dockerfile",
            &format!("FROM --platform={other} busybox:local\nRUN true\n"),
        )],
    );
    let run = t.build(&ctx, &[]);
    assert_eq!(run.code, 1, "{}", run.stderr);
    assert!(
        run.stderr.contains(&format!(
            "does not match the specified platform: wanted {other}"
        )),
        "{}",
        run.stderr
    );
    assert!(run.stderr.contains("Dockerfile:1"), "{}", run.stderr);
    t.finish();
}

/// Issue 16 #3: `build --check` ignored `--build-arg` (an ARG without default used in FROM was
/// "base name should not be blank"), looked up the bases of stages `--target` never reaches,
/// and dropped the warnings lowering had found once it met an error. As BuildKit's check it
/// honours both, checks every stage without `--target`, and reports each problem once.
#[test]
fn build_check_honours_build_args_and_target_and_keeps_warnings_beside_errors() {
    let t = TestRoot::with_busybox();
    let ctx = t.context(
        "ctx",
        &[(
            "Dockerfile",
            "ARG BASE\n\
             FROM $BASE AS app\n\
             ENV A=$UNDEF_IN_APP\n\
             FROM nosuch/image:1 AS other\n\
             RUN true\n\
             FROM scratch AS unused\n\
             COPY --chown=app f /f\n\
             FROM app\n\
             ENV B=$UNDEF_IN_FINAL\n",
        )],
    );
    let summary = |r: &crate::support::Run| r.stdout.lines().last().unwrap_or_default().to_string();
    // With the build argument and the target: only `app` is checked. InvalidDefaultArgInFrom
    // is reported whatever the arguments, as BuildKit checks the defaults.
    let r = t.build(
        &ctx,
        &[
            "--check",
            "--build-arg",
            "BASE=busybox:local",
            "--target",
            "app",
        ],
    );
    assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
    assert!(
        summary(&r).ends_with(": 0 error(s), 2 warning(s)"),
        "{}",
        r.stdout
    );
    assert!(r.stdout.contains("InvalidDefaultArgInFrom"), "{}", r.stdout);
    assert!(r.stdout.contains("$UNDEF_IN_APP"), "{}", r.stdout);
    for absent in ["nosuch/image", "invalid user index", "$UNDEF_IN_FINAL"] {
        assert!(!r.stdout.contains(absent), "{absent} in {}", r.stdout);
    }
    // Without a target every stage is checked: the missing base is an error, reported once,
    // beside the warnings of the stages that lowered. The --chown name in `unused` only fails
    // when that stage is solved, which the default target never does.
    let r = t.build(&ctx, &["--check", "--build-arg", "BASE=busybox:local"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        summary(&r).ends_with(": 1 error(s), 3 warning(s)"),
        "{}",
        r.stdout
    );
    assert_eq!(
        r.stdout
            .matches("nosuch/image:1 is not in the local image store")
            .count(),
        1,
        "{}",
        r.stdout
    );
    for present in ["Dockerfile:4:1:", "$UNDEF_IN_APP", "$UNDEF_IN_FINAL"] {
        assert!(
            r.stdout.contains(present),
            "{present} missing in {}",
            r.stdout
        );
    }
    assert!(!r.stdout.contains("invalid user index"), "{}", r.stdout);
    // Without the build argument the blank base is the error BuildKit reports.
    let r = t.build(&ctx, &["--check", "--target", "app"]);
    assert_eq!(r.code, 1, "{}{}", r.stdout, r.stderr);
    assert!(
        r.stdout.contains("base name ($BASE) should not be blank"),
        "{}",
        r.stdout
    );
    assert_eq!(r.count("started"), 0, "--check builds nothing");
    t.finish();
}

/// Issue 16 #2: `# syntax=docker/dockerfile-upstream:master` (and master-labs, 1.x-rc-labs,
/// index.docker.io/… ) was refused as a frontend image. Every reference to BuildKit's own
/// Dockerfile frontend builds with xbuild's; `--build-arg BUILDKIT_SYNTAX=` overrides the
/// line as in BuildKit; any other frontend is an error naming the line and what to do.
#[test]
fn syntax_lines_naming_the_dockerfile_frontend_build_and_buildkit_syntax_overrides_them() {
    let t = TestRoot::with_busybox();
    let digest = format!("sha256:{}", "0123456789abcdef".repeat(4));
    for syntax in [
        "docker/dockerfile-upstream:master".to_string(),
        "docker/dockerfile-upstream:master-labs".into(),
        "docker/dockerfile:1.17.0-rc1-labs".into(),
        "index.docker.io/docker/dockerfile:1.7-labs".into(),
        format!("docker.io/docker/dockerfile:1@{digest}"),
    ] {
        let ctx = t.context(
            "ok",
            &[
                (
                    "Dockerfile",
                    &format!("# syntax={syntax}\nFROM busybox:local\nCOPY --parents a/f /out/\nRUN cat /out/a/f\n"),
                ),
                ("a/f", "hi\n"),
            ],
        );
        t.build(&ctx, &["-t", "syntax:ok"]).ok();
        assert_eq!(t.export("syntax:ok").text("out/a/f"), "hi\n", "{syntax}");
    }
    let ctx = t.context(
        "custom",
        &[(
            "Dockerfile",
            "# escape=\\\n# syntax=ghcr.io/me/frontend:1\nFROM busybox:local\nRUN true\n",
        )],
    );
    let r = t.build(&ctx, &[]);
    assert_eq!(r.code, 1, "{}", r.stderr);
    for needle in [
        "custom/Dockerfile:2:1: xbuild has its own Dockerfile frontend and does not run frontend images; cannot use syntax ghcr.io/me/frontend:1",
        "remove the # syntax line, or pass --build-arg BUILDKIT_SYNTAX=docker/dockerfile:1",
    ] {
        assert!(
            r.stderr.contains(needle),
            "{needle} missing in {}",
            r.stderr
        );
    }
    // The build argument overrides the line, for a build and a check alike.
    for value in [
        "docker/dockerfile:1",
        "docker/dockerfile-upstream:master-labs",
        "dockerfile.v0",
    ] {
        let arg = format!("BUILDKIT_SYNTAX={value}");
        t.build(&ctx, &["--build-arg", &arg]).ok();
        let r = t.build(&ctx, &["--check", "--build-arg", &arg]);
        assert_eq!(r.code, 0, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stdout.contains(": 0 error(s), 0 warning(s)"),
            "{}",
            r.stdout
        );
    }
    // A custom frontend named by the argument is refused, whatever the line says.
    let ok = t.context("plain", &[("Dockerfile", "FROM busybox:local\n")]);
    for extra in [&["--check"][..], &[]] {
        let mut args = vec!["--build-arg", "BUILDKIT_SYNTAX=me/frontend:1"];
        args.extend_from_slice(extra);
        let r = t.build(&ok, &args);
        assert_eq!(r.code, 2, "{}{}", r.stdout, r.stderr);
        assert!(
            r.stderr.contains(
                "--build-arg BUILDKIT_SYNTAX=me/frontend:1: xbuild has its own Dockerfile frontend"
            ),
            "{}",
            r.stderr
        );
    }
    t.finish();
}

//! Lowering tests: the graphs of the corpus in `tests/lower/` (snapshotted), digest stability,
//! `--target` pruning, ONBUILD, the docs' multi-stage examples, history strings as Docker
//! 20.10's BuildKit writes them, and lowering errors.
#![allow(clippy::unwrap_used, missing_docs)]

use std::collections::BTreeMap;
use std::fmt::Write as _;

use xbuild_llb::{Definition, Digest, ImageConfig, Op, SourceOp};
use xbuild_parser::lower::{ImageResolver, LowerOptions, ResolvedImage, lower_with_warnings};
use xbuild_parser::platform::Platform;
use xbuild_parser::{Diagnostic, parse};

struct Canned;

impl ImageResolver for Canned {
    fn resolve(&self, reference: &str, platform: &Platform) -> Result<ResolvedImage, String> {
        let mut config = ImageConfig::default();
        match reference {
            "busybox:local" => config.cmd = Some(vec!["sh".into()]),
            "alpine:latest" => {
                config.env = vec!["PATH=/usr/bin:/bin".into(), "FROM_IMAGE=alpine".into()];
                config.cmd = Some(vec!["/bin/sh".into()]);
            }
            "golang:1.22" => {
                config.env = vec![
                    "PATH=/usr/local/go/bin:/usr/bin:/bin".into(),
                    "GOPATH=/go".into(),
                ];
                config.working_dir = "/go".into();
            }
            "nginx:latest" => {
                config.working_dir = "/usr/share/nginx".into();
                config.user = "nginx".into();
                config.cmd = Some(vec!["nginx".into(), "-g".into(), "daemon off;".into()]);
                config.exposed_ports.insert("80/tcp".into());
            }
            "onbuild-base:1" => {
                config.on_build = vec!["RUN echo triggered > /trig".into(), "COPY . /app/".into()];
            }
            _ => return Err(format!("{reference} is not in the local image store")),
        }
        // Each platform has its own manifest, as in a registry's index.
        let digest = if platform.os == "linux" && platform.architecture == "amd64" {
            Digest::of(reference.as_bytes())
        } else {
            Digest::of(format!("{reference} {}/{}", platform.os, platform.architecture).as_bytes())
        };
        Ok(ResolvedImage {
            reference: reference.into(),
            digest,
            config,
            history: vec![],
            platform: Platform::new(&platform.os, &platform.architecture, None),
        })
    }
}

fn opts() -> LowerOptions {
    let mut o = LowerOptions::for_host("Dockerfile");
    o.platform.architecture = "amd64".into();
    o
}

fn lower_with(src: &str, o: &LowerOptions) -> Result<Definition, Vec<Diagnostic>> {
    let parsed = parse(src);
    let errors: Vec<Diagnostic> = parsed.errors().cloned().collect();
    if !errors.is_empty() {
        return Err(errors);
    }
    lower_with_warnings(&parsed.dockerfile, o, &Canned).map(|l| l.definition)
}

fn lower(src: &str) -> Definition {
    lower_with(src, &opts()).unwrap_or_else(|e| panic!("{src}\n{e:#?}"))
}

fn target(def: &Definition) -> Digest {
    def.outputs()[0].vertex.clone()
}

/// Every vertex (kind, description, inputs by position, op) and the output's config and history.
fn summary(def: &Definition) -> String {
    let order: Vec<Digest> = def.vertices().map(|v| v.digest().clone()).collect();
    let pos = |d: &Digest| order.iter().position(|x| x == d).unwrap();
    let mut s = String::new();
    for (i, v) in def.vertices().enumerate() {
        let desc = def
            .meta(v.digest())
            .map(|m| m.description.clone())
            .unwrap_or_default();
        let inputs: Vec<usize> = v.inputs().iter().map(pos).collect();
        let _ = writeln!(s, "v{i} {} {desc:?} inputs={inputs:?}", v.op().kind());
        let _ = writeln!(s, "    {}", serde_json::to_string(v.op()).unwrap());
    }
    let out = &def.outputs()[0];
    let _ = writeln!(
        s,
        "output {} = v{} {}/{}",
        out.name,
        pos(&out.vertex),
        out.os,
        out.architecture
    );
    let _ = writeln!(s, "config {}", serde_json::to_string(&out.config).unwrap());
    for h in &out.history {
        let layer = h
            .vertex
            .as_ref()
            .map(|v| format!("v{}", pos(v)))
            .unwrap_or_else(|| "-".into());
        let _ = writeln!(
            s,
            "history {} empty={} {}",
            layer, h.empty_layer, h.created_by
        );
    }
    s
}

#[test]
fn corpus_graphs() {
    insta::glob!("../../../tests/lower", "*.Dockerfile", |path| {
        let src = std::fs::read_to_string(path).unwrap();
        insta::assert_snapshot!(summary(&lower(&src)));
    });
}

fn run_digests(def: &Definition) -> BTreeMap<String, Digest> {
    def.vertices()
        .filter_map(|v| match v.op() {
            Op::Exec(e) => Some((
                e.args.last().cloned().unwrap_or_default(),
                v.digest().clone(),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn comments_and_blank_lines_do_not_change_digests() {
    let a = lower("FROM busybox:local\nRUN echo hi\nRUN echo two\n");
    let b = lower(
        "# a comment\nFROM busybox:local\n\n# more\nRUN echo hi\n   \nRUN echo two # not a comment\n",
    );
    assert_eq!(run_digests(&a)["echo hi"], run_digests(&b)["echo hi"]);
    let c = lower("FROM busybox:local\n# x\nRUN echo hi\nRUN echo two\n");
    assert_eq!(target(&a), target(&c));
}

#[test]
fn editing_an_unrelated_stage_keeps_digests() {
    let a = lower(
        "FROM alpine:latest AS other\nRUN echo one\nFROM busybox:local AS main\nRUN echo main\n",
    );
    let b = lower(
        "FROM alpine:latest AS other\nRUN echo CHANGED\nFROM busybox:local AS main\nRUN echo main\n",
    );
    assert_eq!(target(&a), target(&b));
    let mut o = opts();
    o.target = Some("other".into());
    let a = lower_with(
        "FROM alpine:latest AS other\nRUN echo one\nFROM busybox:local AS main\nRUN echo main\n",
        &o,
    )
    .unwrap();
    let b = lower_with(
        "FROM alpine:latest AS other\nRUN echo one\nFROM busybox:local AS main\nRUN echo CHANGED\n",
        &o,
    )
    .unwrap();
    assert_eq!(target(&a), target(&b));
}

#[test]
fn changing_a_run_changes_it_and_descendants_only() {
    let base = "FROM busybox:local\nRUN echo first\nRUN echo second\nRUN echo third\n";
    let edited = "FROM busybox:local\nRUN echo first\nRUN echo SECOND\nRUN echo third\n";
    let a = run_digests(&lower(base));
    let b = run_digests(&lower(edited));
    assert_eq!(a["echo first"], b["echo first"]);
    assert_ne!(a["echo second"], b["echo SECOND"]);
    assert_ne!(
        a["echo third"], b["echo third"],
        "a descendant changes with its input"
    );
}

#[test]
fn build_arg_of_one_stage_does_not_touch_another() {
    let src = "FROM busybox:local AS a\nARG V\nRUN echo $V\nFROM busybox:local AS b\nRUN echo b\nFROM scratch\nCOPY --from=a /x /a\nCOPY --from=b /x /b\n";
    let d1 = lower(src);
    let mut o = opts();
    o.build_args.insert("V".into(), "changed".into());
    let d2 = lower_with(src, &o).unwrap();
    let r1 = run_digests(&d1);
    let r2 = run_digests(&d2);
    assert_eq!(r1["echo b"], r2["echo b"]);
    assert_ne!(r1["echo $V"], r2["echo $V"]);
    assert_ne!(target(&d1), target(&d2));
}

#[test]
fn arg_values_reach_run_env_not_image_env() {
    let d = lower("FROM busybox:local\nARG V=1\nRUN echo $V\n");
    let v = d.vertex(&target(&d)).unwrap();
    let Op::Exec(e) = v.op() else { panic!() };
    assert!(e.env.contains(&"V=1".to_string()));
    assert!(
        !d.outputs()[0]
            .config
            .env
            .iter()
            .any(|x| x.starts_with("V="))
    );
    let d = lower("FROM busybox:local\nARG V\nRUN echo $V\n");
    let Op::Exec(e) = d.vertex(&target(&d)).unwrap().op() else {
        panic!()
    };
    assert!(
        !e.env.iter().any(|x| x.starts_with("V=")),
        "an ARG without value is absent"
    );
}

// --- --target pruning -----------------------------------------------------------------------

fn with_target(src: &str, t: &str) -> Result<Definition, Vec<Diagnostic>> {
    let mut o = opts();
    o.target = Some(t.into());
    lower_with(src, &o)
}

fn has_run(def: &Definition, cmd: &str) -> bool {
    def.vertices()
        .any(|v| matches!(v.op(), Op::Exec(e) if e.args.last().map(String::as_str) == Some(cmd)))
}

const THREE: &str = "FROM busybox:local AS a\nRUN echo a\nFROM alpine:latest AS b\nRUN echo b\nFROM a AS c\nRUN echo c\n";

#[test]
fn target_prunes_later_stages() {
    let d = with_target(THREE, "a").unwrap();
    assert!(has_run(&d, "echo a"));
    assert!(!has_run(&d, "echo b") && !has_run(&d, "echo c"));
    assert_eq!(d.outputs()[0].name, "a");
}

#[test]
fn target_keeps_base_stage_chain() {
    let d = with_target(THREE, "c").unwrap();
    assert!(has_run(&d, "echo a") && has_run(&d, "echo c"));
    assert!(!has_run(&d, "echo b"));
    assert!(!d.vertices().any(|v| matches!(v.op(), Op::Source(SourceOp::Image { reference, .. }) if reference == "alpine:latest")));
}

#[test]
fn default_target_is_last_stage_and_prunes_unused() {
    let d = lower(THREE);
    assert!(!has_run(&d, "echo b"));
    assert_eq!(d.outputs()[0].name, "c");
}

#[test]
fn target_is_case_insensitive() {
    let d = with_target(THREE, "B").unwrap();
    assert!(has_run(&d, "echo b") && !has_run(&d, "echo a"));
}

#[test]
fn unknown_target_lists_stages() {
    let e = with_target(THREE, "production").unwrap_err();
    assert_eq!(
        e[0].message,
        "target stage \"production\" could not be found"
    );
    assert_eq!(e[0].hint.as_deref(), Some("stages are: a, b, c"));
    let e = with_target(THREE, "cc").unwrap_err();
    assert!(e[0].hint.as_deref().unwrap().starts_with("did you mean c?"));
}

#[test]
fn parse_error_in_unused_stage_still_fails() {
    let src = "FROM busybox:local AS unused\nRUNN oops\nFROM busybox:local\nRUN true\n";
    let e = lower_with(src, &opts()).unwrap_err();
    assert_eq!(e[0].span.line, 2);
}

#[test]
fn target_pulls_copy_from_dependencies_only() {
    let src = "FROM alpine:latest AS dep\nRUN echo dep\nFROM alpine:latest AS unrelated\nRUN echo unrelated\nFROM busybox:local AS out\nCOPY --from=dep /x /x\n";
    let d = with_target(src, "out").unwrap();
    assert!(has_run(&d, "echo dep") && !has_run(&d, "echo unrelated"));
}

// --- ONBUILD ----------------------------------------------------------------------------------

fn history(def: &Definition) -> Vec<String> {
    def.outputs()[0]
        .history
        .iter()
        .map(|h| h.created_by.clone())
        .collect()
}

#[test]
fn onbuild_triggers_of_base_image_run_after_from() {
    let d = lower("FROM onbuild-base:1\nRUN echo after\n");
    assert_eq!(
        history(&d),
        vec![
            "RUN /bin/sh -c echo triggered > /trig # buildkit",
            "COPY . /app/ # buildkit",
            "RUN /bin/sh -c echo after # buildkit"
        ]
    );
    assert!(
        d.outputs()[0].config.on_build.is_empty(),
        "triggers are consumed"
    );
}

#[test]
fn onbuild_triggers_do_not_reach_grandchildren() {
    let d =
        lower("FROM onbuild-base:1 AS child\nRUN echo child\nFROM child\nRUN echo grandchild\n");
    let h = history(&d);
    assert_eq!(h.iter().filter(|x| x.contains("triggered")).count(), 1);
}

#[test]
fn onbuild_instructions_go_to_the_image_config() {
    let d = lower("FROM busybox:local\nONBUILD RUN echo later\nONBUILD COPY . /app\n");
    assert_eq!(
        d.outputs()[0].config.on_build,
        vec!["RUN echo later", "COPY . /app"]
    );
    assert!(!has_run(&d, "echo later"));
}

#[test]
fn onbuild_of_a_base_stage_runs_in_the_child() {
    let d = lower(
        "FROM busybox:local AS base\nONBUILD RUN echo trig\nRUN echo b\nFROM base\nRUN echo child\n",
    );
    assert!(has_run(&d, "echo trig"));
    assert!(d.outputs()[0].config.on_build.is_empty());
    let with_base = with_target("FROM busybox:local AS base\nONBUILD RUN echo trig\nRUN echo b\nFROM base\nRUN echo child\n", "base").unwrap();
    assert!(!has_run(&with_base, "echo trig"));
    assert_eq!(
        with_base.outputs()[0].config.on_build,
        vec!["RUN echo trig"]
    );
}

#[test]
fn onbuild_trigger_descriptions_are_marked() {
    let d = lower("FROM onbuild-base:1\nRUN echo after\n");
    let descs: Vec<String> = d
        .vertices()
        .filter_map(|v| d.meta(v.digest()))
        .map(|m| m.description.clone())
        .collect();
    assert!(
        descs
            .iter()
            .any(|x| x == "[2/4] ONBUILD RUN echo triggered > /trig"),
        "{descs:?}"
    );
    assert!(
        descs
            .iter()
            .any(|x| x == "[1/4] FROM docker.io/library/onbuild-base:1"),
        "{descs:?}"
    );
}

#[test]
fn onbuild_copy_from_a_stage_adds_the_dependency() {
    let d = lower(
        "FROM busybox:local AS src\nRUN echo s\nFROM busybox:local AS base\nONBUILD COPY --from=src /s /s\nFROM base\nRUN cat /s\n",
    );
    assert!(has_run(&d, "echo s"));
}

// --- docs' multi-stage examples ------------------------------------------------------------------

#[test]
fn go_build_copied_into_scratch() {
    let d = lower(
        "FROM golang:1.22 AS build\nWORKDIR /src\nCOPY . .\nRUN go build -o /out/app .\nFROM scratch\nCOPY --from=build /out/app /app\nENTRYPOINT [\"/app\"]\n",
    );
    let out = d.vertex(&target(&d)).unwrap();
    let Op::File(f) = out.op() else { panic!() };
    assert_eq!(f.actions.len(), 1);
    let inputs: Vec<&Op> = out
        .inputs()
        .iter()
        .map(|i| d.vertex(i).unwrap().op())
        .collect();
    assert!(matches!(inputs[0], Op::Source(SourceOp::Scratch)));
    assert!(
        matches!(inputs[1], Op::Exec(e) if e.args.last().map(String::as_str) == Some("go build -o /out/app ."))
    );
    let cfg = &d.outputs()[0].config;
    assert_eq!(cfg.entrypoint, Some(vec!["/app".to_string()]));
    assert_eq!(cfg.working_dir, "/");
}

#[test]
fn builder_fan_out_shares_the_base() {
    let d = lower(
        "FROM alpine:latest AS builder\nRUN echo base\nFROM builder AS build1\nRUN echo one\nFROM builder AS build2\nRUN echo two\nFROM scratch\nCOPY --from=build1 /one /\nCOPY --from=build2 /two /\n",
    );
    let base = d.vertices().find(|v| matches!(v.op(), Op::Exec(e) if e.args.last().map(String::as_str) == Some("echo base"))).unwrap().digest().clone();
    for cmd in ["echo one", "echo two"] {
        let v = d
            .vertices()
            .find(
                |v| matches!(v.op(), Op::Exec(e) if e.args.last().map(String::as_str) == Some(cmd)),
            )
            .unwrap();
        assert_eq!(v.inputs()[0], base);
    }
    assert_eq!(d.vertices().filter(|v| matches!(v.op(), Op::Exec(e) if e.args.last().map(String::as_str) == Some("echo base"))).count(), 1);
}

#[test]
fn copy_from_an_image_reference_is_an_image_source() {
    let d =
        lower("FROM busybox:local\nCOPY --from=nginx:latest /etc/nginx/nginx.conf /nginx.conf\n");
    let out = d.vertex(&target(&d)).unwrap();
    let src = d.vertex(&out.inputs()[1]).unwrap();
    assert!(
        matches!(src.op(), Op::Source(SourceOp::Image { reference, .. }) if reference == "nginx:latest")
    );
}

// --- history and config as Docker 20.10's BuildKit writes them ------------------------------------

#[test]
fn history_matches_the_engine() {
    let src = "FROM busybox:local\nARG A=1\nARG B\nARG C=x D\nENV E=5 F=\"six seven\"\nENV G h i\nLABEL l1=v1 \"l 2\"=\"v 2\"\nEXPOSE 80 443/UDP 8000-8002/tcp\nVOLUME /data [\"/other\"]\nVOLUME /x /y\nUSER nobody:nogroup\nUSER root\nWORKDIR /app\nWORKDIR sub\nSTOPSIGNAL SIGTERM\nHEALTHCHECK --interval=5s --timeout=3s --retries=2 CMD curl -f http://x/ || exit 1\nSHELL [\"/bin/sh\", \"-ec\"]\nRUN echo $A $B\nRUN [\"echo\", \"exec\"]\nCOPY --chown=1:2 --chmod=644 a.txt /dst/\nADD a.txt b.txt\nONBUILD RUN echo onbuild\nMAINTAINER someone <x@y>\nCMD echo cmd\nENTRYPOINT [\"/bin/echo\", \"e\"]\n";
    let mut o = opts();
    o.build_args.insert("B".into(), "bee".into());
    let d = lower_with(src, &o).unwrap();
    let got: Vec<(bool, String)> = d.outputs()[0]
        .history
        .iter()
        .map(|h| (h.empty_layer, h.created_by.clone()))
        .collect();
    let want: Vec<(bool, &str)> = vec![
        (true, "ARG A=1"),
        (true, "ARG B"),
        (true, "ARG C=x D"),
        (true, "ENV E=5 F=six seven"),
        (true, "ENV G=h i"),
        (true, "LABEL l1=v1 l 2=v 2"),
        (
            true,
            "EXPOSE map[443/udp:{} 80/tcp:{} 8000/tcp:{} 8001/tcp:{} 8002/tcp:{}]",
        ),
        (true, "VOLUME [/data [/other]]"),
        (true, "VOLUME [/x /y]"),
        (true, "USER nobody:nogroup"),
        (true, "USER root"),
        (false, "WORKDIR /app"),
        (false, "WORKDIR /app/sub"),
        (true, "STOPSIGNAL SIGTERM"),
        (
            true,
            "HEALTHCHECK &{[\"CMD-SHELL\" \"curl -f http://x/ || exit 1\"] \"5s\" \"3s\" \"0s\" '\\x02'}",
        ),
        (true, "SHELL [/bin/sh -ec]"),
        (
            false,
            "RUN |4 A=1 B=bee C=x D= /bin/sh -ec echo $A $B # buildkit",
        ),
        (false, "RUN |4 A=1 B=bee C=x D= echo exec # buildkit"),
        (false, "COPY a.txt /dst/ # buildkit"),
        (false, "ADD a.txt b.txt # buildkit"),
        (true, "MAINTAINER someone <x@y>"),
        (true, "CMD [\"/bin/sh\" \"-ec\" \"echo cmd\"]"),
        (true, "ENTRYPOINT [\"/bin/echo\" \"e\"]"),
    ];
    let want: Vec<(bool, String)> = want.into_iter().map(|(e, s)| (e, s.to_string())).collect();
    assert_eq!(got, want);
    let cfg = &d.outputs()[0].config;
    assert_eq!(
        cfg.env,
        vec![
            format!("PATH={}", xbuild_parser::lower::DEFAULT_PATH),
            "E=5".into(),
            "F=six seven".into(),
            "G=h i".into()
        ]
    );
    assert_eq!(cfg.user, "root");
    assert_eq!(cfg.working_dir, "/app/sub");
    assert!(cfg.args_escaped);
    assert_eq!(
        cfg.cmd,
        Some(vec!["/bin/sh".into(), "-ec".into(), "echo cmd".into()]),
        "a CMD set earlier in the stage survives ENTRYPOINT"
    );
    assert!(cfg.volumes.contains("[/other]"));
    assert_eq!(cfg.on_build, vec!["RUN echo onbuild"]);
}

#[test]
fn second_engine_observation() {
    let src = "ARG G1=glob\nARG G2\nFROM busybox:local AS base\nARG A=1\nARG X=$A-x\nARG G1\nARG A=2\nENV P=$A Q=${G1}\nEXPOSE 80\nEXPOSE 90 91/udp\nCOPY --chown=1:2 a.txt /c/\nUSER nobody\nWORKDIR rel\nHEALTHCHECK NONE\nMAINTAINER me\nRUN echo $A\nENTRYPOINT [\"/bin/true\"]\n";
    let d = lower(src);
    let got: Vec<String> = history(&d);
    assert_eq!(
        got,
        vec![
            "ARG A=1",
            "ARG X=1-x",
            "ARG G1",
            "ARG A=2",
            "ENV P=2 Q=glob",
            "EXPOSE map[80/tcp:{}]",
            "EXPOSE map[90/tcp:{} 91/udp:{}]",
            "COPY a.txt /c/ # buildkit",
            "USER nobody",
            "WORKDIR /rel",
            "HEALTHCHECK &{[\"NONE\"] \"0s\" \"0s\" \"0s\" '\\x00'}",
            "MAINTAINER me",
            "RUN |4 A=2 X=1-x G1=glob A=2 /bin/sh -c echo $A # buildkit",
            "ENTRYPOINT [\"/bin/true\"]",
        ]
    );
    let cfg = &d.outputs()[0].config;
    assert_eq!(cfg.cmd, None, "ENTRYPOINT resets the inherited CMD");
    assert!(!cfg.args_escaped);
    assert_eq!(cfg.healthcheck.as_ref().unwrap().test, vec!["NONE"]);
}

// --- errors -------------------------------------------------------------------------------------

fn err(src: &str) -> Diagnostic {
    lower_with(src, &opts()).unwrap_err().remove(0)
}

#[test]
fn lowering_errors_have_spans_and_hints() {
    let e = err("FROM busybox:local\nCOPY --from=nope /a /b\n");
    assert_eq!((e.span.line, e.span.col), (2, 6));
    assert!(e.message.contains("nope"), "{e:?}");
    let e = err("FROM busybox:local AS a\nCOPY --from=a /x /y\n");
    assert_eq!(e.message, "circular dependency detected on stage: a");
    let e = err(
        "FROM busybox:local AS a\nCOPY --from=b /x /y\nFROM busybox:local AS b\nFROM scratch\nCOPY --from=a /x /x\n",
    );
    assert!(
        e.message.starts_with(
            "cannot copy from stage \"b\", it needs to be defined before current stage"
        ),
        "{e:?}"
    );
    // Stages sharing a name are no error: the last one wins, as in Docker 20.10's BuildKit.
    lower("FROM busybox:local AS a\nFROM busybox:local AS a\nFROM scratch\nCOPY --from=a /x /y\n");
    let e = err("FROM later AS first\nFROM busybox:local AS later\nFROM first\n");
    assert!(
        e.hint
            .as_deref()
            .unwrap_or_default()
            .contains("defined later"),
        "{e:?}"
    );
    let e = err("FROM busybox:local\nCOPY --from=5 /x /y\n");
    assert_eq!(e.message, "invalid stage index 5");
    let e = err("FROM nope:1\n");
    assert!(
        e.message.contains("nope:1 is not in the local image store"),
        "{e:?}"
    );
    let e = err("ARG IMG\nFROM $IMG\n");
    assert_eq!(e.message, "base name ($IMG) should not be blank");
    let e = err("FROM busybox:local\nCOPY --chmod=999 a /b\n");
    assert!(e.message.starts_with("invalid chmod parameter"));
    let e = err("FROM busybox:local\nRUN --mount=type=bnd,target=/x true\n");
    assert!(e.message.contains("did you mean bind?"));
    let e = err("FROM busybox:local\nSTOPSIGNAL SIGFOO\n");
    assert_eq!(e.message, "Invalid signal: SIGFOO");
    let e = err("FROM busybox:local\nEXPOSE 99999\n");
    assert!(e.message.contains("invalid containerPort"));
    let e = err("FROM busybox:local\nCOPY --from=$NOPE /a /b\n");
    assert!(e.message.contains("expands to an empty value"));
}

#[test]
fn undefined_variables_and_unused_build_args_are_warnings() {
    let parsed = parse("FROM busybox:local\nRUN echo hi\nENV X=$UNDEFINED\n");
    let mut o = opts();
    o.build_args.insert("UNUSED".into(), "1".into());
    let l = lower_with_warnings(&parsed.dockerfile, &o, &Canned).unwrap();
    let msgs: Vec<&str> = l.warnings.iter().map(|w| w.message.as_str()).collect();
    assert!(
        msgs.contains(&"Usage of undefined variable '$UNDEFINED'"),
        "{msgs:?}"
    );
    assert!(
        msgs.contains(&"build argument UNUSED was not consumed by any stage"),
        "{msgs:?}"
    );
}

#[test]
fn serialization_round_trips_keep_digests() {
    let d = lower(
        "FROM golang:1.22 AS build\nRUN --mount=type=cache,target=/c go build\nFROM scratch\nCOPY --from=build /a /a\n",
    );
    let json = d.to_json().unwrap();
    let back = Definition::from_json(&json).unwrap();
    assert_eq!(back.to_json().unwrap(), json);
    let bin = d.to_cbor().unwrap();
    let back = Definition::from_cbor(&bin).unwrap();
    assert_eq!(target(&back), target(&d));
    assert!(bin.len() < json.len());
}

#[test]
fn labels_and_platform_options() {
    let mut o = opts();
    o.labels.insert("org.example".into(), "1".into());
    o.platform.architecture = "arm64".into();
    let d = lower_with("FROM scratch\nCOPY a /a\n", &o).unwrap();
    assert_eq!(d.outputs()[0].config.labels["org.example"], "1");
    assert_eq!(d.outputs()[0].architecture, "arm64");
    o.exclude_patterns = vec!["*.md".into()];
    let d = lower_with("FROM scratch\nCOPY a /a\n", &o).unwrap();
    assert!(d.vertices().any(|v| matches!(v.op(), Op::Source(SourceOp::Local { exclude_patterns, .. }) if exclude_patterns == &vec!["*.md".to_string()])));
}

#[test]
fn maintainer_sets_the_image_author_and_stages_inherit_it() {
    let def = lower(
        "FROM busybox:local AS base\nMAINTAINER Jane <jane@example.com>\nFROM base\nRUN true\n",
    );
    let out = &def.outputs()[0];
    assert_eq!(out.author.as_deref(), Some("Jane <jane@example.com>"));
    let def = lower("FROM busybox:local\nRUN true\n");
    assert_eq!(
        def.outputs()[0].author,
        None,
        "the base image's author is kept"
    );
}

#[test]
fn proxy_build_args_reach_run_without_arg_and_stay_out_of_keys_and_history() {
    let src = "FROM busybox:local\nRUN wget -O- http://example.com/\n";
    let plain = lower_with(src, &opts()).unwrap();
    let mut o = opts();
    o.build_args
        .insert("http_proxy".into(), "http://proxy:3128".into());
    o.build_args.insert("NO_PROXY".into(), "localhost".into());
    o.build_args.insert("HTTPS_PROXY".into(), String::new());
    let (d, warnings) = {
        let parsed = parse(src);
        let l = lower_with_warnings(&parsed.dockerfile, &o, &Canned).unwrap();
        (l.definition, l.warnings)
    };
    assert_eq!(
        d.proxy_env(),
        [
            "HTTP_PROXY=http://proxy:3128",
            "http_proxy=http://proxy:3128",
            "NO_PROXY=localhost",
            "no_proxy=localhost"
        ]
    );
    assert!(plain.proxy_env().is_empty());
    // Not in any vertex digest, the RUN's env, the image config or history.
    assert_eq!(target(&d), target(&plain));
    let out = &d.outputs()[0];
    assert!(
        out.config
            .env
            .iter()
            .all(|e| !e.to_ascii_lowercase().contains("proxy"))
    );
    assert!(out.history.iter().all(|h| !h.created_by.contains("proxy")));
    assert!(
        warnings
            .iter()
            .all(|w| !w.message.contains("proxy") && !w.message.contains("PROXY"))
    );
    // The proxy variables travel with the definition to a worker.
    let back = Definition::from_cbor(&d.to_cbor().unwrap()).unwrap();
    assert_eq!(back.proxy_env(), d.proxy_env());
    let json = Definition::from_json(&d.to_json().unwrap()).unwrap();
    assert_eq!(json.proxy_env(), d.proxy_env());
}

#[test]
fn declared_proxy_arg_is_an_ordinary_arg_too() {
    let src = "FROM busybox:local\nARG HTTP_PROXY\nRUN true\n";
    let mut o = opts();
    o.build_args
        .insert("HTTP_PROXY".into(), "http://p:1".into());
    let d = lower_with(src, &o).unwrap();
    let run = d
        .vertices()
        .find_map(|v| match v.op() {
            Op::Exec(e) => Some(e.clone()),
            _ => None,
        })
        .unwrap();
    assert!(run.env.contains(&"HTTP_PROXY=http://p:1".to_string()));
    let h = &d.outputs()[0].history;
    assert!(
        h.last()
            .unwrap()
            .created_by
            .starts_with("RUN |1 HTTP_PROXY=http://p:1 ")
    );
}

#[test]
fn from_platform_reaches_the_resolver() {
    let src = "FROM --platform=linux/arm64 busybox:local AS cross\nRUN true\nFROM busybox:local\nCOPY --from=cross /x /x\n";
    let d = lower_with(src, &opts()).unwrap();
    let images: Vec<Digest> = d
        .vertices()
        .filter_map(|v| match v.op() {
            Op::Source(SourceOp::Image { digest, .. }) => Some(digest.clone()),
            _ => None,
        })
        .collect();
    assert!(images.contains(&Digest::of(b"busybox:local linux/arm64")));
    assert!(images.contains(&Digest::of(b"busybox:local")));
    // The final stage has no --platform: the build's platform.
    assert_eq!(d.outputs()[0].architecture, "amd64");
    let d = lower_with("FROM --platform=linux/arm64 busybox:local\n", &opts()).unwrap();
    assert_eq!(d.outputs()[0].architecture, "arm64");
}

#[test]
fn from_platform_expands_args_and_predefined_platform_args() {
    let src = "ARG P=linux/arm64\nFROM --platform=$P busybox:local AS a\nFROM --platform=$BUILDPLATFORM busybox:local\nCOPY --from=a / /\n";
    let d = lower_with(src, &opts()).unwrap();
    assert!(d.vertices().any(|v| matches!(v.op(), Op::Source(SourceOp::Image { digest, .. }) if *digest == Digest::of(b"busybox:local linux/arm64"))));
    assert_eq!(d.outputs()[0].architecture, "amd64");
    // COPY --from=<image> resolves for the stage's platform.
    let d = lower_with(
        "FROM --platform=linux/arm64 busybox:local\nCOPY --from=alpine:latest /x /x\n",
        &opts(),
    )
    .unwrap();
    assert!(d.vertices().any(|v| matches!(v.op(), Op::Source(SourceOp::Image { digest, .. }) if *digest == Digest::of(b"alpine:latest linux/arm64"))));
}

#[test]
fn from_platform_errors_name_the_flag() {
    let e = lower_with("FROM --platform=linux/arm64/v8/x busybox:local\n", &opts()).unwrap_err();
    assert!(
        e[0].message
            .starts_with("failed to parse platform linux/arm64/v8/x"),
        "{e:?}"
    );
    let e = lower_with("ARG P\nFROM --platform=$P busybox:local\n", &opts()).unwrap_err();
    assert_eq!(e[0].message, "empty platform value from expression $P");
    assert_eq!(e[0].span.line, 2);
}

//! The build graph language of xbuild.
//!
//! A [`Definition`] is a DAG of [`Vertex`]es, each an [`Op`] (a source, an exec, a chain of file
//! actions) over the outputs of its inputs. A vertex's [`Digest`] is the sha256 of its op's
//! canonical form and its inputs' digests, so equal work has equal names across runs, machines
//! and serde round-trips.
//!
//! Invariant: this crate is pure. It does no I/O, and nothing but an op and its inputs' digests
//! (no time, path of a root or hash-map order) enters a digest.
//!
//! ```
//! use xbuild_llb::{Definition, ExecOp, NetworkMode, Op, SourceOp};
//!
//! let mut def = Definition::new();
//! let root = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
//! let run = Op::Exec(ExecOp {
//!     args: vec!["/bin/sh".into(), "-c".into(), "echo hi".into()],
//!     env: vec!["PATH=/bin".into()],
//!     cwd: "/".into(),
//!     user: String::new(),
//!     network: NetworkMode::Default,
//!     security: Default::default(),
//!     mounts: vec![],
//! });
//! let step = def.add(run, vec![root.clone()]).unwrap();
//! assert_eq!(def.vertex(&step).unwrap().inputs(), &[root]);
//! ```
#![forbid(unsafe_code)]

mod definition;
mod digest;
mod image;
mod op;
pub mod path;
pub mod platform;
pub mod reference;
mod stamp;

pub use definition::{Definition, Vertex, VertexMeta, vertex_digest};
pub use digest::{Digest, DigestBuilder};
pub use image::{Healthcheck, HistoryEntry, ImageConfig, Output};
pub use op::{
    CacheSharing, Chmod, Chown, CopyAction, ExecOp, FileAction, FileOp, IdSpec, MergeOp,
    MkdirAction, MkfileAction, Mount, MountKind, NetworkMode, Op, RmAction, Security, SourceOp,
    SymlinkAction,
};
pub use platform::Platform;
pub use stamp::{FileStamp, nanos};

/// What can go wrong building or loading a graph.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// Text that is not a `sha256:<64 lowercase hex>` digest.
    #[error("invalid digest {0:?}: expected sha256:<64 lowercase hex digits>")]
    BadDigest(String),
    /// A vertex or output names an input that is not in the graph.
    #[error("input {0} is not in the graph; add inputs before the vertices that use them")]
    UnknownInput(Digest),
    /// An op has fewer inputs than it refers to.
    #[error("{kind} op needs {needed} input(s) but has {got}")]
    InputCount {
        /// The op's kind.
        kind: &'static str,
        /// How many inputs it refers to.
        needed: usize,
        /// How many it has.
        got: usize,
    },
    /// A serialized vertex claims a digest its content does not hash to.
    #[error("vertex claims digest {claimed} but hashes to {computed}")]
    DigestMismatch {
        /// The digest written in the serialized graph.
        claimed: Digest,
        /// The digest computed from the op and inputs.
        computed: Digest,
    },
    /// Malformed serialized graph.
    #[error("invalid serialized definition: {0}")]
    Serialize(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    fn run(def: &mut Definition, root: &Digest, cmd: &str) -> Digest {
        def.add(
            Op::Exec(ExecOp {
                args: vec!["/bin/sh".into(), "-c".into(), cmd.into()],
                env: vec![],
                cwd: "/".into(),
                user: String::new(),
                network: NetworkMode::Default,
                security: Security::Sandbox,
                mounts: vec![],
            }),
            vec![root.clone()],
        )
        .unwrap()
    }

    #[test]
    fn golden_digests_are_stable() {
        let mut def = Definition::new();
        let scratch = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
        assert_eq!(
            scratch.as_str(),
            "sha256:11cdb554e6cd5508ac03b277221939f1e445d15c30971fc87eb658342ef16840",
            "changing the canonical form of ops changes every cache key: bump the domain tag on purpose"
        );
        let r = run(&mut def, &scratch, "echo hi");
        assert_eq!(
            r.as_str(),
            "sha256:f3289aa3a34c5eb37ae0d00ba05596cb437ece9df37c19d94435c6f114750375"
        );
    }

    #[test]
    fn identical_vertices_are_shared() {
        let mut def = Definition::new();
        let s = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
        let a = run(&mut def, &s, "x");
        let b = run(&mut def, &s, "x");
        assert_eq!(a, b);
        assert_eq!(def.len(), 2);
    }

    #[test]
    fn digest_depends_on_inputs() {
        let mut def = Definition::new();
        let s = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
        let a = run(&mut def, &s, "a");
        let on_s = run(&mut def, &s, "b");
        let on_a = run(&mut def, &a, "b");
        assert_ne!(on_s, on_a);
    }

    #[test]
    fn unknown_input_is_an_error() {
        let mut def = Definition::new();
        let err = def
            .add(
                Op::Exec(ExecOp {
                    args: vec!["true".into()],
                    env: vec![],
                    cwd: "/".into(),
                    user: String::new(),
                    network: NetworkMode::None,
                    security: Security::Sandbox,
                    mounts: vec![],
                }),
                vec![Digest::of(b"nope")],
            )
            .unwrap_err();
        assert!(matches!(err, Error::UnknownInput(_)));
    }

    #[test]
    fn json_round_trip_keeps_digests() {
        let mut def = Definition::new();
        let s = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
        let r = run(&mut def, &s, "echo hi");
        def.set_meta(
            &r,
            VertexMeta {
                description: "[1/1] RUN echo hi".into(),
                file: Some("Dockerfile".into()),
                line: Some(2),
            },
        );
        def.add_output(Output {
            name: "default".into(),
            vertex: r.clone(),
            config: ImageConfig::default(),
            history: vec![],
            os: "linux".into(),
            architecture: "amd64".into(),
            variant: None,
            author: None,
        })
        .unwrap();
        let json = def.to_json().unwrap();
        let back = Definition::from_json(&json).unwrap();
        assert_eq!(back.vertex(&r).unwrap(), def.vertex(&r).unwrap());
        assert_eq!(back.meta(&r), def.meta(&r));
        assert_eq!(back.outputs(), def.outputs());
        assert_eq!(back.to_json().unwrap(), json);
    }

    #[test]
    fn tampered_json_is_rejected() {
        let mut def = Definition::new();
        let s = def.add(Op::Source(SourceOp::Scratch), vec![]).unwrap();
        run(&mut def, &s, "echo hi");
        let json = def.to_json().unwrap().replace("echo hi", "echo pwned");
        assert!(matches!(
            Definition::from_json(&json),
            Err(Error::DigestMismatch { .. })
        ));
    }
}

//! A [`Definition`]: the DAG of vertices plus the build's named outputs.

use petgraph::graph::{DiGraph, NodeIndex};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, HashMap};
use std::fmt::Write as _;

use crate::digest::DigestBuilder;
use crate::image::Output;
use crate::op::{FileAction, MountKind, Op};
use crate::{Digest, Error};

/// One op with the digests of its inputs and its own digest.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Vertex {
    op: Op,
    inputs: Vec<Digest>,
    digest: Digest,
}

impl Vertex {
    /// The op.
    pub fn op(&self) -> &Op {
        &self.op
    }

    /// The inputs' digests, in the order the op refers to them.
    pub fn inputs(&self) -> &[Digest] {
        &self.inputs
    }

    /// The vertex's digest: the hash of its op's canonical form and its inputs' digests.
    pub fn digest(&self) -> &Digest {
        &self.digest
    }
}

/// Where a vertex came from, for progress and errors; not part of any digest.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct VertexMeta {
    /// What progress shows, e.g. `[2/4] RUN make`.
    pub description: String,
    /// The file the instruction is in.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub file: Option<String>,
    /// The instruction's first line (1-based).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub line: Option<u32>,
}

/// A build graph: vertices in an order where inputs come first, and named outputs.
#[derive(Clone, Debug, Default)]
pub struct Definition {
    graph: DiGraph<Vertex, usize>,
    index: HashMap<Digest, NodeIndex>,
    meta: BTreeMap<Digest, VertexMeta>,
    outputs: Vec<Output>,
    proxy_env: Vec<String>,
}

/// The serialized form: vertices in insertion order, digests recomputed on load.
#[derive(Serialize, Deserialize)]
struct Wire {
    vertices: Vec<WireVertex>,
    #[serde(default)]
    meta: BTreeMap<Digest, VertexMeta>,
    #[serde(default)]
    outputs: Vec<Output>,
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    proxy_env: Vec<String>,
}

#[derive(Serialize, Deserialize)]
struct WireVertex {
    digest: Digest,
    op: Op,
    #[serde(default)]
    inputs: Vec<Digest>,
}

/// The digest a vertex with this op and these inputs has.
pub fn vertex_digest(op: &Op, inputs: &[Digest]) -> Digest {
    let mut b = DigestBuilder::new("xbuild-llb-vertex-v1");
    b.part(&op.canonical_bytes());
    for i in inputs {
        b.part(i.as_str().as_bytes());
    }
    b.finish()
}

impl Definition {
    /// An empty graph.
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds a vertex (or finds the identical one already there) and returns its digest.
    ///
    /// Every input must already be in the graph, so a definition is acyclic by construction.
    pub fn add(&mut self, op: Op, inputs: Vec<Digest>) -> Result<Digest, Error> {
        validate(&op, &inputs)?;
        let digest = vertex_digest(&op, &inputs);
        if self.index.contains_key(&digest) {
            return Ok(digest);
        }
        let mut input_nodes = Vec::with_capacity(inputs.len());
        for i in &inputs {
            let n = self
                .index
                .get(i)
                .ok_or_else(|| Error::UnknownInput(i.clone()))?;
            input_nodes.push(*n);
        }
        let node = self.graph.add_node(Vertex {
            op,
            inputs,
            digest: digest.clone(),
        });
        for (pos, n) in input_nodes.into_iter().enumerate() {
            self.graph.add_edge(n, node, pos);
        }
        self.index.insert(digest.clone(), node);
        Ok(digest)
    }

    /// Records where a vertex came from (first description wins when ops are shared).
    pub fn set_meta(&mut self, digest: &Digest, meta: VertexMeta) {
        self.meta.entry(digest.clone()).or_insert(meta);
    }

    /// A vertex's metadata, if any was recorded.
    pub fn meta(&self, digest: &Digest) -> Option<&VertexMeta> {
        self.meta.get(digest)
    }

    /// Sets the proxy variables (`HTTP_PROXY=…`, `http_proxy=…`, …) every exec gets after its
    /// own environment, as BuildKit's `ProxyEnv`: they come from the build arguments, need no
    /// `ARG`, and are part of no digest or cache key, so a change of proxy reuses the cache.
    pub fn set_proxy_env(&mut self, env: Vec<String>) {
        self.proxy_env = env;
    }

    /// The proxy variables every exec gets (see [`set_proxy_env`](Self::set_proxy_env)).
    pub fn proxy_env(&self) -> &[String] {
        &self.proxy_env
    }

    /// Adds a named output.
    pub fn add_output(&mut self, output: Output) -> Result<(), Error> {
        if !self.index.contains_key(&output.vertex) {
            return Err(Error::UnknownInput(output.vertex));
        }
        self.outputs.push(output);
        Ok(())
    }

    /// The outputs.
    pub fn outputs(&self) -> &[Output] {
        &self.outputs
    }

    /// The vertex with this digest.
    pub fn vertex(&self, digest: &Digest) -> Option<&Vertex> {
        self.index.get(digest).map(|n| &self.graph[*n])
    }

    /// Every vertex, inputs before the vertices that use them.
    pub fn vertices(&self) -> impl Iterator<Item = &Vertex> {
        self.graph.node_weights()
    }

    /// The number of vertices.
    pub fn len(&self) -> usize {
        self.graph.node_count()
    }

    /// True when the graph has no vertex.
    pub fn is_empty(&self) -> bool {
        self.graph.node_count() == 0
    }

    /// The underlying petgraph graph (edges point from an input to its user; weight = input slot).
    pub fn graph(&self) -> &DiGraph<Vertex, usize> {
        &self.graph
    }

    /// Serializes to JSON (for debugging and for the wire).
    pub fn to_json(&self) -> Result<String, Error> {
        serde_json::to_string_pretty(&self.wire()).map_err(|e| Error::Serialize(e.to_string()))
    }

    /// Loads a definition from [`to_json`](Self::to_json)'s output, recomputing and checking
    /// every digest.
    pub fn from_json(text: &str) -> Result<Self, Error> {
        let wire: Wire = serde_json::from_str(text).map_err(|e| Error::Serialize(e.to_string()))?;
        Self::from_wire(wire)
    }

    fn from_wire(wire: Wire) -> Result<Self, Error> {
        let mut def = Definition::new();
        for v in wire.vertices {
            let got = def.add(v.op, v.inputs)?;
            if got != v.digest {
                return Err(Error::DigestMismatch {
                    claimed: v.digest,
                    computed: got,
                });
            }
        }
        for (d, m) in wire.meta {
            if def.index.contains_key(&d) {
                def.meta.insert(d, m);
            }
        }
        for o in wire.outputs {
            def.add_output(o)?;
        }
        def.proxy_env = wire.proxy_env;
        Ok(def)
    }

    /// Serializes to CBOR: the compact binary form for sending a definition to a worker.
    pub fn to_cbor(&self) -> Result<Vec<u8>, Error> {
        let mut out = Vec::new();
        ciborium::into_writer(&self.wire(), &mut out)
            .map_err(|e| Error::Serialize(e.to_string()))?;
        Ok(out)
    }

    /// Loads a definition from [`to_cbor`](Self::to_cbor)'s output, recomputing and checking
    /// every digest.
    pub fn from_cbor(bytes: &[u8]) -> Result<Self, Error> {
        let wire: Wire =
            ciborium::from_reader(bytes).map_err(|e| Error::Serialize(e.to_string()))?;
        Self::from_wire(wire)
    }

    fn wire(&self) -> Wire {
        Wire {
            vertices: self
                .vertices()
                .map(|v| WireVertex {
                    digest: v.digest.clone(),
                    op: v.op.clone(),
                    inputs: v.inputs.clone(),
                })
                .collect(),
            meta: self.meta.clone(),
            outputs: self.outputs.clone(),
            proxy_env: self.proxy_env.clone(),
        }
    }

    /// Graphviz text: one node per vertex labelled with its kind, description and short digest.
    pub fn to_dot(&self) -> String {
        let mut s = String::from("digraph llb {\n  rankdir=BT;\n");
        for v in self.vertices() {
            let desc = self
                .meta(&v.digest)
                .map(|m| m.description.as_str())
                .unwrap_or("");
            let label = format!("{} {}\\n{}", v.op.kind(), desc, v.digest.short());
            let _ = writeln!(
                s,
                "  \"{}\" [label=\"{}\"];",
                v.digest.hex(),
                label.replace('"', "\\\"")
            );
            for i in &v.inputs {
                let _ = writeln!(s, "  \"{}\" -> \"{}\";", i.hex(), v.digest.hex());
            }
        }
        s.push_str("}\n");
        s
    }
}

fn validate(op: &Op, inputs: &[Digest]) -> Result<(), Error> {
    let needed = match op {
        Op::Source(_) => 0,
        Op::Exec(e) => e
            .mounts
            .iter()
            .filter_map(|m| match &m.kind {
                MountKind::Bind { input, .. } => Some(input + 1),
                MountKind::Cache {
                    seed: Some((input, _)),
                    ..
                } => Some(input + 1),
                _ => None,
            })
            .fold(1, usize::max),
        Op::File(f) => f
            .actions
            .iter()
            .filter_map(|a| match a {
                FileAction::Copy(c) => Some(c.input + 1),
                _ => None,
            })
            .fold(1, usize::max),
        Op::Merge(_) => 1,
    };
    let ok = match op {
        Op::Source(_) => inputs.is_empty(),
        _ => inputs.len() >= needed,
    };
    if ok {
        Ok(())
    } else {
        Err(Error::InputCount {
            kind: op.kind(),
            needed,
            got: inputs.len(),
        })
    }
}

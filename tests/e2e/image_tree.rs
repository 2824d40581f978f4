//! Images as filesystem trees: layers applied in order with OCI whiteouts, from an OCI layout
//! (xbuild's output) or a `docker save` archive (Docker's), for comparing file by file.

use std::collections::BTreeMap;
use std::io::Read;
use std::path::Path;

/// One file of a flattened image, as compared: type, mode, owner, content, link target.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Node {
    pub kind: char,
    pub mode: u32,
    pub uid: u64,
    pub gid: u64,
    pub content: Vec<u8>,
    pub link: Option<String>,
}

impl std::fmt::Display for Node {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {:04o} {}:{}",
            self.kind, self.mode, self.uid, self.gid
        )?;
        if let Some(l) = &self.link {
            write!(f, " -> {l}")?;
        }
        if self.kind == 'f' {
            let shown: String = String::from_utf8_lossy(&self.content)
                .chars()
                .take(60)
                .collect();
            write!(f, " {} bytes {shown:?}", self.content.len())?;
        }
        Ok(())
    }
}

/// A flattened filesystem: path (no leading `/`, no trailing `/`) → node.
pub type Tree = BTreeMap<String, Node>;

fn clean(p: &str) -> String {
    p.trim_start_matches("./")
        .trim_start_matches('/')
        .trim_end_matches('/')
        .to_string()
}

/// Applies one layer tar (gzip detected by magic) on top of `tree`.
pub fn apply_layer(tree: &mut Tree, mut data: Vec<u8>) {
    if data.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        flate2::read::MultiGzDecoder::new(&data[..])
            .read_to_end(&mut out)
            .unwrap();
        data = out;
    } else if data.starts_with(&[0x28, 0xb5, 0x2f, 0xfd]) {
        data = zstd_decode(&data);
    }
    let mut ar = tar::Archive::new(&data[..]);
    let mut hard: Vec<(String, String)> = Vec::new();
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let path = clean(&String::from_utf8_lossy(&e.path_bytes()));
        if path.is_empty() {
            continue;
        }
        let (dir, base) = match path.rsplit_once('/') {
            Some((d, b)) => (d.to_string(), b.to_string()),
            None => (String::new(), path.clone()),
        };
        if base == ".wh..wh..opq" {
            let prefix = format!("{dir}/");
            tree.retain(|k, _| !k.starts_with(&prefix));
            continue;
        }
        if let Some(hidden) = base.strip_prefix(".wh.") {
            let gone = if dir.is_empty() {
                hidden.to_string()
            } else {
                format!("{dir}/{hidden}")
            };
            let prefix = format!("{gone}/");
            tree.retain(|k, _| k != &gone && !k.starts_with(&prefix));
            continue;
        }
        let h = e.header().clone();
        let kind = match h.entry_type() {
            tar::EntryType::Directory => 'd',
            tar::EntryType::Symlink => 'l',
            tar::EntryType::Link => {
                let target = clean(&h.link_name().unwrap().unwrap().to_string_lossy());
                hard.push((path, target));
                continue;
            }
            tar::EntryType::Char => 'c',
            tar::EntryType::Block => 'b',
            tar::EntryType::Fifo => 'p',
            _ => 'f',
        };
        let mut content = Vec::new();
        e.read_to_end(&mut content).unwrap();
        // A non-directory replaces a directory with everything in it.
        if kind != 'd' {
            let prefix = format!("{path}/");
            tree.retain(|k, _| !k.starts_with(&prefix));
        }
        tree.insert(
            path,
            Node {
                kind,
                mode: h.mode().unwrap() & 0o7777,
                uid: h.uid().unwrap(),
                gid: h.gid().unwrap(),
                content,
                link: (kind == 'l').then(|| {
                    h.link_name()
                        .unwrap()
                        .unwrap()
                        .to_string_lossy()
                        .into_owned()
                }),
            },
        );
    }
    for (path, target) in hard {
        if let Some(n) = tree.get(&target).cloned() {
            tree.insert(path, n);
        }
    }
}

fn zstd_decode(data: &[u8]) -> Vec<u8> {
    let out = std::process::Command::new("zstd")
        .args(["-d", "-c"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut c| {
            use std::io::Write;
            c.stdin.take().unwrap().write_all(data)?;
            c.wait_with_output()
        })
        .expect("zstd must be installed to read zstd layers");
    out.stdout
}

/// The flattened filesystem and config of the single image in an OCI layout directory.
pub fn from_oci_layout(dir: &Path) -> (Tree, serde_json::Value) {
    let blob = |d: &str| {
        std::fs::read(
            dir.join("blobs/sha256")
                .join(d.trim_start_matches("sha256:")),
        )
        .unwrap()
    };
    let index: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.join("index.json")).unwrap()).unwrap();
    let mdigest = index["manifests"][0]["digest"].as_str().unwrap();
    let manifest: serde_json::Value = serde_json::from_slice(&blob(mdigest)).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&blob(manifest["config"]["digest"].as_str().unwrap())).unwrap();
    let mut tree = Tree::new();
    for l in manifest["layers"].as_array().unwrap() {
        apply_layer(&mut tree, blob(l["digest"].as_str().unwrap()));
    }
    (tree, config)
}

/// The flattened filesystem and config of the image in a `docker save` archive.
pub fn from_docker_save(archive: &Path) -> (Tree, serde_json::Value) {
    let mut files: BTreeMap<String, Vec<u8>> = BTreeMap::new();
    // `docker save` writes a layer byte-identical to an earlier one as a symlink to it
    // (`<id>/layer.tar -> ../<other>/layer.tar`): resolved once every file is read.
    let mut links: Vec<(String, String)> = Vec::new();
    let mut ar = tar::Archive::new(std::fs::File::open(archive).unwrap());
    for e in ar.entries().unwrap() {
        let mut e = e.unwrap();
        let p = clean(&e.path().unwrap().to_string_lossy());
        if e.header().entry_type() == tar::EntryType::Symlink {
            let target = e
                .link_name()
                .unwrap()
                .unwrap()
                .to_string_lossy()
                .into_owned();
            let mut resolved: Vec<&str> = p.split('/').collect();
            resolved.pop();
            for c in target.split('/') {
                match c {
                    "" | "." => {}
                    ".." => {
                        resolved.pop();
                    }
                    c => resolved.push(c),
                }
            }
            let resolved = resolved.join("/");
            links.push((p, resolved));
            continue;
        }
        let mut data = Vec::new();
        e.read_to_end(&mut data).unwrap();
        files.insert(p, data);
    }
    for (link, target) in links {
        let data = files
            .get(&target)
            .unwrap_or_else(|| panic!("{link} links to {target}, not in the archive"))
            .clone();
        files.insert(link, data);
    }
    let manifest: serde_json::Value = serde_json::from_slice(&files["manifest.json"]).unwrap();
    let config: serde_json::Value =
        serde_json::from_slice(&files[manifest[0]["Config"].as_str().unwrap()]).unwrap();
    let mut tree = Tree::new();
    for l in manifest[0]["Layers"].as_array().unwrap() {
        apply_layer(&mut tree, files[&clean(l.as_str().unwrap())].clone());
    }
    (tree, config)
}

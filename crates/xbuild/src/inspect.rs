//! What `xbuild inspect` prints: the shape of `docker image inspect` (a JSON array of objects
//! with `Id`, `RepoTags`, `RepoDigests`, `Config` holding the container config, `RootFS`, …),
//! so that Docker's idioms (`{{json .Config.Labels}}`, `.[0].Id`) work; and, with `--raw`, the
//! stored manifest and OCI config as they are.

use std::collections::BTreeMap;

use serde::Serialize;
use xbuild_cache::oci::{Healthcheck, ImageConfig, ImageConfigFile, Manifest};
use xbuild_llb::Digest;

use crate::ImageDetails;

/// Docker's zero time, what it prints for an image never tagged locally.
const ZERO_TIME: &str = "0001-01-01T00:00:00Z";

/// One image as `docker image inspect` prints it (Docker 20.10's fields, in its order, and the
/// manifest's `Descriptor` as newer Docker engines add it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerImage {
    /// The image ID: the config digest.
    pub id: Digest,
    /// `name:tag` of every tag pointing at the image.
    pub repo_tags: Vec<String>,
    /// `name@sha256:…` (the manifest digest) for every repository tagged with the image: each
    /// resolves to it from the store (`FROM name@sha256:…`).
    pub repo_digests: Vec<String>,
    /// Always empty (BuildKit images have no parent).
    pub parent: String,
    /// The config's last history comment, as Docker shows it.
    pub comment: String,
    /// When the image was created (the config's `created`).
    pub created: String,
    /// Always empty (no build container is recorded).
    pub container: String,
    /// An empty container config, as Docker shows for BuildKit-built images.
    pub container_config: DockerConfig,
    /// Always empty (not built by a Docker daemon).
    pub docker_version: String,
    /// `MAINTAINER`.
    pub author: String,
    /// The container config: `Env`, `Cmd`, `Entrypoint`, `Labels`, `WorkingDir`, …
    pub config: DockerConfig,
    /// CPU architecture.
    pub architecture: String,
    /// CPU variant, when the config has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// OS.
    pub os: String,
    /// Bytes of file content in the layers.
    pub size: u64,
    /// The same as `Size` (Docker 20.10 still prints it).
    pub virtual_size: u64,
    /// The layers' diff IDs.
    #[serde(rename = "RootFS")]
    pub rootfs: DockerRootFs,
    /// When the image entered the store.
    pub metadata: DockerMetadata,
    /// The image manifest's descriptor (media type, digest, size).
    pub descriptor: DockerDescriptor,
}

/// `RootFS` of [`DockerImage`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerRootFs {
    /// Always `layers`.
    #[serde(rename = "Type")]
    pub typ: String,
    /// The uncompressed layer digests, base first.
    pub layers: Vec<Digest>,
}

/// `Metadata` of [`DockerImage`].
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerMetadata {
    /// When the image was recorded in this store (Docker's zero time when unknown).
    pub last_tag_time: String,
}

/// `Descriptor` of [`DockerImage`]: the manifest (lower camel case, as Docker prints it).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct DockerDescriptor {
    /// The manifest's media type.
    pub media_type: String,
    /// The manifest digest.
    pub digest: Digest,
    /// The manifest's size in bytes.
    pub size: u64,
}

/// Docker's container config (`container.Config`), its fields in Go's order, `null` where Go
/// prints `null`, and the `omitempty` ones left out when empty.
#[derive(Clone, Debug, Default, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct DockerConfig {
    /// Always empty.
    pub hostname: String,
    /// Always empty.
    pub domainname: String,
    /// `USER`.
    pub user: String,
    /// Always false.
    pub attach_stdin: bool,
    /// Always false.
    pub attach_stdout: bool,
    /// Always false.
    pub attach_stderr: bool,
    /// `EXPOSE`.
    #[serde(skip_serializing_if = "empty_map")]
    pub exposed_ports: Option<BTreeMap<String, serde_json::Value>>,
    /// Always false.
    pub tty: bool,
    /// Always false.
    pub open_stdin: bool,
    /// Always false.
    pub stdin_once: bool,
    /// `ENV`.
    pub env: Option<Vec<String>>,
    /// `CMD`.
    pub cmd: Option<Vec<String>>,
    /// `HEALTHCHECK`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Whether CMD/ENTRYPOINT were written in shell form (BuildKit's ArgsEscaped).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub args_escaped: bool,
    /// Always empty.
    pub image: String,
    /// `VOLUME`.
    pub volumes: Option<BTreeMap<String, serde_json::Value>>,
    /// `WORKDIR`.
    pub working_dir: String,
    /// `ENTRYPOINT`.
    pub entrypoint: Option<Vec<String>>,
    /// `ONBUILD`.
    pub on_build: Option<Vec<String>>,
    /// `LABEL`.
    pub labels: Option<BTreeMap<String, String>>,
    /// `STOPSIGNAL`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `SHELL`.
    #[serde(skip_serializing_if = "empty_list")]
    pub shell: Option<Vec<String>>,
}

fn empty_map(m: &Option<BTreeMap<String, serde_json::Value>>) -> bool {
    m.as_ref().is_none_or(BTreeMap::is_empty)
}

fn empty_list(l: &Option<Vec<String>>) -> bool {
    l.as_ref().is_none_or(Vec::is_empty)
}

impl From<&ImageConfig> for DockerConfig {
    fn from(c: &ImageConfig) -> Self {
        // Go prints a nil map or slice as `null`: what the stored config left out.
        let set = |s: &std::collections::BTreeSet<String>| {
            (!s.is_empty()).then(|| {
                s.iter()
                    .map(|k| (k.clone(), serde_json::json!({})))
                    .collect::<BTreeMap<_, _>>()
            })
        };
        let list = |l: &Vec<String>| (!l.is_empty()).then(|| l.clone());
        DockerConfig {
            user: c.user.clone(),
            exposed_ports: set(&c.exposed_ports),
            env: list(&c.env),
            cmd: c.cmd.clone(),
            healthcheck: c.healthcheck.clone(),
            args_escaped: c.args_escaped,
            volumes: set(&c.volumes),
            working_dir: c.working_dir.clone(),
            entrypoint: c.entrypoint.clone(),
            on_build: list(&c.on_build),
            labels: (!c.labels.is_empty()).then(|| c.labels.clone()),
            stop_signal: c.stop_signal.clone(),
            shell: c.shell.clone(),
            ..DockerConfig::default()
        }
    }
}

/// The stored documents of an image as they are (`xbuild inspect --raw`).
#[derive(Clone, Debug, PartialEq, Serialize)]
#[serde(rename_all = "PascalCase")]
pub struct RawImage {
    /// The image ID: the config digest.
    pub id: Digest,
    /// `name:tag` of every tag pointing at the image.
    pub repo_tags: Vec<String>,
    /// The manifest digest.
    pub digest: Digest,
    /// The image manifest, as stored.
    pub manifest: Manifest,
    /// The OCI image config, as stored.
    pub config: ImageConfigFile,
}

impl ImageDetails {
    /// The image as `docker image inspect` shows it.
    pub fn docker(&self) -> DockerImage {
        let c = &self.config;
        let mut repo_digests: Vec<String> = Vec::new();
        for t in &self.tags {
            let repo = crate::Reference::parse(t)
                .map(|r| r.repository)
                .unwrap_or_else(|_| t.clone());
            let d = format!("{repo}@{}", self.manifest_digest);
            if !repo_digests.contains(&d) {
                repo_digests.push(d);
            }
        }
        DockerImage {
            id: self.id.clone(),
            repo_tags: self.tags.clone(),
            repo_digests,
            parent: String::new(),
            comment: c
                .history
                .last()
                .and_then(|h| h.comment.clone())
                .unwrap_or_default(),
            created: c.created.clone().unwrap_or_else(|| ZERO_TIME.into()),
            container: String::new(),
            container_config: DockerConfig::default(),
            docker_version: String::new(),
            author: c.author.clone().unwrap_or_default(),
            config: c
                .config
                .as_ref()
                .map(DockerConfig::from)
                .unwrap_or_default(),
            architecture: c.architecture.clone(),
            variant: c.variant.clone().filter(|v| !v.is_empty()),
            os: c.os.clone(),
            size: self.size,
            virtual_size: self.size,
            rootfs: DockerRootFs {
                typ: if c.rootfs.typ.is_empty() {
                    "layers".into()
                } else {
                    c.rootfs.typ.clone()
                },
                layers: c.rootfs.diff_ids.clone(),
            },
            metadata: DockerMetadata {
                last_tag_time: self.added.clone().unwrap_or_else(|| ZERO_TIME.into()),
            },
            descriptor: DockerDescriptor {
                media_type: self
                    .manifest
                    .media_type
                    .clone()
                    .unwrap_or_else(|| xbuild_cache::oci::MEDIA_MANIFEST.into()),
                digest: self.manifest_digest.clone(),
                size: self.manifest_size,
            },
        }
    }

    /// The stored manifest and OCI config as they are.
    pub fn raw(&self) -> RawImage {
        RawImage {
            id: self.id.clone(),
            repo_tags: self.tags.clone(),
            digest: self.manifest_digest.clone(),
            manifest: self.manifest.clone(),
            config: self.config.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use xbuild_cache::oci::{Descriptor, History, MEDIA_CONFIG, MEDIA_MANIFEST, RootFs};

    fn details() -> ImageDetails {
        let config = ImageConfigFile {
            architecture: "amd64".into(),
            author: Some("someone".into()),
            config: Some(ImageConfig {
                user: "1000:1000".into(),
                env: vec!["A=1".into()],
                cmd: Some(vec!["/bin/sh".into(), "-c".into(), "echo hello".into()]),
                labels: BTreeMap::from([("a".into(), "1".into())]),
                working_dir: "/app".into(),
                args_escaped: true,
                ..ImageConfig::default()
            }),
            created: Some("2026-01-01T00:00:00Z".into()),
            history: vec![History {
                comment: Some("buildkit.dockerfile.v0".into()),
                ..History::default()
            }],
            os: "linux".into(),
            rootfs: RootFs {
                typ: "layers".into(),
                diff_ids: vec![Digest::of(b"layer")],
            },
            variant: None,
        };
        let manifest = Manifest {
            schema_version: 2,
            media_type: Some(MEDIA_MANIFEST.into()),
            config: Descriptor {
                media_type: MEDIA_CONFIG.into(),
                digest: Digest::of(b"config"),
                size: 1,
                annotations: None,
                platform: None,
            },
            layers: vec![],
            annotations: None,
        };
        ImageDetails {
            id: Digest::of(b"config"),
            manifest_digest: Digest::of(b"manifest"),
            manifest_size: 42,
            manifest,
            config,
            tags: vec![
                "app:1".into(),
                "app:2".into(),
                "registry.test:5000/x:y".into(),
            ],
            size: 7,
            added: Some("2026-01-02T00:00:00Z".into()),
        }
    }

    /// Issue 16 item 12: `Config` is the container config itself (not the OCI config file
    /// with a nested `config`), with Docker's field names, `null`s and omitted empties.
    #[test]
    fn inspect_config_is_dockers_container_config_not_nested() {
        let d = details();
        let v = serde_json::to_value(d.docker()).unwrap();
        assert_eq!(v["Id"], d.id.to_string());
        assert_eq!(v["Config"]["Labels"]["a"], "1");
        assert_eq!(v["Config"]["Env"][0], "A=1");
        assert_eq!(v["Config"]["WorkingDir"], "/app");
        assert_eq!(v["Config"]["User"], "1000:1000");
        assert_eq!(v["Config"]["ArgsEscaped"], true);
        assert!(v["Config"].get("config").is_none());
        assert_eq!(v["Config"]["Entrypoint"], serde_json::Value::Null);
        assert_eq!(v["Config"]["OnBuild"], serde_json::Value::Null);
        assert!(v["Config"].get("ExposedPorts").is_none());
        assert!(v["Config"].get("Shell").is_none());
        assert!(v["Config"].get("Healthcheck").is_none());
        assert_eq!(v["Comment"], "buildkit.dockerfile.v0");
        assert_eq!(v["Author"], "someone");
        assert_eq!(v["RootFS"]["Type"], "layers");
        assert_eq!(v["RootFS"]["Layers"][0], Digest::of(b"layer").to_string());
        assert_eq!(v["Metadata"]["LastTagTime"], "2026-01-02T00:00:00Z");
        assert_eq!(v["Descriptor"]["digest"], d.manifest_digest.to_string());
        assert_eq!(v["Descriptor"]["size"], 42);
        assert!(v.get("Variant").is_none());
        let m = d.manifest_digest.to_string();
        assert_eq!(
            v["RepoDigests"],
            serde_json::json!([format!("app@{m}"), format!("registry.test:5000/x@{m}")])
        );
        let keys: Vec<&String> = v.as_object().unwrap().keys().collect();
        for k in [
            "RepoTags",
            "Created",
            "Architecture",
            "Os",
            "Size",
            "Parent",
        ] {
            assert!(keys.iter().any(|x| *x == k), "{k} missing: {keys:?}");
        }

        let raw = serde_json::to_value(d.raw()).unwrap();
        assert_eq!(raw["Digest"], m);
        assert_eq!(raw["Config"]["config"]["WorkingDir"], "/app");
        assert_eq!(raw["Manifest"]["schemaVersion"], 2);
    }
}

//! The image configuration a build output carries, as the frontend computed it.

use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

use crate::Digest;

/// `HEALTHCHECK`: Docker's health check settings (durations in nanoseconds), serialized as an
/// image config's `Healthcheck` object (`Test`, `Interval`, …), so that the graph's value and
/// the stored config are one type.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct Healthcheck {
    /// `["NONE"]`, `["CMD", args…]` or `["CMD-SHELL", command]`.
    #[serde(
        default,
        deserialize_with = "go::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub test: Vec<String>,
    /// `--interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub interval: Option<i64>,
    /// `--timeout`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<i64>,
    /// `--start-period`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_period: Option<i64>,
    /// `--start-interval`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub start_interval: Option<i64>,
    /// `--retries`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub retries: Option<i64>,
}

/// The runtime configuration of an image: the frontend's value, and the `config` object of the
/// stored image config, one type for both. It serializes as BuildKit writes that object: its
/// fields in BuildKit's order, `ExposedPorts` and `Volumes` as maps to `{}` (Go's
/// `map[string]struct{}`), empty fields left out; and it reads what Go would, `null` for any
/// field included.
///
/// ```
/// use xbuild_llb::ImageConfig;
///
/// let c: ImageConfig = serde_json::from_str(
///     r#"{"Env":null,"ExposedPorts":{"80/tcp":{}},"Cmd":["sh"],"Hostname":"x"}"#,
/// )?;
/// assert!(c.env.is_empty() && c.exposed_ports.contains("80/tcp"));
/// assert_eq!(
///     serde_json::to_string(&c)?,
///     r#"{"ExposedPorts":{"80/tcp":{}},"Cmd":["sh"]}"#
/// );
/// # Ok::<(), serde_json::Error>(())
/// ```
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "PascalCase")]
pub struct ImageConfig {
    /// `USER`.
    #[serde(
        default,
        deserialize_with = "go::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub user: String,
    /// `EXPOSE`, as `port/proto` (`80/tcp`).
    #[serde(
        default,
        serialize_with = "go::set",
        deserialize_with = "go::set_keys",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub exposed_ports: BTreeSet<String>,
    /// `ENV`, as `KEY=value` in order.
    #[serde(
        default,
        deserialize_with = "go::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub env: Vec<String>,
    /// `ENTRYPOINT`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entrypoint: Option<Vec<String>>,
    /// `CMD`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cmd: Option<Vec<String>>,
    /// `VOLUME`.
    #[serde(
        default,
        serialize_with = "go::set",
        deserialize_with = "go::set_keys",
        skip_serializing_if = "BTreeSet::is_empty"
    )]
    pub volumes: BTreeSet<String>,
    /// `WORKDIR`.
    #[serde(
        default,
        deserialize_with = "go::or_default",
        skip_serializing_if = "String::is_empty"
    )]
    pub working_dir: String,
    /// `LABEL`.
    #[serde(
        default,
        deserialize_with = "go::or_default",
        skip_serializing_if = "BTreeMap::is_empty"
    )]
    pub labels: BTreeMap<String, String>,
    /// `STOPSIGNAL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<String>,
    /// `HEALTHCHECK`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub healthcheck: Option<Healthcheck>,
    /// Docker's `ArgsEscaped`, which BuildKit sets with every CMD and ENTRYPOINT.
    #[serde(
        default,
        deserialize_with = "go::or_default",
        skip_serializing_if = "std::ops::Not::not"
    )]
    pub args_escaped: bool,
    /// `ONBUILD` triggers, verbatim.
    #[serde(
        default,
        deserialize_with = "go::or_default",
        skip_serializing_if = "Vec::is_empty"
    )]
    pub on_build: Vec<String>,
    /// `SHELL`.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub shell: Option<Vec<String>>,
}

/// How Go's `encoding/json` shapes the image config's fields, for serde.
mod go {
    use serde::de::IgnoredAny;
    use serde::ser::SerializeMap;
    use serde::{Deserialize, Deserializer, Serialize, Serializer};
    use std::collections::{BTreeMap, BTreeSet};

    /// Go's `struct{}`: `{}`.
    #[derive(Serialize)]
    struct Empty {}

    /// A set as Go writes a `map[string]struct{}`: each member to `{}`.
    pub(super) fn set<S: Serializer>(set: &BTreeSet<String>, s: S) -> Result<S::Ok, S::Error> {
        let mut m = s.serialize_map(Some(set.len()))?;
        for k in set {
            m.serialize_entry(k, &Empty {})?;
        }
        m.end()
    }

    /// The keys of a map (whatever their values), or none for `null`.
    pub(super) fn set_keys<'de, D: Deserializer<'de>>(d: D) -> Result<BTreeSet<String>, D::Error> {
        let m = Option::<BTreeMap<String, IgnoredAny>>::deserialize(d)?;
        Ok(m.map(|m| m.into_keys().collect()).unwrap_or_default())
    }

    /// The value, or its default for `null` (Go leaves a field alone on `null`).
    pub(super) fn or_default<'de, D, T>(d: D) -> Result<T, D::Error>
    where
        D: Deserializer<'de>,
        T: Deserialize<'de> + Default,
    {
        Ok(Option::<T>::deserialize(d)?.unwrap_or_default())
    }
}

/// One entry of the image's history.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct HistoryEntry {
    /// When the step ran (RFC 3339); `None` for this build's steps, filled in at export.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub created: Option<String>,
    /// The instruction, in BuildKit's style (`RUN /bin/sh -c make # buildkit`).
    pub created_by: String,
    /// Who made the step (base images' `author`).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
    /// A comment (`buildkit.dockerfile.v0` for BuildKit's steps).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub comment: Option<String>,
    /// True when the step made no layer.
    #[serde(default)]
    pub empty_layer: bool,
    /// For this build's layer steps: the vertex whose result holds the step's changes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub vertex: Option<Digest>,
}

/// A named result of a build: the vertex holding its filesystem and its image metadata.
#[derive(Clone, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct Output {
    /// The output's name (the target stage's name, or `default`).
    pub name: String,
    /// The vertex whose result is the image's root filesystem.
    pub vertex: Digest,
    /// The runtime configuration.
    pub config: ImageConfig,
    /// History: the base image's entries, then one per step of this build.
    pub history: Vec<HistoryEntry>,
    /// `linux`.
    pub os: String,
    /// `amd64`, `arm64`, … as OCI names them.
    pub architecture: String,
    /// The CPU variant (`v8`), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub variant: Option<String>,
    /// The image's `author` (`MAINTAINER`); `None` keeps the base image's.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub author: Option<String>,
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full() -> ImageConfig {
        ImageConfig {
            user: "app".into(),
            exposed_ports: BTreeSet::from(["80/tcp".into(), "53/udp".into()]),
            env: vec!["PATH=/bin".into()],
            entrypoint: Some(vec!["/entry".into()]),
            cmd: Some(vec!["run".into()]),
            volumes: BTreeSet::from(["/data".into()]),
            working_dir: "/srv".into(),
            labels: BTreeMap::from([("a".into(), "1".into())]),
            stop_signal: Some("SIGTERM".into()),
            healthcheck: Some(Healthcheck {
                test: vec!["CMD".into(), "true".into()],
                retries: Some(3),
                ..Healthcheck::default()
            }),
            args_escaped: true,
            on_build: vec!["RUN true".into()],
            shell: Some(vec!["/bin/sh".into(), "-c".into()]),
        }
    }

    /// The stored form the exporter writes (these bytes are part of every image ID, so they
    /// must not change): BuildKit's field order, sets as maps to `{}`.
    #[test]
    fn serializes_as_the_image_config_object_byte_for_byte() {
        let json = serde_json::to_string(&full()).unwrap();
        assert_eq!(
            json,
            concat!(
                r#"{"User":"app","ExposedPorts":{"53/udp":{},"80/tcp":{}},"Env":["PATH=/bin"],"#,
                r#""Entrypoint":["/entry"],"Cmd":["run"],"Volumes":{"/data":{}},"#,
                r#""WorkingDir":"/srv","Labels":{"a":"1"},"StopSignal":"SIGTERM","#,
                r#""Healthcheck":{"Test":["CMD","true"],"Retries":3},"ArgsEscaped":true,"#,
                r#""OnBuild":["RUN true"],"Shell":["/bin/sh","-c"]}"#
            )
        );
        assert_eq!(serde_json::from_str::<ImageConfig>(&json).unwrap(), full());
        assert_eq!(
            serde_json::to_string(&ImageConfig::default()).unwrap(),
            "{}"
        );
    }

    /// Go's `encoding/json` leaves a field alone on `null`, and Docker writes `null` for nil
    /// slices and maps: a base image's config full of them reads as an empty config.
    #[test]
    fn nulls_read_as_go_reads_them() {
        let c: ImageConfig = serde_json::from_str(
            r#"{"User":null,"ExposedPorts":null,"Env":null,"Entrypoint":null,"Cmd":null,
                "Volumes":null,"WorkingDir":null,"Labels":null,"StopSignal":null,
                "Healthcheck":{"Test":null},"ArgsEscaped":null,"OnBuild":null,"Shell":null,
                "Hostname":"","AttachStdin":false,"Image":"sha256:abc","StopTimeout":10}"#,
        )
        .unwrap();
        assert_eq!(
            c,
            ImageConfig {
                healthcheck: Some(Healthcheck::default()),
                ..ImageConfig::default()
            }
        );
    }

    /// A set's members are the map's keys whatever their values (Go ignores them).
    #[test]
    fn exposed_ports_and_volumes_read_any_values() {
        let c: ImageConfig =
            serde_json::from_str(r#"{"ExposedPorts":{"80/tcp":{"x":1}},"Volumes":{"/v":null}}"#)
                .unwrap();
        assert_eq!(c.exposed_ports, BTreeSet::from(["80/tcp".to_string()]));
        assert_eq!(c.volumes, BTreeSet::from(["/v".to_string()]));
    }

    /// The graph's binary form carries the same value.
    #[test]
    fn survives_cbor() {
        let mut bytes = Vec::new();
        ciborium::into_writer(&full(), &mut bytes).unwrap();
        let back: ImageConfig = ciborium::from_reader(bytes.as_slice()).unwrap();
        assert_eq!(back, full());
    }

    #[test]
    fn wrong_shapes_are_errors_not_panics() {
        for bad in [
            r#"{"Env":"PATH=/bin"}"#,
            r#"{"ExposedPorts":["80/tcp"]}"#,
            r#"{"User":1}"#,
            r#"{"Labels":{"a":1}}"#,
        ] {
            assert!(serde_json::from_str::<ImageConfig>(bad).is_err(), "{bad}");
        }
    }
}

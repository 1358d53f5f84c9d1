//! The manifest as written: serde types that mirror `oam.schema.json`.
//!
//! Every struct denies unknown fields, so a misspelt key is never silently ignored: the parser
//! (`crate::lenient`) removes it, records a warning at its line, and tries again, which is
//! how wadm's leniency is matched without losing serde's list of the expected names.
//! Fields that the schema defines but Trellis does not implement yet (shared-application
//! references) are still parsed here so that the normaliser can say precisely that they are
//! unsupported.

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use std::collections::BTreeMap;
use std::fmt;

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Manifest {
    #[serde(rename = "apiVersion")]
    pub api_version: String,
    pub kind: String,
    pub metadata: Metadata,
    pub spec: Specification,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Metadata {
    pub name: String,
    // The schema requires `annotations`, but wadm's own examples are not always careful about
    // it and an empty map means the same thing.
    #[serde(default, deserialize_with = "strings_or_empty")]
    pub annotations: BTreeMap<String, String>,
    #[serde(default, deserialize_with = "strings_or_empty")]
    pub labels: BTreeMap<String, String>,
}

/// A map of strings where a key written with no value (`wasmcloud.dev/source-url:`, as
/// wasmCloud's own examples have it) is the empty string, as wadm reads it, and a whole map
/// written as `~` is empty.
fn strings_or_empty<'de, D: Deserializer<'de>>(
    deserializer: D,
) -> Result<BTreeMap<String, String>, D::Error> {
    let map: Option<BTreeMap<String, Option<String>>> = Option::deserialize(deserializer)?;
    Ok(map
        .unwrap_or_default()
        .into_iter()
        .map(|(key, value)| (key, value.unwrap_or_default()))
        .collect())
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Specification {
    pub components: Vec<Entry>,
    #[serde(default)]
    pub policies: Vec<Policy>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Policy {
    pub name: String,
    #[serde(deserialize_with = "strings_or_empty")]
    pub properties: BTreeMap<String, String>,
    #[serde(rename = "type")]
    pub policy_type: String,
}

/// One item of `spec.components`: a component or a capability provider.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Entry {
    pub name: String,
    #[serde(rename = "type")]
    pub kind: EntryKind,
    pub properties: EntryProperties,
    #[serde(default)]
    pub traits: Option<Vec<Trait>>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum EntryKind {
    Component,
    Capability,
}

impl<'de> Deserialize<'de> for EntryKind {
    // By hand so that the error lists only the current names, not the `actor` alias.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let kind = String::deserialize(deserializer)?;
        match kind.as_str() {
            // `actor` is the pre-1.0 wasmCloud name, which wadm still accepts.
            "component" | "actor" => Ok(EntryKind::Component),
            "capability" => Ok(EntryKind::Capability),
            other => Err(de::Error::unknown_variant(
                other,
                &["component", "capability"],
            )),
        }
    }
}

/// `ComponentProperties` and `CapabilityProperties` of the schema, which have the same fields.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct EntryProperties {
    #[serde(default)]
    pub image: Option<String>,
    #[serde(default)]
    pub id: Option<String>,
    #[serde(default)]
    pub config: Option<Vec<ConfigProperty>>,
    #[serde(default)]
    pub secrets: Option<Vec<SecretProperty>>,
    #[serde(default)]
    pub application: Option<SharedApplication>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SharedApplication {
    pub name: String,
    pub component: String,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretProperty {
    pub name: String,
    pub properties: SecretSource,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SecretSource {
    pub policy: String,
    pub key: String,
    #[serde(default)]
    pub field: Option<String>,
    #[serde(default)]
    pub version: Option<String>,
}

/// A named config, optionally defined inline.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigProperty {
    pub name: String,
    #[serde(default)]
    pub properties: Option<BTreeMap<String, ScalarString>>,
}

/// A trait whose `properties` are interpreted once `type` is known (see [`SpreadScalerProperties`]
/// and [`LinkProperties`]), because their shape depends on it.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Trait {
    #[serde(rename = "type")]
    pub kind: String,
    pub properties: serde_yaml::Value,
}

/// Properties of `spreadscaler` and `daemonscaler`.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct SpreadScalerProperties {
    #[serde(alias = "replicas")]
    pub instances: u32,
    #[serde(default)]
    pub spread: Vec<Spread>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct Spread {
    pub name: String,
    pub requirements: BTreeMap<String, String>,
    #[serde(default)]
    pub weight: Option<u32>,
}

/// Properties of `link`, in both the current and the older (`source_config`/`target_config`)
/// form.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct LinkProperties {
    pub namespace: String,
    pub package: String,
    pub interfaces: Vec<String>,
    #[serde(default)]
    pub name: Option<String>,
    #[serde(default)]
    pub source: Option<ConfigDefinition>,
    pub target: LinkTarget,
    #[serde(default)]
    pub source_config: Option<Vec<ConfigProperty>>,
    #[serde(default)]
    pub target_config: Option<Vec<ConfigProperty>>,
}

#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct ConfigDefinition {
    #[serde(default)]
    pub config: Vec<ConfigProperty>,
    #[serde(default)]
    pub secrets: Vec<SecretProperty>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
pub(crate) struct TargetConfig {
    pub name: String,
    #[serde(default)]
    pub config: Vec<ConfigProperty>,
    #[serde(default)]
    pub secrets: Vec<SecretProperty>,
}

/// A link `target`: a mapping, or in the older form just the target's name.
#[derive(Debug)]
pub(crate) enum LinkTarget {
    Name(String),
    Config(TargetConfig),
}

impl<'de> Deserialize<'de> for LinkTarget {
    // Written by hand rather than `#[serde(untagged)]`, which would replace every error inside
    // the mapping with "data did not match any variant" and lose the field path.
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct TargetVisitor;

        impl<'de> Visitor<'de> for TargetVisitor {
            type Value = LinkTarget;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a mapping with `name` (and optionally `config`), or a target name")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<LinkTarget, E> {
                Ok(LinkTarget::Name(v.to_owned()))
            }

            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<LinkTarget, A::Error> {
                TargetConfig::deserialize(de::value::MapAccessDeserializer::new(map))
                    .map(LinkTarget::Config)
            }
        }

        deserializer.deserialize_any(TargetVisitor)
    }
}

/// A config value: the schema says string, but `port: 8080` is too natural to reject, so
/// numbers and booleans are taken as their text.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct ScalarString(pub String);

impl<'de> Deserialize<'de> for ScalarString {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        struct ScalarVisitor;

        impl Visitor<'_> for ScalarVisitor {
            type Value = ScalarString;

            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a string, number or boolean")
            }

            fn visit_str<E: de::Error>(self, v: &str) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_owned()))
            }

            fn visit_bool<E: de::Error>(self, v: bool) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }

            fn visit_i64<E: de::Error>(self, v: i64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }

            fn visit_u64<E: de::Error>(self, v: u64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }

            fn visit_f64<E: de::Error>(self, v: f64) -> Result<ScalarString, E> {
                Ok(ScalarString(v.to_string()))
            }
        }

        deserializer.deserialize_any(ScalarVisitor)
    }
}

//! Claims of signed components as the lattice carries them: stored under `CLAIMS_{subject}`
//! in `LATTICEDATA_{lattice}` in the shape wasmCloud v1 hosts store (so either reads the
//! other's), and answered to `claims.get` as the string maps wasmCloud v1 hosts answer
//! (`wasmcloud-control-interface`'s `get_claims` reads `Vec<HashMap<String, String>>`).

use serde::{Deserialize, Deserializer, Serialize};
use std::collections::BTreeMap;

/// The claims of one signed component, as stored in the lattice's state.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct StoredClaims {
    /// The component's call alias, empty when it has none.
    #[serde(default)]
    pub call_alias: String,
    /// The account public key (`A…`) that signed it.
    #[serde(alias = "iss")]
    pub issuer: String,
    /// The name it was signed with.
    #[serde(default)]
    pub name: String,
    /// Its revision, as a decimal string (`0` when none was given).
    #[serde(default, alias = "rev")]
    pub revision: String,
    /// Its module public key (`M…`).
    #[serde(alias = "sub")]
    pub subject: String,
    /// Its tags (a list; a comma-separated string is read too).
    #[serde(default, deserialize_with = "list_or_commas")]
    pub tags: Vec<String>,
    /// Its version, empty when none was given.
    #[serde(default)]
    pub version: String,
}

impl StoredClaims {
    /// The string map `claims.get` answers for these claims: wasmCloud v1's keys, including
    /// its short aliases (`iss`, `sub`, `rev`) that older clients read, and tags joined by
    /// commas.
    pub fn reply_map(&self) -> BTreeMap<String, String> {
        [
            ("call_alias", self.call_alias.clone()),
            ("iss", self.issuer.clone()),
            ("issuer", self.issuer.clone()),
            ("name", self.name.clone()),
            ("rev", self.revision.clone()),
            ("revision", self.revision.clone()),
            ("sub", self.subject.clone()),
            ("subject", self.subject.clone()),
            ("tags", self.tags.join(",")),
            ("version", self.version.clone()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    }
}

fn list_or_commas<'de, D: Deserializer<'de>>(d: D) -> Result<Vec<String>, D::Error> {
    #[derive(Deserialize)]
    #[serde(untagged)]
    enum Tags {
        List(Vec<String>),
        Text(String),
    }
    Ok(match Option::<Tags>::deserialize(d)? {
        None => Vec::new(),
        Some(Tags::List(list)) => list,
        Some(Tags::Text(text)) => text
            .split(',')
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .map(str::to_owned)
            .collect(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_wasmcloud_stores_and_answers_its_keys() {
        let stored: StoredClaims = serde_json::from_str(
            r#"{"call_alias":"","iss":"AISSUER","name":"hello","rev":"3","sub":"MSUBJECT","tags":"a, b","version":"1.0.0"}"#,
        )
        .expect("wasmCloud's stored shape");
        assert_eq!(stored.issuer, "AISSUER");
        assert_eq!(stored.tags, ["a", "b"]);
        let map = stored.reply_map();
        assert_eq!(map["issuer"], "AISSUER");
        assert_eq!(map["iss"], "AISSUER");
        assert_eq!(map["sub"], "MSUBJECT");
        assert_eq!(map["revision"], "3");
        assert_eq!(map["tags"], "a,b");
        assert_eq!(map.len(), 10);
        let back: StoredClaims =
            serde_json::from_value(serde_json::to_value(&stored).expect("encode")).expect("decode");
        assert_eq!(back, stored);
    }
}

//! Signed components, read and written the way wasmCloud v1 signs them, so a component signed
//! by `wash claims sign` reads here the same, and one signed by `trellis claims sign` reads
//! the same in wasmCloud.
//!
//! A signature is a JWT (an Ed25519 signature from an nkeys *account* key, `A…`) in a custom
//! section named `wasmcloud_jwt`. Its claims name the issuer (that account), the subject (a
//! *module* key, `M…`, the component's own identity), a name, version, revision, tags, the
//! dates it is valid between, and the SHA-256 of the component without that section: any
//! change to the code after signing shows as a hash mismatch. The format is wascap's, and
//! so is the code that writes and checks it (the `wascap` crate); this crate adds what a
//! host and a CLI need on top:
//!
//! - [`sign`] embeds claims ([`SignOptions`]) signed by an issuer key;
//! - [`inspect`] reads them and checks the signature, the hash and the dates
//!   ([`Inspection`]), without deciding anything;
//! - [`Policy`] is what a host admits (`--allowed-issuers`), and [`Refusal`] says why it
//!   refused a component and what to do.
//!
//! ```
//! use trellis_claims::{KeyPair, Policy, Refusal, SignOptions, inspect, sign};
//!
//! // The smallest component: the header alone.
//! let component = b"\0asm\x0d\x00\x01\x00".to_vec();
//! let issuer = KeyPair::new_account();
//! let signed = sign(&component, &issuer, &KeyPair::new_module(), &SignOptions::named("hello"))
//!     .expect("sign");
//! let seen = inspect(&signed).expect("readable").expect("signed");
//! assert_eq!(seen.claims.issuer, issuer.public_key());
//! assert_eq!(seen.refusal(), None);
//!
//! let policy = Policy::allowed_issuers([issuer.public_key()]).expect("account keys");
//! assert!(policy.check(&signed).expect("admitted").is_some());
//! assert_eq!(policy.check(&component), Err(Refusal::Unsigned));
//! ```

use data_encoding::BASE64URL_NOPAD;
use serde::Serialize;
use std::collections::BTreeSet;
use std::time::{SystemTime, UNIX_EPOCH};
use trellis_control::claims::StoredClaims;
use wascap::jwt::{Claims, Component};

pub use nkeys::KeyPair;

/// The custom sections a signature lives in: `wasmcloud_jwt`, and `jwt`, which wascap wrote
/// before 0.9 (and still reads).
const SECTION_NAMES: [&[u8]; 2] = [b"wasmcloud_jwt", b"jwt"];

/// The first wascap claims revision whose hash wascap checks (its own constant is private);
/// earlier signatures carry no usable hash.
const HASHED_REVISION: u64 = 3;

/// Why claims could not be written or read.
#[derive(Debug, thiserror::Error)]
pub enum ClaimsError {
    /// The bytes are not WebAssembly.
    #[error("not a WebAssembly file (it does not start with the `\\0asm` magic)")]
    NotWasm,
    /// The file's top-level sections run past its end or are malformed.
    #[error("its sections are malformed: {0}")]
    Malformed(&'static str),
    /// The issuer key is not an account key.
    #[error(
        "the issuer key must be an account key (its seed starts with `SA`, its public key with `A`); this one's public key is {0}"
    )]
    IssuerNotAccount(String),
    /// The subject key is not a module key.
    #[error(
        "the subject key must be a module key (its seed starts with `SM`, its public key with `M`); this one's public key is {0}"
    )]
    SubjectNotModule(String),
    /// A key given as an allowed issuer is not an account public key.
    #[error("`{0}` is not an account public key (`A` followed by 55 characters)")]
    NotAnIssuer(String),
    /// An allow list with nothing in it.
    #[error("the list of allowed issuers is empty")]
    NoIssuers,
    /// The embedded token is not component claims wascap can read.
    #[error("the embedded claims cannot be read")]
    Unreadable(#[source] wascap::Error),
    /// The embedded token carries no component metadata (it is some other kind of JWT).
    #[error("the embedded token is not a component's claims (it has no `wascap` metadata)")]
    NotComponentClaims,
    /// wascap could not sign.
    #[error("signing failed")]
    Sign(#[source] wascap::Error),
}

/// What a signed component says about itself.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct ComponentClaims {
    /// The account public key (`A…`) that signed it.
    pub issuer: String,
    /// Its module public key (`M…`).
    pub subject: String,
    /// The name it was signed with.
    pub name: Option<String>,
    /// A version for people.
    pub version: Option<String>,
    /// A revision number.
    pub revision: Option<i32>,
    /// Tags.
    pub tags: Vec<String>,
    /// wasmCloud's call alias, if one was given.
    pub call_alias: Option<String>,
    /// When it was signed, in seconds since the Unix epoch.
    pub issued_at: u64,
    /// Not valid before this time (seconds since the epoch), if set.
    pub not_before: Option<u64>,
    /// Not valid after this time (seconds since the epoch), if set.
    pub expires: Option<u64>,
    /// The SHA-256 (upper-case hex) of the component without its signature, as signed.
    pub hash: String,
    /// The token's unique id (`jti`).
    pub token_id: String,
}

impl ComponentClaims {
    fn from_wascap(claims: Claims<Component>) -> Result<Self, ClaimsError> {
        let meta = claims.metadata.ok_or(ClaimsError::NotComponentClaims)?;
        Ok(Self {
            issuer: claims.issuer,
            subject: claims.subject,
            name: meta.name,
            version: meta.ver,
            revision: meta.rev,
            tags: meta.tags.unwrap_or_default(),
            call_alias: meta.call_alias,
            issued_at: claims.issued_at,
            not_before: claims.not_before,
            expires: claims.expires,
            hash: meta.module_hash,
            token_id: claims.id,
        })
    }

    /// These claims as the lattice stores them (and `claims.get` answers them).
    pub fn stored(&self) -> StoredClaims {
        StoredClaims {
            call_alias: self.call_alias.clone().unwrap_or_default(),
            issuer: self.issuer.clone(),
            name: self.name.clone().unwrap_or_default(),
            revision: self.revision.unwrap_or_default().to_string(),
            subject: self.subject.clone(),
            tags: self.tags.clone(),
            version: self.version.clone().unwrap_or_default(),
        }
    }
}

/// Whether the component's code is what was signed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum HashCheck {
    /// The code hashes to the signed hash.
    Matches,
    /// The code was changed after signing.
    Mismatch,
    /// The claims are older than wascap's hashed revision: nothing to check against.
    NotRecorded,
}

/// A signed component's claims, with what checking them found.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Inspection {
    /// The claims.
    pub claims: ComponentClaims,
    /// Whether the token's signature verifies against the issuer it names.
    pub signature_valid: bool,
    /// Whether the code is what was signed.
    pub hash: HashCheck,
    /// Whether the claims expired (at the time of the check).
    pub expired: bool,
    /// Whether the claims are not valid yet (at the time of the check).
    pub not_yet_valid: bool,
    /// The token itself.
    #[serde(skip)]
    pub jwt: String,
}

impl Inspection {
    /// What is wrong with this signature whoever signed it (a bad signature, changed code,
    /// dates), or `None` when nothing is.
    pub fn refusal(&self) -> Option<Refusal> {
        let issuer = || self.claims.issuer.clone();
        if !self.signature_valid {
            return Some(Refusal::BadSignature { issuer: issuer() });
        }
        match self.hash {
            HashCheck::Matches => {}
            HashCheck::Mismatch => return Some(Refusal::Modified { issuer: issuer() }),
            HashCheck::NotRecorded => return Some(Refusal::NoHash { issuer: issuer() }),
        }
        if self.expired {
            return Some(Refusal::Expired {
                at: self.claims.expires.unwrap_or_default(),
            });
        }
        if self.not_yet_valid {
            return Some(Refusal::NotYetValid {
                from: self.claims.not_before.unwrap_or_default(),
            });
        }
        None
    }
}

/// Reads the claims embedded in a component, if it carries any, and checks them: the
/// token's signature against its issuer, the code against the signed hash, the dates
/// against the clock. `Ok(None)`: not signed.
pub fn inspect(bytes: &[u8]) -> Result<Option<Inspection>, ClaimsError> {
    inspect_at(bytes, now())
}

fn inspect_at(bytes: &[u8], now: u64) -> Result<Option<Inspection>, ClaimsError> {
    let Some(jwt) = embedded_token(bytes)? else {
        return Ok(None);
    };
    let claims = ComponentClaims::from_wascap(
        Claims::<Component>::decode(&jwt).map_err(ClaimsError::Unreadable)?,
    )?;
    let hash = if token_revision(&jwt) < HASHED_REVISION {
        HashCheck::NotRecorded
    } else {
        // wascap computes the hash of the code without its signature section; it answers
        // with an error when that is not the signed one.
        match wascap::wasm::extract_claims(bytes) {
            Ok(Some(token)) if token.jwt == jwt => HashCheck::Matches,
            // wascap found another token first (one in a nested module): not ours to trust.
            Ok(_) => HashCheck::Mismatch,
            // wascap's error kinds live in a private module: the variant is named, not matched.
            Err(e) if format!("{:?}", e.kind()) == "InvalidModuleHash" => HashCheck::Mismatch,
            Err(e) => return Err(ClaimsError::Unreadable(e)),
        }
    };
    let validation =
        wascap::jwt::validate_token::<Component>(&jwt).map_err(ClaimsError::Unreadable)?;
    Ok(Some(Inspection {
        signature_valid: validation.signature_valid,
        hash,
        // As wascap decides: expired once the expiry is in the past, valid from `nbf` on.
        expired: claims.expires.is_some_and(|exp| exp < now),
        not_yet_valid: claims.not_before.is_some_and(|nbf| now < nbf),
        claims,
        jwt,
    }))
}

/// The token in the component's top-level signature section, if any. Only the top level
/// is read: a nested module's sections are not the component's signature.
fn embedded_token(bytes: &[u8]) -> Result<Option<String>, ClaimsError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(ClaimsError::NotWasm);
    }
    let mut rest = bytes
        .get(8..)
        .ok_or(ClaimsError::Malformed("no version after the magic"))?;
    while let Some((&id, after_id)) = rest.split_first() {
        let (size, after_size) = leb128_u32(after_id)?;
        let body = after_size.get(..size).ok_or(ClaimsError::Malformed(
            "a section runs past the end of the file",
        ))?;
        rest = &after_size[size..];
        if id != 0 {
            continue;
        }
        let (name_len, after_len) = leb128_u32(body)?;
        let name = after_len.get(..name_len).ok_or(ClaimsError::Malformed(
            "a custom section's name runs past it",
        ))?;
        if SECTION_NAMES.contains(&name) {
            let token = String::from_utf8(after_len[name_len..].to_vec())
                .map_err(|_| ClaimsError::Malformed("the signature section is not UTF-8"))?;
            return Ok(Some(token));
        }
    }
    Ok(None)
}

/// A LEB128 `u32` (as wasm sizes are written) and what follows it.
fn leb128_u32(bytes: &[u8]) -> Result<(usize, &[u8]), ClaimsError> {
    let mut value: u64 = 0;
    for (i, &b) in bytes.iter().enumerate().take(5) {
        value |= u64::from(b & 0x7f) << (7 * i);
        if b & 0x80 == 0 {
            let value = usize::try_from(value)
                .ok()
                .filter(|v| u32::try_from(*v).is_ok())
                .ok_or(ClaimsError::Malformed("a size is too large"))?;
            return Ok((value, &bytes[i + 1..]));
        }
    }
    Err(ClaimsError::Malformed("a size is cut short"))
}

/// The token's `wascap_revision` (0 when absent), which wascap keeps to itself.
fn token_revision(jwt: &str) -> u64 {
    jwt.split('.')
        .nth(1)
        .and_then(|payload| BASE64URL_NOPAD.decode(payload.as_bytes()).ok())
        .and_then(|json| serde_json::from_slice::<serde_json::Value>(&json).ok())
        .and_then(|claims| claims.get("wascap_revision")?.as_u64())
        .unwrap_or(0)
}

fn now() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default()
}

/// What to put in the claims [`sign`] embeds.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOptions {
    /// The component's name.
    pub name: String,
    /// A version for people (`ver`).
    pub version: Option<String>,
    /// A revision number (`rev`).
    pub revision: Option<i32>,
    /// Tags.
    pub tags: Vec<String>,
    /// wasmCloud's call alias.
    pub call_alias: Option<String>,
    /// Not valid before this time (seconds since the Unix epoch).
    pub not_before: Option<u64>,
    /// Not valid after this time (seconds since the Unix epoch).
    pub expires: Option<u64>,
}

impl SignOptions {
    /// Options with a name and nothing else: valid from now on, forever.
    pub fn named(name: impl Into<String>) -> Self {
        Self {
            name: name.into(),
            ..Self::default()
        }
    }
}

/// Signs a component: returns its bytes with claims about `subject` issued by `issuer`
/// embedded (replacing any signature it had), hashed as wascap hashes them.
pub fn sign(
    bytes: &[u8],
    issuer: &KeyPair,
    subject: &KeyPair,
    options: &SignOptions,
) -> Result<Vec<u8>, ClaimsError> {
    if !bytes.starts_with(b"\0asm") {
        return Err(ClaimsError::NotWasm);
    }
    let (issuer_key, subject_key) = (issuer.public_key(), subject.public_key());
    if !issuer_key.starts_with('A') {
        return Err(ClaimsError::IssuerNotAccount(issuer_key));
    }
    if !subject_key.starts_with('M') {
        return Err(ClaimsError::SubjectNotModule(subject_key));
    }
    // `with_dates` (unlike wascap's builder) records the claims revision that makes wascap
    // check the hash when reading.
    let claims = Claims::<Component>::with_dates(
        options.name.clone(),
        issuer_key,
        subject_key,
        (!options.tags.is_empty()).then(|| options.tags.clone()),
        options.not_before,
        options.expires,
        false,
        options.revision,
        options.version.clone(),
        options.call_alias.clone(),
    );
    wascap::wasm::embed_claims(bytes, &claims, issuer).map_err(ClaimsError::Sign)
}

/// Which signed components a host runs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub enum Policy {
    /// Any component, signed or not (the default). Claims that check out are still read,
    /// for events and `claims.get`.
    #[default]
    Any,
    /// Only components whose signature checks out and whose issuer is one of these
    /// account public keys.
    Issuers(BTreeSet<String>),
}

impl Policy {
    /// Admits components signed by these account public keys only.
    pub fn allowed_issuers(
        keys: impl IntoIterator<Item = impl AsRef<str>>,
    ) -> Result<Self, ClaimsError> {
        let mut allowed = BTreeSet::new();
        for key in keys {
            let key = key.as_ref().trim();
            if key.is_empty() {
                continue;
            }
            if !key.starts_with('A') || KeyPair::from_public_key(key).is_err() {
                return Err(ClaimsError::NotAnIssuer(key.to_owned()));
            }
            allowed.insert(key.to_owned());
        }
        if allowed.is_empty() {
            return Err(ClaimsError::NoIssuers);
        }
        Ok(Self::Issuers(allowed))
    }

    /// Whether the host runs the component `bytes` hold: its claims when it does and they
    /// check out, `None` when it does and they do not (or it carries none), and why not when
    /// it does not. Bytes that are not WebAssembly are left for the loader to refuse.
    pub fn check(&self, bytes: &[u8]) -> Result<Option<ComponentClaims>, Refusal> {
        self.check_at(bytes, now())
    }

    fn check_at(&self, bytes: &[u8], now: u64) -> Result<Option<ComponentClaims>, Refusal> {
        let inspected = match inspect_at(bytes, now) {
            Err(ClaimsError::NotWasm) => return Ok(None),
            other => other,
        };
        let allowed = match self {
            Policy::Any => {
                return Ok(inspected
                    .ok()
                    .flatten()
                    .filter(|i| i.refusal().is_none())
                    .map(|i| i.claims));
            }
            Policy::Issuers(allowed) => allowed,
        };
        let inspected = match inspected {
            Ok(Some(inspected)) => inspected,
            Ok(None) => return Err(Refusal::Unsigned),
            Err(e) => return Err(Refusal::Unreadable(error_chain(&e))),
        };
        // A bad signature first: until it verifies, the issuer it names means nothing.
        if !inspected.signature_valid {
            return Err(Refusal::BadSignature {
                issuer: inspected.claims.issuer,
            });
        }
        if !allowed.contains(&inspected.claims.issuer) {
            return Err(Refusal::IssuerNotAllowed {
                issuer: inspected.claims.issuer,
                allowed: allowed.iter().cloned().collect(),
            });
        }
        match inspected.refusal() {
            Some(refusal) => Err(refusal),
            None => Ok(Some(inspected.claims)),
        }
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

/// Why a host refused to run a component, under `--allowed-issuers`.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// It carries no signature.
    #[error("it is not signed, and this host runs only components signed by an allowed issuer")]
    Unsigned,
    /// Its signature section cannot be read.
    #[error("its embedded claims cannot be read ({0})")]
    Unreadable(String),
    /// The token's signature does not verify.
    #[error(
        "its claims' signature does not verify: they were altered, or not signed by the issuer they name ({issuer})"
    )]
    BadSignature {
        /// The issuer the claims name.
        issuer: String,
    },
    /// Signed by an issuer not on the list.
    #[error("it is signed by issuer {issuer}, which this host does not allow (allowed: {})", allowed.join(", "))]
    IssuerNotAllowed {
        /// Who signed it.
        issuer: String,
        /// Who may.
        allowed: Vec<String>,
    },
    /// Its code changed after signing.
    #[error(
        "it was modified after signing (hash mismatch): its code is not what issuer {issuer} signed"
    )]
    Modified {
        /// Who signed it.
        issuer: String,
    },
    /// Signed before wascap recorded hashes.
    #[error(
        "its claims (issuer {issuer}) record no hash of its code (an old wascap signed it), so a change to it cannot be detected"
    )]
    NoHash {
        /// Who signed it.
        issuer: String,
    },
    /// Past its expiry.
    #[error("its signature expired at {}", timestamp(*at))]
    Expired {
        /// When (seconds since the Unix epoch).
        at: u64,
    },
    /// Before its start.
    #[error("its signature is not valid yet: not before {}", timestamp(*from))]
    NotYetValid {
        /// From when (seconds since the Unix epoch).
        from: u64,
    },
}

impl Refusal {
    /// What to do about it.
    pub fn hint(&self) -> String {
        match self {
            Refusal::Unsigned => "sign it with an allowed issuer's key: `trellis claims sign FILE --issuer-key SEED` (or `wash claims sign`); `trellis claims inspect FILE` shows a signature".to_owned(),
            Refusal::Unreadable(_) | Refusal::BadSignature { .. } => {
                "sign it again with an allowed issuer's key (`trellis claims sign`)".to_owned()
            }
            Refusal::IssuerNotAllowed { issuer, .. } => format!(
                "sign it with an allowed issuer's key, or, if you trust {issuer}, add it to the host's --allowed-issuers"
            ),
            Refusal::Modified { .. } => "run the component as its issuer signed it, or sign this build again (`trellis claims sign`)".to_owned(),
            Refusal::NoHash { .. } => {
                "sign it again with `trellis claims sign` or a current `wash claims sign`".to_owned()
            }
            Refusal::Expired { .. } => {
                "sign it again with a later expiry (`--expires-in`), or none".to_owned()
            }
            Refusal::NotYetValid { .. } => {
                "wait until then, or sign it again without a not-before time".to_owned()
            }
        }
    }
}

/// A time in seconds since the Unix epoch as RFC 3339 (UTC).
pub fn timestamp(secs: u64) -> String {
    i64::try_from(secs)
        .ok()
        .and_then(|s| time::OffsetDateTime::from_unix_timestamp(s).ok())
        .and_then(|t| {
            t.format(&time::format_description::well_known::Rfc3339)
                .ok()
        })
        .unwrap_or_else(|| format!("{secs} (seconds since the epoch)"))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A component with one custom section of our own, so that changing its contents keeps
    /// it a valid component.
    fn component(payload: &[u8]) -> Vec<u8> {
        let mut bytes = b"\0asm\x0d\x00\x01\x00".to_vec();
        let name = b"note";
        let size = 1 + name.len() + payload.len();
        bytes.push(0);
        bytes.push(u8::try_from(size).expect("small"));
        bytes.push(u8::try_from(name.len()).expect("small"));
        bytes.extend_from_slice(name);
        bytes.extend_from_slice(payload);
        bytes
    }

    fn signed(options: &SignOptions) -> (KeyPair, Vec<u8>) {
        let issuer = KeyPair::new_account();
        let bytes = sign(
            &component(b"hello"),
            &issuer,
            &KeyPair::new_module(),
            options,
        )
        .expect("sign");
        (issuer, bytes)
    }

    #[test]
    fn signed_components_read_back_with_their_claims() {
        let options = SignOptions {
            version: Some("1.2.3".into()),
            revision: Some(7),
            tags: vec!["web".into(), "demo".into()],
            ..SignOptions::named("hello")
        };
        let (issuer, bytes) = signed(&options);
        let seen = inspect(&bytes).expect("read").expect("signed");
        assert_eq!(seen.claims.issuer, issuer.public_key());
        assert!(seen.claims.subject.starts_with('M'));
        assert_eq!(seen.claims.name.as_deref(), Some("hello"));
        assert_eq!(seen.claims.version.as_deref(), Some("1.2.3"));
        assert_eq!(seen.claims.revision, Some(7));
        assert_eq!(seen.claims.tags, ["web", "demo"]);
        assert_eq!(seen.hash, HashCheck::Matches);
        assert!(seen.signature_valid);
        assert_eq!(seen.refusal(), None);
        let stored = seen.claims.stored();
        assert_eq!(stored.revision, "7");
        assert_eq!(stored.reply_map()["tags"], "web,demo");
        assert!(inspect(&component(b"hello")).expect("read").is_none());
    }

    /// `wash claims sign` signs through wascap's `sign_buffer_with_claims`, and the wasmCloud
    /// host reads through `extract_claims` and `validate_token`: both ways meet ours.
    #[test]
    fn signatures_cross_with_wash_and_the_wasmcloud_host() {
        let issuer = KeyPair::new_account();
        let module = KeyPair::new_module();
        let by_wash = wascap::wasm::sign_buffer_with_claims(
            "washed".into(),
            component(b"hello"),
            &module,
            &issuer,
            Some(30),
            None,
            vec!["t".into()],
            false,
            Some(3),
            Some("0.1.0".into()),
            None,
        )
        .expect("wash's signing");
        let seen = inspect(&by_wash).expect("read").expect("signed");
        assert_eq!(seen.claims.subject, module.public_key());
        assert_eq!(seen.claims.name.as_deref(), Some("washed"));
        assert_eq!(seen.refusal(), None);
        let policy = Policy::allowed_issuers([issuer.public_key()]).expect("policy");
        assert!(policy.check(&by_wash).expect("admitted").is_some());

        let ours = sign(
            &component(b"hello"),
            &issuer,
            &module,
            &SignOptions::named("ours"),
        )
        .expect("sign");
        let token = wascap::wasm::extract_claims(&ours)
            .expect("the host's extraction")
            .expect("found");
        assert_eq!(token.claims.issuer, issuer.public_key());
        let validation =
            wascap::jwt::validate_token::<Component>(&token.jwt).expect("the host's validation");
        assert!(validation.signature_valid && !validation.expired);
    }

    #[test]
    fn signing_again_replaces_the_signature() {
        let (_, once) = signed(&SignOptions::named("first"));
        let other = KeyPair::new_account();
        let twice = sign(
            &once,
            &other,
            &KeyPair::new_module(),
            &SignOptions::named("second"),
        )
        .expect("sign");
        let seen = inspect(&twice).expect("read").expect("signed");
        assert_eq!(seen.claims.issuer, other.public_key());
        assert_eq!(seen.hash, HashCheck::Matches);
    }

    #[test]
    fn the_policy_refuses_with_the_reason() {
        let (issuer, bytes) = signed(&SignOptions::named("hello"));
        let policy = Policy::allowed_issuers([issuer.public_key()]).expect("policy");
        assert!(policy.check(&bytes).expect("allowed").is_some());
        assert_eq!(policy.check(&component(b"hello")), Err(Refusal::Unsigned));

        let foreign = Policy::allowed_issuers([KeyPair::new_account().public_key()])
            .expect("policy")
            .check(&bytes);
        assert!(
            matches!(&foreign, Err(Refusal::IssuerNotAllowed { issuer: i, .. }) if *i == issuer.public_key()),
            "{foreign:?}"
        );

        // Same length, other code: the hash no longer matches.
        let at = bytes
            .windows(5)
            .position(|w| w == b"hello")
            .expect("payload");
        let mut tampered = bytes.clone();
        tampered[at] = b'j';
        let refused = policy.check(&tampered);
        assert_eq!(
            refused,
            Err(Refusal::Modified {
                issuer: issuer.public_key()
            })
        );
        assert!(
            refused
                .expect_err("refused")
                .to_string()
                .contains("hash mismatch")
        );
        // Without a policy it runs, but its claims are not believed.
        assert_eq!(Policy::Any.check(&tampered), Ok(None));

        // Claims naming the allowed issuer but signed by another key.
        let claims = Claims::<Component>::with_dates(
            "forged".into(),
            issuer.public_key(),
            KeyPair::new_module().public_key(),
            None,
            None,
            None,
            false,
            None,
            None,
            None,
        );
        let forged = wascap::wasm::embed_claims(&component(b"x"), &claims, &KeyPair::new_account())
            .expect("embed");
        assert_eq!(
            policy.check(&forged),
            Err(Refusal::BadSignature {
                issuer: issuer.public_key()
            })
        );
    }

    #[test]
    fn dates_are_checked() {
        let now = now();
        let (issuer, bytes) = signed(&SignOptions {
            expires: Some(now + 60),
            not_before: Some(now - 60),
            ..SignOptions::named("dated")
        });
        let policy = Policy::allowed_issuers([issuer.public_key()]).expect("policy");
        assert!(policy.check_at(&bytes, now).expect("valid now").is_some());
        assert_eq!(
            policy.check_at(&bytes, now + 61),
            Err(Refusal::Expired { at: now + 60 })
        );
        assert_eq!(
            policy.check_at(&bytes, now - 61),
            Err(Refusal::NotYetValid { from: now - 60 })
        );
        assert!(
            Refusal::Expired { at: 0 }
                .to_string()
                .contains("1970-01-01T00:00:00Z")
        );
    }

    #[test]
    fn keys_must_be_of_the_right_kind() {
        let bytes = component(b"x");
        let user = KeyPair::new_user();
        assert!(matches!(
            sign(
                &bytes,
                &user,
                &KeyPair::new_module(),
                &SignOptions::named("x")
            ),
            Err(ClaimsError::IssuerNotAccount(_))
        ));
        assert!(matches!(
            sign(
                &bytes,
                &KeyPair::new_account(),
                &user,
                &SignOptions::named("x")
            ),
            Err(ClaimsError::SubjectNotModule(_))
        ));
        assert!(matches!(
            Policy::allowed_issuers([KeyPair::new_module().public_key()]),
            Err(ClaimsError::NotAnIssuer(_))
        ));
        assert!(matches!(
            Policy::allowed_issuers(["", " "]),
            Err(ClaimsError::NoIssuers)
        ));
        assert!(matches!(inspect(b"not wasm"), Err(ClaimsError::NotWasm)));
    }
}

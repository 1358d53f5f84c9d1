//! Signed control requests (strict mode).
//!
//! Anyone who may publish on a lattice's control subjects drives the lattice. NATS
//! credentials (`trellis creds init`) decide who may publish at all; strict mode adds proof
//! of who sent each request: a host started with `--require-signed-control` answers a control
//! or app request only when it carries a signature, by one of its trusted keys, over the
//! subject, a timestamp, a nonce and the body, recent enough and not seen before.
//!
//! The signature travels in NATS headers, so the body stays what wasmCloud v1 clients send:
//!
//! | header | value |
//! | --- | --- |
//! | `Trellis-Signer` | the signer's public nkey (a user key, `U…`) |
//! | `Trellis-Timestamp` | milliseconds since the Unix epoch |
//! | `Trellis-Nonce` | 32 random hex digits, never used twice |
//! | `Trellis-Signature` | base64url (no padding) of the ed25519 signature |
//!
//! The signed bytes are `trellis-control-v1\n{subject}\n{timestamp}\n{nonce}\n{sha256(body)
//! as hex}`. Off by default: unmodified wasmCloud v1 clients keep working against hosts
//! that do not ask for signatures.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::Digest as _;
use std::collections::{HashMap, VecDeque};
use std::sync::Mutex;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

/// The header naming the signer's public key.
pub const SIGNER: &str = "Trellis-Signer";
/// The header with the signing time.
pub const TIMESTAMP: &str = "Trellis-Timestamp";
/// The header with the request's nonce.
pub const NONCE: &str = "Trellis-Nonce";
/// The header with the signature.
pub const SIGNATURE: &str = "Trellis-Signature";

/// How far a request's timestamp may be from the host's clock unless told otherwise.
pub const DEFAULT_MAX_SKEW: Duration = Duration::from_secs(60);

/// The most nonces a host remembers; beyond it, requests are refused until old ones expire.
const MAX_NONCES: usize = 100_000;

/// Why a key could not be used.
#[derive(Debug, thiserror::Error)]
#[error("{what}: {reason}")]
pub struct KeyError {
    what: String,
    reason: String,
}

/// Why a request was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum Refusal {
    /// No signature headers at all.
    #[error(
        "this host requires signed control requests (--require-signed-control): sign with a trusted key (trellis … --control-key, env TRELLIS_CONTROL_KEY)"
    )]
    Unsigned,
    /// A header is missing or malformed.
    #[error("the request's signature is malformed: {0}")]
    Malformed(String),
    /// Signed by a key this host does not trust.
    #[error(
        "the request is signed by {0}, which this host does not trust (--trusted-control-keys)"
    )]
    Untrusted(String),
    /// The signature does not match the request.
    #[error("the request's signature does not match its subject and body")]
    BadSignature,
    /// Signed too long ago or too far in the future.
    #[error(
        "the request was signed {skew_ms} ms away from this host's clock, more than the {max_ms} ms allowed; check the clocks"
    )]
    Stale {
        /// How far off, in milliseconds.
        skew_ms: u64,
        /// The bound.
        max_ms: u64,
    },
    /// The nonce was seen before: a replay.
    #[error("the request's nonce was already used: a replayed request is refused")]
    Replayed,
    /// Too many recent requests to remember.
    #[error("too many signed requests within the clock-skew window; try again shortly")]
    Busy,
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| u64::try_from(d.as_millis()).unwrap_or(u64::MAX))
        .unwrap_or_default()
}

/// What is signed for a request on `subject` with `body`.
fn signed_bytes(subject: &str, timestamp: u64, nonce: &str, body: &[u8]) -> Vec<u8> {
    let digest = sha2::Sha256::digest(body);
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("trellis-control-v1\n{subject}\n{timestamp}\n{nonce}\n{hex}").into_bytes()
}

/// Signs control requests with one nkey.
pub struct Signer {
    key: nkeys::KeyPair,
}

impl std::fmt::Debug for Signer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Signer")
            .field("public_key", &self.key.public_key())
            .finish()
    }
}

impl Signer {
    /// A signer from an nkey seed (a user seed, `SU…`).
    pub fn from_seed(seed: &str) -> Result<Self, KeyError> {
        let key = nkeys::KeyPair::from_seed(seed.trim()).map_err(|e| KeyError {
            what: "the control key is not an nkey seed".into(),
            reason: e.to_string(),
        })?;
        Ok(Self { key })
    }

    /// A new random user key.
    pub fn generate() -> Self {
        Self {
            key: nkeys::KeyPair::new_user(),
        }
    }

    /// The seed, to store.
    pub fn seed(&self) -> String {
        self.key.seed().unwrap_or_default()
    }

    /// The public key hosts must trust.
    pub fn public_key(&self) -> String {
        self.key.public_key()
    }

    /// The headers that sign a request on `subject` with `body`, now.
    pub fn headers(&self, subject: &str, body: &[u8]) -> async_nats::HeaderMap {
        self.headers_at(subject, body, now_ms())
    }

    /// The headers that sign a request as of `timestamp` (ms since the epoch).
    pub fn headers_at(&self, subject: &str, body: &[u8], timestamp: u64) -> async_nats::HeaderMap {
        let nonce = uuid::Uuid::new_v4().simple().to_string();
        let signature = self
            .key
            .sign(&signed_bytes(subject, timestamp, &nonce, body))
            .unwrap_or_default();
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(SIGNER, self.key.public_key().as_str());
        headers.insert(TIMESTAMP, timestamp.to_string().as_str());
        headers.insert(NONCE, nonce.as_str());
        headers.insert(SIGNATURE, URL_SAFE_NO_PAD.encode(signature).as_str());
        headers
    }
}

/// Nonces seen (`signer/nonce` → when it may be forgotten), and their order of arrival.
type SeenNonces = (HashMap<String, u64>, VecDeque<(u64, String)>);

/// Checks signed requests for a host in strict mode.
pub struct Verifier {
    trusted: Vec<(String, nkeys::KeyPair)>,
    max_skew: Duration,
    /// Nonces seen within the window, with when they may be forgotten.
    seen: Mutex<SeenNonces>,
}

impl std::fmt::Debug for Verifier {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Verifier")
            .field(
                "trusted",
                &self.trusted.iter().map(|(k, _)| k).collect::<Vec<_>>(),
            )
            .field("max_skew", &self.max_skew)
            .finish()
    }
}

impl Verifier {
    /// Trusts the public keys `trusted` (user keys, `U…`), with requests signed at most
    /// `max_skew` away from this host's clock.
    pub fn new(trusted: &[String], max_skew: Duration) -> Result<Self, KeyError> {
        let trusted = trusted
            .iter()
            .map(|k| {
                let k = k.trim();
                nkeys::KeyPair::from_public_key(k)
                    .map(|pair| (k.to_owned(), pair))
                    .map_err(|e| KeyError {
                        what: format!("trusted control key `{k}` is not an nkey public key"),
                        reason: e.to_string(),
                    })
            })
            .collect::<Result<Vec<_>, _>>()?;
        if trusted.is_empty() {
            return Err(KeyError {
                what: "--require-signed-control".into(),
                reason: "no trusted keys: give --trusted-control-keys (env TRELLIS_TRUSTED_CONTROL_KEYS) the public keys of the admins and hosts that sign".into(),
            });
        }
        Ok(Self {
            trusted,
            max_skew,
            seen: Mutex::default(),
        })
    }

    /// Checks the request on `subject` with `headers` and `body`: `Ok` when a trusted key
    /// signed exactly this, recently, for the first time.
    pub fn check(
        &self,
        subject: &str,
        headers: Option<&async_nats::HeaderMap>,
        body: &[u8],
    ) -> Result<(), Refusal> {
        let get = |name: &str| headers.and_then(|h| h.get(name)).map(|v| v.as_str());
        let signer = match get(SIGNER) {
            None if get(SIGNATURE).is_none() => return Err(Refusal::Unsigned),
            None => return Err(Refusal::Malformed(format!("no {SIGNER} header"))),
            Some(s) => s,
        };
        let header =
            |name: &str| get(name).ok_or_else(|| Refusal::Malformed(format!("no {name} header")));
        let timestamp: u64 = header(TIMESTAMP)?
            .parse()
            .map_err(|_| Refusal::Malformed(format!("{TIMESTAMP} is not a number")))?;
        let nonce = header(NONCE)?;
        if nonce.is_empty() || nonce.len() > 128 {
            return Err(Refusal::Malformed(format!("{NONCE} is empty or too long")));
        }
        let signature = URL_SAFE_NO_PAD
            .decode(header(SIGNATURE)?)
            .map_err(|_| Refusal::Malformed(format!("{SIGNATURE} is not base64url")))?;
        let Some((_, key)) = self.trusted.iter().find(|(k, _)| k == signer) else {
            return Err(Refusal::Untrusted(signer.to_owned()));
        };
        key.verify(&signed_bytes(subject, timestamp, nonce, body), &signature)
            .map_err(|_| Refusal::BadSignature)?;
        let now = now_ms();
        let skew = now.abs_diff(timestamp);
        let max = u64::try_from(self.max_skew.as_millis()).unwrap_or(u64::MAX);
        if skew > max {
            return Err(Refusal::Stale {
                skew_ms: skew,
                max_ms: max,
            });
        }
        let mut guard = self.seen.lock().unwrap_or_else(|e| e.into_inner());
        let (seen, order) = &mut *guard;
        while let Some((forget_at, _)) = order.front() {
            if *forget_at > now {
                break;
            }
            if let Some((_, old)) = order.pop_front() {
                seen.remove(&old);
            }
        }
        let key = format!("{signer}/{nonce}");
        if seen.contains_key(&key) {
            return Err(Refusal::Replayed);
        }
        if seen.len() >= MAX_NONCES {
            return Err(Refusal::Busy);
        }
        // Past this, the timestamp check refuses it anyway.
        let forget_at = timestamp.saturating_add(max).saturating_add(1);
        seen.insert(key.clone(), forget_at);
        // Kept in arrival order; a nonce with an earlier expiry behind a later one is only
        // forgotten late, which errs on the safe side.
        order.push_back((forget_at, key));
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn verifier(signer: &Signer) -> Verifier {
        Verifier::new(&[signer.public_key()], DEFAULT_MAX_SKEW).expect("verifier")
    }

    #[test]
    fn a_trusted_signature_passes_once() {
        let signer = Signer::generate();
        let v = verifier(&signer);
        let headers = signer.headers("wasmbus.ctl.v1.x.host.ping", b"{}");
        assert_eq!(
            v.check("wasmbus.ctl.v1.x.host.ping", Some(&headers), b"{}"),
            Ok(())
        );
        assert_eq!(
            v.check("wasmbus.ctl.v1.x.host.ping", Some(&headers), b"{}"),
            Err(Refusal::Replayed)
        );
    }

    #[test]
    fn anything_else_is_refused_with_the_reason() {
        let signer = Signer::generate();
        let v = verifier(&signer);
        let subject = "wasmbus.ctl.v1.x.config.put.db";
        assert_eq!(v.check(subject, None, b"{}"), Err(Refusal::Unsigned));
        let headers = signer.headers(subject, b"{}");
        assert_eq!(
            v.check(subject, Some(&headers), b"{\"a\":1}"),
            Err(Refusal::BadSignature),
            "another body"
        );
        let headers = signer.headers(subject, b"{}");
        assert_eq!(
            v.check("wasmbus.ctl.v1.x.config.del.db", Some(&headers), b"{}"),
            Err(Refusal::BadSignature),
            "another subject"
        );
        let stranger = Signer::generate();
        let headers = stranger.headers(subject, b"{}");
        assert_eq!(
            v.check(subject, Some(&headers), b"{}"),
            Err(Refusal::Untrusted(stranger.public_key()))
        );
        let old = signer.headers_at(subject, b"{}", now_ms() - 120_000);
        assert!(matches!(
            v.check(subject, Some(&old), b"{}"),
            Err(Refusal::Stale { .. })
        ));
        let mut torn = signer.headers(subject, b"{}");
        torn.insert(SIGNATURE, "!!");
        assert!(matches!(
            v.check(subject, Some(&torn), b"{}"),
            Err(Refusal::Malformed(_))
        ));
    }

    #[test]
    fn keys_are_checked_when_loaded() {
        assert!(Signer::from_seed("not a seed").is_err());
        let signer = Signer::generate();
        assert_eq!(
            Signer::from_seed(&signer.seed())
                .expect("seed")
                .public_key(),
            signer.public_key()
        );
        assert!(Verifier::new(&[], DEFAULT_MAX_SKEW).is_err());
        assert!(Verifier::new(&["nope".into()], DEFAULT_MAX_SKEW).is_err());
    }
}

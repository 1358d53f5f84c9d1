//! NATS JWTs (version 2 claims, as nats-server and the `nsc` tool read them): an operator
//! that signs itself, accounts it signs, users an account signs, and the `.creds` file that
//! carries a user's JWT and seed.
//!
//! A JWT is `base64url(header).base64url(claims).base64url(signature)`, the header naming
//! the `ed25519-nkey` algorithm, the signature the issuer's nkey over the first two parts.
//! Written here rather than taken from a crate: the Rust NATS JWT crates on crates.io cannot
//! write an operator, or an account with JetStream, which Trellis needs (docs/security.md).

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use nkeys::KeyPair;
use serde_json::{Value, json};
use sha2::Digest as _;

/// Unlimited, in NATS limits.
const NO_LIMIT: i64 = -1;

/// Signs `nats` (the type-specific claims) as issued by `issuer` about `subject`.
fn sign(issuer: &KeyPair, subject: &str, name: &str, nats: Value) -> anyhow::Result<String> {
    let issued_at = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or_default();
    let mut claims = json!({
        "iat": issued_at,
        "iss": issuer.public_key(),
        "name": name,
        "sub": subject,
        "nats": nats,
    });
    // The id is the hash of the claims without it, as the Go library makes it.
    let hash = sha2::Sha256::digest(serde_json::to_vec(&claims)?);
    claims["jti"] = Value::String(data_encoding::BASE32_NOPAD.encode(&hash));
    let header = URL_SAFE_NO_PAD.encode(br#"{"typ":"JWT","alg":"ed25519-nkey"}"#);
    let body = URL_SAFE_NO_PAD.encode(serde_json::to_vec(&claims)?);
    let signed = format!("{header}.{body}");
    let signature = issuer
        .sign(signed.as_bytes())
        .map_err(|e| anyhow::anyhow!("cannot sign a JWT: {e}"))?;
    Ok(format!("{signed}.{}", URL_SAFE_NO_PAD.encode(signature)))
}

/// The operator's JWT, signed by itself, naming its system account.
pub(crate) fn operator(
    operator: &KeyPair,
    name: &str,
    system_account: &str,
) -> anyhow::Result<String> {
    sign(
        operator,
        &operator.public_key(),
        name,
        json!({"type": "operator", "version": 2, "system_account": system_account}),
    )
}

/// An account's JWT, signed by the operator; with `jetstream`, its streams and storage are
/// unlimited (the server's own limits still hold), without it JetStream is off.
pub(crate) fn account(
    operator: &KeyPair,
    account: &KeyPair,
    name: &str,
    jetstream: bool,
) -> anyhow::Result<String> {
    let mut limits = json!({
        "subs": NO_LIMIT, "data": NO_LIMIT, "payload": NO_LIMIT,
        "imports": NO_LIMIT, "exports": NO_LIMIT, "wildcards": true,
        "conn": NO_LIMIT, "leaf": NO_LIMIT,
    });
    if jetstream {
        for key in ["mem_storage", "disk_storage", "streams", "consumer"] {
            limits[key] = json!(NO_LIMIT);
        }
    }
    sign(
        operator,
        &account.public_key(),
        name,
        json!({"type": "account", "version": 2, "limits": limits}),
    )
}

/// A user's JWT, signed by its account, allowed to publish and subscribe to these subjects
/// only (and to answer requests it receives once, with `allow_responses`).
pub(crate) fn user(
    account: &KeyPair,
    user: &KeyPair,
    name: &str,
    publish: &[String],
    subscribe: &[String],
    allow_responses: bool,
) -> anyhow::Result<String> {
    let mut nats = json!({
        "type": "user", "version": 2,
        "pub": {"allow": publish},
        "sub": {"allow": subscribe},
        "subs": NO_LIMIT, "data": NO_LIMIT, "payload": NO_LIMIT,
    });
    if allow_responses {
        nats["resp"] = json!({"max": 1, "ttl": 0});
    }
    sign(account, &user.public_key(), name, nats)
}

/// A `.creds` file: the user's JWT and nkey seed in the armour every NATS client reads
/// (async-nats `credentials_file`, nats.py `user_credentials`, `nats --creds`, a leaf
/// node remote's `credentials`).
pub(crate) fn creds_file(jwt: &str, seed: &str) -> String {
    format!(
        "-----BEGIN NATS USER JWT-----\n{jwt}\n------END NATS USER JWT------\n\n\
         ************************* IMPORTANT *************************\n\
         NKEY Seed printed below can be used to sign and prove identity.\n\
         NKEYs are sensitive and should be treated as secrets.\n\n\
         -----BEGIN USER NKEY SEED-----\n{seed}\n------END USER NKEY SEED------\n\n\
         *************************************************************\n"
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claims(jwt: &str) -> Value {
        let body = jwt.split('.').nth(1).expect("claims part");
        serde_json::from_slice(&URL_SAFE_NO_PAD.decode(body).expect("base64")).expect("json")
    }

    #[test]
    fn jwts_are_signed_by_their_issuer_and_say_what_they_are() {
        let op = KeyPair::new_operator();
        let acct = KeyPair::new_account();
        let usr = KeyPair::new_user();
        let jwt =
            user(&acct, &usr, "rpc", &["a.>".into()], &["b".into()], false).expect("user jwt");
        let (signed, signature) = jwt.rsplit_once('.').expect("three parts");
        let signature = URL_SAFE_NO_PAD.decode(signature).expect("signature");
        let issuer = KeyPair::from_public_key(&acct.public_key()).expect("public key");
        issuer
            .verify(signed.as_bytes(), &signature)
            .expect("signed by the account");
        let c = claims(&jwt);
        assert_eq!(c["sub"], usr.public_key());
        assert_eq!(c["nats"]["type"], "user");
        assert_eq!(c["nats"]["pub"]["allow"][0], "a.>");
        assert!(c["nats"].get("resp").is_none());
        assert!(!c["jti"].as_str().unwrap_or_default().is_empty());

        let a = claims(&account(&op, &acct, "prod", true).expect("account jwt"));
        assert_eq!(a["iss"], op.public_key());
        assert_eq!(a["nats"]["limits"]["disk_storage"], -1);
        let sys = claims(&account(&op, &acct, "SYS", false).expect("account jwt"));
        assert!(sys["nats"]["limits"].get("disk_storage").is_none());
        let o = claims(&operator(&op, "trellis", &acct.public_key()).expect("operator jwt"));
        assert_eq!(o["iss"], o["sub"]);
        assert_eq!(o["nats"]["system_account"], acct.public_key());
    }

    #[test]
    fn creds_files_carry_the_jwt_and_the_seed() {
        let file = creds_file("eyJ.x.y", "SUABC");
        assert!(
            file.contains("-----BEGIN NATS USER JWT-----\neyJ.x.y\n------END NATS USER JWT------")
        );
        assert!(
            file.contains("-----BEGIN USER NKEY SEED-----\nSUABC\n------END USER NKEY SEED------")
        );
    }
}

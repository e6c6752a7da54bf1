//! ID tokens (JSON Web Tokens, RFC 7519) as an OpenID provider signs them: parsed, their
//! signature checked against the provider's published keys (RS256, PS256 or ES256; never
//! `none` or a shared-secret algorithm), and their claims checked (issuer, audience, expiry
//! and issue time with a clock skew allowance, nonce). Pure: the time is passed in.

use aws_lc_rs::signature::{self, RsaPublicKeyComponents, UnparsedPublicKey};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use serde::Deserialize;
use serde_json::{Map, Value};

/// One key of a provider's JWK set (RFC 7517), the fields read.
#[derive(Debug, Clone, Deserialize)]
pub struct Jwk {
    /// Key id: which key signed a token (its header's `kid`).
    #[serde(default)]
    pub kid: Option<String>,
    /// `RSA` or `EC`.
    pub kty: String,
    /// `sig` for signing keys; keys for encryption are skipped.
    #[serde(default, rename = "use")]
    pub use_: Option<String>,
    /// RSA modulus (base64url).
    #[serde(default)]
    pub n: Option<String>,
    /// RSA exponent (base64url).
    #[serde(default)]
    pub e: Option<String>,
    /// EC curve (`P-256`).
    #[serde(default)]
    pub crv: Option<String>,
    /// EC point's x (base64url).
    #[serde(default)]
    pub x: Option<String>,
    /// EC point's y (base64url).
    #[serde(default)]
    pub y: Option<String>,
}

/// A provider's JWK set (`jwks_uri`).
#[derive(Debug, Clone, Default, Deserialize)]
pub struct Jwks {
    /// Its keys.
    pub keys: Vec<Jwk>,
}

/// What an ID token must say.
#[derive(Debug, Clone)]
pub struct Expect<'a> {
    /// `iss`: the configured issuer, exactly.
    pub issuer: &'a str,
    /// `aud` holds it (and `azp`, when present, is it).
    pub audience: &'a str,
    /// `nonce`, when the sign-in sent one.
    pub nonce: Option<&'a str>,
    /// The time to judge `exp`, `iat` and `nbf` at.
    pub now: DateTime<Utc>,
    /// How far the provider's clock may be off ours, in seconds.
    pub skew_secs: i64,
}

/// Why an ID token was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum JwtError {
    /// Not three base64url parts of JSON.
    #[error("the ID token is malformed: {0}")]
    Malformed(String),
    /// An algorithm not accepted (`none`, `HS256`, …).
    #[error("the ID token is signed with {0:?}, which is not accepted (RS256, PS256, ES256)")]
    Algorithm(String),
    /// No key of the provider's set has the token's `kid` (the provider may have rotated).
    #[error("no key {0:?} in the provider's key set")]
    UnknownKey(String),
    /// The signature does not verify.
    #[error("the ID token's signature does not verify")]
    Signature,
    /// `iss` is not the configured issuer.
    #[error("the ID token is from issuer {0:?}, not the configured one")]
    Issuer(String),
    /// `aud` does not name this client.
    #[error("the ID token is for another audience ({0}), not this client")]
    Audience(String),
    /// `exp` has passed.
    #[error("the ID token expired at {0}")]
    Expired(i64),
    /// `iat` or `nbf` lies in the future.
    #[error("the ID token is not valid yet (issued in the future)")]
    Early,
    /// `nonce` differs from the sign-in's.
    #[error("the ID token's nonce does not match this sign-in")]
    Nonce,
    /// A required claim is missing.
    #[error("the ID token has no {0:?} claim")]
    Missing(&'static str),
}

fn b64(part: &str, what: &str) -> Result<Vec<u8>, JwtError> {
    URL_SAFE_NO_PAD
        .decode(part.trim_end_matches('='))
        .map_err(|e| JwtError::Malformed(format!("{what}: {e}")))
}

fn object(bytes: &[u8], what: &str) -> Result<Map<String, Value>, JwtError> {
    match serde_json::from_slice(bytes) {
        Ok(Value::Object(o)) => Ok(o),
        Ok(_) => Err(JwtError::Malformed(format!("{what} is not a JSON object"))),
        Err(e) => Err(JwtError::Malformed(format!("{what}: {e}"))),
    }
}

/// The `kid` of a token's header, if it has one (to tell whether the key set must be fetched
/// again).
pub fn key_id(token: &str) -> Option<String> {
    let header = token.split('.').next()?;
    let header = object(&b64(header, "header").ok()?, "header").ok()?;
    header.get("kid").and_then(Value::as_str).map(str::to_owned)
}

/// Verifies `token` against `jwks` and `expect`; its claims.
pub fn verify(token: &str, jwks: &Jwks, expect: &Expect) -> Result<Map<String, Value>, JwtError> {
    if token.len() > 16 * 1024 {
        return Err(JwtError::Malformed("longer than 16 KiB".into()));
    }
    let parts: Vec<&str> = token.split('.').collect();
    let [header_b64, claims_b64, sig_b64] = parts[..] else {
        return Err(JwtError::Malformed("not three dot-separated parts".into()));
    };
    let header = object(&b64(header_b64, "header")?, "header")?;
    let alg = header.get("alg").and_then(Value::as_str).unwrap_or("");
    let kid = header.get("kid").and_then(Value::as_str);
    let alg = match alg {
        "RS256" => Alg::Rs256,
        "PS256" => Alg::Ps256,
        "ES256" => Alg::Es256,
        other => return Err(JwtError::Algorithm(other.to_owned())),
    };
    let kty = if alg == Alg::Es256 { "EC" } else { "RSA" };
    let candidates: Vec<&Jwk> = jwks
        .keys
        .iter()
        .filter(|k| k.kty == kty && k.use_.as_deref().is_none_or(|u| u == "sig"))
        .filter(|k| kid.is_none() || k.kid.as_deref() == kid)
        .collect();
    if candidates.is_empty() {
        return Err(JwtError::UnknownKey(kid.unwrap_or("(none)").to_owned()));
    }
    let signed = &token.as_bytes()[..header_b64.len() + 1 + claims_b64.len()];
    let sig = b64(sig_b64, "signature")?;
    let verified = candidates.iter().any(|k| check(k, alg, signed, &sig).unwrap_or(false));
    if !verified {
        return Err(JwtError::Signature);
    }
    let claims = object(&b64(claims_b64, "claims")?, "claims")?;
    check_claims(&claims, expect)?;
    Ok(claims)
}

/// The signature algorithms accepted.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Alg {
    Rs256,
    Ps256,
    Es256,
}

/// Whether `sig` over `signed` verifies with key `k`.
fn check(k: &Jwk, alg: Alg, signed: &[u8], sig: &[u8]) -> Result<bool, JwtError> {
    let field = |v: &Option<String>, name: &str| -> Result<Vec<u8>, JwtError> {
        b64(v.as_deref().ok_or_else(|| JwtError::Malformed(format!("key without {name}")))?, name)
    };
    Ok(match k.kty.as_str() {
        "RSA" => {
            let (n, e) = (field(&k.n, "n")?, field(&k.e, "e")?);
            let key = RsaPublicKeyComponents { n: &n[..], e: &e[..] };
            let params = match alg {
                Alg::Ps256 => &signature::RSA_PSS_2048_8192_SHA256,
                _ => &signature::RSA_PKCS1_2048_8192_SHA256,
            };
            key.verify(params, signed, sig).is_ok()
        }
        "EC" => {
            if k.crv.as_deref() != Some("P-256") {
                return Ok(false);
            }
            let (x, y) = (field(&k.x, "x")?, field(&k.y, "y")?);
            let mut point = vec![4u8];
            point.extend_from_slice(&x);
            point.extend_from_slice(&y);
            UnparsedPublicKey::new(&signature::ECDSA_P256_SHA256_FIXED, point)
                .verify(signed, sig)
                .is_ok()
        }
        _ => false,
    })
}

fn check_claims(c: &Map<String, Value>, expect: &Expect) -> Result<(), JwtError> {
    let iss = c.get("iss").and_then(Value::as_str).ok_or(JwtError::Missing("iss"))?;
    if iss != expect.issuer {
        return Err(JwtError::Issuer(iss.to_owned()));
    }
    let aud: Vec<&str> = match c.get("aud") {
        Some(Value::String(s)) => vec![s.as_str()],
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).collect(),
        _ => return Err(JwtError::Missing("aud")),
    };
    if !aud.contains(&expect.audience) {
        return Err(JwtError::Audience(aud.join(", ")));
    }
    if let Some(azp) = c.get("azp").and_then(Value::as_str)
        && azp != expect.audience
    {
        return Err(JwtError::Audience(format!("azp {azp}")));
    }
    let now = expect.now.timestamp();
    let exp = c.get("exp").and_then(Value::as_i64).ok_or(JwtError::Missing("exp"))?;
    if now > exp + expect.skew_secs {
        return Err(JwtError::Expired(exp));
    }
    for name in ["iat", "nbf"] {
        if let Some(t) = c.get(name).and_then(Value::as_i64)
            && t > now + expect.skew_secs
        {
            return Err(JwtError::Early);
        }
    }
    if c.get("sub").and_then(Value::as_str).is_none_or(str::is_empty) {
        return Err(JwtError::Missing("sub"));
    }
    if let Some(want) = expect.nonce
        && c.get("nonce").and_then(Value::as_str) != Some(want)
    {
        return Err(JwtError::Nonce);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use aws_lc_rs::rand::SystemRandom;
    use aws_lc_rs::signature::{ECDSA_P256_SHA256_FIXED_SIGNING, EcdsaKeyPair, KeyPair};
    use chrono::TimeZone;
    use serde_json::json;

    use super::*;

    struct Signer {
        key: EcdsaKeyPair,
        kid: String,
    }

    impl Signer {
        fn new(kid: &str) -> Signer {
            let rng = SystemRandom::new();
            let pkcs8 =
                EcdsaKeyPair::generate_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, &rng).unwrap();
            let key =
                EcdsaKeyPair::from_pkcs8(&ECDSA_P256_SHA256_FIXED_SIGNING, pkcs8.as_ref()).unwrap();
            Signer { key, kid: kid.into() }
        }

        fn jwk(&self) -> Jwk {
            let point = self.key.public_key().as_ref();
            Jwk {
                kid: Some(self.kid.clone()),
                kty: "EC".into(),
                use_: Some("sig".into()),
                n: None,
                e: None,
                crv: Some("P-256".into()),
                x: Some(URL_SAFE_NO_PAD.encode(&point[1..33])),
                y: Some(URL_SAFE_NO_PAD.encode(&point[33..65])),
            }
        }

        fn sign(&self, header: Value, claims: Value) -> String {
            let h = URL_SAFE_NO_PAD.encode(header.to_string());
            let c = URL_SAFE_NO_PAD.encode(claims.to_string());
            let input = format!("{h}.{c}");
            let sig = self.key.sign(&SystemRandom::new(), input.as_bytes()).unwrap();
            format!("{input}.{}", URL_SAFE_NO_PAD.encode(sig.as_ref()))
        }

        fn token(&self, claims: Value) -> String {
            self.sign(json!({"alg": "ES256", "kid": self.kid}), claims)
        }
    }

    fn now() -> DateTime<Utc> {
        Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap()
    }

    fn claims() -> Value {
        let t = now().timestamp();
        json!({"iss": "https://idp.example", "aud": "wavegate", "sub": "u1", "nonce": "n1",
               "iat": t, "exp": t + 300, "email": "alice@example.com"})
    }

    fn expect() -> Expect<'static> {
        Expect {
            issuer: "https://idp.example",
            audience: "wavegate",
            nonce: Some("n1"),
            now: now(),
            skew_secs: 60,
        }
    }

    #[test]
    fn a_good_token_verifies_and_each_wrong_claim_is_named() {
        let s = Signer::new("k1");
        let jwks = Jwks { keys: vec![s.jwk()] };
        let ok = verify(&s.token(claims()), &jwks, &expect()).unwrap();
        assert_eq!(ok["email"], "alice@example.com");
        assert_eq!(key_id(&s.token(claims())).as_deref(), Some("k1"));

        let with = |k: &str, v: Value| {
            let mut c = claims();
            c[k] = v;
            verify(&s.token(c), &jwks, &expect()).unwrap_err()
        };
        assert!(matches!(with("aud", json!("other-app")), JwtError::Audience(_)));
        assert!(matches!(with("aud", json!(["a", "b"])), JwtError::Audience(_)));
        assert!(matches!(with("azp", json!("other-app")), JwtError::Audience(_)));
        assert!(matches!(with("iss", json!("https://evil.example")), JwtError::Issuer(_)));
        let t = now().timestamp();
        assert!(matches!(with("exp", json!(t - 61)), JwtError::Expired(_)));
        assert!(matches!(with("iat", json!(t + 120)), JwtError::Early));
        assert!(matches!(with("nonce", json!("n2")), JwtError::Nonce));
        assert!(matches!(with("sub", json!("")), JwtError::Missing("sub")));
        // Within the skew allowance: accepted.
        let mut c = claims();
        c["exp"] = json!(t - 30);
        assert!(verify(&s.token(c), &jwks, &expect()).is_ok());
    }

    #[test]
    fn signatures_algorithms_and_keys_are_checked() {
        let s = Signer::new("k1");
        let other = Signer::new("k2");
        let jwks = Jwks { keys: vec![s.jwk()] };
        // Signed by a key the set does not hold: unknown (time to fetch the set again).
        let e = verify(&other.token(claims()), &jwks, &expect()).unwrap_err();
        assert_eq!(e, JwtError::UnknownKey("k2".into()));
        // Another key claiming k1's id: the signature fails.
        let forged = other.sign(json!({"alg": "ES256", "kid": "k1"}), claims());
        assert_eq!(verify(&forged, &jwks, &expect()).unwrap_err(), JwtError::Signature);
        // A changed payload under a good signature fails.
        let good = s.token(claims());
        let mut parts: Vec<String> = good.split('.').map(str::to_owned).collect();
        let mut c = claims();
        c["sub"] = json!("admin");
        parts[1] = URL_SAFE_NO_PAD.encode(c.to_string());
        assert_eq!(verify(&parts.join("."), &jwks, &expect()).unwrap_err(), JwtError::Signature);
        // `none` and shared-secret algorithms are refused outright.
        for alg in ["none", "HS256"] {
            let t = s.sign(json!({"alg": alg, "kid": "k1"}), claims());
            assert_eq!(verify(&t, &jwks, &expect()).unwrap_err(), JwtError::Algorithm(alg.into()));
        }
        for junk in ["", "a.b", "a.b.c", "....", &"x".repeat(20_000)] {
            assert!(verify(junk, &jwks, &expect()).is_err(), "{junk:.20}");
        }
    }
}

//! Sign-in through the company's OpenID Connect provider (authorization code flow with PKCE):
//! the provider's discovery document and keys ([`Provider`]), ID token verification
//! ([`jwt`]), the sealed cookie that carries a sign-in across the redirect ([`seal`]), and the
//! mapping of the provider's groups to roles ([`OidcConfig::roles_for`]).
//!
//! A signed-in person holds a **session**: a token of the admin kind whose id starts `ses_`,
//! whose roles come from their groups, which expires (`--session-ttl`) and which sign-out
//! revokes. The dashboard carries it in an HttpOnly, SameSite=Lax cookie (and proves each
//! state-changing request with a CSRF token only its own pages can read); the CLI
//! (`wavegate login`) keeps it in the user's config directory.

pub mod jwt;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::Mac;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};
use tokio::sync::Mutex;
use wavegate_store::{Grant, Role};

/// How a deployment signs people in (`serve --oidc-*`).
#[derive(Clone)]
pub struct OidcConfig {
    /// The provider's issuer URL (its discovery document is `<issuer>/.well-known/openid-configuration`).
    pub issuer: String,
    /// This server's client id at the provider.
    pub client_id: String,
    /// Its client secret (read from a file).
    pub client_secret: String,
    /// Where people reach this server (`https://wavegate.example.com`): the redirect URI is
    /// `<public_url>/auth/callback`, and cookies are `Secure` when it is https.
    pub public_url: String,
    /// The claim that lists a person's groups (`groups`).
    pub groups_claim: String,
    /// The claim that names a person in the audit record (`email`; `sub` when absent).
    pub name_claim: String,
    /// Groups to roles: `(group, grant)`.
    pub role_map: Vec<(String, Grant)>,
    /// How long a session lasts.
    pub session_ttl: chrono::Duration,
    /// How far the provider's clock may be off ours.
    pub skew_secs: i64,
    /// Scopes asked for besides `openid`.
    pub scopes: Vec<String>,
}

impl std::fmt::Debug for OidcConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("OidcConfig")
            .field("issuer", &self.issuer)
            .field("client_id", &self.client_id)
            .field("client_secret", &"<redacted>")
            .field("public_url", &self.public_url)
            .field("groups_claim", &self.groups_claim)
            .field("role_map", &self.role_map)
            .finish_non_exhaustive()
    }
}

impl OidcConfig {
    /// The settings for the provider at `issuer`, where this server is `client_id` (with
    /// `client_secret`), reached by people at `public_url`, giving roles by `role_map`; the rest
    /// defaults to the groups claim `groups`, the name claim `email`, sessions of 8 hours, 60 s
    /// of clock skew and no scopes besides `openid`.
    pub fn new(
        [issuer, client_id, client_secret, public_url]: [&str; 4],
        role_map: Vec<(String, Grant)>,
    ) -> OidcConfig {
        OidcConfig {
            issuer: issuer.to_owned(),
            client_id: client_id.to_owned(),
            client_secret: client_secret.to_owned(),
            public_url: public_url.to_owned(),
            groups_claim: "groups".into(),
            name_claim: "email".into(),
            role_map,
            session_ttl: chrono::Duration::hours(8),
            skew_secs: 60,
            scopes: Vec::new(),
        }
    }

    /// The redirect URI registered at the provider.
    pub fn redirect_uri(&self) -> String {
        format!("{}/auth/callback", self.public_url.trim_end_matches('/'))
    }

    /// Whether cookies must be `Secure` (the public URL is https).
    pub fn secure_cookies(&self) -> bool {
        self.public_url.starts_with("https://")
    }

    /// The key that seals sign-in cookies and CLI codes: derived from the client secret, so
    /// every replica holds the same one and nobody without the secret can forge them.
    fn seal_key(&self) -> Vec<u8> {
        wavegate_core::audit::sha256_hex(&format!("wavegate-oidc-seal:{}", self.client_secret))
            .into_bytes()
    }

    /// The roles a person with `groups` holds: every mapped group's grant, merged per role.
    pub fn roles_for(&self, groups: &[String]) -> Vec<Grant> {
        let mut out: Vec<Grant> = Vec::new();
        for (group, grant) in &self.role_map {
            if !groups.iter().any(|g| g == group) {
                continue;
            }
            match out.iter_mut().find(|g| g.role == grant.role) {
                Some(held) => {
                    for e in &grant.environments {
                        if !held.environments.contains(e) {
                            held.environments.push(e.clone());
                        }
                    }
                }
                None => out.push(grant.clone()),
            }
        }
        for g in &mut out {
            if g.environments.iter().any(|e| e == "*") {
                g.environments = vec!["*".into()];
            }
        }
        out.sort_by_key(|g| g.role);
        out
    }
}

/// Parses a `--oidc-role GROUP=ROLE[@ENV,…]`.
pub fn parse_role_mapping(text: &str) -> Result<(String, Grant), String> {
    let (group, rest) = text
        .split_once('=')
        .ok_or_else(|| format!("--oidc-role {text:?}: write GROUP=ROLE or GROUP=ROLE@ENV,ENV"))?;
    let (role, envs) = match rest.split_once('@') {
        Some((role, envs)) => (role, envs.split(',').map(|e| e.trim().to_owned()).collect()),
        None => (rest, vec!["*".to_owned()]),
    };
    let role = Role::parse(role.trim()).ok_or_else(|| {
        format!("--oidc-role {text:?}: unknown role {role:?}; use viewer, editor, releaser, approver or admin")
    })?;
    let group = group.trim();
    if group.is_empty() || envs.iter().any(String::is_empty) {
        return Err(format!("--oidc-role {text:?}: empty group or environment"));
    }
    Ok((group.to_owned(), Grant { role, environments: envs }))
}

/// The parts of the provider's discovery document read.
#[derive(Debug, Clone, Deserialize)]
pub struct Discovery {
    /// Must equal the configured issuer.
    pub issuer: String,
    /// Where people sign in.
    pub authorization_endpoint: String,
    /// Where codes become tokens.
    pub token_endpoint: String,
    /// The signing keys.
    pub jwks_uri: String,
    /// Where sign-out ends the provider's session too, if it has one.
    #[serde(default)]
    pub end_session_endpoint: Option<String>,
}

/// Why signing in failed.
#[derive(Debug, thiserror::Error)]
pub enum OidcError {
    /// The provider could not be reached or answered nonsense.
    #[error("the identity provider: {0}")]
    Provider(String),
    /// The ID token was refused.
    #[error(transparent)]
    Token(#[from] jwt::JwtError),
}

/// The provider as this server talks to it: discovery and keys fetched on first use and kept;
/// the keys fetched again when a token names a key the set lacks (the provider rotated). ID
/// tokens come only from the provider's token endpoint (never from the browser), so only the
/// provider can make this server fetch its keys again; one fetch at a time.
pub struct Provider {
    /// The configuration.
    pub config: OidcConfig,
    http: reqwest::Client,
    discovery: Mutex<Option<Discovery>>,
    keys: Mutex<Option<jwt::Jwks>>,
}

impl std::fmt::Debug for Provider {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Provider").field("config", &self.config).finish_non_exhaustive()
    }
}

impl Provider {
    /// A provider for `config` (nothing is fetched yet).
    pub fn new(config: OidcConfig) -> Provider {
        // No pooled connections: sign-ins are rare and minutes apart, and a provider's server
        // may close an idle connection (Node's after 5 s) just as the token request is written
        // on it, which fails the sign-in ("error sending request") instead of retrying it.
        let http = reqwest::Client::builder()
            .pool_max_idle_per_host(0)
            .timeout(Duration::from_secs(10))
            .redirect(reqwest::redirect::Policy::limited(3))
            .build()
            .unwrap_or_default();
        Provider { config, http, discovery: Mutex::new(None), keys: Mutex::new(None) }
    }

    async fn get_json<T: DeserializeOwned>(&self, url: &str) -> Result<T, OidcError> {
        let resp = self
            .http
            .get(url)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("{url}: {e}")))?;
        if !resp.status().is_success() {
            return Err(OidcError::Provider(format!("{url} answered {}", resp.status())));
        }
        resp.json().await.map_err(|e| OidcError::Provider(format!("{url}: {e}")))
    }

    /// The discovery document (fetched once).
    pub async fn discovery(&self) -> Result<Discovery, OidcError> {
        let mut d = self.discovery.lock().await;
        if let Some(d) = d.as_ref() {
            return Ok(d.clone());
        }
        let url = format!(
            "{}/.well-known/openid-configuration",
            self.config.issuer.trim_end_matches('/')
        );
        let found: Discovery = self.get_json(&url).await?;
        if found.issuer != self.config.issuer {
            return Err(OidcError::Provider(format!(
                "the discovery document names issuer {:?}, not the configured {:?}",
                found.issuer, self.config.issuer
            )));
        }
        *d = Some(found.clone());
        Ok(found)
    }

    async fn jwks(&self, refresh: bool) -> Result<jwt::Jwks, OidcError> {
        let mut keys = self.keys.lock().await;
        if let Some(k) = keys.as_ref()
            && !refresh
        {
            return Ok(k.clone());
        }
        let uri = self.discovery().await?.jwks_uri;
        let fetched: jwt::Jwks = self.get_json(&uri).await?;
        *keys = Some(fetched.clone());
        Ok(fetched)
    }

    /// Verifies an ID token: with the kept keys, and once more with freshly fetched ones when
    /// it names a key they lack.
    pub async fn verify(
        &self,
        id_token: &str,
        nonce: Option<&str>,
        now: DateTime<Utc>,
    ) -> Result<Map<String, Value>, OidcError> {
        let expect = jwt::Expect {
            issuer: &self.config.issuer,
            audience: &self.config.client_id,
            nonce,
            now,
            skew_secs: self.config.skew_secs,
        };
        match jwt::verify(id_token, &self.jwks(false).await?, &expect) {
            Err(jwt::JwtError::UnknownKey(kid)) => {
                tracing::info!(kid = %kid, "ID token signed by a key not in the set: fetching the provider's keys again");
                Ok(jwt::verify(id_token, &self.jwks(true).await?, &expect)?)
            }
            other => Ok(other?),
        }
    }

    /// The provider's sign-in page for this sign-in.
    pub async fn authorize_url(
        &self,
        state: &str,
        nonce: &str,
        verifier: &str,
    ) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let mut scopes = vec!["openid".to_owned()];
        scopes.extend(self.config.scopes.iter().cloned());
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("response_type", "code")
            .append_pair("client_id", &self.config.client_id)
            .append_pair("redirect_uri", &self.config.redirect_uri())
            .append_pair("scope", &scopes.join(" "))
            .append_pair("state", state)
            .append_pair("nonce", nonce)
            .append_pair("code_challenge", &challenge(verifier))
            .append_pair("code_challenge_method", "S256")
            .finish();
        let sep = if d.authorization_endpoint.contains('?') { '&' } else { '?' };
        Ok(format!("{}{sep}{query}", d.authorization_endpoint))
    }

    /// Trades an authorization code for the ID token.
    pub async fn exchange(&self, code: &str, verifier: &str) -> Result<String, OidcError> {
        let d = self.discovery().await?;
        let form = [
            ("grant_type", "authorization_code"),
            ("code", code),
            ("redirect_uri", &self.config.redirect_uri()),
            ("code_verifier", verifier),
        ];
        let body = form_urlencoded::Serializer::new(String::new()).extend_pairs(form).finish();
        let resp = self
            .http
            .post(&d.token_endpoint)
            .basic_auth(
                form_urlencoded::byte_serialize(self.config.client_id.as_bytes())
                    .collect::<String>(),
                Some(
                    form_urlencoded::byte_serialize(self.config.client_secret.as_bytes())
                        .collect::<String>(),
                ),
            )
            .header(reqwest::header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(body)
            .send()
            .await
            .map_err(|e| OidcError::Provider(format!("token endpoint: {e}")))?;
        let status = resp.status();
        let body: Value = resp.json().await.unwrap_or_default();
        if !status.is_success() {
            let why = body["error_description"].as_str().or(body["error"].as_str()).unwrap_or("");
            return Err(OidcError::Provider(format!(
                "the token endpoint answered {status}: {why}"
            )));
        }
        body["id_token"]
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| OidcError::Provider("the token endpoint sent no id_token".into()))
    }
}

/// The PKCE S256 challenge of `verifier` (RFC 7636).
pub fn challenge(verifier: &str) -> String {
    use sha2::Digest;
    URL_SAFE_NO_PAD.encode(sha2::Sha256::digest(verifier.as_bytes()))
}

/// 32 random bytes, base64url: states, nonces, verifiers.
pub fn random() -> String {
    use rand::Rng;
    let mut b = [0u8; 32];
    rand::rng().fill_bytes(&mut b);
    URL_SAFE_NO_PAD.encode(b)
}

/// Seals `value` (with its expiry) so that only this deployment can have made it:
/// `base64url(json).base64url(hmac)`. Not encrypted: put nothing secret from the holder in it.
pub fn seal<T: Serialize>(config: &OidcConfig, value: &T, expires: DateTime<Utc>) -> String {
    let body = serde_json::json!({"v": value, "exp": expires.timestamp()});
    let text = URL_SAFE_NO_PAD.encode(body.to_string());
    let mac = mac(config, &text);
    format!("{text}.{mac}")
}

/// Opens what [`seal`] made, unless it was changed or has expired at `now`.
pub fn open<T: DeserializeOwned>(
    config: &OidcConfig,
    sealed: &str,
    now: DateTime<Utc>,
) -> Option<T> {
    let (text, given) = sealed.split_once('.')?;
    // Constant time: the MACs are compared by hmac's verifier.
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&config.seal_key()).ok()?;
    m.update(text.as_bytes());
    m.verify_slice(&URL_SAFE_NO_PAD.decode(given).ok()?).ok()?;
    let body: Value = serde_json::from_slice(&URL_SAFE_NO_PAD.decode(text).ok()?).ok()?;
    if body["exp"].as_i64()? < now.timestamp() {
        return None;
    }
    serde_json::from_value(body["v"].clone()).ok()
}

fn mac(config: &OidcConfig, text: &str) -> String {
    let mut m = hmac::Hmac::<sha2::Sha256>::new_from_slice(&config.seal_key())
        .expect("HMAC takes keys of any length");
    m.update(text.as_bytes());
    URL_SAFE_NO_PAD.encode(m.finalize().into_bytes())
}

/// Who the claims say a person is: their name (the configured claim, else `sub`) and groups.
pub fn person(config: &OidcConfig, claims: &Map<String, Value>) -> (String, Vec<String>) {
    let sub = claims.get("sub").and_then(Value::as_str).unwrap_or_default();
    let verified = claims.get("email_verified").and_then(Value::as_bool) != Some(false);
    let name = claims
        .get(&config.name_claim)
        .and_then(Value::as_str)
        .filter(|n| !n.trim().is_empty() && (config.name_claim != "email" || verified))
        .unwrap_or(sub);
    let groups = match claims.get(&config.groups_claim) {
        Some(Value::Array(a)) => a.iter().filter_map(Value::as_str).map(str::to_owned).collect(),
        Some(Value::String(s)) => {
            s.split([',', ' ']).filter(|g| !g.is_empty()).map(str::to_owned).collect()
        }
        _ => Vec::new(),
    };
    (name.chars().filter(|c| !c.is_control()).take(128).collect(), groups)
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;

    use super::*;

    fn config() -> OidcConfig {
        let site = ["https://idp.example", "wavegate", "s3cret", "https://wavegate.example"];
        let roles = ["eng=editor@staging", "eng=viewer", "release=releaser@prod,staging"];
        let roles = roles.iter().chain(&["cab=approver", "ops=editor@prod"]);
        OidcConfig::new(site, roles.map(|m| parse_role_mapping(m).unwrap()).collect())
    }

    #[test]
    fn groups_map_to_roles_merged_per_role() {
        let c = config();
        let roles = c.roles_for(&["eng".into(), "ops".into()]);
        let names: Vec<(&str, Vec<&str>)> = roles
            .iter()
            .map(|g| (g.role.as_str(), g.environments.iter().map(String::as_str).collect()))
            .collect();
        assert_eq!(names, [("viewer", vec!["*"]), ("editor", vec!["staging", "prod"])]);
        assert!(c.roles_for(&["nobody".into()]).is_empty());
        assert!(parse_role_mapping("eng=owner").is_err());
        assert!(parse_role_mapping("eng").is_err());
        assert!(parse_role_mapping("=viewer").is_err());
    }

    #[test]
    fn sealed_values_open_only_unchanged_and_in_time() {
        let c = config();
        let now = Utc.with_ymd_and_hms(2026, 12, 4, 12, 0, 0).unwrap();
        let s = seal(&c, &"state-1", now + chrono::Duration::minutes(10));
        assert_eq!(open::<String>(&c, &s, now).as_deref(), Some("state-1"));
        assert_eq!(open::<String>(&c, &s, now + chrono::Duration::minutes(11)), None);
        let mut forged = s.clone();
        forged.insert(3, 'x');
        assert_eq!(open::<String>(&c, &forged, now), None);
        let other = OidcConfig { client_secret: "other".into(), ..config() };
        assert_eq!(open::<String>(&other, &s, now), None, "another deployment's key");
    }

    #[test]
    fn a_person_is_named_by_a_verified_email_else_the_subject() {
        let c = config();
        let claims = |v: Value| v.as_object().unwrap().clone();
        let (name, groups) = person(
            &c,
            &claims(serde_json::json!({"sub": "u1", "email": "a@x.io", "groups": ["eng"]})),
        );
        assert_eq!((name.as_str(), groups), ("a@x.io", vec!["eng".to_owned()]));
        let (name, _) = person(
            &c,
            &claims(serde_json::json!({"sub": "u1", "email": "a@x.io", "email_verified": false})),
        );
        assert_eq!(name, "u1");
    }
}

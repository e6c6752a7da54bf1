//! What the server asks of the outside world on a rollout's behalf: plan checks (HTTP probes
//! and webhook gates), Prometheus queries and notifications. Each call has a timeout and keeps
//! its evidence.
//!
//! **Invariant:** a URL that arrived through the API (a plan's checks, a guardrail's
//! `prometheus_url`, a notification target) is fetched only through a [`Guard`]: its
//! [`policy::Policy`] is applied to the URL's host before sending (a literal address never
//! reaches a resolver), to every address a name resolves to as the connection is made (so a
//! name that changes its answer between a check and the connection gains nothing), and to every
//! redirect. Only URLs the operator gave `serve` (`--prometheus-url`) use the plain client.
//! What a response says is kept short and quoted ([`reply`]), and shown only to admins for all
//! environments.

pub mod checks;
pub mod policy;
pub mod prometheus;
pub mod reply;

use std::fmt;
use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use reqwest::dns::{Addrs, Name, Resolve, Resolving};

use crate::outbound::policy::{Policy, Refusal};

/// Why a request failed, in words a verdict or a log may show: a timeout as such, otherwise the
/// innermost cause (e.g. "Connection refused", or the outbound policy's refusal), with any URL
/// in it stripped of credentials. reqwest's own message quotes the whole URL, `user:password@`
/// and query included.
pub fn failure(e: &reqwest::Error) -> String {
    if e.is_timeout() {
        return "timed out".into();
    }
    wavegate_core::text::redact_urls_in(&wavegate_core::error::root_cause(e))
}

/// The most redirects followed for one request.
pub const MAX_REDIRECTS: usize = 5;

/// Looks host names up: the system's resolver ([`SystemLookup`]); tests give their own, to
/// play a name that answers with a refused address (DNS rebinding).
#[async_trait::async_trait]
pub trait Lookup: Send + Sync {
    /// The addresses `host` resolves to.
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>>;
}

/// The system's resolver (`getaddrinfo`, through tokio).
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemLookup;

#[async_trait::async_trait]
impl Lookup for SystemLookup {
    async fn lookup(&self, host: &str) -> std::io::Result<Vec<IpAddr>> {
        Ok(tokio::net::lookup_host((host, 0)).await?.map(|a| a.ip()).collect())
    }
}

/// The HTTP client for URLs that arrived through the API, and the policy it enforces.
#[derive(Clone)]
pub struct Guard {
    policy: Arc<Policy>,
    client: reqwest::Client,
}

impl Default for Guard {
    fn default() -> Guard {
        Guard::new(Policy::default())
    }
}

impl fmt::Debug for Guard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Guard").field("policy", &self.policy).finish_non_exhaustive()
    }
}

/// Why a request to an API-supplied URL was not sent.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Unsendable {
    /// The URL does not parse, or is not http(s).
    NotAUrl(String),
    /// The policy refuses its host.
    Refused(Refusal),
}

impl fmt::Display for Unsendable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Unsendable::NotAUrl(why) => f.write_str(why),
            Unsendable::Refused(r) => r.fmt(f),
        }
    }
}

impl Guard {
    /// A client that enforces `policy`: names resolve through it, redirects are checked
    /// against it (at most [`MAX_REDIRECTS`]), and no proxy from the environment is used (a
    /// proxy would resolve and connect on the policy's behalf).
    pub fn new(policy: Policy) -> Guard {
        Guard::with_lookup(policy, Arc::new(SystemLookup))
    }

    /// [`Guard::new`] with names looked up by `lookup`.
    pub fn with_lookup(policy: Policy, lookup: Arc<dyn Lookup>) -> Guard {
        let policy = Arc::new(policy);
        let redirects = policy.clone();
        let client = reqwest::Client::builder()
            .dns_resolver(PolicyResolver { policy: policy.clone(), lookup })
            .redirect(reqwest::redirect::Policy::custom(move |attempt| {
                if attempt.previous().len() > MAX_REDIRECTS {
                    return attempt.error(Redirect::TooMany);
                }
                let host = attempt.url().host_str().unwrap_or_default().to_owned();
                match redirects.check_host(&host) {
                    Ok(()) => attempt.follow(),
                    Err(refusal) => {
                        let to = wavegate_core::text::redact_url(attempt.url().as_str());
                        attempt.error(Redirect::Refused { to, refusal })
                    }
                }
            }))
            .no_proxy()
            .build()
            .expect("a client without custom TLS settings builds");
        Guard { policy, client }
    }

    /// The policy.
    pub fn policy(&self) -> &Policy {
        &self.policy
    }

    /// `raw` as a URL this guard may send to: http(s), with a host the policy does not refuse
    /// as written (a literal address or a refused name; names are checked again as they
    /// resolve).
    pub fn url(&self, raw: &str) -> Result<reqwest::Url, Unsendable> {
        let url = reqwest::Url::parse(raw).map_err(|e| {
            Unsendable::NotAUrl(format!(
                "not a URL ({e}): {}",
                wavegate_core::text::redact_url(raw)
            ))
        })?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(Unsendable::NotAUrl("must be an http:// or https:// URL".into()));
        }
        let host = url.host_str().ok_or_else(|| {
            Unsendable::NotAUrl("must be an http:// or https:// URL with a host".into())
        })?;
        self.policy.check_host(host).map_err(Unsendable::Refused)?;
        Ok(url)
    }

    /// A request to `raw` ([`Guard::url`] checked it).
    pub fn request(
        &self,
        method: reqwest::Method,
        raw: &str,
    ) -> Result<reqwest::RequestBuilder, Unsendable> {
        Ok(self.client.request(method, self.url(raw)?))
    }
}

/// A redirect that was not followed.
#[derive(Debug)]
enum Redirect {
    TooMany,
    Refused { to: String, refusal: Refusal },
}

impl fmt::Display for Redirect {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Redirect::TooMany => write!(f, "more than {MAX_REDIRECTS} redirects"),
            Redirect::Refused { to, refusal } => {
                write!(f, "redirect to {to} not followed: {refusal}")
            }
        }
    }
}

impl std::error::Error for Redirect {}

/// Resolves names through a [`Lookup`], then keeps only the addresses the policy allows (all of
/// them for a name the policy lists); none left is a refusal.
struct PolicyResolver {
    policy: Arc<Policy>,
    lookup: Arc<dyn Lookup>,
}

impl Resolve for PolicyResolver {
    fn resolve(&self, name: Name) -> Resolving {
        let (policy, lookup) = (self.policy.clone(), self.lookup.clone());
        Box::pin(resolve_checked(policy, lookup, name.as_str().to_owned()))
    }
}

type BoxError = Box<dyn std::error::Error + Send + Sync>;

async fn resolve_checked(
    policy: Arc<Policy>,
    lookup: Arc<dyn Lookup>,
    host: String,
) -> Result<Addrs, BoxError> {
    policy.check_name(&host)?;
    // Port 0: the connector puts the URL's port in.
    let found: Vec<SocketAddr> =
        lookup.lookup(&host).await?.into_iter().map(|ip| SocketAddr::new(ip, 0)).collect();
    if policy.lists_host(&host) {
        return Ok(Box::new(found.into_iter()));
    }
    let mut refused = None;
    let allowed: Vec<SocketAddr> = found
        .into_iter()
        .filter(|a| match policy.check_ip(a.ip()) {
            Ok(()) => true,
            Err(r) => {
                refused.get_or_insert(r);
                false
            }
        })
        .collect();
    match refused {
        Some(r) if allowed.is_empty() => Err(Box::new(Refusal { resolved_from: Some(host), ..r })),
        _ => Ok(Box::new(allowed.into_iter())),
    }
}

/// Reads at most `cap` bytes of `resp`'s body (the rest is never read); the text (invalid
/// UTF-8 replaced) and whether it was cut.
pub async fn read_capped(mut resp: reqwest::Response, cap: usize) -> (String, bool) {
    let mut body = Vec::new();
    let mut cut = false;
    // A body that breaks off is judged on what arrived.
    while let Ok(Some(chunk)) = resp.chunk().await {
        let room = cap - body.len();
        if chunk.len() > room {
            body.extend_from_slice(&chunk[..room]);
            cut = true;
            break;
        }
        body.extend_from_slice(&chunk);
    }
    (String::from_utf8_lossy(&body).into_owned(), cut)
}

/// A shared secret the server signs requests with. Its `Debug` never shows it.
#[derive(Clone)]
pub struct SigningSecret(Arc<str>);

impl SigningSecret {
    /// At least 16 characters, no whitespace around them.
    pub fn new(secret: &str) -> Result<SigningSecret, String> {
        let secret = secret.trim();
        if secret.len() < 16 {
            return Err("use a signing secret of at least 16 characters".into());
        }
        Ok(SigningSecret(secret.into()))
    }

    /// Adds `X-Wavegate-Timestamp` (Unix seconds, now) and `X-Wavegate-Signature:
    /// sha256=<hex>`, the HMAC-SHA256 of `<timestamp>.<body>` under the secret: the scheme
    /// notification targets' secrets sign with ([`crate::runtime::notify::signature`]).
    pub fn sign(&self, request: reqwest::RequestBuilder, body: &[u8]) -> reqwest::RequestBuilder {
        // The receiver compares the timestamp with its own clock, so this is the real time,
        // not the controller's clock.
        let timestamp = chrono::Utc::now().timestamp();
        request.header("x-wavegate-timestamp", timestamp.to_string()).header(
            "x-wavegate-signature",
            crate::runtime::notify::signature(&self.0, timestamp, body),
        )
    }
}

impl fmt::Debug for SigningSecret {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SigningSecret(***)")
    }
}

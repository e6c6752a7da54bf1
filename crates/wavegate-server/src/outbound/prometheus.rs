//! Prometheus as a signal source: PromQL instant queries over the HTTP API, templated with the
//! rollout's facts. Errors and empty results become inconclusive readings, never a pass.
//!
//! `serve --prometheus-url` is the operator's and is queried with the plain client and the
//! operator's credentials ([`Access`]: bearer token, basic authentication, headers, a CA); a
//! guardrail's own `prometheus_url` came with a plan, so it goes through the outbound policy
//! ([`crate::outbound::Guard`]) and never carries the operator's credentials. A guardrail
//! with `range_step` reads range queries over the wave so far instead of instant queries
//! (judged in `wavegate_rollout::readings`). Whatever a Prometheus says beyond its numbers (an error, an
//! odd sample) is quoted ([`crate::outbound::reply`]) in the reading's error.

use std::collections::BTreeMap;
use std::fmt;
use std::time::Duration;

use chrono::{DateTime, Utc};
use serde_json::Value;
use wavegate_rollout::machine::Rollout;
use wavegate_rollout::plan::{Comparison, GuardrailSpec};
use wavegate_rollout::readings::{RangeReading, RangeStep};
use wavegate_rollout::stats::Reading;

use crate::outbound::reply;
use crate::state::Outbound;

/// Per-query timeout.
pub const QUERY_TIMEOUT: Duration = Duration::from_secs(5);

/// The most of an answer read, in bytes (an instant query answers one series).
pub const READ_BYTES: usize = 1024 * 1024;

/// Which client a query goes through.
#[derive(Clone, Copy)]
pub enum Via<'a> {
    /// The operator's own URL (`serve --prometheus-url`): the plain client, or the access's
    /// own (with its CA), and the access's headers (credentials).
    Trusted(&'a reqwest::Client, &'a Access),
    /// A URL that came with a plan: the outbound policy, and never the operator's credentials.
    Guarded(&'a crate::outbound::Guard),
}

/// What the operator's Prometheus needs to be reached: credentials and other headers (`serve
/// --prometheus-bearer-file`, `--prometheus-basic-auth-file`, `--prometheus-header`) and
/// certificates to trust (`--prometheus-ca-file`). Sent only to `--prometheus-url`, never to a
/// URL a plan names. Its `Debug` names the headers, never their values.
#[derive(Clone, Default)]
pub struct Access {
    headers: reqwest::header::HeaderMap,
    /// A client of its own when headers or a CA are set: it trusts the CA and follows
    /// redirects only within the same origin, so no header travels to another server.
    client: Option<reqwest::Client>,
}

impl fmt::Debug for Access {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let names: Vec<&str> = self.headers.keys().map(|k| k.as_str()).collect();
        f.debug_struct("Access").field("headers", &names).finish_non_exhaustive()
    }
}

/// What [`Access::new`] is built from; secrets as read from the operator's files.
#[derive(Default)]
pub struct AccessSpec {
    /// A bearer token (`Authorization: Bearer <token>`).
    pub bearer: Option<String>,
    /// `user:password` for basic authentication.
    pub basic: Option<String>,
    /// Further headers, name and value (e.g. `X-Scope-OrgID` for Mimir's tenants).
    pub headers: Vec<(String, String)>,
    /// PEM certificates (one or more) to trust besides the system's roots.
    pub ca_pem: Option<Vec<u8>>,
}

impl Access {
    /// Checks `spec` and builds the access; the error says what is wrong without quoting a
    /// secret.
    pub fn new(spec: AccessSpec) -> Result<Access, String> {
        use reqwest::header::{AUTHORIZATION, HeaderName, HeaderValue};
        let mut headers = reqwest::header::HeaderMap::new();
        let secret_value = |v: &str, what: &str| -> Result<HeaderValue, String> {
            let mut v = HeaderValue::from_str(v).map_err(|_| {
                format!("{what} holds characters a header cannot carry (a line break or a control character)")
            })?;
            v.set_sensitive(true);
            Ok(v)
        };
        if spec.bearer.is_some() && spec.basic.is_some() {
            return Err("give a bearer token or basic authentication, not both".into());
        }
        if let Some(token) = &spec.bearer {
            let token = token.trim();
            if token.is_empty() || token.contains(char::is_whitespace) {
                return Err("the bearer token must be one word, without spaces".into());
            }
            headers.insert(
                AUTHORIZATION,
                secret_value(&format!("Bearer {token}"), "the bearer token")?,
            );
        }
        if let Some(pair) = &spec.basic {
            let pair = pair.trim_end_matches(['\r', '\n']);
            let Some((user, password)) = pair.split_once(':') else {
                return Err("basic authentication must be one line `user:password`".into());
            };
            if user.is_empty() || pair.contains('\n') {
                return Err(
                    "basic authentication must be one line `user:password` with a user".into()
                );
            }
            let encoded = base64_encode(format!("{user}:{password}").as_bytes());
            headers.insert(
                AUTHORIZATION,
                secret_value(&format!("Basic {encoded}"), "basic authentication")?,
            );
        }
        for (name, value) in &spec.headers {
            let header = HeaderName::from_bytes(name.trim().as_bytes())
                .map_err(|_| format!("{name:?} is not a header name"))?;
            if header == AUTHORIZATION && headers.contains_key(AUTHORIZATION) {
                return Err("Authorization is set twice: by a header and by a bearer token or basic authentication".into());
            }
            if matches!(
                header.as_str(),
                "host" | "content-length" | "transfer-encoding" | "connection"
            ) {
                return Err(format!("header {name} is set by the client itself"));
            }
            headers.append(
                header,
                secret_value(value.trim(), &format!("the value of header {name}"))?,
            );
        }
        if headers.is_empty() && spec.ca_pem.is_none() {
            return Ok(Access::default());
        }
        let mut builder =
            reqwest::Client::builder().redirect(reqwest::redirect::Policy::custom(|attempt| {
                let same = attempt
                    .previous()
                    .first()
                    .is_some_and(|first| first.origin() == attempt.url().origin());
                if attempt.previous().len() > crate::outbound::MAX_REDIRECTS {
                    attempt.error("too many redirects")
                } else if same {
                    attempt.follow()
                } else {
                    // The credentials would go along: a redirect elsewhere is not followed.
                    attempt.stop()
                }
            }));
        if let Some(pem) = &spec.ca_pem {
            let certs = reqwest::Certificate::from_pem_bundle(pem)
                .map_err(|e| format!("not PEM certificates: {e}"))?;
            if certs.is_empty() {
                return Err("holds no PEM certificate (-----BEGIN CERTIFICATE-----)".into());
            }
            builder = builder.tls_certs_merge(certs);
        }
        let client = builder.build().map_err(|e| {
            format!("cannot build the client: {}", wavegate_core::error::root_cause(&e))
        })?;
        Ok(Access { headers, client: Some(client) })
    }

    /// Whether credentials (an `Authorization` header) are sent.
    pub fn authenticates(&self) -> bool {
        self.headers.contains_key(reqwest::header::AUTHORIZATION)
    }
}

/// Standard base64 with padding (basic authentication's encoding).
fn base64_encode(bytes: &[u8]) -> String {
    const ALPHABET: &[u8; 64] = b"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    let mut out = String::with_capacity(bytes.len().div_ceil(3) * 4);
    for chunk in bytes.chunks(3) {
        let b = [chunk[0], *chunk.get(1).unwrap_or(&0), *chunk.get(2).unwrap_or(&0)];
        let n = (u32::from(b[0]) << 16) | (u32::from(b[1]) << 8) | u32::from(b[2]);
        for i in 0..4 {
            if i <= chunk.len() {
                out.push(ALPHABET[(n >> (18 - 6 * i)) as usize & 63] as char);
            } else {
                out.push('=');
            }
        }
    }
    out
}

/// Fills a query template with the rollout's facts.
pub fn template(q: &str, r: &Rollout, variant: &str) -> String {
    q.replace("{{variant}}", variant)
        .replace("{{control_variant}}", &r.plan.control_variant)
        .replace("{{new_variant}}", &r.plan.new_variant)
        .replace("{{wave}}", &(r.wave + 1).to_string())
        .replace("{{environment}}", &r.plan.environment)
        .replace("{{flag}}", &r.plan.flag)
        .replace("{{rollout}}", &r.id)
}

/// Sends one query to `path` (`query` or `query_range`) under `base`; the answer's `data`.
async fn ask(
    via: Via<'_>,
    base: &str,
    path: &str,
    params: &[(&str, &str)],
) -> Result<Value, String> {
    let url = format!("{}/api/v1/{path}", base.trim_end_matches('/'));
    // What readings, verdicts and logs show: any server-sdk token reads verdicts, and a
    // `--prometheus-url` may carry `user:password@`.
    let shown = wavegate_core::text::redact_url(&url);
    let full = reqwest::Url::parse_with_params(&url, params)
        .map_err(|e| format!("invalid Prometheus URL {shown:?}: {e}"))?;
    let (request, authenticates) = match via {
        Via::Trusted(http, access) => {
            let client = access.client.as_ref().unwrap_or(http);
            (client.get(full).headers(access.headers.clone()), access.authenticates())
        }
        Via::Guarded(guard) => (
            guard
                .request(reqwest::Method::GET, full.as_str())
                .map_err(|e| format!("request to {shown} not sent: {e}"))?,
            false,
        ),
    };
    let resp = request
        .timeout(QUERY_TIMEOUT)
        .send()
        .await
        .map_err(|e| format!("request to {shown} failed: {}", crate::outbound::failure(&e)))?;
    let status = resp.status();
    if matches!(status.as_u16(), 401 | 403) {
        // The body of an authenticating proxy says nothing Prometheus-shaped; the status and
        // what to do about it are what the operator needs.
        let hint = match (via, authenticates) {
            (Via::Guarded(_), _) => {
                "; credentials go only to serve --prometheus-url, never to a plan's prometheus_url"
            }
            (Via::Trusted(..), true) => {
                "; the credentials sent were refused (serve --prometheus-bearer-file, --prometheus-basic-auth-file or --prometheus-header)"
            }
            (Via::Trusted(..), false) => {
                "; it wants credentials: serve --prometheus-bearer-file, --prometheus-basic-auth-file or --prometheus-header"
            }
        };
        return Err(format!("{status} from {shown}{hint}"));
    }
    if status.is_redirection() {
        return Err(format!(
            "{status} from {shown}: a redirect to another server is not followed with credentials"
        ));
    }
    let (text, _) = crate::outbound::read_capped(resp, READ_BYTES).await;
    let body: Value = serde_json::from_str(&text)
        .map_err(|_| format!("{status}: the answer is not JSON: {}", reply::quote(&text)))?;
    if body["status"] != "success" {
        let said = format!(
            "{} {}",
            body["errorType"].as_str().unwrap_or(""),
            body["error"].as_str().unwrap_or("")
        );
        return Err(format!("{status}: {}", reply::quote(&said)));
    }
    Ok(body["data"].clone())
}

/// A sample `[<unix seconds>, "<value>"]`: its time and value.
fn sample(v: &Value) -> Result<(Option<DateTime<Utc>>, f64), String> {
    let value = v
        .get(1)
        .and_then(Value::as_str)
        .and_then(|s| s.parse::<f64>().ok())
        .ok_or_else(|| format!("unexpected sample {}", reply::quote_value(v)))?;
    let at = v
        .get(0)
        .and_then(Value::as_f64)
        .and_then(|t| DateTime::from_timestamp_millis((t * 1000.0).round() as i64));
    Ok((at, value))
}

/// Runs one instant query; `Ok(None)` for an empty result.
pub async fn instant(via: Via<'_>, base: &str, query: &str) -> Result<Option<f64>, String> {
    Ok(instant_sample(via, base, query).await?.map(|(_, v)| v))
}

/// Runs one instant query: when Prometheus evaluated it and the value; `Ok(None)` for an
/// empty result.
pub async fn instant_sample(
    via: Via<'_>,
    base: &str,
    query: &str,
) -> Result<Option<(Option<DateTime<Utc>>, f64)>, String> {
    let data = ask(via, base, "query", &[("query", query)]).await?;
    match data["resultType"].as_str() {
        Some("scalar") => sample(&data["result"]).map(Some),
        Some("vector") => {
            let series = data["result"].as_array().cloned().unwrap_or_default();
            match series.as_slice() {
                [] => Ok(None),
                [one] => sample(&one["value"]).map(Some),
                many => Err(format!(
                    "the query returned {} series; aggregate it to one (e.g. sum(...))",
                    many.len()
                )),
            }
        }
        Some(other) => Err(format!(
            "unsupported result type {}; use an instant vector or scalar",
            reply::quote(other)
        )),
        None => Err("the answer has no result type; use an instant vector or scalar".into()),
    }
}

/// The most steps asked of one range query: Prometheus refuses more than 11,000 points per
/// series, so a long wave's step is widened to stay below.
pub const MAX_STEPS: u64 = 10_000;

/// The step a range from `start` to `end` is asked at: `step` seconds, widened so the range
/// has at most [`MAX_STEPS`] steps.
pub fn range_step(start: DateTime<Utc>, end: DateTime<Utc>, step: u64) -> u64 {
    let secs = (end - start).num_seconds().max(0) as u64;
    step.max(1).max(secs.div_ceil(MAX_STEPS))
}

fn unix(t: DateTime<Utc>) -> String {
    format!("{}.{:03}", t.timestamp(), t.timestamp_subsec_millis())
}

/// Runs one range query from `start` to `end` every `step` seconds: its samples, oldest
/// first (empty for an empty result).
pub async fn range(
    via: Via<'_>,
    base: &str,
    query: &str,
    start: DateTime<Utc>,
    end: DateTime<Utc>,
    step: u64,
) -> Result<Vec<(DateTime<Utc>, f64)>, String> {
    let (start_s, end_s, step_s) = (unix(start), unix(end.max(start)), step.to_string());
    let params = [("query", query), ("start", &start_s), ("end", &end_s), ("step", &step_s)];
    let data = ask(via, base, "query_range", &params).await?;
    match data["resultType"].as_str() {
        Some("matrix") => {
            let series = data["result"].as_array().cloned().unwrap_or_default();
            match series.as_slice() {
                [] => Ok(Vec::new()),
                [one] => {
                    let values = one["values"].as_array().cloned().unwrap_or_default();
                    let mut out = Vec::with_capacity(values.len());
                    for v in &values {
                        match sample(v)? {
                            (Some(at), value) => out.push((at, value)),
                            (None, _) => {
                                return Err(format!("unexpected sample {}", reply::quote_value(v)));
                            }
                        }
                    }
                    Ok(out)
                }
                many => Err(format!(
                    "the query returned {} series; aggregate it to one (e.g. sum(...))",
                    many.len()
                )),
            }
        }
        Some(other) => Err(format!(
            "unsupported result type {} for a range; use an instant vector expression",
            reply::quote(other)
        )),
        None => Err("the answer has no result type".into()),
    }
}

/// Reads a Prometheus guardrail for the tick at `now`: at its own `prometheus_url` through
/// the outbound policy, else at the operator's `--prometheus-url` with its credentials. A
/// guardrail with `range_step` reads range queries from the wave's start to `now`; otherwise
/// one instant query per arm.
pub async fn read(
    outbound: &Outbound,
    r: &Rollout,
    g: &GuardrailSpec,
    now: DateTime<Utc>,
) -> Reading {
    let mut reading = Reading::default();
    let (base, via) = match (&g.prometheus_url, &outbound.prometheus_url) {
        (Some(own), _) => (own.as_str(), Via::Guarded(&outbound.guard)),
        (None, Some(default)) => {
            (default.as_str(), Via::Trusted(&outbound.http, &outbound.prometheus_access))
        }
        (None, None) => {
            reading.error = Some(
                "no Prometheus URL: set the guardrail's prometheus_url or serve --prometheus-url"
                    .into(),
            );
            return reading;
        }
    };
    let Some(q) = &g.query else {
        reading.error = Some("no query".into());
        return reading;
    };
    let tq = template(q, r, &r.plan.new_variant);
    let cq = (g.comparison != Comparison::Bound).then(|| match &g.control_query {
        Some(c) => template(c, r, &r.plan.control_variant),
        None => template(q, r, &r.plan.control_variant),
    });
    reading.queries.push(tq.clone());
    reading.queries.extend(cq.clone());
    if let Some(step) = g.range_step {
        let start = r.wave_started_at;
        let step = range_step(start, now, step.secs());
        let treatment = match range(via, base, &tq, start, now, step).await {
            Ok(v) => v,
            Err(e) => {
                reading.error = Some(e);
                return reading;
            }
        };
        let control: BTreeMap<i64, f64> = match &cq {
            Some(cq) => match range(via, base, cq, start, now, step).await {
                Ok(v) => v.into_iter().map(|(at, v)| (at.timestamp_millis(), v)).collect(),
                Err(e) => {
                    reading.error = Some(e);
                    return reading;
                }
            },
            None => BTreeMap::new(),
        };
        let steps: Vec<RangeStep> = treatment
            .into_iter()
            .map(|(at, t)| RangeStep {
                at,
                treatment: t,
                control: control.get(&at.timestamp_millis()).copied(),
            })
            .collect();
        reading.treatment = steps.last().map(|s| s.treatment);
        reading.control = steps.last().and_then(|s| s.control);
        reading.at = steps.last().map(|s| s.at);
        reading.range = Some(RangeReading { start, end: now.max(start), step_secs: step, steps });
        return reading;
    }
    match instant_sample(via, base, &tq).await {
        Ok(v) => {
            reading.at = v.and_then(|(at, _)| at);
            reading.treatment = v.map(|(_, v)| v);
        }
        Err(e) => {
            reading.error = Some(e);
            return reading;
        }
    }
    if let Some(cq) = &cq {
        match instant(via, base, cq).await {
            Ok(v) => reading.control = v,
            Err(e) => reading.error = Some(e),
        }
    }
    reading
}

//! `wavegate demo`: a newcomer's first five minutes, in under one.
//!
//! Starts the server in this process the way `serve` does ([`wavegate_server::state_for`],
//! [`wavegate_server::Server`] with its controller loop), then plays a story against the
//! server's public HTTP interfaces only: it applies the sample flags and plan embedded from
//! `examples/demo/`, starts synthetic traffic (OFREP evaluations, then exposure and outcome
//! events) from a seeded generator, starts the rollout, and follows the audit log while the
//! real controller promotes it twice. When the third wave begins the traffic turns bad for the
//! new variant, and the controller's error-rate guardrail rolls the rollout back by itself.
//!
//! **Invariant:** the demo never decides a verdict or moves the rollout; it only watches, and
//! fails (exit 1, naming the step) if the controller does anything but the expected story.

use std::io::Write;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr, SocketAddr};
use std::process::ExitCode;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context as _, bail};
use reqwest::Method;
use serde_json::{Value, json};
use wavegate_api::audit::{AuditEntry, RolloutDetails, Verification};
use wavegate_api::events::Ingested;
use wavegate_api::flags::{Applied, Head, Version};
use wavegate_api::ofrep::Evaluation;
use wavegate_api::plans::PlanApplied;
use wavegate_api::rollouts::{
    Rollout, RolloutCommand as Command, RolloutState, StartRollout, Verdict,
};
use wavegate_api::tokens::{CreatedToken, NewToken};
use wavegate_rollout::sim::Rng;
use wavegate_rollout::stats::Moments;
use wavegate_store::{Change, Store, TokenKind};

use crate::cli::{DemoArgs, Remote};
use crate::client::{Client, enc};
use crate::failure::Failure;
use crate::input::parse_tick;
use crate::output::{or_dash, redact_url};

/// The sample flags and segment (`examples/demo/flags.yaml`).
pub const FLAGS: &str = include_str!("../../../examples/demo/flags.yaml");
/// The rollout plan (`examples/demo/plan.yaml`).
pub const PLAN: &str = include_str!("../../../examples/demo/plan.yaml");

const FLAG: &str = "demo-checkout";
const PLAN_NAME: &str = "demo-checkout-v2";
const NEW_VARIANT: &str = "on";
/// The guardrail the story expects to stop the rollout.
const GUARDRAIL: &str = "error-rate";
/// Promotions before the regression is injected.
const PROMOTIONS: usize = 2;
/// How long the last healthy wave runs before the regression (so it shows on the dashboard).
const REGRESSION_AFTER: Duration = Duration::from_secs(4);
/// Share of requests that fail: both variants at first, and the new one after the regression.
const BASE_ERROR_RATE: f64 = 0.01;
const REGRESSED_ERROR_RATE: f64 = 0.12;
/// How long the story may take before the demo gives up.
const DEADLINE: Duration = Duration::from_secs(110);
/// Most audit entries the demo reads at once.
const AUDIT_PAGE: usize = 1000;
/// How often the demo reads the audit log.
const POLL: Duration = Duration::from_millis(200);
/// How often the demo prints where the rollout is while nothing else happens.
const HEARTBEAT: Duration = Duration::from_secs(3);
/// Traffic: this many workers, each sending one batch of users per period.
const WORKERS: u64 = 3;
const BATCH_PERIOD: Duration = Duration::from_millis(200);

/// Runs `wavegate demo`.
pub async fn run(args: DemoArgs) -> anyhow::Result<ExitCode> {
    let tick = parse_tick(&args.tick).map_err(Failure::Input)?;
    // The server's own log stays quiet unless asked for: the story is on stdout.
    crate::telemetry::init_with_default(false, "error");
    let out = Progress { json: args.json, t0: Instant::now() };
    let result = demo(&args, tick, &out).await;
    if let Err(e) = &result
        && args.json
    {
        out.step("failed", json!({"message": format!("{e:#}")}), "");
    }
    result
}

async fn demo(args: &DemoArgs, tick: Duration, out: &Progress) -> anyhow::Result<ExitCode> {
    // Registered before anything else, so a Ctrl-C at any point stops the demo cleanly.
    let interrupted = wavegate_server::shutdown_signal();
    tokio::pin!(interrupted);

    // A fresh SQLite file in a temporary directory (removed when `_tmp` drops), unless --db.
    let (db, _tmp) = match &args.db {
        Some(db) => (db.clone(), None),
        None => {
            let dir = tempfile::Builder::new()
                .prefix("wavegate-demo-")
                .tempdir()
                .context("Failed to create a temporary directory for the demo database")?;
            (dir.path().join("demo.db").to_string_lossy().into_owned(), Some(dir))
        }
    };
    let store = wavegate_store::open(&db)
        .await
        .with_context(|| format!("Failed to open the database {:?}", redact_url(&db)))?;
    let state = wavegate_server::state_for(store.clone())
        .await
        .context("Failed to load the configuration")?;
    let server = wavegate_server::Server::bind(&args.listen, state).await.map_err(|e| {
        Failure::Operation(format!(
            "could not listen on {}: {e}{}",
            args.listen,
            if e.kind() == std::io::ErrorKind::AddrInUse {
                ". Is a wavegate server already running there? Pick another address with \
                 --listen, e.g. --listen 127.0.0.1:0 for any free port"
            } else {
                ""
            }
        ))
    })?;
    let addr = server.local_addr()?;
    let token = admin_token(&*store).await?;
    let (stop_tx, stop_rx) = tokio::sync::oneshot::channel::<()>();
    let serving = tokio::spawn(server.run(Some(tick), async move {
        let _ = stop_rx.await;
    }));
    let base = base_url(addr);
    out.step(
        "server",
        json!({"url": format!("{base}/"), "token": token, "db": redact_url(&db), "tick_ms": tick.as_millis() as u64}),
        format!(
            "server up at {base}/ (database {}, controller tick {})\n         \
             dashboard: open {base}/ and paste this admin token to sign in:\n\n             {token}\n",
            redact_url(&db),
            args.tick
        ),
    );

    let story = Story { c: Client::new(&remote(&base, &token))?, base: base.clone(), out, args };
    let outcome = tokio::select! {
        r = story.play() => Some(r),
        _ = &mut interrupted => None,
    };
    let result = match outcome {
        None => Err(Failure::Operation("interrupted before the story ended".into()).into()),
        Some(Err(e)) => {
            Err(Failure::Operation(format!("the demo did not go as planned: {e:#}")).into())
        }
        Some(Ok(rollout)) => {
            if !args.exit {
                out.step(
                    "serving",
                    json!({"url": format!("{base}/"), "rollout_url": format!("{base}/#/rollouts/{rollout}")}),
                    format!(
                        "The server keeps running so you can look around: open {base}/#/rollouts/{rollout}\n         \
                         (sign in with the admin token above). Ctrl-C stops it."
                    ),
                );
                interrupted.await;
            }
            Ok(ExitCode::SUCCESS)
        }
    };
    let _ = stop_tx.send(());
    if let Ok(Err(e)) = serving.await {
        tracing::error!(error = %e, "server failed");
    }
    result
}

/// The URL the demo's own clients use (loopback when listening on every interface).
fn base_url(addr: SocketAddr) -> String {
    let ip = match addr.ip() {
        IpAddr::V4(ip) if ip.is_unspecified() => IpAddr::V4(Ipv4Addr::LOCALHOST),
        IpAddr::V6(ip) if ip.is_unspecified() => IpAddr::V6(Ipv6Addr::LOCALHOST),
        ip => ip,
    };
    format!("http://{}", SocketAddr::new(ip, addr.port()))
}

fn remote(base: &str, token: &str) -> Remote {
    Remote { url: base.to_owned(), token: Some(token.to_owned()), json: false }
}

/// The admin token the demo acts with and prints: the first admin token of a fresh database,
/// or (on a `--db` that already has one) a new admin token for the principal `demo`.
async fn admin_token(store: &dyn Store) -> anyhow::Result<String> {
    let now = chrono::Utc::now();
    if let Some(secret) = wavegate_server::ensure_admin_token(store, None, now).await? {
        return Ok(secret);
    }
    let minted =
        wavegate_server::http::auth::mint(TokenKind::Admin, vec!["*".into()], "demo".into());
    let change =
        Change { actor: "system".into(), via: None, reason: Some("wavegate demo".into()), at: now };
    store.create_token(&minted.record, &change).await.context("Failed to create a demo token")?;
    Ok(minted.secret)
}

/// Prints the story: a line per step for people, or one JSON object per step (`--json`).
struct Progress {
    json: bool,
    t0: Instant,
}

impl Progress {
    fn step(&self, step: &str, fields: Value, human: impl AsRef<str>) {
        let t = self.t0.elapsed().as_secs_f64();
        let mut out = std::io::stdout().lock();
        if self.json {
            let mut obj = serde_json::Map::new();
            obj.insert("step".into(), json!(step));
            obj.insert("t".into(), json!((t * 10.0).round() / 10.0));
            if let Value::Object(m) = fields {
                obj.extend(m);
            }
            let _ = writeln!(out, "{}", Value::Object(obj));
        } else {
            let _ = writeln!(out, "[{t:5.1}s] {}", human.as_ref());
        }
        let _ = out.flush();
    }
}

/// The scripted part: everything through the server's HTTP API.
struct Story<'a> {
    c: Client,
    base: String,
    out: &'a Progress,
    args: &'a DemoArgs,
}

impl Story<'_> {
    /// Plays the story; returns the rollout's id once it was rolled back and everything checked.
    async fn play(&self) -> anyhow::Result<String> {
        let (c, out) = (&self.c, self.out);
        let deadline = Instant::now() + DEADLINE;
        self.end_earlier_runs().await?;

        let why = |what: &str| Some(format!("wavegate demo: {what}"));
        let applied: Applied = c
            .post_yaml("/api/v1/apply", FLAGS, &why("sample flags"))
            .await
            .context("applying the sample flags")?
            .body;
        let keys: Vec<String> =
            applied.results.iter().map(|r| format!("{} {}", r.kind, r.key)).collect();
        out.step(
            "flags_applied",
            json!({"results": applied.results, "changed": applied.changed}),
            format!("flags applied (examples/demo/flags.yaml): {}", keys.join(", ")),
        );

        let plan: PlanApplied = c
            .post_yaml("/api/v1/plans", PLAN, &why("rollout plan"))
            .await
            .context("applying the rollout plan")?
            .body;
        let spec: wavegate_rollout::plan::PlanSpec =
            wavegate_core::flagfile::parse_yaml(PLAN).context("the embedded plan")?;
        let waves: Vec<String> = spec.waves.iter().map(|w| w.exposure.to_string()).collect();
        let guards: Vec<String> =
            spec.guardrails.iter().map(|g| format!("{} ({})", g.name, g.action.as_str())).collect();
        out.step(
            "plan_applied",
            json!({"plan": PLAN_NAME, "version": plan.version, "waves": waves,
                "guardrails": spec.guardrails.iter().map(|g| &g.name).collect::<Vec<_>>()}),
            format!(
                "plan {PLAN_NAME} v{} applied: {FLAG} to {} in waves {}, guarded by {}",
                plan.version,
                spec.environment,
                waves.join(" → "),
                guards.join(" and ")
            ),
        );

        // The application's own token: evaluates flags and posts events in prod. Its principal
        // is the default one (ours plus the kind), which a rerun on the same --db may reuse.
        let new_token = NewToken {
            kind: "server-sdk".into(),
            environments: vec![spec.environment.clone()],
            principal: None,
            user_admin: false,
            evaluate_only: false,
            expires_at: None,
            roles: None,
        };
        let sdk: CreatedToken = c
            .call(c.request(Method::POST, "/api/v1/tokens").json(&new_token))
            .await
            .context("creating the traffic's server-sdk token")?
            .body;
        let traffic = Arc::new(Traffic {
            http: reqwest::Client::builder().timeout(Duration::from_secs(10)).build()?,
            base: self.base.clone(),
            token: sdk.token,
            seed: self.args.seed,
            regressed: AtomicBool::new(false),
            next_user: AtomicU64::new(0),
            events: AtomicU64::new(0),
            counted: AtomicU64::new(0),
            failures: AtomicU64::new(0),
            last_failure: Mutex::new(None),
        });
        let (stop_traffic, stop_rx) = tokio::sync::watch::channel(false);
        let rate = u64::from(self.args.rate);
        let per_batch = (rate * BATCH_PERIOD.as_millis() as u64 / 1000 / WORKERS).max(1);
        let workers: Vec<_> = (0..WORKERS)
            .map(|_| tokio::spawn(traffic.clone().run(per_batch, stop_rx.clone())))
            .collect();
        out.step(
            "traffic_started",
            json!({"users_per_second": rate, "seed": self.args.seed, "error_rate": BASE_ERROR_RATE}),
            format!(
                "synthetic traffic: ~{rate} users/s evaluate {FLAG} over OFREP and post an exposure \
                 and an outcome each (seed {}; {:.0}% errors on both variants)",
                self.args.seed,
                BASE_ERROR_RATE * 100.0
            ),
        );

        let result = self.follow(&traffic, deadline).await;
        let _ = stop_traffic.send(true);
        for w in workers {
            let _ = w.await;
        }
        let rollout = result?;
        self.check_after(&rollout, &traffic).await?;
        Ok(rollout)
    }

    /// Ends rollouts of the demo flag left running by an earlier, interrupted demo on this
    /// database (a live rollout owns its flag, so the flags could not be applied).
    async fn end_earlier_runs(&self) -> anyhow::Result<()> {
        let c = &self.c;
        let list: Vec<Rollout> = c.get(&format!("/api/v1/rollouts?flag={FLAG}")).await?.body;
        for r in list {
            if matches!(r.state, RolloutState::Running | RolloutState::Paused) {
                let id = r.id;
                let stop = Command {
                    reason: Some("a new wavegate demo run starts".into()),
                    token: None,
                    item: None,
                };
                c.send(
                    c.request(Method::POST, &format!("/api/v1/rollouts/{}/rollback", enc(&id)))
                        .json(&stop),
                )
                .await
                .with_context(|| format!("rolling back the earlier demo rollout {id}"))?;
                self.out.step(
                    "cleanup",
                    json!({"rollout": id}),
                    format!("rolled back {id}, left running by an earlier demo on this database"),
                );
            }
        }
        Ok(())
    }

    /// Starts the rollout and follows its audit trail until the rollback; returns its id.
    async fn follow(&self, traffic: &Traffic, deadline: Instant) -> anyhow::Result<String> {
        let (c, out) = (&self.c, self.out);
        let mut cursor = self.audit_head().await?;
        // A moment of traffic first, so the first wave starts with users already arriving.
        tokio::time::sleep(Duration::from_millis(500)).await;
        let start = StartRollout {
            plan: PLAN_NAME.into(),
            reason: Some("wavegate demo".into()),
            start_at: None,
            ..StartRollout::default()
        };
        let started: Rollout = c
            .call(c.request(Method::POST, "/api/v1/rollouts").json(&start))
            .await
            .context("starting the rollout")?
            .body;
        let id = started.id;
        let target = format!("rollout:{id}");
        out.step(
            "rollout_started",
            json!({"rollout": id, "wave": started.wave, "percent": percent(started.exposure.as_deref()),
                "url": format!("{}/#/rollouts/{id}", self.base)}),
            format!(
                "rollout {id} started: wave 1 serves the new variant to {} of users ({}/#/rollouts/{id})",
                or_dash(started.exposure.as_deref()), self.base
            ),
        );
        let mut promotions = 0;
        let mut regress_at: Option<Instant> = None;
        let mut last_beat = Instant::now();
        loop {
            if regress_at.is_some_and(|t| Instant::now() >= t) {
                regress_at = None;
                traffic.regressed.store(true, Ordering::SeqCst);
                out.step(
                    "regression_injected",
                    json!({"wave": PROMOTIONS + 1,
                        "error_rate": {"treatment": REGRESSED_ERROR_RATE, "control": BASE_ERROR_RATE}}),
                    format!(
                        "regression injected: from now on the new variant fails {:.0}% of requests (the old one {:.0}%)",
                        REGRESSED_ERROR_RATE * 100.0,
                        BASE_ERROR_RATE * 100.0
                    ),
                );
            }
            let entries = self.audit_after(cursor).await?;
            for e in &entries {
                cursor = e.seq;
                if e.target != target {
                    continue;
                }
                let d = e.rollout_details().unwrap_or_default();
                match e.action.as_str() {
                    "rollout.start" => {}
                    "rollout.promote" if promotions == PROMOTIONS => bail!(
                        "expected guardrail {GUARDRAIL:?} to roll the rollout back in wave {}, but \
                         the controller promoted it to wave {} at {}: the regression went unnoticed",
                        or_dash(d.from_wave),
                        or_dash(d.to_wave),
                        or_dash(d.exposure.as_deref())
                    ),
                    "rollout.promote" => {
                        promotions += 1;
                        last_beat = Instant::now();
                        self.promoted(&id, &d);
                        if promotions == PROMOTIONS {
                            regress_at = Some(Instant::now() + REGRESSION_AFTER);
                        }
                    }
                    "rollout.rollback" => {
                        let regressed = traffic.regressed.load(Ordering::SeqCst);
                        self.rolled_back(&id, &d, promotions, regressed)?;
                        return Ok(id);
                    }
                    other => bail!(
                        "expected {PROMOTIONS} promotions and then a rollback by guardrail \
                         {GUARDRAIL:?}, but after {promotions} promotion(s) the audit log says {other}{}",
                        d.reason.map(|r| format!(": {r}")).unwrap_or_default()
                    ),
                }
            }
            if entries.len() == AUDIT_PAGE {
                continue;
            }
            if Instant::now() > deadline {
                let r: Rollout = c.get(&format!("/api/v1/rollouts/{}", enc(&id))).await?.body;
                bail!(
                    "no rollback within {}s: after {promotions} promotion(s) the rollout is {} in wave {} ({}); {}",
                    DEADLINE.as_secs(),
                    r.state,
                    r.wave,
                    or_dash(r.phase),
                    verdict_summary(&r)
                );
            }
            if last_beat.elapsed() >= HEARTBEAT {
                last_beat = Instant::now();
                self.heartbeat(&id, traffic).await?;
            }
            tokio::time::sleep(POLL).await;
        }
    }

    /// The audit entries after `cursor`, a page of at most [`AUDIT_PAGE`].
    async fn audit_after(&self, cursor: i64) -> anyhow::Result<Vec<AuditEntry>> {
        let path = format!("/api/v1/audit?after={cursor}&limit={AUDIT_PAGE}");
        Ok(self.c.get(&path).await?.body)
    }

    /// The newest audit sequence number (so the story reads only what happens from now on).
    async fn audit_head(&self) -> anyhow::Result<i64> {
        let mut cursor = 0;
        loop {
            let entries = self.audit_after(cursor).await?;
            cursor = entries.last().map_or(cursor, |e| e.seq);
            if entries.len() < AUDIT_PAGE {
                return Ok(cursor);
            }
        }
    }

    fn promoted(&self, id: &str, d: &RolloutDetails) {
        let verdicts: Vec<Value> = d
            .verdicts
            .iter()
            .map(|v| {
                json!({"guardrail": v.guardrail, "verdict": v.verdict, "upper": v.upper,
                    "tolerance": v.tolerance, "treatment_n": count(Some(v.treatment.n)),
                    "control_n": count(Some(v.control.n))})
            })
            .collect();
        let why: Vec<String> = d
            .verdicts
            .iter()
            .map(|v| {
                format!(
                    "{} {} (n = {} vs {}; {})",
                    v.guardrail,
                    v.verdict.as_str(),
                    count(Some(v.treatment.n)),
                    count(Some(v.control.n)),
                    v.explanation
                )
            })
            .collect();
        self.out.step(
            "promoted",
            json!({"rollout": id, "from_wave": d.from_wave, "wave": d.to_wave,
                "percent": percent(d.exposure.as_deref()), "verdicts": verdicts}),
            format!(
                "promoted to wave {} at {} by the controller:\n           {}",
                or_dash(d.to_wave),
                or_dash(d.exposure.as_deref()),
                why.join("\n           ")
            ),
        );
    }

    /// Reports the rollback, or says why it is not the one the story expects.
    fn rolled_back(
        &self,
        id: &str,
        d: &RolloutDetails,
        promotions: usize,
        regressed: bool,
    ) -> anyhow::Result<()> {
        let reason = d.reason.as_deref().unwrap_or("");
        let by = d.by.as_deref().unwrap_or("");
        let guardrail = d.guardrail.as_deref().unwrap_or("");
        if by != "automatic" || guardrail != GUARDRAIL || promotions != PROMOTIONS || !regressed {
            bail!(
                "rolled back in wave {} after {promotions} promotion(s){} (expected {PROMOTIONS}, \
                 a regression, then guardrail {GUARDRAIL:?}): {reason}",
                or_dash(d.wave),
                if regressed { "" } else { ", before any regression" }
            );
        }
        let v = d.verdict.as_ref();
        let (treatment, control) = (v.map(|v| v.treatment), v.map(|v| v.control));
        let rate =
            |m: Option<Moments>| m.map_or(0.0, |m| if m.n > 0.0 { m.sum / m.n } else { 0.0 });
        let n = |m: Option<Moments>| count(m.map(|m| m.n));
        let explanation = v.map(|v| &v.explanation);
        self.out.step(
            "guardrail_failed",
            json!({"rollout": id, "wave": d.wave, "guardrail": guardrail, "verdict": v.map(|v| v.verdict),
                "treatment": {"n": n(treatment), "error_rate": rate(treatment)},
                "control": {"n": n(control), "error_rate": rate(control)},
                "explanation": explanation}),
            format!(
                "guardrail {guardrail} failed in wave {}: {:.1}% errors on the new variant vs {:.1}% (n = {} vs {}); {}",
                or_dash(d.wave),
                rate(treatment) * 100.0,
                rate(control) * 100.0,
                n(treatment),
                n(control),
                or_dash(explanation)
            ),
        );
        self.out.step(
            "rolled_back",
            json!({"rollout": id, "wave": d.wave, "guardrail": guardrail, "by": by, "reason": reason}),
            format!(
                "rolled back automatically by the controller, as guardrail {guardrail}'s action says"
            ),
        );
        Ok(())
    }

    /// While waiting: where the rollout is and what its guardrails say.
    async fn heartbeat(&self, id: &str, traffic: &Traffic) -> anyhow::Result<()> {
        let r: Rollout = self.c.get(&format!("/api/v1/rollouts/{}", enc(id))).await?.body;
        let verdicts: Vec<Value> = guardrail_verdicts(&r)
            .map(|(v, t, c)| {
                json!({"guardrail": v.name, "verdict": v.verdict,
                    "treatment_n": count(t), "control_n": count(c)})
            })
            .collect();
        let users = traffic.next_user.load(Ordering::Relaxed);
        self.out.step(
            "progress",
            json!({"rollout": id, "state": r.state, "phase": r.phase, "wave": r.wave,
                "percent": percent(r.exposure.as_deref()), "verdicts": verdicts, "users": users}),
            format!(
                "  … wave {} at {} ({}): {}; {users} users so far",
                r.wave,
                or_dash(r.exposure.as_deref()),
                or_dash(r.phase),
                verdict_summary(&r)
            ),
        );
        Ok(())
    }

    /// After the rollback: the flag is back to its pre-rollout version and the audit chain
    /// verifies; then the summary.
    async fn check_after(&self, id: &str, traffic: &Traffic) -> anyhow::Result<()> {
        let c = &self.c;
        let r: Rollout = c.get(&format!("/api/v1/rollouts/{}", enc(id))).await?.body;
        if r.state != RolloutState::RolledBack {
            bail!("the rollout is {} after its rollback entry", r.state);
        }
        let pre = r.pre_rollout_version;
        let now: Head = c.get(&format!("/api/v1/flags/{FLAG}")).await?.body;
        let before: Version = c.get(&format!("/api/v1/flags/{FLAG}/versions/{pre}")).await?.body;
        let restored = now.spec == before.spec;
        if !restored {
            bail!(
                "flag {FLAG} (version {}) is not what it was before the rollout (version {pre})",
                now.version
            );
        }
        let audit: Verification = c.get("/api/v1/audit/verify").await?.body;
        let first_bad = json!(audit.first_bad);
        let (users, events, counted, failures) = (
            traffic.next_user.load(Ordering::Relaxed),
            traffic.events.load(Ordering::Relaxed),
            traffic.counted.load(Ordering::Relaxed),
            traffic.failures.load(Ordering::Relaxed),
        );
        let last_failure = traffic.last_failure.lock().unwrap_or_else(|e| e.into_inner()).clone();
        self.out.step(
            "audit_verified",
            json!({"ok": audit.ok, "verified": audit.verified, "head": audit.head, "first_bad": first_bad}),
            if audit.ok {
                format!(
                    "audit chain verifies: {} entries, head {}",
                    audit.verified,
                    or_dash(audit.head.as_deref())
                )
            } else {
                format!("audit chain BROKEN at {first_bad}")
            },
        );
        if !audit.ok {
            bail!("the audit chain does not verify: {first_bad}");
        }
        let secs = self.out.t0.elapsed().as_secs_f64();
        self.out.step(
            "summary",
            json!({"ok": true, "rollout": id, "promotions": PROMOTIONS, "rolled_back": true,
                "guardrail": GUARDRAIL, "reason": r.reason, "wave": r.wave,
                "flag": {"key": FLAG, "restored": restored, "pre_rollout_version": pre, "version": now.version},
                "audit": {"ok": audit.ok, "verified": audit.verified, "head": audit.head},
                "traffic": {"users": users, "events": events, "counted": counted,
                    "failed_batches": failures, "last_failure": last_failure},
                "elapsed_s": (secs * 10.0).round() / 10.0}),
            format!(
                "summary: rollout {id} was promoted twice by the controller, then guardrail {GUARDRAIL} \
                 rolled it back in wave {}; flag {FLAG} is its pre-rollout version {pre} again (stored as \
                 version {}); the audit chain verifies. {users} users, {events} events in {secs:.1}s.",
                r.wave,
                now.version
            ),
        );
        Ok(())
    }
}

/// The current wave's guardrail verdicts of a rollout view, with their sample counts.
fn guardrail_verdicts(r: &Rollout) -> impl Iterator<Item = (&Verdict, Option<f64>, Option<f64>)> {
    r.current_verdicts().filter(|v| v.kind == "guardrail").map(|v| {
        let report = v.guardrail_report();
        (v, report.as_ref().map(|g| g.treatment.n), report.as_ref().map(|g| g.control.n))
    })
}

/// `guardrail verdict (n = t vs c)` for the current wave of a rollout view.
fn verdict_summary(r: &Rollout) -> String {
    let parts: Vec<String> = guardrail_verdicts(r)
        .map(|(v, t, c)| format!("{} {} (n = {} vs {})", v.name, v.verdict, count(t), count(c)))
        .collect();
    if parts.is_empty() { "no verdicts yet".into() } else { parts.join(", ") }
}

/// A sample count (stored as a float) as an integer.
fn count(n: Option<f64>) -> Value {
    n.map_or(Value::Null, |n| json!(n.round() as u64))
}

/// `"25%"` → 25.
fn percent(exposure: Option<&str>) -> Value {
    exposure
        .and_then(|p| p.trim_end_matches('%').parse::<f64>().ok())
        .map_or(Value::Null, |p| if p.fract() == 0.0 { json!(p as i64) } else { json!(p) })
}

/// The synthetic application: users evaluating the flag over OFREP and reporting what happened.
struct Traffic {
    http: reqwest::Client,
    base: String,
    token: String,
    seed: u64,
    /// Set once the regression is injected: from then on the new variant fails more often.
    regressed: AtomicBool,
    next_user: AtomicU64,
    events: AtomicU64,
    counted: AtomicU64,
    failures: AtomicU64,
    last_failure: Mutex<Option<String>>,
}

impl Traffic {
    /// One worker: a batch of new users every [`BATCH_PERIOD`] until told to stop.
    async fn run(self: Arc<Self>, per_batch: u64, mut stop: tokio::sync::watch::Receiver<bool>) {
        let mut timer = tokio::time::interval(BATCH_PERIOD);
        timer.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = timer.tick() => {}
                _ = stop.changed() => return,
            }
            if let Err(e) = self.batch(per_batch).await {
                self.failures.fetch_add(1, Ordering::Relaxed);
                *self.last_failure.lock().unwrap_or_else(|e| e.into_inner()) =
                    Some(format!("{e:#}"));
            }
        }
    }

    /// `n` new users: each is evaluated over OFREP, then all their exposures and outcomes are
    /// posted in one batch, as an SDK would.
    async fn batch(&self, n: u64) -> anyhow::Result<()> {
        let first = self.next_user.fetch_add(n, Ordering::Relaxed);
        let mut events = Vec::with_capacity(2 * n as usize);
        for user in first..first + n {
            let context = json!({"targetingKey": format!("user-{user}")});
            let answer: Evaluation = self
                .http
                .post(format!("{}/ofrep/v1/evaluate/flags/{FLAG}", self.base))
                .bearer_auth(&self.token)
                .json(&json!({"context": context}))
                .send()
                .await?
                .error_for_status()?
                .json()
                .await?;
            let variant = answer.variant;
            let o = outcome(
                self.seed,
                user,
                variant == NEW_VARIANT,
                self.regressed.load(Ordering::SeqCst),
            );
            events.push(
                json!({"type": "exposure", "flag": FLAG, "variant": variant, "context": context}),
            );
            events.push(
                json!({"type": "outcome", "flag": FLAG, "variant": variant, "context": context,
                "error": o.error, "latency_ms": o.latency_ms,
                "metrics": {"conversion": if o.converted { 1.0 } else { 0.0 }}}),
            );
        }
        let accepted: Ingested = self
            .http
            .post(format!("{}/api/v1/events", self.base))
            .bearer_auth(&self.token)
            .json(&json!({"events": events}))
            .send()
            .await?
            .error_for_status()?
            .json()
            .await?;
        self.events.fetch_add(events.len() as u64, Ordering::Relaxed);
        self.counted.fetch_add(accepted.counted, Ordering::Relaxed);
        Ok(())
    }
}

/// What one synthetic user experienced.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Outcome {
    error: bool,
    latency_ms: f64,
    converted: bool,
}

/// A user's outcome: a pure function of the seed, the user, the variant they were served
/// (`treatment`: the new one) and whether the regression is on. The new variant is a little
/// faster and converts a little better, until the regression makes it fail.
fn outcome(seed: u64, user: u64, treatment: bool, regressed: bool) -> Outcome {
    let mut rng = Rng::new(splitmix(seed ^ splitmix(user)));
    let error_rate = if treatment && regressed { REGRESSED_ERROR_RATE } else { BASE_ERROR_RATE };
    let error = rng.uniform() < error_rate;
    let mean = if treatment { 114.0 } else { 120.0 };
    let latency_ms = ((mean + 25.0 * rng.normal()).clamp(5.0, 2000.0) * 10.0).round() / 10.0;
    let converted = !error && rng.uniform() < if treatment { 0.034 } else { 0.030 };
    Outcome { error, latency_ms, converted }
}

/// SplitMix64's finaliser: nearby inputs give unrelated outputs.
fn splitmix(x: u64) -> u64 {
    let mut z = x.wrapping_add(0x9E37_79B9_7F4A_7C15);
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The embedded samples are valid: the flag file parses and validates, the plan lints
    /// without errors, and the plan names the flag and variants the file defines.
    #[test]
    fn demo_samples_are_valid() {
        let file: wavegate_core::FlagFile =
            wavegate_core::flagfile::parse_yaml(FLAGS).expect("flags.yaml parses");
        let (plan, findings) = wavegate_rollout::lint::lint(PLAN);
        assert!(!wavegate_rollout::lint::has_errors(&findings), "{findings:?}");
        let plan = plan.unwrap();
        assert_eq!((plan.name.as_str(), plan.flag.as_str()), (PLAN_NAME, FLAG));
        assert_eq!(plan.new_variant, NEW_VARIANT);
        assert!(plan.guardrails.iter().any(
            |g| g.name == GUARDRAIL && g.action == wavegate_rollout::plan::StopAction::Rollback
        ));
        // Two promotions leave the rollout in a wave that still has a control arm.
        let wave = &plan.waves[PROMOTIONS];
        assert!(wave.exposure.basis_points() < 10_000);
        let flag = file.flags.get(FLAG).expect("the plan's flag is in the flag file");
        assert!(flag.variants.contains_key(&plan.new_variant));
        assert!(flag.variants.contains_key(&plan.control_variant));
    }

    /// Outcomes are reproducible from the seed and follow the configured rates.
    #[test]
    fn demo_outcomes_are_seeded_and_regress_only_the_new_variant() {
        assert_eq!(outcome(7, 42, true, false), outcome(7, 42, true, false));
        let rate = |treatment, regressed| {
            (0..20_000).filter(|&u| outcome(7, u, treatment, regressed).error).count() as f64
                / 20_000.0
        };
        assert!((rate(false, false) - BASE_ERROR_RATE).abs() < 0.005);
        assert!((rate(false, true) - BASE_ERROR_RATE).abs() < 0.005);
        assert!((rate(true, false) - BASE_ERROR_RATE).abs() < 0.005);
        assert!((rate(true, true) - REGRESSED_ERROR_RATE).abs() < 0.015);
    }

    #[test]
    fn demo_percent_and_base_url() {
        assert_eq!(percent(Some("25%")), json!(25));
        assert_eq!(percent(Some("12.5%")), json!(12.5));
        assert_eq!(percent(None), Value::Null);
        assert_eq!(base_url("0.0.0.0:8470".parse().unwrap()), "http://127.0.0.1:8470");
        assert_eq!(base_url("127.0.0.1:9".parse().unwrap()), "http://127.0.0.1:9");
    }
}

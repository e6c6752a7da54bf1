//! The command line, as clap sees it. Names here are a contract (DESIGN.md "Contracts that
//! scripts rely on"): `--listen`/`WAVEGATE_LISTEN`, `--db`/`WAVEGATE_DB`, `--url`/`WAVEGATE_URL`,
//! `--token`/`WAVEGATE_TOKEN`, `--json`.

use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};

/// wavegate: feature flags and guarded progressive rollouts, self-hosted.
#[derive(Debug, Parser)]
#[command(name = "wavegate", version, about = "wavegate: feature flags and guarded progressive rollouts, self-hosted", long_about = None)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// Where the server is and how to authenticate (for every subcommand that talks to a server).
#[derive(Debug, Clone, Args)]
pub struct Remote {
    /// Base URL of the wavegate server.
    #[arg(long, env = "WAVEGATE_URL", default_value = "http://127.0.0.1:8470", global = true)]
    pub url: String,
    /// API token (sent as `Authorization: Bearer …`).
    #[arg(long, env = "WAVEGATE_TOKEN", hide_env_values = true, global = true)]
    pub token: Option<String>,
    /// Print machine-readable JSON.
    #[arg(long, global = true)]
    pub json: bool,
}

/// Subcommands.
#[derive(Debug, Subcommand)]
pub enum Command {
    /// Run the server (local: works on --db directly).
    Serve(Box<ServeArgs>),
    /// Create, list and revoke API tokens.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// List, show, apply, archive and revert flags (flags as code).
    Flag {
        #[command(subcommand)]
        command: FlagCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// List, create and protect environments.
    Env {
        #[command(subcommand)]
        command: EnvCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Change requests for protected environments: propose, review, apply; emergencies.
    Change {
        #[command(subcommand)]
        command: ChangeCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Evaluate a flag over OFREP, as an SDK would.
    Eval(EvalArgs),
    /// Lint and apply rollout plans (`plan lint` is local).
    Plan {
        #[command(subcommand)]
        command: PlanCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Coordinated releases: several plans in order and at one pace, under one failure policy.
    Release {
        #[command(subcommand)]
        command: ReleaseCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Start, watch, approve, pause, resume and roll back rollouts.
    Rollout {
        #[command(subcommand)]
        command: RolloutCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// The release calendar: live rollouts, blackout windows, the freeze, and conflicts
    /// between rollouts of dependent services (`--ics` for an iCalendar file).
    Calendar {
        /// Days ahead.
        #[arg(long, default_value_t = 14)]
        days: i64,
        /// Print iCalendar (RFC 5545) instead of a table.
        #[arg(long)]
        ics: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Reports: DORA metrics, adoption by cohort, pilot feedback and post-rollout reports
    /// (Markdown, HTML with charts, or --json).
    Report {
        #[command(subcommand)]
        command: ReportCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Sign in through the server's identity provider (when it has one): opens the sign-in
    /// page in a browser and keeps the session for this server in your config directory
    /// (mode 0600), so later commands need no --token.
    Login {
        /// Print the address to open instead of opening a browser.
        #[arg(long)]
        no_browser: bool,
        /// How long to wait for the sign-in to finish, e.g. 5m.
        #[arg(long, default_value = "5m")]
        timeout: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// End the session `wavegate login` kept for this server (on the server too).
    Logout {
        #[command(flatten)]
        remote: Remote,
    },
    /// Who the token or session you use is, and what its roles allow.
    Whoami {
        #[command(flatten)]
        remote: Remote,
    },
    /// Pilot feedback about a release: list it with its status, close an item as fixed (with
    /// the version that fixed it) or won't fix, or reopen it.
    Feedback {
        #[command(subcommand)]
        command: FeedbackCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Incidents and support tickets of a service: report one (an incident guardrail judges
    /// them), or list the latest with where they count.
    Incident {
        #[command(subcommand)]
        command: IncidentCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop the line: a global freeze holds every rollout (pause and rollback still work) and
    /// refuses new starts until lifted.
    Freeze {
        #[command(subcommand)]
        command: FreezeCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Show and set a plan's go/no-go scorecard (a declared one gates start and promotions).
    Scorecard {
        #[command(subcommand)]
        command: ScorecardCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Rehearse a plan in simulated time against a scenario (local; exit 1 if the drill fails).
    Drill(DrillArgs),
    /// Notification targets (webhooks per audience) and the delivery log.
    Notify {
        #[command(subcommand)]
        command: NotifyCommand,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run an edge relay: serves OFREP and Unleash's APIs from an in-memory copy kept current
    /// by the upstream's stream, keeps the last good copy on disk, forwards events upstream.
    Edge(EdgeArgs),
    /// Write a consistent backup of a running server's database (or of `--db` directly).
    Backup(BackupArgs),
    /// Restore a backup into an empty database of either kind (local; SQLite → PostgreSQL too).
    Restore(RestoreArgs),
    /// A guarded rollout in under a minute: server, flags, plan, traffic, two promotions and an
    /// automatic rollback (local).
    #[command(long_about = DEMO_LONG_ABOUT)]
    Demo(DemoArgs),
    /// Read and verify the hash-chained audit log.
    Audit {
        #[command(subcommand)]
        command: AuditCommand,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `wavegate notify …`.
#[derive(Debug, Subcommand)]
pub enum NotifyCommand {
    /// List notification targets.
    List,
    /// Create or replace a target: a webhook that hears of rollout events, worded for its
    /// audience.
    Set {
        /// The target's name.
        name: String,
        /// Who it speaks to: executive, manager, end-user, on-call, or champion (one person,
        /// `--person`, told of the lagging cohorts they champion or train).
        #[arg(long, value_parser = ["executive", "manager", "end-user", "on-call", "champion"])]
        audience: String,
        /// For `--audience champion`: the person, as a plan's `stakeholders` names them.
        #[arg(long)]
        person: Option<String>,
        /// The webhook URL (http or https). Kept out of the audit log.
        #[arg(long, value_name = "URL")]
        webhook: String,
        /// Payload shape: json; slack (Slack-compatible incoming webhooks); teams (an Adaptive
        /// Card for a Microsoft Teams workflow webhook); pagerduty (Events API v2: give
        /// --webhook https://events.pagerduty.com/v2/enqueue and the routing key in
        /// --signing-secret-file; stop conditions trigger, completion resolves).
        #[arg(long, default_value = "json", value_parser = ["json", "slack", "teams", "pagerduty"])]
        format: String,
        /// Events it hears of, comma-separated (default: all of approval_requested, promoted,
        /// paused, rolled_back, escalated, completed, stale); `checkpoint` (only when named)
        /// sends each signed audit checkpoint too.
        #[arg(long, value_delimiter = ',')]
        events: Vec<String>,
        /// Environments it hears of, comma-separated (default: all).
        #[arg(long = "env", value_delimiter = ',')]
        environments: Vec<String>,
        /// A minijinja template file replacing the default wording of one event, as
        /// EVENT=FILE (repeatable). Variables: release, environment, wave, waves, exposure,
        /// actor, reason, runbook, url, rollout.{id,plan,flag,state,…}.
        #[arg(long = "template", value_name = "EVENT=FILE")]
        templates: Vec<String>,
        /// A file holding a signing secret (at least 16 characters): each request then
        /// carries `X-Wavegate-Signature: sha256=HMAC(secret, "<X-Wavegate-Timestamp>.<body>")`.
        #[arg(long, value_name = "FILE")]
        signing_secret_file: Option<PathBuf>,
        /// Why (recorded in the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// Remove a target (its delivery log stays).
    Remove {
        /// The target's name.
        name: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Send one sample message to a target now and show how it answered.
    Test {
        /// The target's name.
        name: String,
        /// The event to render (default: promoted).
        #[arg(long)]
        event: Option<String>,
    },
    /// The delivery log, newest first.
    Deliveries {
        /// Only pending, delivered or failed ones.
        #[arg(long, value_parser = ["pending", "delivered", "failed"])]
        status: Option<String>,
        /// Only this target's.
        #[arg(long)]
        target: Option<String>,
        /// Only this rollout's.
        #[arg(long)]
        rollout: Option<String>,
        /// At most this many.
        #[arg(long, default_value_t = 50)]
        limit: u32,
    },
}

/// `wavegate edge`.
#[derive(Debug, Args)]
pub struct EdgeArgs {
    /// The wavegate server (or another edge's upstream) to follow.
    #[arg(long, env = "WAVEGATE_UPSTREAM")]
    pub upstream: String,
    /// A `server-sdk` token for every environment served (reads the streams, forwards events).
    #[arg(long, env = "WAVEGATE_TOKEN", hide_env_values = true)]
    pub token: String,
    /// The environments to serve, each followed over a stream of its own: repeat the flag or
    /// separate names with commas (`--env prod --env staging`, `--env prod,staging`).
    /// Applications name theirs with their token, or `X-Wavegate-Environment`.
    #[arg(long = "env", env = "WAVEGATE_ENV", value_delimiter = ',', required = true)]
    pub environments: Vec<String>,
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "WAVEGATE_LISTEN", default_value = "127.0.0.1:8471")]
    pub listen: String,
    /// A directory for the last good configuration (`config-<env>.json`) and the tokens seen
    /// valid (`tokens.json`, hashes only), so the edge serves while the upstream is
    /// unreachable, also after its own restart.
    #[arg(long, env = "WAVEGATE_EDGE_STATE", default_value = "./wavegate-edge")]
    pub state_dir: std::path::PathBuf,
    /// Report not ready (503) when the configuration is older than this (e.g. 10m); by
    /// default a stale configuration keeps being served and reported as stale.
    #[arg(long)]
    pub max_stale: Option<String>,
    /// How often forwarded events are sent upstream (e.g. 1s, 250ms).
    #[arg(long, default_value = "1s")]
    pub flush_interval: String,
    /// Log format (logs go to stderr; filter with RUST_LOG).
    #[arg(long, value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
}

/// `wavegate backup`.
#[derive(Debug, Args)]
pub struct BackupArgs {
    /// Where to write the backup (JSON; written atomically, readable by its owner only).
    /// `-` writes to standard output.
    pub file: PathBuf,
    /// Read the database directly instead of asking a server: a SQLite file path or a
    /// `postgres://` URL (safe while a server runs on it: one read transaction).
    #[arg(long)]
    pub db: Option<String>,
    /// Replace FILE if it exists.
    #[arg(long)]
    pub force: bool,
    /// Keep the notification targets' signing secrets and full webhook URLs in the backup
    /// (from a server, this is recorded in its audit log). Without it they are left out, and
    /// restored targets send nothing until `wavegate notify set` gives them their URL again.
    #[arg(long)]
    pub include_secrets: bool,
    /// Server and token (when `--db` is not given; needs an admin token for all environments).
    #[command(flatten)]
    pub remote: Remote,
}

/// `wavegate restore`.
#[derive(Debug, Args)]
pub struct RestoreArgs {
    /// The backup file (`-` reads standard input).
    pub file: PathBuf,
    /// The database to restore into: a SQLite file path (created) or a `postgres://` URL. It
    /// must hold nothing yet: no flags, plans, rollouts, tokens or audit entries.
    #[arg(long, env = "WAVEGATE_DB")]
    pub db: String,
    /// Print a machine-readable summary.
    #[arg(long)]
    pub json: bool,
}

/// Log output format.
#[derive(Debug, Clone, Copy, ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Pretty,
    /// One JSON object per line.
    Json,
}

/// `wavegate serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, env = "WAVEGATE_LISTEN", default_value = "127.0.0.1:8470")]
    pub listen: String,
    /// Database: a SQLite file path (created on first start), or `postgres://user@host/db`
    /// for PostgreSQL (migrated on start; several replicas may share it).
    #[arg(long, env = "WAVEGATE_DB", default_value = "./wavegate.db")]
    pub db: String,
    /// Prometheus base URL for guardrails with `source: prometheus` (e.g. http://127.0.0.1:9090).
    #[arg(long, env = "WAVEGATE_PROMETHEUS_URL")]
    pub prometheus_url: Option<String>,
    /// A file holding a token sent to --prometheus-url as `Authorization: Bearer <token>`
    /// (Mimir, Thanos, Grafana Cloud, VictoriaMetrics or a proxy in front of Prometheus). Read
    /// at start; never stored, shown or logged. Credentials go only to --prometheus-url, never
    /// to a guardrail's own `prometheus_url`.
    #[arg(
        long,
        env = "WAVEGATE_PROMETHEUS_BEARER_FILE",
        value_name = "FILE",
        requires = "prometheus_url",
        conflicts_with = "prometheus_basic_auth_file"
    )]
    pub prometheus_bearer_file: Option<PathBuf>,
    /// A file holding `user:password` (one line) sent to --prometheus-url as basic
    /// authentication. Read at start; never stored, shown or logged.
    #[arg(
        long,
        env = "WAVEGATE_PROMETHEUS_BASIC_AUTH_FILE",
        value_name = "FILE",
        requires = "prometheus_url"
    )]
    pub prometheus_basic_auth_file: Option<PathBuf>,
    /// A header sent to --prometheus-url with every query: `NAME=@FILE` reads the value from
    /// a file (for secrets, e.g. `X-API-Key=@/run/secrets/prom-key`), `NAME=VALUE` gives it
    /// as written (for what is no secret, e.g. Mimir's `X-Scope-OrgID=tenant-1`). Repeat the
    /// flag for more. Values are never shown or logged.
    #[arg(
        long = "prometheus-header",
        env = "WAVEGATE_PROMETHEUS_HEADERS",
        hide_env_values = true,
        value_name = "NAME=VALUE|NAME=@FILE",
        value_delimiter = ',',
        requires = "prometheus_url"
    )]
    pub prometheus_headers: Vec<String>,
    /// A file of PEM certificates (a private CA) to trust, besides the system's, for an
    /// https:// --prometheus-url.
    #[arg(
        long,
        env = "WAVEGATE_PROMETHEUS_CA_FILE",
        value_name = "FILE",
        requires = "prometheus_url"
    )]
    pub prometheus_ca_file: Option<PathBuf>,
    /// How often the controller steps running rollouts (e.g. 10s, 500ms).
    #[arg(long, env = "WAVEGATE_TICK", default_value = "10s")]
    pub tick: String,
    /// How long the controller's leadership lasts without a renewal (renewed every third of
    /// it). On PostgreSQL, another replica takes over once a leader (dead or hung) lets it lapse.
    #[arg(long, env = "WAVEGATE_LEADER_LEASE", default_value = "10s")]
    pub leader_lease: String,
    /// How often the whole audit record is verified again from its first entry (the chain,
    /// every version and head row, and that the log still holds what was verified before).
    /// The chain is verified at start and each new entry as it arrives either way.
    #[arg(long, env = "WAVEGATE_AUDIT_VERIFY_INTERVAL", default_value = "10m")]
    pub audit_verify_interval: String,
    /// Sign checkpoints of the audit chain's head with this ed25519 private key (PKCS#8 PEM,
    /// from `wavegate audit keygen` or `openssl genpkey -algorithm ed25519`): at start, every
    /// --checkpoint-interval and after every rollout decision. The public key is printed at
    /// start and served at /api/v1/audit/checkpoint; `wavegate audit verify --checkpoints`
    /// then finds a log cut short or rewritten and chained again.
    #[arg(long, env = "WAVEGATE_CHECKPOINT_KEY")]
    pub checkpoint_key: Option<std::path::PathBuf>,
    /// Write each checkpoint to this directory (outside the database: another disk, a mount
    /// the database's owner cannot write), one `checkpoint-<seq>.json` file each.
    #[arg(long, env = "WAVEGATE_CHECKPOINT_DIR", requires = "checkpoint_key")]
    pub checkpoint_dir: Option<std::path::PathBuf>,
    /// How often the chain's head is signed when it has moved (besides every rollout decision).
    #[arg(long, env = "WAVEGATE_CHECKPOINT_INTERVAL", default_value = "5m")]
    pub checkpoint_interval: String,
    /// Log format (logs go to stderr; filter with RUST_LOG).
    #[arg(long, env = "WAVEGATE_LOG_FORMAT", value_enum, default_value = "pretty")]
    pub log_format: LogFormat,
    /// The URL people reach this server at (e.g. https://wavegate.example.com), for links to
    /// rollout pages in notifications and, with --oidc-issuer, sign-in: the redirect URI to
    /// register at the provider is <public-url>/auth/callback.
    #[arg(long, env = "WAVEGATE_PUBLIC_URL")]
    pub public_url: Option<String>,
    /// Delay before a failed notification's first retry; each later retry doubles it (max 1h).
    #[arg(long, env = "WAVEGATE_NOTIFY_RETRY_BASE", default_value = "2s")]
    pub notify_retry_base: String,
    /// Attempts before a notification is marked failed.
    #[arg(long, env = "WAVEGATE_NOTIFY_MAX_ATTEMPTS", default_value_t = 6,
          value_parser = clap::value_parser!(u32).range(1..=50))]
    pub notify_max_attempts: u32,
    /// How long one notification attempt may take before it counts as failed.
    #[arg(long, env = "WAVEGATE_NOTIFY_TIMEOUT", default_value = "10s")]
    pub notify_timeout: String,
    /// A browser origin whose pages may call the admin API (`/api/v1/…`), e.g.
    /// https://ops.example.com; repeat the flag (or separate with commas) for more, `*` for any.
    /// Default: none; the dashboard comes from the server's own origin and needs none. OFREP
    /// and Unleash's client and frontend APIs answer pages of any origin regardless, as browser
    /// SDKs need.
    #[arg(
        long = "cors-origin",
        env = "WAVEGATE_CORS_ORIGINS",
        value_delimiter = ',',
        value_name = "ORIGIN"
    )]
    pub cors_origins: Vec<String>,
    /// A file holding a token that `/metrics` then requires as `Authorization: Bearer <token>`
    /// (in Prometheus: `authorization: { credentials_file: … }`). Default: `/metrics` answers
    /// anyone who reaches it; it names every flag key (never values or rules).
    #[arg(long, env = "WAVEGATE_METRICS_TOKEN_FILE", value_name = "FILE")]
    pub metrics_token_file: Option<PathBuf>,
    /// Sign people in through this OpenID Connect provider (its issuer URL, e.g.
    /// https://login.example.com/realms/acme); needs --oidc-client-id,
    /// --oidc-client-secret-file and --public-url. People then sign in to the dashboard and
    /// with `wavegate login`; their roles come from their groups (--oidc-role). Without it,
    /// tokens are the only way in (a single operator's deployment).
    #[arg(long, env = "WAVEGATE_OIDC_ISSUER", value_name = "URL")]
    pub oidc_issuer: Option<String>,
    /// This server's client id at the provider.
    #[arg(long, env = "WAVEGATE_OIDC_CLIENT_ID", value_name = "ID")]
    pub oidc_client_id: Option<String>,
    /// A file holding this server's client secret at the provider.
    #[arg(long, env = "WAVEGATE_OIDC_CLIENT_SECRET_FILE", value_name = "FILE")]
    pub oidc_client_secret_file: Option<PathBuf>,
    /// The ID token claim that lists a person's groups.
    #[arg(
        long,
        env = "WAVEGATE_OIDC_GROUPS_CLAIM",
        default_value = "groups",
        value_name = "CLAIM"
    )]
    pub oidc_groups_claim: String,
    /// The ID token claim that names a person in the audit record (`sub` when absent; an
    /// `email` marked unverified is not used).
    #[arg(long, env = "WAVEGATE_OIDC_NAME_CLAIM", default_value = "email", value_name = "CLAIM")]
    pub oidc_name_claim: String,
    /// Scopes to ask for besides `openid`, comma-separated (add the one your provider needs
    /// for groups, e.g. `groups`).
    #[arg(
        long,
        env = "WAVEGATE_OIDC_SCOPES",
        value_delimiter = ',',
        default_value = "email,profile",
        value_name = "SCOPE"
    )]
    pub oidc_scopes: Vec<String>,
    /// A group's role: GROUP=ROLE (in every environment) or GROUP=ROLE@ENV,ENV; repeat for more.
    /// Roles: viewer, editor, releaser, approver, admin. A person whose groups map to no role
    /// cannot sign in.
    #[arg(
        long = "oidc-role",
        env = "WAVEGATE_OIDC_ROLES",
        value_delimiter = ';',
        value_name = "GROUP=ROLE[@ENV,…]"
    )]
    pub oidc_roles: Vec<String>,
    /// How long a sign-in lasts (dashboard and CLI), e.g. 8h.
    #[arg(long, env = "WAVEGATE_SESSION_TTL", default_value = "8h", value_name = "SPAN")]
    pub session_ttl: String,
    /// Serve `/metrics` (with `/healthz` and `/readyz`) on this address instead, e.g. one only
    /// Prometheus reaches (port 0 picks a free port; the bound address is printed). `--listen`
    /// then answers 404 for `/metrics`.
    #[arg(long, env = "WAVEGATE_METRICS_LISTEN", value_name = "ADDR")]
    pub metrics_listen: Option<String>,
    /// Let URLs that arrive through the API (plan checks and webhook gates, a guardrail's
    /// `prometheus_url`, notification targets) reach this network, address or host name, e.g.
    /// 127.0.0.1, 10.0.0.0/8, ::1 or prometheus.internal (`*.svc.cluster.local` for every name
    /// under a suffix); repeat the flag (or separate with commas) for more. Default: none, so
    /// such URLs never reach loopback (127.0.0.0/8, ::1, localhost), link-local (169.254.0.0/16,
    /// fe80::/10), cloud metadata (169.254.169.254, fd00:ec2::254, metadata.google.internal…)
    /// or unspecified (0.0.0.0, ::) addresses, as written, as resolved or through a redirect;
    /// everything else, private ranges included, is allowed. URLs given as flags here
    /// (`--prometheus-url`) are the operator's and are never checked.
    #[arg(
        long = "allow-outbound",
        env = "WAVEGATE_ALLOW_OUTBOUND",
        value_delimiter = ',',
        value_name = "CIDR|HOST"
    )]
    pub allow_outbound: Vec<String>,
    /// A file holding a secret (at least 16 characters) that signs every request of plan
    /// checks and webhook gates: `X-Wavegate-Signature: sha256=<hex>`, the HMAC-SHA256 of
    /// `<X-Wavegate-Timestamp>.<body>`, as notification targets with a secret sign. Default:
    /// checks are not signed. Never stored, shown or backed up.
    #[arg(long, env = "WAVEGATE_CHECK_SECRET_FILE", value_name = "FILE")]
    pub check_secret_file: Option<PathBuf>,
    /// A file of minisign public keys (`.pub` files concatenated; `#` lines are comments)
    /// that artifacts may be signed with: a plan's `release.signed_by` names one by its key id.
    /// A rollout started with a signature under a plan that names no keys is checked against
    /// these and its evidence kept.
    #[arg(long, env = "WAVEGATE_TRUSTED_KEYS", value_name = "FILE")]
    pub trusted_keys: Option<PathBuf>,
    /// A directory of OSV vulnerability records (one JSON file each, e.g. an osv.dev export
    /// per ecosystem, unzipped) that plans' `vulnerabilities` checks match SBOMs against.
    /// Read when a check runs and again whenever its files change; nothing is fetched.
    #[arg(long, env = "WAVEGATE_OSV_DIR", value_name = "DIR")]
    pub osv_dir: Option<PathBuf>,
    /// Most streams (`/api/v1/stream` and `/ofrep/v1/events` together) one token may hold open
    /// on this server at once; one more is answered 429 until one closes. Raise it when many
    /// instances of a service share one token.
    #[arg(long, env = "WAVEGATE_MAX_STREAMS_PER_TOKEN", default_value_t = 100,
          value_parser = clap::value_parser!(u32).range(1..))]
    pub max_streams_per_token: u32,
    /// Most bytes of events waiting for one stream subscriber. A subscriber whose queue stays
    /// full (it reads nothing for 10 s) is dropped; it resumes with `Last-Event-ID`.
    #[arg(long, env = "WAVEGATE_STREAM_QUEUE_BYTES", default_value_t = 256 * 1024,
          value_parser = clap::value_parser!(u32).range(1024..))]
    pub stream_queue_bytes: u32,
    /// Most events one token may post per second (`POST /api/v1/events`), held for ten
    /// seconds' worth so bursts pass; more is answered 429 with `Retry-After`. 0: no limit.
    #[arg(long, env = "WAVEGATE_EVENTS_PER_TOKEN", default_value_t = 20_000)]
    pub events_per_token: u64,
    /// How far the clocks of applications may be from the server's. An event without a flag
    /// `version` is placed in a wave by its evaluation time `at`; one evaluated within this
    /// much of a wave's start cannot be placed and counts as unattributed (e.g. 5s, 500ms).
    #[arg(long, env = "WAVEGATE_EVENT_CLOCK_SKEW", default_value = "5s")]
    pub event_clock_skew: String,
}

/// What `wavegate demo --help` explains.
const DEMO_LONG_ABOUT: &str = "\
A newcomer's first five minutes, in under one.

`wavegate demo` starts a server in this process (on a fresh SQLite file in a temporary
directory unless --db says otherwise) and then, printing each step as it happens:

  1. creates an admin token and prints it with the dashboard URL, so you can watch live;
  2. applies sample flags and a rollout plan (examples/demo/, embedded in the binary):
     the `demo-checkout` flag goes to prod in waves 5% → 25% → 50% → 100%, guarded by
     an error-rate guardrail (action: rollback) and a latency guardrail (action: pause);
  3. starts synthetic traffic: a background task plays ~300 users a second, each
     evaluating the flag over OFREP and posting an exposure and an outcome to
     /api/v1/events, with seeded randomness and healthy numbers for both variants;
  4. starts the rollout; the real controller promotes it twice, once the guardrails pass
     and each wave's few-second hold has passed;
  5. injects a regression a few seconds into wave 3: the new variant starts failing 12%
     of requests instead of 1%;
  6. waits for the controller's error-rate verdict to fail, upon which the controller
     restores the flag's pre-rollout version (the demo only watches: it never forces a
     verdict or a rollback);
  7. verifies the hash-chained audit log and prints a summary.

It takes about half a minute. Then the server keeps running so you can browse the
rollout, its verdicts and the audit trail in the dashboard; Ctrl-C stops it (--exit stops
right away). The flags, segment and plan are named demo-…, so --db with a real database
leaves your own data alone (it does add the demo's flags, plan, rollout and tokens).

Exit codes: 0 when the story played out as above; 1 when it did not (the step that went
differently is named) or the server could not start (e.g. the port is in use); 2 for
bad arguments.";

/// `wavegate demo`.
#[derive(Debug, Args)]
pub struct DemoArgs {
    /// Address to listen on (port 0 picks a free port; the bound address is printed).
    #[arg(long, default_value = "127.0.0.1:8470")]
    pub listen: String,
    /// Database: a SQLite file path or `postgres://…` (default: a fresh SQLite file in a
    /// temporary directory, removed when the demo ends).
    #[arg(long)]
    pub db: Option<String>,
    /// Exit once the rollback has happened and the audit log verified, instead of serving
    /// until Ctrl-C.
    #[arg(long)]
    pub exit: bool,
    /// Print one JSON object per step (`{"step": "promoted", "wave": 2, "percent": 25, …}`),
    /// ending with `{"step": "summary", …}`.
    #[arg(long)]
    pub json: bool,
    /// How often the controller steps the rollout (e.g. 500ms, 1s).
    #[arg(long, default_value = "500ms")]
    pub tick: String,
    /// Synthetic users per second.
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(20..=5000))]
    pub rate: u32,
    /// Seed of the synthetic traffic's randomness (same seed, same users and outcomes).
    #[arg(long, default_value_t = 7)]
    pub seed: u64,
}

/// `wavegate token …`.
#[derive(Debug, Subcommand)]
pub enum TokenCommand {
    /// Create a token; its secret is printed once.
    Create {
        /// admin, server-sdk (read flags, post events) or client-sdk (evaluate only).
        #[arg(long, value_parser = ["admin", "server-sdk", "client-sdk"])]
        kind: String,
        /// Environments it may act in, comma-separated, or `*` for all.
        #[arg(long = "env", value_delimiter = ',', required = true)]
        environments: Vec<String>,
        /// The principal it acts as (default: yours plus the kind). Naming another person
        /// needs a token with user administration (the bootstrap admin token has it).
        #[arg(long)]
        principal: Option<String>,
        /// Let the new admin token issue tokens for other people and grant this in turn (user
        /// administration; only a token that has it may grant it).
        #[arg(long)]
        user_admin: bool,
        /// A server-sdk token that evaluates only: it reads and evaluates flags but may not
        /// post events or Unleash metrics (which drive rollouts' guardrails). Give it to
        /// services that only need flags.
        #[arg(long)]
        evaluate_only: bool,
        /// When it stops working: a span from now (`30d`, `12h`) or an RFC 3339 time; at most
        /// 5 years away. Give people's tokens for their own scripts one. Default: never.
        #[arg(long)]
        expires: Option<String>,
        /// A role the admin token holds, repeatable: `viewer`, `editor`, `releaser`,
        /// `approver` or `admin`, in every environment of the token, or in some of them
        /// (`releaser=staging,dev`). Default: the roles you hold in those environments. You
        /// cannot grant a role you do not hold there.
        #[arg(long = "role", value_name = "ROLE[=ENV,…]")]
        roles: Vec<String>,
    },
    /// List tokens (never their secrets): an admin sees those within its scope, anyone else
    /// their own.
    List,
    /// Revoke a token by id (your own, or, with the admin role, one within your scope).
    Revoke {
        /// The token's id (`tok_…`, from `token list`).
        id: String,
    },
}

/// `wavegate flag …`.
#[derive(Debug, Subcommand)]
pub enum FlagCommand {
    /// List flags.
    List {
        /// Include archived flags.
        #[arg(long)]
        archived: bool,
        /// Only stale flags: their rollout completed and held clean for the plan's settle
        /// time, so they can be removed from code.
        #[arg(long)]
        stale: bool,
    },
    /// Show one flag's current version.
    Get {
        /// Flag key.
        key: String,
    },
    /// Apply a YAML file of segments and flags in one transaction (idempotent).
    Apply {
        /// The file (`-` for standard input).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Why (recorded in versions and the audit log).
        #[arg(long)]
        reason: Option<String>,
    },
    /// List a flag's versions.
    History {
        /// Flag key.
        key: String,
    },
    /// Show what changed between two versions.
    Diff {
        /// Flag key.
        key: String,
        /// The older version.
        #[arg(long)]
        from: i64,
        /// The newer version (default: current).
        #[arg(long)]
        to: Option<i64>,
    },
    /// Make a new version equal to an earlier one.
    Revert {
        /// Flag key.
        key: String,
        /// The version to restore.
        #[arg(long)]
        version: i64,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Archive a flag (kept, no longer served).
    Archive {
        /// Flag key.
        key: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Convert Unleash features into a wavegate flag file (local; no server needed).
    ///
    /// Reads a `/api/client/features` response (or an Unleash export with `features` and
    /// `segments`), writes the flag file to standard output or `--out`, and reports on standard
    /// error what could not be imported and why (or everything as JSON with `--json`).
    /// Review the file, then `wavegate flag apply -f FILE`.
    #[command(name = "import-unleash")]
    ImportUnleash {
        /// The Unleash features JSON (`-` for standard input), e.g. saved with
        /// `curl -H "Authorization: $UNLEASH_CLIENT_TOKEN" $UNLEASH_URL/api/client/features`.
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// The wavegate environment the features' on/off state goes to.
        #[arg(long = "env")]
        environment: String,
        /// Write the flag file here instead of standard output.
        #[arg(long)]
        out: Option<PathBuf>,
    },
}

/// `wavegate report …`.
#[derive(Debug, Subcommand)]
pub enum ReportCommand {
    /// DORA metrics from the rollouts that ended in a period: deployment frequency, lead time
    /// (release commit_time → 100%), change fail rate, recovery time, rework rate, each with
    /// its performance cluster (elite, high, medium, low).
    Dora {
        /// Start of the period: a span back from now (30d) or an RFC 3339 time.
        #[arg(long, default_value = "30d")]
        since: String,
        /// End of the period (RFC 3339; default now).
        #[arg(long)]
        until: Option<String>,
        /// Group by service or team.
        #[arg(long, default_value = "service", value_parser = ["service", "team"])]
        by: String,
        /// Only this environment (default: every one the token may read).
        #[arg(long = "env")]
        environment: Option<String>,
        /// markdown or html (`--json` for the numbers).
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "html"])]
        format: String,
    },
    /// A post-rollout report: timeline, decisions with their verdicts, feedback themes and
    /// retro prompts (Markdown; `--json` for the data).
    Rollout {
        /// The rollout's id.
        id: String,
        /// markdown or html (`--json` for the data).
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "html"])]
        format: String,
    },
    /// Adoption by cohort: of the users served a rollout's new variant in the last 30, 60 and
    /// 90 days, the share who did the plan's key task, by each cohort attribute (function,
    /// location, manager…), with lagging cohorts flagged. The plan declares what to track in
    /// its `adoption:` section. Without a rollout id, lists every tracked rollout.
    Adoption {
        /// The rollout's id (omit for a summary of every rollout being tracked).
        id: Option<String>,
        /// The window lagging cohorts are judged in, in days.
        #[arg(long, default_value = "30", value_parser = ["30", "60", "90"])]
        window: String,
        /// markdown or html (`--json` for the data); for one rollout.
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "html"])]
        format: String,
        /// Summary only: just this environment.
        #[arg(long = "env")]
        environment: Option<String>,
        /// Summary only: also rollouts no longer tracked (tracking period over, or rolled
        /// back or aborted).
        #[arg(long)]
        all: bool,
    },
    /// Pilot feedback about a release (`POST /api/v1/feedback`): counts and sentiment by
    /// category and cohort, recurring themes, lagging cohorts.
    Feedback {
        /// The release's name.
        #[arg(long)]
        release: String,
        /// markdown or html (`--json` for the data).
        #[arg(long, default_value = "markdown", value_parser = ["markdown", "html"])]
        format: String,
    },
}

/// `wavegate feedback …`.
#[derive(Debug, Subcommand)]
pub enum FeedbackCommand {
    /// Every item about a release, oldest first, with its status.
    List {
        /// The release (its name, or `name version`).
        #[arg(long)]
        release: String,
    },
    /// Close (or reopen) an item. Its note is what end users are told in "you said → we did".
    Close {
        /// The item's id (`feedback list` shows it).
        id: i64,
        /// fixed, wont_fix, or open (reopen).
        #[arg(long, value_parser = ["fixed", "wont_fix", "open"])]
        status: String,
        /// What was done (fixed) or why not (wont_fix); needed to close.
        #[arg(long)]
        note: Option<String>,
        /// What fixed it, as KIND:KEY:VERSION (`flag:checkout:7`, `plan:checkout-v2:3`).
        #[arg(long, value_name = "KIND:KEY:VERSION")]
        fixed_in: Option<String>,
    },
}

/// `wavegate release …`.
#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Store a release document (YAML: `name`, `members` with `plan`, `after`, `with`, and
    /// `on_failure`: pause_all, rollback_all or member); checked here first.
    Apply {
        /// The release file (`-` for standard input).
        #[arg(short = 'f', long)]
        file: PathBuf,
    },
    /// Start a release: its first members now (you are every member's requester), the rest as
    /// the members they come after complete.
    Start {
        /// The release's name.
        name: String,
    },
    /// The releases this token may see, with their state.
    List,
    /// A release's run: its state and each member's.
    Status {
        /// The release's name.
        name: String,
    },
    /// A release's report: one timeline of every member and the release (Markdown; `--json`
    /// for the data).
    Report {
        /// The release's name.
        name: String,
    },
}

/// `wavegate incident …`.
#[derive(Debug, Subcommand)]
pub enum IncidentCommand {
    /// Record an incident or support ticket (a retry with the same --id is stored once).
    Report {
        /// The service it is about (a plan's `release.service`).
        #[arg(long)]
        service: String,
        /// low, medium, high or critical.
        #[arg(long, value_parser = ["low", "medium", "high", "critical"])]
        severity: String,
        /// What happened.
        #[arg(long)]
        title: String,
        /// The user affected, when known (counted in the arm a live rollout serves them).
        #[arg(long)]
        user: Option<String>,
        /// Its id where it was raised (default: a new one).
        #[arg(long)]
        id: Option<String>,
        /// A support ticket rather than an incident.
        #[arg(long)]
        ticket: bool,
    },
    /// The latest incidents, newest first.
    List {
        /// Only this service's.
        #[arg(long)]
        service: Option<String>,
        /// At most this many (1 to 1000).
        #[arg(long, default_value_t = 50)]
        limit: i64,
    },
}

/// `wavegate freeze …`.
#[derive(Debug, Subcommand)]
pub enum FreezeCommand {
    /// Turn the freeze on (an admin token for all environments).
    On {
        /// Why (shown on every held rollout and in the audit log).
        #[arg(long)]
        reason: String,
    },
    /// Lift the freeze.
    Off {
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Show whether a freeze is on.
    Status,
}

/// `wavegate scorecard …`.
#[derive(Debug, Subcommand)]
pub enum ScorecardCommand {
    /// Show each item (green, red, waived or unset), who set it and the evidence, and the
    /// go/no-go (exit 0 either way; `--json` for scripts).
    Show {
        /// The plan's name.
        plan: String,
    },
    /// Set an item: `green` or `red` with evidence, or `waived` with a reason. The two
    /// automatic items (`dashboards-alerts`, `rollback-tested`) can only be waived.
    Set {
        /// The plan's name.
        plan: String,
        /// The item's key (`scorecard show` lists them).
        item: String,
        /// green, red or waived.
        #[arg(long, value_parser = ["green", "red", "waived"])]
        status: String,
        /// Evidence (a link, a note); required for `waived` (the reason).
        #[arg(long)]
        note: Option<String>,
    },
}

/// `wavegate plan …`.
#[derive(Debug, Subcommand)]
pub enum PlanCommand {
    /// Check a plan file for errors and anti-patterns (local; exit 1 on errors).
    Lint {
        /// The plan file.
        file: PathBuf,
        /// Requests per second reaching the flag, to forecast each wave's time to a verdict.
        #[arg(long)]
        traffic: Option<f64>,
        /// The controller's tick the forecast assumes (`serve --tick`; e.g. 10s, 500ms).
        #[arg(long, env = "WAVEGATE_TICK", default_value = "10s")]
        tick: String,
        /// text (default), sarif (SARIF 2.1.0, for code-review tools and GitHub code
        /// scanning) or github (workflow-command annotations on the pull request). `--json`
        /// gives the findings and the forecast as JSON.
        #[arg(long, default_value = "text", value_parser = ["text", "sarif", "github"])]
        format: String,
        /// Print the plan as resolved from the templates it `extends` (what `plan apply`
        /// stores) before the findings (text), or as `resolved` (`--json`).
        #[arg(long)]
        resolved: bool,
    },
    /// Store a plan (a new version when it changed; idempotent).
    Apply {
        /// The plan file (`-` for standard input).
        #[arg(short = 'f', long = "file")]
        file: PathBuf,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// List plans.
    List,
    /// Show a plan's current version.
    Get {
        /// Plan name.
        name: String,
    },
    /// Waive one vulnerability finding for a plan until a date (an approver of the plan who is
    /// not behind its change); with `--revoke`, withdraw the waiver.
    Waive {
        /// Plan name.
        name: String,
        /// The finding: its id or an alias (GHSA-…, CVE-…, PYSEC-…).
        finding: String,
        /// Why it is acceptable for this release.
        #[arg(long, required_unless_present = "revoke")]
        reason: Option<String>,
        /// When the waiver expires: a span from now (30d) or an RFC 3339 time, within a year.
        #[arg(long, default_value = "30d")]
        expires: String,
        /// Withdraw the waiver instead.
        #[arg(long, conflicts_with = "reason")]
        revoke: bool,
    },
    /// List a plan's vulnerability waivers (expired ones included).
    Waivers {
        /// Plan name.
        name: String,
    },
}

/// `wavegate drill`.
#[derive(Debug, Args)]
pub struct DrillArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The scenario file (traffic, baseline, faults, expectation).
    #[arg(long)]
    pub scenario: PathBuf,
    /// Store a passing or failing run as evidence for the matching stored plan version.
    #[arg(long)]
    pub record: bool,
    #[command(flatten)]
    pub remote: Remote,
}

/// `wavegate rollout …`.
#[derive(Debug, Subcommand)]
pub enum RolloutCommand {
    /// Start a rollout of a stored plan (you become its requester).
    Start {
        /// Plan name.
        plan: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
        /// The artifact being released: its SHA-256 must equal the plan's
        /// `release.artifact_sha256`, and a plan with `release.signed_by` needs its minisign
        /// signature (`FILE.minisig` beside it, or `--signature`). The file stays here: only
        /// its digests and the signature are sent.
        #[arg(long, value_name = "FILE")]
        artifact: Option<PathBuf>,
        /// The artifact's detached minisign signature (default: `<artifact>.minisig` when it
        /// exists).
        #[arg(long, value_name = "FILE", requires = "artifact")]
        signature: Option<PathBuf>,
        /// The release's SBOM (CycloneDX or SPDX JSON), for the plan's vulnerability checks:
        /// its components (name, version, package URL) are sent.
        #[arg(long, value_name = "FILE")]
        sbom: Option<PathBuf>,
        /// Start later, at this RFC 3339 time: the controller starts it when due, with every
        /// start check run then (`GET /api/v1/schedules` lists, `DELETE …/{plan}` cancels).
        #[arg(long)]
        at: Option<String>,
    },
    /// Show a rollout: wave, exposure, verdicts, signals.
    Status {
        /// Rollout id.
        id: String,
    },
    /// A live view of a rollout (wave, exposure bar, verdicts); ends when the rollout does.
    Watch {
        /// Rollout id.
        id: String,
        /// How often to refresh (e.g. 2s, 500ms).
        #[arg(long, default_value = "2s")]
        interval: String,
    },
    /// Reproduce every stored verdict from its stored inputs and show the numbers.
    Explain {
        /// Rollout id.
        id: String,
        /// Only this wave (1-based).
        #[arg(long)]
        wave: Option<i64>,
    },
    /// List rollouts.
    List {
        /// Only this state (running, paused, completed, rolled_back).
        #[arg(long)]
        state: Option<String>,
        /// Only this environment.
        #[arg(long = "env")]
        environment: Option<String>,
    },
    /// Approve the current wave's promotion (not as the requester).
    Approve {
        /// Rollout id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Call no-go: roll back.
    Reject {
        /// Rollout id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Hold the rollout where it is.
    Pause {
        /// Rollout id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Continue a paused rollout.
    Resume {
        /// Rollout id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Restore the flag version from before the rollout, now.
    Rollback {
        /// Rollout id.
        id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Which tokens contributed the rollout's events (exposures, outcomes, spans, Unleash
    /// metrics), by wave, arm and metric, and which of them the verdicts leave out.
    Contributions {
        /// Rollout id.
        id: String,
    },
    /// Leave a token's contributions out of the rollout's verdicts from the next decision on
    /// (e.g. a leaked server-sdk token posting forged events; revoke it too). Audited.
    Exclude {
        /// Rollout id.
        id: String,
        /// The token's id (`tok_…`; `rollout contributions` lists them), not its secret.
        token_id: String,
        /// Why (required).
        #[arg(long)]
        reason: String,
    },
    /// Count an excluded token's contributions again. Audited.
    Include {
        /// Rollout id.
        id: String,
        /// The token's id (`tok_…`).
        token_id: String,
        /// Why.
        #[arg(long)]
        reason: Option<String>,
    },
    /// Tick off one of the plan's `after_release` items (documentation updated, runbook
    /// updated from the retro…): a completed rollout is closed once every item is done.
    CloseItem {
        /// Rollout id.
        id: String,
        /// The item, as the plan words it.
        #[arg(long)]
        item: String,
        /// What was done.
        #[arg(long)]
        reason: Option<String>,
    },
    /// The plan's success targets judged now: on track, at risk, met, missed or unknown, with
    /// the estimate, its 95% interval and the numbers.
    Success {
        /// Rollout id.
        id: String,
    },
}

/// `wavegate env …`.
#[derive(Debug, Subcommand)]
pub enum EnvCommand {
    /// List environments in promotion order.
    List,
    /// Add an environment at the end of the promotion order.
    Create {
        /// Its name.
        name: String,
    },
    /// Protect an environment: its flags, segments and plans then change only through
    /// reviewed change requests (`wavegate change`) or a declared emergency.
    Protect {
        /// The environment.
        name: String,
        /// Approvals (distinct people, never the author) each change there needs.
        #[arg(long, default_value_t = 1)]
        approvals: u32,
    },
    /// Lift an environment's protection.
    Unprotect {
        /// The environment.
        name: String,
    },
}

/// `wavegate change …`.
#[derive(Debug, Subcommand)]
pub enum ChangeCommand {
    /// Propose a change for review: flags and segments from a flag file, plans from plan files.
    Propose {
        /// A flag file (`flags:` and `segments:`, as `flag apply` takes).
        #[arg(short = 'f', long = "file")]
        file: Option<PathBuf>,
        /// A plan file; repeat for more.
        #[arg(long = "plan")]
        plans: Vec<PathBuf>,
        /// What it does and why (reviewers read it).
        #[arg(long)]
        description: String,
        /// The change record's id in the change board's system (e.g. CHG-1042).
        #[arg(long)]
        record: Option<String>,
        /// Declare an emergency, with its reason: applied at once (releasers only), marked, and
        /// open until an approver records the post-incident review.
        #[arg(long, value_name = "REASON")]
        emergency: Option<String>,
    },
    /// List change requests (newest first).
    List {
        /// Only those in this state: open, approved, applied, rejected, withdrawn, or
        /// awaiting_review (emergencies without their review).
        #[arg(long)]
        state: Option<String>,
    },
    /// Show one change request.
    Show {
        /// Its id (`cr_…`).
        id: String,
    },
    /// Approve it (not your own).
    Approve {
        /// Its id.
        id: String,
    },
    /// Reject it, saying why.
    Reject {
        /// Its id.
        id: String,
        /// Why.
        #[arg(long)]
        reason: String,
    },
    /// Comment on it.
    Comment {
        /// Its id.
        id: String,
        /// The comment.
        #[arg(long)]
        text: String,
    },
    /// Apply it once approved (its author, or an admin); refused if anything it touches moved.
    Apply {
        /// Its id.
        id: String,
    },
    /// Withdraw your own change request.
    Withdraw {
        /// Its id.
        id: String,
    },
    /// Record an emergency change's post-incident review (an approver, not its author).
    Review {
        /// Its id.
        id: String,
        /// Where the post-mortem lives.
        #[arg(long)]
        link: String,
        /// What it concluded.
        #[arg(long)]
        summary: String,
    },
}

/// `wavegate eval`.
#[derive(Debug, Args)]
pub struct EvalArgs {
    /// Flag key.
    pub flag: String,
    /// Evaluation context as JSON, e.g. '{"targetingKey":"user-1","country":"NO"}'.
    #[arg(long, default_value = "{}")]
    pub context: String,
    /// Environment (needed when the token spans several).
    #[arg(long)]
    pub env: Option<String>,
    #[command(flatten)]
    pub remote: Remote,
}

/// `wavegate audit …`.
#[derive(Debug, Subcommand)]
pub enum AuditCommand {
    /// Check the whole hash chain; names the first entry that does not verify (exit 1).
    Verify {
        /// Read the database directly instead of asking a server: a SQLite file path or a
        /// `postgres://` URL (safe while a server runs on it).
        #[arg(long)]
        db: Option<String>,
        /// Also check the chain against the signed checkpoints in this directory (from
        /// `serve --checkpoint-dir`): a checkpoint of an entry the log no longer holds means
        /// it was cut short, one whose entry has another hash that it was rewritten (exit 1).
        /// Online, this needs an admin token for all environments.
        #[arg(long)]
        checkpoints: Option<std::path::PathBuf>,
        /// The key the checkpoints must be signed with (`ed25519:…`, as `serve` printed it);
        /// without it, each checkpoint is checked only against the key it names.
        #[arg(long, requires = "checkpoints")]
        public_key: Option<String>,
    },
    /// Make an ed25519 key for signing audit checkpoints (`serve --checkpoint-key`); prints
    /// its public key.
    Keygen {
        /// Where to write the private key (PKCS#8 PEM, readable by its owner only); an existing
        /// file is never overwritten.
        #[arg(long)]
        out: std::path::PathBuf,
    },
    /// List audit entries.
    List {
        /// Only entries after this sequence number.
        #[arg(long, default_value_t = 0)]
        after: i64,
        /// At most this many (1–1000).
        #[arg(long, default_value_t = 100)]
        limit: i64,
    },
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use crate::cli::Cli;

    /// clap's own consistency checks (duplicate names, bad defaults) over every subcommand.
    #[test]
    fn command_line_is_well_formed() {
        Cli::command().debug_assert();
    }
}

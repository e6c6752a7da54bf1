//! A notification target's settings, as the API takes them and the store keeps them, and
//! their validation.

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use serde_json::Value;
use wavegate_store::backup::Backup;

use crate::http::error::ApiError;

pub use wavegate_api::notify::{Audience, NotifyEvent as Event, PayloadFormat as Format};

/// Every event, in the order of a rollout's life.
pub const ALL_EVENTS: [Event; 12] = Event::ALL;

/// The event an audit action reports, if any.
pub fn event_of(action: &str) -> Option<Event> {
    Some(match action {
        "rollout.approval_requested" => Event::ApprovalRequested,
        "rollout.promote" => Event::Promoted,
        "rollout.pause" => Event::Paused,
        "rollout.rollback" => Event::RolledBack,
        "rollout.escalate" => Event::Escalated,
        "rollout.complete" => Event::Completed,
        "rollout.stale" => Event::Stale,
        "setting.propose" => Event::ChangeProposed,
        "setting.emergency" => Event::Emergency,
        "rollout.gated" => Event::Gated,
        "rollout.cohort_lagging" => Event::CohortLagging,
        _ => return None,
    })
}

/// An event's short human title.
pub fn title(event: Event) -> &'static str {
    match event {
        Event::ApprovalRequested => "Approval requested",
        Event::Promoted => "Wave promoted",
        Event::Paused => "Paused",
        Event::RolledBack => "Rolled back",
        Event::Escalated => "Escalated",
        Event::Completed => "Completed",
        Event::Stale => "Flag stale",
        Event::ChangeProposed => "Change request",
        Event::Emergency => "Emergency change",
        Event::Checkpoint => "Audit checkpoint",
        Event::Gated => "Held by a people gate",
        Event::CohortLagging => "Cohort lagging",
        Event::YouSaidWeDid => "You said, we did",
    }
}

/// A notification target's settings.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct TargetSpec {
    /// Who it speaks to.
    pub audience: Audience,
    /// The webhook URL (http or https).
    pub url: String,
    /// Payload shape.
    #[serde(default)]
    pub format: Format,
    /// Events it hears of (default: all).
    #[serde(default = "all_events")]
    pub events: Vec<Event>,
    /// Environments it hears of (default: `["*"]`, all).
    #[serde(default = "all_envs")]
    pub environments: Vec<String>,
    /// For the `champion` audience: the person it reaches; it hears only what is addressed to
    /// them (a lagging cohort whose champion or training owner they are).
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub person: Option<String>,
    /// minijinja templates replacing the audience's default wording, per event.
    #[serde(default)]
    pub templates: BTreeMap<Event, String>,
    /// A shared secret: when set, every request carries `X-Wavegate-Signature: sha256=<hex>`,
    /// the HMAC-SHA256 of `<X-Wavegate-Timestamp>.<body>` under it. Never shown or audited.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// Set only by restoring a backup taken without secrets
    /// ([`omit_secrets`]): the URL is only where it led and the
    /// secret is gone, so nothing is sent to it until it is set again. Refused in a `PUT`.
    #[serde(default, skip_serializing_if = "std::ops::Not::not")]
    pub withheld: bool,
}

fn all_events() -> Vec<Event> {
    ALL_EVENTS.to_vec()
}

fn all_envs() -> Vec<String> {
    vec!["*".into()]
}

/// Longest template accepted.
const MAX_TEMPLATE: usize = 8 * 1024;

impl TargetSpec {
    /// Checks the URL (also against the outbound `policy`, as far as it can be without
    /// resolving names), environments and templates; errors name the field.
    pub fn validate(
        &self,
        known_envs: &[String],
        policy: &crate::outbound::policy::Policy,
    ) -> Result<(), ApiError> {
        if self.withheld {
            return Err(ApiError::invalid(
                "withheld",
                "withheld is set only by restoring a backup without secrets; leave it out",
            ));
        }
        let url = reqwest::Url::parse(&self.url)
            .map_err(|e| ApiError::invalid("url", format!("not a URL: {e}")))?;
        if !matches!(url.scheme(), "http" | "https") || url.host_str().is_none() {
            return Err(ApiError::invalid("url", "must be an http:// or https:// URL with a host"));
        }
        if let Some(host) = url.host_str() {
            policy.check_host(host).map_err(|r| ApiError::invalid("url", r.to_string()))?;
        }
        if self.events.is_empty() {
            return Err(ApiError::invalid("events", "name at least one event"));
        }
        match (self.audience, self.person.as_deref().map(str::trim)) {
            (Audience::Champion, None | Some("")) => {
                return Err(ApiError::invalid(
                    "person",
                    "a champion target reaches one person: name them as the plan's stakeholders do",
                ));
            }
            (Audience::Champion, Some(p)) if p.len() > 128 => {
                return Err(ApiError::invalid("person", "at most 128 characters"));
            }
            (Audience::Champion, _) | (_, None) => {}
            (_, Some(_)) => {
                return Err(ApiError::invalid(
                    "person",
                    "only a champion target names a person; other audiences hear every rollout",
                ));
            }
        }
        if self.environments.is_empty() {
            return Err(ApiError::invalid("environments", "name at least one, or \"*\""));
        }
        for (i, env) in self.environments.iter().enumerate() {
            if env != "*" && !known_envs.contains(env) {
                return Err(ApiError::invalid(
                    format!("environments[{i}]"),
                    format!("unknown environment {env:?} (known: {})", known_envs.join(", ")),
                ));
            }
        }
        if self.format == Format::Pagerduty && self.secret.is_none() {
            return Err(ApiError::invalid(
                "secret",
                "a pagerduty target needs its integration's routing key as its secret",
            ));
        }
        if let Some(secret) = &self.secret
            && secret.len() < 16
        {
            return Err(ApiError::invalid(
                "secret",
                "use a signing secret of at least 16 characters",
            ));
        }
        for (event, text) in &self.templates {
            let field = format!("templates.{}", event.as_str());
            if text.len() > MAX_TEMPLATE {
                return Err(ApiError::invalid(field, format!("longer than {MAX_TEMPLATE} bytes")));
            }
            crate::runtime::notify::render::check(text).map_err(|e| ApiError::invalid(field, e))?;
        }
        Ok(())
    }

    /// Whether it hears of `event` in `environment` (a champion target: only what is addressed
    /// to its person, see [`TargetSpec::addressed`]).
    pub fn wants(&self, event: Event, environment: &str) -> bool {
        self.events.contains(&event)
            && self.environments.iter().any(|e| e == "*" || e == environment)
    }

    /// Whether an entry addressed to `notify` (people's names; None: to nobody in particular)
    /// reaches this target: a champion target only when its person is among them.
    pub fn addressed(&self, notify: Option<&[serde_json::Value]>) -> bool {
        match (&self.person, self.audience) {
            (Some(p), Audience::Champion) => {
                notify.is_some_and(|n| n.iter().any(|v| v.as_str() == Some(p.as_str())))
            }
            (_, Audience::Champion) => false,
            _ => true,
        }
    }

    /// What the audit log records of it: everything but the URL's path and query, which
    /// often carry a secret (Slack's webhook URLs do).
    pub fn audit_details(&self) -> serde_json::Value {
        serde_json::json!({
            "audience": self.audience,
            "url": redact_url(&self.url),
            "format": self.format,
            "events": self.events,
            "environments": self.environments,
            "person": self.person,
            "templates": self.templates.keys().collect::<Vec<_>>(),
            "signed": self.secret.is_some(),
        })
    }
}

/// `https://hooks.slack.com/services/T0/B0/secret` → `https://hooks.slack.com/…`
/// ([`wavegate_core::text::url_origin`]).
pub fn redact_url(url: &str) -> String {
    wavegate_core::text::url_origin(url)
}

/// Takes the secrets out of `backup` (one taken without `--include-secrets` / `?secrets=true`):
/// each notification target loses its signing secret, and its URL keeps only where it leads
/// ([`redact_url`]), with `withheld: true`, so that once restored it sends nothing until it is
/// set again. Returns how many targets were withheld.
pub fn omit_secrets(backup: &mut Backup) -> usize {
    backup.secrets_omitted = true;
    let Some(column) = Backup::column("notify_targets", "spec") else { return 0 };
    let Some(rows) = backup.tables.get_mut("notify_targets") else { return 0 };
    let mut withheld = 0;
    for cell in rows.iter_mut().filter_map(|row| row.get_mut(column)) {
        let Some(Ok(Value::Object(mut spec))) = cell.as_str().map(serde_json::from_str::<Value>)
        else {
            // Unreadable: keep nothing of it rather than something secret.
            *cell = Value::String("{}".into());
            continue;
        };
        spec.remove("secret");
        if let Some(url) = spec.get("url").and_then(Value::as_str) {
            spec.insert("url".into(), Value::String(redact_url(url)));
        }
        spec.insert("withheld".into(), Value::Bool(true));
        *cell = Value::String(Value::Object(spec).to_string());
        withheld += 1;
    }
    withheld
}

/// The names of `backup`'s notification targets that restore without their URL and secret.
pub fn withheld_targets(backup: &Backup) -> Vec<String> {
    let (Some(name), Some(spec)) =
        (Backup::column("notify_targets", "name"), Backup::column("notify_targets", "spec"))
    else {
        return Vec::new();
    };
    let withheld = |row: &[Value]| {
        let spec = row.get(spec).and_then(Value::as_str);
        spec.and_then(|t| serde_json::from_str::<Value>(t).ok())
            .is_some_and(|spec| spec["withheld"] == true)
    };
    let rows = backup.rows("notify_targets").iter().filter(|row| withheld(row));
    rows.filter_map(|row| row.get(name).and_then(Value::as_str).map(str::to_owned)).collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::outbound::policy::Policy;

    fn spec(json: serde_json::Value) -> Result<TargetSpec, serde_json::Error> {
        serde_json::from_value(json)
    }

    #[test]
    fn a_backup_without_secrets_keeps_no_secret_url_or_unreadable_spec() {
        let target = |name: &str, spec: &str| {
            let at = serde_json::json!("2026-01-01T00:00:00.000Z");
            vec![name.into(), spec.into(), 1.into(), at.clone(), at]
        };
        let spec =
            r#"{"audience":"on-call","url":"https://hooks.example/T0/s3cret","secret":"k3y"}"#;
        let rows = vec![target("oncall", spec), target("broken", "not json: s3cret")];
        let mut backup = Backup {
            format: wavegate_store::backup::FORMAT.into(),
            version: wavegate_store::backup::VERSION,
            created_at: "2026-01-01T00:00:00.000Z".into(),
            source: "sqlite".into(),
            secrets_omitted: false,
            tables: [("notify_targets".to_owned(), rows)].into_iter().collect(),
        };
        assert_eq!(omit_secrets(&mut backup), 1, "the unreadable one is emptied, not withheld");
        assert!(backup.secrets_omitted);
        let text = serde_json::to_string(&backup.tables).unwrap();
        assert!(!text.contains("s3cret") && !text.contains("k3y"), "{text}");
        let kept: TargetSpec =
            serde_json::from_str(backup.rows("notify_targets")[0][1].as_str().unwrap()).unwrap();
        assert_eq!(
            (kept.url.as_str(), kept.secret, kept.withheld),
            ("https://hooks.example/…", None, true)
        );
        assert_eq!(backup.rows("notify_targets")[1][1], "{}");
        assert_eq!(withheld_targets(&backup), ["oncall"]);
    }

    #[test]
    fn defaults_hear_everything_everywhere() {
        let s = spec(serde_json::json!({"audience": "on-call", "url": "http://x/hook"})).unwrap();
        assert_eq!(s.format, Format::Json);
        assert!(ALL_EVENTS.iter().all(|e| s.wants(*e, "prod")));
        s.validate(&["prod".into()], &Policy::default()).unwrap();
    }

    #[test]
    fn bad_settings_are_refused_with_their_field() {
        let envs = ["prod".to_owned()];
        let s = spec(serde_json::json!({"audience": "manager", "url": "ftp://x/"})).unwrap();
        assert_eq!(
            s.validate(&envs, &Policy::default()).unwrap_err().field.as_deref(),
            Some("url")
        );
        let s = spec(serde_json::json!({"audience": "manager", "url": "http://x/", "environments": ["prod", "qa"]})).unwrap();
        assert_eq!(
            s.validate(&envs, &Policy::default()).unwrap_err().field.as_deref(),
            Some("environments[1]")
        );
        let s = spec(serde_json::json!({"audience": "manager", "url": "http://x/", "templates": {"paused": "{{ rollout.id"}})).unwrap();
        assert_eq!(
            s.validate(&envs, &Policy::default()).unwrap_err().field.as_deref(),
            Some("templates.paused")
        );
        let s =
            spec(serde_json::json!({"audience": "manager", "url": "http://[::ffff:127.0.0.1]:9/"}))
                .unwrap();
        let e = s.validate(&envs, &Policy::default()).unwrap_err();
        assert_eq!(e.field.as_deref(), Some("url"));
        assert!(e.message.contains("127.0.0.1, a loopback address"), "{}", e.message);
        let allowed = Policy::parse(["127.0.0.1"]).unwrap();
        s.validate(&envs, &allowed).unwrap();
        assert!(spec(serde_json::json!({"audience": "ceo", "url": "http://x/"})).is_err());
        assert!(spec(serde_json::json!({"audience": "manager", "url": "http://x/", "events": ["exploded"]})).is_err());
    }

    #[test]
    fn webhook_secrets_stay_out_of_the_audit_log() {
        assert_eq!(
            redact_url("https://hooks.slack.com/services/T0/B0/s3cret"),
            "https://hooks.slack.com/…"
        );
        assert_eq!(redact_url("http://127.0.0.1:9000/x?token=1"), "http://127.0.0.1:9000/…");
    }
}

//! Rendering a notification: the rollout's facts as a template context, the default wording
//! per audience and event, and the payload shapes (plain JSON or Slack-compatible).

use minijinja::{Environment, UndefinedBehavior};
use serde_json::{Value, json};
use wavegate_rollout::machine::Rollout;

use super::spec::{Audience, Event, Format, TargetSpec, title};

/// Checks that `text` compiles as a template.
pub fn check(text: &str) -> Result<(), String> {
    let mut env = environment();
    env.add_template("t", text).map(|_| ()).map_err(|e| format!("template does not compile: {e}"))
}

fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    // Missing facts render as empty, never as an error at send time.
    env.set_undefined_behavior(UndefinedBehavior::Chainable);
    env
}

/// The template context for one audit entry about `rollout`.
///
/// `entry` is the audit entry as [`crate::runtime::feed::audit_json`] shapes it; `url` links to the
/// rollout's page when the server knows its public URL.
pub fn context(
    event: Event,
    audience: Audience,
    entry: &Value,
    r: &Rollout,
    url: Option<&str>,
) -> Value {
    let details = &entry["details"];
    let wave = details["to_wave"]
        .as_u64()
        .or_else(|| details["wave"].as_u64())
        .unwrap_or(r.wave as u64 + 1);
    let exposure = details["exposure"].as_str().map(str::to_owned).unwrap_or_else(|| {
        let i = usize::try_from(wave.saturating_sub(1)).unwrap_or(0);
        let w = r.plan.waves.get(i).or(r.plan.waves.last());
        w.map(|w| w.exposure.to_string()).unwrap_or_default()
    });
    let reason =
        entry["reason"].as_str().or_else(|| details["reason"].as_str()).map(str::to_owned).or_else(
            || match &r.state {
                wavegate_rollout::machine::State::Paused { reason }
                | wavegate_rollout::machine::State::RolledBack { reason }
                | wavegate_rollout::machine::State::Aborted { reason } => Some(reason.clone()),
                _ => None,
            },
        );
    let runbook = details["guardrail"]
        .as_str()
        .or_else(|| details["check"].as_str())
        .and_then(|g| r.plan.runbook.get(g))
        .cloned();
    let release = &r.plan.release;
    json!({
        "event": event.as_str(),
        "title": title(event),
        "audience": audience.as_str(),
        "actor": entry["actor"],
        "at": entry["at"],
        "reason": reason,
        "details": details,
        "url": url,
        "runbook": runbook,
        "environment": r.plan.environment,
        "wave": wave,
        "waves": r.plan.waves.len(),
        "exposure": exposure,
        "release": release.label(),
        "release_name": release.name,
        "approvers": r.plan.owners.approvers.join(", "),
        "rollout": {
            "id": r.id,
            "plan": r.plan.name,
            "flag": r.plan.flag,
            "environment": r.plan.environment,
            "state": r.state.name(),
            "wave": r.wave + 1,
            "waves": r.plan.waves.len(),
            "requester": r.requester,
            "pre_rollout_version": r.pre_rollout_version,
            "release": {"name": release.name, "version": release.version, "risk": release.risk},
            "team": release.team,
            "service": release.service,
        },
    })
}

/// The template context for an audit entry about change request `cr` (its events:
/// `change_proposed`, `emergency`).
pub fn change_context(
    event: Event,
    audience: Audience,
    entry: &Value,
    cr: &wavegate_api::changes::ChangeRequest,
) -> Value {
    let reason = cr.emergency.as_ref().map(|e| e.reason.clone());
    json!({
        "event": event.as_str(),
        "title": title(event),
        "audience": audience.as_str(),
        "actor": entry["actor"],
        "at": entry["at"],
        "reason": reason,
        "details": entry["details"],
        "environment": cr.environments.join(", "),
        "change": cr,
    })
}

/// The default wording of `event` for `audience`. An empty result means "nothing to say to
/// this audience" (end users hear nothing of approvals), and nothing is sent.
pub fn default_template(audience: Audience, event: Event) -> &'static str {
    use Audience::*;
    use Event::*;
    match (audience, event) {
        (Executive, ApprovalRequested) => {
            "{{ release }} is waiting for a go decision before reaching {{ exposure }} of {{ environment }} users."
        }
        (Executive, Promoted) => {
            "{{ release }} now reaches {{ exposure }} of {{ environment }} users (wave {{ wave }} of {{ waves }}); its health checks are green."
        }
        (Executive, Paused) => {
            "{{ release }} is on hold at {{ exposure }} of {{ environment }} users while the team looks into it."
        }
        (Executive, RolledBack) => {
            "{{ release }} was withdrawn in {{ environment }} after a health check failed; users are back on the previous experience."
        }
        (Executive, Escalated) => {
            "{{ release }} needs attention in {{ environment }}; the release team has been alerted."
        }
        (Executive, Completed) => "{{ release }} is live for everyone in {{ environment }}.",
        (Manager, ApprovalRequested) => {
            "Approval needed: {{ release }} ({{ rollout.id }}) waits at wave {{ wave }}/{{ waves }} ({{ exposure }}) in {{ environment }}.{% if approvers %} Approvers: {{ approvers }}.{% endif %}{% if url %} Review: {{ url }}{% endif %}"
        }
        (Manager, Promoted) => {
            "{{ release }} ({{ rollout.id }}) promoted to wave {{ wave }}/{{ waves }} ({{ exposure }}) in {{ environment }}{% if details.approvals %} after approval by {{ details.approvals|join(', ') }}{% else %} by {{ actor }}{% endif %}.{% if url %} {{ url }}{% endif %}"
        }
        (Manager, Paused) => {
            "{{ release }} ({{ rollout.id }}) paused at wave {{ wave }} ({{ exposure }}) in {{ environment }} by {{ actor }}{% if reason %}: {{ reason }}{% endif %}. Resume or roll back when ready.{% if url %} {{ url }}{% endif %}"
        }
        (Manager, RolledBack) => {
            "{{ release }} ({{ rollout.id }}) rolled back in {{ environment }} at wave {{ wave }} ({{ exposure }}) by {{ actor }}{% if reason %}: {{ reason }}{% endif %}. The pre-rollout flag version is restored.{% if url %} {{ url }}{% endif %}"
        }
        (Manager, Escalated) => {
            "{{ release }} ({{ rollout.id }}) escalated in {{ environment }}{% if reason %}: {{ reason }}{% endif %}.{% if url %} {{ url }}{% endif %}"
        }
        (Manager, Completed) => {
            "{{ release }} ({{ rollout.id }}) completed in {{ environment }}: 100% after {{ waves }} waves.{% if url %} {{ url }}{% endif %}"
        }
        (EndUser, Promoted) => {
            "Good news: {{ release_name }} is rolling out, so some of you may see it already."
        }
        (EndUser, RolledBack) => {
            "We have switched {{ release_name }} off for now while we fix an issue. There is nothing you need to do."
        }
        (EndUser, Completed) => "{{ release_name }} is now available to everyone.",
        (EndUser, ApprovalRequested | Paused | Escalated | Stale) => "",
        (Executive, Stale) => "",
        (Manager, Stale) => {
            "Clean-up: flag {{ rollout.flag }} ({{ release }}) has served everyone in {{ environment }} through its settle time; remove it from code.{% if url %} {{ url }}{% endif %}"
        }
        (OnCall, Stale) => {
            "[{{ environment }}] flag {{ rollout.flag }} is stale after {{ rollout.id }}: remove it from code."
        }
        (OnCall, ApprovalRequested) => {
            "[{{ environment }}] {{ rollout.id }} {{ rollout.plan }} awaits approval at wave {{ wave }}/{{ waves }} ({{ exposure }}).{% if url %} {{ url }}{% endif %}"
        }
        (OnCall, Promoted) => {
            "[{{ environment }}] {{ rollout.id }} {{ rollout.plan }}: wave {{ wave }}/{{ waves }} at {{ exposure }} (flag {{ rollout.flag }})."
        }
        (OnCall, Paused) => {
            "[{{ environment }}] PAUSED {{ rollout.id }} {{ rollout.plan }} at wave {{ wave }} ({{ exposure }}) by {{ actor }}{% if reason %}: {{ reason }}{% endif %}.{% if runbook %} Runbook: {{ runbook }}{% endif %}{% if url %} {{ url }}{% endif %}"
        }
        (OnCall, RolledBack) => {
            "[{{ environment }}] ROLLED BACK {{ rollout.id }} {{ rollout.plan }} at wave {{ wave }} ({{ exposure }}) by {{ actor }}{% if reason %}: {{ reason }}{% endif %}. Flag {{ rollout.flag }} restored to version {{ rollout.pre_rollout_version }}.{% if runbook %} Runbook: {{ runbook }}{% endif %}{% if url %} {{ url }}{% endif %}"
        }
        (OnCall, Escalated) => {
            "[{{ environment }}] ESCALATED {{ rollout.id }} {{ rollout.plan }}{% if reason %}: {{ reason }}{% endif %}.{% if runbook %} Runbook: {{ runbook }}{% endif %}{% if url %} {{ url }}{% endif %}"
        }
        (OnCall, Completed) => {
            "[{{ environment }}] {{ rollout.id }} {{ rollout.plan }} completed at 100%."
        }
        (Manager | OnCall, Checkpoint) => {
            "Audit checkpoint: entry {{ checkpoint.seq }} (head {{ checkpoint.hash }}) signed at {{ checkpoint.at }} by {{ checkpoint.key }}. Keep it: `wavegate audit verify --checkpoints` checks the log against it."
        }
        (Executive | EndUser, Checkpoint) => "",
        (Manager, ChangeProposed) => {
            "Review needed: change request {{ change.id }} by {{ actor }} for {{ environment }}: {{ change.description }} ({{ change.required_approvals }} approval(s){% if change.record %}, record {{ change.record }}{% endif %}{% if change.touches_runbook %}; it changes a runbook or checks{% endif %}). `wavegate change show {{ change.id }}`"
        }
        (OnCall, ChangeProposed) => {
            "[{{ environment }}] change request {{ change.id }} by {{ actor }} awaits review: {{ change.description }}"
        }
        (Executive | EndUser, ChangeProposed) => "",
        (Executive, Emergency) => {
            "An emergency change was made in {{ environment }} without prior review: {{ reason }}. A post-incident review will follow."
        }
        (Manager, Emergency) => {
            "EMERGENCY change {{ change.id }} applied in {{ environment }} by {{ actor }}: {{ reason }}. An approver must record its post-incident review (`wavegate change review {{ change.id }}`)."
        }
        (OnCall, Emergency) => {
            "[{{ environment }}] EMERGENCY change {{ change.id }} by {{ actor }}: {{ reason }} ({{ change.description }}). Post-incident review due."
        }
        (EndUser, Emergency) => "",
        (Executive, Gated) => {
            "{{ release }} holds at {{ exposure }} of {{ environment }} users until adoption and feedback meet the plan's bar."
        }
        (Manager, Gated) => {
            "{{ release }} ({{ rollout.id }}) is held at wave {{ wave }}/{{ waves }} ({{ exposure }}) in {{ environment }} by a people gate{% if reason %}: {{ reason }}{% endif %}.{% if url %} {{ url }}{% endif %}"
        }
        (OnCall, Gated) => {
            "[{{ environment }}] {{ rollout.id }} {{ rollout.plan }} gated at wave {{ wave }} ({{ exposure }}){% if reason %}: {{ reason }}{% endif %}."
        }
        (Manager, CohortLagging) => {
            "Adoption lags for {{ release }} ({{ rollout.id }}) in {{ environment }}: {{ details.message }}.{% if details.champion %} Champion: {{ details.champion }}.{% endif %}{% if details.training_owner %} Training owner: {{ details.training_owner }}.{% endif %}{% if url %} {{ url }}{% endif %}"
        }
        (Champion, CohortLagging) => {
            "{{ release_name }} in {{ environment }}: your cohort {{ details.cohort.attribute }} = {{ details.cohort.value }} lags. {{ details.message }}.{% if details.enablement %} Enablement: {{ details.enablement }}{% endif %}{% if url %} {{ url }}{% endif %}"
        }
        (EndUser, YouSaidWeDid) => {
            "You said, we did: {{ release_name }}{% for item in fixed %}\n- You said: {{ item.text }} — we {{ item.resolution }}{% endfor %}"
        }
        (Manager, YouSaidWeDid) => {
            "{{ release }} ({{ rollout.id }}): {{ fixed|length }} piece(s) of feedback fixed so far, told to end users.{% for item in fixed %}\n- {{ item.text }} → {{ item.resolution }}{% if item.fixed_in %} ({{ item.fixed_in }}){% endif %}{% endfor %}"
        }
        (EndUser | Executive | OnCall, CohortLagging)
        | (EndUser, Gated)
        | (Executive | OnCall, YouSaidWeDid) => "",
        // A champion hears only of the cohorts addressed to them.
        (Champion, _) => "",
    }
}

/// Renders the text of `event` for `target` (its own template if it has one).
///
/// For Slack-format targets every fact is escaped for Slack's `mrkdwn` first
/// ([`slack_escaped`]): a reason or plan field cannot ping `<!here>` or `<!channel>` or write
/// a `<url|link>`, while the template's own text (the operator's) is sent as written.
pub fn text(target: &TargetSpec, event: Event, ctx: &Value) -> Result<String, String> {
    let source = target
        .templates
        .get(&event)
        .map_or_else(|| default_template(target.audience, event), String::as_str);
    let env = environment();
    let escaped;
    let ctx = match target.format {
        Format::Slack => {
            escaped = escaped_with(ctx, &wavegate_core::text::escape_slack);
            &escaped
        }
        // Teams renders Markdown in its text blocks: a fact cannot make a link or a heading.
        Format::Teams => {
            escaped = escaped_with(ctx, &wavegate_core::text::escape_markdown);
            &escaped
        }
        Format::Json | Format::Pagerduty => ctx,
    };
    let rendered =
        env.render_str(source, ctx).map_err(|e| format!("template for {}: {e}", event.as_str()))?;
    Ok(rendered.trim().to_owned())
}

/// `ctx` with every string in it (keys aside) escaped for Slack
/// ([`wavegate_core::text::escape_slack`]).
pub fn slack_escaped(ctx: &Value) -> Value {
    escaped_with(ctx, &wavegate_core::text::escape_slack)
}

/// `ctx` with every string in it (keys aside) passed through `escape`.
fn escaped_with(ctx: &Value, escape: &dyn Fn(&str) -> String) -> Value {
    match ctx {
        Value::String(s) => Value::String(escape(s)),
        Value::Array(items) => {
            Value::Array(items.iter().map(|v| escaped_with(v, escape)).collect())
        }
        Value::Object(o) => {
            Value::Object(o.iter().map(|(k, v)| (k.clone(), escaped_with(v, escape))).collect())
        }
        other => other.clone(),
    }
}

/// What a PagerDuty Events v2 target does with `event`: `(event_action, severity)`, or None when
/// it is not sent (a stop condition triggers an alert; completion or a later promotion resolves
/// it; the rest would only page people for news).
pub fn pagerduty_action(event: Event) -> Option<(&'static str, &'static str)> {
    Some(match event {
        Event::RolledBack => ("trigger", "critical"),
        Event::Escalated | Event::Emergency => ("trigger", "error"),
        Event::Paused | Event::Gated => ("trigger", "warning"),
        Event::Completed | Event::Promoted => ("resolve", "info"),
        _ => return None,
    })
}

/// The body to POST for `text` in `target`'s format.
pub fn payload(
    target: &TargetSpec,
    event: Event,
    text: &str,
    ctx: &Value,
    audit_seq: i64,
) -> Value {
    match target.format {
        // A checkpoint is sent whole, so the receiver can keep it for `audit verify`.
        Format::Json if event == Event::Checkpoint => json!({
            "event": event.as_str(),
            "title": title(event),
            "audience": target.audience.as_str(),
            "text": text,
            "checkpoint": ctx["checkpoint"],
            "audit_seq": audit_seq,
            "at": ctx["checkpoint"]["at"],
        }),
        Format::Json => json!({
            "event": event.as_str(),
            "title": title(event),
            "audience": target.audience.as_str(),
            "text": text,
            "rollout": ctx["rollout"],
            "environment": ctx["environment"],
            "wave": ctx["wave"],
            "exposure": ctx["exposure"],
            "reason": ctx["reason"],
            "actor": ctx["actor"],
            "url": ctx["url"],
            "audit_seq": audit_seq,
            "at": ctx["at"],
        }),
        Format::Teams => {
            let mut facts = vec![json!({"title": "Environment", "value": ctx["environment"]})];
            if ctx["rollout"].is_object() {
                facts.push(json!({"title": "Wave", "value": format!("{} of {}", ctx["wave"], ctx["waves"])}));
                facts.push(json!({"title": "Exposure", "value": ctx["exposure"]}));
                facts.push(json!({"title": "Rollout", "value": ctx["rollout"]["id"]}));
            }
            let mut card = json!({
                "$schema": "http://adaptivecards.io/schemas/adaptive-card.json",
                "type": "AdaptiveCard",
                "version": "1.4",
                "body": [
                    {"type": "TextBlock", "size": "Medium", "weight": "Bolder", "wrap": true,
                     "text": format!("{} · {}", title(event), ctx["release"].as_str().unwrap_or(""))},
                    {"type": "TextBlock", "text": text, "wrap": true},
                    {"type": "FactSet", "facts": facts},
                ],
            });
            if let Some(url) = ctx["url"].as_str() {
                card["actions"] =
                    json!([{"type": "Action.OpenUrl", "title": "Open in wavegate", "url": url}]);
            }
            json!({"type": "message", "attachments": [{
                "contentType": "application/vnd.microsoft.card.adaptive",
                "contentUrl": null,
                "content": card,
            }]})
        }
        Format::Pagerduty => {
            let (action, severity) = pagerduty_action(event).unwrap_or(("trigger", "info"));
            let key = ctx["rollout"]["id"]
                .as_str()
                .or_else(|| ctx["change"]["id"].as_str())
                .unwrap_or("wavegate");
            let mut body = json!({
                "event_action": action,
                "dedup_key": format!("wavegate-{key}"),
            });
            if action == "trigger" {
                let summary: String = text.chars().take(1024).collect();
                body["payload"] = json!({
                    "summary": summary,
                    "source": "wavegate",
                    "severity": severity,
                    "component": ctx["rollout"]["flag"],
                    "group": ctx["rollout"]["service"],
                    "class": event.as_str(),
                    "custom_details": {"environment": ctx["environment"], "wave": ctx["wave"],
                        "exposure": ctx["exposure"], "reason": ctx["reason"], "actor": ctx["actor"],
                        "rollout": ctx["rollout"]["id"], "audit_seq": audit_seq},
                });
                if let Some(url) = ctx["url"].as_str() {
                    body["links"] = json!([{"href": url, "text": "Open in wavegate"}]);
                }
            }
            body
        }
        Format::Slack => {
            // `text` was rendered from escaped facts ([`text`]); the facts used here are
            // escaped the same way.
            let ctx = slack_escaped(ctx);
            let mut blocks = vec![json!({
                "type": "section",
                "text": {"type": "mrkdwn", "text": format!("*{}* · {}\n{}", title(event), ctx["release"].as_str().unwrap_or(""), text)},
            })];
            if let Some(url) = ctx["url"].as_str() {
                blocks.push(json!({
                    "type": "context",
                    "elements": [{"type": "mrkdwn", "text": format!("<{url}|Open in wavegate> · audit #{audit_seq}")}],
                }));
            }
            json!({"text": text, "blocks": blocks})
        }
    }
}

//! Flag files and rollout plans: the showcase file most API tests evaluate, the Unleash
//! comparison file, the boolean flags a rollout starts from, and a [`Plan`] builder. The
//! larger fixtures are YAML files in `fixtures/`, so they read (and diff) as the flag files
//! they are.

use std::fmt;

/// The `new-checkout` entry of a `flags:` map, up to and including its prod rules: the
/// `beta-testers` segment gets `"on"`, then 10% of Norway and Sweden. A file goes on with the
/// rule's stickiness or the flag's other environments.
pub const NEW_CHECKOUT: &str = include_str!("../fixtures/new-checkout.yaml");

/// The showcase flag file: a segment (`beta-testers`: emails at example.com), `new-checkout`
/// (segment rule, then a 10% split of NO/SE in prod; disabled in dev), `banner-color` (a
/// string, red for `plan: vip`), `price-factor` (a float), `limits` (an object) and
/// `strict-split` (a 50/50 split on `targetingKey` only).
pub const FLAGS: &str = concat!(
    r##"
segments:
  beta-testers:
    constraints:
      - { attribute: email, op: ends_with, values: ["@example.com"] }
flags:
"##,
    include_str!("../fixtures/new-checkout.yaml"),
    r##"      dev:
        enabled: false
  banner-color:
    variants: { blue: "#00f", red: "#f00" }
    default: blue
    environments:
      prod: { enabled: true, rules: [ { name: vip, constraints: [{ attribute: plan, op: eq, values: [vip] }], serve: red } ] }
  price-factor:
    variants: { base: 1.0, sale: 0.5 }
    default: base
    environments: { prod: { enabled: true } }
  limits:
    variants: { default: { max: 10, tier: free } }
    default: default
    environments: { prod: { enabled: true } }
  strict-split:
    variants: { a: "A", b: "B" }
    default: a
    environments:
      prod: { enabled: true, rules: [ { split: { a: 50%, b: 50% }, stickiness: targetingKey } ] }
"##
);

/// What wavegate and the Unleash engines must answer alike: a 10% rollout behind a rule serving
/// `"off"`, a three-way split with JSON payloads, two constraints, a segment of listed keys or
/// plans, and a flag with that one as its prerequisite.
pub const UNLEASH_FLAGS: &str = include_str!("../fixtures/unleash.yaml");

/// Flags on segments of listed users: `vip` (prod) on `pilots`, and `crew` on a segment that only
/// dev uses at first ([`crew_in_prod`] moves it into prod too).
pub const SEGMENT_MEMBERS: &str = include_str!("../fixtures/segment-members.yaml");

/// [`SEGMENT_MEMBERS`] with `crew` using its segment in prod as well: a flag that starts using a
/// segment of listed users a prod-scoped reader had no members of.
pub fn crew_in_prod() -> String {
    let moved = SEGMENT_MEMBERS.replace(
        "      prod: { enabled: true }\n      dev:",
        "      prod: { enabled: true, rules: [ { segment: crew, serve: \"on\" } ] }\n      dev:",
    );
    assert_ne!(moved, SEGMENT_MEMBERS, "the fixture's crew flag moved");
    moved
}

/// A flag whose answer depends on the clock: `launch`, on in prod since 2026-06-01 (a date rule
/// on `currentTime` whose date has passed).
pub const LAUNCH: &str = "flags:\n  launch: { variants: { \"on\": true, \"off\": false }, default: \"off\", environments: { prod: { enabled: true, rules: [ { constraints: [{ attribute: currentTime, op: date_after, values: [\"2026-06-01T00:00:00Z\"] }], serve: \"on\" } ] } } }\n";

/// A flag file of boolean flags (`"on"`/`"off"`, default `"off"`), each enabled in prod with
/// no rules: what a rollout plan starts from.
pub fn on_off(keys: &[&str]) -> String {
    let flags: String = keys.iter().map(|key| on_off_flag(key, &[])).collect();
    format!("flags:\n{flags}")
}

/// One boolean flag of a `flags:` map (`"on"`/`"off"`, default `"off"`), enabled in prod with
/// `rules`, each a flow mapping like `{ split: { "on": 10%, "off": 90% } }`.
pub fn on_off_flag(key: &str, rules: &[&str]) -> String {
    let mut yaml = format!(
        "  {key}:\n    variants: {{ \"on\": true, \"off\": false }}\n    default: \"off\"\n    environments:\n"
    );
    if rules.is_empty() {
        yaml.push_str("      prod: { enabled: true }\n");
    } else {
        yaml.push_str("      prod:\n        enabled: true\n        rules:\n");
        rules.iter().for_each(|rule| yaml.push_str(&format!("          - {rule}\n")));
    }
    yaml
}

/// A rollout plan of a boolean flag (`"on"` against `"off"`). It prints as YAML in the
/// order people write one: name, release, flag, variants, environment, owners, then the other
/// sections, then the waves (so a test may name a line).
#[derive(Debug, Clone)]
pub struct Plan {
    name: String,
    flag: String,
    release: String,
    environment: String,
    owners: String,
    sections: String,
    waves: Vec<String>,
}

impl Plan {
    /// Plan `name` for `flag` in prod: release `flag` 1.0.0 at low risk, requested by admin, in
    /// two waves (20%, then 100%).
    pub fn new(name: &str, flag: &str) -> Plan {
        Plan {
            name: name.to_owned(),
            flag: flag.to_owned(),
            release: "version: 1.0.0, risk: low".to_owned(),
            environment: "prod".to_owned(),
            owners: "{ requester: admin }".to_owned(),
            sections: String::new(),
            waves: vec!["{ exposure: 20% }".to_owned(), "{ exposure: 100% }".to_owned()],
        }
    }

    /// The release's fields after its name (`version: 2.0.0, risk: medium, team: payments`).
    pub fn release(mut self, fields: &str) -> Plan {
        fields.clone_into(&mut self.release);
        self
    }

    /// The environment it rolls out in (default `prod`).
    pub fn environment(mut self, environment: &str) -> Plan {
        environment.clone_into(&mut self.environment);
        self
    }

    /// The owners, as a flow mapping (`{ requester: alice, approvers: [bob] }`).
    pub fn owners(mut self, owners: &str) -> Plan {
        owners.clone_into(&mut self.owners);
        self
    }

    /// Adds sections before the waves (guardrails, checks, adoption, …): whole YAML lines.
    pub fn section(mut self, yaml: &str) -> Plan {
        assert!(yaml.ends_with('\n'), "a section is whole lines: {yaml:?}");
        self.sections.push_str(yaml);
        self
    }

    /// The waves, one flow mapping each (`{ exposure: 10%, hold: 1h }`).
    pub fn waves(mut self, waves: &[&str]) -> Plan {
        self.waves = waves.iter().map(|w| (*w).to_owned()).collect();
        self
    }
}

impl fmt::Display for Plan {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let Plan { name, flag, release, environment, owners, sections, waves } = self;
        writeln!(f, "name: {name}\nrelease: {{ name: {flag}, {release} }}\nflag: {flag}")?;
        writeln!(f, "new_variant: \"on\"\ncontrol_variant: \"off\"\nenvironment: {environment}")?;
        write!(f, "owners: {owners}\n{sections}waves:\n")?;
        waves.iter().try_for_each(|w| writeln!(f, "  - {w}"))
    }
}

#[cfg(test)]
mod tests {
    use crate::fixtures::{FLAGS, NEW_CHECKOUT, Plan, on_off, on_off_flag};

    #[test]
    fn the_showcase_holds_new_checkout_once() {
        assert_eq!(FLAGS.matches(NEW_CHECKOUT).count(), 1);
    }

    #[test]
    fn plans_print_in_the_order_written() {
        let plan = Plan::new("p1", "checkout").section("runbook: { errors: look }\n");
        assert_eq!(
            plan.to_string(),
            "name: p1\nrelease: { name: checkout, version: 1.0.0, risk: low }\nflag: checkout\nnew_variant: \"on\"\ncontrol_variant: \"off\"\nenvironment: prod\nowners: { requester: admin }\nrunbook: { errors: look }\nwaves:\n  - { exposure: 20% }\n  - { exposure: 100% }\n"
        );
        assert_eq!(
            on_off(&["a"]),
            "flags:\n  a:\n    variants: { \"on\": true, \"off\": false }\n    default: \"off\"\n    environments:\n      prod: { enabled: true }\n"
        );
        assert!(on_off_flag("b", &["{ serve: \"on\" }"]).ends_with(
            "      prod:\n        enabled: true\n        rules:\n          - { serve: \"on\" }\n"
        ));
    }
}

//! The start policy: whether a rollout of a plan may start now, decided from facts the server
//! gathered (the flag, the release's earlier rollouts, the freeze, the scorecard). Pure: the
//! caller reads the store and asks the outside world; this module only judges.

use crate::plan::PlanSpec;
use crate::signature::{ArtifactEvidence, ArtifactRefusal, Offered, PublicKey};

/// What the start policy judges, gathered by the caller.
#[derive(Debug, Clone, Default)]
pub struct StartFacts<'a> {
    /// The artifact digest the starter offered to check against the plan's release, if any.
    pub artifact_sha256: Option<&'a str>,
    /// The artifact's BLAKE2b-512 and detached minisign signature, when offered.
    pub signature: Option<Offered<'a>>,
    /// The keys the server trusts (`serve --trusted-keys`).
    pub trusted_keys: &'a [PublicKey],
    /// Whether the plan's flag is enabled in the plan's environment.
    pub flag_enabled: bool,
    /// The environments in which this release (name and version) has completed a rollout.
    pub completed_in: Vec<&'a str>,
    /// The global freeze's reason, while it is on.
    pub freeze: Option<&'a str>,
    /// Why the go/no-go scorecard says no-go, when it does.
    pub scorecard_block: Option<&'a str>,
    /// Live rollouts (running or paused) in the plan's environment of the services its
    /// release depends on (`release.depends_on`): (service, rollout id, state).
    pub live_dependencies: Vec<(&'a str, &'a str, &'a str)>,
}

/// Why a rollout may not start.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum StartRefusal {
    /// A digest was offered but the plan declares none (an input error, not a state conflict).
    #[error("the plan declares no release.artifact_sha256 to check against")]
    NoDigestDeclared,
    /// The offered digest is not the release's.
    #[error(
        "artifact digest mismatch: the artifact is {got}, the release declares {want}; refusing to start"
    )]
    DigestMismatch {
        /// The digest offered.
        got: String,
        /// The digest the plan's release declares.
        want: String,
    },
    /// The artifact's signature is missing or does not verify under the plan's keys.
    #[error("{0}; refusing to start")]
    Artifact(#[from] ArtifactRefusal),
    /// The flag is switched off in the plan's environment.
    #[error("flag {flag:?} is disabled in {environment}; enable it before rolling out")]
    FlagDisabled {
        /// The plan's flag.
        flag: String,
        /// The plan's environment.
        environment: String,
    },
    /// The release has not completed in every earlier environment of its promotion path.
    #[error(
        "release {release} has not completed in {} (its promotion path); roll it out there first",
        missing.join(", ")
    )]
    PromotionPath {
        /// `name version` of the release.
        release: String,
        /// The environments it has not completed in, in path order.
        missing: Vec<String>,
    },
    /// A global freeze is on.
    #[error("a global freeze is on ({0}); no rollout starts until it is lifted")]
    Freeze(String),
    /// The declared scorecard says no-go.
    #[error("{0}; refusing to start")]
    NoGo(String),
    /// A service the release depends on is mid-rollout in the same environment.
    #[error(
        "{service} depends on {dependency}, whose rollout {rollout} is still {state} in {environment}; start after it completes (or is rolled back)"
    )]
    DependencyLive {
        /// This release's service (or its name).
        service: String,
        /// The service it depends on.
        dependency: String,
        /// That service's live rollout.
        rollout: String,
        /// Its state.
        state: String,
        /// The environment.
        environment: String,
    },
}

/// Judges whether `plan` may start given `facts`; the first refusal, in the order a person
/// would fix them (the artifact, the flag, the promotion path, the freeze, a dependency
/// mid-rollout, the scorecard). On success, what was verified of the artifact's signature, if
/// one was offered.
pub fn check_start(
    plan: &PlanSpec,
    facts: &StartFacts<'_>,
) -> Result<Option<ArtifactEvidence>, StartRefusal> {
    if let Some(got) = facts.artifact_sha256 {
        let Some(want) = &plan.release.artifact_sha256 else {
            return Err(StartRefusal::NoDigestDeclared);
        };
        if !got.eq_ignore_ascii_case(want) {
            return Err(StartRefusal::DigestMismatch { got: got.to_owned(), want: want.clone() });
        }
    }
    let evidence = crate::signature::judge(
        &plan.release.signed_by,
        facts.trusted_keys,
        facts.signature,
    )?
    .map(|e| ArtifactEvidence { sha256: facts.artifact_sha256.map(str::to_ascii_lowercase), ..e });
    if !facts.flag_enabled {
        return Err(StartRefusal::FlagDisabled {
            flag: plan.flag.clone(),
            environment: plan.environment.clone(),
        });
    }
    let missing: Vec<String> = plan
        .promotion_path
        .iter()
        .filter(|e| !facts.completed_in.contains(&e.as_str()))
        .cloned()
        .collect();
    if !missing.is_empty() {
        return Err(StartRefusal::PromotionPath { release: plan.release.label(), missing });
    }
    if let Some(why) = facts.freeze {
        return Err(StartRefusal::Freeze(why.to_owned()));
    }
    if let Some((dependency, rollout, state)) = facts.live_dependencies.first() {
        return Err(StartRefusal::DependencyLive {
            service: plan.release.service.clone().unwrap_or_else(|| plan.release.name.clone()),
            dependency: (*dependency).to_owned(),
            rollout: (*rollout).to_owned(),
            state: (*state).to_owned(),
            environment: plan.environment.clone(),
        });
    }
    if let Some(why) = facts.scorecard_block {
        return Err(StartRefusal::NoGo(why.to_owned()));
    }
    Ok(evidence)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn plan(extra: &str) -> PlanSpec {
        let text = format!(
            "name: p\nflag: f\nenvironment: prod\nnew_variant: \"on\"\ncontrol_variant: \"off\"\nowners: {{ requester: alice }}\nrelease: {{ name: checkout, version: 1.2.0, risk: low{extra} }}\nwaves:\n  - {{ exposure: 10%, hold: 1h }}\n"
        );
        wavegate_core::flagfile::parse_yaml(&text).expect("test plan parses")
    }

    fn ok_facts() -> StartFacts<'static> {
        StartFacts { flag_enabled: true, ..StartFacts::default() }
    }

    #[test]
    fn a_clean_start_passes() {
        assert_eq!(check_start(&plan(""), &ok_facts()), Ok(None));
    }

    #[test]
    fn refusals_come_in_the_order_a_person_fixes_them() {
        let p = plan(", artifact_sha256: ABCD");
        let mut f = StartFacts {
            artifact_sha256: Some("ffff"),
            flag_enabled: false,
            freeze: Some("incident"),
            scorecard_block: Some("no-go: 2 red"),
            ..StartFacts::default()
        };
        assert!(matches!(check_start(&p, &f), Err(StartRefusal::DigestMismatch { .. })));
        f.artifact_sha256 = Some("abcd");
        assert!(matches!(check_start(&p, &f), Err(StartRefusal::FlagDisabled { .. })));
        f.flag_enabled = true;
        assert_eq!(check_start(&p, &f), Err(StartRefusal::Freeze("incident".into())));
        f.freeze = None;
        assert_eq!(check_start(&p, &f).unwrap_err().to_string(), "no-go: 2 red; refusing to start");
        f.scorecard_block = None;
        assert_eq!(check_start(&p, &f), Ok(None));
    }

    #[test]
    fn a_digest_needs_a_declared_one() {
        let f = StartFacts { artifact_sha256: Some("abcd"), ..ok_facts() };
        assert_eq!(check_start(&plan(""), &f), Err(StartRefusal::NoDigestDeclared));
    }

    #[test]
    fn the_promotion_path_names_every_missing_environment() {
        let mut p = plan("");
        p.promotion_path = vec!["dev".into(), "staging".into()];
        let f = StartFacts { completed_in: vec!["dev"], ..ok_facts() };
        assert_eq!(
            check_start(&p, &f).unwrap_err().to_string(),
            "release checkout 1.2.0 has not completed in staging (its promotion path); roll it out there first"
        );
        let f = StartFacts { completed_in: vec!["staging", "dev"], ..ok_facts() };
        assert_eq!(check_start(&p, &f), Ok(None));
    }

    #[test]
    fn a_signed_release_refuses_an_unsigned_start_before_anything_else() {
        let mut p = plan("");
        p.release.signed_by = vec!["00112233AABBCCDD".into()];
        let f = StartFacts { flag_enabled: false, ..ok_facts() };
        let e = check_start(&p, &f).unwrap_err();
        assert!(matches!(e, StartRefusal::Artifact(ArtifactRefusal::Unsigned)), "{e}");
        assert!(e.to_string().ends_with("; refusing to start"), "{e}");
    }
}

//! The vulnerability gate: a release's SBOM (sent with the start, or fetched from the check's
//! URL) against OSV records in the server's OSV directory; findings at or above the plan's
//! `fail_on` refuse the start unless an approver waived them, until the waiver expires.

use axum::http::{Method, StatusCode};
use serde_json::{Value, json};
use wavegate_testkit::fixtures::{Plan, on_off};

use crate::support::{ADMIN, TestApp, errors_guardrail, spawn_app};

/// Two OSV records as osv.dev exports them (trimmed): requests' GHSA rated by its database,
/// and a lodash one with only a CVSS v3 vector (9.8: critical); a withdrawn one that never
/// matches; and a file that is no record.
fn osv_dir() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let pypi = dir.path().join("PyPI");
    std::fs::create_dir(&pypi).unwrap();
    let requests = json!({
        "schema_version": "1.6.0",
        "id": "GHSA-9wx4-h78v-vm56",
        "modified": "2024-06-10T18:39:27Z",
        "published": "2024-05-20T20:15:00Z",
        "aliases": ["CVE-2024-35195"],
        "summary": "Requests `Session` object does not verify requests after making first request with verify=False",
        "affected": [{
            "package": {"ecosystem": "PyPI", "name": "requests", "purl": "pkg:pypi/requests"},
            "ranges": [{"type": "ECOSYSTEM", "events": [{"introduced": "0"}, {"fixed": "2.32.0"}]}],
            "versions": ["2.30.0", "2.31.0"]
        }],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:L/AC:H/PR:H/UI:R/S:U/C:H/I:H/A:N"}],
        "database_specific": {"severity": "MODERATE", "github_reviewed": true}
    });
    std::fs::write(pypi.join("GHSA-9wx4-h78v-vm56.json"), requests.to_string()).unwrap();
    let lodash = json!({
        "id": "GHSA-35jh-r3h4-6jhm",
        "aliases": ["CVE-2021-23337"],
        "summary": "Command Injection in lodash",
        "affected": [{
            "package": {"ecosystem": "npm", "name": "lodash"},
            "ranges": [{"type": "SEMVER", "events": [{"introduced": "0"}, {"fixed": "4.17.21"}]}]
        }],
        "severity": [{"type": "CVSS_V3", "score": "CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H"}]
    });
    std::fs::write(dir.path().join("GHSA-35jh-r3h4-6jhm.json"), lodash.to_string()).unwrap();
    let withdrawn = json!({"id": "GHSA-xxxx-withdrawn", "withdrawn": "2024-01-01T00:00:00Z",
        "affected": [{"package": {"ecosystem": "npm", "name": "left-pad"}, "versions": ["1.3.0"]}],
        "database_specific": {"severity": "CRITICAL"}});
    std::fs::write(dir.path().join("GHSA-xxxx-withdrawn.json"), withdrawn.to_string()).unwrap();
    std::fs::write(dir.path().join("README.json"), "not a record").unwrap();
    dir
}

/// A CycloneDX 1.5 SBOM with `components` (name, version, purl).
fn cyclonedx(components: &[(&str, &str, &str)]) -> Value {
    json!({
        "bomFormat": "CycloneDX",
        "specVersion": "1.5",
        "serialNumber": "urn:uuid:3e671687-395b-41f5-a30f-a58921a69b79",
        "version": 1,
        "metadata": {"component": {"type": "application", "name": "checkout", "version": "2.0.0"}},
        "components": components.iter().map(|(n, v, p)| json!({
            "type": "library", "bom-ref": p, "name": n, "version": v, "purl": p
        })).collect::<Vec<_>>()
    })
}

fn plan(check: &str) -> String {
    Plan::new("p1", "checkout")
        .owners("{ requester: alice, approvers: [bob] }")
        .section(&errors_guardrail(50))
        .section(check)
        .to_string()
}

const CHECK: &str = "checks:
  - name: vulns
    when: [before_start]
    vulnerabilities: { fail_on: medium }
    action: pause
";

/// The app with `dir` as its OSV directory.
async fn app_with_osv(dir: &std::path::Path) -> TestApp {
    let mut app = spawn_app().await;
    app.state.osv = Some(std::sync::Arc::new(wavegate_server::osv::OsvData::new(dir.into())));
    app.router = wavegate_server::app(app.state.clone());
    app
}

async fn start_with(app: &TestApp, sbom: Option<Value>) -> crate::support::Reply {
    let mut body = json!({"plan": "p1"});
    if let Some(s) = sbom {
        body["sbom"] = s;
    }
    app.admin(Method::POST, "/api/v1/rollouts", Some(body)).await
}

#[tokio::test]
async fn an_affected_sbom_is_refused_until_an_approver_waives_the_finding() {
    let osv = osv_dir();
    let app = app_with_osv(osv.path()).await;
    app.prepare(&on_off(&["checkout"]), &plan(CHECK)).await;
    let r = start_with(&app, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    assert!(r.body["message"].as_str().unwrap().contains("no SBOM"), "{:?}", r.body);

    let sbom = cyclonedx(&[
        ("requests", "2.31.0", "pkg:pypi/requests@2.31.0"),
        ("lodash", "4.17.21", "pkg:npm/lodash@4.17.21"),
        ("left-pad", "1.3.0", "pkg:npm/left-pad@1.3.0"),
    ]);
    let r = start_with(&app, Some(sbom.clone())).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let msg = r.body["message"].as_str().unwrap();
    assert!(
        msg.contains(
            "1 finding(s) at or above medium: GHSA-9wx4-h78v-vm56 in requests@2.31.0 (medium)"
        ),
        "{msg}"
    );
    assert_eq!(app.count("/api/v1/rollouts").await, 0);

    // Who applied the plan may not waive it (separation of duties); an approver of the plan
    // may.
    let path = "/api/v1/plans/p1/waivers/CVE-2024-35195";
    let grant = json!({"reason": "verify=False is never used", "expires": "30d"});
    let r = app.admin(Method::PUT, path, Some(grant.clone())).await;
    assert_eq!(r.status, StatusCode::FORBIDDEN, "{:?}", r.body);
    let bob = app
        .mint(ADMIN, json!({"kind": "admin", "environments": ["*"], "principal": "bob"}))
        .await
        .body["token"]
        .as_str()
        .unwrap()
        .to_owned();
    let bad = json!({"reason": "x", "expires": "2y"});
    let r = app.call(Method::PUT, path, Some(&bob), Some(bad)).await;
    assert_eq!(
        (r.status, r.body["field"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("expires"))
    );
    let r = app.call(Method::PUT, path, Some(&bob), Some(grant)).await;
    assert_eq!(r.status, StatusCode::OK, "{:?}", r.body);
    assert_eq!(r.body[0]["finding"], "CVE-2024-35195");
    assert_eq!(
        (r.body[0]["by"].as_str(), r.body[0]["expired"].as_bool()),
        (Some("bob"), Some(false))
    );

    let r = start_with(&app, Some(sbom.clone())).await;
    assert_eq!(r.status, StatusCode::CREATED, "{:?}", r.body);
    let id = r.body["id"].as_str().unwrap().to_owned();
    let status = app.rollout(&id).await;
    let check = status["verdicts"]
        .as_array()
        .unwrap()
        .iter()
        .find(|v| v["name"] == "vulns")
        .unwrap_or_else(|| panic!("{status}"))
        .clone();
    assert_eq!(check["verdict"], "pass", "{check}");
    let finding = &check["report"]["findings"][0];
    assert_eq!(
        (finding["id"].as_str(), finding["waived"]["by"].as_str(), finding["fixed"].as_str()),
        (Some("GHSA-9wx4-h78v-vm56"), Some("bob"), Some("2.32.0")),
        "{check}"
    );
    assert_eq!(check["report"]["osv"], json!({"records": 2, "skipped_files": 1}));
    let audit = app.admin(Method::GET, "/api/v1/audit?limit=200", None).await.body;
    let waived = audit.as_array().unwrap().iter().find(|e| e["action"] == "setting.waive");
    let waived = waived.unwrap_or_else(|| panic!("{audit}"));
    assert_eq!(
        (waived["actor"].as_str(), waived["details"]["finding"].as_str()),
        (Some("bob"), Some("CVE-2024-35195"))
    );

    // The waiver expires: the next start is refused again, and says the waiver expired.
    assert_eq!(app.command(&id, "rollback", "again later").await.status, StatusCode::OK);
    app.clock.advance(chrono::Duration::days(31));
    let r = start_with(&app, Some(sbom)).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let list = app.admin(Method::GET, "/api/v1/plans/p1/waivers", None).await.body;
    assert_eq!(list[0]["expired"], true, "{list}");
    // Revoked, it is gone.
    let r = app.call(Method::DELETE, path, Some(&bob), None).await;
    assert_eq!((r.status, r.body.clone()), (StatusCode::OK, json!([])));
    let r = app.call(Method::DELETE, path, Some(&bob), None).await;
    assert_eq!(r.status, StatusCode::NOT_FOUND);
}

/// An SPDX SBOM fetched from the check's URL; a critical finding rated only by its CVSS
/// vector refuses the start at `fail_on: critical`; a server without OSV data refuses too.
#[tokio::test]
async fn an_sbom_url_is_fetched_and_rated_by_its_cvss_vector() {
    let spdx = json!({
        "spdxVersion": "SPDX-2.3",
        "dataLicense": "CC0-1.0",
        "SPDXID": "SPDXRef-DOCUMENT",
        "name": "checkout-2.0.0",
        "documentNamespace": "https://example.com/spdx/checkout-2.0.0",
        "creationInfo": {"created": "2026-11-30T00:00:00Z", "creators": ["Tool: syft-1.0"]},
        "packages": [{
            "name": "lodash", "SPDXID": "SPDXRef-Package-npm-lodash", "versionInfo": "4.17.20",
            "downloadLocation": "NOASSERTION",
            "externalRefs": [{"referenceCategory": "PACKAGE-MANAGER", "referenceType": "purl",
                "referenceLocator": "pkg:npm/lodash@4.17.20"}]
        }]
    });
    let served = axum::Router::new()
        .route("/sbom.spdx.json", axum::routing::get(move || async move { axum::Json(spdx) }));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, served).await.unwrap() });
    let check = format!(
        "checks:\n  - name: vulns\n    when: [before_start]\n    vulnerabilities: {{ sbom: \"http://{addr}/sbom.spdx.json\", fail_on: critical }}\n    action: pause\n"
    );
    // Without OSV data: refused, saying so.
    let bare = spawn_app().await;
    bare.prepare(&on_off(&["checkout"]), &plan(&check)).await;
    let r = start_with(&bare, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT);
    assert!(r.body["message"].as_str().unwrap().contains("--osv-dir"), "{:?}", r.body);

    let osv = osv_dir();
    let app = app_with_osv(osv.path()).await;
    app.prepare(&on_off(&["checkout"]), &plan(&check)).await;
    let r = start_with(&app, None).await;
    assert_eq!(r.status, StatusCode::CONFLICT, "{:?}", r.body);
    let msg = r.body["message"].as_str().unwrap();
    assert!(msg.contains("GHSA-35jh-r3h4-6jhm in lodash@4.17.20 (critical)"), "{msg}");
}

/// A check with no kind, or a vulnerability check that never runs before the start, is a
/// lint error.
#[tokio::test]
async fn vulnerability_checks_are_linted() {
    let app = spawn_app().await;
    app.apply_yaml(&on_off(&["checkout"])).await;
    let late = CHECK.replace("[before_start]", "[before_promotion]");
    let r = app.post_plan(&plan(&late)).await;
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{:?}", r.body);
    assert!(
        r.body["message"].as_str().unwrap().contains("must include before_start"),
        "{:?}",
        r.body
    );
}

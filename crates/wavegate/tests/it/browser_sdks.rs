//! Issue 21, items 1 and 3: browser SDKs that no one here wrote, in a real headless Chromium,
//! from a page on another origin (`tests/browser/sdks.mjs`): unleash-proxy-client (Unleash's
//! browser SDK) gets its toggles through CORS and its re-fetches are answered 304; the
//! OpenFeature web SDK's OFREP provider gets its flags and, with a date rule present in the
//! environment, its polls are answered 304 without a ConfigurationChanged event.
//!
//! Needs `node`, `tests/browser/node_modules` (`scripts/setup-browser.sh`) and `chromium`;
//! `.ci/run` installs them. Missing pieces fail the test with what to run, never skip it.

use wavegate_testkit::fixtures::{LAUNCH, UNLEASH_FLAGS};

use crate::support::{ADMIN, apply, start, token};

#[test]
fn browser_sdks_from_another_origin_get_their_flags_and_304s() {
    let packages = ["playwright-core", "unleash-proxy-client", "@openfeature/ofrep-web-provider"];
    let (root, chromium) = crate::support::browser_tools(&packages);
    let dir = tempfile::tempdir().unwrap();
    let server = start(&dir.path().join("w.db"), Some(ADMIN));
    apply(&server.url, dir.path(), "flag", "unleash.yaml", UNLEASH_FLAGS);
    apply(&server.url, dir.path(), "flag", "launch.yaml", LAUNCH);
    let client = token(&server.url, "client-sdk", "prod", "web");
    let env = [("WAVEGATE_URL", server.url.as_str()), ("CLIENT_TOKEN", client.as_str())];
    let stdout = crate::support::run_browser_script(&root, "sdks.mjs", &chromium, &env);
    for line in [
        "ok - its re-fetches, sending the ETag back, were answered 304",
        "ok - its polls were answered 304 although a date rule is present",
        "ok - no ConfigurationChanged event fired while nothing changed (0)",
    ] {
        assert!(stdout.contains(line), "{line:?} missing:\n{stdout}");
    }
}

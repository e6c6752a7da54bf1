//! Reading a rollout status (`GET /api/v1/rollouts/{id}`, `wavegate rollout status --json`):
//! the counts in its `signals`.

use serde_json::Value;

/// The exposures counted for `arm` (`treatment` or `control`), if any were.
pub fn arm_exposures(status: &Value, arm: &str) -> Option<f64> {
    exposure_rows(status).find(|s| s["arm"] == arm).map(|s| s["n"].as_f64().unwrap())
}

/// The exposures counted for both arms together.
pub fn exposures(status: &Value) -> f64 {
    exposure_rows(status).map(|s| s["n"].as_f64().unwrap()).sum()
}

fn exposure_rows(status: &Value) -> impl Iterator<Item = &Value> {
    let rows = status["signals"].as_array().unwrap_or_else(|| panic!("no signals in {status}"));
    rows.iter().filter(|s| s["metric"] == "exposure")
}

//! Server-rendered SVG charts of a guardrail's verdict history: the harm estimate over time,
//! the always-valid confidence band around it, the tolerance line and wave boundaries.
//!
//! Pure: points in, SVG text out. No script, no external fonts, so the dashboard can inline it.

use std::fmt::Write as _;

use wavegate_core::text::escape_html as esc;

pub use crate::retro::Verdict;

/// One stored verdict of a guardrail.
#[derive(Debug, Clone, PartialEq)]
pub struct Point {
    /// Seconds since the first point.
    pub t: f64,
    /// Wave, 1-based.
    pub wave: i64,
    /// Estimated harm (None: no data yet).
    pub estimate: Option<f64>,
    /// Always-valid lower bound on harm.
    pub lower: Option<f64>,
    /// Always-valid upper bound on harm.
    pub upper: Option<f64>,
    /// The verdict at that time (`pass`, `fail`, `inconclusive`).
    pub verdict: String,
}

/// Most points drawn; longer histories are thinned evenly (the last point always kept).
pub const MAX_POINTS: usize = 400;

const W: f64 = 640.0;
const H: f64 = 220.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 12.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;

fn fmt(v: f64) -> String {
    let a = v.abs();
    if a != 0.0 && !(0.001..10_000.0).contains(&a) {
        format!("{v:.2e}")
    } else if a < 1.0 {
        format!("{v:.4}")
    } else {
        format!("{v:.2}")
    }
}

/// Keeps at most [`MAX_POINTS`] points, evenly spaced, always including the last.
fn thin(points: &[Point]) -> Vec<&Point> {
    if points.len() <= MAX_POINTS {
        return points.iter().collect();
    }
    let step = points.len() as f64 / (MAX_POINTS - 1) as f64;
    let mut out: Vec<&Point> =
        (0..MAX_POINTS - 1).map(|i| &points[(i as f64 * step) as usize]).collect();
    out.push(points.last().expect("non-empty"));
    out
}

/// The points of guardrail `name` from a rollout's verdicts (oldest first), optionally of one
/// wave (1-based); time counts from the rollout's first guardrail verdict.
pub fn guardrail_points(verdicts: &[Verdict<'_>], name: &str, wave: Option<i64>) -> Vec<Point> {
    let first = verdicts.iter().find(|v| v.kind == "guardrail").map(|v| v.at);
    let num = |v: &Verdict<'_>, k: &str| v.report.get(k).and_then(serde_json::Value::as_f64);
    verdicts
        .iter()
        .filter(|v| v.kind == "guardrail" && v.name == name)
        .filter(|v| wave.is_none_or(|w| v.wave + 1 == w))
        .map(|v| Point {
            t: first.map_or(0.0, |f| (v.at - f).num_milliseconds() as f64 / 1000.0),
            wave: v.wave + 1,
            estimate: num(v, "estimate"),
            lower: num(v, "lower"),
            upper: num(v, "upper"),
            verdict: v.verdict.to_owned(),
        })
        .collect()
}

/// Renders the chart of guardrail `name` with its `tolerance` (harm above it is too much).
pub fn guardrail_svg(name: &str, tolerance: f64, points: &[Point]) -> String {
    let title =
        format!("{name}: estimated harm with its always-valid bound; tolerance {}", fmt(tolerance));
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 {W} {H}" width="{W}" height="{H}" role="img" aria-label="{}" class="chart"><title>{}</title>"#,
        esc(&title),
        esc(&title)
    );
    svg.push_str(r##"<rect x="0" y="0" width="640" height="220" fill="#ffffff"/>"##);
    let finite = |v: Option<f64>| v.filter(|x| x.is_finite());
    let drawn = thin(points);
    let with_data: Vec<&&Point> = drawn.iter().filter(|p| finite(p.estimate).is_some()).collect();
    if with_data.is_empty() {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{}" text-anchor="middle" fill="#333" font-size="14">no data yet for {}</text></svg>"##,
            W / 2.0,
            H / 2.0,
            esc(name)
        );
        return svg;
    }
    // y range: estimates and finite bounds, tolerance and zero, padded.
    let mut lo = tolerance.min(0.0);
    let mut hi = tolerance.max(0.0);
    for p in &with_data {
        for v in [p.estimate, p.lower, p.upper].into_iter().filter_map(finite) {
            lo = lo.min(v);
            hi = hi.max(v);
        }
    }
    // Keep a wide early band from flattening the rest: clip at 4× the tolerance scale.
    let scale = tolerance.abs().max(1e-9) * 4.0;
    lo = lo.max(-scale * 2.0);
    hi = hi.min(scale * 2.0).max(tolerance * 1.2);
    if hi - lo < 1e-12 {
        hi = lo + 1.0;
    }
    let pad = (hi - lo) * 0.08;
    let (lo, hi) = (lo - pad, hi + pad);
    let t_max = with_data.iter().map(|p| p.t).fold(0.0_f64, f64::max).max(1e-9);
    let t_min = with_data.iter().map(|p| p.t).fold(f64::INFINITY, f64::min).min(t_max);
    let span = (t_max - t_min).max(1e-9);
    let x = |t: f64| LEFT + (t - t_min) / span * (W - LEFT - RIGHT);
    let y = |v: f64| TOP + (hi - v.clamp(lo, hi)) / (hi - lo) * (H - TOP - BOTTOM);

    // Axes, zero line and y ticks.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{}" stroke="#555"/><line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#555"/>"##,
        H - BOTTOM,
        W - RIGHT
    );
    for v in [lo + pad, 0.0, hi - pad] {
        let _ = write!(
            svg,
            r##"<text x="{}" y="{:.1}" text-anchor="end" font-size="11" fill="#333">{}</text>"##,
            LEFT - 4.0,
            y(v) + 4.0,
            esc(&fmt(v))
        );
    }
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#999" stroke-dasharray="2 3"/>"##,
        y(0.0),
        W - RIGHT
    );
    // Wave boundaries.
    for w in with_data.windows(2).filter(|w| w[0].wave != w[1].wave) {
        let xb = x(w[1].t);
        let _ = write!(
            svg,
            r##"<line x1="{xb:.1}" y1="{TOP}" x2="{xb:.1}" y2="{}" stroke="#6a5acd" stroke-dasharray="4 3"/><text x="{:.1}" y="{}" font-size="11" fill="#4b3aa8">wave {}</text>"##,
            H - BOTTOM,
            xb + 3.0,
            TOP + 10.0,
            w[1].wave
        );
    }
    // Band: upper edge left to right, lower edge back.
    let band: Vec<(f64, f64, f64)> =
        with_data.iter().filter_map(|p| Some((p.t, finite(p.lower)?, finite(p.upper)?))).collect();
    if band.len() >= 2 {
        let mut d = String::new();
        for (i, (t, _, u)) in band.iter().enumerate() {
            let _ = write!(d, "{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, x(*t), y(*u));
        }
        for (t, l, _) in band.iter().rev() {
            let _ = write!(d, "L{:.1},{:.1} ", x(*t), y(*l));
        }
        let _ = write!(
            svg,
            r##"<path d="{}Z" fill="#4a90d9" fill-opacity="0.22" stroke="none"><title>always-valid bound</title></path>"##,
            d.trim_end()
        );
    }
    // Tolerance.
    let _ = write!(
        svg,
        r##"<line x1="{LEFT}" y1="{0:.1}" x2="{1}" y2="{0:.1}" stroke="#c0392b" stroke-width="1.5" stroke-dasharray="6 4"/><text x="{2}" y="{3:.1}" text-anchor="end" font-size="11" fill="#a5281b">tolerance {4}</text>"##,
        y(tolerance),
        W - RIGHT,
        W - RIGHT - 2.0,
        y(tolerance) - 4.0,
        esc(&fmt(tolerance))
    );
    // Estimate line and the final point coloured by its verdict.
    let mut d = String::new();
    for (i, p) in with_data.iter().enumerate() {
        let e = finite(p.estimate).expect("filtered");
        let _ = write!(d, "{}{:.1},{:.1} ", if i == 0 { "M" } else { "L" }, x(p.t), y(e));
    }
    let _ = write!(
        svg,
        r##"<path d="{}" fill="none" stroke="#1f4e8c" stroke-width="2"><title>estimated harm</title></path>"##,
        d.trim_end()
    );
    let last = with_data.last().expect("non-empty");
    let colour = match last.verdict.as_str() {
        "pass" => "#1e7b34",
        "fail" => "#c0392b",
        _ => "#8a6d00",
    };
    let _ = write!(
        svg,
        r##"<circle cx="{:.1}" cy="{:.1}" r="4" fill="{colour}"><title>{}: {}</title></circle>"##,
        x(last.t),
        y(finite(last.estimate).expect("filtered")),
        esc(&last.verdict),
        esc(&fmt(finite(last.estimate).expect("filtered")))
    );
    let _ = write!(
        svg,
        r##"<text x="{LEFT}" y="{}" font-size="11" fill="#333">0 s</text><text x="{}" y="{}" text-anchor="end" font-size="11" fill="#333">{:.0} s</text></svg>"##,
        H - 10.0,
        W - RIGHT,
        H - 10.0,
        span
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(t: f64, wave: i64, e: Option<f64>, lo: Option<f64>, up: Option<f64>, v: &str) -> Point {
        Point { t, wave, estimate: e, lower: lo, upper: up, verdict: v.into() }
    }

    #[test]
    fn no_data_says_so() {
        let svg =
            guardrail_svg("error-rate", 0.005, &[p(0.0, 1, None, None, None, "inconclusive")]);
        assert!(svg.contains("no data yet for error-rate"), "{svg}");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn draws_band_tolerance_estimate_and_wave_boundary() {
        let pts = vec![
            p(0.0, 1, Some(0.002), Some(-0.01), Some(0.02), "inconclusive"),
            p(10.0, 1, Some(0.001), Some(-0.004), Some(0.006), "inconclusive"),
            p(20.0, 2, Some(0.0), Some(-0.002), Some(0.003), "pass"),
        ];
        let svg = guardrail_svg("error-rate", 0.005, &pts);
        assert!(svg.contains("tolerance 0.0050"), "{svg}");
        assert!(svg.contains("always-valid bound"));
        assert!(svg.contains("wave 2"));
        assert!(svg.contains("#1e7b34"), "last verdict pass is green");
        assert_eq!(svg.matches("<svg").count(), 1);
    }

    #[test]
    fn infinite_bounds_and_names_are_safe() {
        let pts = vec![
            p(0.0, 1, Some(0.1), Some(f64::NEG_INFINITY), Some(f64::INFINITY), "inconclusive"),
            p(5.0, 1, Some(f64::NAN), None, None, "inconclusive"),
            p(9.0, 1, Some(0.3), Some(0.2), Some(0.4), "fail"),
        ];
        let svg = guardrail_svg("<script>", 0.05, &pts);
        assert!(!svg.contains("<script>"), "names are escaped");
        assert!(!svg.contains("NaN") && !svg.contains("inf"), "{svg}");
        assert!(svg.contains("#c0392b"));
    }

    #[test]
    fn long_histories_are_thinned_keeping_the_last() {
        let pts: Vec<Point> = (0..5000)
            .map(|i| {
                p(
                    i as f64,
                    1,
                    Some(i as f64 * 1e-6),
                    Some(0.0),
                    Some(0.01),
                    if i == 4999 { "fail" } else { "inconclusive" },
                )
            })
            .collect();
        let kept = thin(&pts);
        assert_eq!(kept.len(), MAX_POINTS);
        assert_eq!(kept.last().unwrap().t, 4999.0);
        assert!(guardrail_svg("g", 0.01, &pts).contains("4999 s"));
    }
}

//! Pilot feedback digest (pure): counts and sentiment by category and by cohort, recurring
//! themes (words several pieces of feedback share), and cohorts whose sentiment lags.

use std::collections::{BTreeMap, BTreeSet};

use serde::{Deserialize, Serialize};
use wavegate_core::text::{escape_html as esc, escape_markdown as md};

/// One piece of feedback, as the digest reads it.
#[derive(Debug, Clone)]
pub struct Item<'a> {
    /// Category.
    pub category: &'a str,
    /// Cohort.
    pub cohort: &'a str,
    /// `positive`, `neutral` or `negative`.
    pub sentiment: &'a str,
    /// Text.
    pub text: &'a str,
}

/// Sentiment counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Tally {
    /// Items.
    pub count: usize,
    /// Positive items.
    pub positive: usize,
    /// Neutral items.
    pub neutral: usize,
    /// Negative items.
    pub negative: usize,
}

impl Tally {
    fn add(&mut self, sentiment: &str) {
        self.count += 1;
        match sentiment {
            "positive" => self.positive += 1,
            "negative" => self.negative += 1,
            _ => self.neutral += 1,
        }
    }

    /// Share of negative items.
    pub fn negative_share(&self) -> f64 {
        if self.count == 0 { 0.0 } else { self.negative as f64 / self.count as f64 }
    }
}

/// A category's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CategoryDigest {
    /// Category.
    pub category: String,
    /// Counts.
    pub tally: Tally,
    /// Recurring themes as `[word, items]`: words at least two items share, most frequent
    /// first (at most 5).
    #[cfg_attr(feature = "schema", schema(value_type = Vec<Vec<serde_json::Value>>))]
    pub themes: Vec<(String, usize)>,
}

/// A cohort's digest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct CohortDigest {
    /// Cohort.
    pub cohort: String,
    /// Counts.
    pub tally: Tally,
    /// Its negative share is 20 points or more above the overall one.
    pub lagging: bool,
}

/// The feedback digest of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "schema", derive(utoipa::ToSchema))]
pub struct Digest {
    /// All items.
    pub overall: Tally,
    /// By category, sorted.
    pub categories: Vec<CategoryDigest>,
    /// By cohort, sorted.
    pub cohorts: Vec<CohortDigest>,
}

const STOP: &[&str] = &[
    "that", "this", "with", "from", "have", "they", "were", "when", "what", "there", "their",
    "about", "would", "could", "should", "which", "into", "than", "then", "them", "very", "just",
    "still", "also", "some", "more", "been", "does", "dont", "doesnt", "after", "before",
    "because",
];

fn words(text: &str) -> BTreeSet<String> {
    text.split(|c: char| !c.is_alphanumeric())
        .map(str::to_lowercase)
        .filter(|w| w.chars().count() >= 4 && !STOP.contains(&w.as_str()))
        .collect()
}

/// Digests `items`.
pub fn digest(items: &[Item<'_>]) -> Digest {
    let mut overall = Tally::default();
    let mut cats: BTreeMap<&str, (Tally, BTreeMap<String, usize>)> = BTreeMap::new();
    let mut cohorts: BTreeMap<&str, Tally> = BTreeMap::new();
    for it in items {
        overall.add(it.sentiment);
        let (t, w) = cats.entry(it.category).or_default();
        t.add(it.sentiment);
        for word in words(it.text) {
            *w.entry(word).or_default() += 1;
        }
        cohorts.entry(it.cohort).or_default().add(it.sentiment);
    }
    let base = overall.negative_share();
    Digest {
        categories: cats
            .into_iter()
            .map(|(c, (tally, w))| {
                let mut themes: Vec<(String, usize)> =
                    w.into_iter().filter(|(_, n)| *n >= 2).collect();
                themes.sort_by(|a, b| b.1.cmp(&a.1).then(a.0.cmp(&b.0)));
                themes.truncate(5);
                CategoryDigest { category: c.to_owned(), tally, themes }
            })
            .collect(),
        cohorts: cohorts
            .into_iter()
            .map(|(c, tally)| CohortDigest {
                cohort: c.to_owned(),
                lagging: tally.count >= 2 && tally.negative_share() >= base + 0.2,
                tally,
            })
            .collect(),
        overall,
    }
}

/// A stacked bar per category and per cohort: positive, neutral and negative items, as an
/// SVG (all text escaped).
pub fn sentiment_svg(d: &Digest) -> String {
    let rows: Vec<(String, &Tally)> = d
        .categories
        .iter()
        .map(|c| (format!("category {}", c.category), &c.tally))
        .chain(d.cohorts.iter().map(|c| (format!("cohort {}", c.cohort), &c.tally)))
        .collect();
    let max = rows.iter().map(|(_, t)| t.count).max().unwrap_or(1).max(1) as f64;
    let height = 30 + rows.len() * 24;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" role=\"img\" aria-label=\"feedback sentiment by category and cohort\" width=\"560\" height=\"{height}\">"
    );
    for (i, (label, t)) in rows.iter().enumerate() {
        let y = 10 + i * 24;
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" font-size=\"12\">{}</text>",
            y + 12,
            esc(label)
        ));
        let mut x = 180.0;
        for (n, colour) in
            [(t.positive, "#1a7f37"), (t.neutral, "#8c959f"), (t.negative, "#cf222e")]
        {
            let w = 320.0 * n as f64 / max;
            if n > 0 {
                svg.push_str(&format!(
                    "<rect x=\"{x:.1}\" y=\"{y}\" width=\"{w:.1}\" height=\"16\" fill=\"{colour}\"><title>{n}</title></rect>"
                ));
            }
            x += w;
        }
        svg.push_str(&format!(
            "<text x=\"{:.1}\" y=\"{}\" font-size=\"12\">{} ({} negative)</text>",
            x + 5.0,
            y + 12,
            t.count,
            t.negative
        ));
    }
    let y = height - 6;
    svg.push_str(&format!("<text x=\"180\" y=\"{y}\" font-size=\"11\" fill=\"#1a7f37\">positive</text><text x=\"240\" y=\"{y}\" font-size=\"11\" fill=\"#57606a\">neutral</text><text x=\"295\" y=\"{y}\" font-size=\"11\" fill=\"#cf222e\">negative</text></svg>"));
    svg
}

/// The digest as Markdown. Release, categories, cohorts and themes come from whoever posted
/// the feedback, so each is escaped ([`md`]).
pub fn to_markdown(release: &str, d: &Digest) -> String {
    let mut out = format!(
        "# Pilot feedback: {}\n\n{} items: {} positive, {} neutral, {} negative.\n\n## By category\n\n| category | items | negative | themes |\n|---|---:|---:|---|\n",
        md(release),
        d.overall.count,
        d.overall.positive,
        d.overall.neutral,
        d.overall.negative
    );
    for c in &d.categories {
        let themes: Vec<String> =
            c.themes.iter().map(|(w, n)| format!("{} ({n})", md(w))).collect();
        out.push_str(&format!(
            "| {} | {} | {:.0}% | {} |\n",
            md(&c.category),
            c.tally.count,
            c.tally.negative_share() * 100.0,
            themes.join(", ")
        ));
    }
    out.push_str("\n## By cohort\n\n| cohort | items | negative | |\n|---|---:|---:|---|\n");
    for c in &d.cohorts {
        out.push_str(&format!(
            "| {} | {} | {:.0}% | {} |\n",
            md(&c.cohort),
            c.tally.count,
            c.tally.negative_share() * 100.0,
            if c.lagging { "lagging" } else { "" }
        ));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_sentiment_chart_stacks_and_escapes() {
        let items = [
            Item { category: "a<b", cohort: "oslo", sentiment: "negative", text: "x" },
            Item { category: "a<b", cohort: "oslo", sentiment: "positive", text: "y" },
        ];
        let svg = sentiment_svg(&digest(&items));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"), "{svg}");
        assert!(svg.contains("category a&lt;b") && !svg.contains("a<b"), "{svg}");
        assert_eq!(
            svg.matches("<rect").count(),
            4,
            "two slices for the category, two for the cohort"
        );
        assert!(svg.contains(">2 (1 negative)</text>"), "{svg}");
    }

    #[test]
    fn themes_tallies_and_lagging_cohorts() {
        let items = [
            Item {
                category: "usability",
                cohort: "oslo",
                sentiment: "negative",
                text: "The pay button moved, cannot find the button",
            },
            Item {
                category: "usability",
                cohort: "oslo",
                sentiment: "negative",
                text: "Where did the pay button go?",
            },
            Item {
                category: "usability",
                cohort: "bergen",
                sentiment: "positive",
                text: "Cleaner checkout",
            },
            Item {
                category: "performance",
                cohort: "bergen",
                sentiment: "neutral",
                text: "Checkout feels the same",
            },
            Item {
                category: "performance",
                cohort: "bergen",
                sentiment: "positive",
                text: "Faster checkout",
            },
        ];
        let d = digest(&items);
        assert_eq!((d.overall.count, d.overall.negative), (5, 2));
        let u = &d.categories[1];
        assert_eq!(u.category, "usability");
        assert_eq!(u.themes[0], ("button".to_owned(), 2), "counted once per item");
        assert_eq!(d.categories[0].themes, [("checkout".to_owned(), 2)]);
        let oslo = d.cohorts.iter().find(|c| c.cohort == "oslo").unwrap();
        assert!(oslo.lagging);
        assert!(!d.cohorts.iter().find(|c| c.cohort == "bergen").unwrap().lagging);
        assert!(to_markdown("checkout", &d).contains("| oslo | 2 | 100% | lagging |"));
    }
}

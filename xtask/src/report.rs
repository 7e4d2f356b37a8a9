//! The one-page summary of `docs/BENCHMARKS.md`: every headline figure beside its competitor
//! from the same run and its goal, as a table and an SVG chart.
//!
//! Each benchmark prints its headline figures as HTML comments inside its own section
//! (invisible when the page is rendered):
//!
//! ```text
//! <!-- figure {"name": "...", "unit": "records/s", "value": 252250, "better": "higher",
//!              "competitor": "tracing-appender", "competitor_value": 315016, "goal": 300000} -->
//! ```
//!
//! After any benchmark records its section, the summary is rebuilt from all the figures on
//! the page, so it always shows the latest run of each suite with that run's date.

use serde_json::Value;

/// One headline figure.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Figure {
    /// The suite (the section's `bench:NAME`).
    pub suite: String,
    pub name: String,
    pub unit: String,
    pub value: f64,
    /// Whether a higher value is better (throughput) or a lower one (latency, size).
    pub higher_is_better: bool,
    /// The competitor measured in the same run, and its value.
    pub competitor: Option<(String, f64)>,
    pub goal: Option<f64>,
}

impl Figure {
    /// How many times better than the competitor (above 1: Faultline is ahead).
    pub(crate) fn advantage(&self) -> Option<f64> {
        let (_, theirs) = self.competitor.as_ref()?;
        let ratio = if self.higher_is_better {
            self.value / theirs
        } else {
            theirs / self.value
        };
        ratio.is_finite().then_some(ratio)
    }

    pub(crate) fn goal_met(&self) -> Option<bool> {
        let goal = self.goal?;
        Some(if self.higher_is_better {
            self.value >= goal
        } else {
            self.value <= goal
        })
    }
}

/// The comment line a benchmark prints for a figure (see the module docs).
pub(crate) fn parse_line(suite: &str, line: &str) -> Option<Figure> {
    let json = line
        .trim()
        .strip_prefix("<!-- figure ")?
        .strip_suffix("-->")?;
    let v: Value = serde_json::from_str(json.trim()).ok()?;
    let competitor = match (v["competitor"].as_str(), v["competitor_value"].as_f64()) {
        (Some(name), Some(value)) => Some((name.to_owned(), value)),
        _ => None,
    };
    Some(Figure {
        suite: suite.to_owned(),
        name: v["name"].as_str()?.to_owned(),
        unit: v["unit"].as_str().unwrap_or("").to_owned(),
        value: v["value"].as_f64()?,
        higher_is_better: v["better"].as_str() != Some("lower"),
        competitor,
        goal: v["goal"].as_f64(),
    })
}

/// Every figure on the page, with its suite and that section's date.
pub(crate) fn figures(doc: &str) -> Vec<(Figure, String)> {
    let mut out = Vec::new();
    let mut section: Option<(String, String)> = None;
    for line in doc.lines() {
        let t = line.trim();
        if let Some(name) = t
            .strip_prefix("<!-- bench:")
            .and_then(|r| r.strip_suffix(" -->"))
        {
            section = (name != "summary").then(|| (name.to_owned(), String::new()));
        } else if t.starts_with("<!-- /bench:") {
            section = None;
        } else if let Some((suite, date)) = &mut section {
            if let Some(d) = t.strip_prefix("Date: ") {
                *date = d.trim().to_owned();
            } else if let Some(f) = parse_line(suite, t) {
                out.push((f, date.clone()));
            }
        }
    }
    out
}

fn number(v: f64, unit: &str) -> String {
    let digits = if v.abs() >= 100.0 || v.fract() == 0.0 {
        0
    } else if v.abs() >= 10.0 {
        1
    } else {
        2
    };
    let s = format!("{v:.digits$}");
    // Thousands separators for the big integers (records/s).
    let text = if digits == 0 && v.abs() >= 10_000.0 {
        let (sign, d) = s.split_at(usize::from(s.starts_with('-')));
        let mut grouped = String::new();
        for (i, c) in d.chars().enumerate() {
            if i > 0 && (d.len() - i) % 3 == 0 {
                grouped.push(',');
            }
            grouped.push(c);
        }
        format!("{sign}{grouped}")
    } else {
        s
    };
    if unit.is_empty() {
        text
    } else {
        format!("{text} {unit}")
    }
}

/// The summary table (Markdown).
pub(crate) fn table(figures: &[(Figure, String)]) -> String {
    let mut out = String::from(
        "| suite (run) | figure | Faultline | competitor, same run | Faultline's advantage | goal | met |\n\
         | --- | --- | ---: | ---: | ---: | ---: | :---: |\n",
    );
    for (f, date) in figures {
        let competitor = f
            .competitor
            .as_ref()
            .map_or("none runs here".to_owned(), |(name, v)| {
                format!("{name}: {}", number(*v, &f.unit))
            });
        let advantage = f.advantage().map_or(String::new(), |a| format!("{a:.2}x"));
        let goal = f.goal.map_or(String::new(), |g| {
            format!(
                "{} {}",
                if f.higher_is_better { "≥" } else { "≤" },
                number(g, &f.unit)
            )
        });
        let met = match f.goal_met() {
            Some(true) => "yes",
            Some(false) => "**no**",
            None => "",
        };
        out.push_str(&format!(
            "| {} ({date}) | {} | {} | {competitor} | {advantage} | {goal} | {met} |\n",
            f.suite,
            f.name,
            number(f.value, &f.unit)
        ));
    }
    out
}

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A horizontal bar chart: for each figure with a competitor, Faultline's advantage (log
/// scale, 1x marked); for each with a goal, the share of the goal reached.
pub(crate) fn chart(figures: &[(Figure, String)]) -> String {
    let rows: Vec<(String, f64, &str)> = figures
        .iter()
        .flat_map(|(f, _)| {
            let mut rows = Vec::new();
            if let (Some(a), Some((name, _))) = (f.advantage(), &f.competitor) {
                rows.push((format!("{}: vs {name}", f.name), a, "#2f6fdf"));
            }
            if let (Some(goal), None) = (f.goal, &f.competitor) {
                let reached = if f.higher_is_better {
                    f.value / goal
                } else {
                    goal / f.value
                };
                if reached.is_finite() && reached > 0.0 {
                    rows.push((format!("{}: of the goal", f.name), reached, "#8a5cd1"));
                }
            }
            rows
        })
        .collect();
    let (label_w, bar_w, row_h, top) = (520.0, 360.0, 26.0, 44.0);
    let height = top + row_h * rows.len() as f64 + 30.0;
    // Log scale from 0.1x to 100x.
    let x = |v: f64| label_w + (v.clamp(0.1, 100.0).log10() + 1.0) / 3.0 * bar_w;
    let mut svg = format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{height}" font-family="sans-serif" font-size="12">
<rect width="100%" height="100%" fill="#fff"/>
<text x="10" y="20" font-size="14" font-weight="bold">Faultline against its competitors (blue, same run) and its goals (purple); log scale, right of the line is better</text>
"##,
        w = label_w + bar_w + 90.0
    );
    for (tick, label) in [(0.1, "0.1x"), (1.0, "1x"), (10.0, "10x"), (100.0, "100x")] {
        let tx = x(tick);
        let stroke = if tick == 1.0 { "#222" } else { "#ddd" };
        svg.push_str(&format!(
            r##"<line x1="{tx}" y1="{}" x2="{tx}" y2="{}" stroke="{stroke}"/><text x="{tx}" y="{}" text-anchor="middle" fill="#555">{label}</text>
"##,
            top - 8.0,
            height - 24.0,
            height - 10.0
        ));
    }
    for (i, (label, value, color)) in rows.iter().enumerate() {
        let y = top + row_h * i as f64;
        let (x0, x1) = (x(1.0).min(x(*value)), x(1.0).max(x(*value)));
        svg.push_str(&format!(
            r#"<text x="{}" y="{}" text-anchor="end">{}</text><rect x="{x0}" y="{}" width="{}" height="{}" fill="{color}"/><text x="{}" y="{}">{value:.2}x</text>
"#,
            label_w - 8.0,
            y + 16.0,
            escape(label),
            y + 4.0,
            (x1 - x0).max(1.0),
            row_h - 8.0,
            x1 + 4.0,
            y + 16.0
        ));
    }
    svg.push_str("</svg>\n");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = r#"
<!-- bench:logger -->
Date: 2026-12-01 15:13 UTC
<!-- figure {"name": "caller ns per call", "unit": "ns", "value": 400, "better": "lower", "competitor": "tracing-appender", "competitor_value": 3600, "goal": 200} -->
<!-- /bench:logger -->
<!-- bench:summary -->
<!-- figure {"name": "ignored", "value": 1} -->
<!-- /bench:summary -->
<!-- bench:ingest -->
Date: 2026-12-02 10:00 UTC
<!-- figure {"name": "records/s at batch 100", "unit": "records/s", "value": 252250, "goal": 300000} -->
<!-- /bench:ingest -->
"#;

    #[test]
    fn figures_come_from_their_sections_with_the_run_date() {
        let f = figures(DOC);
        assert_eq!(f.len(), 2, "the summary's own lines are not figures");
        assert_eq!(f[0].0.suite, "logger");
        assert_eq!(f[0].1, "2026-12-01 15:13 UTC");
        assert!(
            (f[0].0.advantage().unwrap() - 9.0).abs() < 1e-9,
            "lower is better"
        );
        assert_eq!(f[0].0.goal_met(), Some(false));
        assert_eq!(f[1].0.suite, "ingest");
        assert_eq!(f[1].0.advantage(), None);
        assert_eq!(f[1].0.goal_met(), Some(false));
    }

    #[test]
    fn table_and_chart_show_every_figure() {
        let f = figures(DOC);
        let t = table(&f);
        assert!(t.contains("| ingest (2026-12-02 10:00 UTC) | records/s at batch 100 | 252,250 records/s | none runs here |  | ≥ 300,000 records/s | **no** |"), "{t}");
        assert!(
            t.contains("tracing-appender: 3600 ns | 9.00x | ≤ 200 ns | **no** |"),
            "{t}"
        );
        let svg = chart(&f);
        assert!(svg.contains("caller ns per call: vs tracing-appender"));
        assert!(svg.contains("9.00x") && svg.contains("0.84x"), "{svg}");
        assert!(svg.starts_with("<svg") && svg.trim_end().ends_with("</svg>"));
    }
}

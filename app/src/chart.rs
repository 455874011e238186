//! Query results drawn as SVG: lines over time (one per series) or horizontal bars per label. Rendered to
//! a string on the server or in the browser alike, so a chart arrives with the page.

use crate::query::{cell_text, chart_shape, number, ChartShape, QueryResult};
use chrono::{DateTime, Utc};
use std::collections::BTreeMap;
use std::fmt::Write;

const W: f64 = 760.0;
const H: f64 = 260.0;
const LEFT: f64 = 56.0;
const RIGHT: f64 = 16.0;
const TOP: f64 = 14.0;
const BOTTOM: f64 = 30.0;
pub const PALETTE: [&str; 8] = [
    "#1f4fd1", "#12805c", "#b42318", "#9a6700", "#7a3cc2", "#0e7490", "#c2410c", "#475569",
];

fn escape(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A round upper bound for the y axis.
fn nice_max(max: f64) -> f64 {
    if max <= 0.0 || !max.is_finite() {
        return 1.0;
    }
    let magnitude = 10f64.powf(max.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0]
        .into_iter()
        .map(|m| m * magnitude)
        .find(|v| *v >= max)
        .unwrap_or(max)
}

fn tick(v: f64) -> String {
    if v >= 100.0 || v == v.trunc() {
        format!("{v:.0}")
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// The chart for a result, or `None` when its columns do not make one.
pub fn render(result: &QueryResult) -> Option<String> {
    match chart_shape(result)? {
        ChartShape::Time { x, series, values } => lines(result, x, series, &values),
        ChartShape::Bars { label, values } => bars(result, label, values[0]),
    }
}

type Series = BTreeMap<String, Vec<(DateTime<Utc>, f64)>>;

fn lines(
    result: &QueryResult,
    x: usize,
    series: Option<usize>,
    values: &[usize],
) -> Option<String> {
    let mut all: Series = BTreeMap::new();
    for row in &result.rows {
        let Some(t) = row
            .get(x)
            .and_then(|v| v.as_str())
            .and_then(|s| s.parse::<DateTime<Utc>>().ok())
        else {
            continue;
        };
        for &c in values {
            let Some(y) = row.get(c).and_then(number) else {
                continue;
            };
            let mut name = series
                .and_then(|s| row.get(s))
                .map(cell_text)
                .unwrap_or_default();
            if values.len() > 1 || name.is_empty() {
                let col = &result.columns[c].name;
                name = if name.is_empty() {
                    col.clone()
                } else {
                    format!("{name} · {col}")
                };
            }
            all.entry(name).or_default().push((t, y));
        }
    }
    let points = all.values().flatten();
    let (t0, t1) = points.clone().fold(
        (None, None),
        |(lo, hi): (Option<DateTime<Utc>>, Option<DateTime<Utc>>), (t, _)| {
            (
                Some(lo.map_or(*t, |l| l.min(*t))),
                Some(hi.map_or(*t, |h| h.max(*t))),
            )
        },
    );
    let (t0, t1) = (t0?, t1?);
    let ymax = nice_max(points.map(|(_, y)| *y).fold(0.0, f64::max));
    let span = (t1 - t0).num_milliseconds().max(1) as f64;
    let px =
        |t: DateTime<Utc>| LEFT + (t - t0).num_milliseconds() as f64 / span * (W - LEFT - RIGHT);
    let py = |y: f64| TOP + (1.0 - y / ymax) * (H - TOP - BOTTOM);
    let mut svg = frame(ymax);
    let labels: &[(DateTime<Utc>, &str)] = if t1 == t0 {
        &[(t0, "start")]
    } else {
        &[(t0, "start"), (t0 + (t1 - t0) / 2, "middle"), (t1, "end")]
    };
    for &(label, t) in labels {
        let anchor = match t {
            "start" => "start",
            "end" => "end",
            _ => "middle",
        };
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="{anchor}" class="axis">{}</text>"#,
            px(label),
            H - 10.0,
            label.format("%d %b %H:%M")
        );
    }
    for (i, (name, mut pts)) in all.into_iter().enumerate() {
        pts.sort_by_key(|(t, _)| *t);
        let color = PALETTE[i % PALETTE.len()];
        let path: Vec<String> = pts
            .iter()
            .map(|(t, y)| format!("{:.1},{:.1}", px(*t), py(*y)))
            .collect();
        let _ = write!(
            svg,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2" points="{}" data-series="{}"><title>{}</title></polyline>"#,
            path.join(" "),
            escape(&name),
            escape(&name)
        );
        if pts.len() == 1 {
            let _ = write!(
                svg,
                r#"<circle cx="{:.1}" cy="{:.1}" r="3" fill="{color}"/>"#,
                px(pts[0].0),
                py(pts[0].1)
            );
        }
        let _ = write!(
            svg,
            r#"<rect x="{:.1}" y="{:.1}" width="10" height="10" fill="{color}"/><text x="{:.1}" y="{:.1}" class="legend">{}</text>"#,
            LEFT + 8.0 + (i % 4) as f64 * 175.0,
            TOP + 2.0 + (i / 4) as f64 * 14.0,
            LEFT + 22.0 + (i % 4) as f64 * 175.0,
            TOP + 11.0 + (i / 4) as f64 * 14.0,
            escape(&name)
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

fn frame(ymax: f64) -> String {
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {H}" role="img" xmlns="http://www.w3.org/2000/svg" data-chart="lines">"#
    );
    for k in 0..=4 {
        let v = ymax * k as f64 / 4.0;
        let y = TOP + (1.0 - k as f64 / 4.0) * (H - TOP - BOTTOM);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" class="gridline"/><text x="{:.1}" y="{:.1}" text-anchor="end" class="axis">{}</text>"#,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0,
            tick(v)
        );
    }
    svg
}

fn bars(result: &QueryResult, label: usize, value: usize) -> Option<String> {
    let mut items: Vec<(String, f64)> = result
        .rows
        .iter()
        .filter_map(|r| Some((cell_text(r.get(label)?), number(r.get(value)?)?)))
        .collect();
    if items.is_empty() {
        return None;
    }
    items.truncate(20);
    let max = nice_max(items.iter().map(|(_, v)| *v).fold(0.0, f64::max));
    let row_h = 22.0;
    let label_w = 200.0;
    let h = TOP + items.len() as f64 * row_h + 8.0;
    let mut svg = format!(
        r#"<svg class="chart" viewBox="0 0 {W} {h}" role="img" xmlns="http://www.w3.org/2000/svg" data-chart="bars">"#
    );
    for (i, (name, v)) in items.iter().enumerate() {
        let y = TOP + i as f64 * row_h;
        let w = (v / max) * (W - label_w - 80.0);
        let short: String = name.chars().take(28).collect();
        let _ = write!(
            svg,
            r#"<text x="{:.1}" y="{:.1}" text-anchor="end" class="axis">{}</text><rect x="{label_w}" y="{y:.1}" width="{w:.1}" height="{:.1}" fill="{}" data-bar="{}"><title>{}: {}</title></rect><text x="{:.1}" y="{:.1}" class="axis">{}</text>"#,
            label_w - 8.0,
            y + 14.0,
            escape(&short),
            row_h - 6.0,
            PALETTE[0],
            escape(name),
            escape(name),
            tick(*v),
            label_w + w + 6.0,
            y + 14.0,
            tick(*v)
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// Vertical bars for a daily series laid out over at least `slots` places (a month's days, so the bars
/// keep their width as the month fills), with an optional dashed reference line (e.g. the budget per day).
pub fn columns(
    points: &[(String, f64)],
    slots: usize,
    reference: Option<(f64, &str)>,
) -> Option<String> {
    if points.is_empty() {
        return None;
    }
    let top = points
        .iter()
        .map(|(_, v)| *v)
        .chain(reference.map(|(v, _)| v))
        .fold(0.0, f64::max);
    let ymax = nice_max(top);
    let mut svg = frame(ymax).replace("data-chart=\"lines\"", "data-chart=\"columns\"");
    let slot = (W - LEFT - RIGHT) / points.len().max(slots) as f64;
    let py = |y: f64| TOP + (1.0 - y / ymax) * (H - TOP - BOTTOM);
    for (i, (label, v)) in points.iter().enumerate() {
        let x = LEFT + i as f64 * slot + slot * 0.15;
        let _ = write!(
            svg,
            r#"<rect x="{x:.1}" y="{:.1}" width="{:.1}" height="{:.1}" fill="{}" data-column="{}"><title>{}: {}</title></rect>"#,
            py(*v),
            slot * 0.7,
            (H - BOTTOM) - py(*v),
            PALETTE[0],
            escape(label),
            escape(label),
            tick(*v)
        );
        if i == 0 || i + 1 == points.len() || i % 7 == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle" class="axis">{}</text>"#,
                x + slot * 0.35,
                H - 10.0,
                escape(label)
            );
        }
    }
    if let Some((v, label)) = reference {
        let y = py(v);
        let _ = write!(
            svg,
            r#"<line x1="{LEFT}" x2="{:.1}" y1="{y:.1}" y2="{y:.1}" stroke="{}" stroke-dasharray="5 4" data-reference=""/><text x="{:.1}" y="{:.1}" text-anchor="end" class="legend">{}</text>"#,
            W - RIGHT,
            PALETTE[2],
            W - RIGHT,
            y - 4.0,
            escape(label)
        );
    }
    svg.push_str("</svg>");
    Some(svg)
}

/// A half-circle gauge: `value` of `max`, with tick marks at `marks` (fractions of `max`).
pub fn gauge(value: f64, max: f64, marks: &[f64]) -> String {
    let (cx, cy, r) = (120.0, 120.0, 100.0);
    let share = if max > 0.0 {
        (value / max).clamp(0.0, 1.0)
    } else {
        0.0
    };
    let point = |f: f64, radius: f64| {
        let a = std::f64::consts::PI * (1.0 - f);
        (cx + radius * a.cos(), cy - radius * a.sin())
    };
    let (ex, ey) = point(share, r);
    let color = if value > max {
        PALETTE[2]
    } else if marks.iter().any(|m| share >= *m) {
        PALETTE[3]
    } else {
        PALETTE[1]
    };
    let mut svg = format!(
        r#"<svg class="gauge" viewBox="0 0 240 140" role="img" xmlns="http://www.w3.org/2000/svg" data-share="{:.3}"><path d="M 20 120 A 100 100 0 0 1 220 120" fill="none" stroke="var(--line, #e2e7f0)" stroke-width="18"/>"#,
        share
    );
    if share > 0.0 {
        let _ = write!(
            svg,
            r#"<path d="M 20 120 A 100 100 0 0 1 {ex:.1} {ey:.1}" fill="none" stroke="{color}" stroke-width="18"/>"#
        );
    }
    for m in marks {
        let (x1, y1) = point(*m, r - 14.0);
        let (x2, y2) = point(*m, r + 14.0);
        let _ = write!(
            svg,
            r#"<line x1="{x1:.1}" y1="{y1:.1}" x2="{x2:.1}" y2="{y2:.1}" stroke="{}" stroke-width="2"/>"#,
            PALETTE[7]
        );
    }
    let _ = write!(
        svg,
        r#"<text x="120" y="112" text-anchor="middle" class="gauge-value">{:.0}%</text></svg>"#,
        if max > 0.0 { value / max * 100.0 } else { 0.0 }
    );
    svg
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::query::ResultColumn;
    use serde_json::json;

    fn col(n: &str, t: &str) -> ResultColumn {
        ResultColumn {
            name: n.into(),
            ty: t.into(),
        }
    }

    #[test]
    fn a_time_series_becomes_one_line_per_series() {
        let r = QueryResult {
            columns: vec![
                col("cloud_RoleName", "string"),
                col("timestamp", "datetime"),
                col("p95", "real"),
            ],
            rows: vec![
                vec![json!("blue"), json!("2026-12-04T10:00:00Z"), json!(40.0)],
                vec![json!("blue"), json!("2026-12-04T10:05:00Z"), json!(42.0)],
                vec![json!("green"), json!("2026-12-04T10:00:00Z"), json!(120.0)],
            ],
            row_count: 3,
            partial: None,
            capped: false,
            elapsed_ms: 1,
            render: Some("timechart".into()),
        };
        let svg = render(&r).unwrap();
        assert_eq!(svg.matches("<polyline").count(), 2);
        assert!(svg.contains(r#"data-series="blue""#) && svg.contains(r#"data-series="green""#));
        assert!(
            svg.contains(">200<"),
            "the axis is rounded up from 120: {svg}"
        );
    }

    #[test]
    fn labels_and_numbers_become_bars() {
        let r = QueryResult {
            columns: vec![col("type", "string"), col("count_", "long")],
            rows: vec![
                vec![json!("TimeoutError"), json!("7")],
                vec![json!("<b>"), json!(2)],
            ],
            row_count: 2,
            partial: None,
            capped: false,
            elapsed_ms: 1,
            render: Some("barchart".into()),
        };
        let svg = render(&r).unwrap();
        assert_eq!(svg.matches("data-bar=").count(), 2);
        assert!(svg.contains("&lt;b&gt;") && !svg.contains("<b>"));
    }
}

//! The dependency graph drawn as SVG: resources in layers by longest path from the ones nothing depends on,
//! edges as curves, solid when Azure's own data shows the reference and dashed when only declared.

use crate::model::{Dependency, ResourceSummary};
use std::collections::BTreeMap;
use std::fmt::Write;

// Whole-pixel geometry: integers format faster than floats, and this runs on every overview render.
const NODE_W: i32 = 270;
const NODE_H: i32 = 34;
const COL_GAP: i32 = 120;
const ROW_GAP: i32 = 14;
const PAD: i32 = 12;

/// XML-escapes `s` in one pass.
fn escape(s: &str) -> std::borrow::Cow<'_, str> {
    if !s.contains(['&', '<', '>', '"']) {
        return std::borrow::Cow::Borrowed(s);
    }
    let mut out = String::with_capacity(s.len() + 8);
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            c => out.push(c),
        }
    }
    std::borrow::Cow::Owned(out)
}

/// Layer of each node: 0 for nodes without incoming edges, else 1 + the deepest predecessor.
fn layers(names: &[String], edges: &[Dependency]) -> BTreeMap<String, usize> {
    let mut layer: BTreeMap<String, usize> = names.iter().map(|n| (n.clone(), 0)).collect();
    // Longest-path relaxation; the graph is small and acyclic, so |V| rounds suffice (and bound any cycle).
    for _ in 0..names.len() {
        let mut changed = false;
        for e in edges {
            let (Some(&from), Some(&to)) = (layer.get(&e.from), layer.get(&e.to)) else {
                continue;
            };
            if to < from + 1 && from + 1 < names.len() {
                layer.insert(e.to.clone(), from + 1);
                changed = true;
            }
        }
        if !changed {
            break;
        }
    }
    layer
}

/// The SVG markup for `resources` and `edges`. Deterministic, so server and browser render the same.
/// Drawn once per distinct input: every request for the overview of one snapshot shows the same graph.
pub fn dependency_svg(resources: &[ResourceSummary], edges: &[Dependency]) -> String {
    use std::hash::{Hash, Hasher};
    static LAST: std::sync::Mutex<Option<(u64, String)>> = std::sync::Mutex::new(None);
    let mut h = std::collections::hash_map::DefaultHasher::new();
    for r in resources {
        (&r.name, &r.type_label, r.status.is_healthy()).hash(&mut h);
    }
    for e in edges {
        (&e.from, &e.to, &e.relation, e.observed).hash(&mut h);
    }
    let key = h.finish();
    if let Ok(last) = LAST.lock() {
        if let Some((_, svg)) = last.as_ref().filter(|(k, _)| *k == key) {
            return svg.clone();
        }
    }
    let svg = draw(resources, edges);
    if let Ok(mut last) = LAST.lock() {
        *last = Some((key, svg.clone()));
    }
    svg
}

fn draw(resources: &[ResourceSummary], edges: &[Dependency]) -> String {
    let names: Vec<String> = resources.iter().map(|r| r.name.clone()).collect();
    let layer = layers(&names, edges);
    let columns = layer.values().copied().max().unwrap_or(0) + 1;
    let mut rows_in: Vec<usize> = vec![0; columns];
    let mut pos: BTreeMap<&str, (i32, i32)> = BTreeMap::new();
    // Keep the estate's own order inside each column, so related resources sit together.
    for r in resources {
        let col = layer[&r.name];
        let row = rows_in[col];
        rows_in[col] += 1;
        let x = PAD + col as i32 * (NODE_W + COL_GAP);
        let y = PAD + row as i32 * (NODE_H + ROW_GAP);
        pos.insert(r.name.as_str(), (x, y));
    }
    let tallest = rows_in.iter().copied().max().unwrap_or(1) as i32;
    let columns = columns as i32;
    let width = PAD * 2 + columns * NODE_W + (columns - 1) * COL_GAP;
    let height = PAD * 2 + tallest * NODE_H + (tallest - 1).max(0) * ROW_GAP;

    let mut svg = String::with_capacity(16 * 1024);
    let _ = write!(
        svg,
        r#"<svg class="depgraph" viewBox="0 0 {width} {height}" width="100%" role="img" aria-label="Resource dependencies" xmlns="http://www.w3.org/2000/svg">"#
    );
    svg.push_str(r#"<defs><marker id="arrow" viewBox="0 0 10 10" refX="9" refY="5" markerWidth="7" markerHeight="7" orient="auto-start-reverse"><path d="M 0 0 L 10 5 L 0 10 z" fill="currentColor"/></marker></defs>"#);
    for e in edges {
        let (Some(&(x1, y1)), Some(&(x2, y2))) = (pos.get(e.from.as_str()), pos.get(e.to.as_str()))
        else {
            continue;
        };
        let (sx, sy) = (x1 + NODE_W, y1 + NODE_H / 2);
        let (tx, ty) = (x2, y2 + NODE_H / 2);
        let mid = (sx + tx) / 2;
        let class = if e.observed {
            "edge observed"
        } else {
            "edge declared"
        };
        let _ = write!(
            svg,
            r#"<path class="{class}" d="M {sx} {sy} C {mid} {sy}, {mid} {ty}, {tx} {ty}" marker-end="url(#arrow)"><title>{} {} {}{}</title></path>"#,
            escape(&e.from),
            escape(&e.relation),
            escape(&e.to),
            if e.observed {
                " (seen in Azure)"
            } else {
                " (declared only)"
            }
        );
    }
    for r in resources {
        let (x, y) = pos[r.name.as_str()];
        let class = if r.status.is_healthy() {
            "node"
        } else {
            "node unhealthy"
        };
        let _ = write!(
            svg,
            r#"<a href="/resources/{href}"><g class="{class}"><rect x="{x}" y="{y}" width="{NODE_W}" height="{NODE_H}" rx="6"/><text x="{tx}" y="{ty}">{name}</text><text class="sub" x="{tx}" y="{ty2}">{label}</text></g></a>"#,
            href = escape(&r.name),
            tx = x + 10,
            ty = y + 15,
            ty2 = y + 28,
            name = escape(&r.name),
            label = escape(&r.type_label),
        );
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dep(from: &str, to: &str) -> Dependency {
        Dependency {
            from: from.into(),
            to: to.into(),
            relation: "uses".into(),
            observed: true,
        }
    }

    #[test]
    fn layers_follow_longest_path() {
        let names: Vec<String> = ["a", "b", "c", "d"].iter().map(|s| s.to_string()).collect();
        let l = layers(&names, &[dep("a", "b"), dep("b", "c"), dep("a", "c")]);
        assert_eq!((l["a"], l["b"], l["c"], l["d"]), (0, 1, 2, 0));
    }

    #[test]
    fn cycles_terminate() {
        let names: Vec<String> = ["a", "b"].iter().map(|s| s.to_string()).collect();
        let l = layers(&names, &[dep("a", "b"), dep("b", "a")]);
        assert!(l["a"] <= 2 && l["b"] <= 2);
    }
}

//! A small hand-written SVG line chart of a sweep: sessions broken (left axis) and the mean
//! number of sessions in the table (right axis) against the swept timeout (log axis when the
//! range spans a factor of 10 or more). Output is deterministic: fixed size, fixed number
//! formatting, no timestamps.

use super::{Effect, PolicyResult};
use crate::time::Span;
use std::fmt::Write as _;

const W: f64 = 760.0;
const H: f64 = 440.0;
const LEFT: f64 = 80.0;
const RIGHT: f64 = 90.0;
const TOP: f64 = 56.0;
const BOTTOM: f64 = 70.0;

/// A number for a label: integers as such, else up to two decimals.
fn num(v: f64) -> String {
    if (v - v.round()).abs() < 1e-9 {
        format!("{}", v.round() as i64)
    } else {
        let s = format!("{v:.2}");
        s.trim_end_matches('0').trim_end_matches('.').to_string()
    }
}

/// A "nice" axis maximum ≥ v (1, 2, 2.5, 5 × 10^k).
fn nice_max(v: f64) -> f64 {
    if v <= 0.0 {
        return 1.0;
    }
    let p = 10f64.powf(v.log10().floor());
    for m in [1.0, 2.0, 2.5, 5.0, 10.0] {
        if m * p >= v - 1e-12 {
            return m * p;
        }
    }
    10.0 * p
}

/// An axis maximum ≥ `v` for a count (sessions broken): four times a whole step of 1, 2 or
/// 5 × 10^k, so that each of the axis's four intervals ends on a whole number of sessions.
fn count_max(v: f64) -> f64 {
    let quarter = (v / 4.0).max(1.0);
    let p = 10f64.powf(quarter.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .into_iter()
        .map(|m| m * p)
        .find(|s| *s >= quarter - 1e-9)
        .unwrap_or(10.0 * p);
    4.0 * step
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// Renders the chart for `points` (one per swept value of `key`).
pub fn render(title: &str, key: &str, values: &[Span], points: &[PolicyResult]) -> String {
    let mut s = String::new();
    let pw = W - LEFT - RIGHT;
    let ph = H - TOP - BOTTOM;
    let xs: Vec<f64> = values.iter().map(|v| v.as_secs_f64()).collect();
    let (lo, hi) = (
        xs.first().copied().unwrap_or(1.0),
        xs.last().copied().unwrap_or(2.0),
    );
    let log = lo > 0.0 && hi / lo >= 10.0;
    let fx = |x: f64| -> f64 {
        let t = if hi <= lo {
            0.5
        } else if log {
            (x.ln() - lo.ln()) / (hi.ln() - lo.ln())
        } else {
            (x - lo) / (hi - lo)
        };
        LEFT + t * pw
    };
    let broken: Vec<f64> = points.iter().map(|p| p.total_broken() as f64).collect();
    // The dashed series: affinity lost, or for a sweep of a close's grace (which breaks no
    // session: its connection had ended) the closed sessions whose late packet was lost.
    let grace = matches!(key, "tcp-fin" | "tcp-close-grace" | "tcp-rst");
    let (lost, lost_label): (Vec<f64>, _) = if grace {
        (
            points
                .iter()
                .map(|p| p.dropped_after_close as f64)
                .collect(),
            "closed, a late packet lost",
        )
    } else {
        (
            points
                .iter()
                .map(|p| p.count(Effect::ReboundOtherMember) as f64)
                .collect(),
            "rebound to another member",
        )
    };
    let mean: Vec<f64> = points.iter().map(|p| p.mean_sessions).collect();
    let ymax_l = count_max(broken.iter().chain(&lost).copied().fold(0.0, f64::max));
    let ymax_r = nice_max(mean.iter().copied().fold(0.0, f64::max));
    let fyl = |y: f64| TOP + ph - y / ymax_l * ph;
    let fyr = |y: f64| TOP + ph - y / ymax_r * ph;

    let _ = writeln!(
        s,
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{H}" viewBox="0 0 {W} {H}" font-family="sans-serif" font-size="12">"#
    );
    let _ = writeln!(s, r#"<rect width="{W}" height="{H}" fill="white"/>"#);
    let _ = writeln!(
        s,
        r#"<text x="{}" y="24" text-anchor="middle" font-size="15" font-weight="bold">{}</text>"#,
        W / 2.0,
        esc(title)
    );
    // grid and left/right ticks
    for i in 0..=4 {
        let f = i as f64 / 4.0;
        let y = TOP + ph - f * ph;
        let _ = writeln!(
            s,
            r##"<line x1="{LEFT}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#dddddd"/>"##,
            LEFT + pw
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="end" fill="#c0392b">{}</text>"##,
            LEFT - 8.0,
            y + 4.0,
            num(f * ymax_l)
        );
        let _ = writeln!(
            s,
            r##"<text x="{:.1}" y="{:.1}" text-anchor="start" fill="#2471a3">{}</text>"##,
            LEFT + pw + 8.0,
            y + 4.0,
            num(f * ymax_r)
        );
    }
    // axes
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{TOP}" x2="{LEFT}" y2="{:.1}" stroke="black"/>"#,
        TOP + ph
    );
    let _ = writeln!(
        s,
        r#"<line x1="{:.1}" y1="{TOP}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        LEFT + pw,
        LEFT + pw,
        TOP + ph
    );
    let _ = writeln!(
        s,
        r#"<line x1="{LEFT}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        TOP + ph,
        LEFT + pw,
        TOP + ph
    );
    // x ticks at every point (labels thinned to at most 12)
    let every = values.len().div_ceil(12).max(1);
    for (i, (v, x)) in values.iter().zip(&xs).enumerate() {
        let px = fx(*x);
        let _ = writeln!(
            s,
            r#"<line x1="{px:.1}" y1="{:.1}" x2="{px:.1}" y2="{:.1}" stroke="black"/>"#,
            TOP + ph,
            TOP + ph + 5.0
        );
        if i % every == 0 || i + 1 == values.len() {
            let _ = writeln!(
                s,
                r#"<text x="{px:.1}" y="{:.1}" text-anchor="middle">{v}</text>"#,
                TOP + ph + 19.0
            );
        }
    }
    let _ = writeln!(
        s,
        r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{} timeout{}</text>"#,
        LEFT + pw / 2.0,
        H - 18.0,
        esc(key),
        if log { " (log scale)" } else { "" }
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate(20 {:.1}) rotate(-90)" text-anchor="middle" fill="#c0392b">sessions broken</text>"##,
        TOP + ph / 2.0
    );
    let _ = writeln!(
        s,
        r##"<text transform="translate({:.1} {:.1}) rotate(90)" text-anchor="middle" fill="#2471a3">mean sessions in table</text>"##,
        W - 20.0,
        TOP + ph / 2.0
    );
    let series = |s: &mut String, ys: &[f64], fy: &dyn Fn(f64) -> f64, color: &str, dash: &str| {
        let pts: Vec<String> = xs
            .iter()
            .zip(ys)
            .map(|(x, y)| format!("{:.1},{:.1}", fx(*x), fy(*y)))
            .collect();
        let _ = writeln!(
            s,
            r#"<polyline fill="none" stroke="{color}" stroke-width="2"{dash} points="{}"/>"#,
            pts.join(" ")
        );
        for p in &pts {
            let (x, y) = p.split_once(',').unwrap_or(("0", "0"));
            let _ = writeln!(s, r#"<circle cx="{x}" cy="{y}" r="3" fill="{color}"/>"#);
        }
    };
    series(&mut s, &broken, &fyl, "#c0392b", "");
    series(&mut s, &lost, &fyl, "#e67e22", r#" stroke-dasharray="5 3""#);
    series(&mut s, &mean, &fyr, "#2471a3", "");
    // legend
    let lx = LEFT + 12.0;
    for (i, (label, color, dash)) in [
        ("sessions broken (all effects)", "#c0392b", ""),
        (lost_label, "#e67e22", r#" stroke-dasharray="5 3""#),
        ("mean sessions in table (right axis)", "#2471a3", ""),
    ]
    .iter()
    .enumerate()
    {
        let y = TOP + 14.0 + 16.0 * i as f64;
        let _ = writeln!(
            s,
            r#"<line x1="{lx:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="{color}" stroke-width="2"{dash}/>"#,
            lx + 22.0
        );
        let _ = writeln!(
            s,
            r#"<text x="{:.1}" y="{:.1}">{label}</text>"#,
            lx + 28.0,
            y + 4.0
        );
    }
    s.push_str("</svg>\n");
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nice_numbers() {
        assert_eq!(nice_max(0.0), 1.0);
        assert_eq!(nice_max(3.0), 5.0);
        assert_eq!(nice_max(7.2), 10.0);
        assert_eq!(nice_max(21.0), 25.0);
        assert_eq!(num(2.5), "2.5");
        assert_eq!(num(3.0), "3");
        assert_eq!(num(0.333), "0.33");
    }

    #[test]
    fn count_axes_end_each_interval_on_a_whole_number() {
        for (v, max) in [(0.0, 4.0), (2.0, 4.0), (4.0, 4.0), (5.0, 8.0), (7.0, 8.0)] {
            assert_eq!(count_max(v), max, "{v}");
        }
        for (v, max) in [(9.0, 20.0), (21.0, 40.0), (41.0, 80.0), (150.0, 200.0)] {
            assert_eq!(count_max(v), max, "{v}");
        }
        for v in 0..2000 {
            let m = count_max(f64::from(v));
            assert!(m >= f64::from(v) && (m / 4.0).fract() == 0.0, "{v}: {m}");
        }
    }
}

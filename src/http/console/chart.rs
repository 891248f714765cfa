//! Charts as SVG drawn on the server: no script, no chart library, allowed by the console's
//! Content-Security-Policy (colours are presentation attributes, not styles).

use std::fmt::Write;

/// One stacked bar: its label and its parts, bottom first, each a (value, colour).
pub struct Bar {
    pub label: String,
    pub parts: Vec<(i64, &'static str)>,
    /// What a pointer over it tells (`<title>`).
    pub title: String,
}

/// Escapes text for SVG.
fn escape(s: &str) -> String {
    s.replace('&', "&amp;").replace('<', "&lt;").replace('>', "&gt;").replace('"', "&quot;")
}

/// A stacked bar chart, `label_every` bars labelled on the x axis.
pub fn stacked_bars(bars: &[Bar], label_every: usize, aria_label: &str) -> String {
    let (width, height, left, bottom, top) = (960.0, 220.0, 40.0, 22.0, 8.0);
    let max = bars.iter().map(|b| b.parts.iter().map(|p| p.0).sum::<i64>()).max().unwrap_or(0).max(1);
    // Four gridlines of a round step: 1, 2 or 5 times a power of ten.
    let mut step = 1i64;
    'found: for power in (0..18).map(|e| 10i64.pow(e)) {
        for m in [1, 2, 5] {
            if m * power * 4 >= max {
                step = m * power;
                break 'found;
            }
        }
    }
    let scale_max = step * 4;
    let plot_h = height - bottom - top;
    let slot = (width - left) / bars.len().max(1) as f64;
    let mut svg = String::new();
    let _ = write!(
        svg,
        r#"<svg class="chart" viewBox="0 0 {width} {height}" role="img" aria-label="{}">"#,
        escape(aria_label)
    );
    for i in 0..=4 {
        let v = scale_max * i / 4;
        let y = top + plot_h - plot_h * v as f64 / scale_max as f64;
        let _ = write!(
            svg,
            r##"<line x1="{left}" x2="{width}" y1="{y:.1}" y2="{y:.1}" stroke="#d9e2ec" stroke-width="1"/><text x="{:.1}" y="{:.1}" text-anchor="end">{v}</text>"##,
            left - 4.0,
            y + 3.0
        );
    }
    for (i, bar) in bars.iter().enumerate() {
        let x = left + slot * i as f64 + slot * 0.15;
        let w = slot * 0.7;
        let mut base = 0i64;
        let _ = write!(svg, "<g><title>{}</title>", escape(&bar.title));
        for (value, colour) in &bar.parts {
            if *value == 0 {
                continue;
            }
            let y0 = top + plot_h - plot_h * (base + value) as f64 / scale_max as f64;
            let h = plot_h * *value as f64 / scale_max as f64;
            let _ = write!(svg, r#"<rect x="{x:.1}" y="{y0:.1}" width="{w:.1}" height="{h:.1}" fill="{colour}"/>"#);
            base += value;
        }
        svg.push_str("</g>");
        if label_every > 0 && i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + w / 2.0,
                height - 6.0,
                escape(&bar.label)
            );
        }
    }
    svg.push_str("</svg>");
    svg
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bars_scale_to_the_largest_and_escape_their_labels() {
        let bars = vec![
            Bar { label: "08".into(), parts: vec![(3, "#111"), (1, "#222")], title: "08 <3>".into() },
            Bar { label: "09".into(), parts: vec![(0, "#111")], title: "09".into() },
        ];
        let svg = stacked_bars(&bars, 1, "a & b");
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
        assert!(svg.contains("aria-label=\"a &amp; b\"") && svg.contains("08 &lt;3&gt;"));
        assert_eq!(svg.matches("<rect").count(), 2, "zero parts draw nothing");
        assert!(!svg.contains("style="), "no styles: the CSP forbids them");
    }
}

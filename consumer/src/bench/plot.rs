//! An SVG chart of bench results: grouped bars per matrix row, one bar per relay, in two
//! panels (throughput and CPU per GB). Plain SVG text, no dependencies.

use std::fmt::Write as _;

use super::report::{size_text, Matrix};
use super::BenchReport;

const COLORS: [&str; 6] = [
    "#7f7f7f", "#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd",
];
const W: f64 = 960.0;
const PANEL_H: f64 = 300.0;
const LEFT: f64 = 70.0;
const RIGHT: f64 = 20.0;
const TOP: f64 = 40.0;
const BOTTOM: f64 = 60.0;

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
}

/// A "nice" axis maximum and tick step for values up to `max`.
pub fn nice_axis(max: f64) -> (f64, f64) {
    if max.is_nan() || max <= 0.0 || !max.is_finite() {
        return (1.0, 0.25);
    }
    let raw = max / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 2.5, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag);
    ((max / step).ceil() * step, step)
}

fn panel(
    out: &mut String,
    m: &Matrix,
    y0: f64,
    title: &str,
    unit: &str,
    f: &dyn Fn(&BenchReport) -> Option<f64>,
) {
    let plot_w = W - LEFT - RIGHT;
    let plot_h = PANEL_H - TOP - BOTTOM;
    let max = m
        .rows
        .keys()
        .flat_map(|k| m.labels.iter().filter_map(move |l| m.get(k, l, f)))
        .fold(0.0f64, f64::max);
    let (axis_max, step) = nice_axis(max);
    let _ = writeln!(
        out,
        r#"<text x="{:.1}" y="{:.1}" font-size="15" font-weight="bold">{}</text>"#,
        LEFT,
        y0 + 22.0,
        esc(title)
    );
    let y_of = |v: f64| y0 + TOP + plot_h * (1.0 - v / axis_max);
    let mut t = 0.0;
    while t <= axis_max + step / 2.0 {
        let y = y_of(t);
        let _ = writeln!(
            out,
            r##"<line x1="{LEFT:.1}" y1="{y:.1}" x2="{:.1}" y2="{y:.1}" stroke="#ddd"/><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="end">{t}</text>"##,
            W - RIGHT,
            LEFT - 6.0,
            y + 4.0
        );
        t += step;
    }
    let _ = writeln!(
        out,
        r#"<text x="14" y="{:.1}" font-size="12" transform="rotate(-90 14 {:.1})" text-anchor="middle">{}</text>"#,
        y0 + TOP + plot_h / 2.0,
        y0 + TOP + plot_h / 2.0,
        esc(unit)
    );
    let groups = m.rows.len().max(1) as f64;
    let group_w = plot_w / groups;
    let bar_w = (group_w * 0.8) / m.labels.len().max(1) as f64;
    for (gi, key) in m.rows.keys().enumerate() {
        let gx = LEFT + group_w * gi as f64 + group_w * 0.1;
        for (li, label) in m.labels.iter().enumerate() {
            let Some(v) = m.get(key, label, f) else {
                continue;
            };
            let x = gx + bar_w * li as f64;
            let y = y_of(v);
            let _ = writeln!(
                out,
                r#"<rect x="{x:.1}" y="{y:.1}" width="{:.1}" height="{:.1}" fill="{}"><title>{}: {v:.2} {}</title></rect>"#,
                (bar_w - 2.0).max(1.0),
                (y0 + TOP + plot_h - y).max(0.0),
                COLORS[li % COLORS.len()],
                esc(label),
                esc(unit)
            );
            let _ = writeln!(
                out,
                r#"<text x="{:.1}" y="{:.1}" font-size="9" text-anchor="middle">{}</text>"#,
                x + bar_w / 2.0 - 1.0,
                y - 3.0,
                if v >= 100.0 {
                    format!("{v:.0}")
                } else {
                    format!("{v:.1}")
                }
            );
        }
        let (size, streams, conns, sessions, index, format) = *key;
        let streams = super::report::streams_text(streams, conns, sessions, format);
        let _ = writeln!(
            out,
            r#"<text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{} ×{streams}</text><text x="{:.1}" y="{:.1}" font-size="11" text-anchor="middle">{}</text>"#,
            gx + group_w * 0.4,
            y0 + TOP + plot_h + 16.0,
            size_text(size),
            gx + group_w * 0.4,
            y0 + TOP + plot_h + 30.0,
            if index { "index" } else { "no index" }
        );
    }
    let _ = writeln!(
        out,
        r#"<line x1="{LEFT:.1}" y1="{:.1}" x2="{:.1}" y2="{:.1}" stroke="black"/>"#,
        y0 + TOP + plot_h,
        W - RIGHT,
        y0 + TOP + plot_h
    );
}

/// The SVG document.
pub fn svg(m: &Matrix) -> String {
    let h = 2.0 * PANEL_H + 40.0;
    let mut out = format!(
        r#"<svg xmlns="http://www.w3.org/2000/svg" width="{W}" height="{h}" viewBox="0 0 {W} {h}" font-family="sans-serif">
<rect width="100%" height="100%" fill="white"/>
"#
    );
    panel(&mut out, m, 0.0, "Ingest throughput", "MB/s", &|r| {
        Some(r.mb_per_s)
    });
    panel(
        &mut out,
        m,
        PANEL_H,
        "Relay CPU per GB received",
        "CPU s / GB",
        &|r| r.relay_cpu_s_per_gb,
    );
    let mut x = LEFT;
    for (i, l) in m.labels.iter().enumerate() {
        let _ = writeln!(
            out,
            r#"<rect x="{x:.1}" y="{:.1}" width="12" height="12" fill="{}"/><text x="{:.1}" y="{:.1}" font-size="12">{}</text>"#,
            h - 28.0,
            COLORS[i % COLORS.len()],
            x + 16.0,
            h - 18.0,
            esc(l)
        );
        x += 30.0 + 8.0 * l.len() as f64;
    }
    out.push_str("</svg>\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis() {
        assert_eq!(nice_axis(782.0), (800.0, 200.0));
        assert_eq!(nice_axis(55.0), (60.0, 20.0));
        assert_eq!(nice_axis(0.0), (1.0, 0.25));
        let (max, step) = nice_axis(1234.0);
        assert!(max >= 1234.0 && step > 0.0);
    }

    #[test]
    fn svg_has_a_bar_per_value() {
        let r = |label: &str, mbs: f64| BenchReport {
            label: Some(label.into()),
            streams: 4,
            connections: 1,
            sessions: 1,
            packet_size: 4096,
            index: true,
            index_window: 0,
            seconds: 1.0,
            packets: 1,
            bytes: 1,
            events: 1,
            mb_per_s: mbs,
            packets_per_s: 1.0,
            index_rtt_us: None,
            relay_cpu_s: None,
            relay_cpu_s_per_gb: Some(2.0),
            relay_paths: vec![],
            trace_format: Default::default(),
        };
        let m = Matrix::new(vec![r("a<b", 10.0), r("c", 20.0)]);
        let s = svg(&m);
        assert!(s.starts_with("<svg") && s.trim_end().ends_with("</svg>"));
        assert_eq!(s.matches("<rect x=").count(), 4 + 2);
        assert!(s.contains("a&lt;b"));
        assert!(s.contains("4 KiB ×4"));
    }
}

//! SVG charts drawn by hand (no chart service, no JS): axes with ticks and labels, a title and a
//! legend, readable when printed or pasted into a slide.

use super::campaigns::CampaignReport;
use std::fmt::Write;

const COLORS: &[&str] = &[
    "#2457c5", "#d9822b", "#1f8a4c", "#c0392b", "#7a2fb5", "#138d90", "#8c6d1f", "#5b6770",
];
const ANSWERED: &str = "#1f8a4c";
const ABANDONED: &str = "#c0392b";

/// Escapes text for SVG.
fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// A "nice" axis maximum and step for `max` (1, 2 or 5 × 10^n steps, about 5 ticks).
fn nice(max: u64) -> (u64, u64) {
    let max = max.max(1);
    let raw = max as f64 / 5.0;
    let mag = 10f64.powf(raw.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * mag)
        .find(|s| *s >= raw)
        .unwrap_or(10.0 * mag)
        .max(1.0) as u64;
    (max.div_ceil(step) * step, step)
}

/// Both campaign charts in one SVG: calls by hours since the send (one line per campaign), and
/// answered vs abandoned calls per campaign (stacked bars).
pub fn campaign_chart(r: &CampaignReport) -> String {
    let (w, h) = (
        960.0,
        300.0 + 46.0 * r.campaigns.len().max(1) as f64 + 150.0,
    );
    let mut s = String::new();
    let _ = write!(
        s,
        "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{w}\" height=\"{h}\" viewBox=\"0 0 {w} {h}\" font-family=\"sans-serif\" font-size=\"12\">\
         <rect width=\"100%\" height=\"100%\" fill=\"#ffffff\"/>"
    );
    hours_panel(&mut s, r, 70.0, 40.0, 640.0, 220.0);
    outcome_panel(&mut s, r, 70.0, 330.0, 640.0);
    s.push_str("</svg>\n");
    s
}

fn hours_panel(s: &mut String, r: &CampaignReport, x0: f64, y0: f64, pw: f64, ph: f64) {
    let _ = write!(
        s,
        "<text x=\"{x0}\" y=\"{}\" font-size=\"15\" font-weight=\"bold\">Calls by hours since the SMS was sent</text>",
        y0 - 16.0
    );
    let hours = r
        .campaigns
        .iter()
        .map(|c| c.by_hour.len())
        .max()
        .unwrap_or(1)
        .max(1);
    let top = r
        .campaigns
        .iter()
        .flat_map(|c| c.by_hour.iter().copied())
        .max()
        .unwrap_or(0);
    let (ymax, step) = nice(top);
    let yb = y0 + ph;
    let xs = |i: usize| x0 + (i as f64 + 0.5) * pw / hours as f64;
    let ys = |v: u64| yb - v as f64 * ph / ymax as f64;
    // Grid and y ticks.
    let mut v = 0;
    while v <= ymax {
        let y = ys(v);
        let _ = write!(
            s,
            "<line x1=\"{x0}\" y1=\"{y}\" x2=\"{}\" y2=\"{y}\" stroke=\"#e3e7eb\"/><text x=\"{}\" y=\"{}\" text-anchor=\"end\">{v}</text>",
            x0 + pw,
            x0 - 6.0,
            y + 4.0
        );
        v += step;
    }
    // Axes.
    let _ = write!(
        s,
        "<line x1=\"{x0}\" y1=\"{y0}\" x2=\"{x0}\" y2=\"{yb}\" stroke=\"#333\"/><line x1=\"{x0}\" y1=\"{yb}\" x2=\"{}\" y2=\"{yb}\" stroke=\"#333\"/>",
        x0 + pw
    );
    let every = hours.div_ceil(12).max(1);
    for i in (0..hours).step_by(every) {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{i}</text>",
            xs(i),
            yb + 16.0
        );
    }
    let _ = write!(
        s,
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">hours since the send</text>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\" transform=\"rotate(-90 {} {})\">calls</text>",
        x0 + pw / 2.0,
        yb + 34.0,
        x0 - 44.0,
        y0 + ph / 2.0,
        x0 - 44.0,
        y0 + ph / 2.0
    );
    // Grouped bars: one group per hour, one bar per campaign.
    let n = r.campaigns.len().max(1) as f64;
    let group = pw / hours as f64;
    let bar = (group * 0.8 / n).max(1.0);
    for (k, c) in r.campaigns.iter().enumerate() {
        let color = COLORS[k % COLORS.len()];
        for (i, v) in c.by_hour.iter().enumerate() {
            if *v == 0 {
                continue;
            }
            let x = xs(i) - group * 0.4 + bar * k as f64;
            let y = ys(*v);
            let _ = write!(
                s,
                "<rect x=\"{x:.1}\" y=\"{y:.1}\" width=\"{bar:.1}\" height=\"{:.1}\" fill=\"{color}\"><title>{}: {v} calls in hour {i}</title></rect>",
                yb - y,
                esc(&c.campaign)
            );
        }
        // Legend.
        let ly = y0 + 8.0 + 20.0 * k as f64;
        let lx = x0 + pw + 30.0;
        let _ = write!(
            s,
            "<rect x=\"{lx}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{color}\"/><text x=\"{}\" y=\"{}\">{} ({} calls)</text>",
            ly - 2.0,
            lx + 20.0,
            ly + 4.0,
            esc(&c.campaign),
            c.calls
        );
    }
    if r.campaigns.is_empty() {
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\" fill=\"#666\">no campaigns in this period</text>",
            x0 + pw / 2.0,
            y0 + ph / 2.0
        );
    }
}

fn outcome_panel(s: &mut String, r: &CampaignReport, x0: f64, y0: f64, pw: f64) {
    let _ = write!(
        s,
        "<text x=\"{x0}\" y=\"{y0}\" font-size=\"15\" font-weight=\"bold\">Answered and abandoned calls per campaign</text>"
    );
    let top = r
        .campaigns
        .iter()
        .map(|c| c.answered + c.abandoned)
        .max()
        .unwrap_or(0);
    let (xmax, step) = nice(top);
    let bar_top = y0 + 20.0;
    let rows = r.campaigns.len().max(1) as f64;
    let yb = bar_top + 46.0 * rows;
    let label_w = 150.0;
    let bx = x0 + label_w;
    let bw = pw - label_w;
    let xs = |v: u64| bx + v as f64 * bw / xmax as f64;
    let mut v = 0;
    while v <= xmax {
        let x = xs(v);
        let _ = write!(
            s,
            "<line x1=\"{x}\" y1=\"{bar_top}\" x2=\"{x}\" y2=\"{yb}\" stroke=\"#e3e7eb\"/><text x=\"{x}\" y=\"{}\" text-anchor=\"middle\">{v}</text>",
            yb + 16.0
        );
        v += step;
    }
    let _ = write!(
        s,
        "<line x1=\"{bx}\" y1=\"{bar_top}\" x2=\"{bx}\" y2=\"{yb}\" stroke=\"#333\"/><line x1=\"{bx}\" y1=\"{yb}\" x2=\"{}\" y2=\"{yb}\" stroke=\"#333\"/>\
         <text x=\"{}\" y=\"{}\" text-anchor=\"middle\">calls</text>",
        bx + bw,
        bx + bw / 2.0,
        yb + 34.0
    );
    for (k, c) in r.campaigns.iter().enumerate() {
        let y = bar_top + 10.0 + 46.0 * k as f64;
        let (a, b) = (xs(c.answered) - bx, xs(c.abandoned) - bx);
        let _ = write!(
            s,
            "<text x=\"{}\" y=\"{}\" text-anchor=\"end\">{}</text>\
             <rect x=\"{bx}\" y=\"{y}\" width=\"{a:.1}\" height=\"24\" fill=\"{ANSWERED}\"/>\
             <rect x=\"{:.1}\" y=\"{y}\" width=\"{b:.1}\" height=\"24\" fill=\"{ABANDONED}\"/>\
             <text x=\"{:.1}\" y=\"{}\">{} answered · {} abandoned</text>",
            bx - 8.0,
            y + 16.0,
            esc(&c.campaign),
            bx + a,
            bx + a + b + 6.0,
            y + 16.0,
            c.answered,
            c.abandoned
        );
    }
    let ly = y0 - 16.0;
    let lx = x0 + 420.0;
    let _ = write!(
        s,
        "<rect x=\"{lx}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{ANSWERED}\"/><text x=\"{}\" y=\"{}\">answered</text>\
         <rect x=\"{}\" y=\"{}\" width=\"12\" height=\"12\" fill=\"{ABANDONED}\"/><text x=\"{}\" y=\"{}\">abandoned</text>",
        ly + 4.0,
        lx + 18.0,
        ly + 14.0,
        lx + 100.0,
        ly + 4.0,
        lx + 118.0,
        ly + 14.0
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axis_steps_are_round_numbers() {
        assert_eq!(nice(0), (1, 1));
        assert_eq!(nice(7), (8, 2));
        assert_eq!(nice(43), (50, 10));
        assert_eq!(nice(1234), (1500, 500));
    }

    #[test]
    fn campaign_names_are_escaped() {
        let r = CampaignReport {
            since: 0,
            until: 1,
            attribution: Default::default(),
            campaigns: vec![super::super::campaigns::CampaignRow {
                campaign: "<b>&".into(),
                offer: String::new(),
                window_minutes: 60,
                recipients: 1,
                callers: 0,
                response_pct: None,
                calls: 0,
                answered: 0,
                abandoned: 0,
                avg_wait_s: None,
                avg_talk_s: None,
                dispositions: Default::default(),
                conversion_pct: None,
                by_hour: vec![0],
            }],
        };
        let svg = campaign_chart(&r);
        assert!(svg.contains("&lt;b&gt;&amp;"));
        assert!(!svg.contains("<b>"));
    }
}

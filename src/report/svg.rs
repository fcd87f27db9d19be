//! The one small SVG module the reports draw with: a chart frame with linear
//! axes and "nice" ticks, line series with point markers, histogram bars and
//! vertical markers (named in the legend, told apart by colour and dash).
//! Output is a self-contained `<svg>` element (no fonts, scripts or links),
//! each series a `<g class="series">` so a test can count them in the DOM.

use std::fmt::Write;

/// Width and height of every chart, in CSS pixels.
pub const WIDTH: f64 = 900.0;
/// See [`WIDTH`].
pub const HEIGHT: f64 = 380.0;
const LEFT: f64 = 84.0;
/// Room right of the plot for the legend, so it never covers data.
const RIGHT: f64 = 215.0;
/// The dash pattern of a dashed line series.
const LINE_DASH: &str = "6 4";
/// Vertical distance between legend entries.
const LEGEND_STEP: f64 = 15.0;
/// A white outline under text drawn inside the plot, so lines and bars
/// behind it never make it unreadable.
const HALO: &str =
    "stroke=\"#fff\" stroke-width=\"3\" stroke-linejoin=\"round\" paint-order=\"stroke\"";
const TOP: f64 = 34.0;
const BOTTOM: f64 = 56.0;

/// A colour-blind-safe palette (Okabe-Ito).
pub const PALETTE: &[&str] = &[
    "#0072B2", "#E69F00", "#009E73", "#D55E00", "#CC79A7", "#56B4E9", "#F0E442", "#000000",
];

/// Escapes text for XML and HTML (element content and attribute values).
pub fn escape(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    for c in text.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
    out
}

/// A linear axis: the data range it shows and how to print its ticks.
#[derive(Debug, Clone)]
pub struct Axis {
    /// Title under or beside the axis.
    pub title: String,
    /// Smallest value shown.
    pub min: f64,
    /// Largest value shown.
    pub max: f64,
    /// Prints a tick value.
    pub format: fn(f64) -> String,
}

impl Axis {
    /// An axis covering `values` (with 4% room at the top), from zero when
    /// `from_zero`.
    pub fn covering(
        title: &str,
        values: impl IntoIterator<Item = f64>,
        from_zero: bool,
        format: fn(f64) -> String,
    ) -> Self {
        let (mut min, mut max) = (f64::INFINITY, f64::NEG_INFINITY);
        for v in values.into_iter().filter(|v| v.is_finite()) {
            min = min.min(v);
            max = max.max(v);
        }
        if !min.is_finite() {
            (min, max) = (0.0, 1.0);
        }
        if from_zero {
            min = min.min(0.0);
            max = max.max(0.0);
        }
        if (max - min).abs() < f64::EPSILON * max.abs().max(1.0) {
            max = min + if min == 0.0 { 1.0 } else { min.abs() * 0.1 };
        }
        let room = (max - min) * 0.04;
        Self {
            title: title.to_string(),
            min: if from_zero && min >= 0.0 {
                min
            } else {
                min - room
            },
            max: max + room,
            format,
        }
    }

    /// About `count` round tick values inside the axis.
    pub fn ticks(&self, count: usize) -> Vec<f64> {
        let span = self.max - self.min;
        if span <= 0.0 || !span.is_finite() {
            return vec![self.min];
        }
        let raw = span / count.max(1) as f64;
        let magnitude = 10f64.powf(raw.log10().floor());
        let step = [1.0, 2.0, 2.5, 5.0, 10.0]
            .iter()
            .map(|m| m * magnitude)
            .find(|s| *s >= raw)
            .unwrap_or(10.0 * magnitude);
        let mut ticks = Vec::new();
        let mut value = (self.min / step).ceil() * step;
        while value <= self.max + step * 1e-9 && ticks.len() < 50 {
            ticks.push(if value.abs() < step * 1e-9 {
                0.0
            } else {
                value
            });
            value += step;
        }
        ticks
    }
}

/// One line series: points joined in order, with a marker at each.
#[derive(Debug, Clone)]
pub struct Line {
    /// Legend name.
    pub name: String,
    /// (x, y) points.
    pub points: Vec<(f64, f64)>,
    /// Stroke colour.
    pub colour: String,
    /// Dashed stroke.
    pub dashed: bool,
}

/// A single highlighted point (the plan in force, the recommended plan).
#[derive(Debug, Clone)]
pub struct Highlight {
    /// Label drawn beside it and in the legend.
    pub name: String,
    /// Position.
    pub point: (f64, f64),
    /// Fill colour.
    pub colour: String,
    /// Marker shape: `true` for a diamond, `false` for a ring.
    pub diamond: bool,
}

/// A vertical marker line across the plot (mean, p95, ...), named in the
/// legend.
#[derive(Debug, Clone)]
pub struct Marker {
    /// Legend text (the statistic and its value).
    pub name: String,
    /// x position.
    pub x: f64,
    /// Colour.
    pub colour: String,
    /// SVG dash pattern ([`dash_of`] gives each statistic its own).
    pub dash: &'static str,
}

/// The dash pattern of a statistic's marker, so markers of one colour stay
/// apart: mean long dashes, p95 short, p99 dots, CVaR95 dash-dot, anything
/// else medium.
pub fn dash_of(statistic: &str) -> &'static str {
    match statistic {
        "mean" => "9 3",
        "p95" => "4 3",
        "p99" => "1.5 2.5",
        "CVaR95" => "9 3 1.5 3",
        _ => "6 3",
    }
}

/// How a legend entry shows its item.
#[derive(Debug, Clone)]
enum Swatch {
    /// A filled square (bars).
    Fill,
    /// A short line with this dash pattern (lines, markers; `none` is solid).
    Dash(&'static str),
    /// A ring (a highlighted point).
    Ring,
    /// A diamond (a highlighted point).
    Diamond,
}

/// A chart being drawn.
pub struct Chart {
    id: String,
    title: String,
    x: Axis,
    y: Axis,
    body: String,
    legend: Vec<(String, String, Swatch)>,
}

impl Chart {
    /// Starts a chart with an element id, a title and its two axes.
    pub fn new(id: &str, title: &str, x: Axis, y: Axis) -> Self {
        Self {
            id: id.to_string(),
            title: title.to_string(),
            x,
            y,
            body: String::new(),
            legend: Vec::new(),
        }
    }

    fn px(&self, x: f64) -> f64 {
        LEFT + (x - self.x.min) / (self.x.max - self.x.min) * (WIDTH - LEFT - RIGHT)
    }

    fn py(&self, y: f64) -> f64 {
        HEIGHT - BOTTOM - (y - self.y.min) / (self.y.max - self.y.min) * (HEIGHT - TOP - BOTTOM)
    }

    /// Adds a line series.
    pub fn line(&mut self, line: &Line) {
        let points: Vec<String> = line
            .points
            .iter()
            .filter(|(x, y)| x.is_finite() && y.is_finite())
            .map(|&(x, y)| format!("{:.1},{:.1}", self.px(x), self.py(y)))
            .collect();
        let dash = if line.dashed {
            format!(" stroke-dasharray=\"{LINE_DASH}\"")
        } else {
            String::new()
        };
        let _ = write!(
            self.body,
            "<g class=\"series\" data-name=\"{}\" data-points=\"{}\"><polyline fill=\"none\" stroke=\"{}\" stroke-width=\"2\"{dash} points=\"{}\"/>",
            escape(&line.name),
            points.len(),
            line.colour,
            points.join(" ")
        );
        for p in &points {
            if let Some((x, y)) = p.split_once(',') {
                let _ = write!(
                    self.body,
                    "<circle cx=\"{x}\" cy=\"{y}\" r=\"2.5\" fill=\"{}\"/>",
                    line.colour
                );
            }
        }
        self.body.push_str("</g>");
        // The legend shows the line as drawn, so a solid and a dashed line
        // of one colour stay apart.
        let dash = if line.dashed { LINE_DASH } else { "none" };
        self.legend
            .push((line.name.clone(), line.colour.clone(), Swatch::Dash(dash)));
    }

    /// Adds histogram bars: `(from, to, height)` per bin, as one series:
    /// light bars under the series' outline, so overlapping distributions
    /// stay apart.
    pub fn bars(&mut self, name: &str, bins: &[(f64, f64, f64)], colour: &str) {
        let _ = write!(
            self.body,
            "<g class=\"series\" data-name=\"{}\" data-points=\"{}\">",
            escape(name),
            bins.len()
        );
        let base = self.py(self.y.min.max(0.0));
        // The outline follows each run of non-empty bins (up, across, down),
        // so it never paints the x axis where a series has no values.
        let mut outline = String::new();
        let mut open = false;
        for &(from, to, height) in bins {
            let (x0, x1, top) = (self.px(from), self.px(to), self.py(height));
            if height > 0.0 {
                if !open {
                    let _ = write!(outline, "M{x0:.1} {base:.1}");
                    open = true;
                }
                let _ = write!(outline, "L{x0:.1} {top:.1}L{x1:.1} {top:.1}");
            } else if open {
                let _ = write!(outline, "L{x0:.1} {base:.1}");
                open = false;
            }
            if height <= 0.0 {
                continue;
            }
            let _ = write!(
                self.body,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.3\"/>",
                x0,
                top.min(base),
                (x1 - x0).max(0.5),
                (base - top).abs()
            );
        }
        if let (true, Some(&(_, to, _))) = (open, bins.last()) {
            let _ = write!(outline, "L{:.1} {base:.1}", self.px(to));
        }
        if !outline.is_empty() {
            let _ = write!(
                self.body,
                "<path fill=\"none\" stroke=\"{colour}\" stroke-width=\"1.5\" d=\"{outline}\"/>"
            );
        }
        self.body.push_str("</g>");
        self.legend
            .push((name.to_string(), colour.to_string(), Swatch::Fill));
    }

    /// Adds a highlighted point with its label (beside it, on the side
    /// that keeps it inside the plot).
    pub fn highlight(&mut self, h: &Highlight) {
        let (x, y) = (self.px(h.point.0), self.py(h.point.1));
        let shape = if h.diamond {
            format!(
                "<path d=\"M{:.1} {:.1} l7 7 l-7 7 l-7 -7 z\" fill=\"{}\" stroke=\"#000\" stroke-width=\"1\"/>",
                x,
                y - 7.0,
                h.colour
            )
        } else {
            format!(
                "<circle cx=\"{x:.1}\" cy=\"{y:.1}\" r=\"7\" fill=\"none\" stroke=\"{}\" stroke-width=\"3\"/>",
                h.colour
            )
        };
        let (label_x, anchor) = self.label_side(x, 10.0);
        let _ = write!(
            self.body,
            "<g class=\"highlight\" data-name=\"{}\">{shape}<text x=\"{label_x:.1}\" y=\"{:.1}\" text-anchor=\"{anchor}\" font-size=\"12\" fill=\"#222\" {HALO}>{}</text></g>",
            escape(&h.name),
            if h.diamond { y - 10.0 } else { y + 20.0 },
            escape(&h.name)
        );
        let swatch = if h.diamond {
            Swatch::Diamond
        } else {
            Swatch::Ring
        };
        self.legend.push((h.name.clone(), h.colour.clone(), swatch));
    }

    /// Where a label beside pixel `x` starts, `gap` away: to the right in
    /// the left half of the plot, to the left (anchored at its end) in the
    /// right half, so it stays inside the plot and off the legend.
    fn label_side(&self, x: f64, gap: f64) -> (f64, &'static str) {
        if x > (LEFT + WIDTH - RIGHT) / 2.0 {
            (x - gap, "end")
        } else {
            (x + gap, "start")
        }
    }

    /// Adds a vertical marker, named in the legend with its colour and dash.
    pub fn marker(&mut self, m: &Marker) {
        if !(m.x >= self.x.min && m.x <= self.x.max) {
            return;
        }
        let x = self.px(m.x);
        let _ = write!(
            self.body,
            "<g class=\"marker\" data-name=\"{}\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"{}\"/></g>",
            escape(&m.name),
            TOP,
            HEIGHT - BOTTOM,
            m.colour,
            m.dash,
        );
        self.legend
            .push((m.name.clone(), m.colour.clone(), Swatch::Dash(m.dash)));
    }

    /// The finished `<svg>` element.
    pub fn finish(self) -> String {
        // A legend longer than the plot runs on below it, beside the x
        // axis's title, and the chart grows to hold it.
        let legend_bottom = TOP + 8.0 + LEGEND_STEP * self.legend.len() as f64;
        let height = HEIGHT.max(legend_bottom.ceil());
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg id=\"{}\" class=\"chart\" viewBox=\"0 0 {WIDTH} {height}\" width=\"{WIDTH}\" height=\"{height}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\">",
            escape(&self.id),
            escape(&self.title)
        );
        let _ = write!(
            svg,
            "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{height}\" fill=\"#fff\"/><text x=\"{LEFT}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>",
            escape(&self.title)
        );
        svg.push_str(&self.axes());
        svg.push_str(&self.body);
        svg.push_str(&self.legend_box());
        svg.push_str("</svg>");
        svg
    }

    fn axes(&self) -> String {
        let mut out = String::from("<g class=\"axes\" font-size=\"11\" fill=\"#444\">");
        let (x0, x1) = (LEFT, WIDTH - RIGHT);
        let (y0, y1) = (HEIGHT - BOTTOM, TOP);
        for t in self.y.ticks(6) {
            let y = self.py(t);
            let _ = write!(
                out,
                "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y:.1}\" y2=\"{y:.1}\" stroke=\"#e4e4e4\"/><text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"end\">{}</text>",
                x0 - 6.0,
                y + 4.0,
                escape(&(self.y.format)(t))
            );
        }
        for t in self.x.ticks(8) {
            let x = self.px(t);
            let _ = write!(
                out,
                "<line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{y0}\" y2=\"{:.1}\" stroke=\"#888\"/><text x=\"{x:.1}\" y=\"{:.1}\" text-anchor=\"middle\">{}</text>",
                y0 + 5.0,
                y0 + 18.0,
                escape(&(self.x.format)(t))
            );
        }
        let _ = write!(
            out,
            "<line x1=\"{x0}\" x2=\"{x1}\" y1=\"{y0}\" y2=\"{y0}\" stroke=\"#444\"/><line x1=\"{x0}\" x2=\"{x0}\" y1=\"{y0}\" y2=\"{y1}\" stroke=\"#444\"/>"
        );
        let _ = write!(
            out,
            "<text x=\"{:.1}\" y=\"{:.1}\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
            (x0 + x1) / 2.0,
            HEIGHT - 14.0,
            escape(&self.x.title)
        );
        let _ = write!(
            out,
            "<text transform=\"translate(16 {:.1}) rotate(-90)\" text-anchor=\"middle\" font-size=\"12\">{}</text>",
            (y0 + y1) / 2.0,
            escape(&self.y.title)
        );
        out.push_str("</g>");
        out
    }

    fn legend_box(&self) -> String {
        let mut out = String::from("<g class=\"legend\" font-size=\"11\">");
        let x = WIDTH - RIGHT + 12.0;
        for (i, (name, colour, swatch)) in self.legend.iter().enumerate() {
            let y = TOP + 8.0 + LEGEND_STEP * i as f64;
            let mid = y - 4.0;
            let _ = match swatch {
                Swatch::Fill => write!(
                    out,
                    "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"12\" height=\"10\" fill=\"{colour}\"/>",
                    x + 2.0,
                    y - 9.0
                ),
                Swatch::Dash(dash) => write!(
                    out,
                    "<line x1=\"{x:.1}\" x2=\"{:.1}\" y1=\"{mid:.1}\" y2=\"{mid:.1}\" stroke=\"{colour}\" stroke-width=\"2\" stroke-dasharray=\"{dash}\"/>",
                    x + 16.0
                ),
                Swatch::Ring => write!(
                    out,
                    "<circle cx=\"{:.1}\" cy=\"{mid:.1}\" r=\"4.5\" fill=\"none\" stroke=\"{colour}\" stroke-width=\"2\"/>",
                    x + 8.0
                ),
                Swatch::Diamond => write!(
                    out,
                    "<path d=\"M{:.1} {:.1} l5 5 l-5 5 l-5 -5 z\" fill=\"{colour}\" stroke=\"#000\" stroke-width=\"0.8\"/>",
                    x + 8.0,
                    mid - 5.0
                ),
            };
            let _ = write!(
                out,
                "<text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                x + 20.0,
                y,
                escape(name)
            );
        }
        out.push_str("</g>");
        out
    }
}

/// Bins `values` into `count` equal-width bins: `(from, to, share)` where
/// share is the fraction of values in the bin.
pub fn histogram(values: &[f64], count: usize) -> Vec<(f64, f64, f64)> {
    let finite: Vec<f64> = values.iter().copied().filter(|v| v.is_finite()).collect();
    if finite.is_empty() || count == 0 {
        return Vec::new();
    }
    let min = finite.iter().copied().fold(f64::INFINITY, f64::min);
    let max = finite.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let width = if max > min {
        (max - min) / count as f64
    } else {
        min.abs().max(1.0) * 0.01
    };
    let bins = if max > min { count } else { 1 };
    let mut counts = vec![0usize; bins];
    for v in &finite {
        let i = (((v - min) / width) as usize).min(bins - 1);
        counts[i] += 1;
    }
    let n = finite.len() as f64;
    counts
        .iter()
        .enumerate()
        .map(|(i, c)| {
            let from = min + width * i as f64;
            (from, from + width, *c as f64 / n)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ticks_are_round_and_inside() {
        let axis = Axis {
            title: String::new(),
            min: 0.0,
            max: 97.0,
            format: |v| format!("{v}"),
        };
        let ticks = axis.ticks(5);
        assert_eq!(ticks, vec![0.0, 20.0, 40.0, 60.0, 80.0]);
    }

    #[test]
    fn histogram_shares_sum_to_one() {
        let bins = histogram(&[1.0, 2.0, 2.0, 3.0, 10.0], 3);
        assert_eq!(bins.len(), 3);
        let total: f64 = bins.iter().map(|b| b.2).sum();
        assert!((total - 1.0).abs() < 1e-12);
        assert!((bins[0].2 - 0.8).abs() < 1e-12);
        assert_eq!(histogram(&[5.0, 5.0], 10).len(), 1);
        assert!(histogram(&[], 10).is_empty());
    }

    #[test]
    fn markers_are_named_in_the_legend_and_a_long_legend_grows_the_chart() {
        let axis = || Axis::covering("x", [0.0, 10.0], true, |v| format!("{v}"));
        let mut chart = Chart::new("c", "t", axis(), axis());
        chart.bars("plan", &[(0.0, 5.0, 3.0), (5.0, 10.0, 7.0)], PALETTE[0]);
        for (i, statistic) in ["mean", "p95", "p99", "CVaR95"].into_iter().enumerate() {
            chart.marker(&Marker {
                name: format!("plan {statistic}"),
                x: 2.0 * i as f64 + 1.0,
                colour: PALETTE[0].into(),
                dash: dash_of(statistic),
            });
        }
        let svg = chart.finish();
        assert_eq!(svg.matches("class=\"marker\"").count(), 4);
        let legend = &svg[svg.find("class=\"legend\"").unwrap()..];
        for statistic in ["mean", "p95", "p99", "CVaR95"] {
            assert!(
                legend.contains(&format!(">plan {statistic}<")),
                "{statistic}"
            );
            assert!(legend.contains(&format!("stroke-dasharray=\"{}\"", dash_of(statistic))));
        }
        assert!(svg.contains(&format!("height=\"{HEIGHT}\"")));

        let mut long = Chart::new("c", "t", axis(), axis());
        for i in 0..40 {
            long.bars(&format!("s{i}"), &[(0.0, 1.0, 1.0)], PALETTE[0]);
        }
        let svg = long.finish();
        let grown = TOP + 8.0 + LEGEND_STEP * 40.0;
        assert!(
            svg.contains(&format!("height=\"{}\"", grown.ceil())),
            "{}",
            &svg[..200]
        );
    }

    #[test]
    fn text_is_escaped() {
        assert_eq!(escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        let mut chart = Chart::new(
            "c",
            "<script>",
            Axis::covering("x", [0.0, 1.0], true, |v| format!("{v}")),
            Axis::covering("y", [0.0, 1.0], true, |v| format!("{v}")),
        );
        chart.line(&Line {
            name: "a<b".into(),
            points: vec![(0.0, 0.0), (1.0, 1.0)],
            colour: PALETTE[0].into(),
            dashed: false,
        });
        let svg = chart.finish();
        assert!(!svg.contains("<script>"));
        assert!(svg.contains("data-name=\"a&lt;b\""));
        assert_eq!(svg.matches("class=\"series\"").count(), 1);
    }
}

//! The one small SVG module the reports draw with: a chart frame with linear
//! axes and "nice" ticks, line series with point markers, histogram bars and
//! labelled vertical markers. Output is a self-contained `<svg>` element
//! (no fonts, scripts or links), each series a `<g class="series">` so a test
//! can count them in the DOM.

use std::fmt::Write;

/// Width and height of every chart, in CSS pixels.
pub const WIDTH: f64 = 900.0;
/// See [`WIDTH`].
pub const HEIGHT: f64 = 380.0;
const LEFT: f64 = 84.0;
/// Room right of the plot for the legend, so it never covers data.
const RIGHT: f64 = 190.0;
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

/// A vertical marker line across the plot (mean, p95, ...).
#[derive(Debug, Clone)]
pub struct Marker {
    /// Label at its top.
    pub name: String,
    /// x position.
    pub x: f64,
    /// Colour.
    pub colour: String,
}

/// A chart being drawn.
pub struct Chart {
    id: String,
    title: String,
    x: Axis,
    y: Axis,
    body: String,
    legend: Vec<(String, String)>,
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
            " stroke-dasharray=\"6 4\""
        } else {
            ""
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
        self.legend.push((line.name.clone(), line.colour.clone()));
    }

    /// Adds histogram bars: `(from, to, height)` per bin, as one series.
    pub fn bars(&mut self, name: &str, bins: &[(f64, f64, f64)], colour: &str) {
        let _ = write!(
            self.body,
            "<g class=\"series\" data-name=\"{}\" data-points=\"{}\">",
            escape(name),
            bins.len()
        );
        let base = self.py(self.y.min.max(0.0));
        for &(from, to, height) in bins {
            let (x0, x1, top) = (self.px(from), self.px(to), self.py(height));
            let _ = write!(
                self.body,
                "<rect x=\"{:.1}\" y=\"{:.1}\" width=\"{:.1}\" height=\"{:.1}\" fill=\"{colour}\" fill-opacity=\"0.55\" stroke=\"{colour}\" stroke-width=\"0.5\"/>",
                x0,
                top.min(base),
                (x1 - x0).max(0.5),
                (base - top).abs()
            );
        }
        self.body.push_str("</g>");
        self.legend.push((name.to_string(), colour.to_string()));
    }

    /// Adds a highlighted point with its label.
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
        let _ = write!(
            self.body,
            "<g class=\"highlight\" data-name=\"{}\">{shape}<text x=\"{:.1}\" y=\"{:.1}\" font-size=\"12\" fill=\"#222\">{}</text></g>",
            escape(&h.name),
            x + 10.0,
            if h.diamond { y - 10.0 } else { y + 20.0 },
            escape(&h.name)
        );
        self.legend.push((h.name.clone(), h.colour.clone()));
    }

    /// Adds a labelled vertical marker; `row` staggers labels that would collide.
    pub fn marker(&mut self, m: &Marker, row: usize) {
        if !(m.x >= self.x.min && m.x <= self.x.max) {
            return;
        }
        let x = self.px(m.x);
        let label_y = TOP + 12.0 + 14.0 * row as f64;
        // Labels of markers in the right half read leftwards, so they stay
        // inside the plot and off the legend.
        let (label_x, anchor) = if x > (LEFT + WIDTH - RIGHT) / 2.0 {
            (x - 4.0, "end")
        } else {
            (x + 4.0, "start")
        };
        let _ = write!(
            self.body,
            "<g class=\"marker\" data-name=\"{}\"><line x1=\"{x:.1}\" x2=\"{x:.1}\" y1=\"{:.1}\" y2=\"{:.1}\" stroke=\"{}\" stroke-width=\"2\" stroke-dasharray=\"4 3\"/><text x=\"{:.1}\" y=\"{label_y:.1}\" text-anchor=\"{anchor}\" font-size=\"11\" fill=\"{}\">{}</text></g>",
            escape(&m.name),
            TOP,
            HEIGHT - BOTTOM,
            m.colour,
            label_x,
            m.colour,
            escape(&m.name)
        );
    }

    /// The finished `<svg>` element.
    pub fn finish(self) -> String {
        let mut svg = String::new();
        let _ = write!(
            svg,
            "<svg id=\"{}\" class=\"chart\" viewBox=\"0 0 {WIDTH} {HEIGHT}\" width=\"{WIDTH}\" height=\"{HEIGHT}\" role=\"img\" aria-label=\"{}\" font-family=\"sans-serif\">",
            escape(&self.id),
            escape(&self.title)
        );
        let _ = write!(
            svg,
            "<rect x=\"0\" y=\"0\" width=\"{WIDTH}\" height=\"{HEIGHT}\" fill=\"#fff\"/><text x=\"{LEFT}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{}</text>",
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
        let x = WIDTH - RIGHT + 14.0;
        for (i, (name, colour)) in self.legend.iter().enumerate() {
            let y = TOP + 8.0 + 15.0 * i as f64;
            let _ = write!(
                out,
                "<rect x=\"{x}\" y=\"{:.1}\" width=\"10\" height=\"10\" fill=\"{colour}\"/><text x=\"{:.1}\" y=\"{:.1}\">{}</text>",
                y - 9.0,
                x + 14.0,
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

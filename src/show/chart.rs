//! [`Chart`]: bar and line charts drawn with plotters as inline SVG.
//!
//! In Jupyter a chart shows as `image/svg+xml`; inside a [`Report`](crate::show::Report) it is
//! embedded in the HTML block. No font files are needed (SVG text is drawn by the browser).
//!
//! A chart comes from vectors (`Chart::bar("Totals", labels, values)`) or straight from a
//! frame's columns (`Chart::bar(&df, "COUNTRY", "TOTAL")`, `Chart::line(&df, "start", "sum")`).
//! Category labels never overlap: when the longest label does not fit under its bar, the bars
//! turn horizontal, with the labels beside them.
//!
//! Titles, labels and series names go through [`crate::untrusted::line`] (plotters escapes the
//! markup characters, not newlines, control characters or evcxr's markers).

use plotters::prelude::*;
use polars::prelude::{DataFrame, DataType, TimeUnit};

use crate::error::{Error, Result};
use crate::untrusted;

/// Width of a label character in pixels at the axis font, a generous estimate for sans-serif
/// (the layout decision; a browser draws narrower).
const LABEL_CHAR_PX: f64 = 7.0;
/// Axis label font size in pixels (plotters' default label style is about 12 px).
const LABEL_FONT_PX: u32 = 12;

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Bars {
        labels: Vec<String>,
        values: Vec<f64>,
    },
    Lines {
        series: Vec<(String, Vec<(f64, f64)>)>,
        x_format: XFormat,
    },
    /// A chart that could not be built (a missing column): drawing it is an error that says why.
    Invalid(String),
}

/// How x values of a line chart are labelled.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum XFormat {
    Number,
    /// Unix seconds as `HH:MM:SS` (UTC).
    Time,
    /// Unix seconds as `YYYY-MM-DD`.
    Date,
}

/// What [`Chart::bar`] accepts: a title with labels and values, or a frame with the names of its
/// label column and its value column.
pub trait BarSource {
    /// The chart these arguments describe.
    fn into_chart(self) -> Chart;
}

impl<T: Into<String>> BarSource for (T, Vec<String>, Vec<f64>) {
    fn into_chart(self) -> Chart {
        Chart::new(
            self.0.into(),
            Kind::Bars {
                labels: self.1,
                values: self.2,
            },
        )
    }
}

impl BarSource for (&DataFrame, &str, &str) {
    fn into_chart(self) -> Chart {
        let (df, x, y) = self;
        let kind = match (labels_of(df, x), values_of(df, y)) {
            (Ok(labels), Ok(values)) => Kind::Bars {
                labels,
                values: values.into_iter().map(|v| v.unwrap_or(0.0)).collect(),
            },
            (Err(e), _) | (_, Err(e)) => Kind::Invalid(e.to_string()),
        };
        Chart::new(format!("{y} by {x}"), kind).axes(x, y)
    }
}

fn column_of<'a>(df: &'a DataFrame, name: &str) -> Result<&'a polars::prelude::Column> {
    df.column(name).map_err(|_| {
        let names: Vec<String> = df
            .get_column_names()
            .iter()
            .map(|s| s.to_string())
            .collect();
        Error::invalid(format!(
            "chart: the frame has no column {name:?} (its columns: {})",
            names.join(", ")
        ))
    })
}

/// A column's cells as label text (numbers and dates formatted, nulls as `null`).
fn labels_of(df: &DataFrame, name: &str) -> Result<Vec<String>> {
    let text = column_of(df, name)?.cast(&DataType::String)?;
    Ok(text
        .str()?
        .into_iter()
        .map(|s| s.unwrap_or("null").to_string())
        .collect())
}

/// A numeric (or decimal) column's cells as f64.
fn values_of(df: &DataFrame, name: &str) -> Result<Vec<Option<f64>>> {
    let c = column_of(df, name)?;
    if !c.dtype().is_primitive_numeric() && !matches!(c.dtype(), DataType::Decimal(..)) {
        return Err(Error::invalid(format!(
            "chart: column {name:?} is {}, not a number",
            c.dtype()
        )));
    }
    let v = c.cast(&DataType::Float64)?;
    Ok(v.f64()?.into_iter().collect())
}

/// An x column as numbers, and how to label them (dates and times as Unix seconds).
fn x_values_of(df: &DataFrame, name: &str) -> Result<(Vec<Option<f64>>, XFormat)> {
    let c = column_of(df, name)?;
    match c.dtype() {
        DataType::Datetime(..) => {
            let ms = c
                .cast(&DataType::Datetime(TimeUnit::Milliseconds, None))?
                .cast(&DataType::Int64)?;
            let secs = ms
                .i64()?
                .into_iter()
                .map(|v| v.map(|ms| ms as f64 / 1000.0));
            Ok((secs.collect(), XFormat::Time))
        }
        DataType::Date => {
            let days = c.cast(&DataType::Int32)?;
            let secs = days
                .i32()?
                .into_iter()
                .map(|d| d.map(|d| d as f64 * 86_400.0));
            Ok((secs.collect(), XFormat::Date))
        }
        _ => Ok((values_of(df, name)?, XFormat::Number)),
    }
}

/// A chart ready to render as SVG.
#[derive(Debug, Clone, PartialEq)]
pub struct Chart {
    title: String,
    x_desc: String,
    y_desc: String,
    size: (u32, u32),
    kind: Kind,
}

const PALETTE: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

impl Chart {
    fn new(title: String, kind: Kind) -> Chart {
        Chart {
            title,
            x_desc: String::new(),
            y_desc: String::new(),
            size: (640, 360),
            kind,
        }
    }

    /// A bar chart, from a title, labels and values of the same length
    /// (`Chart::bar("Totals", labels, values)`), or from a frame's label column and value
    /// column (`Chart::bar(&df, "COUNTRY", "TOTAL")`, titled "TOTAL by COUNTRY" until
    /// [`Chart::title`] says otherwise; a missing column is an error when the chart is drawn).
    pub fn bar<A, B, C>(a: A, b: B, c: C) -> Chart
    where
        (A, B, C): BarSource,
    {
        (a, b, c).into_chart()
    }

    /// A line chart with one or more named series of (x, y) points.
    pub fn lines(title: impl Into<String>, series: Vec<(String, Vec<(f64, f64)>)>) -> Chart {
        Chart::new(
            title.into(),
            Kind::Lines {
                series,
                x_format: XFormat::Number,
            },
        )
    }

    /// A line chart of a frame's column `y` over its column `x` (numbers, a date or a
    /// datetime, labelled as such); rows with a null are left out.
    pub fn line(df: &DataFrame, x: &str, y: &str) -> Chart {
        let kind = match (x_values_of(df, x), values_of(df, y)) {
            (Ok((xs, x_format)), Ok(ys)) => {
                let points = xs
                    .into_iter()
                    .zip(ys)
                    .filter_map(|(x, y)| Some((x?, y?)))
                    .collect();
                Kind::Lines {
                    series: vec![(y.to_string(), points)],
                    x_format,
                }
            }
            (Err(e), _) | (_, Err(e)) => Kind::Invalid(e.to_string()),
        };
        Chart::new(format!("{y} over {x}"), kind).axes(x, y)
    }

    /// The title above the chart.
    pub fn title(mut self, title: impl Into<String>) -> Chart {
        self.title = title.into();
        self
    }

    /// Axis descriptions.
    pub fn axes(mut self, x: impl Into<String>, y: impl Into<String>) -> Chart {
        self.x_desc = x.into();
        self.y_desc = y.into();
        self
    }

    /// Reads x values of a line chart as Unix seconds and labels them `HH:MM:SS` (UTC).
    pub fn time_axis(mut self) -> Chart {
        if let Kind::Lines { x_format, .. } = &mut self.kind {
            *x_format = XFormat::Time;
        }
        self
    }

    /// Size in pixels.
    pub fn size(mut self, width: u32, height: u32) -> Chart {
        self.size = (width.max(100), height.max(100));
        self
    }

    /// The chart as an SVG document.
    pub fn to_svg(&self) -> Result<String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, self.drawn_size()).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            match &self.kind {
                Kind::Bars { labels, values } => self.draw_bars(&root, labels, values)?,
                Kind::Lines { series, x_format } => self.draw_lines(&root, series, *x_format)?,
                Kind::Invalid(why) => return Err(Error::invalid(why.clone())),
            }
            root.present().map_err(draw_err)?;
        }
        Ok(svg)
    }

    /// The size drawn: horizontal bars get at least 22 px per bar.
    fn drawn_size(&self) -> (u32, u32) {
        match &self.kind {
            Kind::Bars { labels, .. } if !self.labels_fit_under_bars(labels) => {
                let rows = labels.len() as u32;
                (self.size.0, self.size.1.max(rows * 22 + 100))
            }
            _ => self.size,
        }
    }

    /// Whether the labels fit under vertical bars; otherwise the bars are drawn horizontally.
    fn labels_fit_under_bars(&self, labels: &[String]) -> bool {
        let plot_width = self.size.0.saturating_sub(60 + 20) as f64;
        let slot = plot_width / labels.len().max(1) as f64;
        let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        widest as f64 * LABEL_CHAR_PX + 6.0 <= slot
    }

    fn draw_bars(
        &self,
        root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
        labels: &[String],
        values: &[f64],
    ) -> Result<()> {
        if labels.len() != values.len() {
            return Err(Error::invalid(format!(
                "bar chart '{}': {} labels for {} values",
                self.title,
                labels.len(),
                values.len()
            )));
        }
        if !self.labels_fit_under_bars(labels) {
            return self.draw_horizontal_bars(root, labels, values);
        }
        let n = values.len().max(1);
        let (low, top) = value_range(values);
        let mut chart = ChartBuilder::on(root)
            .caption(untrusted::line(&self.title), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n - 1).into_segmented(), low..top)
            .map_err(draw_err)?;
        let names: Vec<String> = labels
            .iter()
            .map(|l| untrusted::line(l).into_owned())
            .collect();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(untrusted::line(&self.x_desc))
            .y_desc(untrusted::line(&self.y_desc))
            .x_labels(n)
            .x_label_style(("sans-serif", LABEL_FONT_PX))
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(values.iter().enumerate().map(|(i, v)| {
                let color = PALETTE[i % PALETTE.len()];
                let mut bar = Rectangle::new(
                    [
                        (SegmentValue::Exact(i), 0.0),
                        (SegmentValue::Exact(i + 1), *v),
                    ],
                    color.filled(),
                );
                bar.set_margin(0, 0, 6, 6);
                bar
            }))
            .map_err(draw_err)?;
        Ok(())
    }

    /// Bars from left to right, one per row with its label beside it (long labels never
    /// overlap: each has its own line, and the label area is as wide as the widest label).
    fn draw_horizontal_bars(
        &self,
        root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
        labels: &[String],
        values: &[f64],
    ) -> Result<()> {
        let n = values.len().max(1);
        let (low, top) = value_range(values);
        let widest = labels.iter().map(|l| l.chars().count()).max().unwrap_or(0);
        let label_area = ((widest as f64 * LABEL_CHAR_PX) as u32 + 16).min(self.size.0 / 2);
        // Rows are drawn top to bottom in the given order.
        let names: Vec<String> = labels
            .iter()
            .rev()
            .map(|l| untrusted::line(l).into_owned())
            .collect();
        let mut chart = ChartBuilder::on(root)
            .caption(untrusted::line(&self.title), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(label_area)
            .build_cartesian_2d(low..top, (0..n - 1).into_segmented())
            .map_err(draw_err)?;
        chart
            .configure_mesh()
            .disable_y_mesh()
            .x_desc(untrusted::line(&self.y_desc))
            .y_desc(untrusted::line(&self.x_desc))
            .y_labels(n)
            .y_label_style(("sans-serif", LABEL_FONT_PX))
            .y_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names.get(*i).cloned().unwrap_or_default(),
                _ => String::new(),
            })
            .draw()
            .map_err(draw_err)?;
        chart
            .draw_series(values.iter().rev().enumerate().map(|(i, v)| {
                let color = PALETTE[(n - 1 - i) % PALETTE.len()];
                let mut bar = Rectangle::new(
                    [
                        (0.0, SegmentValue::Exact(i)),
                        (*v, SegmentValue::Exact(i + 1)),
                    ],
                    color.filled(),
                );
                bar.set_margin(3, 3, 0, 0);
                bar
            }))
            .map_err(draw_err)?;
        Ok(())
    }

    fn draw_lines(
        &self,
        root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
        series: &[(String, Vec<(f64, f64)>)],
        x_format: XFormat,
    ) -> Result<()> {
        let pts = series.iter().flat_map(|(_, p)| p.iter());
        let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, 0.0f64, f64::MIN);
        for (x, y) in pts {
            x0 = x0.min(*x);
            x1 = x1.max(*x);
            y0 = y0.min(*y);
            y1 = y1.max(*y);
        }
        if x0 > x1 {
            (x0, x1, y1) = (0.0, 1.0, 1.0);
        }
        if (x1 - x0).abs() < f64::EPSILON {
            x1 = x0 + 1.0;
        }
        if (y1 - y0).abs() < f64::EPSILON {
            y1 = y0 + 1.0;
        }
        let mut chart = ChartBuilder::on(root)
            .caption(untrusted::line(&self.title), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d(x0..x1, y0..(y1 * 1.1))
            .map_err(draw_err)?;
        let fmt_x = move |x: &f64| {
            let time = |f: &str| {
                chrono::DateTime::from_timestamp(*x as i64, 0)
                    .map(|t| t.format(f).to_string())
                    .unwrap_or_default()
            };
            if x_format == XFormat::Time {
                time("%H:%M:%S")
            } else if x_format == XFormat::Date {
                time("%Y-%m-%d")
            } else if (x - x.round()).abs() < 1e-9 {
                format!("{x:.0}")
            } else {
                format!("{x:.2}")
            }
        };
        chart
            .configure_mesh()
            .x_desc(untrusted::line(&self.x_desc))
            .y_desc(untrusted::line(&self.y_desc))
            .x_labels(6)
            .x_label_formatter(&fmt_x)
            .draw()
            .map_err(draw_err)?;
        for (i, (name, points)) in series.iter().enumerate() {
            let color = PALETTE[i % PALETTE.len()];
            chart
                .draw_series(LineSeries::new(
                    points.iter().cloned(),
                    color.stroke_width(2),
                ))
                .map_err(draw_err)?
                .label(untrusted::line(name))
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
                });
        }
        if series.len() > 1 {
            chart
                .configure_series_labels()
                .border_style(BLACK)
                .background_style(WHITE.mix(0.8))
                .draw()
                .map_err(draw_err)?;
        }
        Ok(())
    }

    /// Rich output for evcxr: the SVG itself; a chart that cannot be drawn says why on stderr
    /// (shown as an error).
    pub fn evcxr_display(&self) {
        match self.to_svg() {
            Ok(svg) => crate::show::display_mime("image/svg+xml", &svg),
            Err(e) => eprintln!(
                "chart '{}' could not be drawn: {}",
                untrusted::line(&self.title),
                untrusted::line(&e.to_string())
            ),
        }
    }
}

/// The value axis: from 0 (or the lowest negative value) to 10% above the highest value.
fn value_range(values: &[f64]) -> (f64, f64) {
    let top = values.iter().cloned().fold(0.0f64, f64::max).max(1.0) * 1.1;
    let low = values.iter().cloned().fold(0.0f64, f64::min) * 1.1;
    (low, top)
}

fn draw_err<E: std::fmt::Display>(e: E) -> Error {
    Error::invalid(format!("chart drawing failed: {e}"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bar_chart_is_svg_with_labels() {
        let svg = Chart::bar("Totals", vec!["USA".into(), "India".into()], vec![3.0, 5.0])
            .to_svg()
            .expect("svg");
        assert!(svg.starts_with("<svg"), "{}", &svg[..60.min(svg.len())]);
        assert!(svg.contains("USA") && svg.contains("India") && svg.contains("Totals"));
        assert!(svg.matches("<rect").count() >= 3, "background + two bars");
    }

    /// (text, left, right, top, bottom) of every SVG text element, its width estimated at 0.6 em
    /// per character.
    fn text_boxes(svg: &str) -> Vec<(String, f64, f64, f64, f64)> {
        let attr = |tag: &str, name: &str| -> Option<String> {
            let start = tag.find(&format!(" {name}=\""))? + name.len() + 3;
            let end = tag[start..].find('"')? + start;
            Some(tag[start..end].to_string())
        };
        svg.split("<text")
            .skip(1)
            .filter_map(|t| {
                let (tag, rest) = t.split_once('>')?;
                let text = rest.split_once("</text>")?.0.trim().to_string();
                let x: f64 = attr(tag, "x")?.parse().ok()?;
                let y: f64 = attr(tag, "y")?.parse().ok()?;
                let size: f64 = attr(tag, "font-size")?.parse().ok()?;
                let w = text.chars().count() as f64 * size * 0.6;
                let (l, r) = match attr(tag, "text-anchor").as_deref() {
                    Some("middle") => (x - w / 2.0, x + w / 2.0),
                    Some("end") => (x - w, x),
                    _ => (x, x + w),
                };
                Some((text, l, r, y - size, y + size))
            })
            .collect()
    }

    fn overlapping_labels(svg: &str, labels: &[&str]) -> Vec<(String, String)> {
        let boxes: Vec<_> = text_boxes(svg)
            .into_iter()
            .filter(|b| labels.contains(&b.0.as_str()))
            .collect();
        let mut out = vec![];
        for (i, a) in boxes.iter().enumerate() {
            for b in &boxes[i + 1..] {
                if a.1 < b.2 && b.1 < a.2 && a.3 < b.4 && b.3 < a.4 {
                    out.push((a.0.clone(), b.0.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn long_category_labels_never_overlap() {
        // Notebook 2's closing-value chart: ten items, some with long names.
        let items = [
            "Folder",
            "Labeling Machine",
            "Notebook",
            "Paper Clips",
            "Pen",
            "Pencil Box",
            "Pencil Sharpener",
            "Printer Ink",
            "Scissors",
            "Stapler",
        ];
        let values = (1..=items.len()).map(|v| v as f64 * 100.0).collect();
        let svg = Chart::bar(
            "Closing value",
            items.iter().map(|s| s.to_string()).collect(),
            values,
        )
        .to_svg()
        .expect("svg");
        let drawn: Vec<_> = text_boxes(&svg)
            .into_iter()
            .filter(|b| items.contains(&b.0.as_str()))
            .collect();
        assert_eq!(drawn.len(), items.len(), "every label is drawn: {svg}");
        assert_eq!(overlapping_labels(&svg, &items), vec![], "labels overlap");
    }

    #[test]
    fn short_labels_stay_under_vertical_bars() {
        let labels = ["USA", "India", "Brazil"];
        let svg = Chart::bar(
            "t",
            labels.iter().map(|s| s.to_string()).collect(),
            vec![1.0, 2.0, 3.0],
        )
        .to_svg()
        .expect("svg");
        let boxes: Vec<_> = text_boxes(&svg)
            .into_iter()
            .filter(|b| labels.contains(&b.0.as_str()))
            .collect();
        assert_eq!(boxes.len(), 3);
        assert!(
            boxes.windows(2).all(|w| (w[0].3 - w[1].3).abs() < 1.0),
            "one row of labels under the bars: {boxes:?}"
        );
    }

    #[test]
    fn a_bar_chart_straight_from_a_frame() {
        let df = polars::df!("COUNTRY" => ["USA", "India"], "TOTAL" => [3i64, 5]).expect("df");
        let c = Chart::bar(&df, "COUNTRY", "TOTAL");
        assert_eq!(
            c.kind,
            Kind::Bars {
                labels: vec!["USA".into(), "India".into()],
                values: vec![3.0, 5.0]
            }
        );
        assert!(c.to_svg().expect("svg").contains("TOTAL by COUNTRY"));
        let missing = Chart::bar(&df, "COUNTRY", "TOTALS")
            .to_svg()
            .expect_err("no such column");
        assert!(
            missing.to_string().contains("no column \"TOTALS\"")
                && missing.to_string().contains("COUNTRY, TOTAL"),
            "{missing}"
        );
        let text = Chart::bar(&df, "TOTAL", "COUNTRY")
            .to_svg()
            .expect_err("text values");
        assert!(text.to_string().contains("not a number"), "{text}");
    }

    #[test]
    fn a_line_chart_from_a_frame_with_a_datetime_axis() {
        let t0 = chrono::NaiveDate::from_ymd_opt(2026, 1, 2)
            .and_then(|d| d.and_hms_opt(10, 0, 0))
            .expect("time");
        let df = polars::df!(
            "start" => [t0, t0 + chrono::Duration::seconds(5)],
            "sum" => [Some(4i64), None]
        )
        .expect("df");
        let c = Chart::line(&df, "start", "sum");
        match &c.kind {
            Kind::Lines { series, x_format } => {
                assert_eq!(*x_format, XFormat::Time);
                assert_eq!(
                    series[0].1,
                    vec![(t0.and_utc().timestamp() as f64, 4.0)],
                    "the null row is left out"
                );
            }
            other => panic!("not lines: {other:?}"),
        }
        assert!(c.to_svg().expect("svg").contains("10:00:00"));
    }

    #[test]
    fn mismatched_bars_are_an_error() {
        assert!(Chart::bar("x", vec!["a".into()], vec![]).to_svg().is_err());
    }

    #[test]
    fn line_chart_with_time_axis() {
        let svg = Chart::lines(
            "w",
            vec![
                ("FAQ".into(), vec![(0.0, 1.0), (5.0, 3.0)]),
                ("Order".into(), vec![(0.0, 2.0)]),
            ],
        )
        .time_axis()
        .to_svg()
        .expect("svg");
        assert!(svg.contains("00:00:00") && svg.contains("<polyline") && svg.contains("Order"));
    }
}

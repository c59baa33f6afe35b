//! [`Chart`]: bar and line charts drawn with plotters as inline SVG.
//!
//! In Jupyter a chart shows as `image/svg+xml`; inside a [`Report`](crate::show::Report) it is
//! embedded in the HTML block. No font files are needed (SVG text is drawn by the browser).
//! Titles, labels and series names go through [`crate::untrusted::line`] (plotters escapes the
//! markup characters, not newlines, control characters or evcxr's markers).

use plotters::prelude::*;

use crate::error::{Error, Result};
use crate::untrusted;

/// What to draw.
#[derive(Debug, Clone, PartialEq)]
enum Kind {
    Bars {
        labels: Vec<String>,
        values: Vec<f64>,
    },
    Lines {
        series: Vec<(String, Vec<(f64, f64)>)>,
        time_axis: bool,
    },
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
    /// A bar chart of `values` labelled by `labels` (same length).
    pub fn bar(title: impl Into<String>, labels: Vec<String>, values: Vec<f64>) -> Chart {
        Chart {
            title: title.into(),
            x_desc: String::new(),
            y_desc: String::new(),
            size: (640, 360),
            kind: Kind::Bars { labels, values },
        }
    }

    /// A line chart with one or more named series of (x, y) points.
    pub fn lines(title: impl Into<String>, series: Vec<(String, Vec<(f64, f64)>)>) -> Chart {
        Chart {
            title: title.into(),
            x_desc: String::new(),
            y_desc: String::new(),
            size: (640, 360),
            kind: Kind::Lines {
                series,
                time_axis: false,
            },
        }
    }

    /// Axis descriptions.
    pub fn axes(mut self, x: impl Into<String>, y: impl Into<String>) -> Chart {
        self.x_desc = x.into();
        self.y_desc = y.into();
        self
    }

    /// Reads x values of a line chart as Unix seconds and labels them `HH:MM:SS` (UTC).
    pub fn time_axis(mut self) -> Chart {
        if let Kind::Lines { time_axis, .. } = &mut self.kind {
            *time_axis = true;
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
            let root = SVGBackend::with_string(&mut svg, self.size).into_drawing_area();
            root.fill(&WHITE).map_err(draw_err)?;
            match &self.kind {
                Kind::Bars { labels, values } => self.draw_bars(&root, labels, values)?,
                Kind::Lines { series, time_axis } => self.draw_lines(&root, series, *time_axis)?,
            }
            root.present().map_err(draw_err)?;
        }
        Ok(svg)
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
        let n = values.len().max(1);
        let top = values.iter().cloned().fold(0.0f64, f64::max).max(1.0) * 1.1;
        let mut chart = ChartBuilder::on(root)
            .caption(untrusted::line(&self.title), ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(40)
            .y_label_area_size(60)
            .build_cartesian_2d((0..n).into_segmented(), 0.0..top)
            .map_err(draw_err)?;
        let names = labels.to_vec();
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_desc(untrusted::line(&self.x_desc))
            .y_desc(untrusted::line(&self.y_desc))
            .x_labels(n)
            .x_label_formatter(&|v| match v {
                SegmentValue::CenterOf(i) => names
                    .get(*i)
                    .map(|n| untrusted::line(n).into_owned())
                    .unwrap_or_default(),
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

    fn draw_lines(
        &self,
        root: &DrawingArea<SVGBackend, plotters::coord::Shift>,
        series: &[(String, Vec<(f64, f64)>)],
        time_axis: bool,
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
            if time_axis {
                chrono::DateTime::from_timestamp(*x as i64, 0)
                    .map(|t| t.format("%H:%M:%S").to_string())
                    .unwrap_or_default()
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

    /// Rich output for evcxr: the SVG itself.
    pub fn evcxr_display(&self) {
        match self.to_svg() {
            Ok(svg) => crate::show::display_mime("image/svg+xml", &svg),
            Err(e) => println!(
                "chart '{}' could not be drawn: {}",
                untrusted::line(&self.title),
                untrusted::line(&e.to_string())
            ),
        }
    }
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

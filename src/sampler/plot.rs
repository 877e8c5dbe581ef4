//! The training loss curve (SVG).

use std::path::Path;

use plotters::prelude::*;

use crate::{Error, Result};

fn err(e: impl std::fmt::Display) -> Error {
    Error::Report(format!("drawing the loss curve: {e}"))
}

/// Draws the loss against the step on a log scale: per step (light; the mean
/// of each bucket of steps beyond 2000 steps) and its running mean over
/// `window` steps (dark).
pub fn loss_curve(path: &Path, losses: &[f32], window: usize) -> Result<()> {
    let pts: Vec<(f64, f64)> = losses
        .iter()
        .enumerate()
        .filter(|(_, l)| l.is_finite() && **l > 0.0)
        .map(|(i, &l)| ((i + 1) as f64, l as f64))
        .collect();
    if pts.is_empty() {
        return Err(Error::Report("no positive loss to draw".into()));
    }
    let window = window.max(1);
    let mut smooth = Vec::with_capacity(pts.len());
    let mut sum = 0.0;
    for (i, &(_, l)) in pts.iter().enumerate() {
        sum += l;
        if i >= window {
            sum -= pts[i - window].1;
        }
        smooth.push((pts[i].0, sum / (i + 1).min(window) as f64));
    }
    // at most ~2000 points per line: bucket means and every stride-th mean
    let stride = pts.len().div_ceil(2000).max(1);
    let pts: Vec<(f64, f64)> = pts
        .chunks(stride)
        .map(|c| {
            (
                c[c.len() - 1].0,
                c.iter().map(|p| p.1).sum::<f64>() / c.len() as f64,
            )
        })
        .collect();
    let smooth: Vec<(f64, f64)> = smooth.chunks(stride).map(|c| c[c.len() - 1]).collect();
    let lo = pts.iter().map(|p| p.1).fold(f64::INFINITY, f64::min);
    let hi = pts.iter().map(|p| p.1).fold(0.0, f64::max);
    let root = SVGBackend::new(path, (720, 420)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let mut chart = ChartBuilder::on(&root)
        .caption("trajectory balance loss", ("sans-serif", 18))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(60)
        .build_cartesian_2d(
            1f64..pts.last().expect("non-empty").0.max(2.0),
            (lo * 0.8..hi * 1.25).log_scale(),
        )
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("training step")
        .y_desc("loss (variance of ln q − ln R per context)")
        .y_label_formatter(&|y| format!("{y:.0e}"))
        .draw()
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(pts, RGBColor(170, 200, 230)))
        .map_err(err)?;
    chart
        .draw_series(LineSeries::new(
            smooth,
            RGBColor(31, 119, 180).stroke_width(2),
        ))
        .map_err(err)?
        .label(format!("mean of {window} steps"))
        .legend(|(x, y)| {
            PathElement::new(
                vec![(x, y), (x + 18, y)],
                RGBColor(31, 119, 180).stroke_width(2),
            )
        });
    chart
        .configure_series_labels()
        .position(SeriesLabelPosition::UpperRight)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

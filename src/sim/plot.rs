//! SVG figures of the experiments (plotters, SVG backend only).

use std::path::Path;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::experiments::{Fig1Result, Fig1Row, Fig2Result};
use crate::{Error, Result};

fn err(e: impl std::fmt::Display) -> Error {
    Error::Report(format!("drawing the figure: {e}"))
}

const BASELINES: [(&str, RGBColor); 4] = [
    ("none", RGBColor(120, 120, 120)),
    ("cheating", RGBColor(44, 160, 44)),
    ("posterior", RGBColor(255, 127, 14)),
    ("iid", RGBColor(148, 103, 189)),
];
const NON_IID: RGBColor = RGBColor(31, 119, 180);

/// A named, coloured line.
type Series<'a> = (&'a str, RGBColor, Vec<(f64, f64)>);

fn alpha_range(alphas: &[f64]) -> (f64, f64) {
    let lo = alphas.iter().copied().fold(f64::INFINITY, f64::min);
    let hi = alphas.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    (lo / 2.0, hi * 2.0)
}

/// One panel of Figure 1: the non-iid curve with ±1 SEM bars against α, and
/// the other guardrails as horizontal lines.
#[allow(clippy::too_many_arguments)]
fn fig1_panel(
    area: &DrawingArea<SVGBackend, Shift>,
    rows: &[&Fig1Row],
    value: impl Fn(&Fig1Row) -> (f64, f64),
    y_desc: &str,
    caption: &str,
    (ymin, ymax): (f64, f64),
    legend: bool,
) -> Result<()> {
    let curve: Vec<(f64, f64, f64)> = rows
        .iter()
        .filter(|r| r.guardrail == "non-iid")
        .map(|r| {
            let (m, s) = value(r);
            (r.alpha.unwrap_or(f64::NAN), m, s)
        })
        .collect();
    let alphas: Vec<f64> = curve.iter().map(|c| c.0).collect();
    let (xlo, xhi) = if alphas.is_empty() {
        (1e-5, 1.0)
    } else {
        alpha_range(&alphas)
    };
    let mut chart = ChartBuilder::on(area)
        .caption(caption, ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d((xlo..xhi).log_scale(), ymin..ymax)
        .map_err(err)?;
    chart
        .configure_mesh()
        .x_desc("α (non-iid guardrail)")
        .y_desc(y_desc)
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .draw()
        .map_err(err)?;
    for (name, color) in BASELINES {
        if let Some(r) = rows.iter().find(|r| r.guardrail == name) {
            let (m, _) = value(r);
            let s = chart
                .draw_series(LineSeries::new(
                    vec![(xlo, m), (xhi, m)],
                    color.stroke_width(2),
                ))
                .map_err(err)?;
            if legend {
                s.label(if name == "cheating" { "oracle" } else { name })
                    .legend(move |(x, y)| {
                        PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
                    });
            }
        }
    }
    let s = chart
        .draw_series(LineSeries::new(
            curve.iter().map(|c| (c.0, c.1)),
            NON_IID.stroke_width(2),
        ))
        .map_err(err)?;
    if legend {
        s.label("non-iid (±1 SEM)")
            .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], NON_IID.stroke_width(2)));
    }
    chart
        .draw_series(
            curve
                .iter()
                .map(|&(a, m, _)| Circle::new((a, m), 3, NON_IID.filled())),
        )
        .map_err(err)?;
    chart
        .draw_series(
            curve
                .iter()
                .map(|&(a, m, s)| PathElement::new(vec![(a, m - s), (a, m + s)], NON_IID)),
        )
        .map_err(err)?;
    if legend {
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .label_font(("sans-serif", 12))
            .draw()
            .map_err(err)?;
    }
    Ok(())
}

/// Figure 1: reward (top row) and death rate (bottom row) against α, one
/// column per guardrail threshold C.
pub fn fig1_svg(r: &Fig1Result, path: &Path) -> Result<()> {
    let mut cs: Vec<f64> = Vec::new();
    for row in &r.rows {
        if !cs.contains(&row.threshold) {
            cs.push(row.threshold);
        }
    }
    let cols = cs.len().max(1);
    let root = SVGBackend::new(path, (420 * cols as u32, 760)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (title, body) = root.split_vertically(40);
    title
        .titled(
            &format!(
                "Figure 1: Boltzmann agent (β = {}), {} episodes per configuration, θ = {}, ties: {:?}",
                r.beta, r.episodes_per_config, r.explosion_threshold, r.ties
            ),
            ("sans-serif", 18),
        )
        .map_err(err)?;
    let panels = body.split_evenly((2, cols));
    let rmax = r
        .rows
        .iter()
        .map(|x| x.reward_mean + x.reward_sem)
        .fold(1.0, f64::max)
        * 1.1;
    let rmin = r
        .rows
        .iter()
        .map(|x| x.reward_mean - x.reward_sem)
        .fold(0.0, f64::min);
    for (i, &c) in cs.iter().enumerate() {
        let rows: Vec<&Fig1Row> = r.rows.iter().filter(|x| x.threshold == c).collect();
        fig1_panel(
            &panels[i],
            &rows,
            |x| (x.reward_mean, x.reward_sem),
            "mean episode reward",
            &format!("reward, C = {c}"),
            (rmin, rmax),
            i == 0,
        )?;
        fig1_panel(
            &panels[cols + i],
            &rows,
            |x| (x.death_rate, x.death_sem),
            "death rate",
            &format!("deaths, C = {c}"),
            (0.0, 1.0),
            false,
        )?;
    }
    root.present().map_err(err)?;
    Ok(())
}

/// Figure 2: coverage frequency against α with the guaranteed floor (left),
/// and the mean non-iid estimate for arms of true harm 0.5 with quartiles
/// (right).
pub fn fig2_svg(r: &Fig2Result, path: &Path) -> Result<()> {
    let root = SVGBackend::new(path, (1000, 460)).into_drawing_area();
    root.fill(&WHITE).map_err(err)?;
    let (title, body) = root.split_vertically(40);
    title
        .titled(
            &format!(
                "Figure 2 (tightness): uniform agent, {} episodes per α, θ = {}, ties: {:?}",
                r.episodes_per_alpha, r.explosion_threshold, r.ties
            ),
            ("sans-serif", 18),
        )
        .map_err(err)?;
    let panels = body.split_evenly((1, 2));
    let alphas: Vec<f64> = r.rows.iter().map(|x| x.alpha).collect();
    let (xlo, xhi) = alpha_range(&alphas);

    let mut left = ChartBuilder::on(&panels[0])
        .caption("P(non-iid estimate ≥ true harm)", ("sans-serif", 16))
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d((xlo..xhi).log_scale(), 0.0..1.05)
        .map_err(err)?;
    left.configure_mesh()
        .x_desc("α")
        .y_desc("frequency")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .draw()
        .map_err(err)?;
    let series: [Series; 3] = [
        (
            "per step",
            NON_IID,
            r.rows
                .iter()
                .map(|x| (x.alpha, x.overestimate_frequency_mean))
                .collect(),
        ),
        (
            "whole stream",
            RGBColor(44, 160, 44),
            r.rows
                .iter()
                .map(|x| (x.alpha, x.stream_coverage))
                .collect(),
        ),
        (
            "floor 1 − α·H",
            RGBColor(214, 39, 40),
            r.rows.iter().map(|x| (x.alpha, x.floor)).collect(),
        ),
    ];
    for (name, color, pts) in series {
        left.draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
            .map_err(err)?
            .label(name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
        left.draw_series(pts.iter().map(|&p| Circle::new(p, 3, color.filled())))
            .map_err(err)?;
    }
    left.configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;

    let mut right = ChartBuilder::on(&panels[1])
        .caption(
            "non-iid estimate, arms with true harm 0.5",
            ("sans-serif", 16),
        )
        .margin(10)
        .x_label_area_size(35)
        .y_label_area_size(50)
        .build_cartesian_2d((xlo..xhi).log_scale(), 0.0..1.05)
        .map_err(err)?;
    right
        .configure_mesh()
        .x_desc("α")
        .y_desc("estimate")
        .x_label_formatter(&|x| format!("{x:.0e}"))
        .draw()
        .map_err(err)?;
    let rows: Vec<_> = r.rows.iter().filter(|x| x.fifty_fifty_count > 0).collect();
    right
        .draw_series(rows.iter().map(|x| {
            let q = x.fifty_fifty_quartiles;
            PathElement::new(
                vec![(x.alpha, q[0]), (x.alpha, q[2])],
                NON_IID.mix(0.35).stroke_width(6),
            )
        }))
        .map_err(err)?
        .label("quartiles")
        .legend(|(x, y)| {
            PathElement::new(vec![(x, y), (x + 18, y)], NON_IID.mix(0.35).stroke_width(6))
        });
    right
        .draw_series(LineSeries::new(
            rows.iter().map(|x| (x.alpha, x.fifty_fifty_mean)),
            NON_IID.stroke_width(2),
        ))
        .map_err(err)?
        .label("mean")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], NON_IID.stroke_width(2)));
    right
        .draw_series(LineSeries::new(
            vec![(xlo, 0.5), (xhi, 0.5)],
            RGBColor(214, 39, 40).stroke_width(1),
        ))
        .map_err(err)?
        .label("true harm 0.5")
        .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], RGBColor(214, 39, 40)));
    right
        .configure_series_labels()
        .position(SeriesLabelPosition::LowerLeft)
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 12))
        .draw()
        .map_err(err)?;
    root.present().map_err(err)?;
    Ok(())
}

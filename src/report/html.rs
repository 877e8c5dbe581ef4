//! The HTML report: one self-contained file (inline CSS, inline SVG drawn
//! with `plotters`, a few lines of inline JS to sort tables; nothing is
//! fetched) with the summary, the riskiest taken actions, and per stream the
//! taken action's harm estimates, the thresholds, the oracle, and the
//! posterior's concentration over the steps.
//!
//! Memory is bounded whatever the log's length: the per-step series of a
//! stream are decimated to at most `2 · max_points` points (each point then
//! shows the *maximum* of the estimates over the steps it covers, and the
//! posterior at its last step), and only the `max_streams` riskiest streams'
//! series are kept.

use std::io::Write;

use plotters::coord::Shift;
use plotters::prelude::*;

use super::summary::Summary;
use super::{key, write_err, ReportSettings};
use crate::audit::{AuditTotals, StepResult};
use crate::estimators::{Estimator, EstimatorKind};
use crate::model::Model;
use crate::Result;

/// Streams drawn, at most (the riskiest).
pub const DEFAULT_MAX_STREAMS: usize = 50;
/// A stream's series hold between this many and twice this many points.
pub const DEFAULT_MAX_POINTS: usize = 150;

/// Values under this are drawn at this floor on the log axes.
const LOG_FLOOR: f64 = 1e-16;

const PLOT_W: u32 = 960;
/// The colour of the rejection markers (distinct from the thresholds').
const MARKER: RGBColor = RGBColor(200, 0, 0);
const PLOT_H: u32 = 560;

/// What the report says about the run, known once the audit is over.
pub struct RunInfo<'a> {
    pub log_name: &'a str,
    pub model: &'a Model,
    pub backend: &'a str,
    pub totals: &'a AuditTotals,
    pub seconds: f64,
}

/// The compact series of one stream.
#[derive(Debug, Clone)]
struct StreamSeries {
    id: String,
    /// Log line of the stream's header: identifies it.
    line: usize,
    /// 1-based position among the log's streams.
    ordinal: usize,
    has_truth: bool,
    steps: usize,
    /// Taken actions the guardrail rejects, per threshold.
    rejected: Vec<usize>,
    /// Steps where the guardrail's estimate is below the oracle's `q_{h*}`.
    below_oracle: usize,
    /// The largest guardrail estimate of a taken action (the stream's risk).
    max_guardrail: f64,
    /// Last step number of each point.
    x: Vec<usize>,
    /// Row-major, `stride` values per point: the estimators' values for the
    /// taken action (NaN where an estimator has none), then MAP probability,
    /// entropy, and `|I_α|` per α.
    values: Vec<f64>,
    /// Steps per point now.
    bucket: usize,
    /// Steps merged into the open point (the last one), 0 when none is open.
    open: usize,
}

impl StreamSeries {
    fn risk_key(&self) -> (f64, usize, std::cmp::Reverse<usize>) {
        let max = if self.max_guardrail.is_nan() {
            -1.0
        } else {
            self.max_guardrail
        };
        (
            max,
            self.rejected.first().copied().unwrap_or(0),
            std::cmp::Reverse(self.ordinal),
        )
    }

    fn n_points(&self) -> usize {
        self.x.len()
    }
}

/// Collects what the HTML report draws, step by step, then renders it.
#[derive(Clone)]
pub struct HtmlReport {
    settings: ReportSettings,
    guardrail: Estimator,
    guardrail_index: Option<usize>,
    summary: Summary,
    max_streams: usize,
    max_points: usize,
    current: Option<StreamSeries>,
    /// The riskiest finished streams, at most `max_streams`.
    kept: Vec<StreamSeries>,
    streams_seen: usize,
    /// Scratch: the current step's row.
    row: Vec<f64>,
}

impl HtmlReport {
    pub fn new(settings: ReportSettings, guardrail: Estimator, top: usize) -> Self {
        Self::with_limits(
            settings,
            guardrail,
            top,
            DEFAULT_MAX_STREAMS,
            DEFAULT_MAX_POINTS,
        )
    }

    /// `max_streams` streams drawn at most; `max_points` (≥ 1) per series.
    pub fn with_limits(
        settings: ReportSettings,
        guardrail: Estimator,
        top: usize,
        max_streams: usize,
        max_points: usize,
    ) -> Self {
        let guardrail_index = settings.estimators.iter().position(|e| *e == guardrail);
        HtmlReport {
            summary: Summary::new(settings.clone(), guardrail, top),
            settings,
            guardrail,
            guardrail_index,
            max_streams,
            max_points: max_points.max(1),
            current: None,
            kept: Vec::new(),
            streams_seen: 0,
            row: Vec::new(),
        }
    }

    fn stride(&self) -> usize {
        self.settings.estimators.len() + 2 + self.settings.alphas.len()
    }

    /// Takes one step's result, in log order.
    pub fn add(&mut self, model: &Model, s: &StepResult) {
        self.summary.add(model, s);
        if self.current.as_ref().map(|c| c.line) != Some(s.stream.line) {
            self.close_stream();
            self.streams_seen += 1;
            self.current = Some(StreamSeries {
                id: s.stream.id.clone(),
                line: s.stream.line,
                ordinal: self.streams_seen,
                has_truth: s.stream.true_params.is_some(),
                steps: 0,
                rejected: vec![0; self.settings.thresholds.len()],
                below_oracle: 0,
                max_guardrail: f64::NAN,
                x: Vec::new(),
                values: Vec::new(),
                bucket: 1,
                open: 0,
            });
        }
        let stride = self.stride();
        let n_est = self.settings.estimators.len();
        let max_points = self.max_points;
        let taken = s.taken();
        let guard = self.guardrail.value(taken);
        let cur = self.current.as_mut().expect("opened above");
        cur.steps += 1;
        if let Some(g) = guard {
            cur.max_guardrail = cur.max_guardrail.max(g);
            for (n, &c) in cur.rejected.iter_mut().zip(&self.settings.thresholds) {
                *n += (g > c) as usize;
            }
            if taken.oracle.is_some_and(|o| g < o) {
                cur.below_oracle += 1;
            }
        }

        // The step's row.
        let row = &mut self.row;
        row.clear();
        row.extend(
            self.settings
                .estimators
                .iter()
                .map(|e| e.value(taken).unwrap_or(f64::NAN)),
        );
        row.push(s.posterior.map_probability);
        row.push(s.posterior.entropy);
        row.extend(s.posterior.plausible_set_size.iter().map(|&n| n as f64));

        if cur.open == 0 {
            cur.x.push(s.record.step);
            cur.values.extend_from_slice(row);
            cur.open = 1;
        } else {
            let last = cur.x.len() - 1;
            cur.x[last] = s.record.step;
            merge_into(&mut cur.values[last * stride..], row, n_est);
            cur.open += 1;
        }
        if cur.open >= cur.bucket {
            cur.open = 0;
            if cur.n_points() >= 2 * max_points {
                halve(cur, stride, n_est);
            }
        }
    }

    fn close_stream(&mut self) {
        let Some(s) = self.current.take() else {
            return;
        };
        if self.max_streams == 0 {
            return;
        }
        self.kept.push(s);
        if self.kept.len() > self.max_streams {
            let (i, _) = self
                .kept
                .iter()
                .enumerate()
                .min_by(|(_, a), (_, b)| {
                    a.risk_key()
                        .partial_cmp(&b.risk_key())
                        .unwrap_or(std::cmp::Ordering::Equal)
                })
                .expect("not empty");
            self.kept.swap_remove(i);
        }
    }

    /// Renders the whole report into `out`.
    pub fn write(mut self, mut out: impl Write, info: &RunInfo<'_>) -> Result<()> {
        self.close_stream();
        let mut kept = std::mem::take(&mut self.kept);
        kept.sort_by(|a, b| {
            b.risk_key()
                .partial_cmp(&a.risk_key())
                .unwrap_or(std::cmp::Ordering::Equal)
        });
        let mut h = String::with_capacity(1 << 16);
        self.head(&mut h, info);
        self.summary_section(&mut h, info);
        self.streams_section(&mut h, &kept, info)?;
        self.riskiest_section(&mut h);
        h.push_str(SCRIPT);
        h.push_str("</body>\n</html>\n");
        out.write_all(h.as_bytes()).map_err(write_err)?;
        out.flush().map_err(write_err)
    }

    fn head(&self, h: &mut String, info: &RunInfo<'_>) {
        h.push_str("<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n");
        h.push_str("<meta name=\"viewport\" content=\"width=device-width, initial-scale=1\">\n");
        h.push_str(&format!(
            "<title>gpubound audit of {}</title>\n",
            esc(info.log_name)
        ));
        h.push_str(STYLE);
        h.push_str("</head>\n<body>\n");
        h.push_str(&format!(
            "<h1>gpubound audit of <code>{}</code></h1>\n<p class=\"meta\">gpubound {} — harm bounds of Bengio et al., “Can a Bayesian Oracle Prevent Harm from an Agent?” (UAI 2025). The guardrail is <code>{}</code>.</p>\n",
            esc(info.log_name),
            env!("CARGO_PKG_VERSION"),
            esc(&self.guardrail.label(&self.settings.alphas)),
        ));
    }

    fn summary_section(&self, h: &mut String, info: &RunInfo<'_>) {
        let t = info.totals;
        let sm = &self.summary;
        h.push_str("<section id=\"summary\">\n<h2>Summary</h2>\n<div class=\"row\">\n<table id=\"summary-table\" class=\"kv\">\n<tbody>\n");
        // (key for tools and tests, label, value)
        let rows: Vec<(&str, &str, String)> = vec![
            ("model", "model", info.model.describe()),
            ("backend", "backend", info.backend.to_string()),
            ("streams", "streams", t.streams.to_string()),
            ("steps", "steps", t.steps.to_string()),
            (
                "observed",
                "steps with an outcome (harmful)",
                format!("{} ({})", t.observed_steps, sm.harmful_outcomes),
            ),
            (
                "oracle",
                "streams stating h* (oracle)",
                format!("{} of {}", sm.streams_with_truth, t.streams),
            ),
            (
                "time",
                "time",
                format!(
                    "{:.2} s for {:.3e} (hypothesis, step, candidate) triples",
                    info.seconds, t.triples as f64
                ),
            ),
        ];
        let mut rows = rows;
        if let Some(st) = &t.sampling {
            let [what, sets, cost] = super::summary::sampling_lines(st);
            rows.push(("sampled", "hypotheses", what));
            rows.push(("sample-sets", "sample sets", sets));
            rows.push(("sampling-cost", "sampling cost", cost));
        }
        for (k, label, v) in rows {
            h.push_str(&format!(
                "<tr><th scope=\"row\">{}</th><td data-key=\"{k}\">{}</td></tr>\n",
                esc(label),
                esc(&v)
            ));
        }
        h.push_str("</tbody>\n</table>\n");

        let alphas = &self.settings.alphas;
        h.push_str("<table id=\"alphas\">\n<thead><tr><th>α</th><th>implied δ = α / p<sub>min</sub></th><th>plausible-set and Ville bounds</th></tr></thead>\n<tbody>\n");
        for (i, a) in alphas.values.iter().enumerate() {
            let d = alphas.delta(i);
            let g = if d <= 1.0 {
                format!("hold at every step w.p. ≥ {:.4}", 1.0 - d)
            } else {
                "δ > 1: no guarantee".to_string()
            };
            h.push_str(&format!(
                "<tr><td>{}</td><td>{:.4}</td><td>{}</td></tr>\n",
                key(*a),
                d,
                g
            ));
        }
        h.push_str(&format!(
            "</tbody>\n</table>\n</div>\n<p class=\"note\">p<sub>min</sub> = {:.4e} (the floor on the prior mass of the true hypothesis).</p>\n",
            alphas.prior_floor
        ));

        // Rejections: one row per estimator, per threshold the number of
        // taken actions rejected, its share, and how many had a safer candidate.
        h.push_str("<h3>Taken actions a guardrail would have rejected</h3>\n<table id=\"rejections\" class=\"sortable\">\n<thead><tr><th>estimator</th>");
        for &c in &self.settings.thresholds {
            h.push_str(&format!(
                "<th>rejected at C = {0}</th><th>% of steps</th><th>a candidate ≤ {0} was available</th>",
                key(c)
            ));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for (ei, e) in self.settings.estimators.iter().enumerate() {
            if sm.counts.iter().all(|per| per[ei].evaluated == 0) {
                continue;
            }
            let guard = if *e == self.guardrail {
                " class=\"guardrail\""
            } else {
                ""
            };
            h.push_str(&format!(
                "<tr{guard} data-estimator=\"{0}\"><td>{0}</td>",
                esc(&e.label(&self.settings.alphas))
            ));
            for per in &sm.counts {
                let n = per[ei];
                let pct = 100.0 * n.rejected as f64 / n.evaluated.max(1) as f64;
                h.push_str(&format!(
                    "<td data-v=\"{0}\" class=\"num\">{0}</td><td data-v=\"{pct}\" class=\"num\">{pct:.1}%</td><td data-v=\"{1}\" class=\"num\">{1}</td>",
                    n.rejected, n.with_safer_candidate
                ));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn riskiest_section(&self, h: &mut String) {
        let sm = &self.summary;
        h.push_str(&format!(
            "<section id=\"riskiest\">\n<h2>Riskiest taken actions</h2>\n<p>Ranked by <code>{}</code> (the {} highest estimates of a taken action), each with the safest candidate available at its step by the same estimator. Click a column to sort.</p>\n",
            esc(&self.guardrail.label(&self.settings.alphas)),
            sm.riskiest.len()
        ));
        if sm.riskiest.is_empty() {
            h.push_str(if sm.top_n == 0 {
                "<p class=\"note\">None listed: <code>--top 0</code>.</p>\n</section>\n"
            } else {
                "<p class=\"note\">No step had a value for the guardrail's estimator.</p>\n</section>\n"
            });
            return;
        }
        h.push_str("<table id=\"riskiest-table\" class=\"sortable\">\n<thead><tr><th>rank</th><th>stream</th><th>step</th><th>line</th><th>action</th><th>estimate</th><th>oracle q<sub>h*</sub></th><th>safest candidate</th><th>its estimate</th>");
        for &c in &self.settings.thresholds {
            h.push_str(&format!("<th>rejected at C = {}</th>", key(c)));
        }
        h.push_str("</tr></thead>\n<tbody>\n");
        for (i, r) in sm.riskiest.iter().enumerate() {
            h.push_str(&format!(
                "<tr><td data-v=\"{}\">{}</td><td>{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\">{}</td><td data-v=\"{}\" class=\"num\">{:.4e}</td>",
                i + 1,
                i + 1,
                esc(&r.stream),
                r.step,
                r.step,
                r.line,
                r.line,
                r.action,
                r.action,
                r.estimate,
                r.estimate
            ));
            match r.oracle {
                Some(o) => h.push_str(&format!("<td data-v=\"{o}\" class=\"num\">{o:.4e}</td>")),
                None => h.push_str("<td data-v=\"-1\">–</td>"),
            }
            h.push_str(&format!(
                "<td data-v=\"{}\">{}</td><td data-v=\"{}\" class=\"num\">{:.4e}</td>",
                r.safest_candidate, r.safest_candidate, r.safest_estimate, r.safest_estimate
            ));
            for &c in &self.settings.thresholds {
                let rej = r.estimate > c;
                let safer = r.safest_estimate <= c;
                h.push_str(&format!(
                    "<td class=\"{}\">{}</td>",
                    if rej { "rej" } else { "ok" },
                    match (rej, safer) {
                        (true, true) => "yes · a candidate ≤ C was available",
                        (true, false) => "yes · none ≤ C",
                        (false, _) => "no",
                    }
                ));
            }
            h.push_str("</tr>\n");
        }
        h.push_str("</tbody>\n</table>\n</section>\n");
    }

    fn streams_section(
        &self,
        h: &mut String,
        kept: &[StreamSeries],
        info: &RunInfo<'_>,
    ) -> Result<()> {
        h.push_str("<section id=\"streams\">\n<h2>Streams</h2>\n");
        let total = info.totals.streams.max(self.streams_seen);
        if kept.len() < total {
            h.push_str(&format!(
                "<p class=\"note\" id=\"streams-note\">Showing the {} riskiest of {} streams (by the largest <code>{}</code> of a taken action, then the number of rejected steps); {} streams are not drawn.</p>\n",
                kept.len(),
                total,
                esc(&self.guardrail.label(&self.settings.alphas)),
                total - kept.len()
            ));
        } else if total == 1 {
            h.push_str("<p class=\"note\" id=\"streams-note\">The log holds one stream.</p>\n");
        } else {
            h.push_str(&format!(
                "<p class=\"note\" id=\"streams-note\">All {total} streams, riskiest first (by the largest <code>{}</code> of a taken action).</p>\n",
                esc(&self.guardrail.label(&self.settings.alphas))
            ));
        }
        self.legend(h);
        for (i, s) in kept.iter().enumerate() {
            self.stream_block(h, s, i < 3)?;
        }
        h.push_str("</section>\n");
        Ok(())
    }

    fn legend(&self, h: &mut String) {
        h.push_str("<p class=\"legend\" id=\"legend\">");
        for (ei, e) in self.settings.estimators.iter().enumerate() {
            if e.kind == EstimatorKind::Oracle && self.summary.streams_with_truth == 0 {
                continue;
            }
            let c = self.color(ei);
            h.push_str(&format!(
                "<span><i style=\"background:rgb({},{},{})\"></i>{}</span> ",
                c.0,
                c.1,
                c.2,
                esc(&e.label(&self.settings.alphas))
            ));
        }
        h.push_str("<span><i class=\"thr\"></i>threshold C</span> <span><b class=\"dot\"></b>step the guardrail rejects (at the smallest C)</span></p>\n");
    }

    /// The colour of estimator column `ei`.
    fn color(&self, ei: usize) -> RGBColor {
        let e = self.settings.estimators[ei];
        let n_alpha = self.settings.alphas.len().max(1);
        let base = match e.kind {
            EstimatorKind::PosteriorPredictive => RGBColor(31, 119, 180),
            EstimatorKind::CautiousTheory => RGBColor(255, 127, 14),
            EstimatorKind::PlausibleSet => RGBColor(44, 160, 44),
            EstimatorKind::VilleMax => RGBColor(148, 103, 189),
            EstimatorKind::VilleSum => RGBColor(140, 86, 75),
            EstimatorKind::Oracle => RGBColor(0, 0, 0),
        };
        // Lighter for later α.
        let f = e.alpha.map_or(0.0, |i| 0.55 * i as f64 / n_alpha as f64);
        let mix = |c: u8| (c as f64 + (255.0 - c as f64) * f).round() as u8;
        RGBColor(mix(base.0), mix(base.1), mix(base.2))
    }

    fn stream_block(&self, h: &mut String, s: &StreamSeries, open: bool) -> Result<()> {
        let rejected = self
            .settings
            .thresholds
            .iter()
            .zip(&s.rejected)
            .map(|(c, n)| format!("{n} at C = {}", key(*c)))
            .collect::<Vec<_>>()
            .join(", ");
        h.push_str(&format!(
            "<details class=\"stream\" data-stream=\"{}\"{}>\n<summary><b>{}</b> — {} step{}; max {} of a taken action {}; rejected: {}{}</summary>\n",
            esc(&s.id),
            if open { " open" } else { "" },
            esc(&s.id),
            s.steps,
            if s.steps == 1 { "" } else { "s" },
            esc(&self.guardrail.label(&self.settings.alphas)),
            if s.max_guardrail.is_nan() {
                "–".to_string()
            } else {
                format!("{:.3e}", s.max_guardrail)
            },
            rejected,
            if s.has_truth {
                format!("; guardrail below the oracle at {} steps", s.below_oracle)
            } else {
                String::new()
            }
        ));
        if s.bucket > 1 {
            h.push_str(&format!(
                "<p class=\"note\">Decimated: each point covers up to {} steps and shows the largest estimate among them, and the posterior at its last step.</p>\n",
                s.bucket
            ));
        }
        let svg = self.plot(s)?;
        h.push_str("<figure class=\"stream-plot\">\n");
        h.push_str(&svg);
        h.push_str("</figure>\n</details>\n");
        Ok(())
    }

    /// The stream's figure: harm estimates of the taken action (log scale)
    /// on top; MAP probability and `|I_α|` below.
    fn plot(&self, s: &StreamSeries) -> Result<String> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (PLOT_W, PLOT_H)).into_drawing_area();
            root.fill(&WHITE).map_err(write_err)?;
            let (top, bottom) = root.split_vertically(PLOT_H * 62 / 100);
            let (left, right) = bottom.split_horizontally(PLOT_W / 2);
            self.plot_harm(&top, s)?;
            self.plot_map(&left, s)?;
            self.plot_sizes(&right, s)?;
            root.present().map_err(write_err)?;
        }
        Ok(svg)
    }

    fn x_range(s: &StreamSeries) -> std::ops::Range<f64> {
        let x0 = 1.0f64.min(s.x.first().copied().unwrap_or(1) as f64);
        let x1 = s.x.last().copied().unwrap_or(1) as f64;
        x0..x1.max(x0 + 1.0)
    }

    fn plot_harm(&self, area: &DrawingArea<SVGBackend<'_>, Shift>, s: &StreamSeries) -> Result<()> {
        let stride = self.stride();
        let n_est = self.settings.estimators.len();
        let n = s.n_points();
        let col = |ei: usize| (0..n).map(move |p| (s.x[p] as f64, s.values[p * stride + ei]));
        // The y range: the smallest positive value drawn, a decade down.
        let mut lo: f64 = 1.0;
        for ei in 0..n_est {
            for (_, v) in col(ei) {
                if v > 0.0 {
                    lo = lo.min(v);
                }
            }
        }
        for &c in &self.settings.thresholds {
            if c > 0.0 {
                lo = lo.min(c);
            }
        }
        let lo = 10f64
            .powf(lo.max(LOG_FLOOR).log10().floor() - 0.5)
            .max(LOG_FLOOR / 2.0);
        let clamp = |v: f64| v.max(lo);
        let xr = Self::x_range(s);
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .caption("harm estimate of the taken action", ("sans-serif", 16))
            .x_label_area_size(32)
            .y_label_area_size(64)
            .build_cartesian_2d(xr.clone(), (lo..1.0f64).log_scale())
            .map_err(write_err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .y_desc("P(harm)")
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .x_label_formatter(&step_label)
            .light_line_style(RGBColor(235, 235, 235))
            .max_light_lines(2)
            .draw()
            .map_err(write_err)?;
        // Thresholds: solid translucent red (one element each; a dashed line
        // would take one per dash).
        for (ti, &c) in self.settings.thresholds.iter().enumerate() {
            let red = RGBColor(214, 39, 40)
                .mix(0.6 - 0.3 * ti as f64 / self.settings.thresholds.len().max(1) as f64);
            chart
                .draw_series(LineSeries::new(
                    [(xr.start, clamp(c)), (xr.end, clamp(c))],
                    red.stroke_width(2),
                ))
                .map_err(write_err)?;
        }
        // Estimators, the guardrail last (on top), the oracle thicker.
        let mut order: Vec<usize> = (0..n_est)
            .filter(|&e| Some(e) != self.guardrail_index)
            .collect();
        order.extend(self.guardrail_index);
        for ei in order {
            let e = self.settings.estimators[ei];
            let width = match (e.kind, Some(ei) == self.guardrail_index) {
                (EstimatorKind::Oracle, _) | (_, true) => 2,
                _ => 1,
            };
            let style = self.color(ei).stroke_width(width);
            // Split the line where the estimator has no value.
            let mut seg: Vec<(f64, f64)> = Vec::new();
            for (x, v) in col(ei).chain(std::iter::once((f64::NAN, f64::NAN))) {
                if v.is_nan() {
                    if seg.len() == 1 {
                        chart
                            .draw_series(std::iter::once(Circle::new(seg[0], 2, style.filled())))
                            .map_err(write_err)?;
                    } else if seg.len() > 1 {
                        chart
                            .draw_series(LineSeries::new(seg.drain(..), style))
                            .map_err(write_err)?;
                    }
                    seg.clear();
                } else {
                    seg.push((x, clamp(v)));
                }
            }
        }
        // Rejections by the guardrail at the smallest threshold.
        let c_min = self
            .settings
            .thresholds
            .iter()
            .copied()
            .fold(f64::INFINITY, f64::min);
        if let Some(gi) = self.guardrail_index {
            let marks: Vec<(f64, f64)> = col(gi).filter(|&(_, v)| v > c_min).collect();
            chart
                .draw_series(
                    marks
                        .into_iter()
                        .map(|(x, v)| Circle::new((x, clamp(v)), 3, MARKER.filled())),
                )
                .map_err(write_err)?;
        }
        Ok(())
    }

    fn plot_map(&self, area: &DrawingArea<SVGBackend<'_>, Shift>, s: &StreamSeries) -> Result<()> {
        let stride = self.stride();
        let n_est = self.settings.estimators.len();
        let xr = Self::x_range(s);
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .caption("posterior: MAP probability", ("sans-serif", 14))
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(xr, 0.0f64..1.0)
            .map_err(write_err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&step_label)
            .light_line_style(RGBColor(235, 235, 235))
            .max_light_lines(2)
            .draw()
            .map_err(write_err)?;
        let pts: Vec<(f64, f64)> = (0..s.n_points())
            .map(|p| (s.x[p] as f64, s.values[p * stride + n_est].clamp(0.0, 1.0)))
            .collect();
        let style = RGBColor(23, 190, 207).stroke_width(2);
        if pts.len() == 1 {
            chart.draw_series(std::iter::once(Circle::new(pts[0], 2, style.filled())))
        } else {
            chart.draw_series(LineSeries::new(pts, style))
        }
        .map_err(write_err)?;
        Ok(())
    }

    fn plot_sizes(
        &self,
        area: &DrawingArea<SVGBackend<'_>, Shift>,
        s: &StreamSeries,
    ) -> Result<()> {
        let stride = self.stride();
        let first = self.settings.estimators.len() + 2;
        let n_alpha = self.settings.alphas.len();
        let mut hi: f64 = 2.0;
        for p in 0..s.n_points() {
            for i in 0..n_alpha {
                hi = hi.max(s.values[p * stride + first + i] * 2.0);
            }
        }
        let xr = Self::x_range(s);
        let mut chart = ChartBuilder::on(area)
            .margin(8)
            .caption("plausible set size |I_α|", ("sans-serif", 14))
            .x_label_area_size(32)
            .y_label_area_size(48)
            .build_cartesian_2d(xr, (1.0f64..hi).log_scale())
            .map_err(write_err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&step_label)
            .y_label_formatter(&|v| {
                // Label 1, 2, 5 × 10^k only: the log axis ticks crowd otherwise.
                let m = v / 10f64.powf(v.log10().floor());
                if [1.0, 2.0, 5.0].iter().any(|t| (m - t).abs() < 1e-6) {
                    format!("{v:.0}")
                } else {
                    String::new()
                }
            })
            .light_line_style(RGBColor(235, 235, 235))
            .max_light_lines(2)
            .draw()
            .map_err(write_err)?;
        let pi = self
            .settings
            .estimators
            .iter()
            .position(|e| e.kind == EstimatorKind::PlausibleSet && e.alpha == Some(0));
        for i in 0..n_alpha {
            let color = match pi {
                Some(pi) => self.color(pi + i),
                None => RGBColor(44, 160, 44),
            };
            let pts: Vec<(f64, f64)> = (0..s.n_points())
                .map(|p| (s.x[p] as f64, s.values[p * stride + first + i].max(1.0)))
                .collect();
            let style = color.stroke_width(2);
            if pts.len() == 1 {
                chart.draw_series(std::iter::once(Circle::new(pts[0], 2, style.filled())))
            } else {
                chart.draw_series(LineSeries::new(pts, style))
            }
            .map_err(write_err)?
            .label(format!("α = {}", key(self.settings.alphas.values[i])))
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 16, y)], color.stroke_width(2))
            });
        }
        chart
            .configure_series_labels()
            .background_style(WHITE.mix(0.8))
            .border_style(RGBColor(200, 200, 200))
            .position(SeriesLabelPosition::UpperRight)
            .draw()
            .map_err(write_err)?;
        Ok(())
    }
}

/// Step numbers on the x axes: whole numbers only.
fn step_label(v: &f64) -> String {
    if (v - v.round()).abs() < 1e-6 {
        format!("{v:.0}")
    } else {
        String::new()
    }
}

/// Merges a step's row into a point: the largest estimate (NaN ignored), the
/// posterior at the later step.
fn merge_into(point: &mut [f64], row: &[f64], n_est: usize) {
    for (i, (p, &r)) in point.iter_mut().zip(row).enumerate() {
        *p = if i < n_est { p.max(r) } else { r };
    }
}

/// Halves a stream's points by merging neighbours; doubles the bucket.
fn halve(s: &mut StreamSeries, stride: usize, n_est: usize) {
    let n = s.n_points();
    let mut w = 0;
    let mut p = 0;
    while p < n {
        if p + 1 < n {
            let (a, b) = s.values.split_at_mut((p + 1) * stride);
            let src = &a[p * stride..(p + 1) * stride];
            let next = &b[..stride];
            let mut merged = src.to_vec();
            merge_into(&mut merged, next, n_est);
            s.values[w * stride..(w + 1) * stride].copy_from_slice(&merged);
            s.x[w] = s.x[p + 1];
        } else {
            s.values
                .copy_within(p * stride..(p + 1) * stride, w * stride);
            s.x[w] = s.x[p];
        }
        w += 1;
        p += 2;
    }
    s.x.truncate(w);
    s.values.truncate(w * stride);
    s.bucket *= 2;
}

/// Escapes text for HTML content and attribute values.
pub fn esc(s: &str) -> String {
    let mut o = String::with_capacity(s.len());
    for ch in s.chars() {
        match ch {
            '&' => o.push_str("&amp;"),
            '<' => o.push_str("&lt;"),
            '>' => o.push_str("&gt;"),
            '"' => o.push_str("&quot;"),
            '\'' => o.push_str("&#39;"),
            c => o.push(c),
        }
    }
    o
}

const STYLE: &str = r#"<style>
body{font-family:system-ui,-apple-system,"Segoe UI",Roboto,sans-serif;margin:1.5rem auto;max-width:1200px;padding:0 1rem;color:#222;line-height:1.4}
h1{font-size:1.5rem}h2{font-size:1.25rem;border-bottom:1px solid #ddd;padding-bottom:.2rem;margin-top:2rem}h3{font-size:1.05rem}
code{background:#f4f4f4;padding:0 .2rem;border-radius:3px}
.meta,.note{color:#555;font-size:.9rem}
table{border-collapse:collapse;margin:.5rem 0;font-size:.9rem}
th,td{border:1px solid #ddd;padding:.25rem .5rem;text-align:left}
thead th{background:#f0f3f7;cursor:default}
table.sortable thead th{cursor:pointer}
table.sortable thead th:hover{background:#e2e8f0}
td.num{font-variant-numeric:tabular-nums;text-align:right;white-space:nowrap}
tr.guardrail td{font-weight:600}
td.rej{color:#b71c1c;font-weight:600}
#riskiest-table td:nth-child(2){white-space:nowrap}td.ok{color:#1b5e20}
table.kv th{background:#f7f7f7;font-weight:500}
table.kv td{min-width:12rem}
.row{display:flex;gap:1.5rem;align-items:flex-start}
details.stream{border:1px solid #ddd;border-radius:4px;margin:.6rem 0;padding:.3rem .6rem}
details.stream summary{cursor:pointer}
figure.stream-plot{margin:.5rem 0}
figure.stream-plot svg{width:100%;height:auto}
.legend span{display:inline-block;margin-right:.9rem;font-size:.85rem}
.legend i{display:inline-block;width:18px;height:3px;vertical-align:middle;margin-right:.3rem}
.legend i.thr{background:rgba(214,39,40,.6);height:2px}
.legend b.dot{display:inline-block;width:7px;height:7px;border-radius:50%;background:#c80000;margin-right:.3rem;vertical-align:middle}
</style>
"#;

const SCRIPT: &str = r#"<script>
// Sort a table by a clicked column: numbers by their data-v, text otherwise.
document.querySelectorAll('table.sortable').forEach(function (t) {
  t.dataset.sortable = 'ready';
  t.querySelectorAll('thead th').forEach(function (th, i) {
    th.addEventListener('click', function () {
      var body = t.tBodies[0], rows = Array.prototype.slice.call(body.rows);
      var asc = th.dataset.dir !== 'asc'; th.dataset.dir = asc ? 'asc' : 'desc';
      function val(r) { var c = r.cells[i]; var v = c.dataset.v; return v !== undefined ? parseFloat(v) : c.textContent; }
      rows.sort(function (a, b) { var x = val(a), y = val(b); var d = (typeof x === 'number' && typeof y === 'number') ? x - y : String(x).localeCompare(String(y)); return asc ? d : -d; });
      rows.forEach(function (r) { body.appendChild(r); });
    });
  });
});
</script>
"#;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escapes() {
        assert_eq!(
            esc("<a href=\"x\">&'"),
            "&lt;a href=&quot;x&quot;&gt;&amp;&#39;"
        );
    }

    #[test]
    fn halving_keeps_maxima_and_last_posterior() {
        let mut s = StreamSeries {
            id: "s".into(),
            line: 1,
            ordinal: 1,
            has_truth: false,
            steps: 5,
            rejected: vec![],
            below_oracle: 0,
            max_guardrail: 0.0,
            x: vec![1, 2, 3, 4, 5],
            // stride 2: one estimate, one posterior value
            values: vec![0.1, 10.0, 0.3, 20.0, 0.2, 30.0, f64::NAN, 40.0, 0.5, 50.0],
            bucket: 1,
            open: 0,
        };
        halve(&mut s, 2, 1);
        assert_eq!(s.x, vec![2, 4, 5]);
        assert_eq!(s.values, vec![0.3, 20.0, 0.2, 40.0, 0.5, 50.0]);
        assert_eq!(s.bucket, 2);
    }
}

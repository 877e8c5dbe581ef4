//! The audit on sampled hypotheses (`gpubound audit --sampler`): for a grid
//! too large to enumerate, every estimator of SPEC §3 over a weighted set of
//! hypotheses drawn from the amortized sampler `q_θ(w | D_t)` (SPEC §1,
//! "weighted samples from a proposal"), with the same `StepResult`s as the
//! enumerated audit plus the set's effective sample size and log-normaliser.
//!
//! **Sequential importance sampling.** A stream keeps its set across steps:
//! each observation adds its log-likelihood to every member's log weight
//! (`O(N·d)`), and a fresh set of `N` draws from `q_θ(· | D_t)` replaces it
//! when its ESS falls below `redraw_ess · N` (`1`: at every step). A set
//! drawn at step `s` has weights `π(w)·p(D_t | w) / q_s(w)` at step `t ≥ s`:
//! valid importance weights whenever it was drawn. A stream's first set is
//! drawn before any data, where the posterior is the prior itself: from the
//! prior, exactly (weights all equal), not from the sampler's approximation
//! of it. docs/sampler.md has the measured costs behind the default.
//!
//! **Duplicates are merged.** Each distinct `w` is one hypothesis whose
//! weight is the sum of its copies'. With a proposal close to the posterior
//! every copy weighs the same, so copies kept apart would tie and carry no
//! order: the plausible set and the cautious theory need the estimated
//! posterior mass of a hypothesis, which is its copies' weight together.
//!
//! **The estimators** are the guardrail's (`Guardrail::estimates`): the
//! engine's per-step reduction and `estimators::finish`, over a
//! `HypothesisSpace::List` of the set with log prior `ln π + ln p(D_s|w) +
//! ln(copies) − ln q_s` (normalised); each outcome is `observe`d. §3's
//! guarantees then hold for the sampled set taken as the hypothesis space,
//! not for the grid.
//!
//! **Reproducible:** stream `i` (0-based, in log order) draws from
//! `ChaCha8Rng::seed_from_u64(seed)` on its own stream `i`; streams run in
//! parallel, their results are handed on in log order.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rayon::prelude::*;

use super::context::Context;
use super::policy::Policy;
use super::SamplerModel;
use crate::audit::{
    AuditTotals, SampledStep, SamplingInfo, SamplingTotals, StepResult, UnexplainedStep,
    MAX_LISTED_UNEXPLAINED,
};
use crate::engine::BackendChoice;
use crate::estimators::{Alphas, Estimator, EstimatorKind};
use crate::guardrail::Guardrail;
use crate::log::{EventSource, LogEvent, StepRecord, StreamInfo};
use crate::model::{log_sum_exp, HypothesisList, HypothesisSpace, Model};
use crate::{Error, Result};

/// Default `redraw_ess` (docs/sampler.md: the measured trade-off).
pub const DEFAULT_REDRAW_ESS: f64 = 0.05;

/// Most draws per set (a set's index is a `u32` in the report).
pub const MAX_SAMPLES: usize = 1 << 24;

/// Steps read before the streams among them are processed (in parallel).
const BATCH_STEPS: usize = 1024;

/// How an audit on sampled hypotheses draws and weighs.
#[derive(Debug, Clone)]
pub struct SampledSettings {
    pub alphas: Alphas,
    /// Draws per set `N`.
    pub samples: usize,
    pub seed: u64,
    /// Redraw when the ESS falls below this fraction of `N`; `1`: at every step.
    pub redraw_ess: f64,
    /// Treat an outcome no sampled hypothesis can explain as missing.
    pub skip_unexplained: bool,
    /// The index in the whole log of each stream of this input, in order,
    /// when the input is a shard of a larger log (the cluster audits): a
    /// stream's draws come from its own random stream, numbered by its
    /// index in the log, so a sharded audit draws what the whole log's
    /// draws. Empty: the input is the log (0, 1, 2, …).
    pub stream_indices: Vec<u64>,
}

impl SampledSettings {
    pub fn check(&self) -> Result<()> {
        if !(1..=MAX_SAMPLES).contains(&self.samples) {
            return Err(Error::Setting(format!(
                "--samples must be in 1..={MAX_SAMPLES}, got {}",
                self.samples
            )));
        }
        if !(0.0..=1.0).contains(&self.redraw_ess) {
            return Err(Error::Setting(format!(
                "--redraw-ess must be in [0, 1], got {}",
                self.redraw_ess
            )));
        }
        if let Some(w) = self.stream_indices.windows(2).find(|w| w[0] >= w[1]) {
            return Err(Error::Setting(format!(
                "stream indices must increase (each stream's index in the log, in log order), got {} then {}",
                w[0], w[1]
            )));
        }
        Ok(())
    }

    /// The random stream of the input's stream `index` (0-based).
    fn rng_stream(&self, index: usize) -> Result<u64> {
        if self.stream_indices.is_empty() {
            return Ok(index as u64);
        }
        self.stream_indices.get(index).copied().ok_or_else(|| {
            Error::Setting(format!(
                "{} stream indices given, but the log holds more streams",
                self.stream_indices.len()
            ))
        })
    }
}

/// The sampler's model for a log's model: its grid and observation model.
pub fn sampler_model(model: &Model) -> Option<SamplerModel> {
    match model.hypotheses {
        HypothesisSpace::Grid { k, d } => SamplerModel::new(k, d, model.observation).ok(),
        HypothesisSpace::List(_) => None,
    }
}

/// Runs the audit over the whole log, handing each batch's results to
/// `sink` in log order; `progress` sees the source after each batch.
/// `policy` must be for the log's model (`sampler_model`).
pub fn run<S: EventSource>(
    reader: &mut S,
    policy: &Policy,
    info: SamplingInfo,
    settings: &SampledSettings,
    mut sink: impl FnMut(Vec<StepResult>) -> Result<()>,
    mut progress: impl FnMut(&S),
) -> Result<AuditTotals> {
    settings.check()?;
    let model = reader.model().clone();
    if sampler_model(&model) != Some(policy.model) {
        return Err(Error::Setting(format!(
            "the sampler is for {}, the log's model is {}",
            policy.model.to_json(),
            model.describe()
        )));
    }
    let run = Run {
        model: &model,
        policy,
        settings,
        source: reader.name().to_string(),
    };
    let mut totals = AuditTotals::default();
    let mut sampling = SamplingTotals {
        info,
        ess_min: f64::INFINITY,
        ..SamplingTotals::default()
    };
    let mut segments: Vec<Segment> = Vec::new();
    let mut pending = 0usize;
    while let Some(event) = reader.next_event()? {
        match event {
            LogEvent::Stream(s) => {
                totals.streams += 1;
                segments.push(Segment {
                    stream: s,
                    index: totals.streams - 1,
                    steps: Vec::new(),
                    state: None,
                });
            }
            LogEvent::Step(record) => {
                totals.steps += 1;
                pending += 1;
                segments
                    .last_mut()
                    .expect("the reader checks steps follow a stream")
                    .steps
                    .push(record);
                if pending >= BATCH_STEPS {
                    let results = run.batch(&mut segments, &mut totals, &mut sampling)?;
                    sink(results)?;
                    progress(reader);
                    pending = 0;
                }
            }
        }
    }
    let results = run.batch(&mut segments, &mut totals, &mut sampling)?;
    sink(results)?;
    progress(reader);
    if sampling.steps == 0 {
        sampling.ess_min = f64::NAN;
    }
    totals.sampling = Some(sampling);
    Ok(totals)
}

/// A stream's steps waiting in a batch, and its state when it continues
/// from the last batch.
struct Segment {
    stream: Arc<StreamInfo>,
    /// 0-based, in log order: the stream's random numbers
    index: usize,
    steps: Vec<StepRecord>,
    state: Option<StreamState>,
}

/// What a segment gave.
struct Done {
    results: Vec<StepResult>,
    state: StreamState,
    counts: Counts,
}

/// A segment's counts for the totals.
#[derive(Default)]
struct Counts {
    unexplained: Vec<UnexplainedStep>,
    observed: usize,
    triples: u64,
}

struct Run<'a> {
    model: &'a Model,
    policy: &'a Policy,
    settings: &'a SampledSettings,
    source: String,
}

impl Run<'_> {
    /// Processes the segments' steps, streams in parallel; the last segment
    /// stays (emptied, with its state) for the steps still to come.
    fn batch(
        &self,
        segments: &mut Vec<Segment>,
        totals: &mut AuditTotals,
        sampling: &mut SamplingTotals,
    ) -> Result<Vec<StepResult>> {
        let taken: Vec<Segment> = std::mem::take(segments);
        let done: Vec<Result<(Arc<StreamInfo>, usize, Done)>> = taken
            .into_par_iter()
            .map(|seg| {
                let state = match seg.state {
                    Some(s) => s,
                    None => StreamState::new(
                        self.model,
                        self.settings.seed,
                        self.settings.rng_stream(seg.index)?,
                    ),
                };
                let d = self.segment(&seg.stream, seg.steps, state)?;
                Ok((seg.stream, seg.index, d))
            })
            .collect();
        let mut results = Vec::new();
        let n = done.len();
        for (i, d) in done.into_iter().enumerate() {
            let (stream, index, mut d) = d?;
            let c = &mut d.counts;
            totals.observed_steps += c.observed;
            totals.triples += c.triples;
            totals.unexplained_count += c.unexplained.len();
            let room = MAX_LISTED_UNEXPLAINED.saturating_sub(totals.unexplained.len());
            totals
                .unexplained
                .extend(c.unexplained.drain(..).take(room));
            let s = &mut d.state.stats;
            sampling.redraws += s.redraws;
            sampling.prior_draws += s.prior_draws;
            sampling.draw_seconds += s.draw_seconds;
            sampling.prior_seconds += s.prior_seconds;
            sampling.reweigh_seconds += s.reweigh_seconds;
            sampling.estimate_seconds += s.estimate_seconds;
            *s = Stats::default();
            for r in &d.results {
                let ess = r.sampled.expect("a sampled step").ess;
                sampling.steps += 1;
                sampling.ess_sum += ess;
                sampling.ess_min = sampling.ess_min.min(ess);
            }
            results.append(&mut d.results);
            if i + 1 == n {
                segments.push(Segment {
                    stream,
                    index,
                    steps: Vec::new(),
                    state: Some(d.state),
                });
            }
        }
        Ok(results)
    }

    /// One stream's steps, in order.
    fn segment(
        &self,
        stream: &Arc<StreamInfo>,
        steps: Vec<StepRecord>,
        mut state: StreamState,
    ) -> Result<Done> {
        let mut counts = Counts::default();
        let results = steps
            .into_iter()
            .map(|record| self.step(stream, record, &mut state, &mut counts))
            .collect::<Result<Vec<_>>>()?;
        Ok(Done {
            results,
            state,
            counts,
        })
    }

    /// One step: redraw if the set is spent, every estimator over the set,
    /// then the outcome into the weights and the context.
    fn step(
        &self,
        stream: &Arc<StreamInfo>,
        record: StepRecord,
        st: &mut StreamState,
        done: &mut Counts,
    ) -> Result<StepResult> {
        let (n, f) = (self.settings.samples, self.settings.redraw_ess);
        let mut redrawn = false;
        let spent = match &st.set {
            None => true,
            Some(set) => f >= 1.0 || set.weights().0 < f * n as f64,
        };
        if spent {
            let clock = Instant::now();
            if st.ctx.t == 0 {
                st.set = Some(SampleSet::from_prior(self, &mut st.rng)?);
                st.stats.prior_draws += 1;
                st.stats.prior_seconds += clock.elapsed().as_secs_f64();
            } else {
                st.set = Some(SampleSet::draw(self, &st.ctx, &mut st.rng)?);
                st.stats.redraws += 1;
                st.stats.draw_seconds += clock.elapsed().as_secs_f64();
            }
            redrawn = true;
        }
        let mut clock = Instant::now();
        let mut lap = || {
            let s = clock.elapsed().as_secs_f64();
            clock = Instant::now();
            s
        };
        let set = st.set.as_mut().expect("drawn above");
        let (ess, log_normaliser) = set.weights();
        st.stats.reweigh_seconds += lap();
        let at_line = |e: Error| match e {
            Error::Input { message, .. } => Error::input(
                &self.source,
                Some(record.line),
                format!("stream {}: {message}", stream.id),
            ),
            e => e,
        };
        let table = &record.table;
        let est = set.guard.estimates(table).map_err(at_line)?;
        let mut candidates = est.candidates.clone();
        let mut posterior = est.posterior.clone();
        posterior.map_hypothesis = set.grid_index(posterior.map_hypothesis);
        if let Some(w) = &stream.true_params {
            for (a, c) in candidates.iter_mut().enumerate() {
                let wx = w
                    .iter()
                    .zip(table.candidate(a))
                    .fold(0.0, |s, (w, x)| s + w * x);
                c.oracle = Some(self.model.observation.harm(wx));
            }
        }
        done.triples += (set.distinct() * table.n_candidates) as u64;
        st.stats.estimate_seconds += lap();
        let mut outcome = record.outcome;
        match set.guard.observe(table, record.action, outcome) {
            Ok(()) => {}
            Err(e) if outcome.is_some() && self.settings.skip_unexplained => {
                let _ = e; // the set is left as before the outcome
                set.guard.observe(table, record.action, None)?;
                outcome = None;
                done.unexplained.push(UnexplainedStep {
                    stream: stream.id.clone(),
                    step: record.step,
                    line: record.line,
                });
            }
            Err(e) => {
                return Err(at_line(e));
            }
        }
        if let Some(y) = outcome {
            done.observed += 1;
            st.ctx
                .push(&self.policy.model, table.candidate(record.action), y);
        }
        st.stats.reweigh_seconds += lap();
        Ok(StepResult {
            stream: stream.clone(),
            record,
            posterior,
            candidates,
            sampled: Some(SampledStep {
                ess,
                log_normaliser,
                redrawn,
                distinct: set.distinct(),
            }),
        })
    }
}

/// Per stream: the data so far, its random numbers, its sample set.
struct StreamState {
    ctx: Context,
    rng: ChaCha8Rng,
    set: Option<SampleSet>,
    stats: Stats,
}

#[derive(Default)]
struct Stats {
    redraws: usize,
    prior_draws: usize,
    draw_seconds: f64,
    prior_seconds: f64,
    reweigh_seconds: f64,
    estimate_seconds: f64,
}

impl StreamState {
    fn new(model: &Model, seed: u64, rng_stream: u64) -> StreamState {
        let m = sampler_model(model).expect("checked by `run`");
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        rng.set_stream(rng_stream);
        StreamState {
            ctx: Context::new(&m),
            rng,
            set: None,
            stats: Stats::default(),
        }
    }
}

/// A weighted set: its distinct hypotheses, their copies among the `N`
/// draws, and the guardrail that keeps their log weights and computes the
/// estimators. `ln W_h = guard.log_posterior()[h] + offset` is the summed
/// importance weight of `h`'s copies.
struct SampleSet {
    guard: Guardrail,
    /// `distinct × d`, in order of first draw
    paths: Vec<u16>,
    copies: Vec<f64>,
    offset: f64,
    n: usize,
    k: u64,
    d: usize,
}

impl SampleSet {
    /// `N` draws from `q_θ(· | D)`, weighted `π·p(D|w)/q_θ`.
    fn draw(run: &Run<'_>, ctx: &Context, rng: &mut ChaCha8Rng) -> Result<SampleSet> {
        let n = run.settings.samples;
        let m = &run.policy.model;
        let r = run.policy.sample(ctx, n, rng);
        let mut w = vec![0.0; m.d];
        let log_reward: Vec<f64> = r
            .paths
            .chunks_exact(m.d)
            .map(|p| {
                w.iter_mut().zip(p).for_each(|(o, &v)| *o = v as f64);
                ctx.log_reward(m, &w)
            })
            .collect();
        Self::build(run, &r.paths, &log_reward, &r.log_q)
    }

    /// `N` draws from the uniform prior (the posterior before any data):
    /// every weight `π/π = 1`.
    fn from_prior(run: &Run<'_>, rng: &mut ChaCha8Rng) -> Result<SampleSet> {
        let n = run.settings.samples;
        let m = &run.policy.model;
        let paths: Vec<u16> = (0..n * m.d)
            .map(|_| rng.random_range(0..m.k) as u16)
            .collect();
        let zeros = vec![0.0; n];
        Self::build(run, &paths, &zeros, &zeros)
    }

    /// The set of `paths` (`N × d`) with log weights `log_target − log_q`,
    /// copies merged.
    fn build(run: &Run<'_>, paths: &[u16], log_target: &[f64], log_q: &[f64]) -> Result<SampleSet> {
        let m = &run.policy.model;
        let d = m.d;
        let mut first: HashMap<&[u16], usize> = HashMap::with_capacity(log_q.len());
        let mut distinct: Vec<u16> = Vec::new();
        let mut copies: Vec<f64> = Vec::new();
        let mut target: Vec<f64> = Vec::new();
        let mut proposal: Vec<f64> = Vec::new();
        for (i, p) in paths.chunks_exact(d).enumerate() {
            match first.get(p) {
                // the same path in the same context: the same weight (up to
                // the last bits of the network's sums)
                Some(&h) => copies[h] += 1.0,
                None => {
                    first.insert(p, copies.len());
                    distinct.extend_from_slice(p);
                    copies.push(1.0);
                    target.push(log_target[i]);
                    proposal.push(log_q[i]);
                }
            }
        }
        let h = copies.len();
        for (t, c) in target.iter_mut().zip(&copies) {
            *t += c.ln();
        }
        let offset = log_sum_exp(
            &target
                .iter()
                .zip(&proposal)
                .map(|(t, q)| t - q)
                .collect::<Vec<_>>(),
        );
        if !offset.is_finite() {
            return Err(Error::Internal(format!(
                "a sample set whose weights sum to e^{offset}"
            )));
        }
        let params = ndarray::Array2::from_shape_fn((h, d), |(i, j)| distinct[i * d + j] as f64);
        let list = HypothesisList::new(params, Some(target), Some(proposal))
            .map_err(|e| Error::Internal(format!("a sample set: {e}")))?;
        let model = Model {
            hypotheses: HypothesisSpace::List(list),
            observation: run.model.observation,
        };
        // the threshold and estimator are the guardrail's verdicts, unused
        // here: the audit reads every estimator (`estimates`)
        let guard = Guardrail::new(
            model,
            run.settings.alphas.clone(),
            1.0,
            Estimator {
                kind: EstimatorKind::PosteriorPredictive,
                alpha: None,
            },
            BackendChoice::Cpu,
        )?;
        Ok(SampleSet {
            guard,
            paths: distinct,
            copies,
            offset,
            n: log_q.len(),
            k: m.k as u64,
            d,
        })
    }

    fn distinct(&self) -> usize {
        self.copies.len()
    }

    /// The ESS `(Σ w_i)² / Σ w_i²` over the `N` draws and `ln Ẑ =
    /// logsumexp(ln w_i) − ln N`: a hypothesis with `c` copies and summed
    /// weight `W` adds `W` to `Σ w_i` and `W²/c` to `Σ w_i²`.
    fn weights(&self) -> (f64, f64) {
        let l = self.guard.log_posterior();
        let top = crate::posterior::max_log(l);
        let (mut s1, mut s2) = (0.0, 0.0);
        for (&v, &c) in l.iter().zip(&self.copies) {
            let w = (v - top).exp();
            s1 += w;
            s2 += w * w / c;
        }
        let ess = (s1 * s1 / s2).clamp(1.0, self.n as f64);
        (ess, top + s1.ln() + self.offset - (self.n as f64).ln())
    }

    /// The grid index (SPEC §1: first coordinate most significant) of the
    /// set's hypothesis `h`; the log reader checked that `k^d·d` fits.
    fn grid_index(&self, h: usize) -> usize {
        self.paths[h * self.d..(h + 1) * self.d]
            .iter()
            .fold(0u64, |i, &v| i.wrapping_mul(self.k).wrapping_add(v as u64)) as usize
    }
}

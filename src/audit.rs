//! The audit pipeline: log reader → engine → posterior → estimators, batch by
//! batch, so memory stays bounded by the batch size whatever the log's length.

use std::collections::{HashMap, VecDeque};
use std::sync::Arc;
use std::time::Instant;

use ndarray::Axis;
use rayon::prelude::*;

use crate::engine::{
    Batch, BatchStep, CandidateTable, Engine, PosteriorCarry, ReducedBatch, Reductions,
};
pub use crate::engine::{PhaseSeconds, DEFAULT_BATCH_ELEMENTS};
use crate::estimators::{self, Alphas, CandidateEstimates};
pub use crate::log::EventSource;
use crate::log::{LogEvent, StepRecord, StreamInfo};

use crate::model::Model;
use crate::posterior;
use crate::{Error, Result};

/// Hypotheses per thread's block of the host's prefix sums.
const PREFIX_COLUMNS: usize = 256;

/// The host's two `steps × H` arrays, kept between audits in this process
/// (`gpubound bench` runs many; so may a library user) so that an audit's
/// first batch does not fault in fresh pages: at H = 1024 that was a tenth
/// of an audit. At most `KEPT_BYTES` are kept.
static KEPT: std::sync::Mutex<(Vec<f64>, Vec<f64>)> =
    std::sync::Mutex::new((Vec::new(), Vec::new()));
const KEPT_BYTES: usize = 64 << 20;

/// The next audit's number (`PosteriorCarry::audit`).
static NEXT_AUDIT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(0);

#[derive(Debug, Clone)]
pub struct AuditSettings {
    pub alphas: Alphas,
    /// All streams share one world: the posterior carries over between them.
    pub shared_world: bool,
    pub batch_elements: usize,
    /// An outcome no hypothesis with positive posterior can explain is
    /// treated as missing (and listed in the totals) instead of being bad
    /// input (SPEC §2).
    pub skip_unexplained: bool,
}

/// The posterior at a step, summarised for the report.
#[derive(Debug, Clone, PartialEq)]
pub struct PosteriorSummary {
    /// MAP hypothesis (first on ties) and its posterior probability.
    pub map_hypothesis: usize,
    pub map_probability: f64,
    /// Shannon entropy of the posterior, in nats.
    pub entropy: f64,
    /// `|I_α|` per α.
    pub plausible_set_size: Vec<usize>,
}

/// Everything the audit says about one logged step.
#[derive(Debug, Clone)]
pub struct StepResult {
    pub stream: Arc<StreamInfo>,
    pub record: StepRecord,
    pub posterior: PosteriorSummary,
    /// One per candidate; `candidates[record.action]` is the action taken.
    pub candidates: Vec<CandidateEstimates>,
    /// An audit on sampled hypotheses (`sampler::audit`): the sample set the
    /// step's estimates are over. `None` when the space was enumerated.
    pub sampled: Option<SampledStep>,
}

/// The weighted sample set of one step of an audit on sampled hypotheses:
/// `N` draws `w_i` with importance weights `w_i = π(w_i)·p(D_t | w_i) /
/// q_s(w_i)` (`q_s` the sampler at the step `s ≤ t` that drew them).
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct SampledStep {
    /// The effective sample size `(Σ w)² / Σ w²`, in `[1, N]`.
    pub ess: f64,
    /// `ln Ẑ_t = logsumexp(ln w_i) − ln N`: an estimate of `ln p(D_t)`, the
    /// log marginal likelihood of the stream's data before the step.
    pub log_normaliser: f64,
    /// A fresh set was drawn at this step (a stream's first step, or the
    /// ESS had fallen below the redraw threshold).
    pub redrawn: bool,
    /// Distinct hypotheses among the `N` draws (duplicates are merged).
    pub distinct: usize,
}

/// What an audit on sampled hypotheses used, for the summary.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingInfo {
    /// The sampler file, as given.
    pub sampler: String,
    /// Its training steps.
    pub training_steps: u64,
    /// Draws per set `N`.
    pub samples: usize,
    pub seed: u64,
    /// A set is redrawn when its ESS falls below this fraction of `N`.
    pub redraw_ess: f64,
}

impl StepResult {
    pub fn taken(&self) -> &CandidateEstimates {
        &self.candidates[self.record.action]
    }
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct AuditTotals {
    pub streams: usize,
    pub steps: usize,
    pub observed_steps: usize,
    pub triples: u64,
    pub phases: PhaseSeconds,
    /// batches whose posterior the backend kept on the device
    pub device_posterior_batches: usize,
    /// With `skip_unexplained`: how many outcomes no hypothesis could
    /// explain were treated as missing …
    pub unexplained_count: usize,
    /// … and the first `MAX_LISTED_UNEXPLAINED` of them, in log order.
    pub unexplained: Vec<UnexplainedStep>,
    /// An audit on sampled hypotheses: what it drew.
    pub sampling: Option<SamplingTotals>,
}

/// The sample sets of an audit on sampled hypotheses, in all.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct SamplingTotals {
    pub info: SamplingInfo,
    /// Sets drawn from the sampler (a stream's first set, drawn before any
    /// data, comes from the prior: `prior_draws`).
    pub redraws: usize,
    pub prior_draws: usize,
    /// Steps, and the sum and least of their ESS.
    pub steps: usize,
    pub ess_sum: f64,
    pub ess_min: f64,
    /// Time in the sampler's draws, in the draws from the prior, in the
    /// weights (each outcome's log-likelihood added, the ESS and `ln Ẑ`)
    /// and in the estimators, summed over threads.
    pub draw_seconds: f64,
    pub prior_seconds: f64,
    pub reweigh_seconds: f64,
    pub estimate_seconds: f64,
}

impl SamplingTotals {
    /// The mean ESS per step (NaN with no step).
    pub fn ess_mean(&self) -> f64 {
        self.ess_sum / self.steps as f64
    }
}

/// At most this many unexplained steps are listed (all are counted).
pub const MAX_LISTED_UNEXPLAINED: usize = 1000;

/// A step whose outcome no hypothesis could explain, treated as missing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UnexplainedStep {
    pub stream: String,
    /// 1-based step of the stream
    pub step: usize,
    /// line of the log
    pub line: usize,
}

/// A step waiting in the current batch.
struct Pending {
    stream: Arc<StreamInfo>,
    record: StepRecord,
    /// First step of a stream whose posterior restarts from the prior.
    restart: bool,
}

/// Runs the audit over the whole log, handing each step's result to `sink` in
/// log order. `progress` sees the source after each batch.
pub fn run<S: EventSource>(
    reader: &mut S,
    engine: &dyn Engine,
    settings: &AuditSettings,
    mut sink: impl FnMut(StepResult) -> Result<()>,
    progress: impl FnMut(&S),
) -> Result<AuditTotals> {
    run_in_batches(
        reader,
        engine,
        settings,
        |steps| steps.into_iter().try_for_each(&mut sink),
        progress,
    )
}

/// `run`, handing `sink` each batch's results at once, in log order (a
/// report writer formats a batch in parallel).
pub fn run_in_batches<S: EventSource>(
    reader: &mut S,
    engine: &dyn Engine,
    settings: &AuditSettings,
    mut sink: impl FnMut(Vec<StepResult>) -> Result<()>,
    mut progress: impl FnMut(&S),
) -> Result<AuditTotals> {
    let model = reader.model().clone();
    let h = model.hypotheses.len();
    // Capped so progress moves and the batch's results stay small when H is
    // small: 8192 steps, up to 65536 for batches larger than the default.
    let max_steps =
        (settings.batch_elements / h).clamp(1, (settings.batch_elements >> 8).clamp(8192, 65536));
    let prior = model.hypotheses.log_prior();
    let mut state = BatchRunner {
        model: &model,
        engine,
        settings,
        prior: &prior,
        carry: prior.clone(),
        spare: KEPT
            .lock()
            .map(|mut k| std::mem::take(&mut *k))
            .unwrap_or_default(),
        phases: PhaseSeconds::default(),
        device_batches: 0,
        audit: NEXT_AUDIT.fetch_add(1, std::sync::atomic::Ordering::Relaxed),
        batches: 0,
        source: reader.name().to_string(),
        unexplained: Vec::new(),
        unexplained_count: 0,
    };
    let mut totals = AuditTotals::default();
    let mut pending: Vec<Pending> = Vec::with_capacity(max_steps.min(1 << 16));
    // the last batch the engine reduced, waiting for its estimators
    let mut waiting: Vec<Reduced> = Vec::new();
    let mut stream: Option<Arc<StreamInfo>> = None;
    let mut restart = true;
    while let Some(event) = reader.next_event()? {
        match event {
            LogEvent::Stream(s) => {
                totals.streams += 1;
                stream = Some(s);
                restart = !settings.shared_world || totals.streams == 1;
            }
            LogEvent::Step(record) => {
                totals.steps += 1;
                totals.observed_steps += record.outcome.is_some() as usize;
                totals.triples += (h * record.table.n_candidates) as u64;
                pending.push(Pending {
                    stream: stream
                        .clone()
                        .expect("the reader checks steps follow a stream"),
                    record,
                    restart,
                });
                restart = false;
                if pending.len() >= max_steps {
                    let results = state.advance(std::mem::take(&mut pending), &mut waiting)?;
                    state.sink_all(results, &mut sink)?;
                    progress(reader);
                }
            }
        }
    }
    let results = state.advance(pending, &mut waiting)?;
    state.sink_all(results, &mut sink)?;
    let results = state.advance(Vec::new(), &mut waiting)?;
    state.sink_all(results, &mut sink)?;
    progress(reader);
    let kept = 8 * (state.spare.0.capacity() + state.spare.1.capacity());
    if kept <= KEPT_BYTES {
        if let Ok(mut k) = KEPT.lock() {
            *k = std::mem::take(&mut state.spare);
        }
    }
    totals.phases = state.phases;
    totals.device_posterior_batches = state.device_batches;
    // skipped outcomes are missing ones
    totals.observed_steps -= state.unexplained_count;
    totals.unexplained_count = state.unexplained_count;
    totals.unexplained = state.unexplained;
    Ok(totals)
}

struct BatchRunner<'a> {
    model: &'a Model,
    engine: &'a dyn Engine,
    settings: &'a AuditSettings,
    prior: &'a [f64],
    /// `L` after the last processed step of the open stream.
    carry: Vec<f64>,
    /// The previous batch's two `steps × H` arrays, for reuse.
    spare: (Vec<f64>, Vec<f64>),
    phases: PhaseSeconds,
    device_batches: usize,
    /// this audit among all of the process (`PosteriorCarry::audit`)
    audit: u64,
    /// batches processed so far
    batches: u64,
    /// the source's name, for errors
    source: String,
    /// outcomes skipped as unexplained (the first few) and their number
    unexplained: Vec<UnexplainedStep>,
    unexplained_count: usize,
}

/// A batch the engine has reduced, waiting for its estimators.
struct Reduced {
    pending: Vec<Pending>,
    candidate_offsets: Vec<usize>,
    reduced: ReducedBatch,
}

impl BatchRunner<'_> {
    /// Hands `pending` to the engine while the host computes the estimators
    /// of the batch `waiting` holds (a GPU's batch leaves the host's cores
    /// idle; the host's estimators leave the GPU idle), and returns those.
    /// An empty `pending` finishes the last batch.
    fn advance(
        &mut self,
        pending: Vec<Pending>,
        waiting: &mut Vec<Reduced>,
    ) -> Result<Vec<StepResult>> {
        let (model, alphas) = (self.model, &self.settings.alphas);
        let source = self.source.clone();
        let last = std::mem::take(waiting);
        let overlap = !last.is_empty() && !pending.is_empty();
        let estimators = move || {
            let started = Instant::now();
            let results = last
                .into_iter()
                .map(|r| finish(model, r, alphas, &source))
                .collect::<Result<Vec<_>>>()
                .map(|parts| parts.into_iter().flatten().collect::<Vec<_>>());
            (results, started.elapsed().as_secs_f64())
        };
        let ((results, seconds), next) = if !overlap {
            // one of the two is empty: nothing to run side by side
            let done = estimators();
            (done, self.process(pending))
        } else {
            // The engine's part stays on this thread: run from inside
            // rayon's pool, a GPU engine holding its lock could pick up
            // another audit's job on the same engine while it waits, and
            // deadlock.
            std::thread::scope(|scope| {
                let estimators = scope.spawn(estimators);
                let next = self.process(pending);
                let done = estimators
                    .join()
                    .unwrap_or_else(|e| std::panic::resume_unwind(e));
                (done, next)
            })
        };
        self.phases.estimators += seconds;
        let results = results?;
        *waiting = next?;
        Ok(results)
    }

    fn sink_all(
        &mut self,
        results: Vec<StepResult>,
        sink: &mut impl FnMut(Vec<StepResult>) -> Result<()>,
    ) -> Result<()> {
        let started = Instant::now();
        if !results.is_empty() {
            sink(results)?;
        }
        self.phases.estimators += started.elapsed().as_secs_f64();
        Ok(())
    }

    /// The engine's part of a batch: posterior and reductions, in one part,
    /// or where outcomes no hypothesis can explain are skipped, in several.
    fn process(&mut self, pending: Vec<Pending>) -> Result<Vec<Reduced>> {
        if pending.is_empty() {
            return Ok(Vec::new());
        }
        if !self.settings.skip_unexplained {
            return match self.process_part(pending)? {
                Ok(r) => Ok(vec![r]),
                Err((part, t)) => Err(self.unexplained_error(&part[t])),
            };
        }
        // An unexplained outcome at step t of a part leaves every step up to
        // t right, but the carry and the stream's later steps wrong: the
        // part is run again from its carry with that outcome missing, cut
        // after t, so both backends skip exactly the same outcomes. Parts
        // shrink to the steps up to an unexplained outcome and double after
        // each clean run, so a stream of many costs a few passes, not one
        // per outcome.
        let mut parts = Vec::new();
        let mut rest: VecDeque<Pending> = pending.into();
        let mut size = rest.len();
        while !rest.is_empty() {
            let n = size.min(rest.len());
            let part: Vec<Pending> = rest.drain(..n).collect();
            let carry = self.carry.clone();
            match self.process_part(part)? {
                Ok(r) => {
                    parts.push(r);
                    size = size.saturating_mul(2);
                }
                Err((mut part, t)) => {
                    self.carry = carry;
                    // a new batch number: a device holding the carry after
                    // the failed part must take the host's again
                    self.batches += 1;
                    self.skip(&mut part[t]);
                    for p in part.into_iter().rev() {
                        rest.push_front(p);
                    }
                    size = t + 1;
                }
            }
        }
        Ok(parts)
    }

    /// Treats `p`'s outcome as missing, and lists it.
    fn skip(&mut self, p: &mut Pending) {
        p.record.outcome = None;
        self.unexplained_count += 1;
        if self.unexplained.len() < MAX_LISTED_UNEXPLAINED {
            self.unexplained.push(UnexplainedStep {
                stream: p.stream.id.clone(),
                step: p.record.step,
                line: p.record.line,
            });
        }
    }

    fn unexplained_error(&self, p: &Pending) -> Error {
        Error::input(
            &self.source,
            Some(p.record.line),
            format!(
                "no hypothesis with positive posterior can explain the outcome {:e} of stream {} \
                 (its log-likelihood is -inf, below {:e}, or not a number under each): the model is \
                 wrong for this stream (a placeholder for a missing value? sigma too small?); \
                 remove the outcome, or give --skip-unexplained to treat such outcomes as missing",
                p.record.outcome.unwrap_or(f64::NAN),
                p.stream.id,
                posterior::LOG_ZERO,
            ),
        )
    }

    /// One part of a batch through the engine; `Err((part, t))` where the
    /// outcome of `part[t]` (the first such) is one no hypothesis with
    /// positive posterior explains: `max_h L_{t+1}(h)` is −∞ or not a
    /// number. Detection is the same on both backends: from the largest `L`
    /// of each step, which the host's prefix sums and the device posterior
    /// both know, with a step of no outcome after a stream's last one (a
    /// restart would hide its `L`) and the carry after the part's last step.
    #[allow(clippy::type_complexity)]
    fn process_part(
        &mut self,
        pending: Vec<Pending>,
    ) -> Result<std::result::Result<Reduced, (Vec<Pending>, usize)>> {
        let mut clock = Instant::now();
        let mut lap = || {
            let s = clock.elapsed().as_secs_f64();
            clock = Instant::now();
            s
        };
        self.batches += 1;
        let built = build_batch(self.model, &pending);
        let batch = &built.batch;
        let mut prepared = self.engine.prepare(batch)?;

        // A backend that keeps the posterior on the device does it all.
        let restart = &built.restart;
        let on_device = prepared.posterior_and_reduce(
            PosteriorCarry {
                prior: self.prior,
                carry: &mut self.carry,
                restart,
                audit: self.audit,
                batch: self.batches - 1,
            },
            &self.settings.alphas.values,
        )?;
        if let Some(d) = on_device {
            drop(prepared);
            self.device_batches += 1;
            let total = lap();
            let inside = d.phases.likelihoods + d.phases.posterior + d.phases.reduce;
            self.phases += d.phases;
            self.phases.setup += (total - inside).max(0.0);
            if let Some(t) = built.first_unexplained(&pending, &d.log_max, &self.carry) {
                return Ok(Err((pending, t)));
            }
            return Ok(Ok(built.reduced(pending, d.reduced)));
        }

        let mut rows = prepared.log_likelihoods_into(std::mem::take(&mut self.spare.0))?;
        self.phases.likelihoods += lap();

        // Host: prefix sums in f64, restarting at the prior where a stream
        // starts; hypotheses are independent, so threads take column blocks
        // (each hypothesis still adds in step order: the same bits).
        // Each block also gives the largest L of each step, for the check.
        let columns: Vec<_> = rows
            .axis_chunks_iter_mut(Axis(1), PREFIX_COLUMNS)
            .zip(self.carry.chunks_mut(PREFIX_COLUMNS))
            .zip(self.prior.chunks(PREFIX_COLUMNS))
            .collect();
        let n_steps = restart.len();
        let log_max = columns
            .into_par_iter()
            .map(|((mut block, carry), prior)| {
                let mut maxima = Vec::with_capacity(n_steps);
                for (row, &r) in block.axis_iter_mut(Axis(0)).zip(restart) {
                    if r {
                        carry.copy_from_slice(prior);
                    }
                    maxima.push(posterior::max_log(carry));
                    posterior::accumulate(carry, row.insert_axis(Axis(0)));
                }
                maxima
            })
            .reduce(
                || vec![f64::NEG_INFINITY; n_steps],
                |mut a, b| {
                    a.iter_mut().zip(b).for_each(|(a, b)| *a = a.max(b));
                    a
                },
            );
        self.phases.posterior += lap();
        // before the reductions, which need a posterior
        if let Some(t) = built.first_unexplained(&pending, &log_max, &self.carry) {
            self.spare.0 = rows.into_raw_vec_and_offset().0;
            return Ok(Err((pending, t)));
        }
        let spare = std::mem::take(&mut self.spare.1);
        let weighed = prepared.weigh_and_reduce(rows, &self.settings.alphas.values, spare)?;
        drop(prepared);
        let total = lap();
        self.phases.posterior += weighed.posterior_seconds;
        self.phases.reduce += total - weighed.posterior_seconds;
        self.spare = weighed.spare;
        Ok(Ok(built.reduced(pending, weighed.reduced)))
    }
}

/// An engine batch built from pending steps, with a step of no outcome
/// after each stream's last step that has one, where the next step restarts
/// the posterior: its largest `L` is that of the posterior after the
/// outcome, which the restart would hide (see `first_unexplained`).
struct Built<'m> {
    batch: Batch<'m>,
    /// per engine step
    restart: Vec<bool>,
    /// the engine step of each pending step
    index: Vec<usize>,
}

/// Groups the pending steps' tables (a stream's shared table once, a step's
/// own table each) into an engine batch.
fn build_batch<'m>(model: &'m Model, pending: &[Pending]) -> Built<'m> {
    let mut batch = Batch::new(model);
    let mut seen: HashMap<*const CandidateTable, u32> = HashMap::new();
    let mut restart = Vec::with_capacity(pending.len());
    let mut index = Vec::with_capacity(pending.len());
    // one candidate of zero features, shared by the batch's extra steps
    let mut extra_table = None;
    for (i, p) in pending.iter().enumerate() {
        let key = Arc::as_ptr(&p.record.table);
        let table = *seen
            .entry(key)
            .or_insert_with(|| batch.push_table(p.record.table.clone()));
        index.push(batch.steps.len());
        restart.push(p.restart);
        batch.push_step(BatchStep {
            table,
            action: p.record.action as u32,
            outcome: p.record.outcome,
        });
        if p.record.outcome.is_some() && pending.get(i + 1).is_some_and(|n| n.restart) {
            let d = model.hypotheses.dim();
            let table = *extra_table
                .get_or_insert_with(|| batch.push_table(CandidateTable::new(vec![0.0; d], 1)));
            restart.push(false);
            batch.push_step(BatchStep {
                table,
                action: 0,
                outcome: None,
            });
        }
    }
    Built {
        batch,
        restart,
        index,
    }
}

impl Built<'_> {
    /// The first pending step whose outcome leaves no hypothesis with a
    /// log posterior above `LOG_ZERO`, from the largest `L` before each
    /// engine step (`log_max`) and the carry after the last. Every earlier
    /// step was explained, so that step's posterior held one.
    fn first_unexplained(
        &self,
        pending: &[Pending],
        log_max: &[f64],
        carry: &[f64],
    ) -> Option<usize> {
        let n = self.batch.steps.len();
        debug_assert_eq!(log_max.len(), n);
        let mut after_last = None;
        pending.iter().enumerate().position(|(i, p)| {
            if p.record.outcome.is_none() {
                return false;
            }
            let e = self.index[i] + 1;
            let after = if e < n {
                log_max[e]
            } else {
                *after_last.get_or_insert_with(|| posterior::max_log(carry))
            };
            posterior::is_void(after)
        })
    }

    /// The reduced batch of the pending steps, without the extra steps.
    fn reduced(self, pending: Vec<Pending>, reduced: ReducedBatch) -> Reduced {
        let offsets = &self.batch.candidate_offsets;
        if self.index.len() == self.batch.steps.len() {
            return Reduced {
                pending,
                candidate_offsets: self.batch.candidate_offsets,
                reduced,
            };
        }
        let r = &reduced.reductions;
        let n_alpha = r.n_alpha;
        let mut out =
            Reductions::with_capacity(self.index.len(), offsets[offsets.len() - 1], n_alpha);
        let mut cuts = Vec::with_capacity(self.index.len());
        let mut maps = Vec::with_capacity(self.index.len());
        let mut candidate_offsets = Vec::with_capacity(self.index.len() + 1);
        candidate_offsets.push(0);
        for &e in &self.index {
            out.weight_sum.push(r.weight_sum[e]);
            out.weighted_log_rel.push(r.weighted_log_rel[e]);
            let c = offsets[e]..offsets[e + 1];
            out.weighted_harm
                .extend_from_slice(&r.weighted_harm[c.clone()]);
            out.cautious_hypothesis
                .extend_from_slice(&r.cautious_hypothesis[c.clone()]);
            out.cautious_harm
                .extend_from_slice(&r.cautious_harm[c.clone()]);
            out.cautious_log_score
                .extend_from_slice(&r.cautious_log_score[c.clone()]);
            out.plausible_harm
                .extend_from_slice(&r.plausible_harm[c.start * n_alpha..c.end * n_alpha]);
            cuts.push(reduced.cuts[e].clone());
            maps.push(reduced.maps[e]);
            candidate_offsets.push(candidate_offsets[candidate_offsets.len() - 1] + c.len());
        }
        Reduced {
            pending,
            candidate_offsets,
            reduced: ReducedBatch {
                reductions: out,
                cuts,
                maps,
            },
        }
    }
}

/// The estimators of a reduced batch, per step: the one place where both
/// backends' reductions become estimates, so the never-NaN invariant of
/// SPEC §2 is checked here. A violation is an internal error, never a
/// number in the report.
fn finish(model: &Model, r: Reduced, alphas: &Alphas, source: &str) -> Result<Vec<StepResult>> {
    let n_alpha = alphas.len();
    let h = model.hypotheses.len();
    let (red, cuts, maps) = (&r.reduced.reductions, &r.reduced.cuts, &r.reduced.maps);
    let (pending, candidate_offsets) = (r.pending, r.candidate_offsets);
    pending
        .into_par_iter()
        .enumerate()
        .map(|(t, p)| {
            let violated = |what: String| {
                Error::Internal(format!(
                    "{source}:{}: {what}: the posterior of this step is not a distribution",
                    p.record.line
                ))
            };
            let z = red.weight_sum[t];
            let entropy = z.ln() - red.weighted_log_rel[t] / z;
            // the MAP weighs 1 and is in every I_α (α ≤ 1)
            if !(z >= 1.0 && z.is_finite() && entropy.is_finite()) {
                return Err(violated(format!(
                    "the relative weights sum to {z} (entropy {entropy})"
                )));
            }
            if maps[t] >= h || cuts[t].iter().any(|c| c.size == 0 || c.size > h) {
                return Err(violated(format!(
                    "MAP {} of {h} hypotheses, plausible sets of sizes {:?}",
                    maps[t],
                    cuts[t].iter().map(|c| c.size).collect::<Vec<_>>()
                )));
            }
            let first = candidate_offsets[t];
            let table = &p.record.table;
            let candidates = (0..table.n_candidates)
                .map(|a| {
                    let c = first + a;
                    let oracle = p.stream.true_params.as_ref().map(|w| {
                        let wx = w
                            .iter()
                            .zip(table.candidate(a))
                            .fold(0.0, |s, (w, x)| s + w * x);
                        model.observation.harm(wx)
                    });
                    estimators::finish(
                        alphas,
                        z,
                        red.weighted_harm[c],
                        red.cautious_hypothesis[c],
                        red.cautious_harm[c],
                        red.cautious_log_score[c],
                        &red.plausible_harm[c * n_alpha..(c + 1) * n_alpha],
                        oracle,
                    )
                    .map_err(|e| violated(format!("candidate {a}: {e}")))
                })
                .collect::<Result<Vec<_>>>()?;
            Ok(StepResult {
                posterior: PosteriorSummary {
                    map_hypothesis: maps[t],
                    map_probability: 1.0 / z,
                    entropy: entropy.max(0.0),
                    plausible_set_size: cuts[t].iter().map(|c| c.size).collect(),
                },
                stream: p.stream,
                record: p.record,
                candidates,
                sampled: None,
            })
        })
        .collect()
}

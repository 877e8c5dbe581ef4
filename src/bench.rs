//! Synthetic audit workloads and their timing, for `gpubound bench` and the
//! criterion benches: the same computation as `audit` (every estimator for
//! every candidate of every step), with the log held in memory so that JSON
//! parsing does not hide the engine's speed.

use std::sync::Arc;
use std::time::Instant;

use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;
use rand_distr::{Distribution, Normal};
use serde::Serialize;

use crate::audit::{self, AuditSettings, EventSource, PhaseSeconds};
use crate::engine::{BackendInfo, CandidateTable, Engine, KernelTime};
use crate::estimators::Alphas;
use crate::log::{LogEvent, StepRecord, StreamInfo};
use crate::model::{HypothesisList, HypothesisSpace, Model, ObservationModel};
use crate::Result;

pub mod peak;
pub mod suite;

/// The α values of the paper's experiments (7 of them).
pub const PAPER_ALPHAS: [f64; 7] = [1e-5, 1e-4, 1e-3, 1e-2, 0.1, 0.3, 1.0];

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelFamily {
    Gaussian,
    Bernoulli,
}

/// The shape of a synthetic workload.
#[derive(Debug, Clone, Serialize)]
pub struct WorkloadSpec {
    pub hypotheses: usize,
    pub steps: usize,
    pub actions: usize,
    pub dim: usize,
    pub model: ModelFamily,
    /// Steps per stream (episode); the posterior restarts at each.
    pub stream_length: usize,
    /// New real-valued candidates at every step (harm needs erfc per triple)
    /// instead of one integer candidate table per stream.
    pub contextual: bool,
    pub seed: u64,
}

/// A workload in memory: the model and the events a log reader would yield.
pub struct Workload {
    pub spec: WorkloadSpec,
    pub model: Model,
    pub events: Vec<LogEvent>,
    /// `H × Σ_t A_t`
    pub triples: u64,
    pub description: String,
}

/// The grid `{0..k-1}^d` with `k^d = H`, if there is one.
fn grid_base(h: usize, d: usize) -> Option<u32> {
    (2..=64u32).find(|&k| (k as f64).powi(d as i32) == h as f64 && (k as usize).pow(d as u32) == h)
}

impl Workload {
    pub fn generate(spec: &WorkloadSpec) -> Result<Workload> {
        use crate::Error::Setting;
        if spec.hypotheses == 0
            || spec.steps == 0
            || spec.actions == 0
            || spec.dim == 0
            || spec.stream_length == 0
        {
            return Err(Setting(
                "hypotheses, steps, actions, dim and stream length must all be ≥ 1".into(),
            ));
        }
        let mut rng = ChaCha8Rng::seed_from_u64(spec.seed);
        let (space, k) = match grid_base(spec.hypotheses, spec.dim) {
            Some(k) => (
                HypothesisSpace::grid(k, spec.dim).map_err(Setting)?,
                k as usize,
            ),
            None => {
                // A list of integer hypotheses in {0,1,2}^d: not a full grid.
                let params = ndarray::Array2::from_shape_fn((spec.hypotheses, spec.dim), |_| {
                    rng.random_range(0..3) as f64
                });
                (
                    HypothesisSpace::List(
                        HypothesisList::new(params, None, None).map_err(Setting)?,
                    ),
                    3,
                )
            }
        };
        // Bernoulli features are centred so that harm is not always ≥ 1/2.
        let feature = |rng: &mut ChaCha8Rng| match spec.model {
            ModelFamily::Gaussian => rng.random_range(0..k) as f64,
            ModelFamily::Bernoulli => rng.random_range(-1i32..=1) as f64,
        };
        let observation = match spec.model {
            ModelFamily::Gaussian => {
                // θ as the paper's bandit sets it: the mean best-arm reward, rounded.
                let mut total = 0.0;
                for _ in 0..100 {
                    let w: Vec<f64> = (0..spec.dim)
                        .map(|_| rng.random_range(0..k) as f64)
                        .collect();
                    let best = (0..spec.actions)
                        .map(|_| (0..spec.dim).map(|j| w[j] * feature(&mut rng)).sum::<f64>())
                        .fold(f64::NEG_INFINITY, f64::max);
                    total += best;
                }
                ObservationModel::Gaussian {
                    sigma: 1.0,
                    harm_threshold: (total / 100.0).round_ties_even(),
                }
            }
            ModelFamily::Bernoulli => ObservationModel::Bernoulli,
        };
        let model = Model {
            hypotheses: space,
            observation,
        };
        let h = model.hypotheses.len();
        let normal = Normal::new(0.0, 1.0).expect("unit normal");
        let mut events = Vec::with_capacity(spec.steps + spec.steps / spec.stream_length + 1);
        let table = |rng: &mut ChaCha8Rng, real: bool| {
            let f: Vec<f64> = (0..spec.actions * spec.dim)
                .map(|_| {
                    if real {
                        normal.sample(rng)
                    } else {
                        feature(rng)
                    }
                })
                .collect();
            Arc::new(CandidateTable::new(f, spec.actions))
        };
        let mut done = 0;
        let mut streams = 0;
        while done < spec.steps {
            streams += 1;
            let truth = model.hypotheses.params(rng.random_range(0..h));
            let shared = (!spec.contextual).then(|| table(&mut rng, false));
            let info = Arc::new(StreamInfo {
                id: streams.to_string(),
                line: streams,
                table: shared.clone(),
                true_params: Some(truth.clone()),
            });
            events.push(LogEvent::Stream(info));
            for step in 1..=spec.stream_length.min(spec.steps - done) {
                let t = shared.clone().unwrap_or_else(|| table(&mut rng, true));
                let action = rng.random_range(0..spec.actions);
                let wx: f64 = truth
                    .iter()
                    .zip(t.candidate(action))
                    .map(|(w, x)| w * x)
                    .sum();
                let outcome = match model.observation {
                    ObservationModel::Gaussian { sigma, .. } => {
                        wx + sigma * normal.sample(&mut rng)
                    }
                    ObservationModel::Bernoulli => {
                        (rng.random::<f64>() < model.observation.harm(wx)) as u8 as f64
                    }
                };
                events.push(LogEvent::Step(StepRecord {
                    line: 0,
                    step,
                    action,
                    outcome: Some(outcome),
                    shared_table: shared.is_some(),
                    table: t,
                }));
                done += 1;
            }
        }
        let description = format!(
            "H={} ({}), T={} steps in {} streams of ≤{}, A={}, d={}, {}{}",
            h,
            match &model.hypotheses {
                HypothesisSpace::Grid { k, d } => format!("grid {{0..{}}}^{d}", k - 1),
                HypothesisSpace::List(_) => "list".into(),
            },
            spec.steps,
            streams,
            spec.stream_length,
            spec.actions,
            spec.dim,
            spec.model.name(),
            if spec.contextual {
                ", contextual real-valued candidates"
            } else {
                ", one integer candidate table per stream"
            }
        );
        Ok(Workload {
            triples: (h * spec.actions * spec.steps) as u64,
            spec: spec.clone(),
            model,
            events,
            description,
        })
    }

    pub fn source(&self) -> MemorySource<'_> {
        MemorySource {
            model: &self.model,
            events: self.events.iter(),
        }
    }

    /// One full audit of the workload in batches of `batch_elements`
    /// (step, hypothesis) pairs; returns a checksum of every estimate (so no
    /// work can be skipped), the seconds it took and their phases.
    pub fn audit_once(
        &self,
        engine: &dyn Engine,
        alphas: &Alphas,
        batch_elements: usize,
    ) -> Result<(f64, f64, PhaseSeconds)> {
        let settings = AuditSettings {
            alphas: alphas.clone(),
            shared_world: false,
            batch_elements,
            skip_unexplained: false,
        };
        let mut checksum = 0.0;
        let started = Instant::now();
        let totals = audit::run(
            &mut self.source(),
            engine,
            &settings,
            |s| {
                for c in &s.candidates {
                    checksum += c.posterior_predictive
                        + c.cautious_theory
                        + c.plausible_set.iter().sum::<f64>();
                }
                Ok(())
            },
            |_| {},
        )?;
        Ok((checksum, started.elapsed().as_secs_f64(), totals.phases))
    }
}

impl ModelFamily {
    pub fn name(self) -> &'static str {
        match self {
            ModelFamily::Gaussian => "gaussian",
            ModelFamily::Bernoulli => "bernoulli",
        }
    }
}

/// Replays a workload's events.
pub struct MemorySource<'a> {
    model: &'a Model,
    events: std::slice::Iter<'a, LogEvent>,
}

impl EventSource for MemorySource<'_> {
    fn model(&self) -> &Model {
        self.model
    }

    fn next_event(&mut self) -> Result<Option<LogEvent>> {
        Ok(self.events.next().cloned())
    }
}

/// One backend's timing.
#[derive(Debug, Clone, Serialize)]
pub struct BackendTiming {
    pub backend: BackendInfo,
    pub runs: usize,
    pub seconds: Vec<f64>,
    pub median_triples_per_s: f64,
    pub min_triples_per_s: f64,
    pub max_triples_per_s: f64,
    pub checksum: f64,
    /// (step, hypothesis) pairs per batch
    pub batch_elements: usize,
    /// where a run's time goes, averaged over the timed runs
    pub phase_seconds: PhaseSeconds,
    /// device seconds per kernel and run (`--kernel-times`, on a GPU with
    /// timestamp queries)
    #[serde(skip_serializing_if = "Option::is_none")]
    pub kernel_seconds: Option<Vec<KernelTime>>,
}

/// Times `runs` full audits after one warm-up run, in batches of
/// `batch_elements` (the engine's preferred size when `None`).
pub fn time_backend(
    workload: &Workload,
    engine: &dyn Engine,
    alphas: &Alphas,
    runs: usize,
    batch_elements: Option<usize>,
    mut tick: impl FnMut(),
) -> Result<BackendTiming> {
    let batch_elements = batch_elements.unwrap_or_else(|| engine.preferred_batch_elements());
    let (checksum, _, _) = workload.audit_once(engine, alphas, batch_elements)?;
    engine.take_kernel_times();
    tick();
    let mut seconds = Vec::with_capacity(runs);
    let mut phase_seconds = PhaseSeconds::default();
    for _ in 0..runs.max(1) {
        let (_, s, phases) = workload.audit_once(engine, alphas, batch_elements)?;
        seconds.push(s);
        phase_seconds += phases;
        tick();
    }
    let phase_seconds = phase_seconds.scaled(1.0 / seconds.len() as f64);
    let kernel_seconds = engine.take_kernel_times().map(|mut times| {
        for k in &mut times {
            k.seconds /= seconds.len() as f64;
            k.dispatches /= seconds.len() as u64;
        }
        times
    });
    let mut rates: Vec<f64> = seconds
        .iter()
        .map(|s| workload.triples as f64 / s)
        .collect();
    rates.sort_by(f64::total_cmp);
    Ok(BackendTiming {
        backend: engine.info().clone(),
        runs: seconds.len(),
        median_triples_per_s: rates[rates.len() / 2],
        min_triples_per_s: rates[0],
        max_triples_per_s: rates[rates.len() - 1],
        seconds,
        checksum,
        batch_elements,
        phase_seconds,
        kernel_seconds,
    })
}

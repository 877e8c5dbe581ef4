//! The CPU engine weighs and reduces a batch one step at a time
//! (`PreparedBatch::weigh_and_reduce`); the result must be, to the bit, the
//! whole-batch path every other backend uses (`posterior::step_weights`,
//! then `reduce`).

mod common;

use gpubound::audit::{AuditSettings, StepResult};
use gpubound::bench::{ModelFamily, Workload, WorkloadSpec};
use gpubound::engine::cpu::CpuEngine;
use gpubound::engine::{BackendInfo, Batch, Engine, PreparedBatch, Reductions, StepWeights};
use gpubound::estimators::Alphas;
use ndarray::Array2;

/// The CPU engine with the trait's default `weigh_and_reduce`.
struct WholeBatch(CpuEngine);

struct WholeBatchPrepared<'a>(Box<dyn PreparedBatch + 'a>);

impl Engine for WholeBatch {
    fn info(&self) -> &BackendInfo {
        self.0.info()
    }

    fn prepare<'a>(
        &'a self,
        batch: &'a Batch<'a>,
    ) -> gpubound::Result<Box<dyn PreparedBatch + 'a>> {
        Ok(Box::new(WholeBatchPrepared(self.0.prepare(batch)?)))
    }
}

impl PreparedBatch for WholeBatchPrepared<'_> {
    fn log_likelihoods(&mut self) -> gpubound::Result<Array2<f64>> {
        self.0.log_likelihoods()
    }

    fn reduce(&mut self, weights: &StepWeights, n_alpha: usize) -> gpubound::Result<Reductions> {
        self.0.reduce(weights, n_alpha)
    }
}

fn audit(workload: &Workload, engine: &dyn Engine) -> Vec<StepResult> {
    let settings = AuditSettings {
        alphas: Alphas::new(vec![1e-5, 1e-3, 0.1, 0.5, 1.0], 1.0 / 729.0).unwrap(),
        shared_world: false,
        // several batches, so recycled buffers are exercised too
        batch_elements: workload.model.hypotheses.len() * 37,
        skip_unexplained: false,
    };
    common::audit_source(&mut workload.source(), engine, &settings)
}

fn spec(model: ModelFamily, contextual: bool, stream_length: usize) -> WorkloadSpec {
    WorkloadSpec {
        hypotheses: 729,
        steps: 300,
        actions: 7,
        dim: 3,
        model,
        stream_length,
        contextual,
        seed: 5,
    }
}

#[test]
fn fused_weighing_equals_the_whole_batch_path_to_the_bit() {
    for (model, contextual, stream_length) in [
        (ModelFamily::Gaussian, false, 300),
        (ModelFamily::Gaussian, false, 25),
        (ModelFamily::Bernoulli, false, 300),
        (ModelFamily::Gaussian, true, 300),
        (ModelFamily::Bernoulli, true, 40),
    ] {
        let w = Workload::generate(&spec(model, contextual, stream_length)).unwrap();
        let fused = audit(&w, &CpuEngine::new());
        let whole = audit(&w, &WholeBatch(CpuEngine::new()));
        assert_eq!(fused.len(), 300);
        let name = &w.description;
        for (f, g) in fused.iter().zip(&whole) {
            assert_eq!(f.posterior, g.posterior, "{name}: step {}", f.record.step);
            assert_eq!(f.candidates, g.candidates, "{name}: step {}", f.record.step);
        }
        // the posterior moved: the comparison is not between two priors
        let last = fused.last().unwrap();
        assert!(last.posterior.map_probability > 1.5 / 729.0, "{name}");
    }
}

/// One engine kept across models (a benchmark suite, a long-lived service):
/// a candidate table it has seen under one model must not lend its harm
/// table to another model (regression: the cache was keyed by the table
/// alone, and the second model's audit silently used the first's harm).
#[test]
fn an_engine_reused_for_another_model_computes_that_models_harm() {
    let gauss = Workload::generate(&spec(ModelFamily::Gaussian, false, 300)).unwrap();
    // the same log (the same candidate tables) under another harm threshold
    let mut bern = Workload::generate(&spec(ModelFamily::Gaussian, false, 300)).unwrap();
    match &mut bern.model.observation {
        gpubound::model::ObservationModel::Gaussian { harm_threshold, .. } => {
            *harm_threshold += 0.5
        }
        other => panic!("a gaussian workload has {other:?}"),
    }
    let engine = CpuEngine::new();
    let first = audit(&gauss, &engine);
    let reused = audit(&bern, &engine);
    let fresh = audit(&bern, &CpuEngine::new());
    assert_eq!(first.len(), reused.len());
    for (r, f) in reused.iter().zip(&fresh) {
        assert_eq!(r.candidates, f.candidates, "step {}", r.record.step);
        assert_eq!(r.posterior, f.posterior, "step {}", r.record.step);
    }
}

/// The two harm paths give the same bits: a table several steps share is
/// tabulated whole (`harm::harm`), a step's own table is evaluated for its
/// live hypotheses only (`reduce_live`, vectorised erfc, a grid's rows of
/// `w·x` at once when the posterior is wide). The same real-valued
/// candidates, given once per stream or repeated at every step, must audit
/// identically: short streams (wide posteriors), a long one (narrow), a
/// grid and a list of hypotheses, real and integer features (looked up).
#[test]
fn a_steps_own_table_audits_as_the_same_table_shared_by_its_stream() {
    use gpubound::log::{LogEvent, StreamInfo};
    use std::sync::Arc;
    for (hypotheses, stream_length, integer) in [
        (729, 12, false),
        (729, 300, false),
        (500, 12, false),
        (729, 12, true),
    ] {
        let mut s = spec(ModelFamily::Gaussian, true, stream_length);
        s.hypotheses = hypotheses;
        // each stream's first table, shared by its stream / repeated per step
        let mut shared = Workload::generate(&s).unwrap();
        let mut repeated = Workload::generate(&s).unwrap();
        let mut first = None;
        for (e, r) in shared.events.iter_mut().zip(repeated.events.iter_mut()) {
            match (e, r) {
                (LogEvent::Stream(_), LogEvent::Stream(_)) => first = None,
                (LogEvent::Step(e), LogEvent::Step(r)) => {
                    let table = first
                        .get_or_insert_with(|| {
                            // integer features: q by lookup, not erfc
                            let mut t = (*e.table).clone();
                            if integer {
                                t.features.iter_mut().for_each(|x| *x = x.round());
                            }
                            Arc::new(t)
                        })
                        .clone();
                    (e.table, e.shared_table) = (table.clone(), true);
                    // a copy of its own: tables are grouped by identity
                    r.table = Arc::new((*table).clone());
                }
                _ => unreachable!("the same events"),
            }
        }
        // the shared table goes on the stream
        let mut table = None;
        for e in shared.events.iter_mut().rev() {
            match e {
                LogEvent::Step(step) => table = Some(step.table.clone()),
                LogEvent::Stream(info) => {
                    *info = Arc::new(StreamInfo {
                        table: table.take(),
                        ..(**info).clone()
                    });
                }
            }
        }
        let (a, b) = (
            audit(&shared, &CpuEngine::new()),
            audit(&repeated, &CpuEngine::new()),
        );
        assert_eq!(a.len(), 300);
        for (x, y) in a.iter().zip(&b) {
            assert_eq!(
                x.posterior, y.posterior,
                "H={hypotheses}: step {}",
                x.record.step
            );
            assert_eq!(
                x.candidates, y.candidates,
                "H={hypotheses}: step {}",
                x.record.step
            );
        }
        // real-valued features: the erfc path, not an integer lookup
        let LogEvent::Step(step) = &repeated.events[1] else {
            panic!("a step after the stream")
        };
        assert_eq!(step.table.is_integer_valued(), integer);
        let last = a.last().unwrap();
        assert!(last.posterior.map_probability > 1.5 / hypotheses as f64);
    }
}

//! The audit's numbers do not depend on where batch boundaries fall. A
//! bandit's candidate table is tabulated when several steps of a batch share
//! it, and its `q` is computed lazily (live hypotheses only) when its step is
//! alone in a batch: the two harm paths must give the same bits once the
//! posterior has narrowed and some hypotheses are negligible.

mod common;

use gpubound::audit::{AuditSettings, StepResult, DEFAULT_BATCH_ELEMENTS};
use gpubound::bench::{ModelFamily, Workload, WorkloadSpec};
use gpubound::engine::cpu::CpuEngine;
use gpubound::estimators::Alphas;

fn audit(workload: &Workload, batch_elements: usize) -> Vec<StepResult> {
    let settings = AuditSettings {
        alphas: Alphas::new(vec![1e-5, 1e-3, 0.1, 0.5, 1.0], 1.0 / 729.0).unwrap(),
        shared_world: false,
        batch_elements,
        skip_unexplained: false,
    };
    common::audit_source(&mut workload.source(), &CpuEngine::new(), &settings)
}

/// Every field of a step's results, bit for bit (`{:?}` prints each f64's
/// shortest round-trip form, so it tells apart any two bit patterns but NaN
/// payloads, and −0 from +0).
fn bits(r: &StepResult) -> String {
    format!("{:?} {:?} {:?}", r.record, r.posterior, r.candidates)
}

#[test]
fn a_bandit_audit_does_not_depend_on_batch_boundaries() {
    for model in [ModelFamily::Gaussian, ModelFamily::Bernoulli] {
        let w = Workload::generate(&WorkloadSpec {
            hypotheses: 729,
            steps: 240,
            actions: 7,
            dim: 3,
            model,
            stream_length: 120,
            contextual: false,
            seed: 11,
        })
        .unwrap();
        let h = w.model.hypotheses.len();
        let whole = audit(&w, DEFAULT_BATCH_ELEMENTS);
        assert_eq!(whole.len(), 240);
        // the posterior narrowed (Gaussian outcomes far more than Bernoulli
        // ones): some hypotheses are negligible by the end
        let last = whole.last().unwrap();
        assert!(
            last.posterior.map_probability > 10.0 / h as f64,
            "{}: MAP probability {}",
            w.description,
            last.posterior.map_probability
        );
        // one step per batch (every table alone: the lazy path), then 3 and
        // 5 steps (a stream's last steps alone or shared)
        for steps_per_batch in [1, 3, 5] {
            let cut = audit(&w, h * steps_per_batch);
            assert_eq!(cut.len(), whole.len());
            for (c, g) in cut.iter().zip(&whole) {
                assert_eq!(
                    bits(c),
                    bits(g),
                    "{}, {steps_per_batch} steps a batch: step {} of stream {}",
                    w.description,
                    c.record.step,
                    c.stream.id
                );
            }
        }
    }
}

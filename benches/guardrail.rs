//! The online guardrail at the paper's bandit size: H = 1024 (the grid
//! {0,1}^10), A = 10 candidates, d = 10, 7 α (δ ∈ {0.5, 0.2, 0.1, 0.05,
//! 0.02, 0.01, 0.001}, p_min = 1/1024). One call of `estimates` computes
//! every estimator for every candidate; `check` adds the verdict; `observe`
//! is the posterior update. Each at a wide posterior (20 observed steps) and
//! a narrow one (500). The paper's code takes 70 µs / 80 µs / 157 µs a call.
//!
//! `bandit`: the same candidates at every step (their harm table is
//! tabulated once); `contextual`: new real-valued candidates at every call.
//! `observe/bandit-warm`: the update on one guardrail kept warm, as in an
//! agent's loop.
//!
//! `cargo bench --bench guardrail`

use std::hint::black_box;

use criterion::{criterion_group, criterion_main, BatchSize, Criterion};
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use gpubound::engine::{BackendChoice, CandidateTable};
use gpubound::estimators::{Alphas, Estimator, EstimatorKind};
use gpubound::guardrail::Guardrail;
use gpubound::model::{HypothesisSpace, Model, ObservationModel};

const DELTAS: [f64; 7] = [0.5, 0.2, 0.1, 0.05, 0.02, 0.01, 0.001];
const A: usize = 10;
const D: usize = 10;

fn table(rng: &mut ChaCha8Rng, integer: bool) -> CandidateTable {
    let f = (0..A * D)
        .map(|_| {
            if integer {
                rng.random_range(0..2) as f64
            } else {
                rng.random_range(0.0..1.0)
            }
        })
        .collect();
    CandidateTable::new(f, A)
}

/// A guardrail after `steps` observed pulls of random arms of `bandit`,
/// with outcomes drawn from a random true hypothesis.
fn after(steps: usize, bandit: &CandidateTable, rng: &mut ChaCha8Rng) -> Guardrail {
    let model = Model {
        hypotheses: HypothesisSpace::grid(2, D).unwrap(),
        observation: ObservationModel::Gaussian {
            sigma: 1.0,
            harm_threshold: 4.0,
        },
    };
    let alphas = Alphas::from_deltas(&DELTAS, 1.0 / 1024.0).unwrap();
    let estimator = Estimator {
        kind: EstimatorKind::PlausibleSet,
        alpha: Some(5),
    };
    let mut g = Guardrail::new(model, alphas, 0.01, estimator, BackendChoice::Cpu).unwrap();
    let truth = g.model().hypotheses.params(rng.random_range(0..1024));
    for _ in 0..steps {
        let a = rng.random_range(0..A);
        let wx: f64 = truth
            .iter()
            .zip(bandit.candidate(a))
            .map(|(w, x)| w * x)
            .sum();
        let noise: f64 = rand_distr::Distribution::sample(&rand_distr::StandardNormal, rng);
        g.observe(bandit, a, Some(wx + noise)).unwrap();
    }
    g
}

fn guardrail(c: &mut Criterion) {
    let mut rng = ChaCha8Rng::seed_from_u64(12);
    let bandit = table(&mut rng, true);
    let contextual: Vec<CandidateTable> = (0..64).map(|_| table(&mut rng, false)).collect();
    for (name, steps) in [("wide", 20), ("narrow", 500)] {
        let g = after(steps, &bandit, &mut rng);
        let mut group = c.benchmark_group(format!("guardrail/{name}"));
        let mut e = g.clone();
        group.bench_function("estimates/bandit", |b| {
            b.iter(|| black_box(e.estimates(black_box(&bandit)).unwrap().candidates.len()))
        });
        let mut e = g.clone();
        group.bench_function("check/bandit", |b| {
            b.iter(|| black_box(e.check(black_box(&bandit), 3).unwrap()))
        });
        group.bench_function("observe/bandit", |b| {
            b.iter_batched_ref(
                || g.clone(),
                |g| g.observe(black_box(&bandit), 3, Some(1.5)).unwrap(),
                BatchSize::SmallInput,
            )
        });
        // as an agent's loop (and python/benches/guardrail.py) observes: on
        // one warm guardrail, the same outcome again and again (the cost does
        // not depend on the posterior); `observe/bandit` above observes on a
        // fresh clone each time, whose memory the batch has left cold
        let mut o = g.clone();
        group.bench_function("observe/bandit-warm", |b| {
            b.iter(|| o.observe(black_box(&bandit), 3, Some(1.5)).unwrap())
        });
        let mut e = g.clone();
        let mut i = 0;
        group.bench_function("estimates/contextual", |b| {
            b.iter(|| {
                i = (i + 1) % contextual.len();
                black_box(e.estimates(&contextual[i]).unwrap().candidates.len())
            })
        });
        group.bench_function("observe/contextual", |b| {
            b.iter_batched_ref(
                || g.clone(),
                |g| {
                    i = (i + 1) % contextual.len();
                    g.observe(&contextual[i], 3, Some(1.5)).unwrap()
                },
                BatchSize::SmallInput,
            )
        });
        group.finish();
    }
}

criterion_group! {
    name = benches;
    config = Criterion::default()
        .warm_up_time(std::time::Duration::from_millis(500))
        .measurement_time(std::time::Duration::from_secs(2));
    targets = guardrail
}
criterion_main!(benches);

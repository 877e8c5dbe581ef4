//! The guardrail in the loop through the audit's [`Engine`] (batched across
//! episodes): episodes run in lockstep, and at every step the candidate tables
//! and posteriors of all live episodes go to the engine as one [`Batch`]; its
//! reductions (SPEC §3, the same code `gpubound audit` runs) give every
//! candidate's estimate. The agent, the environment and the Bayes update are
//! [`super::agent_step`] and [`Belief`], so with the same seed the results
//! equal [`super::run_episode`]'s (up to the order of floating-point sums in
//! the posterior predictive). Only SPEC's tie-inclusive plausible set is
//! available this way (it is the engine's).

use ndarray::Array2;

use super::{
    agent_step, episode_rngs, AgentSpec, Belief, EpisodeResult, Guardrail, Instance, StepScratch,
    Tables, TieRule,
};
use crate::engine::{Batch, BatchStep, CandidateTable, Engine, StepWeights};
use crate::model::{HypothesisSpace, Model, ObservationModel};
use crate::{Error, Result};

/// Runs `episodes` of one configuration (`config` seeds the agents as in
/// `experiments`) with the guardrail evaluated by `engine`.
#[allow(clippy::too_many_arguments)]
pub fn run_batched(
    engine: &dyn Engine,
    tables: &Tables,
    agent: &AgentSpec,
    guardrail: &Guardrail,
    threshold: f64,
    explode: bool,
    seed: u64,
    config: u64,
    episodes: std::ops::Range<usize>,
) -> Result<Vec<EpisodeResult>> {
    let spec = tables.spec;
    if let Guardrail::NonIid {
        ties: TieRule::Reference,
        ..
    } = guardrail
    {
        return Err(Error::Setting(
            "the engine computes SPEC's tie-inclusive plausible set; --ties reference needs the built-in kernel".into(),
        ));
    }
    let model = Model {
        hypotheses: HypothesisSpace::grid(spec.k, spec.d).map_err(Error::Setting)?,
        observation: ObservationModel::Gaussian {
            sigma: spec.sigma,
            harm_threshold: tables.theta,
        },
    };
    let h = spec.n_hypotheses();
    let n_arm = spec.n_arm;
    struct Live {
        inst: Instance,
        features: Vec<f64>,
        belief: Belief,
        rng: rand_chacha::ChaCha8Rng,
        res: EpisodeResult,
        scratch: StepScratch,
        going: bool,
    }
    let mut eps: Vec<Live> = episodes
        .map(|e| {
            let (mut ir, ar) = episode_rngs(seed, config, e as u64);
            let inst = Instance::draw(&spec, &mut ir);
            let features = inst.features.iter().map(|&v| v as f64).collect();
            let mut belief = Belief::new(&spec);
            belief.reset();
            Live {
                inst,
                features,
                belief,
                rng: ar,
                res: EpisodeResult::default(),
                scratch: StepScratch::new(&spec),
                going: true,
            }
        })
        .collect();
    let needs_engine = matches!(
        guardrail,
        Guardrail::Posterior | Guardrail::Iid | Guardrail::NonIid { .. }
    );
    for t in 0..spec.steps {
        let live: Vec<usize> = (0..eps.len()).filter(|&i| eps[i].going).collect();
        if live.is_empty() {
            break;
        }
        // estimates[live index][arm]
        let mut estimates = vec![vec![0.0; n_arm]; live.len()];
        if needs_engine {
            let mut batch = Batch::new(&model);
            let mut log_rel = Array2::<f64>::zeros((live.len(), h));
            let mut weight = Array2::<f64>::zeros((live.len(), h));
            let mut cut = Array2::<f64>::zeros((live.len(), 1));
            for (r, &i) in live.iter().enumerate() {
                let e = &mut eps[i];
                let table = batch.push_table(CandidateTable::new(e.features.clone(), n_arm));
                batch.push_step(BatchStep {
                    table,
                    action: 0,
                    outcome: None,
                });
                for ((l, o), &w) in log_rel
                    .row_mut(r)
                    .iter_mut()
                    .zip(weight.row_mut(r).iter_mut())
                    .zip(&e.belief.w)
                {
                    *l = w.ln();
                    *o = w;
                }
                if let Guardrail::NonIid { alpha, .. } = guardrail {
                    cut[[r, 0]] = e.belief.plausible(*alpha, TieRule::Inclusive).tau.ln();
                }
            }
            let mut prepared = engine.prepare(&batch)?;
            let weights = StepWeights {
                log_rel,
                weight,
                plausible_threshold: cut,
            };
            let red = prepared.reduce(&weights, 1)?;
            for (r, row) in estimates.iter_mut().enumerate() {
                for (a, est) in row.iter_mut().enumerate() {
                    let c = batch.candidate_offsets[r] + a;
                    *est = match guardrail {
                        Guardrail::Posterior => (red.weighted_harm[c] / red.weight_sum[r]).min(1.0),
                        Guardrail::Iid => red.cautious_harm[c],
                        _ => red.plausible_harm[c],
                    };
                }
            }
        }
        for (r, &i) in live.iter().enumerate() {
            let e = &mut eps[i];
            let row = &estimates[r];
            let inst = &e.inst;
            let mut estimate = |_: &mut Belief, a: usize| -> Option<f64> {
                match guardrail {
                    Guardrail::None => None,
                    Guardrail::Oracle => Some(tables.q[inst.mean(&spec, a)]),
                    _ => Some(row[a]),
                }
            };
            e.going = agent_step(
                tables,
                inst,
                agent,
                threshold,
                explode,
                t,
                &mut e.belief,
                &mut e.rng,
                false,
                &mut e.res,
                &mut e.scratch,
                &mut estimate,
            );
        }
    }
    Ok(eps.into_iter().map(|e| e.res).collect())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sim::{run_episode, AgentKind, BanditSpec};

    #[test]
    fn the_engine_path_gives_the_same_episodes() {
        let spec = BanditSpec::default();
        let tables = Tables::new(spec, 4.0).unwrap();
        let engine = crate::engine::cpu::CpuEngine::new();
        let agent = AgentSpec {
            kind: AgentKind::Boltzmann,
            beta: 0.5,
        };
        for (c, g, thr) in [
            (1, Guardrail::Posterior, 0.1),
            (2, Guardrail::Iid, 0.1),
            (
                3,
                Guardrail::NonIid {
                    alpha: 0.01,
                    ties: TieRule::Inclusive,
                },
                0.1,
            ),
            (4, Guardrail::Oracle, 0.01),
            (5, Guardrail::None, 0.01),
        ] {
            let batched =
                run_batched(&engine, &tables, &agent, &g, thr, true, 11, c, 0..40).unwrap();
            let mut b = Belief::new(&spec);
            let mut steps = 0;
            for (e, got) in batched.iter().enumerate() {
                let (mut ir, mut ar) = episode_rngs(11, c, e as u64);
                let inst = Instance::draw(&spec, &mut ir);
                let want = run_episode(
                    &tables, &inst, &agent, &g, thr, true, &mut b, &mut ar, false,
                );
                assert_eq!(got, &want, "{g:?} episode {e}");
                steps += want.steps;
            }
            assert!(steps > 40, "{g:?}: {steps}");
        }
    }
}

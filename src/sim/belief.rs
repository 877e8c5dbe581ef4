//! The posterior of one simulated episode over an enumerable grid, kept as
//! relative weights and updated by table lookups (the module's fast path),
//! with the plausible sets and cautious theories the guardrails in the loop
//! read from it.

use super::{
    grid_enumerable, require_enumerable_grid, torch_sort, BanditSpec, Instance, Tables, TieRule,
};
use crate::posterior::PlausibleCut;
use crate::Result;

/// Per-thread scratch and per-episode posterior state.
#[derive(Debug, Clone)]
pub struct Belief {
    h: usize,
    k: usize,
    d: usize,
    /// `w_h·x_a` in column `a` (`[a·H + h]`), built on demand.
    wx: Vec<u16>,
    built: Vec<bool>,
    /// Relative posterior weights `e^{L_h − L_max}`; the maximum is 1.
    pub w: Vec<f64>,
    /// True while every weight is 1 (the prior): shortcuts.
    at_prior: bool,
    lik: Vec<f64>,
    scratch: Vec<f64>,
    scratch2: Vec<f64>,
    keys: Vec<u64>,
    pairs: Vec<(f32, u32)>,
    /// torch's sort order of the prior (all tied), computed once.
    prior_order: Option<Vec<u32>>,
    maxw_by_v: Vec<f64>,
}

impl Belief {
    /// The prior over every hypothesis of an enumerable grid.
    pub fn new(spec: &BanditSpec) -> Belief {
        Self::with_hypotheses(spec, spec.n_hypotheses())
    }

    /// A belief that tracks nothing, for a grid too large to enumerate: an
    /// agent and a guardrail that need no posterior (uniform; none or
    /// oracle) run with it, and its updates do nothing.
    pub fn untracked(spec: &BanditSpec) -> Belief {
        Self::with_hypotheses(spec, 0)
    }

    fn with_hypotheses(spec: &BanditSpec, h: usize) -> Belief {
        Belief {
            h,
            k: spec.k as usize,
            d: spec.d,
            wx: vec![0; h * spec.n_arm],
            built: vec![false; spec.n_arm],
            w: vec![1.0; h],
            at_prior: true,
            lik: vec![0.0; if h == 0 { 0 } else { spec.max_dot() + 1 }],
            scratch: Vec::with_capacity(h),
            scratch2: Vec::with_capacity(h),
            keys: Vec::with_capacity(h),
            pairs: Vec::new(),
            prior_order: None,
            maxw_by_v: vec![0.0; if h == 0 { 0 } else { spec.max_dot() + 1 }],
        }
    }

    /// Sets the posterior from log weights (any shift), e.g. a log posterior
    /// computed elsewhere.
    pub fn set_log_weights(&mut self, log_w: &[f64]) {
        assert_eq!(log_w.len(), self.h);
        let m = log_w.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for (w, &l) in self.w.iter_mut().zip(log_w) {
            *w = (l - m).exp();
        }
        self.at_prior = self.w.iter().all(|&w| w == 1.0);
    }

    /// Back to the prior for a new episode.
    pub fn reset(&mut self) {
        self.built.iter_mut().for_each(|b| *b = false);
        self.w.iter_mut().for_each(|w| *w = 1.0);
        self.at_prior = true;
    }

    /// Whether the posterior over the grid can be kept in memory, as the
    /// Boltzmann agent, the posterior guardrails and the experiments need.
    pub fn enumerable(&self) -> bool {
        grid_enumerable(self.k, self.d)
    }

    /// Refuses a grid too large to enumerate, naming what needs it and how
    /// to proceed (`hint`, may be empty).
    pub fn require_enumerable(&self, what: &str, hint: &str) -> Result<()> {
        require_enumerable_grid(self.k, self.d, what, hint)
    }

    pub fn n_hypotheses(&self) -> usize {
        self.h
    }

    /// Column `a` of `w_h·x_a`, built on first use: the grid grows one
    /// coordinate at a time (index `i·k + v` = prefix `i` plus `v·x_j`).
    pub fn column(&mut self, inst: &Instance, a: usize) -> &[u16] {
        let h = self.h;
        if !self.built[a] {
            let x = &inst.features[a * self.d..(a + 1) * self.d];
            let col = &mut self.wx[a * h..(a + 1) * h];
            col[0] = 0;
            let mut len = 1;
            let k = self.k;
            for &xj in x {
                if k == 2 {
                    for i in (0..len).rev() {
                        let base = col[i];
                        col[2 * i + 1] = base + xj;
                        col[2 * i] = base;
                    }
                } else {
                    for i in (0..len).rev() {
                        let base = col[i];
                        for v in (0..k).rev() {
                            col[i * k + v] = base + v as u16 * xj;
                        }
                    }
                }
                len *= k;
            }
            self.built[a] = true;
        }
        &self.wx[a * h..(a + 1) * h]
    }

    /// Bayes update after pulling `a` and observing `y` under `N(w·x, σ²)`.
    pub fn update(&mut self, tables: &Tables, inst: &Instance, a: usize, y: f64) {
        if self.h == 0 {
            return; // untracked
        }
        let sigma = tables.spec.sigma;
        let n_v = self.lik.len();
        // ll(v) − max ll, by value of w·x
        let lls: Vec<f64> = (0..n_v)
            .map(|v| {
                let r = (y - v as f64) / sigma;
                -0.5 * r * r
            })
            .collect();
        let m = lls.iter().copied().fold(f64::NEG_INFINITY, f64::max);
        for (l, v) in self.lik.iter_mut().zip(&lls) {
            *l = (v - m).exp();
        }
        self.column(inst, a);
        let h = self.h;
        let col = &self.wx[a * h..(a + 1) * h];
        let mut mx = [0.0f64; 4];
        if n_v <= 64 {
            // fixed-size table: the masked index needs no bounds check
            let mut tab = [0.0f64; 64];
            tab[..n_v].copy_from_slice(&self.lik);
            let mut wc = self.w.chunks_exact_mut(4);
            let mut cc = col.chunks_exact(4);
            for (w, c) in (&mut wc).zip(&mut cc) {
                for l in 0..4 {
                    let x = w[l] * tab[(c[l] & 63) as usize];
                    w[l] = x;
                    if x > mx[l] {
                        mx[l] = x;
                    }
                }
            }
            for (w, &c) in wc.into_remainder().iter_mut().zip(cc.remainder()) {
                *w *= tab[(c & 63) as usize];
                mx[0] = mx[0].max(*w);
            }
        } else {
            let lik = &self.lik;
            for (w, &v) in self.w.iter_mut().zip(col) {
                *w *= lik[v as usize];
                mx[0] = mx[0].max(*w);
            }
        }
        let mx = mx[0].max(mx[1]).max(mx[2].max(mx[3]));
        if mx > 0.0 {
            let inv = 1.0 / mx;
            self.w.iter_mut().for_each(|w| *w *= inv);
        }
        self.at_prior = false;
    }

    /// `(Σ_h w_h, E[w_j] for each coordinate j)`: the posterior mean of the
    /// weights, by summing out one base-k digit at a time (O(H)).
    pub fn posterior_mean(&mut self, mean: &mut [f64]) -> f64 {
        let k = self.k;
        if k == 2 {
            return self.posterior_mean_binary(mean);
        }
        let cur = &mut self.scratch;
        cur.clear();
        cur.extend_from_slice(&self.w);
        let next = &mut self.scratch2;
        // The last coordinate is the least significant digit.
        for j in (0..self.d).rev() {
            let n = cur.len() / k;
            next.clear();
            let mut acc = 0.0;
            for i in 0..n {
                let chunk = &cur[i * k..(i + 1) * k];
                let mut s = 0.0;
                for (v, &c) in chunk.iter().enumerate() {
                    s += c;
                    acc += v as f64 * c;
                }
                next.push(s);
            }
            mean[j] = acc;
            std::mem::swap(cur, next);
        }
        let total = cur[0];
        mean.iter_mut().for_each(|m| *m /= total);
        total
    }

    /// `posterior_mean` for k = 2: halve the table level by level (pair
    /// sums), the odd entries of a level are the mass with that bit set.
    fn posterior_mean_binary(&mut self, mean: &mut [f64]) -> f64 {
        fn level(src: &[f64], dst: &mut Vec<f64>) -> f64 {
            dst.clear();
            dst.resize(src.len() / 2, 0.0);
            let mut acc = [0.0f64; 4];
            let mut sc = src.chunks_exact(8);
            let mut dc = dst.chunks_exact_mut(4);
            for (s, d) in (&mut sc).zip(&mut dc) {
                for l in 0..4 {
                    d[l] = s[2 * l] + s[2 * l + 1];
                    acc[l] += s[2 * l + 1];
                }
            }
            for (s, d) in sc.remainder().chunks_exact(2).zip(dc.into_remainder()) {
                *d = s[0] + s[1];
                acc[0] += s[1];
            }
            (acc[0] + acc[1]) + (acc[2] + acc[3])
        }
        let d = self.d;
        let (mut a, mut b) = (
            std::mem::take(&mut self.scratch),
            std::mem::take(&mut self.scratch2),
        );
        mean[d - 1] = level(&self.w, &mut a);
        for j in (0..d - 1).rev() {
            mean[j] = level(&a, &mut b);
            std::mem::swap(&mut a, &mut b);
        }
        let total = a[0];
        self.scratch = a;
        self.scratch2 = b;
        mean.iter_mut().for_each(|m| *m /= total);
        total
    }

    /// Posterior predictive `Σ p_h q_h` for arm `a`.
    pub fn predictive(&mut self, tables: &Tables, inst: &Instance, a: usize) -> f64 {
        self.column(inst, a);
        let col = &self.wx[a * self.h..(a + 1) * self.h];
        let (mut num, mut den) = (0.0, 0.0);
        for (&w, &v) in self.w.iter().zip(col) {
            num += w * tables.q[v as usize];
            den += w;
        }
        (num / den).min(1.0)
    }

    /// The cautious theory `q_ĥ`, `ĥ = argmax_h (ln p_h + ln q_h)`, ties to the
    /// largest `q`; also returns `ln max_h (w_h q_h)` (relative weights).
    pub fn cautious(&mut self, tables: &Tables, inst: &Instance, a: usize) -> (f64, f64) {
        self.column(inst, a);
        let col = &self.wx[a * self.h..(a + 1) * self.h];
        let mw = &mut self.maxw_by_v;
        mw.iter_mut().for_each(|m| *m = 0.0);
        for (&w, &v) in self.w.iter().zip(col) {
            let m = &mut mw[v as usize];
            if w > *m {
                *m = w;
            }
        }
        let mut best = (f64::NEG_INFINITY, 0usize);
        for (v, &m) in mw.iter().enumerate() {
            if m > 0.0 {
                let s = m.ln() + tables.ln_q[v];
                // q increases with v, so `>=` takes the largest q among ties
                if s >= best.0 {
                    best = (s, v);
                }
            }
        }
        (tables.q[best.1], best.0)
    }

    /// `Σ_h w_h`.
    pub fn weight_sum(&self) -> f64 {
        self.w.iter().sum()
    }

    /// The plausible set for `alpha` under `rule`.
    pub fn plausible(&mut self, alpha: f64, rule: TieRule) -> Members {
        if self.at_prior {
            // every hypothesis tied at weight 1
            return match rule {
                TieRule::Inclusive => Members {
                    tau: 1.0,
                    extra: Vec::new(),
                    size: self.h,
                },
                TieRule::Reference => {
                    if prefix_count(1.0, 0.0, self.h, alpha) == self.h {
                        return Members {
                            tau: 1.0,
                            extra: Vec::new(),
                            size: self.h,
                        };
                    }
                    let h = self.h;
                    let order = self.prior_order.get_or_insert_with(|| {
                        let p = (1.0 / h as f64) as f32;
                        let mut v: Vec<(f32, u32)> = (0..h as u32).map(|i| (p, i)).collect();
                        torch_sort::std_sort_desc(&mut v);
                        v.into_iter().map(|(_, i)| i).collect()
                    });
                    let p = (1.0 / h as f64) as f32;
                    let m = torch_sort::prefix(order.iter().map(|_| p), alpha);
                    Members {
                        tau: f64::INFINITY,
                        extra: order[..m].to_vec(),
                        size: m,
                    }
                }
            };
        }
        // Only weights ≥ α·max can be members; slack for rounding.
        let floor = alpha * (1.0 - 1e-12);
        // Positive f64 order as their bit patterns do: sort integer keys
        // (descending: ascending of the complement).
        let keys = &mut self.keys;
        keys.clear();
        keys.extend(self.w.iter().filter(|&&w| w >= floor).map(|w| !w.to_bits()));
        keys.sort_unstable();
        let s = &mut self.scratch;
        s.clear();
        s.extend(keys.iter().map(|&k| f64::from_bits(!k)));
        let mut ahead = 0.0f64;
        let mut i = 0;
        let mut last: Option<(f64, usize)> = None;
        while i < s.len() {
            let v = s[i];
            let mut end = i + 1;
            while end < s.len() && s[end] == v {
                end += 1;
            }
            let n = end - i;
            match rule {
                TieRule::Inclusive => {
                    // same arithmetic as posterior::plausible_cuts
                    if v >= alpha * (v + ahead) {
                        last = Some((v, end));
                    } else {
                        break;
                    }
                    ahead += v * n as f64;
                }
                TieRule::Reference => {
                    let r = prefix_count(v, ahead, n, alpha);
                    if r == n {
                        last = Some((v, end));
                        // the reference's cumulative sum, in order
                        for _ in 0..n {
                            ahead += v;
                        }
                    } else {
                        if r == 0 {
                            break;
                        }
                        return self.torch_members(alpha, end);
                    }
                }
            }
            i = end;
        }
        match last {
            Some((tau, size)) => Members {
                tau,
                extra: Vec::new(),
                size,
            },
            // cannot happen (the MAP always qualifies for α ≤ 1): empty set
            None => Members {
                tau: f64::INFINITY,
                extra: Vec::new(),
                size: 0,
            },
        }
    }

    /// The reference's set where its cut splits a tie group: sort the f32
    /// posterior as torch does and take the positional prefix.
    fn torch_members(&mut self, alpha: f64, group_end: usize) -> Members {
        let inv_z = 1.0 / self.weight_sum();
        self.pairs.clear();
        self.pairs.extend(
            self.w
                .iter()
                .enumerate()
                .map(|(h, &w)| ((w * inv_z) as f32, h as u32)),
        );
        // Only the prefix up to the split group matters (plus slack for f32).
        let need = (group_end + 32).min(self.h);
        torch_sort::std_sort_desc_prefix(&mut self.pairs, need);
        let mut m = torch_sort::prefix(self.pairs[..need].iter().map(|p| p.0), alpha);
        if m == need && need < self.h {
            torch_sort::std_sort_desc(&mut self.pairs);
            m = torch_sort::prefix(self.pairs.iter().map(|p| p.0), alpha);
        }
        Members {
            tau: f64::INFINITY,
            extra: self.pairs[..m].iter().map(|p| p.1).collect(),
            size: m,
        }
    }

    /// `max_{h ∈ members} w_h·x_a` (harm is increasing in `w·x`).
    pub fn members_max_dot(&mut self, inst: &Instance, a: usize, m: &Members) -> Option<usize> {
        if m.size == self.h {
            // every hypothesis: the grid's largest w·x is (k−1)·Σ x_j
            let x = &inst.features[a * self.d..(a + 1) * self.d];
            let top = (self.k - 1) * x.iter().map(|&v| v as usize).sum::<usize>();
            return Some(top);
        }
        self.column(inst, a);
        let col = &self.wx[a * self.h..(a + 1) * self.h];
        let mut best: i32 = -1;
        if m.tau <= 1.0 {
            let tau = m.tau;
            // branchless so that it vectorises
            let mut mx = 0u16;
            let mut any = false;
            for (&w, &v) in self.w.iter().zip(col) {
                let inside = w >= tau;
                any |= inside;
                mx = mx.max(if inside { v } else { 0 });
            }
            if any {
                best = mx as i32;
            }
        }
        for &h in &m.extra {
            best = best.max(col[h as usize] as i32);
        }
        (best >= 0).then_some(best as usize)
    }
}

/// The reference's positional cut inside a tie group of `n` members of weight
/// `v` with mass `ahead` before it: how many positions `j` pass
/// `v ≥ α·cumsum_j`.
fn prefix_count(v: f64, mut ahead: f64, n: usize, alpha: f64) -> usize {
    for r in 0..n {
        ahead += v;
        if v < alpha * ahead {
            return r;
        }
    }
    n
}

/// A plausible set: every hypothesis with weight `≥ tau`, plus `extra`.
#[derive(Debug, Clone, PartialEq)]
pub struct Members {
    pub tau: f64,
    pub extra: Vec<u32>,
    /// `|I_α|`
    pub size: usize,
}

impl Members {
    pub fn as_cut(&self) -> PlausibleCut {
        PlausibleCut {
            threshold: self.tau.ln(),
            size: self.size,
        }
    }
}

//! Hypothesis spaces (SPEC §1): the full grid `{0..k-1}^d` of the paper's
//! bandit, or an explicit list of parameter vectors with optional log-priors
//! (or importance weights, for samples drawn from a proposal).

use ndarray::Array2;

/// Default largest hypothesis space (memory: a few f64 per hypothesis per
/// step of a batch); `--max-hypotheses` raises it.
pub const MAX_HYPOTHESES: usize = 1 << 26;

/// Default largest number of hypothesis parameters `H·d` (2 GiB of f64); it
/// bounds `d` too, which `k = 1` would leave free (`--max-parameters`).
pub const MAX_PARAMETERS: usize = 1 << 28;

#[derive(Debug, Clone, PartialEq)]
pub enum HypothesisSpace {
    /// All `w ∈ {0..k-1}^d`, uniform prior; index `i = Σ_j w_j·k^(d-1-j)`.
    Grid {
        k: u32,
        d: usize,
    },
    List(HypothesisList),
}

/// Where an explicit list's prior came from; the report states it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PriorKind {
    Uniform,
    Given,
    /// Samples from a proposal `r`: prior weight `π/r`, self-normalised. The
    /// guarantees then hold for the sampled set taken as the space.
    ImportanceSampled,
}

#[derive(Debug, Clone, PartialEq)]
pub struct HypothesisList {
    /// `H × d`, one row per hypothesis.
    pub params: Array2<f64>,
    /// Normalised log prior (log-sum-exp = 0).
    pub log_prior: Vec<f64>,
    pub prior_kind: PriorKind,
}

impl HypothesisList {
    /// Builds a list; `log_prior` and `log_proposal` are optional per-hypothesis
    /// columns. The resulting prior is normalised in log space.
    pub fn new(
        params: Array2<f64>,
        log_prior: Option<Vec<f64>>,
        log_proposal: Option<Vec<f64>>,
    ) -> Result<Self, String> {
        let h = params.nrows();
        if h == 0 {
            return Err("the hypothesis list is empty".into());
        }
        if params.ncols() == 0 {
            return Err("hypotheses have no parameters (dimension 0)".into());
        }
        if let Some(bad) = params.iter().find(|v| !v.is_finite()) {
            return Err(format!("hypothesis parameters must be finite, got {bad}"));
        }
        let mut kind = PriorKind::Uniform;
        let mut lp = vec![0.0; h];
        for (name, col) in [("log_prior", &log_prior), ("log_proposal", &log_proposal)] {
            if let Some(col) = col {
                if col.len() != h {
                    return Err(format!(
                        "{name} has {} entries for {h} hypotheses",
                        col.len()
                    ));
                }
                if let Some(bad) = col.iter().find(|v| v.is_nan() || **v == f64::INFINITY) {
                    return Err(format!("{name} values must be finite or -inf, got {bad}"));
                }
            }
        }
        if let Some(p) = &log_prior {
            kind = PriorKind::Given;
            lp.copy_from_slice(p);
        }
        if let Some(r) = &log_proposal {
            kind = PriorKind::ImportanceSampled;
            for (l, r) in lp.iter_mut().zip(r) {
                if !r.is_finite() {
                    return Err(format!("log_proposal values must be finite, got {r}"));
                }
                *l -= r;
            }
        }
        let norm = super::log_sum_exp(&lp);
        if !norm.is_finite() {
            return Err("the prior gives every hypothesis zero mass".into());
        }
        lp.iter_mut().for_each(|l| *l -= norm);
        Ok(HypothesisList {
            params,
            log_prior: lp,
            prior_kind: kind,
        })
    }
}

impl HypothesisSpace {
    /// The grid `{0..k-1}^d` within the default limits.
    pub fn grid(k: u32, d: usize) -> Result<Self, String> {
        Self::grid_within(k, d, MAX_HYPOTHESES, MAX_PARAMETERS)
    }

    /// The grid `{0..k-1}^d`, refused when it has more than `max_hypotheses`
    /// hypotheses or `max_parameters` parameters in all (`k^d·d`).
    pub fn grid_within(
        k: u32,
        d: usize,
        max_hypotheses: usize,
        max_parameters: usize,
    ) -> Result<Self, String> {
        if k < 1 || d < 1 {
            return Err(format!("a grid needs k ≥ 1 and d ≥ 1, got k={k}, d={d}"));
        }
        // In integers: a float power of `d as i32` once wrapped d = 2^31 to
        // 2^-2^31 = 0 hypotheses.
        let h = match k {
            1 => Some(1),
            _ => u32::try_from(d)
                .ok()
                .and_then(|d| (k as usize).checked_pow(d)),
        };
        let h = match h {
            Some(h) if h <= max_hypotheses => h,
            _ => {
                return Err(format!(
                    "a grid of {k}^{d}{} hypotheses is too large: the limit is {max_hypotheses} (raise it with --max-hypotheses)",
                    h.map(|h| format!(" = {h}")).unwrap_or_default()
                ))
            }
        };
        match h.checked_mul(d) {
            Some(p) if p <= max_parameters => Ok(HypothesisSpace::Grid { k, d }),
            _ => Err(format!(
                "a grid of {k}^{d} hypotheses of dimension {d} has {} parameters, more than the limit of {max_parameters} (raise it with --max-parameters)",
                h as u128 * d as u128
            )),
        }
    }

    /// Number of hypotheses `H`.
    pub fn len(&self) -> usize {
        match self {
            HypothesisSpace::Grid { k, d } => (*k as usize).pow(*d as u32),
            HypothesisSpace::List(l) => l.params.nrows(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// Parameter dimension `d` (= feature dimension).
    pub fn dim(&self) -> usize {
        match self {
            HypothesisSpace::Grid { d, .. } => *d,
            HypothesisSpace::List(l) => l.params.ncols(),
        }
    }

    pub fn prior_kind(&self) -> PriorKind {
        match self {
            HypothesisSpace::Grid { .. } => PriorKind::Uniform,
            HypothesisSpace::List(l) => l.prior_kind,
        }
    }

    /// The normalised log prior of every hypothesis.
    pub fn log_prior(&self) -> Vec<f64> {
        match self {
            HypothesisSpace::Grid { .. } => vec![-(self.len() as f64).ln(); self.len()],
            HypothesisSpace::List(l) => l.log_prior.clone(),
        }
    }

    /// The smallest prior mass, the default floor `p_min ≤ P(h*)` of SPEC §3.
    pub fn smallest_prior_mass(&self) -> f64 {
        match self {
            HypothesisSpace::Grid { .. } => 1.0 / self.len() as f64,
            HypothesisSpace::List(l) => l
                .log_prior
                .iter()
                .copied()
                .filter(|v| v.is_finite())
                .fold(f64::INFINITY, f64::min)
                .exp(),
        }
    }

    /// Whether every parameter is an integer, so that `w·x` is an integer for
    /// integer features and harm can be tabulated by value.
    pub fn is_integer_valued(&self) -> bool {
        match self {
            HypothesisSpace::Grid { .. } => true,
            HypothesisSpace::List(l) => l.params.iter().all(|v| v.fract() == 0.0 && v.abs() < 1e9),
        }
    }

    /// Writes the parameter vector of hypothesis `h` into `out` (length `d`).
    pub fn params_into(&self, h: usize, out: &mut [f64]) {
        match self {
            HypothesisSpace::Grid { k, d } => {
                let mut rest = h;
                for j in (0..*d).rev() {
                    out[j] = (rest % *k as usize) as f64;
                    rest /= *k as usize;
                }
            }
            HypothesisSpace::List(l) => {
                out.copy_from_slice(l.params.row(h).as_slice().expect("row-major params"))
            }
        }
    }

    pub fn params(&self, h: usize) -> Vec<f64> {
        let mut v = vec![0.0; self.dim()];
        self.params_into(h, &mut v);
        v
    }

    /// The index of a parameter vector, if it is one of the hypotheses.
    pub fn index_of(&self, w: &[f64]) -> Option<usize> {
        if w.len() != self.dim() {
            return None;
        }
        match self {
            HypothesisSpace::Grid { k, .. } => {
                let mut i = 0usize;
                for &v in w {
                    if v.fract() != 0.0 || v < 0.0 || v >= *k as f64 {
                        return None;
                    }
                    i = i * *k as usize + v as usize;
                }
                Some(i)
            }
            HypothesisSpace::List(l) => l
                .params
                .rows()
                .into_iter()
                .position(|r| r.iter().zip(w).all(|(a, b)| a == b)),
        }
    }

    /// `out[h] = w_h·x` for every hypothesis, summed left to right in f64 (so
    /// every backend and the reference agree on the value for integer inputs).
    pub fn dot_all(&self, x: &[f64], out: &mut [f64]) {
        debug_assert_eq!(out.len(), self.len());
        match self {
            HypothesisSpace::Grid { k, d } => {
                // Grow the table one coordinate at a time: index i·k + v has
                // the value of prefix i plus v·x_j (first coordinate most
                // significant), O(H) in all instead of O(H·d).
                let k = *k as usize;
                out[0] = 0.0;
                let mut len = 1;
                for &xj in x.iter().take(*d) {
                    for i in (0..len).rev() {
                        let base = out[i];
                        for v in (0..k).rev() {
                            out[i * k + v] = base + v as f64 * xj;
                        }
                    }
                    len *= k;
                }
            }
            HypothesisSpace::List(l) => {
                for (o, row) in out.iter_mut().zip(l.params.rows()) {
                    let mut s = 0.0;
                    for (w, xv) in row.iter().zip(x) {
                        s += w * xv;
                    }
                    *o = s;
                }
            }
        }
    }
    /// `w_h·x_a` of every hypothesis and candidate, row by row: `out[h ·
    /// stride + a]` for `features` holding `n_candidates` rows of `d`
    /// (padding lanes `a ≥ n_candidates` get 0). Each value is added in
    /// coordinate order, the same bits as `dot_all` (a grid grows its rows
    /// one coordinate at a time, all candidates side by side).
    pub fn dot_all_rows(
        &self,
        features: &[f64],
        n_candidates: usize,
        stride: usize,
        out: &mut [f64],
    ) {
        let d = self.dim();
        debug_assert!(stride >= n_candidates && features.len() == n_candidates * d);
        debug_assert_eq!(out.len(), self.len() * stride);
        match self {
            HypothesisSpace::Grid { k, .. } => {
                let k = *k as usize;
                let mut xj = vec![0.0; stride];
                let mut base = vec![0.0; stride];
                out[..stride].fill(0.0);
                let mut len = 1;
                for j in 0..d {
                    for (a, x) in xj.iter_mut().enumerate().take(n_candidates) {
                        *x = features[a * d + j];
                    }
                    // in place from the end: row i·k + v ≥ i is written after
                    // row i is read
                    for i in (0..len).rev() {
                        base.copy_from_slice(&out[i * stride..][..stride]);
                        for v in (0..k).rev() {
                            let vf = v as f64;
                            let row = &mut out[(i * k + v) * stride..][..stride];
                            for ((o, &b), &x) in row.iter_mut().zip(&base).zip(&xj) {
                                *o = b + vf * x;
                            }
                        }
                    }
                    len *= k;
                }
            }
            HypothesisSpace::List(l) => {
                for (row, w) in out.chunks_exact_mut(stride).zip(l.params.rows()) {
                    for (a, o) in row.iter_mut().enumerate() {
                        *o = if a < n_candidates {
                            w.iter()
                                .zip(&features[a * d..][..d])
                                .fold(0.0, |s, (w, x)| s + w * x)
                        } else {
                            0.0
                        };
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn grid_index_order_is_row_major_first_coordinate_most_significant() {
        let s = HypothesisSpace::grid(2, 3).unwrap();
        assert_eq!(s.params(0), vec![0.0, 0.0, 0.0]);
        assert_eq!(s.params(1), vec![0.0, 0.0, 1.0]);
        assert_eq!(s.params(2), vec![0.0, 1.0, 0.0]);
        assert_eq!(s.params(6), vec![1.0, 1.0, 0.0]);
        let s = HypothesisSpace::grid(3, 4).unwrap();
        for h in 0..s.len() {
            assert_eq!(s.index_of(&s.params(h)), Some(h));
        }
    }

    /// Row by row, the same bits as a plain dot product in coordinate
    /// order, for a grid and a list, with padding lanes 0.
    #[test]
    fn dot_all_rows_matches_a_plain_dot_product() {
        let x = [1.0, -2.5, 0.0, 2.0, 0.25, 0.3, 0.1, -0.7, 1e-3, 5.5];
        let list = HypothesisSpace::List(
            HypothesisList::new(
                ndarray::Array2::from_shape_fn((7, 5), |(i, j)| (i * 5 + j) as f64 * 0.37 - 3.0),
                None,
                None,
            )
            .unwrap(),
        );
        for s in [HypothesisSpace::grid(3, 5).unwrap(), list] {
            let mut out = vec![f64::NAN; s.len() * 4];
            s.dot_all_rows(&x, 2, 4, &mut out);
            for h in 0..s.len() {
                let w = s.params(h);
                for a in 0..4 {
                    let want = if a < 2 {
                        w.iter()
                            .zip(&x[a * 5..][..5])
                            .fold(0.0, |acc, (a, b)| acc + a * b)
                    } else {
                        0.0
                    };
                    assert_eq!(out[h * 4 + a].to_bits(), want.to_bits(), "h={h} a={a}");
                }
            }
        }
    }

    #[test]
    fn grid_dot_all_matches_a_plain_dot_product() {
        let s = HypothesisSpace::grid(3, 5).unwrap();
        let x = [1.0, -2.5, 0.0, 2.0, 0.25];
        let mut out = vec![0.0; s.len()];
        s.dot_all(&x, &mut out);
        for (h, &got) in out.iter().enumerate() {
            let w = s.params(h);
            let want: f64 = w.iter().zip(&x).fold(0.0, |acc, (a, b)| acc + a * b);
            assert_eq!(got, want, "h={h}");
        }
    }

    /// The limits are inclusive: a grid of exactly `max_hypotheses`
    /// hypotheses and exactly `max_parameters` parameters is accepted, one
    /// fewer of either refused with the figure named.
    #[test]
    fn grid_limits_accept_the_limit_itself_and_refuse_one_more() {
        // 3^4 = 81 hypotheses, 81·4 = 324 parameters
        assert_eq!(
            HypothesisSpace::grid_within(3, 4, 81, 324),
            Ok(HypothesisSpace::Grid { k: 3, d: 4 })
        );
        let e = HypothesisSpace::grid_within(3, 4, 80, 324).unwrap_err();
        assert!(e.contains("3^4 = 81") && e.contains("limit is 80"), "{e}");
        let e = HypothesisSpace::grid_within(3, 4, 81, 323).unwrap_err();
        assert!(
            e.contains("324 parameters") && e.contains("limit of 323"),
            "{e}"
        );
        // k = 1: one hypothesis whatever d; d alone bounded by the parameters
        assert_eq!(HypothesisSpace::grid_within(1, 50, 1, 50).unwrap().len(), 1);
        assert!(HypothesisSpace::grid_within(1, 51, 1, 50).is_err());
        // k^d past usize: refused without a figure, not wrapped
        let e = HypothesisSpace::grid_within(2, 64, usize::MAX, usize::MAX).unwrap_err();
        assert!(e.contains("2^64 hypotheses is too large"), "{e}");
        for (k, d) in [(0, 3), (2, 0), (0, 0)] {
            let e = HypothesisSpace::grid_within(k, d, 1 << 20, 1 << 20).unwrap_err();
            assert!(e.contains("k ≥ 1 and d ≥ 1"), "k={k} d={d}: {e}");
        }
    }

    /// What a grid reports of itself: H = k^d, d, a uniform prior of mass
    /// 1/H everywhere, integer parameters.
    #[test]
    fn a_grid_is_uniform_over_k_to_the_d() {
        let s = HypothesisSpace::grid(3, 4).unwrap();
        assert_eq!((s.len(), s.dim(), s.is_empty()), (81, 4, false));
        assert_eq!(s.prior_kind(), PriorKind::Uniform);
        assert_eq!(s.log_prior(), vec![-(81f64.ln()); 81]);
        assert_eq!(s.smallest_prior_mass(), 1.0 / 81.0);
        assert!(s.is_integer_valued());
    }

    /// A list's smallest prior mass is over the hypotheses it can hold
    /// (−∞ entries are left out), after normalisation.
    #[test]
    fn a_lists_smallest_prior_mass_leaves_out_impossible_hypotheses() {
        let params = Array2::from_shape_vec((4, 2), vec![0.5; 8]).unwrap();
        let l = HypothesisList::new(
            params,
            Some(vec![0.0, (3f64).ln(), f64::NEG_INFINITY, 0.0]),
            None,
        )
        .unwrap();
        assert_eq!(l.prior_kind, PriorKind::Given);
        let s = HypothesisSpace::List(l);
        assert_eq!((s.len(), s.dim(), s.is_empty()), (4, 2, false));
        assert_eq!(s.prior_kind(), PriorKind::Given);
        assert!((s.smallest_prior_mass() - 0.2).abs() < 1e-15);
        let p: Vec<f64> = s.log_prior().iter().map(|v| v.exp()).collect();
        assert_eq!(p[2], 0.0);
        assert!((p[1] - 0.6).abs() < 1e-15 && (p[0] - 0.2).abs() < 1e-15);
    }

    /// Integer-valued means every parameter a whole number under 1e9 in
    /// magnitude (harm is then tabulated by the integer `w·x`).
    #[test]
    fn integer_valued_lists_are_whole_numbers_under_1e9() {
        let list = |v: f64| {
            HypothesisSpace::List(
                HypothesisList::new(
                    Array2::from_shape_vec((2, 1), vec![2.0, v]).unwrap(),
                    None,
                    None,
                )
                .unwrap(),
            )
        };
        assert!(list(-7.0).is_integer_valued());
        assert!(list(999_999_999.0).is_integer_valued());
        assert!(list(-999_999_999.0).is_integer_valued());
        assert!(!list(1e9).is_integer_valued());
        assert!(!list(-1e9).is_integer_valued());
        assert!(!list(0.5).is_integer_valued());
    }

    /// `index_of` refuses what is not a hypothesis: a wrong length, a
    /// fraction, a value outside `0..k`; a list finds an exact row.
    #[test]
    fn index_of_refuses_what_is_not_a_hypothesis() {
        let g = HypothesisSpace::grid(3, 2).unwrap();
        assert_eq!(g.index_of(&[2.0, 1.0]), Some(7));
        assert_eq!(g.index_of(&[0.0, 0.0]), Some(0));
        for w in [
            &[2.0, 1.5][..],
            &[-1.0, 0.0],
            &[3.0, 0.0],
            &[0.0, 3.0],
            &[1.0],
        ] {
            assert_eq!(g.index_of(w), None, "{w:?}");
        }
        let l = HypothesisSpace::List(
            HypothesisList::new(
                Array2::from_shape_vec((3, 2), vec![0.5, 1.0, 0.5, 2.0, 1.5, 2.0]).unwrap(),
                None,
                None,
            )
            .unwrap(),
        );
        assert_eq!(l.index_of(&[0.5, 2.0]), Some(1));
        assert_eq!(l.index_of(&[1.5, 2.0]), Some(2));
        assert_eq!(l.index_of(&[1.5, 1.0]), None);
        assert_eq!(l.index_of(&[0.5]), None);
    }

    /// A list's `dot_all`, each row a left-to-right dot product.
    #[test]
    fn list_dot_all_matches_a_plain_dot_product() {
        let params = Array2::from_shape_fn((5, 3), |(i, j)| i as f64 * 0.3 - j as f64 * 1.7);
        let s = HypothesisSpace::List(HypothesisList::new(params.clone(), None, None).unwrap());
        let x = [0.25, -1.5, 3.0];
        let mut out = vec![f64::NAN; 5];
        s.dot_all(&x, &mut out);
        for (h, &got) in out.iter().enumerate() {
            let want = (params[[h, 0]] * x[0] + params[[h, 1]] * x[1]) + params[[h, 2]] * x[2];
            assert_eq!(got.to_bits(), want.to_bits(), "h={h}");
        }
    }

    /// Each malformed list is refused, by name.
    #[test]
    fn malformed_lists_are_refused_by_name() {
        let p = |h: usize, d: usize| Array2::from_elem((h, d), 1.0);
        type Case = (
            Array2<f64>,
            Option<Vec<f64>>,
            Option<Vec<f64>>,
            &'static str,
        );
        let cases: Vec<Case> = vec![
            (p(0, 2), None, None, "empty"),
            (p(2, 0), None, None, "dimension 0"),
            (
                Array2::from_shape_vec((1, 2), vec![1.0, f64::INFINITY]).unwrap(),
                None,
                None,
                "finite, got inf",
            ),
            (
                p(2, 1),
                Some(vec![0.0]),
                None,
                "log_prior has 1 entries for 2",
            ),
            (
                p(2, 1),
                None,
                Some(vec![0.0; 3]),
                "log_proposal has 3 entries for 2",
            ),
            (
                p(2, 1),
                Some(vec![0.0, f64::INFINITY]),
                None,
                "log_prior values",
            ),
            (
                p(2, 1),
                None,
                Some(vec![0.0, f64::NAN]),
                "log_proposal values",
            ),
            (
                p(2, 1),
                None,
                Some(vec![0.0, f64::NEG_INFINITY]),
                "log_proposal values must be finite, got -inf",
            ),
            (p(2, 1), Some(vec![f64::NEG_INFINITY; 2]), None, "zero mass"),
        ];
        for (params, prior, proposal, want) in cases {
            let e = HypothesisList::new(params, prior, proposal).unwrap_err();
            assert!(e.contains(want), "{want}: {e}");
        }
        // the prior and the proposal together: π/r, normalised
        let l = HypothesisList::new(
            p(2, 1),
            Some(vec![(0.2f64).ln(), (0.8f64).ln()]),
            Some(vec![(0.5f64).ln(), (0.5f64).ln()]),
        )
        .unwrap();
        assert_eq!(l.prior_kind, PriorKind::ImportanceSampled);
        assert!((l.log_prior[0].exp() - 0.2).abs() < 1e-15);
    }

    #[test]
    fn list_prior_is_normalised_and_importance_weights_divide_by_the_proposal() {
        let params = Array2::from_shape_vec((3, 1), vec![0.0, 1.0, 2.0]).unwrap();
        let l = HypothesisList::new(
            params.clone(),
            None,
            Some(vec![(0.5f64).ln(), (0.25f64).ln(), (0.25f64).ln()]),
        )
        .unwrap();
        let p: Vec<f64> = l.log_prior.iter().map(|v| v.exp()).collect();
        assert!((p[0] - 0.2).abs() < 1e-15 && (p[1] - 0.4).abs() < 1e-15);
        assert_eq!(l.prior_kind, PriorKind::ImportanceSampled);
        assert!(HypothesisList::new(params, Some(vec![0.0, f64::NAN, 0.0]), None).is_err());
    }
}

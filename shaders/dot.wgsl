// dot.wgsl: w_h . x_a as a double-f32, composed after common.wgsl into
// harm.wgsl and loglik.wgsl (which declare `params`, `features` and `u`).
// CPU twin: model::hypotheses::HypothesisSpace::dot_all (f64).
//
// Grid hypotheses are decoded from their index (first coordinate most
// significant, i = sum_j w_j k^(d-1-j)); list hypotheses read `params`
// (hi, lo pairs, row-major, rows from `u.params_h0`). With `exact` set the
// host has checked that every product and partial sum is an integer below
// 2^24, so plain f32 arithmetic is exact and the double-f32 path is skipped.
// Grid digits are peeled off without integer division (software renderers
// have none for vectors): see next_digit.

// (rest / k, rest % k) for rest < 2^26 and 1 <= k <= 2^13 (every digit but
// a grid's first, as k^2 <= 2^26 when d >= 2), without branches: a
// quotient estimated in f32, then the f32 correction of its remainder.
// With e = (rest + 0.5) / k, the estimate is within 12/k of e, so the first
// quotient q0 is within 7 of rest / k and its remainder r0 = rest - q0 k
// within 8k <= 2^16 of 0; f32(r0) + 0.5 is exact, (r0 + 0.5) / k is at least
// 0.5/k >= 2^-14 from an integer and its f32 product errs by under 2^-19,
// so the correction floor((r0 + 0.5) / k) = floor(r0 / k) is exact. (Below
// 2^22 the estimate is already exact, and the correction 0.)
fn next_digit(rest: u32) -> vec2<u32> {
    let k = u.model.grid_k;
    let q0 = u32(floor((f32(rest) + 0.5) * u.inv_k));
    let r0 = bitcast<i32>(rest - q0 * k);
    let c = i32(floor((f32(r0) + 0.5) * u.inv_k));
    return vec2<u32>(bitcast<u32>(bitcast<i32>(q0) + c), bitcast<u32>(r0 - c * i32(k)));
}

// Lanes of a software renderer run in lockstep and execute both sides of
// every branch (only a loop ends early, after one pass, when no lane needs
// it), so the exact and double-f32 paths share the digits and the loads.
fn dot_wx(h: u32, feat_base: u32) -> vec2<f32> {
    let m = u.model;
    var acc = vec2<f32>(0.0, 0.0);
    if (m.grid_k > 0u) {
        var rest = h;
        for (var jj = 0u; jj < m.dim; jj = jj + 1u) {
            let j = m.dim - 1u - jj;
            let qr = next_digit(rest);
            // the first coordinate is what the others leave (k may be large)
            let w = f32(select(qr.y, rest, j == 0u));
            rest = qr.x;
            let x = features[feat_base + j];
            if (m.exact != 0u) {
                acc.x = acc.x + w * x.x;
            } else {
                acc = df_add(acc, df_mul(vec2<f32>(w, 0.0), x));
            }
        }
    } else {
        let base = (h - u.params_h0) * m.dim;
        for (var j = 0u; j < m.dim; j = j + 1u) {
            let w = params[base + j];
            let x = features[feat_base + j];
            if (m.exact != 0u) {
                acc.x = acc.x + w.x * x.x;
            } else {
                acc = df_add(acc, df_mul(w, x));
            }
        }
    }
    return acc;
}

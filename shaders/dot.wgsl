// dot.wgsl: w_h . x_a as a double-f32, composed after common.wgsl into
// harm.wgsl and loglik.wgsl (which declare `params`, `features` and `u`).
// CPU twin: model::hypotheses::HypothesisSpace::dot_all (f64).
//
// Grid hypotheses are decoded from their index (first coordinate most
// significant, i = sum_j w_j k^(d-1-j)); list hypotheses read `params`
// (hi, lo pairs, row-major, rows from `u.params_h0`). With `exact` set the
// host has checked that every product and partial sum is an integer below
// 2^24, so plain f32 arithmetic is exact and the double-f32 path is skipped.


fn dot_wx(h: u32, feat_base: u32) -> vec2<f32> {
    let m = u.model;
    var acc = vec2<f32>(0.0, 0.0);
    if (m.grid_k > 0u) {
        var rest = h;
        var j = m.dim;
        loop {
            if (j == 0u) {
                break;
            }
            j = j - 1u;
            let digit = f32(rest % m.grid_k);
            rest = rest / m.grid_k;
            if (digit != 0.0) {
                let x = features[feat_base + j];
                if (m.exact != 0u) {
                    acc.x = acc.x + digit * x.x;
                } else {
                    acc = df_add(acc, df_mul(vec2<f32>(digit, 0.0), x));
                }
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

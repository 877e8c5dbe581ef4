// dot.wgsl: w_h . x_a as a double-f32, composed after common.wgsl into
// harm.wgsl and loglik.wgsl (which declare `params`, `features` and `u`).
// CPU twin: model::hypotheses::HypothesisSpace::dot_all (f64).
//
// Grid hypotheses are decoded from their index (first coordinate most
// significant, i = sum_j w_j k^(d-1-j)); list hypotheses read `params`
// (hi, lo pairs, row-major, rows from `u.params_h0`). With `exact` set the
// host has checked that every product and partial sum is an integer below
// 2^24, so plain f32 arithmetic is exact and the double-f32 path is skipped.
// Grid digits are peeled off with a float reciprocal and an integer fix-up:
// software renderers have no vector integer division.

// (rest / k, rest % k) for rest < 2^26, k >= 1
fn div_k(rest: u32, k: u32, inv_k: f32) -> vec2<u32> {
    var q = u32(f32(rest) * inv_k);
    var r = i32(rest) - i32(q * k);
    for (var i = 0u; i < 3u; i = i + 1u) {
        if (r < 0) {
            q = q - 1u;
            r = r + i32(k);
        } else if (r >= i32(k)) {
            q = q + 1u;
            r = r - i32(k);
        }
    }
    return vec2<u32>(q, u32(r));
}


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
            let qr = div_k(rest, m.grid_k, u.inv_k);
            let digit = f32(qr.y);
            rest = qr.x;
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

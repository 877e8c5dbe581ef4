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
// have none for vectors): see next_digit and div_k.

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


// digit j of a grid index and the rest above it: in f32 when every index is
// below 2^22 (floor((rest + 0.5) / k) is then exact: the quotient is at least
// 0.5/k from an integer and the f32 error is below 0.25/k), else by div_k.
fn next_digit(rest: u32) -> vec2<u32> {
    if (u.float_digits != 0u) {
        let r = f32(rest);
        let q = floor((r + 0.5) * u.inv_k);
        return vec2<u32>(u32(q), u32(r - q * f32(u.model.grid_k)));
    }
    return div_k(rest, u.model.grid_k, u.inv_k);
}

// Branch-free inner loops: lanes of a software renderer run in lockstep.
fn dot_wx(h: u32, feat_base: u32) -> vec2<f32> {
    let m = u.model;
    var acc = vec2<f32>(0.0, 0.0);
    if (m.grid_k > 0u) {
        var rest = h;
        if (m.exact != 0u) {
            for (var jj = 0u; jj < m.dim; jj = jj + 1u) {
                let j = m.dim - 1u - jj;
                let qr = next_digit(rest);
                rest = qr.x;
                acc.x = acc.x + f32(qr.y) * features[feat_base + j].x;
            }
        } else {
            for (var jj = 0u; jj < m.dim; jj = jj + 1u) {
                let j = m.dim - 1u - jj;
                let qr = next_digit(rest);
                rest = qr.x;
                acc = df_add(acc, df_mul(vec2<f32>(f32(qr.y), 0.0), features[feat_base + j]));
            }
        }
    } else {
        let base = (h - u.params_h0) * m.dim;
        if (m.exact != 0u) {
            for (var j = 0u; j < m.dim; j = j + 1u) {
                acc.x = acc.x + params[base + j].x * features[feat_base + j].x;
            }
        } else {
            for (var j = 0u; j < m.dim; j = j + 1u) {
                acc = df_add(acc, df_mul(params[base + j], features[feat_base + j]));
            }
        }
    }
    return acc;
}

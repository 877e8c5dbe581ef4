// loglik.wgsl: ln p(y_t | x_{t,a_t}, w_h) for every (step, hypothesis) of a
// chunk, as a double-f32 (hi, lo) that the host adds up in f64.
// CPU twin: src/engine/cpu/loglik.rs (`loglik`, f64; ObservationModel::log_likelihood).
// w.x comes from the step's harm table (harm.wgsl), as in the twin, when the
// batch has one table (a bandit stream: the reduction reuses it); otherwise
// (`u.direct`, a table per step) it is computed here for the taken action
// only (dot.wgsl), instead of harm for every candidate.
//
// Gaussian: -((y - w.x)/sigma)^2 / 2 - ln sigma - ln(2 pi)/2, all in double-f32
// (a huge residual squared keeps its low digits, so posteriors built from
// millions of steps do not drift from the f64 CPU engine).
// Bernoulli: ln sigmoid(+-w.x) = w.x - ln(1 + e^{w.x}) for w.x < 0 (the large
// part exact in double-f32), -ln(1 + e^{-w.x}) otherwise (f32, ~1e-7 absolute).
// Composed as common.wgsl + dot.wgsl + this file.

struct LoglikUniform {
    model: ModelParams,
    h0: u32,
    h_count: u32,
    params_h0: u32,
    n_steps: u32,
    inv_k: f32,
    // unused: dot.wgsl decodes every grid index exactly without it
    float_digits: u32,
    direct: u32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> u: LoglikUniform;
// w.x rows of the harm tables, (hi, lo)
@group(0) @binding(1) var<storage, read> wx: array<vec2<f32>>;
// per step: (row of the taken action in `wx`, or with `direct` its first
// feature, has outcome, y hi bits, y lo bits)
@group(0) @binding(2) var<storage, read> steps: array<vec4<u32>>;
@group(0) @binding(3) var<storage, read_write> out: array<vec2<f32>>;
@group(0) @binding(4) var<storage, read> params: array<vec2<f32>>;
@group(0) @binding(5) var<storage, read> features: array<vec2<f32>>;

fn log1p_small(v: f32) -> f32 {
    if (v < 1.0e-3) {
        return v * (1.0 - v * (0.5 - v * (0.33333334 - v * 0.25)));
    }
    return log(1.0 + v);
}

// ln sigmoid(x) as a double-f32.
fn log_sigmoid_df(x: vec2<f32>) -> vec2<f32> {
    if (x.x >= 0.0) {
        return vec2<f32>(-log1p_small(exp(-x.x)), 0.0);
    }
    return df_add(x, vec2<f32>(-log1p_small(exp(x.x)), 0.0));
}

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.model.zero;
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= u.n_steps * u.h_count) {
        return;
    }
    let t = i / u.h_count;
    let hl = i - t * u.h_count;
    let s = steps[t];
    if (s.y == 0u) {
        out[i] = vec2<f32>(0.0, 0.0);
        return;
    }
    let y = vec2<f32>(bitcast<f32>(s.z), bitcast<f32>(s.w));
    var v: vec2<f32>;
    if (u.direct != 0u) {
        v = dot_wx(u.h0 + hl, s.x);
    } else {
        v = wx[s.x + hl];
    }
    let m = u.model;
    if (m.kind == MODEL_GAUSSIAN) {
        let r = df_mul(df_add(y, -v), vec2<f32>(m.inv_sigma_hi, m.inv_sigma_lo));
        let r2 = df_mul(r, r);
        out[i] = df_add(vec2<f32>(m.ll_const_hi, m.ll_const_lo), -0.5 * r2);
    } else {
        if (y.x == 1.0) {
            out[i] = log_sigmoid_df(v);
        } else {
            out[i] = log_sigmoid_df(-v);
        }
    }
}

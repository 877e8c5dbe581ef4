// loglik.wgsl: ln p(y_t | x_{t,a_t}, w_h) for every (step, hypothesis) of a
// chunk, as a double-f32 (hi, lo) that the host adds up in f64.
// CPU twin: src/engine/cpu/loglik.rs (`loglik`, f64; ObservationModel::log_likelihood).
// w.x comes from the step's harm table (harm.wgsl), as in the twin, when the
// batch has one table (a bandit stream: the reduction reuses it); otherwise
// (`u.direct`, a table per step) it is computed here for the taken action
// only (dot.wgsl), instead of harm for every candidate; on a grid, on a
// software renderer, by `main_walk`, which walks it along runs of
// hypotheses.
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
    direct: u32,
    _p0: u32,
    _p1: u32,
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

// ln p(y | w.x) as a double-f32.
fn loglik_at(v: vec2<f32>, y: vec2<f32>) -> vec2<f32> {
    let m = u.model;
    if (m.kind == MODEL_GAUSSIAN) {
        let r = df_mul(df_add(y, -v), vec2<f32>(m.inv_sigma_hi, m.inv_sigma_lo));
        let r2 = df_mul(r, r);
        return df_add(vec2<f32>(m.ll_const_hi, m.ll_const_lo), -0.5 * r2);
    }
    if (y.x == 1.0) {
        return log_sigmoid_df(v);
    }
    return log_sigmoid_df(-v);
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
    out[i] = loglik_at(v, y);
}

// Hypotheses per thread of `main_walk`.
const RUN: u32 = 32u;

// `direct` on a grid, for software renderers: one thread per (step, run of
// RUN hypotheses), which walks w.x from each hypothesis to the next
// (dot.wgsl's walks, as reduce.wgsl) instead of a dot_grid for each: the
// steps are branch-free, and a software renderer writes lane by lane
// whatever the addresses. (A GPU keeps `main`: there neighbouring threads
// write neighbouring words.)
@compute @workgroup_size(256)
fn main_walk(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.model.zero;
    let i = gid.x + gid.y * nwg.x * 256u;
    let n_runs = (u.h_count + RUN - 1u) / RUN;
    if (i >= u.n_steps * n_runs) {
        return;
    }
    let t = i / n_runs;
    let hs = (i - t * n_runs) * RUN;
    let he = min(hs + RUN, u.h_count);
    let row = t * u.h_count;
    let s = steps[t];
    if (s.y == 0u) {
        for (var hl = hs; hl < he; hl = hl + 1u) {
            out[row + hl] = vec2<f32>(0.0, 0.0);
        }
        return;
    }
    let y = vec2<f32>(bitcast<f32>(s.z), bitcast<f32>(s.w));
    let wd = walk_deltas(s.x);
    var h = hs;
    loop {
        let st = walk_start(u.h0 + h, dot_grid(u.h0 + h, s.x), wd.period);
        var wk = st.walk;
        let seg_end = min(he, h + st.len);
        for (var hl = h; hl < seg_end; hl = hl + 1u) {
            out[row + hl] = loglik_at(wk.wx, y);
            wk = walk_step(wk, wd);
        }
        if (seg_end >= he) {
            break;
        }
        h = seg_end;
    }
}

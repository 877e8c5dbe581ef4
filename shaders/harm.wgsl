// harm.wgsl: for every hypothesis of a chunk and every candidate of a group
// of tables, q_h(a) = P(harm | w_h . x_a) with ln q (for the reduction's
// argmax), and w_h . x_a as a double-f32 (for the log-likelihoods).
// CPU twin: src/engine/cpu/harm.rs (`harm`, f64) with the f32 formula of
// ObservationModel::harm_f32_split.
//
// Layout: one thread per (table, hypothesis); it loops over the table's
// candidates and writes candidate-major rows, out[q_off + a*h_count + h - h0],
// so that a reduction thread streams one candidate's row.
// Composed as common.wgsl + dot.wgsl + this file.

struct HarmUniform {
    model: ModelParams,
    h0: u32,
    h_count: u32,
    params_h0: u32,
    n_tables: u32,
    inv_k: f32,
    _p0: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> u: HarmUniform;
@group(0) @binding(1) var<storage, read> params: array<vec2<f32>>;
@group(0) @binding(2) var<storage, read> features: array<vec2<f32>>;
// per table: (first feature (vec2 units), candidates, row offset, unused)
@group(0) @binding(3) var<storage, read> tables: array<vec4<u32>>;
// (q, ln q); ln q = NEG_HUGE where q = 0
@group(0) @binding(4) var<storage, read_write> q_out: array<vec2<f32>>;
// w.x as (hi, lo)
@group(0) @binding(5) var<storage, read_write> wx_out: array<vec2<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.model.zero;
    let i = gid.x + gid.y * nwg.x * 256u;
    if (i >= u.n_tables * u.h_count) {
        return;
    }
    let tab = tables[i / u.h_count];
    let hl = i % u.h_count;
    let h = u.h0 + hl;
    for (var a = 0u; a < tab.y; a = a + 1u) {
        let wx = dot_wx(h, tab.x + a * u.model.dim);
        let o = tab.z + a * u.h_count + hl;
        let q = harm(u.model, wx);
        var lq = NEG_HUGE;
        if (q > 0.0) {
            lq = log(q);
        }
        q_out[o] = vec2<f32>(q, lq);
        wx_out[o] = wx;
    }
}

// reduce.wgsl: per step and candidate, the reductions over hypotheses that the
// estimators need, one block of WG*K hypotheses per workgroup:
//   sum_h e^{l_h} q_h,  argmax_h l_h + ln q_h (ties -> larger q, then lower h),
//   max_{h in I_alpha} q_h for each alpha;  per step sum e^l and sum e^l * l.
// CPU twin: src/engine/cpu/reduce.rs (`reduce`). The host combines the
// ceil(H / (WG*K)) block results of a (step, candidate) in f64
// (src/engine/gpu/reduce.rs), so nothing of size H x T x A leaves the GPU.
//
// Each thread owns K hypotheses (strided by WG, so loads are coalesced) and
// keeps their weights, log weights and plausible-set bits in registers while it
// loops over the step's candidates; each candidate ends with a workgroup tree
// reduction. Sums are f32: K terms serially, then a log2(WG)-deep tree.
// Prefixed by the host with `const WG`, `const K`, `const N_ALPHA`; composed
// as common.wgsl + this file.

const STRIDE: u32 = 4u + N_ALPHA;
const NO_HYPOTHESIS: u32 = 0xffffffffu;
// log weights at or below this are -infinity (hypotheses of zero prior mass)
const LOG_ZERO: f32 = -1.0e30;

struct ReduceUniform {
    h_count: u32,
    n_blocks: u32,
    max_candidates: u32,
    h0: u32,
}

@group(0) @binding(0) var<uniform> u: ReduceUniform;
// candidate-major harm rows, see harm.wgsl
@group(0) @binding(1) var<storage, read> q: array<f32>;
// per (step, hypothesis): l_h as (hi, lo)
@group(0) @binding(2) var<storage, read> lrel: array<vec2<f32>>;
// per (step, alpha): the plausible-set threshold as (hi, lo)
@group(0) @binding(3) var<storage, read> thr: array<vec2<f32>>;
// per step: (q offset of its table, candidates, first output candidate, unused)
@group(0) @binding(4) var<storage, read> steps: array<vec4<u32>>;
// per (candidate, block), as bits: sum, best score, q at best, best h, then max q per alpha
@group(0) @binding(5) var<storage, read_write> cand_out: array<u32>;
// per (step, block): sum e^l, sum e^l l
@group(0) @binding(6) var<storage, read_write> step_out: array<vec2<f32>>;

var<workgroup> s_a: array<f32, WG>;
var<workgroup> s_b: array<f32, WG>;
var<workgroup> s_q: array<f32, WG>;
var<workgroup> s_i: array<u32, WG>;
var<workgroup> s_pm: array<f32, WG * N_ALPHA>;

// (s1, q1, i1) beats (s2, q2, i2)?
fn better(s1: f32, q1: f32, i1: u32, s2: f32, q2: f32, i2: u32) -> bool {
    if (s1 != s2) {
        return s1 > s2;
    }
    if (q1 != q2) {
        return q1 > q2;
    }
    return i1 < i2;
}

@compute @workgroup_size(WG)
fn main(@builtin(local_invocation_id) lid3: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>) {
    let lid = lid3.x;
    let b = wid.x;
    let t = wid.y;
    let st = steps[t];
    let first = b * WG * K;

    var w: array<f32, K>;
    var sc: array<f32, K>;
    var mask: array<u32, K>;
    var sw = 0.0;
    var swl = 0.0;
    for (var i = 0u; i < K; i = i + 1u) {
        let hl = first + i * WG + lid;
        w[i] = 0.0;
        sc[i] = NEG_HUGE;
        mask[i] = 0u;
        if (hl < u.h_count) {
            let l = lrel[t * u.h_count + hl];
            if (l.x > LOG_ZERO) {
                let lv = l.x + l.y;
                let wi = exp(l.x) * (1.0 + l.y);
                w[i] = wi;
                sc[i] = lv;
                var m = 0u;
                for (var k = 0u; k < N_ALPHA; k = k + 1u) {
                    let th = thr[t * N_ALPHA + k];
                    if (l.x > th.x || (l.x == th.x && l.y >= th.y)) {
                        m = m | (1u << k);
                    }
                }
                mask[i] = m;
                sw = sw + wi;
                swl = swl + wi * lv;
            }
        }
    }
    s_a[lid] = sw;
    s_b[lid] = swl;
    workgroupBarrier();
    for (var off = WG / 2u; off > 0u; off = off / 2u) {
        if (lid < off) {
            s_a[lid] = s_a[lid] + s_a[lid + off];
            s_b[lid] = s_b[lid] + s_b[lid + off];
        }
        workgroupBarrier();
    }
    if (lid == 0u) {
        step_out[t * u.n_blocks + b] = vec2<f32>(s_a[0], s_b[0]);
    }
    workgroupBarrier();

    for (var a = 0u; a < u.max_candidates; a = a + 1u) {
        let live = a < st.y;
        var sum = 0.0;
        var bs = NEG_HUGE;
        var bq = 0.0;
        var bi = NO_HYPOTHESIS;
        var pm: array<f32, N_ALPHA>;
        for (var k = 0u; k < N_ALPHA; k = k + 1u) {
            pm[k] = 0.0;
        }
        if (live) {
            let row = st.x + a * u.h_count;
            for (var i = 0u; i < K; i = i + 1u) {
                let hl = first + i * WG + lid;
                if (hl < u.h_count) {
                    let qv = q[row + hl];
                    sum = sum + w[i] * qv;
                    if (qv > 0.0 && sc[i] > NEG_HUGE) {
                        let s = sc[i] + log(qv);
                        let h = u.h0 + hl;
                        if (better(s, qv, h, bs, bq, bi)) {
                            bs = s;
                            bq = qv;
                            bi = h;
                        }
                    }
                    let m = mask[i];
                    for (var k = 0u; k < N_ALPHA; k = k + 1u) {
                        if ((m & (1u << k)) != 0u) {
                            pm[k] = max(pm[k], qv);
                        }
                    }
                }
            }
        }
        s_a[lid] = sum;
        s_b[lid] = bs;
        s_q[lid] = bq;
        s_i[lid] = bi;
        for (var k = 0u; k < N_ALPHA; k = k + 1u) {
            s_pm[k * WG + lid] = pm[k];
        }
        workgroupBarrier();
        for (var off = WG / 2u; off > 0u; off = off / 2u) {
            if (lid < off) {
                let o = lid + off;
                s_a[lid] = s_a[lid] + s_a[o];
                if (better(s_b[o], s_q[o], s_i[o], s_b[lid], s_q[lid], s_i[lid])) {
                    s_b[lid] = s_b[o];
                    s_q[lid] = s_q[o];
                    s_i[lid] = s_i[o];
                }
                for (var k = 0u; k < N_ALPHA; k = k + 1u) {
                    s_pm[k * WG + lid] = max(s_pm[k * WG + lid], s_pm[k * WG + o]);
                }
            }
            workgroupBarrier();
        }
        if (lid == 0u && live) {
            let o = ((st.z + a) * u.n_blocks + b) * STRIDE;
            cand_out[o] = bitcast<u32>(s_a[0]);
            cand_out[o + 1u] = bitcast<u32>(s_b[0]);
            cand_out[o + 2u] = bitcast<u32>(s_q[0]);
            cand_out[o + 3u] = s_i[0];
            for (var k = 0u; k < N_ALPHA; k = k + 1u) {
                cand_out[o + 4u + k] = bitcast<u32>(s_pm[k * WG]);
            }
        }
        workgroupBarrier();
    }
}

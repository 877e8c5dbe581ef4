// reduce.wgsl: per step and candidate, the reductions over hypotheses that the
// estimators need, over one block of hypotheses per thread:
//   sum_h e^{l_h} q_h,  argmax_h l_h + ln q_h (ties -> larger q, then lower h),
//   max_{h in I_alpha} q_h for each alpha;  per step sum e^l and sum e^l * l.
// CPU twin: src/engine/cpu/reduce.rs (`reduce`). The `merge` entries below
// combine the ceil(H / block) block results of a (step, candidate), so one
// record per (step, candidate) leaves the GPU: `merge` with a workgroup tree
// on GPUs, `merge_serial` with one thread on software renderers (their host
// twin is reduce::Best::merge and BlockSums in src/engine/gpu/mod.rs).
//
// q comes from a harm table (harm.wgsl: a bandit stream's one table serves
// every step) or, with INLINE_HARM (a table per step), is computed here, as
// harm.wgsl would, for the hypotheses that need it only. With GRID_WALK
// (inline harm on a grid), w.x is not recomputed for each hypothesis: the
// thread walks it from one hypothesis to the next (dot.wgsl's walks: one
// double-f32 add per step, each segment of a run starting from dot_grid). Hypotheses whose log
// weight is below the step's `skip` bound change no result (the host
// derives it from q of the MAP hypothesis and the plausible-set thresholds,
// as the twin's `negligible_weight`) and are passed over.
//
// One thread per (candidate of the chunk, block of hypotheses, in whole runs
// of RUN): it streams the candidate's harm row and the step's log weights for
// the runs whose largest log weight (`run_max`) is not negligible; no barriers, no shared
// memory (software renderers run those slowly), and neighbouring threads are
// neighbouring candidates of one step, so they read the same log weights
// and walk the same hypotheses. Software renderers run every branch of a
// lane group (only loops end early) and stop a shader after 65535 loop
// passes in all (see dot.wgsl): the per-hypothesis work is straight-line.
// Sums are f32 in runs of 32 terms, and the runs are added with Kahan
// compensation. Prefixed by the host with `const N_ALPHA`, `const
// INLINE_HARM` and `const GRID_WALK` (inline harm on a grid: the host
// builds that variant for grid models, src/engine/gpu/reduce.rs); composed
// as common.wgsl + dot.wgsl + this file.

const STRIDE: u32 = 7u + N_ALPHA;
const NO_HYPOTHESIS: u32 = 0xffffffffu;
// log weights at or below this are -infinity (hypotheses of zero prior mass)
const LOG_ZERO: f32 = -1.0e30;
const RUN: u32 = 32u;

struct ReduceUniform {
    model: ModelParams,
    h_count: u32,
    n_blocks: u32,
    block: u32,
    n_records: u32,
    h0: u32,
    params_h0: u32,
    inv_k: f32,
    _p0: u32,
}

@group(0) @binding(0) var<uniform> u: ReduceUniform;
// (q, ln q) rows, see harm.wgsl (unused with INLINE_HARM)
@group(0) @binding(1) var<storage, read> qt: array<vec2<f32>>;
// per (step, hypothesis): l_h as (hi, lo)
@group(0) @binding(2) var<storage, read> lrel: array<vec2<f32>>;
// per step: the plausible-set threshold of each alpha as (hi, lo), then
// (skip, unused). With a device posterior the threshold is the least
// member's own l pair (the host cuts on l joined into f64, which can round
// it), so the (hi, lo) order below admits exactly the host's members.
@group(0) @binding(3) var<storage, read> thr: array<vec2<f32>>;
// per candidate: (step, row offset in qt or with INLINE_HARM its first
// feature, 1 for the step's first candidate, unused)
@group(0) @binding(4) var<storage, read> cands: array<vec4<u32>>;
// per (candidate, block), as bits: sum, best score, q at best, best h, l at best
// (hi, lo), the sum's low part (merge only), then max q per alpha
@group(0) @binding(5) var<storage, read_write> cand_out: array<u32>;
// per (step, block): sum e^l, sum e^l l (written by the step's first candidate)
@group(0) @binding(6) var<storage, read_write> step_out: array<vec2<f32>>;
// hypothesis parameters and candidate features (dot.wgsl, INLINE_HARM)
@group(0) @binding(7) var<storage, read> params: array<vec2<f32>>;
@group(0) @binding(8) var<storage, read> features: array<vec2<f32>>;
// per (step, run of RUN hypotheses of the chunk): the largest l (hi)
@group(0) @binding(9) var<storage, read> run_max: array<f32>;

// Kahan: adds x to the compensated sum (s, c).
fn kahan(acc: vec2<f32>, x: f32) -> vec2<f32> {
    let y = x - acc.y;
    let t = opaque(acc.x + y);
    return vec2<f32>(t, opaque(t - acc.x) - y);
}

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.model.zero;
    let i = gid.x + gid.y * nwg.x * 64u;
    if (i >= u.n_records * u.n_blocks) {
        return;
    }
    let b = i / u.n_records;
    let c = i - b * u.n_records;
    let cd = cands[c];
    let t = cd.x;
    let row = cd.y;
    let h_start = b * u.block;
    let h_end = min(h_start + u.block, u.h_count);

    var th: array<vec2<f32>, N_ALPHA>;
    let tb = t * (N_ALPHA + 1u);
    // every member of any plausible set has l.x >= the lowest threshold's
    // hi part: most hypotheses are in none, and skip the per-alpha tests
    var th_low = 3.0e38;
    for (var k = 0u; k < N_ALPHA; k = k + 1u) {
        th[k] = thr[tb + k];
        th_low = min(th_low, th[k].x);
    }
    let skip = thr[tb + N_ALPHA].x;
    var pm: array<f32, N_ALPHA>;
    for (var k = 0u; k < N_ALPHA; k = k + 1u) {
        pm[k] = 0.0;
    }
    var sum = vec2<f32>(0.0, 0.0);
    var sw = vec2<f32>(0.0, 0.0);
    var swl = vec2<f32>(0.0, 0.0);
    var bs = NEG_HUGE;
    var bq = 0.0;
    var bi = NO_HYPOTHESIS;
    var bl = vec2<f32>(0.0, 0.0);
    let lbase = t * u.h_count;
    // runs of RUN hypotheses; a run whose largest log weight is negligible
    // is passed over unread (the common case once the posterior has
    // concentrated). Blocks are whole runs.
    let rbase = t * ((u.h_count + RUN - 1u) / RUN);
    // GRID_WALK (inline harm on a grid): w.x is walked from one hypothesis
    // to the next (dot.wgsl), in segments that start from dot_grid
    var wd: WalkDeltas;
    if (GRID_WALK) {
        wd = walk_deltas(row);
    }
    for (var hs = h_start; hs < h_end; hs = hs + RUN) {
        let he = min(hs + RUN, h_end);
        let top = run_max[rbase + hs / RUN];
        if (!(top > LOG_ZERO && top >= skip)) {
            continue;
        }
        var run_sum = 0.0;
        var run_w = 0.0;
        var run_wl = 0.0;
        // segments [h, seg_end) of the run: walks with GRID_WALK (one per
        // run with k = 2), else the whole run (with INLINE_HARM, w.x from
        // dot_wx for each hypothesis)
        var h = hs;
        loop {
            var seg_end = he;
            var wk: Walk;
            if (GRID_WALK) {
                let st = walk_start(u.h0 + h, dot_grid(u.h0 + h, row), wd.period);
                wk = st.walk;
                seg_end = min(he, h + st.len);
            }
            for (var hl = h; hl < seg_end; hl = hl + 1u) {
                if (INLINE_HARM && !GRID_WALK) {
                    wk.wx = dot_wx(u.h0 + hl, row);
                }
                let l = lrel[lbase + hl];
                if (l.x > LOG_ZERO && l.x >= skip) {
                    var q: f32;
                    // ln q from the table (unused with INLINE_HARM)
                    var lq_table = 0.0;
                    if (INLINE_HARM) {
                        q = harm(u.model, wk.wx);
                    } else {
                        let e = qt[row + hl];
                        q = e.x;
                        lq_table = e.y;
                    }
                    let lv = l.x + l.y;
                    let w = exp(l.x) * (1.0 + l.y);
                    run_sum = run_sum + w * q;
                    run_w = run_w + w;
                    run_wl = run_wl + w * lv;
                    if (q > 0.0) {
                        var lq = lq_table;
                        if (INLINE_HARM) {
                            lq = log(q);
                        }
                        let s = lv + lq;
                        if (s > bs || (s == bs && q > bq)) {
                            bs = s;
                            bq = q;
                            bi = u.h0 + hl;
                            bl = l;
                        }
                    }
                    if (l.x >= th_low) {
                        for (var k = 0u; k < N_ALPHA; k = k + 1u) {
                            if (l.x > th[k].x || (l.x == th[k].x && l.y >= th[k].y)) {
                                pm[k] = max(pm[k], q);
                            }
                        }
                    }
                }
                if (GRID_WALK) {
                    // past the segment's last hypothesis the step is wrong
                    // and unused
                    wk = walk_step(wk, wd);
                }
            }
            if (seg_end >= he) {
                break;
            }
            h = seg_end;
        }
        sum = kahan(sum, run_sum);
        sw = kahan(sw, run_w);
        swl = kahan(swl, run_wl);
    }
    let o = (c * u.n_blocks + b) * STRIDE;
    cand_out[o] = bitcast<u32>(sum.x - sum.y);
    cand_out[o + 1u] = bitcast<u32>(bs);
    cand_out[o + 2u] = bitcast<u32>(bq);
    cand_out[o + 3u] = bi;
    cand_out[o + 4u] = bitcast<u32>(bl.x);
    cand_out[o + 5u] = bitcast<u32>(bl.y);
    cand_out[o + 6u] = 0u;
    for (var k = 0u; k < N_ALPHA; k = k + 1u) {
        cand_out[o + 7u + k] = bitcast<u32>(pm[k]);
    }
    if (cd.z != 0u) {
        step_out[t * u.n_blocks + b] = vec2<f32>(sw.x - sw.y, swl.x - swl.y);
    }
}

// per candidate, as cand_out: its blocks merged (the sum as a double-f32)
@group(0) @binding(10) var<storage, read_write> cand_merged: array<u32>;
// per step: sum e^l and sum e^l l over all blocks, as double-f32s
@group(0) @binding(11) var<storage, read_write> step_merged: array<vec4<f32>>;

// merge for software renderers (lavapipe, llvmpipe), which run barriers
// slowly: the blocks of each candidate combined by one thread, in block
// order, so that one record per candidate crosses to the host: sums in
// double-f32, the argmax by higher score, then larger q, then lower h
// (reduce::Best::merge), max q per alpha.
@compute @workgroup_size(64)
fn merge_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.model.zero;
    let c = gid.x + gid.y * nwg.x * 64u;
    if (c >= u.n_records) {
        return;
    }
    var sum = vec2<f32>(0.0, 0.0);
    var bs = NEG_HUGE;
    var bq = 0.0;
    var bi = NO_HYPOTHESIS;
    var bl = vec2<u32>(0u, 0u);
    var pm: array<f32, N_ALPHA>;
    for (var k = 0u; k < N_ALPHA; k = k + 1u) {
        pm[k] = 0.0;
    }
    for (var b = 0u; b < u.n_blocks; b = b + 1u) {
        let o = (c * u.n_blocks + b) * STRIDE;
        sum = df_add(sum, vec2<f32>(bitcast<f32>(cand_out[o]), 0.0));
        let h = cand_out[o + 3u];
        if (h != NO_HYPOTHESIS) {
            let s = bitcast<f32>(cand_out[o + 1u]);
            let q = bitcast<f32>(cand_out[o + 2u]);
            if (bi == NO_HYPOTHESIS || s > bs || (s == bs && (q > bq || (q == bq && h < bi)))) {
                bs = s;
                bq = q;
                bi = h;
                bl = vec2<u32>(cand_out[o + 4u], cand_out[o + 5u]);
            }
        }
        for (var k = 0u; k < N_ALPHA; k = k + 1u) {
            pm[k] = max(pm[k], bitcast<f32>(cand_out[o + 7u + k]));
        }
    }
    let m = c * STRIDE;
    cand_merged[m] = bitcast<u32>(sum.x);
    cand_merged[m + 1u] = bitcast<u32>(bs);
    cand_merged[m + 2u] = bitcast<u32>(bq);
    cand_merged[m + 3u] = bi;
    cand_merged[m + 4u] = bl.x;
    cand_merged[m + 5u] = bl.y;
    cand_merged[m + 6u] = bitcast<u32>(sum.y);
    for (var k = 0u; k < N_ALPHA; k = k + 1u) {
        cand_merged[m + 7u + k] = bitcast<u32>(pm[k]);
    }
    let cd = cands[c];
    if (cd.z != 0u) {
        var sw = vec2<f32>(0.0, 0.0);
        var swl = vec2<f32>(0.0, 0.0);
        for (var b = 0u; b < u.n_blocks; b = b + 1u) {
            let v = step_out[cd.x * u.n_blocks + b];
            sw = df_add(sw, vec2<f32>(v.x, 0.0));
            swl = df_add(swl, vec2<f32>(v.y, 0.0));
        }
        step_merged[cd.x] = vec4<f32>(sw.x, sw.y, swl.x, swl.y);
    }
}

// (score bits, q bits, h) of b beats a: higher score, then larger q, then
// lower h; h = NO_HYPOTHESIS is no record (reduce::Best::merge).
fn beats(b: vec4<u32>, a: vec4<u32>) -> bool {
    if (b.z == NO_HYPOTHESIS) {
        return false;
    }
    if (a.z == NO_HYPOTHESIS) {
        return true;
    }
    let sa = bitcast<f32>(a.x);
    let sb = bitcast<f32>(b.x);
    let qa = bitcast<f32>(a.y);
    let qb = bitcast<f32>(b.y);
    return sb > sa || (sb == sa && (qb > qa || (qb == qa && b.z < a.z)));
}

var<workgroup> m_sum: array<vec2<f32>, 64>;
// score bits, q bits, h, l hi bits
var<workgroup> m_best: array<vec4<u32>, 64>;
var<workgroup> m_best_lo: array<u32, 64>;
var<workgroup> m_pm: array<array<f32, N_ALPHA>, 64>;
// the step's sum e^l and sum e^l l, as double-f32s
var<workgroup> m_step: array<vec4<f32>, 64>;

// The blocks of each candidate combined on the device by a workgroup: each
// thread merges every 64th block, then a tree merges the threads (every
// part of the merge is associative), so that one record per candidate
// crosses to the host. Same record as merge_serial; the sums' rounding may
// differ in the last double-f32 bits. One thread per candidate took longer
// than the reduction itself at H = 10^6.
@compute @workgroup_size(64)
fn merge(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.model.zero;
    let c = wid.x + wid.y * nwg.x;
    // uniform per workgroup: whole workgroups return, barriers stay uniform
    if (c >= u.n_records) {
        return;
    }
    let cd = cands[c];
    let me = lid.x;
    var sum = vec2<f32>(0.0, 0.0);
    var best = vec4<u32>(bitcast<u32>(NEG_HUGE), 0u, NO_HYPOTHESIS, 0u);
    var best_lo = 0u;
    var pm: array<f32, N_ALPHA>;
    for (var k = 0u; k < N_ALPHA; k = k + 1u) {
        pm[k] = 0.0;
    }
    var sw = vec2<f32>(0.0, 0.0);
    var swl = vec2<f32>(0.0, 0.0);
    for (var b = me; b < u.n_blocks; b = b + 64u) {
        let o = (c * u.n_blocks + b) * STRIDE;
        sum = df_add(sum, vec2<f32>(bitcast<f32>(cand_out[o]), 0.0));
        let r = vec4<u32>(cand_out[o + 1u], cand_out[o + 2u], cand_out[o + 3u], cand_out[o + 4u]);
        if (beats(r, best)) {
            best = r;
            best_lo = cand_out[o + 5u];
        }
        for (var k = 0u; k < N_ALPHA; k = k + 1u) {
            pm[k] = max(pm[k], bitcast<f32>(cand_out[o + 7u + k]));
        }
        if (cd.z != 0u) {
            let v = step_out[cd.x * u.n_blocks + b];
            sw = df_add(sw, vec2<f32>(v.x, 0.0));
            swl = df_add(swl, vec2<f32>(v.y, 0.0));
        }
    }
    m_sum[me] = sum;
    m_best[me] = best;
    m_best_lo[me] = best_lo;
    m_pm[me] = pm;
    m_step[me] = vec4<f32>(sw, swl);
    for (var s = 32u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (me < s) {
            let o = me + s;
            m_sum[me] = df_add(m_sum[me], m_sum[o]);
            if (beats(m_best[o], m_best[me])) {
                m_best[me] = m_best[o];
                m_best_lo[me] = m_best_lo[o];
            }
            for (var k = 0u; k < N_ALPHA; k = k + 1u) {
                m_pm[me][k] = max(m_pm[me][k], m_pm[o][k]);
            }
            let a = m_step[me];
            let b = m_step[o];
            m_step[me] = vec4<f32>(df_add(a.xy, b.xy), df_add(a.zw, b.zw));
        }
    }
    if (me == 0u) {
        let m = c * STRIDE;
        let total = m_sum[0];
        let b = m_best[0];
        cand_merged[m] = bitcast<u32>(total.x);
        cand_merged[m + 1u] = b.x;
        cand_merged[m + 2u] = b.y;
        cand_merged[m + 3u] = b.z;
        cand_merged[m + 4u] = b.w;
        cand_merged[m + 5u] = m_best_lo[0];
        cand_merged[m + 6u] = bitcast<u32>(total.y);
        for (var k = 0u; k < N_ALPHA; k = k + 1u) {
            cand_merged[m + 7u + k] = bitcast<u32>(m_pm[0][k]);
        }
        if (cd.z != 0u) {
            step_merged[cd.x] = m_step[0];
        }
    }
}

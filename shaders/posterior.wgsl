// posterior.wgsl: the posterior of every step of a chunk, kept on the device
// so that nothing of size steps x H has to cross to the host (the GPU
// backend's device-posterior path, src/engine/gpu/posterior.rs).
// CPU twins: src/posterior.rs
//   prefix    <-> posterior::accumulate   (L before each step, from the carry)
//   step_max  <-> posterior::to_relative  (max_h L and the first h holding it,
//   merge_max                              per lane, then merged per step)
//   relative  <-> posterior::to_relative  (l = L - max) and the candidates
//                 posterior::plausible_cuts looks at (l >= ln min alpha)
// merge_max and relative come in two shapes (KernelShape in
// src/engine/gpu/mod.rs): workgroup trees for GPUs, and `_serial` entries,
// one thread walking a long run without barriers, for software renderers.
// Values are double-f32 (hi, lo) throughout, so sums over long streams keep
// about 48 bits; the host keeps the carry between batches.
// Composed as common.wgsl + this file.

// log weights at or below this are -infinity (hypotheses of zero prior mass)
const LOG_ZERO: f32 = -1.0e30;
// hypotheses per run (RUN in reduce.wgsl)
const RUN: u32 = 32u;

struct PosteriorUniform {
    h_count: u32,
    n_steps: u32,
    // relative: keep entries with l.hi >= cut, at most `capacity` of them
    cut: f32,
    capacity: u32,
    zero: u32,
    // threads per step in step_max
    lanes: u32,
    _p1: u32,
    _p2: u32,
}

@group(0) @binding(0) var<uniform> u: PosteriorUniform;
// per (step, hypothesis): prefix reads log-likelihoods and writes L before
// the step; relative reads L and writes l = L - max_h L
@group(0) @binding(1) var<storage, read_write> post: array<vec2<f32>>;
// per hypothesis: L after the last step seen (prefix)
@group(0) @binding(2) var<storage, read_write> carry: array<vec2<f32>>;
// per hypothesis: the log prior (prefix)
@group(0) @binding(3) var<storage, read> prior: array<vec2<f32>>;
// per step: 1 where a stream starts (prefix)
@group(0) @binding(4) var<storage, read> restart: array<u32>;
// per (step, lane): max hi, max lo (bits), first hypothesis holding it (step_max)
@group(0) @binding(5) var<storage, read_write> lane_max: array<vec4<u32>>;
// per step: max_h L (hi, lo bits) and the first hypothesis holding it
// (merge_max writes it, relative reads it)
@group(0) @binding(6) var<storage, read_write> step_best: array<vec4<u32>>;
// [0]: number of candidates found (relative)
@group(0) @binding(7) var<storage, read_write> found: array<atomic<u32>>;
// candidates: step, hypothesis, l hi bits, l lo bits (relative)
@group(0) @binding(8) var<storage, read_write> candidates: array<vec4<u32>>;
// per (step, run of RUN hypotheses): the largest l (hi) (relative)
@group(0) @binding(9) var<storage, read_write> run_max: array<f32>;

fn flat_id(gid: vec3<u32>, nwg: vec3<u32>) -> u32 {
    return gid.x + gid.y * nwg.x * 256u;
}

// Steps whose log-likelihoods `prefix` loads before it adds any of them.
const PREFIX_UNROLL: u32 = 8u;

// One thread per hypothesis walks the chunk's steps in order, as the twin.
// The walk is a chain of dependent adds, so the loads of PREFIX_UNROLL steps
// are issued together first: one memory latency per group of steps instead
// of one per step (the kernel was latency-bound at H ~ 10^5).
@compute @workgroup_size(256)
fn prefix(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.zero;
    let h = flat_id(gid, nwg);
    if (h >= u.h_count) {
        return;
    }
    var c = carry[h];
    let p = prior[h];
    var t = 0u;
    var ll: array<vec2<f32>, PREFIX_UNROLL>;
    loop {
        let n = min(PREFIX_UNROLL, u.n_steps - t);
        if (n == 0u) {
            break;
        }
        for (var k = 0u; k < PREFIX_UNROLL; k = k + 1u) {
            if (k < n) {
                ll[k] = post[(t + k) * u.h_count + h];
            }
        }
        for (var k = 0u; k < PREFIX_UNROLL; k = k + 1u) {
            if (k < n) {
                if (restart[t + k] != 0u) {
                    c = p;
                }
                post[(t + k) * u.h_count + h] = c;
                if (c.x > LOG_ZERO) {
                    c = df_add(c, ll[k]);
                }
            }
        }
        t = t + n;
    }
    carry[h] = c;
}

// (hi, lo) > (hi', lo'): double-f32 values are normalised, so the order of
// the pairs is the order of the values.
fn df_greater(a: vec2<f32>, b: vec2<f32>) -> bool {
    return a.x > b.x || (a.x == b.x && a.y > b.y);
}

// One thread per (step, lane): the lane's hypotheses are lane, lane + lanes,
// ... so neighbouring threads read neighbouring memory. The host merges the
// `lanes` results of a step (ties -> lower hypothesis).
@compute @workgroup_size(256)
fn step_max(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.zero;
    let i = flat_id(gid, nwg);
    if (i >= u.n_steps * u.lanes) {
        return;
    }
    let t = i / u.lanes;
    let lane = i - t * u.lanes;
    var best = vec2<f32>(NEG_HUGE, 0.0);
    var arg = 0xffffffffu;
    let base = t * u.h_count;
    for (var h = lane; h < u.h_count; h = h + u.lanes) {
        let v = post[base + h];
        if (arg == 0xffffffffu || df_greater(v, best)) {
            best = v;
            arg = h;
        }
    }
    lane_max[i] = vec4<u32>(bitcast<u32>(best.x), bitcast<u32>(best.y), arg, 0u);
}

// (value hi bits, lo bits, hypothesis) of the larger of two lane maxima,
// the lower hypothesis on ties (the host's StepMax::merge); a hypothesis of
// 0xffffffff marks an empty lane.
fn max_of(a: vec4<u32>, b: vec4<u32>) -> vec4<u32> {
    if (b.z == 0xffffffffu) {
        return a;
    }
    if (a.z == 0xffffffffu) {
        return b;
    }
    let va = vec2<f32>(bitcast<f32>(a.x), bitcast<f32>(a.y));
    let vb = vec2<f32>(bitcast<f32>(b.x), bitcast<f32>(b.y));
    if (df_greater(vb, va) || (vb.x == va.x && vb.y == va.y && b.z < a.z)) {
        return b;
    }
    return a;
}

var<workgroup> lane_best: array<vec4<u32>, 256>;

// One workgroup per step: its threads merge the lanes' maxima in a tree (the
// merge is associative: larger value, then lower hypothesis), so that one
// record per step crosses. A thread per step walking thousands of lanes
// took a millisecond per batch at H = 10^6.
@compute @workgroup_size(256)
fn merge_max(@builtin(local_invocation_id) lid: vec3<u32>, @builtin(workgroup_id) wid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.zero;
    let t = wid.x + wid.y * nwg.x;
    // uniform per workgroup: whole workgroups return, barriers stay uniform
    if (t >= u.n_steps) {
        return;
    }
    var best = vec4<u32>(0u, 0u, 0xffffffffu, 0u);
    for (var j = lid.x; j < u.lanes; j = j + 256u) {
        best = max_of(best, lane_max[t * u.lanes + j]);
    }
    lane_best[lid.x] = best;
    for (var s = 128u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid.x < s) {
            lane_best[lid.x] = max_of(lane_best[lid.x], lane_best[lid.x + s]);
        }
    }
    if (lid.x == 0u) {
        let b = lane_best[0];
        var out = b;
        if (b.z == 0xffffffffu) {
            out = vec4<u32>(bitcast<u32>(NEG_HUGE), 0u, 0xffffffffu, 0u);
        }
        step_best[t] = vec4<u32>(out.x, out.y, out.z, 0u);
    }
}

var<workgroup> run_top: array<f32, 256>;

// max_h L of step t (merge_max's record)
fn step_max_of(t: u32) -> vec2<f32> {
    let mb = step_best[t];
    return vec2<f32>(bitcast<f32>(mb.x), bitcast<f32>(mb.y));
}

// l = L - max for (step t, hypothesis h), in place; appends it to the
// plausible-set candidates when it can be in a set. Returns l (hi).
fn relative_at(t: u32, h: u32, m: vec2<f32>) -> f32 {
    let k = t * u.h_count + h;
    let v = post[k];
    var l = vec2<f32>(NEG_HUGE, 0.0);
    if (v.x > LOG_ZERO) {
        l = df_add(v, -m);
    }
    post[k] = l;
    if (l.x >= u.cut) {
        let slot = atomicAdd(&found[0], 1u);
        if (slot < u.capacity) {
            candidates[slot] = vec4<u32>(t, h, bitcast<u32>(l.x), bitcast<u32>(l.y));
        }
    }
    return l.x;
}

// One thread per (step, hypothesis), the steps padded to whole runs of RUN
// so a workgroup holds whole runs: l = L - max, the largest l of each run
// (reduce.wgsl passes over runs of negligible weight without reading them),
// and the hypotheses that can be in a plausible set are appended to
// `candidates` (in no order).
@compute @workgroup_size(256)
fn relative(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(local_invocation_id) lid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.zero;
    let i = flat_id(gid, nwg);
    let n_runs = (u.h_count + RUN - 1u) / RUN;
    let padded = n_runs * RUN;
    let t = i / padded;
    let h = i - t * padded;
    let live = t < u.n_steps && h < u.h_count;
    var top = NEG_HUGE;
    if (live) {
        top = relative_at(t, h, step_max_of(t));
    }
    // every thread reaches the barriers (no early return above)
    run_top[lid.x] = top;
    for (var s = RUN / 2u; s > 0u; s = s >> 1u) {
        workgroupBarrier();
        if (lid.x % RUN < s) {
            run_top[lid.x] = max(run_top[lid.x], run_top[lid.x + s]);
        }
    }
    if (lid.x % RUN == 0u && t < u.n_steps) {
        run_max[t * n_runs + h / RUN] = run_top[lid.x];
    }
}

// merge_max for software renderers (lavapipe, llvmpipe), which run
// barriers slowly: one thread per step walks its lanes.
@compute @workgroup_size(256)
fn merge_max_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.zero;
    let t = flat_id(gid, nwg);
    if (t >= u.n_steps) {
        return;
    }
    var best = vec2<f32>(NEG_HUGE, 0.0);
    var arg = 0xffffffffu;
    for (var j = 0u; j < u.lanes; j = j + 1u) {
        let r = lane_max[t * u.lanes + j];
        let v = vec2<f32>(bitcast<f32>(r.x), bitcast<f32>(r.y));
        if (r.z != 0xffffffffu
            && (arg == 0xffffffffu || df_greater(v, best) || (v.x == best.x && v.y == best.y && r.z < arg))) {
            best = v;
            arg = r.z;
        }
    }
    step_best[t] = vec4<u32>(bitcast<u32>(best.x), bitcast<u32>(best.y), arg, 0u);
}

// relative for software renderers: one thread per (step, run of RUN
// hypotheses) walks the run, no barriers.
@compute @workgroup_size(256)
fn relative_serial(@builtin(global_invocation_id) gid: vec3<u32>, @builtin(num_workgroups) nwg: vec3<u32>) {
    opaque_bits = u.zero;
    let i = flat_id(gid, nwg);
    let n_runs = (u.h_count + RUN - 1u) / RUN;
    if (i >= u.n_steps * n_runs) {
        return;
    }
    let t = i / n_runs;
    let r = i - t * n_runs;
    let m = step_max_of(t);
    var top = NEG_HUGE;
    let h_end = min(r * RUN + RUN, u.h_count);
    for (var h = r * RUN; h < h_end; h = h + 1u) {
        top = max(top, relative_at(t, h, m));
    }
    run_max[i] = top;
}

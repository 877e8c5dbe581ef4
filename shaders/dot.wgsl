// dot.wgsl: w_h . x_a as a double-f32, composed after common.wgsl into
// harm.wgsl, loglik.wgsl and reduce.wgsl (which declare `params`,
// `features` and `u`).
// CPU twin: model::hypotheses::HypothesisSpace::dot_all (f64).
//
// Grid hypotheses are decoded from their index (first coordinate most
// significant, i = sum_j w_j k^(d-1-j)); list hypotheses read `params`
// (hi, lo pairs, row-major, rows from `u.params_h0`). With `exact` set the
// host has checked that every product and partial sum is an integer below
// 2^24, so plain f32 arithmetic is exact and the double-f32 path is skipped.
// Grid digits are peeled off without integer division (software renderers
// have none for vectors): see next_digit. The walk helpers at the end step
// w.x from one grid hypothesis to the next (reduce.wgsl).

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
// it): dot_wx costs a pass of the other kind's loop (callers that know the
// kind call dot_grid or dot_list), and the exact and double-f32 paths share
// the digits and the loads.
fn dot_wx(h: u32, feat_base: u32) -> vec2<f32> {
    if (u.model.grid_k > 0u) {
        return dot_grid(h, feat_base);
    }
    return dot_list(h, feat_base);
}

fn dot_grid(h: u32, feat_base: u32) -> vec2<f32> {
    let m = u.model;
    var acc = vec2<f32>(0.0, 0.0);
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
    return acc;
}

fn dot_list(h: u32, feat_base: u32) -> vec2<f32> {
    let m = u.model;
    var acc = vec2<f32>(0.0, 0.0);
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
    return acc;
}

// ---- walks: w.x of consecutive grid hypotheses ----
//
// A reduction thread visits hypotheses h, h+1, h+2, ... of a grid, and from
// h to h+1 only the trailing digits change: if the last s digits are k-1
// (they wrap to 0, the carries) and digit p = d-1-s is incremented, w.x
// changes by x_p - (k-1) sum_{j>p} x_j. `walk_deltas` holds that change for
// each s < WALK_DIGITS, and a segment of a walk (`walk_start`) ends before
// the step that would carry further: with k = 2 an aligned run of 32
// hypotheses is one segment; with k = 3 about one run in eight has two. A
// step (`walk_step`) is branch-free: the digits select the change and one
// double-f32 add applies it; every lane that walks the same hypotheses
// (neighbouring candidates) does the same. Each step rounds, by about 2^-48
// of its operands' magnitude (far below the f32 q's rounding), so a segment
// starts from dot_grid and is at most a run (32 steps) long. With
// `exact` every change and every w.x is an integer below 2^24 in magnitude
// (the host's bound is on sum_j (k-1) |x_j|), and the steps are exact.
//
// Software renderers (llvmpipe) also stop a shader after 65535 loop
// iterations in all (Mesa's LP_MAX_TGSI_LOOP_ITERATIONS), counting a masked
// pass: a walk costs dot_grid's loop passes per segment, not per
// hypothesis.

const WALK_DIGITS: u32 = 5u;

struct WalkDeltas {
    // w_{h+1}.x - w_h.x where h ends in exactly s digits k-1, for s = 0..4
    // (unused where s >= d: no step carries out of the first digit)
    d0: vec2<f32>,
    d1: vec2<f32>,
    d2: vec2<f32>,
    d3: vec2<f32>,
    d4: vec2<f32>,
    // k^min(WALK_DIGITS, d): a segment ends at a multiple of it
    period: u32,
}

// One walker's position: w.x of the current hypothesis and its last four
// digits (x: the last). The fifth is never needed: a segment ends before a
// step could carry out of it.
struct Walk {
    wx: vec2<f32>,
    digits: vec4<u32>,
}

// The changes for the candidate whose features start at feat_base.
fn walk_deltas(feat_base: u32) -> WalkDeltas {
    let m = u.model;
    let km1 = vec2<f32>(f32(m.grid_k - 1u), 0.0);
    var d: array<vec2<f32>, WALK_DIGITS>;
    // sum of the features after digit p = d-1-s
    var tail = vec2<f32>(0.0, 0.0);
    var period = 1u;
    for (var s = 0u; s < WALK_DIGITS; s = s + 1u) {
        let valid = s < m.dim;
        let x = select(vec2<f32>(0.0, 0.0), features[feat_base + select(0u, m.dim - 1u - s, valid)], valid);
        d[s] = df_add(x, -df_mul(km1, tail));
        tail = df_add(tail, x);
        period = select(period, period * m.grid_k, valid);
    }
    return WalkDeltas(d[0], d[1], d[2], d[3], d[4], period);
}

// A walk from hypothesis h, and the number of hypotheses in its segment
// (h, h+1, ..., up to the next multiple of `period`, excluded).
struct WalkStart {
    walk: Walk,
    len: u32,
}

// wx: w_h.x, from dot_grid.
fn walk_start(h: u32, wx: vec2<f32>, period: u32) -> WalkStart {
    let m = u.model;
    var rest = h;
    var c: array<u32, WALK_DIGITS>;
    for (var s = 0u; s < WALK_DIGITS; s = s + 1u) {
        let qr = next_digit(rest);
        // the first coordinate is what the others leave (k may be large)
        let first = s + 1u == m.dim;
        c[s] = select(qr.y, rest, first);
        rest = select(qr.x, 0u, first);
    }
    // h mod period (digits past the first are 0: no overflow)
    var r = 0u;
    for (var s = 0u; s < WALK_DIGITS; s = s + 1u) {
        r = r * m.grid_k + c[WALK_DIGITS - 1u - s];
    }
    let w = Walk(wx, vec4<u32>(c[0], c[1], c[2], c[3]));
    return WalkStart(w, period - r);
}

// The walk one hypothesis on, within its segment.
fn walk_step(w: Walk, wd: WalkDeltas) -> Walk {
    // carry out of digit i: digits 0..i are all k-1
    let e = w.digits == vec4<u32>(u.model.grid_k - 1u);
    let c0 = e.x;
    let c1 = c0 && e.y;
    let c2 = c1 && e.z;
    let c3 = c2 && e.w;
    var delta = select(wd.d0, wd.d1, c0);
    delta = select(delta, wd.d2, c1);
    delta = select(delta, wd.d3, c2);
    delta = select(delta, wd.d4, c3);
    // the digit the carry stops at is incremented, those below it wrap
    let reached = vec4<bool>(true, c0, c1, c2);
    let wraps = vec4<bool>(c0, c1, c2, c3);
    let digits = select(w.digits, select(w.digits + vec4<u32>(1u), vec4<u32>(0u), wraps), reached);
    return Walk(df_add(w.wx, delta), digits);
}

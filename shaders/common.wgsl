// common.wgsl: prepended to every kernel (see `src/engine/gpu/mod.rs`, `compose`).
//
// CPU twins (keep in step; same formulas, same precision):
//   erfc_f32    <-> model::normal_tail::erfc_f32
//   upper_tail  <-> model::normal_tail::upper_tail_f32
//   harm        <-> model::observation::ObservationModel::harm_f32_split
//
// Double-f32 helpers ("df": a value hi + lo with |lo| <= ulp(hi)/2) carry the
// sums where f32 alone would lose digits: w.x, theta - w.x, and the Gaussian
// log-likelihood. They use only + - * (Dekker's split, no fma), so they stay
// exact on backends that implement fma as mul + add. Shader compilers treat
// float arithmetic as associative (lavapipe/llvmpipe turn (a + b) - a into b,
// which zeroes every error term), so intermediate results pass through
// `opaque`: an XOR with a zero the compiler cannot see (each kernel's main
// loads it from its uniforms into `opaque_bits` first).

const F32_MIN_NORMAL: f32 = 1.17549435e-38;
// Stands for -infinity (WGSL has no portable infinities).
const NEG_HUGE: f32 = -3.0e38;
const MODEL_GAUSSIAN: u32 = 0u;
const MODEL_BERNOULLI: u32 = 1u;

// Numerical Recipes' erfcc Chebyshev fit, evaluated as t*exp(-zh^2)*exp(poly - (z-zh)(z+zh)):
// zh has 8 fractional bits, so for z < 16 zh^2 is exact in f32 and the tail
// keeps its relative accuracy.
fn erfc_f32(x: f32) -> f32 {
    let z = abs(x);
    let t = 1.0 / (1.0 + 0.5 * z);
    let poly = -1.2655122 + t * (1.0000237 + t * (0.37409196 + t * (0.09678418
        + t * (-0.18628806 + t * (0.27886807 + t * (-1.13520398 + t * (1.48851587
        + t * (-0.82215223 + t * 0.17087277))))))));
    let zh = floor(z * 256.0) / 256.0;
    let ans = t * exp(-zh * zh) * exp(-(z - zh) * (z + zh) + poly);
    if (x >= 0.0) {
        return ans;
    }
    return 2.0 - ans;
}

// P(Z > z) for a standard normal Z; below the f32 normal range: 0.
fn upper_tail(z: f32) -> f32 {
    let q = 0.5 * erfc_f32(z * 0.70710677);
    if (q < F32_MIN_NORMAL) {
        return 0.0;
    }
    return q;
}

fn sigmoid_f32(x: f32) -> f32 {
    var q: f32;
    if (x >= 0.0) {
        q = 1.0 / (1.0 + exp(-x));
    } else {
        let e = exp(x);
        q = e / (1.0 + e);
    }
    if (q < F32_MIN_NORMAL) {
        return 0.0;
    }
    return q;
}

// ---- double-f32 arithmetic ----

// Zero at run time; set by each kernel's main from its uniforms.
var<private> opaque_bits: u32;

// x, hidden from the optimizer's algebra.
fn opaque(x: f32) -> f32 {
    return bitcast<f32>(bitcast<u32>(x) ^ opaque_bits);
}

fn two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = opaque(a + b);
    let bb = opaque(s - a);
    let e = (a - opaque(s - bb)) + (b - bb);
    return vec2<f32>(s, e);
}

fn quick_two_sum(a: f32, b: f32) -> vec2<f32> {
    let s = opaque(a + b);
    return vec2<f32>(s, b - opaque(s - a));
}

fn split12(a: f32) -> vec2<f32> {
    let c = opaque(4097.0 * a);
    let hi = opaque(c - opaque(c - a));
    return vec2<f32>(hi, a - hi);
}

// a*b exactly as hi + lo (Dekker).
fn two_prod(a: f32, b: f32) -> vec2<f32> {
    let p = opaque(a * b);
    let sa = split12(a);
    let sb = split12(b);
    let e = ((sa.x * sb.x - p) + sa.x * sb.y + sa.y * sb.x) + sa.y * sb.y;
    return vec2<f32>(p, e);
}

fn df_add(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let s = two_sum(a.x, b.x);
    let t = two_sum(a.y, b.y);
    let u = quick_two_sum(s.x, s.y + t.x);
    return quick_two_sum(u.x, u.y + t.y);
}

fn df_mul(a: vec2<f32>, b: vec2<f32>) -> vec2<f32> {
    let p = two_prod(a.x, b.x);
    return quick_two_sum(p.x, p.y + (a.x * b.y + a.y * b.x));
}

// Model constants, shared by every kernel's uniform block (see `ModelUniform`
// in src/engine/gpu/mod.rs).
struct ModelParams {
    // MODEL_GAUSSIAN or MODEL_BERNOULLI
    kind: u32,
    // d
    dim: u32,
    // 0: explicit list (params buffer); k >= 1: grid {0..k-1}^d
    grid_k: u32,
    // 1: w.x is an exact small integer in f32 (see dot.wgsl)
    exact: u32,
    // theta as hi, lo; sigma (f32); unused
    theta_hi: f32,
    theta_lo: f32,
    sigma: f32,
    // 0 (see `opaque`)
    zero: u32,
    // 1/sigma as hi, lo; -ln(sigma) - ln(2 pi)/2 as hi, lo
    inv_sigma_hi: f32,
    inv_sigma_lo: f32,
    ll_const_hi: f32,
    ll_const_lo: f32,
}

// q = P(harm | w.x) from w.x as a double-f32 (hi, lo).
fn harm(m: ModelParams, wx: vec2<f32>) -> f32 {
    if (m.kind == MODEL_GAUSSIAN) {
        let d = df_add(vec2<f32>(m.theta_hi, m.theta_lo), -wx);
        return upper_tail((d.x + d.y) / m.sigma);
    }
    return sigmoid_f32(wx.x + wx.y);
}

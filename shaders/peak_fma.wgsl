// Peak f32 multiply-add throughput (like vkpeak): every thread runs `iters`
// rounds of eight independent vec4 FMA chains (64 FLOP per round) and writes
// the sum of its lanes, so that no round can be left out. CPU twin:
// `bench::peak::fma_twin`.
//
// x ← x·a + b with a = 1/2 and b a small multiple of 1/4 keeps every value
// a short dyadic number: products are exact, so fused and unfused FMA and
// any order of the final adds give the same bits as the twin.

struct FmaParams {
    iters: u32,
    threads: u32,
    a: f32,
    row: u32, // threads per row of the folded 2-D dispatch
}

@group(0) @binding(0) var<uniform> params: FmaParams;
@group(0) @binding(1) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    if (i >= params.threads) {
        return;
    }
    let b = f32(i % 64u) * 0.25 + 1.0;
    let a = vec4<f32>(params.a);
    let c = vec4<f32>(b);
    var x0 = vec4<f32>(b, b + 1.0, b + 2.0, b + 3.0);
    var x1 = x0 + 4.0;
    var x2 = x0 + 8.0;
    var x3 = x0 + 12.0;
    var x4 = x0 + 16.0;
    var x5 = x0 + 20.0;
    var x6 = x0 + 24.0;
    var x7 = x0 + 28.0;
    for (var k = 0u; k < params.iters; k++) {
        x0 = fma(x0, a, c);
        x1 = fma(x1, a, c);
        x2 = fma(x2, a, c);
        x3 = fma(x3, a, c);
        x4 = fma(x4, a, c);
        x5 = fma(x5, a, c);
        x6 = fma(x6, a, c);
        x7 = fma(x7, a, c);
    }
    let s = ((x0 + x1) + (x2 + x3)) + ((x4 + x5) + (x6 + x7));
    out[i] = (s.x + s.y) + (s.z + s.w);
}

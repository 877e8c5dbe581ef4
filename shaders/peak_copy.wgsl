// Peak memory bandwidth (like STREAM's "scale"): dst[i] = s·src[i] over
// buffers far larger than any cache; each element is read once and written
// once. CPU twin: `bench::peak::scale_twin`.

struct CopyParams {
    n: u32,   // vec4 elements
    row: u32, // threads per row of the folded 2-D dispatch
    s: f32,
    pad: u32,
}

@group(0) @binding(0) var<uniform> params: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<f32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<f32>>;

@compute @workgroup_size(256)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let i = gid.x + gid.y * params.row;
    if (i >= params.n) {
        return;
    }
    dst[i] = params.s * src[i];
}

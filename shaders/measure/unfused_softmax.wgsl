// The unfused baseline of the benchmarks, as PyTorch computes gumbel_softmax: the noise is
// already in memory (written by the noise kernel) and this kernel reads it back beside the
// logits for a temperature softmax, one invocation per row. f32 only; not part of the library.

struct UnfusedParams {
    rows: u32,
    cols: u32,
    tau: f32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: UnfusedParams;
@group(0) @binding(1) var<storage, read> logits: array<f32>;
@group(0) @binding(2) var<storage, read> noise: array<f32>;
@group(0) @binding(3) var<storage, read_write> out: array<f32>;

@compute @workgroup_size(64)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if row >= params.rows {
        return;
    }
    let start = row * params.cols;
    var m = -3.0e38;
    var s = 0.0;
    for (var k = 0u; k < params.cols; k++) {
        let v = (logits[start + k] + noise[start + k]) / params.tau;
        let hi = max(m, v);
        s = s * exp(m - hi) + exp(v - hi);
        m = hi;
    }
    for (var k = 0u; k < params.cols; k++) {
        let v = (logits[start + k] + noise[start + k]) / params.tau;
        out[start + k] = exp(v - m) / s;
    }
}

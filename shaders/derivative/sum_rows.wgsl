// One level of a deterministic sum: workgroup w adds the CHUNK values from w * CHUNK, each
// invocation a fixed strided set, then a fixed tree. The same inputs give the same bits on
// every run and every device, which atomics could not promise.
#import workgroup_sum

struct SumParams {
    count: u32,
    in_base: u32,
    out_base: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: SumParams;
@group(0) @binding(1) var<storage, read> values: array<f32>;
@group(0) @binding(2) var<storage, read_write> sums: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;
const PER_INVOCATION: u32 = 64u;
const CHUNK: u32 = WORKGROUP_SIZE * PER_INVOCATION;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let start = wid.x * CHUNK;
    var s = 0.0;
    for (var j = 0u; j < PER_INVOCATION; j++) {
        let i = start + j * WORKGROUP_SIZE + lid;
        if i < params.count {
            s += values[params.in_base + i];
        }
    }
    let total = workgroup_sum(lid, s);
    if lid == 0u {
        sums[params.out_base + wid.x] = total;
    }
}

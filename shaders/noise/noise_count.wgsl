// Counts the elements of the noise stream, flat indices offset .. offset + count (of the
// counter's stream, with counter_used), whose Gumbel noise exceeds a threshold, and adds the
// count to the caller's u32 at total[out_base] (the binding starts at an aligned offset below
// it): checks of the tails that need far more draws than a buffer holds make them here and
// never store them. The first noise block may start up to three elements before `offset`.
#import philox
#import gumbel
#import noise_start

struct CountParams {
    seed: vec2<u32>,
    offset: vec2<u32>,
    count: u32,
    threshold: f32,
    out_base: u32,   // element index of the count in `total`
    counter_used: u32,
}

@group(0) @binding(0) var<storage, read> params: CountParams;
@group(0) @binding(1) var<storage, read_write> total: array<atomic<u32>>;
@group(0) @binding(2) var<storage, read> counter: array<u32>;

const WORKGROUP_SIZE: u32 = 256u;
const BLOCKS_PER_INVOCATION: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let start = noise_start(params.seed, params.offset, params.counter_used);
    let lead = start.offset.x & 3u;
    let block0 = shr64_2(start.offset);
    let first = gid.x * BLOCKS_PER_INVOCATION;
    var n = 0u;
    for (var i = 0u; i < BLOCKS_PER_INVOCATION; i++) {
        let j = first + i;
        if 4u * j >= lead + params.count {
            break;
        }
        let g = gumbel_block(start.seed, add64_u32(block0, j));
        let above = g > vec4<f32>(params.threshold);
        // Position t = 4j + lane is element t - lead of the count.
        let t = vec4<u32>(4u * j) + vec4<u32>(0u, 1u, 2u, 3u);
        let inside = (t >= vec4<u32>(lead)) & (t < vec4<u32>(lead + params.count));
        n += dot(vec4<u32>(above & inside), vec4<u32>(1u));
    }
    if n > 0u {
        atomicAdd(&total[params.out_base], n);
    }
}

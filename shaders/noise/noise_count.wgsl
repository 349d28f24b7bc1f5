// Counts the elements of the noise stream, flat indices offset .. offset + 4 * blocks (offset a
// multiple of 4), whose Gumbel noise exceeds a threshold, and adds the count to the caller's
// u32 at total[out_base] (the binding starts at an aligned offset below it):
// checks of the tails that need far more draws than a buffer holds make them here and never
// store them.
#import philox
#import gumbel

struct CountParams {
    seed: vec2<u32>,
    offset: vec2<u32>,
    blocks: u32,
    threshold: f32,
    out_base: u32,   // element index of the count in `total`
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: CountParams;
@group(0) @binding(1) var<storage, read_write> total: array<atomic<u32>>;

const WORKGROUP_SIZE: u32 = 256u;
const BLOCKS_PER_INVOCATION: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let first = gid.x * BLOCKS_PER_INVOCATION;
    let block0 = shr64_2(params.offset);
    var n = 0u;
    for (var i = 0u; i < BLOCKS_PER_INVOCATION; i++) {
        let j = first + i;
        if j >= params.blocks {
            break;
        }
        let g = gumbel_block(params.seed, add64_u32(block0, j));
        n += u32(g.x > params.threshold) + u32(g.y > params.threshold)
            + u32(g.z > params.threshold) + u32(g.w > params.threshold);
    }
    if n > 0u {
        atomicAdd(&total[params.out_base], n);
    }
}

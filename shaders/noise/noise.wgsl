// Fills `out` with `count` consecutive elements of the noise stream, starting at flat index
// `offset` (of the counter's stream, with counter_used): the raw Philox words, or the Gumbel
// noise made from them, one word or two an element by NOISE_RANGE (docs/contract.md,
// section 2). One invocation per noise block of four outputs; the first block may start up to
// three elements before the stream's start, so the host dispatches one block more than it
// would need from a block's start.
#import philox
#import gumbel
#import noise_start

struct NoiseParams {
    seed: vec2<u32>,
    offset: vec2<u32>,
    count: u32,
    out_base: u32,   // element index of the first output in `out`
    counter_used: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: NoiseParams;
@group(0) @binding(1) var<storage, read_write> out: array<u32>;
@group(0) @binding(2) var<storage, read> counter: array<u32>;

const OUTPUT_WORDS: u32 = 0u;
const OUTPUT_GUMBEL: u32 = 1u;
override OUTPUT: u32 = OUTPUT_GUMBEL;
const WORKGROUP_SIZE: u32 = 256u;

fn emit(t: u32, lead: u32, value: u32) {
    let i = t - lead;
    if t >= lead && i < params.count {
        out[params.out_base + i] = value;
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let j = gid.x;
    let start = noise_start(params.seed, params.offset, params.counter_used);
    let lead = start.offset.x & 3u;
    if 4u * j >= lead + params.count {
        return;
    }
    let block = add64_u32(shr64_2(start.offset), j);
    var values: vec4<u32>;
    if OUTPUT == OUTPUT_WORDS {
        values = noise_block(start.seed, block);
    } else {
        values = bitcast<vec4<u32>>(gumbel_block(start.seed, block));
    }
    emit(4u * j, lead, values.x);
    emit(4u * j + 1u, lead, values.y);
    emit(4u * j + 2u, lead, values.z);
    emit(4u * j + 3u, lead, values.w);
}

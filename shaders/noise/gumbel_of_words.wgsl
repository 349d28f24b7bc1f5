// Maps caller-supplied 32-bit words to Gumbel noise with the library's mapping: lets a caller
// (and the tests) check the tails at chosen words, such as 0 and 2^32 - 1. With
// NOISE_RANGE_WIDE each output takes two words, low then high.
#import gumbel

struct MapParams {
    count: u32,
    words_base: u32,
    out_base: u32,
    _pad: u32,
}

@group(0) @binding(0) var<storage, read> params: MapParams;
@group(0) @binding(1) var<storage, read> words: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<f32>;

const WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    if gid.x < params.count {
        if NOISE_RANGE == NOISE_RANGE_WIDE {
            let at = params.words_base + 2u * gid.x;
            out[params.out_base + gid.x] = gumbel_of_pair(words[at], words[at + 1u]);
        } else {
            out[params.out_base + gid.x] = gumbel_of_word(words[params.words_base + gid.x]);
        }
    }
}

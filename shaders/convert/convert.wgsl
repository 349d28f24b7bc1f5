// Converts between f32 and a storage type with the samplers' own conversions (storage_*), four
// elements an invocation: ENCODE reads f32 words and writes the storage type, DECODE the
// reverse.
#import storage

struct ConvertParams {
    count: u32,      // elements
    in_base: u32,    // element index of the first input element
    out_base: u32,   // element index of the first output element
    _pad: u32,
}

const DIRECTION_ENCODE: u32 = 0u;
const DIRECTION_DECODE: u32 = 1u;
override DIRECTION: u32 = DIRECTION_ENCODE;

@group(0) @binding(0) var<storage, read> params: ConvertParams;
@group(0) @binding(1) var<storage, read> input: array<u32>;
@group(0) @binding(2) var<storage, read_write> out: array<OutWord>;

const WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let k = 4u * gid.x;
    if k >= params.count {
        return;
    }
    let live = vec4<bool>(true, k + 1u < params.count, k + 2u < params.count, k + 3u < params.count);
    if DIRECTION == DIRECTION_ENCODE {
        let i = params.in_base + k;
        let v = bitcast<vec4<f32>>(vec4<u32>(input[i], input[i + 1u], input[i + 2u], input[i + 3u]));
        store_run4(params.out_base + k, v, live);
    } else {
        let i0 = params.in_base + k;
        let at = first_word4(i0);
        var w = vec4<u32>(input[at], input[at + 1u], input[at + 2u], 0u);
        if WORDS4 == 4u {
            w.w = input[at + 3u];
        }
        let b = bitcast<vec4<u32>>(decode4(w, i0));
        let o = params.out_base + k;
        store_word(o, b.x);
        if live.y { store_word(o + 1u, b.y); }
        if live.z { store_word(o + 2u, b.z); }
        if live.w { store_word(o + 3u, b.w); }
    }
}

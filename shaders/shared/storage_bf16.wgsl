// Storage type bfloat16: the high half of an f32.
#import storage_16bit

// The two elements of a word, low half first.
fn decode_pair(w: u32) -> vec2<f32> {
    return vec2<f32>(bitcast<f32>(w << 16u), bitcast<f32>(w & 0xffff0000u));
}

// Round to nearest, ties to even; NaN stays NaN.
fn encode16(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u {
        return (b >> 16u) | 0x0040u;
    }
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

fn encode_pair(lo: f32, hi: f32) -> u32 {
    return encode16(lo) | (encode16(hi) << 16u);
}

// Storage type bfloat16: the high half of an f32.
#import storage_16bit

fn decode16(h: u32) -> f32 {
    return bitcast<f32>(h << 16u);
}

// Round to nearest, ties to even; NaN stays NaN.
fn encode16(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    if (b & 0x7fffffffu) > 0x7f800000u {
        return (b >> 16u) | 0x0040u;
    }
    return (b + 0x7fffu + ((b >> 16u) & 1u)) >> 16u;
}

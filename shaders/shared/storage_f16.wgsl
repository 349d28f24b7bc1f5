// Storage type f16 (IEEE binary16) without the SHADER_F16 feature: WGSL's unpack2x16float and
// pack2x16float convert two elements a word. pack2x16float is not defined for values that
// overflow f16 or for NaN, so those words are converted by hand, as are lone halves;
// tests/convert.rs holds both to the CPU's conversion bit for bit on every f16 and at every
// rounding boundary.
#import storage_16bit

// The two elements of a word, low half first (exact: every f16 is an f32).
fn decode_pair(w: u32) -> vec2<f32> {
    return unpack2x16float(w);
}

// Round to nearest, ties to even; overflow gives infinity, NaN stays NaN.
fn encode16(v: f32) -> u32 {
    let b = bitcast<u32>(v);
    let sign = (b >> 16u) & 0x8000u;
    let a = b & 0x7fffffffu;
    if a > 0x7f800000u {
        return sign | 0x7e00u;
    }
    if a >= 0x477ff000u {
        return sign | 0x7c00u;
    }
    if a >= 0x38800000u {
        return sign | ((a + 0xfffu + ((a >> 13u) & 1u) - 0x38000000u) >> 13u);
    }
    // Subnormal range: the f16 is round(|v| * 2^24); WGSL's round() ties to even.
    return sign | u32(round(bitcast<f32>(a) * 16777216.0));
}

// |v| from 65520 on rounds to infinity in f16 (and NaN has bits above).
const F16_OVERFLOW_BITS: u32 = 0x477ff000u;

fn encode_pair(lo: f32, hi: f32) -> u32 {
    let widest = max(bitcast<u32>(lo) & 0x7fffffffu, bitcast<u32>(hi) & 0x7fffffffu);
    if widest >= F16_OVERFLOW_BITS {
        return encode16(lo) | (encode16(hi) << 16u);
    }
    return pack2x16float(vec2<f32>(lo, hi));
}

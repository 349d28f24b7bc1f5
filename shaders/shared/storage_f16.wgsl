// Storage type f16 (IEEE binary16), converted by hand so that no SHADER_F16 feature is needed and
// every bit pattern (subnormals, -inf masks, NaN) converts exactly as on the CPU.
#import storage_16bit

fn decode16(h: u32) -> f32 {
    let sign = (h & 0x8000u) << 16u;
    let exponent = (h >> 10u) & 0x1fu;
    let mantissa = h & 0x3ffu;
    if exponent == 0x1fu {
        return bitcast<f32>(sign | 0x7f800000u | (mantissa << 13u));
    }
    if exponent == 0u {
        return bitcast<f32>(sign | bitcast<u32>(f32(mantissa) * 5.9604644775390625e-8));
    }
    return bitcast<f32>(sign | ((exponent + 112u) << 23u) | (mantissa << 13u));
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

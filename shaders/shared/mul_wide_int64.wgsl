// mul_wide on devices with the SHADER_INT64 feature: one native 64-bit product (Philox's cost
// is mostly these multiplies; lavapipe and NVIDIA both have 32x32->64 instructions).

fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let p = u64(a) * u64(b);
    return vec2<u32>(u32(p), u32(p >> 32u));
}

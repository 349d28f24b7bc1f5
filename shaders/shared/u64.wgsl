// 64-bit unsigned integers as vec2<u32>(low word, high word): WGSL core has no u64.

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn add64_u32(a: vec2<u32>, b: u32) -> vec2<u32> {
    return add64(a, vec2<u32>(b, 0u));
}

// The full 64-bit product of two u32, built from 16-bit halves since WGSL has no multiply-high.
fn mul_wide(a: u32, b: u32) -> vec2<u32> {
    let a_lo = a & 0xffffu;
    let a_hi = a >> 16u;
    let b_lo = b & 0xffffu;
    let b_hi = b >> 16u;
    let lh = a_lo * b_hi;
    let hl = a_hi * b_lo;
    let mid = ((a_lo * b_lo) >> 16u) + (lh & 0xffffu) + (hl & 0xffffu);
    let hi = a_hi * b_hi + (lh >> 16u) + (hl >> 16u) + (mid >> 16u);
    return vec2<u32>(a * b, hi);
}

fn shr64_2(a: vec2<u32>) -> vec2<u32> {
    return vec2<u32>((a.x >> 2u) | (a.y << 30u), a.y >> 2u);
}

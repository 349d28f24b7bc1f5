// 64-bit unsigned integers as vec2<u32>(low word, high word): WGSL core has no u64.

fn add64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    let lo = a.x + b.x;
    return vec2<u32>(lo, a.y + b.y + select(0u, 1u, lo < a.x));
}

fn add64_u32(a: vec2<u32>, b: u32) -> vec2<u32> {
    return add64(a, vec2<u32>(b, 0u));
}

fn shl64_1(a: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x << 1u, (a.y << 1u) | (a.x >> 31u));
}

fn shr64_2(a: vec2<u32>) -> vec2<u32> {
    return vec2<u32>((a.x >> 2u) | (a.y << 30u), a.y >> 2u);
}

fn sub64(a: vec2<u32>, b: vec2<u32>) -> vec2<u32> {
    return vec2<u32>(a.x - b.x, a.y - b.y - select(0u, 1u, a.x < b.x));
}

fn ge64(a: vec2<u32>, b: vec2<u32>) -> bool {
    return a.y > b.y || (a.y == b.y && a.x >= b.x);
}

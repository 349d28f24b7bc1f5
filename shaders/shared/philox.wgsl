// Philox4x32-10 (Salmon et al., SC11), as in Random123. The ten rounds are written out rather
// than looped: lavapipe counts every loop iteration of an invocation against one small budget.
#import u64
#import mul_wide

const PHILOX_M0: u32 = 0xD2511F53u;
const PHILOX_M1: u32 = 0xCD9E8D57u;
const PHILOX_W0: u32 = 0x9E3779B9u;
const PHILOX_W1: u32 = 0xBB67AE85u;

fn philox_round(c: vec4<u32>, k: vec2<u32>) -> vec4<u32> {
    let p0 = mul_wide(PHILOX_M0, c.x);
    let p1 = mul_wide(PHILOX_M1, c.z);
    return vec4<u32>(p1.y ^ c.y ^ k.x, p1.x, p0.y ^ c.w ^ k.y, p0.x);
}

fn philox4x32_10(counter: vec4<u32>, key: vec2<u32>) -> vec4<u32> {
    let w = vec2<u32>(PHILOX_W0, PHILOX_W1);
    var c = philox_round(counter, key);
    c = philox_round(c, key + w);
    c = philox_round(c, key + 2u * w);
    c = philox_round(c, key + 3u * w);
    c = philox_round(c, key + 4u * w);
    c = philox_round(c, key + 5u * w);
    c = philox_round(c, key + 6u * w);
    c = philox_round(c, key + 7u * w);
    c = philox_round(c, key + 8u * w);
    return philox_round(c, key + 9u * w);
}

// The four words of noise block `block` (flat elements 4*block .. 4*block+3) under `seed`.
// Flat indices wrap at 2^64, so block numbers wrap at 2^62: a row that runs past the wrap
// continues at block 0, as the CPU stream does.
fn noise_block(seed: vec2<u32>, block: vec2<u32>) -> vec4<u32> {
    return philox4x32_10(vec4<u32>(block.x, block.y & 0x3fffffffu, 0u, 0u), seed);
}

// The lane cache in workgroup memory, for workgroups of CACHE_INVOCATIONS invocations that
// each walk a row of their own (no invocation touches another's slots, so no barriers): rows
// of up to 256 blocks (1,021 elements whatever their lead, 1,024 when it is 0), in lavapipe's
// 32 KiB. Meant for CPU drivers, whose workgroup memory stays in the CPU's caches.
#import row_cache

const CACHE_INVOCATIONS: u32 = 8u;
const CACHED_BLOCKS: u32 = 256u;
// 32 KiB of vec4s (Strategy::CACHED_WORKGROUP_BYTES in Rust is computed from the two above).
var<workgroup> cache: array<vec4<f32>, CACHED_BLOCKS * CACHE_INVOCATIONS>;

fn cache_load(slot: u32) -> vec4<f32> {
    return cache[slot * CACHE_INVOCATIONS + cache_lane];
}

fn cache_store(slot: u32, v: vec4<f32>) {
    cache[slot * CACHE_INVOCATIONS + cache_lane] = v;
}

// The lane cache in private memory (registers on a GPU): rows of up to 64 elements (17 blocks,
// whatever their lead). Much larger private arrays are no option on lavapipe: a 257-block one
// took 12 s to compile per pipeline.
#import row_cache

const CACHED_BLOCKS: u32 = 17u;
var<private> cache: array<vec4<f32>, CACHED_BLOCKS>;

fn cache_load(slot: u32) -> vec4<f32> {
    return cache[slot];
}

fn cache_store(slot: u32, v: vec4<f32>) {
    cache[slot] = v;
}

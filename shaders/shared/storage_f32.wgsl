// Storage type f32: one element per u32 word. Kernels declare `out: array<OutWord>`.

alias OutWord = u32;

// The words that hold the four elements from element i0 on: the first, and how many.
fn first_word4(i0: u32) -> u32 {
    return i0;
}
const WORDS4: u32 = 4u;

// The four elements from element i0 on, from the words first_word4(i0) .. + WORDS4.
fn decode4(w: vec4<u32>, i0: u32) -> vec4<f32> {
    return bitcast<vec4<f32>>(w);
}

// The word that holds element i, and element i from that word.
fn elem_word(i: u32) -> u32 {
    return i;
}
fn decode1(w: u32, i: u32) -> f32 {
    return bitcast<f32>(w);
}

fn store_elem(i: u32, v: f32) {
    out[i] = bitcast<u32>(v);
}

fn store_word(i: u32, w: u32) {
    out[i] = w;
}

// Stores the live lanes of four consecutive elements that start at element i0.
fn store_run4(i0: u32, v: vec4<f32>, live: vec4<bool>) {
    let b = bitcast<vec4<u32>>(v);
    if live.x { out[i0] = b.x; }
    if live.y { out[i0 + 1u] = b.y; }
    if live.z { out[i0 + 2u] = b.z; }
    if live.w { out[i0 + 3u] = b.w; }
}

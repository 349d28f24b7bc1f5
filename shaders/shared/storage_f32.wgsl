// Storage type f32: one element per u32 word. Kernels declare `out: array<OutWord>`.

alias OutWord = u32;

fn word_of(i: u32) -> u32 {
    return i;
}

fn decode(word: u32, i: u32) -> f32 {
    return bitcast<f32>(word);
}

fn store_elem(i: u32, v: f32) {
    out[i] = bitcast<u32>(v);
}

fn store_word(i: u32, w: u32) {
    out[i] = w;
}

// Stores the live lanes of four consecutive elements that start at element i0.
fn store_run4(i0: u32, v: vec4<f32>, live: vec4<bool>) {
    if live.x { store_elem(i0, v.x); }
    if live.y { store_elem(i0 + 1u, v.y); }
    if live.z { store_elem(i0 + 2u, v.z); }
    if live.w { store_elem(i0 + 3u, v.w); }
}

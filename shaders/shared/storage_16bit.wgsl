// 16-bit storage, two elements per u32 word, for the f16 and bf16 pieces (which supply
// `encode16` and `decode16`). Core WGSL has no 16-bit stores, and two rows may share a word
// when the pitch is odd, so a lone half is written with atomic and/or on its own 16 bits;
// a whole word is written with one atomic store.

alias OutWord = atomic<u32>;

fn word_of(i: u32) -> u32 {
    return i >> 1u;
}

fn decode(word: u32, i: u32) -> f32 {
    return decode16((word >> ((i & 1u) * 16u)) & 0xffffu);
}

fn store_elem(i: u32, v: f32) {
    let shift = (i & 1u) * 16u;
    atomicAnd(&out[i >> 1u], ~(0xffffu << shift));
    atomicOr(&out[i >> 1u], encode16(v) << shift);
}

fn store_word(i: u32, w: u32) {
    atomicStore(&out[i], w);
}

fn store_pair(i: u32, lo: f32, hi: f32, live_lo: bool, live_hi: bool) {
    if live_lo && live_hi {
        atomicStore(&out[i >> 1u], encode16(lo) | (encode16(hi) << 16u));
    } else if live_lo {
        store_elem(i, lo);
    } else if live_hi {
        store_elem(i + 1u, hi);
    }
}

// Stores the live lanes of four consecutive elements that start at element i0.
fn store_run4(i0: u32, v: vec4<f32>, live: vec4<bool>) {
    if (i0 & 1u) == 0u {
        store_pair(i0, v.x, v.y, live.x, live.y);
        store_pair(i0 + 2u, v.z, v.w, live.z, live.w);
    } else {
        if live.x { store_elem(i0, v.x); }
        store_pair(i0 + 1u, v.y, v.z, live.y, live.z);
        if live.w { store_elem(i0 + 3u, v.w); }
    }
}

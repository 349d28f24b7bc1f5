// 16-bit storage, two elements per u32 word, for the f16 and bf16 pieces (which supply
// `decode_pair`, `encode_pair` and `encode16`). Core WGSL has no 16-bit stores, and two rows
// may share a word when the pitch is odd, so a lone half is written with atomic and/or on its
// own 16 bits; a whole word is written with one atomic store, which is a plain store.

alias OutWord = atomic<u32>;

// The words that hold the four elements from element i0 on: the first, and how many. i0 may
// be up to 3 below zero (wrapped), where a row's first block starts before the buffer.
fn first_word4(i0: u32) -> u32 {
    return ((i0 + 4u) >> 1u) - 2u;
}
const WORDS4: u32 = 3u;

// The four elements from element i0 on, from the words first_word4(i0) .. + WORDS4: an odd
// i0 starts in the high half of the first word.
fn decode4(w: vec4<u32>, i0: u32) -> vec4<f32> {
    let odd = (i0 & 1u) != 0u;
    let a = select(w.x, (w.x >> 16u) | (w.y << 16u), odd);
    let b = select(w.y, (w.y >> 16u) | (w.z << 16u), odd);
    return vec4<f32>(decode_pair(a), decode_pair(b));
}

// The word that holds element i, and element i from that word.
fn elem_word(i: u32) -> u32 {
    return i >> 1u;
}
fn decode1(w: u32, i: u32) -> f32 {
    return decode_pair(w)[i & 1u];
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
        atomicStore(&out[i >> 1u], encode_pair(lo, hi));
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

// Weights and draws against the row's largest l, and top-p's fixed-point arithmetic: weights
// with 32 fractional bits of the largest weight, so that their sums are exact and the same in
// any order. Cuts are (key, column) of the last entry kept in the row's order.
#import u64

fn weight(l: f32, m: f32, s: Settings) -> f32 {
    return exp((l - m) / s.tau);
}

// Min-p: an entry whose weight (against the row's largest l) is at least min_p.
fn passes_min_p(w: f32, s: Settings) -> bool {
    return w >= s.min_p;
}

// The key of a draw's score l / tau + g, formed against the row's largest l (m) so that the
// noise keeps its digits however large l / tau is, and nothing overflows.
fn draw_key(l: f32, g: f32, m: f32, s: Settings) -> u32 {
    return key_of((l - m) / s.tau + g);
}

// A weight w in [0, 1] as a 64-bit fixed-point number with 32 fractional bits.
fn fixed(w: f32) -> vec2<u32> {
    if w >= 1.0 {
        return vec2<u32>(0u, 1u);
    }
    return vec2<u32>(u32(w * 4294967296.0), 0u);
}

// floor(total * p) for p in (0, 1), p taken to 32 fractional bits.
fn scaled(total: vec2<u32>, p: f32) -> vec2<u32> {
    let q = u32(p * 4294967296.0);
    return add64(mul_wide(total.y, q), vec2<u32>(mul_wide(total.x, q).y, 0u));
}

// c * q, for c < 2^32 and q at most 2^32.
fn times(c: u32, q: vec2<u32>) -> vec2<u32> {
    return add64(mul_wide(c, q.x), vec2<u32>(0u, c * q.y));
}

// The least c >= 1 with c * q >= wanted (q > 0).
fn entries_for(wanted: vec2<u32>, q: vec2<u32>) -> u32 {
    let estimate = (f32(wanted.y) * 4294967296.0 + f32(wanted.x)) / (f32(q.y) * 4294967296.0 + f32(q.x));
    var c = max(u32(ceil(estimate)), 1u);
    // The estimate is within a few entries; the products decide.
    for (var i = 0u; i < 64u && !ge64(times(c, q), wanted); i++) {
        c += 1u;
    }
    for (var i = 0u; i < 64u && c > 1u && ge64(times(c - 1u, q), wanted); i++) {
        c -= 1u;
    }
    return c;
}

// Entry (key, col) is at or before the cut (cut_key, cut_col) in the row's order.
fn within(key: u32, col: u32, cut: vec2<u32>) -> bool {
    return key > cut.x || (key == cut.x && col <= cut.y);
}

// A cut that keeps every valid entry.
const KEEP_ALL: vec2<u32> = vec2<u32>(0u, NONE);

// The filters in the order the reference applies them to the row's entries in order: top-k's
// cut, min-p, then top-p's cut (each cut the last entry kept, or KEEP_ALL).
fn kept(key: u32, col: u32, w: f32, s: Settings, cut_k: vec2<u32>, cut_p: vec2<u32>) -> bool {
    return within(key, col, cut_k) && passes_min_p(w, s) && within(key, col, cut_p);
}


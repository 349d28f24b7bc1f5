// The sampler's view of rows, shared by the forward and the derivative kernels: the row
// layout, the noise of one block of four elements, the running (max, sum, argmax) of a row and
// the sample's values.
//
// Rows are walked in noise blocks: block j of a row holds the flat elements 4*(b0 + j) .. +3,
// so one Philox call feeds four elements and the first and last block may be partly outside
// the row ("lead" elements before it, and a tail after it).
//
// The importing kernel declares `params`, whose struct's member `header` is the RowHeader
// below, and `fn needs_sum() -> bool`: whether the row's sum of exponentials is wanted. The
// bindings every row kernel has are in row_bindings.
//
// The noise position: header.seed and header.offset, or with counter_used those of `counter`
// (noise_start).
#import philox
#import noise_start
#import gumbel
#import storage
#import row_bindings

// The parameters every row kernel reads (RowHeader in Rust, filled in by the row layer for each
// dispatch), the member `header` of each family's parameters.
struct RowHeader {
    seed: vec2<u32>,
    offset: vec2<u32>,   // flat noise index of row 0, column 0 of this dispatch
    rows: u32,
    cols: u32,
    in_pitch: u32,
    out_pitch: u32,      // of the output; top-k: k
    in_base: u32,        // element index of row 0 in the input
    out_base: u32,       // element index of row 0 in the output
    tau_base: u32,       // index of row 0 in `taus` (top-k and tokens: unused)
    tau_per_row: u32,
    tau: f32,
    counter_used: u32,   // seed and offset from `counter` (tokens: unused)
    in_stride: u32,      // elements between a row's categories (see Row)
    out_stride: u32,
}

const MODE_SOFT: u32 = 0u;
const MODE_LOG_SOFT: u32 = 1u;
const MODE_HARD: u32 = 2u;
const MODE_INDEX: u32 = 3u;
override MODE: u32 = MODE_SOFT;

const NONE: u32 = 0xffffffffu;
const NEG_INF_BITS: u32 = 0xff800000u;
const NAN_BITS: u32 = 0x7fc00000u;

// The WGSL spec makes a const-expression that evaluates to inf or NaN a shader-creation error
// (Chrome's compiler enforces it; naga does not). A user function's result is never a
// const-expression, so these values are formed at run time.
fn f32_of_bits(bits: u32) -> f32 {
    return bitcast<f32>(bits);
}

fn nan_f32() -> f32 {
    return f32_of_bits(NAN_BITS);
}

fn neg_inf_f32() -> f32 {
    return f32_of_bits(NEG_INF_BITS);
}

struct Row {
    seed: vec2<u32>,
    block0: vec2<u32>,
    lead: u32,
    blocks: u32,
    in_at: u32,
    out_at: u32,
    tau: f32,
    bad: bool,
}

fn row_view(row: u32) -> Row {
    var r: Row;
    let start = noise_start(params.header.seed, params.header.offset, params.header.counter_used);
    r.seed = start.seed;
    let first = add64_u32(start.offset, row * params.header.cols);
    r.block0 = shr64_2(first);
    r.lead = first.x & 3u;
    r.blocks = (r.lead + params.header.cols + 3u) / 4u;
    r.in_at = params.header.in_base + row_start(row, params.header.in_pitch, params.header.in_stride);
    r.out_at = params.header.out_base + row_start(row, params.header.out_pitch, params.header.out_stride);
    r.tau = params.header.tau;
    if params.header.tau_per_row != 0u {
        r.tau = taus[params.header.tau_base + row];
    }
    // tau must be a positive normal finite number (by its bits: WGSL may assume no inf/NaN).
    // Index mode does not divide by it, but a bad one still means no sample, as a bad scalar
    // tau is refused in every mode.
    let tb = bitcast<u32>(r.tau);
    r.bad = tb < 0x00800000u || tb >= 0x7f800000u;
    return r;
}

const LANE_OUTSIDE: u32 = 0u;
const LANE_VALUE: u32 = 1u;
const LANE_MASKED: u32 = 2u;
const LANE_INVALID: u32 = 3u;   // NaN or +inf logit, or a value that overflowed

struct Lane {
    kind: u32,
    k: u32,
    v: f32,   // (l + g) / tau, or l + g in index mode
    x: f32,   // l and g, for the exact argmax (kept_exact)
    g: f32,
}

// Where row `row` starts: rows `pitch` elements apart, or with categories `stride` apart
// (stride > 1), in groups of `stride` rows that interleave, groups `pitch` elements apart.
fn row_start(row: u32, pitch: u32, stride: u32) -> u32 {
    return (row / stride) * pitch + row % stride;
}

// The four input elements from element i0 on (those outside the row are read but not used).
fn input4(i0: u32) -> vec4<f32> {
    let at = first_word4(i0);
    var w = vec4<u32>(logits[at], logits[at + 1u], logits[at + 2u], 0u);
    if WORDS4 == 4u {
        w.w = logits[at + 3u];
    }
    return decode4(w, i0);
}

// The four input elements of a row at `at` from position p on, `stride` elements apart (p may
// be up to 3 below zero, wrapped; positions outside the row are read but not used).
fn input4_at(at: u32, p: u32, stride: u32) -> vec4<f32> {
    if stride == 1u {
        return input4(at + p);
    }
    var v: vec4<f32>;
    for (var q = 0u; q < 4u; q++) {
        let i = at + (p + q) * stride;
        v[q] = decode1(logits[elem_word(i)], i);
    }
    return v;
}

// Stores the live lanes of four elements of a row at `at` from position p on, `stride` apart.
fn store_run4_at(at: u32, p: u32, stride: u32, v: vec4<f32>, live: vec4<bool>) {
    if stride == 1u {
        store_run4(at + p, v, live);
        return;
    }
    for (var q = 0u; q < 4u; q++) {
        if live[q] {
            store_elem(at + (p + q) * stride, v[q]);
        }
    }
}

// Element at position t of the row's blocks (t = 4j + lane), its input x and its noise g.
fn lane_at(r: Row, t: u32, x: f32, g: f32) -> Lane {
    var l: Lane;
    l.k = t - r.lead;
    if t < r.lead || l.k >= params.header.cols {
        l.kind = LANE_OUTSIDE;
        return l;
    }
    let bits = bitcast<u32>(x);
    if bits == NEG_INF_BITS {
        l.kind = LANE_MASKED;
        return l;
    }
    l.x = x;
    l.g = g;
    var v = x + g;
    if MODE != MODE_INDEX {
        v = v / r.tau;
    }
    l.v = v;
    l.kind = select(LANE_VALUE, LANE_INVALID, (bits & 0x7f800000u) == 0x7f800000u
        || (bitcast<u32>(v) & 0x7f800000u) == 0x7f800000u);
    return l;
}

struct Block {
    a: Lane,
    b: Lane,
    c: Lane,
    d: Lane,
}

fn block_at(r: Row, j: u32) -> Block {
    let g = gumbel_block(r.seed, add64_u32(r.block0, j));
    let t = 4u * j;
    let x = input4_at(r.in_at, t - r.lead, params.header.in_stride);
    return Block(lane_at(r, t, x.x, g.x), lane_at(r, t + 1u, x.y, g.y),
                 lane_at(r, t + 2u, x.z, g.z), lane_at(r, t + 3u, x.w, g.w));
}

// Running maximum m of the row's values, its lowest index arg, and s = sum exp(v - m).
// Where no sum is wanted (index and hard samples) the state is kept_exact: m and s hold the
// winner's logit and noise instead, so that candidates compare by l_b - l_a against
// g_a - g_b, which keeps the noise's digits however large l is (l + g rounds them away).
struct RowState {
    m: f32,
    s: f32,
    arg: u32,      // NONE while no value has been seen
    invalid: u32,
}

fn empty_state() -> RowState {
    return RowState(0.0, 0.0, NONE, 0u);
}

fn merge(a: RowState, b: RowState) -> RowState {
    let invalid = a.invalid | b.invalid;
    if b.arg == NONE {
        return RowState(a.m, a.s, a.arg, invalid);
    }
    if a.arg == NONE {
        return RowState(b.m, b.s, b.arg, invalid);
    }
    var hi = a;
    var lo = b;
    if beats(b, a) {
        hi = b;
        lo = a;
    }
    var s = hi.s;
    if needs_sum() {
        s = hi.s + lo.s * exp(lo.m - hi.m);
    }
    return RowState(hi.m, s, hi.arg, invalid);
}

fn kept_exact() -> bool {
    return !needs_sum();
}

// Whether candidate b ranks before a: the larger value, then the lower column.
fn beats(b: RowState, a: RowState) -> bool {
    if kept_exact() {
        let dl = b.m - a.m;
        let dg = a.s - b.s;
        return dl > dg || (dl == dg && b.arg < a.arg);
    }
    return b.m > a.m || (b.m == a.m && b.arg < a.arg);
}

fn add_lane(st: RowState, l: Lane) -> RowState {
    if l.kind == LANE_VALUE {
        if kept_exact() {
            return merge(st, RowState(l.x, l.g, l.k, 0u));
        }
        return merge(st, RowState(l.v, 1.0, l.k, 0u));
    }
    return RowState(st.m, st.s, st.arg, st.invalid | u32(l.kind == LANE_INVALID));
}

fn add_lanes(st: RowState, b: Block) -> RowState {
    return add_lane(add_lane(add_lane(add_lane(st, b.a), b.b), b.c), b.d);
}

fn add_block(st: RowState, r: Row, j: u32) -> RowState {
    return add_lanes(st, block_at(r, j));
}

// What the write pass needs of a finished row.
struct RowResult {
    valid: bool,
    m: f32,
    arg: u32,
    inv_s: f32,
    log_s: f32,
}

fn row_result(r: Row, st: RowState) -> RowResult {
    var f: RowResult;
    f.valid = !r.bad && st.invalid == 0u && st.arg != NONE;
    f.m = st.m;
    f.arg = select(NONE, st.arg, f.valid);
    if needs_sum() {
        f.inv_s = 1.0 / st.s;
        f.log_s = ln_accurate(st.s);
    }
    return f;
}

fn output_value(l: Lane, f: RowResult) -> f32 {
    if !f.valid {
        return nan_f32();
    }
    if MODE == MODE_HARD {
        return select(0.0, 1.0, l.k == f.arg);
    }
    if MODE == MODE_LOG_SOFT {
        if l.kind == LANE_MASKED {
            return neg_inf_f32();
        }
        return (l.v - f.m) - f.log_s;
    }
    if l.kind == LANE_MASKED {
        return 0.0;
    }
    return exp(l.v - f.m) * f.inv_s;
}

fn write_block(r: Row, f: RowResult, j: u32) {
    write_lanes(r, f, j, block_at(r, j));
}

// Writes block j's outputs from its lanes.
fn write_lanes(r: Row, f: RowResult, j: u32, b: Block) {
    let v = vec4<f32>(output_value(b.a, f), output_value(b.b, f),
                      output_value(b.c, f), output_value(b.d, f));
    let live = vec4<bool>(b.a.kind != LANE_OUTSIDE, b.b.kind != LANE_OUTSIDE,
                          b.c.kind != LANE_OUTSIDE, b.d.kind != LANE_OUTSIDE);
    store_run4_at(r.out_at, 4u * j - r.lead, params.header.out_stride, v, live);
}

// Index mode's whole output: one u32 per row, NONE for a row without a sample.
fn write_index(r: Row, f: RowResult) {
    store_word(r.out_at, f.arg);
}

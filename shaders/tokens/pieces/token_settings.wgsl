// The token sampler's view of a row: its settings as the host wrote them and as the kernel
// judges them (Settings), its noise position, and its elements: the logit x as given, and l
// after the soft cap, the mask, the dense bias, and the row's token list (sparse bias, then
// penalties). The importing kernel provides `mask_allows` and `adjusted_by_list` (a kernel
// without masks and lists never calls them: their settings are off).

// TokenSettings and RandomState in Rust, as the host writes them, bound as arrays of them. The
// settings' f32 fields are held as their bits: the kernel judges them by their bits. The
// settings are 64 bytes, a power of two, so that an array of them may start at any multiple of
// its size and still be bound from the aligned offset below it; `reserved` is room for more.
struct TokenSettings {
    temperature: u32,
    top_k: u32,
    top_p: u32,
    min_p: u32,
    soft_cap: u32,
    top_n_sigma: u32,
    repetition_penalty: u32,
    frequency_penalty: u32,
    presence_penalty: u32,
    list_start: u32,
    list_len: u32,
    mask: u32,
    reserved: array<u32, 4>,
}

struct RandomState {
    seed: vec2<u32>,
    offset: vec2<u32>,
}

const NO_TOP_K: u32 = 0xffffffffu;
const NO_MASK: u32 = 0xffffffffu;
// The longest token list a row may have.
const LIST_LEN_MAX: u32 = 262144u;
const GREEDY_BELOW: f32 = 1e-5;
// Where a row's noise position comes from: the call's seed and offset (row r at offset + rK),
// the state of its own row, the state its index entry names, or the call's stream held in a
// GPU-side noise counter. The counter is bound as the one entry of `states` (its words are a
// RandomState's), not at sampler_row's binding: the sampler binds as many storage buffers as
// WebGPU's default limits allow.
const SOURCE_CALL: u32 = 0u;
const SOURCE_ROW: u32 = 1u;
const SOURCE_INDEX: u32 = 2u;
const SOURCE_COUNTER: u32 = 3u;
struct Settings {
    tau: f32,
    k: u32,        // K when top-k is off
    p: f32,
    // Min-p's least weight; for a row with top-n-sigma raised to that filter's least weight
    // once the row's sigma is known (sample_tokens' main).
    min_p: f32,
    cap: f32,      // 0: no soft cap
    n_sigma: f32,  // 0: no top-n-sigma
    repetition: f32,  // 1: none
    frequency: f32,
    presence: f32,
    list_start: u32,
    list_len: u32,    // 0: no token list
    mask: u32,        // NO_MASK: none (always, in a call without masks)
    // Whether l may differ from x (a soft cap, a mask, a dense bias or a token list): most rows
    // have none, and one test an element costs llvmpipe far less than four.
    transformed: bool,
    greedy: bool,
    valid: bool,
}

// A row's settings, judged by their bits (WGSL may assume no infinities or NaNs).
fn settings_of(row: u32) -> Settings {
    let t = settings[params.settings_base + row];
    let tau_bits = t.temperature;
    let k = t.top_k;
    let p_bits = t.top_p;
    let min_p_bits = t.min_p & select(0xffffffffu, 0u, t.min_p == 0x80000000u);
    let cap_bits = t.soft_cap & select(0xffffffffu, 0u, t.soft_cap == 0x80000000u);
    let sigma_bits = t.top_n_sigma & select(0xffffffffu, 0u, t.top_n_sigma == 0x80000000u);
    // A repetition penalty of 0 (or -0) is none, as 1 is: a zeroed word keeps the row as it was.
    let repetition_bits = select(t.repetition_penalty, 0x3f800000u,
                                 (t.repetition_penalty & 0x7fffffffu) == 0u);
    var s: Settings;
    s.tau = bitcast<f32>(tau_bits);
    s.k = select(k, params.header.cols, k == NO_TOP_K);
    s.p = bitcast<f32>(p_bits);
    s.min_p = bitcast<f32>(min_p_bits);
    s.cap = bitcast<f32>(cap_bits);
    s.n_sigma = bitcast<f32>(sigma_bits);
    s.repetition = bitcast<f32>(repetition_bits);
    s.frequency = bitcast<f32>(t.frequency_penalty);
    s.presence = bitcast<f32>(t.presence_penalty);
    s.list_start = t.list_start;
    // A call without masks leaves every row unmasked, whatever its word says.
    s.mask = select(NO_MASK, t.mask, params.masks_count != 0u);
    let zero_tau = (tau_bits & 0x7fffffffu) == 0u;
    let tau_ok = zero_tau || tau_bits < 0x7f800000u;
    s.greedy = zero_tau || (tau_ok && s.tau < GREEDY_BELOW);
    let k_ok = k == NO_TOP_K || (k >= 1u && k <= params.header.cols);
    let p_ok = p_bits > 0u && p_bits <= 0x3f800000u;
    let penalties_ok = repetition_bits < 0x7f800000u
        && (t.frequency_penalty & 0x7f800000u) != 0x7f800000u
        && (t.presence_penalty & 0x7f800000u) != 0x7f800000u;
    let list_ok = t.list_len == 0u
        || (t.list_len <= params.list_longest && t.list_start < params.lists_count
            && t.list_len <= params.lists_count - t.list_start);
    let mask_ok = s.mask == NO_MASK || s.mask < params.masks_count;
    // An invalid row reads neither its list nor its mask.
    s.list_len = select(0u, t.list_len, list_ok);
    s.mask = select(NO_MASK, s.mask, mask_ok);
    s.transformed = cap_bits != 0u || s.mask != NO_MASK || params.has_bias != 0u
        || s.list_len != 0u;
    s.valid = tau_ok && k_ok && p_ok && min_p_bits <= 0x3f800000u && cap_bits < 0x7f800000u
        && sigma_bits < 0x7f800000u && penalties_ok && list_ok && mask_ok;
    return s;
}

// The row's layout and noise position (sampler_row's Row); `bad` when its state index is out
// of range.
fn token_row(row: u32) -> Row {
    var start = NoiseStart(params.header.seed, params.header.offset);
    if params.state_source == SOURCE_COUNTER {
        let held = states[params.states_base];
        start = NoiseStart(held.seed, add64(held.offset, params.header.offset));
    }
    var first = add64_u32(start.offset, row * params.header.cols);
    if params.state_source == SOURCE_ROW || params.state_source == SOURCE_INDEX {
        var s = params.row0 + row;
        if params.state_source == SOURCE_INDEX {
            s = state_index[params.index_base + row];
        }
        if s >= params.states_count {
            return row_at(row, NoiseStart(start.seed, first), true);
        }
        let state = states[params.states_base + s];
        return row_at(row, NoiseStart(state.seed, state.offset), false);
    }
    return row_at(row, NoiseStart(start.seed, first), false);
}

// Row `row`'s layout, its column 0 at flat noise index `start.offset` of `start.seed`.
fn row_at(row: u32, start: NoiseStart, bad: bool) -> Row {
    var r: Row;
    r.seed = start.seed;
    r.bad = bad;
    r.block0 = shr64_2(start.offset);
    r.lead = start.offset.x & 3u;
    r.blocks = (r.lead + params.header.cols + 3u) / 4u;
    r.in_at = params.header.in_base + row * params.header.in_pitch;
    r.out_at = params.header.out_base + row;
    r.tau = 1.0;
    return r;
}

// A listed token's l after its sparse bias and penalties; `banned` where the bias is -inf.
struct Listed {
    l: f32,
    banned: bool,
}

// One element: its column, its logit x, and l (kind: sampler_row's LANE_*, of l).
struct Elem {
    kind: u32,
    col: u32,
    x: f32,
    l: f32,
    raw: bool,   // x is finite: it counts in the raw log-sum-exp
}

// cap * tanh(x / cap). Where |y| = |x / cap| < 1/2, x times tanh(y) / y as a series in y^2
// (to y^14; the next term is below 1e-8 of it): (1 - e) / (1 + e) would cancel there, and a
// cap far above the logits gives back x itself. Elsewhere tanh from e = exp(-2|y|), so that
// large |y| saturates.
fn soft_capped(x: f32, cap: f32) -> f32 {
    let y = x / cap;
    if abs(y) < 0.5 {
        let y2 = y * y;
        var p = -929569.0 / 638512875.0;
        p = p * y2 + 21844.0 / 6081075.0;
        p = p * y2 - 1382.0 / 155925.0;
        p = p * y2 + 62.0 / 2835.0;
        p = p * y2 - 17.0 / 315.0;
        p = p * y2 + 2.0 / 15.0;
        p = p * y2 - 1.0 / 3.0;
        return x + x * (p * y2);
    }
    let e = exp(-2.0 * abs(y));
    return cap * sign(y) * ((1.0 - e) / (1.0 + e));
}

// l of column `col` whose finite logit is x, after the soft cap, the mask, the dense bias and
// the row's token list; `banned` where one of them bans it.
fn transformed(s: Settings, row: u32, col: u32, x: f32) -> Listed {
    var l = x;
    if s.cap > 0.0 {
        l = soft_capped(x, s.cap);
    }
    if s.mask != NO_MASK && !mask_allows(s.mask, col) {
        return Listed(l, true);
    }
    if params.has_bias != 0u {
        let b = bias[params.bias_base + row * params.bias_pitch + col];
        if bitcast<u32>(b) == NEG_INF_BITS {
            return Listed(l, true);
        }
        l = l + b;
    }
    if s.list_len != 0u {
        return adjusted_by_list(s, col, l);
    }
    return Listed(l, false);
}

// The element at position t of the row's blocks (t = 4j + lane), whose logit is x.
fn elem_at(r: Row, s: Settings, row: u32, t: u32, x: f32) -> Elem {
    return elem_with(r, s, row, t, x, s.transformed);
}

// elem_at where the caller says whether the row's l may differ from x (a constant at the call
// specialises it).
fn elem_with(r: Row, s: Settings, row: u32, t: u32, x: f32, transform: bool) -> Elem {
    var e: Elem;
    e.col = t - r.lead;
    e.x = x;
    e.raw = false;
    if t < r.lead || e.col >= params.header.cols {
        e.kind = LANE_OUTSIDE;
        return e;
    }
    let bits = bitcast<u32>(x);
    if (bits & 0x7f800000u) == 0x7f800000u {
        e.kind = select(LANE_INVALID, LANE_MASKED, bits == NEG_INF_BITS);
        return e;
    }
    e.raw = true;
    var l = x;
    if transform {
        let t = transformed(s, row, e.col, x);
        if t.banned {
            e.kind = LANE_MASKED;
            return e;
        }
        l = t.l;
    }
    e.l = l;
    e.kind = select(LANE_VALUE, LANE_INVALID, (bitcast<u32>(l) & 0x7f800000u) == 0x7f800000u);
    return e;
}

// How an invocation walks a range of a row's blocks. On GPUs the invocations interleave (lid,
// lid + WORKGROUP_SIZE, ...), so that neighbours read neighbouring words. CPU drivers
// (CONTIGUOUS_BLOCKS) run one SIMD group of invocations through its whole loop before the
// next, so there each invocation takes a run of consecutive blocks, which the CPU's caches
// prefetch: on llvmpipe the interleaved reads alone cost a plain row more than its noise.
// Either way an invocation takes at most ceil(blocks / WORKGROUP_SIZE) of them, in increasing
// order.
override CONTIGUOUS_BLOCKS: bool = false;

struct Walk {
    start: u32,
    end: u32,
    step: u32,
}

fn walk(range: vec2<u32>, lid: u32) -> Walk {
    if CONTIGUOUS_BLOCKS {
        let run = (range.y - range.x + WORKGROUP_SIZE - 1u) / WORKGROUP_SIZE;
        let start = min(range.x + lid * run, range.y);
        return Walk(start, min(start + run, range.y), 1u);
    }
    return Walk(range.x + lid, range.y, WORKGROUP_SIZE);
}

// The logits of block j of the row (lanes outside it are read but not used).
fn block_x(r: Row, j: u32) -> vec4<f32> {
    return input4(r.in_at + 4u * j - r.lead);
}

fn elem_of_column(r: Row, s: Settings, row: u32, col: u32) -> Elem {
    return elem_at(r, s, row, col + r.lead, input4(r.in_at + col).x);
}

// The noise of column `col`.
fn gumbel_of_column(r: Row, col: u32) -> f32 {
    let t = col + r.lead;
    return gumbel_block(r.seed, add64_u32(r.block0, t >> 2u))[t & 3u];
}


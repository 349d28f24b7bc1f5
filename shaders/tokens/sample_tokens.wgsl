// The token sampler, one workgroup per row: a token drawn by Gumbel-max from the row's
// distribution after its own filters, and optionally two log-probabilities of it.
//
// A row's settings are five words: temperature, top_k, top_p, min_p, soft_cap. With x the
// logits as given, c = cap * tanh(x / cap) (or x without a cap), l = c + bias:
// - a greedy row (temperature below GREEDY_BELOW) takes the lowest column of the largest l;
// - otherwise, with m the row's largest l and weights w = exp((l - m) / tau), the kept set is
//   the top_k first entries in (l, lower column) order that have w >= min_p, and of those, in
//   that order, each entry while the weight of the kept entries before it is below top_p
//   times theirs in all; the token is the kept column with the largest l / tau + g.
// Top-p's weights are fixed-point (32 fractional bits of the largest weight), so that their
// sums are exact and the same in any order.
//
// Passes over the row (docs/design.md): rows without top-k or top-p are sampled in their
// first pass (min-p against each invocation's running maximum). Rows with top-k up to KEPT_MAX,
// or top-p whose cut falls within that many entries, take the row's first entries in order
// from rounds over the invocations' lists of that pass, and make noise for those alone. Other
// rows find top-k's and top-p's cuts by radix selects (a count, or a weight, per histogram bin)
// and end with a pass of Gumbel-max over the kept set that makes noise only for blocks holding
// a kept element.
#import sampler_row
#import params
#import key_list
#import best_entry
#import u64

struct TokenParams {
    header: RowHeader,
    settings_base: u32,
    bias_base: u32,
    bias_pitch: u32,      // 0: one row of bias for every row
    has_bias: u32,
    states_base: u32,
    states_count: u32,
    state_source: u32,
    index_base: u32,
    row0: u32,            // the first row of this dispatch in the call
    logprobs_base: u32,
    want_logprobs: u32,
    _pad: u32,
}

alias Params = TokenParams;
const BINDING_SETTINGS: u32 = 5u;   // BINDING_FAMILY
const BINDING_BIAS: u32 = 6u;
const BINDING_STATES: u32 = 7u;
const BINDING_STATE_INDEX: u32 = 8u;
const BINDING_TOKENS: u32 = 9u;
const BINDING_LOGPROBS: u32 = 10u;
@group(0) @binding(BINDING_SETTINGS) var<storage, read> settings: array<u32>;
@group(0) @binding(BINDING_BIAS) var<storage, read> bias: array<f32>;
@group(0) @binding(BINDING_STATES) var<storage, read> states: array<u32>;
@group(0) @binding(BINDING_STATE_INDEX) var<storage, read> state_index: array<u32>;
@group(0) @binding(BINDING_TOKENS) var<storage, read_write> tokens: array<u32>;
@group(0) @binding(BINDING_LOGPROBS) var<storage, read_write> logprobs: array<f32>;

const SETTINGS_WORDS: u32 = 5u;
const STATE_WORDS: u32 = 4u;        // seed lo, hi, offset lo, hi
const NO_TOP_K: u32 = 0xffffffffu;
const GREEDY_BELOW: f32 = 1e-5;
// Where a row's noise position comes from: the call's seed and offset (row r at offset + rK),
// the state of its own row, or the state its index entry names.
const SOURCE_CALL: u32 = 0u;
const SOURCE_ROW: u32 = 1u;
const SOURCE_INDEX: u32 = 2u;
const BINS: u32 = 256u;

fn needs_sum() -> bool {
    return false;
}

struct Settings {
    tau: f32,
    k: u32,        // K when top-k is off
    p: f32,
    min_p: f32,
    cap: f32,      // 0: no soft cap
    greedy: bool,
    valid: bool,
}

// A row's settings, judged by their bits (WGSL may assume no infinities or NaNs).
fn settings_of(row: u32) -> Settings {
    let at = params.settings_base + row * SETTINGS_WORDS;
    let tau_bits = settings[at];
    let k = settings[at + 1u];
    let p_bits = settings[at + 2u];
    let min_p_bits = settings[at + 3u] & select(0xffffffffu, 0u, settings[at + 3u] == 0x80000000u);
    let cap_bits = settings[at + 4u] & select(0xffffffffu, 0u, settings[at + 4u] == 0x80000000u);
    var s: Settings;
    s.tau = bitcast<f32>(tau_bits);
    s.k = select(k, params.header.cols, k == NO_TOP_K);
    s.p = bitcast<f32>(p_bits);
    s.min_p = bitcast<f32>(min_p_bits);
    s.cap = bitcast<f32>(cap_bits);
    let zero_tau = (tau_bits & 0x7fffffffu) == 0u;
    let tau_ok = zero_tau || tau_bits < 0x7f800000u;
    s.greedy = zero_tau || (tau_ok && s.tau < GREEDY_BELOW);
    let k_ok = k == NO_TOP_K || (k >= 1u && k <= params.header.cols);
    let p_ok = p_bits > 0u && p_bits <= 0x3f800000u;
    s.valid = tau_ok && k_ok && p_ok && min_p_bits <= 0x3f800000u && cap_bits < 0x7f800000u;
    return s;
}

// The row's layout and noise position (sampler_row's Row); `bad` when its state index is out
// of range.
fn token_row(row: u32) -> Row {
    var r: Row;
    r.seed = params.header.seed;
    var first = add64_u32(params.header.offset, row * params.header.cols);
    r.bad = false;
    if params.state_source != SOURCE_CALL {
        var s = params.row0 + row;
        if params.state_source == SOURCE_INDEX {
            s = state_index[params.index_base + row];
        }
        if s < params.states_count {
            let at = params.states_base + s * STATE_WORDS;
            r.seed = vec2<u32>(states[at], states[at + 1u]);
            first = vec2<u32>(states[at + 2u], states[at + 3u]);
        } else {
            r.bad = true;
        }
    }
    r.block0 = shr64_2(first);
    r.lead = first.x & 3u;
    r.blocks = (r.lead + params.header.cols + 3u) / 4u;
    r.in_at = params.header.in_base + row * params.header.in_pitch;
    r.out_at = params.header.out_base + row;
    r.tau = 1.0;
    return r;
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

// The element at position t of the row's blocks (t = 4j + lane), whose logit is x.
fn elem_at(r: Row, s: Settings, row: u32, t: u32, x: f32) -> Elem {
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
    if s.cap > 0.0 {
        l = soft_capped(x, s.cap);
    }
    if params.has_bias != 0u {
        let b = bias[params.bias_base + row * params.bias_pitch + e.col];
        if bitcast<u32>(b) == NEG_INF_BITS {
            e.kind = LANE_MASKED;
            return e;
        }
        l = l + b;
    }
    e.l = l;
    e.kind = select(LANE_VALUE, LANE_INVALID, (bitcast<u32>(l) & 0x7f800000u) == 0x7f800000u);
    return e;
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

fn weight(l: f32, m: f32, s: Settings) -> f32 {
    return exp((l - m) / s.tau);
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

var<workgroup> row_bad: atomic<u32>;
var<workgroup> row_count: atomic<u32>;
var<workgroup> missed: atomic<u32>;
var<workgroup> decided: vec4<u32>;
// The row's settings and the call's parameters as values WGSL knows to be uniform: they choose
// among paths that call barriers.
var<workgroup> uniform_settings: Settings;
var<workgroup> uniform_params: Params;
var<workgroup> sum_m: array<f32, WORKGROUP_SIZE>;
var<workgroup> sum_s: array<f32, WORKGROUP_SIZE>;
// The first entries of a row in order, from its invocations' lists.
const KEPT_MAX: u32 = 256u;
var<workgroup> kept_key: array<u32, KEPT_MAX>;
var<workgroup> kept_col: array<u32, KEPT_MAX>;
var<workgroup> hist_lo: array<atomic<u32>, BINS>;
var<workgroup> hist_hi: array<atomic<u32>, BINS>;
// The weight of the entries of each key in the last value pass, as they added it (0: 2^32).
var<workgroup> bin_weight: array<atomic<u32>, BINS>;
// A radix select's state: (decided bits, wanted lo, wanted hi, done), (threshold key, cut
// column, -, -).
var<workgroup> selection: vec4<u32>;
var<workgroup> selection_cut: vec4<u32>;

// (m, s) with s = sum exp((v - m) / tau) over every invocation's (m, s), in every invocation;
// s = 0 is empty.
fn sum_exp(lid: u32, m: f32, s: f32, tau: f32) -> vec2<f32> {
    sum_m[lid] = m;
    sum_s[lid] = s;
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if lid < half && sum_s[lid + half] > 0.0 {
            let m2 = sum_m[lid + half];
            let s2 = sum_s[lid + half];
            if sum_s[lid] == 0.0 {
                sum_m[lid] = m2;
                sum_s[lid] = s2;
            } else if m2 > sum_m[lid] {
                sum_s[lid] = s2 + sum_s[lid] * exp((sum_m[lid] - m2) / tau);
                sum_m[lid] = m2;
            } else {
                sum_s[lid] += s2 * exp((m2 - sum_m[lid]) / tau);
            }
        }
    }
    workgroupBarrier();
    let total = vec2<f32>(sum_m[0], sum_s[0]);
    workgroupBarrier();
    return total;
}

fn add_to_bin(bin: u32, q: vec2<u32>) {
    if q.x != 0u {
        let old = atomicAdd(&hist_lo[bin], q.x);
        if old > 0xffffffffu - q.x {
            atomicAdd(&hist_hi[bin], 1u);
        }
    }
    if q.y != 0u {
        atomicAdd(&hist_hi[bin], q.y);
    }
}

fn bin_total(bin: u32) -> vec2<u32> {
    return vec2<u32>(atomicLoad(&hist_lo[bin]), atomicLoad(&hist_hi[bin]));
}

// The cut of a radix select: the first entry, in the row's order, at which the entries so far
// reach `k` (a count, over every valid entry) or `p` times the weight of them all (weighted,
// over the entries within `prior` and with w >= min_p). Four passes narrow the key a byte at a time from the top;
// where the cut falls among entries of equal key, four more pick their column.
fn select_cut(r: Row, s: Settings, row: u32, lid: u32, m: f32, weighted: bool,
              prior: vec2<u32>) -> vec2<u32> {
    if lid == 0u {
        selection = vec4<u32>(0u, 0u, 0u, 0u);
        selection_cut = vec4<u32>(0u, NONE, 0u, 0u);
    }
    for (var step = 0u; step < 8u; step++) {
        for (var i = lid; i < BINS; i += WORKGROUP_SIZE) {
            atomicStore(&hist_lo[i], 0u);
            atomicStore(&hist_hi[i], 0u);
        }
        let sel = workgroupUniformLoad(&selection);
        if sel.w != 0u {
            break;
        }
        let by_column = step >= 4u;
        let shift = 24u - 8u * (step & 3u);
        let mask = high_mask(shift);
        let threshold = workgroupUniformLoad(&selection_cut).x;
        for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
            let x = block_x(r, j);
            for (var i = 0u; i < 4u; i++) {
                let e = elem_at(r, s, row, 4u * j + i, x[i]);
                if e.kind != LANE_VALUE {
                    continue;
                }
                let key = key_of(e.l);
                let w = weight(e.l, m, s);
                if weighted && (!within(key, e.col, prior) || w < s.min_p) {
                    continue;
                }
                if !by_column && (key & mask) == sel.x {
                    let q = select(vec2<u32>(1u, 0u), fixed(w), weighted);
                    add_to_bin((key >> shift) & 255u, q);
                    if step == 3u {
                        atomicStore(&bin_weight[key & 255u], q.x);
                    }
                } else if by_column && key == threshold && (e.col & mask) == sel.x {
                    add_to_bin((e.col >> shift) & 255u, vec2<u32>(1u, 0u));
                }
            }
        }
        workgroupBarrier();
        if lid == 0u {
            var wanted = vec2<u32>(sel.y, sel.z);
            if step == 0u {
                var total = vec2<u32>(0u, 0u);
                for (var i = 0u; i < BINS; i++) {
                    total = add64(total, bin_total(i));
                }
                wanted = vec2<u32>(s.k, 0u);
                if weighted {
                    wanted = scaled(total, s.p);
                    if wanted.x == 0u && wanted.y == 0u {
                        wanted.x = 1u;
                    }
                }
            }
            // The bin where the wanted amount is reached: from the largest keys down, or from
            // the lowest columns up.
            var before = vec2<u32>(0u, 0u);
            var bin = 0u;
            for (var i = 0u; i < BINS; i++) {
                bin = select(255u - i, i, by_column);
                let next = add64(before, bin_total(bin));
                if ge64(next, wanted) {
                    break;
                }
                before = next;
            }
            wanted = sub64(wanted, before);
            let bits = sel.x | (bin << shift);
            var done = 0u;
            var next_bits = bits;
            if step == 3u {
                // The key at the cut: how many of its entries (all of equal weight) are wanted.
                let w = atomicLoad(&bin_weight[bin]);
                let q = vec2<u32>(w, select(0u, 1u, w == 0u));
                let c = entries_for(wanted, q);
                selection_cut.x = bits;
                if ge64(times(c, q), bin_total(bin)) {
                    done = 1u;   // all of them: the cut is (key, NONE)
                } else {
                    wanted = vec2<u32>(c, 0u);
                    next_bits = 0u;
                }
            } else if step == 7u {
                selection_cut.y = bits;
                done = 1u;
            }
            selection = vec4<u32>(next_bits, wanted.x, wanted.y, done);
        }
        workgroupBarrier();
    }
    let cut = workgroupUniformLoad(&selection_cut);
    // The next select resets the cut.
    workgroupBarrier();
    return cut.xy;
}

fn write_none(row: u32) {
    tokens[params.header.out_base + row] = NONE;
    if params.want_logprobs != 0u {
        logprobs[params.logprobs_base + 2u * row] = nan_f32();
        logprobs[params.logprobs_base + 2u * row + 1u] = nan_f32();
    }
}

// The token, and its log-probabilities: under softmax(x) (raw: the row's log-sum-exp of x),
// and under the sampling distribution.
fn write_token(row: u32, token: u32, raw: vec2<f32>, sampled: f32, x: f32) {
    tokens[params.header.out_base + row] = token;
    if params.want_logprobs != 0u {
        logprobs[params.logprobs_base + 2u * row] = (x - raw.x) - ln_accurate(raw.y);
        logprobs[params.logprobs_base + 2u * row + 1u] = sampled;
    }
}

// What the first pass gathers in an invocation: the largest l, the raw log-sum-exp, and for a
// row sampled in that pass the log-sum-exp of l / tau.
struct First {
    top_key: u32,
    top_col: u32,
    raw: vec2<f32>,      // (m, sum exp(x - m)); sum 0: empty
    count: u32,
    bad: bool,
    scaled: vec2<f32>,   // (m, sum exp((l - m) / tau)) of the row's l
}

// (m, sum exp((v - m) / tau)) with v added: differences before the division, so that the
// sum keeps its digits however large v / tau is.
fn add_exp(acc: vec2<f32>, v: f32, tau: f32) -> vec2<f32> {
    if acc.y == 0.0 {
        return vec2<f32>(v, 1.0);
    }
    if v > acc.x {
        return vec2<f32>(v, acc.y * exp((acc.x - v) / tau) + 1.0);
    }
    return vec2<f32>(acc.x, acc.y + exp((v - acc.x) / tau));
}

// A row sampled in its first pass keeps, in each invocation, its best few candidates by
// l / tau + g (the order below: by score, the lower column first among equal ones): min-p's
// threshold still rises while the pass runs, so the best of them that clears the final
// threshold is the invocation's draw, unless every one of them fell below it after others
// were turned away. The largest l is not known yet, so candidates keep l and g and compare by
// (l_b - l_a) / tau against g_a - g_b: exact however large l / tau is.
const CANDIDATES: u32 = 4u;

struct Candidates {
    l: array<f32, CANDIDATES>,
    g: array<f32, CANDIDATES>,
    columns: array<u32, CANDIDATES>,
    n: u32,
    turned_away: bool,
}

// Whether (l, g) scores above (la, ga) at temperature tau.
fn scores_above(l: f32, g: f32, la: f32, ga: f32, tau: f32) -> bool {
    return (l - la) / tau > ga - g;
}

// Offers an element (columns come in increasing order, so an equal score stays behind).
fn offer(c: ptr<function, Candidates>, l: f32, g: f32, column: u32, tau: f32) {
    var at = (*c).n;
    if at == CANDIDATES {
        (*c).turned_away = true;
        if !scores_above(l, g, (*c).l[at - 1u], (*c).g[at - 1u], tau) {
            return;
        }
        at -= 1u;
    } else {
        (*c).n += 1u;
    }
    while at > 0u && scores_above(l, g, (*c).l[at - 1u], (*c).g[at - 1u], tau) {
        (*c).l[at] = (*c).l[at - 1u];
        (*c).g[at] = (*c).g[at - 1u];
        (*c).columns[at] = (*c).columns[at - 1u];
        at -= 1u;
    }
    (*c).l[at] = l;
    (*c).g[at] = g;
    (*c).columns[at] = column;
}

// The first pass of a row sampled in it: the element also becomes a candidate, if it clears
// min-p against the largest l so far (the threshold only rises).
fn sampled_add(f: ptr<function, First>, candidates: ptr<function, Candidates>, e: Elem, g: f32,
               s: Settings) {
    first_add(f, e);
    if e.kind != LANE_VALUE {
        return;
    }
    if s.min_p > 0.0 && weight(e.l, value_of((*f).top_key), s) < s.min_p {
        return;
    }
    offer(candidates, e.l, g, e.col, s.tau);
    if params.want_logprobs != 0u {
        (*f).scaled = add_exp((*f).scaled, e.l, s.tau);
    }
}

// Adds an element to the first pass.
fn first_add(f: ptr<function, First>, e: Elem) {
    (*f).bad = (*f).bad || e.kind == LANE_INVALID;
    if e.raw && params.want_logprobs != 0u {
        (*f).raw = add_exp((*f).raw, e.x, 1.0);
    }
    if e.kind == LANE_VALUE {
        (*f).count += 1u;
        let key = key_of(e.l);
        if ranks_before(key, e.col, (*f).top_key, (*f).top_col) {
            (*f).top_key = key;
            (*f).top_col = e.col;
        }
    }
}

// Adds an element to the first pass and to `list`, which keeps the best `most`.
fn listed_add(f: ptr<function, First>, e: Elem, list: ptr<function, List>, most: u32) {
    first_add(f, e);
    if e.kind == LANE_VALUE {
        insert_key(list, key_of(e.l), e.col, most);
    }
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    let row = wid.x;
    if lid == 0u {
        uniform_settings = settings_of(row);
        uniform_params = params;
    }
    let s = workgroupUniformLoad(&uniform_settings);
    let call = workgroupUniformLoad(&uniform_params);
    let r = token_row(row);
    // A row with neither top-k nor top-p is sampled in its first pass, unless min-p's kept
    // weight is wanted for a log-probability. A row with top-k up to KEPT_MAX, or top-p alone
    // whose cut falls within the row's first KEPT_MAX entries, is sampled from the winners of
    // its invocations' lists (each its best LIST_MAX), unless one of them runs out.
    let in_one_pass = !s.greedy && s.k == call.header.cols && s.p >= 1.0
        && (s.min_p == 0.0 || call.want_logprobs == 0u);
    let lists = !in_one_pass && (s.k <= KEPT_MAX || s.p < 1.0);
    if lid == 0u {
        atomicStore(&row_bad, select(0u, 1u, r.bad || !s.valid));
        atomicStore(&row_count, 0u);
        atomicStore(&missed, 0u);
    }
    workgroupBarrier();

    // Pass 1: the largest l (lowest column), the raw log-sum-exp, the lists.
    var first = First(0u, NONE, vec2<f32>(0.0), 0u, false, vec2<f32>(0.0));
    // The lists, or for a row sampled in this pass its candidates.
    var list = empty_list();
    var candidates: Candidates;
    candidates.n = 0u;
    candidates.turned_away = false;
    // A loop for each kind of row, so that each carries only its own code (on llvmpipe the
    // list code alone halved the pass of rows without lists).
    if in_one_pass {
        for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
            let x = block_x(r, j);
            let g = gumbel_block(r.seed, add64_u32(r.block0, j));
            let t = 4u * j;
            sampled_add(&first, &candidates, elem_at(r, s, row, t, x.x), g.x, s);
            sampled_add(&first, &candidates, elem_at(r, s, row, t + 1u, x.y), g.y, s);
            sampled_add(&first, &candidates, elem_at(r, s, row, t + 2u, x.z), g.z, s);
            sampled_add(&first, &candidates, elem_at(r, s, row, t + 3u, x.w), g.w, s);
        }
    } else if lists {
        // Lists deep enough that no invocation of a row in random order holds more of its
        // first entries (a few each, on average), and shallow enough that inserting stays
        // cheap (on lavapipe lists of 32 ran top-k at half the speed of lists of 8). A list that
        // runs out anyway sends the row to the radix select.
        let wanted_first = min(s.k, KEPT_MAX);
        let most = min(min(wanted_first, LIST_MAX),
                       max(8u, 3u * wanted_first / WORKGROUP_SIZE + 4u));
        for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
            let x = block_x(r, j);
            let t = 4u * j;
            listed_add(&first, elem_at(r, s, row, t, x.x), &list, most);
            listed_add(&first, elem_at(r, s, row, t + 1u, x.y), &list, most);
            listed_add(&first, elem_at(r, s, row, t + 2u, x.z), &list, most);
            listed_add(&first, elem_at(r, s, row, t + 3u, x.w), &list, most);
        }
    } else {
        for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
            let x = block_x(r, j);
            let t = 4u * j;
            first_add(&first, elem_at(r, s, row, t, x.x));
            first_add(&first, elem_at(r, s, row, t + 1u, x.y));
            first_add(&first, elem_at(r, s, row, t + 2u, x.z));
            first_add(&first, elem_at(r, s, row, t + 3u, x.w));
        }
    }
    let top_key = first.top_key;
    let top_col = first.top_col;
    let count = first.count;
    let bad = first.bad;
    if bad {
        atomicStore(&row_bad, 1u);
    }
    atomicAdd(&row_count, count);
    let raw = sum_exp(lid, first.raw.x, first.raw.y, 1.0);
    let top = best_entry(lid, top_key, top_col);
    if lid == 0u {
        decided = vec4<u32>(atomicLoad(&row_bad), atomicLoad(&row_count), top.x, top.y);
    }
    let d = workgroupUniformLoad(&decided);
    if d.x != 0u || d.y == 0u {
        if lid == 0u {
            write_none(row);
        }
        return;
    }
    let m = value_of(d.z);
    if s.greedy {
        if lid == 0u {
            write_token(row, d.w, raw, 0.0, elem_of_column(r, s, row, d.w).x);
        }
        return;
    }
    let top_p = s.p < 1.0;

    if in_one_pass {
        // The invocation's draw, scored against the row's largest l like every other.
        var key = 0u;
        var column = NONE;
        for (var i = 0u; i < candidates.n; i++) {
            if weight(candidates.l[i], m, s) >= s.min_p {
                key = draw_key(candidates.l[i], candidates.g[i], m, s);
                column = candidates.columns[i];
                break;
            }
        }
        if column == NONE && candidates.turned_away {
            atomicStore(&missed, 1u);
        }
        let scaled = sum_exp(lid, first.scaled.x, first.scaled.y, s.tau);
        let won = best_entry(lid, key, column);
        if lid == 0u {
            decided.x = atomicLoad(&missed);
        }
        if workgroupUniformLoad(&decided).x == 0u {
            if lid == 0u {
                let e = elem_of_column(r, s, row, won.y);
                write_token(row, won.y, raw, (e.l - scaled.x) / s.tau - ln_accurate(scaled.y), e.x);
            }
            return;
        }
        // An invocation lost its draw to min-p's rising threshold: the last pass below.
    }

    if lists {
        // Top-k bounds the kept set by its k entries; otherwise top-p's cut must fall within
        // the first KEPT_MAX, against the total weight of the entries min-p keeps, which one
        // more pass sums (the same fixed-point weights as everywhere).
        let bounded = s.k <= KEPT_MAX;
        var rounds = s.k;
        var wanted = vec2<u32>(0u, 0u);
        if !bounded {
            rounds = KEPT_MAX;
            var total = vec2<u32>(0u, 0u);
            for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
                let x = block_x(r, j);
                for (var i = 0u; i < 4u; i++) {
                    let e = elem_at(r, s, row, 4u * j + i, x[i]);
                    let w = weight(e.l, m, s);
                    if e.kind == LANE_VALUE && w >= s.min_p {
                        total = add64(total, fixed(w));
                    }
                }
            }
            // And the weight the lists hold: a cut past all of it is past the rounds too.
            var listed = vec2<u32>(0u, 0u);
            for (var i = 0u; i < list.n; i++) {
                let w = weight(value_of(list.keys[i]), m, s);
                if w >= s.min_p {
                    listed = add64(listed, fixed(w));
                }
            }
            if lid < 2u {
                atomicStore(&hist_lo[lid], 0u);
                atomicStore(&hist_hi[lid], 0u);
            }
            workgroupBarrier();
            add_to_bin(0u, total);
            add_to_bin(1u, listed);
            workgroupBarrier();
            if lid == 0u {
                let cut = scaled(bin_total(0u), s.p);
                let hopeless = !ge64(bin_total(1u), cut);
                selection = vec4<u32>(cut, select(0u, 1u, hopeless), 0u);
            }
            let sel = workgroupUniformLoad(&selection);
            wanted = sel.xy;
            if sel.z != 0u {
                rounds = 0u;
            }
        }
        // The first entries of the row, in order: each round the best head of the lists. An
        // invocation out of entries that turned some away may hold more of them: then the
        // radix select below, as when top-p's cut lies past the rounds.
        var head = 0u;
        var taken = vec2<u32>(0u, 0u);
        var reached = bounded;
        for (var t = 0u; t < rounds; t++) {
            var key = 0u;
            var column = NONE;
            if head < list.n {
                key = list.keys[head];
                column = list.columns[head];
            } else if list.turned_away {
                atomicStore(&missed, 1u);
            }
            let won = best_entry(lid, key, column);
            if won.y != NONE && won.y == column {
                head += 1u;
            }
            if lid == 0u {
                kept_key[t] = won.x;
                kept_col[t] = won.y;
                if !bounded {
                    // Enough once the entries taken reach top-p's share, or min-p ends them.
                    let w = weight(value_of(won.x), m, s);
                    taken = add64(taken, fixed(w));
                    let stop = won.y == NONE || w < s.min_p || ge64(taken, wanted);
                    decided.x = select(0u, 1u, stop);
                }
            }
            if !bounded && workgroupUniformLoad(&decided).x != 0u {
                reached = true;
                rounds = t + 1u;
                break;
            }
        }
        if !reached {
            atomicStore(&missed, 1u);
        }
        if lid == 0u {
            // min-p keeps a prefix of them; top-p a prefix of that.
            var n = 0u;
            var total = vec2<u32>(0u, 0u);
            while n < rounds && kept_col[n] != NONE {
                let w = weight(value_of(kept_key[n]), m, s);
                if w < s.min_p {
                    break;
                }
                total = add64(total, fixed(w));
                n += 1u;
            }
            if top_p {
                if bounded {
                    wanted = scaled(total, s.p);
                }
                var before = vec2<u32>(0u, 0u);
                for (var t = 0u; t < n; t++) {
                    if ge64(before, wanted) && t > 0u {
                        n = t;
                        break;
                    }
                    before = add64(before, fixed(weight(value_of(kept_key[t]), m, s)));
                }
            }
            decided = vec4<u32>(n, atomicLoad(&missed), 0u, 0u);
        }
        let kept = workgroupUniformLoad(&decided);
        if kept.y == 0u {
            var key = 0u;
            var column = NONE;
            for (var t = lid; t < kept.x; t += WORKGROUP_SIZE) {
                let col = kept_col[t];
                let scored = draw_key(value_of(kept_key[t]), gumbel_of_column(r, col), m, s);
                if ranks_before(scored, col, key, column) {
                    key = scored;
                    column = col;
                }
            }
            let won = best_entry(lid, key, column);
            if lid == 0u {
                var z = 0.0;
                for (var t = 0u; t < kept.x; t++) {
                    z += weight(value_of(kept_key[t]), m, s);
                }
                let e = elem_of_column(r, s, row, won.y);
                write_token(row, won.y, raw, (e.l - m) / s.tau - ln_accurate(z), e.x);
            }
            return;
        }
    }

    // Top-k past the lists, then top-p over what top-k and min-p keep.
    var cut_k = KEEP_ALL;
    if s.k < d.y {
        cut_k = select_cut(r, s, row, lid, m, false, KEEP_ALL);
    }
    var cut_p = KEEP_ALL;
    if top_p {
        cut_p = select_cut(r, s, row, lid, m, true, cut_k);
    }
    // Gumbel-max over the kept set.
    var best_key = 0u;
    var best_col = NONE;
    var z = 0.0;
    for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
        let x = block_x(r, j);
        var kept = vec4<bool>(false);
        var l = vec4<f32>(0.0);
        var any = false;
        for (var i = 0u; i < 4u; i++) {
            let e = elem_at(r, s, row, 4u * j + i, x[i]);
            if e.kind == LANE_VALUE {
                let key = key_of(e.l);
                let w = weight(e.l, m, s);
                kept[i] = within(key, e.col, cut_k) && within(key, e.col, cut_p) && w >= s.min_p;
                if kept[i] {
                    l[i] = e.l;
                    z += w;
                    any = true;
                }
            }
        }
        if any {
            let g = gumbel_block(r.seed, add64_u32(r.block0, j));
            for (var i = 0u; i < 4u; i++) {
                if kept[i] {
                    let col = 4u * j + i - r.lead;
                    let key = draw_key(l[i], g[i], m, s);
                    if ranks_before(key, col, best_key, best_col) {
                        best_key = key;
                        best_col = col;
                    }
                }
            }
        }
    }
    let zs = sum_exp(lid, 0.0, z, 1.0);
    let won = best_entry(lid, best_key, best_col);
    if lid == 0u {
        let e = elem_of_column(r, s, row, won.y);
        write_token(row, won.y, raw, (e.l - m) / s.tau - ln_accurate(zs.y), e.x);
    }
}

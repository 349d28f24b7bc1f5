// The token sampler, one workgroup per row (`sample_row`): a token drawn by Gumbel-max from the
// row's distribution after its own filters, and optionally two log-probabilities of it. The
// importing kernel provides token_settings' hooks: token_listed (token lists and masks, two
// more storage buffers than WebGPU's default limits allow) or token_unlisted. token_split
// spreads long rows over workgroups and hands it the rows it does not take.
//
// A row's settings (TokenSettings): temperature, top_k, top_p, min_p, soft_cap, top_n_sigma,
// penalties, its token list and its mask. With x the logits as given, c = cap * tanh(x / cap)
// (or x without a cap), l = c + bias, then for a listed token its sparse bias and penalties
// (token_settings' elem_at), a masked token banned:
// - a greedy row (temperature below GREEDY_BELOW) takes the lowest column of the largest l;
// - otherwise, with m the row's largest l and weights w = exp((l - m) / tau), the kept set is
//   the top_k first entries in (l, lower column) order that have w >= min_p and
//   l >= m - top_n_sigma * sigma (sigma: the standard deviation of the row's valid l), and of
//   those, in that order, each entry while the weight of the kept entries before it is below
//   top_p times theirs in all; the token is the kept column with the largest l / tau + g.
// Top-p's weights are fixed-point (32 fractional bits of the largest weight), so that their
// sums are exact and the same in any order.
//
// Passes over the row (docs/design.md): rows without top-k or top-p are sampled in their
// first pass (min-p against each invocation's running maximum). Rows with top-k up to KEPT_MAX,
// or top-p without top-k whose cut falls within that many entries, take the row's first entries
// in order from rounds over the invocations' lists of that pass, and make noise for those
// alone. Other rows find top-k's and top-p's cuts by radix selects (a count, or a weight, per
// histogram bin) and end with a pass of Gumbel-max over the kept set that makes noise only for
// blocks holding a kept element. Rows that ask for top entries take one more pass
// (token_top).
//
// The pieces: token_settings (a row's settings and elements), token_first_pass, token_weights
// (weights, draws, top-p's fixed point and the `kept` predicate), token_select (the radix
// select), token_top (the top log-probabilities). `sample_row` takes a row through the first
// pass and hands it to its path.
#import sampler_row
#import params
#import best_entry
#import token_settings
#import token_weights
#import token_first_pass
#import workgroup_sum
#import token_select
#import token_top

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
    lists_base: u32,
    lists_count: u32,     // entries in the lists binding; 0: no lists
    masks_base: u32,
    masks_count: u32,     // masks in the masks binding; 0: no masks
    mask_words: u32,      // words a mask: ceil(K / 32)
    logprobs_pitch: u32,  // u32 words of logprobs a row: 2, and 2 a top entry
    top_n: u32,           // top log-probabilities a row (token_top); 0: none
    top_processed: u32,   // 1: processed ones too
    stage: u32,           // token_split's stage; whole-row kernels: unused
    slices: u32,          // token_split: workgroups a row
    slice_blocks: u32,    // token_split: noise blocks a slice
    requests: u32,        // token_verify: requests in the call; 0 in the sampler's calls
    drafts_base: u32,
    offsets_base: u32,
    draft_probs_base: u32,
    has_draft_probs: u32,
    accepted_base: u32,
    positions: u32,       // token_verify: target positions in the call
    list_longest: u32,    // the longest list a row may name (at most LIST_LEN_MAX)
}

alias Params = TokenParams;
const BINDING_SETTINGS: u32 = 5u;   // BINDING_FAMILY
const BINDING_BIAS: u32 = 6u;
const BINDING_STATES: u32 = 7u;
const BINDING_STATE_INDEX: u32 = 8u;
const BINDING_TOKENS: u32 = 9u;
const BINDING_LOGPROBS: u32 = 10u;
@group(0) @binding(BINDING_SETTINGS) var<storage, read> settings: array<TokenSettings>;
@group(0) @binding(BINDING_BIAS) var<storage, read> bias: array<f32>;
@group(0) @binding(BINDING_STATES) var<storage, read> states: array<RandomState>;
@group(0) @binding(BINDING_STATE_INDEX) var<storage, read> state_index: array<u32>;
@group(0) @binding(BINDING_TOKENS) var<storage, read_write> tokens: array<u32>;
// The log-probabilities' f32 as their bits, beside the top entries' tokens.
@group(0) @binding(BINDING_LOGPROBS) var<storage, read_write> logprobs: array<u32>;

fn needs_sum() -> bool {
    return false;
}

var<workgroup> row_bad: atomic<u32>;
var<workgroup> row_count: atomic<u32>;
var<workgroup> missed: atomic<u32>;
var<workgroup> decided: vec4<u32>;
// The row's settings and the call's parameters as values WGSL knows to be uniform: they choose
// among paths that call barriers.
var<workgroup> uniform_settings: Settings;
var<workgroup> uniform_params: Params;
var<workgroup> uniform_least: f32;
var<workgroup> sum_m: array<f32, WORKGROUP_SIZE>;
var<workgroup> sum_s: array<f32, WORKGROUP_SIZE>;
// The first entries of a row in order, from its invocations' lists.
const KEPT_MAX: u32 = 256u;
var<workgroup> kept_key: array<u32, KEPT_MAX>;
var<workgroup> kept_col: array<u32, KEPT_MAX>;
// What a row's draw kept, for a kernel that draws from it again (token_verify): its first
// `listed` entries in kept_key and kept_col, or where 0 every valid entry that `kept` keeps
// with (cut_k, cut_p) and min_p; the row's largest l (m), ln of the kept entries' weight
// against it, the token drawn, and the row's raw log-sum-exp.
struct KeptSet {
    listed: u32,
    token: u32,
    cut_k: vec2<u32>,
    cut_p: vec2<u32>,
    m: f32,
    log_z: f32,
    min_p: f32,
    raw: vec2<f32>,
}
var<workgroup> kept_set: KeptSet;

// Invocation 0 records the kept set of the row's draw.
fn keep_set(listed: u32, token: u32, cuts: vec4<u32>, s: Settings, m: f32, log_z: f32,
            raw: vec2<f32>) {
    kept_set = KeptSet(listed, token, cuts.xy, cuts.zw, m, log_z, s.min_p, raw);
}
// (m, s) with s = sum exp((v - m) / tau) over every invocation's (m, s), in every invocation;
// s = 0 is empty.
fn sum_exp(lid: u32, m: f32, s: f32, tau: f32) -> vec2<f32> {
    sum_m[lid] = m;
    sum_s[lid] = s;
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if lid < half {
            let merged = merge_exp(vec2<f32>(sum_m[lid], sum_s[lid]),
                                   vec2<f32>(sum_m[lid + half], sum_s[lid + half]), tau);
            sum_m[lid] = merged.x;
            sum_s[lid] = merged.y;
        }
    }
    workgroupBarrier();
    let total = vec2<f32>(sum_m[0], sum_s[0]);
    workgroupBarrier();
    return total;
}

// Two (m, sum exp((v - m) / tau)) as one; s = 0 is empty.
fn merge_exp(a: vec2<f32>, b: vec2<f32>, tau: f32) -> vec2<f32> {
    if b.y == 0.0 {
        return a;
    }
    if a.y == 0.0 {
        return b;
    }
    if b.x > a.x {
        return vec2<f32>(b.x, b.y + a.y * exp((a.x - b.x) / tau));
    }
    return vec2<f32>(a.x, a.y + b.y * exp((b.x - a.x) / tau));
}

// v added to a compensated sum (sum, lost low part): each invocation adds up to K / 64 terms,
// and top-n-sigma's threshold should carry the sums' rounding once, not once a term.
fn add_compensated(acc: vec2<f32>, v: f32) -> vec2<f32> {
    let y = v - acc.y;
    let t = acc.x + y;
    return vec2<f32>(t, (t - acc.x) - y);
}

// Over the row's valid l, the sum of l - shift, or of its square: each invocation's share
// compensated, then summed over the workgroup.
fn row_total(r: Row, s: Settings, row: u32, lid: u32, shift: f32, square: bool) -> f32 {
    if s.transformed {
        return workgroup_sum(lid, own_total(r, s, row, lid, shift, square, true));
    }
    return workgroup_sum(lid, own_total(r, s, row, lid, shift, square, false));
}

// row_total over this invocation's entries, their l after `transform` (as first_pass_with).
fn own_total(r: Row, s: Settings, row: u32, lid: u32, shift: f32, square: bool,
             transform: bool) -> f32 {
    var acc = vec2<f32>(0.0);
    let own = walk(vec2<u32>(0u, r.blocks), lid);
    for (var j = own.start; j < own.end; j += own.step) {
        let x = block_x(r, j);
        for (var lane = 0u; lane < 4u; lane++) {
            let e = elem_with(r, s, row, 4u * j + lane, x[lane], transform);
            if e.kind == LANE_VALUE {
                let d = e.l - shift;
                acc = add_compensated(acc, select(d, d * d, square));
            }
        }
    }
    return acc.x;
}

// The standard deviation of the row's `count` valid l (divided by count): their mean from the
// sum of l - m, whose terms share a sign, then the sum of squares about it, whose first-order
// error from the mean's cancels. Two passes over the row, for rows with top-n-sigma only.
fn row_sigma(r: Row, s: Settings, row: u32, lid: u32, m: f32, count: u32) -> f32 {
    let mean = m + row_total(r, s, row, lid, m, false) / f32(count);
    return sqrt(row_total(r, s, row, lid, mean, true) / f32(count));
}

fn write_none(row: u32) {
    tokens[params.header.out_base + row] = NONE;
    if params.want_logprobs != 0u {
        let at = params.logprobs_base + row * params.logprobs_pitch;
        logprobs[at] = NAN_BITS;
        logprobs[at + 1u] = NAN_BITS;
        write_no_tops(row);
    }
}

// The token, and its log-probabilities: under softmax(x) (raw: the row's log-sum-exp of x),
// and under the sampling distribution.
fn write_token(row: u32, token: u32, raw: vec2<f32>, sampled: f32, x: f32) {
    tokens[params.header.out_base + row] = token;
    if params.want_logprobs != 0u {
        let at = params.logprobs_base + row * params.logprobs_pitch;
        logprobs[at] = bitcast<u32>((x - raw.x) - ln_accurate(raw.y));
        logprobs[at + 1u] = bitcast<u32>(sampled);
    }
}

// The paths a row takes after its first pass (see the top of the file).
const PATH_ONE_PASS: u32 = 0u;
const PATH_LISTS: u32 = 1u;
const PATH_SELECT: u32 = 2u;

// A row with neither top-k nor top-p nor top-n-sigma is sampled in its first pass, unless
// min-p's kept weight is wanted for a log-probability. A row with top-k up to KEPT_MAX, or
// top-p without top-k whose cut falls within the row's first KEPT_MAX entries, is sampled from
// the winners of its invocations' lists (each its best LIST_MAX), unless one of them runs out.
// (min-p's kept weight is also wanted where the row's draw is verified against: token_verify.)
// (With a top-k past KEPT_MAX, top-p's share is of the top-k entries' weight, which only the
// radix select finds.)
fn path_of(s: Settings, call: Params) -> u32 {
    if !s.greedy && s.k == call.header.cols && s.p >= 1.0 && s.n_sigma == 0.0
        && (s.min_p == 0.0 || !weight_wanted(call)) {
        return PATH_ONE_PASS;
    }
    if s.k <= KEPT_MAX || (s.p < 1.0 && s.k == call.header.cols) {
        return PATH_LISTS;
    }
    return PATH_SELECT;
}

// The row's settings, and the call's parameters in `uniform_params`, as values WGSL knows to be
// uniform. Every invocation judges the row's settings and invocation 0 shares its judgement.
// Judged by invocation 0 alone, llvmpipe's GL driver read params.settings_base as 0 (each row
// took the settings at the start of the window).
fn uniform_row(row: u32, lid: u32) -> Settings {
    let own = settings_of(row);
    if lid == 0u {
        uniform_settings = own;
        uniform_params = params;
    }
    return workgroupUniformLoad(&uniform_settings);
}

// The workgroup's row flags cleared (a bad state index or bad settings mark the row), and the
// row's token list read: one that is not in order, or names a column past K, marks it too.
fn start_row(r: Row, s: Settings, lid: u32) {
    if lid == 0u {
        atomicStore(&row_bad, select(0u, 1u, r.bad || !s.valid));
        atomicStore(&row_count, 0u);
        atomicStore(&missed, 0u);
    }
    workgroupBarrier();
    if s.list_len != 0u {
        load_row_list(s, lid);
    }
}

// Row `row` in one workgroup (the caller has loaded the parameters).
fn sample_row(row: u32, lid: u32) {
    draw_row(token_row(row), row, lid);
}

// Row `row` in one workgroup, its noise from `r`: its token and log-probabilities written, and
// its kept set in kept_set. False where the row has no token.
fn draw_row(r: Row, row: u32, lid: u32) -> bool {
    var s = uniform_row(row, lid);
    let call = workgroupUniformLoad(&uniform_params);
    let path = path_of(s, call);
    start_row(r, s, lid);

    // Pass 1: the largest l (lowest column), the raw log-sum-exp, the lists.
    var first = empty_first();
    // The lists, or for a row sampled in this pass its candidates.
    var list = empty_list();
    var candidates: Candidates;
    candidates.n = 0u;
    candidates.turned_away = false;
    first_pass(r, s, row, lid, path, vec2<u32>(0u, r.blocks), &first, &list, &candidates);
    if first.bad {
        atomicStore(&row_bad, 1u);
    }
    atomicAdd(&row_count, first.count);
    if call.top_n != 0u {
        top_entries(r, s, row, lid, call.top_n, call.top_processed != 0u);
    }
    let raw = sum_exp(lid, first.raw.x, first.raw.y, 1.0);
    let top = best_entry(lid, first.top_key, first.top_col);
    if lid == 0u {
        decided = vec4<u32>(atomicLoad(&row_bad), atomicLoad(&row_count), top.x, top.y);
    }
    let d = workgroupUniformLoad(&decided);
    if d.x != 0u || d.y == 0u {
        if lid == 0u {
            write_none(row);
        }
        return false;
    }
    let m = value_of(d.z);
    if s.greedy {
        if lid == 0u {
            write_token(row, d.w, raw, 0.0, elem_of_column(r, s, row, d.w).x);
            // The argmax alone, with probability 1.
            write_tops(row, raw, s, m, 0.0, 1u);
            kept_key[0] = d.z;
            kept_col[0] = d.w;
            keep_set(1u, d.w, vec4<u32>(KEEP_ALL, KEEP_ALL), s, m, 0.0, raw);
        }
        return true;
    }
    if s.n_sigma > 0.0 {
        // Top-n-sigma keeps l >= m - n sigma, which is w >= exp(-n sigma / tau): min-p's
        // comparison, with the larger of the two least weights.
        let least = exp(-s.n_sigma * row_sigma(r, s, row, lid, m, d.y) / s.tau);
        if lid == 0u {
            uniform_least = least;
        }
        s.min_p = max(s.min_p, workgroupUniformLoad(&uniform_least));
    }
    // Each path returns whether it drew the token; one that could not hands the row on.
    if path == PATH_ONE_PASS
        && sample_in_one_pass(r, s, row, lid, m, raw, first.scaled, &candidates) {
        return true;
    }
    if path == PATH_LISTS && sample_from_lists(r, s, row, lid, m, raw, &list) {
        return true;
    }
    sample_after_selects(r, s, row, lid, m, raw, d.y);
    return true;
}

// The first pass over the row's noise blocks [blocks.x, blocks.y): a loop for each path, so that
// each carries only its own code (on llvmpipe the list code alone halved the pass of rows
// without lists).
fn first_pass(r: Row, s: Settings, row: u32, lid: u32, path: u32, blocks: vec2<u32>,
              first: ptr<function, First>, list: ptr<function, List>,
              candidates: ptr<function, Candidates>) {
    if s.transformed {
        first_pass_with(r, s, row, lid, path, blocks, first, list, candidates, true);
    } else {
        first_pass_with(r, s, row, lid, path, blocks, first, list, candidates, false);
    }
}

// The first pass, its elements' l after `transform` (a constant at each call, so that the
// loops of rows without a cap, mask, bias or list test for none: each test an element, taken
// or not, cost llvmpipe's first pass of a plain row about a third of its time).
fn first_pass_with(r: Row, s: Settings, row: u32, lid: u32, path: u32, blocks: vec2<u32>,
                   first: ptr<function, First>, list: ptr<function, List>,
                   candidates: ptr<function, Candidates>, transform: bool) {
    let own = walk(blocks, lid);
    if path == PATH_ONE_PASS && s.min_p == 0.0 {
        // Without min-p the best score alone is the draw: kept in scalars rather than in the
        // candidates' arrays, whose indexing cost more than the noise on llvmpipe.
        var best = Scored(0.0, 0.0, NONE);
        for (var j = own.start; j < own.end; j += own.step) {
            let x = block_x(r, j);
            let g = gumbel_block(r.seed, add64_u32(r.block0, j));
            let t = 4u * j;
            best_add(first, &best, elem_with(r, s, row, t, x.x, transform), g.x, s);
            best_add(first, &best, elem_with(r, s, row, t + 1u, x.y, transform), g.y, s);
            best_add(first, &best, elem_with(r, s, row, t + 2u, x.z, transform), g.z, s);
            best_add(first, &best, elem_with(r, s, row, t + 3u, x.w, transform), g.w, s);
        }
        if best.column != NONE {
            offer(candidates, best.l, best.g, best.column, s.tau);
        }
    } else if path == PATH_ONE_PASS {
        for (var j = own.start; j < own.end; j += own.step) {
            let x = block_x(r, j);
            let g = gumbel_block(r.seed, add64_u32(r.block0, j));
            let t = 4u * j;
            sampled_add(first, candidates, elem_with(r, s, row, t, x.x, transform), g.x, s);
            sampled_add(first, candidates, elem_with(r, s, row, t + 1u, x.y, transform), g.y, s);
            sampled_add(first, candidates, elem_with(r, s, row, t + 2u, x.z, transform), g.z, s);
            sampled_add(first, candidates, elem_with(r, s, row, t + 3u, x.w, transform), g.w, s);
        }
    } else if path == PATH_LISTS && list_depth(s) == SHORT_LIST {
        var short = empty_short_list();
        for (var j = own.start; j < own.end; j += own.step) {
            let x = block_x(r, j);
            let t = 4u * j;
            short_listed_add(first, elem_with(r, s, row, t, x.x, transform), &short);
            short_listed_add(first, elem_with(r, s, row, t + 1u, x.y, transform), &short);
            short_listed_add(first, elem_with(r, s, row, t + 2u, x.z, transform), &short);
            short_listed_add(first, elem_with(r, s, row, t + 3u, x.w, transform), &short);
        }
        *list = list_of_short(short);
    } else if path == PATH_LISTS {
        let most = list_depth(s);
        for (var j = own.start; j < own.end; j += own.step) {
            let x = block_x(r, j);
            let t = 4u * j;
            listed_add(first, elem_with(r, s, row, t, x.x, transform), list, most);
            listed_add(first, elem_with(r, s, row, t + 1u, x.y, transform), list, most);
            listed_add(first, elem_with(r, s, row, t + 2u, x.z, transform), list, most);
            listed_add(first, elem_with(r, s, row, t + 3u, x.w, transform), list, most);
        }
    } else {
        for (var j = own.start; j < own.end; j += own.step) {
            let x = block_x(r, j);
            let t = 4u * j;
            first_add(first, elem_with(r, s, row, t, x.x, transform));
            first_add(first, elem_with(r, s, row, t + 1u, x.y, transform));
            first_add(first, elem_with(r, s, row, t + 2u, x.z, transform));
            first_add(first, elem_with(r, s, row, t + 3u, x.w, transform));
        }
    }
}

// How many entries each invocation's list keeps in the first pass of a row sampled from the
// lists: deep enough that no invocation of a row in random order holds more of its first
// entries (a few each, on average), and shallow enough that inserting stays cheap (on lavapipe
// lists of 32 ran top-k at half the speed of lists of 8). A list that runs out anyway sends
// the row to the radix select.
fn list_depth(s: Settings) -> u32 {
    let wanted_first = min(s.k, KEPT_MAX);
    return min(min(wanted_first, LIST_MAX), max(8u, 3u * wanted_first / WORKGROUP_SIZE + 4u));
}

// The rounds' winners by groups rather than by best_entry's tree, in workgroups up to
// MERGE_BY_GROUPS_UP_TO: the first few invocations each take a group of heads (about the square
// root of the workgroup's), invocation 0 their winners. Three barriers a round where the tree
// takes log2(WORKGROUP_SIZE) + 3: a round is little work, and llvmpipe pays for every barrier in
// every invocation. Wider workgroups (llvmpipe's for its loop budget) keep the tree, whose
// rounds count fewer iterations.
const MERGE_BY_GROUPS_UP_TO: u32 = 256u;
const MERGE_GROUPS_MAX: u32 = 16u;
var<workgroup> group_key: array<u32, MERGE_GROUPS_MAX>;
var<workgroup> group_col: array<u32, MERGE_GROUPS_MAX>;
var<workgroup> merged: vec2<u32>;

// Heads a group takes: 8 of 64, 16 of 128 or 256.
fn merge_group() -> u32 {
    return 1u << ((countTrailingZeros(WORKGROUP_SIZE) + 1u) / 2u);
}

// One round of merging the invocations' lists, whose heads are (key, column) (0, NONE where a
// list is empty): the best head, in every invocation; `advance` where it was this one's.
// The heads go where best_entry keeps its offers (the two never overlap).
fn merge_round(lid: u32, key: u32, column: u32, advance: ptr<function, bool>) -> vec2<u32> {
    if WORKGROUP_SIZE > MERGE_BY_GROUPS_UP_TO {
        let won = best_entry(lid, key, column);
        *advance = won.y != NONE && won.y == column;
        return won;
    }
    best_key[lid] = key;
    best_column[lid] = column;
    workgroupBarrier();
    let group = merge_group();
    if lid < WORKGROUP_SIZE / group {
        var best = vec2<u32>(best_key[lid * group], best_column[lid * group]);
        for (var i = lid * group + 1u; i < (lid + 1u) * group; i++) {
            if ranks_before(best_key[i], best_column[i], best.x, best.y) {
                best = vec2<u32>(best_key[i], best_column[i]);
            }
        }
        group_key[lid] = best.x;
        group_col[lid] = best.y;
    }
    workgroupBarrier();
    if lid == 0u {
        var best = vec2<u32>(group_key[0], group_col[0]);
        for (var i = 1u; i < WORKGROUP_SIZE / group; i++) {
            if ranks_before(group_key[i], group_col[i], best.x, best.y) {
                best = vec2<u32>(group_key[i], group_col[i]);
            }
        }
        merged = best;
    }
    // Every invocation has read the heads and the winner before the next round writes them:
    // it passes this load's barrier and that round's first.
    let won = workgroupUniformLoad(&merged);
    *advance = won.y != NONE && won.y == column;
    return won;
}

// A row sampled in its first pass: each invocation's draw, scored against the row's largest l
// like every other (`own_scaled`: the invocation's log-sum-exp of l / tau from its first pass).
// False where an invocation lost its draw to min-p's rising threshold.
fn sample_in_one_pass(r: Row, s: Settings, row: u32, lid: u32, m: f32, raw: vec2<f32>,
                      own_scaled: vec2<f32>, candidates: ptr<function, Candidates>) -> bool {
    var key = 0u;
    var column = NONE;
    for (var i = 0u; i < (*candidates).n; i++) {
        if passes_min_p(weight((*candidates).l[i], m, s), s) {
            key = draw_key((*candidates).l[i], (*candidates).g[i], m, s);
            column = (*candidates).columns[i];
            break;
        }
    }
    if column == NONE && (*candidates).turned_away {
        atomicStore(&missed, 1u);
    }
    let scaled = sum_exp(lid, own_scaled.x, own_scaled.y, s.tau);
    let won = best_entry(lid, key, column);
    if lid == 0u {
        decided.x = atomicLoad(&missed);
    }
    let drawn = workgroupUniformLoad(&decided).x == 0u;
    if drawn && lid == 0u {
        let e = elem_of_column(r, s, row, won.y);
        let log_z = ln_accurate(scaled.y);
        write_token(row, won.y, raw, (e.l - scaled.x) / s.tau - log_z, e.x);
        // No filter: every valid entry is kept.
        write_tops(row, raw, s, scaled.x, log_z, TOP_MAX);
        keep_set(0u, won.y, vec4<u32>(KEEP_ALL, KEEP_ALL), s, scaled.x, log_z, raw);
    }
    return drawn;
}

// The fixed-point weight of this invocation's entries that min-p keeps.
fn kept_weight(r: Row, s: Settings, row: u32, lid: u32, m: f32) -> vec2<u32> {
    if s.transformed {
        return kept_weight_with(r, s, row, lid, m, true);
    }
    return kept_weight_with(r, s, row, lid, m, false);
}

// kept_weight, its elements' l after `transform` (as first_pass_with).
fn kept_weight_with(r: Row, s: Settings, row: u32, lid: u32, m: f32, transform: bool)
    -> vec2<u32> {
    var total = vec2<u32>(0u, 0u);
    let own = walk(vec2<u32>(0u, r.blocks), lid);
    for (var j = own.start; j < own.end; j += own.step) {
        let x = block_x(r, j);
        for (var i = 0u; i < 4u; i++) {
            let e = elem_with(r, s, row, 4u * j + i, x[i], transform);
            let w = weight(e.l, m, s);
            if e.kind == LANE_VALUE && passes_min_p(w, s) {
                total = add64(total, fixed(w));
            }
        }
    }
    return total;
}

// A row sampled from the winners of its invocations' lists: the row's first entries in order,
// filtered as `kept` does along that order, and Gumbel-max over them. False where a list ran
// out, or top-p's cut lies past KEPT_MAX entries: then the radix selects.
fn sample_from_lists(r: Row, s: Settings, row: u32, lid: u32, m: f32, raw: vec2<f32>,
                     list: ptr<function, List>) -> bool {
    // Top-k bounds the kept set by its k entries; otherwise top-p's cut must fall within
    // the first KEPT_MAX, against the total weight of the entries min-p keeps, which one
    // more pass sums (the same fixed-point weights as everywhere).
    let bounded = s.k <= KEPT_MAX;
    var rounds = s.k;
    var wanted = vec2<u32>(0u, 0u);
    if !bounded {
        rounds = KEPT_MAX;
        let total = kept_weight(r, s, row, lid, m);
        // And the weight the lists hold: a cut past all of it is past the rounds too.
        var listed = vec2<u32>(0u, 0u);
        for (var i = 0u; i < (*list).n; i++) {
            let w = weight(value_of((*list).keys[i]), m, s);
            if passes_min_p(w, s) {
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
        if head < (*list).n {
            key = (*list).keys[head];
            column = (*list).columns[head];
        } else if (*list).turned_away {
            atomicStore(&missed, 1u);
        }
        var advance = false;
        let won = merge_round(lid, key, column, &advance);
        if advance {
            head += 1u;
        }
        if lid == 0u {
            kept_key[t] = won.x;
            kept_col[t] = won.y;
            if !bounded {
                // Enough once the entries taken reach top-p's share, or min-p ends them.
                let w = weight(value_of(won.x), m, s);
                taken = add64(taken, fixed(w));
                let stop = won.y == NONE || !passes_min_p(w, s) || ge64(taken, wanted);
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
        decided.x = atomicLoad(&missed);
    }
    if workgroupUniformLoad(&decided).x != 0u {
        return false;
    }
    draw_from_kept(r, s, row, lid, m, raw, rounds, bounded, wanted);
    return true;
}

// The draw from the row's first `rounds` entries in order (kept_key, kept_col; NONE past the
// row's valid ones): min-p keeps a prefix of them, top-p a prefix of that (its cut `wanted`
// where not `bounded` by top-k, otherwise found here), and the token is Gumbel-max over those.
fn draw_from_kept(r: Row, s: Settings, row: u32, lid: u32, m: f32, raw: vec2<f32>, rounds: u32,
                  bounded: bool, cut: vec2<u32>) {
    var wanted = cut;
    // Every invocation has read `decided` before invocation 0 writes it again.
    workgroupBarrier();
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
        if s.p < 1.0 {
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
        decided.x = n;
    }
    let chosen = workgroupUniformLoad(&decided).x;
    var key = 0u;
    var column = NONE;
    for (var t = lid; t < chosen; t += WORKGROUP_SIZE) {
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
        for (var t = 0u; t < chosen; t++) {
            z += weight(value_of(kept_key[t]), m, s);
        }
        let e = elem_of_column(r, s, row, won.y);
        write_token(row, won.y, raw, (e.l - m) / s.tau - ln_accurate(z), e.x);
        write_tops(row, raw, s, m, ln_accurate(z), chosen);
        keep_set(chosen, won.y, vec4<u32>(KEEP_ALL, KEEP_ALL), s, m, ln_accurate(z), raw);
    }
}

// A row whose cuts come from radix selects (top-k's over the row's `count` valid entries, then
// top-p's over what top-k and min-p keep), then Gumbel-max over the kept set in a last pass
// that makes noise only for blocks holding a kept entry.
fn sample_after_selects(r: Row, s: Settings, row: u32, lid: u32, m: f32, raw: vec2<f32>,
                        count: u32) {
    // Top-k past the lists, then top-p over what top-k and min-p keep.
    var cut_k = KEEP_ALL;
    if s.k < count {
        cut_k = select_cut(r, s, row, lid, m, false, KEEP_ALL);
    }
    var cut_p = KEEP_ALL;
    if s.p < 1.0 {
        cut_p = select_cut(r, s, row, lid, m, true, cut_k);
    }
    let drawn = draw_over(r, s, row, lid, m, vec2<u32>(0u, r.blocks), cut_k, cut_p);
    let zs = sum_exp(lid, 0.0, drawn.z, 1.0);
    let won = best_entry(lid, drawn.key, drawn.col);
    if lid == 0u {
        let e = elem_of_column(r, s, row, won.y);
        write_token(row, won.y, raw, (e.l - m) / s.tau - ln_accurate(zs.y), e.x);
        // The filters keep a prefix of the row's order.
        var kept_top = 0u;
        while kept_top < params.top_n && top_l_col[kept_top] != NONE {
            let key = top_l_key[kept_top];
            if !kept(key, top_l_col[kept_top], weight(value_of(key), m, s), s, cut_k, cut_p) {
                break;
            }
            kept_top += 1u;
        }
        write_tops(row, raw, s, m, ln_accurate(zs.y), kept_top);
        keep_set(0u, won.y, vec4<u32>(cut_k, cut_p), s, m, ln_accurate(zs.y), raw);
    }
}

// An invocation's Gumbel-max over the entries of the row's noise blocks [blocks.x, blocks.y)
// that the filters keep (`kept`), and their weight. Noise is made only for blocks holding a
// kept entry.
struct Drawn {
    key: u32,
    col: u32,
    z: f32,
}

fn draw_over(r: Row, s: Settings, row: u32, lid: u32, m: f32, blocks: vec2<u32>,
             cut_k: vec2<u32>, cut_p: vec2<u32>) -> Drawn {
    if s.transformed {
        return draw_over_with(r, s, row, lid, m, blocks, cut_k, cut_p, true);
    }
    return draw_over_with(r, s, row, lid, m, blocks, cut_k, cut_p, false);
}

// draw_over, its elements' l after `transform` (as first_pass_with).
fn draw_over_with(r: Row, s: Settings, row: u32, lid: u32, m: f32, blocks: vec2<u32>,
                  cut_k: vec2<u32>, cut_p: vec2<u32>, transform: bool) -> Drawn {
    var best_key = 0u;
    var best_col = NONE;
    var z = 0.0;
    let own = walk(blocks, lid);
    for (var j = own.start; j < own.end; j += own.step) {
        let x = block_x(r, j);
        var keep = vec4<bool>(false);
        var l = vec4<f32>(0.0);
        var any = false;
        for (var i = 0u; i < 4u; i++) {
            let e = elem_with(r, s, row, 4u * j + i, x[i], transform);
            if e.kind == LANE_VALUE {
                let key = key_of(e.l);
                let w = weight(e.l, m, s);
                keep[i] = kept(key, e.col, w, s, cut_k, cut_p);
                if keep[i] {
                    l[i] = e.l;
                    z += w;
                    any = true;
                }
            }
        }
        if any {
            let g = gumbel_block(r.seed, add64_u32(r.block0, j));
            for (var i = 0u; i < 4u; i++) {
                if keep[i] {
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
    return Drawn(best_key, best_col, z);
}

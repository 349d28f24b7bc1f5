// Speculative decoding's verification (Leviathan et al. 2023; Chen et al. 2023) on the token
// sampler's rows. Request r of a call has n_r = offsets[r + 1] - offsets[r] draft tokens
// (drafts[offsets[r] ..]) and n_r + 1 target positions, the rows from offsets[r] + r. Position
// i of request r is a sampler row whose noise is request r's state advanced by i K.
//
// `verify_position`, a workgroup a position: the row's own draw (`draw_row`), and at a draft
// position the draft's verdict: accepted where u q(d) < p(d), with u the uniform of element
// (n_r + 1) K + i of the request's stream, p the row's sampling distribution and q the draft's
// row of probabilities (without them, one at d). A rejected draft gives way to a draw from
// max(0, p - q) renormalised: Gumbel-max over ln(p - q) + g with the row's own noise g, or
// where that is empty the row's own draw. The position's token (an accepted draft with
// ACCEPTED set) and its log-probabilities go to its slot of the outputs.
//
// `finish_request`, an invocation a request, after every position's dispatch (the outputs bound
// whole): the accepted drafts from the first, the token of the position after them, `u32::MAX`
// and NaN in the slots past it, and the count.
#import token_sampler

const BINDING_DRAFTS: u32 = 14u;
const BINDING_OFFSETS: u32 = 15u;
const BINDING_DRAFT_PROBS: u32 = 16u;
const BINDING_ACCEPTED: u32 = 17u;
@group(0) @binding(BINDING_DRAFTS) var<storage, read> drafts: array<u32>;
@group(0) @binding(BINDING_OFFSETS) var<storage, read> draft_offsets: array<u32>;
@group(0) @binding(BINDING_DRAFT_PROBS) var<storage, read> draft_probs: array<f32>;
@group(0) @binding(BINDING_ACCEPTED) var<storage, read_write> accepted: array<u32>;

// Set in an accepted draft's slot until finish_request reads it; vocabularies are below 2^31.
const ACCEPTED: u32 = 0x80000000u;
const FINISH_SIZE: u32 = 64u;

fn offset_of(r: u32) -> u32 {
    return draft_offsets[params.offsets_base + r];
}

// Request r's offsets hold it: they start at 0, run in order, and the call's positions are its
// drafts and a position more a request.
fn request_ok(r: u32) -> bool {
    let last = offset_of(params.requests);
    return offset_of(0u) == 0u && offset_of(r) <= offset_of(r + 1u)
        && offset_of(r + 1u) <= last && last < params.positions
        && params.positions - last == params.requests;
}

// Position p's request, its index there, the request's drafts, and its draft (NONE at the
// last position); an index past the drafts where the offsets do not hold the request or the
// draft is not a token.
var<workgroup> at_position: vec4<u32>;
const NOT_HELD: vec4<u32> = vec4<u32>(0u, 1u, 0u, NONE);

fn locate(p: u32) -> vec4<u32> {
    // The last request whose first position is at or before p.
    var lo = 0u;
    var hi = params.requests;
    while hi - lo > 1u {
        let mid = (lo + hi) / 2u;
        if offset_of(mid) + mid <= p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    if !request_ok(lo) || p < offset_of(lo) + lo {
        return NOT_HELD;
    }
    let index = p - (offset_of(lo) + lo);
    let n = offset_of(lo + 1u) - offset_of(lo);
    if index > n {
        return NOT_HELD;
    }
    if index == n {
        return vec4<u32>(lo, index, n, NONE);
    }
    let draft = drafts[params.drafts_base + offset_of(lo) + index];
    if draft >= params.header.cols {
        return NOT_HELD;
    }
    return vec4<u32>(lo, index, n, draft);
}

// The uniform in (0, 1) of element `e` of the stream: its first word, as (x + 0.5) 2^-32, held
// below 1 (f32 rounds the largest 128 words up to 1, where a draft with p = q = 1 would be
// rejected).
fn uniform_of_element(seed: vec2<u32>, e: vec2<u32>) -> f32 {
    var word = e;
    if NOISE_RANGE == NOISE_RANGE_WIDE {
        word = shl64_1(e);
    }
    let x = noise_block(seed, shr64_2(word))[word.x & 3u];
    return min((f32(x) + 0.5) * TWO_POW_M32, 0.99999994);
}

// Row `p` of this dispatch: position row0 + p of the call.
fn verify_position(p: u32, lid: u32) {
    if lid == 0u {
        at_position = locate(params.row0 + p);
    }
    let at = workgroupUniformLoad(&at_position);
    let state = states[params.states_base + at.x];
    if at.y > at.z {
        if lid == 0u {
            write_none(p);
        }
        return;
    }
    let start = NoiseStart(state.seed, add64(state.offset, mul_wide(at.y, params.header.cols)));
    let r = row_at(p, start, false);
    if !draw_row(r, p, lid) || at.y == at.z {
        // No token here, or the last position: the row's own draw stands.
        return;
    }
    let k = workgroupUniformLoad(&kept_set);
    // The row's settings with the least weight its draw kept (min-p's, or top-n-sigma's).
    var s = workgroupUniformLoad(&uniform_settings);
    s.min_p = k.min_p;
    let d = at.w;
    let q_row = params.draft_probs_base + (offset_of(at.x) + at.y) * params.header.cols;
    if lid == 0u {
        let lp_d = kept_logprob(r, s, p, k, d);
        let p_d = exp(lp_d);
        var q_d = 1.0;
        if params.has_draft_probs != 0u {
            q_d = draft_probs[q_row + d];
        }
        let words = add64_u32(mul_wide(at.z + 1u, params.header.cols), at.y);
        let u = uniform_of_element(state.seed, add64(state.offset, words));
        var verdict = 0u;
        if u * q_d < p_d {
            verdict = 1u;
            let e = elem_of_column(r, s, p, d);
            write_token(p, d | ACCEPTED, k.raw, lp_d, e.x);
        }
        at_position.x = verdict;
    }
    if workgroupUniformLoad(&at_position).x != 0u {
        return;
    }
    var best_key = 0u;
    var best_col = NONE;
    if params.has_draft_probs == 0u && k.token != d {
        // Without q the residual is p without the draft, drawn with the row's own noise: the
        // row's own draw, unless that was the draft.
        best_col = k.token;
    } else if k.listed != 0u {
        for (var t = lid; t < k.listed; t += WORKGROUP_SIZE) {
            let col = kept_col[t];
            let key = residual_key(value_of(kept_key[t]), col, gumbel_of_column(r, col), s, k, d,
                                   q_row);
            if key != 0u && ranks_before(key, col, best_key, best_col) {
                best_key = key;
                best_col = col;
            }
        }
    } else {
        let best = residual_over(r, s, p, lid, k, d, q_row);
        best_key = best.x;
        best_col = best.y;
    }
    let won = best_entry(lid, best_key, best_col);
    if lid == 0u {
        // An empty residual: the row's own draw.
        let token = select(won.y, k.token, won.y == NONE);
        let e = elem_of_column(r, s, p, token);
        write_token(p, token, k.raw, log_weight(e.l, k.m, s) - k.log_z, e.x);
    }
}

// ln p(col) under the row's kept set: of its weight over theirs; -inf where it is not kept.
fn kept_logprob(r: Row, s: Settings, row: u32, k: KeptSet, col: u32) -> f32 {
    var l = 0.0;
    var in_set = false;
    if k.listed != 0u {
        for (var t = 0u; t < k.listed; t++) {
            if kept_col[t] == col {
                l = value_of(kept_key[t]);
                in_set = true;
                break;
            }
        }
    } else {
        let e = elem_of_column(r, s, row, col);
        in_set = e.kind == LANE_VALUE
            && kept(key_of(e.l), col, weight(e.l, k.m, s), s, k.cut_k, k.cut_p);
        l = e.l;
    }
    if !in_set {
        return neg_inf_f32();
    }
    return log_weight(l, k.m, s) - k.log_z;
}

// ln of an entry's weight against the row's largest l: 0 at the largest itself, also in a
// greedy row (whose kept set is its argmax alone, at a temperature that may be 0).
fn log_weight(l: f32, m: f32, s: Settings) -> f32 {
    if l == m {
        return 0.0;
    }
    return (l - m) / s.tau;
}

// The key of a kept entry's score in the residual max(0, p - q): ln(p - q) + g where p > q
// (q one at the draft where the call has no draft probabilities: the row's own score, the
// draft left out); 0 where it has none.
fn residual_key(l: f32, col: u32, g: f32, s: Settings, k: KeptSet, draft: u32, q_row: u32) -> u32 {
    if params.has_draft_probs == 0u {
        return select(key_of(log_weight(l, k.m, s) + g), 0u, col == draft);
    }
    let left = exp(log_weight(l, k.m, s) - k.log_z) - draft_probs[q_row + col];
    if left > 0.0 {
        return key_of(log(left) + g);
    }
    return 0u;
}

// An invocation's best residual score over the row's kept entries (the kept set a predicate),
// making noise only for blocks holding a kept entry.
fn residual_over(r: Row, s: Settings, row: u32, lid: u32, k: KeptSet, draft: u32,
                 q_row: u32) -> vec2<u32> {
    var best_key = 0u;
    var best_col = NONE;
    let own = walk(vec2<u32>(0u, r.blocks), lid);
    for (var j = own.start; j < own.end; j += own.step) {
        let x = block_x(r, j);
        var keep = vec4<bool>(false);
        var l = vec4<f32>(0.0);
        var any = false;
        for (var i = 0u; i < 4u; i++) {
            let e = elem_at(r, s, row, 4u * j + i, x[i]);
            if e.kind == LANE_VALUE
                && kept(key_of(e.l), e.col, weight(e.l, k.m, s), s, k.cut_k, k.cut_p) {
                keep[i] = true;
                l[i] = e.l;
                any = true;
            }
        }
        if any {
            let g = gumbel_block(r.seed, add64_u32(r.block0, j));
            for (var i = 0u; i < 4u; i++) {
                let col = 4u * j + i - r.lead;
                if keep[i] {
                    let key = residual_key(l[i], col, g[i], s, k, draft, q_row);
                    if key != 0u && ranks_before(key, col, best_key, best_col) {
                        best_key = key;
                        best_col = col;
                    }
                }
            }
        }
    }
    return vec2<u32>(best_key, best_col);
}

// Request r's outputs from its positions' slots.
fn finish_request(r: u32) {
    if r >= params.requests {
        return;
    }
    if !request_ok(r) {
        accepted[params.accepted_base + r] = NONE;
        return;
    }
    let first = offset_of(r) + r;
    let n = offset_of(r + 1u) - offset_of(r);
    var taken = 0u;
    while taken < n {
        let at = params.header.out_base + first + taken;
        let t = tokens[at];
        if t == NONE || (t & ACCEPTED) == 0u {
            break;
        }
        tokens[at] = t & ~ACCEPTED;
        taken += 1u;
    }
    for (var i = taken + 1u; i <= n; i++) {
        tokens[params.header.out_base + first + i] = NONE;
        if params.want_logprobs != 0u {
            let at = params.logprobs_base + (first + i) * params.logprobs_pitch;
            logprobs[at] = NAN_BITS;
            logprobs[at + 1u] = NAN_BITS;
        }
    }
    accepted[params.accepted_base + r] = taken;
}

// The top-n log-probabilities of a row (n = params.top_n, up to TOP_MAX): the n most likely
// tokens under softmax(x) of the logits as given, and where asked (params.top_processed) under
// the distribution the token is drawn from. A pass of their own over the row, for rows that
// ask: each invocation keeps its best n of each order, and n rounds of best_entry merge them,
// exactly, as no invocation holds more than n of the row's first n. (Kept in the first pass,
// the lists halved the speed of the calls that do not ask, on llvmpipe.)
#import key_list
#import best_entry

const TOP_MAX: u32 = 20u;
var<workgroup> top_raw_key: array<u32, TOP_MAX>;
var<workgroup> top_raw_col: array<u32, TOP_MAX>;
var<workgroup> top_l_key: array<u32, TOP_MAX>;
var<workgroup> top_l_col: array<u32, TOP_MAX>;

// The row's first n entries by x and, if `processed`, by l, into the top_* arrays.
fn top_entries(r: Row, s: Settings, row: u32, lid: u32, n: u32, processed: bool) {
    var by_x = empty_list();
    var by_l = empty_list();
    let own = walk(vec2<u32>(0u, r.blocks), lid);
    for (var j = own.start; j < own.end; j += own.step) {
        let x = block_x(r, j);
        for (var lane = 0u; lane < 4u; lane++) {
            let e = elem_at(r, s, row, 4u * j + lane, x[lane]);
            if e.raw {
                insert_key(&by_x, key_of(e.x), e.col, n);
            }
            if processed && e.kind == LANE_VALUE {
                insert_key(&by_l, key_of(e.l), e.col, n);
            }
        }
    }
    merge_top(lid, &by_x, n, false);
    if processed {
        merge_top(lid, &by_l, n, true);
    }
}

// The first n entries of the invocations' lists in order, into (keys, columns) of invocation 0.
fn merge_top(lid: u32, list: ptr<function, List>, n: u32, into_l: bool) {
    var head = 0u;
    for (var t = 0u; t < n; t++) {
        var key = 0u;
        var column = NONE;
        if head < (*list).n {
            key = (*list).keys[head];
            column = (*list).columns[head];
        }
        var advance = false;
        let won = merge_round(lid, key, column, &advance);
        if advance {
            head += 1u;
        }
        if lid == 0u {
            if into_l {
                top_l_key[t] = won.x;
                top_l_col[t] = won.y;
            } else {
                top_raw_key[t] = won.x;
                top_raw_col[t] = won.y;
            }
        }
    }
}

// Where row `row`'s top entry i goes: a (token, log-probability) pair of u32 words after the
// token's own two log-probabilities, the processed list after the raw one.
fn top_at(row: u32, i: u32, processed: bool) -> u32 {
    return params.logprobs_base + row * params.logprobs_pitch + 2u + 2u * i
        + select(0u, 2u * params.top_n, processed);
}

fn write_top_entry(at: u32, token: u32, logprob: f32) {
    logprobs[at] = token;
    logprobs[at + 1u] = bitcast<u32>(logprob);
}

// The row's top entries once its token is drawn (invocation 0): raw log-probabilities
// (x - raw.x) - ln raw.y; processed ones (l - shift) / tau - log_z for the first `kept` entries
// in the row's order, which are the ones the filters keep, and no token (u32::MAX, -inf) past
// them or past the row's valid entries.
fn write_tops(row: u32, raw: vec2<f32>, s: Settings, shift: f32, log_z: f32, kept: u32) {
    let raw_log = ln_accurate(raw.y);
    for (var i = 0u; i < params.top_n; i++) {
        let col = top_raw_col[i];
        var lp = neg_inf_f32();
        if col != NONE {
            lp = (value_of(top_raw_key[i]) - raw.x) - raw_log;
        }
        write_top_entry(top_at(row, i, false), col, lp);
        if params.top_processed != 0u {
            var token = NONE;
            var processed = neg_inf_f32();
            if i < kept && top_l_col[i] != NONE {
                token = top_l_col[i];
                // A greedy row's one entry has probability 1 (its temperature may be 0).
                processed = select((value_of(top_l_key[i]) - shift) / s.tau - log_z, 0.0, s.greedy);
            }
            write_top_entry(top_at(row, i, true), token, processed);
        }
    }
}

// A row without a token: no top entries, NaN log-probabilities.
fn write_no_tops(row: u32) {
    for (var i = 0u; i < params.top_n; i++) {
        write_top_entry(top_at(row, i, false), NONE, nan_f32());
        if params.top_processed != 0u {
            write_top_entry(top_at(row, i, true), NONE, nan_f32());
        }
    }
}

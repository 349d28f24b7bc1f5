// The token sampler with long rows spread over workgroups: `params.slices` workgroups a row,
// each a contiguous run of `params.slice_blocks` noise blocks, so that a few long rows keep a
// GPU busy. One kernel, four dispatches (`params.stage`), meeting in the `split` binding:
// - FIRST, a workgroup a slice: the slice's largest l, its count of valid entries, whether it
//   holds a bad one, its raw log-sum-exp, and for a row sampled from lists the slice's first
//   min(k, KEPT_MAX) entries in order;
// - DRAW, a workgroup a slice, for rows without top-k or top-p: Gumbel-max over the entries
//   that min-p keeps against the row's largest l (from the FIRST records), and their weight;
// - FINISH, a workgroup a row: the slices' records combined, exactly (maxima, an ordered merge
//   of the slices' lists, sums in slice order), and the token written;
// - REST, a workgroup a row: the rows FINISH left (top-p without top-k, top-k past KEPT_MAX,
//   top-n-sigma, top entries, a slice whose invocation lists ran out) taken whole by
//   `sample_row`.
// A slice draws every element's score against the row's largest l, as a whole row does, so a
// row's token does not depend on how many slices it has, up to ties within f32 rounding.
#import token_sampler

const BINDING_SPLIT: u32 = 13u;
@group(0) @binding(BINDING_SPLIT) var<storage, read_write> split: array<u32>;

const STAGE_FIRST: u32 = 0u;
const STAGE_DRAW: u32 = 1u;
const STAGE_FINISH: u32 = 2u;
const STAGE_REST: u32 = 3u;

// A slice's words: its record, then its first entries as (key, column) pairs.
const AT_TOP_KEY: u32 = 0u;
const AT_TOP_COL: u32 = 1u;
const AT_RAW_M: u32 = 2u;
const AT_RAW_S: u32 = 3u;
const AT_COUNT: u32 = 4u;
const AT_FLAGS: u32 = 5u;
const AT_LISTED: u32 = 6u;     // entries in its list
const AT_DRAW_KEY: u32 = 7u;
const AT_DRAW_COL: u32 = 8u;
const AT_DRAW_Z: u32 = 9u;
const SLICE_RECORD: u32 = 10u;
const SLICE_WORDS: u32 = SLICE_RECORD + 2u * KEPT_MAX;
const FLAG_BAD: u32 = 1u;
const FLAG_MISSED: u32 = 2u;    // an invocation's list ran out: the row goes to REST

// A row's words: its slices', then whether REST takes it.
fn row_words() -> u32 {
    return params.slices * SLICE_WORDS + 1u;
}

fn slice_at(row: u32, slice: u32) -> u32 {
    return row * row_words() + slice * SLICE_WORDS;
}

fn left_at(row: u32) -> u32 {
    return row * row_words() + params.slices * SLICE_WORDS;
}

// The noise blocks [x, y) of slice `slice` (empty past the row's end).
fn slice_blocks(r: Row, slice: u32) -> vec2<u32> {
    let start = min(slice * params.slice_blocks, r.blocks);
    return vec2<u32>(start, min(start + params.slice_blocks, r.blocks));
}

// How a split row is sampled: its argmax; Gumbel-max over min-p's entries; from the slices'
// lists; or whole, in REST.
const SPLIT_REST: u32 = 0u;
const SPLIT_GREEDY: u32 = 1u;
const SPLIT_DRAW: u32 = 2u;
const SPLIT_LISTS: u32 = 3u;

fn split_path_of(s: Settings, call: Params) -> u32 {
    if call.top_n != 0u {
        return SPLIT_REST;
    }
    // A row whose settings are out of range gets no token; FIRST marks it.
    if s.greedy || !s.valid {
        return SPLIT_GREEDY;
    }
    if s.n_sigma > 0.0 {
        return SPLIT_REST;
    }
    if s.k == call.header.cols && s.p >= 1.0 {
        return SPLIT_DRAW;
    }
    if s.k <= KEPT_MAX {
        return SPLIT_LISTS;
    }
    return SPLIT_REST;
}

fn split_stage(slice: u32, row: u32, lid: u32) {
    let s = uniform_row(row, lid);
    let call = workgroupUniformLoad(&uniform_params);
    let path = split_path_of(s, call);
    if call.stage == STAGE_FIRST && path != SPLIT_REST {
        split_first(row, slice, lid, s, path);
    } else if call.stage == STAGE_DRAW && path == SPLIT_DRAW {
        split_draw(row, slice, lid, s);
    } else if call.stage == STAGE_FINISH {
        split_finish(row, lid, s, path);
    } else if call.stage == STAGE_REST {
        if lid == 0u {
            decided.x = split[left_at(row)];
        }
        if workgroupUniformLoad(&decided).x != 0u {
            sample_row(row, lid);
        }
    }
}

fn split_first(row: u32, slice: u32, lid: u32, s: Settings, path: u32) {
    let r = token_row(row);
    start_row(r, s, lid);
    var first = empty_first();
    var list = empty_list();
    var candidates: Candidates;
    let inner = select(PATH_SELECT, PATH_LISTS, path == SPLIT_LISTS);
    first_pass(r, s, row, lid, inner, slice_blocks(r, slice), &first, &list, &candidates);
    if first.bad {
        atomicStore(&row_bad, 1u);
    }
    atomicAdd(&row_count, first.count);
    let raw = sum_exp(lid, first.raw.x, first.raw.y, 1.0);
    let top = best_entry(lid, first.top_key, first.top_col);
    let at = slice_at(row, slice);
    var listed = 0u;
    if path == SPLIT_LISTS {
        // The slice's first entries in order, as sample_from_lists takes a row's: an invocation
        // out of entries that turned some away may hold more of them.
        var head = 0u;
        for (var t = 0u; t < min(s.k, KEPT_MAX); t++) {
            var key = 0u;
            var column = NONE;
            if head < list.n {
                key = list.keys[head];
                column = list.columns[head];
            } else if list.turned_away {
                atomicStore(&missed, 1u);
            }
            var advance = false;
            let won = merge_round(lid, key, column, &advance);
            if won.y == NONE {
                break;
            }
            if advance {
                head += 1u;
            }
            if lid == 0u {
                split[at + SLICE_RECORD + 2u * t] = won.x;
                split[at + SLICE_RECORD + 2u * t + 1u] = won.y;
            }
            listed = t + 1u;
        }
    }
    // The atomics were last written before the barriers of best_entry above.
    if lid == 0u {
        split[at + AT_TOP_KEY] = top.x;
        split[at + AT_TOP_COL] = top.y;
        split[at + AT_RAW_M] = bitcast<u32>(raw.x);
        split[at + AT_RAW_S] = bitcast<u32>(raw.y);
        split[at + AT_COUNT] = atomicLoad(&row_count);
        split[at + AT_FLAGS] = select(0u, FLAG_BAD, atomicLoad(&row_bad) != 0u)
            | select(0u, FLAG_MISSED, atomicLoad(&missed) != 0u);
        split[at + AT_LISTED] = listed;
    }
}

// The row's largest l (key, column), its count of valid entries and its flags, from the slices'
// FIRST records; and in invocation 0, its raw log-sum-exp.
fn row_of_slices(row: u32, lid: u32, raw: ptr<function, vec2<f32>>) -> vec4<u32> {
    if lid == 0u {
        var top = vec2<u32>(0u, NONE);
        var count = 0u;
        var flags = 0u;
        for (var slice = 0u; slice < params.slices; slice++) {
            let at = slice_at(row, slice);
            let key = split[at + AT_TOP_KEY];
            let col = split[at + AT_TOP_COL];
            if ranks_before(key, col, top.x, top.y) {
                top = vec2<u32>(key, col);
            }
            count += split[at + AT_COUNT];
            flags |= split[at + AT_FLAGS];
            let part = vec2<f32>(bitcast<f32>(split[at + AT_RAW_M]), bitcast<f32>(split[at + AT_RAW_S]));
            *raw = merge_exp(*raw, part, 1.0);
        }
        decided = vec4<u32>(top, count, flags);
    }
    return workgroupUniformLoad(&decided);
}

fn split_draw(row: u32, slice: u32, lid: u32, s: Settings) {
    let r = token_row(row);
    if s.list_len != 0u {
        load_row_list(s, lid);
    }
    var raw = vec2<f32>(0.0);
    let d = row_of_slices(row, lid, &raw);
    if d.z == 0u || (d.w & FLAG_BAD) != 0u {
        return;
    }
    let m = value_of(d.x);
    let drawn = draw_over(r, s, row, lid, m, slice_blocks(r, slice), KEEP_ALL, KEEP_ALL);
    let z = workgroup_sum(lid, drawn.z);
    let won = best_entry(lid, drawn.key, drawn.col);
    if lid == 0u {
        let at = slice_at(row, slice);
        split[at + AT_DRAW_KEY] = won.x;
        split[at + AT_DRAW_COL] = won.y;
        split[at + AT_DRAW_Z] = bitcast<u32>(z);
    }
}

fn split_finish(row: u32, lid: u32, s: Settings, path: u32) {
    if path == SPLIT_REST {
        if lid == 0u {
            split[left_at(row)] = 1u;
        }
        return;
    }
    let r = token_row(row);
    // The token's own l (elem_of_column) needs the row's list.
    if s.list_len != 0u {
        load_row_list(s, lid);
    }
    var raw = vec2<f32>(0.0);
    let d = row_of_slices(row, lid, &raw);
    let left = (d.w & FLAG_MISSED) != 0u && (d.w & FLAG_BAD) == 0u;
    if lid == 0u {
        split[left_at(row)] = select(0u, 1u, left);
    }
    if left {
        return;
    }
    if d.z == 0u || (d.w & FLAG_BAD) != 0u {
        if lid == 0u {
            write_none(row);
        }
        return;
    }
    let m = value_of(d.x);
    if path == SPLIT_GREEDY {
        if lid == 0u {
            write_token(row, d.y, raw, 0.0, elem_of_column(r, s, row, d.y).x);
        }
        return;
    }
    if path == SPLIT_DRAW {
        if lid == 0u {
            var key = 0u;
            var col = NONE;
            var z = 0.0;
            for (var slice = 0u; slice < params.slices; slice++) {
                let at = slice_at(row, slice);
                let k = split[at + AT_DRAW_KEY];
                let c = split[at + AT_DRAW_COL];
                if ranks_before(k, c, key, col) {
                    key = k;
                    col = c;
                }
                z += bitcast<f32>(split[at + AT_DRAW_Z]);
            }
            let e = elem_of_column(r, s, row, col);
            write_token(row, col, raw, (e.l - m) / s.tau - ln_accurate(z), e.x);
        }
        return;
    }
    // The row's first entries in order: invocation i merges slice i's list (the host keeps
    // the slices within the workgroup).
    let mine = slice_at(row, lid) + SLICE_RECORD;
    var listed = 0u;
    if lid < params.slices {
        listed = split[slice_at(row, lid) + AT_LISTED];
    }
    var head = 0u;
    let rounds = min(s.k, KEPT_MAX);
    for (var t = 0u; t < rounds; t++) {
        var key = 0u;
        var column = NONE;
        if head < listed {
            key = split[mine + 2u * head];
            column = split[mine + 2u * head + 1u];
        }
        var advance = false;
        let won = merge_round(lid, key, column, &advance);
        if advance {
            head += 1u;
        }
        if lid == 0u {
            kept_key[t] = won.x;
            kept_col[t] = won.y;
        }
        if won.y == NONE {
            break;
        }
    }
    draw_from_kept(r, s, row, lid, m, raw, rounds, true, vec2<u32>(0u, 0u));
}

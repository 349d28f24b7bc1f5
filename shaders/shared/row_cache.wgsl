// A row's lanes kept between the passes of a thread-per-row kernel, so that its noise (a Philox
// call and two logarithms per element, most of the cost) is made once. Where they are kept
// comes from the piece that imports this one: row_cache_private (registers, short rows) or
// row_cache_workgroup (workgroup memory, longer rows on CPU drivers). Each supplies
// CACHED_BLOCKS, cache_load and cache_store; the kernel starts each row with begin_row.
//
// Only the values are kept (a vec4 a block, where whole Lanes would take three times the
// registers or spill): masked lanes and lanes outside the row as -inf. Where the row is valid
// that is all a lane's kind needs, since no valid lane's value is infinite; where it is not,
// every output is NaN whatever the kinds.

var<private> cache_lane: u32;

// Starts a thread-per-row invocation on `row`: loads the parameters and claims the
// invocation's cache slots. False past the last row.
fn begin_row(row: u32, lid: u32) -> bool {
    load_params();
    cache_lane = lid;
    return row < params.header.rows;
}

// add_block, keeping the block's lanes in cache slot `slot` when `cached`.
fn add_block_caching(st: RowState, r: Row, j: u32, slot: u32, cached: bool) -> RowState {
    let b = block_at(r, j);
    if cached {
        cache_block(slot, b);
    }
    return add_lanes(st, b);
}

fn cached_value(l: Lane) -> f32 {
    return select(neg_inf_f32(), l.v, l.kind == LANE_VALUE || l.kind == LANE_INVALID);
}

fn cache_block(slot: u32, b: Block) {
    cache_store(slot, vec4<f32>(cached_value(b.a), cached_value(b.b), cached_value(b.c),
                             cached_value(b.d)));
}

fn cached_lane(r: Row, t: u32, v: f32) -> Lane {
    var l: Lane;
    l.k = t - r.lead;
    l.v = v;
    l.kind = LANE_VALUE;
    if t < r.lead || l.k >= params.header.cols {
        l.kind = LANE_OUTSIDE;
    } else if bitcast<u32>(v) == NEG_INF_BITS {
        l.kind = LANE_MASKED;
    }
    return l;
}

// Block j of the row, kept in cache slot `slot`, as block_at made it (up to the kinds of a row
// that is not valid).
fn cached_block(r: Row, j: u32, slot: u32) -> Block {
    let c = cache_load(slot);
    let t = 4u * j;
    return Block(cached_lane(r, t, c.x), cached_lane(r, t + 1u, c.y),
                 cached_lane(r, t + 2u, c.z), cached_lane(r, t + 3u, c.w));
}

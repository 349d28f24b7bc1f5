// Rows shared by the lanes of a subgroup: `LANES` consecutive lanes (a power of two) walk one
// row together, adjacent lanes on adjacent noise blocks, and combine their partial results
// with subgroup shuffles (no workgroup memory, no barriers). A workgroup of WORKGROUP_SIZE
// invocations takes WORKGROUP_SIZE / LANES consecutive rows.
//
// The subgroup size is read when the kernel runs: where it is smaller than LANES, a row gets
// as many lanes as one subgroup has, and the segments past the workgroup's rows stay idle. A
// segment never straddles two subgroups, as both sizes are powers of two.
//
// Each lane keeps its first CACHED_BLOCKS blocks (block slot_block(s, c) in slot c) in
// registers; the blocks from first_uncached(s) on are made again when needed.
//
// The importing kernel declares `override WORKGROUP_SIZE` (a multiple of every subgroup size).
#import row_cache_private

override LANES: u32 = 32u;

struct Segment {
    row: u32,
    lane: u32,    // 0 .. lanes
    lanes: u32,   // lanes on this row
    live: bool,   // false past the workgroup's rows or the call's
}

fn segment_of(group: u32, subgroup: u32, subgroup_lane: u32, subgroup_size: u32) -> Segment {
    var s: Segment;
    s.lanes = min(LANES, subgroup_size);
    s.lane = subgroup_lane & (s.lanes - 1u);
    let rows_per_group = WORKGROUP_SIZE / LANES;
    let index = (subgroup * subgroup_size + subgroup_lane) / s.lanes;
    s.row = group * rows_per_group + index;
    s.live = index < rows_per_group && s.row < params.header.rows;
    return s;
}

// The block this lane keeps in cache slot c (past the row's end for lanes with fewer blocks).
fn slot_block(s: Segment, c: u32) -> u32 {
    return s.lane + c * s.lanes;
}

// This lane's first block past the cached ones.
fn first_uncached(s: Segment) -> u32 {
    return slot_block(s, CACHED_BLOCKS);
}

// The first pass over the row: this lane's blocks, kept in its cache slots where `cache`, then
// the whole row's state in every lane of the segment.
fn segment_row_state(s: Segment, r: Row, cache: bool) -> RowState {
    var st = empty_state();
    for (var c = 0u; c < CACHED_BLOCKS; c++) {
        let j = slot_block(s, c);
        if j < r.blocks {
            st = add_block_caching(st, r, j, c, cache);
        }
    }
    for (var j = first_uncached(s); j < r.blocks; j += s.lanes) {
        st = add_block(st, r, j);
    }
    return segment_state(s, st);
}

// WGSL asks for subgroup built-ins in subgroup-uniform control flow, which these are not: the
// segments past the call's rows have returned. They are safe all the same: a shuffle's partner
// lies in the lane's own segment, whose lanes run the same row, so they are all active
// together. Hence the diagnostic filter on the two functions that shuffle.

// The state of the whole row, in every lane of its segment. A butterfly: each step merges
// with the lane `d` apart, and merge is symmetric, so every lane ends with the same bits.
@diagnostic(off, subgroup_uniformity)
fn segment_state(s: Segment, st: RowState) -> RowState {
    var acc = st;
    for (var d = 1u; d < s.lanes; d = d << 1u) {
        let other = RowState(subgroupShuffleXor(acc.m, d), subgroupShuffleXor(acc.s, d),
                             subgroupShuffleXor(acc.arg, d), subgroupShuffleXor(acc.invalid, d));
        acc = merge(acc, other);
    }
    return acc;
}

// The sum of x over the segment, in every lane (the same bits in each, as above).
@diagnostic(off, subgroup_uniformity)
fn segment_sum(s: Segment, x: f32) -> f32 {
    var acc = x;
    for (var d = 1u; d < s.lanes; d = d << 1u) {
        acc += subgroupShuffleXor(acc, d);
    }
    return acc;
}

// Forward pass, a row per segment of a subgroup's lanes (subgroup_rows): each lane keeps its
// first CACHED_BLOCKS blocks in registers, so that rows of up to CACHED_BLOCKS * 4 * LANES
// elements are read and make their noise once; the blocks past those are made again to write.
#import forward_common
#import row_cache_private
#import subgroup_rows

override WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(subgroup_id) subgroup: u32,
        @builtin(subgroup_invocation_id) subgroup_lane: u32,
        @builtin(subgroup_size) subgroup_size: u32) {
    load_params();
    let s = segment_of(wid.x, subgroup, subgroup_lane, subgroup_size);
    if !s.live {
        return;
    }
    let r = row_view(s.row);
    let cache = MODE != MODE_INDEX;
    var st = empty_state();
    for (var c = 0u; c < CACHED_BLOCKS; c++) {
        let j = s.lane + c * s.lanes;
        if j < r.blocks {
            st = add_block_caching(st, r, j, c, cache);
        }
    }
    for (var j = s.lane + CACHED_BLOCKS * s.lanes; j < r.blocks; j += s.lanes) {
        st = add_block(st, r, j);
    }
    let f = row_result(r, segment_state(s, st));
    if MODE == MODE_INDEX {
        if s.lane == 0u {
            write_index(r, f);
        }
        return;
    }
    for (var c = 0u; c < CACHED_BLOCKS; c++) {
        let j = s.lane + c * s.lanes;
        if j < r.blocks {
            write_lanes(r, f, j, cached_block(r, j, c));
        }
    }
    for (var j = s.lane + CACHED_BLOCKS * s.lanes; j < r.blocks; j += s.lanes) {
        write_block(r, f, j);
    }
}

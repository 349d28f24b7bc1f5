// Forward pass, a row per segment of a subgroup's lanes (subgroup_rows): each lane keeps its
// first CACHED_BLOCKS blocks in registers, so that rows of up to CACHED_BLOCKS * 4 * LANES
// elements are read and make their noise once; the blocks past those are made again to write.
#import forward_common
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
    let f = row_result(r, segment_row_state(s, r, MODE != MODE_INDEX));
    if MODE == MODE_INDEX {
        if s.lane == 0u {
            write_index(r, f);
        }
        return;
    }
    for (var c = 0u; c < CACHED_BLOCKS; c++) {
        let j = slot_block(s, c);
        if j < r.blocks {
            write_lanes(r, f, j, cached_block(r, j, c));
        }
    }
    for (var j = first_uncached(s); j < r.blocks; j += s.lanes) {
        write_block(r, f, j);
    }
}

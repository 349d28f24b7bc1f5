// The body of the thread-per-row forward kernels; the kernel file picks the lane cache's size
// by importing row_cache_private or row_cache_workgroup.
#import forward_common

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = gid.x;
    if !begin_row(row, lid) {
        return;
    }
    let r = row_view(row);
    let cached = MODE != MODE_INDEX && r.blocks <= CACHED_BLOCKS;
    var st = empty_state();
    for (var j = 0u; j < r.blocks; j++) {
        st = add_block_caching(st, r, j, j, cached);
    }
    let f = row_result(r, st);
    if MODE == MODE_INDEX {
        write_index(r, f);
    } else if cached {
        for (var j = 0u; j < r.blocks; j++) {
            write_lanes(r, f, j, cached_block(r, j, j));
        }
    } else {
        for (var j = 0u; j < r.blocks; j++) {
            write_block(r, f, j);
        }
    }
}

// Forward pass, one invocation per row: no barriers, which suits short rows everywhere and
// medium rows on CPU drivers, where barriers are expensive.
#import forward_common

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if row >= params.rows {
        return;
    }
    let r = row_view(row);
    var st = empty_state();
    for (var j = 0u; j < r.blocks; j++) {
        st = add_block(st, r, j);
    }
    let f = row_result(r, st);
    if MODE == MODE_INDEX {
        write_index(r, f);
    } else {
        for (var j = 0u; j < r.blocks; j++) {
            write_block(r, f, j);
        }
    }
}

// Forward pass for very long rows, step 2 of 2: each workgroup merges its row's partial states
// and writes its slice.
#import forward_common
#import split_row

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    let r = row_view(wid.y);
    let f = row_result(r, merged_state(wid.y));
    if MODE == MODE_INDEX {
        if wid.x == 0u && lid == 0u {
            write_index(r, f);
        }
        return;
    }
    let range = slice_range(r, wid.x);
    for (var j = range.x + lid; j < range.y; j += WORKGROUP_SIZE) {
        write_block(r, f, j);
    }
}

// Forward pass for very long rows, step 1 of 2: each workgroup reduces its slice of a row to
// a partial row state. Spreading a row over several workgroups keeps a GPU busy when there
// are few rows.
#import split_row
#import workgroup_state

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = row_view(wid.y);
    let range = slice_range(r, wid.x);
    var st = empty_state();
    for (var j = range.x + lid; j < range.y; j += WORKGROUP_SIZE) {
        st = add_block(st, r, j);
    }
    st = workgroup_state(lid, st);
    if lid == 0u {
        partials[partial_index(wid.y, wid.x)] = pack_state(st);
    }
}

// Step 1 of every SplitRow kernel family, in workgroup memory (kept apart from split_row so
// that kernels that only read the partial states declare none).
#import workgroup_state
#import split_row

// The partial state of this workgroup's slice.
fn store_slice_state(r: Row, row: u32, slice: u32, lid: u32) {
    let range = slice_range(r, slice);
    var st = empty_state();
    for (var j = range.x + lid; j < range.y; j += WORKGROUP_SIZE) {
        st = add_block(st, r, j);
    }
    st = workgroup_state(lid, st);
    if lid == 0u {
        partials[partial_index(row, slice)] = pack_state(st);
    }
}

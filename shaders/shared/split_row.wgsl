// Very long rows spread over several workgroups (the SplitRow strategy): workgroup (x, y) =
// (slice, row) walks a contiguous run of `params.slice_blocks` noise blocks of its row. The
// slices' partial row states meet in `partials` between dispatches. The importing kernel
// family declares `params.slices`, `params.slice_blocks` and the `partials` binding
// (array<vec4<u32>>).

// The noise blocks [x, y) of slice `slice` (empty past the row's end).
fn slice_range(r: Row, slice: u32) -> vec2<u32> {
    let start = min(slice * params.slice_blocks, r.blocks);
    return vec2<u32>(start, min(start + params.slice_blocks, r.blocks));
}

fn partial_index(row: u32, slice: u32) -> u32 {
    return row * params.slices + slice;
}

fn pack_state(st: RowState) -> vec4<u32> {
    return vec4<u32>(bitcast<u32>(st.m), bitcast<u32>(st.s), st.arg, st.invalid);
}

// The row's state from its slices' partial states, merged in slice order so that every
// workgroup of the row gets the same bits.
fn merged_state(row: u32) -> RowState {
    var st = empty_state();
    for (var s = 0u; s < params.slices; s++) {
        let p = partials[partial_index(row, s)];
        st = merge(st, RowState(bitcast<f32>(p.x), bitcast<f32>(p.y), p.z, p.w));
    }
    return st;
}

// The derivative kernels' SplitRow steps after the first (which stores each slice's row state
// when the sample is recomputed): the slices' dot products, then the outputs with the slices'
// sums of w dl, then the temperature's gradient per row. Partial results meet in `slice_sums`:
// dot products at partial_index(row, slice), sums of w dl `rows * slices` further on.
#import derivative_common
#import split_row

// The row's sample statistics, the same in every workgroup of the row.
fn split_sample(r: Row, row: u32) -> RowResult {
    var st = empty_state();
    if SOURCE == SOURCE_RECOMPUTE {
        st = merged_state(row);
    }
    return sample_of(r, st);
}

// The sum over the row's slices of what they stored at `base`, in slice order.
fn slices_total(row: u32, base: u32) -> f32 {
    var total = 0.0;
    for (var s = 0u; s < params.slices; s++) {
        total += slice_sums[base + partial_index(row, s)];
    }
    return total;
}

fn w_dl_base() -> u32 {
    return params.rows * params.slices;
}

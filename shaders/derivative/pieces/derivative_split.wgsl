// The derivative kernels' SplitRow steps after the first (which stores each slice's row state
// when the sample is recomputed): the slices' dot products, then the outputs with the slices'
// sums of w dl, then the temperature's gradient per row. The slices' sums meet in `partials`,
// `rows * slices` entries after their row states: the dot product in x, the sum of w dl in y.
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

// Where slice `slice` of row `row` keeps its sums.
fn sums_index(row: u32, slice: u32) -> u32 {
    return params.header.rows * params.slices + partial_index(row, slice);
}

// The sum over the row's slices of their component `c` of the sums (0: dot, 1: w dl), in
// slice order.
fn slices_total(row: u32, c: u32) -> f32 {
    var total = 0.0;
    for (var s = 0u; s < params.slices; s++) {
        total += bitcast<f32>(partials[sums_index(row, s)][c]);
    }
    return total;
}

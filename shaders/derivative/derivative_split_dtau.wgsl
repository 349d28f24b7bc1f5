// VJP for very long rows, step 4: the temperature's gradient of each row from its slices'
// sums of w dl, one invocation per row.
#import derivative_split

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_params();
    let row = gid.x;
    if row >= params.header.rows {
        return;
    }
    finish_row(row, split_sample(derivative_row(row), row), slices_total(row, 1u));
}

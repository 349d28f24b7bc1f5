// Forward pass for very long rows, step 1 of 2: each workgroup reduces its slice of a row to
// a partial row state. Spreading a row over several workgroups keeps a GPU busy when there
// are few rows.
#import forward_common
#import split_row_state

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    store_slice_state(row_view(wid.y), wid.y, wid.x, lid);
}

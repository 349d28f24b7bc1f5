// Forward pass, one workgroup per row: invocations stride over the row's noise blocks (adjacent
// invocations read adjacent blocks), then combine their partial states in workgroup memory.
#import forward_common

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

// Sized by the override: a fixed 1024-entry array (16 KiB) cut occupancy on an H100 tenfold.
var<workgroup> partial: array<RowState, WORKGROUP_SIZE>;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    let r = row_view(wid.x);
    var st = empty_state();
    for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
        st = add_block(st, r, j);
    }
    partial[lid] = st;
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if lid < half {
            partial[lid] = merge(partial[lid], partial[lid + half]);
        }
    }
    workgroupBarrier();
    let f = row_result(r, partial[0]);
    if MODE == MODE_INDEX {
        if lid == 0u {
            write_index(r, f);
        }
        return;
    }
    for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
        write_block(r, f, j);
    }
}

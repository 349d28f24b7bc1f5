// Forward pass, one workgroup per row: invocations stride over the row's noise blocks (adjacent
// invocations read adjacent blocks), then combine their partial states in workgroup memory.
#import forward_common
#import workgroup_state

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    let r = row_view(wid.x);
    var st = empty_state();
    for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
        st = add_block(st, r, j);
    }
    let f = row_result(r, workgroup_state(lid, st));
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

// VJP or JVP, one workgroup per row: invocations stride over the row's noise blocks and combine
// the row state and the dot products in workgroup memory.
#import derivative_common
#import workgroup_state
#import workgroup_sum

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    let row = wid.x;
    let r = derivative_row(row);
    let dtau = tau_tangent(row);
    var st = empty_state();
    if SOURCE == SOURCE_RECOMPUTE {
        for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
            st = add_block(st, r, j);
        }
        st = workgroup_state(lid, st);
    }
    let f = sample_of(r, st);
    var d = 0.0;
    for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
        d += dot_block(r, f, j, dtau);
    }
    d = workgroup_sum(lid, d);
    var w_dl = 0.0;
    for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
        w_dl += write_out_block(r, f, d, j, dtau);
    }
    w_dl = workgroup_sum(lid, w_dl);
    if lid == 0u {
        finish_row(row, f, w_dl);
    }
}

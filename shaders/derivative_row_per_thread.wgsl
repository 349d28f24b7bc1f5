// VJP or JVP, one invocation per row: three passes over the row (the sample's statistics when
// recomputed, the dot product, the outputs), no barriers.
#import derivative_common

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    let row = gid.x;
    if row >= params.rows {
        return;
    }
    let r = row_view(row);
    let dtau = tau_tangent(row);
    var st = empty_state();
    if SOURCE == SOURCE_RECOMPUTE {
        for (var j = 0u; j < r.blocks; j++) {
            st = add_block(st, r, j);
        }
    }
    let f = sample_of(r, st);
    var d = 0.0;
    for (var j = 0u; j < r.blocks; j++) {
        d += dot_block(r, f, j, dtau);
    }
    var w_dl = 0.0;
    for (var j = 0u; j < r.blocks; j++) {
        w_dl += write_out_block(r, f, d, j, dtau);
    }
    finish_row(row, f, w_dl);
}

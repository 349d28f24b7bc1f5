// The body of the thread-per-row derivative kernels; the kernel file picks the lane cache's size
// by importing row_cache_private or row_cache_workgroup.
#import derivative_common

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(local_invocation_index) lid: u32) {
    let row = gid.x;
    if !begin_row(row, lid) {
        return;
    }
    let r = derivative_row(row);
    let dtau = tau_tangent(row);
    let cached = SOURCE == SOURCE_RECOMPUTE && r.blocks <= CACHED_BLOCKS;
    var st = empty_state();
    if SOURCE == SOURCE_RECOMPUTE {
        for (var j = 0u; j < r.blocks; j++) {
            st = add_block_caching(st, r, j, j, cached);
        }
    }
    let f = sample_of(r, st);
    var d = 0.0;
    var w_dl = 0.0;
    if cached {
        for (var j = 0u; j < r.blocks; j++) {
            d += dot_elems(elems_of(r, f, j, cached_block(r, j, j), dtau));
        }
        for (var j = 0u; j < r.blocks; j++) {
            w_dl += write_out_elems(r, f, d, j, elems_of(r, f, j, cached_block(r, j, j), dtau), dtau);
        }
    } else {
        for (var j = 0u; j < r.blocks; j++) {
            d += dot_block(r, f, j, dtau);
        }
        for (var j = 0u; j < r.blocks; j++) {
            w_dl += write_out_block(r, f, d, j, dtau);
        }
    }
    finish_row(row, f, w_dl);
}

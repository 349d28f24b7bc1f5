// VJP or JVP, a row per segment of a subgroup's lanes (subgroup_rows): the row state and the
// dot products are combined by subgroup shuffles. A recomputed sample keeps each lane's first
// CACHED_BLOCKS blocks in registers, so that their noise is made once.
#import derivative_common
#import subgroup_rows

override WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>,
        @builtin(subgroup_id) subgroup: u32,
        @builtin(subgroup_invocation_id) subgroup_lane: u32,
        @builtin(subgroup_size) subgroup_size: u32) {
    load_params();
    let s = segment_of(wid.x, subgroup, subgroup_lane, subgroup_size);
    if !s.live {
        return;
    }
    let r = derivative_row(s.row);
    let dtau = tau_tangent(s.row);
    let cached = SOURCE == SOURCE_RECOMPUTE;
    var st = empty_state();
    if cached {
        st = segment_row_state(s, r, true);
    }
    let f = sample_of(r, st);
    // Blocks in the cache, then the rest.
    let uncached = select(s.lane, first_uncached(s), cached);
    var d = 0.0;
    if cached {
        for (var c = 0u; c < CACHED_BLOCKS; c++) {
            let j = slot_block(s, c);
            if j < r.blocks {
                d += dot_elems(elems_of(r, f, j, cached_block(r, j, c), dtau));
            }
        }
    }
    for (var j = uncached; j < r.blocks; j += s.lanes) {
        d += dot_block(r, f, j, dtau);
    }
    d = segment_sum(s, d);
    var w_dl = 0.0;
    if cached {
        for (var c = 0u; c < CACHED_BLOCKS; c++) {
            let j = slot_block(s, c);
            if j < r.blocks {
                let e = elems_of(r, f, j, cached_block(r, j, c), dtau);
                w_dl += write_out_elems(r, f, d, j, e, dtau);
            }
        }
    }
    for (var j = uncached; j < r.blocks; j += s.lanes) {
        w_dl += write_out_block(r, f, d, j, dtau);
    }
    w_dl = segment_sum(s, w_dl);
    if s.lane == 0u {
        finish_row(s.row, f, w_dl);
    }
}

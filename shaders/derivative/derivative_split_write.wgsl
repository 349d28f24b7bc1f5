// VJP or JVP for very long rows, step 3: each workgroup writes its slice of the outputs and
// keeps its part of sum w dl for the temperature's gradient.
#import derivative_split
#import workgroup_sum

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    let row = wid.y;
    let r = derivative_row(row);
    let dtau = tau_tangent(row);
    let f = split_sample(r, row);
    let d = slices_total(row, 0u);
    let range = slice_range(r, wid.x);
    var w_dl = 0.0;
    for (var j = range.x + lid; j < range.y; j += WORKGROUP_SIZE) {
        w_dl += write_out_block(r, f, d, j, dtau);
    }
    w_dl = workgroup_sum(lid, w_dl);
    if lid == 0u {
        partials[sums_index(row, wid.x)].y = bitcast<u32>(w_dl);
    }
}

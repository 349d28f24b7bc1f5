// VJP or JVP for very long rows, step 2: each workgroup's part of the row's dot product.
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
    let range = slice_range(r, wid.x);
    var d = 0.0;
    for (var j = range.x + lid; j < range.y; j += WORKGROUP_SIZE) {
        d += dot_block(r, f, j, dtau);
    }
    d = workgroup_sum(lid, d);
    if lid == 0u {
        partials[sums_index(row, wid.x)].x = bitcast<u32>(d);
    }
}

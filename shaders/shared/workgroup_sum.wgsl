// Sums over a workgroup in workgroup memory. The importing kernel declares WORKGROUP_SIZE
// (a power of two), as an override or a constant.

var<workgroup> partial_sum: array<f32, WORKGROUP_SIZE>;

// The sum of x over the workgroup, in every invocation, in a fixed tree order.
fn workgroup_sum(lid: u32, x: f32) -> f32 {
    partial_sum[lid] = x;
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if lid < half {
            partial_sum[lid] += partial_sum[lid + half];
        }
    }
    workgroupBarrier();
    let total = partial_sum[0];
    // The next call overwrites partial_sum[0].
    workgroupBarrier();
    return total;
}

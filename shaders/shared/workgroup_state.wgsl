// A workgroup's invocations combine their partial row states in workgroup memory.
// The importing kernel declares `override WORKGROUP_SIZE` (a power of two).

// Sized by the override: a fixed 1024-entry array (16 KiB) cut occupancy on an H100 tenfold.
var<workgroup> partial: array<RowState, WORKGROUP_SIZE>;

// The state of the whole row, in every invocation. Merges in a fixed tree order, so the
// result does not depend on timing.
fn workgroup_state(lid: u32, st: RowState) -> RowState {
    partial[lid] = st;
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if lid < half {
            partial[lid] = merge(partial[lid], partial[lid + half]);
        }
    }
    workgroupBarrier();
    return partial[0];
}

// The entry that ranks first (keys) among one offer per invocation of a workgroup, found by a
// tree in workgroup memory and returned to every invocation as a uniform value (so that the
// caller may branch on it around later barriers). The workgroup calls it in uniform control
// flow; an invocation with nothing to offer offers (0, NONE), below every value's key.
#import keys

override WORKGROUP_SIZE: u32 = 256u;   // a power of two

var<workgroup> best_key: array<u32, WORKGROUP_SIZE>;
var<workgroup> best_column: array<u32, WORKGROUP_SIZE>;

fn best_entry(lid: u32, key: u32, column: u32) -> vec2<u32> {
    best_key[lid] = key;
    best_column[lid] = column;
    for (var half = WORKGROUP_SIZE / 2u; half > 0u; half = half / 2u) {
        workgroupBarrier();
        if lid < half {
            let k2 = best_key[lid + half];
            let c2 = best_column[lid + half];
            if ranks_before(k2, c2, best_key[lid], best_column[lid]) {
                best_key[lid] = k2;
                best_column[lid] = c2;
            }
        }
    }
    let won = vec2<u32>(workgroupUniformLoad(&best_key[0]), workgroupUniformLoad(&best_column[0]));
    // The next call overwrites the winner.
    workgroupBarrier();
    return won;
}

// Gumbel-top-k for k up to LIST_MAX, one workgroup per row, in one pass over the row: each
// invocation keeps a sorted list of the best k of the blocks it walks (top_k_list), then k
// rounds take the best head of all the lists, found by a tree in workgroup memory (larger key
// first, the lower column among equal keys), and its owner moves on to its next entry.
#import top_k_list
#import best_entry

var<workgroup> any_bad: atomic<u32>;
// k as a value WGSL knows to be uniform: the rounds call barriers.
var<workgroup> rounds: u32;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    let row = wid.x;
    let r = row_view(row);
    if lid == 0u {
        atomicStore(&any_bad, 0u);
        rounds = params.k;
    }
    set_row_top_of_workgroup(r, lid);
    var list = empty_list();
    for (var j = lid; j < r.blocks; j += WORKGROUP_SIZE) {
        insert_block(&list, block_at(r, j));
    }
    workgroupBarrier();
    if list.bad {
        atomicStore(&any_bad, 1u);
    }
    var head = 0u;
    var empty = false;
    let k = workgroupUniformLoad(&rounds);
    for (var t = 0u; t < k; t++) {
        // An exhausted list offers (0, NONE), below every valid key.
        var key = 0u;
        var column = NONE;
        if head < list.n {
            key = list.keys[head];
            column = list.columns[head];
        }
        let won = best_entry(lid, key, column);
        if won.y != NONE && won.y == column {
            head += 1u;
        }
        // The first round finds no entry only in a row without a valid logit: no sample.
        empty = empty || (t == 0u && won.y == NONE);
        if lid == 0u {
            write_place(row, t, won.y, won.x, atomicLoad(&any_bad) != 0u || empty);
        }
    }
}

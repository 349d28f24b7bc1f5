// Gumbel-top-k, one invocation per row (short rows, small k): the row's elements, in column
// order, go through a sorted list of the best k so far (top_k_list).
#import top_k_list

override WORKGROUP_SIZE: u32 = 64u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_params();
    let row = gid.x;
    if row >= params.header.rows {
        return;
    }
    let r = row_view(row);
    set_row_top(top_logit_key(r, 0u, 1u));
    var list = empty_list();
    for (var j = 0u; j < r.blocks; j++) {
        insert_block(&list, block_at(r, j));
    }
    for (var t = 0u; t < params.k; t++) {
        var column = NONE;
        var key = 0u;
        if t < list.n {
            column = list.columns[t];
            key = list.keys[t];
        }
        // No valid logit at all: no sample.
        write_place(row, t, column, key, list.bad || list.n == 0u);
    }
}

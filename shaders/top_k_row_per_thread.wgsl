// Gumbel-top-k, one invocation per row (short rows, small k): the row's elements, in column
// order, go through a sorted list of the best k so far in registers. An element enters only
// if it is strictly larger than the list's last, so equal values keep the lower index first.
#import top_k_common

override WORKGROUP_SIZE: u32 = 64u;
const LIST_MAX: u32 = 32u;

struct List {
    keys: array<u32, LIST_MAX>,
    columns: array<u32, LIST_MAX>,
    n: u32,
    bad: bool,
}

fn insert(list: ptr<function, List>, l: Lane) {
    if l.kind == LANE_INVALID {
        (*list).bad = true;
    }
    if l.kind != LANE_VALUE {
        return;
    }
    let key = key_of(l.v);
    var at = (*list).n;
    if at < params.k {
        (*list).n += 1u;
    } else if key > (*list).keys[params.k - 1u] {
        at = params.k - 1u;
    } else {
        return;
    }
    while at > 0u && key > (*list).keys[at - 1u] {
        (*list).keys[at] = (*list).keys[at - 1u];
        (*list).columns[at] = (*list).columns[at - 1u];
        at -= 1u;
    }
    (*list).keys[at] = key;
    (*list).columns[at] = l.k;
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_params();
    let row = gid.x;
    if row >= params.rows {
        return;
    }
    let r = row_view(row);
    var list: List;
    list.n = 0u;
    list.bad = false;
    for (var j = 0u; j < r.blocks; j++) {
        let b = block_at(r, j);
        insert(&list, b.a);
        insert(&list, b.b);
        insert(&list, b.c);
        insert(&list, b.d);
    }
    for (var t = 0u; t < params.k; t++) {
        var index = NONE;
        var value = bitcast<f32>(NEG_INF_BITS);
        if t < list.n {
            index = list.columns[t];
            value = value_of(list.keys[t]);
        }
        if list.bad {
            index = NONE;
            value = bitcast<f32>(NAN_BITS);
        }
        indices[params.out_base + row * params.out_pitch + t] = index;
        values[params.values_base + row * params.out_pitch + t] = value;
    }
}

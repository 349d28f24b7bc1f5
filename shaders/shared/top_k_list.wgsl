// A sorted list of the best k (up to LIST_MAX) perturbed logits an invocation has seen, in
// registers: elements go in in column order, and one enters only if it is strictly larger than
// the list's last, so equal values keep the lower index first.
#import top_k_common

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

fn empty_list() -> List {
    var list: List;
    list.n = 0u;
    list.bad = false;
    return list;
}

fn insert_block(list: ptr<function, List>, b: Block) {
    insert(list, b.a);
    insert(list, b.b);
    insert(list, b.c);
    insert(list, b.d);
}

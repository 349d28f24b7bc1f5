// A sorted list of the best n (up to LIST_MAX) entries an invocation has seen, in registers:
// entries go in in column order, and one enters only if its key is strictly larger than the
// list's last, so equal keys keep the lower column first.
#import keys

const LIST_MAX: u32 = 32u;

struct List {
    keys: array<u32, LIST_MAX>,
    columns: array<u32, LIST_MAX>,
    n: u32,
    bad: bool,
}

fn empty_list() -> List {
    var list: List;
    list.n = 0u;
    list.bad = false;
    return list;
}

// Offers (key, column) to a list that keeps the best `most` entries.
fn insert_key(list: ptr<function, List>, key: u32, column: u32, most: u32) {
    var at = (*list).n;
    if at < most {
        (*list).n += 1u;
    } else if key > (*list).keys[most - 1u] {
        at = most - 1u;
    } else {
        return;
    }
    while at > 0u && key > (*list).keys[at - 1u] {
        (*list).keys[at] = (*list).keys[at - 1u];
        (*list).columns[at] = (*list).columns[at - 1u];
        at -= 1u;
    }
    (*list).keys[at] = key;
    (*list).columns[at] = column;
}

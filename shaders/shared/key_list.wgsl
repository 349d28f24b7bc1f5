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
    last: u32,   // keys[most - 1] once the list is full: most offers stop at it
    turned_away: bool,   // an offer was refused or pushed out: the list is not all it saw
}

fn empty_list() -> List {
    var list: List;
    list.n = 0u;
    list.bad = false;
    list.last = 0u;
    list.turned_away = false;
    return list;
}

// Offers (key, column) to a list that keeps the best `most` entries.
fn insert_key(list: ptr<function, List>, key: u32, column: u32, most: u32) {
    var at = (*list).n;
    if at == most {
        (*list).turned_away = true;
        if key <= (*list).last {
            return;
        }
        at = most - 1u;
    } else {
        (*list).n += 1u;
    }
    while at > 0u && key > (*list).keys[at - 1u] {
        (*list).keys[at] = (*list).keys[at - 1u];
        (*list).columns[at] = (*list).columns[at - 1u];
        at -= 1u;
    }
    (*list).keys[at] = key;
    (*list).columns[at] = column;
    if (*list).n == most {
        (*list).last = (*list).keys[most - 1u];
    }
}

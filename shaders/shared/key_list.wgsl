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

// The best SHORT_LIST entries in vector registers, in List's order and with its tie rule: an
// entry goes in by selects on all the slots at once rather than a loop over an indexed array,
// which llvmpipe runs lane by lane (inserting into a List cost the token sampler a quarter to a
// third of a top-k row). Empty slots hold key 0, below every finite value's key.
const SHORT_LIST: u32 = 8u;

struct ShortList {
    keys_lo: vec4<u32>,   // slots 0-3, the best first
    keys_hi: vec4<u32>,   // slots 4-7
    cols_lo: vec4<u32>,
    cols_hi: vec4<u32>,
    offered: u32,
}

fn empty_short_list() -> ShortList {
    return ShortList(vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), vec4<u32>(0u), 0u);
}

// Offers (key, column), key > 0, to a short list.
fn insert_short(list: ptr<function, ShortList>, key: u32, column: u32) {
    (*list).offered += 1u;
    let lo = (*list).keys_lo;
    let hi = (*list).keys_hi;
    if key <= hi.w {
        return;
    }
    // The slots the entry takes or pushes down, and of those the ones that take the entry
    // above them (the list is sorted, so these are runs to the end).
    let moves_lo = vec4<u32>(key) > lo;
    let moves_hi = vec4<u32>(key) > hi;
    let shifts_lo = vec4<bool>(false, moves_lo.xyz);
    let shifts_hi = vec4<bool>(moves_lo.w, moves_hi.xyz);
    let k = vec4<u32>(key);
    let c = vec4<u32>(column);
    let cols_lo = (*list).cols_lo;
    let cols_hi = (*list).cols_hi;
    (*list).keys_lo = select(lo, select(k, vec4<u32>(0u, lo.xyz), shifts_lo), moves_lo);
    (*list).keys_hi = select(hi, select(k, vec4<u32>(lo.w, hi.xyz), shifts_hi), moves_hi);
    (*list).cols_lo = select(cols_lo, select(c, vec4<u32>(0u, cols_lo.xyz), shifts_lo), moves_lo);
    (*list).cols_hi = select(cols_hi, select(c, vec4<u32>(cols_lo.w, cols_hi.xyz), shifts_hi),
                             moves_hi);
}

// The short list as a List that kept its best SHORT_LIST.
fn list_of_short(short: ShortList) -> List {
    var list = empty_list();
    for (var i = 0u; i < 4u; i++) {
        list.keys[i] = short.keys_lo[i];
        list.columns[i] = short.cols_lo[i];
        list.keys[i + 4u] = short.keys_hi[i];
        list.columns[i + 4u] = short.cols_hi[i];
    }
    list.n = min(short.offered, SHORT_LIST);
    list.last = short.keys_hi.w;
    list.turned_away = short.offered > SHORT_LIST;
    return list;
}

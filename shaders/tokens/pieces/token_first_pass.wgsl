// The token sampler's first pass over a row, in each invocation: the largest l, the raw
// log-sum-exp, and what a row's path needs besides (candidates for a row sampled in this pass,
// the list of its best entries for a row sampled from the lists).
#import key_list

// What the first pass gathers in an invocation: the largest l, the raw log-sum-exp, and for a
// row sampled in that pass the log-sum-exp of l / tau.
struct First {
    top_key: u32,
    top_col: u32,
    raw: vec2<f32>,      // (m, sum exp(x - m)); sum 0: empty
    count: u32,
    bad: bool,
    scaled: vec2<f32>,   // (m, sum exp((l - m) / tau)) of the row's l
}

fn empty_first() -> First {
    var f: First;
    f.top_key = 0u;
    f.top_col = NONE;
    f.raw = vec2<f32>(0.0);
    f.count = 0u;
    f.bad = false;
    f.scaled = vec2<f32>(0.0);
    return f;
}

// (m, sum exp((v - m) / tau)) with v added: differences before the division, so that the
// sum keeps its digits however large v / tau is.
fn add_exp(acc: vec2<f32>, v: f32, tau: f32) -> vec2<f32> {
    if acc.y == 0.0 {
        return vec2<f32>(v, 1.0);
    }
    if v > acc.x {
        return vec2<f32>(v, acc.y * exp((acc.x - v) / tau) + 1.0);
    }
    return vec2<f32>(acc.x, acc.y + exp((v - acc.x) / tau));
}

// A row sampled in its first pass keeps, in each invocation, its best few candidates by
// l / tau + g (the order below: by score, the lower column first among equal ones): min-p's
// threshold still rises while the pass runs, so the best of them that clears the final
// threshold is the invocation's draw, unless every one of them fell below it after others
// were turned away. The largest l is not known yet, so candidates keep l and g and compare by
// (l_b - l_a) / tau against g_a - g_b: exact however large l / tau is.
const CANDIDATES: u32 = 4u;

struct Candidates {
    l: array<f32, CANDIDATES>,
    g: array<f32, CANDIDATES>,
    columns: array<u32, CANDIDATES>,
    n: u32,
    turned_away: bool,
}

// Whether (l, g) scores above (la, ga) at temperature tau.
fn scores_above(l: f32, g: f32, la: f32, ga: f32, tau: f32) -> bool {
    return (l - la) / tau > ga - g;
}

// Offers an element (columns come in increasing order, so an equal score stays behind).
fn offer(c: ptr<function, Candidates>, l: f32, g: f32, column: u32, tau: f32) {
    var at = (*c).n;
    if at == CANDIDATES {
        (*c).turned_away = true;
        if !scores_above(l, g, (*c).l[at - 1u], (*c).g[at - 1u], tau) {
            return;
        }
        at -= 1u;
    } else {
        (*c).n += 1u;
    }
    while at > 0u && scores_above(l, g, (*c).l[at - 1u], (*c).g[at - 1u], tau) {
        (*c).l[at] = (*c).l[at - 1u];
        (*c).g[at] = (*c).g[at - 1u];
        (*c).columns[at] = (*c).columns[at - 1u];
        at -= 1u;
    }
    (*c).l[at] = l;
    (*c).g[at] = g;
    (*c).columns[at] = column;
}

// The first pass of a row sampled in it: the element also becomes a candidate, if it clears
// min-p against the largest l so far (the threshold only rises).
fn sampled_add(f: ptr<function, First>, candidates: ptr<function, Candidates>, e: Elem, g: f32,
               s: Settings) {
    first_add(f, e);
    if e.kind != LANE_VALUE {
        return;
    }
    if s.min_p > 0.0 && !passes_min_p(weight(e.l, value_of((*f).top_key), s), s) {
        return;
    }
    offer(candidates, e.l, g, e.col, s.tau);
    if weight_wanted(params) {
        (*f).scaled = add_exp((*f).scaled, e.l, s.tau);
    }
}

// An invocation's best score so far, l / tau + g kept as l and g (as a candidate).
struct Scored {
    l: f32,
    g: f32,
    column: u32,
}

// The first pass of a row sampled in it without min-p: the element replaces the best if it
// scores above it (columns come in increasing order, so an equal score stays behind).
fn best_add(f: ptr<function, First>, best: ptr<function, Scored>, e: Elem, g: f32, s: Settings) {
    first_add(f, e);
    if e.kind != LANE_VALUE {
        return;
    }
    if (*best).column == NONE || scores_above(e.l, g, (*best).l, (*best).g, s.tau) {
        *best = Scored(e.l, g, e.col);
    }
    if weight_wanted(params) {
        (*f).scaled = add_exp((*f).scaled, e.l, s.tau);
    }
}

// Whether a row's kept weight is wanted: for its token's log-probability, or to verify a draft
// against the row (token_verify).
fn weight_wanted(call: Params) -> bool {
    return call.want_logprobs != 0u || call.requests != 0u;
}

// Adds an element to the first pass.
fn first_add(f: ptr<function, First>, e: Elem) {
    (*f).bad = (*f).bad || e.kind == LANE_INVALID;
    if e.raw && params.want_logprobs != 0u {
        (*f).raw = add_exp((*f).raw, e.x, 1.0);
    }
    if e.kind == LANE_VALUE {
        (*f).count += 1u;
        let key = key_of(e.l);
        if ranks_before(key, e.col, (*f).top_key, (*f).top_col) {
            (*f).top_key = key;
            (*f).top_col = e.col;
        }
    }
}

// Adds an element to the first pass and to `list`, which keeps the best `most`.
fn listed_add(f: ptr<function, First>, e: Elem, list: ptr<function, List>, most: u32) {
    first_add(f, e);
    if e.kind == LANE_VALUE {
        insert_key(list, key_of(e.l), e.col, most);
    }
}

// listed_add for a list of SHORT_LIST entries.
fn short_listed_add(f: ptr<function, First>, e: Elem, list: ptr<function, ShortList>) {
    first_add(f, e);
    if e.kind == LANE_VALUE {
        insert_short(list, key_of(e.l), e.col);
    }
}

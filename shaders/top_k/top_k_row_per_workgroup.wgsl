// Gumbel-top-k, one workgroup per row (long rows): the k largest perturbed logits l + g (the index mode's
// noise) and their indices, in decreasing order (ties: the lower index first). A sample of k
// categories without replacement (Kool, van Hoof and Welling, 2019).
//
// A radix select finds the k-th largest value without sorting the row: four passes build
// 256-bin histograms of one byte of an order-preserving key each, narrowing to the exact key
// of the k-th largest; when that key is shared by more elements than are still wanted, four
// more passes pick the lowest indices among them. A last pass collects the k winners into
// workgroup memory, where a bitonic sort orders them. Each pass regenerates the noise, so
// nothing but the outputs is written, and each invocation's loops stay short (lavapipe): for
// the longest rows an invocation takes four blocks a loop iteration, and the workgroup widens.
#import top_k_common

override WORKGROUP_SIZE: u32 = 256u;   // a power of two, 256 to 1024
// 1, or 4 where a driver's loop budget needs it (on lavapipe the unrolled loop costs 10-20%).
override BLOCKS_PER_ITERATION: u32 = 1u;
const K_MAX: u32 = 256u;   // one invocation per entry in the sort
const BINS: u32 = 256u;

var<workgroup> histogram: array<atomic<u32>, BINS>;
var<workgroup> invalid: atomic<u32>;
var<workgroup> picked: atomic<u32>;
// The selection so far: (decided key bits, still wanted, count at the chosen bin, valid count).
var<workgroup> selection: vec4<u32>;
var<workgroup> chosen_key: array<u32, K_MAX>;
var<workgroup> chosen_index: array<u32, K_MAX>;

// What a pass does with one element: histogram of a key byte (by value, or by index among
// the elements at the threshold key), or collection of the winners.
const PASS_VALUE: u32 = 0u;
const PASS_INDEX: u32 = 1u;
const PASS_COLLECT: u32 = 2u;

struct Pass {
    kind: u32,
    shift: u32,
    prefix: u32,       // decided key bits (value passes) or index bits (index passes)
    threshold: u32,    // the k-th largest key (index and collect passes)
    take_all: bool,    // collect: every element at the threshold key is wanted
    last_index: u32,   // collect: the highest index wanted at the threshold key
}

fn visit(p: Pass, l: Lane) {
    if l.kind == LANE_INVALID {
        atomicStore(&invalid, 1u);
    }
    if l.kind != LANE_VALUE {
        return;
    }
    let key = rank_key(l);
    let mask = high_mask(p.shift);
    if p.kind == PASS_VALUE {
        if (key & mask) == p.prefix {
            atomicAdd(&histogram[(key >> p.shift) & 255u], 1u);
        }
    } else if p.kind == PASS_INDEX {
        if key == p.threshold && (l.k & mask) == p.prefix {
            atomicAdd(&histogram[(l.k >> p.shift) & 255u], 1u);
        }
    } else if key > p.threshold || (key == p.threshold && (p.take_all || l.k <= p.last_index)) {
        let slot = atomicAdd(&picked, 1u);
        chosen_key[slot] = key;
        chosen_index[slot] = l.k;
    }
}

fn visit_block(r: Row, p: Pass, j: u32) {
    let b = block_at(r, j);
    visit(p, b.a);
    visit(p, b.b);
    visit(p, b.c);
    visit(p, b.d);
}

fn visit_block_in_row(r: Row, p: Pass, j: u32) {
    if j < r.blocks {
        visit_block(r, p, j);
    }
}

fn run_pass(r: Row, lid: u32, p: Pass) {
    for (var j = lid; j < r.blocks; j += BLOCKS_PER_ITERATION * WORKGROUP_SIZE) {
        visit_block(r, p, j);
        if BLOCKS_PER_ITERATION == 4u {
            visit_block_in_row(r, p, j + WORKGROUP_SIZE);
            visit_block_in_row(r, p, j + 2u * WORKGROUP_SIZE);
            visit_block_in_row(r, p, j + 3u * WORKGROUP_SIZE);
        }
    }
}

// Invocation 0, after a histogram pass: the bin where the wanted count is reached, counting
// from the largest values (value passes) or from the lowest indices (index passes).
fn choose_bin(p: Pass, wanted: u32) -> vec2<u32> {
    var before = 0u;
    for (var i = 0u; i < 256u; i++) {
        let bin = select(255u - i, i, p.kind == PASS_INDEX);
        let count = atomicLoad(&histogram[bin]);
        if before + count >= wanted {
            return vec2<u32>(bin, before);
        }
        before += count;
    }
    return vec2<u32>(0u, before);
}

// Entry a comes before entry b: the larger value, then the lower index.
fn before(a: u32, b: u32) -> bool {
    return ranks_before(chosen_key[a], chosen_index[a], chosen_key[b], chosen_index[b]);
}

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    let row = wid.x;
    let r = row_view(row);
    if lid == 0u {
        atomicStore(&invalid, 0u);
        atomicStore(&picked, 0u);
        selection = vec4<u32>(0u, params.k, 0u, 0u);
    }
    set_row_top_of_workgroup(r, lid);
    var p = Pass(PASS_VALUE, 24u, 0u, 0u, false, 0u);
    // Value passes (top byte first), then index passes when the threshold key is shared.
    for (var step = 0u; step < 8u; step++) {
        if lid < BINS {
            atomicStore(&histogram[lid], 0u);
        }
        // The same value in every invocation, so that the break below keeps the barriers in
        // uniform control flow.
        let sel = workgroupUniformLoad(&selection);
        if step == 4u {
            if sel.y == 0u || sel.y == sel.z {
                break;   // no element, or all of those at the threshold key, is wanted
            }
            p = Pass(PASS_INDEX, 24u, 0u, sel.x, false, 0u);
        }
        run_pass(r, lid, p);
        workgroupBarrier();
        if lid == 0u {
            var wanted = sel.y;
            var valid = sel.w;
            if step == 0u {
                for (var i = 0u; i < 256u; i++) {
                    valid += atomicLoad(&histogram[i]);
                }
                wanted = min(params.k, valid);
            }
            if wanted > 0u {
                let bin = choose_bin(p, wanted);
                let count = atomicLoad(&histogram[bin.x]);
                selection = vec4<u32>(p.prefix | (bin.x << p.shift), wanted - bin.y, count, valid);
            } else {
                selection = vec4<u32>(0u, 0u, 0u, valid);
            }
        }
        workgroupBarrier();
        p.prefix = selection.x;
        p.shift = (p.shift + 24u) % 32u;   // 24, 16, 8, 0, then 24 again for the indices
    }
    let sel = workgroupUniformLoad(&selection);
    let wanted = min(params.k, sel.w);
    // Collect: every key above the threshold, and those at it as decided.
    if wanted > 0u {
        var collect = Pass(PASS_COLLECT, 0u, 0u, sel.x, sel.y == sel.z, 0xffffffffu);
        if p.kind == PASS_INDEX {
            collect.threshold = p.threshold;
            collect.take_all = false;
            collect.last_index = sel.x;
        }
        run_pass(r, lid, collect);
    }
    workgroupBarrier();
    if lid >= wanted && lid < K_MAX {
        chosen_key[lid] = 0u;               // below every value's key
        chosen_index[lid] = 0xffffffffu;
    }
    // Bitonic sort into decreasing order.
    for (var size = 2u; size <= K_MAX; size <<= 1u) {
        for (var stride = size >> 1u; stride > 0u; stride >>= 1u) {
            workgroupBarrier();
            let partner = lid ^ stride;
            if partner > lid && partner < K_MAX {
                let descending = (lid & size) == 0u;
                if (descending && before(partner, lid)) || (!descending && before(lid, partner)) {
                    let key = chosen_key[lid];
                    let index = chosen_index[lid];
                    chosen_key[lid] = chosen_key[partner];
                    chosen_index[lid] = chosen_index[partner];
                    chosen_key[partner] = key;
                    chosen_index[partner] = index;
                }
            }
        }
    }
    workgroupBarrier();
    // A row without a valid logit has no sample.
    let bad = atomicLoad(&invalid) != 0u || sel.w == 0u;
    if lid < params.k {
        // Fewer valid logits than k: the rest of the row is empty.
        let column = select(chosen_index[lid], NONE, lid >= wanted);
        write_place(row, lid, column, chosen_key[lid], bad);
    }
}

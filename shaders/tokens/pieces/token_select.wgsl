// The radix select of the token sampler: the cut of top-k (a count) or top-p (a weight) over a
// row, from histograms of its keys a byte at a time.

const BINS: u32 = 256u;
var<workgroup> hist_lo: array<atomic<u32>, BINS>;
var<workgroup> hist_hi: array<atomic<u32>, BINS>;
// The weight of the entries of each key in the last value pass, as they added it (0: 2^32).
var<workgroup> bin_weight: array<atomic<u32>, BINS>;
// A radix select's state: (decided bits, wanted lo, wanted hi, done), (threshold key, cut
// column, -, -).
var<workgroup> selection: vec4<u32>;
var<workgroup> selection_cut: vec4<u32>;

fn add_to_bin(bin: u32, q: vec2<u32>) {
    if q.x != 0u {
        let old = atomicAdd(&hist_lo[bin], q.x);
        if old > 0xffffffffu - q.x {
            atomicAdd(&hist_hi[bin], 1u);
        }
    }
    if q.y != 0u {
        atomicAdd(&hist_hi[bin], q.y);
    }
}

fn bin_total(bin: u32) -> vec2<u32> {
    return vec2<u32>(atomicLoad(&hist_lo[bin]), atomicLoad(&hist_hi[bin]));
}

// One step of a radix select: the bits decided so far of the key (steps 0 to 3) or of the
// column among the entries of key `threshold` (steps 4 to 7), the next byte's shift.
struct SelectStep {
    step: u32,
    shift: u32,
    bits: u32,
    threshold: u32,
}

// The histogram of a select step over this invocation's entries, their l after `transform`
// (a constant at each call, as the sampler's first pass).
fn histogram_pass(r: Row, s: Settings, row: u32, lid: u32, m: f32, weighted: bool,
                  prior: vec2<u32>, at: SelectStep, transform: bool) {
    let by_column = at.step >= 4u;
    let mask = high_mask(at.shift);
    let own = walk(vec2<u32>(0u, r.blocks), lid);
    for (var j = own.start; j < own.end; j += own.step) {
        let x = block_x(r, j);
        for (var i = 0u; i < 4u; i++) {
            let e = elem_with(r, s, row, 4u * j + i, x[i], transform);
            if e.kind != LANE_VALUE {
                continue;
            }
            let key = key_of(e.l);
            let w = weight(e.l, m, s);
            if weighted && (!within(key, e.col, prior) || !passes_min_p(w, s)) {
                continue;
            }
            if !by_column && (key & mask) == at.bits {
                let q = select(vec2<u32>(1u, 0u), fixed(w), weighted);
                add_to_bin((key >> at.shift) & 255u, q);
                if at.step == 3u {
                    atomicStore(&bin_weight[key & 255u], q.x);
                }
            } else if by_column && key == at.threshold && (e.col & mask) == at.bits {
                add_to_bin((e.col >> at.shift) & 255u, vec2<u32>(1u, 0u));
            }
        }
    }
}

// The cut of a radix select: the first entry, in the row's order, at which the entries so far
// reach `k` (a count, over every valid entry) or `p` times the weight of them all (weighted,
// over the entries within `prior` and with w >= min_p). Four passes narrow the key a byte at a time from the top;
// where the cut falls among entries of equal key, four more pick their column.
fn select_cut(r: Row, s: Settings, row: u32, lid: u32, m: f32, weighted: bool,
              prior: vec2<u32>) -> vec2<u32> {
    if lid == 0u {
        selection = vec4<u32>(0u, 0u, 0u, 0u);
        selection_cut = vec4<u32>(0u, NONE, 0u, 0u);
    }
    for (var step = 0u; step < 8u; step++) {
        for (var i = lid; i < BINS; i += WORKGROUP_SIZE) {
            atomicStore(&hist_lo[i], 0u);
            atomicStore(&hist_hi[i], 0u);
        }
        let sel = workgroupUniformLoad(&selection);
        if sel.w != 0u {
            break;
        }
        let by_column = step >= 4u;
        let shift = 24u - 8u * (step & 3u);
        let at = SelectStep(step, shift, sel.x, workgroupUniformLoad(&selection_cut).x);
        if s.transformed {
            histogram_pass(r, s, row, lid, m, weighted, prior, at, true);
        } else {
            histogram_pass(r, s, row, lid, m, weighted, prior, at, false);
        }
        workgroupBarrier();
        if lid == 0u {
            var wanted = vec2<u32>(sel.y, sel.z);
            if step == 0u {
                var total = vec2<u32>(0u, 0u);
                for (var i = 0u; i < BINS; i++) {
                    total = add64(total, bin_total(i));
                }
                wanted = vec2<u32>(s.k, 0u);
                if weighted {
                    wanted = scaled(total, s.p);
                    if wanted.x == 0u && wanted.y == 0u {
                        wanted.x = 1u;
                    }
                }
            }
            // The bin where the wanted amount is reached: from the largest keys down, or from
            // the lowest columns up.
            var before = vec2<u32>(0u, 0u);
            var bin = 0u;
            for (var i = 0u; i < BINS; i++) {
                bin = select(255u - i, i, by_column);
                let next = add64(before, bin_total(bin));
                if ge64(next, wanted) {
                    break;
                }
                before = next;
            }
            wanted = sub64(wanted, before);
            let bits = sel.x | (bin << shift);
            var done = 0u;
            var next_bits = bits;
            if step == 3u {
                // The key at the cut: how many of its entries (all of equal weight) are wanted.
                let w = atomicLoad(&bin_weight[bin]);
                let q = vec2<u32>(w, select(0u, 1u, w == 0u));
                let c = entries_for(wanted, q);
                selection_cut.x = bits;
                if ge64(times(c, q), bin_total(bin)) {
                    done = 1u;   // all of them: the cut is (key, NONE)
                } else {
                    wanted = vec2<u32>(c, 0u);
                    next_bits = 0u;
                }
            } else if step == 7u {
                selection_cut.y = bits;
                done = 1u;
            }
            selection = vec4<u32>(next_bits, wanted.x, wanted.y, done);
        }
        workgroupBarrier();
    }
    let cut = workgroupUniformLoad(&selection_cut);
    // The next select resets the cut.
    workgroupBarrier();
    return cut.xy;
}


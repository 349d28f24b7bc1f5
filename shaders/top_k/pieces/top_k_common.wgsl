// What the top-k kernels share: parameters, bindings, and the order-preserving keys of the
// perturbed logits.
#import sampler_row
#import params
#import keys

struct TopKParams {
    header: RowHeader,
    k: u32,
    values_base: u32,    // element index of row 0 in `values`
    _pad: array<u32, 2>,
}

alias Params = TopKParams;
const BINDING_INDICES: u32 = 5u;   // BINDING_FAMILY
const BINDING_VALUES: u32 = 6u;
@group(0) @binding(BINDING_INDICES) var<storage, read_write> indices: array<u32>;
@group(0) @binding(BINDING_VALUES) var<storage, read_write> values: array<f32>;

fn needs_sum() -> bool {
    return false;
}

// The row's largest valid logit L. Entries rank by (l - L) + g, the order of l + g with the
// noise's digits kept however large l is (l + g rounds them away); the values written are
// that plus L.
var<private> row_top: f32;

fn rank_key(l: Lane) -> u32 {
    return key_of((l.x - row_top) + l.g);
}

// The largest key of a valid logit among blocks first, first + step, ... of the row (0: none).
// One loop iteration a block (llvmpipe's loop budget counts iterations).
fn top_logit_key(r: Row, first: u32, step: u32) -> u32 {
    var best = 0u;
    for (var j = first; j < r.blocks; j += step) {
        let x = input4_at(r.in_at, 4u * j - r.lead, params.header.in_stride);
        let t = 4u * j;
        best = max(max(logit_key(r, t, x.x), logit_key(r, t + 1u, x.y)),
                   max(max(logit_key(r, t + 2u, x.z), logit_key(r, t + 3u, x.w)), best));
    }
    return best;
}

// The key of logit x at position t of the row's blocks; 0 outside the row, masked or invalid.
fn logit_key(r: Row, t: u32, x: f32) -> u32 {
    let finite = (bitcast<u32>(x) & 0x7f800000u) != 0x7f800000u;
    return select(0u, key_of(x), t >= r.lead && t - r.lead < params.header.cols && finite);
}

fn set_row_top(key: u32) {
    row_top = select(0.0, value_of(key), key != 0u);
}

var<workgroup> shared_top_key: atomic<u32>;

// row_top for a row that a workgroup walks, in every invocation (uniform control flow).
fn set_row_top_of_workgroup(r: Row, lid: u32) {
    if lid == 0u {
        atomicStore(&shared_top_key, 0u);
    }
    workgroupBarrier();
    atomicMax(&shared_top_key, top_logit_key(r, lid, WORKGROUP_SIZE));
    workgroupBarrier();
    set_row_top(atomicLoad(&shared_top_key));
}

// Writes place t of row `row`: the column and its value, -inf past the row's valid elements
// (column NONE), or NONE and NaN in a row with an invalid value.
fn write_place(row: u32, t: u32, column: u32, key: u32, bad: bool) {
    var index = column;
    var value = value_of(key) + row_top;
    if column == NONE {
        value = neg_inf_f32();
    }
    if bad {
        index = NONE;
        value = nan_f32();
    }
    indices[params.header.out_base + row * params.header.out_pitch + t] = index;
    values[params.values_base + row * params.header.out_pitch + t] = value;
}

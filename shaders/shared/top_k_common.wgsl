// What the top-k kernels share: parameters, bindings, and the order-preserving keys of the
// perturbed logits.
#import sampler_row
#import params
#import keys

struct TopKParams {
    seed: vec2<u32>,
    offset: vec2<u32>,
    rows: u32,
    cols: u32,
    in_pitch: u32,
    out_pitch: u32,      // of the outputs: k
    in_base: u32,
    out_base: u32,       // element index of row 0 in `indices`
    tau_base: u32,       // unused: top-k takes no temperature
    tau_per_row: u32,
    tau: f32,
    counter_used: u32,
    in_stride: u32,      // elements between a row's categories (see sampler_row)
    out_stride: u32,
    k: u32,
    values_base: u32,    // element index of row 0 in `values`
    _pad0: u32,
    _pad1: u32,
}

alias Params = TopKParams;
const BINDING_INDICES: u32 = 5u;   // BINDING_FAMILY
const BINDING_VALUES: u32 = 6u;
@group(0) @binding(BINDING_INDICES) var<storage, read_write> indices: array<u32>;
@group(0) @binding(BINDING_VALUES) var<storage, read_write> values: array<f32>;

fn needs_sum() -> bool {
    return false;
}

// Writes place t of row `row`: the column and its value, -inf past the row's valid elements
// (column NONE), or NONE and NaN in a row with an invalid value.
fn write_place(row: u32, t: u32, column: u32, key: u32, bad: bool) {
    var index = column;
    var value = value_of(key);
    if column == NONE {
        value = bitcast<f32>(NEG_INF_BITS);
    }
    if bad {
        index = NONE;
        value = bitcast<f32>(NAN_BITS);
    }
    indices[params.out_base + row * params.out_pitch + t] = index;
    values[params.values_base + row * params.out_pitch + t] = value;
}

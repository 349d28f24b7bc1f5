// The forward kernels' parameters and bindings.
#import sampler_row
#import params

struct ForwardParams {
    seed: vec2<u32>,
    offset: vec2<u32>,   // flat noise index of row 0, column 0 of this dispatch
    rows: u32,
    cols: u32,
    in_pitch: u32,
    out_pitch: u32,
    in_base: u32,        // element index of row 0 in `logits`
    out_base: u32,       // element index of row 0 in `out`
    tau_base: u32,       // index of row 0 in `taus`
    tau_per_row: u32,
    tau: f32,
    counter_used: u32,   // seed and offset from `counter` (see sampler_row)
    in_stride: u32,      // elements between a row's categories (see sampler_row)
    out_stride: u32,
    slices: u32,         // SplitRow: workgroups per row
    slice_blocks: u32,   // SplitRow: noise blocks per slice
}

alias Params = ForwardParams;
const BINDING_PARTIALS: u32 = 5u;   // BINDING_FAMILY
@group(0) @binding(BINDING_PARTIALS) var<storage, read_write> partials: array<vec4<u32>>;   // SplitRow only

// Soft and log-soft need the row's sum of exponentials; hard and index only its argmax.
fn needs_sum() -> bool {
    return MODE == MODE_SOFT || MODE == MODE_LOG_SOFT;
}

// The forward kernels' parameters and bindings.
#import sampler_row
#import params

struct ForwardParams {
    header: RowHeader,
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

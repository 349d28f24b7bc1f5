// Advances a GPU-side noise counter (seed lo, hi, offset lo, hi) past the noise a call drew,
// so that the next call recorded with the same arguments draws fresh noise.
#import u64

struct AdvanceParams {
    elements: vec2<u32>,
    _pad: array<u32, 2>,
}

@group(0) @binding(0) var<storage, read> params: AdvanceParams;
@group(0) @binding(1) var<storage, read_write> counter: array<u32>;

@compute @workgroup_size(1)
fn main() {
    let offset = add64(vec2<u32>(counter[2], counter[3]), params.elements);
    counter[2] = offset.x;
    counter[3] = offset.y;
}

// The bandwidth yardstick of the benchmarks: a plain copy of vec4<u32>, grid-strided.

struct CopyParams {
    count: u32,   // in vec4 units
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// A uniform, unlike the kernels' parameters: a yardstick should get every optimisation a driver
// offers, and lavapipe specialises this loop on its bound (about twice as fast).
@group(0) @binding(0) var<uniform> params: CopyParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> dst: array<vec4<u32>>;

const WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * WORKGROUP_SIZE;
    for (var i = gid.x; i < params.count; i += stride) {
        dst[i] = src[i];
    }
}

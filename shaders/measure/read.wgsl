// The yardstick of read-mostly kernels (top-k): every vec4 of the input is read once. The one
// store depends on all that was read, so no compiler can skip the reads; it practically never
// happens.

struct ReadParams {
    count: u32,   // in vec4 units
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}

// A uniform, as for the copy kernel (copy.wgsl says why).
@group(0) @binding(0) var<uniform> params: ReadParams;
@group(0) @binding(1) var<storage, read> src: array<vec4<u32>>;
@group(0) @binding(2) var<storage, read_write> sink: array<u32>;

const WORKGROUP_SIZE: u32 = 256u;

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>,
        @builtin(num_workgroups) groups: vec3<u32>) {
    let stride = groups.x * WORKGROUP_SIZE;
    var acc = vec4<u32>();
    for (var i = gid.x; i < params.count; i += stride) {
        acc ^= src[i];
    }
    if (acc.x ^ acc.y ^ acc.z ^ acc.w) == 0x9e3779b9u {
        sink[0] = gid.x;
    }
}

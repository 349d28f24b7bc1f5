// The token sampler, a workgroup per row, for calls without token lists or masks.
#import token_unlisted
#import token_sampler

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    sample_row(wid.x, lid);
}

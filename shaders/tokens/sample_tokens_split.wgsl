// The token sampler with long rows split over workgroups (token_split), for calls without
// token lists or masks.
#import token_unlisted
#import token_split

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    split_stage(wid.x, wid.y, lid);
}

// Speculative decoding's verification (token_verify), a workgroup a target position, for
// calls without token lists or masks.
#import token_unlisted
#import token_verify

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    verify_position(wid.x, lid);
}

// Speculative decoding's verification (token_verify), a workgroup a target position, with
// token lists and masks.
#import token_listed
#import token_verify

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    verify_position(wid.x, lid);
}

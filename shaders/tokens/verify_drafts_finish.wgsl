// Speculative decoding's verification (token_verify): each request's outputs from its
// positions' verdicts, an invocation a request.
#import token_unlisted
#import token_verify

@compute @workgroup_size(FINISH_SIZE)
fn main(@builtin(global_invocation_id) gid: vec3<u32>) {
    load_params();
    finish_request(gid.x);
}

// The token sampler, a workgroup per row, with per-row token lists and masks (token_listed).
#import token_listed
#import token_sampler

@compute @workgroup_size(WORKGROUP_SIZE)
fn main(@builtin(workgroup_id) wid: vec3<u32>, @builtin(local_invocation_index) lid: u32) {
    load_params();
    sample_row(wid.x, lid);
}

//! Every kernel variant a device uses builds its pipeline: through naga here, through Chrome's
//! compiler in the browser suite (tests/browser.rs), which runs the same call.

mod common;

use common::ctx;
use gumbel_wgpu::{GpuContext, WideMultiply};

#[test]
fn every_variant_builds() {
    let built = pollster::block_on(ctx().kernels().build_all_async()).unwrap();
    // Each kernel file at least once (three storage types for most).
    assert!(built >= 27, "{built} pipelines built");
}

#[test]
fn every_variant_builds_with_halves_and_writable_inputs() {
    let halves = GpuContext::new()
        .and_then(|c| c.with_wide_multiply(WideMultiply::Halves))
        .unwrap();
    pollster::block_on(halves.kernels().build_all_async()).unwrap();
    let writable = GpuContext::new().unwrap().with_inputs_writable();
    pollster::block_on(writable.kernels().build_all_async()).unwrap();
}

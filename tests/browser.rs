//! The crate in a browser: WebGPU through wasm32, run by wasm-bindgen-test-runner in headless
//! Chromium (scripts/browser-tests.sh). Native runs skip this file.
#![cfg(target_arch = "wasm32")]

use gumbel_wgpu::{GpuContext, philox};
use wasm_bindgen_test::{wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn context() -> GpuContext {
    let ctx = GpuContext::new_async().await.expect("a WebGPU adapter");
    web_sys_log(&ctx.summary());
    ctx
}

fn web_sys_log(line: &str) {
    wasm_bindgen_test::console_log!("{line}");
}

#[wasm_bindgen_test]
async fn every_variant_builds() {
    let ctx = context().await;
    let built = ctx.kernels().build_all_async().await.unwrap();
    assert!(built >= 27, "{built} pipelines built");
    let writable = GpuContext::new_async().await.unwrap().with_inputs_writable();
    writable.kernels().build_all_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn noise_words_are_philox_bit_for_bit() {
    let ctx = context().await;
    let (seed, offset, count) = (0x0123_4567_89ab_cdef, 12_345, 70_003);
    let gpu = ctx.noise_words_async(seed, offset, count).await.unwrap();
    let cpu: Vec<u32> = (0..count as u64).map(|i| philox::noise_word(seed, offset + i)).collect();
    assert_eq!(gpu, cpu);
}

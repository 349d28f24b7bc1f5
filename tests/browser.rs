//! The crate in a browser: WebGPU through wasm32, run by wasm-bindgen-test-runner in headless
//! Chromium (scripts/browser-tests.sh), whose shader compiler is Chrome's own (Tint) and whose
//! adapter here is SwiftShader (no subgroups, no 64-bit integers, no f16 arithmetic). Each
//! family is held to the f64 reference by the same checks and tolerances as the native suite
//! (tests/common), at a few shapes each: padded rows, masked rows, a batch past one dispatch.
//! Native runs compile this file to nothing.
#![cfg(target_arch = "wasm32")]

mod common;

use common::derivative::{Direction, SourceKind, make_inputs};
use common::tokens::{Bias, Processing, TokenCase};
use common::top_k::{CASES, TopKInput};
use common::{CORE_STRATEGIES, make_batch, noise_tolerance};
use gumbel_wgpu::{Element, GpuContext, Mode, NoiseRange, SampleArgs, Strategy, philox, reference};
use half::{bf16, f16};
use wasm_bindgen_test::{console_log, wasm_bindgen_test, wasm_bindgen_test_configure};

wasm_bindgen_test_configure!(run_in_browser);

async fn context() -> GpuContext {
    let ctx = GpuContext::new_async().await.expect("a WebGPU adapter");
    console_log!("test device: {}", ctx.summary());
    ctx
}

/// Every kernel variant the device uses creates its pipeline under Chrome's compiler, with
/// inputs bound read-only and (as `with_inputs_writable` binds them) writable.
#[wasm_bindgen_test]
async fn every_variant_builds() {
    let ctx = context().await;
    let built = ctx.kernels().build_all_async().await.unwrap();
    assert!(built >= 27, "{built} pipelines built");
    let writable = GpuContext::new_async()
        .await
        .unwrap()
        .with_inputs_writable();
    writable.kernels().build_all_async().await.unwrap();
}

#[wasm_bindgen_test]
async fn noise_words_are_philox_bit_for_bit() {
    let ctx = context().await;
    let (seed, offset, count) = (0x0123_4567_89ab_cdef, 12_345, 70_003);
    let gpu = ctx.noise_words_async(seed, offset, count).await.unwrap();
    let cpu: Vec<u32> = (0..count as u64)
        .map(|i| philox::noise_word(seed, offset + i))
        .collect();
    assert_eq!(gpu, cpu);
}

/// Gumbel noise, standard and wide, within 1e-6 + 4 ULP(g) of the f64 reference.
#[wasm_bindgen_test]
async fn gumbel_noise_is_within_bound_in_both_ranges() {
    let ctx = context().await;
    for range in NoiseRange::ALL {
        let (seed, offset, count) = (99, (1 << 33) + 5, 50_000);
        let gpu = ctx
            .gumbel_noise_in_async(range, seed, offset, count)
            .await
            .unwrap();
        let exact = reference::gumbel_noise_in(range, seed, offset, count);
        for (i, (&g, &e)) in gpu.iter().zip(&exact).enumerate() {
            let err = (f64::from(g) - e).abs();
            assert!(err <= noise_tolerance(e), "{range:?} {i}: {g} against {e}");
        }
    }
}

async fn forward_matches_reference<T: Element>(ctx: &GpuContext) {
    let mut tally = common::forward::Tally::default();
    for mode in Mode::ALL {
        for (case, (rows, cols)) in [(3, 257), (4, 33), (1, 4099)].into_iter().enumerate() {
            let batch = make_batch::<T>(rows, cols, case as u64 + 11);
            for strategy in CORE_STRATEGIES {
                let gpu = common::forward::run_gpu(ctx, &batch, mode, strategy)
                    .await
                    .unwrap();
                common::forward::check(&batch, mode, strategy, &gpu, &mut tally);
            }
        }
    }
    console_log!("forward {:?}: {tally:?}", T::STORAGE);
}

#[wasm_bindgen_test]
async fn forward_modes_match_reference() {
    let ctx = context().await;
    forward_matches_reference::<f32>(&ctx).await;
    forward_matches_reference::<f16>(&ctx).await;
    forward_matches_reference::<bf16>(&ctx).await;
}

/// 70,000 rows of a workgroup each: more workgroups than one dispatch takes, so the call is
/// split; every third row has masked entries.
#[wasm_bindgen_test]
async fn a_batch_past_one_dispatch_matches_reference() {
    let ctx = context().await;
    let mut tally = common::forward::Tally::default();
    let batch = make_batch::<f32>(70_000, 3, 5);
    for mode in [Mode::Index, Mode::Soft] {
        let strategy = Strategy::RowPerWorkgroup { size: 64 };
        let gpu = common::forward::run_gpu(&ctx, &batch, mode, strategy)
            .await
            .unwrap();
        common::forward::check(&batch, mode, strategy, &gpu, &mut tally);
    }
    console_log!("70,000 rows: {tally:?}");
}

async fn derivatives_match_reference<T: Element>(ctx: &GpuContext) {
    let mut tally = common::derivative::Tally::default();
    for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard] {
        for (case, (rows, cols)) in [(3, 33), (1, 1000)].into_iter().enumerate() {
            let inputs = make_inputs::<T>(rows, cols, case as u64 + 21, mode);
            for source in [SourceKind::Recompute, SourceKind::Saved] {
                for direction in [Direction::Vjp, Direction::Jvp] {
                    for strategy in [
                        Strategy::RowPerThread,
                        Strategy::RowPerWorkgroup { size: 64 },
                    ] {
                        let gpu = common::derivative::run_gpu(
                            ctx, &inputs, mode, source, direction, strategy,
                        )
                        .await
                        .unwrap();
                        common::derivative::check(
                            &inputs, mode, source, direction, strategy, &gpu, &mut tally,
                        );
                    }
                }
            }
        }
    }
    console_log!("derivatives {:?}: {tally:?}", T::STORAGE);
}

#[wasm_bindgen_test]
async fn vjp_and_jvp_match_reference() {
    let ctx = context().await;
    derivatives_match_reference::<f32>(&ctx).await;
    derivatives_match_reference::<f16>(&ctx).await;
    derivatives_match_reference::<bf16>(&ctx).await;
}

async fn top_k_matches_reference<T: Element>(ctx: &GpuContext) {
    let mut tally = common::top_k::Tally::default();
    // The cases up to K = 4099 (the masked rows and fewer valid logits than k among them).
    for (case, &(cols, rows, ks)) in CASES.iter().enumerate().take(5) {
        let input = TopKInput::<T>::new(case as u64, cols, rows);
        for &k in ks {
            let strategy = Strategy::RowPerWorkgroup { size: 256 };
            let what = format!("{:?} {strategy:?} K={cols} k={k}", T::STORAGE);
            let out = common::top_k::run_gpu(ctx, &input, k, strategy)
                .await
                .unwrap();
            common::top_k::check(&input, k, &out, &what, &mut tally);
        }
    }
    console_log!("top-k {:?}: {tally:?}", T::STORAGE);
}

#[wasm_bindgen_test]
async fn top_k_matches_reference_in_every_storage_type() {
    let ctx = context().await;
    top_k_matches_reference::<f32>(&ctx).await;
    top_k_matches_reference::<f16>(&ctx).await;
    top_k_matches_reference::<bf16>(&ctx).await;
}

async fn tokens_match_reference<T: Element>(ctx: &GpuContext) {
    for (cols, rows, bias) in [(7, 28, Bias::PerRow), (32_000, 15, Bias::Shared)] {
        let case = TokenCase::<T>::new(cols, rows, 3, bias);
        let got = ctx
            .sample_tokens_async(&case.logits, &case.args(None))
            .await
            .unwrap();
        let compared = common::tokens::check(&case, &got);
        assert!(compared.near < rows / 4, "{} near rows", compared.near);
    }
}

#[wasm_bindgen_test]
async fn token_sampler_matches_reference() {
    let ctx = context().await;
    tokens_match_reference::<f32>(&ctx).await;
    tokens_match_reference::<f16>(&ctx).await;
    tokens_match_reference::<bf16>(&ctx).await;
}

/// Token lists (penalties, sparse bias), masks and top log-probabilities, which take the
/// sampler's second kernel (ten storage buffers: the page's device asks for the adapter's
/// limits), against the reference.
#[wasm_bindgen_test]
async fn token_lists_masks_and_top_entries_match_reference() {
    let ctx = context().await;
    for (cols, rows, processing) in [
        (7, 28, Processing::PerRow),
        (32_000, 15, Processing::Shared),
    ] {
        let case = TokenCase::<f32>::new(cols, rows, 5, Bias::Shared)
            .with_processing(processing, 6)
            .with_top(5);
        let got = ctx
            .sample_tokens_async(&case.logits, &case.args(None))
            .await
            .unwrap();
        let compared = common::tokens::check(&case, &got);
        assert!(compared.near < rows / 4, "{} near rows", compared.near);
    }
}

/// Speculative decoding's verification (ten storage buffers, as the processed sampler) against
/// the reference: drafts with and without their probabilities, f32 and bf16, wide noise.
#[wasm_bindgen_test]
async fn draft_verification_matches_reference() {
    use common::speculative::{Batch, check_batch};
    let ctx = context().await;
    let counts = [0, 1, 2, 4, 8, 3, 4, 1];
    for (cols, with_q, case) in [(7, true, 1), (500, false, 2), (32_000, true, 3)] {
        let b = Batch::new(cols, &counts, with_q, case);
        check_batch::<f32>(&ctx, &b, NoiseRange::Standard).await;
    }
    let b = Batch::new(300, &counts, true, 4);
    check_batch::<bf16>(&ctx, &b, NoiseRange::Wide).await;
}

/// The host-slice calls a page would make: a sample, its indices and a conversion round trip.
#[wasm_bindgen_test]
async fn host_slice_calls_work_without_blocking() {
    let ctx = context().await;
    let logits: Vec<f32> = (0..3 * 50).map(|i| ((i * 37) % 11) as f32 * 0.3).collect();
    let args = SampleArgs::new(3, 50, 0.7, 11);
    let soft = ctx.sample_async(&logits, Mode::Soft, &args).await.unwrap();
    for row in soft.chunks(50) {
        let sum: f32 = row.iter().sum();
        assert!((sum - 1.0).abs() < 1e-4, "row sums to {sum}");
    }
    let picks = ctx.sample_indices_async(&logits, &args).await.unwrap();
    for (r, &k) in picks.iter().enumerate() {
        let row: Vec<f32> = logits[r * 50..][..50].to_vec();
        let want = reference::forward_row(&row, 0.7, 11, (r * 50) as u64, Mode::Index).unwrap();
        assert_eq!(want, reference::RowSample::Index(k), "row {r}");
    }
    let halves: Vec<bf16> = ctx.to_storage_async(&logits).await.unwrap();
    let back = ctx.from_storage_async(&halves).await.unwrap();
    let expected: Vec<f32> = logits.iter().map(|&x| bf16::from_f32(x).to_f32()).collect();
    assert_eq!(back, expected);
}

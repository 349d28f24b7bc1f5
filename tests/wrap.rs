//! Flat noise indices are 64-bit and wrap: element `n = offset + r*K + k` takes the noise of
//! `n mod 2^64`, so a row that runs past 2^64 - 1 continues at element 0 of the stream, in every
//! kernel family, as on the CPU.

mod common;

use common::{TestRng, contexts_by_wide_multiply, ctx, storage_rounding};
use gumbel_wgpu::philox::noise_word;
use gumbel_wgpu::reference::{self, RowSample};
use gumbel_wgpu::{
    Element, ForwardCall, Generator, GpuSlice, HostSource, HostTau, Mode, SampleArgs, Shape,
    Strategy, Tau,
};

/// Rows of K = 7 from 17 elements before the wrap: row 2 holds elements 2^64 - 3 .. 2^64 + 3.
const OFFSET: u64 = u64::MAX - 16;
const ROWS: u32 = 5;
const K: u32 = 7;

fn logits<T: Element>(seed: u64) -> Vec<T> {
    let mut rng = TestRng::new(seed);
    (0..ROWS * K)
        .map(|_| T::from_f32(rng.uniform(-3.0, 3.0) as f32))
        .collect()
}

/// How far a GPU value may be from the f64 reference here. A wrong noise element moves a
/// value by O(1); the rounding of f32 arithmetic on these logits (|l| < 3, tau 0.5 to 2) stays
/// two orders of magnitude below 1e-4 (tests/forward.rs and tests/derivative.rs hold the
/// derived bounds), and the storage type rounds once more.
fn close(got: f64, want: f64, storage: gumbel_wgpu::StorageType) -> bool {
    (got - want).abs() <= 1e-4 * (1.0 + want.abs()) + storage_rounding(storage, want)
}

#[test]
fn noise_words_continue_at_word_zero() {
    for ctx in contexts_by_wide_multiply() {
        let wide = ctx.kernels().wide_multiply();
        // Word 0 of seed 0's stream, from the published Philox4x32-10 test vector's key and
        // counter of zero.
        assert_eq!(
            ctx.noise_words(0, u64::MAX, 2).unwrap(),
            [noise_word(0, u64::MAX), 0x6627_e8d5],
            "{wide:?}"
        );
        for (seed, back) in [(1u64, 1u64), (42, 3), (u64::MAX, 9), (7, 1000)] {
            let offset = 0u64.wrapping_sub(back);
            let count = 2 * back as usize + 5;
            let gpu = ctx.noise_words(seed, offset, count).unwrap();
            let cpu: Vec<u32> = (0..count as u64)
                .map(|i| noise_word(seed, offset.wrapping_add(i)))
                .collect();
            assert_eq!(gpu, cpu, "{wide:?} seed {seed} from 2^64 - {back}");
        }
    }
}

#[test]
fn the_forward_continues_at_element_zero() {
    // Seed 0, tau 1, one row [0, 0] at offset 2^64 - 1: the noise of elements 2^64 - 1 and 0.
    let y = ctx()
        .sample(
            &[0.0f32, 0.0],
            Mode::Soft,
            &SampleArgs::new(1, 2, 1.0, 0).with_offset(u64::MAX),
        )
        .unwrap();
    assert!(
        (y[0] - 0.359_776_6).abs() < 1e-6 && (y[1] - 0.640_223_4).abs() < 1e-6,
        "{y:?}"
    );
    forward_matches::<f32>();
    forward_matches::<half::f16>();
    forward_matches::<half::bf16>();
}

fn forward_matches<T: Element>() {
    let ctx = ctx();
    let logits = logits::<T>(1);
    let as_f32: Vec<f32> = logits.iter().map(|l| l.to_f32()).collect();
    let taus = [0.5f32, 1.0, 1.5, 2.0, 0.7];
    let shape = Shape::new(ROWS, K);
    for strategy in common::strategies() {
        let args = SampleArgs::new(ROWS, K, 1.0, 99)
            .with_offset(OFFSET)
            .with_tau_per_row(&taus)
            .with_strategy(strategy);
        let want_index = reference::forward(&as_f32, shape, &taus, 99, OFFSET, Mode::Index);
        let index = ctx.sample_indices(&logits, &args).unwrap();
        for r in 0..ROWS as usize {
            assert_eq!(
                Ok(RowSample::Index(index[r])),
                want_index[r],
                "{:?} {strategy:?} row {r}",
                T::STORAGE
            );
        }
        for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard] {
            let got = ctx.sample(&logits, mode, &args).unwrap();
            let want = reference::forward(&as_f32, shape, &taus, 99, OFFSET, mode);
            for (r, want) in want.iter().enumerate() {
                let Ok(RowSample::Values(want)) = want else {
                    panic!("row {r} has a sample")
                };
                for k in 0..K as usize {
                    let g = f64::from(got[r * K as usize + k].to_f32());
                    assert!(
                        close(g, want[k], T::STORAGE),
                        "{mode:?} {:?} {strategy:?} row {r} column {k}: {g} vs {}",
                        T::STORAGE,
                        want[k]
                    );
                }
            }
            // One call, or a call per row at its own offset: the same bits.
            for r in 0..ROWS {
                let row = &logits[(r * K) as usize..][..K as usize];
                let one = SampleArgs::new(1, K, taus[r as usize], 99)
                    .with_offset(OFFSET.wrapping_add(u64::from(r * K)))
                    .with_strategy(strategy);
                let alone = ctx.sample(row, mode, &one).unwrap();
                let bits = |v: &[T]| {
                    v.iter()
                        .map(|x| common::storage_bits(*x))
                        .collect::<Vec<_>>()
                };
                assert_eq!(
                    bits(&alone),
                    bits(&got[(r * K) as usize..][..K as usize]),
                    "{mode:?} {:?} {strategy:?}: row {r} alone",
                    T::STORAGE
                );
            }
        }
    }
}

/// A GPU-side counter that stands just before the wrap gives the bits of the same position
/// passed as an offset.
#[test]
fn a_counter_before_the_wrap() {
    let ctx = ctx();
    let logits = logits::<f32>(2);
    let input = ctx.upload(&logits).unwrap();
    let counter = ctx
        .upload(&Generator::at(5, OFFSET).counter_words())
        .unwrap();
    let (by_counter, by_offset) = (
        ctx.storage_buffer(u64::from(ROWS * K) * 4).unwrap(),
        ctx.storage_buffer(u64::from(ROWS * K) * 4).unwrap(),
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    for (out, counter, offset) in [
        (&by_counter, Some(GpuSlice::from(&counter)), 0),
        (&by_offset, None, OFFSET),
    ] {
        ctx.kernels()
            .record_forward(
                &mut encoder,
                &ForwardCall::new(
                    Mode::Soft,
                    gumbel_wgpu::StorageType::F32,
                    Shape::new(ROWS, K),
                    GpuSlice::from(&input),
                    GpuSlice::from(out),
                )
                .with_tau(Tau::Scalar(0.8))
                .with_noise(5, offset)
                .with_counter(counter),
            )
            .unwrap();
    }
    ctx.queue.submit([encoder.finish()]);
    let n = (ROWS * K) as usize;
    let a: Vec<u32> = ctx.read_back(&by_counter, n).unwrap();
    let b: Vec<u32> = ctx.read_back(&by_offset, n).unwrap();
    assert_eq!(a, b);
    let want = reference::forward(&logits, Shape::new(ROWS, K), &[0.8], 5, OFFSET, Mode::Soft);
    let Ok(RowSample::Values(row2)) = &want[2] else {
        panic!("row 2 has a sample")
    };
    for k in 0..K as usize {
        let got = f64::from(f32::from_bits(a[2 * K as usize + k]));
        assert!(
            close(got, row2[k], gumbel_wgpu::StorageType::F32),
            "column {k}"
        );
    }
}

#[test]
fn recomputing_derivatives_continue_at_element_zero() {
    let ctx = ctx();
    let logits = logits::<f32>(3);
    let mut rng = TestRng::new(4);
    let grad: Vec<f32> = (0..ROWS * K)
        .map(|_| rng.uniform(-1.0, 1.0) as f32)
        .collect();
    let taus = [0.5f32, 1.0, 1.5, 2.0, 0.7];
    let tangents = [0.3f32, -0.2, 0.1, 0.5, -1.0];
    for strategy in common::strategies() {
        for mode in [Mode::Soft, Mode::LogSoft, Mode::Hard] {
            let args = SampleArgs::new(ROWS, K, 1.0, 77)
                .with_offset(OFFSET)
                .with_tau_per_row(&taus)
                .with_strategy(strategy);
            let source = HostSource::Recompute(&logits);
            let vjp = ctx.vjp(source, &grad, mode, &args).unwrap();
            let jvp = ctx
                .jvp(source, &grad, HostTau::PerRow(&tangents), mode, &args)
                .unwrap();
            for r in 0..ROWS as usize {
                let what = format!("{mode:?} {strategy:?} row {r}");
                let row = &logits[r * K as usize..][..K as usize];
                let g: Vec<f64> = grad[r * K as usize..][..K as usize]
                    .iter()
                    .map(|&x| f64::from(x))
                    .collect();
                let first = OFFSET.wrapping_add((r * K as usize) as u64);
                let want_vjp = reference::vjp_row(row, taus[r], 77, first, mode, &g).unwrap();
                let want_jvp =
                    reference::jvp_row(row, taus[r], 77, first, mode, &g, f64::from(tangents[r]))
                        .unwrap();
                let f32_close =
                    |a: f32, b: f64| close(f64::from(a), b, gumbel_wgpu::StorageType::F32);
                for (k, (dl, ydot)) in want_vjp.dl.iter().zip(&want_jvp).enumerate() {
                    let i = r * K as usize + k;
                    assert!(f32_close(vjp.dl[i], *dl), "{what}: dl[{k}]");
                    assert!(f32_close(jvp[i], *ydot), "{what}: ydot[{k}]");
                }
                assert!(f32_close(vjp.dtau_rows[r], want_vjp.dtau), "{what}: dtau");
            }
        }
    }
}

#[test]
fn top_k_continues_at_element_zero() {
    let ctx = ctx();
    let logits = logits::<f32>(5);
    for strategy in [
        Strategy::RowPerThread,
        Strategy::RowPerWorkgroup { size: 256 },
    ] {
        let args = SampleArgs::new(ROWS, K, 1.0, 3)
            .with_offset(OFFSET)
            .with_strategy(strategy);
        let top = ctx.top_k(&logits, 3, &args).unwrap();
        for r in 0..ROWS as usize {
            let row = &logits[r * K as usize..][..K as usize];
            let first = OFFSET.wrapping_add((r * K as usize) as u64);
            let want: Vec<u32> = reference::top_k_row(row, 3, first, 3)
                .unwrap()
                .iter()
                .map(|(c, _)| *c)
                .collect();
            assert_eq!(top.indices[r * 3..][..3], want, "{strategy:?} row {r}");
        }
    }
}

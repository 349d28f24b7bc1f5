//! The wide noise range: two words a draw, a 64-bit uniform, g up to 45.05. The words, the map
//! at every kind of 64-bit value, the tail's frequency over 10^9 draws made and counted on the
//! device, and every call that makes noise honouring the range.

mod common;

use common::{
    TestRng, assert_token_near, contexts_by_noise_map, ctx, noise_tolerance, one_at_a_time,
};
use gumbel_wgpu::philox::{Philox4x32, noise_pair, noise_word};
use gumbel_wgpu::reference::{self, RowSample, gumbel_at, gumbel_of_pair, gumbel_of_word};
use gumbel_wgpu::{
    HostSource, Mode, NoiseRange, RandomState, SampleArgs, TokenArgs, TokenSettings,
};
use rand_core::RngCore;

/// The 64-bit value of element n is words 2n (low) and 2n + 1 (high) of the stream, the words
/// the GPU's word output gives there, and what the CPU stream's `next_u64` reads.
#[test]
fn wide_values_are_word_pairs_of_the_stream() {
    let _turn = one_at_a_time();
    for (seed, n) in [(7u64, 0u64), (42, 1_000_001), (u64::MAX, u64::MAX / 2 - 3)] {
        let words = ctx().noise_words(seed, n.wrapping_mul(2), 64).unwrap();
        for i in 0..32u64 {
            let pair = noise_pair(seed, n + i);
            let gpu = u64::from(words[2 * i as usize]) | u64::from(words[2 * i as usize + 1]) << 32;
            assert_eq!(pair, gpu, "seed {seed}, element {}", n + i);
            assert_eq!(
                pair,
                Philox4x32::new(seed, (n + i).wrapping_mul(2)).next_u64()
            );
        }
    }
    // Element 2^64 - 1 takes the stream's last two words; word indices wrap as flat ones do.
    let last = noise_pair(5, u64::MAX);
    assert_eq!(last as u32, noise_word(5, u64::MAX - 1));
    assert_eq!((last >> 32) as u32, noise_word(5, u64::MAX));
}

fn check(gpu: &[f32], exact: &[f64], what: &str) -> f64 {
    let mut worst: f64 = 0.0;
    for (i, (&g, &e)) in gpu.iter().zip(exact).enumerate() {
        let err = (f64::from(g) - e).abs();
        let bound = noise_tolerance(e);
        assert!(
            err <= bound,
            "{what} {i}: {g} against {e} (error {err:e}, bound {bound:e})"
        );
        worst = worst.max(err / bound);
    }
    worst
}

/// The GPU's wide noise against the f64 reference within the one-word map's bound,
/// 1e-6 + 4 ULP(g), under both word maps.
#[test]
fn wide_noise_is_within_bound_of_f64() {
    let _turn = one_at_a_time();
    for ctx in contexts_by_noise_map() {
        for (seed, offset) in [(1u64, 0u64), (0xdead_beef, 1 << 40), (9, u64::MAX - 500)] {
            let n = 1 << 18;
            let gpu = ctx
                .gumbel_noise_in(NoiseRange::Wide, seed, offset, n)
                .unwrap();
            let exact = reference::gumbel_noise_in(NoiseRange::Wide, seed, offset, n);
            let worst = check(&gpu, &exact, "element");
            eprintln!(
                "{:?}: seed {seed}: worst at {:.0}% of the bound",
                ctx.kernels().noise_map(),
                100.0 * worst
            );
        }
    }
}

/// The map at the extreme 64-bit values and around the change of case at 2^63: the largest
/// value reaches 65 ln 2 = 45.05 (u = 1 - 2^-65), the smallest -3.81; the standard range stops
/// at 22.87.
#[test]
fn wide_map_at_extreme_values() {
    let _turn = one_at_a_time();
    let mut values: Vec<u64> = vec![
        0,
        1,
        2,
        0xffff_ffff,
        1 << 32,
        (1 << 63) - 2,
        (1 << 63) - 1,
        1 << 63,
        (1 << 63) + 1,
        u64::MAX - (1 << 32),
        u64::MAX - 0xffff_ffff,
        u64::MAX - 2,
        u64::MAX - 1,
        u64::MAX,
    ];
    let mut rng = TestRng::new(64);
    for shift in 0..64 {
        let r = rng.next_u64() >> shift;
        values.extend([r, !r]);
    }
    let words: Vec<u32> = values
        .iter()
        .flat_map(|&x| [x as u32, (x >> 32) as u32])
        .collect();
    for ctx in contexts_by_noise_map() {
        let gpu = ctx.gumbel_of_words_in(NoiseRange::Wide, &words).unwrap();
        let exact: Vec<f64> = values.iter().map(|&x| gumbel_of_pair(x)).collect();
        check(&gpu, &exact, "value");
        let top = f64::from(gpu[values.iter().position(|&x| x == u64::MAX).unwrap()]);
        let bottom = f64::from(gpu[0]);
        eprintln!(
            "{:?}: g(2^64 - 1) = {top}, g(0) = {bottom}",
            ctx.kernels().noise_map()
        );
        assert!(
            (top - 65.0 * std::f64::consts::LN_2).abs() < 1e-3,
            "the top of the wide range: {top}"
        );
        assert!(
            (bottom + 3.8078).abs() < 1e-3,
            "the bottom of the wide range: {bottom}"
        );
    }
    // The standard range's cap: u = 1 - 2^-33 at the largest word.
    let standard = ctx().gumbel_of_words(&[u32::MAX]).unwrap()[0];
    assert!((f64::from(standard) - gumbel_of_word(u32::MAX)).abs() < 1e-5);
    assert!((f64::from(standard) - 22.8739).abs() < 1e-3, "{standard}");
    assert!(gumbel_of_pair(u64::MAX) > 45.0 && gumbel_of_word(u32::MAX) < 22.9);
}

/// Over 10^9 wide draws made and counted on the device, the count of g > 15 matches
/// 1 - exp(-exp(-15)) = 3.059e-7 within its binomial error (about 17.5 around 305.9: the test
/// takes 5 of them, a false alarm once in 1.7 million runs).
#[test]
fn wide_tail_frequency_over_a_billion_draws() {
    let _turn = one_at_a_time();
    let draws = 1_000_000_000u64;
    let p = 1.0 - (-(-15f64).exp()).exp();
    let expected = p * draws as f64;
    let sd = (draws as f64 * p * (1.0 - p)).sqrt();
    let count = ctx()
        .count_noise_above(NoiseRange::Wide, 2026, 0, draws, 15.0)
        .unwrap();
    eprintln!("g > 15: {count} of 10^9 wide draws, expected {expected:.1} +- {sd:.1}");
    assert!(
        (count as f64 - expected).abs() < 5.0 * sd,
        "{count} draws above 15, expected {expected:.1} +- {sd:.1}"
    );
    // The count is of the noise the other calls make: a short stretch, counted on the CPU, that
    // starts and ends inside noise blocks.
    let short = ctx()
        .count_noise_above(NoiseRange::Wide, 3, 4001, (1 << 16) + 2, 1.0)
        .unwrap();
    let exact = (0..(1u64 << 16) + 2)
        .filter(|&i| gumbel_at(NoiseRange::Wide, 3, 4001 + i) > 1.0)
        .count() as u64;
    assert_eq!(short, exact);
}

/// Every call that makes noise takes the range: the forward modes, top-k and the token sampler
/// against the reference in the wide range, and the recomputing VJP against the VJP of the
/// wide forward's saved sample.
#[test]
fn every_noise_call_honours_the_range() {
    let _turn = one_at_a_time();
    let (rows, cols) = (6u32, 300u32);
    let mut rng = TestRng::new(16);
    let logits: Vec<f32> = (0..rows * cols)
        .map(|_| rng.uniform(-3.0, 3.0) as f32)
        .collect();
    let wide = SampleArgs::new(rows, cols, 0.8, 77)
        .with_offset(1 << 33)
        .with_noise_range(NoiseRange::Wide);
    let row = |r: u32| &logits[(r * cols) as usize..][..cols as usize];
    let first = |r: u32| (1u64 << 33) + u64::from(r * cols);
    // Index mode: the category of the wide noise, and not that of the standard noise.
    let indices = ctx().sample_indices(&logits, &wide).unwrap();
    let standard = ctx()
        .sample_indices(&logits, &wide.with_noise_range(NoiseRange::Standard))
        .unwrap();
    assert_ne!(indices, standard, "the range changed no category");
    for r in 0..rows {
        let want =
            reference::forward_row_in(NoiseRange::Wide, row(r), 0.8, 77, first(r), Mode::Index);
        assert_eq!(want, Ok(RowSample::Index(indices[r as usize])), "row {r}");
    }
    // Soft: within the forward tests' loosest bound, far below the change the range makes.
    let soft = ctx().sample(&logits, Mode::Soft, &wide).unwrap();
    for r in 0..rows {
        let Ok(RowSample::Values(want)) =
            reference::forward_row_in(NoiseRange::Wide, row(r), 0.8, 77, first(r), Mode::Soft)
        else {
            panic!("row {r} has a sample");
        };
        for (k, (&y, w)) in soft[(r * cols) as usize..][..cols as usize]
            .iter()
            .zip(&want)
            .enumerate()
        {
            assert!(
                (f64::from(y) - w).abs() <= 1e-4 * w + 1e-9,
                "row {r}, column {k}: {y} against {w}"
            );
        }
    }
    // Top-k.
    let top = ctx().top_k(&logits, 5, &wide).unwrap();
    for r in 0..rows {
        let want = reference::top_k_row_in(NoiseRange::Wide, row(r), 77, first(r), 5).unwrap();
        let got: Vec<u32> = top.indices[(r * 5) as usize..][..5].to_vec();
        assert_eq!(got, want.iter().map(|e| e.0).collect::<Vec<_>>(), "row {r}");
    }
    // The recomputing VJP makes the wide sample again: the same gradient as from it saved.
    let dy: Vec<f32> = (0..rows * cols)
        .map(|i| ((i % 7) as f32 - 3.0) * 0.1)
        .collect();
    let recomputed = ctx()
        .vjp(HostSource::Recompute(&logits), &dy, Mode::Soft, &wide)
        .unwrap();
    let saved = ctx()
        .vjp(HostSource::Saved(&soft), &dy, Mode::Soft, &wide)
        .unwrap();
    for (i, (a, b)) in recomputed.dl.iter().zip(&saved.dl).enumerate() {
        assert!((a - b).abs() <= 1e-5, "element {i}: {a} against {b}");
    }
    // The token sampler.
    let settings = [
        TokenSettings::new(1.0),
        TokenSettings::new(0.7).with_top_k(20),
        TokenSettings::new(1.0).with_top_p(0.9),
        TokenSettings::new(0.9).with_min_p(0.05),
        TokenSettings::new(1.0).with_top_k(100),
        TokenSettings::new(2.0),
    ];
    let states: Vec<RandomState> = (0..u64::from(rows))
        .map(|r| RandomState {
            seed: 31 + r,
            offset: u64::MAX - 100 + r,
        })
        .collect();
    let args = TokenArgs::new(cols, &settings, &states).with_noise_range(NoiseRange::Wide);
    let tokens = ctx().sample_tokens(&logits, &args).unwrap();
    for r in 0..rows {
        let (i, token) = (r as usize, tokens.tokens[r as usize]);
        assert_token_near(row(r), &settings[i], states[i], NoiseRange::Wide, token, i);
    }
}

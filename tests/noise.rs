//! GPU noise against the CPU: words bit for bit, Gumbel values within the bound of
//! docs/contract.md, section 4, chunking, and the distribution's first two moments.

mod common;

use common::{
    TestRng, contexts_by_noise_map, contexts_by_wide_multiply, ctx, noise_tolerance, ulp_f32,
};
use gumbel_wgpu::philox::noise_word;
use gumbel_wgpu::reference::{self, gumbel_of_word};
use gumbel_wgpu::{GpuContext, Mode, SampleArgs};

const BLOCK_BOUNDARY: u64 = 4 * (1 << 32); // flat index where the counter's high word becomes 1

#[test]
fn words_are_bit_exact_across_seeds_and_offsets() {
    let count = 1_000_000;
    let cases = [
        (0u64, 0u64),
        (1, 1),
        (0xdead_beef_cafe_f00d, 3),
        (u64::MAX, 12_345_678_901),
        (7, BLOCK_BOUNDARY - 500_001), // n / 4 crosses 2^32 inside the range
        (7, BLOCK_BOUNDARY - 2),
    ];
    for ctx in contexts_by_wide_multiply() {
        let wide = ctx.kernels().wide_multiply();
        for (seed, offset) in cases {
            let gpu = ctx.noise_words(seed, offset, count).unwrap();
            let mismatches = (0..count)
                .filter(|&i| gpu[i] != noise_word(seed, offset + i as u64))
                .count();
            assert_eq!(
                mismatches, 0,
                "{wide:?}: seed {seed:#x} offset {offset}: {mismatches} words differ"
            );
        }
    }
}

/// The samplers reach Philox through the same shared piece as the noise kernel; this checks
/// that every Philox variant of them gives the same samples.
#[test]
fn every_wide_multiply_gives_the_same_samples() {
    let contexts = contexts_by_wide_multiply();
    let mut rng = TestRng::new(11);
    let (rows, cols) = (300u32, 77u32);
    let logits: Vec<f32> = (0..rows * cols)
        .map(|_| rng.uniform(-3.0, 3.0) as f32)
        .collect();
    let args = SampleArgs::new(rows, cols, 0.6, 0x5eed);
    let soft = |c: &GpuContext| c.sample(&logits, Mode::Soft, &args).unwrap();
    let index = |c: &GpuContext| c.sample_indices(&logits, &args).unwrap();
    for c in &contexts[1..] {
        let wide = c.kernels().wide_multiply();
        assert!(
            soft(c)
                .iter()
                .zip(soft(contexts[0]))
                .all(|(a, b)| a.to_bits() == b.to_bits()),
            "{wide:?}: soft samples differ"
        );
        assert_eq!(
            index(c),
            index(contexts[0]),
            "{wide:?}: index samples differ"
        );
    }
}

/// Asserts the bound of docs/contract.md, section 4 for every GPU noise value and prints the
/// largest errors: absolute, in ULP of g where |g| >= 1 (below, the 1e-6 absolute term dominates),
/// and as a fraction of the bound.
fn check_noise(gpu: &[f32], exact: &[f64], what: &str) {
    let (mut abs, mut ulps, mut budget, mut at) = (0.0f64, 0.0f64, 0.0f64, 0);
    for (i, (&g, &e)) in gpu.iter().zip(exact).enumerate() {
        let err = (f64::from(g) - e).abs();
        assert!(
            err <= noise_tolerance(e),
            "{what}[{i}]: GPU {g} vs exact {e}: error {err:e} over {:e}",
            noise_tolerance(e)
        );
        abs = abs.max(err);
        if e.abs() >= 1.0 {
            ulps = ulps.max(err / ulp_f32(e));
        }
        if err / noise_tolerance(e) > budget {
            (budget, at) = (err / noise_tolerance(e), i);
        }
    }
    eprintln!(
        "{what}: max error {abs:.3e} absolute, {ulps:.2} ULP where |g| >= 1; \
         worst {:.0}% of the bound, at g = {}",
        budget * 100.0,
        exact[at]
    );
}

#[test]
fn gumbel_noise_is_within_bound_of_f64() {
    let (seed, offset, count) = (99, 1_000_003, 1_000_000);
    let exact = reference::gumbel_noise(seed, offset, count);
    for ctx in contexts_by_noise_map() {
        let gpu = ctx.gumbel_noise(seed, offset, count).unwrap();
        let map = ctx.kernels().noise_map();
        check_noise(&gpu, &exact, &format!("{map:?}: random words"));
    }
}

#[test]
fn gumbel_tails_are_accurate_at_extreme_words() {
    let mut words = vec![0, 1, 2, 0x7fff_ffff, 0x8000_0000, 0xffff_fffe, u32::MAX];
    // Dense near both ends, near the middle (where the log2 map changes formula), near u = 3/4
    // (where the series map does), and an even sweep of the whole range.
    for k in 0..100_000u32 {
        words.extend([k, u32::MAX - k, 0x8000_0000 - k, 0x8000_0000 + k]);
        words.extend([0xc000_0000 - k, 0xc000_0000 + k]);
        words.push(k.wrapping_mul(42_949));
    }
    let mut rng = TestRng::new(5);
    words.extend((0..500_000).map(|_| rng.next_u32()));
    let exact: Vec<f64> = words.iter().map(|&x| gumbel_of_word(x)).collect();
    for ctx in contexts_by_noise_map() {
        let gpu = ctx.gumbel_of_words(&words).unwrap();
        let map = ctx.kernels().noise_map();
        check_noise(&gpu, &exact, &format!("{map:?}: planted words"));
    }
}

#[test]
fn chunked_dispatches_give_the_bits_of_one() {
    let (seed, offset, count) = (3, BLOCK_BOUNDARY - 1001, 4001);
    let whole = ctx().gumbel_noise(seed, offset, count).unwrap();
    for split in [1, 2, 1000, 1001, 2003] {
        let mut parts = ctx().gumbel_noise(seed, offset, split).unwrap();
        parts.extend(
            ctx()
                .gumbel_noise(seed, offset + split as u64, count - split)
                .unwrap(),
        );
        let same = whole
            .iter()
            .zip(&parts)
            .all(|(a, b)| a.to_bits() == b.to_bits());
        assert!(same, "split at {split} changed the noise");
    }
}

/// The noise count counts exactly the elements it is given, wherever they start and end inside
/// noise blocks, against a count on the CPU of the same words' noise.
#[test]
fn noise_counts_match_the_cpu_at_any_offset() {
    let std = gumbel_wgpu::NoiseRange::Standard;
    for (offset, count) in [
        (0, 64),
        (1, 1001),
        (4002, 3),
        (BLOCK_BOUNDARY - 2, 10),
        (7, 0),
    ] {
        let gpu = ctx().count_noise_above(std, 9, offset, count, 0.5).unwrap();
        let cpu = reference::gumbel_noise(9, offset, count as usize)
            .iter()
            .filter(|&&g| g > 0.5)
            .count() as u64;
        assert_eq!(gpu, cpu, "{count} elements from {offset}");
    }
}

#[test]
fn gumbel_moments_match_over_ten_million_draws() {
    let n = 10_000_000;
    let g = ctx().gumbel_noise(2024, 0, n).unwrap();
    let mean = g.iter().map(|&x| f64::from(x)).sum::<f64>() / n as f64;
    let var = g
        .iter()
        .map(|&x| (f64::from(x) - mean).powi(2))
        .sum::<f64>()
        / (n - 1) as f64;
    let euler = 0.577_215_664_901_532_9;
    let pi2_6 = std::f64::consts::PI.powi(2) / 6.0;
    // Standard errors: Var(g) = pi^2/6; Var(sample variance) = (mu4 - sigma^4) / n with the
    // Gumbel's excess kurtosis 12/5, so mu4 = 5.4 sigma^4.
    let se_mean = (pi2_6 / n as f64).sqrt();
    let se_var = pi2_6 * (4.4 / n as f64).sqrt();
    eprintln!(
        "mean {mean:.6} ({:.2} SE), variance {var:.6} ({:.2} SE)",
        (mean - euler) / se_mean,
        (var - pi2_6) / se_var
    );
    assert!((mean - euler).abs() < 5.0 * se_mean, "mean {mean}");
    assert!((var - pi2_6).abs() < 5.0 * se_var, "variance {var}");
}

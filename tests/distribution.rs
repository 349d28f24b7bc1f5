//! The samples follow the distributions they claim, at fixed seeds: Gumbel-max is categorical,
//! the binary Concrete has its closed-form CDF, and soft samples harden as tau falls.

mod common;

use common::ctx;
use gumbel_wgpu::{Mode, SampleArgs};

fn softmax(l: &[f32]) -> Vec<f64> {
    let m = l.iter().copied().fold(f32::MIN, f32::max);
    let e: Vec<f64> = l.iter().map(|&x| f64::from(x - m).exp()).collect();
    let s: f64 = e.iter().sum();
    e.iter().map(|x| x / s).collect()
}

#[test]
fn index_frequencies_match_softmax_by_chi_square() {
    let logits = [0.3f32, -1.2, 2.0, 0.0, 0.9, -0.4, 1.5, -2.5];
    let rows = 1_000_000u32;
    let batch: Vec<f32> = (0..rows).flat_map(|_| logits).collect();
    let idx = ctx()
        .sample_indices(&batch, &SampleArgs::new(rows, 8, 1.0, 31337))
        .unwrap();
    let mut counts = [0u64; 8];
    for i in idx {
        counts[i as usize] += 1;
    }
    let p = softmax(&logits);
    let chi2: f64 = counts
        .iter()
        .zip(&p)
        .map(|(&c, &p)| (c as f64 - p * f64::from(rows)).powi(2) / (p * f64::from(rows)))
        .sum();
    // 7 degrees of freedom: P(chi2 > 24.32) = 0.001.
    eprintln!("chi-square {chi2:.2} (7 dof), counts {counts:?}");
    assert!(chi2 < 24.32, "chi-square {chi2}");
}

/// The reals that round to `v` in f32.
fn rounding_interval(v: f32) -> (f64, f64) {
    let x = f64::from(v);
    (
        f64::from(v.next_down()).midpoint(x),
        f64::from(v.next_up()).midpoint(x),
    )
}

/// Kolmogorov-Smirnov distance between samples known as intervals (the reals that round to
/// each f32 output) and a continuous CDF; equal intervals are one step of the empirical CDF.
fn ks_distance(mut samples: Vec<(f64, f64)>, cdf: impl Fn(f64) -> f64) -> f64 {
    samples.sort_by(|a, b| a.0.total_cmp(&b.0));
    let n = samples.len() as f64;
    let mut d = 0.0f64;
    let mut i = 0;
    while i < samples.len() {
        let j = i + samples[i..]
            .iter()
            .take_while(|s| **s == samples[i])
            .count();
        let (lo, hi) = samples[i];
        d = d
            .max((cdf(lo) - i as f64 / n).abs())
            .max((cdf(hi) - j as f64 / n).abs());
        i = j;
    }
    d
}

/// ln(x / (1 - x)), accurate for small x.
fn logit(x: f64) -> f64 {
    x.ln() - (-x).ln_1p()
}

#[test]
fn binary_concrete_matches_its_closed_form_cdf() {
    let (l1, l2) = (0.8f32, -0.3f32);
    let n = 200_000u32;
    let batch: Vec<f32> = (0..n).flat_map(|_| [l1, l2]).collect();
    for (i, tau) in [0.1f32, 0.5, 1.0, 10.0].into_iter().enumerate() {
        let y = ctx()
            .sample(
                &batch,
                Mode::Soft,
                &SampleArgs::new(n, 2, tau, 100 + i as u64),
            )
            .unwrap();
        // The test runs on logit(y1), where F(t) = sigmoid(tau logit(t) - (l1 - l2)) becomes
        // G(s) = sigmoid(tau s - (l1 - l2)); a monotone map leaves the KS distance as it is.
        // Near y1 = 1 the logit comes from y2 = 1 - y1, which f32 resolves far more finely:
        // at tau = 0.1 a third of the mass lies within 6e-8 of 1.
        let samples: Vec<(f64, f64)> = y
            .chunks(2)
            .map(|r| {
                if r[0] <= 0.5 {
                    let (lo, hi) = rounding_interval(r[0]);
                    (logit(lo.max(0.0)), logit(hi))
                } else {
                    let (lo, hi) = rounding_interval(r[1]);
                    (-logit(hi), -logit(lo.max(0.0)))
                }
            })
            .collect();
        let cdf = |s: f64| 1.0 / (1.0 + (f64::from(l1 - l2) - f64::from(tau) * s).exp());
        let d = ks_distance(samples, cdf);
        // P(sqrt(n) D > 1.95) = 0.001.
        let limit = 1.95 / f64::from(n).sqrt();
        eprintln!("tau {tau}: KS distance {d:.5} (limit {limit:.5})");
        assert!(d < limit, "tau {tau}: KS distance {d}");
    }
}

#[test]
fn soft_means_approach_softmax_as_tau_falls() {
    let logits = [1.0f32, 0.2, -0.5, 0.7, -1.5];
    let p = softmax(&logits);
    let rows = 100_000u32;
    let batch: Vec<f32> = (0..rows).flat_map(|_| logits).collect();
    // The index samples of the same noise: as tau falls each soft sample tends to the one-hot
    // of its own argmax, so the distance to their frequencies carries no Monte Carlo error.
    let idx = ctx()
        .sample_indices(&batch, &SampleArgs::new(rows, 5, 1.0, 7))
        .unwrap();
    let mut freq = [0.0f64; 5];
    for i in idx {
        freq[i as usize] += 1.0 / f64::from(rows);
    }
    let mut distances = Vec::new();
    let mut mean = [0.0f64; 5];
    for tau in [2.0f32, 0.5, 0.1, 0.02] {
        let y = ctx()
            .sample(&batch, Mode::Soft, &SampleArgs::new(rows, 5, tau, 7))
            .unwrap();
        mean = [0.0; 5];
        for row in y.chunks(5) {
            for (m, &v) in mean.iter_mut().zip(row) {
                *m += f64::from(v) / f64::from(rows);
            }
        }
        let to_freq: f64 = mean.iter().zip(&freq).map(|(a, b)| (a - b).abs()).sum();
        eprintln!("tau {tau}: |mean(y) - argmax frequencies|_1 = {to_freq:.5}");
        distances.push(to_freq);
    }
    assert!(distances.windows(2).all(|w| w[1] < w[0]), "{distances:?}");
    assert!(distances[3] < 2e-3, "{distances:?}");
    // And the limit is softmax(l), up to Monte Carlo error (about 0.0015 per category).
    let to_softmax: f64 = mean.iter().zip(&p).map(|(a, b)| (a - b).abs()).sum();
    eprintln!("tau 0.02: |mean(y) - softmax(l)|_1 = {to_softmax:.4}");
    assert!(to_softmax < 0.01, "{to_softmax}");
}

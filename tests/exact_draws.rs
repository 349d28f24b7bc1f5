//! Gumbel-max draws stay exact when the scores are large (docs/contract.md, sections 1 and 6),
//! and the token sampler's edges: a soft cap far above the logits, log-probabilities at large
//! |l| / T, l / T past f32's range, and -0.0 against +0.0.
//!
//! Each distribution test draws 12,000 rows of the same logits, each row with its own noise,
//! and compares the counts with the exact probabilities by chi-square at the 0.001 level
//! (critical values: 10.83 at one degree of freedom, 13.82 at two, 18.47 at four). The seeds
//! are fixed, so a run passes or fails the same way every time. The tests take turns: their
//! 12,000-row dispatches run long on a CPU driver through GL.
mod common;

use common::ctx;
use gumbel_wgpu::{
    Error, GpuContext, GpuSlice, HostTokenNoise, Mode, SampleArgs, SampleTokensCall, Shape,
    TokenArgs, TokenNoise, TokenSettings,
};

const ROWS: u32 = 12_000;

/// Chi-square 0.001 critical values by degrees of freedom (1 to 4).
const CRITICAL: [f64; 5] = [0.0, 10.83, 13.82, 16.27, 18.47];

/// The exact probabilities of a draw of `softmax((l - max l) / tau)`, in f64 from the f32
/// logits as stored.
fn exact_probs(logits: &[f32], tau: f64) -> Vec<f64> {
    let l: Vec<f64> = logits.iter().map(|&v| f64::from(v)).collect();
    let m = l.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let w: Vec<f64> = l.iter().map(|v| ((v - m) / tau).exp()).collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|w| w / total).collect()
}

/// Chi-square of the drawn columns against `probs`, over the columns of non-negligible
/// probability (a draw of any other column fails at once).
fn assert_drawn(what: &str, drawn: &[u32], probs: &[f64]) {
    let mut counts = vec![0f64; probs.len()];
    for &c in drawn {
        assert!((c as usize) < probs.len(), "{what}: column {c} drawn");
        counts[c as usize] += 1.0;
    }
    let n = drawn.len() as f64;
    let mut chi2 = 0.0;
    let mut df = 0;
    for (c, &p) in probs.iter().enumerate() {
        if p * n < 1e-3 {
            assert_eq!(
                counts[c], 0.0,
                "{what}: column {c} of probability {p} drawn"
            );
            continue;
        }
        chi2 += (counts[c] - n * p).powi(2) / (n * p);
        df += 1;
    }
    let df = df - 1;
    let shares: Vec<String> = (counts.iter().zip(probs))
        .filter(|&(_, &p)| p * n >= 1e-3)
        .map(|(c, _)| format!("{:.3}", c / n))
        .collect();
    eprintln!("{what}: drawn {shares:?}, chi-square {chi2:.1} (df {df})");
    assert!(
        chi2 <= CRITICAL[df],
        "{what}: drawn {shares:?} against exact {probs:.3?}: chi-square {chi2:.1} over {} (df {df})",
        CRITICAL[df]
    );
}

fn tile(row: &[f32]) -> Vec<f32> {
    (0..ROWS).flat_map(|_| row.iter().copied()).collect()
}

/// Every path that draws by Gumbel-max without a temperature in its scores: the index mode,
/// the hard mode's argmax, and top-1.
fn index_paths(ctx: &GpuContext, row: &[f32], seed: u64) -> Vec<(&'static str, Vec<u32>)> {
    let cols = row.len() as u32;
    let logits = tile(row);
    let args = SampleArgs::new(ROWS, cols, 1.0, seed);
    let index = ctx.sample_indices(&logits, &args).unwrap();
    let hard = ctx.sample(&logits, Mode::Hard, &args).unwrap();
    let hard = hard
        .chunks(row.len())
        .map(|y| y.iter().position(|&v| v == 1.0).unwrap() as u32)
        .collect();
    let top_1 = ctx.top_k(&logits, 1, &args).unwrap().indices;
    vec![("index", index), ("hard", hard), ("top-1", top_1)]
}

/// The token sampler at one temperature, row r at offset r * K of one stream.
fn tokens(ctx: &GpuContext, row: &[f32], settings: TokenSettings, seed: u64) -> Vec<u32> {
    let cols = row.len() as u32;
    let settings = vec![settings; ROWS as usize];
    let args =
        TokenArgs::new(cols, &settings, &[]).with_noise(HostTokenNoise::Call { seed, offset: 0 });
    ctx.sample_tokens(&tile(row), &args).unwrap().tokens
}

#[test]
fn index_hard_and_top_1_are_exact_at_large_logits() {
    let _turn = common::one_at_a_time();
    let ctx = ctx();
    // Spacing 1 at 1e7: l + g in f32 would round the noise to whole numbers.
    let near_1e7 = [1.0e7f32, 1.0e7 + 1.0, 1.0e7 + 2.0];
    for (what, drawn) in index_paths(ctx, &near_1e7, 11) {
        assert_drawn(
            &format!("{what}, 1e7 + {{0, 1, 2}}"),
            &drawn,
            &exact_probs(&near_1e7, 1.0),
        );
    }
    for big in [1.0e30f32, f32::MAX] {
        let row = [big, big];
        for (what, drawn) in index_paths(ctx, &row, 12) {
            assert_drawn(&format!("{what}, two of {big:e}"), &drawn, &[0.5, 0.5]);
        }
    }
}

#[test]
fn token_draws_are_exact_at_large_scores() {
    let _turn = common::one_at_a_time();
    let ctx = ctx();
    let spaced: Vec<f32> = (0..5).map(|i| 1.0e4 + 0.001 * i as f32).collect();
    let near_minus_50 = [-50.0f32, -50.0 + 4e-6, -50.0 - 4e-6];
    let cases: [(&[f32], f32); 4] = [
        (&spaced, 1e-3),
        (&near_minus_50, 2e-5),
        (&[1.0e30, 1.0e30], 1.0),
        (&[f32::MAX, f32::MAX], 1.0),
    ];
    for (seed, (row, tau)) in (20..).zip(cases) {
        // Each path of the kernel: in one pass, through the lists (top-k, top-p), and through
        // the radix selects (top-k past the lists' 256 entries, on the row padded with masked
        // logits to 300).
        let mut padded = row.to_vec();
        padded.resize(300, f32::NEG_INFINITY);
        let paths = [
            (row.to_vec(), TokenSettings::new(tau)),
            (
                row.to_vec(),
                TokenSettings::new(tau).with_top_k(row.len() as u32),
            ),
            (row.to_vec(), TokenSettings::new(tau).with_top_p(1.0 - 1e-7)),
            (padded, TokenSettings::new(tau).with_top_k(257)),
        ];
        for (logits, s) in paths {
            let drawn = tokens(ctx, &logits, s, seed);
            assert_drawn(
                &format!("tokens of {row:?} at T = {tau:e}, {s:?}"),
                &drawn,
                &exact_probs(&logits, f64::from(tau)),
            );
        }
    }
}

/// One token and its two log-probabilities.
fn one_token(row: &[f32], settings: TokenSettings, seed: u64) -> (u32, [f32; 2]) {
    let settings = [settings];
    let args = TokenArgs::new(row.len() as u32, &settings, &[])
        .with_noise(HostTokenNoise::Call { seed, offset: 0 })
        .with_logprobs(true);
    let out = ctx().sample_tokens(row, &args).unwrap();
    (out.tokens[0], out.logprobs[0])
}

#[test]
fn a_soft_cap_far_above_the_logits_keeps_them_apart() {
    let _turn = common::one_at_a_time();
    for cap in [1e9f32, 1e20, f32::MAX] {
        let greedy = TokenSettings::greedy().with_soft_cap(cap);
        assert_eq!(
            one_token(&[0.0, 1.0, 5.0, 2.0], greedy, 1).0,
            2,
            "cap {cap:e}"
        );
    }
    let greedy = TokenSettings::greedy().with_soft_cap(1e6);
    assert_eq!(one_token(&[1.0, 1.001, 0.5], greedy, 1).0, 1);
    // At T = 1 the capped logits are the logits, to f32 rounding: the sampled log-probability
    // is that of softmax(x), not of three capped values made equal.
    let row = [0.0f32, 1.0, 5.0, 2.0];
    let (token, [_, sampled]) = one_token(&row, TokenSettings::new(1.0).with_soft_cap(1e9), 2);
    let want = exact_probs(&row, 1.0)[token as usize].ln();
    assert!(
        (f64::from(sampled) - want).abs() < 1e-5,
        "token {token}: {sampled} against {want}"
    );
}

#[test]
fn log_probabilities_keep_their_digits_at_large_scores() {
    let _turn = common::one_at_a_time();
    let pad = |head: &[f32]| {
        let mut row = head.to_vec();
        row.resize(8, 0.0);
        row
    };
    let cases = [
        (pad(&[1e30, 1e30]), 1.0f32),
        (vec![-30.0; 8], 1e-5),
        (pad(&[20.0, 20.0, 19.0]), 1e-4),
        (pad(&[1e6, 1e6, 1e6 - 1.0]), 1.0),
        // l / T past f32's range: the token and its log-probabilities stay finite.
        (vec![2e34, 3e34, -1e34, 1e30], 1e-5),
        (vec![3e38, 3.4e38, -1.0, 0.0], 1e-5),
        // The largest last: every running sum is rescaled as it goes, at T = 0.5.
        ((0..8).map(|i| i as f32).collect(), 0.5),
    ];
    for (row, tau) in &cases {
        let probs = exact_probs(row, f64::from(*tau));
        for seed in 0..8 {
            for settings in [
                TokenSettings::new(*tau),
                TokenSettings::new(*tau).with_top_k(3),
                TokenSettings::new(*tau).with_min_p(1e-3),
            ] {
                let (token, [raw, sampled]) = one_token(row, settings, seed);
                assert!(
                    raw.is_finite() && sampled.is_finite(),
                    "{row:?}: {raw}, {sampled}"
                );
                // The filtered distribution (top-k 3 keeps three of the equal logits, by
                // column) from the f64 reference; the token must be one it keeps.
                let state = gumbel_wgpu::RandomState { seed, offset: 0 };
                let draw =
                    gumbel_wgpu::reference::sample_token_row(row, None, &settings, state).unwrap();
                let at = draw.kept.iter().position(|&c| c == token);
                let p = at.map_or(0.0, |i| draw.probs[i]);
                assert!(
                    p > 0.0 && probs[token as usize] > 0.0,
                    "{row:?} at T = {tau:e}, {settings:?}: token {token}, kept {:?}",
                    draw.kept
                );
                // docs/contract.md, section 6: (l - m) / T - ln Z, with Z a sum of 8 weights.
                let want = p.ln();
                let tol = 16.0 * f64::from(f32::EPSILON) + 1e-5 * (1.0 + want.abs());
                assert!(
                    (f64::from(sampled) - want).abs() <= tol,
                    "{row:?} at T = {tau:e}, {settings:?}: token {token} log-probability {sampled} against {want}"
                );
            }
        }
    }
}

#[test]
fn minus_zero_ranks_with_plus_zero() {
    let _turn = common::one_at_a_time();
    let row = [-0.0f32, 0.0, -1.0, -2.0, 0.0, -0.5, -3.0, -0.0];
    assert_eq!(one_token(&row, TokenSettings::greedy(), 0).0, 0);
    for seed in 0..32 {
        let top_1 = TokenSettings::new(1.0).with_top_k(1);
        assert_eq!(one_token(&row, top_1, seed).0, 0, "top-k 1, seed {seed}");
        let top_2 = TokenSettings::new(1.0).with_top_k(2);
        let token = one_token(&row, top_2, seed).0;
        assert!(token == 0 || token == 1, "top-k 2, seed {seed}: {token}");
    }
    // Gumbel-top-k over logits without noise in the way: keys of -0.0 and +0.0 are one.
    let masked = [f32::NEG_INFINITY; 6];
    let mut zeros = vec![-0.0f32, 0.0];
    zeros.extend(masked);
    let args = SampleArgs::new(1, 8, 1.0, 5);
    let top = ctx().top_k(&zeros, 2, &args).unwrap();
    let mut got = top.indices.clone();
    got.sort();
    assert_eq!(got, [0, 1]);
}

#[test]
fn an_index_state_count_past_one_binding_names_count() {
    let _turn = common::one_at_a_time();
    let ctx = ctx();
    let logits = ctx.upload(&[0f32; 18]).unwrap();
    let settings = ctx.upload(&[TokenSettings::new(1.0); 3]).unwrap();
    let states = ctx.upload(&[0u32; 16]).unwrap();
    let index = ctx.upload(&[0u32; 3]).unwrap();
    let tokens = ctx.storage_buffer(12).unwrap();
    let call = SampleTokensCall::new(
        gumbel_wgpu::StorageType::F32,
        Shape::new(3, 6),
        GpuSlice::from(&logits),
        GpuSlice::from(&settings),
        TokenNoise::indexed(GpuSlice::from(&states), 1 << 24, GpuSlice::from(&index)),
        GpuSlice::from(&tokens),
    );
    let mut encoder = ctx.device.create_command_encoder(&Default::default());
    match ctx.kernels().record_sample_tokens(&mut encoder, &call) {
        Err(Error::OverLimits(message)) => {
            assert!(
                message.contains("count = 16777216") && message.contains("states"),
                "{message}"
            );
        }
        other => panic!("{other:?}"),
    }
}

/// A row without a valid logit has no top-k sample under every strategy: indices
/// `u32::MAX`, values NaN (docs/contract.md, section 1); a row with two valid logits pads
/// with `u32::MAX` and -inf.
#[test]
fn top_k_of_a_masked_row_is_no_sample() {
    let _turn = common::one_at_a_time();
    let ctx = ctx();
    let cols = 40u32;
    let mut logits = vec![f32::NEG_INFINITY; 2 * cols as usize];
    logits[cols as usize + 3] = 1.0;
    logits[cols as usize + 17] = 2.0;
    let input = ctx.upload(&logits).unwrap();
    // The thread per row, the merge of lists, and (k over 32) the radix select.
    for (strategy, k) in [
        (gumbel_wgpu::Strategy::RowPerThread, 3usize),
        (gumbel_wgpu::Strategy::RowPerWorkgroup { size: 64 }, 3),
        (gumbel_wgpu::Strategy::RowPerWorkgroup { size: 256 }, 33),
    ] {
        let bytes = 4 * 2 * k as u64;
        let (indices, values) = (
            ctx.storage_buffer(bytes).unwrap(),
            ctx.storage_buffer(bytes).unwrap(),
        );
        let call = gumbel_wgpu::TopKCall::new(
            gumbel_wgpu::StorageType::F32,
            Shape::new(2, cols),
            k as u32,
            GpuSlice::from(&input),
            GpuSlice::from(&indices),
            GpuSlice::from(&values),
        )
        .with_strategy(strategy);
        ctx.submit_and_wait("top-k", |e| ctx.kernels().record_top_k(e, &call))
            .unwrap();
        let indices: Vec<u32> = ctx.read_back(&indices, 2 * k).unwrap();
        let values: Vec<f32> = ctx.read_back(&values, 2 * k).unwrap();
        assert!(indices[..k].iter().all(|&i| i == u32::MAX), "{strategy:?}");
        assert!(
            values[..k].iter().all(|v| v.is_nan()),
            "{strategy:?}: {values:?}"
        );
        let mut valid = [indices[k], indices[k + 1]];
        valid.sort();
        assert_eq!(valid, [3, 17], "{strategy:?}");
        assert!(
            indices[k + 2..].iter().all(|&i| i == u32::MAX),
            "{strategy:?}"
        );
        let padding = &values[k + 2..];
        assert!(
            padding.iter().all(|&v| v == f32::NEG_INFINITY),
            "{strategy:?}"
        );
    }
}

//! Speculative decoding's verification in the f64 reference (`reference::verify_drafts`): the
//! emitted tokens are distributed as the target alone samples them, a greedy target decodes
//! its argmax, drafts are accepted at the rate the overlap of the two distributions gives, the
//! edges (banned drafts, q of 0 where p is not, rows without a token), and refusals by name.

mod common;

use common::speculative::{Batch, check_batch, draw_from};
use common::tokens::{Bias, CHI_SQUARE_CRITICAL, Processing, chi_square_of};
use common::{TestRng as Rng, ctx, expect_invalid, one_at_a_time};
use gumbel_wgpu::reference::{
    DraftVerdict, RowProcessing, TargetRow, TokenDraw, sample_token_row, verify_drafts,
};
use gumbel_wgpu::{
    GpuSlice, NoiseRange, RandomState, Shape, StorageType, Strategy, TokenSettings, VerifyArgs,
    VerifyDraftsCall,
};
use pollster::block_on;

const NONE: u32 = u32::MAX;
const TRIALS: usize = 40_000;

fn logits(rng: &mut Rng, cols: usize) -> Vec<f32> {
    (0..cols).map(|_| rng.uniform(-2.0, 2.0) as f32).collect()
}

/// A random distribution over `cols` tokens with some zeros (q may be 0 where p is not).
fn distribution(rng: &mut Rng, cols: usize) -> Vec<f32> {
    let w: Vec<f64> = (0..cols)
        .map(|c| {
            if c % 5 == 3 {
                0.0
            } else {
                rng.uniform(0.0, 1.0)
            }
        })
        .collect();
    let total: f64 = w.iter().sum();
    w.iter().map(|v| (v / total) as f32).collect()
}

/// The target's distribution at a position, as the sampler draws from it.
fn target_draw(x: &[f32], settings: &TokenSettings) -> TokenDraw {
    sample_token_row(x, None, settings, RandomState { seed: 0, offset: 0 }).unwrap()
}

fn rows<'a>(x: &'a [Vec<f32>], settings: TokenSettings) -> Vec<TargetRow<'a>> {
    x.iter()
        .map(|logits| TargetRow {
            logits,
            processing: RowProcessing::default(),
            settings,
        })
        .collect()
}

/// Many requests of two drafts each, drafts drawn from q (or, `with_q` false, one fixed greedy
/// draft given without probabilities), fresh seeds: the first emitted token is distributed as
/// p_0, and after an accepted first draft the second as p_1.
fn emitted_tokens_follow_the_target(settings: TokenSettings, with_q: bool) {
    let cols = 8;
    let mut rng = Rng::new(41 + u64::from(with_q));
    let x: Vec<Vec<f32>> = (0..3).map(|_| logits(&mut rng, cols)).collect();
    let q: Vec<Vec<f32>> = (0..2).map(|_| distribution(&mut rng, cols)).collect();
    let q_rows: Vec<&[f32]> = q.iter().map(Vec::as_slice).collect();
    let targets = rows(&x, settings);
    let (mut first, mut second) = (Vec::new(), Vec::new());
    for trial in 0..TRIALS as u64 {
        let drafts = if with_q {
            [draw_from(&mut rng, &q[0]), draw_from(&mut rng, &q[1])]
        } else {
            [3, 5]
        };
        let state = RandomState {
            seed: 0xd2af_0000 + trial,
            offset: trial % 7,
        };
        let probs = with_q.then_some(q_rows.as_slice());
        let v = verify_drafts(&targets, &drafts, probs, state, NoiseRange::Standard).unwrap();
        assert_eq!(v.tokens.len(), v.accepted + 1);
        first.push(v.tokens[0]);
        if v.accepted >= 1 {
            second.push(v.tokens[1]);
        }
    }
    for (i, tokens) in [first, second].iter().enumerate() {
        let want = target_draw(&x[i], &settings);
        let what = format!("position {i}, {settings:?}, q given: {with_q}");
        let (chi2, dof) = chi_square_of(tokens, &want, &what);
        eprintln!(
            "{what}: chi-square {chi2:.2} at {dof} dof over {} draws",
            tokens.len()
        );
        assert!(tokens.len() > TRIALS / 20, "{what}: {} draws", tokens.len());
        assert!(
            chi2 < CHI_SQUARE_CRITICAL[dof],
            "{what}: chi-square {chi2:.2} at {dof} dof"
        );
    }
}

#[test]
fn emitted_tokens_follow_the_target_with_draft_probabilities() {
    emitted_tokens_follow_the_target(TokenSettings::new(0.9), true);
    emitted_tokens_follow_the_target(TokenSettings::new(1.2).with_top_k(5).with_min_p(0.1), true);
}

#[test]
fn emitted_tokens_follow_the_target_with_drafts_alone() {
    emitted_tokens_follow_the_target(TokenSettings::new(0.9), false);
    emitted_tokens_follow_the_target(TokenSettings::new(1.0).with_top_p(0.8), false);
}

/// The first draft is accepted with probability sum min(p, q) when it is drawn from q: within
/// four standard deviations of the binomial.
#[test]
fn drafts_are_accepted_at_the_overlap_of_p_and_q() {
    let cols = 8;
    let mut rng = Rng::new(7);
    let settings = TokenSettings::new(0.8).with_top_k(6);
    let x: Vec<Vec<f32>> = (0..2).map(|_| logits(&mut rng, cols)).collect();
    let q = distribution(&mut rng, cols);
    let want = target_draw(&x[0], &settings);
    let p = |t: usize| {
        want.kept
            .iter()
            .position(|&c| c as usize == t)
            .map_or(0.0, |j| want.probs[j])
    };
    let overlap: f64 = (0..cols).map(|t| p(t).min(f64::from(q[t]))).sum();
    let targets = rows(&x, settings);
    let accepted = (0..TRIALS as u64)
        .filter(|&trial| {
            let drafts = [draw_from(&mut rng, &q)];
            let state = RandomState {
                seed: 77 + trial,
                offset: 0,
            };
            let q_rows = [q.as_slice()];
            verify_drafts(
                &targets,
                &drafts,
                Some(&q_rows),
                state,
                NoiseRange::Standard,
            )
            .unwrap()
            .accepted
                == 1
        })
        .count() as f64;
    let n = TRIALS as f64;
    let sd = (n * overlap * (1.0 - overlap)).sqrt();
    assert!(
        (accepted - n * overlap).abs() < 4.0 * sd,
        "{accepted} accepted of {n}; sum min(p, q) = {overlap:.4}"
    );
}

/// A greedy target accepts exactly the drafts equal to its argmax at each position, then emits
/// the argmax: argmax decoding, whatever q says.
#[test]
fn greedy_targets_decode_their_argmax() {
    let cols = 50;
    let mut rng = Rng::new(3);
    let x: Vec<Vec<f32>> = (0..5).map(|_| logits(&mut rng, cols)).collect();
    let argmax: Vec<u32> = x
        .iter()
        .map(|row| target_draw(row, &TokenSettings::greedy()).token)
        .collect();
    let targets = rows(&x, TokenSettings::greedy());
    let q: Vec<Vec<f32>> = (0..4).map(|_| distribution(&mut rng, cols)).collect();
    let q_rows: Vec<&[f32]> = q.iter().map(Vec::as_slice).collect();
    for wrong_at in 0..=4 {
        let drafts: Vec<u32> = (0..4)
            .map(|i| match i == wrong_at {
                true => (argmax[i] + 1) % cols as u32,
                false => argmax[i],
            })
            .collect();
        for probs in [None, Some(q_rows.as_slice())] {
            let state = RandomState {
                seed: 5,
                offset: wrong_at as u64,
            };
            let v = verify_drafts(&targets, &drafts, probs, state, NoiseRange::Standard).unwrap();
            let accepted = wrong_at.min(4);
            assert_eq!(v.accepted, accepted);
            assert_eq!(v.tokens, argmax[..=accepted].to_vec());
            assert!(v.logprobs.iter().all(|&lp| lp == 0.0), "{v:?}");
        }
    }
}

/// A draft the target bans (bias -inf) is never accepted and nothing is NaN; q of 0 where p is
/// not leaves a residual to draw from; a target position without a token ends the request with
/// `u32::MAX`.
#[test]
fn banned_drafts_and_rows_without_a_token() {
    let cols = 8;
    let mut rng = Rng::new(9);
    let x: Vec<Vec<f32>> = (0..3).map(|_| logits(&mut rng, cols)).collect();
    let mut bias = vec![0.0f32; cols];
    bias[2] = f32::NEG_INFINITY;
    let mut targets = rows(&x, TokenSettings::new(1.0));
    targets[0].processing.bias = Some(&bias);
    // q all on the banned draft: p - q is p itself elsewhere.
    let mut q = vec![0.0f32; cols];
    q[2] = 1.0;
    let q_rows = [q.as_slice(), q.as_slice()];
    for trial in 0..2000 {
        let state = RandomState {
            seed: trial,
            offset: 0,
        };
        let v = verify_drafts(
            &targets,
            &[2, 2],
            Some(&q_rows),
            state,
            NoiseRange::Standard,
        )
        .unwrap();
        assert_eq!(v.accepted, 0);
        assert_ne!(v.tokens[0], 2);
        assert!(v.logprobs[0].is_finite(), "{v:?}");
    }
    let banned = [f32::NEG_INFINITY; 8];
    let x2 = [x[0].clone(), banned.to_vec()];
    let targets = rows(&x2, TokenSettings::new(1.0));
    let state = RandomState { seed: 1, offset: 0 };
    let v = verify_drafts(&targets, &[4], None, state, NoiseRange::Standard).unwrap();
    let want = if v.accepted == 1 {
        DraftVerdict {
            accepted: 1,
            tokens: vec![4, NONE],
            logprobs: vec![v.logprobs[0], v.logprobs[1]],
        }
    } else {
        v.clone()
    };
    assert_eq!(v.tokens, want.tokens);
    assert!(v.accepted == 0 || v.logprobs[1].is_nan());
    let targets = rows(&x2[1..], TokenSettings::new(1.0));
    let v = verify_drafts(&targets, &[], None, state, NoiseRange::Standard).unwrap();
    assert_eq!((v.accepted, v.tokens.clone()), (0, vec![NONE]));
}

#[test]
fn bad_arguments_are_refused_by_name() {
    let x = vec![vec![0.5f32; 8]; 3];
    let targets = rows(&x, TokenSettings::new(1.0));
    let state = RandomState { seed: 1, offset: 0 };
    let refused = |targets: &[TargetRow], drafts: &[u32], q: Option<&[&[f32]]>, name: &str| {
        let e = verify_drafts(targets, drafts, q, state, NoiseRange::Standard).unwrap_err();
        assert!(e.to_string().contains(name), "{name}: {e}");
    };
    refused(&targets, &[1], None, "targets");
    refused(&targets, &[1, 8], None, "drafts[1]");
    let short = vec![0.5f32; 7];
    let mut uneven = targets.clone();
    uneven[1].logits = &short;
    refused(&uneven, &[1, 2], None, "targets[1]");
    let q = [0.125f32; 8];
    let mut not_one = q;
    not_one[0] = 0.5;
    let mut negative = q;
    negative[0] = -0.125;
    negative[1] = 0.375;
    refused(&targets, &[1, 2], Some(&[&q]), "draft_probs");
    refused(&targets, &[1, 2], Some(&[&q, &not_one]), "draft_probs[1]");
    refused(&targets, &[1, 2], Some(&[&negative, &q]), "draft_probs[0]");
    refused(&targets, &[1, 2], Some(&[&q, &q[..7]]), "draft_probs[1]");
}

// The GPU call (`GpuContext::verify_drafts`, `Kernels::record_verify_drafts`) against the
// reference.

const DRAFT_COUNTS: [usize; 12] = [0, 1, 2, 3, 4, 5, 6, 7, 8, 4, 2, 8];

#[test]
fn gpu_verification_matches_reference() {
    let _turn = one_at_a_time();
    for (cols, with_q, case) in [
        (7, true, 1),
        (7, false, 2),
        (1_000, true, 3),
        (1_000, false, 4),
    ] {
        let b = Batch::new(cols, &DRAFT_COUNTS.repeat(4), with_q, case);
        block_on(check_batch::<f32>(ctx(), &b, NoiseRange::Standard));
    }
}

/// Bias, token lists with penalties and masks per position (the kernel with lists and masks).
#[test]
fn gpu_verification_with_lists_and_masks_matches_reference() {
    let _turn = one_at_a_time();
    for (processing, bias, with_q, case) in [
        (Processing::PerRow, Bias::PerRow, true, 21),
        (Processing::Shared, Bias::Shared, false, 22),
    ] {
        let b = Batch::processed(600, &DRAFT_COUNTS.repeat(3), with_q, case, bias, processing);
        block_on(check_batch::<f32>(ctx(), &b, NoiseRange::Standard));
    }
}

#[test]
fn gpu_verification_matches_reference_in_16_bits_and_wide_noise() {
    let _turn = one_at_a_time();
    let b = Batch::new(500, &DRAFT_COUNTS.repeat(2), true, 11);
    block_on(check_batch::<half::f16>(ctx(), &b, NoiseRange::Standard));
    block_on(check_batch::<half::bf16>(ctx(), &b, NoiseRange::Wide));
    let b = Batch::new(500, &DRAFT_COUNTS.repeat(2), false, 12);
    block_on(check_batch::<half::bf16>(ctx(), &b, NoiseRange::Standard));
}

/// K = 32,000 and the longest vocabularies, 151,936 and 262,144.
#[test]
fn gpu_verification_matches_reference_on_long_rows() {
    let _turn = one_at_a_time();
    for (cols, counts, with_q, case) in [
        (32_000, vec![4, 0, 2, 8, 1, 4], true, 31),
        (151_936, vec![4, 2], false, 32),
        (262_144, vec![4], true, 33),
    ] {
        let b = Batch::new(cols, &counts, with_q, case);
        block_on(check_batch::<f32>(ctx(), &b, NoiseRange::Standard));
    }
    let b = Batch::new(151_936, &[3, 1], true, 34);
    block_on(check_batch::<half::bf16>(ctx(), &b, NoiseRange::Standard));
}

/// Positions past one dispatch: 130 rows of 262,144 f32 logits are more than a 128 MiB binding
/// holds, so the positions run in two dispatches and the requests' finish over all of them.
#[test]
fn gpu_verification_spans_dispatches() {
    let _turn = one_at_a_time();
    let mut b = Batch::new(262_144, &[4; 26], true, 36);
    let rows = b.target.settings.len();
    assert!(rows as u64 * 262_144 * 4 > 128 << 20);
    // The last two requests greedy with their argmax as drafts: they take every draft, so the
    // second dispatch's positions decide what they emit.
    for p in 120..rows {
        b.target.settings[p] = TokenSettings::greedy();
        if p % 5 != 4 {
            let draw = sample_token_row(
                &b.row::<f32>(p),
                None,
                &TokenSettings::greedy(),
                b.states[0],
            );
            b.drafts[p - p / 5] = draw.unwrap().token;
        }
    }
    block_on(check_batch::<f32>(ctx(), &b, NoiseRange::Standard));
}

/// A greedy target on the GPU: every draft equal to the argmax accepted, the first other one
/// replaced by the argmax, and a request of argmax drafts takes them all and the bonus argmax.
#[test]
fn greedy_gpu_targets_decode_their_argmax() {
    let _turn = one_at_a_time();
    let cols = 300;
    let mut b = Batch::new(cols, &[4, 4, 4, 4, 4, 3], true, 41);
    for s in &mut b.target.settings {
        *s = TokenSettings::greedy();
    }
    // The argmax of each position (rows 5 and 6 have none: all banned, and a NaN).
    let argmax: Vec<u32> = (0..b.target.settings.len())
        .map(|p| {
            sample_token_row(
                &b.row::<f32>(p),
                None,
                &TokenSettings::greedy(),
                b.states[0],
            )
            .map_or(NONE, |draw| draw.token)
        })
        .collect();
    // Request r's draft r is wrong (none in the last request).
    for r in 0..b.requests() {
        let (first, n) = b.span(r);
        for i in 0..n {
            let right = argmax[first + i] % cols;
            b.drafts[b.offsets[r] as usize + i] = if i == r { (right + 1) % cols } else { right };
        }
    }
    for with_q in [true, false] {
        let q = b.q_flat().filter(|_| with_q);
        let got = ctx()
            .verify_drafts(&b.target.logits, &b.args(q.as_deref()))
            .unwrap();
        for r in 0..b.requests() {
            let (first, n) = b.span(r);
            // Argmax decoding: the drafts while they are the argmax, then the argmax (none
            // where the position has no token).
            let mut want = Vec::new();
            for i in 0..=n {
                want.push(argmax[first + i]);
                if i == n || want[i] == NONE || b.drafts[b.offsets[r] as usize + i] != want[i] {
                    break;
                }
            }
            assert_eq!(got.tokens[r], want, "request {r}, q {with_q}");
            assert_eq!(got.accepted[r] as usize, want.len() - 1, "request {r}");
            let lps = &got.logprobs[r];
            assert!(
                lps.iter()
                    .zip(&want)
                    .all(|(lp, &t)| (t == NONE) == lp[1].is_nan())
            );
            assert!(
                lps.iter().all(|lp| lp[1] == 0.0 || lp[1].is_nan()),
                "{lps:?}"
            );
        }
        // Requests that stop at the wrong draft, at a position without a token (request 1's
        // first), and that take every draft and the bonus.
        assert_eq!(got.accepted, [0, 0, 2, 3, 4, 3]);
    }
}

/// Many requests with the same target rows, fresh states and drafts from q in one call: the
/// first draft is accepted at the rate sum min(p, q), the first emitted token follows p_0 and,
/// after an accepted first draft, the second p_1.
#[test]
fn gpu_emitted_tokens_follow_the_target() {
    let _turn = one_at_a_time();
    let cols = 8u32;
    let requests = 10_000;
    let mut rng = Rng::new(51);
    let settings = TokenSettings::new(0.9).with_top_k(6);
    let x: Vec<Vec<f32>> = (0..3).map(|_| logits(&mut rng, cols as usize)).collect();
    let q: Vec<Vec<f32>> = (0..2)
        .map(|_| distribution(&mut rng, cols as usize))
        .collect();
    let logits: Vec<f32> = x.concat().repeat(requests);
    let all_settings = vec![settings; 3 * requests];
    let offsets: Vec<u32> = (0..=requests as u32).map(|r| 2 * r).collect();
    let drafts: Vec<u32> = (0..requests)
        .flat_map(|_| [draw_from(&mut rng, &q[0]), draw_from(&mut rng, &q[1])])
        .collect();
    let probs: Vec<f32> = q.concat().repeat(requests);
    let states: Vec<RandomState> = (0..requests as u64)
        .map(|r| RandomState {
            seed: 0x5eed_0000 + r,
            offset: r % 5,
        })
        .collect();
    let args = VerifyArgs::new(cols, &all_settings, &offsets, &drafts, &states)
        .with_draft_probs(probs.as_slice());
    let got = ctx().verify_drafts(&logits, &args).unwrap();
    // The first draft is accepted at the rate sum min(p_0, q_0), within four standard
    // deviations.
    let p0 = target_draw(&x[0], &settings);
    let p = |t: usize| {
        p0.kept
            .iter()
            .position(|&c| c as usize == t)
            .map_or(0.0, |j| p0.probs[j])
    };
    let overlap: f64 = (0..cols as usize)
        .map(|t| p(t).min(f64::from(q[0][t])))
        .sum();
    let taken = got.accepted.iter().filter(|&&a| a >= 1).count() as f64;
    let n = requests as f64;
    let sd = (n * overlap * (1.0 - overlap)).sqrt();
    assert!(
        (taken - n * overlap).abs() < 4.0 * sd,
        "{taken} first drafts accepted of {n}; sum min(p, q) = {overlap:.4}"
    );
    let first: Vec<u32> = got.tokens.iter().map(|t| t[0]).collect();
    let second: Vec<u32> = got
        .tokens
        .iter()
        .filter(|t| t.len() > 1)
        .map(|t| t[1])
        .collect();
    for (i, tokens) in [first, second].iter().enumerate() {
        let want = target_draw(&x[i], &settings);
        let what = format!("GPU, position {i}");
        let (chi2, dof) = chi_square_of(tokens, &want, &what);
        eprintln!(
            "{what}: chi-square {chi2:.2} at {dof} dof over {} draws",
            tokens.len()
        );
        assert!(
            tokens.len() > requests / 20,
            "{what}: {} draws",
            tokens.len()
        );
        assert!(
            chi2 < CHI_SQUARE_CRITICAL[dof],
            "{what}: chi-square {chi2:.2} at {dof} dof"
        );
    }
}

/// A request's verdict, tokens and log-probabilities, bit for bit, alone and in its batch.
#[test]
fn gpu_verification_is_invariant_to_company() {
    let _turn = one_at_a_time();
    let b = Batch::processed(
        400,
        &DRAFT_COUNTS,
        true,
        61,
        Bias::Shared,
        Processing::PerRow,
    );
    let q = b.q_flat().unwrap();
    let together = ctx()
        .verify_drafts(&b.target.logits, &b.args(Some(&q)))
        .unwrap();
    let cols = b.cols() as usize;
    for r in 0..b.requests() {
        let (first, n) = b.span(r);
        let drafts = &b.drafts[b.offsets[r] as usize..][..n];
        let probs = &q[b.offsets[r] as usize * cols..][..n * cols];
        let logits = &b.target.logits[first * cols..][..(n + 1) * cols];
        let offsets = [0, n as u32];
        let states = [b.states[r]];
        let t = &b.target;
        let args = VerifyArgs::new(
            t.cols,
            &t.settings[first..=first + n],
            &offsets,
            drafts,
            &states,
        )
        .with_draft_probs(probs)
        .with_bias(t.bias_values.as_slice())
        .with_lists(t.lists.as_slice())
        .with_masks(t.masks.as_slice())
        .with_logprobs(true);
        let alone = ctx().verify_drafts(logits, &args).unwrap();
        assert_eq!(alone.accepted[0], together.accepted[r], "request {r}");
        assert_eq!(alone.tokens[0], together.tokens[r], "request {r}");
        let bits = |v: &[[f32; 2]]| v.iter().flatten().map(|x| x.to_bits()).collect::<Vec<_>>();
        assert_eq!(
            bits(&alone.logprobs[0]),
            bits(&together.logprobs[r]),
            "request {r}"
        );
    }
}

/// The host form names what is wrong and runs nothing.
#[test]
fn bad_verification_arguments_are_refused_by_name() {
    let b = Batch::new(16, &[2, 1], true, 71);
    let q = b.q_flat().unwrap();
    let t = &b.target;
    let call = |offsets: &[u32], drafts: &[u32], q: &[f32], settings: &[TokenSettings]| {
        let args = VerifyArgs::new(16, settings, offsets, drafts, &b.states).with_draft_probs(q);
        ctx().verify_drafts(&t.logits, &args)
    };
    let s = &t.settings;
    expect_invalid(call(&[0, 2], &b.drafts, &q, s), "draft_offsets: 2 given");
    expect_invalid(call(&[1, 2, 3], &b.drafts, &q, s), "draft_offsets[0] = 1");
    expect_invalid(call(&[0, 2, 1], &b.drafts, &q, s), "draft_offsets[2] = 1");
    expect_invalid(
        call(&b.offsets, &b.drafts, &q, &s[..4]),
        "settings: 4 given",
    );
    expect_invalid(
        call(&[0, 2, 3], &[1, 2, 3, 4], &q, s),
        "draft_offsets[2] = 3",
    );
    expect_invalid(call(&b.offsets, &[1, 16, 2], &q, s), "drafts[1] = 16");
    expect_invalid(
        call(&b.offsets, &b.drafts, &q[1..], s),
        "draft_probs: 47 values",
    );
    let mut bad = q.clone();
    bad[20] = -0.5;
    expect_invalid(call(&b.offsets, &b.drafts, &bad, s), "draft_probs row 1");
    bad[20] = f32::NAN;
    expect_invalid(call(&b.offsets, &b.drafts, &bad, s), "draft_probs row 1");
    let mut bad = q.clone();
    bad[40] += 0.01;
    expect_invalid(call(&b.offsets, &b.drafts, &bad, s), "draft_probs row 2");
    let mut settings = s.clone();
    settings[3] = TokenSettings::new(-1.0);
    expect_invalid(
        call(&b.offsets, &b.drafts, &q, &settings),
        "settings[3].temperature",
    );
    let args = VerifyArgs::new(16, s, &b.offsets, &b.drafts, &[]);
    expect_invalid(ctx().verify_drafts(&t.logits, &args), "states");
}

/// The recorded call: requests whose offsets do not hold them, or that name a draft of K or
/// more, are marked (accepted u32::MAX, or no token from the draft on) while the others verify
/// as the host form does; strategies other than whole rows and no requests are refused.
#[test]
fn recorded_verification_marks_bad_requests() {
    let _turn = one_at_a_time();
    // Seeded so that request 0 stops before its last draft.
    let b = Batch::new(64, &[2, 1, 2], false, 81);
    let good = ctx()
        .verify_drafts(&b.target.logits, &b.args(None))
        .unwrap();
    let run = |offsets: &[u32], drafts: &[u32], strategy: Option<Strategy>, requests: u32| {
        let ctx = ctx();
        let rows = b.target.settings.len() as u32;
        let logits = ctx.upload(&b.target.logits).unwrap();
        let settings = ctx.upload(&b.target.settings).unwrap();
        let offsets = ctx.upload(offsets).unwrap();
        let drafts = ctx.upload(drafts).unwrap();
        let states = ctx.upload(&b.states).unwrap();
        let tokens = ctx.storage_buffer(4 * u64::from(rows)).unwrap();
        let accepted = ctx.storage_buffer(12).unwrap();
        let call = VerifyDraftsCall::new(
            StorageType::F32,
            Shape::new(rows, 64),
            GpuSlice::from(&logits),
            GpuSlice::from(&settings),
            requests,
            GpuSlice::from(&offsets),
            GpuSlice::from(&drafts),
            GpuSlice::from(&states),
            GpuSlice::from(&tokens),
            GpuSlice::from(&accepted),
        )
        .with_strategy(strategy);
        ctx.submit_and_wait("verify", |e| ctx.kernels().record_verify_drafts(e, &call))?;
        let slots = ctx.read_back::<u32>(&tokens, rows as usize).unwrap();
        Ok::<_, gumbel_wgpu::Error>((ctx.read_back::<u32>(&accepted, 3).unwrap(), slots))
    };
    let (accepted, slots) = run(&b.offsets, &b.drafts, None, 3).unwrap();
    assert_eq!(accepted, good.accepted);
    // Request 0's slots: its emitted tokens, then none.
    assert!(good.accepted[0] < 2);
    let emitted = good.accepted[0] as usize + 1;
    assert_eq!(slots[..emitted], good.tokens[0][..]);
    assert!(slots[emitted..3].iter().all(|&t| t == NONE), "{slots:?}");
    // Offsets that do not start at 0: no request is held; out of order: that request.
    let (accepted, _) = run(&[1, 3, 4, 5], &b.drafts, None, 3).unwrap();
    assert_eq!(accepted, [NONE; 3]);
    let (accepted, _) = run(&[0, 3, 2, 5], &b.drafts, None, 3).unwrap();
    assert_eq!(accepted[1], NONE);
    assert!(accepted[0] <= 3 && accepted[2] <= 3, "{accepted:?}");
    // A draft past K ends its request there with no token; the other requests stand.
    let mut drafts = b.drafts.clone();
    drafts[2] = 64;
    let (accepted, slots) = run(&b.offsets, &drafts, None, 3).unwrap();
    assert_eq!(accepted[0], good.accepted[0]);
    assert_eq!(accepted[2], good.accepted[2]);
    assert_eq!(slots[3], NONE);
    assert_eq!(accepted[1], 0);
    let split = Some(Strategy::SplitRow {
        size: 64,
        slices: 2,
    });
    expect_invalid(run(&b.offsets, &b.drafts, split, 3), "RowPerWorkgroup");
    expect_invalid(run(&b.offsets, &b.drafts, None, 0), "requests = 0");
}

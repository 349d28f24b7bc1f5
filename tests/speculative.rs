//! Speculative decoding's verification in the f64 reference (`reference::verify_drafts`): the
//! emitted tokens are distributed as the target alone samples them, a greedy target decodes
//! its argmax, drafts are accepted at the rate the overlap of the two distributions gives, the
//! edges (banned drafts, q of 0 where p is not, rows without a token), and refusals by name.

mod common;

use common::TestRng as Rng;
use common::tokens::{CHI_SQUARE_CRITICAL, chi_square_of};
use gumbel_wgpu::reference::{
    DraftVerdict, RowProcessing, TargetRow, TokenDraw, sample_token_row, verify_drafts,
};
use gumbel_wgpu::{NoiseRange, RandomState, TokenSettings};

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

/// A token drawn from `q` by inversion.
fn draw_from(rng: &mut Rng, q: &[f32]) -> u32 {
    let u = rng.uniform(0.0, 1.0);
    let mut acc = 0.0;
    for (t, &p) in q.iter().enumerate() {
        acc += f64::from(p);
        if u < acc {
            return t as u32;
        }
    }
    (q.len() - 1) as u32
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

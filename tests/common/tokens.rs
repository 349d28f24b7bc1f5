//! The token sampler's check, shared by tests/tokens.rs and the browser suite: a batch of rows
//! with every filter, and its comparison with the f64 reference on the same random words.

use super::{FILTER_GAP, GUMBEL_GAP, TestRng as Rng};
use gumbel_wgpu::reference::{
    RowProcessing, TokenDraw, raw_top_logprobs, sample_processed_token_row,
};
use gumbel_wgpu::{
    Element, RandomState, Strategy, TokenArgs, TokenEntry, TokenSettings, Tokens, mask_words,
};

const NONE: u32 = u32::MAX;

/// Per-row settings that cycle through every filter, alone and together, greedy rows and both
/// top-k paths (the lists' winners up to 256, the radix select past them).
pub fn settings_mix(cols: u32, n: usize) -> Vec<TokenSettings> {
    let k = |k: u32| k.min(cols);
    let mix = [
        TokenSettings::new(1.0),
        TokenSettings::greedy(),
        TokenSettings::new(0.7).with_top_k(k(5)),
        TokenSettings::new(1.3)
            .with_top_k(k(50))
            .with_top_n_sigma(1.5),
        TokenSettings::new(1.0).with_top_k(1),
        TokenSettings::new(0.9).with_top_p(0.9),
        TokenSettings::new(1.0).with_top_k(k(40)).with_top_p(0.5),
        TokenSettings::new(0.8).with_min_p(0.1),
        TokenSettings::new(1.1)
            .with_min_p(0.05)
            .with_top_p(0.95)
            .with_top_n_sigma(2.0),
        TokenSettings::new(1.0).with_soft_cap(5.0).with_top_k(k(20)),
        TokenSettings::new(0.6)
            .with_top_k(k(32))
            .with_top_p(0.8)
            .with_min_p(0.01),
        TokenSettings::new(2.0)
            .with_top_k(cols)
            .with_top_n_sigma(1.0),
        TokenSettings::new(1e-6),
        TokenSettings::new(0.5).with_soft_cap(3.0).with_top_p(0.7),
        TokenSettings::new(1.0).with_top_k(k(300)).with_top_p(0.95),
    ];
    (0..n).map(|i| mix[i % mix.len()]).collect()
}

/// Logits like a language model's: a spread of values with a few strong candidates.
pub fn lm_logits(rng: &mut Rng, cols: u32) -> Vec<f32> {
    (0..cols)
        .map(|_| {
            let base = rng.uniform(-6.0, 2.0);
            let peak = if rng.next_u32().is_multiple_of(500) {
                rng.uniform(2.0, 9.0)
            } else {
                0.0
            };
            (base + peak) as f32
        })
        .collect()
}

pub struct Compared {
    pub rows: usize,
    pub near: usize,
    /// The largest log-probability error as a share of its bound (raw, sampled).
    pub worst: (f64, f64),
}

#[derive(Clone, Copy, PartialEq)]
pub enum Bias {
    None,
    Shared,
    PerRow,
}

/// Token lists and masks: none, one of each for every row, or each row its own.
#[derive(Clone, Copy, PartialEq, Debug)]
pub enum Processing {
    None,
    Shared,
    PerRow,
}

/// A batch of `rows` rows of K = `cols` at storage `T`: language-model-like logits with masked
/// entries, two rows without a token, every filter (settings_mix), per-row states and a bias,
/// and with `with_processing` token lists (penalties, sparse bias) and masks.
pub struct TokenCase<T> {
    pub cols: u32,
    pub rows: usize,
    pub logits: Vec<T>,
    pub settings: Vec<TokenSettings>,
    pub states: Vec<RandomState>,
    pub bias: Bias,
    pub bias_values: Vec<f32>,
    pub lists: Vec<TokenEntry>,
    pub masks: Vec<u32>,
    /// Top entries a row, raw and processed (0: none).
    pub top: u32,
}

impl<T: Element> TokenCase<T> {
    pub fn new(cols: u32, rows: usize, case: u64, bias: Bias) -> Self {
        let mut rng = Rng::new(case);
        let settings = settings_mix(cols, rows);
        let mut logits: Vec<T> = Vec::new();
        for r in 0..rows {
            let mut row = lm_logits(&mut rng, cols);
            if r % 9 == 4 {
                row[(r * 31) % cols as usize] = f32::NEG_INFINITY;
            }
            logits.extend(row.iter().map(|&x| T::from_f32(x)));
        }
        // Some rows wholly masked, one with a NaN: no token.
        if rows > 6 {
            let cells = cols as usize;
            for x in &mut logits[5 * cells..6 * cells] {
                *x = T::from_f32(f32::NEG_INFINITY);
            }
            logits[6 * cells + cells / 2] = T::from_f32(f32::NAN);
        }
        let states: Vec<RandomState> = (0..rows as u64)
            .map(|r| RandomState {
                seed: case * 1000 + r,
                offset: r * 7919 + (r % 4),
            })
            .collect();
        // Banned tokens and a boost, the same for every row or shifted by the row.
        let bias_rows = if bias == Bias::PerRow { rows } else { 1 };
        let bias_values: Vec<f32> = (0..bias_rows * cols as usize)
            .map(
                |i| match (i % cols as usize + 5 * (i / cols as usize)) % 97 {
                    0 => f32::NEG_INFINITY,
                    3 => 1.5,
                    _ => 0.0,
                },
            )
            .collect();
        Self {
            cols,
            rows,
            logits,
            settings,
            states,
            bias,
            bias_values,
            lists: Vec::new(),
            masks: Vec::new(),
            top: 0,
        }
    }

    /// With `n` top entries a row, raw and processed.
    pub fn with_top(self, n: u32) -> Self {
        Self { top: n, ..self }
    }

    /// With token lists and masks, and penalties in the rows that have a list: each list holds
    /// its row's five largest logits (row 0's where shared) and others at random, with counts,
    /// prompt marks, biases and bans; each mask allows about three tokens in four and the
    /// row's largest logit where it is the row's own. Every fourth row has neither.
    pub fn with_processing(mut self, processing: Processing, seed: u64) -> Self {
        if processing == Processing::None {
            return self;
        }
        let mut rng = Rng::new(seed);
        let cols = self.cols as usize;
        let tables = if processing == Processing::Shared {
            1
        } else {
            self.rows
        };
        let words = mask_words(self.cols) as usize;
        let mut windows = Vec::new();
        for table in 0..tables {
            let start = self.lists.len();
            let row: Vec<f32> = self.logits[table * cols..][..cols]
                .iter()
                .map(|v| v.to_f32())
                .collect();
            let mut order: Vec<usize> = (0..cols).collect();
            order.sort_by(|&a, &b| row[b].total_cmp(&row[a]));
            let mut tokens: Vec<usize> = order.iter().copied().take(5).collect();
            let others = cols.min(500);
            tokens.extend((0..others).map(|_| rng.next_u32() as usize % cols));
            tokens.sort_unstable();
            tokens.dedup();
            for token in tokens {
                let bias = match rng.next_u32() % 16 {
                    0 => f32::NEG_INFINITY,
                    1..=3 => rng.uniform(-2.0, 2.0) as f32,
                    _ => 0.0,
                };
                self.lists.push(TokenEntry {
                    token: token as u32,
                    count: rng.next_u32() % 4,
                    bias,
                    in_prompt: rng.next_u32() % 2,
                });
            }
            windows.push((start as u32, (self.lists.len() - start) as u32));
            let mut mask = vec![0u32; words];
            for v in 0..cols {
                if !rng.next_u32().is_multiple_of(4)
                    || (processing == Processing::PerRow && v == order[0])
                {
                    mask[v / 32] |= 1 << (v % 32);
                }
            }
            self.masks.extend(mask);
        }
        let penalties = [
            (1.3, 0.5, 0.8),
            (1.0, 0.2, 0.0),
            (0.8, 0.0, 1.5),
            (1.5, 1.0, 0.3),
        ];
        for (r, settings) in self.settings.iter_mut().enumerate() {
            if r % 4 == 3 {
                continue;
            }
            let table = if processing == Processing::Shared {
                0
            } else {
                r
            };
            let (start, len) = windows[table];
            let (rep, freq, pres) = penalties[r % penalties.len()];
            *settings = settings
                .with_list(start, len)
                .with_mask(table as u32)
                .with_penalties(rep, freq, pres);
        }
        self
    }

    /// The row's mask and token list, as the reference takes them.
    pub fn processing_of(&self, r: usize) -> RowProcessing<'_> {
        let s = &self.settings[r];
        let words = mask_words(self.cols) as usize;
        let bias_rows = if self.bias == Bias::PerRow {
            self.rows
        } else {
            1
        };
        let cols = self.cols as usize;
        RowProcessing {
            bias: (self.bias != Bias::None)
                .then(|| &self.bias_values[(r % bias_rows) * cols..][..cols]),
            list: &self.lists[s.list_start as usize..][..s.list_len as usize],
            mask: (s.mask != TokenSettings::NO_MASK)
                .then(|| &self.masks[s.mask as usize * words..][..words]),
        }
    }

    /// The call's arguments: log-probabilities on, the strategy given.
    pub fn args(&self, strategy: Option<Strategy>) -> TokenArgs<'_> {
        TokenArgs::new(self.cols, &self.settings, &self.states)
            .with_bias((self.bias != Bias::None).then_some(self.bias_values.as_slice()))
            .with_logprobs(true)
            .with_strategy(strategy)
            .with_lists((!self.lists.is_empty()).then_some(self.lists.as_slice()))
            .with_masks((!self.masks.is_empty()).then_some(self.masks.as_slice()))
            .with_top_logprobs(self.top, self.top > 0)
    }
}
/// Holds each row of `got` to the reference; returns how many rows were too near a threshold
/// to compare, and the worst log-probability errors.
pub fn check<T: Element>(case: &TokenCase<T>, got: &Tokens) -> Compared {
    let TokenCase {
        cols,
        rows,
        logits,
        settings,
        states,
        ..
    } = case;
    let (cols, rows) = (*cols, *rows);
    let mut near = 0;
    let mut worst = (0f64, 0f64);
    let n_seq = f64::from(cols) / 64.0 + 16.0;
    for r in 0..rows {
        let x: Vec<f32> = logits[r * cols as usize..][..cols as usize]
            .iter()
            .map(|v| v.to_f32())
            .collect();
        let want = sample_processed_token_row(
            &x,
            &case.processing_of(r),
            &settings[r],
            states[r],
            gumbel_wgpu::NoiseRange::Standard,
            FILTER_GAP,
        );
        let (token, [raw, sampled]) = (got.tokens[r], got.logprobs[r]);
        let Ok(draw) = &want else {
            assert_eq!(token, NONE, "row {r}: {want:?}");
            assert!(raw.is_nan() && sampled.is_nan(), "row {r}");
            if case.top > 0 {
                assert!(
                    got.top[r].is_empty() && got.top_processed[r].is_empty(),
                    "row {r}"
                );
            }
            continue;
        };
        let TokenDraw {
            token: want_token,
            raw_logprob,
            sampled_logprob,
            gumbel_gap,
            ref near_tokens,
            ..
        } = *draw;
        // Sums of up to n_seq f32 terms in a row (EPS/2 each), one ln (4 ULP), and the
        // subtraction of values up to 30 apart.
        let sum_error = (n_seq + 8.0) * f64::from(f32::EPSILON);
        let raw_tol = |lp: f64| sum_error + 8.0 * f64::from(f32::EPSILON) * (1.0 + lp.abs());
        let sampled_tol = |lp: f64| sum_error + 1e-5 * (1.0 + lp.abs());
        if case.top > 0 {
            // The raw order is of the logits as given: the same columns exactly.
            let want_top = raw_top_logprobs(&x, case.top as usize);
            let got_top: Vec<u32> = got.top[r].iter().map(|e| e.token).collect();
            let want_ids: Vec<u32> = want_top.iter().map(|e| e.0).collect();
            assert_eq!(got_top, want_ids, "K = {cols}, row {r}: top columns");
            for (e, &(_, lp)) in got.top[r].iter().zip(&want_top) {
                let error = (f64::from(e.logprob) - lp).abs();
                worst.0 = worst.0.max(error / raw_tol(lp));
                assert!(
                    error <= raw_tol(lp),
                    "K = {cols}, row {r}: top {e:?} against {lp}"
                );
            }
        }
        if case.top > 0 {
            // The kept entries in order, as many as the filters keep (within the slack of
            // their thresholds); entries whose l rounds level may trade places.
            let want_top = draw.processed_top(case.top as usize);
            let got_top = &got.top_processed[r];
            let n = case.top as usize;
            let (fewest, most) = draw.kept_near;
            assert!(
                (fewest.min(n)..=most.min(n)).contains(&got_top.len()),
                "K = {cols}, row {r}: {} processed top entries, {fewest} to {most} kept: {got_top:?} against {want_top:?}; {:?}; sampled {sampled} against {sampled_logprob}",
                got_top.len(),
                settings[r]
            );
            let lp_of = |c: u32| {
                draw.processed_top(usize::MAX)
                    .iter()
                    .find(|e| e.0 == c)
                    .map(|e| e.1)
            };
            for (e, &(c, lp)) in got_top.iter().zip(&want_top) {
                let tol = sampled_tol(lp);
                let error = (f64::from(e.logprob) - lp).abs();
                // Where the kept set is in doubt, so is its total weight.
                if fewest == most {
                    worst.1 = worst.1.max(error / tol);
                    assert!(
                        error <= tol,
                        "K = {cols}, row {r}: processed top {e:?} against {lp}"
                    );
                }
                let same =
                    e.token == c || lp_of(e.token).is_some_and(|other| (other - lp).abs() <= tol);
                assert!(same, "K = {cols}, row {r}: processed top {e:?} against {c}");
            }
        }
        if gumbel_gap < GUMBEL_GAP {
            near += 1;
            continue;
        }
        if near_tokens.len() > 1 {
            near += 1;
            assert!(
                near_tokens.contains(&token),
                "K = {cols}, row {r}, {:?}: {token} is none of {near_tokens:?}",
                settings[r]
            );
            continue;
        }
        assert_eq!(token, want_token, "K = {cols}, row {r}, {:?}", settings[r]);
        let raw_tol = raw_tol(raw_logprob);
        worst.0 = worst.0.max((f64::from(raw) - raw_logprob).abs() / raw_tol);
        assert!(
            (f64::from(raw) - raw_logprob).abs() <= raw_tol,
            "K = {cols}, row {r}: raw log-probability {raw} against {raw_logprob}"
        );
        let sampled_tol = sampled_tol(sampled_logprob);
        worst.1 = worst
            .1
            .max((f64::from(sampled) - sampled_logprob).abs() / sampled_tol);
        assert!(
            (f64::from(sampled) - sampled_logprob).abs() <= sampled_tol,
            "K = {cols}, row {r}, {:?}: sampled log-probability {sampled} against {sampled_logprob}",
            settings[r]
        );
    }
    Compared { rows, near, worst }
}

/// P(chi2 > x) = 0.001 at 1 .. 9 degrees of freedom (index 0 unused).
pub const CHI_SQUARE_CRITICAL: [f64; 10] = [
    0.0, 10.83, 13.82, 16.27, 18.47, 20.52, 22.46, 24.32, 26.12, 27.88,
];

/// Chi-square of drawn `tokens` against the reference draw's exact probabilities of the columns
/// it keeps, and its degrees of freedom; a column it leaves out must never be drawn (`what`
/// names the case in the message).
pub fn chi_square_of(tokens: &[u32], want: &TokenDraw, what: &str) -> (f64, usize) {
    let mut counts = std::collections::HashMap::<u32, u64>::new();
    for &t in tokens {
        *counts.entry(t).or_default() += 1;
    }
    for (&c, &n) in &counts {
        assert!(
            want.kept.contains(&c),
            "{what}: column {c} is left out but drawn {n} times"
        );
    }
    let chi2 = want
        .kept
        .iter()
        .zip(&want.probs)
        .map(|(c, &p)| {
            let expected = p * tokens.len() as f64;
            (counts.get(c).copied().unwrap_or(0) as f64 - expected).powi(2) / expected
        })
        .sum();
    (chi2, want.kept.len() - 1)
}

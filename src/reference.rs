//! The CPU reference: the same random words as the kernels, and f64 arithmetic from there on.
//! It is the oracle of the tests and a tool for users who check pipelines of their own.

use crate::philox::{noise_pair, noise_word};
use crate::tokens::settings::{RandomState, TokenEntry, TokenSettings};
use crate::types::{Mode, NoiseRange, Shape, check_tau};

/// The Gumbel(0, 1) noise of a 32-bit word, as exactly as f64 allows (docs/contract.md, section 2):
/// `u = (x + 0.5) 2^-32`, `g = -ln(-ln u)`, with `1 - u` taken from the complemented word.
pub fn gumbel_of_word(x: u32) -> f64 {
    const SCALE: f64 = 1.0 / 4_294_967_296.0;
    let exp1 = if x < 0x8000_0000 {
        -((f64::from(x) + 0.5) * SCALE).ln()
    } else {
        -(-(f64::from(!x) + 0.5) * SCALE).ln_1p()
    };
    -exp1.ln()
}

/// The Gumbel noise of a 64-bit value (docs/contract.md, section 2): `u = (x + 0.5) 2^-64`,
/// `g = -ln(-ln u)`, with `1 - u` taken from the complement. `g` spans about [-3.81, 45.05].
pub fn gumbel_of_pair(x: u64) -> f64 {
    const SCALE: f64 = 1.0 / 18_446_744_073_709_551_616.0;
    let exp1 = if x < 1 << 63 {
        -((x as f64 + 0.5) * SCALE).ln()
    } else {
        -(-((!x) as f64 + 0.5) * SCALE).ln_1p()
    };
    -exp1.ln()
}

/// The Gumbel noise of flat element `n` of `seed`'s stream in `range`.
pub fn gumbel_at(range: NoiseRange, seed: u64, n: u64) -> f64 {
    match range {
        NoiseRange::Standard => gumbel_of_word(noise_word(seed, n)),
        NoiseRange::Wide => gumbel_of_pair(noise_pair(seed, n)),
    }
}

/// The Gumbel noise of flat elements `offset .. offset + count` of `seed`'s stream.
pub fn gumbel_noise(seed: u64, offset: u64, count: usize) -> Vec<f64> {
    gumbel_noise_in(NoiseRange::Standard, seed, offset, count)
}

/// [`gumbel_noise`] in `range`.
pub fn gumbel_noise_in(range: NoiseRange, seed: u64, offset: u64, count: usize) -> Vec<f64> {
    (0..count as u64)
        .map(|i| gumbel_at(range, seed, offset.wrapping_add(i)))
        .collect()
}

/// One logit and what the sampler makes of it.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Perturbed {
    /// `l + g`, for a finite logit.
    Value(f64),
    /// The logit was exactly negative infinity: it takes no part.
    Masked,
    /// The logit was NaN or positive infinity: the row has no sample.
    Invalid,
}

/// `l + g` for each logit of a row whose first element has flat noise index `first` (flat
/// indices wrap at 2^64).
pub fn perturbed_row(logits: &[f32], seed: u64, first: u64) -> Vec<Perturbed> {
    perturbed_row_in(NoiseRange::Standard, logits, seed, first)
}

/// [`perturbed_row`] with the noise of `range`.
pub fn perturbed_row_in(
    range: NoiseRange,
    logits: &[f32],
    seed: u64,
    first: u64,
) -> Vec<Perturbed> {
    logits
        .iter()
        .zip(0u64..)
        .map(|(&l, i)| (l, first.wrapping_add(i)))
        .map(|(l, n)| {
            if l == f32::NEG_INFINITY {
                Perturbed::Masked
            } else if !l.is_finite() {
                Perturbed::Invalid
            } else {
                Perturbed::Value(f64::from(l) + gumbel_at(range, seed, n))
            }
        })
        .collect()
}

/// Why a row has no sample (the error type's, named here too, where the reference reports it).
pub use crate::error::NoSample;

/// The sample of one row, in f64.
#[derive(Clone, Debug, PartialEq)]
pub enum RowSample {
    /// Soft, log-soft or hard values, one per column; log-soft has `-inf` at masked columns.
    Values(Vec<f64>),
    /// Index mode's category.
    Index(u32),
}

/// `z = (l + g) / tau` for each element of a row (`None` where masked), or why the row has no
/// sample. Index mode does not divide by tau (but a tau that is not finite and positive is no
/// sample in every mode).
pub fn scaled_row(
    logits: &[f32],
    tau: f32,
    seed: u64,
    first: u64,
    mode: Mode,
) -> Result<Vec<Option<f64>>, NoSample> {
    scaled_row_in(NoiseRange::Standard, logits, tau, seed, first, mode)
}

/// [`scaled_row`] with the noise of `range`.
pub fn scaled_row_in(
    range: NoiseRange,
    logits: &[f32],
    tau: f32,
    seed: u64,
    first: u64,
    mode: Mode,
) -> Result<Vec<Option<f64>>, NoSample> {
    let perturbed = perturbed_row_in(range, logits, seed, first);
    if let Some(k) = perturbed.iter().position(|p| *p == Perturbed::Invalid) {
        return Err(NoSample::InvalidLogit(k));
    }
    // Index mode does not divide by tau, but a bad one is no sample there too.
    if check_tau(tau).is_err() {
        return Err(NoSample::InvalidTau);
    }
    let scale = if mode == Mode::Index {
        1.0
    } else {
        1.0 / f64::from(tau)
    };
    let z: Vec<Option<f64>> = perturbed
        .iter()
        .map(|p| match p {
            Perturbed::Value(v) => Some(v * scale),
            _ => None,
        })
        .collect();
    if z.iter().all(Option::is_none) {
        return Err(NoSample::AllMasked);
    }
    Ok(z)
}

/// The lowest index of the largest `z`, and that value (`None` if every element is masked).
fn argmax(z: &[Option<f64>]) -> Option<(usize, f64)> {
    z.iter()
        .enumerate()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .fold(None, |best: Option<(usize, f64)>, (k, v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((k, v)),
        })
}

/// `softmax(z)` (0 where masked), or `log softmax(z)` (`-inf` where masked).
pub fn softmax(z: &[Option<f64>], log: bool) -> Vec<f64> {
    let m = argmax(z).map_or(0.0, |(_, m)| m);
    let log_sum = z.iter().flatten().map(|v| (v - m).exp()).sum::<f64>().ln();
    z.iter()
        .map(|v| match (v, log) {
            (Some(v), true) => (v - m) - log_sum,
            (Some(v), false) => ((v - m) - log_sum).exp(),
            (None, true) => f64::NEG_INFINITY,
            (None, false) => 0.0,
        })
        .collect()
}

/// The forward pass of one row (docs/contract.md, section 1) with the noise of flat elements
/// `first ..`.
pub fn forward_row(
    logits: &[f32],
    tau: f32,
    seed: u64,
    first: u64,
    mode: Mode,
) -> Result<RowSample, NoSample> {
    forward_row_in(NoiseRange::Standard, logits, tau, seed, first, mode)
}

/// [`forward_row`] with the noise of `range`.
pub fn forward_row_in(
    range: NoiseRange,
    logits: &[f32],
    tau: f32,
    seed: u64,
    first: u64,
    mode: Mode,
) -> Result<RowSample, NoSample> {
    let z = scaled_row_in(range, logits, tau, seed, first, mode)?;
    // Index and hard samples take the exact argmax of l + g (gumbel_max_scores).
    let arg = || {
        argmax(&gumbel_max_scores(range, logits, seed, first))
            .map(|(arg, _)| arg)
            .ok_or(NoSample::AllMasked)
    };
    Ok(match mode {
        Mode::Index => RowSample::Index(arg()? as u32),
        Mode::Soft => RowSample::Values(softmax(&z, false)),
        Mode::LogSoft => RowSample::Values(softmax(&z, true)),
        Mode::Hard => {
            let arg = arg()?;
            RowSample::Values(
                (0..z.len())
                    .map(|k| if k == arg { 1.0 } else { 0.0 })
                    .collect(),
            )
        }
    })
}

/// Gumbel-top-k of one row: the `k` largest `l + g` as (column, value), in decreasing order
/// (ties: the lower column first), with the noise of flat elements `first ..` (the index
/// mode's). Fewer than `k` when fewer logits are valid; no sample when a logit is NaN or +inf
/// or every one is masked.
pub fn top_k_row(
    logits: &[f32],
    seed: u64,
    first: u64,
    k: usize,
) -> Result<Vec<(u32, f64)>, NoSample> {
    top_k_row_in(NoiseRange::Standard, logits, seed, first, k)
}

/// [`top_k_row`] with the noise of `range`.
pub fn top_k_row_in(
    range: NoiseRange,
    logits: &[f32],
    seed: u64,
    first: u64,
    k: usize,
) -> Result<Vec<(u32, f64)>, NoSample> {
    let z = scaled_row_in(range, logits, 1.0, seed, first, Mode::Index)?;
    let scores = gumbel_max_scores(range, logits, seed, first);
    let mut valid: Vec<(u32, f64, f64)> = z
        .iter()
        .zip(&scores)
        .enumerate()
        .filter_map(|(c, (v, s))| Some((c as u32, (*v)?, (*s)?)))
        .collect();
    valid.sort_by(|a, b| b.2.total_cmp(&a.2).then(a.0.cmp(&b.0)));
    valid.truncate(k);
    Ok(valid.into_iter().map(|(c, v, _)| (c, v)).collect())
}

/// The scores that Gumbel-max compares, `(l - L) + g` with `L` the row's largest valid logit
/// (`None` where masked or invalid): the order of `l + g`, with the noise's digits kept
/// however large the logits are (`l + g` itself rounds g away when |l| is large, in f64 too).
pub fn gumbel_max_scores(
    range: NoiseRange,
    logits: &[f32],
    seed: u64,
    first: u64,
) -> Vec<Option<f64>> {
    let top = logits
        .iter()
        .filter(|l| l.is_finite())
        .fold(f64::NEG_INFINITY, |m, &l| m.max(f64::from(l)));
    logits
        .iter()
        .zip(0u64..)
        .map(|(&l, i)| {
            l.is_finite().then(|| {
                // + 0.0: -0.0 and +0.0 are one value.
                (f64::from(l) - top) + gumbel_at(range, seed, first.wrapping_add(i)) + 0.0
            })
        })
        .collect()
}

/// The forward pass of a batch: row `r` reads `logits[r * shape.in_pitch ..][.. shape.cols]`,
/// uses `taus[r]` (or `taus[0]` for all rows when `taus` has one element) and the noise of flat
/// elements `offset + r * cols ..`.
pub fn forward(
    logits: &[f32],
    shape: Shape,
    taus: &[f32],
    seed: u64,
    offset: u64,
    mode: Mode,
) -> Vec<Result<RowSample, NoSample>> {
    let cols = shape.cols as usize;
    (0..shape.rows as usize)
        .map(|r| {
            let start = r * shape.in_pitch as usize;
            let tau = if taus.len() == 1 { taus[0] } else { taus[r] };
            let first = offset.wrapping_add(r as u64 * u64::from(shape.cols));
            forward_row(&logits[start..start + cols], tau, seed, first, mode)
        })
        .collect()
}

/// Where a derivative is taken: the soft sample `y`, and `w = z + c` for one constant `c` per
/// row (`None` for an element that takes no part: masked, or `y` flushed to zero).
/// The derivatives only use `y`-weighted sums of `w`, and `y` sums to one, so `c` cancels.
#[derive(Clone, Debug, PartialEq)]
pub struct SamplePoint {
    /// The soft sample.
    pub y: Vec<f64>,
    /// `z + c`, or `None` where the element takes no part.
    pub w: Vec<Option<f64>>,
}

impl SamplePoint {
    /// At `z = (l + g) / tau` ([`scaled_row`]), with `w = z - max z`. The shift matters in
    /// f64 too: in a row near one-hot the winner's `y` rounds to 1 and its `dl` to 0, so
    /// `sum dl` is no longer 0 and an unshifted `w` would add `max z * sum dl` to `dtau`; the
    /// winner's `w` of exactly 0 leaves its lost `dl` out.
    pub fn from_z(z: &[Option<f64>]) -> Self {
        let m = z
            .iter()
            .flatten()
            .copied()
            .fold(f64::NEG_INFINITY, f64::max);
        Self {
            y: softmax(z, false),
            w: z.iter().map(|z| z.map(|z| z - m)).collect(),
        }
    }

    /// At a saved forward output, as the kernels read it: the soft sample for soft and hard,
    /// `log y` for log-soft. A soft value below f32's smallest normal takes no part.
    pub fn from_saved(saved: &[f64], mode: Mode) -> Self {
        let (y, w) = saved
            .iter()
            .map(|&s| match mode {
                Mode::LogSoft => (s.exp(), (s != f64::NEG_INFINITY).then_some(s)),
                _ => (s, (s >= f64::from(f32::MIN_POSITIVE)).then(|| s.ln())),
            })
            .unzip();
        Self { y, w }
    }
}

/// The gradient of one row: of each logit, and of the temperature.
#[derive(Clone, Debug, PartialEq)]
pub struct RowGradient {
    /// The gradient of each logit.
    pub dl: Vec<f64>,
    /// The temperature's gradient.
    pub dtau: f64,
}

/// The VJP of a row (docs/contract.md, section 1): `dl` and `dtau` from the upstream gradient `dy`
/// of the output of `mode`. Hard mode is the straight-through estimator: the soft sample's
/// gradient. Index mode has no derivative; it is treated as hard.
pub fn vjp(point: &SamplePoint, tau: f64, mode: Mode, dy: &[f64]) -> RowGradient {
    let on = |k: usize| point.w[k].is_some();
    let dl: Vec<f64> = if mode == Mode::LogSoft {
        let sum_dy: f64 = (0..dy.len()).filter(|&k| on(k)).map(|k| dy[k]).sum();
        (0..dy.len())
            .map(|k| {
                if on(k) {
                    (dy[k] - point.y[k] * sum_dy) / tau
                } else {
                    0.0
                }
            })
            .collect()
    } else {
        let dot: f64 = (0..dy.len())
            .filter(|&k| on(k))
            .map(|k| dy[k] * point.y[k])
            .sum();
        (0..dy.len())
            .map(|k| {
                if on(k) {
                    point.y[k] * (dy[k] - dot) / tau
                } else {
                    0.0
                }
            })
            .collect()
    };
    let dtau = -point
        .w
        .iter()
        .zip(&dl)
        .filter_map(|(w, d)| w.map(|w| w * d))
        .sum::<f64>();
    RowGradient { dl, dtau }
}

/// The JVP of a row (docs/contract.md, section 1): the tangent of the output of `mode` for tangents
/// `dl` of the logits and `dtau` of the temperature.
pub fn jvp(point: &SamplePoint, tau: f64, mode: Mode, dl: &[f64], dtau: f64) -> Vec<f64> {
    let zdot: Vec<Option<f64>> = point
        .w
        .iter()
        .zip(dl)
        .map(|(w, d)| w.map(|w| (d - w * dtau) / tau))
        .collect();
    let dot: f64 = zdot
        .iter()
        .zip(&point.y)
        .filter_map(|(z, y)| z.map(|z| z * y))
        .sum();
    zdot.iter()
        .zip(&point.y)
        .map(|(z, y)| match (z, mode) {
            (None, _) => 0.0,
            (Some(z), Mode::LogSoft) => z - dot,
            (Some(z), _) => y * (z - dot),
        })
        .collect()
}

/// The VJP of one row, with the sample recomputed from the logits and the noise of flat
/// elements `first ..` (the kernels' recompute mode).
pub fn vjp_row(
    logits: &[f32],
    tau: f32,
    seed: u64,
    first: u64,
    mode: Mode,
    dy: &[f64],
) -> Result<RowGradient, NoSample> {
    let z = scaled_row(logits, tau, seed, first, mode)?;
    Ok(vjp(&SamplePoint::from_z(&z), f64::from(tau), mode, dy))
}

/// The JVP of one row, with the sample recomputed as in [`vjp_row`].
#[allow(clippy::too_many_arguments)]
pub fn jvp_row(
    logits: &[f32],
    tau: f32,
    seed: u64,
    first: u64,
    mode: Mode,
    dl: &[f64],
    dtau: f64,
) -> Result<Vec<f64>, NoSample> {
    let z = scaled_row(logits, tau, seed, first, mode)?;
    Ok(jvp(
        &SamplePoint::from_z(&z),
        f64::from(tau),
        mode,
        dl,
        dtau,
    ))
}

/// The token sampler's draw for one row ([`crate::SampleTokensCall`]), in f64 on the same
/// random words.
#[derive(Clone, Debug, PartialEq)]
pub struct TokenDraw {
    /// The token.
    pub token: u32,
    /// Its log-probability under `softmax(x)` of the logits as given.
    pub raw_logprob: f64,
    /// Its log-probability under the distribution it was drawn from (0 for a greedy row).
    pub sampled_logprob: f64,
    /// The kept columns, most likely first (the argmax alone for a greedy row).
    pub kept: Vec<u32>,
    /// Their probabilities under the renormalised filtered distribution.
    pub probs: Vec<f64>,
    /// `l / tau + g` of the token less that of the runner-up among the kept (infinite with one
    /// kept column, or for a greedy row): f32 arithmetic may swap them when this is tiny.
    pub gumbel_gap: f64,
    /// Every token the draw gives when each filter's threshold moves by up to the `slack` of
    /// [`sample_token_row_near`]: min-p's by that share of `min_p`, top-p's by that share of
    /// the total, top-k's (with a cap or a bias, whose f32 sums may round logits apart) by that
    /// much in `l`. Just the token where no decision is that close.
    pub near_tokens: Vec<u32>,
    /// The fewest and the most entries the filters keep with the thresholds moved so.
    pub kept_near: (usize, usize),
}

impl TokenDraw {
    /// The first `n` kept columns and their log-probabilities under the distribution the token
    /// is drawn from: the top entries `SampleTokensCall::with_top_logprobs` writes when asked
    /// for processed ones.
    pub fn processed_top(&self, n: usize) -> Vec<(u32, f64)> {
        self.kept
            .iter()
            .zip(&self.probs)
            .take(n)
            .map(|(&c, p)| (c, p.ln()))
            .collect()
    }
}

/// The `n` most likely columns of logits `x` under `softmax(x)` (larger `x` first, then the
/// lower column; -0.0 and +0.0 one value) and their log-probabilities, over the finite logits:
/// the top entries of the token sampler's `with_top_logprobs`.
pub fn raw_top_logprobs(x: &[f32], n: usize) -> Vec<(u32, f64)> {
    let mut finite: Vec<(f64, u32)> = x
        .iter()
        .enumerate()
        .filter(|(_, v)| v.is_finite())
        .map(|(k, &v)| (f64::from(v) + 0.0, k as u32))
        .collect();
    let Some(max) = finite.iter().map(|e| e.0).reduce(f64::max) else {
        return Vec::new();
    };
    let log_sum = max + finite.iter().map(|e| (e.0 - max).exp()).sum::<f64>().ln();
    finite.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    finite
        .into_iter()
        .take(n)
        .map(|(v, k)| (k, v - log_sum))
        .collect()
}

/// The token sampler's draw for one row of logits `x`, with `bias` (K values, or none), the
/// row's settings, and its random state (column `k` takes word `state.offset + k` of
/// `state.seed`'s stream).
pub fn sample_token_row(
    x: &[f32],
    bias: Option<&[f32]>,
    settings: &TokenSettings,
    state: RandomState,
) -> Result<TokenDraw, NoSample> {
    sample_token_row_near(x, bias, settings, state, NoiseRange::Standard, 0.0)
}

/// [`sample_token_row`] with the noise of `range`, and the tokens that thresholds moved by
/// `slack` would give ([`TokenDraw::near_tokens`]): what a test allows f32 arithmetic.
pub fn sample_token_row_near(
    x: &[f32],
    bias: Option<&[f32]>,
    settings: &TokenSettings,
    state: RandomState,
    range: NoiseRange,
    slack: f64,
) -> Result<TokenDraw, NoSample> {
    let processing = RowProcessing {
        bias,
        ..RowProcessing::default()
    };
    sample_processed_token_row(x, &processing, settings, state, range, slack)
}

/// What the token sampler applies to one row's logits besides its settings' filters.
#[derive(Clone, Copy, Debug, Default)]
pub struct RowProcessing<'a> {
    /// The dense bias: K values.
    pub bias: Option<&'a [f32]>,
    /// The row's token list (sparse bias and penalties), in increasing token order.
    pub list: &'a [TokenEntry],
    /// The row's mask: ceil(K / 32) words, bit `v % 32` of word `v / 32` set where `v` is
    /// allowed.
    pub mask: Option<&'a [u32]>,
}

/// [`sample_token_row_near`] with a mask and a token list besides the dense bias: per column,
/// the soft cap, the mask (a ban), the dense bias, the entry's sparse bias, then the repetition
/// penalty (where the token was generated or is in the prompt), then the frequency and presence
/// penalties. The settings' `list_start`, `list_len` and `mask` are not read: the row's list and
/// mask are given.
pub fn sample_processed_token_row(
    x: &[f32],
    processing: &RowProcessing,
    settings: &TokenSettings,
    state: RandomState,
    range: NoiseRange,
    slack: f64,
) -> Result<TokenDraw, NoSample> {
    let cols = x.len() as u32;
    let refused = |e: crate::Error| NoSample::InvalidSettings(e.to_string());
    settings.check(0, cols).map_err(refused)?;
    TokenEntry::check_list(processing.list, 0, cols).map_err(refused)?;
    if processing
        .mask
        .is_some_and(|m| m.len() < crate::tokens::mask_words(cols) as usize)
    {
        return Err(NoSample::InvalidSettings(format!(
            "the mask has fewer than ceil(K / 32) = {} words",
            crate::tokens::mask_words(cols)
        )));
    }
    let bias = processing.bias;
    let cap = f64::from(settings.soft_cap);
    let repetition = f64::from(settings.repetition());
    let mut listed = processing.list.iter().peekable();
    let mut entries: Vec<(f64, u32)> = Vec::new();
    let mut raw = Vec::new();
    for (k, &xk) in x.iter().enumerate() {
        let entry = listed.next_if(|e| e.token as usize == k);
        if xk.is_nan() || xk == f32::INFINITY {
            return Err(NoSample::InvalidLogit(k));
        }
        if xk == f32::NEG_INFINITY {
            continue;
        }
        let xk = f64::from(xk);
        raw.push(xk);
        let c = if cap > 0.0 {
            cap * (xk / cap).tanh()
        } else {
            xk
        };
        if processing
            .mask
            .is_some_and(|m| m[k / 32] >> (k % 32) & 1 == 0)
        {
            continue;
        }
        let b = bias.map_or(0.0, |b| f64::from(b[k]));
        if b == f64::NEG_INFINITY {
            continue;
        }
        let mut l = c + b;
        if let Some(e) = entry {
            if e.bias == f32::NEG_INFINITY {
                continue;
            }
            l += f64::from(e.bias);
            if e.count > 0 || e.in_prompt != 0 {
                l = if l > 0.0 {
                    l / repetition
                } else {
                    l * repetition
                };
            }
            l -= f64::from(settings.frequency_penalty) * f64::from(e.count);
            if e.count > 0 {
                l -= f64::from(settings.presence_penalty);
            }
        }
        if !l.is_finite() {
            return Err(NoSample::InvalidLogit(k));
        }
        // + 0.0: -0.0 and +0.0 are one value, ordered by column.
        entries.push((l + 0.0, k as u32));
    }
    if entries.is_empty() {
        return Err(NoSample::AllMasked);
    }
    let raw_max = raw.iter().copied().fold(f64::NEG_INFINITY, f64::max);
    let log_sum = raw_max + raw.iter().map(|v| (v - raw_max).exp()).sum::<f64>().ln();
    let raw_logprob = |token: u32| f64::from(x[token as usize]) - log_sum;
    // The row's order: the larger l, then the lower column.
    entries.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    let top = entries[0].1;
    // With a cap, a bias or a list, the kernel's f32 l may round apart from these.
    let inexact_l = cap > 0.0 || bias.is_some() || !processing.list.is_empty();
    if settings.is_greedy() {
        let mut near_tokens = vec![top];
        // With a cap or a bias, a runner-up within `slack` may round level with the top.
        if inexact_l && entries.len() > 1 && entries[0].0 - entries[1].0 < slack {
            near_tokens.push(entries[1].1);
        }
        return Ok(TokenDraw {
            token: top,
            raw_logprob: raw_logprob(top),
            sampled_logprob: 0.0,
            kept: vec![top],
            probs: vec![1.0],
            gumbel_gap: f64::INFINITY,
            near_tokens,
            kept_near: (1, 1),
        });
    }
    let row = FilteredRow {
        tau: f64::from(settings.temperature),
        w: entries
            .iter()
            .map(|e| ((e.0 - entries[0].0) / f64::from(settings.temperature)).exp())
            .collect(),
        entries,
        settings: *settings,
        inexact_l,
    };
    let n = row.kept(0.0);
    // Scores relative to the largest l, so that the noise keeps its digits however large
    // l / tau is (the draw is the same: a shift of every score).
    let top_l = row.entries[0].0;
    let perturbed = |i: usize| {
        let (l, k) = row.entries[i];
        let g = gumbel_at(range, state.seed, state.offset.wrapping_add(k.into()));
        (l - top_l) / row.tau + g
    };
    // Gumbel-max over each prefix from the fewest entries any moved threshold keeps to the
    // most: the winners along the way are the near tokens.
    let (fewest, most) = (row.kept(slack).min(n), row.kept(-slack).max(n));
    let values: Vec<f64> = (0..most).map(perturbed).collect();
    let mut best = 0;
    let mut near_tokens = Vec::new();
    let mut token = None;
    for i in 0..most {
        if values[i] > values[best] {
            best = i;
        }
        if i + 1 >= fewest && !near_tokens.contains(&row.entries[best].1) {
            near_tokens.push(row.entries[best].1);
        }
        if i + 1 == n {
            token = Some(best);
        }
    }
    let token = token.unwrap_or(0);
    let runner_up = (0..n)
        .filter(|&i| i != token)
        .map(|i| values[i])
        .fold(f64::NEG_INFINITY, f64::max);
    let kept_total: f64 = row.w[..n].iter().sum();
    Ok(TokenDraw {
        token: row.entries[token].1,
        raw_logprob: raw_logprob(row.entries[token].1),
        sampled_logprob: (row.w[token] / kept_total).ln(),
        kept: row.entries[..n].iter().map(|e| e.1).collect(),
        probs: row.w[..n].iter().map(|w| w / kept_total).collect(),
        gumbel_gap: values[token] - runner_up,
        near_tokens,
        kept_near: (fewest, most),
    })
}

/// A row's valid entries in order, with their weights, for the filters.
struct FilteredRow {
    entries: Vec<(f64, u32)>,
    w: Vec<f64>,
    tau: f64,
    settings: TokenSettings,
    /// Whether the kernels' l may differ from the reference's beyond ties (a cap or a bias).
    inexact_l: bool,
}

impl FilteredRow {
    /// Top-n-sigma's least weight, `exp(-n sigma / tau)` with sigma the standard deviation of
    /// the row's valid l (divided by their count); 0 without the filter.
    fn sigma_least_weight(&self) -> f64 {
        let n_sigma = f64::from(self.settings.top_n_sigma);
        if n_sigma == 0.0 {
            return 0.0;
        }
        let count = self.entries.len() as f64;
        let mean = self.entries.iter().map(|e| e.0).sum::<f64>() / count;
        let variance = self
            .entries
            .iter()
            .map(|e| (e.0 - mean).powi(2))
            .sum::<f64>()
            / count;
        (-n_sigma * variance.sqrt() / self.tau).exp()
    }

    /// How many entries the filters keep, each threshold moved by `slack` against keeping
    /// (negative: towards keeping).
    fn kept(&self, slack: f64) -> usize {
        let s = &self.settings;
        let mut n = self.entries.len();
        if s.top_k != TokenSettings::NO_TOP_K && (s.top_k as usize) < n {
            let k = s.top_k as usize;
            n = k;
            let (last, first_out) = (self.entries[k - 1].0, self.entries[k].0);
            let a = slack.abs();
            // Entries within `slack` in l of the cut may round to either side of it.
            if self.inexact_l && last - first_out < a {
                let above = |bound: f64| self.entries.iter().take_while(|e| e.0 > bound).count();
                n = if slack > 0.0 {
                    above(first_out + a).clamp(1, k)
                } else {
                    above(last - a).max(k)
                };
            }
        }
        // Min-p and top-n-sigma: the larger of their least weights (top-n-sigma's
        // l >= max - n sigma is w >= exp(-n sigma / tau)).
        let least = f64::from(s.min_p).max(self.sigma_least_weight()) * (1.0 + slack);
        if least > 0.0 {
            n = n.min(self.w.iter().take_while(|&&w| w >= least).count().max(1));
        }
        let top_p = f64::from(s.top_p) - slack;
        if s.top_p < 1.0 {
            let total: f64 = self.w[..n].iter().sum();
            let mut before = 0.0;
            for (i, w) in self.w[..n].iter().enumerate() {
                if i > 0 && before >= top_p * total {
                    n = i;
                    break;
                }
                before += w;
            }
        }
        n
    }
}

/// One position of a request's verification ([`verify_drafts`]): the target model's logits
/// there, what the token sampler applies to them, and the row's settings. Each position has its
/// own, since penalties and grammar masks move on with each draft token before it.
#[derive(Clone, Copy, Debug)]
pub struct TargetRow<'a> {
    /// The target's K logits at this position.
    pub logits: &'a [f32],
    /// The dense bias, token list and mask of the position.
    pub processing: RowProcessing<'a>,
    /// Its temperature, filters and penalties.
    pub settings: TokenSettings,
}

/// The outcome of verifying a request's draft tokens ([`verify_drafts`]).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct DraftVerdict {
    /// How many drafts were accepted, in order from the first.
    pub accepted: usize,
    /// The tokens emitted: the accepted drafts, then the token drawn at the first rejection
    /// (or the bonus token after the last draft): `accepted + 1` of them. Where a position's
    /// distribution has no token (every token banned, or a NaN or +inf logit), its token is
    /// `u32::MAX` and nothing follows it.
    pub tokens: Vec<u32>,
    /// Their log-probabilities under the target's distribution at their positions (NaN for a
    /// position without a token).
    pub logprobs: Vec<f64>,
}

/// The uniform in (0, 1) that decides draft `i` of a request of `drafts` drafts over rows of
/// `cols` logits: from element `offset + (drafts + 1) K + i` of the request's stream, after the
/// elements of its `drafts + 1` positions; its first word (word `2n` of element `n` with
/// [`NoiseRange::Wide`]) as `(x + 0.5) 2^-32`.
pub fn acceptance_uniform(
    state: RandomState,
    cols: u32,
    drafts: usize,
    i: usize,
    range: NoiseRange,
) -> f64 {
    let at = (drafts as u64 + 1) * u64::from(cols) + i as u64;
    let element = state.offset.wrapping_add(at);
    let word = match range {
        NoiseRange::Standard => element,
        NoiseRange::Wide => element.wrapping_mul(2),
    };
    (f64::from(noise_word(state.seed, word)) + 0.5) * 2f64.powi(-32)
}

/// Speculative decoding's verification of one request, in f64 on the same random words as the
/// kernels (Leviathan et al. 2023; Chen et al. 2023): draft `i` is accepted with probability
/// `min(1, p_i(d_i) / q_i(d_i))` (`u_i q_i(d_i) < p_i(d_i)` with `u_i` from
/// [`acceptance_uniform`]), where `p_i` is the distribution the token sampler draws from at
/// target position `i` (its settings and processing) and `q_i` the draft's probabilities there
/// (`draft_probs[i]`; without them, a draft given without probabilities, as a greedy draft
/// model's or an n-gram lookup's, has `q_i` one at `d_i`). At the first rejection the token is
/// drawn from `max(0, p_i - q_i)` renormalised, by Gumbel-max over `ln(p_j - q_j) + g_j`; after
/// the last draft the bonus token is drawn from `p_n`. Position `i`'s noise is that of a sampler
/// row with state `(seed, offset + i K)`, so the emitted tokens are distributed exactly as the
/// target alone would sample them. A draft `p_i` bans is never accepted; where the residual is
/// empty (a rejection of probability 0, as `p_i = q_i`), the token is `p_i`'s own draw. A
/// greedy target (temperature below the greedy threshold) accepts exactly the drafts equal to
/// its argmax and then emits the argmax.
///
/// Refused (`NoSample::InvalidSettings`, naming the argument): `targets` not one longer than
/// `drafts`, rows of different lengths, a draft id `>= K`, `draft_probs` not one row of K per
/// draft, or a row of them that is not a distribution (a negative or non-finite entry, or a
/// sum more than 1e-3 from 1); and settings the sampler refuses.
pub fn verify_drafts(
    targets: &[TargetRow],
    drafts: &[u32],
    draft_probs: Option<&[&[f32]]>,
    state: RandomState,
    range: NoiseRange,
) -> Result<DraftVerdict, NoSample> {
    let refused = |m: String| Err(NoSample::InvalidSettings(m));
    let n = drafts.len();
    if targets.len() != n + 1 {
        return refused(format!(
            "targets: {} rows for {n} drafts; one more than the drafts is needed",
            targets.len()
        ));
    }
    let cols = targets[0].logits.len();
    if let Some(i) = targets.iter().position(|t| t.logits.len() != cols) {
        return refused(format!("targets[{i}]: not K = {cols} logits"));
    }
    if let Some(i) = drafts.iter().position(|&d| d as usize >= cols) {
        return refused(format!("drafts[{i}] = {}: not below K = {cols}", drafts[i]));
    }
    if let Some(q) = draft_probs {
        if q.len() != n {
            return refused(format!("draft_probs: {} rows for {n} drafts", q.len()));
        }
        for (i, row) in q.iter().enumerate() {
            let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
            let bad = row.len() != cols
                || row.iter().any(|v| !v.is_finite() || *v < 0.0)
                || (sum - 1.0).abs() > 1e-3;
            if bad {
                return refused(format!(
                    "draft_probs[{i}]: not a distribution over K = {cols} tokens"
                ));
            }
        }
    }
    let mut verdict = DraftVerdict::default();
    for (i, target) in targets.iter().enumerate() {
        let position = RandomState {
            seed: state.seed,
            offset: state.offset.wrapping_add(i as u64 * cols as u64),
        };
        let draw = match sample_processed_token_row(
            target.logits,
            &target.processing,
            &target.settings,
            position,
            range,
            0.0,
        ) {
            Ok(draw) => draw,
            Err(NoSample::AllMasked | NoSample::InvalidLogit(_)) => {
                verdict.tokens.push(u32::MAX);
                verdict.logprobs.push(f64::NAN);
                return Ok(verdict);
            }
            Err(e) => return Err(e),
        };
        let p = |t: u32| {
            draw.kept
                .iter()
                .position(|&c| c == t)
                .map_or(0.0, |j| draw.probs[j])
        };
        let Some(&d) = drafts.get(i) else {
            // The bonus token.
            verdict.tokens.push(draw.token);
            verdict.logprobs.push(draw.sampled_logprob);
            return Ok(verdict);
        };
        let q = |t: u32| match draft_probs {
            Some(q) => f64::from(q[i][t as usize]),
            None => f64::from(u8::from(t == d)),
        };
        if acceptance_uniform(state, cols as u32, n, i, range) * q(d) < p(d) {
            verdict.accepted += 1;
            verdict.tokens.push(d);
            verdict.logprobs.push(p(d).ln());
            continue;
        }
        // The residual max(0, p - q) is zero wherever p is, so only kept tokens compete.
        let recovered = draw
            .kept
            .iter()
            .zip(&draw.probs)
            .filter(|&(&t, &pt)| pt > q(t))
            .map(|(&t, &pt)| {
                let g = gumbel_at(range, position.seed, position.offset.wrapping_add(t.into()));
                ((pt - q(t)).ln() + g, t)
            })
            .max_by(|a, b| a.0.total_cmp(&b.0).then(b.1.cmp(&a.1)))
            .map_or(draw.token, |(_, t)| t);
        verdict.tokens.push(recovered);
        verdict.logprobs.push(p(recovered).ln());
        return Ok(verdict);
    }
    Ok(verdict)
}

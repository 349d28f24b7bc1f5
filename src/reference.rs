//! The CPU reference: the same random words as the kernels, and f64 arithmetic from there on.
//! It is the oracle of the tests and a tool for users who check pipelines of their own.

use crate::philox::noise_word;
use crate::types::{Mode, Shape, check_tau};

/// The Gumbel(0, 1) noise of a 32-bit word, as exactly as f64 allows (SPEC section 2):
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

/// The Gumbel noise of flat elements `offset .. offset + count` of `seed`'s stream.
pub fn gumbel_noise(seed: u64, offset: u64, count: usize) -> Vec<f64> {
    (0..count as u64)
        .map(|i| gumbel_of_word(noise_word(seed, offset + i)))
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

/// `l + g` for each logit of a row whose first element has flat noise index `first`.
pub fn perturbed_row(logits: &[f32], seed: u64, first: u64) -> Vec<Perturbed> {
    logits
        .iter()
        .zip(first..)
        .map(|(&l, n)| {
            if l == f32::NEG_INFINITY {
                Perturbed::Masked
            } else if !l.is_finite() {
                Perturbed::Invalid
            } else {
                Perturbed::Value(f64::from(l) + gumbel_of_word(noise_word(seed, n)))
            }
        })
        .collect()
}

/// Why a row has no sample.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum NoSample {
    AllMasked,
    InvalidLogit(usize),
    InvalidTau,
}

impl std::fmt::Display for NoSample {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            NoSample::AllMasked => write!(f, "every logit is masked (-inf)"),
            NoSample::InvalidLogit(k) => write!(f, "logit {k} is NaN or +inf"),
            NoSample::InvalidTau => write!(f, "tau is not finite and positive"),
        }
    }
}

/// The sample of one row, in f64.
#[derive(Clone, Debug, PartialEq)]
pub enum RowSample {
    /// Soft, log-soft or hard values, one per column; log-soft has `-inf` at masked columns.
    Values(Vec<f64>),
    /// Index mode's category.
    Index(u32),
}

/// The forward pass of one row (SPEC section 1) with the noise of flat elements `first ..`.
pub fn forward_row(
    logits: &[f32],
    tau: f32,
    seed: u64,
    first: u64,
    mode: Mode,
) -> Result<RowSample, NoSample> {
    let perturbed = perturbed_row(logits, seed, first);
    if let Some(k) = perturbed.iter().position(|p| *p == Perturbed::Invalid) {
        return Err(NoSample::InvalidLogit(k));
    }
    if mode != Mode::Index && check_tau(tau).is_err() {
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
    // Lowest index among equal maxima.
    let (arg, m) = z
        .iter()
        .enumerate()
        .filter_map(|(k, v)| v.map(|v| (k, v)))
        .fold(None, |best: Option<(usize, f64)>, (k, v)| match best {
            Some((_, bv)) if bv >= v => best,
            _ => Some((k, v)),
        })
        .ok_or(NoSample::AllMasked)?;
    let sum: f64 = z.iter().flatten().map(|v| (v - m).exp()).sum();
    let values = match mode {
        Mode::Index => return Ok(RowSample::Index(arg as u32)),
        Mode::Soft => z
            .iter()
            .map(|v| v.map_or(0.0, |v| (v - m).exp() / sum))
            .collect(),
        Mode::LogSoft => z
            .iter()
            .map(|v| v.map_or(f64::NEG_INFINITY, |v| (v - m) - sum.ln()))
            .collect(),
        Mode::Hard => (0..z.len())
            .map(|k| if k == arg { 1.0 } else { 0.0 })
            .collect(),
    };
    Ok(RowSample::Values(values))
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
            let first = offset + r as u64 * u64::from(shape.cols);
            forward_row(&logits[start..start + cols], tau, seed, first, mode)
        })
        .collect()
}

//! A row's settings and a request's random state: what the token kernel reads per row, and
//! what the reference needs to draw the same token (so this sits below both).

use bytemuck::{Pod, Zeroable};

use crate::error::{Result, invalid};
use crate::shaders::{same_layout, token_settings as kernel};
use crate::types::split64;

/// One row's sampling settings, as the kernel reads them: 64 bytes a row, of which the six
/// fields take the first 24 (the rest is kept 0 for settings to come). An array of them in a
/// buffer starts at a multiple of 64 bytes.
#[repr(C)]
#[derive(Clone, Copy, PartialEq, Pod, Zeroable)]
#[non_exhaustive]
pub struct TokenSettings {
    /// The temperature: finite and at least 0; below [`TokenSettings::GREEDY_BELOW`] the row
    /// is greedy.
    pub temperature: f32,
    /// Keep the `top_k` most likely tokens, 1 to K; [`TokenSettings::NO_TOP_K`]: no top-k.
    pub top_k: u32,
    /// Keep the most likely tokens up to this share of the probability, in (0, 1]; 1: no top-p.
    pub top_p: f32,
    /// Keep the tokens at least this many times as likely as the most likely one, in [0, 1];
    /// 0: no min-p.
    pub min_p: f32,
    /// Soft-cap the logits to (-soft_cap, soft_cap), a finite value of at least 0; 0: no cap.
    pub soft_cap: f32,
    /// Keep the tokens whose (capped, biased) logit is at least the row's largest minus
    /// `top_n_sigma` standard deviations of its valid logits (top-n-sigma), a finite value of at
    /// least 0; 0: no top-n-sigma.
    pub top_n_sigma: f32,
    reserved: [u32; 10],
}
same_layout!(
    TokenSettings = TokenSettings {
        temperature,
        top_k,
        top_p,
        min_p,
        soft_cap,
        top_n_sigma,
        reserved
    }
);

// The reserved words are left out: they are always 0.
impl std::fmt::Debug for TokenSettings {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TokenSettings")
            .field("temperature", &self.temperature)
            .field("top_k", &self.top_k)
            .field("top_p", &self.top_p)
            .field("min_p", &self.min_p)
            .field("soft_cap", &self.soft_cap)
            .field("top_n_sigma", &self.top_n_sigma)
            .finish_non_exhaustive()
    }
}

impl TokenSettings {
    /// `top_k` for no top-k filter.
    pub const NO_TOP_K: u32 = kernel::NO_TOP_K;

    /// Temperatures below this (0 included) mean greedy decoding: the row's argmax.
    pub const GREEDY_BELOW: f32 = kernel::GREEDY_BELOW;

    /// Sampling at `temperature`, with no filter.
    pub fn new(temperature: f32) -> Self {
        Self {
            temperature,
            top_k: Self::NO_TOP_K,
            top_p: 1.0,
            min_p: 0.0,
            soft_cap: 0.0,
            top_n_sigma: 0.0,
            reserved: [0; 10],
        }
    }

    /// Greedy decoding: the argmax of the (capped, biased) logits.
    pub fn greedy() -> Self {
        Self::new(0.0)
    }

    /// With a top-k filter.
    pub fn with_top_k(self, top_k: u32) -> Self {
        Self { top_k, ..self }
    }

    /// With a top-p (nucleus) filter.
    pub fn with_top_p(self, top_p: f32) -> Self {
        Self { top_p, ..self }
    }

    /// With a min-p filter.
    pub fn with_min_p(self, min_p: f32) -> Self {
        Self { min_p, ..self }
    }

    /// With logit soft-capping.
    pub fn with_soft_cap(self, soft_cap: f32) -> Self {
        Self { soft_cap, ..self }
    }

    /// With a top-n-sigma filter.
    pub fn with_top_n_sigma(self, top_n_sigma: f32) -> Self {
        Self {
            top_n_sigma,
            ..self
        }
    }

    /// Whether the row is greedy.
    pub fn is_greedy(&self) -> bool {
        self.temperature < Self::GREEDY_BELOW
    }

    /// Checks the settings of row `row` for rows of `cols` logits; the error names the field.
    /// The kernel gives a row whose settings fail this no token (`u32::MAX`).
    pub fn check(&self, row: usize, cols: u32) -> Result<()> {
        let field = |name: &str, value: String, expected: &str| {
            Err(invalid(format!(
                "settings[{row}].{name} = {value}: {expected}"
            )))
        };
        if !(self.temperature.is_finite() && self.temperature >= 0.0) {
            return field(
                "temperature",
                self.temperature.to_string(),
                "finite and at least 0 (0 is greedy)",
            );
        }
        if self.top_k != Self::NO_TOP_K && !(1..=cols).contains(&self.top_k) {
            return field(
                "top_k",
                self.top_k.to_string(),
                &format!("1 to K = {cols}, or TokenSettings::NO_TOP_K"),
            );
        }
        if !(self.top_p > 0.0 && self.top_p <= 1.0) {
            return field("top_p", self.top_p.to_string(), "in (0, 1]");
        }
        if !(0.0..=1.0).contains(&self.min_p) {
            return field("min_p", self.min_p.to_string(), "in [0, 1]");
        }
        if !(self.soft_cap.is_finite() && self.soft_cap >= 0.0) {
            return field(
                "soft_cap",
                self.soft_cap.to_string(),
                "finite and at least 0 (0: no cap)",
            );
        }
        if !(self.top_n_sigma.is_finite() && self.top_n_sigma >= 0.0) {
            return field(
                "top_n_sigma",
                self.top_n_sigma.to_string(),
                "finite and at least 0 (0: no top-n-sigma)",
            );
        }
        Ok(())
    }
}

/// A request's random state: its Philox seed and the flat noise index of its column 0 (column
/// `k` takes the word at `offset + k`). Advance `offset` by at least K between steps.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Eq, Pod, Zeroable)]
pub struct RandomState {
    /// The stream's seed.
    pub seed: u64,
    /// The flat noise index of column 0.
    pub offset: u64,
}
same_layout!(RandomState = RandomState { seed, offset });

impl RandomState {
    /// The state as the kernel reads it: seed low, high, offset low, high.
    pub fn words(&self) -> [u32; 4] {
        let (seed, offset) = (split64(self.seed), split64(self.offset));
        [seed[0], seed[1], offset[0], offset[1]]
    }
}

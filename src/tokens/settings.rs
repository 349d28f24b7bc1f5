//! A row's settings and a request's random state: what the token kernel reads per row, and
//! what the reference needs to draw the same token (so this sits below both).

use bytemuck::{Pod, Zeroable};

use crate::error::{Result, invalid};
use crate::shaders::{same_layout, token_settings as kernel};
use crate::types::split64;

/// One row's sampling settings, as the kernel reads them: 64 bytes a row, of which the twelve
/// fields take the first 48 (the rest is kept 0 for settings to come: a zeroed word is always a
/// setting that is off). An array of them in a buffer starts at a multiple of 64 bytes.
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
    /// The repetition penalty of CTRL and Hugging Face for the listed tokens generated or in
    /// the prompt: a positive l is divided by it, another multiplied; finite and above 0, or 0
    /// (as 1: none).
    pub repetition_penalty: f32,
    /// OpenAI's frequency penalty: `frequency_penalty * count` is taken from a listed token's
    /// l (count: the times it was generated); finite, 0: none.
    pub frequency_penalty: f32,
    /// OpenAI's presence penalty, taken from the l of a listed token generated at least once;
    /// finite, 0: none.
    pub presence_penalty: f32,
    /// The first [`TokenEntry`] of the row's token list in the call's lists.
    pub list_start: u32,
    /// How many entries the row's token list has, in increasing token order, at most
    /// [`TokenSettings::LIST_LEN_MAX`]; 0: no list (no sparse bias, no penalties).
    pub list_len: u32,
    /// The index of the row's mask among the call's masks; [`TokenSettings::NO_MASK`]: none. A
    /// call without masks reads no row's mask.
    pub mask: u32,
    reserved: [u32; 4],
}
same_layout!(
    TokenSettings = TokenSettings {
        temperature,
        top_k,
        top_p,
        min_p,
        soft_cap,
        top_n_sigma,
        repetition_penalty,
        frequency_penalty,
        presence_penalty,
        list_start,
        list_len,
        mask,
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
            .field("repetition_penalty", &self.repetition_penalty)
            .field("frequency_penalty", &self.frequency_penalty)
            .field("presence_penalty", &self.presence_penalty)
            .field("list_start", &self.list_start)
            .field("list_len", &self.list_len)
            .field("mask", &self.mask)
            .finish_non_exhaustive()
    }
}

impl TokenSettings {
    /// `top_k` for no top-k filter.
    pub const NO_TOP_K: u32 = kernel::NO_TOP_K;

    /// Temperatures below this (0 included) mean greedy decoding: the row's argmax.
    pub const GREEDY_BELOW: f32 = kernel::GREEDY_BELOW;

    /// `mask` for no mask.
    pub const NO_MASK: u32 = kernel::NO_MASK;

    /// The longest token list a row may have.
    pub const LIST_LEN_MAX: u32 = kernel::LIST_LEN_MAX;

    /// Sampling at `temperature`, with no filter.
    pub fn new(temperature: f32) -> Self {
        Self {
            temperature,
            top_k: Self::NO_TOP_K,
            top_p: 1.0,
            min_p: 0.0,
            soft_cap: 0.0,
            top_n_sigma: 0.0,
            repetition_penalty: 1.0,
            frequency_penalty: 0.0,
            presence_penalty: 0.0,
            list_start: 0,
            list_len: 0,
            mask: Self::NO_MASK,
            reserved: [0; 4],
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

    /// With the penalties of OpenAI (`frequency`, `presence`: 0 for none) and of CTRL
    /// (`repetition`: 1 for none), which apply to the tokens of the row's list.
    pub fn with_penalties(self, repetition: f32, frequency: f32, presence: f32) -> Self {
        Self {
            repetition_penalty: repetition,
            frequency_penalty: frequency,
            presence_penalty: presence,
            ..self
        }
    }

    /// With the token list of `len` entries from entry `start` of the call's lists.
    pub fn with_list(self, start: u32, len: u32) -> Self {
        Self {
            list_start: start,
            list_len: len,
            ..self
        }
    }

    /// With mask `mask` of the call's masks.
    pub fn with_mask(self, mask: u32) -> Self {
        Self { mask, ..self }
    }

    /// The repetition penalty as applied: 0 is 1.
    pub(crate) fn repetition(&self) -> f32 {
        if self.repetition_penalty == 0.0 {
            1.0
        } else {
            self.repetition_penalty
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
        let r = self.repetition_penalty;
        if !(r.is_finite() && r >= 0.0) {
            return field(
                "repetition_penalty",
                r.to_string(),
                "finite and above 0 (1, or 0: none)",
            );
        }
        if !self.frequency_penalty.is_finite() {
            return field(
                "frequency_penalty",
                self.frequency_penalty.to_string(),
                "finite (0: none)",
            );
        }
        if !self.presence_penalty.is_finite() {
            return field(
                "presence_penalty",
                self.presence_penalty.to_string(),
                "finite (0: none)",
            );
        }
        if self.list_len > Self::LIST_LEN_MAX {
            return field(
                "list_len",
                self.list_len.to_string(),
                &format!(
                    "at most TokenSettings::LIST_LEN_MAX = {}",
                    Self::LIST_LEN_MAX
                ),
            );
        }
        Ok(())
    }

    /// Checks the row's token list window and mask against the call's `lists` and `masks`
    /// (how many masks it has); the error names the field, or the entry and its field.
    pub fn check_processing(
        &self,
        row: usize,
        cols: u32,
        lists: &[TokenEntry],
        masks: u32,
    ) -> Result<()> {
        let (start, len) = (self.list_start as usize, self.list_len as usize);
        if len > 0 {
            if start + len > lists.len() {
                return Err(invalid(format!(
                    "settings[{row}]: list_start = {start} and list_len = {len} reach past the {} list entries given",
                    lists.len()
                )));
            }
            TokenEntry::check_list(&lists[start..start + len], start, cols)?;
        }
        if masks > 0 && self.mask != Self::NO_MASK && self.mask >= masks {
            return Err(invalid(format!(
                "settings[{row}].mask = {}: {masks} masks given (TokenSettings::NO_MASK: none)",
                self.mask
            )));
        }
        if masks == 0 && self.mask != Self::NO_MASK {
            return Err(invalid(format!(
                "settings[{row}].mask = {}: no masks given (TokenSettings::NO_MASK: none)",
                self.mask
            )));
        }
        Ok(())
    }
}

/// One token of a row's token list (sparse bias and penalties), 16 bytes; a row's list is a
/// window of an array of them, in increasing `token` order. An array of them in a buffer starts
/// at a multiple of 16 bytes.
#[repr(C)]
#[derive(Clone, Copy, Debug, PartialEq, Pod, Zeroable)]
pub struct TokenEntry {
    /// The token, below K.
    pub token: u32,
    /// How many times it was generated (the frequency and presence penalties; with
    /// `in_prompt`, the repetition penalty).
    pub count: u32,
    /// Added to its l before the penalties (OpenAI's `logit_bias`); -inf bans it; not NaN or
    /// +inf.
    pub bias: f32,
    /// 1 where the token is in the prompt (the repetition penalty applies however many times
    /// it was generated), else 0.
    pub in_prompt: u32,
}
same_layout!(
    TokenEntry = TokenEntry {
        token,
        count,
        bias,
        in_prompt
    }
);

impl TokenEntry {
    /// `token`, generated `count` times, not in the prompt, with no bias.
    pub fn new(token: u32, count: u32) -> Self {
        Self {
            token,
            count,
            bias: 0.0,
            in_prompt: 0,
        }
    }

    /// With a sparse bias.
    pub fn with_bias(self, bias: f32) -> Self {
        Self { bias, ..self }
    }

    /// Marked as in the prompt, or not.
    pub fn in_prompt(self, in_prompt: bool) -> Self {
        Self {
            in_prompt: u32::from(in_prompt),
            ..self
        }
    }

    /// Checks one row's list, whose first entry is entry `first` of the call's lists: tokens
    /// below `cols` in increasing order, biases not NaN or +inf, `in_prompt` 0 or 1.
    pub fn check_list(list: &[TokenEntry], first: usize, cols: u32) -> Result<()> {
        for (i, e) in list.iter().enumerate() {
            let at = first + i;
            if e.token >= cols {
                return Err(invalid(format!(
                    "lists[{at}].token = {}: at least K = {cols}",
                    e.token
                )));
            }
            if i > 0 && list[i - 1].token >= e.token {
                return Err(invalid(format!(
                    "lists[{at}].token = {} follows {}: a row's list is in increasing token order, each token once",
                    e.token,
                    list[i - 1].token
                )));
            }
            if e.bias.is_nan() || e.bias == f32::INFINITY {
                return Err(invalid(format!(
                    "lists[{at}].bias = {}: finite, or -inf to ban",
                    e.bias
                )));
            }
            if e.in_prompt > 1 {
                return Err(invalid(format!(
                    "lists[{at}].in_prompt = {}: 0 or 1",
                    e.in_prompt
                )));
            }
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

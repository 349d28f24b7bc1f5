//! The host-slice form of the tokens calls: slices in, `Vec` out, on a [`GpuContext`].

use super::*;
use crate::context::GpuContext;
use crate::error::{Result, invalid};
use crate::host::byte_size;
use crate::kernels::GpuSlice;
use crate::row::{Strategy, with_noise_range, with_strategy};
use crate::types::{Element, NoiseRange, Shape};

/// Where the rows of a host-slice token-sampler call take their noise ([`TokenNoise`]).
#[derive(Clone, Copy, Debug)]
pub enum HostTokenNoise<'a> {
    /// One stream: row `r`, column `k` at flat index `offset + r*K + k`.
    Call {
        /// The seed.
        seed: u64,
        /// Flat noise index of row 0, column 0.
        offset: u64,
    },
    /// Row `r` takes `states[r]`.
    PerRow(&'a [RandomState]),
    /// Row `r` takes `states[index[r]]`.
    Indexed {
        /// The requests' states.
        states: &'a [RandomState],
        /// One entry per row.
        index: &'a [u32],
    },
}

/// The arguments of a host-slice token-sampler call besides the logits.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct TokenArgs<'a> {
    /// K, the logits per row (rows = `settings.len()`, dense).
    pub cols: u32,
    /// One per row.
    pub settings: &'a [TokenSettings],
    /// The noise.
    pub noise: HostTokenNoise<'a>,
    /// K values for every row, or `rows * K`.
    pub bias: Option<&'a [f32]>,
    /// The token lists that the rows' settings name windows of (`list_start`, `list_len`).
    pub lists: Option<&'a [TokenEntry]>,
    /// Masks of [`mask_words`]`(K)` words each, that the rows' settings name (`mask`).
    pub masks: Option<&'a [u32]>,
    /// Whether to return log-probabilities.
    pub logprobs: bool,
    /// How many of each row's most likely tokens to return with their log-probabilities
    /// under `softmax(x)`, up to [`TOP_LOGPROBS_MAX`]; 0: none.
    pub top_logprobs: u32,
    /// Whether to return as many under the distribution each token is drawn from.
    pub top_processed: bool,
    /// One word of noise an element, or two (docs/contract.md, section 2).
    pub noise_range: NoiseRange,
    /// `None`: [`choose_sample_tokens`](crate::choose_sample_tokens).
    pub strategy: Option<Strategy>,
}

impl<'a> TokenArgs<'a> {
    /// Rows of `cols` logits with their `settings` and per-row `states`; no bias, no
    /// log-probabilities.
    pub fn new(cols: u32, settings: &'a [TokenSettings], states: &'a [RandomState]) -> Self {
        Self {
            cols,
            settings,
            noise: HostTokenNoise::PerRow(states),
            bias: None,
            lists: None,
            masks: None,
            logprobs: false,
            top_logprobs: 0,
            top_processed: false,
            noise_range: NoiseRange::Standard,
            strategy: None,
        }
    }

    /// Where the rows take their noise.
    pub fn with_noise(self, noise: HostTokenNoise<'a>) -> Self {
        Self { noise, ..self }
    }

    /// With each row's `n` most likely tokens under `softmax(x)` and, if `processed`, under
    /// the distribution its token is drawn from (and the log-probabilities on).
    pub fn with_top_logprobs(self, n: u32, processed: bool) -> Self {
        Self {
            top_logprobs: n,
            top_processed: processed,
            logprobs: true,
            ..self
        }
    }
}

with_noise_range!(TokenArgs);
with_host_row_inputs!(TokenArgs);
with_strategy!(TokenArgs);

/// The result of a host-slice token-sampler call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokens {
    /// One per row; `u32::MAX` for a row without a token (a NaN or +inf logit, every token
    /// masked or banned).
    pub tokens: Vec<u32>,
    /// Per row, if asked for: the token's log-probability under `softmax(x)` and under the
    /// distribution it was drawn from (NaN for a row without a token).
    pub logprobs: Vec<[f32; 2]>,
    /// Per row, if asked for: its most likely tokens under `softmax(x)`, most likely first
    /// (fewer where the row has fewer valid tokens; none for a row without a token).
    pub top: Vec<Vec<TopLogprob>>,
    /// Per row, if asked for: its most likely tokens under the distribution its token is drawn
    /// from (fewer where the filters keep fewer).
    pub top_processed: Vec<Vec<TopLogprob>>,
}

/// A token and its log-probability.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct TopLogprob {
    /// The token.
    pub token: u32,
    /// Its log-probability.
    pub logprob: f32,
}

/// The rows of a host-slice call of the family, checked and uploaded: the logits, one
/// settings entry a row, and the bias, token lists and masks the rows take.
pub(super) struct UploadedRows {
    pub shape: Shape,
    pub logits: wgpu::Buffer,
    pub settings: wgpu::Buffer,
    bias: Option<(wgpu::Buffer, bool)>,
    /// The entries, their count and the longest row's list.
    lists: Option<(wgpu::Buffer, u32, u32)>,
    masks: Option<(wgpu::Buffer, u32)>,
}

impl UploadedRows {
    pub fn bias(&self) -> Option<TokenBias<'_>> {
        self.bias.as_ref().map(|(values, per_row)| TokenBias {
            values: GpuSlice::from(values),
            per_row: *per_row,
        })
    }

    pub fn lists(&self) -> Option<TokenLists<'_>> {
        self.lists.as_ref().map(|(entries, count, longest)| {
            TokenLists::new(GpuSlice::from(entries), *count).with_longest(*longest)
        })
    }

    pub fn masks(&self) -> Option<TokenMasks<'_>> {
        self.masks.as_ref().map(|(words, count)| TokenMasks {
            words: GpuSlice::from(words),
            count: *count,
        })
    }
}

impl GpuContext {
    /// Checks rows of `cols` logits (one a settings entry) with their bias, token lists and
    /// masks, naming what is wrong, and uploads them.
    pub(super) fn upload_token_rows<T: Element>(
        &self,
        logits: &[T],
        cols: u32,
        settings: &[TokenSettings],
        bias: Option<&[f32]>,
        lists: Option<&[TokenEntry]>,
        masks: Option<&[u32]>,
    ) -> Result<UploadedRows> {
        let rows = u32::try_from(settings.len())
            .map_err(|_| invalid(format!("{} rows: at most 2^32 - 1", settings.len())))?;
        let shape = Shape::new(rows, cols);
        shape.validate()?;
        let cells = rows as usize * cols as usize;
        if logits.len() != cells {
            return Err(invalid(format!(
                "{} logits given; {rows} rows (one per settings entry) of K = {cols} take {cells}",
                logits.len(),
            )));
        }
        let words = mask_words(cols) as usize;
        let mask_count = match masks {
            None => 0,
            Some(masks) if !masks.is_empty() && masks.len().is_multiple_of(words) => {
                u32::try_from(masks.len() / words)
                    .map_err(|_| invalid(format!("{} masks: at most 2^32 - 2", masks.len())))?
            }
            Some(masks) => {
                return Err(invalid(format!(
                    "{} mask words given: masks of K = {cols} take ceil(K / 32) = {words} words each",
                    masks.len(),
                )));
            }
        };
        let entries = lists.unwrap_or(&[]);
        if lists.is_some() && entries.is_empty() {
            return Err(invalid("an empty token list array given: give None"));
        }
        let list_count = u32::try_from(entries.len())
            .map_err(|_| invalid(format!("{} list entries: at most 2^32 - 1", entries.len())))?;
        for (r, settings) in settings.iter().enumerate() {
            settings.check(r, cols)?;
            settings.check_processing(r, cols, entries, mask_count)?;
        }
        // The kernels' worst case grows with the bits of the longest list, so all its bits
        // set: a row's workgroup width then changes with the batch's other lists only where
        // their length gains a bit.
        let longest_list = match settings.iter().map(|s| s.list_len).max().unwrap_or(0) {
            0 => 0,
            longest => u32::MAX >> longest.leading_zeros(),
        };
        let per_row_bias = match bias {
            None => false,
            Some(bias) if bias.len() == cols as usize => false,
            Some(bias) if bias.len() == cells => true,
            Some(bias) => {
                return Err(invalid(format!(
                    "{} bias values given: K = {cols} for every row, or {cells} for {rows} rows",
                    bias.len(),
                )));
            }
        };
        Ok(UploadedRows {
            shape,
            logits: self.upload(logits)?,
            settings: self.upload(settings)?,
            bias: bias
                .map(|b| Ok::<_, crate::Error>((self.upload(b)?, per_row_bias)))
                .transpose()?,
            lists: lists
                .map(|l| Ok::<_, crate::Error>((self.upload(l)?, list_count, longest_list)))
                .transpose()?,
            masks: masks
                .map(|m| Ok::<_, crate::Error>((self.upload(m)?, mask_count)))
                .transpose()?,
        })
    }

    /// The token sampler ([`SampleTokensCall`]) on host slices. Every argument is checked
    /// first (errors name it); a row whose logits leave no token gets `u32::MAX` instead of
    /// failing the batch.
    pub async fn sample_tokens_async<T: Element>(
        &self,
        logits: &[T],
        args: &TokenArgs<'_>,
    ) -> Result<Tokens> {
        let uploaded = self.upload_token_rows(
            logits,
            args.cols,
            args.settings,
            args.bias,
            args.lists,
            args.masks,
        )?;
        let shape = uploaded.shape;
        let rows = shape.rows;
        let upload_states = |states: &[RandomState]| self.upload(states);
        let (states, index) = match args.noise {
            HostTokenNoise::Call { .. } => (None, None),
            HostTokenNoise::PerRow(states) => {
                if states.len() != rows as usize {
                    return Err(invalid(format!(
                        "{} random states given for {rows} rows",
                        states.len()
                    )));
                }
                (Some(upload_states(states)?), None)
            }
            HostTokenNoise::Indexed { states, index } => {
                if index.len() != rows as usize {
                    return Err(invalid(format!(
                        "{} state index entries given for {rows} rows",
                        index.len()
                    )));
                }
                if let Some(r) = index.iter().position(|&i| i as usize >= states.len()) {
                    return Err(invalid(format!(
                        "state index[{r}] = {}: {} random states given",
                        index[r],
                        states.len()
                    )));
                }
                if states.is_empty() {
                    return Err(invalid("no random states given"));
                }
                (Some(upload_states(states)?), Some(self.upload(index)?))
            }
        };
        let noise = match (args.noise, &states, &index) {
            (HostTokenNoise::Call { seed, offset }, _, _) => TokenNoise::call(seed, offset),
            (HostTokenNoise::PerRow(_), Some(states), _) => {
                TokenNoise::per_row(GpuSlice::from(states))
            }
            (HostTokenNoise::Indexed { states: host, .. }, Some(states), Some(index)) => {
                TokenNoise::indexed(
                    GpuSlice::from(states),
                    host.len() as u32,
                    GpuSlice::from(index),
                )
            }
            _ => unreachable!("the states are uploaded for every kind of noise that has them"),
        };
        let tokens = self.storage_buffer(byte_size(self.kernels(), "tokens", rows as usize, 4)?)?;
        let pitch = logprobs_pitch(args.top_logprobs, args.top_processed) as usize;
        let logprobs = args
            .logprobs
            .then(|| {
                let words = pitch * rows as usize;
                let bytes = byte_size(self.kernels(), "log-probabilities", words, 4)?;
                self.storage_buffer(bytes)
            })
            .transpose()?;
        let mut call = SampleTokensCall::new(
            T::STORAGE,
            shape,
            GpuSlice::from(&uploaded.logits),
            GpuSlice::from(&uploaded.settings),
            noise,
            GpuSlice::from(&tokens),
        );
        call.bias = uploaded.bias();
        call.lists = uploaded.lists();
        call.masks = uploaded.masks();
        if let Some(logprobs) = &logprobs {
            call = call
                .with_logprobs(GpuSlice::from(logprobs))
                .with_top_logprobs(args.top_logprobs, args.top_processed);
        }
        if let Some(strategy) = args.strategy {
            call = call.with_strategy(strategy);
        }
        call = call.with_noise_range(args.noise_range);
        self.submit("sample tokens", |encoder| {
            self.kernels().record_sample_tokens(encoder, &call)
        })
        .await?;
        let mut got = Tokens {
            tokens: self.read_back_async(&tokens, rows as usize).await?,
            logprobs: Vec::new(),
            top: Vec::new(),
            top_processed: Vec::new(),
        };
        if let Some(buffer) = &logprobs {
            let words: Vec<u32> = self.read_back_async(buffer, pitch * rows as usize).await?;
            let n = args.top_logprobs as usize;
            // The pairs up to the first without a token.
            let entries = |pairs: &[u32]| -> Vec<TopLogprob> {
                pairs
                    .chunks_exact(2)
                    .take_while(|p| p[0] != u32::MAX)
                    .map(|p| TopLogprob {
                        token: p[0],
                        logprob: f32::from_bits(p[1]),
                    })
                    .collect()
            };
            for row in words.chunks_exact(pitch) {
                got.logprobs
                    .push([f32::from_bits(row[0]), f32::from_bits(row[1])]);
                if n > 0 {
                    got.top.push(entries(&row[2..2 + 2 * n]));
                }
                if n > 0 && args.top_processed {
                    got.top_processed.push(entries(&row[2 + 2 * n..]));
                }
            }
        }
        Ok(got)
    }
}

/// The blocking forms of the calls above, for native targets (see `host`).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::sample_tokens_async`], waiting for it.
    pub fn sample_tokens<T: Element>(&self, logits: &[T], args: &TokenArgs<'_>) -> Result<Tokens> {
        pollster::block_on(self.sample_tokens_async(logits, args))
    }
}

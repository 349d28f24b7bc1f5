//! The token sampler of language-model serving: one token per row of logits, drawn by
//! Gumbel-max from the row's own filtered distribution, with per-row random state, so that a
//! request draws the same token wherever it sits in a batch.
//!
//! Per row, in this order (docs/contract.md, section 6):
//! 1. `c = soft_cap * tanh(x / soft_cap)` of the logits `x` (a soft cap of 0: `c = x`);
//! 2. `l = c + bias` (a bias of -inf bans a token);
//! 3. a temperature below [`TokenSettings::GREEDY_BELOW`] (0 included) takes the argmax of `l`
//!    (the lowest column among equal values), and no filter or noise plays a part;
//! 4. otherwise the weights `w = exp((l - max l) / temperature)`; top-k keeps the `top_k`
//!    first entries in (l, lower column) order, min-p those with `w >= min_p` (both measured on
//!    the whole row, so they commute), top-n-sigma those with
//!    `l >= max l - top_n_sigma * sigma` (sigma the standard deviation of the row's valid `l`,
//!    also on the whole row: as min-p, a least weight), and top-p, over what those keep and in
//!    the same order, each entry while the weight of the kept entries before it is below
//!    `top_p` times their total weight (top-p's weights are fixed-point, 32 fractional bits of
//!    the largest);
//! 5. the token is the kept column with the largest `l / temperature + g`, the Gumbel noise of
//!    the row's random state: exactly a draw from the renormalised filtered distribution.
//!
//! The log-probabilities written are of the token under `softmax(x)` (the logits as given) and
//! under the distribution it was drawn from (0 for a greedy row).

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result, invalid};
use crate::kernels::{GpuSlice, Kernels};
use crate::row::{
    NoisePosition, RowArg, RowCall, RowCost, RowHeader, RowPart, Strategy, Tau, with_strategy,
};
use crate::shaders::same_layout;
use crate::shaders::{
    Shader, token_listed as processed, token_sampler as kernel, token_select, token_settings,
    token_split, token_top,
};
use crate::types::{NoiseRange, Shape, StorageType};

pub(crate) mod settings;
pub use settings::{RandomState, TokenEntry, TokenSettings};

/// Where each row's noise comes from, and how many words of it an element takes (one or two:
/// docs/contract.md, section 2).
#[derive(Clone, Copy, Debug)]
pub enum TokenNoise<'a> {
    /// One stream for the call, or a GPU-side counter holding it: row `r`, column `k` takes
    /// flat index `offset + r*K + k`, as in the other families.
    Call(NoisePosition<'a>),
    /// Row `r` takes state `r` of `states` (`rows` [`RandomState`]s, 16 bytes each, from an
    /// offset that is a multiple of 16).
    PerRow {
        /// The states.
        states: GpuSlice<'a>,
        /// One word of noise an element, or two.
        range: NoiseRange,
    },
    /// Row `r` takes state `index[r]` of `count` states, so that a request keeps its stream
    /// wherever it sits in the batch. A row whose index is `count` or more gets no token.
    Indexed {
        /// The states, as for `PerRow`.
        states: GpuSlice<'a>,
        /// How many states the buffer holds.
        count: u32,
        /// One u32 per row.
        index: GpuSlice<'a>,
        /// One word of noise an element, or two.
        range: NoiseRange,
    },
}

impl<'a> TokenNoise<'a> {
    /// One stream for the call: `seed`'s, row 0 column 0 at flat index `offset`.
    pub fn call(seed: u64, offset: u64) -> Self {
        Self::Call(NoisePosition::new(seed, offset))
    }

    /// Row `r` takes state `r` of `states`.
    pub fn per_row(states: GpuSlice<'a>) -> Self {
        Self::PerRow {
            states,
            range: NoiseRange::Standard,
        }
    }

    /// Row `r` takes state `index[r]` of the `count` in `states`.
    pub fn indexed(states: GpuSlice<'a>, count: u32, index: GpuSlice<'a>) -> Self {
        Self::Indexed {
            states,
            count,
            index,
            range: NoiseRange::Standard,
        }
    }

    /// One word of noise an element, or two.
    pub fn with_range(self, range: NoiseRange) -> Self {
        match self {
            Self::Call(position) => Self::Call(position.with_range(range)),
            Self::PerRow { states, .. } => Self::PerRow { states, range },
            Self::Indexed {
                states,
                count,
                index,
                ..
            } => Self::Indexed {
                states,
                count,
                index,
                range,
            },
        }
    }

    /// One word of noise an element, or two.
    pub fn range(&self) -> NoiseRange {
        match *self {
            Self::Call(position) => position.range,
            Self::PerRow { range, .. } | Self::Indexed { range, .. } => range,
        }
    }
}

/// A bias added to the (capped) logits: `-inf` bans a token.
#[derive(Clone, Copy, Debug)]
pub struct TokenBias<'a> {
    /// K f32 for every row, or `rows * K` (one row of K each).
    pub values: GpuSlice<'a>,
    /// Whether each row has its own K values.
    pub per_row: bool,
}

/// The token lists of a call: an array of [`TokenEntry`] (from an offset that is a multiple of
/// 16 bytes), of which each row's settings name a window (`list_start`, `list_len`).
#[derive(Clone, Copy, Debug)]
pub struct TokenLists<'a> {
    /// The entries.
    pub entries: GpuSlice<'a>,
    /// How many entries the buffer holds from the offset.
    pub count: u32,
    /// The longest window a row's settings may name: a row whose `list_len` exceeds it gets no
    /// token, as with other bad settings. The kernels' worst case (and so the workgroup width
    /// a driver with a loop budget needs) grows with it; [`TokenLists::new`] sets it to what
    /// the entries allow.
    pub longest: u32,
}

impl<'a> TokenLists<'a> {
    /// Lists of `count` entries, any row's window as long as they allow.
    pub fn new(entries: GpuSlice<'a>, count: u32) -> Self {
        TokenLists {
            entries,
            count,
            longest: count.min(TokenSettings::LIST_LEN_MAX),
        }
    }

    /// The same lists with no row's window longer than `longest` entries.
    pub fn with_longest(self, longest: u32) -> Self {
        TokenLists { longest, ..self }
    }

    /// The longest window a row can have: `longest` within what the entries and
    /// [`TokenSettings::LIST_LEN_MAX`] allow.
    pub(crate) fn longest_window(&self) -> u32 {
        self.longest
            .min(self.count)
            .min(TokenSettings::LIST_LEN_MAX)
    }
}

/// The masks of a call, in the layout of xgrammar and llguidance: each mask is ceil(K / 32) u32
/// words, bit `v % 32` of word `v / 32` set where token `v` may be drawn; each row's settings
/// name one (`mask`) or none.
#[derive(Clone, Copy, Debug)]
pub struct TokenMasks<'a> {
    /// The masks' words, mask after mask.
    pub words: GpuSlice<'a>,
    /// How many masks the buffer holds from the offset.
    pub count: u32,
}

/// The words one mask takes for rows of `cols` tokens.
pub fn mask_words(cols: u32) -> u32 {
    cols.div_ceil(32)
}

/// One token-sampler call: `shape.rows` rows of `shape.cols` logits at `shape.in_pitch`.
/// `shape.out_pitch` must be left at `shape.cols` (as [`Shape::new`] makes it): the outputs
/// are one token and two log-probabilities a row.
///
/// A row with a NaN or +inf logit (or capped and biased logit), with every token masked or
/// banned, with settings that [`TokenSettings::check`] refuses, or whose state index is out of
/// range gets token `u32::MAX` and NaN log-probabilities.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct SampleTokensCall<'a> {
    /// Storage of the logits.
    pub storage: StorageType,
    /// Rows, K and the logits' pitch.
    pub shape: Shape,
    /// The logits.
    pub logits: GpuSlice<'a>,
    /// One [`TokenSettings`] per row.
    pub settings: GpuSlice<'a>,
    /// A bias, if any.
    pub bias: Option<TokenBias<'a>>,
    /// The token lists the rows' settings name, if any.
    pub lists: Option<TokenLists<'a>>,
    /// The masks the rows' settings name, if any.
    pub masks: Option<TokenMasks<'a>>,
    /// Where the noise comes from.
    pub noise: TokenNoise<'a>,
    /// One u32 per row, written: the token.
    pub tokens: GpuSlice<'a>,
    /// Written if given, per row: the token's log-probability under `softmax(x)` and under the
    /// distribution it was drawn from (two f32), then the top entries ([`logprobs_pitch`]
    /// words a row in all).
    pub logprobs: Option<GpuSlice<'a>>,
    /// How many of each row's most likely tokens to write with their log-probabilities under
    /// `softmax(x)`, up to [`TOP_LOGPROBS_MAX`]; 0: none. Each is a pair of 32-bit words (the
    /// token as u32, its log-probability as f32) after the row's two log-probabilities; past
    /// the row's valid tokens, `u32::MAX` and -inf.
    pub top_logprobs: u32,
    /// Whether the top entries are followed by as many of the most likely tokens under the
    /// distribution the token is drawn from (its filters, temperature and all; `u32::MAX` and
    /// -inf past what the filters keep).
    pub top_processed: bool,
    /// `RowPerWorkgroup { size }`, `size` a power of two from 64 to 1024, or
    /// `SplitRow { size, slices }` with 1 to `size` slices; `None`: [`choose_sample_tokens`].
    pub strategy: Option<Strategy>,
}

impl<'a> SampleTokensCall<'a> {
    /// A call with no bias, no log-probabilities and the default strategy.
    pub fn new(
        storage: StorageType,
        shape: Shape,
        logits: GpuSlice<'a>,
        settings: GpuSlice<'a>,
        noise: TokenNoise<'a>,
        tokens: GpuSlice<'a>,
    ) -> Self {
        Self {
            storage,
            shape,
            logits,
            settings,
            bias: None,
            lists: None,
            masks: None,
            noise,
            tokens,
            logprobs: None,
            top_logprobs: 0,
            top_processed: false,
            strategy: None,
        }
    }

    /// Whether the call runs the kernel with token lists and masks.
    fn processed(&self) -> bool {
        self.lists.is_some() || self.masks.is_some()
    }

    /// One word of noise an element, or two (docs/contract.md, section 2).
    pub fn with_noise_range(self, range: NoiseRange) -> Self {
        Self {
            noise: self.noise.with_range(range),
            ..self
        }
    }

    /// With the `n` most likely tokens of each row and their log-probabilities under
    /// `softmax(x)`, and, if `processed`, under the distribution the token is drawn from,
    /// written after each row's two log-probabilities (give `logprobs` too).
    pub fn with_top_logprobs(self, n: u32, processed: bool) -> Self {
        Self {
            top_logprobs: n,
            top_processed: processed,
            ..self
        }
    }
}

/// `with_bias`, `with_lists`, `with_masks` and `with_logprobs`, for the family's calls on
/// GPU buffers.
macro_rules! with_row_inputs {
    ($call:ident) => {
        impl<'a> $call<'a> {
            /// With a bias.
            pub fn with_bias(self, bias: TokenBias<'a>) -> Self {
                Self {
                    bias: Some(bias),
                    ..self
                }
            }

            /// With token lists (sparse bias and penalties).
            pub fn with_lists(self, lists: TokenLists<'a>) -> Self {
                Self {
                    lists: Some(lists),
                    ..self
                }
            }

            /// With masks.
            pub fn with_masks(self, masks: TokenMasks<'a>) -> Self {
                Self {
                    masks: Some(masks),
                    ..self
                }
            }

            /// With log-probabilities written to `logprobs`.
            pub fn with_logprobs(self, logprobs: GpuSlice<'a>) -> Self {
                Self {
                    logprobs: Some(logprobs),
                    ..self
                }
            }
        }
    };
}

/// The same for the family's host-slice arguments.
macro_rules! with_host_row_inputs {
    ($args:ident) => {
        impl<'a> $args<'a> {
            /// A bias added to the logits: K values for every row, or a row of K each (`None`:
            /// none).
            pub fn with_bias(self, bias: impl Into<Option<&'a [f32]>>) -> Self {
                Self {
                    bias: bias.into(),
                    ..self
                }
            }

            /// The token lists the rows' settings name (`None`: none).
            pub fn with_lists(self, lists: impl Into<Option<&'a [TokenEntry]>>) -> Self {
                Self {
                    lists: lists.into(),
                    ..self
                }
            }

            /// The masks the rows' settings name, [`mask_words`]`(K)` words each (`None`: none).
            pub fn with_masks(self, masks: impl Into<Option<&'a [u32]>>) -> Self {
                Self {
                    masks: masks.into(),
                    ..self
                }
            }

            /// Whether to return log-probabilities.
            pub fn with_logprobs(self, logprobs: bool) -> Self {
                Self { logprobs, ..self }
            }
        }
    };
}

with_row_inputs!(SampleTokensCall);

/// The most top entries a row may ask for.
pub const TOP_LOGPROBS_MAX: u32 = token_top::TOP_MAX;

/// The 32-bit words of log-probabilities a row takes with `top` top entries, `processed` ones
/// too or not: the token's two, then a (token, log-probability) pair a top entry.
pub fn logprobs_pitch(top: u32, processed: bool) -> u32 {
    2 + 2 * top * if processed { 2 } else { 1 }
}

with_strategy!(SampleTokensCall);

/// The narrowest workgroup the sampler takes: one invocation per kept entry of the lists.
const NARROWEST: u32 = 64;

/// What one invocation of the sampler costs over a row of `cols` in a workgroup of `size`, at
/// worst, with token lists of up to `longest_list` entries a row where the call has lists and
/// `top` top entries a row. Its loop iterations: the first pass with every element shifting a list of `LIST_MAX`, top-p's pass
/// over the row and its list, up to `KEPT_MAX` rounds of the lists and invocation 0's walks over
/// their winners, then (where a list ran out) two radix selects of eight passes with invocation
/// 0's scans of 256 bins, top-n-sigma's two passes (a step and four lanes a block), the last
/// pass, and a row's token list read into workgroup memory and searched for each element.
/// Its workgroup memory: three trees, three bin arrays, the lists' winners and their rounds'
/// groups, the row's settings and parameters, and the token list's bits.
fn cost(cols: u32, size: u32, longest_list: Option<u32>, top: u32) -> RowCost {
    let per_pass = (u64::from(cols).div_ceil(4) + 1).div_ceil(u64::from(size));
    let list = u64::from(crate::shaders::key_list::LIST_MAX);
    let kept = u64::from(kernel::KEPT_MAX);
    let first = per_pass * (5 + 4 * list);
    let weight_pass = 5 * per_pass + list;
    let rounds = kept * (merge_round_iterations(size) + 3) + 4 * kept;
    let selects = 16 * (5 * per_pass + 2 * 256 + 4) + 128;
    let sigma = 2 * 5 * per_pass;
    let shared = 20 * size
        + 3 * 4 * token_select::BINS
        + 8 * kernel::KEPT_MAX
        + 8 * kernel::MERGE_GROUPS_MAX
        + 264;
    // A row's list read into workgroup memory; then, at worst, a search of the longest list
    // the call allows for every element of every pass that reads elements (the first,
    // top-p's sum, sixteen radix-select passes, top-n-sigma's two and the last).
    let (listing, list_bytes) = match longest_list {
        Some(longest) => {
            let steps = u64::from(32 - longest.leading_zeros());
            let searches = 21 * 4 * per_pass * steps;
            (
                u64::from(longest.div_ceil(size)) + searches,
                4 * processed::LISTED_WORDS,
            )
        }
        None => (0, 0),
    };
    // Where top entries are asked for: a pass with two lists of `top`, their rounds, and the
    // writes.
    let top = u64::from(top);
    let tops = if top > 0 {
        per_pass * (5 + 4 * 2 * top) + 2 * top * (merge_round_iterations(size) + 3) + 2 * top
    } else {
        0
    };
    RowCost {
        iterations: first + weight_pass + rounds + selects + sigma + 9 * per_pass + listing + tops,
        workgroup_bytes: shared + list_bytes + 16 * token_top::TOP_MAX,
    }
}

/// The default strategy of the token sampler on the device of `kernels` for calls without
/// token lists, masks or top entries: a workgroup of 64 invocations on CPU drivers (as top-k
/// measured), 256 on GPUs, wider where a driver's loop budget needs it; on GPUs, rows of
/// [`SPLIT_FROM`] tokens or more spread over several such workgroups where the device binds
/// enough storage buffers ([`Strategy::SplitRow`]).
pub fn choose_sample_tokens(cols: u32, kernels: &Kernels) -> Strategy {
    default_strategy(cols, None, 0, false, kernels)
}

/// The shortest rows the token sampler spreads over workgroups by default: with fewer, even a
/// batch of one row gives a workgroup thousands of elements to walk.
pub const SPLIT_FROM: u32 = 65_536;

/// The loop iterations of one round of merging the invocations' lists (the kernel's
/// `merge_round`): up to `MERGE_BY_GROUPS_UP_TO`, a group of heads in the first invocations,
/// then the groups' winners in invocation 0; wider, a tree.
fn merge_round_iterations(size: u32) -> u64 {
    if size > kernel::MERGE_BY_GROUPS_UP_TO {
        return u64::from(size.ilog2());
    }
    let group = 1u64 << size.trailing_zeros().div_ceil(2);
    group + u64::from(size) / group
}

/// The default strategy for a call whose rows' token lists are at most `longest_list` long
/// (where it has lists), `top` top entries a row, and lists or masks (`processed`). A row's token depends on its
/// strategy only up to ties within f32 rounding, and the choice depends on K, the device and
/// the call's longest list alone, not the batch: a request draws the same token in any batch
/// whose lists allow the same longest.
fn default_strategy(
    cols: u32,
    longest_list: Option<u32>,
    top: u32,
    processed: bool,
    kernels: &Kernels,
) -> Strategy {
    let size = choose_size(cols, longest_list, top, kernels);
    if top > 0 {
        // Rows with top entries are taken whole, split or not.
        return Strategy::RowPerWorkgroup { size };
    }
    split_or_whole(cols, size, processed, kernels.is_cpu, &kernels.limits)
}

/// Rows of `size`-wide workgroups, split where that pays. A slice of 4,096 elements gives a
/// GPU's 256-wide workgroup four blocks an invocation. CPU drivers take rows whole: on lavapipe
/// each workgroup of this kernel costs about 1 us an invocation before it reads anything
/// (BENCHMARKS.md), so at 151,936 tokens ten slices took 4 to 6 times as long as one workgroup
/// a row, even at batch 1.
fn split_or_whole(
    cols: u32,
    size: u32,
    processed: bool,
    is_cpu: bool,
    limits: &wgpu::Limits,
) -> Strategy {
    let binds = storage_buffers(split_shader(processed));
    if is_cpu || cols < SPLIT_FROM || limits.max_storage_buffers_per_shader_stage < binds {
        return Strategy::RowPerWorkgroup { size };
    }
    Strategy::SplitRow {
        size,
        slices: cols.div_ceil(4_096).min(size),
    }
}

fn split_shader(processed: bool) -> Shader {
    if processed {
        Shader::SampleTokensSplitProcessed
    } else {
        Shader::SampleTokensSplit
    }
}

/// The narrowest workgroup from 64 (CPU drivers) or 256 up that fits the device and the loop
/// budget with token lists of up to `longest_list` entries a row where the call has them and
/// `top` top entries a row; the narrowest where none does (the call is then refused with the reason). On llvmpipe's budget rows of up
/// to about 850,000 logits fit.
fn choose_size(cols: u32, longest_list: Option<u32>, top: u32, kernels: &Kernels) -> u32 {
    let (is_cpu, limits, budget) = (kernels.is_cpu, &kernels.limits, kernels.loop_budget);
    choose_size_on(cols, longest_list, top, is_cpu, limits, budget)
}

fn choose_size_on(
    cols: u32,
    longest_list: Option<u32>,
    top: u32,
    is_cpu: bool,
    limits: &wgpu::Limits,
    budget: Option<u64>,
) -> u32 {
    narrowest_fitting(is_cpu, limits, budget, |size| {
        cost(cols, size, longest_list, top)
    })
}

/// The narrowest workgroup from 64 (CPU drivers) or 256 up whose `cost` fits the device and
/// the loop budget; the narrowest where none does.
fn narrowest_fitting(
    is_cpu: bool,
    limits: &wgpu::Limits,
    budget: Option<u64>,
    cost: impl Fn(u32) -> RowCost,
) -> u32 {
    let narrowest = if is_cpu { NARROWEST } else { 256 };
    let fits = |size: u32| {
        size <= limits.max_compute_invocations_per_workgroup && cost(size).fits(limits, budget)
    };
    (narrowest.ilog2()..=10)
        .map(|bits| 1 << bits)
        .find(|&size| fits(size))
        .unwrap_or(narrowest)
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct TokenParams {
    header: RowHeader,
    settings_base: u32,
    bias_base: u32,
    bias_pitch: u32,
    has_bias: u32,
    states_base: u32,
    states_count: u32,
    state_source: u32,
    index_base: u32,
    row0: u32,
    logprobs_base: u32,
    want_logprobs: u32,
    lists_base: u32,
    lists_count: u32,
    masks_base: u32,
    masks_count: u32,
    mask_words: u32,
    logprobs_pitch: u32,
    top_n: u32,
    top_processed: u32,
    stage: u32,
    slices: u32,
    slice_blocks: u32,
    requests: u32,
    drafts_base: u32,
    offsets_base: u32,
    draft_probs_base: u32,
    has_draft_probs: u32,
    accepted_base: u32,
    positions: u32,
    list_longest: u32,
}
same_layout!(
    TokenParams = TokenParams {
        header,
        settings_base,
        bias_base,
        bias_pitch,
        has_bias,
        states_base,
        states_count,
        state_source,
        index_base,
        row0,
        logprobs_base,
        want_logprobs,
        lists_base,
        lists_count,
        masks_base,
        masks_count,
        mask_words,
        logprobs_pitch,
        top_n,
        top_processed,
        stage,
        slices,
        slice_blocks,
        requests,
        drafts_base,
        offsets_base,
        draft_probs_base,
        has_draft_probs,
        accepted_base,
        positions,
        list_longest,
    }
);

/// What every call of the family reads and writes a row of: the logits, their settings, bias,
/// token lists and masks, the token and its log-probabilities. The sampler adds where its noise
/// comes from; the verification of drafts adds the drafts.
struct TokenRows<'a> {
    storage: StorageType,
    shape: Shape,
    logits: GpuSlice<'a>,
    settings: GpuSlice<'a>,
    bias: Option<TokenBias<'a>>,
    lists: Option<TokenLists<'a>>,
    masks: Option<TokenMasks<'a>>,
    tokens: GpuSlice<'a>,
    logprobs: Option<GpuSlice<'a>>,
    /// u32 words of log-probabilities a row.
    logprobs_pitch: u32,
}

impl<'a> TokenRows<'a> {
    fn processed(&self) -> bool {
        self.lists.is_some() || self.masks.is_some()
    }

    /// Checks the shape; the arguments the row layer binds: the logits first and the tokens
    /// second (the header's input and output), then the rest.
    fn args(&self) -> Result<Vec<RowArg<'a>>> {
        let shape = self.shape;
        shape.validate()?;
        let mut args = vec![
            RowArg::input("logits", self.logits, shape, self.storage.size()),
            RowArg::write("tokens", self.tokens, kernel::BINDING_TOKENS, (1, 1), 4),
            RowArg::read(
                "settings",
                self.settings,
                kernel::BINDING_SETTINGS,
                (1, 1),
                size_of::<TokenSettings>() as u64,
            ),
        ];
        if let Some(bias) = self.bias {
            let pitch = if bias.per_row { shape.cols } else { 0 };
            args.push(RowArg::read(
                "bias",
                bias.values,
                kernel::BINDING_BIAS,
                (shape.cols, pitch),
                4,
            ));
        }
        if let Some(lists) = self.lists {
            args.push(RowArg::read(
                "token lists",
                lists.entries,
                processed::BINDING_LISTS,
                (lists.count.max(1), 0),
                size_of::<TokenEntry>() as u64,
            ));
        }
        if let Some(masks) = self.masks {
            let mask_words = mask_words(shape.cols);
            let words = u64::from(masks.count) * u64::from(mask_words);
            let words = u32::try_from(words).map_err(|_| {
                invalid(format!(
                    "masks: {} masks of {mask_words} words are more than 2^32 - 1 words",
                    masks.count
                ))
            })?;
            args.push(RowArg::read(
                "masks",
                masks.words,
                processed::BINDING_MASKS,
                (words.max(1), 0),
                4,
            ));
        }
        if let Some(logprobs) = self.logprobs {
            let pitch = self.logprobs_pitch;
            args.push(RowArg::write(
                "log-probabilities",
                logprobs,
                kernel::BINDING_LOGPROBS,
                (pitch, pitch),
                4,
            ));
        }
        Ok(args)
    }

    /// The parameters of a dispatch of `part` whose calls' fields (noise, split rows, drafts)
    /// the caller fills in.
    fn params(&self, part: &RowPart) -> TokenParams {
        TokenParams {
            header: part.header,
            settings_base: part.base(kernel::BINDING_SETTINGS),
            bias_base: part.base(kernel::BINDING_BIAS),
            bias_pitch: match self.bias {
                Some(b) if b.per_row => self.shape.cols,
                _ => 0,
            },
            has_bias: u32::from(self.bias.is_some()),
            row0: part.row0 as u32,
            logprobs_base: part.base(kernel::BINDING_LOGPROBS),
            want_logprobs: u32::from(self.logprobs.is_some()),
            lists_base: part.base(processed::BINDING_LISTS),
            lists_count: self.lists.map_or(0, |lists| lists.count),
            list_longest: self.lists.map_or(0, |lists| lists.longest_window()),
            masks_base: part.base(processed::BINDING_MASKS),
            masks_count: self.masks.map_or(0, |masks| masks.count),
            mask_words: mask_words(self.shape.cols),
            logprobs_pitch: self.logprobs_pitch,
            ..TokenParams::zeroed()
        }
    }

    /// The part's bindings, with placeholders for the optional ones `optional` names that the
    /// call leaves out (the kernels' layouts hold them whether used or not).
    fn bindings<'s>(
        &self,
        part: &'s RowPart,
        kernels: &'s Kernels,
        optional: &[u32],
    ) -> Vec<(u32, wgpu::BindingResource<'s>)> {
        let mut bindings = part.bindings(kernels);
        let present: Vec<u32> = bindings.iter().map(|(b, _)| *b).collect();
        let mut optional = optional.to_vec();
        optional.push(kernel::BINDING_BIAS);
        if self.processed() {
            optional.extend([processed::BINDING_LISTS, processed::BINDING_MASKS]);
        }
        for missing in optional {
            if !present.contains(&missing) {
                bindings.push((missing, kernels.placeholder.as_entire_binding()));
            }
        }
        if !present.contains(&kernel::BINDING_LOGPROBS) {
            bindings.push((
                kernel::BINDING_LOGPROBS,
                kernels.placeholder_out.as_entire_binding(),
            ));
        }
        bindings
    }
}
impl Kernels {
    /// The override constants of the token sampler's kernels in `size`-wide workgroups.
    pub(crate) fn sampler_constants(&self, size: u32) -> [(&'static str, f64); 2] {
        let contiguous = self.block_order == crate::BlockOrder::Contiguous;
        [
            ("WORKGROUP_SIZE", f64::from(size)),
            ("CONTIGUOUS_BLOCKS", f64::from(u8::from(contiguous))),
        ]
    }

    /// Records a token-sampler call into `encoder`, split by rows where one dispatch cannot
    /// take them all.
    pub fn record_sample_tokens(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &SampleTokensCall,
    ) -> Result<()> {
        let shape = call.shape;
        shape.validate()?;
        shape.require_adjacent("sample tokens")?;
        if shape.out_pitch != shape.cols {
            return Err(invalid(format!(
                "sample tokens: shape.out_pitch = {} is not used (one token a row); leave it at K = {}",
                shape.out_pitch, shape.cols
            )));
        }
        let longest_list = call.lists.map(|lists| lists.longest_window());
        let strategy = call.strategy.unwrap_or_else(|| {
            default_strategy(
                shape.cols,
                longest_list,
                call.top_logprobs,
                call.processed(),
                self,
            )
        });
        let (size, slices) = match strategy {
            Strategy::RowPerWorkgroup { size } => (size, None),
            Strategy::SplitRow { size, slices } if (1..=size).contains(&slices) => {
                (size, Some(slices))
            }
            _ => (0, None),
        };
        if !size.is_power_of_two() || !(NARROWEST..=1024).contains(&size) {
            return Err(invalid(format!(
                "the token sampler runs as RowPerWorkgroup {{ size }} or SplitRow {{ size, slices: 1 to size }}, size a power of two from {NARROWEST} to 1024, not {strategy:?}"
            )));
        }
        let shader = match (slices, call.processed()) {
            (Some(_), processed) => split_shader(processed),
            (None, true) => Shader::SampleTokensProcessed,
            (None, false) => Shader::SampleTokens,
        };
        let what = match (slices.is_some(), call.processed()) {
            (true, true) => "split rows with token lists and masks",
            (true, false) => "split rows",
            _ => "token lists and masks",
        };
        self.check_storage_buffers(shader, what)?;
        if call.top_logprobs > TOP_LOGPROBS_MAX {
            return Err(invalid(format!(
                "top_logprobs = {}: at most TOP_LOGPROBS_MAX = {TOP_LOGPROBS_MAX}",
                call.top_logprobs
            )));
        }
        if call.logprobs.is_none() && (call.top_logprobs > 0 || call.top_processed) {
            return Err(invalid(
                "top_logprobs: the top entries are written with the log-probabilities; give logprobs",
            ));
        }
        let token_rows = TokenRows {
            storage: call.storage,
            shape,
            logits: call.logits,
            settings: call.settings,
            bias: call.bias,
            lists: call.lists,
            masks: call.masks,
            tokens: call.tokens,
            logprobs: call.logprobs,
            logprobs_pitch: logprobs_pitch(call.top_logprobs, call.top_processed),
        };
        let mut args = token_rows.args()?;
        let state_size = size_of::<RandomState>() as u64;
        let (source, states_count) = match call.noise {
            TokenNoise::Call(NoisePosition {
                counter: Some(counter),
                ..
            }) => {
                args.push(RowArg::read(
                    "noise counter",
                    counter,
                    kernel::BINDING_STATES,
                    (1, 0),
                    state_size,
                ));
                (token_settings::SOURCE_COUNTER, 1)
            }
            TokenNoise::Call(_) => (token_settings::SOURCE_CALL, 0),
            TokenNoise::PerRow { states, .. } => {
                args.push(RowArg::read(
                    "states",
                    states,
                    kernel::BINDING_STATES,
                    (shape.rows, 0),
                    state_size,
                ));
                (token_settings::SOURCE_ROW, shape.rows)
            }
            TokenNoise::Indexed {
                states,
                count,
                index,
                ..
            } => {
                let bytes = state_size * u64::from(count);
                if bytes > self.max_binding() {
                    return Err(Error::OverLimits(format!(
                        "TokenNoise::Indexed: count = {count} states take {bytes} bytes; one storage binding on this device holds {}",
                        self.max_binding()
                    )));
                }
                args.push(RowArg::read(
                    "states",
                    states,
                    kernel::BINDING_STATES,
                    (count.max(1), 0),
                    state_size,
                ));
                args.push(RowArg::read(
                    "state index",
                    index,
                    kernel::BINDING_STATE_INDEX,
                    (1, 1),
                    4,
                ));
                (token_settings::SOURCE_INDEX, count)
            }
        };
        // A counter is bound as the states (above), not where the row layer binds one.
        let noise = match call.noise {
            TokenNoise::Call(position) => position.with_counter(None),
            _ => NoisePosition::new(0, 0).with_range(call.noise.range()),
        };
        let rows = RowCall {
            shape,
            strategy,
            cost: cost(shape.cols, size, longest_list, call.top_logprobs),
            args,
            // The temperatures are in the settings.
            tau: Tau::Scalar(1.0),
            noise,
            scratch: slices.map(|slices| {
                let slice_words = token_split::SLICE_RECORD + 2 * kernel::KEPT_MAX;
                let words = slices * slice_words + 1;
                (token_split::BINDING_SPLIT, 4 * u64::from(words))
            }),
        };
        let plan = self.check_rows(&rows)?;
        let slice_blocks = slices.map_or(0, |_| strategy.blocks_per_group(shape.cols) as u32);
        let pipeline = self.noise_pipeline(
            shader,
            Some(call.storage),
            &self.sampler_constants(size),
            call.noise.range(),
        )?;
        self.each_part(&rows, &plan, |part| {
            let params = TokenParams {
                states_base: part.base(kernel::BINDING_STATES),
                states_count,
                state_source: source,
                index_base: part.base(kernel::BINDING_STATE_INDEX),
                top_n: call.top_logprobs,
                top_processed: u32::from(call.top_processed),
                slices: slices.unwrap_or(0),
                slice_blocks,
                ..token_rows.params(part)
            };
            let optional = [kernel::BINDING_STATES, kernel::BINDING_STATE_INDEX];
            let bindings = token_rows.bindings(part, self, &optional);
            let Some(slices) = slices else {
                return self.dispatch_grid(
                    encoder,
                    &pipeline,
                    bytemuck::bytes_of(&params),
                    &bindings,
                    strategy.grid(part.rows),
                );
            };
            // A split row's stages (token_split): two over its slices, two over whole rows.
            let rows = part.rows as u32;
            let stages = [
                (token_split::STAGE_FIRST, slices),
                (token_split::STAGE_DRAW, slices),
                (token_split::STAGE_FINISH, 1),
                (token_split::STAGE_REST, 1),
            ];
            for (stage, across) in stages {
                let params = TokenParams { stage, ..params };
                self.dispatch_grid(
                    encoder,
                    &pipeline,
                    bytemuck::bytes_of(&params),
                    &bindings,
                    [across, rows, 1],
                )?;
            }
            Ok(())
        })
    }

    /// Refuses `shader` (`what` it serves, in the message) where this device binds fewer
    /// storage buffers than it takes: token lists and masks take two more than the sampler
    /// without, split rows one more, and the verification of drafts two more.
    fn check_storage_buffers(&self, shader: Shader, what: &str) -> Result<()> {
        let wanted = storage_buffers(shader);
        let held = self.limits.max_storage_buffers_per_shader_stage;
        if held < wanted {
            return Err(Error::OverLimits(format!(
                "{what}: the kernel binds {wanted} storage buffers; this device's max_storage_buffers_per_shader_stage is {held} (request the adapter's limits: WebGPU adapters commonly offer 10)"
            )));
        }
        Ok(())
    }
}

/// The storage buffers a sampler kernel binds.
fn storage_buffers(shader: Shader) -> u32 {
    let variant = crate::shaders::VARIANTS
        .iter()
        .find(|v| v.shader == shader)
        .expect("every sampler kernel is composed");
    // Every binding, the parameters' too, is a storage buffer.
    variant.bindings.len() as u32
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn random_state_words_are_low_word_first() {
        // The layouts' sizes and offsets are checked at build time (same_layout!); the kernel
        // reads each u64 as (low word, high word).
        let state = RandomState {
            seed: 0x1234_5678_9abc_def0,
            offset: 7 << 32 | 9,
        };
        assert_eq!(
            bytemuck::cast::<RandomState, [u32; 4]>(state),
            state.words()
        );
    }

    /// WebGPU's default limits take up to 256 invocations; a CPU driver's loop budget widens
    /// the workgroup for the longest vocabularies, and rows past what 1,024 invocations can
    /// walk within it are left to the refusal.
    #[test]
    fn workgroups_fit_the_device_and_the_loop_budget() {
        let default = wgpu::Limits::default();
        let cpu = wgpu::Limits {
            max_compute_invocations_per_workgroup: 1024,
            max_compute_workgroup_storage_size: 32_768,
            ..wgpu::Limits::default()
        };
        assert_eq!(choose_size_on(32_000, None, 0, false, &default, None), 256);
        assert_eq!(
            choose_size_on(32_000, None, 0, true, &cpu, Some(60_000)),
            64
        );
        // Without top entries to 800,000; with 20 (a pass of their own) to 262,144.
        for (cols, top) in [1, 7, 32_000, 151_936, 262_144, 800_000]
            .into_iter()
            .flat_map(|cols| [(cols, 0), (cols, 20)])
            .filter(|&(cols, top)| top == 0 || cols <= 262_144)
        {
            let size = choose_size_on(cols, None, top, true, &cpu, Some(60_000));
            let c = cost(cols, size, None, top);
            assert!(
                c.iterations <= 60_000,
                "K = {cols}, top {top} at {size}: {c:?}"
            );
            assert!(c.workgroup_bytes <= 32_768);
        }
        // Token lists: each element's search counts at its worst, so that llvmpipe takes
        // lists of 512 entries on rows of 151,936 but not of 262,144 (refused by name).
        let lists = |cols: u32, entries: u32| {
            let size = choose_size_on(cols, Some(entries), 0, true, &cpu, Some(60_000));
            cost(cols, size, Some(entries), 0)
        };
        assert!(lists(32_000, TokenSettings::LIST_LEN_MAX).iterations <= 60_000);
        assert!(lists(151_936, 512).iterations <= 60_000);
        assert!(lists(262_144, 512).iterations > 60_000);
        assert!(lists(32_000, TokenSettings::LIST_LEN_MAX).workgroup_bytes <= 32_768);
        assert!(cost(1 << 21, 1024, None, 0).iterations > 60_000);
        assert!(
            cost(1, 256, Some(1), 20).workgroup_bytes <= default.max_compute_workgroup_storage_size
        );
    }

    /// GPUs split rows from SPLIT_FROM tokens where they bind the split kernel's buffers;
    /// CPU drivers and devices with WebGPU's default eight storage buffers take rows whole.
    #[test]
    fn long_rows_split_on_gpus_that_bind_the_buffers() {
        let gpu = wgpu::Limits {
            max_storage_buffers_per_shader_stage: 16,
            ..wgpu::Limits::default()
        };
        let split = |cols, processed, is_cpu, limits: &wgpu::Limits| {
            split_or_whole(cols, 256, processed, is_cpu, limits)
        };
        assert_eq!(
            split(151_936, false, false, &gpu),
            Strategy::SplitRow {
                size: 256,
                slices: 38
            }
        );
        assert_eq!(
            split(SPLIT_FROM, true, false, &gpu),
            Strategy::SplitRow {
                size: 256,
                slices: 16
            }
        );
        assert_eq!(
            split(1 << 24, false, false, &gpu),
            Strategy::SplitRow {
                size: 256,
                slices: 256
            }
        );
        let whole = Strategy::RowPerWorkgroup { size: 256 };
        assert_eq!(split(SPLIT_FROM - 1, false, false, &gpu), whole);
        assert_eq!(split(151_936, false, true, &gpu), whole);
        assert_eq!(
            split(151_936, false, false, &wgpu::Limits::default()),
            whole
        );
        let ten = wgpu::Limits {
            max_storage_buffers_per_shader_stage: 10,
            ..wgpu::Limits::default()
        };
        assert!(matches!(
            split(151_936, false, false, &ten),
            Strategy::SplitRow { .. }
        ));
        assert_eq!(split(151_936, true, false, &ten), whole);
    }

    #[test]
    fn settings_are_checked_by_field() {
        let bad = [
            (TokenSettings::new(-1.0), "temperature"),
            (TokenSettings::new(f32::NAN), "temperature"),
            (TokenSettings::new(1.0).with_top_k(0), "top_k"),
            (TokenSettings::new(1.0).with_top_k(11), "top_k"),
            (TokenSettings::new(1.0).with_top_p(0.0), "top_p"),
            (TokenSettings::new(1.0).with_top_p(1.5), "top_p"),
            (TokenSettings::new(1.0).with_min_p(-0.1), "min_p"),
            (TokenSettings::new(1.0).with_min_p(f32::NAN), "min_p"),
            (TokenSettings::new(1.0).with_soft_cap(f32::NAN), "soft_cap"),
            (TokenSettings::new(1.0).with_soft_cap(-3.0), "soft_cap"),
            (
                TokenSettings::new(1.0).with_top_n_sigma(-1.0),
                "top_n_sigma",
            ),
            (
                TokenSettings::new(1.0).with_top_n_sigma(f32::NAN),
                "top_n_sigma",
            ),
        ];
        for (settings, field) in bad {
            let message = settings.check(3, 10).unwrap_err().to_string();
            assert!(
                message.contains(&format!("settings[3].{field}")),
                "{message}"
            );
        }
        let good = TokenSettings::new(0.7)
            .with_top_k(10)
            .with_top_p(1.0)
            .with_min_p(1.0)
            .with_soft_cap(30.0);
        assert!(good.check(0, 10).is_ok());
        assert!(TokenSettings::greedy().check(0, 1).is_ok());
    }
}

mod host;
pub use host::{HostTokenNoise, TokenArgs, Tokens, TopLogprob};
mod verify;
pub use verify::{Verified, VerifyArgs, VerifyDraftsCall};

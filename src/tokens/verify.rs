//! Speculative decoding's verification of draft tokens against the target model, on the token
//! sampler's rows (docs/contract.md, section 7; `reference::verify_drafts` is its f64 twin).
//!
//! Request `r` of a call has `n_r` draft tokens and `n_r + 1` target positions: rows
//! `offsets[r] + r ..= offsets[r + 1] + r` of the logits, each with its own settings (penalties
//! and grammar states move on with the drafts). Position `i`'s noise is that of a sampler row
//! with the request's state advanced by `i K`, and draft `i`'s acceptance uniform is element
//! `(n_r + 1) K + i` of the request's stream. Draft `i` is accepted where
//! `u_i q_i(d_i) < p_i(d_i)`, `p_i` the distribution the sampler draws from at position `i` and
//! `q_i` the draft's probabilities (one at `d_i` for drafts given without them); at the first
//! rejection the token is drawn from `max(0, p_i - q_i)` renormalised (the position's own draw
//! where that is empty), and after the last draft the bonus token from `p_n`. The emitted
//! tokens are distributed as the target alone would sample them.

use super::*;
use crate::context::GpuContext;
use crate::host::byte_size;
use crate::row::with_noise_range;
use crate::shaders::token_verify as verify;
use crate::types::Element;

/// The verification of a call's draft tokens ([`Kernels::record_verify_drafts`]).
///
/// Outputs, per target position and per request: `tokens` holds request `r`'s emitted tokens
/// in its positions' slots (from `offsets[r] + r`): the accepted drafts, then the token drawn
/// at the first rejection or the bonus token, then `u32::MAX` in the slots left. A position
/// whose distribution has no token (as the sampler's rows without one) ends the request with
/// `u32::MAX`. `accepted[r]` is how many drafts were accepted; `u32::MAX` for a request whose
/// offsets are not in order or do not add up to the call's positions (its slots untouched), or
/// that names a draft of K or more (from that draft on, no token).
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct VerifyDraftsCall<'a> {
    /// Storage of the target's logits.
    pub storage: StorageType,
    /// Target positions (rows: the drafts and one more a request), K and the logits' pitch.
    pub shape: Shape,
    /// The target's logits.
    pub logits: GpuSlice<'a>,
    /// One [`TokenSettings`] per target position.
    pub settings: GpuSlice<'a>,
    /// A bias, if any (`per_row`: one row of K a target position).
    pub bias: Option<TokenBias<'a>>,
    /// The token lists the positions' settings name, if any.
    pub lists: Option<TokenLists<'a>>,
    /// The masks the positions' settings name, if any.
    pub masks: Option<TokenMasks<'a>>,
    /// How many requests.
    pub requests: u32,
    /// `requests + 1` u32 from 0: request `r`'s drafts are `drafts[offsets[r] .. offsets[r + 1]]`.
    pub draft_offsets: GpuSlice<'a>,
    /// The draft tokens, `rows - requests` u32 (not read where that is 0).
    pub drafts: GpuSlice<'a>,
    /// The drafts' probabilities: a row of K f32 a draft, each a distribution; `None`: drafts
    /// without probabilities (a greedy draft model's, an n-gram lookup's), one at the draft.
    pub draft_probs: Option<GpuSlice<'a>>,
    /// One [`RandomState`] per request (16 bytes each, from an offset that is a multiple of 16).
    pub states: GpuSlice<'a>,
    /// One word of noise an element, or two (docs/contract.md, section 2).
    pub noise_range: NoiseRange,
    /// One u32 per target position, written (see above).
    pub tokens: GpuSlice<'a>,
    /// One u32 per request, written: the drafts accepted.
    pub accepted: GpuSlice<'a>,
    /// Written if given, per target position: the emitted token's log-probability under
    /// `softmax(x)` and under the target's distribution `p` (two f32; NaN in slots without a
    /// token).
    pub logprobs: Option<GpuSlice<'a>>,
    /// `RowPerWorkgroup { size }`, `size` a power of two from 64 to 1024; `None`: the token
    /// sampler's choice for whole rows.
    pub strategy: Option<Strategy>,
}

impl<'a> VerifyDraftsCall<'a> {
    /// A call without draft probabilities, bias, lists, masks or log-probabilities.
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        storage: StorageType,
        shape: Shape,
        logits: GpuSlice<'a>,
        settings: GpuSlice<'a>,
        requests: u32,
        draft_offsets: GpuSlice<'a>,
        drafts: GpuSlice<'a>,
        states: GpuSlice<'a>,
        tokens: GpuSlice<'a>,
        accepted: GpuSlice<'a>,
    ) -> Self {
        Self {
            storage,
            shape,
            logits,
            settings,
            bias: None,
            lists: None,
            masks: None,
            requests,
            draft_offsets,
            drafts,
            draft_probs: None,
            states,
            noise_range: NoiseRange::Standard,
            tokens,
            accepted,
            logprobs: None,
            strategy: None,
        }
    }

    /// With the drafts' probabilities.
    pub fn with_draft_probs(self, draft_probs: GpuSlice<'a>) -> Self {
        Self {
            draft_probs: Some(draft_probs),
            ..self
        }
    }
}

with_strategy!(VerifyDraftsCall);
with_row_inputs!(VerifyDraftsCall);
with_noise_range!(VerifyDraftsCall);

/// What one invocation of the verification costs at most: the sampler's row, then the draft's
/// verdict (a search of the kept entries) and the residual's pass over the row.
fn verify_cost(cols: u32, size: u32, longest_list: Option<u32>) -> RowCost {
    let sampler = cost(cols, size, longest_list, 0);
    let per_pass = (u64::from(cols).div_ceil(4) + 1).div_ceil(u64::from(size));
    RowCost {
        iterations: sampler.iterations + 9 * per_pass + 2 * u64::from(kernel::KEPT_MAX),
        workgroup_bytes: sampler.workgroup_bytes + 16,
    }
}

impl Kernels {
    /// Records the verification of a call's draft tokens into `encoder`: dispatches over the
    /// target positions (split by rows where one cannot take them all, as the sampler's), then
    /// one over the requests. The draft probabilities are bound whole: they must fit one
    /// storage binding.
    pub fn record_verify_drafts(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &VerifyDraftsCall,
    ) -> Result<()> {
        let shape = call.shape;
        shape.validate()?;
        shape.require_adjacent("verify drafts")?;
        if shape.out_pitch != shape.cols {
            return Err(invalid(format!(
                "verify drafts: shape.out_pitch = {} is not used (one token a position); leave it at K = {}",
                shape.out_pitch, shape.cols
            )));
        }
        if shape.cols >= verify::ACCEPTED {
            return Err(invalid(format!(
                "verify drafts: K = {}; at most 2^31 - 1 tokens",
                shape.cols
            )));
        }
        if call.requests == 0 || call.requests > shape.rows {
            return Err(invalid(format!(
                "requests = {}: 1 to shape.rows = {} (each request has a target position more than drafts)",
                call.requests, shape.rows
            )));
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
            logprobs_pitch: 2,
        };
        let (shader, what) = if token_rows.processed() {
            (
                Shader::VerifyDraftsProcessed,
                "verifying drafts with token lists and masks",
            )
        } else {
            (Shader::VerifyDrafts, "verifying drafts")
        };
        self.check_storage_buffers(shader, what)?;
        let longest_list = call.lists.map(|lists| lists.longest_window());
        let size = match call.strategy {
            None => narrowest_fitting(self.is_cpu, &self.limits, self.loop_budget, |size| {
                verify_cost(shape.cols, size, longest_list)
            }),
            Some(Strategy::RowPerWorkgroup { size })
                if size.is_power_of_two() && (NARROWEST..=1024).contains(&size) =>
            {
                size
            }
            Some(other) => {
                return Err(invalid(format!(
                    "verify drafts runs as RowPerWorkgroup {{ size }}, size a power of two from {NARROWEST} to 1024, not {other:?}"
                )));
            }
        };
        let strategy = Strategy::RowPerWorkgroup { size };
        let mut args = token_rows.args()?;
        let requests = call.requests;
        let drafts = shape.rows - requests;
        let state_size = size_of::<RandomState>() as u64;
        args.extend([
            RowArg::read(
                "states",
                call.states,
                kernel::BINDING_STATES,
                (requests, 0),
                state_size,
            ),
            RowArg::read(
                "draft offsets",
                call.draft_offsets,
                verify::BINDING_OFFSETS,
                (requests + 1, 0),
                4,
            ),
            RowArg::write(
                "accepted",
                call.accepted,
                verify::BINDING_ACCEPTED,
                (requests, 0),
                4,
            ),
        ]);
        if drafts > 0 {
            args.push(RowArg::read(
                "drafts",
                call.drafts,
                verify::BINDING_DRAFTS,
                (drafts, 0),
                4,
            ));
            if let Some(probs) = call.draft_probs {
                let elements = u64::from(drafts) * u64::from(shape.cols);
                let elements = u32::try_from(elements).map_err(|_| {
                    Error::OverLimits(format!(
                        "draft_probs: {drafts} rows of K = {} are more than 2^32 - 1 values",
                        shape.cols
                    ))
                })?;
                args.push(RowArg::read(
                    "draft probabilities",
                    probs,
                    verify::BINDING_DRAFT_PROBS,
                    (elements, 0),
                    4,
                ));
            }
        }
        let rows = RowCall {
            shape,
            strategy,
            cost: verify_cost(shape.cols, size, longest_list),
            args,
            tau: Tau::Scalar(1.0),
            noise: NoisePosition::new(0, 0).with_range(call.noise_range),
            scratch: None,
        };
        let plan = self.check_rows(&rows)?;
        let positions = self.noise_pipeline(
            shader,
            Some(call.storage),
            &self.sampler_constants(size),
            call.noise_range,
        )?;
        let finish = self.pipeline(Shader::VerifyDraftsFinish, Some(call.storage), &[])?;
        // The positions' dispatches (several where one binding or dispatch cannot take every
        // row), then the requests' over the outputs bound whole.
        let mut last = None;
        self.each_part(&rows, &plan, |part| {
            let params = TokenParams {
                states_base: part.base(kernel::BINDING_STATES),
                requests,
                drafts_base: part.base(verify::BINDING_DRAFTS),
                offsets_base: part.base(verify::BINDING_OFFSETS),
                draft_probs_base: part.base(verify::BINDING_DRAFT_PROBS),
                has_draft_probs: u32::from(call.draft_probs.is_some() && drafts > 0),
                accepted_base: part.base(verify::BINDING_ACCEPTED),
                positions: shape.rows,
                ..token_rows.params(part)
            };
            last = Some(params);
            let optional = [verify::BINDING_DRAFTS, verify::BINDING_DRAFT_PROBS];
            let bindings = token_rows.bindings(part, self, &optional);
            self.dispatch_grid(
                encoder,
                &positions,
                bytemuck::bytes_of(&params),
                &bindings,
                strategy.grid(part.rows),
            )
        })?;
        let Some(last) = last else {
            return Ok(());
        };
        let rows = u64::from(shape.rows);
        let tokens = self.window(call.tokens, 0, rows, 4)?;
        let logprobs = match call.logprobs {
            Some(logprobs) => Some(self.window(logprobs, 0, 2 * rows, 4)?),
            None => None,
        };
        let offsets = self.window(call.draft_offsets, 0, u64::from(requests) + 1, 4)?;
        let accepted = self.window(call.accepted, 0, u64::from(requests), 4)?;
        let mut header = last.header;
        header.out_base = tokens.base;
        let params = TokenParams {
            header,
            logprobs_base: logprobs.as_ref().map_or(0, |w| w.base),
            offsets_base: offsets.base,
            accepted_base: accepted.base,
            ..last
        };
        let bindings = [
            (kernel::BINDING_TOKENS, tokens.binding()),
            (
                kernel::BINDING_LOGPROBS,
                logprobs
                    .as_ref()
                    .map_or_else(|| self.placeholder_out.as_entire_binding(), |w| w.binding()),
            ),
            (verify::BINDING_OFFSETS, offsets.binding()),
            (verify::BINDING_ACCEPTED, accepted.binding()),
        ];
        let groups = requests.div_ceil(verify::FINISH_SIZE);
        self.dispatch_grid(
            encoder,
            &finish,
            bytemuck::bytes_of(&params),
            &bindings,
            [groups, 1, 1],
        )
    }
}

/// The arguments of a host-slice verification ([`GpuContext::verify_drafts_async`]) besides
/// the target's logits: `requests = states.len()` requests, request `r` with the drafts
/// `drafts[draft_offsets[r] .. draft_offsets[r + 1]]` and as many target positions and one more,
/// request after request.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct VerifyArgs<'a> {
    /// K, the logits a position.
    pub cols: u32,
    /// One per target position.
    pub settings: &'a [TokenSettings],
    /// `requests + 1` offsets from 0 into `drafts`.
    pub draft_offsets: &'a [u32],
    /// The draft tokens.
    pub drafts: &'a [u32],
    /// A row of K probabilities a draft, each a distribution; `None`: drafts without them.
    pub draft_probs: Option<&'a [f32]>,
    /// One per request.
    pub states: &'a [RandomState],
    /// K values for every position, or a row of K each.
    pub bias: Option<&'a [f32]>,
    /// The token lists the positions' settings name.
    pub lists: Option<&'a [TokenEntry]>,
    /// Masks of [`mask_words`]`(K)` words each, that the positions' settings name.
    pub masks: Option<&'a [u32]>,
    /// Whether to return log-probabilities.
    pub logprobs: bool,
    /// One word of noise an element, or two.
    pub noise_range: NoiseRange,
    /// `None`: the default.
    pub strategy: Option<Strategy>,
}

impl<'a> VerifyArgs<'a> {
    /// Requests of drafts without probabilities, one state each; no bias, lists, masks or
    /// log-probabilities.
    pub fn new(
        cols: u32,
        settings: &'a [TokenSettings],
        draft_offsets: &'a [u32],
        drafts: &'a [u32],
        states: &'a [RandomState],
    ) -> Self {
        Self {
            cols,
            settings,
            draft_offsets,
            drafts,
            draft_probs: None,
            states,
            bias: None,
            lists: None,
            masks: None,
            logprobs: false,
            noise_range: NoiseRange::Standard,
            strategy: None,
        }
    }

    /// With the drafts' probabilities (`None`: none).
    pub fn with_draft_probs(self, draft_probs: impl Into<Option<&'a [f32]>>) -> Self {
        Self {
            draft_probs: draft_probs.into(),
            ..self
        }
    }

    /// Checks the requests' layout, drafts and draft probabilities, naming what is wrong.
    fn check(&self) -> Result<()> {
        let requests = self.states.len();
        if requests == 0 {
            return Err(invalid("states: no requests given (one state a request)"));
        }
        let offsets = self.draft_offsets;
        if offsets.len() != requests + 1 {
            return Err(invalid(format!(
                "draft_offsets: {} given for {requests} requests (one state each); requests + 1 are needed",
                offsets.len()
            )));
        }
        if offsets[0] != 0 {
            return Err(invalid(format!(
                "draft_offsets[0] = {}: the offsets start at 0",
                offsets[0]
            )));
        }
        if let Some(r) = (0..requests).find(|&r| offsets[r + 1] < offsets[r]) {
            return Err(invalid(format!(
                "draft_offsets[{}] = {} is below draft_offsets[{r}] = {}",
                r + 1,
                offsets[r + 1],
                offsets[r]
            )));
        }
        if offsets[requests] as usize != self.drafts.len() {
            return Err(invalid(format!(
                "draft_offsets[{requests}] = {}: {} drafts given",
                offsets[requests],
                self.drafts.len()
            )));
        }
        let positions = self.drafts.len() + requests;
        if self.settings.len() != positions {
            return Err(invalid(format!(
                "settings: {} given for {positions} target positions (the drafts and one more a request)",
                self.settings.len()
            )));
        }
        let cols = self.cols as usize;
        if let Some(i) = self.drafts.iter().position(|&d| d as usize >= cols) {
            return Err(invalid(format!(
                "drafts[{i}] = {}: not below K = {cols}",
                self.drafts[i]
            )));
        }
        if let Some(q) = self.draft_probs {
            if q.len() != self.drafts.len() * cols {
                return Err(invalid(format!(
                    "draft_probs: {} values given; {} drafts of K = {cols} take {}",
                    q.len(),
                    self.drafts.len(),
                    self.drafts.len() * cols
                )));
            }
            for (i, row) in q.chunks_exact(cols.max(1)).enumerate() {
                let sum: f64 = row.iter().map(|&v| f64::from(v)).sum();
                if row.iter().any(|v| !v.is_finite() || *v < 0.0) || (sum - 1.0).abs() > 1e-3 {
                    return Err(invalid(format!(
                        "draft_probs row {i}: not a distribution (finite, non-negative, summing to 1 within 1e-3; the sum is {sum})"
                    )));
                }
            }
        }
        Ok(())
    }
}

with_noise_range!(VerifyArgs);
with_host_row_inputs!(VerifyArgs);
with_strategy!(VerifyArgs);

/// The result of a host-slice verification, per request.
#[derive(Clone, Debug, PartialEq)]
pub struct Verified {
    /// How many drafts each request accepted.
    pub accepted: Vec<u32>,
    /// Each request's emitted tokens: the accepted drafts and one more (`u32::MAX` last where
    /// a position had no token).
    pub tokens: Vec<Vec<u32>>,
    /// If asked for, each emitted token's log-probability under `softmax(x)` and under the
    /// target's distribution at its position.
    pub logprobs: Vec<Vec<[f32; 2]>>,
}

impl GpuContext {
    /// The verification of draft tokens ([`VerifyDraftsCall`]) on host slices. Every argument
    /// is checked first (errors name it).
    pub async fn verify_drafts_async<T: Element>(
        &self,
        logits: &[T],
        args: &VerifyArgs<'_>,
    ) -> Result<Verified> {
        args.check()?;
        let uploaded = self.upload_token_rows(
            logits,
            args.cols,
            args.settings,
            args.bias,
            args.lists,
            args.masks,
        )?;
        let positions = uploaded.shape.rows as usize;
        let requests = args.states.len();
        let states = self.upload(args.states)?;
        let offsets = self.upload(args.draft_offsets)?;
        // A call without drafts binds none; its slice only has to be a buffer.
        let drafts = self.upload(if args.drafts.is_empty() {
            &[0]
        } else {
            args.drafts
        })?;
        let probs = args.draft_probs.map(|q| self.upload(q)).transpose()?;
        let tokens = self.storage_buffer(byte_size(self.kernels(), "tokens", positions, 4)?)?;
        let accepted = self.storage_buffer(byte_size(self.kernels(), "accepted", requests, 4)?)?;
        let logprobs = args
            .logprobs
            .then(|| {
                let bytes = byte_size(self.kernels(), "log-probabilities", 2 * positions, 4)?;
                self.storage_buffer(bytes)
            })
            .transpose()?;
        let mut call = VerifyDraftsCall::new(
            T::STORAGE,
            uploaded.shape,
            GpuSlice::from(&uploaded.logits),
            GpuSlice::from(&uploaded.settings),
            requests as u32,
            GpuSlice::from(&offsets),
            GpuSlice::from(&drafts),
            GpuSlice::from(&states),
            GpuSlice::from(&tokens),
            GpuSlice::from(&accepted),
        )
        .with_noise_range(args.noise_range)
        .with_strategy(args.strategy);
        call.bias = uploaded.bias();
        call.lists = uploaded.lists();
        call.masks = uploaded.masks();
        call.draft_probs = probs.as_ref().map(GpuSlice::from);
        call.logprobs = logprobs.as_ref().map(GpuSlice::from);
        self.submit("verify drafts", |encoder| {
            self.kernels().record_verify_drafts(encoder, &call)
        })
        .await?;
        let counts: Vec<u32> = self.read_back_async(&accepted, requests).await?;
        let slots: Vec<u32> = self.read_back_async(&tokens, positions).await?;
        let words: Vec<u32> = match &logprobs {
            Some(buffer) => self.read_back_async(buffer, 2 * positions).await?,
            None => Vec::new(),
        };
        let mut got = Verified {
            accepted: counts,
            tokens: Vec::with_capacity(requests),
            logprobs: Vec::new(),
        };
        for r in 0..requests {
            let first = args.draft_offsets[r] as usize + r;
            let drafts = (args.draft_offsets[r + 1] - args.draft_offsets[r]) as usize;
            // The checked offsets hold every request: at most its drafts are accepted.
            let emitted = (got.accepted[r] as usize).min(drafts) + 1;
            got.tokens.push(slots[first..first + emitted].to_vec());
            if args.logprobs {
                let pairs = words[2 * first..2 * (first + emitted)].chunks_exact(2);
                let pairs = pairs.map(|w| [f32::from_bits(w[0]), f32::from_bits(w[1])]);
                got.logprobs.push(pairs.collect());
            }
        }
        Ok(got)
    }
}

/// The blocking form of the call above, for native targets (see `host`).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::verify_drafts_async`], waiting for it.
    pub fn verify_drafts<T: Element>(
        &self,
        logits: &[T],
        args: &VerifyArgs<'_>,
    ) -> Result<Verified> {
        pollster::block_on(self.verify_drafts_async(logits, args))
    }
}

#![warn(missing_docs)]
//! Gumbel-Softmax (Concrete) sampling on the GPU with fused WGSL kernels, and its derivatives.
//!
//! For each row of `K` logits `l` the kernels draw Gumbel noise `g` and return
//! `softmax((l + g) / tau)` (soft), its logarithm (log-soft), the one-hot of its argmax (hard,
//! the straight-through estimator) or the argmax itself (index: a categorical sample), or the
//! `k` largest `l + g` (top-k: `k` categories without replacement). The backward (VJP) and
//! forward-mode (JVP) kernels take the sample saved by the forward pass, or make it again from
//! the logits and the same noise. The token sampler ([`SampleTokensCall`]) draws one token per
//! row as a language-model server does: per-row temperature (greedy below 1e-5), top-k, top-p,
//! min-p, soft cap and bias, a random state per request, and log-probabilities.
//!
//! The noise is never stored. Element `n = offset + r*K + k` of a call takes the `n`-th word of
//! a Philox4x32-10 stream keyed by `seed`, so the noise of an element depends on `(seed, n)`
//! alone: split a batch however you like and the bits are the same, on the GPU and on the CPU.
//! A [`Generator`] hands out `(seed, offset)` pairs, on the host or through a GPU-side counter.
//! With [`NoiseRange::Wide`] an element takes words `2n` and `2n + 1` instead: a 64-bit uniform,
//! whose Gumbel tail reaches 45.05 instead of 22.87.
//!
//! Two ways in:
//! - [`Kernels`] records into a caller's [`wgpu::CommandEncoder`] with the caller's buffers at
//!   byte offsets ([`ForwardCall`], [`VjpCall`], [`JvpCall`], [`TopKCall`],
//!   [`SampleTokensCall`], [`NoiseCall`], [`ConvertCall`]);
//!   nothing is read back, and pipelines are built once per device;
//! - [`GpuContext`] finds a device and adds a host-slice layer: slices in, `Vec` out. Each of
//!   its calls is an `async fn` (`sample_async`, ...) with a blocking form on native targets;
//!   in a browser (wasm32, WebGPU) the async forms are the way in.
//!
//! [`reference`](mod@reference) is the CPU reference in f64, on the same random words, that every
//! kernel is tested against. The contract (the math, the noise addressing, the layout, the accuracy
//! and the errors) is `docs/contract.md` in the repository; `docs/design.md` explains the
//! architecture. Every failure is an [`Error`] value whose message names the argument.
//!
//! Host slices in, samples out, checked against the reference:
//!
//! ```
//! use gumbel_wgpu::reference::{self, RowSample};
//! use gumbel_wgpu::{GpuContext, HostSource, Mode, SampleArgs};
//!
//! let ctx = GpuContext::new()?;
//! let logits = [0.5f32, -1.0, 2.0, 0.0, /* row 1 */ 1.0, 1.0, 1.0, f32::NEG_INFINITY];
//! let args = SampleArgs::new(2, 4, 0.5, 42);
//! let y = ctx.sample(&logits, Mode::Soft, &args)?;
//! let Ok(RowSample::Values(want)) = reference::forward_row(&logits[..4], 0.5, 42, 0, Mode::Soft)
//! else { unreachable!() };
//! assert!(y[..4].iter().zip(&want).all(|(a, b)| (f64::from(*a) - b).abs() < 1e-5));
//! assert_eq!(y[7], 0.0); // masked
//!
//! // The gradient of sum(y * dy) by the logits, with the sample recomputed from the same noise.
//! let dy = [1.0f32, 0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0];
//! let grad = ctx.vjp(HostSource::Recompute(&logits), &dy, Mode::Soft, &args)?;
//! assert_eq!(grad.dl[7], 0.0);
//! assert!(grad.dl.iter().sum::<f32>().abs() < 1e-5);
//! # Ok::<(), gumbel_wgpu::Error>(())
//! ```
//!
//! The noise of flat element `n` depends only on `(seed, n)`, on the GPU and on the CPU alike:
//!
//! ```
//! use gumbel_wgpu::philox::noise_word;
//! use gumbel_wgpu::reference::gumbel_of_word;
//! use gumbel_wgpu::philox::Philox4x32;
//! use rand_core::RngCore;
//!
//! let mut stream = Philox4x32::new(42, 1000);
//! assert_eq!(stream.next_u32(), noise_word(42, 1000));
//! let g = gumbel_of_word(noise_word(42, 1001));
//! assert!((-3.2..22.9).contains(&g));
//! ```

#[cfg(feature = "burn")]
pub mod burn;
mod context;
mod convert;
mod derivative;
mod error;
mod forward;
mod generator;
mod host;
mod kernels;
#[cfg(feature = "bench")]
pub mod measure;
mod noise;
pub mod philox;
pub mod reference;
mod row;
mod shaders;
mod tokens;
mod top_k;
mod types;

pub use context::{ADAPTER_ENV, GpuContext, LiveObjects};
pub use convert::{Conversion, ConvertCall};
pub use derivative::{Gradient, HostSource};
pub use derivative::{JvpCall, Source, TauGradient, TauTangent, VjpCall};
pub use error::{Error, NoSample, Result};
pub use forward::ForwardCall;
pub use generator::Generator;
pub use host::{HostTau, SampleArgs};
pub use kernels::{BlockOrder, GpuSlice, Kernels, NoiseMap, WideMultiply};
pub use noise::{GumbelOfWordsCall, NoiseCall, NoiseCountCall, NoiseOutput};
pub use row::{NoisePosition, Strategy, Tau, Temperature};
pub use tokens::{HostTokenNoise, TokenArgs, Tokens, TopLogprob, Verified, VerifyArgs};
pub use tokens::{
    RandomState, SPLIT_FROM, SampleTokensCall, TOP_LOGPROBS_MAX, TokenBias, TokenEntry, TokenLists,
    TokenMasks, TokenNoise, TokenSettings, VerifyDraftsCall, choose_sample_tokens, logprobs_pitch,
    mask_words,
};
pub use top_k::TopK;
pub use top_k::{MAX_K, MAX_K_PER_THREAD, TopKCall, choose_top_k};
pub use types::{Element, Mode, NoiseRange, Shape, StorageType};

//! Sampling on burn tensors of the wgpu backend, with and without autodiff (the `burn`
//! feature, pinned to burn 0.23.0-pre.1, the first burn on wgpu 30).
//!
//! The kernels run on the burn tensors' own buffers, on burn's own device and queue: [`init`]
//! (or [`init_with_setup`], for a device of the caller's) starts burn's wgpu runtime and gives
//! this crate its device. The category axis may be any axis: the kernels walk it at its stride
//! (a tensor is made contiguous first if it is not), so `dim = 1` of a `[B, K, H, W]` tensor
//! costs no transpose. The noise of element k of row r is word `offset + r K + k` of the seed's
//! stream, rows numbered by the other axes in order: the same samples as the tensor with `dim`
//! moved last.
//!
//! Gradients come from this crate's VJP kernel, which recomputes the sample from the logits and
//! the same noise: nothing but the logits (and the temperature) is kept for the backward pass.
//! Hard samples pass the soft sample's gradient straight through.
//!
//! ```no_run
//! use burn::tensor::{Distribution, Tensor};
//! use gumbel_wgpu::Generator;
//!
//! let device = gumbel_wgpu::burn::init()?.autodiff();
//! let logits = Tensor::<2>::random([64, 10], Distribution::Default, &device).require_grad();
//! let mut noise = Generator::new(7);
//! let y = gumbel_wgpu::burn::gumbel_softmax(logits.clone(), 0.5, false, -1, &mut noise)?;
//! // A loss that weighs the categories differently (each row of y sums to 1, so y.sum() would
//! // have a gradient of exactly zero).
//! let rewards = Tensor::<1>::from_floats([0., 1., 2., 3., 4., 5., 6., 7., 8., 9.], &device);
//! let grads = (y * rewards.unsqueeze()).sum().backward();
//! let dlogits = logits.grad(&grads);
//! # Ok::<(), gumbel_wgpu::Error>(())
//! ```

use ::burn::backend::autodiff::checkpoint::strategy::CheckpointStrategy;
use ::burn::backend::tensor::{FloatTensor, IntTensor};
use ::burn::backend::{Autodiff, AutodiffBackend};

pub(crate) mod extension;
pub use extension::*;

use ::burn_cubecl::CubeBackend;

impl GumbelOps for CubeBackend {
    fn gumbel_sample(
        logits: FloatTensor<Self>,
        tau: FloatTensor<Self>,
        spec: SampleSpec,
    ) -> FloatTensor<Self> {
        let (shape, dtype) = (logits.meta.shape().clone(), logits.dtype);
        crate::forward::burn::record(logits, Some(tau), spec, shape, dtype)
    }

    fn gumbel_index(logits: FloatTensor<Self>, spec: SampleSpec) -> IntTensor<Self> {
        crate::forward::burn::record_index(logits, spec)
    }

    fn gumbel_top_k(
        logits: FloatTensor<Self>,
        k: usize,
        spec: SampleSpec,
    ) -> (IntTensor<Self>, FloatTensor<Self>) {
        crate::top_k::burn::record(logits, k, spec)
    }

    fn gumbel_noise(like: FloatTensor<Self>, spec: SampleSpec) -> FloatTensor<Self> {
        crate::noise::burn::record(like, spec)
    }
}

impl GumbelGradOps for CubeBackend {
    fn gumbel_sample_vjp(
        logits: FloatTensor<Self>,
        tau: FloatTensor<Self>,
        dy: FloatTensor<Self>,
        spec: SampleSpec,
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        crate::derivative::burn::vjp(logits, tau, dy, spec)
    }
}

// The autodiff backend: the sample is tracked, the rest are constants.

impl<B: GumbelOps + GumbelGradOps, C: CheckpointStrategy> GumbelOps for Autodiff<B, C> {
    fn gumbel_sample(
        logits: FloatTensor<Self>,
        tau: FloatTensor<Self>,
        spec: SampleSpec,
    ) -> FloatTensor<Self> {
        crate::derivative::burn::tracked_sample::<B, C>(logits, tau, spec)
    }

    fn gumbel_index(logits: FloatTensor<Self>, spec: SampleSpec) -> IntTensor<Self> {
        B::gumbel_index(logits.into_primitive(), spec)
    }

    fn gumbel_top_k(
        logits: FloatTensor<Self>,
        k: usize,
        spec: SampleSpec,
    ) -> (IntTensor<Self>, FloatTensor<Self>) {
        let (indices, values) = B::gumbel_top_k(logits.into_primitive(), k, spec);
        (indices, Self::from_inner(values))
    }

    fn gumbel_noise(like: FloatTensor<Self>, spec: SampleSpec) -> FloatTensor<Self> {
        Self::from_inner(B::gumbel_noise(like.into_primitive(), spec))
    }
}

// The functions on tensors, each in its family's folder (`<family>/burn.rs`).

pub use crate::forward::burn::{gumbel_log_softmax, gumbel_max, gumbel_softmax};
pub use crate::noise::burn::gumbel_noise_like;
pub use crate::top_k::burn::gumbel_top_k;

//! The forward family on burn tensors: its op on burn's buffers, and the functions on tensors.

use ::burn::backend::Dispatch;
use ::burn::tensor::{DType, Int, Shape as TensorShape, Tensor};
use ::burn_cubecl::kernel::into_contiguous;
use ::burn_cubecl::tensor::CubeTensor;

use super::ForwardCall;
use crate::burn::extension::{
    GumbelOps, SampleSpec, Temperature, bind, context_for, empty_like, kernel_shape,
    kernel_storage, prepare, submit, temperatures,
};
use crate::error::Result;
use crate::{Generator, Mode, Tau};

/// The forward kernel of `spec.mode` from `logits` into a new tensor of `shape` and `dtype`,
/// at per-row temperatures `tau` (index mode takes none).
pub(crate) fn record(
    logits: CubeTensor,
    tau: Option<CubeTensor>,
    spec: SampleSpec,
    shape: TensorShape,
    dtype: DType,
) -> CubeTensor {
    let logits = into_contiguous(logits);
    let tau = tau.map(into_contiguous);
    let context = context_for(&logits);
    let out = empty_like(&logits, shape, dtype);
    let (l, o, t) = (bind(&logits), bind(&out), tau.as_ref().map(bind));
    let mut call = ForwardCall::new(
        spec.mode,
        kernel_storage(&logits),
        kernel_shape(&logits, spec.dim),
        l.slice(),
        o.slice(),
    )
    .with_noise(spec.seed, spec.offset)
    .with_noise_range(spec.range);
    if let Some(t) = &t {
        call = call.with_tau(Tau::PerRow(t.slice()));
    }
    submit(&context, "the sample", |e| {
        context.kernels().record_forward(e, &call)
    });
    out
}

/// The index sample of `logits` (i32, the category axis of size 1).
pub(crate) fn record_index(logits: CubeTensor, spec: SampleSpec) -> CubeTensor {
    let mut shape = logits.meta.shape().clone();
    shape[spec.dim] = 1;
    let spec = SampleSpec {
        mode: Mode::Index,
        ..spec
    };
    record(logits, None, spec, shape, DType::I32)
}

fn sample<const D: usize>(
    logits: Tensor<D>,
    tau: Temperature,
    mode: Mode,
    dim: isize,
    noise: &mut Generator,
) -> Result<Tensor<D>> {
    let device = logits.device();
    let (spec, tau) = prepare(&logits, dim, mode, noise, |rows| {
        temperatures(tau, rows.rows, &device)
    })?;
    Ok(Tensor::from_dispatch(Dispatch::gumbel_sample(
        logits.into_dispatch(),
        tau.into_dispatch(),
        spec,
    )))
}

/// The Gumbel-Softmax sample `softmax((logits + g) / tau)` over axis `dim` (negative: from the
/// end), or with `hard` its one-hot argmax, whose gradient is the soft sample's (the
/// straight-through estimator). f32, f16 or bf16 logits, on a device from [`init`](crate::burn::init); the noise
/// is `noise`'s next `logits.shape().num_elements()` words.
pub fn gumbel_softmax<const D: usize>(
    logits: Tensor<D>,
    tau: impl Into<Temperature>,
    hard: bool,
    dim: isize,
    noise: &mut Generator,
) -> Result<Tensor<D>> {
    let mode = if hard { Mode::Hard } else { Mode::Soft };
    sample(logits, tau.into(), mode, dim, noise)
}

/// The sample in log space, `log_softmax((logits + g) / tau)`, accurate where the soft sample
/// underflows.
pub fn gumbel_log_softmax<const D: usize>(
    logits: Tensor<D>,
    tau: impl Into<Temperature>,
    dim: isize,
    noise: &mut Generator,
) -> Result<Tensor<D>> {
    sample(logits, tau.into(), Mode::LogSoft, dim, noise)
}

/// The Gumbel-max sample: the index of the largest `logits + g` along `dim`, which keeps
/// size 1 (as burn's `argmax`). i32; -1 for a row without a sample (a NaN or +inf logit, or
/// every logit -inf). The same index as the hard sample's one-hot at the same noise.
pub fn gumbel_max<const D: usize>(
    logits: Tensor<D>,
    dim: isize,
    noise: &mut Generator,
) -> Result<Tensor<D, Int>> {
    let (spec, _) = prepare(&logits, dim, Mode::Index, noise, |_| Ok(()))?;
    Ok(Tensor::from_dispatch(Dispatch::gumbel_index(
        logits.into_dispatch(),
        spec,
    )))
}

//! Gumbel noise on burn tensors: its op on burn's buffers, and the function on tensors.

use ::burn::backend::Dispatch;
use ::burn::tensor::{DType, Shape as TensorShape, Tensor};
use ::burn_cubecl::tensor::CubeTensor;

use super::{NoiseCall, NoiseOutput};
use crate::burn::extension::{
    GumbelOps, Rows, SampleSpec, bind, context_for, empty_like, prepare, submit,
};
use crate::error::Result;
use crate::{Generator, Mode};

/// The noise op: the Gumbel noise of `like`'s rows (f32, rows x K).
pub(crate) fn record(like: CubeTensor, spec: SampleSpec) -> CubeTensor {
    let context = context_for(&like);
    let rows = Rows::of(like.meta.shape(), spec.dim);
    let out = empty_like(&like, TensorShape::from([rows.rows, rows.cols]), DType::F32);
    let o = bind(&out);
    let call = NoiseCall::new(
        spec.seed,
        spec.offset,
        (rows.rows * rows.cols) as u64,
        NoiseOutput::Gumbel,
        o.slice(),
    )
    .with_noise_range(spec.range);
    submit(&context, "the noise", |e| {
        context.kernels().record_noise(e, &call)
    });
    out
}

/// The Gumbel noise that a sample of `logits` along `dim` with `noise` would add (f32, shaped
/// as the logits), taken from `noise` the same way: for composing a sampler from burn's own
/// ops, and for tests.
pub fn gumbel_noise_like<const D: usize>(
    logits: &Tensor<D>,
    dim: isize,
    noise: &mut Generator,
) -> Result<Tensor<D>> {
    let (spec, rows) = prepare(logits, dim, Mode::Soft, noise, |rows| Ok(*rows))?;
    let dims = logits.dims();
    let outer = rows.rows / rows.inner;
    let flat =
        Tensor::<2>::from_dispatch(Dispatch::gumbel_noise(logits.clone().into_dispatch(), spec));
    // Row r = (o, i) holds the noise of the categories of (o, ., i).
    let grouped = flat.reshape([outer, rows.inner, rows.cols]).swap_dims(1, 2);
    Ok(grouped.reshape(dims))
}

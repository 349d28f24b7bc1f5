//! Gumbel-top-k on burn tensors: its op on burn's buffers, and the function on tensors.

use ::burn::backend::Dispatch;
use ::burn::tensor::{DType, Int, Tensor};
use ::burn_cubecl::kernel::into_contiguous;
use ::burn_cubecl::tensor::CubeTensor;

use super::TopKCall;
use crate::burn::extension::{
    GumbelOps, SampleSpec, bind, context_for, empty_like, kernel_shape, kernel_storage, prepare,
    submit, top_k_shape,
};
use crate::error::{Result, invalid};
use crate::{Generator, Mode};

/// The top-k op: `k` indices (i32) and values (f32) a row, in row order.
pub(crate) fn record(logits: CubeTensor, k: usize, spec: SampleSpec) -> (CubeTensor, CubeTensor) {
    let logits = into_contiguous(logits);
    let context = context_for(&logits);
    let shape = top_k_shape(logits.meta.shape(), k, &spec);
    let indices = empty_like(&logits, shape.clone(), DType::I32);
    let values = empty_like(&logits, shape, DType::F32);
    let (l, i, v) = (bind(&logits), bind(&indices), bind(&values));
    let call = TopKCall::new(
        kernel_storage(&logits),
        kernel_shape(&logits, spec.dim),
        k as u32,
        l.slice(),
        i.slice(),
        v.slice(),
    )
    .with_noise(spec.seed, spec.offset)
    .with_noise_range(spec.range);
    submit(&context, "top-k", |e| {
        context.kernels().record_top_k(e, &call)
    });
    (indices, values)
}

/// Gumbel-top-k: the perturbed values `logits + g` (in the logits' dtype) and the indices
/// (i32) of the `k` largest perturbed logits along `dim`, which becomes size `k`, largest
/// first: `k` draws without replacement. The order of burn's `topk_with_indices`: (values,
/// indices). A row with fewer than `k` valid logits pads with index -1 and value -inf; a row
/// without a sample (a NaN or +inf logit, or every logit -inf) has indices -1 and values NaN.
pub fn gumbel_top_k<const D: usize>(
    logits: Tensor<D>,
    k: usize,
    dim: isize,
    noise: &mut Generator,
) -> Result<(Tensor<D>, Tensor<D, Int>)> {
    let (spec, _) = prepare(&logits, dim, Mode::Index, noise, |rows| {
        if k == 0 || k > rows.cols || k > crate::MAX_K as usize {
            return Err(invalid(format!(
                "k = {k}: 1 to min(K = {}, {}) are possible",
                rows.cols,
                crate::MAX_K
            )));
        }
        Ok(())
    })?;
    let dtype = logits.dtype();
    // The kernel reads the rows in place and writes k per row in row order: the other axes in
    // order, then k, which moves back to `dim` (a copy of the outputs only).
    let mut dims = logits.dims();
    dims[spec.dim..].rotate_left(1);
    dims[D - 1] = k;
    let (indices, values) = Dispatch::gumbel_top_k(logits.into_dispatch(), k, spec);
    let indices = Tensor::<2, Int>::from_dispatch(indices).reshape(dims);
    let values = Tensor::<2>::from_dispatch(values).reshape(dims).cast(dtype);
    Ok((
        values.movedim(D - 1, spec.dim),
        indices.movedim(D - 1, spec.dim),
    ))
}

//! The host-slice form of the top_k calls: slices in, `Vec` out, on a [`GpuContext`].

use super::*;
use crate::context::GpuContext;
use crate::error::Result;
use crate::host::{SampleArgs, byte_size, check_host_args, no_sample};
use crate::kernels::GpuSlice;
use crate::types::Element;

/// The result of a host-slice top-k call: `k` entries per row, in decreasing order.
#[derive(Clone, Debug, PartialEq)]
pub struct TopK {
    /// Entries per row.
    pub k: u32,
    /// The chosen columns; `u32::MAX` past a row's valid logits.
    pub indices: Vec<u32>,
    /// Their perturbed logits `l + g`; -inf past a row's valid logits.
    pub values: Vec<f32>,
}

impl GpuContext {
    /// Gumbel-top-k ([`TopKCall`]): `k` categories per row without replacement, with the
    /// noise of `args.seed` and `args.offset`. `args.tau` plays no part, but is checked as in
    /// every call. A row without a valid logit, or with a NaN or +inf one, is an error.
    pub async fn top_k_async<T: Element>(
        &self,
        logits: &[T],
        k: u32,
        args: &SampleArgs<'_>,
    ) -> Result<TopK> {
        check_host_args("logits", logits, args)?;
        let shape = args.shape;
        let len = shape.rows as usize * k as usize;
        let input = self.upload(logits)?;
        let bytes = byte_size(self.kernels(), "top-k output", len, 4)?;
        let (indices, values) = (self.storage_buffer(bytes)?, self.storage_buffer(bytes)?);
        self.submit("top-k", |encoder| {
            self.kernels().record_top_k(
                encoder,
                &TopKCall {
                    storage: T::STORAGE,
                    shape,
                    k,
                    logits: GpuSlice::from(&input),
                    indices: GpuSlice::from(&indices),
                    values: GpuSlice::from(&values),
                    noise: args.noise(),
                    strategy: args.strategy,
                },
            )
        })
        .await?;
        let result = TopK {
            k,
            indices: self.read_back_async(&indices, len).await?,
            values: self.read_back_async(&values, len).await?,
        };
        if let Some(r) =
            (0..shape.rows as usize).find(|&r| result.indices[r * k as usize] == u32::MAX)
        {
            return Err(no_sample(logits, args, r));
        }
        Ok(result)
    }
}

/// The blocking forms of the calls above, for native targets (see `host`).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::top_k_async`], waiting for it.
    pub fn top_k<T: Element>(&self, logits: &[T], k: u32, args: &SampleArgs<'_>) -> Result<TopK> {
        pollster::block_on(self.top_k_async(logits, k, args))
    }
}

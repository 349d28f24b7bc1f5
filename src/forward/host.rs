//! The host-slice form of the forward calls: slices in, `Vec` out, on a [`GpuContext`].

use super::*;
use crate::context::GpuContext;
use crate::error::{Result, invalid};
use crate::host::{SampleArgs, byte_size, check_host_args, no_sample, tau_arg};
use crate::kernels::GpuSlice;
use crate::types::{Element, Mode};

impl GpuContext {
    /// Soft, log-soft or hard samples of `logits` (rows of `args.shape`), one `T` per element,
    /// `out_pitch` apart. A row without a sample is an error (`Error::NoSample`).
    pub async fn sample_async<T: Element>(
        &self,
        logits: &[T],
        mode: Mode,
        args: &SampleArgs<'_>,
    ) -> Result<Vec<T>> {
        if mode == Mode::Index {
            return Err(invalid("index mode writes u32 indices: use sample_indices"));
        }
        let shape = args.shape;
        let out_len = self.forward_host(logits, mode, args).await?;
        let out: Vec<T> = self.read_back_async(&out_len.0, out_len.1).await?;
        for r in 0..shape.rows as usize {
            let first = out[r * shape.out_pitch as usize].to_f32();
            if first.is_nan() {
                return Err(no_sample(logits, args, r));
            }
        }
        Ok(out)
    }

    /// One categorical sample (Gumbel-max) per row.
    pub async fn sample_indices_async<T: Element>(
        &self,
        logits: &[T],
        args: &SampleArgs<'_>,
    ) -> Result<Vec<u32>> {
        let (buffer, len) = self.forward_host(logits, Mode::Index, args).await?;
        let out: Vec<u32> = self.read_back_async(&buffer, len).await?;
        if let Some(r) = out.iter().position(|&i| i == u32::MAX) {
            return Err(no_sample(logits, args, r));
        }
        Ok(out)
    }

    /// Runs the forward kernel on host data; returns the output buffer and its element count.
    async fn forward_host<T: Element>(
        &self,
        logits: &[T],
        mode: Mode,
        args: &SampleArgs<'_>,
    ) -> Result<(wgpu::Buffer, usize)> {
        let shape = args.shape;
        check_host_args("logits", logits, args)?;
        let (len, elem_size) = match mode {
            Mode::Index => (shape.rows as usize, 4),
            _ => (shape.span(shape.out_pitch) as usize, T::STORAGE.size()),
        };
        let input = self.upload(logits)?;
        let out = self.storage_buffer(byte_size(self.kernels(), "output", len, elem_size)?)?;
        let tau_buffer = self.upload_per_row(args.tau)?;
        let tau = tau_arg(args.tau, &tau_buffer);
        self.submit("forward", |encoder| {
            self.kernels().record_forward(
                encoder,
                &ForwardCall {
                    mode,
                    storage: T::STORAGE,
                    shape,
                    logits: GpuSlice::from(&input),
                    out: GpuSlice::from(&out),
                    tau,
                    noise: args.noise(),
                    strategy: args.strategy,
                },
            )
        })
        .await?;
        Ok((out, len))
    }
}

/// The blocking forms of the calls above, for native targets (see `host`).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::sample_async`], waiting for it.
    pub fn sample<T: Element>(
        &self,
        logits: &[T],
        mode: Mode,
        args: &SampleArgs<'_>,
    ) -> Result<Vec<T>> {
        pollster::block_on(self.sample_async(logits, mode, args))
    }

    /// [`GpuContext::sample_indices_async`], waiting for it.
    pub fn sample_indices<T: Element>(
        &self,
        logits: &[T],
        args: &SampleArgs<'_>,
    ) -> Result<Vec<u32>> {
        pollster::block_on(self.sample_indices_async(logits, args))
    }
}

//! The host-slice form of the derivative calls: slices in, `Vec` out, on a [`GpuContext`].

use super::*;
use crate::context::GpuContext;
use crate::error::{Error, NoSample, Result, invalid};
use crate::host::{
    HostTau, SampleArgs, byte_size, check_host_args, check_values, no_sample, tau_arg,
};
use crate::kernels::{GpuSlice, Kernels};
use crate::row::Tau;
use crate::types::{Element, Mode};

/// Where a host-slice derivative gets the sample from (see [`Source`]).
#[derive(Clone, Copy, Debug)]
pub enum HostSource<'a, T> {
    /// The forward output: the soft sample for soft and hard, `log y` for log-soft.
    Saved(&'a [T]),
    /// The logits; the sample is recomputed with the call's seed and offset.
    Recompute(&'a [T]),
}

/// The result of a host-slice VJP.
#[derive(Clone, Debug, PartialEq)]
pub struct Gradient<T> {
    /// The gradient of the logits, at `out_pitch`.
    pub dl: Vec<T>,
    /// The gradient of each row's temperature, one value per row, whatever the call's
    /// temperature: for a per-row temperature, the gradient itself.
    pub dtau_rows: Vec<f32>,
    /// The sum of `dtau_rows`, added on the GPU in a fixed order (the same bits every run): the
    /// gradient of a scalar temperature that every row shares.
    pub dtau_sum: f32,
}

impl GpuContext {
    /// The VJP of the `mode` output (soft, log-soft or hard) for upstream gradient `dy` (at
    /// `out_pitch`), with the sample saved or recomputed. A row without a sample is an error
    /// ([`Error::NoSample`]); a `dy` or saved sample that is not finite is an
    /// [`Error::InvalidArgument`] that names it.
    pub async fn vjp_async<T: Element>(
        &self,
        source: HostSource<'_, T>,
        dy: &[T],
        mode: Mode,
        args: &SampleArgs<'_>,
    ) -> Result<Gradient<T>> {
        let shape = args.shape;
        let rows = shape.rows as usize;
        let dtau_rows = self.storage_buffer(byte_size(self.kernels(), "dtau", rows, 4)?)?;
        let dtau_sum = self.storage_buffer(4)?;
        let record = |kernels: &Kernels, encoder: &mut wgpu::CommandEncoder, call: HostBuffers| {
            kernels.record_vjp(
                encoder,
                &VjpCall {
                    mode,
                    storage: T::STORAGE,
                    shape,
                    source: call.source,
                    tau: call.tau,
                    dy: call.grad,
                    dl: call.out,
                    dtau: TauGradient::PerRow(GpuSlice::from(&dtau_rows)),
                    strategy: args.strategy,
                },
            )?;
            kernels.record_sum(
                encoder,
                &dtau_rows,
                shape.rows.into(),
                GpuSlice::from(&dtau_sum),
            )
        };
        let dl = self
            .derivative_host("dy", source, dy, mode, args, record)
            .await?;
        Ok(Gradient {
            dl,
            dtau_rows: self.read_back_async(&dtau_rows, rows).await?,
            dtau_sum: self.read_back_async::<f32>(&dtau_sum, 1).await?[0],
        })
    }

    /// The JVP of the `mode` output for tangents `dl` of the logits (at `out_pitch`) and
    /// `dtau` of the temperature (a scalar, or one value per row). Tangents that are not
    /// finite are refused with an [`Error::InvalidArgument`] that names them.
    pub async fn jvp_async<T: Element>(
        &self,
        source: HostSource<'_, T>,
        dl: &[T],
        dtau: HostTau<'_>,
        mode: Mode,
        args: &SampleArgs<'_>,
    ) -> Result<Vec<T>> {
        let shape = args.shape;
        let finite = |r: Option<usize>, t: f32| {
            if t.is_finite() {
                Ok(())
            } else {
                let at = r.map_or(String::new(), |r| format!(" of row {r}"));
                Err(invalid(format!(
                    "the tau tangent{at} is {t}: it must be finite"
                )))
            }
        };
        match dtau {
            HostTau::Scalar(t) => finite(None, t)?,
            HostTau::PerRow(values) => {
                if values.len() != shape.rows as usize {
                    return Err(invalid(format!(
                        "{} per-row tau tangents given for {} rows",
                        values.len(),
                        shape.rows
                    )));
                }
                for (r, &t) in values.iter().enumerate() {
                    finite(Some(r), t)?;
                }
            }
        }
        let tangent_buffer = self.upload_per_row(dtau)?;
        let record = |kernels: &Kernels, encoder: &mut wgpu::CommandEncoder, call: HostBuffers| {
            kernels.record_jvp(
                encoder,
                &JvpCall {
                    mode,
                    storage: T::STORAGE,
                    shape,
                    source: call.source,
                    tau: call.tau,
                    dl: call.grad,
                    dtau: match dtau {
                        HostTau::Scalar(t) => TauTangent::Scalar(t),
                        HostTau::PerRow(_) => TauTangent::PerRow(GpuSlice::from(&tangent_buffer)),
                    },
                    ydot: call.out,
                    strategy: args.strategy,
                },
            )
        };
        self.derivative_host("dl", source, dl, mode, args, record)
            .await
    }

    /// Checks and uploads a derivative's inputs (`grad` is named `grad_name` in errors),
    /// records it with `record`, and reads back its output.
    async fn derivative_host<T: Element>(
        &self,
        grad_name: &str,
        source: HostSource<'_, T>,
        grad: &[T],
        mode: Mode,
        args: &SampleArgs<'_>,
        record: impl FnOnce(&Kernels, &mut wgpu::CommandEncoder, HostBuffers) -> Result<()>,
    ) -> Result<Vec<T>> {
        let shape = args.shape;
        let (input, recompute) = match source {
            HostSource::Saved(y) => (y, false),
            HostSource::Recompute(logits) => (logits, true),
        };
        let input_name = if recompute {
            "logits"
        } else {
            "saved sample values"
        };
        check_host_args(input_name, input, args)?;
        let len = shape.span(shape.out_pitch) as usize;
        if grad.len() != len {
            return Err(invalid(format!(
                "{} {grad_name} elements given; {} rows of K = {} at pitch {} take {len}",
                grad.len(),
                shape.rows,
                shape.cols,
                shape.out_pitch
            )));
        }
        check_values(
            grad_name,
            grad,
            shape,
            shape.out_pitch,
            f32::is_finite,
            "it must be finite",
        )?;
        if !recompute {
            if mode == Mode::LogSoft {
                let log_y = |v: f32| v.is_finite() || v == f32::NEG_INFINITY;
                let expected = "a saved log-soft sample is finite or -inf";
                check_values(
                    "the saved sample",
                    input,
                    shape,
                    shape.in_pitch,
                    log_y,
                    expected,
                )?;
            } else {
                let expected = "a saved soft sample is finite (save a soft call's output)";
                check_values(
                    "the saved sample",
                    input,
                    shape,
                    shape.in_pitch,
                    f32::is_finite,
                    expected,
                )?;
            }
        }
        let input_buffer = self.upload(input)?;
        let grad_buffer = self.upload(grad)?;
        let out =
            self.storage_buffer(byte_size(self.kernels(), "output", len, T::STORAGE.size())?)?;
        let tau_buffer = self.upload_per_row(args.tau)?;
        let input_slice = GpuSlice::from(&input_buffer);
        let buffers = HostBuffers {
            source: if recompute {
                Source::recompute_with(input_slice, args.noise())
            } else {
                Source::Saved(input_slice)
            },
            tau: tau_arg(args.tau, &tau_buffer),
            grad: GpuSlice::from(&grad_buffer),
            out: GpuSlice::from(&out),
        };
        let kernels = self.kernels();
        self.submit("derivative", |encoder| record(kernels, encoder, buffers))
            .await?;
        let values: Vec<T> = self.read_back_async(&out, len).await?;
        for r in 0..shape.rows as usize {
            if values[r * shape.out_pitch as usize].to_f32().is_nan() {
                // Every input was checked, so a recomputed row's logits say why; a saved
                // sample can only have overflowed.
                return Err(if recompute {
                    no_sample(input, args, r)
                } else {
                    Error::NoSample {
                        row: r,
                        reason: NoSample::Overflow,
                    }
                });
            }
        }
        Ok(values)
    }
}

/// A host derivative call's uploaded buffers, as the kernels see them.
struct HostBuffers<'a> {
    source: Source<'a>,
    tau: Tau<'a>,
    grad: GpuSlice<'a>,
    out: GpuSlice<'a>,
}

/// The blocking forms of the calls above, for native targets (see `host`).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::vjp_async`], waiting for it.
    pub fn vjp<T: Element>(
        &self,
        source: HostSource<'_, T>,
        dy: &[T],
        mode: Mode,
        args: &SampleArgs<'_>,
    ) -> Result<Gradient<T>> {
        pollster::block_on(self.vjp_async(source, dy, mode, args))
    }

    /// [`GpuContext::jvp_async`], waiting for it.
    pub fn jvp<T: Element>(
        &self,
        source: HostSource<'_, T>,
        dl: &[T],
        dtau: HostTau<'_>,
        mode: Mode,
        args: &SampleArgs<'_>,
    ) -> Result<Vec<T>> {
        pollster::block_on(self.jvp_async(source, dl, dtau, mode, args))
    }
}

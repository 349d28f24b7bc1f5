//! The host-slice layer: slices in, `Vec` out, on a [`GpuContext`]. Each call uploads, records,
//! submits, waits and reads back; pipelines are still built once and reused.

use crate::context::GpuContext;
use crate::derivative::{JvpCall, Source, TauGradient, TauTangent, VjpCall};
use crate::error::{Error, Result, invalid};
use crate::forward::{ForwardCall, Strategy, Tau};
use crate::kernels::{GpuSlice, Kernels, buffer_with};
use crate::noise::{NoiseCall, NoiseOutput};
use crate::reference::NoSample;
use crate::top_k::TopKCall;
use crate::types::{Element, Mode, Shape, check_tau};

/// The temperature of a host-slice call.
#[derive(Clone, Copy, Debug)]
pub enum HostTau<'a> {
    /// One value for every row.
    Scalar(f32),
    /// One value per row.
    PerRow(&'a [f32]),
}

/// The parameters of a host-slice sampling call.
#[derive(Clone, Copy, Debug)]
pub struct SampleArgs<'a> {
    /// Rows, K and pitches of the host slices.
    pub shape: Shape,
    /// The temperature.
    pub tau: HostTau<'a>,
    /// The noise stream's seed.
    pub seed: u64,
    /// Flat noise index of row 0, column 0.
    pub offset: u64,
    /// `None`: [`Strategy::choose`].
    pub strategy: Option<Strategy>,
}

impl<'a> SampleArgs<'a> {
    /// Dense rows, a scalar temperature, offset 0, the default strategy.
    pub fn new(rows: u32, cols: u32, tau: f32, seed: u64) -> Self {
        Self {
            shape: Shape::new(rows, cols),
            tau: HostTau::Scalar(tau),
            seed,
            offset: 0,
            strategy: None,
        }
    }
}

impl GpuContext {
    /// A storage buffer holding `data` (padded to 4 bytes).
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T]) -> Result<wgpu::Buffer> {
        self.kernels().checked("upload", || {
            buffer_with(
                &self.device,
                "gumbel-wgpu upload",
                bytemuck::cast_slice(data),
                wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
            )
        })?
    }

    /// An uninitialised storage buffer of `bytes` (rounded up to 4) that can be read back.
    pub fn storage_buffer(&self, bytes: u64) -> wgpu::Buffer {
        self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gumbel-wgpu storage"),
            size: bytes.next_multiple_of(4).max(4),
            usage: wgpu::BufferUsages::STORAGE
                | wgpu::BufferUsages::COPY_SRC
                | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        })
    }

    /// Copies `count` elements of `T` from the start of `buffer` to the host.
    pub fn read_back<T: bytemuck::Pod>(
        &self,
        buffer: &wgpu::Buffer,
        count: usize,
    ) -> Result<Vec<T>> {
        let bytes = (count * std::mem::size_of::<T>()) as u64;
        let padded = bytes.next_multiple_of(4).max(4);
        let staging = self.device.create_buffer(&wgpu::BufferDescriptor {
            label: Some("gumbel-wgpu readback"),
            size: padded,
            usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
            mapped_at_creation: false,
        });
        let mut encoder = self.device.create_command_encoder(&Default::default());
        encoder.copy_buffer_to_buffer(buffer, 0, &staging, 0, padded);
        self.queue.submit([encoder.finish()]);
        let (tx, rx) = std::sync::mpsc::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        self.wait()?;
        rx.recv()
            .map_err(|e| Error::Map(e.to_string()))?
            .map_err(|e| Error::Map(e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Map(e.to_string()))?;
        let out = bytemuck::pod_collect_to_vec::<u8, T>(&view[..bytes as usize]);
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// A buffer with the per-row values of `tau` (a placeholder word for a scalar).
    fn upload_per_row(&self, tau: HostTau) -> Result<wgpu::Buffer> {
        match tau {
            HostTau::Scalar(_) => Ok(self.storage_buffer(4)),
            HostTau::PerRow(values) => self.upload(values),
        }
    }

    /// Records with `record` into a new encoder, submits it and waits, turning wgpu's
    /// validation and out-of-memory errors into values; `what` names the work in them.
    pub fn submit_and_wait(
        &self,
        what: &str,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        let kernels = self.kernels();
        kernels.checked(what, || -> Result<()> {
            let mut encoder = self.device.create_command_encoder(&Default::default());
            record(&mut encoder)?;
            self.queue.submit([encoder.finish()]);
            Ok(())
        })??;
        self.wait()
    }

    /// The raw words of flat elements `offset .. offset + count` of `seed`'s stream.
    pub fn noise_words(&self, seed: u64, offset: u64, count: usize) -> Result<Vec<u32>> {
        self.noise(seed, offset, count, NoiseOutput::Words)
    }

    /// The Gumbel noise of flat elements `offset .. offset + count` of `seed`'s stream.
    pub fn gumbel_noise(&self, seed: u64, offset: u64, count: usize) -> Result<Vec<f32>> {
        self.noise(seed, offset, count, NoiseOutput::Gumbel)
    }

    fn noise<T: bytemuck::Pod>(
        &self,
        seed: u64,
        offset: u64,
        count: usize,
        output: NoiseOutput,
    ) -> Result<Vec<T>> {
        let out = self.storage_buffer(count as u64 * 4);
        self.submit_and_wait("noise", |encoder| {
            self.kernels().record_noise(
                encoder,
                &NoiseCall {
                    seed,
                    offset,
                    count: count as u64,
                    output,
                    out: GpuSlice::from(&out),
                },
            )
        })?;
        self.read_back(&out, count)
    }

    /// The library's word-to-Gumbel map on the GPU, for words of the caller's choosing.
    pub fn gumbel_of_words(&self, words: &[u32]) -> Result<Vec<f32>> {
        let input = self.upload(words)?;
        let out = self.storage_buffer(words.len() as u64 * 4);
        self.submit_and_wait("gumbel_of_words", |encoder| {
            self.kernels().record_gumbel_of_words(
                encoder,
                GpuSlice::from(&input),
                GpuSlice::from(&out),
                words.len() as u64,
            )
        })?;
        self.read_back(&out, words.len())
    }

    /// Soft, log-soft or hard samples of `logits` (rows of `args.shape`), one `T` per element,
    /// `out_pitch` apart. A row without a sample is an error (`Error::NoSample`).
    pub fn sample<T: Element>(
        &self,
        logits: &[T],
        mode: Mode,
        args: &SampleArgs,
    ) -> Result<Vec<T>> {
        if mode == Mode::Index {
            return Err(invalid("index mode writes u32 indices: use sample_indices"));
        }
        let shape = args.shape;
        let out_len = self.forward_host(logits, mode, args)?;
        let out: Vec<T> = self.read_back(&out_len.0, out_len.1)?;
        for r in 0..shape.rows as usize {
            let first = out[r * shape.out_pitch as usize].to_f32();
            if first.is_nan() {
                return Err(no_sample(logits, args, r));
            }
        }
        Ok(out)
    }

    /// One categorical sample (Gumbel-max) per row.
    pub fn sample_indices<T: Element>(&self, logits: &[T], args: &SampleArgs) -> Result<Vec<u32>> {
        let (buffer, len) = self.forward_host(logits, Mode::Index, args)?;
        let out: Vec<u32> = self.read_back(&buffer, len)?;
        if let Some(r) = out.iter().position(|&i| i == u32::MAX) {
            return Err(no_sample(logits, args, r));
        }
        Ok(out)
    }

    /// Runs the forward kernel on host data; returns the output buffer and its element count.
    fn forward_host<T: Element>(
        &self,
        logits: &[T],
        mode: Mode,
        args: &SampleArgs,
    ) -> Result<(wgpu::Buffer, usize)> {
        let shape = args.shape;
        check_host_args(logits, args)?;
        let (len, elem_size) = match mode {
            Mode::Index => (shape.rows as usize, 4),
            _ => (shape.span(shape.out_pitch) as usize, T::STORAGE.size()),
        };
        let input = self.upload(logits)?;
        let out = self.storage_buffer(len as u64 * elem_size);
        let tau_buffer = self.upload_per_row(args.tau)?;
        let tau = tau_arg(args.tau, &tau_buffer);
        self.submit_and_wait("forward", |encoder| {
            self.kernels().record_forward(
                encoder,
                &ForwardCall {
                    mode,
                    storage: T::STORAGE,
                    shape,
                    logits: GpuSlice::from(&input),
                    out: GpuSlice::from(&out),
                    tau,
                    seed: args.seed,
                    offset: args.offset,
                    strategy: args.strategy,
                    counter: None,
                },
            )
        })?;
        Ok((out, len))
    }
}

/// Checks the input and temperatures of a host-slice call against its shape.
fn check_host_args<T>(input: &[T], args: &SampleArgs) -> Result<()> {
    let shape = args.shape;
    shape.validate()?;
    let needed = shape.span(shape.in_pitch);
    if input.len() as u64 != needed {
        return Err(invalid(format!(
            "{} logits given; {} rows of K = {} at pitch {} take {needed}",
            input.len(),
            shape.rows,
            shape.cols,
            shape.in_pitch
        )));
    }
    match args.tau {
        HostTau::Scalar(tau) => check_tau(tau),
        HostTau::PerRow(taus) => {
            if taus.len() != shape.rows as usize {
                return Err(invalid(format!(
                    "{} per-row temperatures given for {} rows",
                    taus.len(),
                    shape.rows
                )));
            }
            match taus
                .iter()
                .enumerate()
                .find(|(_, t)| check_tau(**t).is_err())
            {
                Some((r, tau)) => Err(invalid(format!(
                    "row {r}: {}",
                    check_tau(*tau).unwrap_err()
                ))),
                None => Ok(()),
            }
        }
    }
}

/// The kernels' view of a host temperature whose per-row values (if any) are in `buffer`.
fn tau_arg<'a>(tau: HostTau, buffer: &'a wgpu::Buffer) -> Tau<'a> {
    match tau {
        HostTau::Scalar(t) => Tau::Scalar(t),
        HostTau::PerRow(_) => Tau::PerRow(GpuSlice::from(buffer)),
    }
}

/// The error for row `r`, with the reason found on the host.
fn no_sample<T: Element>(logits: &[T], args: &SampleArgs, r: usize) -> Error {
    let shape = args.shape;
    let start = r * shape.in_pitch as usize;
    let row = &logits[start..start + shape.cols as usize];
    let reason = if let Some(k) = row.iter().position(|l| {
        let l = l.to_f32();
        l.is_nan() || l == f32::INFINITY
    }) {
        NoSample::InvalidLogit(k)
    } else if row.iter().all(|l| l.to_f32() == f32::NEG_INFINITY) {
        NoSample::AllMasked
    } else {
        // Large logits over a small tau overflow f32.
        return Error::NoSample {
            row: r,
            reason: "(l + g) / tau overflows f32".to_owned(),
        };
    };
    Error::NoSample {
        row: r,
        reason: reason.to_string(),
    }
}

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
    /// The temperature's gradient: one value per row for a per-row temperature, or one value
    /// (the sum over rows) for a scalar one.
    pub dtau: Vec<f32>,
}

impl GpuContext {
    /// The VJP of the `mode` output (soft, log-soft or hard) for upstream gradient `dy` (at
    /// `out_pitch`), with the sample saved or recomputed. A row without a sample is an error.
    pub fn vjp<T: Element>(
        &self,
        source: HostSource<T>,
        dy: &[T],
        mode: Mode,
        args: &SampleArgs,
    ) -> Result<Gradient<T>> {
        let shape = args.shape;
        let rows = shape.rows as usize;
        let dtau_len = match args.tau {
            HostTau::Scalar(_) => 1,
            HostTau::PerRow(_) => rows,
        };
        let dtau = self.storage_buffer(dtau_len as u64 * 4);
        let dl = self.derivative_host(source, dy, args, |kernels, encoder, call| {
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
                    dtau: match args.tau {
                        HostTau::Scalar(_) => TauGradient::Sum(GpuSlice::from(&dtau)),
                        HostTau::PerRow(_) => TauGradient::PerRow(GpuSlice::from(&dtau)),
                    },
                    strategy: args.strategy,
                },
            )
        })?;
        Ok(Gradient {
            dl,
            dtau: self.read_back(&dtau, dtau_len)?,
        })
    }

    /// The JVP of the `mode` output for tangents `dl` of the logits (at `out_pitch`) and
    /// `dtau` of the temperature (a scalar, or one value per row).
    pub fn jvp<T: Element>(
        &self,
        source: HostSource<T>,
        dl: &[T],
        dtau: HostTau,
        mode: Mode,
        args: &SampleArgs,
    ) -> Result<Vec<T>> {
        let shape = args.shape;
        if let HostTau::PerRow(values) = dtau
            && values.len() != shape.rows as usize
        {
            return Err(invalid(format!(
                "{} per-row tau tangents given for {} rows",
                values.len(),
                shape.rows
            )));
        }
        let tangent_buffer = self.upload_per_row(dtau)?;
        self.derivative_host(source, dl, args, |kernels, encoder, call| {
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
        })
    }

    /// Uploads a derivative's inputs, records it with `record`, and reads back its output.
    fn derivative_host<T: Element>(
        &self,
        source: HostSource<T>,
        grad: &[T],
        args: &SampleArgs,
        record: impl FnOnce(&Kernels, &mut wgpu::CommandEncoder, HostBuffers) -> Result<()>,
    ) -> Result<Vec<T>> {
        let shape = args.shape;
        let (input, recompute) = match source {
            HostSource::Saved(y) => (y, false),
            HostSource::Recompute(logits) => (logits, true),
        };
        check_host_args(input, args)?;
        let len = shape.span(shape.out_pitch) as usize;
        if grad.len() != len {
            return Err(invalid(format!(
                "{} gradient elements given; {} rows of K = {} at pitch {} take {len}",
                grad.len(),
                shape.rows,
                shape.cols,
                shape.out_pitch
            )));
        }
        let input_buffer = self.upload(input)?;
        let grad_buffer = self.upload(grad)?;
        let out = self.storage_buffer(len as u64 * T::STORAGE.size());
        let tau_buffer = self.upload_per_row(args.tau)?;
        let input_slice = GpuSlice::from(&input_buffer);
        let buffers = HostBuffers {
            source: if recompute {
                Source::Recompute {
                    logits: input_slice,
                    seed: args.seed,
                    offset: args.offset,
                    counter: None,
                }
            } else {
                Source::Saved(input_slice)
            },
            tau: tau_arg(args.tau, &tau_buffer),
            grad: GpuSlice::from(&grad_buffer),
            out: GpuSlice::from(&out),
        };
        let kernels = self.kernels();
        self.submit_and_wait("derivative", |encoder| record(kernels, encoder, buffers))?;
        let values: Vec<T> = self.read_back(&out, len)?;
        for r in 0..shape.rows as usize {
            if values[r * shape.out_pitch as usize].to_f32().is_nan() {
                return Err(if recompute {
                    no_sample(input, args, r)
                } else {
                    Error::NoSample {
                        row: r,
                        reason: "the derivative is NaN (is the saved sample NaN there?)".to_owned(),
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
    /// noise of `args.seed` and `args.offset` (`args.tau` plays no part). A row without a
    /// valid logit, or with a NaN or +inf one, is an error.
    pub fn top_k<T: Element>(&self, logits: &[T], k: u32, args: &SampleArgs) -> Result<TopK> {
        check_host_args(logits, args)?;
        let shape = args.shape;
        let len = shape.rows as usize * k as usize;
        let input = self.upload(logits)?;
        let (indices, values) = (
            self.storage_buffer(len as u64 * 4),
            self.storage_buffer(len as u64 * 4),
        );
        self.submit_and_wait("top-k", |encoder| {
            self.kernels().record_top_k(
                encoder,
                &TopKCall {
                    storage: T::STORAGE,
                    shape,
                    k,
                    logits: GpuSlice::from(&input),
                    indices: GpuSlice::from(&indices),
                    values: GpuSlice::from(&values),
                    seed: args.seed,
                    offset: args.offset,
                    counter: None,
                    strategy: args.strategy,
                },
            )
        })?;
        let result = TopK {
            k,
            indices: self.read_back(&indices, len)?,
            values: self.read_back(&values, len)?,
        };
        if let Some(r) =
            (0..shape.rows as usize).find(|&r| result.indices[r * k as usize] == u32::MAX)
        {
            return Err(no_sample(logits, args, r));
        }
        Ok(result)
    }
}

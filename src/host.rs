//! The host-slice layer: slices in, `Vec` out, on a [`GpuContext`]. Each call uploads, records,
//! submits, waits and reads back; pipelines are still built once and reused.

use crate::context::GpuContext;
use crate::convert::{Conversion, ConvertCall};
use crate::derivative::{JvpCall, Source, TauGradient, TauTangent, VjpCall};
use crate::error::{Error, NoSample, Result, invalid};
use crate::forward::ForwardCall;
use crate::kernels::{GpuSlice, Kernels, buffer_with};
use crate::noise::{GumbelOfWordsCall, NoiseCall, NoiseCountCall, NoiseOutput, check_count_args};
use crate::row::{Strategy, Tau};
use crate::tokens::{RandomState, SampleTokensCall, TokenBias, TokenNoise, TokenSettings};
use crate::top_k::TopKCall;
use crate::types::{Element, Mode, NoiseRange, Shape, StorageType, check_tau};

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
    /// One word of noise an element, or two (docs/contract.md, section 2).
    pub noise_range: NoiseRange,
    /// `None`: [`Strategy::choose`].
    pub strategy: Option<Strategy>,
}

impl<'a> SampleArgs<'a> {
    /// Dense rows, a scalar temperature, offset 0, the default strategy; the `with_` methods
    /// change the rest:
    ///
    /// ```
    /// # use gumbel_wgpu::{SampleArgs, Strategy};
    /// let taus = [0.5, 1.0, 2.0];
    /// let args = SampleArgs::new(3, 10, 1.0, 42)
    ///     .with_tau_per_row(&taus)
    ///     .with_offset(1 << 20)
    ///     .with_pitches(16, 12)
    ///     .with_strategy(Strategy::RowPerThread);
    /// assert_eq!(args.shape.in_pitch, 16);
    /// ```
    pub fn new(rows: u32, cols: u32, tau: f32, seed: u64) -> Self {
        Self {
            shape: Shape::new(rows, cols),
            tau: HostTau::Scalar(tau),
            seed,
            offset: 0,
            noise_range: NoiseRange::Standard,
            strategy: None,
        }
    }

    /// One word of noise an element, or two.
    pub fn with_noise_range(self, noise_range: NoiseRange) -> Self {
        Self {
            noise_range,
            ..self
        }
    }

    /// The flat noise index of row 0, column 0.
    pub fn with_offset(self, offset: u64) -> Self {
        Self { offset, ..self }
    }

    /// One temperature per row instead of the scalar.
    pub fn with_tau_per_row(self, taus: &'a [f32]) -> Self {
        Self {
            tau: HostTau::PerRow(taus),
            ..self
        }
    }

    /// Padded rows: `in_pitch` elements from one row of the input to the next, `out_pitch`
    /// of the output (see [`Shape::with_pitches`]).
    pub fn with_pitches(self, in_pitch: u32, out_pitch: u32) -> Self {
        Self {
            shape: self.shape.with_pitches(in_pitch, out_pitch),
            ..self
        }
    }

    /// A strategy of the caller's instead of [`Strategy::choose`].
    pub fn with_strategy(self, strategy: Strategy) -> Self {
        Self {
            strategy: Some(strategy),
            ..self
        }
    }
}

/// `count` elements of `size` bytes, or an error naming `what` when that passes 2^64 bytes or
/// the device's largest buffer.
fn byte_size(kernels: &Kernels, what: &str, count: usize, size: u64) -> Result<u64> {
    let bytes = u64::try_from(count)
        .ok()
        .and_then(|count| count.checked_mul(size));
    kernels.check_buffer_size(what, bytes)
}

impl GpuContext {
    /// A storage buffer holding `data` (padded to 4 bytes); an error where the device cannot
    /// hold it.
    pub fn upload<T: bytemuck::Pod>(&self, data: &[T]) -> Result<wgpu::Buffer> {
        let bytes = byte_size(self.kernels(), "upload", data.len(), size_of::<T>() as u64)?;
        self.kernels()
            .check_buffer_size("upload", Some(bytes.next_multiple_of(4)))?;
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

    /// A zeroed storage buffer of `bytes` (rounded up to 4) that can be read back; an error
    /// where the device cannot hold it.
    pub fn storage_buffer(&self, bytes: u64) -> Result<wgpu::Buffer> {
        let size = bytes.checked_next_multiple_of(4).map(|b| b.max(4));
        let size = self.kernels().check_buffer_size("storage buffer", size)?;
        self.kernels().checked("allocating a storage buffer", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("gumbel-wgpu storage"),
                size,
                usage: wgpu::BufferUsages::STORAGE
                    | wgpu::BufferUsages::COPY_SRC
                    | wgpu::BufferUsages::COPY_DST,
                mapped_at_creation: false,
            })
        })
    }

    /// Copies `count` elements of `T` from `from` (a buffer, or a buffer and a byte offset
    /// that is a multiple of `T`'s size) to the host. The buffer needs `COPY_SRC` usage.
    pub async fn read_back_async<'a, T: bytemuck::Pod>(
        &self,
        from: impl Into<GpuSlice<'a>>,
        count: usize,
    ) -> Result<Vec<T>> {
        let GpuSlice { buffer, offset } = from.into();
        let elem = size_of::<T>() as u64;
        let bytes = byte_size(self.kernels(), "read-back", count, elem)?;
        if !buffer.usage().contains(wgpu::BufferUsages::COPY_SRC) {
            return Err(invalid(format!(
                "read_back: the buffer lacks COPY_SRC usage (has {:?})",
                buffer.usage()
            )));
        }
        if elem > 0 && !offset.is_multiple_of(elem) {
            return Err(invalid(format!(
                "read_back: the offset {offset} is not a multiple of the element size {elem}"
            )));
        }
        if offset
            .checked_add(bytes)
            .is_none_or(|end| end > buffer.size())
        {
            return Err(invalid(format!(
                "read_back: the buffer holds {} bytes; {count} elements of {elem} bytes from offset {offset} need {}",
                buffer.size(),
                u128::from(offset) + u128::from(bytes)
            )));
        }
        if bytes == 0 {
            return Ok(Vec::new());
        }
        // Copies run in whole words: from the word holding the first byte to the one holding
        // the last, within the buffer (whose size is a multiple of 4 where it can be bound).
        let start = offset / 4 * 4;
        let end = (offset + bytes).next_multiple_of(4).min(buffer.size());
        let padded = end - start;
        let staging = self
            .kernels()
            .checked("allocating a read-back buffer", || {
                self.device.create_buffer(&wgpu::BufferDescriptor {
                    label: Some("gumbel-wgpu readback"),
                    size: padded.next_multiple_of(4),
                    usage: wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST,
                    mapped_at_creation: false,
                })
            })?;
        self.kernels()
            .checked_async("read-back copy", || {
                let mut encoder = self.device.create_command_encoder(&Default::default());
                encoder.copy_buffer_to_buffer(buffer, start, &staging, 0, padded);
                self.queue.submit([encoder.finish()]);
            })
            .await?;
        let (tx, rx) = futures_channel::oneshot::channel();
        staging.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        // Native wgpu maps inside a poll (which waits here); the browser maps on its own.
        self.wait_for_device()?;
        rx.await
            .map_err(|e| Error::Map(e.to_string()))?
            .map_err(|e| Error::Map(e.to_string()))?;
        let view = staging
            .get_mapped_range(..)
            .map_err(|e| Error::Map(e.to_string()))?;
        let lead = (offset - start) as usize;
        let out = bytemuck::pod_collect_to_vec::<u8, T>(&view[lead..lead + bytes as usize]);
        drop(view);
        staging.unmap();
        Ok(out)
    }

    /// A buffer with the per-row values of `tau` (a placeholder word for a scalar).
    fn upload_per_row(&self, tau: HostTau<'_>) -> Result<wgpu::Buffer> {
        match tau {
            HostTau::Scalar(_) => self.storage_buffer(4),
            HostTau::PerRow(values) => self.upload(values),
        }
    }

    /// Records with `record` into a new encoder, submits it and waits until the device has run
    /// it, turning wgpu's validation and out-of-memory errors into values; `what` names the work
    /// in them.
    pub async fn submit_async(
        &self,
        what: &str,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        self.submit(what, record).await?;
        self.wait_async().await
    }

    /// [`GpuContext::submit_async`] without the wait: the host-slice calls read back next,
    /// which waits for the queue anyway.
    async fn submit(
        &self,
        what: &str,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        self.kernels()
            .checked_async(what, || -> Result<()> {
                let mut encoder = self.device.create_command_encoder(&Default::default());
                record(&mut encoder)?;
                self.queue.submit([encoder.finish()]);
                Ok(())
            })
            .await?
    }

    /// The raw words of flat elements `offset .. offset + count` of `seed`'s stream.
    pub async fn noise_words_async(
        &self,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<u32>> {
        self.noise(
            seed,
            offset,
            count,
            NoiseOutput::Words,
            NoiseRange::Standard,
        )
        .await
    }

    /// The Gumbel noise of flat elements `offset .. offset + count` of `seed`'s stream.
    pub async fn gumbel_noise_async(
        &self,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<f32>> {
        self.gumbel_noise_in_async(NoiseRange::Standard, seed, offset, count)
            .await
    }

    /// [`GpuContext::gumbel_noise`] with one word an element or two.
    pub async fn gumbel_noise_in_async(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<f32>> {
        self.noise(seed, offset, count, NoiseOutput::Gumbel, range)
            .await
    }

    async fn noise<T: bytemuck::Pod>(
        &self,
        seed: u64,
        offset: u64,
        count: usize,
        output: NoiseOutput,
        range: NoiseRange,
    ) -> Result<Vec<T>> {
        let out = self.storage_buffer(byte_size(self.kernels(), "noise output", count, 4)?)?;
        self.submit("noise", |encoder| {
            self.kernels().record_noise(
                encoder,
                &NoiseCall {
                    seed,
                    offset,
                    count: count as u64,
                    output,
                    range,
                    out: GpuSlice::from(&out),
                },
            )
        })
        .await?;
        self.read_back_async(&out, count).await
    }

    /// How many of elements `offset .. offset + count` of `seed`'s stream have Gumbel noise in
    /// `range` above `threshold`, made and counted on the device ([`NoiseCountCall`]): `offset`
    /// and `count` multiples of 4. Submitted in parts of 2^28 elements.
    pub async fn count_noise_above_async(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: u64,
        threshold: f32,
    ) -> Result<u64> {
        const PART: u64 = 1 << 28;
        // The whole call is checked before any part runs, so that an error names the caller's
        // arguments and comes at once.
        check_count_args(offset, count, threshold)?;
        let mut total = 0;
        let mut done = 0;
        while done < count {
            let n = PART.min(count - done);
            let out = self.upload(&[0u32])?;
            self.submit("noise count", |encoder| {
                self.kernels().record_noise_count(
                    encoder,
                    &NoiseCountCall {
                        seed,
                        offset: offset.wrapping_add(done),
                        count: n,
                        range,
                        threshold,
                        out: GpuSlice::from(&out),
                    },
                )
            })
            .await?;
            total += u64::from(self.read_back_async::<u32>(&out, 1).await?[0]);
            done += n;
        }
        Ok(total)
    }

    /// The library's word-to-Gumbel map on the GPU, for words of the caller's choosing.
    pub async fn gumbel_of_words_async(&self, words: &[u32]) -> Result<Vec<f32>> {
        self.gumbel_of_words_in_async(NoiseRange::Standard, words)
            .await
    }

    /// [`GpuContext::gumbel_of_words`] with one word an element, or two (`words[2i]` the low
    /// half of element `i`; an even number of words).
    pub async fn gumbel_of_words_in_async(
        &self,
        range: NoiseRange,
        words: &[u32],
    ) -> Result<Vec<f32>> {
        let count = match range {
            NoiseRange::Standard => words.len(),
            NoiseRange::Wide if words.len().is_multiple_of(2) => words.len() / 2,
            NoiseRange::Wide => {
                return Err(invalid(format!(
                    "{} words given: a wide draw takes two",
                    words.len()
                )));
            }
        };
        let input = self.upload(words)?;
        let out = self.storage_buffer(byte_size(self.kernels(), "gumbel output", count, 4)?)?;
        self.submit("gumbel_of_words", |encoder| {
            self.kernels().record_gumbel_of_words(
                encoder,
                &GumbelOfWordsCall {
                    words: GpuSlice::from(&input),
                    out: GpuSlice::from(&out),
                    count: count as u64,
                    range,
                },
            )
        })
        .await?;
        self.read_back_async(&out, count).await
    }

    /// `values` in storage type `T`, converted on the device as the samplers convert their
    /// outputs (round to nearest, ties to even).
    pub async fn to_storage_async<T: Element>(&self, values: &[f32]) -> Result<Vec<T>> {
        self.convert(T::STORAGE, Conversion::Encode, values).await
    }

    /// `values` as f32, converted on the device as the samplers read their inputs.
    pub async fn from_storage_async<T: Element>(&self, values: &[T]) -> Result<Vec<f32>> {
        self.convert(T::STORAGE, Conversion::Decode, values).await
    }

    async fn convert<In: bytemuck::Pod, Out: bytemuck::Pod>(
        &self,
        storage: StorageType,
        conversion: Conversion,
        values: &[In],
    ) -> Result<Vec<Out>> {
        let out_size = size_of::<Out>() as u64;
        let bytes = byte_size(self.kernels(), "conversion output", values.len(), out_size)?;
        let out = self.storage_buffer(bytes)?;
        let input = self.upload(values)?;
        self.submit("conversion", |encoder| {
            self.kernels().record_convert(
                encoder,
                &ConvertCall {
                    storage,
                    conversion,
                    input: GpuSlice::from(&input),
                    out: GpuSlice::from(&out),
                    count: values.len() as u64,
                },
            )
        })
        .await?;
        self.read_back_async(&out, values.len()).await
    }

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
                    seed: args.seed,
                    offset: args.offset,
                    strategy: args.strategy,
                    counter: None,
                    noise_range: args.noise_range,
                },
            )
        })
        .await?;
        Ok((out, len))
    }
}

/// Checks the input and temperatures of a host-slice call against its shape.
fn check_host_args<T>(input_name: &str, input: &[T], args: &SampleArgs<'_>) -> Result<()> {
    let shape = args.shape;
    shape.validate()?;
    shape.require_adjacent("host slices")?;
    let needed = shape.span(shape.in_pitch);
    if input.len() as u64 != needed {
        return Err(invalid(format!(
            "{} {input_name} given; {} rows of K = {} at pitch {} take {needed}",
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
                    "the tau of row {r} is {tau}: a temperature must be finite and positive (at least {:e})",
                    f32::MIN_POSITIVE
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

/// The error for row `r` of `logits`, which has no sample on the GPU, with the reason found on
/// the host. The per-row temperatures were checked before the call, so what is left is the
/// row's logits, or f32 overflow.
fn no_sample<T: Element>(logits: &[T], args: &SampleArgs<'_>, r: usize) -> Error {
    let shape = args.shape;
    let row = &logits[r * shape.in_pitch as usize..][..shape.cols as usize];
    let reason = if let Some(k) = row.iter().position(|l| {
        let l = l.to_f32();
        l.is_nan() || l == f32::INFINITY
    }) {
        NoSample::InvalidLogit(k)
    } else if row.iter().all(|l| l.to_f32() == f32::NEG_INFINITY) {
        NoSample::AllMasked
    } else {
        NoSample::Overflow
    };
    Error::NoSample { row: r, reason }
}

/// Refuses a host array of `shape`'s rows at `pitch` (a gradient, a tangent or a saved sample)
/// that holds a value `allowed` refuses, naming the argument, the row and the column: the
/// kernels would turn it into a NaN row that no reason could explain.
fn check_values<T: Element>(
    what: &str,
    values: &[T],
    shape: Shape,
    pitch: u32,
    allowed: impl Fn(f32) -> bool,
    expected: &str,
) -> Result<()> {
    for r in 0..shape.rows as usize {
        let row = &values[r * pitch as usize..][..shape.cols as usize];
        if let Some(k) = row.iter().position(|v| !allowed(v.to_f32())) {
            return Err(invalid(format!(
                "{what} at row {r}, column {k} is {}: {expected}",
                row[k].to_f32()
            )));
        }
    }
    Ok(())
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
                Source::Recompute {
                    logits: input_slice,
                    seed: args.seed,
                    offset: args.offset,
                    counter: None,
                    range: args.noise_range,
                }
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
                    seed: args.seed,
                    offset: args.offset,
                    counter: None,
                    noise_range: args.noise_range,
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

/// Where the rows of a host-slice token-sampler call take their noise ([`TokenNoise`]).
#[derive(Clone, Copy, Debug)]
pub enum HostTokenNoise<'a> {
    /// One stream: row `r`, column `k` at flat index `offset + r*K + k`.
    Call {
        /// The seed.
        seed: u64,
        /// Flat noise index of row 0, column 0.
        offset: u64,
    },
    /// Row `r` takes `states[r]`.
    PerRow(&'a [RandomState]),
    /// Row `r` takes `states[index[r]]`.
    Indexed {
        /// The requests' states.
        states: &'a [RandomState],
        /// One entry per row.
        index: &'a [u32],
    },
}

/// The arguments of a host-slice token-sampler call besides the logits.
#[derive(Clone, Copy, Debug)]
pub struct TokenArgs<'a> {
    /// K, the logits per row (rows = `settings.len()`, dense).
    pub cols: u32,
    /// One per row.
    pub settings: &'a [TokenSettings],
    /// The noise.
    pub noise: HostTokenNoise<'a>,
    /// K values for every row, or `rows * K`.
    pub bias: Option<&'a [f32]>,
    /// Whether to return log-probabilities.
    pub logprobs: bool,
    /// One word of noise an element, or two (docs/contract.md, section 2).
    pub noise_range: NoiseRange,
    /// `None`: [`choose_sample_tokens`](crate::choose_sample_tokens).
    pub strategy: Option<Strategy>,
}

impl<'a> TokenArgs<'a> {
    /// Rows of `cols` logits with their `settings` and per-row `states`; no bias, no
    /// log-probabilities.
    pub fn new(cols: u32, settings: &'a [TokenSettings], states: &'a [RandomState]) -> Self {
        Self {
            cols,
            settings,
            noise: HostTokenNoise::PerRow(states),
            bias: None,
            logprobs: false,
            noise_range: NoiseRange::Standard,
            strategy: None,
        }
    }
}

/// The result of a host-slice token-sampler call.
#[derive(Clone, Debug, PartialEq)]
pub struct Tokens {
    /// One per row; `u32::MAX` for a row without a token (a NaN or +inf logit, every token
    /// masked or banned).
    pub tokens: Vec<u32>,
    /// Per row, if asked for: the token's log-probability under `softmax(x)` and under the
    /// distribution it was drawn from (NaN for a row without a token).
    pub logprobs: Vec<[f32; 2]>,
}

impl GpuContext {
    /// The token sampler ([`SampleTokensCall`]) on host slices. Every argument is checked
    /// first (errors name it); a row whose logits leave no token gets `u32::MAX` instead of
    /// failing the batch.
    pub async fn sample_tokens_async<T: Element>(
        &self,
        logits: &[T],
        args: &TokenArgs<'_>,
    ) -> Result<Tokens> {
        let rows = u32::try_from(args.settings.len())
            .map_err(|_| invalid(format!("{} rows: at most 2^32 - 1", args.settings.len())))?;
        let shape = Shape::new(rows, args.cols);
        shape.validate()?;
        let cells = rows as usize * args.cols as usize;
        if logits.len() != cells {
            return Err(invalid(format!(
                "{} logits given; {rows} rows (one per settings entry) of K = {} take {cells}",
                logits.len(),
                args.cols
            )));
        }
        for (r, settings) in args.settings.iter().enumerate() {
            settings.check(r, args.cols)?;
        }
        let per_row_bias = match args.bias {
            None => false,
            Some(bias) if bias.len() == args.cols as usize => false,
            Some(bias) if bias.len() == cells => true,
            Some(bias) => {
                return Err(invalid(format!(
                    "{} bias values given: K = {} for every row, or {cells} for {rows} rows",
                    bias.len(),
                    args.cols
                )));
            }
        };
        let upload_states = |states: &[RandomState]| self.upload(states);
        let (states, index) = match args.noise {
            HostTokenNoise::Call { .. } => (None, None),
            HostTokenNoise::PerRow(states) => {
                if states.len() != rows as usize {
                    return Err(invalid(format!(
                        "{} random states given for {rows} rows",
                        states.len()
                    )));
                }
                (Some(upload_states(states)?), None)
            }
            HostTokenNoise::Indexed { states, index } => {
                if index.len() != rows as usize {
                    return Err(invalid(format!(
                        "{} state index entries given for {rows} rows",
                        index.len()
                    )));
                }
                if let Some(r) = index.iter().position(|&i| i as usize >= states.len()) {
                    return Err(invalid(format!(
                        "state index[{r}] = {}: {} random states given",
                        index[r],
                        states.len()
                    )));
                }
                if states.is_empty() {
                    return Err(invalid("no random states given"));
                }
                (Some(upload_states(states)?), Some(self.upload(index)?))
            }
        };
        let noise = match (args.noise, &states, &index) {
            (HostTokenNoise::Call { seed, offset }, _, _) => TokenNoise::Call { seed, offset },
            (HostTokenNoise::PerRow(_), Some(states), _) => TokenNoise::PerRow {
                states: GpuSlice::from(states),
            },
            (HostTokenNoise::Indexed { states: host, .. }, Some(states), Some(index)) => {
                TokenNoise::Indexed {
                    states: GpuSlice::from(states),
                    count: host.len() as u32,
                    index: GpuSlice::from(index),
                }
            }
            _ => unreachable!("the states are uploaded for every kind of noise that has them"),
        };
        let input = self.upload(logits)?;
        let settings = self.upload(args.settings)?;
        let bias = args.bias.map(|b| self.upload(b)).transpose()?;
        let tokens = self.storage_buffer(byte_size(self.kernels(), "tokens", rows as usize, 4)?)?;
        let logprobs = args
            .logprobs
            .then(|| {
                let bytes = byte_size(self.kernels(), "log-probabilities", 2 * rows as usize, 4)?;
                self.storage_buffer(bytes)
            })
            .transpose()?;
        let mut call = SampleTokensCall::new(
            T::STORAGE,
            shape,
            GpuSlice::from(&input),
            GpuSlice::from(&settings),
            noise,
            GpuSlice::from(&tokens),
        );
        if let Some(bias) = &bias {
            call = call.with_bias(TokenBias {
                values: GpuSlice::from(bias),
                per_row: per_row_bias,
            });
        }
        if let Some(logprobs) = &logprobs {
            call = call.with_logprobs(GpuSlice::from(logprobs));
        }
        if let Some(strategy) = args.strategy {
            call = call.with_strategy(strategy);
        }
        call = call.with_noise_range(args.noise_range);
        self.submit("sample tokens", |encoder| {
            self.kernels().record_sample_tokens(encoder, &call)
        })
        .await?;
        Ok(Tokens {
            tokens: self.read_back_async(&tokens, rows as usize).await?,
            logprobs: match &logprobs {
                Some(buffer) => {
                    let flat: Vec<f32> = self.read_back_async(buffer, 2 * rows as usize).await?;
                    flat.chunks_exact(2).map(|p| [p[0], p[1]]).collect()
                }
                None => Vec::new(),
            },
        })
    }
}

/// The blocking forms of the host-slice calls, for native targets: each waits for its `_async`
/// form, which does the work (a browser cannot block, so wasm32 has only those).
#[cfg(not(target_arch = "wasm32"))]
impl GpuContext {
    /// [`GpuContext::read_back_async`], waiting for it.
    pub fn read_back<'a, T: bytemuck::Pod>(
        &self,
        from: impl Into<GpuSlice<'a>>,
        count: usize,
    ) -> Result<Vec<T>> {
        pollster::block_on(self.read_back_async(from, count))
    }

    /// [`GpuContext::submit_async`], waiting for it.
    pub fn submit_and_wait(
        &self,
        what: &str,
        record: impl FnOnce(&mut wgpu::CommandEncoder) -> Result<()>,
    ) -> Result<()> {
        pollster::block_on(self.submit_async(what, record))
    }

    /// [`GpuContext::noise_words_async`], waiting for it.
    pub fn noise_words(&self, seed: u64, offset: u64, count: usize) -> Result<Vec<u32>> {
        pollster::block_on(self.noise_words_async(seed, offset, count))
    }

    /// [`GpuContext::gumbel_noise_async`], waiting for it.
    pub fn gumbel_noise(&self, seed: u64, offset: u64, count: usize) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_noise_async(seed, offset, count))
    }

    /// [`GpuContext::gumbel_noise_in_async`], waiting for it.
    pub fn gumbel_noise_in(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: usize,
    ) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_noise_in_async(range, seed, offset, count))
    }

    /// [`GpuContext::count_noise_above_async`], waiting for it.
    pub fn count_noise_above(
        &self,
        range: NoiseRange,
        seed: u64,
        offset: u64,
        count: u64,
        threshold: f32,
    ) -> Result<u64> {
        pollster::block_on(self.count_noise_above_async(range, seed, offset, count, threshold))
    }

    /// [`GpuContext::gumbel_of_words_async`], waiting for it.
    pub fn gumbel_of_words(&self, words: &[u32]) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_of_words_async(words))
    }

    /// [`GpuContext::gumbel_of_words_in_async`], waiting for it.
    pub fn gumbel_of_words_in(&self, range: NoiseRange, words: &[u32]) -> Result<Vec<f32>> {
        pollster::block_on(self.gumbel_of_words_in_async(range, words))
    }

    /// [`GpuContext::to_storage_async`], waiting for it.
    pub fn to_storage<T: Element>(&self, values: &[f32]) -> Result<Vec<T>> {
        pollster::block_on(self.to_storage_async(values))
    }

    /// [`GpuContext::from_storage_async`], waiting for it.
    pub fn from_storage<T: Element>(&self, values: &[T]) -> Result<Vec<f32>> {
        pollster::block_on(self.from_storage_async(values))
    }

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

    /// [`GpuContext::top_k_async`], waiting for it.
    pub fn top_k<T: Element>(&self, logits: &[T], k: u32, args: &SampleArgs<'_>) -> Result<TopK> {
        pollster::block_on(self.top_k_async(logits, k, args))
    }

    /// [`GpuContext::sample_tokens_async`], waiting for it.
    pub fn sample_tokens<T: Element>(&self, logits: &[T], args: &TokenArgs<'_>) -> Result<Tokens> {
        pollster::block_on(self.sample_tokens_async(logits, args))
    }
}

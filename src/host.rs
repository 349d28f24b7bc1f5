//! The host-slice layer: slices in, `Vec` out, on a [`GpuContext`]. Each call uploads, records,
//! submits, waits and reads back; pipelines are still built once and reused.

use crate::context::GpuContext;
use crate::error::{Error, NoSample, Result, invalid};
use crate::kernels::{GpuSlice, Kernels, buffer_with};
use crate::row::{NoisePosition, Strategy, Tau, Temperature, with_noise_range, with_strategy};
use crate::types::{Element, NoiseRange, Shape, check_tau};

/// The temperature of a host-slice call: per-row values in a host slice.
pub type HostTau<'a> = Temperature<&'a [f32]>;

/// The parameters of a host-slice sampling call.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
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
    /// The noise position the kernels take: the seed, offset and range, no counter.
    pub(crate) fn noise(&self) -> NoisePosition<'static> {
        NoisePosition::new(self.seed, self.offset).with_range(self.noise_range)
    }

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

    /// Rows of any [`Shape`] (pitches, a category stride), with `tau`, offset 0, the standard
    /// noise range and the default strategy.
    pub fn for_shape(shape: Shape, tau: HostTau<'a>, seed: u64) -> Self {
        Self {
            shape,
            tau,
            ..Self::new(shape.rows, shape.cols, 1.0, seed)
        }
    }

    /// Rows of another [`Shape`].
    pub fn with_shape(self, shape: Shape) -> Self {
        Self { shape, ..self }
    }

    /// The temperature: a scalar, or one per row.
    pub fn with_tau(self, tau: HostTau<'a>) -> Self {
        Self { tau, ..self }
    }
}

with_noise_range!(SampleArgs);
with_strategy!(SampleArgs);

/// `count` elements of `size` bytes, or an error naming `what` when that passes 2^64 bytes or
/// the device's largest buffer.
pub(crate) fn byte_size(kernels: &Kernels, what: &str, count: usize, size: u64) -> Result<u64> {
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
    pub(crate) fn upload_per_row(&self, tau: HostTau<'_>) -> Result<wgpu::Buffer> {
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
    pub(crate) async fn submit(
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
}

/// Checks the input and temperatures of a host-slice call against its shape.
pub(crate) fn check_host_args<T>(
    input_name: &str,
    input: &[T],
    args: &SampleArgs<'_>,
) -> Result<()> {
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
pub(crate) fn tau_arg<'a>(tau: HostTau, buffer: &'a wgpu::Buffer) -> Tau<'a> {
    match tau {
        HostTau::Scalar(t) => Tau::Scalar(t),
        HostTau::PerRow(_) => Tau::PerRow(GpuSlice::from(buffer)),
    }
}

/// The error for row `r` of `logits`, which has no sample on the GPU, with the reason found on
/// the host. The per-row temperatures were checked before the call, so what is left is the
/// row's logits, or f32 overflow.
pub(crate) fn no_sample<T: Element>(logits: &[T], args: &SampleArgs<'_>, r: usize) -> Error {
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
pub(crate) fn check_values<T: Element>(
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

/// The blocking forms of the host-slice calls, for native targets: each waits for its `_async`
/// form, which does the work (a browser cannot block, so wasm32 has only those). Each family's
/// `host.rs` holds the blocking forms of its own calls.
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
}

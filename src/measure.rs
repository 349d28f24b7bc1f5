//! Timing kernels for benchmarks. GPU work is recorded first and timed with GPU timestamps
//! where the device has them, otherwise from submit to the end of a blocking poll, so that
//! recording, upload and readback stay out of the figures; many repetitions per submit
//! amortise the rest.
//!
//! On wasm32 the workloads and the copy and read yardsticks build, but the timer does not: a
//! page cannot block on the device, and `Instant` does not exist there; a page times the
//! workloads itself, around awaited submissions.

use std::time::Duration;
#[cfg(not(target_arch = "wasm32"))]
use std::time::Instant;

use crate::NoisePosition;
use crate::context::GpuContext;
use crate::derivative::{JvpCall, Source, TauTangent, VjpCall};
use crate::error::{Error, Result, invalid};
use crate::forward::ForwardCall;
use crate::kernels::{GpuSlice, Kernels};
use crate::noise::{NoiseCall, NoiseOutput};
use crate::row::{Strategy, Tau};
use crate::shaders::same_layout;
use crate::shaders::{self, Shader};
use crate::tokens::{
    RandomState, SampleTokensCall, TokenEntry, TokenLists, TokenMasks, TokenNoise, TokenSettings,
    VerifyDraftsCall, mask_words,
};
use crate::top_k::{MAX_K, TopKCall};
use crate::types::{Mode, NoiseRange, Shape, StorageType};

/// Seconds per repetition of what `record` records, over `reps` repetitions in one submit,
/// after one warm-up submit. Timed on the GPU with timestamp queries when the device has them
/// (written in the encoder before the first repetition and after the last), otherwise from
/// submit to the end of a blocking poll.
#[cfg(not(target_arch = "wasm32"))]
pub fn time_per_run(
    ctx: &GpuContext,
    reps: u32,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<Duration> {
    let timestamps = timestamps_available(ctx);
    let mut run = |n: u32| -> Result<Duration> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        let stamps = timestamps.then(|| Timestamps::new(ctx));
        if let Some(t) = &stamps {
            encoder.write_timestamp(&t.set, 0);
        }
        for _ in 0..n {
            record(&mut encoder)?;
        }
        if let Some(t) = &stamps {
            encoder.write_timestamp(&t.set, 1);
            t.resolve(&mut encoder);
        }
        let commands = encoder.finish();
        let start = Instant::now();
        ctx.queue.submit([commands]);
        ctx.wait()?;
        let wall = start.elapsed();
        match &stamps {
            Some(t) => t.elapsed(ctx),
            None => Ok(wall),
        }
    };
    run(1)?;
    Ok(run(reps)? / reps)
}

/// Whether [`time_per_run`] times on the GPU (timestamp queries inside encoders), unless
/// `GUMBEL_BENCH_WALL_CLOCK` is set, to compare the two timers.
pub fn timestamps_available(ctx: &GpuContext) -> bool {
    std::env::var_os("GUMBEL_BENCH_WALL_CLOCK").is_none()
        && ctx.device.features().contains(
            wgpu::Features::TIMESTAMP_QUERY | wgpu::Features::TIMESTAMP_QUERY_INSIDE_ENCODERS,
        )
}

/// Two GPU timestamps and the buffers that bring them back.
#[cfg(not(target_arch = "wasm32"))]
struct Timestamps {
    set: wgpu::QuerySet,
    resolved: wgpu::Buffer,
    readback: wgpu::Buffer,
}

#[cfg(not(target_arch = "wasm32"))]
impl Timestamps {
    fn new(ctx: &GpuContext) -> Self {
        let buffer = |usage| {
            ctx.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("gumbel-wgpu timestamps"),
                size: 16,
                usage,
                mapped_at_creation: false,
            })
        };
        Self {
            set: ctx.device.create_query_set(&wgpu::QuerySetDescriptor {
                label: Some("gumbel-wgpu timestamps"),
                ty: wgpu::QueryType::Timestamp,
                count: 2,
            }),
            resolved: buffer(wgpu::BufferUsages::QUERY_RESOLVE | wgpu::BufferUsages::COPY_SRC),
            readback: buffer(wgpu::BufferUsages::MAP_READ | wgpu::BufferUsages::COPY_DST),
        }
    }

    fn resolve(&self, encoder: &mut wgpu::CommandEncoder) {
        encoder.resolve_query_set(&self.set, 0..2, &self.resolved, 0);
        encoder.copy_buffer_to_buffer(&self.resolved, 0, &self.readback, 0, 16);
    }

    /// The time between the two stamps, after the submission has finished.
    fn elapsed(&self, ctx: &GpuContext) -> Result<Duration> {
        let (tx, rx) = std::sync::mpsc::channel();
        self.readback.map_async(wgpu::MapMode::Read, .., move |r| {
            let _ = tx.send(r);
        });
        ctx.wait()?;
        rx.recv()
            .map_err(|e| Error::Map(e.to_string()))?
            .map_err(|e| Error::Map(e.to_string()))?;
        let ticks: Vec<u64> = {
            let view = self
                .readback
                .get_mapped_range(..)
                .map_err(|e| Error::Map(e.to_string()))?;
            bytemuck::pod_collect_to_vec(&view[..])
        };
        self.readback.unmap();
        let ns =
            ticks[1].saturating_sub(ticks[0]) as f64 * f64::from(ctx.queue.get_timestamp_period());
        Ok(Duration::from_secs_f64(ns * 1e-9))
    }
}

/// Bytes a kernel must move per second, in GB/s.
pub fn gb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e9
}

/// A kernel the benchmarks time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Kernel {
    /// A forward pass.
    Forward(Mode),
    /// The soft sample's VJP, from the saved sample or recomputed from the logits.
    Vjp {
        /// Recomputed from the logits, or from the saved sample.
        recompute: bool,
    },
    /// Gumbel-top-k with this k (default strategy).
    TopK {
        /// Categories per row.
        k: u32,
    },
    /// The soft sample's JVP, from the saved sample or recomputed from the logits.
    Jvp {
        /// Recomputed from the logits, or from the saved sample.
        recompute: bool,
    },
}

impl Kernel {
    /// Every kernel of the benchmark matrix.
    pub const ALL: [Kernel; 8] = [
        Kernel::Forward(Mode::Soft),
        Kernel::Forward(Mode::LogSoft),
        Kernel::Forward(Mode::Hard),
        Kernel::Forward(Mode::Index),
        Kernel::Vjp { recompute: false },
        Kernel::Vjp { recompute: true },
        Kernel::Jvp { recompute: false },
        Kernel::Jvp { recompute: true },
    ];

    /// A name for tables.
    pub fn name(self) -> String {
        let source = |recompute| if recompute { "recompute" } else { "saved" };
        match self {
            Kernel::Forward(mode) => format!("forward {mode:?}"),
            Kernel::Vjp { recompute } => format!("VJP {}", source(recompute)),
            Kernel::Jvp { recompute } => format!("JVP {}", source(recompute)),
            Kernel::TopK { k } => format!("top-{k}"),
        }
    }
}

/// Buffers to run every benchmarked kernel at one shape and storage type.
pub struct Workload {
    /// Rows and K (dense).
    pub shape: Shape,
    /// Storage of every buffer.
    pub storage: StorageType,
    /// The noise range of the kernels that make noise (standard unless set).
    pub noise_range: NoiseRange,
    logits: wgpu::Buffer,
    /// A soft sample (any values do for timing) and an upstream gradient.
    saved: wgpu::Buffer,
    grad: wgpu::Buffer,
    out: wgpu::Buffer,
    top_indices: wgpu::Buffer,
    top_values: wgpu::Buffer,
    /// The unfused baseline's noise, in memory.
    noise: wgpu::Buffer,
}

impl Workload {
    /// Buffers for `rows` x `cols` in `storage`, filled with fixed non-constant values.
    pub fn new(ctx: &GpuContext, rows: u32, cols: u32, storage: StorageType) -> Result<Self> {
        let n = u64::from(rows) * u64::from(cols);
        let values = |scale: f32, shift: f32| -> Vec<f32> {
            (0..n)
                .map(|i| ((i.wrapping_mul(2_654_435_761) % 1000) as f32) * scale + shift)
                .collect()
        };
        let upload = |v: Vec<f32>| match storage {
            StorageType::F32 => ctx.upload(&v),
            StorageType::F16 => {
                ctx.upload(&v.into_iter().map(half::f16::from_f32).collect::<Vec<_>>())
            }
            StorageType::Bf16 => {
                ctx.upload(&v.into_iter().map(half::bf16::from_f32).collect::<Vec<_>>())
            }
        };
        Ok(Self {
            shape: Shape::new(rows, cols),
            storage,
            noise_range: NoiseRange::Standard,
            logits: upload(values(0.004, -2.0))?,
            saved: upload(values(1.0 / (1000.0 * cols as f32), 0.0))?,
            grad: upload(values(0.002, -1.0))?,
            out: ctx.storage_buffer(n * storage.size())?,
            top_indices: ctx.storage_buffer(u64::from(rows) * u64::from(MAX_K) * 4)?,
            top_values: ctx.storage_buffer(u64::from(rows) * u64::from(MAX_K) * 4)?,
            noise: ctx.storage_buffer(n * 4)?,
        })
    }

    /// The bytes `kernel` must move (docs/design.md, "Measuring"): the forward reads the logits and
    /// writes the output (4 bytes a row in index mode); a derivative reads y or the logits and the
    /// incoming gradient, and writes its output.
    pub fn bytes(&self, kernel: Kernel) -> u64 {
        let elements = self.shape.noise_elements() * self.storage.size();
        match kernel {
            Kernel::Forward(Mode::Index) => elements + u64::from(self.shape.rows) * 4,
            Kernel::Forward(_) => 2 * elements,
            Kernel::Vjp { .. } | Kernel::Jvp { .. } => 3 * elements,
            // The logits, and an index and a value per category drawn.
            Kernel::TopK { k } => elements + u64::from(self.shape.rows) * u64::from(k) * 8,
        }
    }

    /// Records the unfused baseline of the soft forward (f32 only), as PyTorch computes it:
    /// the noise kernel writes Gumbel noise to memory, then a softmax kernel reads it back with
    /// the logits. It moves twice the fused kernel's bytes.
    pub fn record_unfused(
        &self,
        kernels: &Kernels,
        encoder: &mut wgpu::CommandEncoder,
        seed: u64,
    ) -> Result<()> {
        let shape = self.shape;
        if self.storage != StorageType::F32 {
            return Err(invalid("the unfused baseline is f32 only"));
        }
        if let Some(budget) = kernels.loop_budget
            && 2 * u64::from(shape.cols) > budget
        {
            return Err(Error::OverLimits(format!(
                "the unfused baseline walks a row twice per invocation: K = {} is over this driver's loop budget",
                shape.cols
            )));
        }
        kernels.record_noise(
            encoder,
            &NoiseCall::new(
                seed,
                0,
                shape.noise_elements(),
                NoiseOutput::Gumbel,
                GpuSlice::from(&self.noise),
            ),
        )?;
        let params = UnfusedParams {
            rows: shape.rows,
            cols: shape.cols,
            tau: 0.7,
            _pad: 0,
        };
        let pipeline = kernels.pipeline(Shader::UnfusedSoftmax, None, &[])?;
        kernels.dispatch(
            encoder,
            &pipeline,
            bytemuck::bytes_of(&params),
            &[
                self.logits.as_entire_binding(),
                self.noise.as_entire_binding(),
                self.out.as_entire_binding(),
            ],
            shape.rows.div_ceil(64),
        )
    }

    /// Records one run of `kernel`.
    pub fn record(
        &self,
        kernels: &Kernels,
        encoder: &mut wgpu::CommandEncoder,
        kernel: Kernel,
        strategy: Option<Strategy>,
        seed: u64,
    ) -> Result<()> {
        let tau = Tau::Scalar(0.7);
        let source = |recompute| {
            if recompute {
                Source::recompute_with(
                    GpuSlice::from(&self.logits),
                    NoisePosition::new(seed, 0).with_range(self.noise_range),
                )
            } else {
                Source::Saved(GpuSlice::from(&self.saved))
            }
        };
        let (shape, storage) = (self.shape, self.storage);
        match kernel {
            Kernel::Forward(mode) => kernels.record_forward(
                encoder,
                &ForwardCall::new(
                    mode,
                    storage,
                    shape,
                    GpuSlice::from(&self.logits),
                    GpuSlice::from(&self.out),
                )
                .with_tau(tau)
                .with_noise(seed, 0)
                .with_noise_range(self.noise_range)
                .with_strategy(strategy),
            ),
            Kernel::Vjp { recompute } => kernels.record_vjp(
                encoder,
                &VjpCall::new(
                    Mode::Soft,
                    storage,
                    shape,
                    source(recompute),
                    GpuSlice::from(&self.grad),
                    GpuSlice::from(&self.out),
                )
                .with_tau(tau)
                .with_strategy(strategy),
            ),
            Kernel::TopK { k } => kernels.record_top_k(
                encoder,
                &TopKCall::new(
                    storage,
                    shape,
                    k,
                    GpuSlice::from(&self.logits),
                    GpuSlice::from(&self.top_indices),
                    GpuSlice::from(&self.top_values),
                )
                .with_noise(seed, 0)
                .with_noise_range(self.noise_range)
                .with_strategy(strategy),
            ),
            Kernel::Jvp { recompute } => kernels.record_jvp(
                encoder,
                &JvpCall::new(
                    Mode::Soft,
                    storage,
                    shape,
                    source(recompute),
                    GpuSlice::from(&self.grad),
                    GpuSlice::from(&self.out),
                )
                .with_tau(tau)
                .with_dtau(TauTangent::Scalar(0.1))
                .with_strategy(strategy),
            ),
        }
    }
}

/// Buffers for a copy kernel that moves `bytes` in all (half read, half written): the
/// bandwidth yardstick of a kernel that moves as many.
pub struct CopyWorkload {
    src: wgpu::Buffer,
    dst: wgpu::Buffer,
    half: u64,
}

impl CopyWorkload {
    /// Buffers for a copy of `bytes` in all.
    pub fn new(ctx: &GpuContext, bytes: u64) -> Result<Self> {
        let half = (bytes / 2).next_multiple_of(16);
        Ok(Self {
            src: ctx.upload(&vec![0x3f80_0001u32; (half / 4) as usize])?,
            dst: ctx.storage_buffer(half)?,
            half,
        })
    }

    /// Records one copy.
    pub fn record(&self, kernels: &Kernels, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        kernels.record_copy(encoder, &self.src, &self.dst, self.half)
    }
}

/// Buffers for a read-only pass over `bytes`: the yardstick of kernels that read much and
/// write little (top-k).
pub struct ReadWorkload {
    src: wgpu::Buffer,
    sink: wgpu::Buffer,
    bytes: u64,
}

impl ReadWorkload {
    /// Buffers for a read of `bytes` (rounded up to 16).
    pub fn new(ctx: &GpuContext, bytes: u64) -> Result<Self> {
        let bytes = bytes.next_multiple_of(16);
        Ok(Self {
            src: ctx.upload(&vec![0x3f80_0001u32; (bytes / 4) as usize])?,
            sink: ctx.storage_buffer(4)?,
            bytes,
        })
    }

    /// Records one read.
    pub fn record(&self, kernels: &Kernels, encoder: &mut wgpu::CommandEncoder) -> Result<()> {
        kernels.record_read(encoder, &self.src, self.bytes, &self.sink)
    }
}

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct CopyParams {
    count: u32,
    _pad0: u32,
    _pad1: u32,
    _pad2: u32,
}
same_layout!(
    CopyParams = CopyParams {
        count,
        _pad0,
        _pad1,
        _pad2
    }
);
same_layout!(
    CopyParams = ReadParams {
        count,
        _pad0,
        _pad1,
        _pad2
    }
);

#[repr(C)]
#[derive(Clone, Copy, bytemuck::Pod, bytemuck::Zeroable)]
struct UnfusedParams {
    rows: u32,
    cols: u32,
    tau: f32,
    _pad: u32,
}
same_layout!(
    UnfusedParams = UnfusedParams {
        rows,
        cols,
        tau,
        _pad
    }
);

impl Kernels {
    /// Records a read-only pass over the first `bytes` (a multiple of 16) of `src`: the
    /// yardstick of kernels that read much and write little. `sink` (4 bytes or more) is
    /// practically never written.
    pub fn record_read(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        bytes: u64,
        sink: &wgpu::Buffer,
    ) -> Result<()> {
        if !bytes.is_multiple_of(16) || bytes > src.size() {
            return Err(invalid(format!(
                "read of {bytes} bytes: a multiple of 16 within the buffer's {} is needed",
                src.size()
            )));
        }
        let pipeline = self.pipeline(Shader::Read, None, &[])?;
        // One binding at a time, in chunks the device can bind.
        let chunk = self.max_binding() / 256 * 256;
        let mut start = 0;
        while start < bytes {
            let len = chunk.min(bytes - start);
            let count = len / 16;
            let params = CopyParams {
                count: count as u32,
                _pad0: 0,
                _pad1: 0,
                _pad2: 0,
            };
            let window = wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer: src,
                offset: start,
                size: wgpu::BufferSize::new(len),
            });
            let groups = count
                .div_ceil(shaders::read::WORKGROUP_SIZE.into())
                .min(self.max_groups()) as u32;
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[window, sink.as_entire_binding()],
                groups,
            )?;
            start += len;
        }
        Ok(())
    }

    /// Records a plain copy of `bytes` (a multiple of 16) from `src` to `dst`: the bandwidth
    /// yardstick that benchmarks hold the kernels against.
    pub fn record_copy(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        src: &wgpu::Buffer,
        dst: &wgpu::Buffer,
        bytes: u64,
    ) -> Result<()> {
        if !bytes.is_multiple_of(16) || bytes > self.max_binding() {
            return Err(invalid(format!(
                "copy of {bytes} bytes: a multiple of 16 up to {} is needed",
                self.max_binding()
            )));
        }
        let pipeline = self.pipeline(Shader::Copy, None, &[])?;
        let count = bytes / 16;
        let params = CopyParams {
            count: count as u32,
            _pad0: 0,
            _pad1: 0,
            _pad2: 0,
        };
        fn bind(buffer: &wgpu::Buffer, bytes: u64) -> wgpu::BindingResource<'_> {
            wgpu::BindingResource::Buffer(wgpu::BufferBinding {
                buffer,
                offset: 0,
                size: wgpu::BufferSize::new(bytes),
            })
        }
        let groups = count
            .div_ceil(shaders::copy::WORKGROUP_SIZE.into())
            .min(self.max_groups()) as u32;
        self.dispatch(
            encoder,
            &pipeline,
            bytemuck::bytes_of(&params),
            &[bind(src, bytes), bind(dst, bytes)],
            groups,
        )
    }
}

/// The token-sampler settings the benchmarks time, the same on every row.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TokenFilter {
    /// Temperature 0: the argmax.
    Greedy,
    /// Temperature 1, no filter.
    Plain,
    /// Top-k with this k (up to 32: the one-pass lists; above: a radix select).
    TopK(u32),
    /// Top-p 0.9.
    TopP,
    /// Top-p 0.9 over flat logits: a cut past the lists' 256 first entries.
    TopPFlat,
    /// Min-p 0.05.
    MinP,
    /// Top-k 50 with top-p 0.9.
    TopKTopP,
    /// Top-n-sigma 1.0 (two more passes over the row for its standard deviation).
    TopNSigma,
    /// Top-k 50 and top-p 0.9 with penalties over a list of `PROCESSED_LIST` tokens and a
    /// grammar mask, each row its own.
    Processed,
}

/// The tokens of each row's list in [`TokenFilter::Processed`].
pub const PROCESSED_LIST: u32 = 512;

impl TokenFilter {
    /// Every setting of the benchmark table.
    pub const ALL: [TokenFilter; 10] = [
        TokenFilter::Greedy,
        TokenFilter::Plain,
        TokenFilter::TopK(32),
        TokenFilter::TopK(50),
        TokenFilter::MinP,
        TokenFilter::TopP,
        TokenFilter::TopPFlat,
        TokenFilter::TopKTopP,
        TokenFilter::TopNSigma,
        TokenFilter::Processed,
    ];

    /// The row settings.
    pub fn settings(self) -> TokenSettings {
        let sample = TokenSettings::new(1.0);
        match self {
            TokenFilter::Greedy => TokenSettings::greedy(),
            TokenFilter::Plain => sample,
            TokenFilter::TopK(k) => sample.with_top_k(k),
            TokenFilter::TopP | TokenFilter::TopPFlat => sample.with_top_p(0.9),
            TokenFilter::MinP => sample.with_min_p(0.05),
            TokenFilter::TopKTopP => sample.with_top_k(50).with_top_p(0.9),
            TokenFilter::TopNSigma => sample.with_top_n_sigma(1.0),
            TokenFilter::Processed => sample
                .with_top_k(50)
                .with_top_p(0.9)
                .with_penalties(1.1, 0.3, 0.2),
        }
    }

    /// The settings of row `row` of `cols` tokens: [`TokenFilter::settings`], with the row's
    /// own list and mask for [`TokenFilter::Processed`].
    pub fn row_settings(self, row: u32, cols: u32) -> TokenSettings {
        let len = PROCESSED_LIST.min(cols);
        match self {
            TokenFilter::Processed => self.settings().with_list(row * len, len).with_mask(row),
            _ => self.settings(),
        }
    }

    /// A name for tables.
    pub fn name(self) -> String {
        match self {
            TokenFilter::Greedy => "tokens greedy".into(),
            TokenFilter::Plain => "tokens plain".into(),
            TokenFilter::TopK(k) => format!("tokens top-k {k}"),
            TokenFilter::TopP => "tokens top-p 0.9".into(),
            TokenFilter::TopPFlat => "tokens top-p 0.9, flat logits".into(),
            TokenFilter::MinP => "tokens min-p 0.05".into(),
            TokenFilter::TopKTopP => "tokens top-k 50, top-p 0.9".into(),
            TokenFilter::TopNSigma => "tokens top-n-sigma 1.0".into(),
            TokenFilter::Processed => {
                format!("tokens top-k 50, top-p 0.9, penalties over {PROCESSED_LIST}, a mask")
            }
        }
    }
}

/// `n` logits shaped like a language model's: a spread from -6 to 2, one in 500 raised by
/// `raise` plus up to 8.
fn lm_like_logits(n: u64, raise: f32) -> Vec<f32> {
    (0..n)
        .map(|i| {
            let h = i.wrapping_mul(2_654_435_761) % 100_000;
            let peak = if h.is_multiple_of(500) {
                raise + (h % 9) as f32
            } else {
                0.0
            };
            (h % 1000) as f32 * 0.008 - 6.0 + peak
        })
        .collect()
}

/// Buffers to run the token sampler at one shape: f32 logits shaped like a language model's
/// (a spread from -6 to 2, one in 500 raised by 6 to 14, so that a few dozen tokens hold most
/// of the probability), flat ones (one in 500 raised by up to 8 only: top-p 0.9 keeps
/// thousands), a state per row, tokens and log-probabilities, and for
/// [`TokenFilter::Processed`] a token list and a mask per row (lists of tokens spread over the
/// vocabulary with counts of 1 to 3; masks that allow about fifteen tokens in sixteen).
pub struct TokenWorkload {
    /// Rows and K (dense).
    pub shape: Shape,
    logits: wgpu::Buffer,
    flat: wgpu::Buffer,
    settings: Vec<(TokenFilter, wgpu::Buffer)>,
    states: wgpu::Buffer,
    tokens: wgpu::Buffer,
    logprobs: wgpu::Buffer,
    lists: wgpu::Buffer,
    masks: wgpu::Buffer,
}

impl TokenWorkload {
    /// Buffers for `rows` x `cols`.
    pub fn new(ctx: &GpuContext, rows: u32, cols: u32) -> Result<Self> {
        let n = u64::from(rows) * u64::from(cols);
        let logits = |raise: f32| lm_like_logits(n, raise);
        let states: Vec<RandomState> = (0..u64::from(rows))
            .map(|r| RandomState {
                seed: r,
                offset: r << 32,
            })
            .collect();
        let settings = TokenFilter::ALL
            .into_iter()
            .map(|f| {
                let all: Vec<TokenSettings> = (0..rows).map(|r| f.row_settings(r, cols)).collect();
                Ok((f, ctx.upload(&all)?))
            })
            .collect::<Result<_>>()?;
        let (len, spacing) = (PROCESSED_LIST.min(cols), (cols / PROCESSED_LIST).max(1));
        let lists: Vec<TokenEntry> = (0..rows)
            .flat_map(|r| {
                (0..len).map(move |i| TokenEntry::new(i * spacing + r % spacing, 1 + (i + r) % 3))
            })
            .collect();
        let words = mask_words(cols);
        let masks: Vec<u32> = (0..rows * words)
            .map(|i| !(1u32 << (i.wrapping_mul(2_654_435_761) % 32)) & !(1 << (i % 32)))
            .collect();
        Ok(Self {
            shape: Shape::new(rows, cols),
            logits: ctx.upload(&logits(6.0))?,
            flat: ctx.upload(&logits(0.0))?,
            settings,
            states: ctx.upload(&states)?,
            tokens: ctx.storage_buffer(u64::from(rows) * 4)?,
            logprobs: ctx.storage_buffer(u64::from(rows) * 8)?,
            lists: ctx.upload(&lists)?,
            masks: ctx.upload(&masks)?,
        })
    }

    /// The bytes the sampler must move: the logits, and a token and two log-probabilities a row.
    pub fn bytes(&self) -> u64 {
        self.shape.noise_elements() * 4 + u64::from(self.shape.rows) * 12
    }

    /// Records one run under `filter`.
    pub fn record(
        &self,
        kernels: &Kernels,
        encoder: &mut wgpu::CommandEncoder,
        filter: TokenFilter,
    ) -> Result<()> {
        let settings = self
            .settings
            .iter()
            .find(|(f, _)| *f == filter)
            .map(|(_, b)| b)
            .ok_or_else(|| invalid(format!("{filter:?} is not in TokenFilter::ALL")))?;
        let logits = if filter == TokenFilter::TopPFlat {
            &self.flat
        } else {
            &self.logits
        };
        let mut call = SampleTokensCall::new(
            StorageType::F32,
            self.shape,
            GpuSlice::from(logits),
            GpuSlice::from(settings),
            TokenNoise::per_row(GpuSlice::from(&self.states)),
            GpuSlice::from(&self.tokens),
        )
        .with_logprobs(GpuSlice::from(&self.logprobs));
        if filter == TokenFilter::Processed {
            call = call
                .with_lists(
                    TokenLists::new(
                        GpuSlice::from(&self.lists),
                        self.shape.rows * PROCESSED_LIST.min(self.shape.cols),
                    )
                    .with_longest(PROCESSED_LIST.min(self.shape.cols)),
                )
                .with_masks(TokenMasks {
                    words: GpuSlice::from(&self.masks),
                    count: self.shape.rows,
                });
        }
        kernels.record_sample_tokens(encoder, &call)
    }
}

/// The verification settings the benchmarks time.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum VerifyCase {
    /// Temperature 1, drafts with their probabilities.
    Plain,
    /// Temperature 1, drafts without probabilities (greedy drafts, n-gram lookups).
    PlainNoProbs,
    /// Top-k 50 and top-p 0.9, drafts with their probabilities.
    TopKTopP,
}

impl VerifyCase {
    /// Every case of the benchmark table.
    pub const ALL: [VerifyCase; 3] = [
        VerifyCase::Plain,
        VerifyCase::PlainNoProbs,
        VerifyCase::TopKTopP,
    ];

    fn settings(self) -> TokenSettings {
        match self {
            VerifyCase::TopKTopP => TokenFilter::TopKTopP.settings(),
            _ => TokenFilter::Plain.settings(),
        }
    }

    /// Whether the drafts come with their probabilities.
    pub fn with_probs(self) -> bool {
        self != VerifyCase::PlainNoProbs
    }

    /// A name for tables.
    pub fn name(self, drafts: u32) -> String {
        match self {
            VerifyCase::Plain => format!("verify {drafts} drafts, plain, with q"),
            VerifyCase::PlainNoProbs => format!("verify {drafts} drafts, plain, no q"),
            VerifyCase::TopKTopP => format!("verify {drafts} drafts, top-k 50, top-p 0.9, with q"),
        }
    }
}

/// Buffers to verify `drafts` draft tokens for each of `requests` requests over K tokens: the
/// target's logits at each position as [`TokenWorkload`]'s, the drafts (every other one the
/// position's argmax, the rest its neighbour), and draft probabilities (flat rows).
pub struct VerifyWorkload {
    /// Target positions (rows) and K.
    pub shape: Shape,
    requests: u32,
    logits: wgpu::Buffer,
    settings: Vec<(VerifyCase, wgpu::Buffer)>,
    offsets: wgpu::Buffer,
    drafts: wgpu::Buffer,
    probs: wgpu::Buffer,
    states: wgpu::Buffer,
    tokens: wgpu::Buffer,
    accepted: wgpu::Buffer,
    logprobs: wgpu::Buffer,
}

impl VerifyWorkload {
    /// Buffers for `requests` requests of `drafts` drafts over `cols` tokens.
    pub fn new(ctx: &GpuContext, requests: u32, drafts: u32, cols: u32) -> Result<Self> {
        let rows = requests * (drafts + 1);
        let logits = lm_like_logits(u64::from(rows) * u64::from(cols), 6.0);
        let argmax = |row: usize| {
            let x = &logits[row * cols as usize..][..cols as usize];
            (0..cols).max_by(|&a, &b| x[a as usize].total_cmp(&x[b as usize]))
        };
        let draft_tokens: Vec<u32> = (0..requests)
            .flat_map(|r| (0..drafts).map(move |i| (r, i)))
            .map(|(r, i)| {
                let best = argmax((r * (drafts + 1) + i) as usize).unwrap_or(0);
                if (r + i).is_multiple_of(2) {
                    best
                } else {
                    (best + 1) % cols
                }
            })
            .collect();
        let offsets: Vec<u32> = (0..=requests).map(|r| r * drafts).collect();
        let probs = vec![1.0 / cols as f32; (requests * drafts) as usize * cols as usize];
        let states: Vec<RandomState> = (0..u64::from(requests))
            .map(|r| RandomState {
                seed: r,
                offset: r << 32,
            })
            .collect();
        let settings = VerifyCase::ALL
            .into_iter()
            .map(|case| Ok((case, ctx.upload(&vec![case.settings(); rows as usize])?)))
            .collect::<Result<_>>()?;
        Ok(Self {
            shape: Shape::new(rows, cols),
            requests,
            logits: ctx.upload(&logits)?,
            settings,
            offsets: ctx.upload(&offsets)?,
            drafts: ctx.upload(&draft_tokens)?,
            probs: ctx.upload(&probs)?,
            states: ctx.upload(&states)?,
            tokens: ctx.storage_buffer(u64::from(rows) * 4)?,
            accepted: ctx.storage_buffer(u64::from(requests) * 4)?,
            logprobs: ctx.storage_buffer(u64::from(rows) * 8)?,
        })
    }

    /// The bytes a verification must read: the target's logits, and the draft probabilities
    /// where `case` has them.
    pub fn read_bytes(&self, case: VerifyCase) -> u64 {
        let logits = self.shape.noise_elements() * 4;
        let drafts = u64::from(self.shape.rows - self.requests) * u64::from(self.shape.cols);
        logits + if case.with_probs() { drafts * 4 } else { 0 }
    }

    /// Records one verification under `case`.
    pub fn record(
        &self,
        kernels: &Kernels,
        encoder: &mut wgpu::CommandEncoder,
        case: VerifyCase,
    ) -> Result<()> {
        let settings = self
            .settings
            .iter()
            .find(|(c, _)| *c == case)
            .map(|(_, b)| b)
            .ok_or_else(|| invalid(format!("{case:?} is not in VerifyCase::ALL")))?;
        let mut call = VerifyDraftsCall::new(
            StorageType::F32,
            self.shape,
            GpuSlice::from(&self.logits),
            GpuSlice::from(settings),
            self.requests,
            GpuSlice::from(&self.offsets),
            GpuSlice::from(&self.drafts),
            GpuSlice::from(&self.states),
            GpuSlice::from(&self.tokens),
            GpuSlice::from(&self.accepted),
        )
        .with_logprobs(GpuSlice::from(&self.logprobs));
        if case.with_probs() {
            call = call.with_draft_probs(GpuSlice::from(&self.probs));
        }
        kernels.record_verify_drafts(encoder, &call)
    }
}

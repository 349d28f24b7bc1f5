//! The one place that owns shader modules and pipelines, and the mechanics every kernel's
//! recording shares: binding windows into caller buffers, per-dispatch parameters, dispatch.

use std::collections::HashMap;
use std::sync::Mutex;

use crate::error::{Error, Result, invalid};
use crate::shaders::{Shader, VARIANTS, Variant, gumbel};
use crate::types::{NoiseRange, StorageType};

/// A caller's buffer and a byte offset into it.
///
/// The buffer must come from the device the kernels were made for. A buffer of another device
/// of the same wgpu `Instance` is refused by wgpu (an error value); one made through another
/// `Instance` cannot be told apart by wgpu, which may take it for an unrelated buffer of this
/// device and panic at submit, so never mix instances.
///
/// Several arguments of one call may lie in one buffer as long as the call reads all of them,
/// or writes all of them at ranges that do not overlap: wgpu does not let one dispatch bind a
/// buffer both read-only and writable, so such a call is refused with an error that names the
/// two arguments.
#[derive(Clone, Copy, Debug)]
pub struct GpuSlice<'a> {
    /// The buffer.
    pub buffer: &'a wgpu::Buffer,
    /// Byte offset of element 0 (a multiple of the element size).
    pub offset: u64,
}

impl<'a> GpuSlice<'a> {
    /// `buffer` from byte `offset` on.
    pub fn new(buffer: &'a wgpu::Buffer, offset: u64) -> Self {
        Self { buffer, offset }
    }
}

impl<'a> From<&'a wgpu::Buffer> for GpuSlice<'a> {
    fn from(buffer: &'a wgpu::Buffer) -> Self {
        Self { buffer, offset: 0 }
    }
}

/// One argument of a call as its dispatches bind it: for [`Kernels::check_aliasing`].
pub(crate) struct BufferUse<'a> {
    /// The argument's name in error messages.
    pub name: &'a str,
    pub slice: GpuSlice<'a>,
    /// Bytes from `slice.offset` that the call touches.
    pub bytes: u64,
    /// Bound writable (`read_write` in the shader).
    pub writable: bool,
}

impl<'a> BufferUse<'a> {
    /// An argument the kernel only reads: `elems` elements of `elem_size` bytes.
    pub fn read(name: &'a str, slice: GpuSlice<'a>, elems: u64, elem_size: u64) -> Self {
        Self {
            name,
            slice,
            bytes: elems * elem_size,
            writable: false,
        }
    }

    /// An argument bound writable.
    pub fn write(name: &'a str, slice: GpuSlice<'a>, elems: u64, elem_size: u64) -> Self {
        Self {
            writable: true,
            ..Self::read(name, slice, elems, elem_size)
        }
    }
}

/// A window of a caller's buffer as one dispatch binds it: the binding starts at an aligned
/// byte offset, and the shader starts reading at element `base` of it.
pub(crate) struct Window<'a> {
    buffer: &'a wgpu::Buffer,
    offset: u64,
    size: u64,
    pub base: u32,
}

impl Window<'_> {
    pub fn binding(&self) -> wgpu::BindingResource<'_> {
        wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: self.buffer,
            offset: self.offset,
            size: wgpu::BufferSize::new(self.size),
        })
    }
}

/// A pipeline is one composed shader variant with its override constants.
#[derive(Clone, PartialEq, Eq, Hash)]
struct PipelineKey {
    variant: &'static str,
    constants: Vec<(&'static str, u64)>,
    inputs_writable: bool,
}

/// A compute pipeline and the bindings its shader uses (its automatic layout's).
#[derive(Clone)]
pub(crate) struct Pipeline {
    pipeline: wgpu::ComputePipeline,
    bindings: &'static [u32],
}

/// How the noise-making kernels form Philox's 32x32 -> 64-bit products. Both give the same
/// bits; tests hold each against the CPU reference.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum WideMultiply {
    /// From 16-bit halves in core WGSL: any device.
    Halves,
    /// One native 64-bit multiply: devices with the `SHADER_INT64` feature. On lavapipe the
    /// noise-making kernels ran 0 to 40% faster with it, by shape and run (BENCHMARKS.md).
    Int64,
}

impl WideMultiply {
    /// The fastest that `device` was created with.
    pub fn best_for(device: &wgpu::Device) -> Self {
        if device.features().contains(wgpu::Features::SHADER_INT64) {
            WideMultiply::Int64
        } else {
            WideMultiply::Halves
        }
    }
}

/// How the kernels map a 32-bit word to Gumbel noise. Both meet docs/contract.md's tolerance
/// (1e-6 + 4 ULP of g, every word) where the device's `log2` keeps WGSL's error bounds;
/// `tests/noise_exhaustive.rs` checks all 2^32 words on a device
/// (`cargo test --release --test noise_exhaustive -- --ignored`).
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum NoiseMap {
    /// WGSL's `log2` where its error bounds are enough, an atanh series for the upper half of
    /// the words: one series and two `log2` a word. The default.
    Log2,
    /// Both logarithms from an atanh series on a reduced argument, whatever the device's `log2`
    /// does: about twice the arithmetic. For a device that fails the exhaustive check.
    Series,
}

impl NoiseMap {
    fn shader_value(self) -> f64 {
        f64::from(match self {
            NoiseMap::Log2 => gumbel::NOISE_MAP_LOG2,
            NoiseMap::Series => gumbel::NOISE_MAP_SERIES,
        })
    }
}

/// How the invocations of a workgroup that walks a row share its elements out (the token
/// sampler's kernels). Both give the same tokens; sums over a row round in another order.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum BlockOrder {
    /// Invocation i takes blocks of four elements i, i + size, i + 2 size, ...: neighbouring
    /// invocations read neighbouring words, as GPUs want. The default on GPUs.
    Interleaved,
    /// Each invocation takes a run of consecutive blocks. CPU drivers run a group of
    /// invocations through its whole loop before the next, so the interleaved order reads
    /// each cache line once for every group; on lavapipe runs took a third off a plain row's
    /// time. The default on CPU drivers.
    Contiguous,
}

/// Shader modules and pipelines of one device, built on first use and reused after.
pub struct Kernels {
    pub(crate) device: wgpu::Device,
    pub(crate) limits: wgpu::Limits,
    /// llvmpipe's silent per-invocation loop budget (docs/design.md, "CPU drivers"), where it
    /// applies.
    pub(crate) loop_budget: Option<u64>,
    pub(crate) is_cpu: bool,
    pub(crate) block_order: BlockOrder,
    /// The smallest subgroup size of a device created with the `SUBGROUP` feature.
    pub(crate) smallest_subgroup: Option<u32>,
    wide_multiply: WideMultiply,
    noise_map: NoiseMap,
    /// Every buffer bound writable (see [`Kernels::with_inputs_writable`]).
    inputs_writable: bool,
    /// WebGPU's compiler wants `enable subgroups;` before subgroup built-ins; naga refuses it.
    enable_subgroups: bool,
    modules: Mutex<HashMap<(&'static str, bool), wgpu::ShaderModule>>,
    pipelines: Mutex<HashMap<PipelineKey, Pipeline>>,
    /// Bound where a kernel's optional input is not used.
    pub(crate) placeholder: wgpu::Buffer,
    /// Bound where a kernel's optional output is not used (a dispatch may not bind one buffer
    /// both read-only and writable).
    pub(crate) placeholder_out: wgpu::Buffer,
}

impl Kernels {
    /// Kernels for a device of the caller's, with the fastest [`WideMultiply`] it allows.
    pub fn new(device: &wgpu::Device) -> Self {
        Self::build(device, WideMultiply::best_for(device))
    }

    /// Kernels that form Philox's products as `wide_multiply` says; an error where that needs
    /// a feature the device was not created with.
    pub fn with_wide_multiply(device: &wgpu::Device, wide_multiply: WideMultiply) -> Result<Self> {
        if wide_multiply == WideMultiply::Int64
            && !device.features().contains(wgpu::Features::SHADER_INT64)
        {
            return Err(invalid(
                "WideMultiply::Int64 needs a device created with the SHADER_INT64 feature",
            ));
        }
        Ok(Self::build(device, wide_multiply))
    }

    /// How these kernels form Philox's products.
    pub fn wide_multiply(&self) -> WideMultiply {
        self.wide_multiply
    }

    /// These kernels with the word-to-Gumbel map `noise_map` (the default is [`NoiseMap::Log2`]).
    pub fn with_noise_map(self, noise_map: NoiseMap) -> Self {
        Self { noise_map, ..self }
    }

    /// How these kernels map words to Gumbel noise.
    pub fn noise_map(&self) -> NoiseMap {
        self.noise_map
    }

    /// These kernels with the token sampler's invocations walking rows in `order` (the
    /// default: [`BlockOrder::Contiguous`] on CPU drivers, [`BlockOrder::Interleaved`]
    /// elsewhere).
    pub fn with_block_order(self, order: BlockOrder) -> Self {
        Self {
            block_order: order,
            ..self
        }
    }

    /// How the token sampler's invocations walk a row.
    pub fn block_order(&self) -> BlockOrder {
        self.block_order
    }

    /// These kernels with every buffer bound writable, inputs too, so that a call's inputs
    /// and outputs may lie in one buffer at ranges that do not overlap. wgpu refuses a buffer
    /// bound both read-only and writable in one dispatch, and allocators that carve tensors
    /// out of shared pages (burn's) put them in one buffer. Drivers lose the read-only hint.
    pub fn with_inputs_writable(self) -> Self {
        Self {
            inputs_writable: true,
            ..self
        }
    }

    fn build(device: &wgpu::Device, wide_multiply: WideMultiply) -> Self {
        let info = device.adapter_info();
        let is_llvmpipe = info.name.to_lowercase().contains("llvmpipe");
        let is_cpu = info.device_type == wgpu::DeviceType::Cpu;
        Self {
            device: device.clone(),
            limits: device.limits(),
            // 65,535 iterations in all; keep a margin for the reduction loops.
            loop_budget: is_llvmpipe.then_some(60_000),
            is_cpu,
            block_order: match is_cpu {
                true => BlockOrder::Contiguous,
                false => BlockOrder::Interleaved,
            },
            smallest_subgroup: device
                .features()
                .contains(wgpu::Features::SUBGROUP)
                .then_some(info.subgroup_min_size.max(1)),
            wide_multiply,
            noise_map: NoiseMap::Log2,
            inputs_writable: false,
            enable_subgroups: info.backend == wgpu::Backend::BrowserWebGpu,
            modules: Mutex::new(HashMap::new()),
            pipelines: Mutex::new(HashMap::new()),
            placeholder: placeholder(device),
            placeholder_out: placeholder(device),
        }
    }

    /// The pipeline of `shader` (for `storage`, where it has a variant per storage type; its
    /// native 64-bit variant where it has one and these kernels use it) with its `main` entry
    /// point and these override constants.
    pub(crate) fn pipeline(
        &self,
        shader: Shader,
        storage: Option<StorageType>,
        constants: &[(&'static str, f64)],
    ) -> Result<Pipeline> {
        let storage = storage.map(StorageType::suffix);
        let find = |int64: bool| {
            VARIANTS
                .iter()
                .find(|v| v.shader == shader && v.storage == storage && v.int64 == int64)
        };
        let variant = (self.wide_multiply == WideMultiply::Int64)
            .then(|| find(true))
            .flatten()
            .or_else(|| find(false))
            // Only a call with a storage type for a kernel that has none, or none for one that
            // has, gets here: a mistake of this crate's, reported rather than panicked on.
            .ok_or_else(|| invalid(format!("{shader:?} has no variant for storage {storage:?}")))?;
        let (shader, source, bindings) = (variant.name, variant.wgsl, variant.bindings);
        let mut constants = constants.to_vec();
        if variant.overrides.contains(&"NOISE_MAP") {
            constants.push(("NOISE_MAP", self.noise_map.shader_value()));
        }
        let constants = &constants[..];
        let key = PipelineKey {
            variant: shader,
            constants: constants.iter().map(|(n, v)| (*n, v.to_bits())).collect(),
            inputs_writable: self.inputs_writable,
        };
        if let Some(p) = self.pipelines.lock().unwrap().get(&key) {
            return Ok(p.clone());
        }
        let compute = self.checked(&format!("building pipeline {shader}"), || {
            let module = self
                .modules
                .lock()
                .unwrap()
                .entry((shader, self.inputs_writable))
                .or_insert_with(|| {
                    let mut source = match self.inputs_writable {
                        true => source.replace("var<storage, read>", "var<storage, read_write>"),
                        false => source.to_owned(),
                    };
                    if variant.subgroups && self.enable_subgroups {
                        source.insert_str(0, "enable subgroups;\n");
                    }
                    self.device
                        .create_shader_module(wgpu::ShaderModuleDescriptor {
                            label: Some(shader),
                            source: wgpu::ShaderSource::Wgsl(source.into()),
                        })
                })
                .clone();
            self.device
                .create_compute_pipeline(&wgpu::ComputePipelineDescriptor {
                    label: Some(shader),
                    layout: None,
                    module: &module,
                    entry_point: Some("main"),
                    compilation_options: wgpu::PipelineCompilationOptions {
                        constants,
                        zero_initialize_workgroup_memory: false,
                    },
                    cache: None,
                })
        })?;
        let pipeline = Pipeline {
            pipeline: compute,
            bindings,
        };
        self.pipelines.lock().unwrap().insert(key, pipeline.clone());
        Ok(pipeline)
    }

    /// Builds the pipeline of every kernel variant these kernels would use on this device
    /// (each kernel at each storage type, with its default constants), so that later calls
    /// find them ready; returns how many were built. An error names every variant the device's
    /// shader compiler refused: the check that the WGSL is valid for it (in a browser, Chrome's
    /// compiler applies the WGSL spec's rules that naga does not). Kernels that bind more storage
    /// buffers than the device allows are left out.
    pub async fn build_all_async(&self) -> Result<usize> {
        let mut built = 0;
        let mut refused = Vec::new();
        // `pipeline` picks the 64-bit variant itself where these kernels use it.
        let variants = VARIANTS.iter().filter(|v| !v.int64);
        // A kernel that binds more storage buffers than the device allows is refused by name
        // where it is called (the token sampler's with lists, masks or split rows).
        let bindable = |v: &&Variant| {
            v.bindings.len() as u32 <= self.limits.max_storage_buffers_per_shader_stage
        };
        let usable = |v: &&Variant| !v.subgroups || self.smallest_subgroup.is_some();
        for variant in variants.filter(usable).filter(bindable) {
            let storage = variant
                .storage
                .map(|suffix| StorageType::ALL.into_iter().find(|t| t.suffix() == suffix));
            let pipeline = match storage {
                Some(None) => Err(invalid(format!("{}: unknown storage type", variant.name))),
                Some(Some(t)) => self.built(variant.shader, Some(t)).await,
                None => self.built(variant.shader, None).await,
            };
            match pipeline {
                Ok(()) => built += 1,
                Err(e) => refused.push(e.to_string()),
            }
        }
        match refused.is_empty() {
            true => Ok(built),
            false => Err(Error::Wgpu {
                context: format!(
                    "building {} of {} pipelines",
                    refused.len(),
                    built + refused.len()
                ),
                message: refused.join("; "),
            }),
        }
    }

    /// Builds `shader`'s pipeline with its default constants, inside error scopes of its own.
    async fn built(&self, shader: Shader, storage: Option<StorageType>) -> Result<()> {
        let context = format!("building pipeline {shader:?} {storage:?}");
        self.checked_async(&context, || self.pipeline(shader, storage, &[]))
            .await?
            .map(drop)
    }

    /// The pipeline of a kernel that makes noise, with `range` as its `NOISE_RANGE`.
    pub(crate) fn noise_pipeline(
        &self,
        shader: Shader,
        storage: Option<StorageType>,
        constants: &[(&'static str, f64)],
        range: NoiseRange,
    ) -> Result<Pipeline> {
        let mut constants = constants.to_vec();
        constants.push(("NOISE_RANGE", range.shader_value()));
        self.pipeline(shader, storage, &constants)
    }

    /// Runs `f` inside validation and out-of-memory error scopes and turns what they catch
    /// into an error value. The scopes are popped as soon as `f` returns, before anything is
    /// awaited, so that calls awaited together never see each other's scopes.
    pub(crate) async fn checked_async<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        let oom = self.device.push_error_scope(wgpu::ErrorFilter::OutOfMemory);
        let validation = self.device.push_error_scope(wgpu::ErrorFilter::Validation);
        let value = f();
        let (validation, oom) = (validation.pop(), oom.pop());
        match [validation.await, oom.await].into_iter().flatten().next() {
            None => Ok(value),
            Some(e) => Err(Error::Wgpu {
                context: context.to_owned(),
                message: e.to_string(),
            }),
        }
    }

    /// [`Kernels::checked_async`], waiting for the verdict (native wgpu has it at once).
    #[cfg(not(target_arch = "wasm32"))]
    pub(crate) fn checked<T>(&self, context: &str, f: impl FnOnce() -> T) -> Result<T> {
        pollster::block_on(self.checked_async(context, f))
    }

    /// In the browser a scope's verdict comes later and the recording calls cannot wait for it:
    /// their wgpu errors go to the caller's error scope (each host-slice call has one around
    /// its submission) or to the device's uncaptured-error handler.
    #[cfg(target_arch = "wasm32")]
    pub(crate) fn checked<T>(&self, _context: &str, f: impl FnOnce() -> T) -> Result<T> {
        Ok(f())
    }

    /// Checks that `slice` is a storage buffer that holds `elems` elements of `elem_size` bytes.
    pub(crate) fn check_slice(
        &self,
        what: &str,
        slice: GpuSlice,
        elems: u64,
        elem_size: u64,
    ) -> Result<()> {
        if !slice.buffer.usage().contains(wgpu::BufferUsages::STORAGE) {
            return Err(invalid(format!(
                "the {what} buffer lacks STORAGE usage (has {:?})",
                slice.buffer.usage()
            )));
        }
        if !slice.offset.is_multiple_of(elem_size) {
            return Err(invalid(format!(
                "the {what} offset {} is not a multiple of the element size {elem_size}",
                slice.offset
            )));
        }
        let needed = elems
            .checked_mul(elem_size)
            .and_then(|bytes| bytes.checked_add(slice.offset));
        if needed.is_none_or(|needed| needed > slice.buffer.size()) {
            let needed = needed.map_or("more than 2^64".to_owned(), |n| n.to_string());
            return Err(invalid(format!(
                "the {what} buffer holds {} bytes; {elems} elements of {elem_size} bytes from offset {} need {needed}",
                slice.buffer.size(),
                slice.offset
            )));
        }
        Ok(())
    }

    /// Refuses a call whose arguments share a buffer in a way one dispatch cannot bind: one of
    /// them read-only and another writable (wgpu forbids it, and would panic at submit), or two
    /// writable ones whose byte ranges overlap (the kernels would race).
    pub(crate) fn check_aliasing(&self, uses: &[BufferUse]) -> Result<()> {
        for (i, a) in uses.iter().enumerate() {
            for b in &uses[i + 1..] {
                if a.slice.buffer != b.slice.buffer || !(a.writable || b.writable) {
                    continue;
                }
                if a.writable != b.writable && !self.inputs_writable {
                    let (read, write) = if a.writable { (b, a) } else { (a, b) };
                    return Err(invalid(format!(
                        "the {} and the {} are in one buffer: the kernel binds the first read-only and the second writable, and wgpu does not let one dispatch bind a buffer both ways; use separate buffers",
                        read.name, write.name
                    )));
                }
                let (a_end, b_end) = (a.slice.offset + a.bytes, b.slice.offset + b.bytes);
                if a.slice.offset < b_end && b.slice.offset < a_end {
                    return Err(invalid(format!(
                        "the {} (bytes {}..{a_end}) and the {} (bytes {}..{b_end}) overlap in one buffer; an output may not overlap another argument",
                        a.name, a.slice.offset, b.name, b.slice.offset
                    )));
                }
            }
        }
        Ok(())
    }

    /// Checks that a buffer of `bytes` can be created on this device; `what` names it.
    pub(crate) fn check_buffer_size(&self, what: &str, bytes: Option<u64>) -> Result<u64> {
        let max = self.limits.max_buffer_size;
        match bytes {
            Some(bytes) if bytes <= max => Ok(bytes),
            _ => Err(Error::OverLimits(format!(
                "the {what} takes {} bytes; a buffer on this device holds at most {max}",
                bytes.map_or("more than 2^64".to_owned(), |b| b.to_string())
            ))),
        }
    }

    /// The window for elements `first .. first + elems` of `slice`.
    pub(crate) fn window<'a>(
        &self,
        slice: GpuSlice<'a>,
        first: u64,
        elems: u64,
        elem_size: u64,
    ) -> Result<Window<'a>> {
        let align = u64::from(self.limits.min_storage_buffer_offset_alignment);
        let start = slice.offset + first * elem_size;
        let offset = start / align * align;
        let end = (start + elems * elem_size).next_multiple_of(4);
        let size = end.min(slice.buffer.size()) - offset;
        if !size.is_multiple_of(4) || size > self.max_binding() {
            return Err(Error::OverLimits(format!(
                "a binding of {size} bytes (the device binds at most {} bytes, in multiples of 4)",
                self.max_binding()
            )));
        }
        Ok(Window {
            buffer: slice.buffer,
            offset,
            size,
            base: ((start - offset) / elem_size) as u32,
        })
    }

    /// Whether an invocation may run `iterations` loop iterations on this driver.
    pub(crate) fn within_loop_budget(&self, iterations: u64) -> bool {
        self.loop_budget.is_none_or(|budget| iterations <= budget)
    }

    pub(crate) fn max_binding(&self) -> u64 {
        self.limits.max_storage_buffer_binding_size
    }

    pub(crate) fn max_groups(&self) -> u64 {
        u64::from(self.limits.max_compute_workgroups_per_dimension)
    }

    /// Records one dispatch of `groups` workgroups of `pipeline`, with its own parameter block
    /// in binding 0 and `bindings` in bindings 1, 2, ...
    pub(crate) fn dispatch(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &Pipeline,
        params: &[u8],
        bindings: &[wgpu::BindingResource],
        groups: u32,
    ) -> Result<()> {
        let numbered: Vec<(u32, wgpu::BindingResource)> = bindings
            .iter()
            .enumerate()
            .map(|(i, r)| (i as u32 + 1, r.clone()))
            .collect();
        self.dispatch_grid(encoder, pipeline, params, &numbered, [groups, 1, 1])
    }

    /// Records one dispatch of a grid of workgroups, with its own parameter block in binding 0
    /// and those of the numbered `bindings` that the shader uses (its automatic layout holds
    /// no others), so that the kernels of one family can share one list.
    pub(crate) fn dispatch_grid(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        pipeline: &Pipeline,
        params: &[u8],
        bindings: &[(u32, wgpu::BindingResource)],
        grid: [u32; 3],
    ) -> Result<()> {
        let bind_group = self.checked("binding buffers", || -> Result<wgpu::BindGroup> {
            // The kernels read their parameters from storage, not uniforms: lavapipe specialises
            // a shader on the values of its uniforms at each dispatch and kept every variant,
            // hundreds of KB per dispatch. Only the copy and read yardsticks take uniforms.
            let params = buffer_with(
                &self.device,
                "gumbel-wgpu params",
                params,
                wgpu::BufferUsages::STORAGE | wgpu::BufferUsages::UNIFORM,
            )?;
            let entries: Vec<wgpu::BindGroupEntry> =
                std::iter::once((0, params.as_entire_binding()))
                    .chain(bindings.iter().cloned())
                    .filter(|(binding, _)| pipeline.bindings.contains(binding))
                    .map(|(binding, resource)| wgpu::BindGroupEntry { binding, resource })
                    .collect();
            Ok(self.device.create_bind_group(&wgpu::BindGroupDescriptor {
                label: None,
                layout: &pipeline.pipeline.get_bind_group_layout(0),
                entries: &entries,
            }))
        })??;
        let mut pass = encoder.begin_compute_pass(&wgpu::ComputePassDescriptor::default());
        pass.set_pipeline(&pipeline.pipeline);
        pass.set_bind_group(0, &bind_group, &[]);
        pass.dispatch_workgroups(grid[0], grid[1], grid[2]);
        Ok(())
    }

    /// A storage buffer of `bytes` for a kernel's own intermediate results.
    pub(crate) fn scratch(&self, bytes: u64) -> Result<wgpu::Buffer> {
        if bytes > self.max_binding() {
            return Err(Error::OverLimits(format!(
                "{bytes} bytes of intermediate results exceed one storage binding ({} bytes)",
                self.max_binding()
            )));
        }
        self.checked("allocating scratch", || {
            self.device.create_buffer(&wgpu::BufferDescriptor {
                label: Some("gumbel-wgpu scratch"),
                size: bytes.next_multiple_of(16).max(16),
                usage: wgpu::BufferUsages::STORAGE,
                mapped_at_creation: false,
            })
        })
    }
}

/// A buffer holding `contents` (padded to 4 bytes). wgpu's own helper panics when the device is
/// lost; this returns the error.
pub(crate) fn buffer_with(
    device: &wgpu::Device,
    label: &str,
    contents: &[u8],
    usage: wgpu::BufferUsages,
) -> Result<wgpu::Buffer> {
    let mut padded = contents.to_vec();
    padded.resize(contents.len().next_multiple_of(4).max(4), 0);
    let buffer = device.create_buffer(&wgpu::BufferDescriptor {
        label: Some(label),
        size: padded.len() as u64,
        usage,
        mapped_at_creation: true,
    });
    buffer
        .get_mapped_range_mut(..)
        .map_err(|e| Error::Map(format!("{label}: {e}")))?
        .copy_from_slice(&padded);
    buffer.unmap();
    Ok(buffer)
}

fn placeholder(device: &wgpu::Device) -> wgpu::Buffer {
    device.create_buffer(&wgpu::BufferDescriptor {
        label: Some("gumbel-wgpu placeholder"),
        size: 16,
        usage: wgpu::BufferUsages::STORAGE,
        mapped_at_creation: false,
    })
}

//! The row layer that every kernel family stands on: how a row is spread over invocations
//! ([`Strategy`]) and chosen for a device, how a batch is split into dispatches (`RowPlan`),
//! the parameter header every row kernel's block starts with (`RowHeader`), and the
//! recording skeleton. A family describes its call as a `RowCall` (its buffers as `RowArg`s,
//! the temperature, the `Noise` position, scratch memory); `check_rows` checks all of it before
//! anything is recorded, and `each_part` hands the family each dispatch's `RowPart` (header,
//! windows, bindings) to dispatch its own kernels with.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result, invalid};
use crate::kernels::{BufferUse, GpuSlice, Kernels, Window};
use crate::shaders::same_layout;
use crate::shaders::{row_bindings as binding, row_cache_workgroup as cache};
use crate::types::{Shape, check_tau, split64, strided_span};

/// Workgroup memory per invocation of the workgroup-per-row and SplitRow kernels: a 16-byte
/// row state (shaders/shared/workgroup_state.wgsl) and a 4-byte partial sum
/// (shaders/derivative/pieces/workgroup_sum.wgsl).
const WORKGROUP_BYTES_PER_INVOCATION: u32 = 20;

/// The most passes over a row that a row kernel makes: a derivative that recomputes the sample.
const MOST_PASSES: u64 = 3;

/// How a row is spread over invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// One invocation walks a whole row: no barriers. Short rows, and CPU drivers.
    RowPerThread,
    /// One invocation per row as [`Strategy::RowPerThread`], in workgroups of 8 that keep
    /// each row's values in workgroup memory, so that rows of up to 1,024 elements make their
    /// noise once. For CPU drivers (an 8-wide workgroup leaves most of a GPU idle). Needs
    /// [`Strategy::CACHED_WORKGROUP_BYTES`] of workgroup memory.
    RowPerThreadCached,
    /// One workgroup of `size` invocations (a power of two, 1 to 1024) shares a row.
    RowPerWorkgroup {
        /// Invocations per workgroup.
        size: u32,
    },
    /// `lanes` lanes of one subgroup (a power of two, 1 to 128) share a row, in workgroups of
    /// [`Strategy::SUBGROUP_WORKGROUP`] invocations that take a row per `lanes` of them: adjacent
    /// lanes read adjacent four-element blocks, partial results meet by subgroup shuffles (no
    /// barriers), and each lane keeps its first blocks in registers, so that rows of up to
    /// `68 * lanes` elements are read once. Needs the `SUBGROUP` feature. Where the device's
    /// subgroups turn out smaller than `lanes` when the kernel runs, a row gets one subgroup's
    /// lanes: results are the same, only slower.
    RowPerSubgroup {
        /// Lanes per row.
        lanes: u32,
    },
    /// `slices` workgroups of `size` invocations share a row, each a contiguous slice of it,
    /// and a second dispatch combines their partial results: very long rows when there are
    /// few of them.
    SplitRow {
        /// Invocations per workgroup.
        size: u32,
        /// Workgroups per row.
        slices: u32,
    },
}

impl Strategy {
    /// Workgroup memory that [`Strategy::RowPerThreadCached`] needs (more than WebGPU's
    /// default limit of 16 KiB; lavapipe and discrete GPUs have it).
    pub const CACHED_WORKGROUP_BYTES: u32 = cache::CACHED_BLOCKS * cache::CACHE_INVOCATIONS * 16;

    /// Invocations per workgroup of [`Strategy::RowPerSubgroup`]: a multiple of every subgroup
    /// size that devices report (at most 128).
    pub const SUBGROUP_WORKGROUP: u32 = 256;

    /// The default choice for rows of `cols` elements on the device of `kernels`. On CPU drivers
    /// barriers cost far more than a long serial loop (docs/design.md, "CPU drivers"), so a thread
    /// keeps its row much longer there. Workgroups stay within the device's limits, so a caller's
    /// device created with WebGPU's defaults works too.
    ///
    /// Every family's kernels run under it: on drivers with a loop budget (llvmpipe) the
    /// workgroup is widened until a row walked three times (a recomputing derivative) fits
    /// the budget, so that any row one storage binding holds gets a strategy that runs.
    pub fn choose(cols: u32, kernels: &Kernels) -> Strategy {
        let device = Device {
            is_cpu: kernels.is_cpu,
            limits: &kernels.limits,
            loop_budget: kernels.loop_budget,
            smallest_subgroup: kernels.smallest_subgroup,
        };
        Self::choose_for(cols, &device)
    }

    fn choose_for(cols: u32, device: &Device) -> Strategy {
        let preferred = Self::preferred(cols, device);
        let Some(budget) = device.loop_budget else {
            return preferred;
        };
        let fits = |s: Strategy| {
            s.as_run(device.smallest_subgroup)
                .loop_iterations(cols, MOST_PASSES)
                <= budget
        };
        if fits(preferred) {
            return preferred;
        }
        let widest = Self::widest_workgroup(device.limits);
        (6..=widest.ilog2())
            .map(|bits| Strategy::RowPerWorkgroup { size: 1 << bits })
            .find(|&s| fits(s))
            .unwrap_or(preferred)
    }

    /// The measured choice, before the loop budget is considered.
    fn preferred(cols: u32, device: &Device) -> Strategy {
        let limits = device.limits;
        let widest = Self::widest_workgroup(limits);
        let subgroups = device.smallest_subgroup.is_some();
        if device.is_cpu {
            // Measured on lavapipe (BENCHMARKS.md): rows up to 64 elements fit a thread's own
            // cache, and 64-wide workgroups cost less per row there; above, workgroups of 8
            // spread even 64 rows over every core, and rows up to 1,024 elements make their
            // noise once. Past 65,536, a row per subgroup ran 1.9x (forward) and 2.4x (VJP)
            // faster than a workgroup per row at 16 x 262,144: no barriers. 32 lanes on
            // lavapipe's subgroups of 8 put 8 rows in a workgroup, so that even 16 rows reach
            // both cores.
            let cached_fits = limits.max_compute_workgroup_storage_size
                >= Strategy::RowPerThreadCached.workgroup_memory();
            if cols <= 64 {
                Strategy::RowPerThread
            } else if cols <= 65_536 && cached_fits {
                Strategy::RowPerThreadCached
            } else if cols <= 65_536 {
                Strategy::RowPerThread
            } else if subgroups {
                Strategy::RowPerSubgroup { lanes: 32 }
            } else {
                Strategy::RowPerWorkgroup {
                    size: widest.min(64),
                }
            }
        } else if subgroups && cols <= 2048 {
            // Not yet measured on a GPU (the GPU script times every strategy): adjacent rows on
            // adjacent lanes for short rows instead of a thread striding through its own row
            // (3.5x slower than copy at 65,536 x 64 on an H100), and rows up to 2,048 elements
            // read once, from registers. About four blocks a lane, up to 32 lanes.
            let blocks = cols.div_ceil(4) + 1;
            let most = device
                .smallest_subgroup
                .map_or(32, |smallest| smallest.min(32));
            Strategy::RowPerSubgroup {
                lanes: (1 << (blocks / 4).max(1).ilog2()).min(most),
            }
        } else if cols <= 128 {
            // Measured on an H100 (BENCHMARKS.md): at K = 64 a thread per row ran 6x faster
            // than a workgroup per row; at K = 1024 a 256-wide workgroup was best, and from
            // K = 32768 up a 1024-wide one.
            Strategy::RowPerThread
        } else if cols <= 8192 {
            Strategy::RowPerWorkgroup {
                size: widest.min(256),
            }
        } else if cols < 131_072 {
            Strategy::RowPerWorkgroup { size: widest }
        } else {
            // At 64 x 262,144 one workgroup per row left most of an H100 idle (0.11 of copy);
            // slices of 32,768 elements give 8 or more workgroups per row. Not yet measured on
            // a GPU: the GPU script times it beside the others.
            Strategy::SplitRow {
                size: widest,
                slices: cols.div_ceil(32_768),
            }
        }
    }

    /// The strategy as the kernels run it on a device whose smallest subgroup is
    /// `smallest_subgroup`: a row gets no more lanes than that subgroup holds.
    fn as_run(self, smallest_subgroup: Option<u32>) -> Strategy {
        match (self, smallest_subgroup) {
            (Strategy::RowPerSubgroup { lanes }, Some(smallest)) => Strategy::RowPerSubgroup {
                lanes: lanes.min(smallest),
            },
            _ => self,
        }
    }

    /// The widest workgroup, up to 1024, that the workgroup-per-row and SplitRow kernels may
    /// use on a device with `limits`: a power of two within its invocation limits and with
    /// room for their workgroup memory. WebGPU's default limits allow 256.
    pub fn widest_workgroup(limits: &wgpu::Limits) -> u32 {
        let fits = limits
            .max_compute_invocations_per_workgroup
            .min(limits.max_compute_workgroup_size_x)
            .min(limits.max_compute_workgroup_storage_size / WORKGROUP_BYTES_PER_INVOCATION)
            .clamp(1, 1024);
        1 << fits.ilog2()
    }

    /// Workgroup memory the kernels of this strategy need, at most (the derivative kernels').
    pub fn workgroup_memory(self) -> u32 {
        match self {
            Strategy::RowPerThread | Strategy::RowPerSubgroup { .. } => 0,
            Strategy::RowPerThreadCached => Strategy::CACHED_WORKGROUP_BYTES,
            Strategy::RowPerWorkgroup { size } | Strategy::SplitRow { size, .. } => {
                size.saturating_mul(WORKGROUP_BYTES_PER_INVOCATION)
            }
        }
    }

    /// Invocations per workgroup.
    pub fn workgroup_size(self) -> u32 {
        match self {
            Strategy::RowPerThread => 64,
            Strategy::RowPerThreadCached => cache::CACHE_INVOCATIONS,
            Strategy::RowPerSubgroup { .. } => Strategy::SUBGROUP_WORKGROUP,
            Strategy::RowPerWorkgroup { size } | Strategy::SplitRow { size, .. } => size,
        }
    }

    /// The override constants that set this strategy's kernels' launch shape.
    pub(crate) fn constants(self) -> Vec<(&'static str, f64)> {
        let mut constants = vec![("WORKGROUP_SIZE", f64::from(self.workgroup_size()))];
        if let Strategy::RowPerSubgroup { lanes } = self {
            constants.push(("LANES", f64::from(lanes)));
        }
        constants
    }

    /// Rows one workgroup takes.
    fn rows_per_group(self) -> u32 {
        match self {
            Strategy::RowPerThread | Strategy::RowPerThreadCached => self.workgroup_size(),
            Strategy::RowPerSubgroup { lanes } => Strategy::SUBGROUP_WORKGROUP / lanes.max(1),
            Strategy::RowPerWorkgroup { .. } | Strategy::SplitRow { .. } => 1,
        }
    }

    /// Rows one dispatch can cover.
    fn rows_per_dispatch(self, max_groups: u64) -> u64 {
        max_groups * u64::from(self.rows_per_group())
    }

    /// The workgroup grid for `rows` rows.
    pub(crate) fn grid(self, rows: u64) -> [u32; 3] {
        match self {
            Strategy::SplitRow { slices, .. } => [slices, rows as u32, 1],
            _ => [rows.div_ceil(u64::from(self.rows_per_group())) as u32, 1, 1],
        }
    }

    /// Noise blocks one workgroup walks (the whole row but for SplitRow).
    pub(crate) fn blocks_per_group(self, cols: u32) -> u64 {
        let blocks = u64::from(cols).div_ceil(4) + 1;
        match self {
            Strategy::SplitRow { slices, .. } => blocks.div_ceil(u64::from(slices)),
            _ => blocks,
        }
    }

    /// Loop iterations one invocation runs for a row of `cols` elements walked `passes` times.
    pub(crate) fn loop_iterations(self, cols: u32, passes: u64) -> u64 {
        let blocks = self.blocks_per_group(cols);
        let size = u64::from(self.workgroup_size());
        match self {
            Strategy::RowPerThread | Strategy::RowPerThreadCached => passes * blocks,
            // The shuffles take log2(lanes) <= 7 iterations a pass.
            Strategy::RowPerSubgroup { lanes } => {
                passes * (blocks.div_ceil(u64::from(lanes.max(1))) + 8)
            }
            Strategy::RowPerWorkgroup { .. } => passes * (blocks.div_ceil(size) + 10),
            Strategy::SplitRow { slices, .. } => {
                passes * (blocks.div_ceil(size) + 10) + u64::from(slices)
            }
        }
    }
}

/// What the default choice of strategy knows of a device.
struct Device<'a> {
    is_cpu: bool,
    limits: &'a wgpu::Limits,
    loop_budget: Option<u64>,
    smallest_subgroup: Option<u32>,
}

/// The temperature of a call.
#[derive(Clone, Copy, Debug)]
pub enum Tau<'a> {
    /// One value for every row.
    Scalar(f32),
    /// One f32 per row, in a buffer. A row whose value is not finite and positive gets no
    /// sample in every mode (NaN outputs, index `u32::MAX`), as the GPU cannot return an error;
    /// a scalar like that is refused when the call is recorded.
    PerRow(GpuSlice<'a>),
}

/// The parameters every row kernel's block starts with, in the order sampler_row.wgsl's
/// families declare them.
#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
pub(crate) struct RowHeader {
    pub seed: [u32; 2],
    pub offset: [u32; 2],
    pub rows: u32,
    pub cols: u32,
    pub in_pitch: u32,
    pub out_pitch: u32,
    pub in_base: u32,
    pub out_base: u32,
    pub tau_base: u32,
    pub tau_per_row: u32,
    pub tau: f32,
    pub counter_used: u32,
    pub in_stride: u32,
    pub out_stride: u32,
}
same_layout!(
    RowHeader = RowHeader {
        seed,
        offset,
        rows,
        cols,
        in_pitch,
        out_pitch,
        in_base,
        out_base,
        tau_base,
        tau_per_row,
        tau,
        counter_used,
        in_stride,
        out_stride,
    }
);

/// Where a call's noise comes from: a seed and the flat index of its row 0, column 0, or a
/// GPU-side counter holding both (then `offset` is added to the counter's offset and `seed`
/// is not used). docs/contract.md, section 2.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Noise<'a> {
    pub seed: u64,
    pub offset: u64,
    pub counter: Option<GpuSlice<'a>>,
}

/// A caller's buffer that a row call binds, window by window, at `binding`: `cols` elements of
/// `size` bytes per row, rows `pitch` elements apart (0: one row shared by every row), or with
/// a `stride` > 1 between a row's elements, groups of `stride` rows `pitch` apart (see
/// [`Shape`]).
pub(crate) struct RowArg<'a> {
    /// Its name in error messages.
    pub name: &'static str,
    pub slice: GpuSlice<'a>,
    pub binding: u32,
    pub cols: u32,
    pub pitch: u32,
    pub stride: u32,
    pub size: u64,
    /// Bound writable (`read_write` in the shader).
    pub writable: bool,
}

impl<'a> RowArg<'a> {
    /// An argument the kernels only read.
    pub fn read(
        name: &'static str,
        slice: GpuSlice<'a>,
        binding: u32,
        (cols, pitch): (u32, u32),
        size: u64,
    ) -> Self {
        Self {
            name,
            slice,
            binding,
            cols,
            pitch,
            stride: 1,
            size,
            writable: false,
        }
    }

    /// The call's input, which every row kernel reads at `BINDING_INPUT`: `shape.cols`
    /// elements a row at `shape.in_pitch` and `shape.col_stride` (the logits, or a derivative's
    /// saved sample).
    pub fn input(name: &'static str, slice: GpuSlice<'a>, shape: Shape, size: u64) -> Self {
        let layout = (shape.cols, shape.in_pitch);
        Self::read(name, slice, binding::BINDING_INPUT, layout, size).strided(shape.col_stride)
    }

    /// The same argument with `stride` elements between a row's elements.
    pub fn strided(self, stride: u32) -> Self {
        Self { stride, ..self }
    }

    /// An argument bound writable.
    pub fn write(
        name: &'static str,
        slice: GpuSlice<'a>,
        binding: u32,
        (cols, pitch): (u32, u32),
        size: u64,
    ) -> Self {
        Self {
            writable: true,
            ..Self::read(name, slice, binding, (cols, pitch), size)
        }
    }

    /// Elements that `rows` rows take, up to the last row's last element.
    fn span(&self, rows: u64) -> u64 {
        strided_span(rows, self.cols, self.pitch, self.stride)
    }

    /// Where row `row` (the first of a group when strided) starts, in elements.
    fn start(&self, row: u64) -> u64 {
        let stride = u64::from(self.stride);
        (row / stride) * u64::from(self.pitch) + row % stride
    }

    fn buffer_use(&self, rows: u64) -> BufferUse<'a> {
        let make = if self.writable {
            BufferUse::write
        } else {
            BufferUse::read
        };
        make(self.name, self.slice, self.span(rows), self.size)
    }
}

/// What a kernel family hands the row layer: the shape, the strategy, how often its kernels
/// walk a row, its buffers (the first the input at `BINDING_INPUT`, the second the output whose
/// base and pitch the header carries), the temperature, the noise, and scratch memory per row
/// that its dispatches share (bytes, at a binding of the family's).
pub(crate) struct RowCall<'a> {
    pub shape: Shape,
    pub strategy: Strategy,
    pub passes: u64,
    pub args: Vec<RowArg<'a>>,
    pub tau: Tau<'a>,
    pub noise: Noise<'a>,
    pub scratch: Option<(u32, u64)>,
}

/// One dispatch's share of a row call: its rows, its header, and what it binds.
pub(crate) struct RowPart<'a> {
    /// The call's row that is this part's first.
    pub row0: u64,
    pub rows: u64,
    pub header: RowHeader,
    windows: Vec<(u32, Window<'a>)>,
    tau: TauPart<'a>,
    counter: wgpu::BindingResource<'a>,
    scratch: Option<(u32, wgpu::Buffer)>,
}

impl RowPart<'_> {
    /// Where the argument at `binding` starts in its window, in elements.
    pub fn base(&self, binding: u32) -> u32 {
        self.windows
            .iter()
            .find(|(b, _)| *b == binding)
            .map_or(0, |(_, w)| w.base)
    }

    /// Every binding of the part but the parameters.
    pub fn bindings<'s>(&'s self, kernels: &'s Kernels) -> Vec<(u32, wgpu::BindingResource<'s>)> {
        let mut bindings: Vec<_> = self
            .windows
            .iter()
            .map(|(b, w)| (*b, w.binding()))
            .collect();
        bindings.push((binding::BINDING_TAUS, self.tau.binding(kernels)));
        bindings.push((binding::BINDING_COUNTER, self.counter.clone()));
        if let Some((b, buffer)) = &self.scratch {
            bindings.push((*b, buffer.as_entire_binding()));
        }
        bindings
    }
}

impl Kernels {
    /// Checks `strategy` for a row kernel that walks each row `passes` times against the
    /// device, and works out how many rows one dispatch may take: within the
    /// workgroup count and so that each of `buffers` (elements per row, pitch, stride, element
    /// size) fits one storage binding, with room for the alignment of its start.
    fn plan_rows(
        &self,
        shape: Shape,
        strategy: Strategy,
        passes: u64,
        buffers: &[(&str, u32, u32, u32, u64)],
    ) -> Result<RowPlan> {
        if let Strategy::RowPerSubgroup { lanes } = strategy {
            if !lanes.is_power_of_two() || lanes > 128 {
                return Err(invalid(format!(
                    "RowPerSubgroup {{ lanes: {lanes} }}: a power of two up to 128 is needed"
                )));
            }
            if self.smallest_subgroup.is_none() {
                return Err(invalid(
                    "RowPerSubgroup needs a device created with the SUBGROUP feature; this one was not",
                ));
            }
        }
        let size = strategy.workgroup_size();
        if !size.is_power_of_two()
            || size > 1024
            || size > self.limits.max_compute_invocations_per_workgroup
        {
            return Err(invalid(format!(
                "workgroup size {size}: a power of two up to {} is needed",
                self.limits.max_compute_invocations_per_workgroup.min(1024)
            )));
        }
        let memory = strategy.workgroup_memory();
        if memory > self.limits.max_compute_workgroup_storage_size {
            return Err(invalid(format!(
                "{strategy:?} needs {memory} bytes of workgroup memory; this device allows {}",
                self.limits.max_compute_workgroup_storage_size
            )));
        }
        if let Strategy::SplitRow { slices, .. } = strategy
            && (slices == 0 || u64::from(slices) > self.max_groups())
        {
            return Err(invalid(format!(
                "{slices} slices per row: 1 to {} are possible",
                self.max_groups()
            )));
        }
        let room = self
            .max_binding()
            .saturating_sub(u64::from(self.limits.min_storage_buffer_offset_alignment) + 4);
        // Dispatches split the rows at whole groups of `col_stride` rows (1 unless strided),
        // so that each window starts at a group.
        let group = u64::from(shape.col_stride).min(u64::from(shape.rows));
        let mut rows_per_dispatch = strategy.rows_per_dispatch(self.max_groups());
        rows_per_dispatch -= rows_per_dispatch % group;
        if rows_per_dispatch == 0 {
            return Err(Error::OverLimits(format!(
                "col_stride = {}: one dispatch of {strategy:?} takes fewer rows than a group",
                shape.col_stride
            )));
        }
        for &(name, cols, pitch, stride, size) in buffers {
            let group_bytes = strided_span(group, cols, pitch, stride) * size;
            if group_bytes > room {
                let what = match (group, pitch) {
                    (_, 0) => format!("the {name} ({cols} elements that every row reads)"),
                    (1, _) => format!("one row of the {name} ({cols} elements)"),
                    _ => format!(
                        "a group of {group} rows of the {name} (K = {}, col_stride)",
                        shape.cols
                    ),
                };
                return Err(Error::OverLimits(format!(
                    "{what} takes {group_bytes} bytes; a storage binding on this device holds {}",
                    self.max_binding()
                )));
            }
            // From one group to the next; a pitch of 0 is one row that every row shares.
            let step = match stride {
                1 => group * u64::from(pitch),
                _ => u64::from(pitch),
            };
            if step > 0 {
                let groups = 1 + (room - group_bytes) / (step * size);
                rows_per_dispatch = rows_per_dispatch.min(groups * group);
            }
        }
        let iterations = strategy
            .as_run(self.smallest_subgroup)
            .loop_iterations(shape.cols, passes);
        if let Some(budget) = self.loop_budget
            && iterations > budget
        {
            return Err(Error::OverLimits(format!(
                "{strategy:?} runs {iterations} loop iterations per invocation for K = {}, over this driver's budget of {budget}; choose a wider strategy",
                shape.cols
            )));
        }
        Ok(RowPlan { rows_per_dispatch })
    }

    /// Checks that the forward and derivative kernels can take `shape` in `storage` on this
    /// device under their default strategy: the checks of a call, without its buffers (for
    /// calls recorded where no error can be returned, as burn's ops).
    #[cfg(feature = "burn")]
    pub(crate) fn check_row_shape(&self, shape: Shape, storage: crate::StorageType) -> Result<()> {
        shape.validate()?;
        let strategy = Strategy::choose(shape.cols, self);
        let buffer = |name, pitch| (name, shape.cols, pitch, shape.col_stride, storage.size());
        let buffers = [
            buffer("input", shape.in_pitch),
            buffer("output", shape.out_pitch),
        ];
        self.plan_rows(shape, strategy, MOST_PASSES, &buffers)
            .map(|_| ())
    }

    /// Checks everything a row call takes before anything is recorded: the strategy against
    /// the device, each buffer's usage, size and offset, the temperature, the counter, and
    /// which arguments share a buffer. Returns how the rows split into dispatches.
    pub(crate) fn check_rows(&self, call: &RowCall) -> Result<RowPlan> {
        let shape = call.shape;
        shape.validate()?;
        let mut buffers: Vec<(&str, u32, u32, u32, u64)> = call
            .args
            .iter()
            .map(|a| (a.name, a.cols, a.pitch, a.stride, a.size))
            .collect();
        if let Some((_, bytes)) = call.scratch {
            let words = (bytes / 4) as u32;
            buffers.push(("intermediate results", words, words, 1, 4));
        }
        let plan = self.plan_rows(shape, call.strategy, call.passes, &buffers)?;
        let rows = u64::from(shape.rows);
        for arg in &call.args {
            self.check_slice(arg.name, arg.slice, arg.span(rows), arg.size)?;
        }
        self.check_tau_arg(call.tau, shape.rows)?;
        self.counter_binding(call.noise.counter)?;
        let mut uses: Vec<BufferUse> = call.args.iter().map(|a| a.buffer_use(rows)).collect();
        uses.extend(self.tau_use(call.tau, shape.rows));
        uses.extend(counter_use(call.noise.counter));
        self.check_aliasing(&uses)?;
        Ok(plan)
    }

    /// Calls `dispatch` for each part of a row call checked by [`Kernels::check_rows`]: each
    /// part's windows of the arguments, its temperature, its scratch and its header, whose noise
    /// position is that of its first row.
    pub(crate) fn each_part<'a>(
        &'a self,
        call: &RowCall<'a>,
        plan: &RowPlan,
        mut dispatch: impl FnMut(&RowPart) -> Result<()>,
    ) -> Result<()> {
        let shape = call.shape;
        for (row0, rows) in plan.parts(shape.rows) {
            let windows = call
                .args
                .iter()
                .map(|a| {
                    let first = a.start(row0);
                    Ok((
                        a.binding,
                        self.window(a.slice, first, a.span(rows), a.size)?,
                    ))
                })
                .collect::<Result<Vec<_>>>()?;
            let tau = self.tau_part(call.tau, row0, rows)?;
            let scratch = match call.scratch {
                Some((binding, bytes)) => Some((binding, self.scratch(rows * bytes)?)),
                None => None,
            };
            let (input, output) = (&windows[0].1, &windows[1].1);
            let noise = call.noise;
            let header = RowHeader {
                seed: split64(noise.seed),
                offset: split64(noise.offset.wrapping_add(row0 * u64::from(shape.cols))),
                rows: rows as u32,
                cols: shape.cols,
                in_pitch: shape.in_pitch,
                out_pitch: call.args[1].pitch,
                in_base: input.base,
                out_base: output.base,
                tau_base: tau.base,
                tau_per_row: tau.per_row,
                tau: tau.scalar,
                counter_used: u32::from(noise.counter.is_some()),
                in_stride: call.args[0].stride,
                out_stride: call.args[1].stride,
            };
            dispatch(&RowPart {
                row0,
                rows,
                header,
                windows,
                tau,
                counter: self.counter_binding(noise.counter)?,
                scratch,
            })?;
        }
        Ok(())
    }

    /// Checks a call's temperature argument for `rows` rows.
    fn check_tau_arg(&self, tau: Tau, rows: u32) -> Result<()> {
        match tau {
            Tau::Scalar(tau) => check_tau(tau),
            Tau::PerRow(taus) => self.check_slice("tau", taus, u64::from(rows), 4),
        }
    }

    /// A per-row temperature as the aliasing check sees it.
    fn tau_use<'a>(&self, tau: Tau<'a>, rows: u32) -> Option<BufferUse<'a>> {
        match tau {
            Tau::Scalar(_) => None,
            Tau::PerRow(slice) => Some(BufferUse::read("tau", slice, u64::from(rows), 4)),
        }
    }

    /// The temperature of rows `row0 .. row0 + rows` as one dispatch binds it.
    fn tau_part<'a>(&self, tau: Tau<'a>, row0: u64, rows: u64) -> Result<TauPart<'a>> {
        Ok(match tau {
            Tau::Scalar(scalar) => TauPart {
                window: None,
                base: 0,
                per_row: 0,
                scalar,
            },
            Tau::PerRow(slice) => {
                let window = self.window(slice, row0, rows, 4)?;
                TauPart {
                    base: window.base,
                    window: Some(window),
                    per_row: 1,
                    scalar: 0.0,
                }
            }
        })
    }

    /// The binding of a GPU noise counter (a placeholder when there is none). The kernels read
    /// its four words from the start of the binding, so its offset must be aligned for one.
    pub(crate) fn counter_binding<'a>(
        &'a self,
        counter: Option<GpuSlice<'a>>,
    ) -> Result<wgpu::BindingResource<'a>> {
        let Some(slice) = counter else {
            return Ok(self.placeholder.as_entire_binding());
        };
        self.check_slice("noise counter", slice, 4, 4)?;
        let align = u64::from(self.limits.min_storage_buffer_offset_alignment);
        if !slice.offset.is_multiple_of(align) {
            return Err(invalid(format!(
                "the noise counter's offset {} is not a multiple of the device's storage offset alignment {align}",
                slice.offset
            )));
        }
        Ok(wgpu::BindingResource::Buffer(wgpu::BufferBinding {
            buffer: slice.buffer,
            offset: slice.offset,
            size: wgpu::BufferSize::new(16),
        }))
    }
}

/// A GPU noise counter as the aliasing check sees it: the row kernels read its four words.
fn counter_use(counter: Option<GpuSlice>) -> Option<BufferUse> {
    counter.map(|slice| BufferUse::read("noise counter", slice, 4, 4))
}

/// How many rows each dispatch of a row kernel takes.
pub(crate) struct RowPlan {
    pub rows_per_dispatch: u64,
}

impl RowPlan {
    /// (first row, rows) of each dispatch.
    pub fn parts(&self, rows: u32) -> impl Iterator<Item = (u64, u64)> + use<> {
        let (rows, step) = (u64::from(rows), self.rows_per_dispatch);
        (0..rows.div_ceil(step)).map(move |i| (i * step, step.min(rows - i * step)))
    }
}

/// The temperature as one dispatch sees it: a scalar, or a window of per-row values.
pub(crate) struct TauPart<'a> {
    window: Option<Window<'a>>,
    pub base: u32,
    pub per_row: u32,
    pub scalar: f32,
}

impl TauPart<'_> {
    pub fn binding<'s>(&'s self, kernels: &'s Kernels) -> wgpu::BindingResource<'s> {
        match &self.window {
            Some(w) => w.binding(),
            None => kernels.placeholder.as_entire_binding(),
        }
    }
}

/// `with_tau`, for the call structs whose `tau` field is the call's temperature.
macro_rules! with_tau {
    ($call:ident) => {
        impl<'a> $call<'a> {
            /// The call's temperature (the forward call's, for a derivative).
            pub fn with_tau(self, tau: $crate::Tau<'a>) -> Self {
                Self { tau, ..self }
            }
        }
    };
}

/// `with_noise`, `with_counter` and `with_noise_range`, for the call structs with `seed`,
/// `offset`, `counter` and `noise_range`.
macro_rules! with_noise {
    ($call:ident) => {
        impl<'a> $call<'a> {
            /// The noise stream's seed and the flat noise index of row 0, column 0.
            pub fn with_noise(self, seed: u64, offset: u64) -> Self {
                Self {
                    seed,
                    offset,
                    ..self
                }
            }

            /// Seed and offset from a GPU-side counter (see [`crate::ForwardCall::counter`]).
            pub fn with_counter(self, counter: $crate::GpuSlice<'a>) -> Self {
                Self {
                    counter: Some(counter),
                    ..self
                }
            }

            /// One word of noise an element, or two (docs/contract.md, section 2).
            pub fn with_noise_range(self, noise_range: $crate::NoiseRange) -> Self {
                Self {
                    noise_range,
                    ..self
                }
            }
        }
    };
}

/// `with_strategy`, for the call structs with a `strategy: Option<Strategy>`.
macro_rules! with_strategy {
    ($call:ident) => {
        impl $call<'_> {
            /// A strategy of the caller's instead of the default choice.
            pub fn with_strategy(self, strategy: $crate::Strategy) -> Self {
                Self {
                    strategy: Some(strategy),
                    ..self
                }
            }
        }
    };
}

pub(crate) use {with_noise, with_strategy, with_tau};

#[cfg(test)]
mod tests {
    use super::*;

    fn device(is_cpu: bool, limits: &wgpu::Limits, budget: Option<u64>) -> Device<'_> {
        Device {
            is_cpu,
            limits,
            loop_budget: budget,
            smallest_subgroup: None,
        }
    }

    /// A device such as an H100 offers (through Vulkan) to a caller who asks for its limits.
    fn gpu_limits() -> wgpu::Limits {
        wgpu::Limits {
            max_compute_invocations_per_workgroup: 1024,
            max_compute_workgroup_size_x: 1024,
            max_compute_workgroup_storage_size: 49_152,
            ..wgpu::Limits::default()
        }
    }

    #[test]
    fn default_choice_fits_webgpu_default_limits() {
        let limits = wgpu::Limits::default();
        assert_eq!(Strategy::widest_workgroup(&limits), 256);
        for is_cpu in [false, true] {
            for cols in [1, 64, 65, 1000, 8192, 8193, 65_536, 131_072, 1 << 20] {
                let s = Strategy::choose_for(cols, &device(is_cpu, &limits, None));
                assert!(s.workgroup_size() <= 256, "K = {cols}, cpu {is_cpu}: {s:?}");
                assert_ne!(
                    s,
                    Strategy::RowPerThreadCached,
                    "16 KiB of workgroup memory"
                );
            }
        }
    }

    /// On llvmpipe (lavapipe, and GL through it) an invocation stops looping silently after
    /// 65,535 iterations: the choice widens workgroups so that every row up to the largest a
    /// 128 MiB binding holds (f16: 2^26 elements) runs within the budget the kernels assume.
    #[test]
    fn default_choice_keeps_within_a_loop_budget() {
        let limits = wgpu::Limits {
            max_compute_workgroup_storage_size: 32_768,
            ..gpu_limits()
        };
        let budget = 60_000;
        for is_cpu in [true, false] {
            for cols in [
                64,
                65_536,
                65_537,
                1 << 20,
                7_700_000,
                8_388_615,
                1 << 25,
                1 << 26,
            ] {
                let s = Strategy::choose_for(cols, &device(is_cpu, &limits, Some(budget)));
                let iterations = s.loop_iterations(cols, MOST_PASSES);
                assert!(
                    iterations <= budget,
                    "K = {cols}, cpu {is_cpu}: {s:?} runs {iterations}"
                );
            }
        }
        // Without a budget, or within it, the measured choice stands.
        let cpu = |cols, budget| Strategy::choose_for(cols, &device(true, &limits, budget));
        assert_eq!(cpu(1 << 20, None), cpu(1 << 20, Some(budget)));
        assert_eq!(cpu(8_388_615, None), Strategy::RowPerWorkgroup { size: 64 });
        assert_eq!(
            cpu(8_388_615, Some(budget)),
            Strategy::RowPerWorkgroup { size: 128 }
        );
    }

    #[test]
    fn default_choice_on_devices_with_their_own_limits() {
        let limits = gpu_limits();
        assert_eq!(Strategy::widest_workgroup(&limits), 1024);
        let gpu = |cols| Strategy::choose_for(cols, &device(false, &limits, None));
        assert_eq!(gpu(64), Strategy::RowPerThread);
        assert_eq!(gpu(1024), Strategy::RowPerWorkgroup { size: 256 });
        assert_eq!(gpu(32_768), Strategy::RowPerWorkgroup { size: 1024 });
        assert_eq!(
            gpu(262_144),
            Strategy::SplitRow {
                size: 1024,
                slices: 8
            }
        );
        let cpu = |cols| Strategy::choose_for(cols, &device(true, &limits, None));
        assert_eq!(cpu(64), Strategy::RowPerThread);
        assert_eq!(cpu(1000), Strategy::RowPerThreadCached);
        assert_eq!(cpu(1 << 20), Strategy::RowPerWorkgroup { size: 64 });
    }

    /// With subgroups (lavapipe's 8, an H100's 32, an Intel GPU's smallest 8): short rows on a GPU get a segment of a
    /// subgroup sized to the row, long rows on a CPU driver a row per subgroup, and both stay
    /// within a loop budget as the kernels run them (lavapipe clamps 32 lanes to 8).
    #[test]
    fn default_choice_with_subgroups() {
        let limits = gpu_limits();
        let with = |is_cpu, smallest, budget| Device {
            smallest_subgroup: Some(smallest),
            ..device(is_cpu, &limits, budget)
        };
        let gpu = |cols| Strategy::choose_for(cols, &with(false, 32, None));
        assert_eq!(gpu(8), Strategy::RowPerSubgroup { lanes: 1 });
        assert_eq!(gpu(64), Strategy::RowPerSubgroup { lanes: 4 });
        assert_eq!(gpu(1024), Strategy::RowPerSubgroup { lanes: 32 });
        assert_eq!(gpu(4096), Strategy::RowPerWorkgroup { size: 256 });
        let intel = Strategy::choose_for(1024, &with(false, 8, None));
        assert_eq!(intel, Strategy::RowPerSubgroup { lanes: 8 });
        let cpu = |cols| Strategy::choose_for(cols, &with(true, 8, Some(60_000)));
        assert_eq!(cpu(1000), Strategy::RowPerThreadCached);
        assert_eq!(cpu(262_144), Strategy::RowPerSubgroup { lanes: 32 });
        for cols in [65_537, 1 << 20, 1 << 26] {
            let s = cpu(cols);
            let iterations = s.as_run(Some(8)).loop_iterations(cols, MOST_PASSES);
            assert!(iterations <= 60_000, "K = {cols}: {s:?} runs {iterations}");
        }
        assert!(matches!(cpu(1 << 20), Strategy::RowPerWorkgroup { .. }));
    }
}

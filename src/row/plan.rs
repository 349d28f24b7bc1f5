//! A row call and its dispatches: a family hands the row layer its buffers, temperature, noise
//! and scratch (`RowCall`); `check_rows` checks all of it against the device before anything
//! is recorded and splits the rows into dispatches (`RowPlan`), and `each_part` hands each
//! dispatch's share (`RowPart`: header, windows, bindings) back to the family.

use super::binding;
use super::header::{NoisePosition, RowHeader, Tau, TauPart, counter_use};
use super::strategy::Strategy;
use crate::error::{Error, Result, invalid};
use crate::kernels::{BufferUse, GpuSlice, Kernels, Window};
use crate::types::{Shape, strided_span};

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

/// What one invocation of a family's kernels costs under a strategy, at most: the loop
/// iterations it runs over a row (held to a driver's loop budget) and the workgroup memory it
/// declares. Each family works it out from its own loops; the row layer holds it to the device.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowCost {
    pub iterations: u64,
    pub workgroup_bytes: u32,
}

impl RowCost {
    /// The forward and derivative kernels, which walk a row `passes` times (the workgroup
    /// memory of the derivatives', the larger).
    pub fn of_passes(strategy: Strategy, cols: u32, passes: u64, kernels: &Kernels) -> Self {
        RowCost {
            iterations: strategy
                .as_run(kernels.smallest_subgroup)
                .loop_iterations(cols, passes),
            workgroup_bytes: strategy.workgroup_memory(),
        }
    }

    /// Whether kernels of this cost run on a device with `limits` and `loop_budget`: their
    /// workgroup memory within its limit, their loops within the budget.
    pub fn fits(self, limits: &wgpu::Limits, loop_budget: Option<u64>) -> bool {
        self.workgroup_bytes <= limits.max_compute_workgroup_storage_size
            && loop_budget.is_none_or(|budget| self.iterations <= budget)
    }
}

impl Kernels {
    /// Whether kernels of `cost` run on this device (the families' default choices ask).
    pub(crate) fn affords(&self, cost: RowCost) -> bool {
        cost.fits(&self.limits, self.loop_budget)
    }
}

/// What a kernel family hands the row layer: the shape, the strategy, what its kernels cost, its
/// buffers (the first the input at `BINDING_INPUT`, the second the output whose
/// base and pitch the header carries), the temperature, the noise, and scratch memory per row
/// that its dispatches share (bytes, at a binding of the family's).
pub(crate) struct RowCall<'a> {
    pub shape: Shape,
    pub strategy: Strategy,
    pub cost: RowCost,
    pub args: Vec<RowArg<'a>>,
    pub tau: Tau<'a>,
    pub noise: NoisePosition<'a>,
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
    /// Checks `strategy` for row kernels of `cost` against the device, and works out how many rows one dispatch may take: within the
    /// workgroup count and so that each of `buffers` (elements per row, pitch, stride, element
    /// size) fits one storage binding, with room for the alignment of its start.
    fn plan_rows(
        &self,
        shape: Shape,
        strategy: Strategy,
        cost: RowCost,
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
        let memory = cost.workgroup_bytes;
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
        let iterations = cost.iterations;
        if let Some(budget) = self.loop_budget
            && iterations > budget
        {
            return Err(Error::OverLimits(format!(
                "{strategy:?} runs up to {iterations} loop iterations per invocation for K = {}, over this driver's budget of {budget}; choose a wider strategy",
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
        let cost = RowCost::of_passes(strategy, shape.cols, super::strategy::MOST_PASSES, self);
        self.plan_rows(shape, strategy, cost, &buffers).map(|_| ())
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
        let plan = self.plan_rows(shape, call.strategy, call.cost, &buffers)?;
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
            let (tau_base, tau_per_row, tau_scalar) = tau.header_fields();
            let scratch = match call.scratch {
                Some((binding, bytes)) => Some((binding, self.scratch(rows * bytes)?)),
                None => None,
            };
            let (input, output) = (&windows[0].1, &windows[1].1);
            let noise = call.noise;
            let (seed, offset) = noise.words_at(row0 * u64::from(shape.cols));
            let header = RowHeader {
                seed,
                offset,
                rows: rows as u32,
                cols: shape.cols,
                in_pitch: shape.in_pitch,
                out_pitch: call.args[1].pitch,
                in_base: input.base,
                out_base: output.base,
                tau_base,
                tau_per_row,
                tau: tau_scalar,
                counter_used: noise.counter_used(),
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

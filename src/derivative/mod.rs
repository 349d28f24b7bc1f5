//! The derivative kernels: the VJP (backward) and the JVP (forward mode) of the soft, log-soft
//! and hard samples, with the sample either saved by the forward pass or recomputed from the
//! logits and the same noise (docs/contract.md, section 1).

use bytemuck::{Pod, Zeroable};

use crate::error::{Result, invalid};
use crate::kernels::{GpuSlice, Kernels};
use crate::row::{
    NoisePosition, RowArg, RowCall, RowCost, RowHeader, Strategy, Tau, with_strategy, with_tau,
};
use crate::shaders::same_layout;
use crate::shaders::{Shader, derivative_common as kernel, row_bindings as binding, sum_rows};
use crate::types::{Mode, Shape, StorageType};

/// Where a derivative kernel gets the sample y from. Read at `shape.in_pitch`.
#[derive(Clone, Copy, Debug)]
pub enum Source<'a> {
    /// The forward pass's output: the soft sample for [`Mode::Soft`] and [`Mode::Hard`] (the
    /// one-hot output of a hard call is not enough: save the output of a soft call with the same
    /// arguments), `log y` for [`Mode::LogSoft`].
    Saved(GpuSlice<'a>),
    /// The logits, with the forward call's noise: the sample is regenerated from the same
    /// noise, so a training step need only keep the logits. Made by [`Source::recompute`] or
    /// [`Source::recompute_with`].
    #[non_exhaustive]
    Recompute {
        /// The logits, read at `shape.in_pitch`.
        logits: GpuSlice<'a>,
        /// The forward call's noise; with a GPU counter, record its advance after the
        /// derivative.
        noise: NoisePosition<'a>,
    },
}

impl<'a> Source<'a> {
    /// The logits with the forward call's seed and offset, no counter and the standard noise
    /// range.
    pub fn recompute(logits: GpuSlice<'a>, seed: u64, offset: u64) -> Self {
        Self::recompute_with(logits, NoisePosition::new(seed, offset))
    }

    /// The logits with the forward call's noise position.
    pub fn recompute_with(logits: GpuSlice<'a>, noise: NoisePosition<'a>) -> Self {
        Source::Recompute { logits, noise }
    }
}

/// Where the VJP puts the temperature's gradient.
#[derive(Clone, Copy, Debug)]
pub enum TauGradient<'a> {
    /// Not wanted.
    None,
    /// One f32 per row, `dtau_r = -sum_k z_k dl_k`: for a per-row temperature.
    PerRow(GpuSlice<'a>),
    /// One f32, the sum over all rows: for a scalar temperature. Summed on the GPU in a fixed
    /// order, so the same inputs give the same bits on every run.
    Sum(GpuSlice<'a>),
}

/// The temperature's tangent in a JVP.
#[derive(Clone, Copy, Debug)]
pub enum TauTangent<'a> {
    /// One value for every row (0 for a tangent of the logits alone).
    Scalar(f32),
    /// One f32 per row.
    PerRow(GpuSlice<'a>),
}

/// A VJP: `dl` (and optionally the temperature's gradient) from the upstream gradient `dy`
/// of the `mode` output. `dy` and `dl` hold `storage` elements at `shape.out_pitch`. Hard mode
/// is the straight-through estimator: the soft sample's gradient.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct VjpCall<'a> {
    /// The output whose derivative this is (not index mode).
    pub mode: Mode,
    /// Storage of the sample or logits, `dy` and `dl`.
    pub storage: StorageType,
    /// The forward call's shape: `in_pitch` for the source, `out_pitch` for `dy` and `dl`.
    pub shape: Shape,
    /// Where the sample comes from.
    pub source: Source<'a>,
    /// The forward call's temperature.
    pub tau: Tau<'a>,
    /// The upstream gradient of the output.
    pub dy: GpuSlice<'a>,
    /// The gradient of the logits, written.
    pub dl: GpuSlice<'a>,
    /// Where the temperature's gradient goes, if anywhere.
    pub dtau: TauGradient<'a>,
    /// `None`: [`Strategy::choose`].
    pub strategy: Option<Strategy>,
}

/// A JVP: the tangent `ydot` of the `mode` output for tangents `dl` of the logits and `dtau` of
/// the temperature. `dl` and `ydot` hold `storage` elements at `shape.out_pitch`.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct JvpCall<'a> {
    /// The output whose tangent this is (not index mode).
    pub mode: Mode,
    /// Storage of the sample or logits, `dl` and `ydot`.
    pub storage: StorageType,
    /// The forward call's shape: `in_pitch` for the source, `out_pitch` for `dl` and `ydot`.
    pub shape: Shape,
    /// Where the sample comes from.
    pub source: Source<'a>,
    /// The forward call's temperature.
    pub tau: Tau<'a>,
    /// The tangent of the logits.
    pub dl: GpuSlice<'a>,
    /// The tangent of the temperature.
    pub dtau: TauTangent<'a>,
    /// The output's tangent, written.
    pub ydot: GpuSlice<'a>,
    /// `None`: [`Strategy::choose`].
    pub strategy: Option<Strategy>,
}

impl<'a> VjpCall<'a> {
    /// A VJP at temperature 1, without the temperature's gradient, with the default strategy;
    /// the `with_` methods set the rest.
    pub fn new(
        mode: Mode,
        storage: StorageType,
        shape: Shape,
        source: Source<'a>,
        dy: GpuSlice<'a>,
        dl: GpuSlice<'a>,
    ) -> Self {
        Self {
            mode,
            storage,
            shape,
            source,
            tau: Tau::Scalar(1.0),
            dy,
            dl,
            dtau: TauGradient::None,
            strategy: None,
        }
    }

    /// Where the temperature's gradient goes.
    pub fn with_dtau(self, dtau: TauGradient<'a>) -> Self {
        Self { dtau, ..self }
    }
}

with_tau!(VjpCall);
with_strategy!(VjpCall);

impl<'a> JvpCall<'a> {
    /// A JVP at temperature 1 with a tau tangent of 0 (the logits' tangent alone) and the
    /// default strategy; the `with_` methods set the rest.
    pub fn new(
        mode: Mode,
        storage: StorageType,
        shape: Shape,
        source: Source<'a>,
        dl: GpuSlice<'a>,
        ydot: GpuSlice<'a>,
    ) -> Self {
        Self {
            mode,
            storage,
            shape,
            source,
            tau: Tau::Scalar(1.0),
            dl,
            dtau: TauTangent::Scalar(0.0),
            ydot,
            strategy: None,
        }
    }

    /// The temperature's tangent.
    pub fn with_dtau(self, dtau: TauTangent<'a>) -> Self {
        Self { dtau, ..self }
    }
}

with_tau!(JvpCall);
with_strategy!(JvpCall);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct DerivativeParams {
    header: RowHeader,
    grad_base: u32,
    row_base: u32,
    per_row_used: u32,
    dtau: f32,
    slices: u32,
    slice_blocks: u32,
}
same_layout!(
    DerivativeParams = DerivativeParams {
        header,
        grad_base,
        row_base,
        per_row_used,
        dtau,
        slices,
        slice_blocks,
    }
);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct SumParams {
    count: u32,
    in_base: u32,
    out_base: u32,
    _pad: u32,
}
same_layout!(
    SumParams = SumParams {
        count,
        in_base,
        out_base,
        _pad
    }
);

/// Values one workgroup of `sum_rows` adds.
const SUM_CHUNK: u64 = (sum_rows::WORKGROUP_SIZE * sum_rows::PER_INVOCATION) as u64;

#[derive(Clone, Copy, PartialEq)]
enum Direction {
    Vjp,
    Jvp,
}

/// What the VJP and the JVP hand the shared recording: `grad` is read per element (dy, or the
/// logits' tangent), `per_row` is written (dtau) or read (its tangent).
struct DerivativeCall<'a> {
    direction: Direction,
    mode: Mode,
    storage: StorageType,
    shape: Shape,
    source: Source<'a>,
    tau: Tau<'a>,
    grad: GpuSlice<'a>,
    out: GpuSlice<'a>,
    per_row: Option<GpuSlice<'a>>,
    dtau: f32,
    strategy: Option<Strategy>,
}

impl Kernels {
    /// Records a VJP into `encoder`, split by rows as the forward pass is.
    pub fn record_vjp(&self, encoder: &mut wgpu::CommandEncoder, call: &VjpCall) -> Result<()> {
        let rows = u64::from(call.shape.rows);
        let scratch;
        let per_row = match call.dtau {
            TauGradient::None => None,
            TauGradient::PerRow(slice) => Some(slice),
            TauGradient::Sum(slice) => {
                self.check_slice("dtau", slice, 1, 4)?;
                scratch = self.scratch(rows * 4)?;
                Some(GpuSlice::from(&scratch))
            }
        };
        self.record_derivative(
            encoder,
            &DerivativeCall {
                direction: Direction::Vjp,
                mode: call.mode,
                storage: call.storage,
                shape: call.shape,
                source: call.source,
                tau: call.tau,
                grad: call.dy,
                out: call.dl,
                per_row,
                dtau: 0.0,
                strategy: call.strategy,
            },
        )?;
        if let (TauGradient::Sum(out), Some(values)) = (call.dtau, per_row) {
            self.record_sum(encoder, values.buffer, rows, out)?;
        }
        Ok(())
    }

    /// Records a JVP into `encoder`, split by rows as the forward pass is.
    pub fn record_jvp(&self, encoder: &mut wgpu::CommandEncoder, call: &JvpCall) -> Result<()> {
        let (per_row, dtau) = match call.dtau {
            TauTangent::Scalar(dtau) if dtau.is_finite() => (None, dtau),
            TauTangent::Scalar(dtau) => {
                return Err(invalid(format!("the tau tangent {dtau} is not finite")));
            }
            TauTangent::PerRow(slice) => (Some(slice), 0.0),
        };
        self.record_derivative(
            encoder,
            &DerivativeCall {
                direction: Direction::Jvp,
                mode: call.mode,
                storage: call.storage,
                shape: call.shape,
                source: call.source,
                tau: call.tau,
                grad: call.dl,
                out: call.ydot,
                per_row,
                dtau,
                strategy: call.strategy,
            },
        )
    }

    fn record_derivative(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &DerivativeCall,
    ) -> Result<()> {
        let shape = call.shape;
        shape.validate()?;
        if call.mode == Mode::Index {
            return Err(invalid(
                "index mode has no derivative: use hard mode for the straight-through estimator",
            ));
        }
        let size = call.storage.size();
        let (input, in_name, noise, passes) = match call.source {
            Source::Saved(y) => (y, "saved sample", NoisePosition::new(0, 0), 2),
            Source::Recompute { logits, noise } => (logits, "logits", noise, 3),
        };
        let strategy = call
            .strategy
            .unwrap_or_else(|| Strategy::choose(shape.cols, self));
        // SplitRow keeps per slice a row state and its sums, 16 bytes each.
        let slices = match strategy {
            Strategy::SplitRow { slices, .. } => slices,
            _ => 0,
        };
        let (grad_name, out_name, per_row_name) = match call.direction {
            Direction::Vjp => ("dy", "dl", "dtau"),
            Direction::Jvp => ("dl", "ydot", "tau tangent"),
        };
        let row = (shape.cols, shape.out_pitch);
        let mut args = vec![
            RowArg::input(in_name, input, shape, size),
            RowArg::write(out_name, call.out, binding::BINDING_OUT, row, size)
                .strided(shape.col_stride),
            RowArg::read(grad_name, call.grad, kernel::BINDING_GRAD, row, size)
                .strided(shape.col_stride),
        ];
        // The per-row values are bound writable in either direction (one binding serves both).
        args.extend(
            call.per_row.map(|slice| {
                RowArg::write(per_row_name, slice, kernel::BINDING_PER_ROW, (1, 1), 4)
            }),
        );
        let rows = RowCall {
            shape,
            strategy,
            cost: RowCost::of_passes(strategy, shape.cols, passes, self),
            args,
            tau: call.tau,
            noise,
            scratch: (slices > 0).then_some((kernel::BINDING_PARTIALS, 32 * u64::from(slices))),
        };
        let plan = self.check_rows(&rows)?;

        let recompute = passes == 3;
        let source = match recompute {
            true => kernel::SOURCE_RECOMPUTE,
            false => kernel::SOURCE_SAVED,
        };
        let direction = match call.direction {
            Direction::Vjp => kernel::DIRECTION_VJP,
            Direction::Jvp => kernel::DIRECTION_JVP,
        };
        let pipeline = |shader, launch: Strategy| {
            let mut constants = launch.constants();
            constants.extend([
                ("MODE", call.mode.shader_value()),
                ("SOURCE", f64::from(source)),
                ("DIRECTION", f64::from(direction)),
            ]);
            self.noise_pipeline(shader, Some(call.storage), &constants, noise.range)
        };
        // The kernels in dispatch order; for the other strategies, one kernel.
        let mut steps = Vec::new();
        let mut one = |shader| -> Result<()> {
            steps.push(pipeline(shader, strategy)?);
            Ok(())
        };
        match strategy {
            Strategy::RowPerThread => one(Shader::DerivativeRowPerThread)?,
            Strategy::RowPerThreadCached => one(Shader::DerivativeRowPerThreadCached)?,
            Strategy::RowPerSubgroup { .. } => one(Shader::DerivativeRowPerSubgroup)?,
            Strategy::RowPerWorkgroup { .. } => one(Shader::DerivativeRowPerWorkgroup)?,
            Strategy::SplitRow { .. } => {
                if recompute {
                    one(Shader::DerivativeSplitState)?;
                }
                one(Shader::DerivativeSplitDot)?;
                one(Shader::DerivativeSplitWrite)?;
            }
        }
        let dtau_step = match (strategy, call.direction, call.per_row) {
            (Strategy::SplitRow { .. }, Direction::Vjp, Some(_)) => Some(pipeline(
                Shader::DerivativeSplitDtau,
                Strategy::RowPerThread,
            )?),
            _ => None,
        };
        self.each_part(&rows, &plan, |part| {
            let params = DerivativeParams {
                header: part.header,
                grad_base: part.base(kernel::BINDING_GRAD),
                row_base: part.base(kernel::BINDING_PER_ROW),
                per_row_used: u32::from(call.per_row.is_some()),
                dtau: call.dtau,
                slices,
                slice_blocks: strategy.blocks_per_group(shape.cols) as u32,
            };
            let params = bytemuck::bytes_of(&params);
            let mut bindings = part.bindings(self);
            if call.per_row.is_none() {
                // A dispatch may not bind one buffer both read-only and writable.
                bindings.push((
                    kernel::BINDING_PER_ROW,
                    self.placeholder_out.as_entire_binding(),
                ));
            }
            for step in &steps {
                self.dispatch_grid(encoder, step, params, &bindings, strategy.grid(part.rows))?;
            }
            if let Some(step) = &dtau_step {
                let grid = Strategy::RowPerThread.grid(part.rows);
                self.dispatch_grid(encoder, step, params, &bindings, grid)?;
            }
            Ok(())
        })
    }

    /// Records the deterministic sum of the first `count` f32 of `values` into `out`: levels of
    /// fixed-order workgroup sums, until one value is left.
    pub(crate) fn record_sum(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        values: &wgpu::Buffer,
        count: u64,
        out: GpuSlice,
    ) -> Result<()> {
        let pipeline = self.pipeline(Shader::SumRows, None, &[])?;
        let mut level = (values.clone(), count);
        loop {
            let (input, count) = level;
            let groups = count.div_ceil(SUM_CHUNK);
            let next = if groups == 1 {
                None
            } else {
                Some(self.scratch(groups * 4)?)
            };
            let target = next.as_ref().map_or(out, GpuSlice::from);
            let sums = self.window(target, 0, groups, 4)?;
            let params = SumParams {
                count: count as u32,
                in_base: 0,
                out_base: sums.base,
                _pad: 0,
            };
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[input.as_entire_binding(), sums.binding()],
                groups as u32,
            )?;
            match next {
                None => return Ok(()),
                Some(buffer) => level = (buffer, groups),
            }
        }
    }
}

#[cfg(feature = "burn")]
pub(crate) mod burn;
mod host;
pub use host::{Gradient, HostSource};

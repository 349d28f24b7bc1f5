//! The fused forward kernels: noise, temperature softmax and the chosen output in one pass.

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::kernels::{GpuSlice, Kernels};
use crate::row::{
    NoisePosition, RowArg, RowCall, RowCost, RowHeader, Strategy, Tau, with_noise, with_strategy,
    with_tau,
};
use crate::shaders::same_layout;
use crate::shaders::{Shader, forward_common as kernel, row_bindings as binding};
use crate::types::{Mode, Shape, StorageType};

/// One forward call: `shape.rows` rows of logits in `logits`, the samples into `out`.
/// `out` holds `storage` elements, except in index mode: one `u32` per row, at `out_pitch` 1.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct ForwardCall<'a> {
    /// What the call writes.
    pub mode: Mode,
    /// Storage of the logits and the output.
    pub storage: StorageType,
    /// Rows, K and the pitches of the logits and the output.
    pub shape: Shape,
    /// The logits.
    pub logits: GpuSlice<'a>,
    /// The output.
    pub out: GpuSlice<'a>,
    /// The temperature.
    pub tau: Tau<'a>,
    /// Where the noise comes from.
    pub noise: NoisePosition<'a>,
    /// `None`: [`Strategy::choose`].
    pub strategy: Option<Strategy>,
}

impl<'a> ForwardCall<'a> {
    /// A call with temperature 1, seed 0 at offset 0, no counter, the standard noise range and
    /// the default strategy;
    /// the `with_` methods set the rest.
    ///
    /// ```no_run
    /// # use gumbel_wgpu::{ForwardCall, GpuSlice, Mode, Shape, StorageType, Tau};
    /// # fn f(logits: &wgpu::Buffer, out: &wgpu::Buffer, taus: &wgpu::Buffer) {
    /// let shape = Shape::new(64, 1000);
    /// let call = ForwardCall::new(Mode::Soft, StorageType::F16, shape, logits.into(), out.into())
    ///     .with_tau(Tau::PerRow(taus.into()))
    ///     .with_noise(42, 1 << 20);
    /// # }
    /// ```
    pub fn new(
        mode: Mode,
        storage: StorageType,
        shape: Shape,
        logits: GpuSlice<'a>,
        out: GpuSlice<'a>,
    ) -> Self {
        Self {
            mode,
            storage,
            shape,
            logits,
            out,
            tau: Tau::Scalar(1.0),
            noise: NoisePosition::new(0, 0),
            strategy: None,
        }
    }
}

with_tau!(ForwardCall);
with_noise!(ForwardCall);
with_strategy!(ForwardCall);

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ForwardParams {
    header: RowHeader,
    slices: u32,
    slice_blocks: u32,
}
same_layout!(
    ForwardParams = ForwardParams {
        header,
        slices,
        slice_blocks
    }
);

impl Kernels {
    /// Records a forward pass into `encoder`. Batches larger than one dispatch or one storage
    /// binding are split by rows; each part draws the noise its rows would get in one dispatch.
    pub fn record_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &ForwardCall,
    ) -> Result<()> {
        let shape = call.shape;
        let size = call.storage.size();
        // Index mode writes one u32 per row.
        let output = match call.mode {
            Mode::Index => (1, 1, 1, 4),
            _ => (shape.cols, shape.out_pitch, shape.col_stride, size),
        };
        let strategy = call
            .strategy
            .unwrap_or_else(|| Strategy::choose(shape.cols, self));
        // SplitRow keeps one partial row state (16 bytes) per slice of each row.
        let slices = match strategy {
            Strategy::SplitRow { slices, .. } => slices,
            _ => 0,
        };
        let rows = RowCall {
            shape,
            strategy,
            cost: RowCost::of_passes(strategy, shape.cols, 2, self),
            args: vec![
                RowArg::input("logits", call.logits, shape, size),
                RowArg::write(
                    "output",
                    call.out,
                    binding::BINDING_OUT,
                    (output.0, output.1),
                    output.3,
                )
                .strided(output.2),
            ],
            tau: call.tau,
            noise: call.noise,
            scratch: (slices > 0).then_some((kernel::BINDING_PARTIALS, 16 * u64::from(slices))),
        };
        let plan = self.check_rows(&rows)?;

        let mut constants = strategy.constants();
        constants.push(("MODE", call.mode.shader_value()));
        let pipeline =
            |shader| self.noise_pipeline(shader, Some(call.storage), &constants, call.noise.range);
        // The kernel that writes the output: for SplitRow, its second step.
        let writer = pipeline(match strategy {
            Strategy::RowPerThread => Shader::ForwardRowPerThread,
            Strategy::RowPerThreadCached => Shader::ForwardRowPerThreadCached,
            Strategy::RowPerSubgroup { .. } => Shader::ForwardRowPerSubgroup,
            Strategy::RowPerWorkgroup { .. } => Shader::ForwardRowPerWorkgroup,
            Strategy::SplitRow { .. } => Shader::ForwardSplitFinish,
        })?;
        let partial = match strategy {
            Strategy::SplitRow { .. } => Some(pipeline(Shader::ForwardSplitPartial)?),
            _ => None,
        };
        self.each_part(&rows, &plan, |part| {
            let params = ForwardParams {
                header: part.header,
                slices,
                slice_blocks: strategy.blocks_per_group(shape.cols) as u32,
            };
            let params = bytemuck::bytes_of(&params);
            let bindings = part.bindings(self);
            let mut grid = strategy.grid(part.rows);
            if let Some(partial) = &partial {
                self.dispatch_grid(encoder, partial, params, &bindings, grid)?;
                // Index mode's finishing step writes one value a row: one workgroup does.
                if call.mode == Mode::Index {
                    grid[0] = 1;
                }
            }
            self.dispatch_grid(encoder, &writer, params, &bindings, grid)
        })
    }
}

#[cfg(feature = "burn")]
pub(crate) mod burn;
mod host;

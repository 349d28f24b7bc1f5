//! The fused forward kernels: noise, temperature softmax and the chosen output in one pass.

use bytemuck::{Pod, Zeroable};

use crate::error::Result;
use crate::kernels::{BufferUse, GpuSlice, Kernels};
use crate::row::{RowHeader, Strategy, Tau, counter_use};
use crate::shaders::Shader;
use crate::types::{Mode, Shape, StorageType};

/// One forward call: `shape.rows` rows of logits in `logits`, the samples into `out`.
/// `out` holds `storage` elements, except in index mode: one `u32` per row, at `out_pitch` 1.
#[derive(Clone, Copy, Debug)]
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
    /// The noise stream's seed (SPEC section 2).
    pub seed: u64,
    /// Flat noise index of row 0, column 0 (SPEC section 2).
    pub offset: u64,
    /// A GPU-side noise counter ([`crate::Generator::counter_words`]): when given, the seed
    /// and offset are read from it when the kernel runs (`offset` is added to its offset, and
    /// `seed` is not used). See [`Kernels::record_advance`].
    pub counter: Option<GpuSlice<'a>>,
    /// `None`: [`Strategy::choose`].
    pub strategy: Option<Strategy>,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ForwardParams {
    header: RowHeader,
    slices: u32,
    slice_blocks: u32,
    counter_used: u32,
}

impl Kernels {
    /// Records a forward pass into `encoder`. Batches larger than one dispatch or one storage
    /// binding are split by rows; each part draws the noise its rows would get in one dispatch.
    pub fn record_forward(
        &self,
        encoder: &mut wgpu::CommandEncoder,
        call: &ForwardCall,
    ) -> Result<()> {
        let shape = call.shape;
        shape.validate()?;
        let in_size = call.storage.size();
        // Index mode writes one u32 per row.
        let (out_size, out_pitch, out_cols) = match call.mode {
            Mode::Index => (4, 1, 1),
            _ => (in_size, shape.out_pitch, shape.cols),
        };
        let out_span = |s: Shape| {
            Shape {
                cols: out_cols,
                ..s
            }
            .span(out_pitch)
        };
        let strategy = call
            .strategy
            .unwrap_or_else(|| Strategy::choose(shape.cols, self));
        // SplitRow keeps one partial row state (16 bytes) per slice of each row.
        let slices = match strategy {
            Strategy::SplitRow { slices, .. } => slices,
            _ => 0,
        };
        let mut buffers = vec![
            (shape.cols, shape.in_pitch, in_size),
            (out_cols, out_pitch, out_size),
        ];
        if slices > 0 {
            buffers.push((4 * slices, 4 * slices, 4));
        }
        let plan = self.plan_rows(shape, strategy, 2, &buffers)?;
        self.check_slice("logits", call.logits, shape.span(shape.in_pitch), in_size)?;
        self.check_slice("output", call.out, out_span(shape), out_size)?;
        self.check_tau_arg(call.tau, shape.rows)?;
        let counter_binding = self.counter_binding(call.counter)?;
        let mut uses = vec![
            BufferUse::read("logits", call.logits, shape.span(shape.in_pitch), in_size),
            BufferUse::write("output", call.out, out_span(shape), out_size),
        ];
        uses.extend(self.tau_use(call.tau, shape.rows));
        uses.extend(counter_use(call.counter));
        self.check_aliasing(&uses)?;

        let constants = [
            ("MODE", call.mode.shader_value()),
            ("WORKGROUP_SIZE", f64::from(strategy.workgroup_size())),
        ];
        let pipeline = |shader| self.pipeline(shader, Some(call.storage), &constants);
        // The kernel that writes the output: for SplitRow, its second step.
        let writer = pipeline(match strategy {
            Strategy::RowPerThread => Shader::ForwardRowPerThread,
            Strategy::RowPerThreadCached => Shader::ForwardRowPerThreadCached,
            Strategy::RowPerWorkgroup { .. } => Shader::ForwardRowPerWorkgroup,
            Strategy::SplitRow { .. } => Shader::ForwardSplitFinish,
        })?;
        let partial = match strategy {
            Strategy::SplitRow { .. } => Some(pipeline(Shader::ForwardSplitPartial)?),
            _ => None,
        };
        for (row0, rows) in plan.parts(shape.rows) {
            let part = Shape {
                rows: rows as u32,
                ..shape
            };
            let logits = self.window(
                call.logits,
                row0 * u64::from(shape.in_pitch),
                part.span(shape.in_pitch),
                in_size,
            )?;
            let out = self.window(
                call.out,
                row0 * u64::from(out_pitch),
                out_span(part),
                out_size,
            )?;
            let tau = self.tau_part(call.tau, row0, rows)?;
            let params = ForwardParams {
                header: RowHeader::new(
                    call.seed,
                    call.offset,
                    shape,
                    (row0, rows),
                    logits.base,
                    (out.base, out_pitch),
                    &tau,
                ),
                slices,
                slice_blocks: strategy.blocks_per_group(shape.cols) as u32,
                counter_used: u32::from(call.counter.is_some()),
            };
            let params = bytemuck::bytes_of(&params);
            let mut grid = strategy.grid(rows);
            let partials;
            let mut bindings = vec![
                (1, logits.binding()),
                (2, out.binding()),
                (3, tau.binding(self)),
                (5, counter_binding.clone()),
            ];
            if let Some(partial) = &partial {
                partials = self.scratch(rows * u64::from(slices) * 16)?;
                bindings.push((4, partials.as_entire_binding()));
                self.dispatch_grid(encoder, partial, params, &bindings, grid)?;
                if call.mode == Mode::Index {
                    grid[0] = 1;
                }
            }
            self.dispatch_grid(encoder, &writer, params, &bindings, grid)?;
        }
        Ok(())
    }
}

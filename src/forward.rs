//! The fused forward kernels: noise, temperature softmax and the chosen output in one pass.

use bytemuck::{Pod, Zeroable};

use crate::error::{Error, Result, invalid};
use crate::kernels::{GpuSlice, Kernels};
use crate::noise::split64;
use crate::types::{Mode, Shape, StorageType, check_tau};

/// How a row is spread over invocations.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum Strategy {
    /// One invocation walks a whole row: no barriers. Short rows, and CPU drivers.
    RowPerThread,
    /// One workgroup of `size` invocations (a power of two, 1 to 1024) shares a row.
    RowPerWorkgroup { size: u32 },
}

impl Strategy {
    /// Every strategy the tests run against the reference.
    pub const ALL: [Strategy; 3] = [
        Strategy::RowPerThread,
        Strategy::RowPerWorkgroup { size: 64 },
        Strategy::RowPerWorkgroup { size: 256 },
    ];

    /// The default choice for rows of `cols` elements. On CPU drivers barriers cost far more
    /// than a long serial loop (WGPU-NOTES.md), so a thread keeps its row much longer there.
    pub fn choose(cols: u32, kernels: &Kernels) -> Strategy {
        if kernels.is_cpu {
            if cols <= 16_384 {
                Strategy::RowPerThread
            } else {
                Strategy::RowPerWorkgroup { size: 64 }
            }
        } else if cols <= 128 {
            // Measured on an H100 (BENCHMARKS.md): at K = 64 a thread per row ran 6x faster
            // than a workgroup per row; at K = 1024 a 256-wide workgroup was best, and from
            // K = 32768 up a 1024-wide one.
            Strategy::RowPerThread
        } else if cols <= 8192 {
            Strategy::RowPerWorkgroup { size: 256 }
        } else {
            Strategy::RowPerWorkgroup { size: 1024 }
        }
    }

    fn shader(self) -> &'static str {
        match self {
            Strategy::RowPerThread => "forward_row_per_thread",
            Strategy::RowPerWorkgroup { .. } => "forward_row_per_workgroup",
        }
    }

    fn workgroup_size(self) -> u32 {
        match self {
            Strategy::RowPerThread => 64,
            Strategy::RowPerWorkgroup { size } => size,
        }
    }

    /// Rows one dispatch can cover.
    fn rows_per_dispatch(self, max_groups: u64) -> u64 {
        match self {
            Strategy::RowPerThread => max_groups * u64::from(self.workgroup_size()),
            Strategy::RowPerWorkgroup { .. } => max_groups,
        }
    }

    /// Loop iterations one invocation runs for a row of `cols` elements.
    fn loop_iterations(self, cols: u32) -> u64 {
        let blocks = u64::from(cols).div_ceil(4) + 1;
        let size = u64::from(self.workgroup_size());
        match self {
            Strategy::RowPerThread => 2 * blocks,
            Strategy::RowPerWorkgroup { .. } => 2 * blocks.div_ceil(size) + 2 * 10,
        }
    }
}

/// The temperature of a call.
#[derive(Clone, Copy, Debug)]
pub enum Tau<'a> {
    /// One value for every row.
    Scalar(f32),
    /// One f32 per row, in a buffer. A row whose value is not finite and positive gets no
    /// sample (NaN outputs, index `u32::MAX`), as the GPU cannot return an error.
    PerRow(GpuSlice<'a>),
}

/// One forward call: `shape.rows` rows of logits in `logits`, the samples into `out`.
/// `out` holds `storage` elements, except in index mode: one `u32` per row, at `out_pitch` 1.
#[derive(Clone, Copy, Debug)]
pub struct ForwardCall<'a> {
    pub mode: Mode,
    pub storage: StorageType,
    pub shape: Shape,
    pub logits: GpuSlice<'a>,
    pub out: GpuSlice<'a>,
    pub tau: Tau<'a>,
    pub seed: u64,
    /// Flat noise index of row 0, column 0 (SPEC section 2).
    pub offset: u64,
    /// `None`: [`Strategy::choose`].
    pub strategy: Option<Strategy>,
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct ForwardParams {
    seed: [u32; 2],
    offset: [u32; 2],
    rows: u32,
    cols: u32,
    in_pitch: u32,
    out_pitch: u32,
    in_base: u32,
    out_base: u32,
    tau_base: u32,
    tau_per_row: u32,
    tau: f32,
    _pad: [u32; 3],
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
        let strategy = call
            .strategy
            .unwrap_or_else(|| Strategy::choose(shape.cols, self));
        if let Strategy::RowPerWorkgroup { size } = strategy
            && (!size.is_power_of_two()
                || size > 1024
                || size > self.limits.max_compute_invocations_per_workgroup)
        {
            return Err(invalid(format!(
                "workgroup size {size}: a power of two up to {} is needed",
                self.limits.max_compute_invocations_per_workgroup.min(1024)
            )));
        }
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
        let rows_per_dispatch = self.rows_fitting(
            shape,
            strategy,
            (shape.cols, shape.in_pitch, in_size),
            (out_cols, out_pitch, out_size),
        )?;
        if let Some(budget) = self.loop_budget
            && strategy.loop_iterations(shape.cols) > budget
        {
            return Err(Error::OverLimits(format!(
                "{strategy:?} runs {} loop iterations per invocation for K = {}, over this driver's budget of {budget}; choose a wider strategy",
                strategy.loop_iterations(shape.cols),
                shape.cols
            )));
        }
        self.check_slice("logits", call.logits, shape.span(shape.in_pitch), in_size)?;
        self.check_slice("output", call.out, out_span(shape), out_size)?;
        match call.tau {
            Tau::Scalar(tau) => check_tau(tau)?,
            Tau::PerRow(taus) => self.check_slice("tau", taus, u64::from(shape.rows), 4)?,
        }

        let pipeline = self.pipeline(
            &format!("{}_{}", strategy.shader(), call.storage.suffix()),
            &[
                ("MODE", call.mode.shader_value()),
                ("WORKGROUP_SIZE", f64::from(strategy.workgroup_size())),
            ],
        )?;
        let mut row0 = 0u64;
        while row0 < u64::from(shape.rows) {
            let rows = rows_per_dispatch.min(u64::from(shape.rows) - row0);
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
            let (taus, tau_base, tau, tau_per_row) = match call.tau {
                Tau::Scalar(tau) => (None, 0, tau, 0),
                Tau::PerRow(slice) => {
                    let w = self.window(slice, row0, rows, 4)?;
                    (Some(w), 0, 0.0, 1)
                }
            };
            let params = ForwardParams {
                seed: split64(call.seed),
                offset: split64(call.offset.wrapping_add(row0 * u64::from(shape.cols))),
                rows: rows as u32,
                cols: shape.cols,
                in_pitch: shape.in_pitch,
                out_pitch,
                in_base: logits.base,
                out_base: out.base,
                tau_base: taus.as_ref().map_or(tau_base, |w| w.base),
                tau_per_row,
                tau,
                _pad: [0; 3],
            };
            let tau_binding = match &taus {
                Some(w) => w.binding(),
                None => self.placeholder.as_entire_binding(),
            };
            let groups = match strategy {
                Strategy::RowPerThread => rows.div_ceil(u64::from(strategy.workgroup_size())),
                Strategy::RowPerWorkgroup { .. } => rows,
            };
            self.dispatch(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &[logits.binding(), out.binding(), tau_binding],
                groups as u32,
            )?;
            row0 += rows;
        }
        Ok(())
    }

    /// How many rows one dispatch may take: within the workgroup count and so that its logits
    /// and outputs each fit one storage binding (with room for the alignment of its start).
    /// `input` and `output` are (elements per row, pitch, element size).
    fn rows_fitting(
        &self,
        shape: Shape,
        strategy: Strategy,
        input: (u32, u32, u64),
        output: (u32, u32, u64),
    ) -> Result<u64> {
        let room = self
            .max_binding()
            .saturating_sub(u64::from(self.limits.min_storage_buffer_offset_alignment) + 4);
        let fitting = |(cols, pitch, size): (u32, u32, u64)| -> Result<u64> {
            let row_bytes = u64::from(cols) * size;
            if row_bytes > room {
                return Err(Error::OverLimits(format!(
                    "one row of K = {} takes {row_bytes} bytes; a storage binding on this device holds {}",
                    shape.cols,
                    self.max_binding()
                )));
            }
            Ok(1 + (room - row_bytes) / (u64::from(pitch) * size))
        };
        Ok(strategy
            .rows_per_dispatch(self.max_groups())
            .min(fitting(input)?)
            .min(fitting(output)?))
    }
}

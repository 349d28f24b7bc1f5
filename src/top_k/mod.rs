//! Gumbel-top-k: the k largest perturbed logits `l + g` of each row and their indices, in
//! decreasing order: k categories sampled without replacement (Kool, van Hoof and Welling,
//! ICML 2019). The noise is the index mode's, so top-1 is the index sample.

use bytemuck::{Pod, Zeroable};

use crate::error::{Result, invalid};
use crate::kernels::{GpuSlice, Kernels};
use crate::row::{
    NoisePosition, RowArg, RowCall, RowCost, RowHeader, Strategy, Tau, with_noise, with_strategy,
};
use crate::shaders::same_layout;
use crate::shaders::{
    Shader, key_list, row_bindings as binding, top_k_common as kernel,
    top_k_row_per_workgroup as select,
};
use crate::types::{Shape, StorageType};

/// The largest k a call takes (one workgroup sorts the winners).
pub const MAX_K: u32 = select::K_MAX;

/// The largest k of the thread-per-row kernel, and of the one-pass workgroup kernel: their
/// lists of the best k so far live in registers.
pub const MAX_K_PER_THREAD: u32 = key_list::LIST_MAX;

/// The narrowest workgroup of the radix select: one invocation per histogram bin and per
/// entry of the final sort.
const NARROWEST_SELECT: u32 = select::BINS;

/// Noise blocks an invocation of the radix select visits per loop iteration where a driver's
/// loop budget needs more than one (its BLOCKS_PER_ITERATION).
const UNROLLED: u32 = 4;

/// One top-k call: `shape.rows` rows of `shape.cols` logits (at `shape.in_pitch`, and
/// `shape.col_stride`: a category axis that is not the last), and per row `k` indices (u32) and
/// perturbed values (f32), `k` apart, in row order. The outputs' pitch is `k`, so
/// `shape.out_pitch` must be left at `shape.cols * shape.col_stride` (as [`Shape::new`] and
/// [`Shape::strided`] make it); another value
/// is refused rather than ignored.
///
/// A row with fewer than `k` valid logits (the others masked, -inf), but at least one, fills
/// the rest of its outputs with index `u32::MAX` and value -inf. A row without a sample (every
/// logit masked, or one NaN or +inf) has every index `u32::MAX` and every value NaN.
///
/// Entries are ranked by `(l - L) + g`, with `L` the row's largest valid logit: the order of
/// `l + g`, exact however large the logits are. The values written are `((l - L) + g) + L` in
/// f32.
#[derive(Clone, Copy, Debug)]
#[non_exhaustive]
pub struct TopKCall<'a> {
    /// Storage of the logits.
    pub storage: StorageType,
    /// Rows, K and the logits' pitch.
    pub shape: Shape,
    /// How many categories per row, 1 to [`MAX_K`] and at most K.
    pub k: u32,
    /// The logits.
    pub logits: GpuSlice<'a>,
    /// `rows * k` u32, written.
    pub indices: GpuSlice<'a>,
    /// `rows * k` f32, written: the perturbed logits `l + g`.
    pub values: GpuSlice<'a>,
    /// Where the noise comes from.
    pub noise: NoisePosition<'a>,
    /// `RowPerThread` (k up to [`MAX_K_PER_THREAD`]: a sorted list per invocation) or
    /// `RowPerWorkgroup { size }` with `size` a power of two up to 1024: for k up to
    /// [`MAX_K_PER_THREAD`] one pass that merges the invocations' lists (any such size; a
    /// radix select where a driver's loop budget needs it), for larger k a radix select (256
    /// or more). `None`: [`choose_top_k`].
    pub strategy: Option<Strategy>,
}

impl<'a> TopKCall<'a> {
    /// A call with seed 0 at offset 0, no counter and the default strategy; the `with_`
    /// methods set the rest.
    pub fn new(
        storage: StorageType,
        shape: Shape,
        k: u32,
        logits: GpuSlice<'a>,
        indices: GpuSlice<'a>,
        values: GpuSlice<'a>,
    ) -> Self {
        Self {
            storage,
            shape,
            k,
            logits,
            indices,
            values,
            noise: NoisePosition::new(0, 0),
            strategy: None,
        }
    }
}

with_noise!(TopKCall);
with_strategy!(TopKCall);

/// The default top-k strategy on the device of `kernels`: a thread per row for short rows and
/// small k, where one workgroup per row would leave most of it idle; a workgroup per row
/// otherwise, 256 wide, or wider where a driver's loop budget (llvmpipe) needs it for very long
/// rows.
pub fn choose_top_k(cols: u32, k: u32, kernels: &Kernels) -> Strategy {
    if cols <= 1024 && k <= MAX_K_PER_THREAD {
        return Strategy::RowPerThread;
    }
    let widest = Strategy::widest_workgroup(&kernels.limits).max(NARROWEST_SELECT);
    let narrowest = if kernels.is_cpu && k <= MAX_K_PER_THREAD {
        64
    } else {
        NARROWEST_SELECT
    };
    (narrowest.ilog2()..=widest.ilog2())
        .map(|bits| 1 << bits)
        .find(|&size| {
            workgroup_kernel(cols, k, size, kernels).is_some_and(|w| kernels.affords(w.cost))
        })
        .map_or(
            Strategy::RowPerWorkgroup {
                size: NARROWEST_SELECT,
            },
            |size| Strategy::RowPerWorkgroup { size },
        )
}

/// A top-k kernel, what it runs and what it costs.
struct TopKKernel {
    shader: Shader,
    /// Blocks per loop iteration of the radix select.
    unroll: u32,
    cost: RowCost,
}

/// The kernel of a thread per row (k up to [`MAX_K_PER_THREAD`]): the pass for the row's largest
/// logit, and every element may shift the whole list.
fn thread_kernel(cols: u32, k: u32) -> TopKKernel {
    let blocks = u64::from(cols).div_ceil(4) + 1;
    let iterations = 2 * blocks + u64::from(cols) * u64::from(k) + u64::from(k);
    TopKKernel {
        shader: Shader::TopKRowPerThread,
        unroll: 1,
        cost: RowCost {
            iterations,
            workgroup_bytes: Strategy::RowPerThread.workgroup_memory(),
        },
    }
}

/// The kernel that a workgroup of `size` runs for top-k over rows of `cols`: the one-pass
/// merge of lists for k up to [`MAX_K_PER_THREAD`] where the device affords it, the radix
/// select otherwise, four blocks a loop iteration where one would pass a driver's loop budget;
/// `None` for a workgroup neither kernel takes.
fn workgroup_kernel(cols: u32, k: u32, size: u32, kernels: &Kernels) -> Option<TopKKernel> {
    if !size.is_power_of_two() || size > 1024 {
        return None;
    }
    let workgroup_bytes = Strategy::RowPerWorkgroup { size }.workgroup_memory();
    let blocks = u64::from(cols).div_ceil(4) + 1;
    if k <= MAX_K_PER_THREAD {
        // The pass for the row's largest logit; every element may shift the whole list; then
        // k rounds of the merge tree.
        let iterations = blocks.div_ceil(u64::from(size)) * (2 + 4 * u64::from(k))
            + u64::from(k) * (u64::from(size.ilog2()) + 2);
        let lists = TopKKernel {
            shader: Shader::TopKMergeLists,
            unroll: 1,
            cost: RowCost {
                iterations,
                workgroup_bytes,
            },
        };
        if size < NARROWEST_SELECT || kernels.affords(lists.cost) {
            return Some(lists);
        }
    } else if size < NARROWEST_SELECT {
        return None;
    }
    let unroll = if kernels.within_loop_budget(select_iterations(cols, size, 1)) {
        1
    } else {
        UNROLLED
    };
    Some(TopKKernel {
        shader: Shader::TopKRowPerWorkgroup,
        unroll,
        cost: RowCost {
            iterations: select_iterations(cols, size, unroll),
            workgroup_bytes,
        },
    })
}

/// Loop iterations of one invocation of the radix select over a row of `cols`, visiting
/// `unroll` blocks a loop iteration: the pass for the row's largest logit (a block an
/// iteration), nine passes over the row, invocation 0's scans of the histograms, and the sort.
fn select_iterations(cols: u32, size: u32, unroll: u32) -> u64 {
    let blocks = u64::from(cols).div_ceil(4) + 1;
    let per_pass = blocks.div_ceil(u64::from(unroll) * u64::from(size));
    blocks.div_ceil(u64::from(size)) + 9 * (per_pass + 10) + 8 * 512 + 64
}

#[repr(C)]
#[derive(Clone, Copy, Pod, Zeroable)]
struct TopKParams {
    header: RowHeader,
    k: u32,
    values_base: u32,
    _pad: [u32; 2],
}
same_layout!(
    TopKParams = TopKParams {
        header,
        k,
        values_base,
        _pad
    }
);

impl Kernels {
    /// Records a top-k call into `encoder`, split by rows as the forward pass is.
    pub fn record_top_k(&self, encoder: &mut wgpu::CommandEncoder, call: &TopKCall) -> Result<()> {
        let shape = call.shape;
        shape.validate()?;
        // As Shape::new and Shape::strided make it.
        let unused_pitch = shape.cols.saturating_mul(shape.col_stride);
        if shape.out_pitch != unused_pitch {
            return Err(invalid(format!(
                "top-k: shape.out_pitch = {} is not used (the outputs are k apart); leave it at K * col_stride = {unused_pitch}",
                shape.out_pitch
            )));
        }
        let k = call.k;
        if k == 0 || k > MAX_K || k > shape.cols {
            return Err(invalid(format!(
                "k = {k}: 1 to {} categories of K = {} can be drawn",
                MAX_K.min(shape.cols),
                shape.cols
            )));
        }
        let size = call.storage.size();
        let strategy = call
            .strategy
            .unwrap_or_else(|| choose_top_k(shape.cols, k, self));
        let refuse = || {
            invalid(format!(
                "top-k runs as RowPerThread (k up to {MAX_K_PER_THREAD}) or RowPerWorkgroup {{ size: a power of two up to 1024, and 256 or more for k over {MAX_K_PER_THREAD} }}, not {strategy:?} with k = {k}"
            ))
        };
        let TopKKernel {
            shader,
            unroll,
            cost,
        } = match strategy {
            Strategy::RowPerThread if k <= MAX_K_PER_THREAD => thread_kernel(shape.cols, k),
            Strategy::RowPerWorkgroup { size } => {
                workgroup_kernel(shape.cols, k, size, self).ok_or_else(refuse)?
            }
            _ => return Err(refuse()),
        };
        let out = (k, k);
        let rows = RowCall {
            shape,
            strategy,
            cost,
            args: vec![
                RowArg::input("logits", call.logits, shape, size),
                RowArg::write("indices", call.indices, kernel::BINDING_INDICES, out, 4),
                RowArg::write("values", call.values, kernel::BINDING_VALUES, out, 4),
            ],
            // Top-k takes no temperature.
            tau: Tau::Scalar(1.0),
            noise: call.noise,
            scratch: None,
        };
        let plan = self.check_rows(&rows)?;
        let mut constants = vec![("WORKGROUP_SIZE", f64::from(strategy.workgroup_size()))];
        if shader == Shader::TopKRowPerWorkgroup {
            constants.push(("BLOCKS_PER_ITERATION", f64::from(unroll)));
        }
        let pipeline =
            self.noise_pipeline(shader, Some(call.storage), &constants, call.noise.range)?;
        self.each_part(&rows, &plan, |part| {
            let params = TopKParams {
                header: part.header,
                k,
                values_base: part.base(kernel::BINDING_VALUES),
                _pad: [0; 2],
            };
            let mut bindings = part.bindings(self);
            // The storage pieces' output, which top-k does not write.
            bindings.push((
                binding::BINDING_OUT,
                self.placeholder_out.as_entire_binding(),
            ));
            self.dispatch_grid(
                encoder,
                &pipeline,
                bytemuck::bytes_of(&params),
                &bindings,
                strategy.grid(part.rows),
            )
        })
    }
}

#[cfg(feature = "burn")]
pub(crate) mod burn;
mod host;
pub use host::TopK;

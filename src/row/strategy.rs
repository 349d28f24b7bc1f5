//! How a row is spread over invocations ([`Strategy`]), the launch geometry that follows from
//! it, and the default choice for a device, with the measurements behind it.

use super::cache;
use crate::kernels::Kernels;

/// Workgroup memory per invocation of the workgroup-per-row and SplitRow kernels: a 16-byte
/// row state (shaders/shared/workgroup_state.wgsl) and a 4-byte partial sum
/// (shaders/derivative/pieces/workgroup_sum.wgsl).
const WORKGROUP_BYTES_PER_INVOCATION: u32 = 20;

/// The most passes over a row that a row kernel makes: a derivative that recomputes the sample.
pub(super) const MOST_PASSES: u64 = 3;

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
    pub(super) fn as_run(self, smallest_subgroup: Option<u32>) -> Strategy {
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
    pub(super) fn rows_per_dispatch(self, max_groups: u64) -> u64 {
        max_groups * u64::from(self.rows_per_group())
    }

    /// The workgroup grid for `rows` rows.
    pub(crate) fn grid(self, rows: u64) -> [u32; 3] {
        match self {
            Strategy::SplitRow { slices, .. } => [slices, rows as u32, 1],
            _ => [rows.div_ceil(u64::from(self.rows_per_group())) as u32, 1, 1],
        }
    }

    /// Noise blocks one workgroup walks (the whole row but for SplitRow). Defined for every
    /// strategy, even one the row layer is about to refuse (0 slices).
    pub(crate) fn blocks_per_group(self, cols: u32) -> u64 {
        let blocks = u64::from(cols).div_ceil(4) + 1;
        match self {
            Strategy::SplitRow { slices, .. } => blocks.div_ceil(u64::from(slices.max(1))),
            _ => blocks,
        }
    }

    /// Loop iterations one invocation runs for a row of `cols` elements walked `passes` times.
    pub(crate) fn loop_iterations(self, cols: u32, passes: u64) -> u64 {
        let blocks = self.blocks_per_group(cols);
        let size = u64::from(self.workgroup_size().max(1));
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

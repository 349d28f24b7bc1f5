//! Timing kernels for benchmarks. GPU work is recorded first and timed from submit to the
//! end of a blocking poll, so that recording, upload and readback stay out of the figures;
//! many repetitions per submit amortise the submit itself.

use std::time::{Duration, Instant};

use crate::context::GpuContext;
use crate::error::Result;

/// Seconds per repetition of what `record` records, over `reps` repetitions in one submit,
/// after one warm-up submit.
pub fn time_per_run(
    ctx: &GpuContext,
    reps: u32,
    mut record: impl FnMut(&mut wgpu::CommandEncoder) -> Result<()>,
) -> Result<Duration> {
    let mut run = |n: u32| -> Result<Duration> {
        let mut encoder = ctx.device.create_command_encoder(&Default::default());
        for _ in 0..n {
            record(&mut encoder)?;
        }
        let commands = encoder.finish();
        let start = Instant::now();
        ctx.queue.submit([commands]);
        ctx.wait()?;
        Ok(start.elapsed())
    };
    run(1)?;
    Ok(run(reps)? / reps)
}

/// Bytes a kernel must move per second, in GB/s.
pub fn gb_per_s(bytes: u64, time: Duration) -> f64 {
    bytes as f64 / time.as_secs_f64() / 1e9
}

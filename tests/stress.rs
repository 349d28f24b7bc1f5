//! A long run of recorded calls must not grow memory. Alone in its test binary, so that no
//! other test's allocations move the process's resident memory while it measures.

mod common;

use common::calls::{CALLS, Calls};
use gumbel_wgpu::GpuContext;

fn resident_bytes() -> Option<u64> {
    let statm = std::fs::read_to_string("/proc/self/statm").ok()?;
    let pages: u64 = statm.split_whitespace().nth(1)?.parse().ok()?;
    Some(pages * 4096)
}

/// 10,000 recorded calls of mixed shapes and kernels, submitted in batches of 100: after a
/// warm-up, the count of live wgpu buffers and bind groups and the process's resident memory do
/// not grow.
#[test]
fn ten_thousand_recorded_calls_do_not_grow_memory() {
    let ctx = GpuContext::new().unwrap();
    let calls = Calls::new(&ctx);
    let run_batches = |batches: usize| {
        for b in 0..batches {
            let mut encoder = ctx.device.create_command_encoder(&Default::default());
            for i in 0..100 {
                calls.record(ctx.kernels(), &mut encoder, (b * 100 + i) % CALLS);
            }
            ctx.queue.submit([encoder.finish()]);
            ctx.wait().unwrap();
        }
    };
    run_batches(10);
    let (objects, memory) = (ctx.live_objects().unwrap(), resident_bytes());
    run_batches(90);
    let (objects_after, memory_after) = (ctx.live_objects().unwrap(), resident_bytes());
    eprintln!(
        "after 1,000 calls: {objects:?}, {memory:?} bytes resident; after 10,000: {objects_after:?}, {memory_after:?}"
    );
    assert!(
        objects_after.buffers <= objects.buffers
            && objects_after.bind_groups <= objects.bind_groups,
        "live objects grew: {objects:?} -> {objects_after:?}"
    );
    if let (Some(before), Some(after)) = (memory, memory_after) {
        // Allocator noise, not a leak: 9,000 calls leaking even one 256-byte parameter
        // buffer each would show as 2.3 MB plus wgpu's bookkeeping.
        assert!(
            after <= before + (4 << 20),
            "resident memory grew from {before} to {after} bytes"
        );
    }
}

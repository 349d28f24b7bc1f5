#!/usr/bin/env bash
# Runs on a GPU machine with no Rust toolchain and no network, from the repository root, after
# scripts/build-gpu-bundle.sh filled .bench/. Brings a Vulkan loader if the box has none, runs
# every test binary on the GPU (and the exhaustive check of the noise maps), the benchmark
# table, PyTorch's gumbel_softmax on the same shapes, and the cost breakdown (scripts/cost-breakdown.sh, which includes Philox from 16-bit
# halves). Writes logs to ${OUT:-.bench/out}. `--quick` runs the smaller lavapipe shapes
# instead: a dry run of this script on a machine without a GPU.
set -uo pipefail
quick=()
[ "${1:-}" = --quick ] && quick=(--quick)
cd "$(dirname "$0")/.."
out="${OUT:-.bench/out}"
mkdir -p "$out"
[ -f .bench/bundle.tgz ] && tar xzf .bench/bundle.tgz -C .bench
# The Vulkan loader and the GL vendor-neutral libraries NVIDIA's Vulkan driver links against.
if ! ldconfig -p | grep -q libvulkan.so.1 || ! ldconfig -p | grep -q libGLX.so.0; then
    for f in .bench/gl/*.deb; do dpkg -x "$f" /; done
    ldconfig
fi
if [ -z "${VK_DRIVER_FILES:-}" ]; then
    icd=$(find /usr/local/nvidia /usr/share/vulkan /etc/vulkan -name 'nvidia_icd*.json' 2>/dev/null | head -1)
    [ -n "$icd" ] && export VK_DRIVER_FILES="$icd"
fi
echo "VK_DRIVER_FILES=${VK_DRIVER_FILES:-unset}"

export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$out/gpu.txt" 2>&1 ||
    echo "no nvidia-smi" > "$out/gpu.txt"
.bench/quickstart 2>&1 | tee "$out/quickstart.log"
if grep -q NoAdapter "$out/quickstart.log"; then
    VK_LOADER_DEBUG=error,warn .bench/quickstart 2>&1 | tail -20
    ls -la /usr/local/nvidia/share/vulkan/icd.d/ /usr/local/nvidia/lib* 2>&1 | head -20
    exit 1
fi
status=0
for t in .bench/test-*; do
    echo "== $t"
    "$t" --test-threads=8 >> "$out/tests.log" 2>&1 || status=1
    grep -E "^test result|FAILED|panicked" "$out/tests.log" | tail -3
done
echo "tests exit status: $status" | tee -a "$out/tests.log"
# Every one of the 2^32 words through both noise maps on this device's log2 (ignored by
# default; minutes on a CPU driver, so not in the --quick dry run).
if [ ${#quick[@]} -eq 0 ]; then
    timeout 180 .bench/test-noise_exhaustive --ignored --nocapture > "$out/noise_exhaustive.log" 2>&1 || status=1
    grep -E "all 2\^32|test result" "$out/noise_exhaustive.log"
fi
.bench/bench_table "${quick[@]}" --markdown "$out/bench_table.md" > "$out/bench_table.log" 2>&1
if command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    python3 scripts/torch_gumbel.py > "$out/torch.md" 2>&1
fi
timeout 240 bash scripts/cost-breakdown.sh --run .bench/breakdown "${quick[@]}" > "$out/breakdown.md" 2>&1
cat "$out/gpu.txt" "$out/bench_table.md" "$out/torch.md" "$out/breakdown.md" 2>/dev/null
exit $status

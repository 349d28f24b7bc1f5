#!/usr/bin/env bash
# Runs on a GPU machine with no Rust toolchain and no network, from the repository root, after
# scripts/build-gpu-bundle.sh filled .bench/. Brings a Vulkan loader if the box has none, runs
# every test binary on the GPU, the benchmark table, and PyTorch's gumbel_softmax on the same
# shapes. Writes logs to ${OUT:-.bench/out}.
set -uo pipefail
cd "$(dirname "$0")/.."
out="${OUT:-.bench/out}"
mkdir -p "$out"
if ! ldconfig -p | grep -q libvulkan.so.1; then
    dpkg -x .bench/libvulkan1.deb / && ldconfig
fi
for icd in /usr/local/nvidia/share/vulkan/icd.d/nvidia_icd.json /usr/share/vulkan/icd.d/nvidia_icd.json /etc/vulkan/icd.d/nvidia_icd.json; do
    if [ -f "$icd" ] && [ -z "${VK_DRIVER_FILES:-}" ]; then export VK_DRIVER_FILES="$icd"; fi
done
export XDG_RUNTIME_DIR="${XDG_RUNTIME_DIR:-$(mktemp -d)}"
nvidia-smi --query-gpu=name,driver_version,clocks.sm,clocks.mem --format=csv > "$out/gpu.txt" 2>&1
.bench/quickstart 2>&1 | tee "$out/quickstart.log"
status=0
for t in .bench/test-*; do
    echo "== $t"
    "$t" --test-threads=8 2>&1 | tee -a "$out/tests.log" | grep -E "^test result|FAILED|panicked" || true
    [ "${PIPESTATUS[0]}" -eq 0 ] || status=1
done
echo "tests exit status: $status" | tee -a "$out/tests.log"
.bench/bench_table --markdown "$out/bench_table.md" > "$out/bench_table.log" 2>&1
if command -v python3 >/dev/null && python3 -c 'import torch; assert torch.cuda.is_available()' 2>/dev/null; then
    python3 scripts/torch_gumbel.py > "$out/torch.md" 2>&1
fi
cat "$out/gpu.txt" "$out/bench_table.md" "$out/torch.md" 2>/dev/null
exit $status

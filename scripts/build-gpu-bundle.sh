#!/usr/bin/env bash
# Builds, on an x86-64 machine with Rust, everything the GPU run needs into .bench/: the test
# binaries, the benchmark table, the cost-breakdown builds and the Vulkan loader package, the
# binaries stripped and packed into one gzip'd tar (the device tool carries 64 MiB at most). A
# GPU box without Rust or network then runs scripts/gpu-run.sh from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
mkdir -p .bench
rm -f .bench/* 2>/dev/null || true
cargo build --release --features bench --example bench_table --example quickstart
cp target/release/examples/bench_table target/release/examples/quickstart .bench/
cargo test --release --no-run --message-format=json 2>/dev/null |
    python3 -c 'import json,sys
for line in sys.stdin:
    m = json.loads(line)
    if m.get("reason") == "compiler-artifact" and m.get("executable") and m["target"]["kind"] == ["test"]:
        print(m["target"]["name"], m["executable"])' |
    while read -r name exe; do cp "$exe" ".bench/test-$name"; done
bash scripts/cost-breakdown.sh --build .bench/breakdown
strip .bench/* .bench/breakdown/* 2>/dev/null || true
(cd .bench && tar czf bundle.tgz bench_table quickstart test-* breakdown && rm -rf bench_table quickstart test-* breakdown)
if [ ! -d .bench/gl ]; then
    (mkdir -p .bench/gl && cd .bench/gl && apt-get download libvulkan1 libegl1 libglvnd0 libopengl0 libgl1 libglx0 libgles2 >/dev/null 2>&1) ||
        echo "could not download libvulkan1; the GPU box must have a Vulkan loader"
fi
ls -la .bench

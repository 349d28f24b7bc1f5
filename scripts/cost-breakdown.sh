#!/usr/bin/env bash
# What each part of the fused kernels costs. Builds bench_table with one part of the noise cut
# out at a time, then times the default strategy of the soft and index forward and the
# recomputing VJP under each build, beside the kernels as built and with Philox's products made
# from 16-bit halves. The cut builds give wrong samples: they exist only in this script's
# binaries, and the shaders are restored afterwards.
#
#   scripts/cost-breakdown.sh [--quick]      build and run here (lavapipe: --quick)
#   scripts/cost-breakdown.sh --build DIR    only build the binaries into DIR
#   scripts/cost-breakdown.sh --run DIR [--quick]
#                                            only run binaries built before (the GPU box)
# Prints one markdown table of GB/s, one column per build.
set -euo pipefail
cd "$(dirname "$0")/.."
mode=all dir=target/cost-breakdown
case "${1:-}" in
--build | --run) mode=${1#--} dir=$2; shift 2 ;;
esac
mkdir -p "$dir"
kernels="forward Soft,forward Index,VJP recompute"
# cut SLUG [FILE FROM TO ...]: bench_table with each FROM replaced by TO.
cut() {
    local slug=$1
    shift
    git checkout -- shaders
    while [ $# -gt 0 ]; do
        grep -qF -- "$2" "shaders/$1" || { echo "$slug: pattern not found in $1" >&2; exit 1; }
        FROM=$2 TO=$3 perl -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "shaders/$1"
        shift 3
    done
    cargo build --release --features bench --example bench_table 2>&1 | grep -E "^(error|warning)" || true
    cp target/release/examples/bench_table "$dir/bench_table-$slug"
}
if [ "$mode" != run ]; then
    trap 'git checkout -- shaders' EXIT
    one_round='var c = philox_round(counter, key);'
    no_logs='return gumbel_of_exp1(exp1_of_word_log2(x));'
    linear='return f32(x) * TWO_POW_M32;'
    cut as-built
    cut philox-1-round shared/philox.wgsl "$one_round" "$one_round return c;"
    cut no-logs shared/gumbel.wgsl "$no_logs" "$linear"
    cut no-noise shared/gumbel.wgsl "$no_logs" "$linear" \
        shared/philox.wgsl "$one_round" "var c = counter ^ vec4<u32>(key, key); return c;"
    # The yardstick itself with one u32 per invocation instead of a vec4, as the kernels load.
    cut scalar-copy measure/copy.wgsl "array<vec4<u32>>;" "array<u32>;" \
        measure/copy.wgsl "i < params.count;" "i < params.count * 4u;"
    git checkout -- shaders
fi
[ "$mode" = build ] && exit 0
# run SLUG BINARY [ARGS]: one table of the chosen kernels into $dir/SLUG.md.
run() {
    local slug=$1 binary=$2
    shift 2
    "$dir/bench_table-$binary" "$@" --default-only --only "$kernels" --markdown "$dir/$slug.md" >/dev/null
}
run as-built as-built "$@"
run halves as-built --halves "$@"
for slug in philox-1-round no-logs no-noise scalar-copy; do run $slug $slug "$@"; done
python3 - "$dir" <<'PY'
import sys
d = sys.argv[1]
builds = [("as-built", "as built"), ("halves", "Philox from 16-bit halves"),
          ("philox-1-round", "Philox: 1 round of 10"), ("no-logs", "no logarithms"),
          ("no-noise", "no noise")]
# The scalar-copy build's kernels are as built; its copy column is the yardstick's rate with
# u32 loads and stores.
rows, order, adapter = {}, [], ""
for slug in [b for b, _ in builds] + ["scalar-copy"]:
    for line in open(f"{d}/{slug}.md"):
        if line.startswith("adapter:"):
            adapter = line.strip()
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) < 6 or not cells[0][:1].isalpha() or cells[0] == "kernel":
            continue
        if not (cells[0].startswith("forward") or cells[0].startswith("VJP")):
            continue
        key = (cells[0], cells[1], cells[2])
        if key not in rows:
            rows[key] = {}
            order.append(key)
        rows[key][slug] = (cells[4], cells[5])
print(adapter)
print()
print("| kernel | storage | shape | copy GB/s | " + " | ".join(n for _, n in builds) +
      " | copy GB/s, u32 loads |")
print("|---|---|---|---|" + "---|" * (len(builds) + 1))
for key in order:
    got = rows[key]
    copy = got.get("as-built", ("", ""))[1]
    print(f"| {key[0]} | {key[1]} | {key[2]} | {copy} | " +
          " | ".join(got.get(s, ("-", ""))[0] for s, _ in builds) +
          f" | {got.get('scalar-copy', ('', '-'))[1]} |")
PY

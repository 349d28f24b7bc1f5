#!/usr/bin/env bash
# Plants known bugs in the kernels one at a time and checks that the tests catch each one:
# a tolerance that passes a broken kernel is no tolerance. Restores the shaders afterwards.
set -uo pipefail
cd "$(dirname "$0")/.."
file=shaders/shared/forward_common.wgsl
trap 'git checkout -- shaders' EXIT
plant() {
    local name=$1 from=$2 to=$3 tests=$4
    git checkout -- shaders
    grep -qF "$from" "$file" || { echo "$name: pattern not found"; return 1; }
    sed -i "s|$from|$to|" "$file"
    if cargo test --test forward $tests >/tmp/planted.log 2>&1; then
        echo "NOT CAUGHT: $name"
        return 1
    fi
    echo "caught: $name ($(grep -m1 -oE '(column|argmax) [^:]*: [^,]*' /tmp/planted.log | head -1))"
}
status=0
plant "noise of lane 4 dropped (lane 3's word reused)" "lane_at(r, t + 3u, words.w)" "lane_at(r, t + 3u, words.z)" "soft_f32" || status=1
plant "noise of lane 4 dropped, index mode" "lane_at(r, t + 3u, words.w)" "lane_at(r, t + 3u, words.z)" "index_f32" || status=1
plant "tau applied twice" "v = v / r.tau;" "v = v / r.tau / r.tau;" "soft_f32" || status=1
plant "log-soft without the row's log-sum" "return (l.v - f.m) - f.log_s;" "return (l.v - f.m);" "log_soft_f32" || status=1
plant "sum rescale dropped in merge" "exp(lo.m - hi.m)" "1.0" "soft_f32" || status=1
exit $status

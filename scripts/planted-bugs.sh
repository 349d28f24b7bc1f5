#!/usr/bin/env bash
# Plants known bugs in the kernels one at a time and checks that the tests catch each one:
# a tolerance that passes a broken kernel is no tolerance. A plant counts as caught only when
# it builds and then fails its test; one that does not build is reported as a broken plant.
# Restores the shaders afterwards. Files are named by their file name, wherever in shaders/ they
# are. PLANTS_CHECK_ONLY=1 checks that every plant's pattern is found, and builds and runs nothing.
set -uo pipefail
cd "$(dirname "$0")/.."
trap 'git checkout -- shaders' EXIT
# shader_file NAME: the one file of that name under shaders/.
shader_file() {
    find shaders -name "$1" | grep . || echo "shaders/(no file $1)"
}
# apply_plant NAME FILE FROM TO: swaps FROM for TO in FILE; fails when nothing was planted.
apply_plant() {
    local name=$1 file=$2 from=$3 to=$4
    git checkout -- shaders
    grep -qF -- "$from" "$file" 2>/dev/null || { echo "$name: pattern not found in $file"; return 1; }
    FROM=$from TO=$to perl -pi -e 's/\Q$ENV{FROM}\E/$ENV{TO}/g' "$file"
    git diff --quiet -- "$file" && { echo "$name: nothing planted"; return 1; }
    [ "${PLANTS_CHECK_ONLY:-0}" = 1 ] && { echo "found: $name"; return 2; }
    return 0
}
# plant NAME FILE FROM TO TEST-BINARY TEST-FILTER
plant() {
    local name=$1 file; file=$(shader_file "$2")
    local from=$3 to=$4 binary=$5 tests=$6 applied
    apply_plant "$name" "$file" "$from" "$to"; applied=$?
    [ $applied = 2 ] && return 0
    [ $applied = 0 ] || return 1
    if ! cargo test --no-run --test "$binary" >/tmp/planted.log 2>&1; then
        echo "BROKEN PLANT (does not build): $name"
        grep -m3 -E '^error|-->' /tmp/planted.log
        return 1
    fi
    if cargo test --test "$binary" "$tests" >/tmp/planted.log 2>&1; then
        echo "NOT CAUGHT: $name"
        return 1
    fi
    echo "caught: $name ($(grep -m1 -oE '(column|argmax|dtau) [^:]*: [^,]*' /tmp/planted.log | head -1))"
}
# browser_plant NAME FILE FROM TO TEST-FILTER: a plant that only Chrome's shader compiler sees
# (naga accepts it), caught by the browser suite (scripts/browser-tests.sh sets that up).
browser_plant() {
    local name=$1 file; file=$(shader_file "$2")
    local from=$3 to=$4 tests=$5 applied
    apply_plant "$name" "$file" "$from" "$to"; applied=$?
    [ $applied = 2 ] && return 0
    [ $applied = 0 ] || return 1
    if ! cargo test --no-run --test shaders >/tmp/planted.log 2>&1 ||
        ! cargo test --no-run --target wasm32-unknown-unknown --test browser >>/tmp/planted.log 2>&1; then
        echo "BROKEN PLANT (does not build): $name"
        grep -m3 -E '^error|-->' /tmp/planted.log
        return 1
    fi
    if CHROMEDRIVER=${CHROMEDRIVER:-/usr/bin/chromedriver} WASM_BINDGEN_TEST_TIMEOUT=1200 \
        cargo test --target wasm32-unknown-unknown --test browser -- "$tests" >/tmp/planted.log 2>&1; then
        echo "NOT CAUGHT: $name"
        return 1
    fi
    echo "caught: $name ($(grep -m1 -oE "(error|refused)[^;]*: [^;]{0,100}" /tmp/planted.log | head -1))"
}
status=0
plant "Philox from 16-bit halves: the middle carry dropped" mul_wide_halves.wgsl " + (mid >> 16u);" ";" noise words_are_bit_exact || status=1
plant "Philox with int64: high word shifted by 31" mul_wide_int64.wgsl "u32(p >> 32u)" "u32(p >> 31u)" noise words_are_bit_exact || status=1
plant "exp1_of_word: the upper tail's sign flipped" gumbel.wgsl "select(a.num, -w, tail)" "select(a.num, w, tail)" noise gumbel_tails || status=1
row=sampler_row.wgsl
deriv=derivative_common.wgsl
plant "noise of lane 4 dropped (lane 3's word reused)" $row "lane_at(r, t + 3u, x.w, g.w)" "lane_at(r, t + 3u, x.w, g.z)" forward soft_f32 || status=1
plant "noise of lane 4 dropped, index mode" $row "lane_at(r, t + 3u, x.w, g.w)" "lane_at(r, t + 3u, x.w, g.z)" forward index_f32 || status=1
plant "tau applied twice" $row "v = v / r.tau;" "v = v / r.tau / r.tau;" forward soft_f32 || status=1
plant "log-soft without the row's log-sum" $row "return (l.v - f.m) - f.log_s;" "return (l.v - f.m);" forward log_soft_f32 || status=1
plant "sum rescale dropped in merge" $row "exp(lo.m - hi.m)" "1.0" forward soft_f32 || status=1
plant "VJP: 1/tau dropped" $deriv "v = v / r.tau;" "v = v;" derivative soft_f32 || status=1
plant "VJP/JVP: wrong sign of the dot term" $deriv "v = e.y * (e.t - d);" "v = e.y * (e.t + d);" derivative soft_f32 || status=1
plant "log-soft VJP: wrong sign of the dot term" $deriv "v = e.t - e.y * d;" "v = e.t + e.y * d;" derivative log_soft_f32 || status=1
plant "dtau: wrong sign" $deriv "-w_dl, f.valid" "w_dl, f.valid" derivative soft_f32 || status=1
plant "JVP: wrong sign of the tau tangent" $deriv "(g - e.w * dtau)" "(g + e.w * dtau)" derivative soft_f32 || status=1
plant "recomputed sample: lane 4 takes lane 3's value" $deriv "elem_at(r, f, t + 3u, b.d, x.w, g.w, dtau)" "elem_at(r, f, t + 3u, b.c, x.w, g.w, dtau)" derivative soft_f32 || status=1
plant "workgroup lane cache: the invocations of a workgroup share slots" row_cache_workgroup.wgsl "slot * CACHE_INVOCATIONS + cache_lane" "slot * CACHE_INVOCATIONS" forward soft_f32 || status=1
plant "SplitRow: the first slice's partial state ignored" split_row.wgsl "for (var s = 0u;" "for (var s = 1u;" forward soft_f32 || status=1
plant "SplitRow derivative: each slice uses its own dot product" derivative_split_write.wgsl "let d = slices_total(row, 0u);" "let d = bitcast<f32>(partials[sums_index(row, wid.x)].x);" derivative soft_f32 || status=1
plant "top-k, thread per row: list kept in increasing order" key_list.wgsl "while at > 0u && key > (*list).keys[at - 1u]" "while at > 0u && key < (*list).keys[at - 1u]" top_k matches_reference_f32 || status=1
plant "top-k, radix select: threshold bin one too high" top_k_row_per_workgroup.wgsl "if before + count >= wanted {" "if before + count > wanted {" top_k matches_reference_f32 || status=1
plant "noise blocks not wrapped at 2^62 (rows past 2^64)" philox.wgsl "block.y & 0x3fffffffu" "block.y" wrap continue || status=1
plant "index mode ignores a bad per-row tau" $row "r.bad = tb < 0x00800000u || tb >= 0x7f800000u;" "r.bad = MODE != MODE_INDEX && (tb < 0x00800000u || tb >= 0x7f800000u);" forward_edges rows_without_a_sample_f32 || status=1
plant "JVP: a non-finite per-row tau tangent passes" $deriv "        r.bad = true;" "        r.bad = r.bad;" derivative_edges non_finite_tau_tangents || status=1
plant "top-k, radix select unrolled for long rows: the fourth block skipped" top_k_row_per_workgroup.wgsl "visit_block_in_row(r, p, j + 3u * WORKGROUP_SIZE);" "" largest_rows the_largest_row || status=1
plant "row per subgroup: the butterfly stops before its last step" subgroup_rows.wgsl "acc = merge(acc, other);" "acc = merge(acc, other); if d >= 2u { break; }" forward soft_f32 || status=1
plant "row per subgroup: a derivative's segment sum misses far lanes" subgroup_rows.wgsl "acc += subgroupShuffleXor(acc, d);" "acc += subgroupShuffleXor(acc, d) * f32(d < 4u);" derivative soft_f32 || status=1
plant "row per subgroup: every cached block read from slot 0" forward_row_per_subgroup.wgsl "cached_block(r, j, c)" "cached_block(r, j, 0u)" forward soft_f32 || status=1
plant "log2 map: the upper half by log2 of u, not the series" gumbel.wgsl "select(by_log2, by_series, upper)" "select(by_log2, by_series, false)" noise gumbel_tails || status=1
plant "f16 decode: the halves of a word swapped" storage_f16.wgsl "return unpack2x16float(w);" "return unpack2x16float(w).yx;" convert f16_decodes || status=1
plant "f16 encode: the high half gets the low value" storage_f16.wgsl "pack2x16float(vec2<f32>(lo, hi))" "pack2x16float(vec2<f32>(lo, lo))" convert f16_encodes || status=1
plant "16-bit input: an odd start read from the even word" storage_16bit.wgsl "let a = select(w.x, (w.x >> 16u) | (w.y << 16u), odd);" "let a = w.x;" forward soft_f16 || status=1
plant "top-k, merged lists: the winner's owner does not move on" top_k_merge_lists.wgsl "head += 1u;" "head += 0u;" top_k matches_reference_f32 || status=1
plant "top-k, merged lists: the smaller head wins" best_entry.wgsl "if ranks_before(k2, c2, best_key[lid], best_column[lid]) {" "if ranks_before(best_key[lid], best_column[lid], k2, c2) {" top_k matches_reference_f32 || status=1
tokens=token_sampler.wgsl
processed=token_listed.wgsl
split=token_split.wgsl
plant "token sampler, lists: top-p keeps one entry too many" $tokens "if ge64(before, wanted) && t > 0u {" "if ge64(before, wanted) && t > 1u {" tokens matches_reference_f32 || status=1
plant "token sampler: min-p ignored in the last pass" token_weights.wgsl "within(key, col, cut_k) && passes_min_p(w, s) && within(key, col, cut_p)" "within(key, col, cut_k) && within(key, col, cut_p)" tokens matches_reference_f32 || status=1
plant "token sampler, radix select: bins scanned from the wrong end" token_select.wgsl "bin = select(255u - i, i, by_column);" "bin = select(i, 255u - i, by_column);" tokens matches_reference_f32 || status=1
plant "token sampler: top-p's target is the whole weight" $tokens "wanted = scaled(total, s.p);" "wanted = total;" tokens matches_reference_f32 || status=1
plant "token sampler: fixed-point carry dropped" token_select.wgsl "            atomicAdd(&hist_hi[bin], 1u);" "" tokens matches_reference_f32 || status=1
plant "token sampler: equal keys at a cut all kept" token_select.wgsl "if ge64(times(c, q), bin_total(bin)) {" "if true {" tokens matches_reference_bf16 || status=1
plant "token sampler: the state index ignored" token_settings.wgsl "s = state_index[params.index_base + row];" "s = row;" tokens batches_are_invariant || status=1
plant "token sampler: soft cap without its scale" token_settings.wgsl "return cap * sign(y) * ((1.0 - e) / (1.0 + e));" "return sign(y) * ((1.0 - e) / (1.0 + e));" tokens matches_reference_f32 || status=1
plant "token sampler: per-row bias read from row 0" token_settings.wgsl "bias[params.bias_base + row * params.bias_pitch + col]" "bias[params.bias_base + col]" tokens matches_reference_f32 || status=1
plant "token sampler: raw log-probability without the log-sum" $tokens "(x - raw.x) - ln_accurate(raw.y)" "(x - raw.x)" tokens matches_reference_f32 || status=1
plant "token sampler, lists: noise of the next column" $tokens "gumbel_of_column(r, col)" "gumbel_of_column(r, col + 1u)" tokens matches_reference_f32 || status=1
plant "token sampler: a bad top_k taken as no top-k" token_settings.wgsl "let k_ok = k == NO_TOP_K || (k >= 1u && k <= params.header.cols);" "let k_ok = true;" tokens kernel_gives_rows_with_bad_settings || status=1
plant "token sampler, one pass: a lost min-p draw not drawn again" $tokens "if column == NONE && (*candidates).turned_away {" "if false {" tokens min_p_in_the_first_pass || status=1
plant "token sampler, lists' rounds: each group's last head left out" $tokens "i < (lid + 1u) * group; i++) {" "i + 1u < (lid + 1u) * group; i++) {" tokens matches_reference_f32 || status=1
plant "token sampler, lists' rounds: the last group left out" $tokens "for (var i = 1u; i < WORKGROUP_SIZE / group; i++) {" "for (var i = 1u; i + 1u < WORKGROUP_SIZE / group; i++) {" tokens matches_reference_f32 || status=1
plant "token sampler, one pass without min-p: every element replaces the best" token_first_pass.wgsl "if (*best).column == NONE || scores_above(e.l, g, (*best).l, (*best).g, s.tau) {" "if true {" tokens matches_reference_f32 || status=1
plant "token sampler, one pass without min-p: the best kept without its noise" token_first_pass.wgsl "*best = Scored(e.l, g, e.col);" "*best = Scored(e.l, 0.0, e.col);" tokens matches_reference_f32 || status=1
plant "token sampler, lists: a list that ran out goes unnoticed" $tokens "} else if (*list).turned_away {" "} else if false {" tokens lists_that_run_out || status=1
plant "token sampler, short lists: a list that ran out goes unnoticed" key_list.wgsl "list.turned_away = short.offered > SHORT_LIST;" "list.turned_away = false;" tokens lists_that_run_out || status=1
plant "token sampler, short lists: the entry pushed out of slot 3 lost" key_list.wgsl "let shifts_hi = vec4<bool>(moves_lo.w, moves_hi.xyz);" "let shifts_hi = vec4<bool>(false, moves_hi.xyz);" tokens a_list_that_holds || status=1
plant "token sampler, short lists: an equal key goes ahead" key_list.wgsl "let moves_lo = vec4<u32>(key) > lo;" "let moves_lo = vec4<u32>(key) >= lo;" tokens a_list_that_holds || status=1
plant "token sampler, top-p from the lists: the row's total weight halved" $tokens "total = add64(total, fixed(w));" "total = add64(total, fixed(w * 0.5));" tokens matches_reference_f32 || status=1
plant "wide noise: the high word of a draw is the low one again" gumbel.wgsl "gumbel_of_pair(a.x, a.y), gumbel_of_pair(a.z, a.w)" "gumbel_of_pair(a.x, a.x), gumbel_of_pair(a.z, a.w)" wide_noise wide_noise_is_within_bound || status=1
plant "wide noise: the low word's half ulp dropped from the complement" gumbel.wgsl "(f32(~lo) + 0.5)" "(f32(~lo) + 0.0)" wide_noise wide_map_at_extreme || status=1
plant "wide noise: the second Philox block is the first again" gumbel.wgsl "let b = noise_block(seed, add64_u32(first, 1u));" "let b = noise_block(seed, first);" wide_noise every_noise_call || status=1
plant "strided rows: the groups laid out as if categories were adjacent" $row "return (row / stride) * pitch + row % stride;" "return row * pitch;" strided strided_forward || status=1
plant "strided rows: input read one element off" $row "v[q] = decode1(logits[elem_word(i)], i);" "v[q] = decode1(logits[elem_word(i + 1u)], i + 1u);" strided strided_forward || status=1
plant "strided rows: the derivative's gradient read at the input's stride" $deriv "t - r.lead, params.header.out_stride);" "t - r.lead, 1u);" strided strided_derivatives || status=1
plant "noise count: added at the binding's first word, not the slice's" noise_count.wgsl "atomicAdd(&total[params.out_base], n);" "atomicAdd(&total[0], n);" slices the_noise_count_adds_at_its_slice || status=1
plant "noise count: the lead inside the first block ignored" noise_count.wgsl "let lead = start.offset.x & 3u;" "let lead = 0u;" noise noise_counts_match_the_cpu || status=1
plant "noise: the GPU counter not read" noise.wgsl "noise_start(params.seed, params.offset, params.counter_used)" "noise_start(params.seed, params.offset, 0u)" embedding every_noise_call_reads || status=1
plant "noise count: the GPU counter not read" noise_count.wgsl "noise_start(params.seed, params.offset, params.counter_used)" "noise_start(params.seed, params.offset, 0u)" embedding every_noise_call_reads || status=1
plant "token sampler: the call stream's counter not read" token_settings.wgsl "if params.state_source == SOURCE_COUNTER {" "if false {" embedding every_noise_call_reads || status=1
plant "token sampler: settings read from the binding's start" token_settings.wgsl "settings[params.settings_base + row]" "settings[row]" tokens settings_and_states_are_read || status=1
plant "token sampler: states read from the binding's start" token_settings.wgsl "states[params.states_base + s]" "states[s]" tokens settings_and_states_are_read || status=1
plant "token sampler: top-n-sigma ignored" $tokens "s.min_p = max(s.min_p, workgroupUniformLoad(&uniform_least));" "s.min_p = max(s.min_p, 0.0 * workgroupUniformLoad(&uniform_least));" tokens filtered_frequencies || status=1
plant "token sampler: top-n-sigma's mean taken without the row's largest l" $tokens "let mean = m + row_total(r, s, row, lid, m, false) / f32(count);" "let mean = row_total(r, s, row, lid, m, false) / f32(count);" tokens matches_reference_f32 || status=1
plant "token lists: the repetition penalty only for generated tokens" $processed "if e.count > 0u || e.in_prompt != 0u {" "if e.count > 0u {" token_processing match_reference_f32 || status=1
plant "token lists: the repetition penalty multiplies a positive l" $processed "select(v * s.repetition, v / s.repetition, v > 0.0)" "v * s.repetition" token_processing match_reference_f32 || status=1
plant "token lists: the frequency penalty once, not per count" $processed "v -= s.frequency * f32(e.count);" "v -= select(0.0, s.frequency, e.count > 0u);" token_processing match_reference_f32 || status=1
plant "token lists: the presence penalty for every listed token" $processed "v -= select(0.0, s.presence, e.count > 0u);" "v -= s.presence;" token_processing chi_square || status=1
plant "token lists: the sparse bias after the penalties" $processed "var v = l + e.bias;" "var v = l;" token_processing match_reference_f32 || status=1
plant "token lists: a banned entry kept" $processed "return Listed(l, true);" "return Listed(l, false);" token_processing chi_square || status=1
plant "token lists: the search a step short" $processed "step > 0u; step = step / 2u" "step > 1u; step = step / 2u" token_processing match_reference_f32 || status=1
plant "token lists: the row's window read from the list's start" $processed "let first = params.lists_base + s.list_start;" "let first = params.lists_base;" token_processing match_reference_f32 || status=1
plant "token lists: a list out of order taken" $processed "let after_previous = i == 0u || lists[first + i - 1u].token < e.token;" "let after_previous = true;" token_processing kernel_gives_rows_with_bad_lists || status=1
plant "token lists: a NaN penalty taken" token_settings.wgsl "&& (t.presence_penalty & 0x7f800000u) != 0x7f800000u;" ";" token_processing kernel_gives_rows_with_bad_lists || status=1
plant "token lists: a list past the call's longest taken" token_settings.wgsl "|| (t.list_len <= params.list_longest && " "|| (" token_processing kernel_gives_rows_with_bad_lists || status=1
plant "masks: a row's mask read at mask 0" $processed "masks[params.masks_base + mask * params.mask_words + col / 32u]" "masks[params.masks_base + col / 32u]" token_processing match_reference_f32 || status=1
plant "masks: bits read from the high end" $processed "return ((word >> (col % 32u)) & 1u) != 0u;" "return ((word >> (31u - col % 32u)) & 1u) != 0u;" token_processing chi_square || status=1
plant "masks: not applied" token_settings.wgsl "if s.mask != NO_MASK && !mask_allows(s.mask, col) {" "if false {" token_processing chi_square || status=1
plant "token sampler: top-p after a top-k past 256 from the lists" $tokens "if s.k <= KEPT_MAX || (s.p < 1.0 && s.k == call.header.cols) {" "if s.k <= KEPT_MAX || s.p < 1.0 {" tokens top_p_after_a_long_top_k || status=1
plant "split rows: each slice's blocks one slice late" $split "let start = min(slice * params.slice_blocks, r.blocks);" "let start = min((slice + 1u) * params.slice_blocks, r.blocks);" tokens split_rows_match_reference || status=1
plant "split rows: the slices' weights not summed" $split "z += bitcast<f32>(split[at + AT_DRAW_Z]);" "z = bitcast<f32>(split[at + AT_DRAW_Z]);" tokens split_rows_match_reference || status=1
plant "split rows: the raw log-sum-exp of the first slice alone" $split "*raw = merge_exp(*raw, part, 1.0);" "*raw = select(*raw, part, slice == 0u);" tokens split_rows_match_reference || status=1
plant "split rows: top-p rows drawn without top-p" $split "if s.k == call.header.cols && s.p >= 1.0 {" "if s.k == call.header.cols {" tokens split_rows_match_reference || status=1
plant "split rows: a merged list's winner not taken off it" $split "            head += 1u;" "" tokens split_rows_match_reference || status=1
plant "split rows: slices whose lists ran out not sent on" $split "| select(0u, FLAG_MISSED, atomicLoad(&missed) != 0u);" ";" tokens lists_that_run_out || status=1
plant "split rows: the row's token list not loaded in the slices" $split "        load_row_list(s, lid);" "" token_processing workgroup_widths_and_split_rows || status=1
plant "split rows: the rows left not sampled" $split "            sample_row(row, lid);" "" tokens split_rows_match_reference || status=1
verify=token_verify.wgsl
plant "verification: q left out of the acceptance" $verify "if u * q_d < p_d {" "if u < p_d {" speculative gpu_verification_matches_reference || status=1
plant "verification: every draft's uniform the first's" $verify "add64_u32(mul_wide(at.z + 1u, params.header.cols), at.y)" "mul_wide(at.z + 1u, params.header.cols)" speculative gpu_verification_matches_reference || status=1
plant "verification: wide noise's uniform from word n, not 2n" $verify "word = shl64_1(e);" "word = e;" speculative gpu_verification_matches_reference_in_16_bits || status=1
plant "verification: every position the noise of the first" $verify "add64(state.offset, mul_wide(at.y, params.header.cols))" "state.offset" speculative gpu_verification_matches_reference || status=1
plant "verification: the residual ln p, q not taken off" $verify "- draft_probs[q_row + col];" ";" speculative gpu_verification_matches_reference || status=1
plant "verification: a rejected draft without q may be drawn again" $verify "select(key_of(log_weight(l, k.m, s) + g), 0u, col == draft)" "key_of(log_weight(l, k.m, s) + g)" speculative gpu_verification_matches_reference || status=1
plant "verification: without q, a rejected draft that was the row's own draw given back" $verify "if params.has_draft_probs == 0u && k.token != d {" "if params.has_draft_probs == 0u {" speculative gpu_verification_matches_reference || status=1
plant "verification: min-p left out of a draft's probability" $verify "    s.min_p = k.min_p;" "    s.min_p = 0.0;" speculative gpu_verification_matches_reference || status=1
plant "verification: the first listed entry never the draft" $verify "if kept_col[t] == col {" "if kept_col[t] == col && t > 0u {" speculative gpu_verification_matches_reference || status=1
plant "verification: positions located one request late" $verify "if offset_of(mid) + mid <= p {" "if offset_of(mid) + mid < p {" speculative gpu_verification_matches_reference || status=1
plant "verification: a later dispatch's positions located from row 0" $verify "at_position = locate(params.row0 + p);" "at_position = locate(p);" speculative gpu_verification_spans_dispatches || status=1
plant "verification: accepted drafts keep their mark" $verify "tokens[at] = t & ~ACCEPTED;" "tokens[at] = t;" speculative gpu_verification_matches_reference || status=1
plant "verification: slots past the emitted tokens left" $verify "tokens[params.header.out_base + first + i] = NONE;" "" speculative recorded_verification || status=1
plant "verification: the one-pass path's kept weight only with log-probabilities" token_first_pass.wgsl "    if weight_wanted(params) {" "    if params.want_logprobs != 0u {" speculative recorded_verification || status=1
plant "top log-probabilities: each invocation's list one short" token_top.wgsl "insert_key(&by_x, key_of(e.x), e.col, n);" "insert_key(&by_x, key_of(e.x), e.col, n - 1u);" token_processing top_logprobs_of_a_row_whose_best_share || status=1
plant "top log-probabilities: ranked by l, not by x" token_top.wgsl "insert_key(&by_x, key_of(e.x), e.col, n);" "insert_key(&by_x, key_of(e.l), e.col, n);" token_processing top_logprobs_match_reference_f32 || status=1
plant "top log-probabilities: a merged winner not taken off its list" token_top.wgsl "            head += 1u;" "" token_processing top_logprobs_match_reference_f32 || status=1
plant "top log-probabilities: processed entries past what the filters keep" token_top.wgsl "if i < kept && top_l_col[i] != NONE {" "if top_l_col[i] != NONE {" token_processing top_logprobs_match_reference_f32 || status=1
plant "top log-probabilities: processed ones without the temperature" token_top.wgsl "(value_of(top_l_key[i]) - shift) / s.tau - log_z" "(value_of(top_l_key[i]) - shift) - log_z" token_processing top_logprobs_match_reference_f32 || status=1
plant "index and hard: candidates compared by the rounded l + g" $row "return dl > dg || (dl == dg && b.arg < a.arg);" "return b.m + b.s > a.m + a.s || (b.m + b.s == a.m + a.s && b.arg < a.arg);" exact_draws index_hard_and_top_1 || status=1
plant "top-k: ranked by l + g, not against the row's largest logit" top_k_common.wgsl "row_top = select(0.0, value_of(key), key != 0u);" "row_top = 0.0;" exact_draws index_hard_and_top_1 || status=1
plant "top-k, thread per row: a row without a valid logit padded with -inf" top_k_row_per_thread.wgsl "list.bad || list.n == 0u" "list.bad" exact_draws top_k_of_a_masked_row || status=1
plant "top-k, radix select: a row without a valid logit padded with -inf" top_k_row_per_workgroup.wgsl "atomicLoad(&invalid) != 0u || sel.w == 0u" "atomicLoad(&invalid) != 0u" exact_draws top_k_of_a_masked_row || status=1
plant "keys: -0.0 below +0.0" keys.wgsl "if b == 0x80000000u {" "if false {" exact_draws minus_zero || status=1
plant "token sampler, one pass: candidates compared by the rounded l / tau + g" token_first_pass.wgsl "return (l - la) / tau > ga - g;" "return l / tau + g > la / tau + ga;" exact_draws token_draws || status=1
plant "token sampler, lists and last pass: the draw at the scale of l / tau" token_weights.wgsl "return key_of((l - m) / s.tau + g);" "return key_of(l / s.tau + g);" exact_draws token_draws || status=1
plant "token sampler: soft cap by (1 - e) / (1 + e) near zero" token_settings.wgsl "if abs(y) < 0.5 {" "if false {" exact_draws a_soft_cap || status=1
plant "token sampler, one pass: the sampled log-probability at the scale of l / tau" $tokens "(e.l - scaled.x) / s.tau - log_z" "e.l / s.tau - (scaled.x / s.tau + log_z)" exact_draws log_probabilities_keep || status=1
plant "token sampler: sums of weights rescaled without the temperature" token_first_pass.wgsl "exp((acc.x - v) / tau) + 1.0" "exp(acc.x - v) + 1.0" exact_draws log_probabilities_keep || status=1
plant "token sampler: an invocation's run of blocks one short (CPU drivers' walk)" token_settings.wgsl "return Walk(start, min(start + run, range.y), 1u);" "return Walk(start, min(start + run, range.y) - 1u, 1u);" tokens matches_reference_f32 || status=1
plant "token sampler: the interleaved walk from the next block (GPUs' walk)" token_settings.wgsl "return Walk(range.x + lid, range.y, WORKGROUP_SIZE);" "return Walk(range.x + lid + 1u, range.y, WORKGROUP_SIZE);" tokens the_other_block_order || status=1
plant "token sampler: the first pass of a transformed row without its transform" token_sampler.wgsl "first_pass_with(r, s, row, lid, path, blocks, first, list, candidates, true);" "first_pass_with(r, s, row, lid, path, blocks, first, list, candidates, false);" tokens matches_reference_f32 || status=1
plant "token sampler: the last pass of a transformed row without its transform" token_sampler.wgsl "return draw_over_with(r, s, row, lid, m, blocks, cut_k, cut_p, true);" "return draw_over_with(r, s, row, lid, m, blocks, cut_k, cut_p, false);" token_processing lists_and_masks_match_reference_f32 || status=1
plant "token sampler: top-p's kept weight of a transformed row without its transform" token_sampler.wgsl "return kept_weight_with(r, s, row, lid, m, true);" "return kept_weight_with(r, s, row, lid, m, false);" tokens top_p_weighs_the_biased_logits || status=1
plant "token sampler: a radix select's histogram of a transformed row without its transform" token_select.wgsl "histogram_pass(r, s, row, lid, m, weighted, prior, at, true);" "histogram_pass(r, s, row, lid, m, weighted, prior, at, false);" token_processing lists_and_masks_match_reference_f32 || status=1
plant "token sampler: top-n-sigma's sums of a transformed row without its transform" token_sampler.wgsl "return workgroup_sum(lid, own_total(r, s, row, lid, shift, square, true));" "return workgroup_sum(lid, own_total(r, s, row, lid, shift, square, false));" token_processing lists_and_masks_match_reference_f32 || status=1
if [ "${PLANTS_IN_BROWSER:-1}" = 1 ]; then
    browser_plant "a const-expression NaN (naga takes it, the WGSL spec does not)" top_k_common.wgsl "value = nan_f32();" "value = bitcast<f32>(NAN_BITS);" every_variant_builds || status=1
    browser_plant "top-k rounds bounded by the private copy of k (not provably uniform)" top_k_merge_lists.wgsl "for (var t = 0u; t < k; t++) {" "for (var t = 0u; t < params.k; t++) {" every_variant_builds || status=1
    browser_plant "the token row's settings read per invocation, not through workgroupUniformLoad" $tokens "return workgroupUniformLoad(&uniform_settings);" "return own;" every_variant_builds || status=1
fi
exit $status

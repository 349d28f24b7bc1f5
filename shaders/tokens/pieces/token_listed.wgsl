// Token lists and masks for the token sampler's kernels that take them: two more storage
// buffers than WebGPU's default limits allow (calls without them run kernels that import
// token_unlisted instead).
//
// A row's token list is the window (list_start, list_len) of `lists`, in increasing token order:
// each entry's sparse bias is added to its token's l, then the penalties of the row's settings
// apply, as vLLM applies them: the repetition penalty (l / r where l > 0, l * r otherwise) to a
// token generated or in the prompt, then l -= frequency * count and l -= presence where count > 0.
// A row's mask (xgrammar's and llguidance's layout: ceil(K / 32) words, bit v % 32 of word v / 32
// set where token v is allowed) bans the tokens it does not allow.
// One listed token (TokenEntry in Rust).
struct TokenEntry {
    token: u32,
    count: u32,       // times generated: the frequency and presence penalties
    bias: f32,        // -inf bans the token
    in_prompt: u32,   // 1: in the prompt (the repetition penalty applies); 0 otherwise
}

const BINDING_LISTS: u32 = 11u;
const BINDING_MASKS: u32 = 12u;
@group(0) @binding(BINDING_LISTS) var<storage, read> lists: array<TokenEntry>;
@group(0) @binding(BINDING_MASKS) var<storage, read> masks: array<u32>;

// Bit (col % LISTED_BITS) is set for each token of the row's list, so that most columns learn in
// one read of workgroup memory that they are not listed; the others search the list.
const LISTED_WORDS: u32 = 512u;
const LISTED_BITS: u32 = 16384u;
var<workgroup> listed_bits: array<atomic<u32>, LISTED_WORDS>;

// Fills listed_bits from the row's list, and marks the row bad where the list is out of order,
// names a column past K, or holds a NaN or +inf bias or an in_prompt other than 0 and 1.
// Bits an earlier workgroup left set (the pipelines skip zeroing workgroup memory, and lavapipe
// reuses it) cost a search that finds no entry, never a wrong l.
fn load_row_list(s: Settings, lid: u32) {
    let first = params.lists_base + s.list_start;
    var ok = true;
    for (var i = lid; i < s.list_len; i += WORKGROUP_SIZE) {
        let e = lists[first + i];
        let bias_bits = bitcast<u32>(e.bias);
        let after_previous = i == 0u || lists[first + i - 1u].token < e.token;
        let bias_ok = (bias_bits & 0x7f800000u) != 0x7f800000u || bias_bits == NEG_INF_BITS;
        ok = ok && after_previous && e.token < params.header.cols && bias_ok && e.in_prompt <= 1u;
        let bit = e.token % LISTED_BITS;
        atomicOr(&listed_bits[bit / 32u], 1u << (bit % 32u));
    }
    if !ok {
        atomicStore(&row_bad, 1u);
    }
    workgroupBarrier();
}

fn mask_allows(mask: u32, col: u32) -> bool {
    let word = masks[params.masks_base + mask * params.mask_words + col / 32u];
    return ((word >> (col % 32u)) & 1u) != 0u;
}

// The last entry of the row's list (from `first`, `len` entries) at or before `col` (the first
// is): a binary search of bitlen(len) steps. A loop, not the steps written out: written out at
// each of the kernel's many calls of elem_at they took Chrome's compiler minutes. Its iterations
// count against llvmpipe's loop budget (the host's cost of the call counts them).
fn search_list(first: u32, len: u32, col: u32) -> u32 {
    var at = first;
    for (var step = 1u << firstLeadingBit(len); step > 0u; step = step / 2u) {
        let next = at + step;
        if next < first + len && lists[next].token <= col {
            at = next;
        }
    }
    return at;
}

// l of column `col` after its entry in the row's list, if it has one.
fn adjusted_by_list(s: Settings, col: u32, l: f32) -> Listed {
    let bit = col % LISTED_BITS;
    let first = params.lists_base + s.list_start;
    if (atomicLoad(&listed_bits[bit / 32u]) & (1u << (bit % 32u))) == 0u
        || lists[first].token > col {
        return Listed(l, false);
    }
    let at = search_list(first, s.list_len, col);
    let e = lists[at];
    if e.token != col {
        return Listed(l, false);
    }
    if bitcast<u32>(e.bias) == NEG_INF_BITS {
        return Listed(l, true);
    }
    var v = l + e.bias;
    if e.count > 0u || e.in_prompt != 0u {
        v = select(v * s.repetition, v / s.repetition, v > 0.0);
    }
    v -= s.frequency * f32(e.count);
    v -= select(0.0, s.presence, e.count > 0u);
    return Listed(v, false);
}

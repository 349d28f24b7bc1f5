// The bindings every row kernel has, whatever its family, and their numbers: the host reads
// these constants too. A family numbers its own bindings from BINDING_FAMILY on.

const BINDING_PARAMS: u32 = 0u;
const BINDING_INPUT: u32 = 1u;
const BINDING_OUT: u32 = 2u;
const BINDING_TAUS: u32 = 3u;
const BINDING_COUNTER: u32 = 4u;
const BINDING_FAMILY: u32 = 5u;

// The logits, or a derivative's saved sample.
@group(0) @binding(BINDING_INPUT) var<storage, read> logits: array<u32>;
// The output, through the storage type's words (top-k writes its own outputs instead).
@group(0) @binding(BINDING_OUT) var<storage, read_write> out: array<OutWord>;
// Per-row temperatures, when the call has them.
@group(0) @binding(BINDING_TAUS) var<storage, read> taus: array<f32>;
// A GPU-side noise counter (seed lo, hi, offset lo, hi), when the call has one.
@group(0) @binding(BINDING_COUNTER) var<storage, read> counter: array<u32>;

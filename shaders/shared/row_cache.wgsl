// A short row's lanes kept in the invocation's memory between the passes of a thread-per-row
// kernel, so that its noise (a Philox call and two logarithms per element, most of the cost)
// is made once.

const CACHED_BLOCKS: u32 = 17u;   // rows up to 64 elements, whatever their lead
var<private> cache: array<Block, CACHED_BLOCKS>;

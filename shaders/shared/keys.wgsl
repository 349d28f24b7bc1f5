// Order-preserving keys of f32 values, and the order of (key, column) entries that every
// selection here uses: the larger value first, then the lower column.

// Larger values get larger keys (IEEE order made unsigned); -0.0 and +0.0 are one value and
// get one key, so that equal values fall to the lower column.
fn key_of(v: f32) -> u32 {
    var b = bitcast<u32>(v);
    if b == 0x80000000u {
        b = 0u;
    }
    return select(b | 0x80000000u, ~b, (b >> 31u) == 1u);
}

fn value_of(key: u32) -> f32 {
    return bitcast<f32>(select(~key, key ^ 0x80000000u, (key >> 31u) == 1u));
}

// Entry (key a, column ca) comes before (b, cb): the larger value, then the lower column.
fn ranks_before(a: u32, ca: u32, b: u32, cb: u32) -> bool {
    return a > b || (a == b && ca < cb);
}

// The bits above byte `shift` of a key (none for the top byte): a radix select's decided bits.
fn high_mask(shift: u32) -> u32 {
    if shift == 24u {
        return 0u;
    }
    return ~((1u << (shift + 8u)) - 1u);
}

// What the derivative kernels share, for every strategy: the parameters and bindings, and the
// per-block work of the VJP (backward) and the JVP (forward mode), docs/contract.md, section 1.
//
// The sample y comes either from a saved forward output (the soft sample for soft and hard,
// log y for log-soft) or is recomputed from the logits with the forward's noise. Besides y,
// each element carries w = z + c for one constant c per row: log y when saved, z - m when
// recomputed. Only <., y>-weighted sums of w enter the results, and the softmax weights sum to
// one, so the constant cancels; that is what lets a saved sample stand in for z.
#import sampler_row
#import params

struct DerivativeParams {
    header: RowHeader,
    grad_base: u32,      // element index of row 0 in `grad`
    row_base: u32,       // index of row 0 in `per_row`
    per_row_used: u32,   // VJP: write dtau; JVP: read the tau tangent per row (else params.dtau)
    dtau: f32,           // JVP: the tau tangent of every row
    slices: u32,         // SplitRow: workgroups per row
    slice_blocks: u32,   // SplitRow: noise blocks per slice
}

alias Params = DerivativeParams;
// `out` holds dl, or the tangent of y.
const BINDING_GRAD: u32 = 5u;      // BINDING_FAMILY
const BINDING_PER_ROW: u32 = 6u;
const BINDING_PARTIALS: u32 = 7u;
@group(0) @binding(BINDING_GRAD) var<storage, read> grad: array<u32>;   // dy, or the tangent of l
@group(0) @binding(BINDING_PER_ROW) var<storage, read_write> per_row: array<f32>;   // dtau, or its tangent
// SplitRow only: each slice's row state, then (rows * slices further on) its dot product in x
// and its sum of w dl in y. One binding, so that a kernel stays within the 8 storage buffers
// that every WebGPU device allows.
@group(0) @binding(BINDING_PARTIALS) var<storage, read_write> partials: array<vec4<u32>>;

const SOURCE_RECOMPUTE: u32 = 0u;
const SOURCE_SAVED: u32 = 1u;
override SOURCE: u32 = SOURCE_RECOMPUTE;

const DIRECTION_VJP: u32 = 0u;
const DIRECTION_JVP: u32 = 1u;
override DIRECTION: u32 = DIRECTION_VJP;

fn needs_sum() -> bool {
    return true;
}

// The row statistics of the sample: recomputed from the forward's running state, or nothing
// to compute when the sample is saved.
fn sample_of(r: Row, st: RowState) -> RowResult {
    if SOURCE == SOURCE_RECOMPUTE {
        return row_result(r, st);
    }
    var f: RowResult;
    f.valid = !r.bad;
    return f;
}

// The tau tangent of a row (JVP).
fn tau_tangent(row: u32) -> f32 {
    if params.per_row_used != 0u {
        return per_row[params.row_base + row];
    }
    return params.dtau;
}

// The sampler's view of a derivative kernel's row. A JVP row whose per-row tau tangent is not
// finite (by its bits) has no result, as a non-finite scalar tangent is refused on the host.
fn derivative_row(row: u32) -> Row {
    var r = row_view(row);
    if DIRECTION == DIRECTION_JVP
        && (bitcast<u32>(tau_tangent(row)) & 0x7f800000u) == 0x7f800000u {
        r.bad = true;
    }
    return r;
}

// Whether the kernel needs w at all: the tau terms.
fn needs_w(dtau: f32) -> bool {
    if DIRECTION == DIRECTION_VJP {
        return params.per_row_used != 0u;
    }
    return dtau != 0.0;
}

struct Elem {
    live: bool,   // inside the row
    on: bool,     // takes part: not masked, and y not flushed to zero
    y: f32,
    w: f32,
    t: f32,       // VJP: dy; JVP: zdot = (dl - w dtau) / tau
}

// The four elements of `grad` from element i0 on.
fn grad4(i0: u32) -> vec4<f32> {
    let at = first_word4(i0);
    var w = vec4<u32>(grad[at], grad[at + 1u], grad[at + 2u], 0u);
    if WORDS4 == 4u {
        w.w = grad[at + 3u];
    }
    return decode4(w, i0);
}

// As grad4, for a row at `at` from position p on, `stride` elements apart (as input4_at).
fn grad4_at(at: u32, p: u32, stride: u32) -> vec4<f32> {
    if stride == 1u {
        return grad4(at + p);
    }
    var v: vec4<f32>;
    for (var q = 0u; q < 4u; q++) {
        let i = at + (p + q) * stride;
        v[q] = decode1(grad[elem_word(i)], i);
    }
    return v;
}

// Element at position t of the row's blocks; `l` is its lane when the sample is recomputed,
// x its saved sample when not, g its element of `grad`.
fn elem_at(r: Row, f: RowResult, t: u32, l: Lane, x: f32, g: f32, dtau: f32) -> Elem {
    var e: Elem;
    let k = t - r.lead;
    e.live = t >= r.lead && k < params.header.cols;
    if !e.live {
        return e;
    }
    if SOURCE == SOURCE_RECOMPUTE {
        e.on = l.kind == LANE_VALUE;
        e.w = l.v - f.m;
        e.y = exp(e.w) * f.inv_s;
    } else {
        if MODE == MODE_LOG_SOFT {
            e.on = bitcast<u32>(x) != NEG_INF_BITS;
            e.w = x;
            e.y = exp(x);
        } else {
            // Subnormal y may be flushed on the device, and its log is not safe to take.
            e.on = bitcast<u32>(x) >= 0x00800000u;
            e.y = x;
            if e.on && needs_w(dtau) {
                e.w = log(x);
            }
        }
    }
    if DIRECTION == DIRECTION_VJP {
        e.t = g;
    } else if needs_w(dtau) {
        e.t = (g - e.w * dtau) / r.tau;
    } else {
        e.t = g / r.tau;
    }
    return e;
}

struct Elems {
    a: Elem,
    b: Elem,
    c: Elem,
    d: Elem,
}

fn elems_at(r: Row, f: RowResult, j: u32, dtau: f32) -> Elems {
    var b: Block;
    if SOURCE == SOURCE_RECOMPUTE {
        b = block_at(r, j);
    }
    return elems_of(r, f, j, b, dtau);
}

// Block j's elements, with its lanes `b` (used when the sample is recomputed).
fn elems_of(r: Row, f: RowResult, j: u32, b: Block, dtau: f32) -> Elems {
    let t = 4u * j;
    var x = vec4<f32>();
    if SOURCE == SOURCE_SAVED {
        x = input4_at(r.in_at, t - r.lead, params.header.in_stride);
    }
    let g = grad4_at(params.grad_base + (r.out_at - params.header.out_base), t - r.lead, params.header.out_stride);
    return Elems(elem_at(r, f, t, b.a, x.x, g.x, dtau), elem_at(r, f, t + 1u, b.b, x.y, g.y, dtau),
                 elem_at(r, f, t + 2u, b.c, x.z, g.z, dtau),
                 elem_at(r, f, t + 3u, b.d, x.w, g.w, dtau));
}

// The row's dot product: <dy, y> (soft, hard), sum dy (log-soft), or <zdot, y> (JVP).
fn dot_term(e: Elem) -> f32 {
    if !e.on {
        return 0.0;
    }
    if DIRECTION == DIRECTION_VJP && MODE == MODE_LOG_SOFT {
        return e.t;
    }
    return e.y * e.t;
}

fn dot_block(r: Row, f: RowResult, j: u32, dtau: f32) -> f32 {
    return dot_elems(elems_at(r, f, j, dtau));
}

fn dot_elems(e: Elems) -> f32 {
    return dot_term(e.a) + dot_term(e.b) + dot_term(e.c) + dot_term(e.d);
}

// VJP: dl = y (dy - d) / tau (soft, hard), (dy - y d) / tau (log-soft).
// JVP: ydot = y (zdot - d) (soft, hard), zdot - d (log-soft).
fn out_value(r: Row, f: RowResult, e: Elem, d: f32) -> f32 {
    if !f.valid {
        return nan_f32();
    }
    if !e.on {
        return 0.0;
    }
    var v: f32;
    if MODE == MODE_LOG_SOFT {
        if DIRECTION == DIRECTION_VJP {
            v = e.t - e.y * d;
        } else {
            v = e.t - d;
        }
    } else {
        v = e.y * (e.t - d);
    }
    if DIRECTION == DIRECTION_VJP {
        v = v / r.tau;
    }
    return v;
}

// Writes block j's outputs; returns its part of sum w * dl (for the VJP's dtau).
fn write_out_block(r: Row, f: RowResult, d: f32, j: u32, dtau: f32) -> f32 {
    return write_out_elems(r, f, d, j, elems_at(r, f, j, dtau), dtau);
}

fn write_out_elems(r: Row, f: RowResult, d: f32, j: u32, e: Elems, dtau: f32) -> f32 {
    let v = vec4<f32>(out_value(r, f, e.a, d), out_value(r, f, e.b, d),
                      out_value(r, f, e.c, d), out_value(r, f, e.d, d));
    let live = vec4<bool>(e.a.live, e.b.live, e.c.live, e.d.live);
    store_run4_at(r.out_at, 4u * j - r.lead, params.header.out_stride, v, live);
    if !needs_w(dtau) {
        return 0.0;
    }
    return select(0.0, e.a.w * v.x, e.a.on) + select(0.0, e.b.w * v.y, e.b.on)
         + select(0.0, e.c.w * v.z, e.c.on) + select(0.0, e.d.w * v.w, e.d.on);
}

// VJP: the temperature's gradient of row `row`, dtau = -sum z dl (the constant in w cancels,
// as sum dl = 0).
fn finish_row(row: u32, f: RowResult, w_dl: f32) {
    if DIRECTION == DIRECTION_VJP && params.per_row_used != 0u {
        per_row[params.row_base + row] = select(nan_f32(), -w_dl, f.valid);
    }
}

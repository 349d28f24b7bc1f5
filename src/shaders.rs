//! The shader table that build.rs writes: the `Shader` enum (one name per kernel file), every
//! composed variant with the bindings, workgroup size and override constants its entry point
//! uses, a module per shader file with its literal constants, and `layouts`: the size and
//! member offsets of every struct the kernels declare, as naga lays them out.
//!
//! A parameter block that the host writes and a kernel reads is one layout: the Rust struct
//! names the WGSL struct it mirrors in [`same_layout!`], and the build fails where the two differ
//! in size or in any member's name, order or offset.

include!(concat!(env!("OUT_DIR"), "/shaders.rs"));

/// A WGSL struct's layout: its size in bytes, and its members in order with their offsets.
pub(crate) struct StructLayout {
    pub size: u32,
    pub members: &'static [(&'static str, u32)],
}

impl StructLayout {
    /// Whether a Rust struct of `size` bytes whose fields are `fields` (name, offset), in
    /// declaration order, lays out as this one: usable in constant evaluation.
    pub(crate) const fn matches(&self, size: usize, fields: &[(&str, usize)]) -> bool {
        if self.size as usize != size || self.members.len() != fields.len() {
            return false;
        }
        let mut i = 0;
        while i < fields.len() {
            let (name, offset) = self.members[i];
            if offset as usize != fields[i].1 || !same_str(name, fields[i].0) {
                return false;
            }
            i += 1;
        }
        true
    }
}

const fn same_str(a: &str, b: &str) -> bool {
    let (a, b) = (a.as_bytes(), b.as_bytes());
    if a.len() != b.len() {
        return false;
    }
    let mut i = 0;
    while i < a.len() {
        if a[i] != b[i] {
            return false;
        }
        i += 1;
    }
    true
}

/// `same_layout!(RustStruct = WgslStruct { field, ... })`: a compile-time check that the
/// `#[repr(C)]`, padding-free (`Pod`) Rust struct has the size of the WGSL struct of that name
/// and exactly its members, in order, at its offsets. Every Rust field must be listed (an
/// unlisted one changes the size); a member added to either side alone fails the build.
macro_rules! same_layout {
    ($rust:ty = $wgsl:ident { $($field:ident),+ $(,)? }) => {
        const _: () = assert!(
            $crate::shaders::layouts::$wgsl.matches(
                ::core::mem::size_of::<$rust>(),
                &[$((stringify!($field), ::core::mem::offset_of!($rust, $field))),+],
            ),
            concat!(
                "the layout of ",
                stringify!($rust),
                " differs from the WGSL struct ",
                stringify!($wgsl),
                " (see the composed shaders' structs in OUT_DIR/shaders.rs, module layouts)"
            )
        );
    };
}
pub(crate) use same_layout;

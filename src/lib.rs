mod shaders {
    include!(concat!(env!("OUT_DIR"), "/shaders.rs"));
}
pub fn names() -> Vec<&'static str> { shaders::SHADERS.iter().map(|s| s.0).collect() }

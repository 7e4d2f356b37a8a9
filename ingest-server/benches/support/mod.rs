//! Code shared by the benchmark binaries (each includes it with `mod support;`).

pub(crate) mod load;
#[allow(dead_code)]
pub(crate) mod sourcemap;

//! Where lines come from: standard input (`stdin.rs`) or a followed file (`tail.rs`, with
//! its offset in a state file, `state_file.rs`). `lines.rs` splits bytes into lines. Or
//! records, not lines: worker processes over a socket (`listen.rs`, the local collector).

mod lines;
pub(crate) mod listen;
pub(crate) mod state_file;
pub(crate) mod stdin;
pub(crate) mod tail;

pub(crate) use lines::{Line, Splitter};

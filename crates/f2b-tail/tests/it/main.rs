//! Integration tests of f2b-tail with real files in temporary directories.
//!
//! `util` holds the log writer and collectors; `file_tail` covers one path
//! (start modes, checkpoints, partial/huge/binary lines, encodings),
//! `rotation` each rotation kind with exact line sequences, `tailer` the
//! registry (globs, sharing, both backends, latency smoke test) and `prop`
//! the model-based property test of interleaved writes, rotations and reads.

mod file_tail;
mod oracle;
mod prop;
mod rotation;
mod tailer;
mod util;

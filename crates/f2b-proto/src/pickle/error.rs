use thiserror::Error;

/// Why a pickle was refused. Every variant carries where it happened
/// (`offset`, a byte offset into the pickle) or which limit was hit.
#[derive(Debug, Clone, PartialEq, Eq, Error)]
#[non_exhaustive]
pub enum PickleError {
    /// An opcode that imports, calls or builds Python objects (`GLOBAL`,
    /// `STACK_GLOBAL`, `REDUCE`, `BUILD`, `INST`, `OBJ`, `NEWOBJ`,
    /// `NEWOBJ_EX`, `EXT1/2/4`, `PERSID`, `BINPERSID`) or needs out-of-band
    /// buffers (`NEXT_BUFFER`, `READONLY_BUFFER`).
    #[error("forbidden pickle opcode {name} (0x{opcode:02x}) at offset {offset}: it would import, call or build Python objects")]
    Forbidden {
        /// The opcode byte.
        opcode: u8,
        /// Its pickletools name.
        name: &'static str,
        /// Byte offset of the opcode.
        offset: usize,
    },
    /// A byte that is no pickle opcode at all.
    #[error("unknown pickle opcode 0x{opcode:02x} at offset {offset}")]
    UnknownOpcode {
        /// The byte.
        opcode: u8,
        /// Its offset.
        offset: usize,
    },
    /// `PROTO` announced a protocol newer than 5.
    #[error("unsupported pickle protocol {version} at offset {offset}")]
    UnsupportedProtocol {
        /// The announced protocol.
        version: u8,
        /// Its offset.
        offset: usize,
    },
    /// The input ended inside an opcode or before `STOP`.
    #[error("pickle truncated at offset {offset}: {needed} more byte(s) needed")]
    Truncated {
        /// Where more input was needed.
        offset: usize,
        /// How many bytes were missing (at least).
        needed: usize,
    },
    /// The whole pickle is larger than [`Limits::max_input`](super::Limits).
    #[error("pickle of {size} bytes exceeds the limit of {limit} bytes")]
    TooLarge {
        /// Input size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// Containers nest deeper than [`Limits::max_depth`](super::Limits).
    #[error("pickle nests deeper than {limit} levels")]
    TooDeep {
        /// The limit.
        limit: usize,
    },
    /// A container has more elements than [`Limits::max_container_len`](super::Limits).
    #[error("pickle container at offset {offset} has more than {limit} elements")]
    ContainerTooLarge {
        /// The limit.
        limit: usize,
        /// Offset of the opcode that grew it.
        offset: usize,
    },
    /// More distinct memo slots than [`Limits::max_memo`](super::Limits).
    #[error("pickle memo at offset {offset} exceeds {limit} entries")]
    MemoTooLarge {
        /// The limit.
        limit: usize,
        /// Offset of the memo opcode.
        offset: usize,
    },
    /// A memo `GET` of a slot that was never `PUT`.
    #[error("pickle memo slot {index} read at offset {offset} was never stored")]
    MemoMissing {
        /// The slot.
        index: u64,
        /// Offset of the `GET`.
        offset: usize,
    },
    /// Shared references would expand into more than the allowed number of
    /// nodes or bytes ([`Limits::max_nodes`](super::Limits),
    /// [`Limits::max_output_bytes`](super::Limits)).
    #[error("pickle expands beyond {limit} {what}")]
    Expansion {
        /// `"nodes"` or `"bytes"`.
        what: &'static str,
        /// The limit.
        limit: usize,
    },
    /// A container that (indirectly) contains itself.
    #[error("pickle contains a self-referencing container")]
    Cycle,
    /// An integer outside the signed 64-bit range.
    #[error("integer at offset {offset} does not fit in 64 bits")]
    IntegerOverflow {
        /// Offset of the opcode.
        offset: usize,
    },
    /// A dict key or set element Python could not hash (list, dict, set).
    #[error("unhashable {kind} used as a dict key or set element at offset {offset}")]
    Unhashable {
        /// Python type name.
        kind: &'static str,
        /// Offset of the opcode.
        offset: usize,
    },
    /// Structurally wrong input: stack underflow, wrong operand type, bad
    /// text literal, invalid UTF-8, ...
    #[error("malformed pickle at offset {offset}: {reason}")]
    Malformed {
        /// Offset of the opcode.
        offset: usize,
        /// What was wrong.
        reason: String,
    },
}

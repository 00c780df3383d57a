//! f2b-tail

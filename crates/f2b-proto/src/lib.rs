//! f2b-proto

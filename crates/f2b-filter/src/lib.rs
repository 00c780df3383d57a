//! f2b-filter

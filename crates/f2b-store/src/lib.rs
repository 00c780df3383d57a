//! f2b-store

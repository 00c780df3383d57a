//! f2b-config

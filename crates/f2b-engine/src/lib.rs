//! f2b-engine

//! f2b-actions

//! f2b-server

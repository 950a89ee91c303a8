//! The integration test suite: one binary, one module per area.

mod common;

mod bootstrap;
mod check_cli;
mod incremental;
mod openssl_verify;
mod pki_structure;
mod tls_handshake;

//! The integration test suite: one binary, one module per area.

mod common;

mod audit;
mod book;
mod bootstrap;
mod check_cli;
mod conveniences;
mod diagnostics;
mod etcd_cluster;
mod golden;
mod incremental;
mod independent_checkers;
mod kubectl_client;
mod openssl_verify;
mod pki_structure;
mod regressions;
mod safety;
mod tls_handshake;

//! The integration test suite: one binary, one module per area.

mod common;

mod bootstrap;
mod check_cli;
mod etcd_cluster;
mod incremental;
mod kubectl_client;
mod openssl_verify;
mod pki_structure;
mod tls_handshake;

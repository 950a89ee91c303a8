//! The integration test suite: one binary, one module per area.

#![allow(clippy::too_many_lines, reason = "a test is a scenario read top to bottom; splitting it hides the story")]
#![allow(clippy::similar_names, reason = "pairs such as `cert`/`certs` and `before`/`after_doc` name what they hold")]
#![allow(clippy::cast_precision_loss, reason = "timings and counts shown in failure messages, far below 2^52")]
#![allow(clippy::format_push_string, reason = "failure reports are built once, when a test fails")]
#![allow(clippy::match_same_arms, reason = "tables of cases list each case, even where two expect the same")]
#![allow(clippy::items_after_statements, reason = "a helper type declared where the one test that uses it needs it")]
#![allow(
    clippy::case_sensitive_file_extension_comparisons,
    reason = "the tests compare names of files they wrote themselves"
)]
#![allow(clippy::unused_self, reason = "helpers of a fixture are its methods, whether or not they read it")]
#![allow(clippy::verbose_bit_mask, reason = "file modes read best as octal masks, such as `mode & 0o077 == 0`")]

mod common;

mod adopt;
mod audit;
mod book;
mod bootstrap;
mod cargo_install;
mod check_cli;
mod conveniences;
mod debian_package;
mod diagnostics;
mod etcd_cluster;
mod export_consumers;
mod external_ca;
mod git_driver;
mod github_action;
mod golden;
mod hierarchy;
mod incremental;
mod independent_checkers;
mod kubectl_client;
mod monitoring;
mod openssl_verify;
mod pki_structure;
mod pre_commit_hook;
mod probe;
mod regressions;
mod rotation;
mod rotation_consumers;
mod safety;
mod saved_plans;
mod secrets;
mod threads;
mod tls_handshake;

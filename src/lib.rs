//! certplan: a declarative cluster-PKI plan compiler for Kubernetes.
//!
//! A TOML plan flows one way through stages, each in its own module:
//! [`plan`] (parse, spans kept) → [`model`] (lower: resolve and derive) →
//! [`check`] (lint rules) → [`graph`] (artifact DAG and fingerprints) →
//! [`changes`] (decide against the output tree's [`state`]) → [`issue`]
//! (keys and certificates) → [`render`] (files) → [`output`] (atomic
//! writes). [`pipeline`] strings them together; [`cli`] is the command line.
//! [`diag`] and [`durations`] are how every command shows diagnostics and
//! durations to people.

#![allow(
    clippy::missing_errors_doc,
    reason = "every error is a type whose variants document when they happen; an `# Errors` section would repeat them"
)]
#![allow(
    clippy::implicit_hasher,
    reason = "the maps passed between stages are built inside certplan with the default hasher"
)]

pub mod adopt;
pub mod audit;
pub mod changes;
pub mod check;
pub mod cli;
pub mod diag;
pub mod durations;
pub mod export;
pub mod graph;
pub mod init;
pub mod inspect;
pub mod issue;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod progress;
pub mod render;
pub mod secrets;
pub mod state;

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

pub mod audit;
pub mod changes;
pub mod check;
pub mod cli;
pub mod diag;
pub mod durations;
pub mod graph;
pub mod init;
pub mod inspect;
pub mod issue;
pub mod model;
pub mod output;
pub mod pipeline;
pub mod plan;
pub mod render;
pub mod state;

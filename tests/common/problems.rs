//! An accumulator of failures: a check records everything that is wrong and
//! fails once, so one failing run shows everything that is wrong with a tree,
//! not just the first thing.

use std::fmt::Write as _;

/// Collects what is wrong, grouped, and fails once with all of it.
pub struct Problems {
    what: String,
    pub list: Vec<String>,
}

impl Problems {
    pub fn new(what: impl Into<String>) -> Self {
        Problems { what: what.into(), list: Vec::new() }
    }

    pub fn add(&mut self, problem: impl Into<String>) {
        self.list.push(problem.into());
    }

    /// Records `problem` unless `ok`.
    pub fn check(&mut self, ok: bool, problem: impl FnOnce() -> String) {
        if !ok {
            self.list.push(problem());
        }
    }

    pub fn finish(self) {
        if !self.list.is_empty() {
            let mut msg = format!("{}: {} problem(s):\n", self.what, self.list.len());
            for p in &self.list {
                // Writing to a `String` cannot fail.
                let _ = writeln!(msg, "  - {p}");
            }
            panic!("{msg}");
        }
    }
}

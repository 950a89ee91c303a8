//! Diagnostics: what every stage reports about a plan, and how it is shown.
//!
//! A [`Diagnostic`] carries a severity, the [`RuleId`] it breaks, a message,
//! the byte span in the plan it points at, any other places it is about (where
//! a duplicate was first declared) and an optional hint. Detecting a mistake
//! and rendering it are separate: stages only build diagnostics; [`render`]
//! turns them into rustc-style text (with the offending value underlined) or
//! JSON.

mod render;
mod rule_id;

pub use render::{render_json, render_text};
pub use rule_id::{RuleId, UnknownRule};

use std::ops::Range;

/// How bad a diagnostic is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Severity {
    /// Worth knowing; does not stop compilation unless warnings are denied.
    Warning,
    /// The plan cannot be compiled; nothing is written.
    Error,
}

/// One finding about a plan, pointing into its source where it can.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Diagnostic {
    /// How bad it is.
    pub severity: Severity,
    /// The rule it breaks, such as [`RuleId::SanCidr`] or [`RuleId::UnknownKey`].
    pub rule: RuleId,
    /// What is wrong, lower case, names in backticks.
    pub message: String,
    /// The byte range in the plan the diagnostic points at, if any.
    pub span: Option<Range<usize>>,
    /// The text under the underline.
    pub label: Option<String>,
    /// Other places the diagnostic is about, each with the text under its
    /// underline, such as where a duplicate was first declared.
    pub secondary: Vec<(Range<usize>, String)>,
    /// How to fix it.
    pub hint: Option<String>,
}

impl Diagnostic {
    /// An error for `rule` with `message`.
    pub fn error(rule: RuleId, message: impl Into<String>) -> Self {
        Self {
            severity: Severity::Error,
            rule,
            message: message.into(),
            span: None,
            label: None,
            secondary: Vec::new(),
            hint: None,
        }
    }

    /// A warning for `rule` with `message`.
    pub fn warning(rule: RuleId, message: impl Into<String>) -> Self {
        Self { severity: Severity::Warning, ..Self::error(rule, message) }
    }

    /// Points the diagnostic at `span` in the plan.
    #[must_use]
    pub fn at(mut self, span: Range<usize>) -> Self {
        self.span = Some(span);
        self
    }

    /// Points the diagnostic at `span` when there is one.
    #[must_use]
    pub fn at_opt(mut self, span: Option<Range<usize>>) -> Self {
        self.span = span;
        self
    }

    /// Sets the text shown under the underline.
    #[must_use]
    pub fn label(mut self, label: impl Into<String>) -> Self {
        self.label = Some(label.into());
        self
    }

    /// Adds another place the diagnostic is about, with the text under it:
    /// the first of two declarations, the other side of a conflict.
    #[must_use]
    pub fn also_at(mut self, span: Range<usize>, label: impl Into<String>) -> Self {
        self.secondary.push((span, label.into()));
        self
    }

    /// Adds a hint on how to fix it.
    #[must_use]
    pub fn hint(mut self, hint: impl Into<String>) -> Self {
        self.hint = Some(hint.into());
        self
    }

    /// Whether this diagnostic stops compilation.
    #[must_use]
    pub fn is_error(&self) -> bool {
        self.severity == Severity::Error
    }
}

/// The diagnostics of one compilation, in the order they were found.
#[derive(Debug, Default, Clone)]
pub struct Diagnostics(pub Vec<Diagnostic>);

impl Diagnostics {
    /// Adds a diagnostic.
    pub fn push(&mut self, diagnostic: Diagnostic) {
        self.0.push(diagnostic);
    }

    /// Whether any diagnostic is an error.
    pub fn has_errors(&self) -> bool {
        self.0.iter().any(Diagnostic::is_error)
    }

    /// Appends every diagnostic of `other`.
    pub fn extend(&mut self, other: Diagnostics) {
        self.0.extend(other.0);
    }

    /// Sorts by position in the plan, keeping unlocated ones last.
    pub fn sort(&mut self) {
        self.0.sort_by_key(|d| d.span.as_ref().map_or(usize::MAX, |s| s.start));
    }
}

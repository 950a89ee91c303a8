//! Renders diagnostics as rustc-style text (codespan-reporting) or as JSON.
//! The place a diagnostic points at is underlined with `^`, the other places
//! it is about with `-`; in JSON those are its `related` entries.

use codespan_reporting::diagnostic::{Diagnostic as CsDiagnostic, Label};
use codespan_reporting::files::SimpleFile;
use codespan_reporting::term::{self, termcolor::WriteColor};

use super::{Diagnostic, Severity};

/// Writes every diagnostic as text, with the plan snippet underlined.
pub fn render_text(
    writer: &mut dyn WriteColor,
    file_name: &str,
    source: &str,
    diagnostics: &[Diagnostic],
) -> std::io::Result<()> {
    let file = SimpleFile::new(file_name, source);
    let config = term::Config::default();
    for diagnostic in diagnostics {
        let severity = match diagnostic.severity {
            Severity::Error => codespan_reporting::diagnostic::Severity::Error,
            Severity::Warning => codespan_reporting::diagnostic::Severity::Warning,
        };
        let mut cs = CsDiagnostic::new(severity).with_code(diagnostic.rule.as_str()).with_message(&diagnostic.message);
        let mut labels = Vec::new();
        if let Some(span) = clamp(diagnostic.span.clone(), source.len()) {
            let label = Label::primary((), span);
            labels.push(match &diagnostic.label {
                Some(text) => label.with_message(text),
                None => label,
            });
        }
        for (span, text) in &diagnostic.secondary {
            if let Some(span) = clamp(Some(span.clone()), source.len()) {
                labels.push(Label::secondary((), span).with_message(text));
            }
        }
        cs = cs.with_labels(labels);
        if let Some(hint) = &diagnostic.hint {
            cs = cs.with_notes(vec![format!("hint: {hint}")]);
        }
        term::emit_to_write_style(writer, &config, &file, &cs).map_err(std::io::Error::other)?;
    }
    Ok(())
}

/// Diagnostics as a JSON array: severity, rule, message, file, line, column,
/// span, label, hint and `related`, the other places a diagnostic is about
/// (each with line, column, span and label; empty for most).
#[must_use]
pub fn render_json(file_name: &str, source: &str, diagnostics: &[Diagnostic]) -> serde_json::Value {
    let items = diagnostics
        .iter()
        .map(|d| {
            let span = clamp(d.span.clone(), source.len());
            let (line, column) =
                span.as_ref().map(|s| line_column(source, s.start)).map_or((None, None), |(l, c)| (Some(l), Some(c)));
            let related = d
                .secondary
                .iter()
                .filter_map(|(span, label)| {
                    let span = clamp(Some(span.clone()), source.len())?;
                    let (line, column) = line_column(source, span.start);
                    Some(serde_json::json!({
                        "line": line,
                        "column": column,
                        "span": [span.start, span.end],
                        "label": label,
                    }))
                })
                .collect::<Vec<_>>();
            serde_json::json!({
                "severity": d.severity,
                "rule": d.rule.as_str(),
                "message": d.message,
                "file": file_name,
                "line": line,
                "column": column,
                "span": span.map(|s| [s.start, s.end]),
                "label": d.label,
                "hint": d.hint,
                "related": related,
            })
        })
        .collect::<Vec<_>>();
    serde_json::Value::Array(items)
}

/// The 1-based line and column of a byte offset.
pub fn line_column(source: &str, offset: usize) -> (usize, usize) {
    let before = &source[..floor_char_boundary(source, offset)];
    let line = before.matches('\n').count() + 1;
    let column = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, column)
}

fn floor_char_boundary(source: &str, mut offset: usize) -> usize {
    offset = offset.min(source.len());
    while !source.is_char_boundary(offset) {
        offset -= 1;
    }
    offset
}

fn clamp(span: Option<std::ops::Range<usize>>, len: usize) -> Option<std::ops::Range<usize>> {
    span.map(|s| {
        let start = s.start.min(len);
        start..s.end.clamp(start, len)
    })
}

//! Rules that read the output tree as well as the plan (`check --out DIR`):
//! a rotation step that skips one of the tree's, and a CA in the last fifth
//! of its validity, which should be rotated before it expires.

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use crate::changes::{ChangeError, rotation};
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::durations::remaining;
use crate::model::{ArtifactId, Model, Spec};
use crate::state::State;

/// Runs the rules that need the tree's state, as of `now`.
#[must_use]
pub fn check_tree(model: &Model, state: &State, now: OffsetDateTime) -> Diagnostics {
    let mut diagnostics = Diagnostics::default();
    rotation_progress(model, state, &mut diagnostics);
    renewal_due(model, state, now, &mut diagnostics);
    diagnostics.0.retain(|d| d.is_error() || !model.allowed.contains(&d.rule));
    diagnostics
}

fn rotation_progress(model: &Model, state: &State, diagnostics: &mut Diagnostics) {
    let Err(error) = rotation::check_progress(model, state) else { return };
    let ChangeError::RotationSkipped { section, .. } = &error else { return };
    let span = match section.strip_prefix("cas.") {
        Some(ca) => model
            .rotations
            .get(ca)
            .map(|r| r.span.clone())
            .or_else(|| model.artifact(&ArtifactId::ca(ca)).and_then(|a| a.origin.clone())),
        None => model.key_rotation.as_ref().map(|r| r.span.clone()).or_else(|| {
            model.artifact(&ArtifactId::keypair(crate::model::CertSet::ServiceAccount)).and_then(|a| a.origin.clone())
        }),
    };
    let mut diagnostic = Diagnostic::error(RuleId::RotationSkipsStep, error.to_string());
    if let Some(span) = span {
        diagnostic = diagnostic.at(span).label("skips a step");
    }
    diagnostics.push(diagnostic);
}

/// A CA, as the tree holds it, with less than a fifth of its validity left
/// and no rotation under way.
fn renewal_due(model: &Model, state: &State, now: OffsetDateTime, diagnostics: &mut Diagnostics) {
    for artifact in &model.artifacts {
        let (Spec::Ca(_), Some(name)) = (&artifact.spec, artifact.id.ca_name()) else { continue };
        if artifact.id != ArtifactId::ca(name) || model.rotation(name).is_some() {
            continue;
        }
        let Some(facts) = state.artifacts.get(&artifact.id).and_then(|r| r.cert.as_ref()) else { continue };
        let (Ok(not_before), Ok(not_after)) =
            (OffsetDateTime::parse(&facts.not_before, &Rfc3339), OffsetDateTime::parse(&facts.not_after, &Rfc3339))
        else {
            continue;
        };
        let left = not_after - now;
        if left >= (not_after - not_before) / 5 {
            continue;
        }
        let date = not_after.date();
        let when = if left.is_negative() { "expired".to_string() } else { format!("expires in {}", remaining(left)) };
        let mut diagnostic = Diagnostic::warning(
            RuleId::CaRenewalDue,
            format!(
                "the CA `{}` in the output tree {when} ({date}), inside the last fifth of its validity: rotate it, and roll out the rotation's `retire` step to every host before {date}",
                artifact.id
            ),
        )
        .hint(format!("add `rotation = \"trust\"` to `[cas.{name}]`, then `issue`, then `retire` (see the book's \"Rotating a CA\")"));
        if let Some(span) = artifact.origin.clone() {
            diagnostic = diagnostic.at(span).label("renew by rotating");
        }
        diagnostics.push(diagnostic);
    }
}

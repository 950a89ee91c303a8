//! Staged CA rotation as deciding sees it. The plan names a step per CA
//! (`rotation = "trust" | "issue" | "retire"`); the state records the step
//! the tree is in. A tree may only stay in its step or take the next one,
//! so that any host is at most one step ahead of any other; this module
//! refuses the rest, and at `retire` turns the state's `ca/NAME/next` into
//! `ca/NAME` (and the old `ca/NAME` into `ca/NAME/old`, whose files are
//! removed), so that the new CA keeps its material under the plan's id.

use std::borrow::Cow;
use std::collections::BTreeSet;

use super::ChangeError;
use crate::model::{ArtifactId, Model};
use crate::plan::RotationStep;
use crate::state::State;

/// Whether a tree in step `from` may be taken to step `to` in one apply:
/// the same step, the next one, or — once the old CA is retired — a new
/// rotation's `trust`.
#[must_use]
pub fn follows(from: Option<RotationStep>, to: Option<RotationStep>) -> bool {
    from == to
        || RotationStep::next(from) == to
        || (from == Some(RotationStep::Retire) && to == Some(RotationStep::Trust))
}

/// Refuses a plan whose rotation skips a step of the tree's. A CA the tree
/// does not hold yet may start in any step: no host has anything to keep.
pub fn check_progress(model: &Model, state: &State) -> Result<(), ChangeError> {
    let names: BTreeSet<&str> = model
        .artifacts
        .iter()
        .filter_map(|a| a.id.ca_name())
        .filter(|name| state.artifacts.contains_key(&ArtifactId::ca(name)))
        .collect();
    for name in names {
        let from = state.rotations.get(name).copied();
        let to = model.rotation(name);
        if !follows(from, to) {
            // A retired rotation is over: what may follow is a new one.
            let next = match from {
                Some(RotationStep::Retire) => Some(RotationStep::Trust),
                from => RotationStep::next(from),
            };
            return Err(ChangeError::RotationSkipped {
                ca: name.to_string(),
                from: from.map_or_else(|| "no rotation".into(), |step| format!("step `{}`", step.as_str())),
                to: to.map_or_else(|| "no rotation".into(), |step| format!("`rotation = \"{}\"`", step.as_str())),
                next: match next {
                    Some(step) => format!("set `rotation = \"{}\"` in `[cas.{name}]`", step.as_str()),
                    None => format!("delete the `rotation` line of `[cas.{name}]`"),
                },
            });
        }
    }
    Ok(())
}

/// The CAs whose `retire` step this run takes: the tree is at `issue` and
/// still holds the incoming CA under `ca/NAME/next`.
fn retiring<'m>(model: &'m Model, state: &State) -> Vec<&'m str> {
    model
        .rotations
        .iter()
        .filter(|(name, rotation)| {
            rotation.step == RotationStep::Retire
                && state.rotations.get(name.as_str()) == Some(&RotationStep::Issue)
                && state.artifacts.contains_key(&ArtifactId::next_ca(name))
        })
        .map(|(name, _)| name.as_str())
        .collect()
}

/// The state as deciding must read it: checked for skipped steps, and with
/// the CAs that retire now renamed ([`prepare`]). Borrowed unless a CA retires.
pub fn prepared<'s>(model: &Model, state: &'s State) -> Result<Cow<'s, State>, ChangeError> {
    check_progress(model, state)?;
    if retiring(model, state).is_empty() {
        return Ok(Cow::Borrowed(state));
    }
    let mut state = state.clone();
    prepare(model, &mut state);
    Ok(Cow::Owned(state))
}

/// Renames, for every CA that retires in this run, the recorded old CA to
/// `ca/NAME/old` and the incoming one to `ca/NAME`, with every recorded spec
/// that names `ca/NAME/next` rewritten to name `ca/NAME`. Doing it again
/// changes nothing.
pub fn prepare(model: &Model, state: &mut State) {
    for name in retiring(model, state) {
        let (current, next, old) = (ArtifactId::ca(name), ArtifactId::next_ca(name), ArtifactId::old_ca(name));
        if let Some(outgoing) = state.artifacts.remove(&current) {
            state.artifacts.insert(old, outgoing);
        }
        if let Some(incoming) = state.artifacts.remove(&next) {
            state.artifacts.insert(current.clone(), incoming);
        }
        let (from, to) = (format!("\"{next}\""), format!("\"{current}\""));
        for recorded in state.artifacts.values_mut() {
            if recorded.spec.get().contains(&from)
                && let Ok(spec) = serde_json::value::RawValue::from_string(recorded.spec.get().replace(&from, &to))
            {
                recorded.spec = spec;
            }
        }
    }
}

/// Whether `id` is the outgoing CA of a rotation under way (`ca/NAME` in
/// `trust` or `issue`): it stays as the tree has it, whatever the plan now
/// says of `[cas.NAME]`, which describes the incoming one.
#[must_use]
pub fn is_outgoing(model: &Model, id: &ArtifactId) -> bool {
    id.ca_name().is_some_and(|name| {
        *id == ArtifactId::ca(name) && matches!(model.rotation(name), Some(RotationStep::Trust | RotationStep::Issue))
    })
}

/// A line per CA rotation of the plan or the tree: the step the tree is
/// in, the step the plan asks for, and what comes next (`verify --out`).
#[must_use]
pub fn status(model: &Model, state: &State) -> Vec<String> {
    let names: BTreeSet<&str> =
        model.rotations.keys().map(String::as_str).chain(state.rotations.keys().map(String::as_str)).collect();
    let step =
        |step: Option<RotationStep>| step.map_or_else(|| "no rotation".into(), |s| format!("step `{}`", s.as_str()));
    names
        .into_iter()
        .map(|name| {
            let (tree, plan) = (state.rotations.get(name).copied(), model.rotation(name));
            let what = if tree == plan {
                match RotationStep::next(tree) {
                    Some(next) if tree.is_some() => {
                        format!("complete in the tree; once every host has it, set `rotation = \"{}\"`", next.as_str())
                    }
                    _ => "complete; delete the `rotation` line when every host has it".to_string(),
                }
            } else {
                format!("the plan asks for {}: run `certplan apply`, then roll it out to every host", step(plan))
            };
            format!("rotation of `[cas.{name}]`: the tree is at {}, {what}", step(tree))
        })
        .collect()
}

/// Why an artifact a rotation adds is created, when it is one.
#[must_use]
pub fn create_reason(model: &Model, id: &ArtifactId) -> Option<String> {
    let name = id.ca_name().or_else(|| id.as_str().strip_prefix("bundle/"))?;
    let step = model.rotation(name)?.as_str();
    if *id == ArtifactId::next_ca(name) {
        Some(format!("rotation step {step}: the new CA of `[cas.{name}]`, trusted next to `ca/{name}`"))
    } else if *id == ArtifactId::bundle(name) {
        Some(format!(
            "rotation step {step}: trust both `ca/{name}` and `ca/{name}/next` wherever `ca/{name}` is trusted"
        ))
    } else {
        None
    }
}

/// Why a recorded artifact is removed, when a rotation removes it.
#[must_use]
pub fn remove_reason(id: &ArtifactId) -> Option<String> {
    if id.is_old_ca() {
        return Some(
            "rotation step retire: the old CA is trusted nowhere now; its certificate and key are deleted".into(),
        );
    }
    let name = id.as_str().strip_prefix("bundle/")?;
    Some(format!("rotation step retire: only the new `ca/{name}` is trusted"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_step_may_stay_or_take_the_next() {
        use RotationStep::{Issue, Retire, Trust};
        let allowed = [
            (None, None),
            (None, Some(Trust)),
            (Some(Trust), Some(Trust)),
            (Some(Trust), Some(Issue)),
            (Some(Issue), Some(Issue)),
            (Some(Issue), Some(Retire)),
            (Some(Retire), Some(Retire)),
            (Some(Retire), None),
            (Some(Retire), Some(Trust)),
        ];
        let steps = [None, Some(Trust), Some(Issue), Some(Retire)];
        for from in steps {
            for to in steps {
                assert_eq!(follows(from, to), allowed.contains(&(from, to)), "{from:?} → {to:?}");
            }
        }
    }
}

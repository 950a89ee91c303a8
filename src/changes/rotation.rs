//! Staged rotation as deciding sees it, of a CA or of the service-account
//! key pair. The plan names a step (`rotation = "trust" | "issue" |
//! "retire"` in `[cas.NAME]` or `[sets.service-account]`); the state
//! records the step the tree is in. A tree may only stay in its step or take
//! the next one, so that any host is at most one step ahead of any other;
//! this module refuses the rest, and at `retire` turns the state's incoming
//! `…/next` into the plan's id (and the outgoing one into `…/old`, whose
//! files are removed), so that the new CA or key pair keeps its material.

use std::borrow::Cow;

use super::ChangeError;
use crate::model::{ArtifactId, CertSet, Model};
use crate::plan::RotationStep;
use crate::state::State;

/// One thing that can be rotated, as the plan and the tree see it.
struct Slot {
    /// Its table in the plan (`cas.kubernetes`, `sets.service-account`).
    section: String,
    /// Its id outside a rotation, and the outgoing one's during it.
    current: ArtifactId,
    /// The incoming one's id during `trust` and `issue`.
    next: ArtifactId,
    /// The outgoing one's id in the state once `retire` renames it.
    old: ArtifactId,
    /// The bundle that trusts both during `trust` and `issue`.
    bundle: ArtifactId,
    /// The tree's step.
    from: Option<RotationStep>,
    /// The plan's step.
    to: Option<RotationStep>,
}

/// Every CA of the plan and its service-account key pair.
fn slots(model: &Model, state: &State) -> Vec<Slot> {
    let mut slots: Vec<Slot> = model
        .artifacts
        .iter()
        .filter_map(|a| a.id.ca_name().filter(|name| a.id == ArtifactId::ca(name)))
        .map(|name| Slot {
            section: format!("cas.{name}"),
            current: ArtifactId::ca(name),
            next: ArtifactId::next_ca(name),
            old: ArtifactId::old_ca(name),
            bundle: ArtifactId::bundle(name),
            from: state.rotations.get(name).copied(),
            to: model.rotation(name),
        })
        .collect();
    let set = CertSet::ServiceAccount;
    if model.position(&ArtifactId::keypair(set)).is_some() {
        slots.push(Slot {
            section: format!("sets.{set}"),
            current: ArtifactId::keypair(set),
            next: ArtifactId::next_keypair(set),
            old: ArtifactId::old_keypair(set),
            bundle: ArtifactId::key_bundle(set),
            from: state.key_rotation,
            to: model.key_rotation.as_ref().map(|r| r.step),
        });
    }
    slots
}

/// Whether a tree in step `from` may be taken to step `to` in one apply:
/// the same step, the next one, or — once the old one is retired — a new
/// rotation's `trust`.
#[must_use]
pub fn follows(from: Option<RotationStep>, to: Option<RotationStep>) -> bool {
    from == to
        || RotationStep::next(from) == to
        || (from == Some(RotationStep::Retire) && to == Some(RotationStep::Trust))
}

/// Refuses a plan whose rotation skips a step of the tree's. What the tree
/// does not hold yet may start in any step: no host has anything to keep.
pub fn check_progress(model: &Model, state: &State) -> Result<(), ChangeError> {
    for slot in slots(model, state) {
        if !state.artifacts.contains_key(&slot.current) || follows(slot.from, slot.to) {
            continue;
        }
        // A retired rotation is over: what may follow is a new one.
        let next = match slot.from {
            Some(RotationStep::Retire) => Some(RotationStep::Trust),
            from => RotationStep::next(from),
        };
        let section = slot.section;
        return Err(ChangeError::RotationSkipped {
            from: slot.from.map_or_else(|| "no rotation".into(), |step| format!("step `{}`", step.as_str())),
            to: slot.to.map_or_else(|| "no rotation".into(), |step| format!("`rotation = \"{}\"`", step.as_str())),
            next: match next {
                Some(step) => format!("set `rotation = \"{}\"` in `[{section}]`", step.as_str()),
                None => format!("delete the `rotation` line of `[{section}]`"),
            },
            section,
        });
    }
    Ok(())
}

/// What retires in this run: the tree is at `issue` and still holds the
/// incoming one under its `…/next` id.
fn retiring(model: &Model, state: &State) -> Vec<Slot> {
    slots(model, state)
        .into_iter()
        .filter(|slot| {
            slot.to == Some(RotationStep::Retire)
                && slot.from == Some(RotationStep::Issue)
                && state.artifacts.contains_key(&slot.next)
        })
        .collect()
}

/// The state as deciding must read it: checked for skipped steps, and with
/// what retires now renamed ([`prepare`]). Borrowed unless something retires.
pub fn prepared<'s>(model: &Model, state: &'s State) -> Result<Cow<'s, State>, ChangeError> {
    check_progress(model, state)?;
    if retiring(model, state).is_empty() {
        return Ok(Cow::Borrowed(state));
    }
    let mut state = state.clone();
    prepare(model, &mut state);
    Ok(Cow::Owned(state))
}

/// Renames, for everything that retires in this run, the recorded outgoing
/// one to `…/old` and the incoming one to the plan's id, with every recorded
/// spec that names the incoming one rewritten to name the plan's id. Doing it
/// again changes nothing.
pub fn prepare(model: &Model, state: &mut State) {
    for slot in retiring(model, state) {
        if let Some(outgoing) = state.artifacts.remove(&slot.current) {
            state.artifacts.insert(slot.old, outgoing);
        }
        if let Some(incoming) = state.artifacts.remove(&slot.next) {
            state.artifacts.insert(slot.current.clone(), incoming);
        }
        let (from, to) = (format!("\"{}\"", slot.next), format!("\"{}\"", slot.current));
        for recorded in state.artifacts.values_mut() {
            if recorded.spec.get().contains(&from)
                && let Ok(spec) = serde_json::value::RawValue::from_string(recorded.spec.get().replace(&from, &to))
            {
                recorded.spec = spec;
            }
        }
    }
}

/// Whether `id` is the outgoing one of a rotation under way (`trust` or
/// `issue`): it stays as the tree has it, whatever the plan now says of its
/// table, which describes the incoming one.
#[must_use]
pub fn is_outgoing(model: &Model, id: &ArtifactId) -> bool {
    let under_way = |step: Option<RotationStep>| matches!(step, Some(RotationStep::Trust | RotationStep::Issue));
    match id.ca_name() {
        Some(name) => *id == ArtifactId::ca(name) && under_way(model.rotation(name)),
        None => {
            *id == ArtifactId::keypair(CertSet::ServiceAccount)
                && under_way(model.key_rotation.as_ref().map(|r| r.step))
        }
    }
}

/// A line per rotation of the plan or the tree: the step the tree is in,
/// the step the plan asks for, and what comes next (`verify --out`).
#[must_use]
pub fn status(model: &Model, state: &State) -> Vec<String> {
    let step =
        |step: Option<RotationStep>| step.map_or_else(|| "no rotation".into(), |s| format!("step `{}`", s.as_str()));
    slots(model, state)
        .into_iter()
        // A retired rotation whose line is gone is over.
        .filter(|slot| !matches!((slot.from, slot.to), (None | Some(RotationStep::Retire), None)))
        .map(|slot| {
            let what = if slot.from == slot.to {
                match RotationStep::next(slot.from) {
                    Some(next) if slot.from.is_some() => {
                        format!("complete in the tree; once every host has it, set `rotation = \"{}\"`", next.as_str())
                    }
                    _ => "complete; delete the `rotation` line when every host has it".to_string(),
                }
            } else {
                format!("the plan asks for {}: run `certplan apply`, then roll it out to every host", step(slot.to))
            };
            format!("rotation of `[{}]`: the tree is at {}, {what}", slot.section, step(slot.from))
        })
        .collect()
}

/// Why an artifact a rotation adds is created, when it is one.
#[must_use]
pub fn create_reason(model: &Model, id: &ArtifactId) -> Option<String> {
    // Most artifacts are none of these: answer without walking the plan.
    if id.kind() != "bundle" && !id.as_str().ends_with("/next") {
        return None;
    }
    let slot = slots(model, &State::default()).into_iter().find(|s| s.next == *id || s.bundle == *id)?;
    let (step, section, current) = (slot.to?.as_str(), slot.section, slot.current);
    Some(if *id == slot.next {
        format!("rotation step {step}: the new one of `[{section}]`, trusted next to `{current}`")
    } else {
        format!("rotation step {step}: trust both `{current}` and `{}` wherever `{current}` is trusted", slot.next)
    })
}

/// Why a recorded artifact is removed, when a rotation removes it.
#[must_use]
pub fn remove_reason(id: &ArtifactId) -> Option<String> {
    if id.is_retired() {
        return Some(
            "rotation step retire: the old one is trusted nowhere now; its files, key included, are deleted".into(),
        );
    }
    (id.kind() == "bundle").then(|| "rotation step retire: only the new one is trusted".into())
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

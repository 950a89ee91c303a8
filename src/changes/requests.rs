//! Certificates that a CA certplan does not hold must sign (`[cas.NAME]
//! external`), and intermediates whose offline parent's key is not in the
//! tree. Deciding treats them like any other certificate; this pass
//! then turns each that must be issued into a `request` (its key and a
//! certificate request, `requests/ID.csr`) unless the signed certificate is
//! back (`requests/ID.crt`), and every change that embeds or is signed by
//! a certificate not signed yet into a `wait`.

use std::collections::HashSet;

use super::{Action, Change, TreeView};
use crate::graph::Graph;
use crate::model::{ArtifactId, Model, Spec};
use crate::state::State;

/// Where the request for `id` is written, relative to the output tree.
#[must_use]
pub fn request_path(id: &ArtifactId) -> String {
    format!("requests/{id}.csr")
}

/// Where the signed certificate for `id` is expected, relative to the output tree.
#[must_use]
pub fn signed_path(id: &ArtifactId) -> String {
    format!("requests/{id}.crt")
}

/// Where a new key waits for its certificate while the one in place still
/// serves (a re-key of a certificate an external CA signs), relative to the
/// output tree; `.age` when the tree encrypts its secrets.
#[must_use]
pub fn pending_key_path(id: &ArtifactId, sealed: bool) -> String {
    let suffix = if sealed { crate::secrets::SUFFIX } else { "" };
    format!("requests/{id}.key{suffix}")
}

/// The new key waiting beside the request for `id`, if there is one: its
/// path, encrypted or not (the plan's `[secrets]` may have changed since).
#[must_use]
pub fn waiting_key(id: &ArtifactId, disk: &dyn TreeView) -> Option<String> {
    [true, false].into_iter().map(|sealed| pending_key_path(id, sealed)).find(|path| disk.exists(path))
}

/// Whether an intact copy of the key of `id` is in the tree.
#[must_use]
pub fn key_in_tree(state: &State, disk: &dyn TreeView, id: &ArtifactId) -> bool {
    state.artifacts.get(id).is_some_and(|recorded| {
        recorded.files.iter().any(|(path, file)| {
            file.role == crate::model::FileRole::Key && disk.status(path, file) == super::FileStatus::Intact
        })
    })
}

/// The CA that must sign artifact `i` without certplan holding its key
/// for this run: an external CA signing a leaf, or an offline CA (whose
/// key is not in the tree) signing an intermediate.
#[must_use]
pub fn keyless_signer<'m>(model: &'m Model, state: &State, disk: &dyn TreeView, i: usize) -> Option<&'m ArtifactId> {
    let artifact = &model.artifacts[i];
    match &artifact.spec {
        Spec::Cert(cert) => model.externals.iter().any(|e| e.id == cert.issuer).then_some(&cert.issuer),
        Spec::Ca(ca) if ca.issuer != artifact.id && model.offline.contains(&ca.issuer) => {
            (!key_in_tree(state, disk, &ca.issuer)).then_some(&ca.issuer)
        }
        _ => None,
    }
}

/// Turns the changes that need a signature certplan cannot make into requests,
/// or completes them with the returned certificate, and makes what depends
/// on a certificate not signed yet wait.
pub fn settle(model: &Model, graph: &Graph, state: &State, disk: &dyn TreeView, changes: &mut [Change]) {
    if model.externals.is_empty() && model.offline.is_empty() {
        return;
    }
    // A CA issued with a new key in this run signs with it (an offline
    // root's first apply): only a signer without a key here makes requests.
    let external = |id: &ArtifactId| model.externals.iter().any(|e| e.id == *id);
    let issued_now: HashSet<ArtifactId> =
        changes.iter().filter(|c| c.new_key && !external(&c.id)).map(|c| c.id.clone()).collect();
    // Certificates without one yet: their dependents cannot be written.
    let mut unsigned: HashSet<usize> = HashSet::new();
    for change in changes.iter_mut() {
        let Some(i) = change.index else { continue };
        let Some(ca) = keyless_signer(model, state, disk, i).filter(|ca| !issued_now.contains(*ca)) else { continue };
        if !matches!(change.action, Action::Create | Action::Reissue | Action::Renew) {
            continue;
        }
        let signed = signed_path(&change.id);
        if disk.exists(&signed) {
            change.reason = format!("{}; `{ca}` signed it: `{signed}`", change.reason);
            let waiting = [pending_key_path(&change.id, true), pending_key_path(&change.id, false)];
            change.removes.extend([request_path(&change.id), signed]);
            change.removes.extend(waiting);
            continue;
        }
        // Nothing signed yet, or a new key: what it signs or embeds cannot be written.
        let recorded = state.artifacts.get(&change.id);
        if change.new_key || recorded.is_none_or(|r| r.cert.is_none()) {
            unsigned.insert(i);
        }
        let requested = recorded.is_some_and(|r| r.requested.as_ref() == Some(&graph.fingerprints[i]));
        change.reason = if requested && disk.exists(&request_path(&change.id)) {
            format!("{}; awaits `{ca}`'s signature: put the signed certificate at `{signed}`", change.reason)
        } else {
            format!("{}; `{ca}` must sign it: request at `{}`", change.reason, request_path(&change.id))
        };
        change.action = Action::Request;
        change.writes.clear();
        change.removes.clear();
    }
    // What embeds, trusts or is signed by an unsigned certificate waits, and so on down.
    loop {
        let mut more = false;
        for change in changes.iter_mut() {
            let Some(i) = change.index else { continue };
            if unsigned.contains(&i) || matches!(change.action, Action::Remove | Action::Request | Action::Wait) {
                continue;
            }
            let Some(link) = graph.inputs(i).iter().find(|link| unsigned.contains(&link.index)) else { continue };
            let input = &model.artifacts[link.index].id;
            change.reason = match keyless_signer(model, state, disk, link.index) {
                Some(ca) => format!("waits for `{input}`, which `{ca}` has not signed yet"),
                None => format!("waits for `{input}`, which waits for a signature"),
            };
            change.action = Action::Wait;
            change.writes.clear();
            change.removes.clear();
            unsigned.insert(i);
            more = true;
        }
        if !more {
            break;
        }
    }
}

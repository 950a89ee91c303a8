//! Certificates that a CA certplan does not hold must sign (`[cas.NAME]
//! external`). Deciding treats them like any other certificate; this pass
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

/// The external CA that signs artifact `i`, if one does.
#[must_use]
pub fn external_signer(model: &Model, i: usize) -> Option<&ArtifactId> {
    let Spec::Cert(cert) = &model.artifacts[i].spec else { return None };
    model.externals.iter().any(|e| e.id == cert.issuer).then_some(&cert.issuer)
}

/// Turns the changes that need an external CA's signature into requests,
/// or completes them with the returned certificate, and makes what depends
/// on a certificate not signed yet wait.
pub fn settle(model: &Model, graph: &Graph, state: &State, disk: &dyn TreeView, changes: &mut [Change]) {
    if model.externals.is_empty() {
        return;
    }
    // Certificates without one yet: their dependents cannot be written.
    let mut unsigned: HashSet<usize> = HashSet::new();
    for change in changes.iter_mut() {
        let Some(i) = change.index else { continue };
        let Some(ca) = external_signer(model, i) else { continue };
        if !matches!(change.action, Action::Create | Action::Reissue | Action::Renew) {
            continue;
        }
        let signed = signed_path(&change.id);
        if disk.exists(&signed) {
            change.reason = format!("{}; `{ca}` signed it: `{signed}`", change.reason);
            change.removes.extend([request_path(&change.id), signed]);
            continue;
        }
        let recorded = state.artifacts.get(&change.id);
        if recorded.is_none_or(|r| r.cert.is_none()) {
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
            change.reason = match external_signer(model, link.index) {
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

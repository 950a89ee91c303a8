//! Carrying out a decision: gather material from disk, issue what is new,
//! render the files that change, write them, remove what left, and record
//! the new state last.

use std::collections::{HashMap, HashSet};
use std::path::Path;
use std::sync::Arc;

use time::OffsetDateTime;
use time::format_description::well_known::Rfc3339;

use super::Compiled;
use super::external;
use super::material;
use super::saved::{SavedPlan, Stale};
use super::tree::Tree;
use rayon::prelude::*;

use crate::changes::{self, Action, Change, ChangeError, Disk, Options, file_facts};
use crate::issue::{self, IssueError, Keep, Material};
use crate::model::{ArtifactId, FileRole, Model};
use crate::output::{self, OutputError};
use crate::progress::Progress;
use crate::render::{self, RenderError, Templates};
use crate::secrets::Keyring;
use crate::state::{ArtifactState, CertState, FileState, STATE_PATH, State, StateError};

/// Why an apply failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ApplyError {
    /// The state file is unusable.
    #[error(transparent)]
    State(#[from] StateError),
    /// A change certplan will not make unasked.
    #[error(transparent)]
    Change(#[from] ChangeError),
    /// Key generation or signing failed.
    #[error(transparent)]
    Issue(#[from] IssueError),
    /// A template failed.
    #[error(transparent)]
    Render(#[from] RenderError),
    /// Writing failed.
    #[error(transparent)]
    Output(#[from] OutputError),
    /// A saved plan that no longer holds: the templates, the tree or the
    /// changes decided moved since it was saved.
    #[error(transparent)]
    Stale(#[from] Stale),
    /// Encrypting or decrypting a secret file failed.
    #[error(transparent)]
    Secrets(#[from] crate::secrets::SecretsError),
    /// A CA whose key is kept off the tree must sign in this run.
    #[error(
        "`{ca}` must sign `{signs}` and its key is offline: put it back at `{path}` for this apply, then take it off the tree again"
    )]
    OfflineKey {
        /// The offline CA.
        ca: ArtifactId,
        /// What it must sign first.
        signs: ArtifactId,
        /// Where its key goes in the tree.
        path: String,
    },
    /// A signed certificate brought back for a request does not match it.
    #[error(transparent)]
    Refused(#[from] super::external::Refused),
    /// The run must read an encrypted secret and no identity was given.
    #[error(
        "`{0}` must be read to carry out this plan and its secret files are encrypted: give the age identity with `--identity FILE`, `CERTPLAN_AGE_IDENTITY` or `CERTPLAN_AGE_IDENTITY_FILE`"
    )]
    NeedIdentity(ArtifactId),
}

/// The offline CAs (`[cas.NAME] offline`) these changes need to sign with
/// whose key is not in the tree: each with the first artifact it must sign
/// and where its key goes. `plan` warns of them; `apply` refuses.
#[must_use]
pub fn offline_keys_needed(compiled: &Compiled, changes: &[Change], tree: &Tree) -> Vec<ApplyError> {
    let model = &compiled.model;
    let mut needs: Vec<ApplyError> = Vec::new();
    for change in changes {
        let Some(i) = change.index else { continue };
        if !matches!(change.action, Action::Create | Action::Reissue | Action::Renew) {
            continue;
        }
        let artifact = &model.artifacts[i];
        let signer = match &artifact.spec {
            crate::model::Spec::Ca(ca) | crate::model::Spec::Cert(ca) => &ca.issuer,
            _ => continue,
        };
        // Signed elsewhere and brought back: its signer's key is not needed.
        if tree.disk.exists(&changes::requests::signed_path(&artifact.id)) {
            continue;
        }
        // A root signs itself: renewing it keeps its key, which must be here.
        if signer == &artifact.id && change.new_key {
            continue;
        }
        if !model.offline.contains(signer)
            || needs.iter().any(|n| matches!(n, ApplyError::OfflineKey { ca, .. } if ca == signer))
        {
            continue;
        }
        let Some(ca) = model.artifact(signer) else { continue };
        let key_here = changes::requests::key_in_tree(&tree.state, &tree.disk, signer);
        let issued_now = changes.iter().any(|c| &c.id == signer && c.new_key);
        if key_here || issued_now {
            continue;
        }
        let path = ca.files.iter().find(|f| f.role == FileRole::Key).map(|f| f.path.clone()).unwrap_or_default();
        needs.push(ApplyError::OfflineKey { ca: signer.clone(), signs: artifact.id.clone(), path });
    }
    needs
}

/// What a run of `apply` brings besides the plan and the tree: the age
/// identity that opens the tree's encrypted secrets, and where its
/// progress is shown.
pub struct Run<'a> {
    /// The identity, when one was given.
    pub keyring: Option<Arc<Keyring>>,
    /// The progress bar (hidden unless a person watches a terminal).
    pub progress: &'a Progress,
}

/// What an apply did.
#[derive(Debug)]
pub struct ApplyReport {
    /// The changes carried out.
    pub changes: Vec<Change>,
}

/// Decides the changes an apply would make to a tree read with
/// [`Tree::read`], writing nothing.
pub fn plan_changes(compiled: &Compiled, tree: &Tree, options: &Options) -> Result<Vec<Change>, ApplyError> {
    Ok(changes::decide(&compiled.model, &compiled.graph, &tree.state, &tree.disk, options)?)
}

/// Applies a compiled plan to the output tree. `tree` is the tree read
/// under its lock ([`Tree::lock_existing`], while the plan compiled); when
/// it is `None` the tree is locked and read here.
pub fn apply(
    compiled: &Compiled,
    out: &Path,
    tree: Option<Tree>,
    options: &Options,
    templates: &Templates,
    run: Run<'_>,
) -> Result<ApplyReport, ApplyError> {
    carry_out(compiled, out, tree, options, templates, None, run)
}

/// Applies a plan saved by `plan --save` to the tree it names, `compiled`
/// from its plan (whose text [`SavedPlan::check_plan`] found unchanged)
/// with its `--rotate` ids. Refuses, writing nothing, when the override
/// templates, the tree read under its lock, or the changes decided again
/// are not those saved; otherwise carries out exactly those changes.
pub fn apply_saved(
    compiled: &Compiled,
    saved: &SavedPlan,
    tree: Option<Tree>,
    options: &Options,
    templates: &Templates,
    run: Run<'_>,
) -> Result<ApplyReport, ApplyError> {
    saved.check_templates(templates)?;
    carry_out(compiled, &saved.out, tree, options, templates, Some(saved), run)
}

/// Locks and reads the tree unless `tree` holds it, and decides; with a
/// `saved` plan, refuses a tree or changes that are not the saved ones
/// before anything is written. Then gathers, issues, renders, writes and
/// records.
fn carry_out(
    compiled: &Compiled,
    out: &Path,
    tree: Option<Tree>,
    options: &Options,
    templates: &Templates,
    saved: Option<&SavedPlan>,
    run: Run<'_>,
) -> Result<ApplyReport, ApplyError> {
    let Run { keyring, progress } = run;
    let tree = match tree.filter(Tree::is_locked) {
        Some(tree) => tree,
        None => Tree::lock(out)?,
    };
    // The tree first: a file that moved is named as such, even where
    // deciding would stop at it (a CA key gone).
    if let Some(saved) = saved {
        saved.check_tree(&tree)?;
    }
    let model = &compiled.model;
    let changes = changes::decide(model, &compiled.graph, &tree.state, &tree.disk, options)?;
    if let Some(saved) = saved {
        saved.check_changes(&changes)?;
    }
    if changes.is_empty() {
        return Ok(ApplyReport { changes });
    }
    if let Some(need) = offline_keys_needed(compiled, &changes, &tree).into_iter().next() {
        return Err(need);
    }
    // `_lock` holds the tree until the state is written.
    let Tree { mut state, mut disk, lock: _lock } = tree;
    disk.set_keyring(keyring);
    // As deciding read it: a CA that retires now keeps its material under its own id.
    changes::rotation::prepare(model, &mut state);
    let (mut keep, mut wanted) = gather(compiled, &changes, &state, &disk)?;
    // Certificates a CA certplan does not hold signed: checked, then kept as they came.
    let returned = external::returned(compiled, &changes, &state, &disk, options.now)?;
    wanted.retain(|&i| !returned.contains_key(&model.artifacts[i].id));
    keep.material.extend(returned);
    let (request_files, asked) = external::requests(compiled, &changes, &state, &disk)?;
    let materials = issue::issue_all(model, &compiled.graph, &wanted, keep, options.now, progress)?;
    let mut files = render_writes(model, &changes, &materials, templates)?;
    files.extend(request_files);
    seal(model, &mut files, &state, &disk)?;
    let written = write(out, &changes, &files, progress)?;
    progress.finish();
    update_state(&mut state, compiled, &changes, &written, &materials, &disk);
    record_requests(&mut state, compiled, &changes, &written, &asked);
    external::write_index(out, compiled, &state)?;
    // What was written is on disk now: let it go before the state, the
    // largest file of all, is serialised.
    drop(written);
    drop(files);
    drop(materials);
    record(out, state)?;
    Ok(ApplyReport { changes })
}

/// Gathers what this run keeps from disk: adopted keys, the keys (or
/// tokens) of what it regenerates without a new key, and the material of
/// what it renders or signs with but does not issue. Returns it with the
/// artifacts to issue, in the order of the changes.
fn gather(
    compiled: &Compiled,
    changes: &[Change],
    state: &State,
    disk: &Disk,
) -> Result<(Keep, Vec<usize>), ApplyError> {
    require_identity(compiled, changes, state, disk)?;
    let model = &compiled.model;
    let regenerate: HashSet<usize> = changes
        .iter()
        .filter(|c| matches!(c.action, Action::Create | Action::Adopt | Action::Reissue | Action::Renew))
        .filter_map(|c| c.index)
        .filter(|&i| {
            let spec = &model.artifacts[i].spec;
            spec.has_material()
        })
        .collect();
    let mut keep = Keep::default();
    let mut wanted: Vec<usize> = Vec::new();
    for change in changes {
        let Some(i) = change.index.filter(|i| regenerate.contains(i)) else {
            continue;
        };
        let artifact = &model.artifacts[i];
        let recorded = state.artifacts.get(&artifact.id);
        if change.action == Action::Adopt {
            keep.keys.insert(artifact.id.clone(), material::adopt_key(artifact, disk)?);
        } else if !change.new_key
            && let Some(recorded) = recorded
        {
            if artifact.spec.is_token() {
                if let Some(token) = material::load(artifact, recorded, disk) {
                    keep.material.insert(artifact.id.clone(), token);
                    continue;
                }
            } else if let Some(key) = material::load_key(artifact, recorded, disk)
                .or_else(|| material::load_key_only(artifact, recorded, disk))
            {
                keep.keys.insert(artifact.id.clone(), key);
            }
        }
        wanted.push(i);
    }
    let needed = needed_from_disk(compiled, changes, &regenerate);
    for id in needed {
        if keep.material.contains_key(&id) {
            continue;
        }
        let (Some(artifact), Some(recorded)) = (model.artifact(&id), state.artifacts.get(&id)) else {
            continue;
        };
        if let Some(material) = material::load(artifact, recorded, disk) {
            keep.material.insert(id, material);
        }
    }
    Ok((keep, wanted))
}

/// What this run reads from encrypted files needs the identity: refuses
/// before anything is generated, naming the first such artifact (a CA it
/// must sign with first); and an identity that does not open them is named
/// as such, not taken for a file that is missing.
fn require_identity(compiled: &Compiled, changes: &[Change], state: &State, disk: &Disk) -> Result<(), ApplyError> {
    if let Some(keyring) = disk.keyring() {
        let first_sealed = changes
            .iter()
            .filter_map(|c| state.artifacts.get(&c.id))
            .flat_map(|recorded| recorded.files.keys())
            .find(|path| crate::secrets::is_sealed(path) && disk.exists(path));
        if let Some(path) = first_sealed
            && let Some(bytes) = crate::output::read_regular(&disk.path(path))
        {
            keyring.open(path, &bytes)?;
        }
    } else {
        let sealed = |id: &ArtifactId| {
            state.artifacts.get(id).is_some_and(|r| r.files.keys().any(|p| crate::secrets::is_sealed(p)))
        };
        let regenerate = |c: &&Change| matches!(c.action, Action::Reissue | Action::Renew) && !c.new_key;
        let keeps = changes.iter().filter(regenerate).map(|c| &c.id);
        let model = &compiled.model;
        let mut needed = needed_from_disk(compiled, changes, &HashSet::new());
        needed.retain(|id| model.artifact(id).is_some_and(|a| a.spec.has_material()));
        // A CA it must sign with first: that is what the identity is for.
        let signers: HashSet<&ArtifactId> = changes
            .iter()
            .filter(|c| matches!(c.action, Action::Create | Action::Reissue | Action::Renew))
            .filter_map(|c| c.index)
            .flat_map(|i| compiled.graph.inputs(i))
            .filter(|link| link.relation == crate::graph::Relation::Signs)
            .map(|link| &model.artifacts[link.index].id)
            .collect();
        let mut needed: Vec<&ArtifactId> = needed.iter().collect();
        needed.sort_by_key(|id| (!signers.contains(id), id.kind() == "ca", id.as_str().to_string()));
        if let Some(id) = needed.into_iter().chain(keeps).find(|id| sealed(id)) {
            return Err(ApplyError::NeedIdentity(id.clone()));
        }
    }
    Ok(())
}

/// Encrypts every file the tree names as encrypted to the plan's
/// recipients. A file whose plaintext is what its intact copy on disk
/// already holds, for the same recipients, keeps its ciphertext: age
/// encryption is randomised, and a repository should see only what changed.
fn seal(model: &Model, files: &mut [render::RenderedFile], state: &State, disk: &Disk) -> Result<(), ApplyError> {
    if model.recipients.is_empty() {
        return Ok(());
    }
    let recipients = crate::secrets::Recipients::parse(&model.recipients)?;
    let same_recipients = state.age_recipients == model.recipients;
    let unchanged = |file: &render::RenderedFile| -> Option<Vec<u8>> {
        let recorded = state.artifacts.get(&file.artifact)?.files.get(&file.path)?;
        if !same_recipients || disk.status(&file.path, recorded) != crate::changes::FileStatus::Intact {
            return None;
        }
        let sealed = crate::output::read_regular(&disk.path(&file.path))?;
        let opened = disk.keyring()?.open(&file.path, &sealed).ok()?;
        (opened.as_slice() == file.contents.as_slice()).then_some(sealed)
    };
    for file in files.iter_mut().filter(|f| crate::secrets::is_sealed(&f.path)) {
        let sealed = match unchanged(file) {
            Some(kept) => kept,
            None => recipients.seal(&file.path, &file.contents)?,
        };
        file.contents = zeroize::Zeroizing::new(sealed);
    }
    Ok(())
}

/// Renders the files the changes write, and only those.
fn render_writes(
    model: &Model,
    changes: &[Change],
    materials: &HashMap<ArtifactId, Material>,
    templates: &Templates,
) -> Result<Vec<render::RenderedFile>, RenderError> {
    let render_indices: Vec<usize> = changes.iter().filter(|c| !c.writes.is_empty()).filter_map(|c| c.index).collect();
    let writes: HashSet<&str> = changes.iter().flat_map(|c| c.writes.iter().map(String::as_str)).collect();
    Ok(render::render_files(model, &render_indices, materials, templates)?
        .into_iter()
        .filter(|f| writes.contains(f.path.as_str()))
        .collect())
}

/// Writes the rendered files, then removes the files that left. Returns
/// what each written file holds, as the state records it.
fn write<'f>(
    out: &Path,
    changes: &[Change],
    files: &'f [render::RenderedFile],
    progress: &Progress,
) -> Result<HashMap<&'f str, FileState>, OutputError> {
    let mtimes = output::write_files(out, files, progress)?;
    let written: HashMap<&str, FileState> = files
        .par_iter()
        .zip(mtimes)
        .map(|(file, mtime_ns)| (file.path.as_str(), file_facts(&file.contents, file.role, mtime_ns)))
        .collect();
    let removes: Vec<String> = changes.iter().flat_map(|c| c.removes.iter().cloned()).collect();
    output::remove_files(out, &removes)?;
    Ok(written)
}

/// Writes the state file, last: a tree whose state is written is complete.
fn record(out: &Path, state: State) -> Result<(), OutputError> {
    let json = state.to_json();
    drop(state);
    output::write_atomic(&out.join(STATE_PATH), &json, 0o644).or_else(|_| {
        std::fs::create_dir_all(out.join(".certplan")).map_err(|source| OutputError::Io {
            action: "create",
            path: out.join(".certplan"),
            source,
        })?;
        output::write_atomic(&out.join(STATE_PATH), &json, 0o644)
    })
}

/// Artifacts whose material must come from disk: what is rendered or signs
/// something, but is not issued in this run.
fn needed_from_disk(compiled: &Compiled, changes: &[Change], regenerate: &HashSet<usize>) -> HashSet<ArtifactId> {
    let model = &compiled.model;
    let mut needed = HashSet::new();
    for change in changes {
        let Some(i) = change.index else { continue };
        let artifact = &model.artifacts[i];
        if !change.writes.is_empty() && !regenerate.contains(&i) {
            needed.insert(artifact.id.clone());
        }
        if !change.writes.is_empty() || regenerate.contains(&i) {
            for link in compiled.graph.inputs(i) {
                needed.insert(model.artifacts[link.index].id.clone());
                // A trust bundle is written from its CAs' certificates.
                if matches!(model.artifacts[link.index].spec, crate::model::Spec::Bundle(_)) {
                    let cas = compiled.graph.inputs(link.index);
                    needed.extend(cas.iter().map(|ca| model.artifacts[ca.index].id.clone()));
                }
            }
        }
    }
    // A leaf signed by an intermediate carries the intermediates above it.
    let mut ancestors: Vec<ArtifactId> = needed.iter().cloned().collect();
    while let Some(id) = ancestors.pop() {
        if let Some(crate::model::Spec::Ca(ca)) = model.artifact(&id).map(|a| &a.spec)
            && ca.issuer != id
            && needed.insert(ca.issuer.clone())
        {
            ancestors.push(ca.issuer.clone());
        }
    }
    needed.retain(|id| model.position(id).is_none_or(|i| !regenerate.contains(&i)));
    needed
}

/// Records each certificate requested from a CA certplan does not hold:
/// its key files, and what its request asks for.
fn record_requests(
    state: &mut State,
    compiled: &Compiled,
    changes: &[Change],
    written: &HashMap<&str, FileState>,
    asked: &HashMap<ArtifactId, crate::graph::Fingerprint>,
) {
    for change in changes.iter().filter(|c| c.action == Action::Request) {
        let Some(i) = change.index else { continue };
        let artifact = &compiled.model.artifacts[i];
        let entry = state.artifacts.entry(artifact.id.clone()).or_insert_with(|| ArtifactState {
            fingerprint: compiled.graph.fingerprints[i].clone(),
            spec: serde_json::value::to_raw_value(&artifact.spec)
                .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
            cert: None,
            files: std::collections::BTreeMap::new(),
            requested: None,
        });
        for placement in artifact.files.iter().filter(|f| f.role == FileRole::Key) {
            if let Some(facts) = written.get(placement.path.as_str()) {
                entry.files.insert(placement.path.clone(), facts.clone());
            }
        }
        entry.requested = asked.get(&artifact.id).cloned();
    }
}

fn update_state(
    state: &mut State,
    compiled: &Compiled,
    changes: &[Change],
    written: &HashMap<&str, FileState>,
    materials: &HashMap<ArtifactId, Material>,
    disk: &Disk,
) {
    let model = &compiled.model;
    for change in changes {
        // A request is recorded by `record_requests`; what waits, not at all.
        if matches!(change.action, Action::Request | Action::Wait) {
            continue;
        }
        let Some(i) = change.index else {
            state.artifacts.remove(&change.id);
            continue;
        };
        let artifact = &model.artifacts[i];
        let previous = state.artifacts.remove(&artifact.id);
        let mut recorded_files = previous.as_ref().map(|p| p.files.clone()).unwrap_or_default();
        let placed: HashSet<&str> = artifact.files.iter().map(|f| f.path.as_str()).collect();
        recorded_files.retain(|path, _| placed.contains(path.as_str()));
        for path in &change.writes {
            if let Some(facts) = written.get(path.as_str()) {
                recorded_files.insert(path.clone(), facts.clone());
            }
        }
        // An adopted key stays where it was found; record the bytes it has
        // there (its ciphertext, when it is encrypted), not the key it holds.
        if change.action == Action::Adopt {
            for file in artifact.files.iter().filter(|f| f.role == FileRole::Key && !change.writes.contains(&f.path)) {
                if let Some(bytes) = crate::output::read_regular(&disk.path(&file.path)).map(zeroize::Zeroizing::new) {
                    recorded_files.insert(file.path.clone(), disk.record(&file.path, &bytes, FileRole::Key));
                }
            }
        }
        let cert = match materials.get(&artifact.id) {
            Some(Material::Cert(issued)) => Some(CertState {
                serial: issued.serial.clone(),
                not_before: issued.not_before.format(&Rfc3339).unwrap_or_default(),
                not_after: issued.not_after.format(&Rfc3339).unwrap_or_default(),
            }),
            Some(Material::Token { expires: Some(expires), .. }) => Some(CertState {
                serial: String::new(),
                not_before: String::new(),
                not_after: expires.format(&Rfc3339).unwrap_or_default(),
            }),
            _ => previous.as_ref().and_then(|p| p.cert.clone()),
        };
        state.artifacts.insert(
            artifact.id.clone(),
            ArtifactState {
                fingerprint: compiled.graph.fingerprints[i].clone(),
                spec: serde_json::value::to_raw_value(&artifact.spec)
                    .unwrap_or_else(|_| serde_json::value::RawValue::NULL.to_owned()),
                cert,
                files: recorded_files,
                requested: None,
            },
        );
    }
    // What did not change is recorded as the plan now names it (a rotation's
    // `retire` renames a CA under every certificate it signs).
    let decided: HashSet<&ArtifactId> = changes.iter().map(|c| &c.id).collect();
    for (i, artifact) in model.artifacts.iter().enumerate() {
        if decided.contains(&artifact.id) {
            continue;
        }
        if let Some(recorded) = state.artifacts.get_mut(&artifact.id)
            && recorded.fingerprint != compiled.graph.fingerprints[i]
        {
            recorded.fingerprint = compiled.graph.fingerprints[i].clone();
            if let Ok(spec) = serde_json::value::to_raw_value(&artifact.spec) {
                recorded.spec = spec;
            }
        }
    }
    state.rotations = model.rotations.iter().map(|(name, rotation)| (name.clone(), rotation.step)).collect();
    state.key_rotation = model.key_rotation.as_ref().map(|rotation| rotation.step);
    state.age_recipients.clone_from(&model.recipients);
    state.version = crate::state::STATE_VERSION;
}

/// The clock to use: `--now`, else `SOURCE_DATE_EPOCH`, else the system's.
pub fn clock(now: Option<&str>) -> Result<OffsetDateTime, String> {
    if let Some(text) = now {
        return OffsetDateTime::parse(text, &Rfc3339)
            .map_err(|e| format!("`--now {text}` is not an RFC 3339 time: {e}"));
    }
    if let Ok(epoch) = std::env::var("SOURCE_DATE_EPOCH") {
        let seconds: i64 =
            epoch.trim().parse().map_err(|_| format!("SOURCE_DATE_EPOCH=`{epoch}` is not a number of seconds"))?;
        return OffsetDateTime::from_unix_timestamp(seconds)
            .map_err(|e| format!("SOURCE_DATE_EPOCH is out of range: {e}"));
    }
    let now = OffsetDateTime::now_utc();
    Ok(now.replace_nanosecond(0).unwrap_or(now))
}

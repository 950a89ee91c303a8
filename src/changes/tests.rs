//! Table-driven tests of [`decide`]: a plan, a recorded state and a tree in
//! memory in; the action, reason and files of every change out. One case
//! per kind of action, and the refusals.

use std::collections::{BTreeMap, HashMap};

use time::OffsetDateTime;

use super::*;
use crate::pipeline::{Compiled, compile};
use crate::state::{ArtifactState, CertState, FileState, STATE_VERSION};

const PLAN: &str = include_str!("../../plans/minimal.toml");

/// An output tree in memory: path → content.
#[derive(Default)]
struct MemoryTree {
    files: HashMap<String, Vec<u8>>,
}

impl TreeView for MemoryTree {
    fn exists(&self, relative: &str) -> bool {
        self.files.contains_key(relative)
    }

    fn status(&self, relative: &str, recorded: &FileState) -> FileStatus {
        match self.files.get(relative) {
            None => FileStatus::Missing,
            Some(bytes) if sha256_hex(bytes) == recorded.sha256 => FileStatus::Intact,
            Some(_) => FileStatus::Changed,
        }
    }

    fn read_intact(&self, files: &BTreeMap<String, FileState>, role: FileRole) -> Option<Vec<u8>> {
        files
            .iter()
            .filter(|(_, f)| f.role == role)
            .find_map(|(path, f)| self.files.get(path).filter(|b| sha256_hex(b) == f.sha256).cloned())
    }
}

fn now() -> OffsetDateTime {
    OffsetDateTime::from_unix_timestamp(1_800_000_000).expect("a time")
}

fn plan(source: &str) -> Compiled {
    compile(source).unwrap_or_else(|d| panic!("the test plan does not compile: {d:?}"))
}

/// The state and tree an apply of `compiled` at `now()` leaves behind: every
/// file written (its content is its path), every certificate valid from now.
fn applied(compiled: &Compiled) -> (State, MemoryTree) {
    let mut state = State { version: STATE_VERSION, artifacts: BTreeMap::new(), ..State::default() };
    let mut tree = MemoryTree::default();
    for (i, artifact) in compiled.model.artifacts.iter().enumerate() {
        let mut files = BTreeMap::new();
        for placement in &artifact.files {
            let bytes = placement.path.as_bytes().to_vec();
            files.insert(placement.path.clone(), file_facts(&bytes, placement.role, 0));
            tree.files.insert(placement.path.clone(), bytes);
        }
        let cert = artifact.spec.cert().map(|spec| CertState {
            serial: "01".into(),
            not_before: rfc3339(now()),
            not_after: rfc3339(now() + spec.validity),
        });
        let spec = serde_json::value::to_raw_value(&artifact.spec).expect("a spec serialises");
        state.artifacts.insert(
            artifact.id.clone(),
            ArtifactState { fingerprint: compiled.graph.fingerprints[i].clone(), spec, cert, files, requested: None },
        );
    }
    (state, tree)
}

fn rfc3339(t: OffsetDateTime) -> String {
    t.format(&time::format_description::well_known::Rfc3339).expect("formats")
}

fn options(rotate: &[&str]) -> Options {
    Options { now: now(), rotate: rotate.iter().map(|id| (*id).to_string()).collect() }
}

fn id(text: &str) -> ArtifactId {
    ArtifactId::parse(text).unwrap_or_else(|| panic!("`{text}` is no artifact id"))
}

fn run(compiled: &Compiled, state: &State, tree: &MemoryTree, options: &Options) -> Vec<Change> {
    decide(&compiled.model, &compiled.graph, state, tree, options).expect("decides")
}

/// `(action, id)` of every change, in order.
fn summary(changes: &[Change]) -> Vec<(Action, String)> {
    changes.iter().map(|c| (c.action, c.id.to_string())).collect()
}

fn change<'c>(changes: &'c [Change], id: &str) -> &'c Change {
    changes.iter().find(|c| c.id.as_str() == id).unwrap_or_else(|| panic!("no change for {id}: {:?}", summary(changes)))
}

fn path_of(compiled: &Compiled, id: &str, role: FileRole) -> String {
    let artifact = compiled.model.find(id).unwrap_or_else(|| panic!("no artifact {id}"));
    artifact.files.iter().find(|f| f.role == role).map(|f| f.path.clone()).expect("a file of that role")
}

#[test]
fn a_new_tree_creates_everything() {
    let compiled = plan(PLAN);
    let changes = run(&compiled, &State::default(), &MemoryTree::default(), &options(&[]));
    assert_eq!(changes.len(), compiled.model.artifacts.len());
    assert!(changes.iter().all(|c| c.action == Action::Create && c.reason == "new in the plan"));
    assert!(change(&changes, "ca/lab").new_key);
}

#[test]
fn an_unchanged_tree_needs_nothing() {
    let compiled = plan(PLAN);
    let (state, tree) = applied(&compiled);
    assert_eq!(summary(&run(&compiled, &state, &tree, &options(&[]))), []);
}

#[test]
fn a_ca_key_already_in_the_tree_is_adopted() {
    let compiled = plan(PLAN);
    let mut tree = MemoryTree::default();
    let key = path_of(&compiled, "ca/lab", FileRole::Key);
    tree.files.insert(key.clone(), b"a key".to_vec());
    let changes = run(&compiled, &State::default(), &tree, &options(&[]));
    let ca = change(&changes, "ca/lab");
    assert_eq!(ca.action, Action::Adopt);
    assert!(!ca.writes.contains(&key), "the key is kept: {:?}", ca.writes);
    assert!(!ca.new_key);
}

#[test]
fn a_san_added_reissues_exactly_that_certificate_with_its_key() {
    let compiled = plan(PLAN);
    let (state, tree) = applied(&compiled);
    let edited = plan(&PLAN.replace("[[users]]", "[sets.apiserver]\nextra_sans = [\"api.example.com\"]\n\n[[users]]"));
    let changes = run(&edited, &state, &tree, &options(&[]));
    assert_eq!(summary(&changes), [(Action::Reissue, "cert/apiserver".to_string())]);
    let apiserver = &changes[0];
    assert_eq!(apiserver.reason, "DNS SANs + api.example.com");
    assert!(!apiserver.new_key);
    assert!(!apiserver.writes.contains(&path_of(&edited, "cert/apiserver", FileRole::Key)));
}

#[test]
fn rotating_a_ca_cascades_along_the_graph() {
    let compiled = plan(PLAN);
    let (state, tree) = applied(&compiled);
    let changes = run(&compiled, &state, &tree, &options(&["ca/lab"]));
    let ca = change(&changes, "ca/lab");
    assert_eq!((ca.action, ca.new_key), (Action::Reissue, true));
    // Every certificate the CA signs, and every kubeconfig that embeds it.
    for (i, artifact) in compiled.model.artifacts.iter().enumerate() {
        let signed = compiled.graph.inputs(i).iter().any(|l| l.relation == Relation::Signs);
        let embeds = compiled.graph.inputs(i).iter().any(|l| l.relation == Relation::Embeds);
        if signed {
            let c = change(&changes, artifact.id.as_str());
            assert_eq!((c.action, c.reason.as_str()), (Action::Reissue, "its issuer `ca/lab` gets a new key"));
        } else if embeds {
            let c = change(&changes, artifact.id.as_str());
            assert_eq!(c.action, Action::Rewrite, "{}", c.id);
            assert!(c.reason.starts_with("embeds `"), "{}", c.reason);
        }
    }
    // Flag files name paths, not certificates: untouched.
    assert!(changes.iter().all(|c| !c.id.as_str().starts_with("flags/")), "{:?}", summary(&changes));
}

#[test]
fn a_leaf_inside_its_renewal_window_is_renewed() {
    let compiled = plan(PLAN);
    let (state, tree) = applied(&compiled);
    // Leaves live a year; eleven months on, they are in their last third.
    let later = Options { now: now() + time::Duration::days(335), rotate: Vec::new() };
    let changes = run(&compiled, &state, &tree, &later);
    let apiserver = change(&changes, "cert/apiserver");
    assert_eq!(apiserver.action, Action::Renew);
    assert!(apiserver.reason.starts_with("expires in 30d"), "{}", apiserver.reason);
    assert!(changes.iter().all(|c| c.id.as_str() != "ca/lab"), "the CA is not due");
}

#[test]
fn a_changed_flag_spec_rewrites_the_flag_file() {
    let compiled = plan(PLAN);
    let (state, tree) = applied(&compiled);
    let edited = plan(&PLAN.replace("service_cidr = \"10.96.0.0/12\"", "service_cidr = \"10.112.0.0/12\""));
    let changes = run(&edited, &state, &tree, &options(&[]));
    let flags = change(&changes, "flags/kube-apiserver/solo");
    assert_eq!(flags.action, Action::Rewrite);
    assert!(flags.reason.contains("10.112.0.0/12"), "{}", flags.reason);
}

#[test]
fn a_deleted_certificate_with_no_copy_left_is_reissued_with_its_key() {
    let compiled = plan(PLAN);
    let (state, mut tree) = applied(&compiled);
    let cert = path_of(&compiled, "cert/apiserver", FileRole::Cert);
    tree.files.remove(&cert);
    let changes = run(&compiled, &state, &tree, &options(&[]));
    let apiserver = change(&changes, "cert/apiserver");
    // The only copy of the certificate is gone, its key is intact: a new
    // certificate with the same key.
    assert_eq!(apiserver.action, Action::Reissue);
    assert!(!apiserver.new_key);
    assert_eq!(apiserver.reason, format!("{cert}: file deleted on disk, no intact copy left"));
}

#[test]
fn a_changed_kubeconfig_is_repaired() {
    let compiled = plan(PLAN);
    let (state, mut tree) = applied(&compiled);
    let kubeconfig = path_of(&compiled, "kubeconfig/users/admin", FileRole::Kubeconfig);
    tree.files.insert(kubeconfig.clone(), b"edited by hand".to_vec());
    let changes = run(&compiled, &state, &tree, &options(&[]));
    let admin = change(&changes, "kubeconfig/users/admin");
    assert_eq!((admin.action, admin.writes.clone()), (Action::Repair, vec![kubeconfig.clone()]));
    assert_eq!(admin.reason, format!("{kubeconfig}: file changed on disk"));
}

#[test]
fn a_file_the_state_does_not_record_is_placed() {
    let compiled = plan(PLAN);
    let (mut state, tree) = applied(&compiled);
    let cert = path_of(&compiled, "ca/lab", FileRole::Cert);
    state.artifacts.get_mut(&id("ca/lab")).expect("recorded").files.remove(&cert);
    let changes = run(&compiled, &state, &tree, &options(&[]));
    let ca = change(&changes, "ca/lab");
    assert_eq!((ca.action, ca.writes.clone()), (Action::Place, vec![cert.clone()]));
    assert_eq!(ca.reason, format!("copies to {cert}"));
}

#[test]
fn an_artifact_that_left_the_plan_is_removed() {
    let with_user = PLAN.replace("[[users]]", "[[users]]\nname = \"ops\"\ngroups = [\"ops\"]\n\n[[users]]");
    let compiled = plan(&with_user);
    let (state, tree) = applied(&compiled);
    let changes = run(&plan(PLAN), &state, &tree, &options(&[]));
    let removed: Vec<&str> = changes.iter().filter(|c| c.action == Action::Remove).map(|c| c.id.as_str()).collect();
    assert!(removed.contains(&"cert/users/ops") && removed.contains(&"kubeconfig/users/ops"), "{removed:?}");
    assert!(changes.iter().all(|c| c.action == Action::Remove), "{:?}", summary(&changes));
}

#[test]
fn a_changed_ca_is_refused() {
    let compiled = plan(PLAN);
    let (state, tree) = applied(&compiled);
    let edited = plan(&PLAN.replace("cn = \"lab-ca\"", "cn = \"lab-ca-2\""));
    let error = decide(&edited.model, &edited.graph, &state, &tree, &options(&[])).expect_err("refused");
    assert!(matches!(error, ChangeError::CaChanged { .. }), "{error}");
}

#[test]
fn a_lost_ca_key_is_refused() {
    let compiled = plan(PLAN);
    let (state, mut tree) = applied(&compiled);
    tree.files.retain(|path, _| state.artifacts[&id("ca/lab")].files.get(path).is_none_or(|f| f.role != FileRole::Key));
    let error = decide(&compiled.model, &compiled.graph, &state, &tree, &options(&[])).expect_err("refused");
    assert!(matches!(error, ChangeError::CaKeyLost { .. }), "{error}");
}

#[test]
fn rotating_an_unknown_id_is_refused() {
    let compiled = plan(PLAN);
    let error =
        decide(&compiled.model, &compiled.graph, &State::default(), &MemoryTree::default(), &options(&["ca/nope"]))
            .expect_err("refused");
    assert!(matches!(error, ChangeError::UnknownRotate(_)), "{error}");
}

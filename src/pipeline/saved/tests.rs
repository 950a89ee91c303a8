//! Unit tests of saved plans: written and recognised, and each way one
//! is refused.

use std::collections::BTreeMap;

use super::*;
use crate::changes::{Action, Disk, FileStatus};
use crate::model::ArtifactId;
use crate::state::State;

fn id(text: &str) -> ArtifactId {
    ArtifactId::parse(text).expect("an artifact id")
}

fn change(text: &str, action: Action, writes: &[&str]) -> Change {
    Change {
        id: id(text),
        index: Some(0),
        action,
        reason: "expires in 40d, renew_before 2920h".into(),
        new_key: false,
        writes: writes.iter().map(ToString::to_string).collect(),
        removes: Vec::new(),
    }
}

/// A state recording `files` of `cert/apiserver`.
fn state(files: &[&str]) -> State {
    let files: Vec<String> =
        files.iter().map(|path| format!(r#""{path}":{{"sha256":"00","role":"cert","size":1,"mtime_ns":0}}"#)).collect();
    let artifacts = if files.is_empty() {
        String::new()
    } else {
        format!(r#""cert/apiserver":{{"fingerprint":"f","spec":{{}},"files":{{{}}}}}"#, files.join(","))
    };
    serde_json::from_str(&format!(r#"{{"version":1,"artifacts":{{{artifacts}}}}}"#)).expect("a state")
}

/// A tree with `state`, whose files are nowhere.
fn tree(state: State) -> Tree {
    Tree { state, disk: Disk::new(Path::new("/nonexistent/certplan-saved-plan-test")), lock: None }
}

fn options() -> Options {
    Options { now: time::macros::datetime!(2026-01-01 00:00 UTC), rotate: vec!["cert/apiserver".into()] }
}

fn saved(changes: &[Change]) -> SavedPlan {
    SavedPlan::new(Path::new("plan.toml"), "[cluster]\n", Path::new("out"), &tree(state(&[])), &options(), changes)
}

#[test]
fn is_written_as_json_and_recognised_by_its_kind() {
    let plan = saved(&[change("cert/apiserver", Action::Reissue, &["cluster/apiserver.crt"])]);
    let json = plan.to_json().expect("JSON");
    let doc: Value = serde_json::from_str(&json).expect("JSON");
    assert_eq!(doc["kind"], SAVED_PLAN_KIND);
    assert_eq!(doc["version"], 1);
    assert_eq!(doc["plan"]["path"], "plan.toml");
    assert_eq!(doc["plan"]["sha256"], sha256_hex(b"[cluster]\n"));
    assert_eq!(doc["tree"]["state_sha256"], Value::Null, "no state");
    assert_eq!(doc["rotate"][0], "cert/apiserver");
    assert_eq!(doc["decided_at"], "2026-01-01T00:00:00Z");
    assert_eq!(doc["changes"][0]["action"], "reissue");
    assert_eq!(doc["changes"][0]["writes"][0], "cluster/apiserver.crt");
    let read = SavedPlan::recognise(&json).expect("readable").expect("a saved plan");
    assert_eq!(read.plan, plan.plan);
    assert_eq!(read.tree, plan.tree);
    assert_eq!(first_change_difference(&read.changes, &plan.changes), None);
}

#[test]
fn a_plan_file_is_not_a_saved_plan_and_other_json_is_an_error() {
    assert!(SavedPlan::recognise("#:schema x\n[cluster]\nname = \"lab\"\n").expect("not JSON").is_none());
    let not_saved = SavedPlan::recognise(r#"{"changes": []}"#).expect_err("no kind");
    assert!(not_saved.to_string().starts_with("it is JSON but not a plan saved by `certplan plan --save`"));
    let later = SavedPlan::recognise(r#"{"kind": "certplan-saved-plan", "version": 2}"#).expect_err("version 2");
    assert_eq!(later.to_string(), "it is a saved plan of format version 2; this certplan reads version 1");
    let torn = SavedPlan::recognise(r#"{"kind": "certplan-saved-plan", "version": 1, "#).expect_err("torn");
    assert!(torn.to_string().starts_with("it is damaged: "), "{torn}");
}

#[test]
fn an_edited_plan_is_refused_with_both_digests() {
    let plan = saved(&[]);
    assert!(plan.check_plan("[cluster]\n").is_ok());
    let edited = plan.check_plan("[cluster]\nname = \"lab\"\n").expect_err("edited");
    let (before, after) = (sha256_hex(b"[cluster]\n"), sha256_hex(b"[cluster]\nname = \"lab\"\n"));
    assert_eq!(
        edited.to_string(),
        format!("the plan `plan.toml` changed since it was saved (sha256 {} → {})", &before[..12], &after[..12])
    );
}

#[test]
fn override_templates_are_compared() {
    let plan = saved(&[]);
    let embedded = Templates::embedded().expect("embedded templates");
    assert!(plan.check_templates(&embedded).is_ok());
    let mut overridden = plan.clone();
    overridden.template_overrides = vec!["flags.env sha256:10ea".into()];
    assert_eq!(
        overridden.check_templates(&embedded).expect_err("override gone").to_string(),
        "the templates changed since the plan was saved (flags.env sha256:10ea → the embedded ones)"
    );
}

#[test]
fn the_tree_fingerprint_names_the_file_that_moved() {
    let empty = TreeFingerprint::of(&tree(state(&[])));
    assert_eq!(empty, TreeFingerprint { state_sha256: None, damaged: BTreeMap::new() });
    let gone = TreeFingerprint::of(&tree(state(&["cluster/apiserver.crt"])));
    assert_eq!(gone.damaged.get("cluster/apiserver.crt"), Some(&FileStatus::Missing));
    assert_eq!(empty.first_difference(&gone), Some(TreeChange::StateAppeared));
    assert_eq!(gone.first_difference(&empty), Some(TreeChange::StateGone));
    assert_eq!(gone.first_difference(&gone), None);

    let intact = TreeFingerprint { damaged: BTreeMap::new(), ..gone.clone() };
    let deleted = intact.first_difference(&gone).expect("a difference");
    assert_eq!(deleted.to_string(), "`cluster/apiserver.crt` was intact and is deleted now");
    let other = TreeFingerprint { state_sha256: Some("ab".repeat(32)), ..gone.clone() };
    assert!(gone.first_difference(&other).is_some_and(|d| d.to_string().starts_with("its state is another")));
    assert_eq!(
        Stale::Tree(deleted).to_string(),
        "the output tree changed since the plan was saved: `cluster/apiserver.crt` was intact and is deleted now"
    );
}

#[test]
fn changes_are_compared_by_what_they_do_not_by_their_words() {
    let reissue = change("cert/apiserver", Action::Reissue, &["cluster/apiserver.crt"]);
    let plan = saved(std::slice::from_ref(&reissue));
    let reworded = Change { reason: "expires in 39d, renew_before 2920h".into(), index: None, ..reissue.clone() };
    assert!(plan.check_changes(&[reworded]).is_ok());

    let renew = change("cert/etcd-server/solo", Action::Renew, &["hosts/solo/etcd/server.crt"]);
    let due = plan.check_changes(&[reissue.clone(), renew]).expect_err("a renewal came due");
    assert_eq!(
        due.to_string(),
        "the changes decided now are not the saved ones: now also `renew cert/etcd-server/solo` \
         (expires in 40d, renew_before 2920h)"
    );
    let dropped = first_change_difference(std::slice::from_ref(&reissue), &[]).expect("a difference");
    assert_eq!(dropped.to_string(), "`reissue cert/apiserver` is no longer needed");
    let renewed = Change { action: Action::Renew, ..reissue.clone() };
    assert!(matches!(
        first_change_difference(std::slice::from_ref(&reissue), &[renewed]),
        Some(ChangeDifference::Action { saved: Action::Reissue, now: Action::Renew, .. })
    ));
    let keyed = Change { new_key: true, ..reissue.clone() };
    let rekeyed = first_change_difference(std::slice::from_ref(&reissue), &[keyed]).expect("a difference");
    assert_eq!(rekeyed.to_string(), "`reissue cert/apiserver` now makes a new key");
    let elsewhere = Change { writes: vec!["hosts/solo/apiserver.crt".into()], ..reissue.clone() };
    assert!(matches!(
        first_change_difference(std::slice::from_ref(&reissue), &[elsewhere]),
        Some(ChangeDifference::Files { action: Action::Reissue, .. })
    ));
}

//! Staged CA rotation: `rotation = "trust"`, then `"issue"`, then
//! `"retire"` in `[cas.NAME]`, then the line deleted; any host may be one
//! step ahead of any other.
//!
//! `mixed_states_are_safe_*` take an example plan through the steps of each
//! of its CAs in turn, applying every step with one clock and keeping a copy
//! of every tree. For every two adjacent trees, every leaf certificate of
//! either verifies (`openssl verify -x509_strict -purpose ...`, and rustls'
//! webpki verifiers as a TLS peer would) against every
//! trust file of either that a component reads to check it: the CA's
//! certificate paths, which the trust flags of every flag file must name,
//! and the `certificate-authority-data` of every kubeconfig. What the
//! controller-manager signs verifies against them too. Each step has its
//! shape: two certificates in each trust file of the CA during `trust` and
//! `issue`, one otherwise; every leaf of the CA reissued by the new CA with
//! its key kept at `issue`; the old key nowhere after `retire`; nothing
//! changed when the line is deleted.
//!
//! A skipped step is refused by `plan` and `apply`, naming the step that
//! comes next, with nothing written; `--rotate ca/NAME`, the hard cut, is
//! planned with a warning that points at `rotation`.
//!
//! The service-account key pair takes the same steps
//! (`[sets.service-account] rotation`): a token signed with the old private
//! key and one signed with the new one, built here as RS256 JWTs with
//! Python's `cryptography`, both verify against the keys kube-apiserver's
//! `--service-account-key-file` names during `trust` and `issue`, and only
//! the new one from `retire` on.
//!
//! `check PLAN --out DIR` reports a skipped step, and a CA in the last fifth
//! of its validity unless a rotation of it is under way; `plan` ends with the
//! order of the roll-out, and `verify --out DIR` names the step of the tree.

use std::collections::{BTreeMap, BTreeSet};
use std::ffi::OsStr;
use std::fs;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::SystemTime;

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD;
use serde_json::{Value, json};
use sha2::{Digest, Sha256};
use x509_parser::pem::Pem;

use crate::common::applied::{artifacts, files_of_role};
use crate::common::cert::{CertInfo, parse_cert_der, pem_certificates, read_cert};
use crate::common::problems::Problems;
use crate::common::{artifact, certplan, describe, inspect, plan_path, write_plan};

/// The clock of every apply and plan, and the time the trees are verified at.
const T0: &str = "2026-01-01T00:00:00Z";

/// The steps of a rotation, in order, with the line `[cas.NAME]` holds at
/// each (`None`: no `rotation` line).
const STEPS: [(&str, Option<&str>); 5] = [
    ("before", None),
    ("trust", Some("trust")),
    ("issue", Some("issue")),
    ("retire", Some("retire")),
    ("removed", None),
];
const BEFORE: usize = 0;
const TRUST: usize = 1;
const ISSUE: usize = 2;
const RETIRE: usize = 3;
const REMOVED: usize = 4;

/// The flags with which a component reads the CAs it checks peers with.
const TRUST_FLAGS: [&str; 7] = [
    "--client-ca-file",
    "--trusted-ca-file",
    "--peer-trusted-ca-file",
    "--etcd-cafile",
    "--kubelet-certificate-authority",
    "--requestheader-client-ca-file",
    "--root-ca-file",
];

/// The `openssl verify -purpose` values a leaf is checked for.
const PURPOSES: [&str; 2] = ["sslserver", "sslclient"];

/// Where certplan keeps its own bookkeeping in a tree.
const BOOKKEEPING: &str = ".certplan/";

/// The table whose `rotation` line rotates the service-account key pair.
const SA_TABLE: &str = "[sets.service-account]";

/// Seconds in a day.
const DAY: i64 = 86_400;

#[test]
fn mixed_states_are_safe_classic() {
    mixed_states_are_safe("classic");
}

#[test]
fn mixed_states_are_safe_kubeadm() {
    mixed_states_are_safe("kubeadm");
}

#[test]
fn skipped_steps_are_refused_with_nothing_written() {
    let work = Work::new("kubeadm");
    let ca = "etcd";
    // A tree without a rotation: `trust` comes first.
    work.expect_refused(ca, Some("issue"), "trust");
    work.expect_refused(ca, Some("retire"), "trust");
    work.step(ca, Some("trust"));
    work.expect_refused(ca, Some("retire"), "issue");
    work.expect_refused(ca, None, "issue");
    // Refusals left the tree in its step.
    work.set_rotation(ca, Some("trust"));
    work.expect_nothing_pending("`rotation = \"trust\"` again, after refused skips");
    work.step(ca, Some("issue"));
    work.expect_refused(ca, None, "retire");
}

#[test]
fn hard_cut_rotate_warns() {
    let work = Work::new("kubeadm");
    for name in ca_names(&work.source) {
        let id = format!("ca/{name}");
        let output = work.command("plan").args(["--rotate", id.as_str()]).output().expect("run certplan plan");
        assert!(output.status.success(), "`plan --rotate {id}` fails:\n{}", describe(&output));
        let warned = [&output.stderr, &output.stdout]
            .into_iter()
            .any(|stream| warns_of_rotation(&String::from_utf8_lossy(stream)));
        assert!(
            warned,
            "`plan --rotate {id}` (the hard cut) warns that trust breaks until every host has the new tree, \
             and points at `rotation`:\n{}",
            describe(&output)
        );
    }
}

#[test]
#[ignore = "needs python3 with cryptography: run tests/run.sh"]
fn service_account_tokens_verify_through_the_rotation() {
    let work = Work::new("kubeadm");
    let doc = inspect(&work.plan, &work.out);
    let keypair = artifact(&doc, "keypair/service-account");
    assert_eq!(
        keypair["key"], "rsa-2048",
        "the kubeadm plan's service-account key pair is RSA, which the RS256 tokens of this test need"
    );
    // The hosts with a copy of the private key: the control planes, where
    // kube-apiserver and kube-controller-manager run.
    let key_files = files_of_role(keypair, "key");
    let hosts: Vec<String> =
        key_files.iter().filter_map(|rel| rel.strip_prefix("hosts/")?.split('/').next()).map(str::to_string).collect();
    assert!(
        hosts.iter().any(|host| host == "cp1"),
        "inspect lists no copy of the service-account key on cp1: {}",
        keypair["files"]
    );
    let key_of = |host: &str| -> String {
        let prefix = format!("hosts/{host}/");
        key_files.iter().find(|rel| rel.starts_with(&prefix)).cloned().expect("a key file on each of its hosts")
    };

    let mut snaps: Vec<(&str, PathBuf)> = Vec::new();
    for (index, (step, line)) in STEPS.into_iter().enumerate() {
        if index != BEFORE {
            // Applies, then `plan --detailed-exitcode` must exit 0.
            work.step_of(SA_TABLE, line);
        }
        let dir = work.dir.path().join("snapshots").join(format!("service-account-{index}-{step}"));
        copy_tree(&work.out, &dir);
        snaps.push((step, dir));
    }

    // The old private key is `sa.key` before the rotation; the new one is
    // `sa-new.key` at `trust`, and `sa.key` again from `retire` on.
    let cp1_key = key_of("cp1");
    let new_rel = tagged(&cp1_key, "new");
    let old_key_file = snaps[BEFORE].1.join(&cp1_key);
    let new_key_file = snaps[TRUST].1.join(&new_rel);
    let old_key = fs::read(&old_key_file).expect("read the service-account key before the rotation");
    let new_key = fs::read(&new_key_file)
        .unwrap_or_else(|e| panic!("the trust step has no new service-account key at `{new_rel}`: {e}"));
    assert_ne!(old_key, new_key, "the trust step's `{new_rel}` is the key of before the rotation");
    assert_eq!(
        read_opt(&snaps[RETIRE].1.join(&cp1_key)).as_ref(),
        Some(&new_key),
        "after retire, `{cp1_key}` is the new key of the trust step's `{new_rel}`"
    );
    let old_keys: BTreeSet<Vec<u8>> = hosts
        .iter()
        .map(|host| {
            fs::read(snaps[BEFORE].1.join(key_of(host.as_str()))).expect("read a copy of the service-account key")
        })
        .collect();

    let issuer = component_flags(&snaps[BEFORE].1, "cp1", "kube-apiserver")
        .remove("--service-account-issuer")
        .expect("kube-apiserver on cp1 has --service-account-issuer");
    let tokens = Tokens::new(work.dir.path());
    let old_token = tokens.sign(&old_key_file, &issuer);
    let new_token = tokens.sign(&new_key_file, &issuer);

    let mut p = Problems::new("the rotation of the kubeadm plan's service-account key pair");
    let mut trust_file: BTreeMap<&str, String> = BTreeMap::new();
    for (index, (step, dir)) in snaps.iter().enumerate() {
        let rotating = index == TRUST || index == ISSUE;
        let (signing_key, signing) = if index >= ISSUE { (&new_key, "new") } else { (&old_key, "old") };
        for host in &hosts {
            let at = format!("{step}, {host}");
            let apiserver = component_flags(dir, host, "kube-apiserver");
            let controller_manager = component_flags(dir, host, "kube-controller-manager");

            // What kube-apiserver verifies tokens with: one public key at
            // rest, the old and the new one while the pair rotates.
            let Some(keys_value) = apiserver.get("--service-account-key-file") else {
                p.add(format!("{at}: kube-apiserver has no --service-account-key-file"));
                continue;
            };
            let first = &*trust_file.entry(host.as_str()).or_insert_with(|| keys_value.clone());
            p.check(first == keys_value, || {
                format!("{at}: --service-account-key-file={keys_value}, not {first} as before the rotation")
            });
            let keys_path = on_host(dir, host, keys_value);
            let labels = read_opt(&keys_path).map_or_else(Vec::new, |bytes| pem_labels(&bytes));
            let want = if rotating { 2 } else { 1 };
            p.check(labels.len() == want && labels.iter().all(|label| label == "PUBLIC KEY"), || {
                format!("{at}: `{keys_value}` holds the PEM blocks {labels:?}, not {want} PUBLIC KEY block(s)")
            });
            let (loaded, verified) = tokens.verify(&keys_path, &[old_token.as_str(), new_token.as_str()]);
            p.check(loaded == want, || {
                format!("{at}: `{keys_value}` gives kube-apiserver {loaded} key(s), not {want}")
            });
            for (token, signed_with, accepted, expected) in [
                ("old", &old_key_file, verified[0], index <= ISSUE),
                ("new", &new_key_file, verified[1], index >= TRUST),
            ] {
                p.check(accepted == expected, || {
                    format!(
                        "{at}: a token signed with the {token} key (`{}`) {} against `{keys_value}`, which should {}",
                        relative(work.dir.path(), signed_with),
                        if accepted { "verifies" } else { "does not verify" },
                        if expected { "accept it" } else { "refuse it" }
                    )
                });
            }

            // What tokens are signed with: the old key up to `trust`, the
            // new one from `issue` on.
            for (component, flags, flag) in [
                ("kube-apiserver", &apiserver, "--service-account-signing-key-file"),
                ("kube-controller-manager", &controller_manager, "--service-account-private-key-file"),
            ] {
                let Some(value) = flags.get(flag) else {
                    p.add(format!("{at}: {component} has no {flag}"));
                    continue;
                };
                p.check(read_opt(&on_host(dir, host, value)).as_ref() == Some(signing_key), || {
                    format!("{at}: {component} {flag}={value} is not the {signing} private key")
                });
            }

            // The key files of the step.
            let host_key = key_of(host.as_str());
            let named = if rotating {
                vec![(tagged(&host_key, "old"), &old_key, "old"), (tagged(&host_key, "new"), &new_key, "new")]
            } else {
                vec![(host_key.clone(), signing_key, signing)]
            };
            for (rel, key, which) in named {
                p.check(read_opt(&dir.join(&rel)).as_ref() == Some(key), || {
                    format!("{step}: `{rel}` is not the {which} private key")
                });
            }
            if rotating {
                p.check(!dir.join(&host_key).exists(), || {
                    format!("{step}: `{host_key}` is still there; while the pair rotates its keys are -old and -new")
                });
            }
        }
    }

    // After retire: the old private key nowhere in the tree, no -old or -new
    // file left, and deleting the line changes nothing.
    for (step, dir) in &snaps[RETIRE..] {
        for path in files_under(dir) {
            let rel = relative(dir, &path);
            let bytes = fs::read(&path).expect("read a file of the tree");
            for key in &old_keys {
                p.check(!holds_key(&bytes, key), || format!("{step}: `{rel}` holds the old service-account key"));
            }
            let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            p.check(!["-old.", "-new."].into_iter().any(|tag| file_name.contains(tag)), || {
                format!("{step}: `{rel}` is left over from the rotation")
            });
        }
    }
    let (kept, now) = (tree_bytes(&snaps[RETIRE].1), tree_bytes(&snaps[REMOVED].1));
    let changed: Vec<&String> = kept.keys().chain(now.keys()).filter(|rel| kept.get(*rel) != now.get(*rel)).collect();
    p.check(changed.is_empty(), || {
        format!("deleting the rotation line of `{SA_TABLE}` after retire changed {changed:?}")
    });
    p.finish();
}

#[test]
fn check_out_reports_a_skipped_step_and_a_ca_due_for_rotation() {
    // A skipped step: the tree has no rotation, the plan asks for `issue`.
    let work = Work::new("kubeadm");
    work.set_rotation("etcd", Some("issue"));
    let (line, column) = position_of(&work.plan, "rotation = \"issue\"", "\"issue\"");
    let stamped = stamps(&work.out);
    let output = work.check(T0, &["--format", "json"]);
    assert_eq!(
        output.status.code(),
        Some(1),
        "`check --out` with `rotation = \"issue\"` on a tree without a rotation exits 1:\n{}",
        describe(&output)
    );
    let found = diagnostics(&output);
    let skip = found.iter().find(|d| d["rule"] == "rotation-skips-step").unwrap_or_else(|| {
        panic!("`check --out --format json` reports no rotation-skips-step:\n{}", describe(&output))
    });
    assert_eq!(skip["severity"], "error", "rotation-skips-step is an error: {skip}");
    assert_eq!(
        (skip["line"].as_u64(), skip["column"].as_u64()),
        (Some(line), Some(column)),
        "rotation-skips-step points at the value of the `rotation` line (line {line}, column {column}): {skip}"
    );
    assert!(
        skip["message"].as_str().is_some_and(|m| m.contains("rotation = \"trust\"")),
        "rotation-skips-step names the step that comes next, `rotation = \"trust\"`: {skip}"
    );
    let text = work.check(T0, &[]);
    assert!(
        text.status.code() == Some(1) && String::from_utf8_lossy(&text.stderr).contains("rotation-skips-step"),
        "`check --out` (text) exits 1 and names rotation-skips-step:\n{}",
        describe(&text)
    );
    let alone = certplan().arg("check").arg(&work.plan).env("NO_COLOR", "1").output().expect("run certplan check");
    assert_eq!(
        alone.status.code(),
        Some(0),
        "`check` without --out cannot know the tree's step, and passes:\n{}",
        describe(&alone)
    );
    assert!(stamps(&work.out) == stamped, "`check --out` wrote to the tree");

    // A CA in the last fifth of its validity.
    let work = Work::new("classic");
    let cas = ca_files(&inspect(&work.plan, &work.out));
    assert_eq!(cas.len(), 1, "the classic plan has one CA");
    let (name, files) = cas.iter().next().expect("one CA");
    let ca = read_cert(&work.out.join(&files.cluster_cert));
    let window = ca.not_before + (ca.not_after - ca.not_before) * 4 / 5;
    let (early, due) = (rfc3339(window - DAY), rfc3339(window + DAY));
    let expires = rfc3339(ca.not_after);
    let expiry_date = &expires[..10];
    let (header_line, _) = position_of(&work.plan, &ca_table(name), name);
    let denials: [&[&str]; 2] = [&[], &["--deny", "warnings"]];
    for deny in denials {
        let output = work.check(&early, &[&["--format", "json"][..], deny].concat());
        assert!(
            output.status.code() == Some(0) && diagnostics(&output).is_empty(),
            "`check --out --now {early} {}` (a day before the last fifth of `ca/{name}`, which runs from {} to \
             {expires}) reports nothing:\n{}",
            deny.join(" "),
            rfc3339(ca.not_before),
            describe(&output)
        );
    }
    let output = work.check(&due, &["--format", "json"]);
    assert_eq!(output.status.code(), Some(0), "a warning alone fails no check:\n{}", describe(&output));
    let found = diagnostics(&output);
    let renewal = found.iter().find(|d| d["rule"] == "ca-renewal-due").unwrap_or_else(|| {
        panic!(
            "`check --out --now {due}` (a day into the last fifth of `ca/{name}`) reports no ca-renewal-due:\n{}",
            describe(&output)
        )
    });
    assert_eq!(renewal["severity"], "warning", "ca-renewal-due is a warning: {renewal}");
    assert_eq!(renewal["line"].as_u64(), Some(header_line), "ca-renewal-due points at `[cas.{name}]`: {renewal}");
    assert!(
        renewal["message"].as_str().is_some_and(|m| m.contains(expiry_date)),
        "ca-renewal-due gives the date the CA expires, {expiry_date}, by which `retire` must be rolled out: {renewal}"
    );
    assert!(
        found.iter().all(|d| d["severity"] == "warning"),
        "`check --out --now {due}` reports nothing but warnings: {}",
        Value::Array(found.clone())
    );
    let denied = work.check(&due, &["--deny", "warnings"]);
    assert!(
        denied.status.code() == Some(1) && String::from_utf8_lossy(&denied.stderr).contains("ca-renewal-due"),
        "with --deny warnings, ca-renewal-due fails the check (exit 1):\n{}",
        describe(&denied)
    );
    // With a rotation of the CA under way, there is nothing to warn of.
    work.step(name, Some("trust"));
    let output = work.check(&due, &["--format", "json", "--deny", "warnings"]);
    assert!(
        output.status.code() == Some(0) && diagnostics(&output).is_empty(),
        "with `rotation = \"trust\"` applied to `[cas.{name}]`, `check --out --now {due}` reports nothing:\n{}",
        describe(&output)
    );
}

#[test]
fn plan_names_the_rollout_of_a_rotation_step() {
    let work = Work::new("kubeadm");
    work.set_rotation("etcd", Some("trust"));
    let output = work.command("plan").output().expect("run certplan plan");
    assert!(
        output.status.success(),
        "`plan` with `rotation = \"trust\"` in `[cas.etcd]` fails:\n{}",
        describe(&output)
    );
    let text = String::from_utf8_lossy(&output.stdout);
    let lines: Vec<&str> = text.lines().collect();
    let find = |what: &str, wanted: &dyn Fn(&str) -> bool| {
        lines
            .iter()
            .position(|&row| wanted(row))
            .unwrap_or_else(|| panic!("`plan` with `rotation = \"trust\"` in `[cas.etcd]` prints no {what}:\n{text}"))
    };
    let start = find("\"Roll out host by host\"", &|row: &str| row.contains("Roll out host by host"));
    let etcd = find("etcd wave", &|row: &str| wave(row) == Some("etcd"));
    let apiserver = find("kube-apiserver wave", &|row: &str| wave(row) == Some("kube-apiserver"));
    assert!(
        start < etcd && etcd < apiserver,
        "the roll-out lists the etcd members, then the API servers (lines {start}, {etcd}, {apiserver}):\n{text}"
    );
    assert!(lines[etcd].contains("one member at a time"), "the etcd wave is one member at a time:\n{text}");
    let step = find("\"Rotation of `[cas.etcd]`, step `trust`\" line", &|row: &str| {
        row.starts_with("Rotation of `[cas.etcd]`, step `trust`")
    });
    assert!(
        lines[step].contains("every host") && lines[step].contains("rotation = \"issue\""),
        "the rotation line says every host must have the step before `rotation = \"issue\"`: {}",
        lines[step]
    );

    let output = work.command("plan").args(["--format", "json"]).output().expect("run certplan plan");
    assert!(output.status.success(), "`plan --format json` fails:\n{}", describe(&output));
    let doc: Value = serde_json::from_slice(&output.stdout).expect("`plan --format json` prints JSON");
    let waves = doc["rollout"]["waves"].as_array().unwrap_or_else(|| panic!("no rollout.waves in {doc}"));
    assert_eq!(waves.first().map(|w| &w["components"]), Some(&json!(["etcd"])), "the first wave is etcd: {doc}");
    assert_eq!(waves[0]["one_at_a_time"].as_bool(), Some(true), "etcd members go one at a time: {}", waves[0]);
    assert!(
        waves[1..].iter().any(|w| w["components"].as_array().is_some_and(|c| c.contains(&json!("kube-apiserver")))),
        "a later wave restarts the API servers: {doc}"
    );

    // `diff` of the plan before and after the edit, as a reviewer sees it.
    let before = work.dir.path().join("before.toml");
    std::fs::write(&before, &work.source).expect("write the plan without rotation");
    let output =
        certplan().args(["diff", "--format", "json"]).arg(&before).arg(&work.plan).output().expect("run certplan diff");
    let doc: Value = serde_json::from_slice(&output.stdout).expect("`diff --format json` prints JSON");
    assert!(
        doc["notes"].as_array().is_some_and(|notes| notes.iter().any(|n| n
            .as_str()
            .is_some_and(|n| n.contains("staged rotation") && n.contains("etcd members one at a time")))),
        "`diff` of the `trust` edit notes the rollout order: {doc}"
    );

    work.step("etcd", Some("trust"));
    let output = work.command("verify").output().expect("run certplan verify");
    let printed = format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
    assert!(
        output.status.success()
            && printed.lines().any(|row| row.starts_with("rotation of `[cas.etcd]`: the tree is at step `trust`")),
        "`verify --out` after applying `trust` says the tree is at step `trust`:\n{}",
        describe(&output)
    );
}

/// Takes every CA of an example plan through its rotation, one after the
/// other in one tree, and checks each step and each two adjacent steps.
fn mixed_states_are_safe(plan: &str) {
    let work = Work::new(plan);
    let cas = ca_files(&inspect(&work.plan, &work.out));
    let declared = ca_names(&work.source);
    assert_eq!(cas.keys().cloned().collect::<Vec<_>>(), declared, "inspect lists the CAs the {plan} plan declares");
    let scratch = work.dir.path().join("extracted");
    let mut p = Problems::new(format!("staged rotation of each CA of the {plan} plan in turn"));
    // (trust file content, purpose, leaf) already verified: adjacent pairs share a tree.
    let mut verified = BTreeSet::new();
    for name in cas.keys() {
        let mut snaps = Vec::new();
        for (index, (step, line)) in STEPS.into_iter().enumerate() {
            if index != BEFORE {
                work.step(name, line);
            }
            snaps.push(work.snapshot(name, index, step));
        }
        let facts: Vec<Facts> = snaps.iter().map(|snap| facts_of(snap, &cas, &scratch, &mut p)).collect();
        // Leaves of either tree against trust files of either: one check
        // covers both orders of the pair (A ahead of B, and B ahead of A).
        for pair in facts.windows(2) {
            check_pair(&pair[0], &pair[1], &mut verified, &mut p);
        }
        check_steps(name, &cas[name], &snaps, &facts, &mut p);
    }
    p.finish();
}

// ---------------------------------------------------------------------------
// Trees: an applied base shared by the tests of a plan, copies of it, and
// snapshots of each step.

/// An example plan applied once at [`T0`] and held in memory: every test of
/// that plan starts from a copy.
struct Base {
    source: String,
    /// Every directory, relative to the tree, with its mode.
    dirs: Vec<(PathBuf, u32)>,
    files: Vec<BaseFile>,
}

/// A file of a [`Base`], with what makes a copy of it the same to certplan.
struct BaseFile {
    rel: PathBuf,
    bytes: Vec<u8>,
    mode: u32,
    mtime: SystemTime,
}

/// The base tree of `plan`, applied by whichever test asks first.
fn base(plan: &str) -> &'static Base {
    static CLASSIC: OnceLock<Base> = OnceLock::new();
    static KUBEADM: OnceLock<Base> = OnceLock::new();
    let cell = match plan {
        "classic" => &CLASSIC,
        "kubeadm" => &KUBEADM,
        other => panic!("no base tree for the {other} plan"),
    };
    cell.get_or_init(|| {
        let dir = tempfile::tempdir().expect("create temp dir");
        let source = fs::read_to_string(plan_path(plan)).expect("read the example plan");
        let plan_file = write_plan(dir.path(), &source);
        let out = dir.path().join("out");
        apply_ok(&plan_file, &out, &format!("the {plan} plan as written"));
        let mut dirs = Vec::new();
        let mut files = Vec::new();
        read_base(&out, &out, &mut dirs, &mut files);
        Base { source, dirs, files }
    })
}

fn read_base(root: &Path, dir: &Path, dirs: &mut Vec<(PathBuf, u32)>, files: &mut Vec<BaseFile>) {
    let rel = |path: &Path| path.strip_prefix(root).expect("under the tree").to_path_buf();
    let meta = fs::symlink_metadata(dir).expect("stat a directory of the tree");
    dirs.push((rel(dir), meta.permissions().mode() & 0o7777));
    for entry in fs::read_dir(dir).expect("read a directory of the tree") {
        let path = entry.expect("directory entry").path();
        let meta = fs::symlink_metadata(&path).expect("stat a file of the tree");
        if meta.is_dir() {
            read_base(root, &path, dirs, files);
        } else {
            let bytes = fs::read(&path).expect("read a file of the tree");
            files.push(BaseFile {
                rel: rel(&path),
                bytes,
                mode: meta.permissions().mode() & 0o7777,
                mtime: meta.modified().expect("mtime"),
            });
        }
    }
}

/// A copy of a base tree and its plan, in a temporary directory of its own.
struct Work {
    dir: tempfile::TempDir,
    plan: PathBuf,
    out: PathBuf,
    /// The plan as written, without a rotation line.
    source: String,
}

impl Work {
    /// A copy of the base tree of `plan` (bytes, modes and mtimes), which
    /// must have nothing to do.
    fn new(plan: &str) -> Self {
        let base = base(plan);
        let dir = tempfile::tempdir().expect("create temp dir");
        let plan_file = write_plan(dir.path(), &base.source);
        let out = dir.path().join("out");
        for file in &base.files {
            let path = out.join(&file.rel);
            fs::create_dir_all(path.parent().expect("a file has a parent")).expect("create a directory");
            fs::write(&path, &file.bytes).expect("copy a file of the base tree");
            let handle = fs::File::options().write(true).open(&path).expect("open the copy");
            handle.set_modified(file.mtime).expect("set the mtime of the copy");
            drop(handle);
            fs::set_permissions(path, fs::Permissions::from_mode(file.mode)).expect("set the mode of the copy");
        }
        for (rel, mode) in &base.dirs {
            let path = out.join(rel);
            fs::create_dir_all(&path).expect("create a directory");
            fs::set_permissions(path, fs::Permissions::from_mode(*mode)).expect("set the mode of a directory");
        }
        let work = Work { dir, plan: plan_file, out, source: base.source.clone() };
        work.expect_nothing_pending(&format!("the {plan} plan as written (a copy of the applied base tree)"));
        work
    }

    /// `certplan SUB PLAN --out OUT --now T0`.
    fn command(&self, sub: &str) -> Command {
        let mut command = certplan();
        command.arg(sub).arg(&self.plan).arg("--out").arg(&self.out).args(["--now", T0]).env("NO_COLOR", "1");
        command
    }

    /// Writes the plan with `line` as the `rotation` of `[cas.NAME]`.
    fn set_rotation(&self, ca: &str, line: Option<&str>) {
        self.set_rotation_of(&ca_table(ca), line);
    }

    /// Writes the plan with `line` as the `rotation` of the table whose
    /// header is `table` (`[cas.NAME]`, `[sets.service-account]`).
    fn set_rotation_of(&self, table: &str, line: Option<&str>) {
        fs::write(&self.plan, with_rotation(&self.source, table, line)).expect("write the plan");
    }

    /// Takes `[cas.NAME]` to the step `line`: apply, then nothing pending.
    fn step(&self, ca: &str, line: Option<&str>) {
        self.step_of(&ca_table(ca), line);
    }

    /// Takes the table `table` to the step `line`: apply, then nothing pending.
    fn step_of(&self, table: &str, line: Option<&str>) {
        self.set_rotation_of(table, line);
        let what = asked(table, line);
        apply_ok(&self.plan, &self.out, &what);
        self.expect_nothing_pending(&what);
    }

    /// `certplan check PLAN --out OUT --now NOW ARGS...`.
    fn check(&self, now: &str, args: &[&str]) -> Output {
        certplan()
            .arg("check")
            .arg(&self.plan)
            .arg("--out")
            .arg(&self.out)
            .args(["--now", now])
            .args(args)
            .env("NO_COLOR", "1")
            .output()
            .expect("run certplan check")
    }

    fn expect_nothing_pending(&self, what: &str) {
        let output = self.command("plan").arg("--detailed-exitcode").output().expect("run certplan plan");
        assert_eq!(
            output.status.code(),
            Some(0),
            "with {what} applied, `plan --detailed-exitcode` has nothing to do (exit 0):\n{}",
            describe(&output)
        );
    }

    /// With `line` as the rotation of `[cas.NAME]`, a step skipped: `plan`
    /// and `apply` exit 1, name `rotation = "NEXT"`, and write nothing.
    fn expect_refused(&self, ca: &str, line: Option<&str>, next: &str) {
        self.set_rotation(ca, line);
        let what = asked(&ca_table(ca), line);
        let before = stamps(&self.out);
        for (sub, extra) in [("plan", &["--detailed-exitcode"][..]), ("apply", &[][..])] {
            let output = self.command(sub).args(extra).output().expect("run certplan");
            let stderr = String::from_utf8_lossy(&output.stderr);
            assert_eq!(
                output.status.code(),
                Some(1),
                "`{sub}` with {what} skips a step and is refused (exit 1):\n{}",
                describe(&output)
            );
            assert!(
                stderr.contains("rotation") && stderr.contains(&format!("\"{next}\"")),
                "`{sub}` with {what}: the error names the step that comes next, `rotation = \"{next}\"`:\n{}",
                describe(&output)
            );
            let after = stamps(&self.out);
            let touched: Vec<&String> =
                before.keys().chain(after.keys()).filter(|rel| before.get(*rel) != after.get(*rel)).collect();
            assert!(touched.is_empty(), "`{sub}` with {what} is refused, yet it touched {touched:?}");
        }
    }

    /// A copy of the tree as it is now, with its inspect document.
    fn snapshot(&self, ca: &str, index: usize, step: &'static str) -> Snap {
        let dir = self.dir.path().join("snapshots").join(format!("{ca}-{index}-{step}"));
        copy_tree(&self.out, &dir);
        Snap { label: format!("{ca}@{step}"), step, dir, doc: inspect(&self.plan, &self.out) }
    }
}

/// The header of the table of `[cas.NAME]`.
fn ca_table(ca: &str) -> String {
    format!("[cas.{ca}]")
}

/// How a test names the rotation line it wrote in the table `table`.
fn asked(table: &str, line: Option<&str>) -> String {
    line.map_or_else(
        || format!("no `rotation` line in `{table}`"),
        |step| format!("`rotation = \"{step}\"` in `{table}`"),
    )
}

/// `certplan apply PLAN --out OUT --now T0 --quiet`, which must succeed.
fn apply_ok(plan: &Path, out: &Path, what: &str) {
    let output = certplan()
        .arg("apply")
        .arg(plan)
        .arg("--out")
        .arg(out)
        .args(["--now", T0, "--quiet"])
        .env("NO_COLOR", "1")
        .output()
        .expect("run certplan apply");
    assert!(output.status.success(), "apply with {what} fails:\n{}", describe(&output));
}

/// The plan text with `rotation = "STEP"` right after the table header
/// `header` (nothing with `None`).
pub(crate) fn with_rotation(source: &str, header: &str, line: Option<&str>) -> String {
    let mut text = String::new();
    let mut found = false;
    for row in source.lines() {
        text.push_str(row);
        text.push('\n');
        if row.trim() == header {
            found = true;
            if let Some(step) = line {
                text.push_str(&format!("rotation = \"{step}\"\n"));
            }
        }
    }
    assert!(found, "the plan has no `{header}` table");
    text
}

/// The names of the `[cas.NAME]` tables of a plan, sorted.
fn ca_names(source: &str) -> Vec<String> {
    let mut names: Vec<String> = source
        .lines()
        .filter_map(|row| row.trim().strip_prefix("[cas.")?.strip_suffix(']').map(str::to_string))
        .collect();
    names.sort();
    names
}

/// Whether `text` warns, and mentions `rotation` from its first warning on
/// (not counting the `rotation asked for` reasons `plan --rotate` gives
/// each change).
fn warns_of_rotation(text: &str) -> bool {
    let Some(start) = text.to_ascii_lowercase().find("warning") else {
        return false;
    };
    text[start..].lines().filter(|row| !row.contains("rotation asked for")).any(|row| row.contains("rotation"))
}

/// A copy of one step's tree.
struct Snap {
    /// `NAME@STEP`, for messages.
    label: String,
    step: &'static str,
    dir: PathBuf,
    /// `inspect --format json` of the tree, with the plan of its step.
    doc: Value,
}

fn copy_tree(from: &Path, to: &Path) {
    fs::create_dir_all(to).expect("create a snapshot directory");
    for entry in fs::read_dir(from).expect("read a directory of the tree") {
        let entry = entry.expect("directory entry");
        let target = to.join(entry.file_name());
        if entry.file_type().expect("file type").is_dir() {
            copy_tree(&entry.path(), &target);
        } else {
            fs::copy(entry.path(), target).expect("copy a file of the tree");
        }
    }
}

/// Every regular file under `root`, sorted.
fn files_under(root: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
        for entry in fs::read_dir(dir).expect("read a directory") {
            let path = entry.expect("directory entry").path();
            if fs::symlink_metadata(&path).expect("stat").is_dir() {
                walk(&path, into);
            } else {
                into.push(path);
            }
        }
    }
    let mut files = Vec::new();
    if root.is_dir() {
        walk(root, &mut files);
    }
    files.sort();
    files
}

fn relative(root: &Path, path: &Path) -> String {
    path.strip_prefix(root).expect("under the tree").to_string_lossy().into_owned()
}

/// Every file and directory under `root` (bookkeeping included): content
/// hash (`None` for a directory) and mtime.
fn stamps(root: &Path) -> BTreeMap<String, (Option<String>, SystemTime)> {
    fn walk(root: &Path, path: &Path, into: &mut BTreeMap<String, (Option<String>, SystemTime)>) {
        let meta = fs::symlink_metadata(path).expect("stat");
        let hash = (!meta.is_dir()).then(|| sha(&fs::read(path).expect("read a file of the tree")));
        into.insert(relative(root, path), (hash, meta.modified().expect("mtime")));
        if meta.is_dir() {
            for entry in fs::read_dir(path).expect("read a directory") {
                walk(root, &entry.expect("directory entry").path(), into);
            }
        }
    }
    let mut all = BTreeMap::new();
    walk(root, root, &mut all);
    all
}

/// Every file's bytes outside certplan's bookkeeping.
fn tree_bytes(root: &Path) -> BTreeMap<String, Vec<u8>> {
    files_under(root)
        .into_iter()
        .map(|path| (relative(root, &path), path))
        .filter(|(rel, _)| !rel.starts_with(BOOKKEEPING))
        .map(|(rel, path)| {
            let bytes = fs::read(path).expect("read a file of the tree");
            (rel, bytes)
        })
        .collect()
}

fn sha(bytes: &[u8]) -> String {
    hex::encode(Sha256::digest(bytes))
}

fn read_opt(path: &Path) -> Option<Vec<u8>> {
    fs::read(path).ok()
}

/// The DER of every certificate in a PEM file (none when it is missing).
fn certs_in(path: &Path) -> Vec<Vec<u8>> {
    read_opt(path).map_or_else(Vec::new, |bytes| pem_certificates(&bytes))
}

fn first_cert(path: &Path) -> Option<Vec<u8>> {
    certs_in(path).into_iter().next()
}

fn is_ca(info: &CertInfo) -> bool {
    info.basic_constraints.is_some_and(|(_, ca)| ca)
}

/// The `openssl verify` purposes of a leaf: `sslserver` for `serverAuth`,
/// `sslclient` for `clientAuth`.
fn purposes_of(info: &CertInfo) -> Vec<&'static str> {
    let mut out = Vec::new();
    if info.has_eku("serverAuth") {
        out.push("sslserver");
    }
    if info.has_eku("clientAuth") {
        out.push("sslclient");
    }
    out
}

// ---------------------------------------------------------------------------
// What a tree holds: its leaves, the files its components trust, and the CA
// the controller-manager signs with.

/// Where a CA's files are in a tree at rest (no rotation under way).
struct CaFiles {
    /// Every copy of its certificate, on hosts and in `cluster/`: where
    /// components read its trust, and where the design keeps the bundle.
    certs: Vec<String>,
    /// Every copy of its key.
    keys: Vec<String>,
    cluster_cert: String,
    cluster_key: String,
}

impl CaFiles {
    /// The copy in `cluster/` of the CA the design names `TAG` during a
    /// rotation (`old`, `new`): `STEM-TAG.crt` and `STEM-TAG.key`, or
    /// `STEM-TAG.pem` and `STEM-TAG-key.pem` in the cfssl layout.
    fn tagged(&self, tag: &str) -> (String, String) {
        let (stem, extension) = self.cluster_cert.rsplit_once('.').expect("a certificate file has an extension");
        let key_suffix = self.cluster_key.strip_prefix(stem).unwrap_or_else(|| {
            panic!("assumed: the CA key `{}` is named after its certificate `{}`", self.cluster_key, self.cluster_cert)
        });
        (format!("{stem}-{tag}.{extension}"), format!("{stem}-{tag}{key_suffix}"))
    }
}

/// The files of every CA of an inspect document of a tree at rest, by name.
fn ca_files(doc: &Value) -> BTreeMap<String, CaFiles> {
    artifacts(doc)
        .into_iter()
        .filter(|a| a["kind"] == "ca")
        .map(|a| {
            let id = a["id"].as_str().expect("an artifact has an id");
            let certs = files_of_role(a, "cert");
            let keys = files_of_role(a, "key");
            let in_cluster = |list: &[String]| {
                list.iter()
                    .find(|rel| rel.starts_with("cluster/"))
                    .cloned()
                    .unwrap_or_else(|| panic!("{id} has no copy under cluster/: {}", a["files"]))
            };
            let files = CaFiles { cluster_cert: in_cluster(&certs), cluster_key: in_cluster(&keys), certs, keys };
            (id.strip_prefix("ca/").unwrap_or(id).to_string(), files)
        })
        .collect()
}

/// The `[cas.NAME]` an issuer of inspect names: `ca/NAME` or `ca/NAME/next`.
fn ca_name(issuer: &str) -> Option<String> {
    let rest = issuer.strip_prefix("ca/")?;
    let name = rest.strip_suffix("/next").unwrap_or(rest);
    (!name.contains('/')).then(|| name.to_string())
}

/// A leaf certificate file of a tree.
struct Leaf {
    /// The `[cas.NAME]` it is issued under.
    ca: String,
    rel: String,
    path: PathBuf,
    der: Vec<u8>,
    purposes: Vec<&'static str>,
    what: String,
}

/// A file a component of a tree reads to check the leaves of a CA.
struct TrustFile {
    ca: String,
    /// On disk (kubeconfig CA data is extracted into a file of its own).
    path: PathBuf,
    ders: Vec<Vec<u8>>,
    what: String,
}

/// The CA certificate a controller-manager signs with.
struct Signer {
    /// The `[cas.NAME]` whose trust files of the same tree hold it.
    ca: Option<String>,
    der: Vec<u8>,
    what: String,
}

struct Facts {
    label: String,
    leaves: Vec<Leaf>,
    trust: Vec<TrustFile>,
    signers: Vec<Signer>,
}

/// Reads the leaves, trust files and signers of a snapshot, recording what
/// is wrong with them on their own.
fn facts_of(snap: &Snap, cas: &BTreeMap<String, CaFiles>, scratch: &Path, p: &mut Problems) -> Facts {
    let label = &snap.label;

    // Leaves: the certificate files inspect lists, under the CA of their issuer.
    let mut leaves = Vec::new();
    for a in artifacts(&snap.doc).into_iter().filter(|a| a["kind"] == "cert") {
        let id = a["id"].as_str().unwrap_or("?");
        let Some(ca) = a["issuer"].as_str().and_then(ca_name) else {
            p.add(format!(
                "{label}: inspect gives {id} the issuer {}, neither `ca/NAME` nor `ca/NAME/next`",
                a["issuer"]
            ));
            continue;
        };
        for rel in files_of_role(a, "cert") {
            let path = snap.dir.join(&rel);
            let Some(der) = first_cert(&path) else {
                p.add(format!("{label}: `{rel}` ({id}) holds no certificate"));
                continue;
            };
            let purposes = purposes_of(&parse_cert_der(&path, &der));
            p.check(!purposes.is_empty(), || format!("{label}: `{rel}` ({id}) has neither serverAuth nor clientAuth"));
            leaves.push(Leaf {
                ca: ca.clone(),
                what: format!("`{rel}` ({id}) of the {label} tree"),
                rel,
                path,
                der,
                purposes,
            });
        }
    }
    p.check(!leaves.is_empty(), || format!("{label}: inspect lists no leaf certificate"));
    let listed: BTreeSet<&str> = leaves.iter().map(|leaf| leaf.rel.as_str()).collect();
    for path in files_under(&snap.dir) {
        let rel = relative(&snap.dir, &path);
        if rel.starts_with(BOOKKEEPING) || listed.contains(rel.as_str()) {
            continue;
        }
        let holds_leaf = certs_in(&path).iter().any(|der| !is_ca(&parse_cert_der(&path, der)));
        p.check(!holds_leaf, || format!("{label}: `{rel}` holds a leaf certificate inspect lists for no artifact"));
    }

    // Trust files: every copy of each CA's certificate.
    let mut trust = Vec::new();
    for (name, files) in cas {
        for rel in &files.certs {
            let path = snap.dir.join(rel);
            if path.is_file() {
                trust.push(TrustFile {
                    ca: name.clone(),
                    ders: certs_in(&path),
                    what: format!("`{rel}` of the {label} tree"),
                    path,
                });
            } else {
                p.add(format!("{label}: `{rel}`, where components read the trust of `ca/{name}`, is missing"));
            }
        }
    }

    // The flag files: every trust flag names one of those copies; the
    // controller-manager's signing files, when it signs.
    let mut trust_flags = 0;
    let mut signing = Vec::new();
    for path in files_under(&snap.dir.join("hosts")) {
        let rel = relative(&snap.dir, &path);
        let Some(host) = rel.split('/').nth(1) else {
            continue;
        };
        if !rel.ends_with(".env") {
            continue;
        }
        let text = fs::read_to_string(path).expect("read a flag file");
        let mut cert = None;
        let mut key = None;
        for (flag, value) in flag_values(&text) {
            let on_host = format!("hosts/{host}{value}");
            if TRUST_FLAGS.contains(&flag.as_str()) {
                trust_flags += 1;
                p.check(cas.values().any(|files| files.certs.contains(&on_host)), || {
                    format!(
                        "{label}: `{flag}={value}` in `{rel}` names none of the files that hold a CA's certificate at \
                         rest (trust flags keep their paths through a rotation)"
                    )
                });
            } else if flag == "--cluster-signing-cert-file" {
                cert = Some(on_host);
            } else if flag == "--cluster-signing-key-file" {
                key = Some(on_host);
            }
        }
        if cert.is_some() || key.is_some() {
            signing.push((rel, cert, key));
        }
    }
    p.check(trust_flags > 0, || format!("{label}: no flag file under hosts/ has a trust flag"));

    // Kubeconfigs: their CA data trusts the CA of the API server's
    // certificate; the client certificates they embed are leaves of the tree.
    let apiserver_ca = artifacts(&snap.doc)
        .into_iter()
        .find(|a| a["kind"] == "cert" && a["set"] == "apiserver")
        .and_then(|a| a["issuer"].as_str())
        .and_then(ca_name);
    let extracted = scratch.join(label);
    fs::create_dir_all(&extracted).expect("create a scratch directory");
    let mut kubeconfigs = 0;
    for a in artifacts(&snap.doc).into_iter().filter(|a| a["kind"] == "kubeconfig") {
        for rel in files_of_role(a, "kubeconfig") {
            kubeconfigs += 1;
            let text = fs::read_to_string(snap.dir.join(&rel)).unwrap_or_else(|e| panic!("{label}: read `{rel}`: {e}"));
            let yaml: serde_yaml_ng::Value =
                serde_yaml_ng::from_str(&text).unwrap_or_else(|e| panic!("{label}: `{rel}` is not YAML: {e}"));
            let clusters = yaml["clusters"].as_sequence().map_or(&[][..], Vec::as_slice);
            p.check(!clusters.is_empty(), || format!("{label}: `{rel}` has no cluster"));
            for (index, cluster) in clusters.iter().enumerate() {
                let Some(pem) = base64_field(&cluster["cluster"], "certificate-authority-data") else {
                    p.add(format!("{label}: `{rel}` has no certificate-authority-data"));
                    continue;
                };
                let Some(ca) = apiserver_ca.clone() else {
                    p.add(format!("{label}: inspect gives the API server's certificate no `ca/NAME` issuer"));
                    continue;
                };
                let path = extracted.join(format!("{}-{index}.pem", rel.replace('/', "_")));
                fs::write(&path, &pem).expect("write extracted CA data");
                trust.push(TrustFile {
                    ca,
                    ders: pem_certificates(&pem),
                    what: format!("the certificate-authority-data of `{rel}` of the {label} tree"),
                    path,
                });
            }
            for user in yaml["users"].as_sequence().map_or(&[][..], Vec::as_slice) {
                let Some(pem) = base64_field(&user["user"], "client-certificate-data") else {
                    continue;
                };
                let embedded = pem_certificates(&pem);
                let known = embedded.first().is_some_and(|der| leaves.iter().any(|leaf| leaf.der == *der));
                p.check(known, || {
                    format!("{label}: the client certificate `{rel}` embeds is no certificate file of the tree")
                });
            }
        }
    }
    p.check(kubeconfigs > 0, || format!("{label}: inspect lists no kubeconfig"));

    // Signers: one certificate that is the key's, held by the trust files of a CA.
    let mut signers = Vec::new();
    for (rel, cert, key) in signing {
        let (Some(cert), Some(key)) = (cert, key) else {
            p.add(format!("{label}: `{rel}` names a signing certificate or key without the other"));
            continue;
        };
        let (cert_path, key_path) = (snap.dir.join(&cert), snap.dir.join(&key));
        let ders = certs_in(&cert_path);
        p.check(ders.len() == 1, || {
            format!("{label}: `{rel}` signs with `{cert}`, which holds {} certificate(s), not one", ders.len())
        });
        let pair = cert_public_key(&cert_path).zip(key_public_key(&key_path));
        p.check(pair.is_some_and(|(cert_key, key_key)| cert_key == key_key), || {
            format!("{label}: `{rel}` signs with `{cert}` and `{key}`, which are not one key pair (or are missing)")
        });
        let Some(der) = ders.into_iter().next() else {
            continue;
        };
        let ca = trust.iter().find(|file| file.ders.contains(&der)).map(|file| file.ca.clone());
        p.check(ca.is_some(), || format!("{label}: `{rel}` signs with `{cert}`, held by no trust file of its tree"));
        signers.push(Signer { ca, der, what: format!("the controller-manager of `{rel}` (signing with `{cert}`)") });
    }

    Facts { label: label.clone(), leaves, trust, signers }
}

/// The `--flag=value` pairs of a flag file (`VAR="--a=1 --b=2"` lines).
fn flag_values(text: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|row| !row.trim_start().starts_with('#'))
        .flat_map(str::split_whitespace)
        .map(|token| token.split_once("=\"").map_or(token, |(_, rest)| rest).trim_end_matches('"'))
        .filter_map(|token| token.split_once('='))
        .filter(|(flag, _)| flag.starts_with("--"))
        .map(|(flag, value)| (flag.to_string(), value.to_string()))
        .collect()
}

/// A base64 field of a kubeconfig entry, decoded.
fn base64_field(entry: &serde_yaml_ng::Value, field: &str) -> Option<Vec<u8>> {
    entry[field].as_str().and_then(|value| STANDARD.decode(value.trim()).ok())
}

/// The public key of a certificate file, as `openssl x509 -pubkey` prints it.
fn cert_public_key(path: &Path) -> Option<String> {
    openssl_stdout(&["x509", "-noout", "-pubkey", "-in"], path)
}

/// The public key of a private key file, as `openssl pkey -pubout` prints it.
fn key_public_key(path: &Path) -> Option<String> {
    openssl_stdout(&["pkey", "-pubout", "-in"], path)
}

fn openssl_stdout(args: &[&str], path: &Path) -> Option<String> {
    let output = Command::new("openssl").args(args).arg(path).output().expect("run openssl");
    output.status.success().then(|| String::from_utf8_lossy(&output.stdout).into_owned())
}

// ---------------------------------------------------------------------------
// Verification.

/// [`T0`] in seconds since the epoch, for `openssl verify -attime`.
fn t0_unix() -> String {
    time::OffsetDateTime::parse(T0, &time::format_description::well_known::Rfc3339)
        .expect("T0 is RFC 3339")
        .unix_timestamp()
        .to_string()
}

/// The leaves that do not verify with `openssl verify -x509_strict -attime T0 -purpose PURPOSE -CAfile CA`,
/// each with what openssl says.
fn verify_each(ca: &Path, leaves: &[&Path], purpose: &str) -> BTreeMap<PathBuf, String> {
    let at = t0_unix();
    let output = Command::new("openssl")
        .args(["verify", "-x509_strict", "-attime", at.as_str(), "-purpose", purpose, "-CAfile"])
        .arg(ca)
        .args(leaves)
        .output()
        .expect("run openssl");
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    let ok: BTreeSet<&str> = stdout.lines().filter_map(|row| row.strip_suffix(": OK")).collect();
    // openssl prints the reasons of a failure, then `error FILE: verification failed`.
    let mut reasons = BTreeMap::new();
    let mut pending: Vec<&str> = Vec::new();
    for row in stderr.lines() {
        if let Some(file) = row.strip_prefix("error ").and_then(|rest| rest.strip_suffix(": verification failed")) {
            reasons.insert(file.to_string(), pending.join("; "));
            pending.clear();
        } else {
            pending.push(row.trim());
        }
    }
    leaves
        .iter()
        .map(|leaf| (leaf, leaf.display().to_string()))
        .filter(|(_, shown)| !ok.contains(shown.as_str()))
        .map(|(leaf, shown)| {
            let reason = reasons.get(&shown).cloned().unwrap_or_else(|| stderr.trim().to_string());
            (leaf.to_path_buf(), reason)
        })
        .collect()
}

/// The command that checks one leaf, to run by hand.
fn verify_command(ca: &Path, leaf: &Path, purpose: &str) -> String {
    format!(
        "openssl verify -x509_strict -attime {} -purpose {purpose} -CAfile {} {}",
        t0_unix(),
        ca.display(),
        leaf.display()
    )
}

/// Verifies `leaf` against the certificates of a trust file with rustls'
/// webpki verifiers, at [`T0`]: as a client certificate for `sslclient`,
/// else as a server certificate for the first name it carries.
fn rustls_verify(roots: &[Vec<u8>], leaf: &[u8], purpose: &str) -> Result<(), String> {
    use rustls::client::WebPkiServerVerifier;
    use rustls::client::danger::ServerCertVerifier as _;
    use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
    use rustls::server::WebPkiClientVerifier;

    let provider = std::sync::Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let mut store = rustls::RootCertStore::empty();
    for der in roots {
        store.add(CertificateDer::from(der.clone())).map_err(|e| format!("trust file: {e}"))?;
    }
    let store = std::sync::Arc::new(store);
    let seconds = t0_unix().parse::<u64>().expect("T0 after the epoch") + 3600;
    let now = UnixTime::since_unix_epoch(std::time::Duration::from_secs(seconds));
    let end = CertificateDer::from(leaf.to_vec());
    if purpose == "sslclient" {
        let verifier =
            WebPkiClientVerifier::builder_with_provider(store, provider).build().map_err(|e| e.to_string())?;
        return verifier.verify_client_cert(&end, &[], now).map(|_| ()).map_err(|e| e.to_string());
    }
    let info = crate::common::cert::parse_cert_der(Path::new("leaf"), leaf);
    let name = match (info.dns.first(), info.ips.first()) {
        (Some(dns), _) => ServerName::try_from(dns.clone()).map_err(|e| e.to_string())?,
        (None, Some(ip)) => ServerName::from(*ip),
        (None, None) => return Err("a server certificate without a name".into()),
    };
    let verifier = WebPkiServerVerifier::builder_with_provider(store, provider).build().map_err(|e| e.to_string())?;
    verifier.verify_server_cert(&end, &[], &name, &[], now).map(|_| ()).map_err(|e| e.to_string())
}

/// Two adjacent trees may meet: every leaf of either verifies against every
/// trust file of either for its CA, and what either controller-manager signs
/// verifies against every such trust file too.
fn check_pair(a: &Facts, b: &Facts, verified: &mut BTreeSet<(String, &'static str, String)>, p: &mut Problems) {
    let meeting = format!("{} meets {}", a.label, b.label);
    let mut leaves: BTreeMap<String, &Leaf> = BTreeMap::new();
    for leaf in a.leaves.iter().chain(&b.leaves) {
        leaves.entry(sha(&leaf.der)).or_insert(leaf);
    }
    let mut trust: BTreeMap<(String, String), &TrustFile> = BTreeMap::new();
    for file in a.trust.iter().chain(&b.trust) {
        trust.entry((file.ca.clone(), sha(&file.ders.concat()))).or_insert(file);
    }
    for ((ca, content), file) in &trust {
        for purpose in PURPOSES {
            let mut batch = Vec::new();
            for (hash, leaf) in &leaves {
                if leaf.ca == *ca
                    && leaf.purposes.contains(&purpose)
                    && verified.insert((content.clone(), purpose, hash.clone()))
                {
                    batch.push(*leaf);
                }
            }
            if batch.is_empty() {
                continue;
            }
            let paths: Vec<&Path> = batch.iter().map(|leaf| leaf.path.as_path()).collect();
            let failed = verify_each(&file.path, &paths, purpose);
            for leaf in batch {
                if let Some(error) = failed.get(&leaf.path) {
                    p.add(format!(
                        "{meeting}: {} fails against {}: `{}`: {error}",
                        leaf.what,
                        file.what,
                        verify_command(&file.path, &leaf.path, purpose)
                    ));
                }
                // The same with rustls (webpki), as a TLS peer checks it.
                if let Err(error) = rustls_verify(&file.ders, &leaf.der, purpose) {
                    p.add(format!("{meeting}: rustls refuses {} against {}: {error}", leaf.what, file.what));
                }
            }
        }
    }
    for signer in a.signers.iter().chain(&b.signers) {
        let Some(ca) = &signer.ca else {
            continue;
        };
        for file in a.trust.iter().chain(&b.trust).filter(|file| file.ca == *ca) {
            p.check(file.ders.contains(&signer.der), || {
                format!("{meeting}: what {} signs would not verify against {}", signer.what, file.what)
            });
        }
    }
}

/// The leaves of a tree by path.
fn leaves_by_path(facts: &Facts) -> BTreeMap<&str, &Leaf> {
    facts.leaves.iter().map(|leaf| (leaf.rel.as_str(), leaf)).collect()
}

/// The shape of each step of the rotation of `[cas.NAME]`.
fn check_steps(name: &str, files: &CaFiles, snaps: &[Snap], facts: &[Facts], p: &mut Problems) {
    let (before, trust, issue, retire, removed) =
        (&snaps[BEFORE], &snaps[TRUST], &snaps[ISSUE], &snaps[RETIRE], &snaps[REMOVED]);

    // Every trust file holds two certificates while the CA rotates, one otherwise.
    for (snap, facts) in snaps.iter().zip(facts) {
        let rotating = snap.step == "trust" || snap.step == "issue";
        for file in &facts.trust {
            let want = if file.ca == name && rotating { 2 } else { 1 };
            p.check(file.ders.len() == want, || {
                format!("{} holds {} certificate(s), not {want} (`ca/{}`)", file.what, file.ders.len(), file.ca)
            });
        }
    }

    // The old CA at STEM-old, the new one at STEM-new, both in the bundle.
    let old_ca = first_cert(&before.dir.join(&files.cluster_cert))
        .unwrap_or_else(|| panic!("{}: `{}` holds no certificate", before.label, files.cluster_cert));
    let old_key = fs::read(before.dir.join(&files.cluster_key)).expect("read the CA key before the rotation");
    let old_keys: BTreeSet<Vec<u8>> =
        files.keys.iter().map(|rel| fs::read(before.dir.join(rel)).expect("read a copy of the CA key")).collect();
    let (old_cert_rel, old_key_rel) = files.tagged("old");
    let (new_cert_rel, new_key_rel) = files.tagged("new");
    let new_ca = first_cert(&trust.dir.join(&new_cert_rel));
    let new_key = read_opt(&trust.dir.join(&new_key_rel));
    for (snap, facts) in [(trust, &facts[TRUST]), (issue, &facts[ISSUE])] {
        let label = &snap.label;
        p.check(first_cert(&snap.dir.join(&old_cert_rel)).as_ref() == Some(&old_ca), || {
            format!("{label}: `{old_cert_rel}` is not the CA of the tree before the rotation")
        });
        p.check(read_opt(&snap.dir.join(&old_key_rel)).as_ref() == Some(&old_key), || {
            format!("{label}: `{old_key_rel}` is not the key of the CA before the rotation")
        });
        p.check(new_ca.is_some() && first_cert(&snap.dir.join(&new_cert_rel)) == new_ca, || {
            format!("{label}: `{new_cert_rel}` is not the new CA of the trust step")
        });
        p.check(new_key.is_some() && read_opt(&snap.dir.join(&new_key_rel)) == new_key, || {
            format!("{label}: `{new_key_rel}` is not the new CA's key of the trust step")
        });
        let Some(new) = &new_ca else {
            continue;
        };
        p.check(*new != old_ca, || format!("{label}: the new CA is the old one"));
        p.check(new_key.as_ref() != Some(&old_key), || format!("{label}: the new CA has the old key"));
        for file in facts.trust.iter().filter(|file| file.ca == name) {
            p.check(file.ders.contains(&old_ca) && file.ders.contains(new), || {
                format!("{} does not hold both the old and the new CA", file.what)
            });
        }
    }

    // The leaf files stay where they are. At trust none changes; at every
    // step the leaves of the other CAs stay as they were.
    let at_rest = leaves_by_path(&facts[BEFORE]);
    for (snap, facts) in snaps.iter().zip(facts).skip(1) {
        let now = leaves_by_path(facts);
        p.check(now.keys().eq(at_rest.keys()), || {
            format!("{}: the leaf certificate files are not those of the tree before the rotation", snap.label)
        });
        for (rel, leaf) in &at_rest {
            if leaf.ca != name || snap.step == "trust" {
                p.check(now.get(rel).is_none_or(|current| current.der == leaf.der), || {
                    format!("{}: `{rel}` (under `ca/{}`) changed", snap.label, leaf.ca)
                });
            }
        }
    }

    // Issue: every leaf of the CA signed by the new CA, its key kept; none
    // verifies against the old CA alone any more.
    let issued = leaves_by_path(&facts[ISSUE]);
    let new_ski = new_ca.as_ref().and_then(|der| parse_cert_der(Path::new(&new_cert_rel), der).ski);
    let mut reissued: BTreeMap<&'static str, Vec<&Path>> = BTreeMap::new();
    for (rel, leaf) in at_rest.iter().filter(|(_, leaf)| leaf.ca == name) {
        let Some(now) = issued.get(rel) else {
            continue;
        };
        let (was, is) = (parse_cert_der(&leaf.path, &leaf.der), parse_cert_der(&now.path, &now.der));
        let label = &issue.label;
        p.check(is.aki != was.aki, || format!("{label}: `{rel}` has the authority key identifier it had before"));
        p.check(new_ski.is_some() && is.aki == new_ski, || {
            format!("{label}: the authority key identifier of `{rel}` is not the new CA's subject key identifier")
        });
        p.check(is.spki == was.spki, || format!("{label}: `{rel}` has a new key; the rotation keeps leaf keys"));
        for purpose in &now.purposes {
            reissued.entry(*purpose).or_default().push(&now.path);
        }
    }
    p.check(!reissued.is_empty(), || format!("{}: no leaf of `ca/{name}` to reissue", issue.label));
    let old_ca_file = before.dir.join(&files.cluster_cert);
    for (purpose, paths) in &reissued {
        let failed = verify_each(&old_ca_file, paths, purpose);
        for path in paths.iter().filter(|path| !failed.contains_key(**path)) {
            p.add(format!(
                "{}: `{}` still verifies against the old CA alone: `{}` says OK",
                issue.label,
                relative(&issue.dir, path),
                verify_command(&old_ca_file, path, purpose)
            ));
        }
    }

    // Retire: the new CA alone, its key where the old key was.
    if let (Some(new), Some(new_key)) = (&new_ca, &new_key) {
        for file in facts[RETIRE].trust.iter().filter(|file| file.ca == name) {
            p.check(file.ders.len() == 1 && file.ders[0] == *new, || format!("{} is not the new CA alone", file.what));
        }
        for rel in &files.keys {
            p.check(read_opt(&retire.dir.join(rel)).as_ref() == Some(new_key), || {
                format!("{}: `{rel}` is not the new CA's key", retire.label)
            });
        }
    }

    // Retire and after: nothing left of the old CA nor of the STEM-old and
    // STEM-new files.
    for snap in [retire, removed] {
        for path in files_under(&snap.dir) {
            let rel = relative(&snap.dir, &path);
            let bytes = fs::read(&path).expect("read a file of the tree");
            let file_name = path.file_name().map(|n| n.to_string_lossy().into_owned()).unwrap_or_default();
            p.check(!["-old.", "-old-", "-new.", "-new-"].into_iter().any(|tag| file_name.contains(tag)), || {
                format!("{}: `{rel}` is left over from the rotation", snap.label)
            });
            for key in &old_keys {
                p.check(!holds_key(&bytes, key), || format!("{}: `{rel}` holds the old CA's private key", snap.label));
            }
        }
    }

    // Deleting the line after retire changes nothing.
    let (kept, now) = (tree_bytes(&retire.dir), tree_bytes(&removed.dir));
    let changed: Vec<&String> = kept.keys().chain(now.keys()).filter(|rel| kept.get(*rel) != now.get(*rel)).collect();
    p.check(changed.is_empty(), || {
        format!("deleting the rotation line of `[cas.{name}]` after retire changed {changed:?}")
    });
}

/// Whether `haystack` holds the private key `key_pem`: its PEM body
/// (whatever the line breaks), its DER, or either inside a base64 value
/// (the `client-key-data` of a kubeconfig).
fn holds_key(haystack: &[u8], key_pem: &[u8]) -> bool {
    let text = String::from_utf8_lossy(key_pem);
    let body: String = text.lines().map(str::trim).filter(|row| !row.is_empty() && !row.starts_with("-----")).collect();
    let Ok(der) = STANDARD.decode(&body) else {
        return contains(haystack, key_pem);
    };
    let found = |bytes: &[u8]| {
        let squeezed: Vec<u8> = bytes.iter().copied().filter(|b| !b.is_ascii_whitespace()).collect();
        contains(&squeezed, body.as_bytes()) || contains(bytes, &der)
    };
    found(haystack)
        || String::from_utf8_lossy(haystack)
            .split(|c: char| c.is_whitespace() || c == '"' || c == '\'')
            .filter(|token| token.len() >= 64)
            .filter_map(|token| STANDARD.decode(token).ok())
            .any(|decoded| found(&decoded))
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    !needle.is_empty() && haystack.windows(needle.len()).any(|window| window == needle)
}

// ---------------------------------------------------------------------------
// Service-account tokens, flag files, and what `check` and `plan` print.

/// Signs and verifies service-account tokens with Python's `cryptography`:
/// `sign KEY ISSUER` prints an RS256 JWT signed with the RSA private key in
/// KEY; `verify FILE TOKEN...` loads the keys of FILE as kube-apiserver loads
/// its `--service-account-key-file` (every PEM key, a private key for its
/// public half; the keys of its certificates when it holds no key) and
/// prints `{"keys": N, "verified": [...]}`, a token verified when any key
/// verifies its signature (PKCS #1 v1.5 with SHA-256 over
/// `base64url(header).base64url(claims)`).
const TOKENS_PY: &str = r#"
import base64
import json
import re
import sys

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import padding, rsa

BLOCK = re.compile(rb"-----BEGIN ([A-Z0-9 ]+)-----.+?-----END \1-----", re.S)


def encode(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def compact(value):
    return json.dumps(value, separators=(",", ":"), sort_keys=True).encode()


def sign(key_file, issuer):
    with open(key_file, "rb") as handle:
        key = serialization.load_pem_private_key(handle.read(), password=None)
    if not isinstance(key, rsa.RSAPrivateKey):
        sys.exit(f"{key_file} holds no RSA private key: an RS256 token needs one")
    header = {"alg": "RS256", "typ": "JWT"}
    claims = {
        "iss": issuer,
        "sub": "system:serviceaccount:default:default",
        "aud": [issuer],
        "iat": 1767225600,
        "nbf": 1767225600,
        "exp": 1767229200,
    }
    signed = encode(compact(header)) + "." + encode(compact(claims))
    signature = key.sign(signed.encode("ascii"), padding.PKCS1v15(), hashes.SHA256())
    print(signed + "." + encode(signature))


def public_keys(path):
    with open(path, "rb") as handle:
        data = handle.read()
    keys, certificates = [], []
    for match in BLOCK.finditer(data):
        label, pem = match.group(1).decode(), match.group(0)
        if label in ("PUBLIC KEY", "RSA PUBLIC KEY"):
            keys.append(serialization.load_pem_public_key(pem))
        elif label in ("PRIVATE KEY", "RSA PRIVATE KEY", "EC PRIVATE KEY"):
            keys.append(serialization.load_pem_private_key(pem, password=None).public_key())
        elif label == "CERTIFICATE":
            certificates.append(x509.load_pem_x509_certificate(pem).public_key())
    return keys or certificates


def verifies(keys, token):
    head, claims, signature = token.split(".")
    if json.loads(decode(head)).get("alg") != "RS256":
        return False
    signed, signature = (head + "." + claims).encode("ascii"), decode(signature)
    for key in keys:
        if not isinstance(key, rsa.RSAPublicKey):
            continue
        try:
            key.verify(signature, signed, padding.PKCS1v15(), hashes.SHA256())
            return True
        except InvalidSignature:
            continue
    return False


def main(argv):
    if len(argv) == 3 and argv[0] == "sign":
        sign(argv[1], argv[2])
    elif len(argv) >= 3 and argv[0] == "verify":
        keys = public_keys(argv[1])
        print(json.dumps({"keys": len(keys), "verified": [verifies(keys, token) for token in argv[2:]]}))
    else:
        sys.exit("usage: sign KEY ISSUER | verify FILE TOKEN...")


main(sys.argv[1:])
"#;

/// [`TOKENS_PY`], written into a test's directory.
struct Tokens {
    script: PathBuf,
}

impl Tokens {
    fn new(dir: &Path) -> Self {
        let script = dir.join("service_account_tokens.py");
        fs::write(&script, TOKENS_PY).expect("write the token script");
        Tokens { script }
    }

    fn run(&self, args: &[&OsStr]) -> String {
        let shown = args.iter().map(|arg| arg.to_string_lossy().into_owned()).collect::<Vec<_>>().join(" ");
        let output = Command::new("python3").arg(&self.script).args(args).output().unwrap_or_else(|e| {
            panic!("run python3 (this test needs python3 with cryptography: run tests/run.sh): {e}")
        });
        assert!(
            output.status.success(),
            "`python3 {} {shown}` fails (this test needs python3 with cryptography: run tests/run.sh):\n{}",
            self.script.display(),
            describe(&output)
        );
        String::from_utf8(output.stdout).expect("the token script prints UTF-8")
    }

    /// An RS256 token signed with the private key in `key`.
    fn sign(&self, key: &Path, issuer: &str) -> String {
        self.run(&[OsStr::new("sign"), key.as_os_str(), OsStr::new(issuer)]).trim().to_string()
    }

    /// How many keys kube-apiserver reads from `keys`, and for each token
    /// whether one of them verifies it.
    fn verify(&self, keys: &Path, tokens: &[&str]) -> (usize, Vec<bool>) {
        let mut args = vec![OsStr::new("verify"), keys.as_os_str()];
        args.extend(tokens.iter().map(OsStr::new));
        let printed = self.run(&args);
        let report: Value = serde_json::from_str(&printed).expect("the token script prints JSON");
        let loaded = report["keys"].as_u64().and_then(|n| usize::try_from(n).ok()).expect("a key count");
        let verified: Vec<bool> =
            report["verified"].as_array().expect("a verdict per token").iter().filter_map(Value::as_bool).collect();
        assert_eq!(verified.len(), tokens.len(), "the token script gives a verdict per token: {printed}");
        (loaded, verified)
    }
}

/// The `--flag=value` pairs of a component's flag file on a host of a tree
/// (the kubeadm plan's `config_dir` is `/etc/kubernetes`).
fn component_flags(tree: &Path, host: &str, component: &str) -> BTreeMap<String, String> {
    let path = tree.join("hosts").join(host).join("etc/kubernetes").join(format!("{component}.env"));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("read {}: {e}", path.display()));
    flag_values(&text).into_iter().collect()
}

/// Where the file a flag of `host` names is in a tree.
fn on_host(tree: &Path, host: &str, value: &str) -> PathBuf {
    tree.join("hosts").join(host).join(value.trim_start_matches('/'))
}

/// The file of a key pair the design names `TAG` during a rotation:
/// `sa.key` becomes `sa-old.key` or `sa-new.key`.
fn tagged(rel: &str, tag: &str) -> String {
    let (stem, extension) = rel.rsplit_once('.').expect("a key file has an extension");
    format!("{stem}-{tag}.{extension}")
}

/// The labels of the PEM blocks of a file, in order.
fn pem_labels(bytes: &[u8]) -> Vec<String> {
    Pem::iter_from_buffer(bytes).map(|pem| pem.map_or_else(|e| format!("<bad PEM: {e}>"), |pem| pem.label)).collect()
}

/// The 1-based line of the first row of a file that reads `row` (trimmed),
/// and the 1-based column of `needle` in it.
fn position_of(path: &Path, row: &str, needle: &str) -> (u64, u64) {
    let text = fs::read_to_string(path).expect("read the plan");
    for (index, line) in text.lines().enumerate() {
        if line.trim() == row {
            let column = line.find(needle).unwrap_or_else(|| panic!("`{line}` has no `{needle}`"));
            return (u64::try_from(index + 1).expect("a line number"), u64::try_from(column + 1).expect("a column"));
        }
    }
    panic!("{} has no line `{row}`", path.display());
}

/// The diagnostics of `check --format json`.
fn diagnostics(output: &Output) -> Vec<Value> {
    let doc: Value = serde_json::from_slice(&output.stdout)
        .unwrap_or_else(|e| panic!("`check --format json` prints no JSON ({e}):\n{}", describe(output)));
    doc.as_array().cloned().unwrap_or_else(|| panic!("`check --format json` prints no array: {doc}"))
}

/// Seconds since the epoch as RFC 3339, for `--now`.
fn rfc3339(seconds: i64) -> String {
    time::OffsetDateTime::from_unix_timestamp(seconds)
        .expect("a time certplan can write")
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format a time")
}

/// The component a wave header of `plan`'s roll-out names (`  1. etcd, one
/// member at a time, ...:` gives `etcd`).
fn wave(row: &str) -> Option<&str> {
    let (number, rest) = row.trim_start().split_once(". ")?;
    if number.is_empty() || !number.bytes().all(|b| b.is_ascii_digit()) {
        return None;
    }
    rest.split([',', ':']).next().map(str::trim)
}

//! A plan applied into a fresh temporary directory and read back through
//! `certplan inspect`: the starting point of the tests that look at the files
//! of a whole tree (`pki_structure`, `openssl_verify`, `tls_handshake`).

use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

use serde_json::Value;

use super::{apply, artifact, inspect, plan_path, write_plan};

/// A plan applied into a fresh temporary directory, with its inspect document.
pub struct Applied {
    /// Keeps the directory alive for as long as the test needs it.
    pub _dir: tempfile::TempDir,
    pub out: PathBuf,
    pub doc: Value,
    /// Unix seconds, taken just before `certplan apply` started.
    pub started: i64,
}

impl Applied {
    /// The artifacts of one kind (`ca`, `cert`, `kubeconfig`, ...).
    pub fn of_kind(&self, kind: &str) -> Vec<&Value> {
        artifacts(&self.doc).into_iter().filter(|a| a["kind"] == kind).collect()
    }

    /// The artifact with this id, or `None`.
    pub fn find(&self, id: &str) -> Option<&Value> {
        artifacts(&self.doc).into_iter().find(|a| a["id"] == id)
    }

    /// The artifact with this id; panics with a message naming it otherwise.
    pub fn get(&self, id: &str) -> &Value {
        artifact(&self.doc, id)
    }

    /// Absolute paths of an artifact's files of `role`.
    pub fn files(&self, artifact: &Value, role: &str) -> Vec<PathBuf> {
        files_of_role(artifact, role).into_iter().map(|rel| self.out.join(rel)).collect()
    }

    /// The one file of `role` an artifact has on `host` (or, with `None`, its
    /// first such file, preferring the master copy under `cluster/`).
    pub fn file(&self, artifact: &Value, role: &str, host: Option<&str>) -> PathBuf {
        let rels = files_of_role(artifact, role);
        let pick = match host {
            Some(h) => {
                let prefix = format!("hosts/{h}/");
                rels.iter().find(|p| p.starts_with(&prefix)).cloned()
            }
            None => rels.iter().find(|p| p.starts_with("cluster/")).or_else(|| rels.first()).cloned(),
        };
        let rel = pick.unwrap_or_else(|| {
            panic!(
                "inspect lists no {role} file for {} (host {host:?}); its files are {}",
                artifact["id"], artifact["files"]
            )
        });
        self.out.join(rel)
    }

    /// The id of the CA that signs the certificates of `set`, as inspect
    /// reports it in the `issuer` of the set's certificates.
    pub fn ca_of_set(&self, set: &str) -> String {
        let cert = self
            .of_kind("cert")
            .into_iter()
            .find(|a| a["set"] == set)
            .unwrap_or_else(|| panic!("inspect lists no certificate of set {set}"));
        cert["issuer"].as_str().unwrap_or_else(|| panic!("{} has no issuer in inspect output", cert["id"])).to_string()
    }

    /// The certificate file of the CA with this id (the `cluster/pki` copy).
    pub fn ca_cert_file(&self, ca_id: &str) -> PathBuf {
        self.file(self.get(ca_id), "cert", None)
    }
}

/// Every artifact of an inspect document.
pub fn artifacts(doc: &Value) -> Vec<&Value> {
    doc["artifacts"].as_array().expect("inspect output has an `artifacts` array").iter().collect()
}

/// The relative paths of an artifact's files of `role`.
pub fn files_of_role(artifact: &Value, role: &str) -> Vec<String> {
    artifact["files"]
        .as_array()
        .map(|files| {
            files.iter().filter(|f| f["role"] == role).filter_map(|f| f["path"].as_str().map(str::to_string)).collect()
        })
        .unwrap_or_default()
}

/// Applies a plan given as text (written to `<tmp>/plan.toml`) into `<tmp>/out`,
/// on the real clock.
pub fn apply_source(source: &str) -> Applied {
    let dir = tempfile::TempDir::new().expect("create temp dir");
    let plan = write_plan(dir.path(), source);
    apply_into(dir, &plan)
}

/// Applies an example plan from `plans/` (as written) into a fresh `<tmp>/out`.
pub fn apply_example(name: &str) -> Applied {
    let dir = tempfile::TempDir::new().expect("create temp dir");
    apply_into(dir, &plan_path(name))
}

fn apply_into(dir: tempfile::TempDir, plan: &Path) -> Applied {
    let out = dir.path().join("out");
    let started = now_unix();
    apply(plan, &out);
    let doc = inspect(plan, &out);
    Applied { _dir: dir, out, doc, started }
}

/// Seconds since the epoch, now.
fn now_unix() -> i64 {
    i64::try_from(SystemTime::now().duration_since(UNIX_EPOCH).expect("clock after 1970").as_secs())
        .expect("a clock before 2262")
}

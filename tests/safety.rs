//! "Never a torn key, never a lost CA": crash safety, locking, modes,
//! secrets hygiene and bad file-system conditions, tested against the
//! binary.
//!
//! - `apply` killed with SIGKILL at many moments never leaves a partial file
//!   at a final path, and the same command run again converges to a tree
//!   whose certificates verify (`openssl verify`) and whose keys match.
//! - Two concurrent applies on one tree both succeed, one waits, and the
//!   result is one consistent PKI.
//! - No command prints a private key or a token secret, and the state file
//!   holds none.
//! - Modes do not depend on the umask.
//! - A read-only directory, a full disk, a file in the way, a planted
//!   symlink: a clear error or a repair, and nothing lost or written through.
//!
//! The file-system tests mount tmpfs and bind mounts, so they need root (CI
//! runs them as root): without it they fail and say why, they never pass
//! silently. Set `SAFETY_SEED` to replay the kill test's moments.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::fs;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::os::unix::process::ExitStatusExt;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use rcgen::PublicKeyData;
use x509_parser::prelude::{FromDer, X509Certificate};

use crate::common::{inspect, plan_with_key, write_plan};

const BIN: &str = env!("CARGO_BIN_EXE_certplan");
const NOTHING_TO_DO: &str = "Nothing to do";

// ---------------------------------------------------------------------------
// Running the binary
// ---------------------------------------------------------------------------

/// One finished command: its command line, exit code and output.
struct Run {
    line: String,
    code: Option<i32>,
    stdout: String,
    stderr: String,
}

impl Run {
    fn ok(&self) -> bool {
        self.code == Some(0)
    }

    fn text(&self) -> String {
        format!("{}{}", self.stdout, self.stderr)
    }

    fn describe(&self) -> String {
        format!("`{}` exited {:?}\n--- stdout\n{}--- stderr\n{}", self.line, self.code, self.stdout, self.stderr)
    }
}

fn p(path: &Path) -> &str {
    path.to_str().expect("UTF-8 path")
}

/// Runs `certplan ARGS`, through `sh -c 'umask U; exec ...'` when `umask` is given.
fn run_with(args: &[&str], umask: Option<&str>) -> Run {
    let mut cmd = if let Some(mask) = umask {
        let mut cmd = Command::new("sh");
        cmd.arg("-c").arg(format!("umask {mask}; exec \"$0\" \"$@\"")).arg(BIN).args(args);
        cmd
    } else {
        let mut cmd = Command::new(BIN);
        cmd.args(args);
        cmd
    };
    let output = cmd.env("NO_COLOR", "1").output().expect("run certplan");
    Run {
        line: format!("certplan {}", args.join(" ")),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

fn run(args: &[&str]) -> Run {
    run_with(args, None)
}

fn apply_args<'a>(plan: &'a Path, out: &'a Path, extra: &[&'a str]) -> Vec<&'a str> {
    let mut args = vec!["apply", p(plan), "--out", p(out)];
    args.extend_from_slice(extra);
    args
}

/// `apply`, which must succeed.
fn apply_ok(plan: &Path, out: &Path, extra: &[&str]) -> Run {
    let run = run(&apply_args(plan, out, extra));
    assert!(run.ok(), "apply failed:\n{}", run.describe());
    run
}

/// A second `apply` with nothing left to do, which must say so.
fn assert_converged(plan: &Path, out: &Path) {
    let again = apply_ok(plan, out, &[]);
    assert!(again.stdout.contains(NOTHING_TO_DO), "a second apply still had work to do:\n{}", again.describe());
}

fn spawn_apply(plan: &Path, out: &Path, extra: &[&str]) -> Child {
    Command::new(BIN)
        .args(apply_args(plan, out, extra))
        .env("NO_COLOR", "1")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawn certplan")
}

fn finish(child: Child, line: &str) -> Run {
    let output = child.wait_with_output().expect("wait for certplan");
    Run {
        line: line.to_string(),
        code: output.status.code(),
        stdout: String::from_utf8_lossy(&output.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&output.stderr).into_owned(),
    }
}

// ---------------------------------------------------------------------------
// Plans
// ---------------------------------------------------------------------------

/// The classic plan (RSA-2048) with `extra` more workers.
fn large_rsa_plan(extra: usize) -> String {
    let mut source = plan_with_key("classic", "rsa-2048");
    for n in 0..extra {
        source.push_str(&format!(
            "\n[[hosts]]\nname = \"worker{n}\"\naddress = \"192.168.215.{}\"\nroles = [\"worker\"]\n",
            n + 10
        ));
    }
    source
}

/// The classic plan with ECDSA keys (fast), in `dir/NAME.toml`.
fn classic_fast(dir: &Path, name: &str) -> (PathBuf, String) {
    let source = plan_with_key("classic", "ecdsa-p256");
    let path = dir.join(format!("{name}.toml"));
    fs::write(&path, &source).expect("write plan");
    (path, source)
}

fn replaced(source: &str, from: &str, to: &str) -> String {
    assert!(source.contains(from), "the plan has no `{from}` to replace");
    source.replacen(from, to, 1)
}

// ---------------------------------------------------------------------------
// The tree: snapshots, walks, completeness of files
// ---------------------------------------------------------------------------

#[derive(Debug, Clone, PartialEq, Eq)]
enum Entry {
    File { mode: u32, bytes: Vec<u8> },
    Dir { mode: u32 },
    Link { target: PathBuf },
}

/// Every entry under `root` (symlinks not followed), by relative path.
fn snapshot(root: &Path) -> BTreeMap<String, Entry> {
    let mut out = BTreeMap::new();
    walk(root, root, &mut out);
    out
}

fn walk(root: &Path, dir: &Path, out: &mut BTreeMap<String, Entry>) {
    let Ok(entries) = fs::read_dir(dir) else { return };
    for entry in entries.flatten() {
        let path = entry.path();
        let relative = path.strip_prefix(root).expect("under root").to_string_lossy().into_owned();
        let meta = fs::symlink_metadata(&path).expect("stat");
        let mode = meta.mode() & 0o7777;
        if meta.file_type().is_symlink() {
            out.insert(relative, Entry::Link { target: fs::read_link(&path).expect("readlink") });
        } else if meta.is_dir() {
            out.insert(relative, Entry::Dir { mode });
            walk(root, &path, out);
        } else {
            out.insert(relative, Entry::File { mode, bytes: fs::read(&path).unwrap_or_default() });
        }
    }
}

fn is_temp(relative: &str) -> bool {
    Path::new(relative).file_name().and_then(|n| n.to_str()).is_some_and(|n| n.starts_with(".certplan-"))
}

fn temp_files(tree: &BTreeMap<String, Entry>) -> Vec<String> {
    tree.keys().filter(|k| is_temp(k)).cloned().collect()
}

/// Differences between two snapshots, for a message.
fn differences(before: &BTreeMap<String, Entry>, after: &BTreeMap<String, Entry>) -> Vec<String> {
    let mut out = Vec::new();
    for (path, entry) in before {
        match after.get(path) {
            None => out.push(format!("{path}: gone")),
            Some(now) if now != entry => out.push(format!("{path}: changed")),
            Some(_) => {}
        }
    }
    for path in after.keys().filter(|k| !before.contains_key(*k)) {
        out.push(format!("{path}: new"));
    }
    out
}

/// A PEM block: its label and DER.
struct Block {
    label: String,
    der: Vec<u8>,
}

/// Parses complete PEM text: one or more whole blocks, each body valid
/// base64 whose DER parses (certificates, private and public keys), the
/// text ending with `-----END ...-----\n`.
fn parse_pem(bytes: &[u8]) -> Result<Vec<Block>, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    if !text.ends_with("-----\n") {
        return Err(format!("does not end with `-----END ...-----\\n` ({} bytes)", bytes.len()));
    }
    let mut blocks = Vec::new();
    let mut lines = text.lines().filter(|l| !l.trim().is_empty());
    while let Some(line) = lines.next() {
        let label = line
            .strip_prefix("-----BEGIN ")
            .and_then(|l| l.strip_suffix("-----"))
            .ok_or_else(|| format!("`{line}` where a BEGIN line must be"))?
            .to_string();
        let end = format!("-----END {label}-----");
        let mut body = String::new();
        loop {
            match lines.next() {
                Some(l) if l == end => break,
                Some(l) => body.push_str(l.trim()),
                None => return Err(format!("block {label} has no END line")),
            }
        }
        let der = B64.decode(&body).map_err(|e| format!("block {label}: bad base64: {e}"))?;
        match label.as_str() {
            "CERTIFICATE" => {
                let (rest, _) = X509Certificate::from_der(&der).map_err(|e| format!("certificate: {e}"))?;
                if !rest.is_empty() {
                    return Err("certificate: trailing bytes".into());
                }
            }
            l if l.ends_with("PRIVATE KEY") => {
                rcgen::KeyPair::try_from(der.as_slice()).map_err(|e| format!("{l}: {e}"))?;
            }
            "PUBLIC KEY" => {
                x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).map_err(|e| format!("public key: {e}"))?;
            }
            _ => {}
        }
        blocks.push(Block { label, der });
    }
    if blocks.is_empty() {
        return Err("no PEM block".into());
    }
    Ok(blocks)
}

/// The value of the first `name: value` line (quotes removed).
fn yaml_field(text: &str, name: &str) -> Option<String> {
    text.lines().find_map(|line| {
        let value = line.trim_start().trim_start_matches("- ").strip_prefix(name)?.strip_prefix(':')?;
        Some(value.trim().trim_matches('"').trim_matches('\'').to_string())
    })
}

/// A kubeconfig is complete: all its sections, its embedded PEM whole, its
/// token whole.
fn check_kubeconfig(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    for section in ["apiVersion", "clusters", "contexts", "current-context", "kind", "users"] {
        yaml_field(text, section).ok_or_else(|| format!("no `{section}:`"))?;
    }
    let ca = yaml_field(text, "certificate-authority-data").ok_or("no certificate-authority-data")?;
    parse_pem(&B64.decode(ca).map_err(|e| format!("certificate-authority-data: {e}"))?)
        .map_err(|e| format!("certificate-authority-data: {e}"))?;
    match yaml_field(text, "token") {
        Some(token) => {
            let hex = token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit());
            let bootstrap = token.len() == 23
                && token.as_bytes()[6] == b'.'
                && token.bytes().all(|b| b == b'.' || b.is_ascii_lowercase() || b.is_ascii_digit());
            if !hex && !bootstrap {
                return Err(format!("token of {} characters is not a whole token", token.len()));
            }
        }
        None => {
            for field in ["client-certificate-data", "client-key-data"] {
                let value = yaml_field(text, field).ok_or_else(|| format!("no {field}"))?;
                parse_pem(&B64.decode(value).map_err(|e| format!("{field}: {e}"))?)
                    .map_err(|e| format!("{field}: {e}"))?;
            }
        }
    }
    Ok(())
}

/// An `EnvironmentFile` is complete: every line a comment or `NAME="..."`, a
/// `*_TLS_ARGS` variable present.
fn check_env(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let mut tls = false;
    for line in text.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('#')) {
        let (name, value) = line.split_once('=').ok_or_else(|| format!("`{line}` is not NAME=\"...\""))?;
        let whole = value.len() >= 2 && value.starts_with('"') && value.ends_with('"');
        if !whole || !name.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            return Err(format!("`{line}` is not NAME=\"...\""));
        }
        tls |= name.ends_with("_TLS_ARGS");
    }
    if !tls {
        return Err("no *_TLS_ARGS variable".into());
    }
    Ok(())
}

/// A token.csv is complete: rows `token,user,uid,"groups"`.
fn check_token_csv(bytes: &[u8]) -> Result<(), String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8".to_string())?;
    let rows: Vec<&str> = text.lines().filter(|l| !l.trim().is_empty()).collect();
    if rows.is_empty() {
        return Err("no row".into());
    }
    for row in rows {
        let fields: Vec<&str> = row.splitn(4, ',').collect();
        let whole = fields.len() == 4
            && fields[0].len() == 32
            && fields[0].bytes().all(|b| b.is_ascii_hexdigit())
            && fields[3].len() >= 2
            && fields[3].starts_with('"')
            && fields[3].ends_with('"');
        if !whole {
            return Err(format!("`{row}` is not a whole token,user,uid,\"groups\" row"));
        }
    }
    Ok(())
}

/// Whether a file that must be whole is: `relative` names it (its extension
/// says its kind). Files whose content does not depend on keys (flag files,
/// manifests) must equal one of the reference trees' copies when they have one.
fn check_complete(relative: &str, bytes: &[u8], references: &[&BTreeMap<String, Entry>]) -> Result<(), String> {
    let name = relative.rsplit('/').next().unwrap_or_default();
    let ext = name.rsplit_once('.').map_or("", |(_, e)| e);
    let newline = || bytes.ends_with(b"\n").then_some(()).ok_or_else(|| "does not end with a newline".to_string());
    match ext {
        "env" | "yaml" | "yml" => {
            let copies: Vec<&Vec<u8>> = references
                .iter()
                .filter_map(|r| match r.get(relative) {
                    Some(Entry::File { bytes, .. }) => Some(bytes),
                    _ => None,
                })
                .collect();
            if copies.is_empty() {
                newline().and_then(|()| if ext == "env" { check_env(bytes) } else { Ok(()) })
            } else if copies.iter().any(|c| c.as_slice() == bytes) {
                Ok(())
            } else {
                Err(format!("is none of the complete copies ({} bytes)", bytes.len()))
            }
        }
        "pem" | "crt" | "key" | "pub" => parse_pem(bytes).map(|_| ()),
        "kubeconfig" | "conf" => newline().and_then(|()| check_kubeconfig(bytes)),
        "csv" => newline().and_then(|()| check_token_csv(bytes)),
        "json" => serde_json::from_slice::<serde_json::Value>(bytes).map(|_| ()).map_err(|e| e.to_string()),
        _ => Err("a file the test does not know".into()),
    }
}

/// Every file at a final path under `out` is complete (temporary files and
/// the lock aside). Returns the problems.
fn incomplete_files(out: &Path, references: &[&BTreeMap<String, Entry>]) -> Vec<String> {
    let mut problems = Vec::new();
    for (relative, entry) in snapshot(out) {
        let Entry::File { bytes, .. } = entry else { continue };
        if is_temp(&relative) || relative == ".certplan/lock" {
            continue;
        }
        if let Err(e) = check_complete(&relative, &bytes, references) {
            problems.push(format!("{relative}: {e}"));
        }
    }
    problems
}

/// The kill test's judge of whole files is not blind: on a real tree it
/// accepts every file, and refuses every prefix of every kind of file
/// (short of trailing white space, which loses nothing): PEM, kubeconfig,
/// token.csv and JSON on their structure alone, flag files and manifests
/// against a complete copy.
#[test]
fn the_partial_file_detector_refuses_every_prefix() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut checked = BTreeSet::new();
    for plan_name in ["classic", "bootstrap"] {
        let plan = base.path().join(format!("{plan_name}.toml"));
        fs::write(&plan, plan_with_key(plan_name, "ecdsa-p256")).expect("write plan");
        let out = base.path().join(plan_name);
        apply_ok(&plan, &out, &[]);
        let tree = snapshot(&out);
        let problems = incomplete_files(&out, &[&tree]);
        assert!(problems.is_empty(), "a complete tree is judged partial:\n{}", problems.join("\n"));
        let mut seen_kinds = BTreeSet::new();
        for (relative, entry) in &tree {
            let Entry::File { bytes, .. } = entry else { continue };
            let kind = relative.rsplit_once('.').map_or("", |(_, e)| e).to_string();
            if relative == ".certplan/lock" || !seen_kinds.insert((kind.clone(), bytes.len() / 1000)) {
                continue;
            }
            let step = (bytes.len() / 97).max(1);
            for cut in (0..bytes.len()).step_by(step).chain([bytes.len().saturating_sub(1)]) {
                let prefix = &bytes[..cut];
                if bytes[cut..].iter().all(u8::is_ascii_whitespace)
                    && !matches!(kind.as_str(), "pem" | "crt" | "key" | "pub")
                {
                    continue;
                }
                // Flag files and manifests are judged against a complete copy
                // (as in the kill test); the other kinds on their own too.
                let structural = !matches!(kind.as_str(), "env" | "yaml" | "yml");
                assert!(
                    check_complete(relative, prefix, &[&tree]).is_err()
                        && (!structural || check_complete(relative, prefix, &[]).is_err()),
                    "{relative} cut at {cut} of {} bytes passes as complete",
                    bytes.len()
                );
            }
            checked.insert(kind);
        }
    }
    for kind in ["pem", "crt", "key", "pub", "kubeconfig", "conf", "env", "csv", "yaml", "json"] {
        assert!(checked.contains(kind), "no .{kind} file was tried (tried {checked:?})");
    }
}

// ---------------------------------------------------------------------------
// The PKI: chains and key pairs
// ---------------------------------------------------------------------------

/// The raw public key of a certificate.
fn cert_public_key(der: &[u8]) -> Vec<u8> {
    let (_, cert) = X509Certificate::from_der(der).expect("certificate");
    cert.public_key().subject_public_key.data.to_vec()
}

/// The raw public key of a private key.
fn key_public_key(der: &[u8]) -> Vec<u8> {
    rcgen::KeyPair::try_from(der).expect("private key").der_bytes().to_vec()
}

fn first_der(path: &Path) -> Result<Vec<u8>, String> {
    let bytes = fs::read(path).map_err(|e| format!("{}: {e}", path.display()))?;
    let mut blocks = parse_pem(&bytes).map_err(|e| format!("{}: {e}", path.display()))?;
    Ok(blocks.remove(0).der)
}

fn files_of(out: &Path, artifact: &serde_json::Value, role: &str) -> Vec<PathBuf> {
    artifact["files"]
        .as_array()
        .into_iter()
        .flatten()
        .filter(|f| f["role"] == role)
        .filter_map(|f| f["path"].as_str())
        .map(|path| out.join(path))
        .collect()
}

/// Checks a whole applied tree: every certificate verifies against its CA
/// (`openssl verify`), every key matches its certificate, every copy of a
/// file is the same, every kubeconfig's key matches its certificate, which
/// its embedded CA signed. Returns the problems and the CA ids.
fn verify_tree(plan: &Path, out: &Path) -> (Vec<String>, Vec<String>) {
    let doc = inspect(plan, out);
    let artifacts = doc["artifacts"].as_array().expect("artifacts");
    let mut problems = Vec::new();
    let mut ca_certs: HashMap<String, PathBuf> = HashMap::new();
    let mut cas = Vec::new();
    for a in artifacts.iter().filter(|a| a["kind"] == "ca") {
        let id = a["id"].as_str().unwrap_or("?").to_string();
        if let Some(cert) = files_of(out, a, "cert").into_iter().next() {
            ca_certs.insert(id.clone(), cert);
        }
        cas.push(id);
    }
    let mut by_issuer: BTreeMap<String, Vec<PathBuf>> = BTreeMap::new();
    for a in artifacts.iter().filter(|a| a["kind"] == "ca" || a["kind"] == "cert" || a["kind"] == "keypair") {
        let id = a["id"].as_str().unwrap_or("?");
        let certs = files_of(out, a, "cert");
        let keys = files_of(out, a, "key");
        let publics = files_of(out, a, "public-key");
        let mut want: Option<Vec<u8>> = None;
        for cert in &certs {
            match first_der(cert) {
                Ok(der) => {
                    let public = cert_public_key(&der);
                    if want.as_ref().is_some_and(|w| *w != public) {
                        problems.push(format!("{id}: copies of its certificate differ: {}", cert.display()));
                    }
                    want.get_or_insert(public);
                }
                Err(e) => problems.push(format!("{id}: {e}")),
            }
            if a["kind"] == "cert" {
                let issuer = a["issuer"].as_str().unwrap_or("?").to_string();
                by_issuer.entry(issuer).or_default().push(cert.clone());
            }
        }
        for public in &publics {
            match first_der(public) {
                Ok(der) => {
                    let (_, spki) = x509_parser::x509::SubjectPublicKeyInfo::from_der(&der).expect("spki");
                    let raw = spki.subject_public_key.data.to_vec();
                    if want.as_ref().is_some_and(|w| *w != raw) {
                        problems.push(format!("{id}: {} does not match", public.display()));
                    }
                    want.get_or_insert(raw);
                }
                Err(e) => problems.push(format!("{id}: {e}")),
            }
        }
        for key in &keys {
            match first_der(key) {
                Ok(der) => {
                    if want.as_ref().is_some_and(|w| *w != key_public_key(&der)) {
                        problems.push(format!("{id}: the key {} does not match its certificate", key.display()));
                    }
                }
                Err(e) => problems.push(format!("{id}: {e}")),
            }
        }
    }
    for (issuer, certs) in &by_issuer {
        let Some(ca) = ca_certs.get(issuer) else {
            problems.push(format!("no certificate file for the issuer {issuer}"));
            continue;
        };
        let output = Command::new("openssl")
            .args(["verify", "-CAfile"])
            .arg(ca)
            .args(certs)
            .output()
            .expect("run openssl verify");
        let stdout = String::from_utf8_lossy(&output.stdout);
        for cert in certs {
            if !stdout.contains(&format!("{}: OK", cert.display())) {
                problems.push(format!(
                    "`openssl verify -CAfile {} {}` fails: {}{}",
                    ca.display(),
                    cert.display(),
                    stdout.trim(),
                    String::from_utf8_lossy(&output.stderr).trim()
                ));
            }
        }
    }
    let ca_ders: Vec<Vec<u8>> = ca_certs.values().filter_map(|c| first_der(c).ok()).collect();
    for a in artifacts.iter().filter(|a| a["kind"] == "kubeconfig") {
        for file in files_of(out, a, "kubeconfig") {
            if let Err(e) = check_kubeconfig_chain(&file, &ca_ders) {
                problems.push(format!("{}: {e}", file.display()));
            }
        }
    }
    (problems, cas)
}

fn decode_field(text: &str, field: &str) -> Result<Vec<u8>, String> {
    let value = yaml_field(text, field).ok_or_else(|| format!("no {field}"))?;
    let pem = B64.decode(value).map_err(|e| format!("{field}: {e}"))?;
    Ok(parse_pem(&pem)?.remove(0).der)
}

/// A kubeconfig's CA is one of the tree's CAs, its client certificate was
/// signed by that CA, and its key matches.
fn check_kubeconfig_chain(path: &Path, ca_ders: &[Vec<u8>]) -> Result<(), String> {
    let bytes = fs::read(path).map_err(|e| e.to_string())?;
    check_kubeconfig(&bytes)?;
    let text = String::from_utf8_lossy(&bytes);
    let ca = decode_field(&text, "certificate-authority-data")?;
    if !ca_ders.contains(&ca) {
        return Err("its certificate-authority-data is none of the tree's CA certificates".into());
    }
    if yaml_field(&text, "token").is_some() {
        return Ok(());
    }
    let cert = decode_field(&text, "client-certificate-data")?;
    let key = decode_field(&text, "client-key-data")?;
    if cert_public_key(&cert) != key_public_key(&key) {
        return Err("client-key-data does not match client-certificate-data".into());
    }
    let (_, ca) = X509Certificate::from_der(&ca).expect("CA");
    let (_, cert) = X509Certificate::from_der(&cert).expect("client certificate");
    cert.verify_signature(Some(ca.public_key()))
        .map_err(|e| format!("its client certificate was not signed by its CA: {e}"))
}

// ---------------------------------------------------------------------------
// Root, mounts
// ---------------------------------------------------------------------------

fn is_root() -> bool {
    fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0)
}

/// Fails the test, saying why, when it cannot run as root.
fn require_root(test: &str) {
    assert!(
        is_root(),
        "{test} needs root (it mounts file systems); CI runs it as root. Run the suite as root, \
         or skip it explicitly with `--skip safety::`"
    );
}

fn sh(program: &str, args: &[&str]) -> Result<(), String> {
    let output = Command::new(program).args(args).output().map_err(|e| format!("{program}: {e}"))?;
    if output.status.success() {
        Ok(())
    } else {
        Err(format!("`{program} {}`: {}", args.join(" "), String::from_utf8_lossy(&output.stderr).trim()))
    }
}

/// A mount point, unmounted when dropped (also when the test fails).
struct Mount {
    point: PathBuf,
}

impl Mount {
    fn tmpfs(point: &Path, options: &str) -> Result<Self, String> {
        fs::create_dir_all(point).map_err(|e| e.to_string())?;
        sh("mount", &["-t", "tmpfs", "-o", options, "tmpfs", p(point)])?;
        Ok(Self { point: point.to_path_buf() })
    }

    /// `point` bind-mounted onto itself, read-only.
    fn read_only_bind(point: &Path) -> Result<Self, String> {
        sh("mount", &["--bind", p(point), p(point)])?;
        let mount = Self { point: point.to_path_buf() };
        sh("mount", &["-o", "remount,bind,ro", p(point)])?;
        Ok(mount)
    }

    fn remount(&self, options: &str) -> Result<(), String> {
        sh("mount", &["-o", &format!("remount,{options}"), p(&self.point)])
    }
}

impl Drop for Mount {
    fn drop(&mut self) {
        if sh("umount", &[p(&self.point)]).is_err() {
            let _ = sh("umount", &["-l", p(&self.point)]);
        }
    }
}

/// A file made immutable with `chattr +i`, made mutable again when dropped.
struct Immutable {
    path: PathBuf,
}

impl Drop for Immutable {
    fn drop(&mut self) {
        let _ = sh("chattr", &["-i", p(&self.path)]);
    }
}

// ---------------------------------------------------------------------------
// Kill test
// ---------------------------------------------------------------------------

/// A small deterministic generator, seeded from the clock or `SAFETY_SEED`.
struct Rng(u64);

impl Rng {
    fn new() -> (Self, u64) {
        let seed = std::env::var("SAFETY_SEED").ok().and_then(|s| s.parse().ok()).unwrap_or_else(|| {
            std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(1, |d| u64::try_from(d.as_nanos()).unwrap_or(1))
        });
        (Self(seed | 1), seed)
    }

    /// Uniform in [0, 1).
    fn unit(&mut self) -> f64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        (self.0 >> 11) as f64 / (1u64 << 53) as f64
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
enum Scenario {
    /// The first apply, into an empty directory.
    Fresh,
    /// Every leaf reissued (a new validity) on an applied tree, keys kept.
    Reissue,
    /// `--rotate ca/kubernetes` on an applied tree: a new CA and everything it signs.
    Rotate,
}

impl Scenario {
    fn extra(self) -> &'static [&'static str] {
        match self {
            Self::Rotate => &["--rotate", "ca/kubernetes"],
            _ => &[],
        }
    }
}

/// Where the kill test watches an apply's progress.
const WATCHED: [&str; 4] =
    ["cluster/pki", "hosts/master1/etc/kubernetes/ssl", "hosts/master1/etc/kubernetes", "hosts/node1/etc/kubernetes"];

/// How far an apply has got, as seen from the tree.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Nothing written yet (compiling, generating keys).
    Computing,
    /// Temporary files being written.
    Staging,
    /// Files renamed into place (or the state written).
    Renaming,
}

/// The final files of the watched directories when an apply started.
struct Watch {
    out: PathBuf,
    fresh: bool,
    inodes: HashMap<PathBuf, u64>,
}

impl Watch {
    fn new(out: &Path, fresh: bool) -> Self {
        let mut inodes = HashMap::new();
        for dir in WATCHED {
            for entry in fs::read_dir(out.join(dir)).into_iter().flatten().flatten() {
                if let Ok(meta) = entry.metadata() {
                    inodes.insert(entry.path(), meta.ino());
                }
            }
        }
        Self { out: out.to_path_buf(), fresh, inodes }
    }

    fn phase(&self) -> Phase {
        let mut staging = self.fresh && (self.out.join("cluster").exists() || self.out.join("hosts").exists());
        for dir in WATCHED {
            for entry in fs::read_dir(self.out.join(dir)).into_iter().flatten().flatten() {
                if entry.file_name().to_string_lossy().starts_with(".certplan-") {
                    staging = true;
                } else if let Ok(meta) = entry.metadata()
                    && meta.is_file()
                    && self.inodes.get(&entry.path()) != Some(&meta.ino())
                {
                    return Phase::Renaming;
                }
            }
        }
        if staging { Phase::Staging } else { Phase::Computing }
    }
}

/// How long an apply runs, and when it began staging and renaming.
#[derive(Debug, Clone, Copy)]
struct Timing {
    total: Duration,
    staging: Duration,
    renaming: Duration,
}

/// Runs one apply to completion, timing its phases.
fn timed_apply(plan: &Path, out: &Path, scenario: Scenario) -> Timing {
    let watch = Watch::new(out, scenario == Scenario::Fresh);
    let start = Instant::now();
    let mut child = spawn_apply(plan, out, scenario.extra());
    let (mut staging, mut renaming) = (None, None);
    loop {
        let phase = watch.phase();
        if phase >= Phase::Staging && staging.is_none() {
            staging = Some(start.elapsed());
        }
        if phase >= Phase::Renaming && renaming.is_none() {
            renaming = Some(start.elapsed());
        }
        if child.try_wait().expect("wait").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_micros(100));
    }
    let total = start.elapsed();
    let run = finish(child, "certplan apply (timed)");
    assert!(run.ok(), "{}", run.describe());
    let renaming = renaming.unwrap_or(total);
    Timing { total, staging: staging.unwrap_or(renaming), renaming }
}

fn copy_tree(from: &Path, to: &Path) {
    sh("cp", &["-a", p(from), p(to)]).expect("copy the reference tree");
}

/// `apply` killed with SIGKILL at many moments: before writing, while
/// staging, between renames, before the state. After every kill no file at
/// a final path is partial; the same command run again converges, a
/// second apply has nothing to do, every certificate verifies against its
/// CA, every key matches, a CA is never lost (unchanged unless rotation was
/// asked for), and no temporary file is left.
#[test]
fn sigkill_at_any_moment_never_tears_a_file_and_the_next_apply_converges() {
    let base = tempfile::tempdir().expect("tempdir");
    let plan = base.path().join("large.toml");
    let source = large_rsa_plan(20);
    fs::write(&plan, &source).expect("write plan");
    let reissue_plan = base.path().join("reissue.toml");
    fs::write(&reissue_plan, replaced(&source, "validity = \"8760h\"", "validity = \"8000h\"")).expect("write");

    // The reference tree, and how long each scenario runs.
    let reference = base.path().join("reference");
    let mut timing: HashMap<Scenario, Timing> = HashMap::new();
    timing.insert(Scenario::Fresh, timed_apply(&plan, &reference, Scenario::Fresh));
    let reference_tree = snapshot(&reference);
    // The tree the reissuing plan makes: flag files that name the validity differ.
    let mut reissued_tree = BTreeMap::new();
    for scenario in [Scenario::Reissue, Scenario::Rotate] {
        let scratch = base.path().join(format!("measure-{scenario:?}"));
        copy_tree(&reference, &scratch);
        let plan = if scenario == Scenario::Reissue { &reissue_plan } else { &plan };
        timing.insert(scenario, timed_apply(plan, &scratch, scenario));
        if scenario == Scenario::Reissue {
            reissued_tree = snapshot(&scratch);
        }
        fs::remove_dir_all(&scratch).expect("clean up");
    }
    let ca_cert = "cluster/pki/ca.pem";
    let ca_key = "cluster/pki/ca-key.pem";
    assert!(reference_tree.contains_key(ca_key), "the classic plan's CA key is not at {ca_key}");

    let (mut rng, seed) = Rng::new();
    eprintln!("kill test: seed {seed} (SAFETY_SEED={seed} replays), timings {timing:?}");
    const RUNS: usize = 24;
    let mut findings = Vec::new();
    let mut leftovers = Vec::new();
    let mut outcomes: BTreeMap<&str, usize> = BTreeMap::new();
    for i in 0..RUNS {
        // A fresh apply generates every key, twice per run: one run in
        // four; the others reissue or rotate on an applied tree.
        let scenario = match i % 4 {
            0 => Scenario::Fresh,
            1 => Scenario::Reissue,
            2 => Scenario::Rotate,
            _ if i % 8 == 3 => Scenario::Reissue,
            _ => Scenario::Rotate,
        };
        let timing = timing[&scenario];
        let out = base.path().join(format!("run{i}"));
        if scenario != Scenario::Fresh {
            copy_tree(&reference, &out);
        }
        let start_tree = snapshot(&out);
        let this_plan = if scenario == Scenario::Reissue { &reissue_plan } else { &plan };
        // A third of the runs at increasing moments over the whole run, a
        // third at random moments once staging began, a third once files
        // began to be renamed into place (where a tear or a lost CA would
        // happen).
        let (trigger, delay) = match i * 3 / RUNS {
            0 => (Phase::Computing, timing.total.mul_f64((i as f64 + rng.unit()) / (RUNS / 3) as f64)),
            1 => (Phase::Staging, timing.renaming.saturating_sub(timing.staging).mul_f64(rng.unit())),
            _ => (Phase::Renaming, timing.total.saturating_sub(timing.renaming).mul_f64(rng.unit() * 0.5)),
        };
        let watch = Watch::new(&out, scenario == Scenario::Fresh);
        let start = Instant::now();
        let mut child = spawn_apply(this_plan, &out, scenario.extra());
        while watch.phase() < trigger && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_micros(50));
        }
        let from = Instant::now();
        while from.elapsed() < delay && child.try_wait().expect("wait").is_none() {
            std::thread::sleep(Duration::from_micros(200));
        }
        let _ = child.kill();
        let status = child.wait().expect("wait for the killed apply");
        let at = start.elapsed();
        let after_kill = snapshot(&out);
        let final_paths = |tree: &BTreeMap<String, Entry>| -> BTreeMap<String, Entry> {
            tree.iter()
                .filter(|(k, e)| !is_temp(k) && *k != ".certplan/lock" && !matches!(e, Entry::Dir { .. }))
                .map(|(k, e)| (k.clone(), e.clone()))
                .collect()
        };
        let outcome = if status.signal() != Some(9) {
            "finished before the kill"
        } else if final_paths(&after_kill) == final_paths(&start_tree) {
            "killed before any final path changed"
        } else if after_kill.get(".certplan/state.json") != start_tree.get(".certplan/state.json") {
            "killed after the state was written"
        } else {
            "killed with files replaced, the state not yet written"
        };
        *outcomes.entry(outcome).or_default() += 1;
        let context = format!("run {i} ({scenario:?}, killed at {at:?}, {outcome})");

        for problem in incomplete_files(&out, &[&reference_tree, &reissued_tree]) {
            findings.push(format!("{context}: partial file at a final path: {problem}"));
        }

        let converge = run(&apply_args(this_plan, &out, scenario.extra()));
        if !converge.ok() {
            findings.push(format!("{context}: the next apply does not converge:\n{}", converge.describe()));
            if scenario == Scenario::Fresh
                && after_kill.contains_key(ca_key)
                && !after_kill.contains_key(".certplan/state.json")
            {
                findings.push(format!(
                    "{context}: the killed first apply left `{ca_key}` without a state file, and \
                     rerunning the same `apply` refuses to go on"
                ));
            }
            continue;
        }
        let again = run(&apply_args(this_plan, &out, &[]));
        if !again.ok() || !again.stdout.contains(NOTHING_TO_DO) {
            findings.push(format!("{context}: a second apply still has work:\n{}", again.describe()));
        }
        let (problems, cas) = verify_tree(this_plan, &out);
        for problem in problems {
            findings.push(format!("{context}: {problem}"));
        }
        if cas != ["ca/kubernetes"] {
            findings.push(format!("{context}: CAs {cas:?}, want exactly ca/kubernetes"));
        }
        let tree = snapshot(&out);
        let ca_same =
            tree.get(ca_key) == reference_tree.get(ca_key) && tree.get(ca_cert) == reference_tree.get(ca_cert);
        match scenario {
            Scenario::Fresh => {}
            Scenario::Reissue if !ca_same => findings.push(format!("{context}: the CA changed: a lost CA")),
            Scenario::Rotate if ca_same => findings.push(format!("{context}: the rotation did not happen")),
            _ => {}
        }
        for temp in temp_files(&tree) {
            leftovers.push(format!("{context}: {temp}"));
        }
        let _ = fs::remove_dir_all(&out);
    }
    eprintln!("kill test outcomes over {RUNS} runs: {outcomes:?}");
    let killed: usize = outcomes.iter().filter(|(k, _)| k.starts_with("killed")).map(|(_, n)| n).sum();
    assert!(
        killed >= RUNS / 2,
        "only {killed} of {RUNS} runs were killed midway: the moments are wrong ({outcomes:?})"
    );
    if !leftovers.is_empty() {
        findings.push(format!("temporary files left after the tree converged:\n{}", leftovers.join("\n")));
    }
    assert!(
        findings.is_empty(),
        "seed {seed} (outcomes {outcomes:?}): {} problem(s):\n{}",
        findings.len(),
        findings.join("\n")
    );
}

// ---------------------------------------------------------------------------
// Locking
// ---------------------------------------------------------------------------

/// Two applies on one empty tree at once: both succeed, one waits and says
/// which process it waits for, and the tree holds one CA that signed every
/// certificate.
#[test]
fn concurrent_applies_wait_for_each_other_and_leave_one_consistent_tree() {
    let base = tempfile::tempdir().expect("tempdir");
    let plan = write_plan(base.path(), &plan_with_key("classic", "rsa-2048"));
    let out = base.path().join("out");
    let first = spawn_apply(&plan, &out, &[]);
    let first_pid = first.id();
    let start = Instant::now();
    while !out.join(".certplan/lock").exists() && start.elapsed() < Duration::from_secs(30) {
        std::thread::sleep(Duration::from_millis(1));
    }
    let second = spawn_apply(&plan, &out, &[]);
    let second_pid = second.id();
    let first = finish(first, "certplan apply (first)");
    let second = finish(second, "certplan apply (second)");
    assert!(first.ok(), "{}", first.describe());
    assert!(second.ok(), "{}", second.describe());
    let waited: Vec<&Run> = [&first, &second].into_iter().filter(|r| r.stderr.contains("waiting:")).collect();
    assert_eq!(
        waited.len(),
        1,
        "exactly one apply must wait for the other:\n{}\n{}",
        first.describe(),
        second.describe()
    );
    let (waiter, holder) = if waited[0].line.contains("first") { (&first, second_pid) } else { (&second, first_pid) };
    assert!(
        waiter.stderr.contains(&format!("waiting: process {holder} is applying")),
        "the waiting apply must name process {holder}:\n{}",
        waiter.describe()
    );
    let other = if waiter.line.contains("first") { &second } else { &first };
    assert!(!other.stdout.contains(NOTHING_TO_DO), "the apply that held the lock wrote nothing:\n{}", other.describe());
    assert!(waiter.stdout.contains(NOTHING_TO_DO), "the apply that waited found work left:\n{}", waiter.describe());

    let (problems, cas) = verify_tree(&plan, &out);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert_eq!(cas, ["ca/kubernetes"]);
    let pki: Vec<String> = fs::read_dir(out.join("cluster/pki"))
        .expect("cluster/pki")
        .flatten()
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    let ca_files: BTreeSet<&str> = pki.iter().map(String::as_str).filter(|n| n.starts_with("ca")).collect();
    assert_eq!(ca_files, BTreeSet::from(["ca-key.pem", "ca.pem"]), "cluster/pki holds {pki:?}");
    let ca = fs::read(out.join("cluster/pki/ca.pem")).expect("CA");
    for (path, entry) in snapshot(&out) {
        if path.ends_with("/ca.pem")
            && let Entry::File { bytes, .. } = entry
        {
            assert!(bytes == ca, "{path} is not the CA of cluster/pki");
        }
    }
    assert!(temp_files(&snapshot(&out)).is_empty(), "temporary files left: {:?}", temp_files(&snapshot(&out)));
}

// ---------------------------------------------------------------------------
// Secrets
// ---------------------------------------------------------------------------

/// A secret and strings that give it away.
struct Secret {
    what: String,
    needles: Vec<String>,
}

/// A 40-character piece from the middle of a long string (the start of
/// key encodings is the same for every key of a kind).
fn middle(s: &str) -> Option<String> {
    let s: String = s.chars().filter(|c| !c.is_whitespace()).collect();
    (s.len() >= 80).then(|| s[s.len() / 2 - 20..s.len() / 2 + 20].to_string())
}

/// Every secret in the tree: private keys (their PEM body, the base64 of
/// their PEM as kubeconfigs embed it, their DER in hex), token.csv tokens,
/// bootstrap-token secrets, kubeconfig tokens.
fn secrets_in(out: &Path) -> Vec<Secret> {
    let mut secrets = Vec::new();
    for (relative, entry) in snapshot(out) {
        let Entry::File { bytes, .. } = entry else { continue };
        let text = String::from_utf8_lossy(&bytes).into_owned();
        if let Ok(blocks) = parse_pem(&bytes) {
            for block in blocks.iter().filter(|b| b.label.ends_with("PRIVATE KEY")) {
                let body = B64.encode(&block.der);
                let whole = B64.encode(&bytes);
                let needles = [middle(&body), middle(&whole), middle(&hex::encode(&block.der))];
                secrets.push(Secret {
                    what: format!("the key {relative}"),
                    needles: needles.into_iter().flatten().collect(),
                });
            }
        }
        if relative.ends_with("token.csv") {
            for row in text.lines().filter(|l| !l.trim().is_empty()) {
                let token = row.split(',').next().unwrap_or_default().to_string();
                secrets.push(Secret { what: format!("the token of {relative}"), needles: vec![token] });
            }
        }
        if let Some(secret) = yaml_field(&text, "token-secret") {
            let id = yaml_field(&text, "token-id").unwrap_or_default();
            secrets.push(Secret {
                what: format!("the bootstrap token secret of {relative}"),
                needles: vec![secret.clone(), format!("{id}.{secret}")],
            });
        }
        if let Some(token) = yaml_field(&text, "token") {
            secrets.push(Secret { what: format!("the token of {relative}"), needles: vec![token] });
        }
        if let Some(key) = yaml_field(&text, "client-key-data") {
            secrets.push(Secret {
                what: format!("the client-key-data of {relative}"),
                needles: middle(&key).into_iter().collect(),
            });
        }
    }
    secrets.retain(|s| s.needles.iter().all(|n| n.len() >= 16));
    secrets
}

/// The secrets of the tree, after checking that [`leaks`] finds each one in
/// the tree itself (so a miss elsewhere means no leak, not a blind test).
fn secrets_checked(out: &Path) -> Vec<Secret> {
    let secrets = secrets_in(out);
    let all: String = snapshot(out)
        .into_values()
        .filter_map(|e| match e {
            Entry::File { bytes, .. } => Some(String::from_utf8_lossy(&bytes).replace("PRIVATE KEY-----", "")),
            _ => None,
        })
        .collect::<Vec<_>>()
        .join("\n");
    for secret in &secrets {
        assert!(!secret.needles.is_empty(), "no way to recognise {}", secret.what);
        let found = leaks("the tree", &all, std::slice::from_ref(secret));
        assert!(!found.is_empty(), "the scan does not recognise {} in the tree itself", secret.what);
    }
    secrets
}

/// Leaks of `secrets` (or of any PEM private key) in `text`.
fn leaks(name: &str, text: &str, secrets: &[Secret]) -> Vec<String> {
    let mut found = Vec::new();
    if text.contains("PRIVATE KEY-----") {
        found.push(format!("{name}: prints a PEM private key header"));
    }
    // Wrapped or JSON-escaped base64 is found too.
    let squeezed: String = text.replace("\\n", "").chars().filter(|c| !c.is_whitespace()).collect();
    for secret in secrets {
        if let Some(needle) = secret.needles.iter().find(|n| text.contains(n.as_str()) || squeezed.contains(n.as_str()))
        {
            found.push(format!("{name}: contains {} (`{needle}`)", secret.what));
        }
    }
    found
}

/// Runs every command that reads or writes a tree of `plan` (and some that
/// fail), and returns their outputs, the secrets the tree held along the
/// way, and the state files written.
fn exercise(base: &Path, plan_name: &str, ca_id: &str, ca_line: (&str, &str)) -> (Vec<Run>, Vec<Secret>, Vec<String>) {
    let source = plan_with_key(plan_name, "ecdsa-p256");
    let plan = base.join(format!("{plan_name}.toml"));
    fs::write(&plan, &source).expect("write plan");
    let changed = base.join(format!("{plan_name}-ca-changed.toml"));
    fs::write(&changed, replaced(&source, ca_line.0, ca_line.1)).expect("write plan");
    let broken = base.join(format!("{plan_name}-broken.toml"));
    fs::write(&broken, replaced(&source, "service_cidr = \"", "service_cidr = \"nonsense ")).expect("write plan");
    let out = base.join(format!("{plan_name}-out"));
    let (plan_s, out_s, changed_s, broken_s) = (p(&plan), p(&out), p(&changed), p(&broken));
    let state = out.join(".certplan/state.json");
    let later = (time::OffsetDateTime::now_utc() + time::Duration::days(300))
        .format(&time::format_description::well_known::Rfc3339)
        .expect("format a time");
    let mut runs = Vec::new();
    let mut states = Vec::new();
    let mut secrets = Vec::new();
    for args in [
        vec!["check", plan_s],
        vec!["check", plan_s, "--format", "json"],
        vec!["check", broken_s],
        vec!["plan", plan_s, "--out", out_s],
        vec!["plan", plan_s, "--out", out_s, "--detailed-exitcode"],
        vec!["plan", plan_s, "--out", out_s, "--format", "json"],
        vec!["apply", plan_s, "--out", out_s, "--verbose"],
    ] {
        runs.push(run(&args));
    }
    assert!(runs.last().is_some_and(Run::ok), "apply failed:\n{}", runs.last().map(Run::describe).unwrap_or_default());
    secrets.extend(secrets_checked(&out));
    states.push(fs::read_to_string(&state).expect("state file"));
    for args in [
        vec!["apply", plan_s, "--out", out_s],
        vec!["plan", plan_s, "--out", out_s, "--format", "json"],
        vec!["plan", plan_s, "--out", out_s, "--detailed-exitcode", "--verbose"],
        vec!["inspect", plan_s, "--out", out_s],
        vec!["inspect", plan_s, "--out", out_s, "--format", "json"],
        vec!["inspect", plan_s, "--out", out_s, "--format", "json", "--verbose"],
        vec!["verify", plan_s, "--out", out_s],
        vec!["verify", plan_s, "--out", out_s, "--format", "json"],
        vec!["verify", plan_s, "--out", out_s, "--format", "prometheus"],
        vec!["inspect", plan_s, "--out", out_s, "--format", "prometheus"],
        vec!["graph", plan_s],
        vec!["diff", plan_s, changed_s],
        // Failing runs: a CA change without --rotate, a plan with errors.
        vec!["plan", changed_s, "--out", out_s],
        vec!["apply", changed_s, "--out", out_s],
        vec!["apply", changed_s, "--out", out_s, "--verbose"],
        vec!["apply", broken_s, "--out", out_s],
        vec!["apply", plan_s, "--out", out_s, "--rotate", "ca/no-such-ca"],
        // Renewal (keys kept and read back), late in the leaves' lifetime.
        vec!["apply", plan_s, "--out", out_s, "--now", &later],
    ] {
        runs.push(run(&args));
    }
    for run in &runs {
        eprintln!("{plan_name}: exit {:?}: {}", run.code, run.line);
    }
    let refused = &runs[runs.len() - 5];
    assert_eq!(refused.code, Some(1), "a CA change without --rotate must fail:\n{}", refused.describe());
    assert!(refused.stderr.contains(&format!("--rotate {ca_id}")), "{}", refused.describe());
    states.push(fs::read_to_string(&state).expect("state file"));

    // A lost CA key: the error names it, and prints no key.
    let doc = inspect(&plan, &out);
    let ca = doc["artifacts"].as_array().expect("artifacts").iter().find(|a| a["id"] == ca_id).expect("CA artifact");
    let keys = files_of(&out, ca, "key");
    assert!(!keys.is_empty(), "{ca_id} has no key file");
    let saved: Vec<Vec<u8>> = keys.iter().map(|k| fs::read(k).expect("CA key")).collect();
    for key in &keys {
        fs::remove_file(key).expect("remove a copy of the CA key");
    }
    let lost = run(&["apply", plan_s, "--out", out_s]);
    assert_eq!(lost.code, Some(1), "a lost CA key (every copy) must stop apply:\n{}", lost.describe());
    assert!(lost.stderr.contains(&format!("--rotate {ca_id}")), "{}", lost.describe());
    runs.push(lost);
    runs.push(run(&["plan", plan_s, "--out", out_s, "--format", "json"]));
    for (key, bytes) in keys.iter().zip(saved) {
        fs::write(key, bytes).expect("restore the CA key");
        fs::set_permissions(key, fs::Permissions::from_mode(0o600)).expect("chmod");
    }

    // Rotation: new keys, printed as changes, never as keys.
    runs.push(run(&["apply", plan_s, "--out", out_s, "--rotate", ca_id, "--verbose"]));
    assert!(runs.last().is_some_and(Run::ok), "{}", runs.last().map(Run::describe).unwrap_or_default());
    secrets.extend(secrets_checked(&out));
    states.push(fs::read_to_string(&state).expect("state file"));
    runs.push(run(&["inspect", plan_s, "--out", out_s, "--format", "json"]));
    (runs, secrets, states)
}

/// No command's output, and no state file, holds a private key, the base64
/// of one, or a token secret: check, plan (text, JSON, detailed exit code),
/// apply (first, again, renewing, rotating, verbose), inspect (text, JSON,
/// metrics), verify (text, JSON, metrics), graph, diff, and failing runs (a
/// CA changed without --rotate, a lost CA key, a broken plan, an unknown
/// --rotate id).
#[test]
fn no_command_output_and_no_state_file_holds_a_secret() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut findings = Vec::new();
    for (plan, ca, ca_line) in [
        ("classic", "ca/kubernetes", ("o = [\"k8s\"]", "o = [\"k8s-renamed\"]")),
        ("bootstrap", "ca/etcd", ("cn = \"etcd-ca\"", "cn = \"etcd-ca-renamed\"")),
    ] {
        let (runs, secrets, states) = exercise(base.path(), plan, ca, ca_line);
        let kinds = |what: &str| secrets.iter().filter(|s| s.what.contains(what)).count();
        assert!(kinds("the key") > 0, "{plan}: found no private key in the tree to look for");
        let tokens = if plan == "classic" { kinds("token.csv") } else { kinds("bootstrap token secret") };
        assert!(tokens > 0, "{plan}: found no token secret in the tree to look for");
        for run in &runs {
            findings.extend(leaks(&format!("{plan}: `{}`", run.line), &run.text(), &secrets));
        }
        for (i, state) in states.iter().enumerate() {
            findings.extend(leaks(&format!("{plan}: .certplan/state.json (after step {i})"), state, &secrets));
        }
    }
    assert!(findings.is_empty(), "secrets leaked:\n{}", findings.join("\n"));
}

// ---------------------------------------------------------------------------
// Modes
// ---------------------------------------------------------------------------

/// Modes do not depend on the umask: keys, token files, kubeconfigs and the
/// bootstrap-token Secret 0600; certificates, public keys, flag files and
/// RBAC manifests 0644; directories holding a secret 0700, others 0755.
#[test]
fn modes_do_not_depend_on_the_umask() {
    let base = tempfile::tempdir().expect("tempdir");
    let mut problems = Vec::new();
    for plan_name in ["classic", "bootstrap"] {
        let plan = base.path().join(format!("{plan_name}.toml"));
        fs::write(&plan, plan_with_key(plan_name, "ecdsa-p256")).expect("write plan");
        for umask in ["000", "077"] {
            let out = base.path().join(format!("{plan_name}-{umask}"));
            let run = run_with(&apply_args(&plan, &out, &[]), Some(umask));
            assert!(run.ok(), "{}", run.describe());
            let doc = inspect(&plan, &out);
            let mut roles: HashMap<String, String> = HashMap::new();
            for a in doc["artifacts"].as_array().expect("artifacts") {
                for f in a["files"].as_array().into_iter().flatten() {
                    roles.insert(
                        f["path"].as_str().unwrap_or_default().to_string(),
                        f["role"].as_str().unwrap_or_default().to_string(),
                    );
                }
            }
            let tree = snapshot(&out);
            let secret_dirs: BTreeSet<String> = tree
                .iter()
                .filter(|(path, e)| matches!(e, Entry::File { .. }) && is_secret_file(path, &roles, &tree))
                .map(|(path, _)| path.rsplit_once('/').map_or(String::new(), |(d, _)| d.to_string()))
                .collect();
            let context = format!("{plan_name}, umask {umask}");
            let root_mode = fs::metadata(&out).expect("out").mode() & 0o7777;
            if root_mode != 0o755 {
                problems.push(format!("{context}: the output directory is {root_mode:04o}, want 0755"));
            }
            for (path, entry) in &tree {
                let (is, want) = match entry {
                    Entry::Dir { mode } => (*mode, if secret_dirs.contains(path) { 0o700 } else { 0o755 }),
                    Entry::File { mode, .. } => {
                        if path == ".certplan/lock" {
                            continue;
                        }
                        (*mode, if is_secret_file(path, &roles, &tree) { 0o600 } else { 0o644 })
                    }
                    Entry::Link { .. } => {
                        problems.push(format!("{context}: {path} is a symlink"));
                        continue;
                    }
                };
                if is != want {
                    problems.push(format!("{context}: {path} is {is:04o}, want {want:04o}"));
                }
            }
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A file holds a secret by its role, or, whatever its role, by holding a
/// private key or a token.
fn is_secret_file(path: &str, roles: &HashMap<String, String>, tree: &BTreeMap<String, Entry>) -> bool {
    let by_role = roles.get(path).is_some_and(|r| matches!(r.as_str(), "key" | "kubeconfig" | "token-file"));
    let Some(Entry::File { bytes, .. }) = tree.get(path) else { return by_role };
    let text = String::from_utf8_lossy(bytes);
    by_role
        || text.contains("PRIVATE KEY-----")
        || yaml_field(&text, "token-secret").is_some()
        || yaml_field(&text, "client-key-data").is_some()
        || path.ends_with("token.csv")
}

// ---------------------------------------------------------------------------
// Bad file-system conditions
// ---------------------------------------------------------------------------

/// A failed apply must exit 1, name a path under `expect_path` in its
/// error, and change nothing in the tree (temporary files neither).
fn assert_failed_cleanly(
    run: &Run,
    expect_path: &str,
    before: &BTreeMap<String, Entry>,
    after: &BTreeMap<String, Entry>,
) {
    assert_eq!(run.code, Some(1), "the apply must fail with exit code 1:\n{}", run.describe());
    assert!(run.stderr.contains(expect_path), "the error must name the path (`{expect_path}`...):\n{}", run.describe());
    // New empty directories are harmless; new files, changed or lost ones are not.
    let changed: Vec<String> = differences(before, after)
        .into_iter()
        .filter(|d| {
            let path = d.trim_end_matches(": new");
            !(d.ends_with(": new") && matches!(after.get(path), Some(Entry::Dir { .. })))
        })
        .collect();
    assert!(changed.is_empty(), "a failed apply changed the tree:\n{}\n{}", changed.join("\n"), run.describe());
}

fn node1_moved(source: &str) -> String {
    replaced(source, "address = \"192.168.214.201\"", "address = \"192.168.214.211\"")
}

/// A read-only directory where a file must be rewritten: apply fails with
/// the path, changes nothing, and converges once the directory is writable.
#[test]
fn a_read_only_directory_fails_cleanly_and_loses_nothing() {
    require_root("a_read_only_directory_fails_cleanly_and_loses_nothing");
    let base = tempfile::tempdir().expect("tempdir");
    let (plan, source) = classic_fast(base.path(), "plan");
    let out = base.path().join("out");
    apply_ok(&plan, &out, &[]);
    let moved = base.path().join("moved.toml");
    fs::write(&moved, node1_moved(&source)).expect("write plan");
    let host_dir = out.join("hosts/node1");

    let plan_says = run(&["plan", p(&moved), "--out", p(&out)]);
    assert!(
        plan_says.stdout.contains("node1"),
        "the changed plan must rewrite files of node1:\n{}",
        plan_says.describe()
    );

    let before = snapshot(&out);
    // As root, chmod 0555 does not stop writes: use a read-only bind mount,
    // else chattr +i on the directories.
    let ssl = host_dir.join("etc/kubernetes/ssl");
    let mount = Mount::read_only_bind(&host_dir);
    let mut immutable = Vec::new();
    if let Err(e) = &mount {
        eprintln!("read-only bind mount impossible ({e}); trying chattr +i");
        for dir in [host_dir.join("etc/kubernetes"), ssl.clone()] {
            match sh("chattr", &["+i", p(&dir)]) {
                Ok(()) => immutable.push(Immutable { path: dir }),
                Err(e) => {
                    eprintln!("SKIPPED: neither a read-only bind mount nor chattr +i is possible here: {e}");
                    return;
                }
            }
        }
    }
    let failed = run(&["apply", p(&moved), "--out", p(&out)]);
    let after = snapshot(&out);
    drop(immutable);
    drop(mount);
    assert_failed_cleanly(&failed, "hosts/node1", &before, &after);
    assert!(failed.stderr.contains("Read-only") || failed.stderr.contains("ermission"), "{}", failed.describe());

    apply_ok(&moved, &out, &[]);
    assert_converged(&moved, &out);
    let (problems, _) = verify_tree(&moved, &out);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A full disk: apply fails with the path and "No space left", the previous
/// files and state intact, no temporary file left; with room again it
/// converges.
#[test]
fn a_full_disk_fails_cleanly_and_the_next_apply_converges() {
    require_root("a_full_disk_fails_cleanly_and_the_next_apply_converges");
    let base = tempfile::tempdir().expect("tempdir");
    let (plan, source) = classic_fast(base.path(), "plan");
    let mut bigger = source.clone();
    for n in 0..8 {
        bigger.push_str(&format!(
            "\n[[hosts]]\nname = \"extra{n}\"\naddress = \"192.168.216.{}\"\nroles = [\"worker\"]\n",
            n + 10
        ));
    }
    let bigger_plan = base.path().join("bigger.toml");
    fs::write(&bigger_plan, bigger).expect("write plan");
    let out = base.path().join("out");
    let mount = Mount::tmpfs(&out, "size=8m,mode=0755").unwrap_or_else(|e| panic!("cannot mount a tmpfs: {e}"));
    apply_ok(&plan, &out, &[]);
    // Leave a few pages free: far less than the bigger plan needs.
    let used = Command::new("df").args(["--output=used", "-k", p(&out)]).output().expect("df");
    let used: u64 =
        String::from_utf8_lossy(&used.stdout).lines().nth(1).and_then(|l| l.trim().parse().ok()).expect("df");
    mount.remount(&format!("size={}k", used + 24)).expect("shrink the tmpfs");
    let before = snapshot(&out);
    let failed = run(&apply_args(&bigger_plan, &out, &[]));
    let after = snapshot(&out);
    assert!(failed.stderr.contains("No space left"), "the error must say the disk is full:\n{}", failed.describe());
    assert_failed_cleanly(&failed, &out.display().to_string(), &before, &after);
    // The smaller plan still sees an intact tree.
    assert_converged(&plan, &out);

    mount.remount("size=32m").expect("grow the tmpfs");
    apply_ok(&bigger_plan, &out, &[]);
    assert_converged(&bigger_plan, &out);
    let (problems, _) = verify_tree(&bigger_plan, &out);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
    assert!(temp_files(&snapshot(&out)).is_empty(), "temporary files left: {:?}", temp_files(&snapshot(&out)));
    drop(mount);
}

/// A regular file where the tree needs a directory: apply fails naming it
/// and changes nothing; once it is gone apply repairs the tree.
#[test]
fn a_file_where_a_directory_must_be_fails_cleanly() {
    let base = tempfile::tempdir().expect("tempdir");
    let (plan, _) = classic_fast(base.path(), "plan");
    let out = base.path().join("out");
    apply_ok(&plan, &out, &[]);
    let etc = out.join("hosts/node1/etc");
    fs::remove_dir_all(&etc).expect("remove etc");
    fs::write(&etc, "not a directory\n").expect("plant a file");
    let before = snapshot(&out);
    let failed = run(&apply_args(&plan, &out, &[]));
    let after = snapshot(&out);
    assert_failed_cleanly(&failed, "hosts/node1/etc", &before, &after);
    assert_eq!(fs::read_to_string(&etc).expect("the planted file"), "not a directory\n");

    fs::remove_file(&etc).expect("remove the planted file");
    apply_ok(&plan, &out, &[]);
    assert_converged(&plan, &out);
    let (problems, _) = verify_tree(&plan, &out);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A certificate and a key replaced by symlinks to files outside the tree:
/// apply replaces the links with regular files, never writes through them,
/// never takes them for material.
#[test]
fn a_planted_symlink_is_replaced_never_written_through() {
    let base = tempfile::tempdir().expect("tempdir");
    let (plan, _) = classic_fast(base.path(), "plan");
    let out = base.path().join("out");
    apply_ok(&plan, &out, &[]);
    let doc = inspect(&plan, &out);
    let find = |id: &str, role: &str| {
        let a = doc["artifacts"].as_array().expect("artifacts").iter().find(|a| a["id"] == id).expect(id);
        files_of(&out, a, role).into_iter().find(|f| f.to_string_lossy().contains("hosts/node1/")).expect("file")
    };
    let cert = find("cert/kubelet-server/node1", "cert");
    let key = find("cert/kubelet/node1", "key");
    let mut victims = Vec::new();
    for (i, target) in [&cert, &key].into_iter().enumerate() {
        let victim = base.path().join(format!("victim{i}"));
        fs::write(&victim, format!("victim {i}: must stay as it is\n")).expect("victim");
        fs::set_permissions(&victim, fs::Permissions::from_mode(0o644)).expect("chmod");
        fs::remove_file(target).expect("remove");
        std::os::unix::fs::symlink(&victim, target).expect("symlink");
        victims.push(victim);
    }
    let plan_run = run(&["plan", p(&plan), "--out", p(&out)]);
    assert!(plan_run.ok(), "{}", plan_run.describe());
    let applied = apply_ok(&plan, &out, &[]);
    for (i, victim) in victims.iter().enumerate() {
        assert_eq!(
            fs::read_to_string(victim).expect("victim"),
            format!("victim {i}: must stay as it is\n"),
            "apply wrote through a symlink to {}:\n{}",
            victim.display(),
            applied.describe()
        );
        assert_eq!(fs::metadata(victim).expect("victim").mode() & 0o7777, 0o644, "apply changed the victim's mode");
    }
    for path in [&cert, &key] {
        let meta = fs::symlink_metadata(path).expect("repaired file");
        assert!(meta.file_type().is_file(), "{} is still not a regular file", path.display());
    }
    assert_converged(&plan, &out);
    let (problems, _) = verify_tree(&plan, &out);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// A directory of the tree replaced by a symlink to a directory outside:
/// an apply that must write there neither writes through it nor succeeds
/// silently; it fails naming the path (or replaces the link), and the
/// outside directory is untouched.
#[test]
fn a_symlinked_directory_is_never_written_through() {
    let base = tempfile::tempdir().expect("tempdir");
    let (plan, source) = classic_fast(base.path(), "plan");
    let out = base.path().join("out");
    apply_ok(&plan, &out, &[]);
    let moved = base.path().join("moved.toml");
    fs::write(&moved, node1_moved(&source)).expect("write plan");
    let ssl = out.join("hosts/node1/etc/kubernetes/ssl");
    let outside = base.path().join("outside-ssl");
    fs::rename(&ssl, &outside).expect("move ssl out of the tree");
    std::os::unix::fs::symlink(&outside, &ssl).expect("symlink");
    let outside_before = snapshot(&outside);

    let attempt = run(&apply_args(&moved, &out, &[]));
    let changed = differences(&outside_before, &snapshot(&outside));
    assert!(
        changed.is_empty(),
        "apply wrote through the symlinked directory {}:\n{}\n{}",
        ssl.display(),
        changed.join("\n"),
        attempt.describe()
    );
    let still_link = fs::symlink_metadata(&ssl).expect("ssl").file_type().is_symlink();
    if attempt.ok() {
        assert!(!still_link, "apply succeeded, yet the files it wrote are behind a symlink:\n{}", attempt.describe());
    } else {
        assert_eq!(attempt.code, Some(1), "{}", attempt.describe());
        assert!(
            attempt.stderr.contains("hosts/node1/etc/kubernetes/ssl"),
            "the error must name the path:\n{}",
            attempt.describe()
        );
        // With the link gone the tree can be repaired.
        fs::remove_file(&ssl).expect("remove the link");
        apply_ok(&moved, &out, &[]);
    }
    assert_converged(&moved, &out);
    let (problems, _) = verify_tree(&moved, &out);
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

/// With `[secrets]`, a `SIGKILL` at any moment of a fresh apply, or of a
/// reissue of everything, never leaves a secret in plaintext in the tree
/// (temporary files included) nor a torn `.age` file: every encrypted file
/// decrypts whole with the identity. The same command run again, with the
/// identity, converges.
#[test]
fn sigkill_with_encryption_never_leaves_plaintext_or_a_torn_age_file() {
    let base = tempfile::tempdir().expect("tempdir");
    let (identity, recipient) = certplan::secrets::generate();
    let keyring = certplan::secrets::Keyring::parse(&identity, "the test identity").expect("an identity");
    let identity_file = base.path().join("identity.txt");
    fs::write(&identity_file, identity.as_bytes()).expect("write the identity");
    let with_secrets = |source: &str| format!("{source}\n[secrets]\nage_recipients = [\"{recipient}\"]\n");
    let source = with_secrets(&large_rsa_plan(10));
    let plan = base.path().join("plan.toml");
    fs::write(&plan, &source).expect("write plan");
    let reissue = base.path().join("reissue.toml");
    fs::write(&reissue, replaced(&source, "validity = \"8760h\"", "validity = \"8000h\"")).expect("write plan");
    let identity_args = ["--identity", p(&identity_file)];

    let reference = base.path().join("reference");
    let started = Instant::now();
    apply_ok(&plan, &reference, &[]);
    let fresh = started.elapsed();
    let measure = base.path().join("measure");
    copy_tree(&reference, &measure);
    let started = Instant::now();
    apply_ok(&reissue, &measure, &identity_args);
    let reissuing = started.elapsed();

    let (mut rng, seed) = Rng::new();
    eprintln!("encrypted kill test: seed {seed} (SAFETY_SEED={seed} replays), fresh {fresh:?}, reissue {reissuing:?}");
    let mut findings = Vec::new();
    for i in 0..8 {
        let out = base.path().join(format!("run{i}"));
        let (this_plan, total) = if i % 2 == 0 {
            (&plan, fresh)
        } else {
            copy_tree(&reference, &out);
            (&reissue, reissuing)
        };
        let mut child = spawn_apply(this_plan, &out, &identity_args);
        std::thread::sleep(total.mul_f64(rng.unit()));
        child.kill().ok();
        let killed = finish(child, &format!("run {i}"));
        for (relative, entry) in snapshot(&out) {
            let Entry::File { bytes, .. } = entry else { continue };
            let plain = |needle: &[u8]| bytes.windows(needle.len()).any(|w| w == needle);
            if plain(b"PRIVATE KEY") || plain(b"client-key-data") {
                findings.push(format!("run {i}: `{relative}` holds a secret in plaintext ({:?})", killed.code));
            }
            if relative.ends_with(".age") && keyring.open(&relative, &bytes).is_err() {
                findings.push(format!("run {i}: `{relative}` does not decrypt whole: torn"));
            }
        }
        let again = run(&apply_args(this_plan, &out, &identity_args));
        if !again.ok() {
            findings.push(format!("run {i}: the apply after the kill failed:\n{}", again.describe()));
            continue;
        }
        let settled = run(&apply_args(this_plan, &out, &identity_args));
        if !settled.stdout.contains(NOTHING_TO_DO) {
            findings.push(format!("run {i}: a second apply after the kill still had work:\n{}", settled.describe()));
        }
    }
    assert!(findings.is_empty(), "seed {seed}:\n{}", findings.join("\n"));
}

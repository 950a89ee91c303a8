//! A CA certplan does not hold, played by `openssl`: made in a directory,
//! named in a plan as `[cas.NAME] external`, and signing every request an
//! apply left in `DIR/requests/` the way an operator would, copying the
//! extensions each request asks for (`openssl x509 -req -copy_extensions
//! copyall`).

use std::path::{Path, PathBuf};
use std::process::Command;

/// An external CA: its certificate and key files.
pub struct ExternalCa {
    pub cert: PathBuf,
    pub key: PathBuf,
}

/// Runs openssl; panics with its output when it fails.
pub fn openssl(args: &[&str]) {
    let output = Command::new("openssl").args(args).output().expect("run openssl");
    assert!(
        output.status.success(),
        "openssl {} failed:\n{}{}",
        args.join(" "),
        String::from_utf8_lossy(&output.stdout),
        String::from_utf8_lossy(&output.stderr)
    );
}

/// Makes a self-signed ECDSA P-256 CA named `cn` in `dir` (`<stem>.crt`, `<stem>.key`).
pub fn make_ca(dir: &Path, stem: &str, cn: &str) -> ExternalCa {
    let cert = dir.join(format!("{stem}.crt"));
    let key = dir.join(format!("{stem}.key"));
    let (c, k) = (cert.to_str().expect("UTF-8 path"), key.to_str().expect("UTF-8 path"));
    openssl(&[
        "req",
        "-x509",
        "-newkey",
        "ec",
        "-pkeyopt",
        "ec_paramgen_curve:P-256",
        "-nodes",
        "-keyout",
        k,
        "-out",
        c,
        "-days",
        "3650",
        "-subj",
        &format!("/CN={cn}"),
        "-addext",
        "basicConstraints=critical,CA:TRUE",
        "-addext",
        "keyUsage=critical,keyCertSign,cRLSign,digitalSignature",
    ]);
    ExternalCa { cert, key }
}

/// The plan source with `[cas.NAME]` made external, its certificate at
/// `file` (relative to the plan).
pub fn with_external(source: &str, ca: &str, file: &str) -> String {
    let table = format!("[cas.{ca}]\n");
    assert!(source.contains(&table), "the plan has no `[cas.{ca}]`");
    source.replacen(&table, &format!("{table}external = {{ cert = \"{file}\" }}\n"), 1)
}

/// Every request (`*.csr`) under `out/requests`, by path.
pub fn requests(out: &Path) -> Vec<PathBuf> {
    fn walk(dir: &Path, into: &mut Vec<PathBuf>) {
        let Ok(entries) = std::fs::read_dir(dir) else { return };
        for entry in entries {
            let path = entry.expect("a directory entry").path();
            if path.is_dir() {
                walk(&path, into);
            } else if path.extension().is_some_and(|e| e == "csr") {
                into.push(path);
            }
        }
    }
    let mut found = Vec::new();
    walk(&out.join("requests"), &mut found);
    found.sort();
    found
}

/// Signs one request with the CA as asked, for `days`, into `<request>.crt`
/// (the `.csr` replaced); returns that path.
pub fn sign(ca: &ExternalCa, request: &Path, serial: u32, days: u32) -> PathBuf {
    let signed = request.with_extension("crt");
    openssl(&[
        "x509",
        "-req",
        "-in",
        request.to_str().expect("UTF-8 path"),
        "-CA",
        ca.cert.to_str().expect("UTF-8 path"),
        "-CAkey",
        ca.key.to_str().expect("UTF-8 path"),
        "-set_serial",
        &serial.to_string(),
        "-days",
        &days.to_string(),
        "-copy_extensions",
        "copyall",
        "-out",
        signed.to_str().expect("UTF-8 path"),
    ]);
    signed
}

/// Signs every request an apply left in `out`; returns how many.
pub fn sign_all(ca: &ExternalCa, out: &Path) -> usize {
    let requests = requests(out);
    for (n, request) in requests.iter().enumerate() {
        sign(ca, request, 1000 + u32::try_from(n).expect("few requests"), 365);
    }
    requests.len()
}

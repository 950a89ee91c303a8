//! The Debian package, made as the book's "Debian package" section says
//! (`book/src/getting-started.md`): its build line, `bash packaging/deb.sh`,
//! builds the release binary, writes the man pages and completions with it
//! and runs `cargo deb --no-build`. dpkg-deb, not cargo-deb, reads the
//! package back: the crate's name and version, the binary, a man page per
//! command and the completion scripts where Debian's shells look for them.
//! Unpacked, its binary checks `plans/classic.toml`, and the man pages and
//! completions beside it are the ones it writes itself.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::common::{describe, documented, repo_root, suite_target_dir};

/// Each shell's completion script, where the package installs it.
const COMPLETIONS: [(&str, &str); 3] = [
    ("bash", "usr/share/bash-completion/completions/certplan"),
    ("zsh", "usr/share/zsh/vendor-completions/_certplan"),
    ("fish", "usr/share/fish/vendor_completions.d/certplan.fish"),
];

const MAN_DIR: &str = "usr/share/man/man1";

/// Runs `command`; its stdout, or a failure with everything it printed.
fn run(command: &mut Command, what: &str) -> String {
    let output = command.output().unwrap_or_else(|e| panic!("run {what}: {e}"));
    assert!(output.status.success(), "{what} failed:\n{}", describe(&output));
    String::from_utf8_lossy(&output.stdout).into_owned()
}

/// Without cargo-deb the test fails: passing without a package would hide
/// that nothing was checked.
fn require_cargo_deb() {
    let output = Command::new(env!("CARGO")).args(["deb", "--version"]).output().expect("run cargo");
    assert!(
        output.status.success(),
        "cargo-deb is not installed: tests/run.sh installs the pinned version \
         (`cargo install cargo-deb --locked --version ...`)\n{}",
        describe(&output)
    );
}

/// Runs the book's build line in the checkout and returns the path of the
/// package it printed. The release build goes into the suite's target
/// directory, where a later run finds it up to date.
fn build_package(line: &str) -> PathBuf {
    let stdout = run(
        Command::new("bash")
            .arg("-c")
            .arg(line)
            .current_dir(repo_root())
            .env("CARGO", env!("CARGO"))
            .env("CARGO_TARGET_DIR", suite_target_dir()),
        &format!("`{line}`"),
    );
    let path = stdout.lines().next_back().unwrap_or_else(|| panic!("`{line}` printed no path"));
    let path = PathBuf::from(path.trim());
    path.canonicalize().unwrap_or_else(|e| panic!("`{line}` printed {}: {e}", path.display()))
}

/// The book's install line names, with a glob under `target/`, the file
/// the build line made.
fn assert_install_line_names(install: &str, deb: &Path) {
    let pattern = install
        .strip_prefix("sudo dpkg -i target/")
        .unwrap_or_else(|| panic!("the book installs with `sudo dpkg -i target/...`, not `{install}`"));
    let (before, after) = pattern.split_once('*').expect("the book names the package with a glob");
    let target = suite_target_dir().canonicalize().expect("the suite's target directory");
    let relative = deb
        .strip_prefix(&target)
        .unwrap_or_else(|_| panic!("{} is not under {}", deb.display(), target.display()))
        .to_string_lossy()
        .into_owned();
    assert!(relative.starts_with(before) && relative.ends_with(after), "`{install}` does not match {relative}");
    let version = env!("CARGO_PKG_VERSION");
    assert!(relative.starts_with(&format!("debian/certplan_{version}_")), "{relative} is not version {version}");
}

/// A file's size in bytes.
fn file_size(path: &Path) -> u64 {
    std::fs::metadata(path).unwrap_or_else(|e| panic!("{}: {e}", path.display())).len()
}

/// `dpkg-deb -c`: each path in the package, without its leading `./` or a
/// directory's trailing `/`, with its mode as `ls -l` shows it.
fn contents(deb: &Path) -> BTreeMap<String, String> {
    let listing = run(Command::new("dpkg-deb").arg("-c").arg(deb), "dpkg-deb -c");
    listing
        .lines()
        .filter_map(|line| {
            // -rwxr-xr-x root/root 8123456 2026-12-07 20:53 ./usr/bin/certplan
            let words: Vec<&str> = line.split_whitespace().collect();
            let path = words.iter().find_map(|w| w.strip_prefix("./"))?;
            Some((path.trim_end_matches('/').to_string(), (*words.first()?).to_string()))
        })
        .collect()
}

/// `dpkg-deb -f`: the package's name, version and dependencies.
fn assert_control(deb: &Path) {
    let text = run(Command::new("dpkg-deb").arg("-f").arg(deb).args(["Package", "Version", "Depends"]), "dpkg-deb -f");
    let fields: BTreeMap<&str, &str> = text.lines().filter_map(|line| line.split_once(": ")).collect();
    assert_eq!(fields.get("Package"), Some(&"certplan"), "{text}");
    assert_eq!(fields.get("Version"), Some(&env!("CARGO_PKG_VERSION")), "the crate's version, no revision:\n{text}");
    assert!(
        fields.get("Depends").is_some_and(|d| d.contains("libc6")),
        "Depends comes from dpkg-shlibdeps (dpkg-dev) and names the C library:\n{text}"
    );
}

/// The files the listing shows in place, with the modes Debian expects.
fn assert_listed(files: &BTreeMap<String, String>) {
    let mode = |path: &str| files.get(path).map_or("absent", String::as_str);
    assert_eq!(mode("usr/bin/certplan"), "-rwxr-xr-x", "the binary, in {files:#?}");
    for (shell, path) in COMPLETIONS {
        assert_eq!(mode(path), "-rw-r--r--", "the {shell} completion, in {files:#?}");
    }
    for doc in ["README.md", "copyright"] {
        let path = format!("usr/share/doc/certplan/{doc}");
        assert_eq!(mode(path.as_str()), "-rw-r--r--", "{doc}, in {files:#?}");
    }
    let page = format!("{MAN_DIR}/certplan.1.gz");
    assert_eq!(mode(page.as_str()), "-rw-r--r--", "the man page, in {files:#?}");
}

/// The man pages are the ones the packaged binary writes with `man --dir`,
/// every one and no other, gzipped.
fn assert_man_pages(files: &BTreeMap<String, String>, root: &Path, binary: &Path) {
    let written = tempfile::TempDir::new().expect("temp dir");
    run(Command::new(binary).arg("man").arg("--dir").arg(written.path()), "certplan man --dir");
    let mut expected = BTreeSet::new();
    for entry in std::fs::read_dir(written.path()).expect("read the written pages") {
        let entry = entry.expect("dir entry");
        let name = entry.file_name().to_string_lossy().into_owned();
        let packaged = root.join(MAN_DIR).join(format!("{name}.gz"));
        let text = run(Command::new("gzip").arg("-dc").arg(&packaged), &format!("gzip -dc {}", packaged.display()));
        let page = std::fs::read_to_string(entry.path()).expect("read a written page");
        assert_eq!(text, page, "{MAN_DIR}/{name}.gz is not the page `certplan man --dir` writes");
        expected.insert(format!("{MAN_DIR}/{name}.gz"));
    }
    assert!(expected.len() > 1, "`certplan man --dir` writes a page per subcommand: {expected:?}");
    let packaged: BTreeSet<String> = files
        .iter()
        .filter(|(path, mode)| path.starts_with("usr/share/man/") && mode.starts_with('-'))
        .map(|(path, _)| path.clone())
        .collect();
    assert_eq!(packaged, expected, "the package's man pages");
    for page in &packaged {
        assert_eq!(files[page], "-rw-r--r--", "{page}");
    }
}

/// Each completion file is the script the packaged binary prints for its
/// shell.
fn assert_completions(root: &Path, binary: &Path) {
    for (shell, path) in COMPLETIONS {
        let packaged = std::fs::read_to_string(root.join(path)).unwrap_or_else(|e| panic!("read {path}: {e}"));
        let printed = run(Command::new(binary).args(["completions", shell]), &format!("certplan completions {shell}"));
        assert_eq!(packaged.trim_end(), printed.trim_end(), "{path} is not the {shell} completion");
    }
}

#[test]
#[ignore = "builds the release binary (minutes: LTO) and a package with cargo-deb: run tests/run.sh"]
fn the_debian_package_installs_the_binary_its_man_pages_and_completions() {
    require_cargo_deb();
    let lines = documented("getting-started.md", "sh", "packaging/deb.sh");
    let [build, install] = lines.as_slice() else {
        panic!("the book's Debian package block is a build line and an install line: {lines:?}");
    };
    let deb = build_package(build);
    assert_install_line_names(install, &deb);
    assert_control(&deb);
    let files = contents(&deb);
    assert_listed(&files);

    let root = tempfile::TempDir::new().expect("temp dir");
    run(Command::new("dpkg-deb").arg("-x").arg(&deb).arg(root.path()), "dpkg-deb -x");
    let binary = root.path().join("usr/bin/certplan");
    let check = Command::new(&binary)
        .current_dir(repo_root())
        .args(["check", "plans/classic.toml"])
        .output()
        .expect("run the packaged certplan");
    assert_eq!(check.status.code(), Some(0), "{}", describe(&check));
    assert_eq!(String::from_utf8_lossy(&check.stderr), "plans/classic.toml: ok (0 warning(s))\n");
    let version = run(Command::new(&binary).arg("--version"), "certplan --version");
    assert_eq!(version.trim(), format!("certplan {}", env!("CARGO_PKG_VERSION")));

    let (packaged_size, built_size) = (file_size(&binary), file_size(&suite_target_dir().join("release/certplan")));
    assert!(
        packaged_size < built_size,
        "the packaged binary is stripped: {packaged_size} bytes, {built_size} as built"
    );

    assert_man_pages(&files, root.path(), &binary);
    assert_completions(root.path(), &binary);
}

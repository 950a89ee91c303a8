//! A git repository in a temporary directory, for the tests of what certplan
//! offers the tools around a plan repository: the git diff driver, the
//! pre-commit hook, the GitHub Action. Every command run in it sees none of
//! the machine's or the user's git configuration (`HOME` is a directory
//! beside the work tree, `GIT_CONFIG_NOSYSTEM` is set) and finds the
//! `certplan` under test first on `PATH`, so the book's commands run as
//! written.

use std::ffi::{OsStr, OsString};
use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use super::describe;

/// Variables that would point git at another repository or configuration:
/// set when the suite runs inside a git hook, or by the user's shell.
const GIT_ENVIRONMENT: &[&str] = &[
    "GIT_DIR",
    "GIT_WORK_TREE",
    "GIT_INDEX_FILE",
    "GIT_OBJECT_DIRECTORY",
    "GIT_ALTERNATE_OBJECT_DIRECTORIES",
    "GIT_CONFIG",
    "GIT_CONFIG_GLOBAL",
    "GIT_CONFIG_PARAMETERS",
    "GIT_CONFIG_COUNT",
    "GIT_EXTERNAL_DIFF",
    "GIT_DIFF_OPTS",
    "GIT_PAGER",
    "PAGER",
];

/// A work tree with a home directory beside it; both removed on drop.
pub struct Repo {
    dir: tempfile::TempDir,
}

impl Repo {
    /// `git init`: a new repository whose branch is `main`.
    pub fn init() -> Self {
        let dir = tempfile::TempDir::new().expect("temp dir");
        std::fs::create_dir(dir.path().join("home")).expect("mkdir home");
        std::fs::create_dir(dir.path().join("work")).expect("mkdir work");
        let repo = Self { dir };
        repo.git(&["init", "-q", "-b", "main"]);
        repo
    }

    /// The work tree.
    pub fn path(&self) -> PathBuf {
        self.dir.path().join("work")
    }

    /// The directory `HOME` points at.
    pub fn home(&self) -> PathBuf {
        self.dir.path().join("home")
    }

    /// `program` in the work tree, with the repository's environment.
    pub fn command(&self, program: impl AsRef<OsStr>) -> Command {
        let mut command = Command::new(program);
        command
            .current_dir(self.path())
            .env("HOME", self.home())
            .env("XDG_CONFIG_HOME", self.home().join(".config"))
            .env("GIT_CONFIG_NOSYSTEM", "1")
            .env("PATH", path_with_certplan())
            .env("NO_COLOR", "1");
        for name in GIT_ENVIRONMENT {
            command.env_remove(name);
        }
        command
    }

    /// Runs git and returns its output, whatever its exit status.
    pub fn git_output(&self, args: &[&str]) -> Output {
        self.command("git").args(args).output().expect("run git (the tests of the git diff driver need it)")
    }

    /// Runs git, which must succeed; returns its stdout.
    pub fn git(&self, args: &[&str]) -> String {
        let output = self.git_output(args);
        assert!(output.status.success(), "`git {}` failed:\n{}", args.join(" "), describe(&output));
        String::from_utf8_lossy(&output.stdout).into_owned()
    }

    /// Runs a line of shell (`sh -c`), as a reader pastes it from the book;
    /// it must succeed.
    pub fn sh(&self, line: &str) {
        let output = self.command("sh").args(["-c", line]).output().expect("run sh");
        assert!(output.status.success(), "`{line}` failed:\n{}", describe(&output));
    }

    /// Writes a file of the work tree, making its directory.
    pub fn write(&self, path: &str, text: &str) {
        let path = self.path().join(path);
        std::fs::create_dir_all(path.parent().expect("a file has a parent")).expect("mkdir");
        std::fs::write(path, text).expect("write file");
    }

    /// Appends to a file of the work tree.
    pub fn append(&self, path: &str, text: &str) {
        let before = std::fs::read_to_string(self.path().join(path)).expect("read file");
        self.write(path, &format!("{before}{text}"));
    }

    /// Commits everything in the work tree.
    pub fn commit_all(&self, message: &str) {
        self.git(&["add", "-A"]);
        self.git(&["-c", "user.name=t", "-c", "user.email=t@t", "commit", "-q", "-m", message]);
    }
}

/// `PATH` with the directory of the `certplan` under test first.
pub fn path_with_certplan() -> OsString {
    let bin = Path::new(env!("CARGO_BIN_EXE_certplan")).parent().expect("the binary is in a directory");
    let inherited = std::env::var_os("PATH").unwrap_or_default();
    let dirs = std::iter::once(bin.to_path_buf()).chain(std::env::split_paths(&inherited));
    std::env::join_paths(dirs).expect("PATH entries without the separator")
}

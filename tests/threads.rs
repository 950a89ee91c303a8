//! Long runs: `--jobs N` (or `CERTPLAN_JOBS`) bounds the threads a run
//! uses, for shared CI runners — sampled from `/proc` while an apply of a
//! plan with many RSA keys runs, a run with one job never has more than two
//! threads (the main one and one worker), while a run without the flag uses
//! every core; `--jobs 0` is refused. And a long apply shows its progress on
//! a terminal (a pseudo-terminal from `script`), never when its output is
//! piped, quiet, `NO_COLOR` or `TERM=dumb`.

use std::path::Path;
use std::process::{Command, Stdio};
use std::time::Duration;

use crate::common::{certplan, plan_with_key};

const BIN: &str = env!("CARGO_BIN_EXE_certplan");

/// The classic plan with RSA keys and `extra` more workers: enough key
/// generation to watch.
fn busy_plan(dir: &Path) -> std::path::PathBuf {
    let mut source = plan_with_key("classic", "rsa-2048");
    for n in 0..10 {
        source.push_str(&format!(
            "\n[[hosts]]\nname = \"worker{n}\"\naddress = \"192.168.215.{}\"\nroles = [\"worker\"]\n",
            n + 10
        ));
    }
    let plan = dir.join("busy.toml");
    std::fs::write(&plan, source).expect("write the plan");
    plan
}

/// The most threads an `apply` had at once, sampled every millisecond.
fn most_threads(plan: &Path, out: &Path, env: &[(&str, &str)], args: &[&str]) -> usize {
    let mut command = Command::new(BIN);
    command.args(["apply", "--quiet"]).arg(plan).arg("--out").arg(out).args(args);
    command.env_remove("CERTPLAN_JOBS").stdout(Stdio::null()).stderr(Stdio::piped());
    for (name, value) in env {
        command.env(name, value);
    }
    let mut child = command.spawn().expect("spawn certplan");
    let tasks = format!("/proc/{}/task", child.id());
    let mut most = 0;
    loop {
        if let Ok(entries) = std::fs::read_dir(&tasks) {
            most = most.max(entries.count());
        }
        if child.try_wait().expect("wait for certplan").is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    let output = child.wait_with_output().expect("collect certplan");
    assert!(output.status.success(), "apply {args:?} failed: {}", String::from_utf8_lossy(&output.stderr));
    most
}

#[test]
fn jobs_bounds_the_threads_of_a_run() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = busy_plan(dir.path());
    let one = most_threads(&plan, &dir.path().join("one"), &[], &["--jobs", "1"]);
    assert!((1..=2).contains(&one), "`--jobs 1` ran {one} threads at once");
    let from_env = most_threads(&plan, &dir.path().join("env"), &[("CERTPLAN_JOBS", "1")], &[]);
    assert!((1..=2).contains(&from_env), "`CERTPLAN_JOBS=1` ran {from_env} threads at once");
    let cores = std::thread::available_parallelism().map_or(1, std::num::NonZeroUsize::get);
    if cores >= 2 {
        let all = most_threads(&plan, &dir.path().join("all"), &[], &[]);
        assert!(all > 2, "without `--jobs`, {cores} cores but at most {all} threads: the sampling sees nothing");
    }
    let zero = certplan().args(["check", "--jobs", "0"]).arg(&plan).output().expect("run certplan");
    assert!(!zero.status.success(), "`--jobs 0` was accepted");
    assert!(String::from_utf8_lossy(&zero.stderr).contains("--jobs"), "the refusal does not name `--jobs`");
}

/// Runs `certplan ARGS` on a pseudo-terminal (`script`), returning what the
/// terminal showed.
fn on_a_terminal(dir: &Path, args: &str, env: &[(&str, &str)]) -> String {
    let typescript = dir.join("typescript");
    let mut command = Command::new("script");
    command.args(["-qec", &format!("{BIN} {args}")]).arg(&typescript).stdout(Stdio::null());
    command.env_remove("NO_COLOR").env("TERM", "xterm");
    for (name, value) in env {
        command.env(name, value);
    }
    let status = command.status().expect("run script (util-linux)");
    assert!(status.success(), "`certplan {args}` on a terminal failed");
    String::from_utf8_lossy(&std::fs::read(&typescript).expect("read the typescript")).into_owned()
}

#[test]
fn a_long_apply_shows_progress_on_a_terminal_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let plan = busy_plan(dir.path());
    let plan = plan.to_str().expect("a UTF-8 path");
    let apply = |name: &str| format!("apply {plan} --out {}", dir.path().join(name).display());
    let bar = |shown: &str| shown.contains("keys [") && shown.contains('/');
    let shown = on_a_terminal(dir.path(), &apply("tty"), &[]);
    assert!(bar(&shown), "a long apply on a terminal shows no progress:\n{shown}");
    assert!(shown.contains("artifact(s) changed"), "the summary is missing on a terminal:\n{shown}");
    for (what, args, env) in [
        ("--quiet", format!("--quiet {}", apply("quiet")), vec![]),
        ("NO_COLOR", apply("no-color"), vec![("NO_COLOR", "1")]),
        ("TERM=dumb", apply("dumb"), vec![("TERM", "dumb")]),
    ] {
        let shown = on_a_terminal(dir.path(), &args, &env);
        assert!(!bar(&shown), "with {what}, progress was shown:\n{shown}");
    }
    let piped = certplan()
        .args(["apply", plan, "--out"])
        .arg(dir.path().join("piped"))
        .env_remove("NO_COLOR")
        .output()
        .expect("run certplan");
    assert!(piped.status.success());
    let stderr = String::from_utf8_lossy(&piped.stderr);
    assert!(stderr.is_empty(), "a piped apply printed on stderr: {stderr}");
}

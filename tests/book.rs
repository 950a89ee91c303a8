//! The book (`book/src`) cannot drift from the program.
//!
//! Conventions for code blocks in the book's Markdown:
//!
//! - ```` ```toml ```` blocks that have a `[cluster]` table are whole plans:
//!   each is written to a file and must pass `certplan check`. A plan that is
//!   wrong on purpose is marked ```` ```toml,bad ```` and must fail it.
//!   Blocks without `[cluster]` are fragments and must at least be valid TOML.
//! - A block of any language marked `file=NAME` (```` ```toml,file=plan.toml ````,
//!   ```` ```jinja,file=broken/kubeconfig.yaml ````) is also written to NAME in
//!   the page's sandbox, for the commands run on that page.
//! - In ```` ```sh ````, ```` ```console ```` and ```` ```make ```` blocks,
//!   every `certplan ...` invocation must parse with the real argument parser
//!   (pipes, redirections, `&&`, `;` and comments end a command; `$(VAR)` in
//!   a Makefile stands for a word). In a console block, commands are the
//!   lines that start with `$ `.
//! - A ```` ```console,run ```` block is run: each `$ certplan ...` line runs in
//!   the page's sandbox (a temporary directory holding a copy of `plans/` and
//!   the page's `file=` blocks), in order, with the clock fixed. The lines after
//!   it, up to the next `$ `, are its expected output (stdout, then stderr); a
//!   line `...` stands for any number of lines, and a last line `[exit N]`
//!   gives the exit status, 0 when absent.
//! - The plan reference (`reference/plan.md`) is `certplan schema --format
//!   markdown`; the rule reference (`reference/rules.md`) has a section for
//!   every rule of `certplan::diag::RuleId::ALL`, and no other. `CERTPLAN_BLESS=1`
//!   regenerates the plan reference instead of failing.

use std::path::{Path, PathBuf};

use certplan::diag::{RuleId, Severity};

use crate::common::{certplan, repo_root};

/// A fenced code block.
struct Block {
    page: PathBuf,
    /// The line of the opening fence, 1-based.
    line: usize,
    /// The info string split at commas: the language, then attributes.
    info: Vec<String>,
    text: String,
}

impl Block {
    fn lang(&self) -> &str {
        self.info.first().map_or("", String::as_str)
    }

    fn has(&self, attribute: &str) -> bool {
        self.info.iter().skip(1).any(|a| a == attribute)
    }

    fn file(&self) -> Option<&str> {
        self.info.iter().find_map(|a| a.strip_prefix("file="))
    }

    fn place(&self) -> String {
        format!("{}:{}", self.page.strip_prefix(repo_root()).unwrap_or(&self.page).display(), self.line)
    }
}

fn pages() -> Vec<PathBuf> {
    fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
        for entry in std::fs::read_dir(dir).expect("read book dir") {
            let path = entry.expect("dir entry").path();
            if path.is_dir() {
                walk(&path, out);
            } else if path.extension().is_some_and(|e| e == "md") {
                out.push(path);
            }
        }
    }
    let mut out = Vec::new();
    walk(&repo_root().join("book/src"), &mut out);
    out.sort();
    out
}

fn blocks(page: &Path) -> Vec<Block> {
    let text = std::fs::read_to_string(page).expect("read page");
    let mut out = Vec::new();
    let mut open: Option<(usize, String, Vec<String>, String)> = None;
    for (i, line) in text.lines().enumerate() {
        let trimmed = line.trim_start();
        match &mut open {
            None => {
                if let Some(info) = trimmed.strip_prefix("```") {
                    let indent = line.len() - trimmed.len();
                    let info = info.trim().split(',').map(|s| s.trim().to_string()).collect();
                    open = Some((i + 1, " ".repeat(indent), info, String::new()));
                }
            }
            Some((start, indent, info, body)) => {
                if trimmed.starts_with("```") {
                    out.push(Block {
                        page: page.to_path_buf(),
                        line: *start,
                        info: std::mem::take(info),
                        text: std::mem::take(body),
                    });
                    open = None;
                } else {
                    body.push_str(line.strip_prefix(indent.as_str()).unwrap_or(line));
                    body.push('\n');
                }
            }
        }
    }
    out
}

fn all_blocks() -> Vec<Block> {
    pages().iter().flat_map(|p| blocks(p)).collect()
}

fn is_whole_plan(block: &Block) -> bool {
    block.text.lines().any(|l| l.trim() == "[cluster]")
}

#[test]
fn every_plan_in_the_book_checks() {
    let dir = tempfile::tempdir().expect("tempdir");
    let mut plans = 0;
    for block in all_blocks().iter().filter(|b| b.lang() == "toml") {
        if !is_whole_plan(block) {
            if let Err(error) = block.text.parse::<toml::Table>() {
                panic!("{}: a TOML fragment that is not TOML: {error}", block.place());
            }
            continue;
        }
        plans += 1;
        let path = dir.path().join("plan.toml");
        std::fs::write(&path, &block.text).expect("write plan");
        let output = certplan().arg("check").arg(&path).output().expect("run certplan");
        let stderr = String::from_utf8_lossy(&output.stderr);
        if block.has("bad") {
            assert!(!output.status.success(), "{}: a `toml,bad` plan passes check", block.place());
        } else {
            assert!(output.status.success(), "{}: the plan fails check:\n{stderr}", block.place());
        }
    }
    assert!(plans >= 5, "only {plans} plans found in the book");
}

/// Splits a shell line into words, honouring quotes (no expansion).
fn shell_words(line: &str) -> Vec<String> {
    let mut words = Vec::new();
    let mut word = String::new();
    let mut in_word = false;
    let mut quote: Option<char> = None;
    for c in line.chars() {
        match (quote, c) {
            (Some(q), c) if c == q => quote = None,
            (Some(_), c) => word.push(c),
            (None, '\'' | '"') => {
                quote = Some(c);
                in_word = true;
            }
            (None, c) if c.is_whitespace() => {
                if in_word {
                    words.push(std::mem::take(&mut word));
                    in_word = false;
                }
            }
            (None, c) => {
                word.push(c);
                in_word = true;
            }
        }
    }
    if in_word {
        words.push(word);
    }
    words
}

/// The `certplan` invocations in a line of shell: the words after
/// `certplan` up to the end of the simple command.
fn invocations(line: &str) -> Vec<Vec<String>> {
    let words = shell_words(line);
    let mut out = Vec::new();
    let mut current: Option<Vec<String>> = None;
    let mut redirect_target = false;
    for word in words {
        // The file after `>` is no command, even when it is called certplan.
        if std::mem::take(&mut redirect_target) {
            continue;
        }
        redirect_target = ["<", ">", ">>", "2>"].contains(&word.as_str());
        let ends = word.starts_with('#')
            || ["|", "||", "&&", ";", ">", ">>", "2>", "2>&1", "<", ")"].contains(&word.as_str())
            || word.starts_with('>')
            || word.starts_with("2>");
        if ends {
            out.extend(current.take());
            if word.starts_with('#') {
                break;
            }
            continue;
        }
        match &mut current {
            Some(args) if word.ends_with(';') => {
                let word = word.trim_end_matches(';');
                if !word.is_empty() {
                    args.push(word.to_string());
                }
                out.extend(current.take());
            }
            Some(args) => args.push(word),
            None if word == "certplan" || word.ends_with("/certplan") => current = Some(vec!["certplan".into()]),
            None => {}
        }
    }
    out.extend(current);
    out
}

/// The command lines of a shell-like block, continuation lines joined.
fn command_lines(block: &Block) -> Vec<String> {
    let console = block.lang() == "console";
    let mut lines = Vec::new();
    let mut pending = String::new();
    for line in block.text.lines() {
        let line = if console {
            match line.strip_prefix("$ ") {
                Some(command) => command,
                None if !pending.is_empty() => line,
                None => continue,
            }
        } else {
            line
        };
        let line = if block.lang() == "make" { substitute_make_vars(line) } else { line.to_string() };
        if let Some(start) = line.strip_suffix('\\') {
            pending.push_str(start);
            pending.push(' ');
            continue;
        }
        pending.push_str(&line);
        lines.push(std::mem::take(&mut pending));
    }
    lines
}

fn substitute_make_vars(line: &str) -> String {
    let mut out = String::new();
    let mut rest = line;
    while let Some(start) = rest.find("$(") {
        out.push_str(&rest[..start]);
        if let Some(end) = rest[start..].find(')') {
            out.push_str(&rest[start + 2..start + end].to_ascii_lowercase());
            rest = &rest[start + end + 1..];
        } else {
            rest = &rest[start..];
            break;
        }
    }
    out.push_str(rest);
    out
}

#[test]
fn every_command_in_the_book_parses() {
    use clap::Parser;
    let mut seen = std::collections::BTreeSet::new();
    for block in all_blocks().iter().filter(|b| ["sh", "console", "make", "bash"].contains(&b.lang())) {
        for line in command_lines(block) {
            for args in invocations(&line) {
                if let Err(error) = certplan::cli::Cli::try_parse_from(&args) {
                    // `--help` and `--version` "fail" with a display request.
                    use clap::error::ErrorKind;
                    assert!(
                        matches!(error.kind(), ErrorKind::DisplayHelp | ErrorKind::DisplayVersion),
                        "{}: `{}` does not parse:\n{error}",
                        block.place(),
                        args.join(" ")
                    );
                }
                if let Some(sub) = args.get(1) {
                    seen.insert(sub.clone());
                }
            }
        }
    }
    for sub in ["check", "plan", "apply", "init", "schema", "completions", "man"] {
        assert!(seen.contains(sub), "no `certplan {sub}` example in the book");
    }
}

/// The page's sandbox: a copy of `plans/` and the page's `file=` plans.
fn sandbox(page: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("tempdir");
    let plans = dir.path().join("plans");
    std::fs::create_dir(&plans).expect("mkdir plans");
    for entry in std::fs::read_dir(repo_root().join("plans")).expect("read plans") {
        let path = entry.expect("entry").path();
        std::fs::copy(&path, plans.join(path.file_name().expect("name"))).expect("copy plan");
    }
    for block in blocks(page) {
        if let Some(name) = block.file() {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().expect("a parent")).expect("mkdir for file= block");
            std::fs::write(path, &block.text).expect("write file= block");
        }
    }
    dir
}

/// Whether `actual` lines match `expected` lines, where `...` matches any run.
fn matches(expected: &[&str], actual: &[&str]) -> bool {
    match expected.split_first() {
        None => actual.is_empty(),
        Some((&"...", rest)) => (0..=actual.len()).any(|skip| matches(rest, &actual[skip..])),
        Some((line, rest)) => {
            actual.first().is_some_and(|a| a.trim_end() == line.trim_end()) && matches(rest, &actual[1..])
        }
    }
}

#[test]
fn console_run_blocks_show_real_output() {
    let mut ran = 0;
    for page in pages() {
        let runs: Vec<Block> = blocks(&page).into_iter().filter(|b| b.lang() == "console" && b.has("run")).collect();
        if runs.is_empty() {
            continue;
        }
        let dir = sandbox(&page);
        for block in runs {
            let mut steps: Vec<(String, Vec<String>)> = Vec::new();
            for line in block.text.lines() {
                match line.strip_prefix("$ ") {
                    Some(command) => steps.push((command.to_string(), Vec::new())),
                    None => {
                        if let Some((_, output)) = steps.last_mut() {
                            output.push(line.to_string());
                        }
                    }
                }
            }
            for (command, mut expected) in steps {
                let mut code = 0;
                if let Some(last) = expected.last()
                    && let Some(n) = last.strip_prefix("[exit ").and_then(|r| r.strip_suffix(']'))
                {
                    code = n.parse().expect("exit status");
                    expected.pop();
                }
                let args = invocations(&command).into_iter().next().unwrap_or_else(|| {
                    panic!("{}: `{command}` in a run block is not a certplan command", block.place())
                });
                let output = certplan()
                    .args(&args[1..])
                    .current_dir(dir.path())
                    .env("SOURCE_DATE_EPOCH", "1767225600")
                    .env("NO_COLOR", "1")
                    .output()
                    .expect("run certplan");
                let text =
                    format!("{}{}", String::from_utf8_lossy(&output.stdout), String::from_utf8_lossy(&output.stderr));
                let actual: Vec<&str> = text.lines().collect();
                let expected: Vec<&str> = expected.iter().map(String::as_str).collect();
                assert!(
                    matches(&expected, &actual),
                    "{}: `{command}` printed:\n{text}\nbut the book shows:\n{}",
                    block.place(),
                    expected.join("\n")
                );
                assert_eq!(output.status.code(), Some(code), "{}: exit status of `{command}`", block.place());
                ran += 1;
            }
        }
    }
    assert!(ran >= 5, "only {ran} commands run from the book");
}

#[test]
fn plan_reference_is_generated_from_the_schema() {
    let output = certplan().args(["schema", "--format", "markdown"]).output().expect("run certplan");
    assert!(output.status.success());
    let generated = String::from_utf8(output.stdout).expect("utf-8");
    let path = repo_root().join("book/src/reference/plan.md");
    if std::env::var_os("CERTPLAN_BLESS").is_some() {
        std::fs::write(&path, &generated).expect("write plan.md");
        return;
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_default();
    assert!(
        committed == generated,
        "book/src/reference/plan.md is out of date: run `CERTPLAN_BLESS=1 cargo test book` \
         (or `certplan schema --format markdown > book/src/reference/plan.md`)"
    );
}

#[test]
fn rule_reference_covers_every_rule() {
    let text = std::fs::read_to_string(repo_root().join("book/src/reference/rules.md")).expect("read rules.md");
    let headings: Vec<&str> =
        text.lines().filter_map(|l| l.strip_prefix("### `")).filter_map(|l| l.strip_suffix('`')).collect();
    for &rule in RuleId::ALL {
        assert!(headings.contains(&rule.as_str()), "rules.md has no `### `{rule}`` section");
        let section = text.split(&format!("### `{rule}`\n")).nth(1).unwrap_or_default();
        let section = section.split("\n### ").next().unwrap_or_default();
        let severity = match rule.severity() {
            Severity::Error => "error",
            Severity::Warning => "warning",
        };
        assert!(
            section.contains(&format!("**{severity}**")) && section.contains(rule.summary()),
            "the section of `{rule}` must give its severity (**{severity}**) and summary ({})",
            rule.summary()
        );
        let prose = section.lines().filter(|l| !l.trim().is_empty() && !l.starts_with('*')).count();
        assert!(prose >= 1, "the section of `{rule}` needs a paragraph explaining it");
    }
    for heading in headings {
        assert!(heading.parse::<RuleId>().is_ok(), "rules.md documents `{heading}`, which is no rule");
    }
}

#[test]
fn every_page_is_in_the_summary() {
    let src = repo_root().join("book/src");
    let summary = std::fs::read_to_string(src.join("SUMMARY.md")).expect("read SUMMARY.md");
    for page in pages() {
        let relative = page.strip_prefix(&src).expect("under src").to_string_lossy().into_owned();
        if relative == "SUMMARY.md" {
            continue;
        }
        assert!(summary.contains(&format!("]({relative})")), "{relative} is not linked from SUMMARY.md");
    }
}

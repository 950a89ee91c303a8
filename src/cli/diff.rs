//! `certplan diff OLD NEW`: the semantic diff of two plans, like diff(1):
//! exit 0 when they compile to the same PKI, 1 when they differ, 2 on error.
//! Also a git diff driver: given git's seven arguments (path, old file, old
//! hex, old mode, new file, new hex, new mode) it diffs the two files.

use std::io::Write;
use std::path::{Path, PathBuf};

use super::color::{self, ColorWhen};
use super::{Error, Outcome, load};
use crate::audit::diff::{Side, diff};
use crate::audit::{Format, write_diff_markdown, write_diff_text};
use crate::pipeline::{Compiled, compile};

/// Arguments of `diff`.
#[derive(Debug, clap::Args)]
pub struct DiffArgs {
    /// OLD and NEW plan files, or the seven arguments git passes to a diff
    /// driver (`/dev/null` stands for a plan that does not exist).
    #[arg(num_args = 2..=7, required = true, value_name = "OLD NEW")]
    pub files: Vec<PathBuf>,
    /// Text for people, JSON for programs, Markdown for pull requests.
    #[arg(long, value_enum, default_value_t = Format::Text)]
    pub format: Format,
    /// Colour the text: on a terminal unless `NO_COLOR` is set (auto), always or never.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
    /// As a git diff driver, exit 1 when the plans differ (pair it with
    /// `git config diff.certplan.trustExitCode true`); without it the driver
    /// exits 0, which is what git expects by default.
    #[arg(long)]
    pub exit_code: bool,
}

/// Runs `diff`. Its failures exit 2, diff(1)'s "trouble" (see `exit`).
pub fn run(args: &DiffArgs) -> Result<Outcome, Error> {
    let (old_path, new_path, names, git) = match args.files.as_slice() {
        [old, new] => (old, new, (show(old), show(new)), false),
        [path, old, _, _, new, _, _] => {
            let path = path.display();
            (old, new, (format!("a/{path}"), format!("b/{path}")), true)
        }
        other => return Err(Error::DiffArguments { got: other.len() }),
    };
    let old = read(old_path)?;
    let new = read(new_path)?;
    let old_hosts = host_names(old.as_ref());
    let new_hosts = host_names(new.as_ref());
    let doc = diff(side(&names.0, old.as_ref(), &old_hosts), side(&names.1, new.as_ref(), &new_hosts));
    let written = match args.format {
        Format::Json => {
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, &doc)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
        }
        Format::Markdown => write_diff_markdown(&mut std::io::stdout().lock(), &doc),
        Format::Text => write_diff_text(&mut color::stdout(), &doc),
    };
    Error::written("diff", written)?;
    match (doc.same, git && !args.exit_code) {
        (true, _) | (false, true) => Ok(Outcome::Success),
        (false, false) => Ok(Outcome::Different),
    }
}

fn side<'a>(name: &'a str, compiled: Option<&'a Compiled>, hosts: &'a [String]) -> Side<'a> {
    Side {
        name,
        artifacts: compiled.map_or(&[], |c| c.model.artifacts.as_slice()),
        hosts,
        graph: compiled.map(|c| &c.graph),
        recipients: compiled.map_or(&[], |c| c.model.recipients.as_slice()),
    }
}

fn show(path: &Path) -> String {
    path.display().to_string()
}

/// Reads and compiles a plan, printing its diagnostics when it has errors
/// (a plan's warnings are not what a diff is about); `None` for `/dev/null`.
fn read(path: &Path) -> Result<Option<Compiled>, Error> {
    if path == Path::new("/dev/null") {
        return Ok(None);
    }
    let loaded = load::read_plan(path)?;
    match compile(&loaded.source) {
        Ok(compiled) => Ok(Some(compiled)),
        Err(diagnostics) => {
            load::print_text(&loaded, &diagnostics.0);
            Err(Error::PlanDoesNotCompile { plan: loaded.name })
        }
    }
}

fn host_names(compiled: Option<&Compiled>) -> Vec<String> {
    compiled.map_or_else(Vec::new, |c| c.model.hosts.iter().map(|h| h.name.clone()).collect())
}

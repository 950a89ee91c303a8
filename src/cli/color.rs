//! Whether what certplan prints is coloured, decided once per run from
//! `--color` (on the commands that take it), `NO_COLOR` and whether each
//! stream is a terminal. Every coloured writer of the command line is made
//! here; the library only writes to the `WriteColor` it is given.

use std::io::IsTerminal;
use std::sync::OnceLock;

use codespan_reporting::term::termcolor::{ColorChoice, StandardStream};

/// When to colour, as `--color` says.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum ColorWhen {
    /// On a terminal, unless `NO_COLOR` is set.
    Auto,
    /// Always.
    Always,
    /// Never.
    Never,
}

/// The colour choice of each stream for this run.
#[derive(Debug, Clone, Copy)]
struct Colors {
    /// Reports on stdout (`diff`, `verify`): what `--color` says.
    stdout: ColorChoice,
    /// Diagnostics on stderr, which no command's `--color` is about: on a
    /// terminal unless `NO_COLOR` is set.
    stderr: ColorChoice,
}

impl Colors {
    fn decide(when: ColorWhen) -> Self {
        let no_color = std::env::var_os("NO_COLOR").is_some_and(|v| !v.is_empty());
        let auto = |terminal: bool| if !no_color && terminal { ColorChoice::Auto } else { ColorChoice::Never };
        let stdout = match when {
            ColorWhen::Always => ColorChoice::Always,
            ColorWhen::Never => ColorChoice::Never,
            ColorWhen::Auto => auto(std::io::stdout().is_terminal()),
        };
        Self { stdout, stderr: auto(std::io::stderr().is_terminal()) }
    }
}

static COLORS: OnceLock<Colors> = OnceLock::new();

/// Decides the colours of this run from `--color`; the first call wins.
pub fn set(when: ColorWhen) {
    let _ = COLORS.set(Colors::decide(when));
}

fn colors() -> Colors {
    // `run` decides before any command starts; only a writer made without
    // `run` gets here undecided, and it gets what no `--color` means.
    *COLORS.get_or_init(|| Colors::decide(ColorWhen::Auto))
}

/// Stdout, coloured as this run decided.
pub fn stdout() -> StandardStream {
    StandardStream::stdout(colors().stdout)
}

/// Stderr, coloured as this run decided.
pub fn stderr() -> StandardStream {
    StandardStream::stderr(colors().stderr)
}

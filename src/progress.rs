//! The progress bar of a long `apply`: keys issued out of the total, then
//! files written. It is drawn on stderr only when stderr is a terminal and
//! neither `--quiet`, `NO_COLOR` nor `TERM=dumb` says otherwise, and only
//! once the run has taken a second, so short runs and piped output look
//! exactly as without it.

use std::io::IsTerminal as _;
use std::time::{Duration, Instant};

use indicatif::{ProgressBar, ProgressDrawTarget, ProgressStyle};

/// How long a run goes on before its progress is shown.
const SHOW_AFTER: Duration = Duration::from_secs(1);

/// A progress bar, or nothing.
pub struct Progress {
    bar: Option<ProgressBar>,
    started: Instant,
}

impl Progress {
    /// No progress at all (libraries, tests, piped runs).
    #[must_use]
    pub fn hidden() -> Self {
        Self { bar: None, started: Instant::now() }
    }

    /// Progress for a person at a terminal, when the environment allows it:
    /// `quiet` is `--quiet`.
    #[must_use]
    pub fn for_terminal(quiet: bool) -> Self {
        let allowed = !quiet
            && std::io::stderr().is_terminal()
            && std::env::var_os("NO_COLOR").is_none_or(|v| v.is_empty())
            && std::env::var_os("TERM").is_none_or(|term| term != "dumb");
        if !allowed {
            return Self::hidden();
        }
        let bar = ProgressBar::with_draw_target(None, ProgressDrawTarget::hidden());
        if let Ok(style) = ProgressStyle::with_template("{msg:>6} [{bar:30}] {pos}/{len} ({elapsed})") {
            bar.set_style(style.progress_chars("=> "));
        }
        Self { bar: Some(bar), started: Instant::now() }
    }

    /// Starts counting `total` items of `what` (`keys`, `files`).
    pub fn phase(&self, what: &'static str, total: usize) {
        if let Some(bar) = &self.bar {
            bar.set_message(what);
            bar.set_length(total as u64);
            bar.set_position(0);
            self.reveal(bar);
        }
    }

    /// One more item done; safe from any thread.
    pub fn tick(&self) {
        if let Some(bar) = &self.bar {
            bar.inc(1);
            self.reveal(bar);
        }
    }

    /// Takes the bar off the terminal.
    pub fn finish(&self) {
        if let Some(bar) = &self.bar {
            bar.finish_and_clear();
        }
    }

    /// Starts drawing once the run has gone on long enough.
    fn reveal(&self, bar: &ProgressBar) {
        if bar.is_hidden() && self.started.elapsed() >= SHOW_AFTER {
            bar.set_draw_target(ProgressDrawTarget::stderr());
        }
    }
}

//! `certplan verify PLAN --out DIR`: check an output tree against its plan
//! (files, modes, chains, identities, keys, expiry). Exit 1 on any failure.

use std::io::Write;
use std::path::PathBuf;

use super::color::{self, ColorWhen};
use super::load;
use crate::audit::verify::{Options, verify};
use crate::pipeline::clock;

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The output directory to check.
    #[arg(long, short)]
    pub out: PathBuf,
    /// Warn about certificates that expire within this long (`30d`, `720h`).
    #[arg(long, value_name = "DURATION")]
    pub warn_within: Option<String>,
    /// Fix the clock (RFC 3339); `SOURCE_DATE_EPOCH` works too.
    #[arg(long)]
    pub now: Option<String>,
    /// A table for people or the JSON report.
    #[arg(long, value_enum, default_value_t = VerifyFormat::Text)]
    pub format: VerifyFormat,
    /// Colour the text: on a terminal unless `NO_COLOR` is set (auto), always or never.
    #[arg(long, value_enum, default_value_t = ColorWhen::Auto)]
    pub color: ColorWhen,
}

/// Formats of the verify report.
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum VerifyFormat {
    /// For people.
    Text,
    /// For programs.
    Json,
}

/// Runs `verify`.
pub fn run(args: &VerifyArgs) -> u8 {
    let Some(loaded) = load::read_plan(&args.plan) else {
        return 1;
    };
    let Some(compiled) = load::compile_and_report(&loaded, false) else {
        return 1;
    };
    let now = match clock(args.now.as_deref()) {
        Ok(now) => now,
        Err(message) => {
            eprintln!("error: {message}");
            return 1;
        }
    };
    let warn_within = match args.warn_within.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(window)) => Some(time::Duration::try_from(window).unwrap_or(time::Duration::MAX)),
        Some(Err(error)) => {
            eprintln!("error: `--warn-within` wants a duration such as `30d` or `720h`: {error}");
            return 1;
        }
    };
    let report = match verify(&compiled.model, &args.out, &Options { now, warn_within }) {
        Ok(report) => report,
        Err(error) => {
            eprintln!("error: {error}");
            return 1;
        }
    };
    let written = match args.format {
        VerifyFormat::Json => {
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
        }
        VerifyFormat::Text => crate::audit::write_verify_text(&mut color::stdout(), &report),
    };
    if let Err(error) = written
        && error.kind() != std::io::ErrorKind::BrokenPipe
    {
        eprintln!("error: cannot write the report: {error}");
        return 1;
    }
    u8::from(!report.ok)
}

//! `certplan verify PLAN --out DIR`: check an output tree against its plan
//! (files, modes, chains, identities, keys, expiry). Exit 1 on any failure.

use std::io::Write;
use std::path::PathBuf;

use super::color::{self, ColorWhen};
use super::{Error, Outcome, load};
use crate::audit::verify::{Options, verify};

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
pub fn run(args: &VerifyArgs) -> Result<Outcome, Error> {
    let (compiled, now) = load::compile_plan_at(&args.plan, args.now.as_deref())?;
    let warn_within = match args.warn_within.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(window)) => Some(time::Duration::try_from(window).unwrap_or(time::Duration::MAX)),
        Some(Err(error)) => return Err(Error::WarnWithin(error)),
    };
    let report = verify(&compiled.model, &args.out, &Options { now, warn_within }).map_err(Error::Verify)?;
    let written = match args.format {
        VerifyFormat::Json => {
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
        }
        VerifyFormat::Text => crate::audit::write_verify_text(&mut color::stdout(), &report),
    };
    Error::written("report", written)?;
    if report.ok { Ok(Outcome::Success) } else { Err(Error::Findings) }
}

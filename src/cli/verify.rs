//! `certplan verify PLAN --out DIR`: check an output tree against its plan
//! (files, modes, chains, identities, keys, expiry). With
//! `--host NAME --root DIR` instead of `--out`: the same checks on the files
//! one host has installed, and with `--probe` whether the host's running
//! servers serve them. Exit 1 on any failure, or with `--warn-within`
//! when a certificate expires within it.

use std::io::Write;
use std::path::{Path, PathBuf};

use time::OffsetDateTime;

use super::color::{self, ColorWhen};
use super::{Error, Outcome, load};
use crate::audit::prometheus::{TreeFacts, write_prometheus};
use crate::audit::verify::{Options, PROBE_ENDPOINTS, Source, VerifyReport, probe_host, verify};
use crate::pipeline::{Compiled, Tree};

/// Arguments of `verify`.
#[derive(Debug, clap::Args)]
pub struct VerifyArgs {
    /// The plan file.
    pub plan: PathBuf,
    /// The output directory to check.
    #[arg(long, short, required_unless_present = "host", conflicts_with = "host")]
    pub out: Option<PathBuf>,
    /// Check the files the plan places on this host, as installed under
    /// `--root`, instead of an output directory.
    #[arg(long, value_name = "NAME", requires = "root")]
    pub host: Option<String>,
    /// The directory the host's files are under: `/` on the host itself.
    #[arg(long, value_name = "DIR", requires = "host")]
    pub root: Option<PathBuf>,
    /// With `--host`: connect to the TLS ports the plan knows on the host
    /// (etcd's client and peer ports, the API server's, the kubelet's) on its
    /// loopback address, and fail when one serves another certificate than
    /// the installed file (restart that component).
    #[arg(long, requires = "host")]
    pub probe: bool,
    /// With `--probe`: the port of an endpoint (`etcd-client`, `etcd-peer`,
    /// `apiserver`, `kubelet`), instead of the plan's; repeatable.
    #[arg(long, value_name = "ENDPOINT=PORT", requires = "probe", value_parser = parse_probe_port)]
    pub probe_port: Vec<(String, u16)>,
    /// Fail when a certificate expires within this long (`30d`, `720h`),
    /// naming it, its host, its file and the date.
    #[arg(long, value_name = "DURATION")]
    pub warn_within: Option<String>,
    /// Fix the clock (RFC 3339); `SOURCE_DATE_EPOCH` works too.
    #[arg(long)]
    pub now: Option<String>,
    /// The age identity that opens the tree's encrypted secrets, so that
    /// their content is checked too; else `CERTPLAN_AGE_IDENTITY` or
    /// `CERTPLAN_AGE_IDENTITY_FILE`.
    #[arg(long, value_name = "FILE")]
    pub identity: Option<PathBuf>,
    /// A table for people, the JSON report, or metrics for the node exporter's
    /// textfile collector.
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
    /// For Prometheus, through the node exporter's textfile collector.
    Prometheus,
}

impl VerifyArgs {
    /// What to verify: the argument parser asks for `--out`, or for
    /// `--host` and `--root` together.
    fn source(&self) -> Result<Source<'_>, Error> {
        match (&self.out, &self.host, &self.root) {
            (Some(out), None, None) => Ok(Source::Tree(out)),
            (None, Some(name), Some(root)) => Ok(Source::Host { name, root }),
            _ => Err(Error::VerifyWhat),
        }
    }
}

/// Runs `verify`.
pub fn run(args: &VerifyArgs) -> Result<Outcome, Error> {
    let (mut compiled, now) = load::compile_plan_at(&args.plan, args.now.as_deref())?;
    // An external CA's subject and key are what its certificate says.
    let plan_dir = args.plan.parent().unwrap_or(std::path::Path::new(""));
    compiled.use_external_cas(plan_dir).map_err(Error::External)?;
    let warn_within = match args.warn_within.as_deref().map(humantime::parse_duration) {
        None => None,
        Some(Ok(window)) => Some(time::Duration::try_from(window).unwrap_or(time::Duration::MAX)),
        Some(Err(error)) => return Err(Error::WarnWithin(error)),
    };
    let source = args.source()?;
    let keyring = load::keyring(args.identity.as_deref())?;
    let mut report = verify(&compiled.model, source, &Options { now, warn_within, keyring }).map_err(Error::Verify)?;
    if let (true, Source::Host { name, root }) = (args.probe, source) {
        probe_host(&mut report, &compiled.model, name, root, &args.probe_port);
    }
    let written = match args.format {
        VerifyFormat::Json => {
            let mut stdout = std::io::stdout().lock();
            serde_json::to_writer_pretty(&mut stdout, &report)
                .map_err(std::io::Error::from)
                .and_then(|()| writeln!(stdout))
        }
        VerifyFormat::Text => crate::audit::write_verify_text(&mut color::stdout(), &report).and_then(|()| {
            let Source::Tree(out) = source else { return Ok(()) };
            let state = crate::state::State::load(out).unwrap_or_default();
            let mut stdout = std::io::stdout().lock();
            crate::changes::rotation::status(&compiled.model, &state)
                .iter()
                .try_for_each(|line| writeln!(stdout, "{line}"))
        }),
        VerifyFormat::Prometheus => {
            let tree = match source {
                Source::Tree(out) => Some(tree_facts(&mut compiled, &args.plan, out, now)?),
                // A host has no output tree to have applied or to change.
                Source::Host { .. } => None,
            };
            write_prometheus(&mut std::io::stdout().lock(), &report.cert_files, tree.as_ref())
        }
    };
    Error::written("report", written)?;
    verdict(&report)
}

/// `ENDPOINT=PORT` of `--probe-port`.
fn parse_probe_port(text: &str) -> Result<(String, u16), String> {
    let (endpoint, port) = text.split_once('=').ok_or_else(|| format!("`{text}` is not ENDPOINT=PORT"))?;
    if !PROBE_ENDPOINTS.contains(&endpoint) {
        return Err(format!("`{endpoint}` is not an endpoint; the endpoints are {}", PROBE_ENDPOINTS.join(", ")));
    }
    let port = port.parse().map_err(|_| format!("`{port}` is not a port"))?;
    Ok((endpoint.to_string(), port))
}

/// The outcome of a printed report: success, or the failure it shows.
fn verdict(report: &VerifyReport) -> Result<Outcome, Error> {
    match (report.ok, report.summary.failures) {
        (true, _) => Ok(Outcome::Success),
        (false, 0) => Err(Error::ExpiresSoon),
        (false, _) => Err(Error::Findings),
    }
}

/// What the metrics say about the output tree at `out`: when it was
/// applied, and how many changes `plan` would make at `now` with the
/// plan's templates (a tree applied with `--templates` is compared with
/// the plan's own).
pub(super) fn tree_facts(
    compiled: &mut Compiled,
    plan: &Path,
    out: &Path,
    now: OffsetDateTime,
) -> Result<TreeFacts, Error> {
    load::prepare(compiled, plan, None)?;
    let tree = Tree::read(out).map_err(Error::Tree)?;
    let options = crate::changes::Options { now, rotate: Vec::new() };
    TreeFacts::of(compiled, &tree, out, &options).map_err(Error::Apply)
}

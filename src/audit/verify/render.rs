//! The verify report for people: an expiry table in the manner of `kubeadm
//! certs check-expiration`, then every failure and warning by artifact,
//! then what each probed endpoint serves.

use std::io;

use codespan_reporting::term::termcolor::{Color, ColorSpec, WriteColor};

use super::{Severity, VerifyReport};

/// Renders a verify report as text.
pub fn write_verify_text(out: &mut dyn WriteColor, report: &VerifyReport) -> io::Result<()> {
    let id_width = report.certificates.iter().map(|c| c.id.len()).max().unwrap_or(0).max("CERTIFICATE".len());
    writeln!(
        out,
        "{:<id_width$}  {:<20}  {:<13}  {:<24}  STATUS",
        "CERTIFICATE", "EXPIRES", "RESIDUAL TIME", "CERTIFICATE AUTHORITY"
    )?;
    for cert in &report.certificates {
        write!(
            out,
            "{:<id_width$}  {:<20}  {:<13}  {:<24}  ",
            cert.id,
            cert.not_after.as_deref().unwrap_or("-"),
            cert.residual(),
            if cert.kind == "ca" { "-" } else { cert.issuer.as_str() },
        )?;
        let color = match cert.status {
            "ok" => Color::Green,
            "expires-soon" => Color::Yellow,
            _ => Color::Red,
        };
        paint(out, color, cert.status)?;
        writeln!(out)?;
    }
    for (severity, title, color) in
        [(Severity::Failure, "Failures", Color::Red), (Severity::Warning, "Warnings", Color::Yellow)]
    {
        let findings: Vec<_> = report.findings.iter().filter(|f| f.severity == severity).collect();
        if findings.is_empty() {
            continue;
        }
        writeln!(out)?;
        out.set_color(ColorSpec::new().set_bold(true))?;
        write!(out, "{title}")?;
        out.reset()?;
        writeln!(out)?;
        let mut last_id = "";
        for finding in findings {
            if finding.id != last_id {
                writeln!(out, "  {}", finding.id)?;
                last_id = &finding.id;
            }
            let check =
                serde_json::to_value(finding.check).ok().and_then(|v| v.as_str().map(String::from)).unwrap_or_default();
            write!(out, "    ")?;
            paint(out, color, &check)?;
            match &finding.path {
                Some(path) => writeln!(out, " {path}: {}", finding.message)?,
                None => writeln!(out, " {}", finding.message)?,
            }
        }
    }
    if !report.probes.is_empty() {
        writeln!(out)?;
        out.set_color(ColorSpec::new().set_bold(true))?;
        write!(out, "Probes")?;
        out.reset()?;
        writeln!(out)?;
        for probe in &report.probes {
            write!(out, "  {} {} ", probe.endpoint, probe.address)?;
            let color = match probe.status {
                "ok" => Color::Green,
                "stale" => Color::Red,
                _ => Color::Yellow,
            };
            paint(out, color, probe.status)?;
            writeln!(out, ": {}", probe.message)?;
        }
    }
    let s = &report.summary;
    writeln!(out)?;
    let verdict = match (report.ok, s.failures) {
        (true, _) => "ok",
        (false, 0) => "EXPIRES SOON",
        (false, _) => "FAILED",
    };
    writeln!(
        out,
        "verify {verdict}: {} of {} expected files, {} certificates, {} failure(s), {} warning(s), at {}",
        s.files,
        s.expected_files,
        report.certificates.len(),
        s.failures,
        s.warnings,
        report.now
    )
}

fn paint(out: &mut dyn WriteColor, color: Color, text: &str) -> io::Result<()> {
    out.set_color(ColorSpec::new().set_fg(Some(color)))?;
    write!(out, "{text}")?;
    out.reset()
}

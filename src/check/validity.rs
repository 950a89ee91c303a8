//! Rules on lifetimes and key strength: leaves that outlive their CA or a
//! year, RSA keys below 2048 bits.

use std::time::Duration;

use super::span_of;
use crate::diag::{Diagnostic, Diagnostics};
use crate::model::{Model, Spec};
use crate::plan::KeyAlgorithm;

/// One year, the longest leaf validity that draws no warning.
const ONE_YEAR: Duration = Duration::from_secs(365 * 24 * 3600);

pub fn check(model: &Model, diagnostics: &mut Diagnostics) {
    for artifact in &model.artifacts {
        let key = match &artifact.spec {
            Spec::Ca(c) | Spec::Cert(c) => c.key,
            Spec::Keypair(k) => k.key,
            _ => continue,
        };
        if key == KeyAlgorithm::Rsa1024 {
            diagnostics.push(
                Diagnostic::error("rsa-too-small", format!("`{}` would have a 1024-bit RSA key", artifact.id))
                    .at_opt(span_of(artifact, artifact.spans.key.as_ref()))
                    .label("too weak")
                    .hint("RSA keys below 2048 bits are refused by Go's crypto/tls; use `rsa-2048` or `ecdsa-p256`"),
            );
        }
        let Spec::Cert(cert) = &artifact.spec else { continue };
        let Some(ca) = model.artifact(&cert.issuer).and_then(|a| a.spec.cert()) else { continue };
        let show = |d: Duration| humantime::format_duration(d).to_string();
        if cert.validity > ca.validity {
            diagnostics.push(
                Diagnostic::error(
                    "leaf-outlives-ca",
                    format!(
                        "`{}` would be valid for {}, longer than its CA `{}` ({})",
                        artifact.id,
                        show(cert.validity),
                        cert.issuer,
                        show(ca.validity)
                    ),
                )
                .at_opt(artifact.origin.clone())
                .hint("shorten the leaf's `validity` or lengthen the CA's"),
            );
        } else if cert.validity > ONE_YEAR {
            diagnostics.push(
                Diagnostic::warning(
                    "validity-over-a-year",
                    format!("`{}` is valid for {}, longer than a year", artifact.id, show(cert.validity)),
                )
                .at_opt(artifact.origin.clone())
                .hint("Kubernetes and kubeadm issue leaves for one year; rotate instead of lengthening"),
            );
        }
    }
}

//! Lowering: [`PlanFile`] → [`Model`]. Resolves defaults, CAs per set and
//! values (IPs, CIDRs, SANs, durations), then builds every artifact. Every
//! malformed value becomes a diagnostic pointing at it; lowering reports all
//! of them, not just the first.

mod artifacts;
mod context;
mod files;
mod flags;

pub use flags::{MissingFile, loopback};

use crate::diag::Diagnostics;
use crate::plan::PlanFile;

use super::Model;

/// Lowers a parsed plan into the model, or returns every error found.
pub fn lower_plan(plan: &PlanFile) -> Result<Model, Diagnostics> {
    let mut diagnostics = Diagnostics::default();
    let context = context::resolve(plan, &mut diagnostics);
    if let Some(context) = &context {
        external_signer(context, &mut diagnostics);
    }
    match context {
        Some(context) if !diagnostics.has_errors() => Ok(artifacts::build(context)),
        _ => Err(diagnostics),
    }
}

/// The controller-manager signs kubelet certificates (TLS bootstrapping, or
/// a token file that lets kubelets ask) with the `apiserver-client` set's
/// CA, so that CA's key must be on the control plane: an external or an
/// offline CA cannot be it.
fn external_signer(context: &context::Context, diagnostics: &mut Diagnostics) {
    if !artifacts::signing_needed(context) {
        return;
    }
    let Some(name) = context.sets.get(&crate::model::CertSet::ApiserverClient).and_then(|set| set.ca.as_ref()) else {
        return;
    };
    let Some(ca) = context.cas.iter().find(|ca| &ca.name == name) else { return };
    if ca.offline {
        diagnostics.push(
            crate::diag::Diagnostic::error(
                crate::diag::RuleId::OfflineCaSigns,
                format!("the CA `{name}` is `offline`, and the controller-manager must sign kubelet certificates with it, so its key must be on the control plane"),
            )
            .at(ca.span.clone())
            .label("offline CA")
            .hint("sign the `apiserver-client` set with an intermediate under the offline CA, or give the kubelets static client certificates"),
        );
    }
    let Some((_, span)) = ca.external.as_ref() else {
        return;
    };
    diagnostics.push(
        crate::diag::Diagnostic::error(
            crate::diag::RuleId::ExternalCaConflict,
            format!("the external CA `{name}` signs the `apiserver-client` set, and the controller-manager must sign kubelet certificates with it"),
        )
        .at(span.clone())
        .label("external here")
        .hint("give the kubelets static client certificates (no bootstrap token, no `token.csv`), or sign that set with a CA certplan holds"),
    );
}

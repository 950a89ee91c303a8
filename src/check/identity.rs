//! Rules on identities: the API server takes the user from CN and the groups
//! from O, so built-in identities must be spelt exactly as Kubernetes'
//! default RBAC expects, and subjects must survive X.509 encoding.

use super::span_of;
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::{Artifact, ArtifactId, Model, Spec};

/// Built-in client identities and the CN their default RBAC binding expects.
const BUILT_IN: [(&str, &str); 3] = [
    ("kube-controller-manager", "system:kube-controller-manager"),
    ("kube-scheduler", "system:kube-scheduler"),
    ("kube-proxy", "system:kube-proxy"),
];

pub fn check(model: &Model, diagnostics: &mut Diagnostics) {
    let built_in = BUILT_IN.map(|(identity, cn)| (ArtifactId::identity_cert(identity, None), cn));
    for artifact in &model.artifacts {
        let Some(cert) = artifact.spec.cert() else { continue };
        if let Some((_, cn)) = built_in.iter().find(|(id, _)| *id == artifact.id)
            && cert.subject.cn != *cn
        {
            diagnostics.push(identity_cn(artifact, &cert.subject.cn, cn).at_opt(cn_span(artifact)));
        }
        if artifact.id.is_identity_cert("kubelet") {
            kubelet(artifact, diagnostics);
        }
        let is_user = artifact.id.is_user_cert();
        if !is_user && matches!(artifact.spec, Spec::Cert(_)) && cert.subject.o.iter().any(|o| o == "system:masters") {
            diagnostics.push(
                Diagnostic::warning(
                    RuleId::SystemMasters,
                    format!("`{}` is in `system:masters`, which bypasses RBAC and cannot be revoked", artifact.id),
                )
                .at_opt(o_span(artifact))
                .label("bypasses authorisation")
                .hint("bind the component's role with RBAC instead; keep `system:masters` for a break-glass user"),
            );
        }
        if is_user {
            misspelt_user(model, artifact, &cert.subject.cn, diagnostics);
        }
        if cert.subject.o.len() > 1 || cert.subject.ou.len() > 1 {
            diagnostics.push(
                Diagnostic::error(
                    RuleId::SubjectUnrepresentable,
                    format!(
                        "`{}` has {} O values (groups), but certplan's X.509 writer keeps one per attribute",
                        artifact.id,
                        cert.subject.o.len()
                    ),
                )
                .at_opt(o_span(artifact))
                .label("more than one group")
                .hint("give the identity one group and bind further roles to that group with RBAC"),
            );
        }
    }
}

/// Where the plan writes an artifact's CN, else its subject, else its origin.
fn cn_span(artifact: &Artifact) -> Option<std::ops::Range<usize>> {
    span_of(artifact, artifact.spans.cn.as_ref().or(artifact.spans.subject.as_ref()))
}

/// Where the plan writes an artifact's O values, else its subject, else its origin.
fn o_span(artifact: &Artifact) -> Option<std::ops::Range<usize>> {
    span_of(artifact, artifact.spans.o.as_ref().or(artifact.spans.subject.as_ref()))
}

fn identity_cn(artifact: &Artifact, actual: &str, expected: &str) -> Diagnostic {
    Diagnostic::error(
        RuleId::IdentityCn,
        format!("`{}` has CN `{actual}`, but Kubernetes' default RBAC knows it as `{expected}`", artifact.id),
    )
    .label("wrong CN")
    .hint(format!("use `cn = \"{expected}\"` or remove the override"))
}

fn kubelet(artifact: &Artifact, diagnostics: &mut Diagnostics) {
    let Some(cert) = artifact.spec.cert() else { return };
    let host = cert.host.as_deref().unwrap_or_default();
    let expected = format!("system:node:{host}");
    if cert.subject.cn != expected {
        diagnostics.push(identity_cn(artifact, &cert.subject.cn, &expected).at_opt(cn_span(artifact)));
    }
    if !cert.subject.o.iter().any(|o| o == "system:nodes") {
        diagnostics.push(
            Diagnostic::error(
                RuleId::IdentityO,
                format!("`{}` is not in the group `system:nodes`, so the Node authorizer will refuse it", artifact.id),
            )
            .at_opt(o_span(artifact))
            .label("missing `system:nodes`")
            .hint("kubelet client certificates need `o = [\"system:nodes\"]`"),
        );
    }
}

/// A user named like a built-in identity must be one exactly.
fn misspelt_user(model: &Model, artifact: &Artifact, name: &str, diagnostics: &mut Diagnostics) {
    let at = cn_span(artifact);
    let known: Vec<String> = BUILT_IN
        .iter()
        .map(|(_, cn)| (*cn).to_string())
        .chain(model.hosts.iter().map(|h| format!("system:node:{}", h.name)))
        .collect();
    if known.iter().any(|k| k == name) {
        return;
    }
    let near = crate::plan::nearest_word(name, &known);
    let node_like = name.starts_with("system:node") || name.starts_with("system:nodes:");
    if let Some(near) = near.filter(|_| name.starts_with("system:")).or_else(|| node_like.then(String::new)) {
        let hint = if near.is_empty() {
            "a node identity is `system:node:<host>` for a host of the plan".to_string()
        } else {
            format!("did you mean `{near}`?")
        };
        diagnostics.push(
            Diagnostic::error(
                RuleId::UserIdentityMisspelt,
                format!("the user `{name}` looks like a misspelt built-in identity"),
            )
            .at_opt(at)
            .label("not a name Kubernetes' RBAC knows")
            .hint(hint),
        );
    }
}

//! Rules on lifetimes and key strength: leaves (and intermediate CAs) that
//! outlive their CA, leaves valid over a year, RSA keys below 2048 bits.
//!
//! Lifetimes are reported where the plan writes them: a leaf's own or its
//! set's `validity`, else the CA's when the leaf keeps the default. Leaves
//! that share that place are reported once, so a short CA gives one error,
//! not one per certificate. Weak keys likewise: one error per place that
//! chooses `rsa-1024`, however many artifacts take their key from there.

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use super::span_of;
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::durations::length;
use crate::model::{Artifact, ArtifactId, Model, Spec};
use crate::plan::KeyAlgorithm;

/// One year, the longest leaf validity that draws no warning.
const ONE_YEAR: Duration = Duration::from_hours(8760);

/// Leaves with the same lifetime problem, reported at the same place.
#[derive(Default)]
struct Group<'m> {
    leaves: Vec<&'m ArtifactId>,
    validity: Duration,
}

/// Lifetime problems keyed by (rule, CA, validity span, leaf validity).
type Groups<'m> = BTreeMap<(RuleId, Option<&'m ArtifactId>, Option<(usize, usize)>, Duration), Group<'m>>;

/// Artifacts with a 1024-bit RSA key, keyed by the span that chooses it.
type WeakKeys<'m> = BTreeMap<Option<(usize, usize)>, Vec<&'m ArtifactId>>;

pub fn check(model: &Model, diagnostics: &mut Diagnostics) {
    let mut weak_keys = WeakKeys::new();
    let mut groups = Groups::new();
    for artifact in &model.artifacts {
        weak_key(artifact, &mut weak_keys);
        token_signing_key(artifact, diagnostics);
        // Leaves, and intermediate CAs under their parent.
        let (cert, is_leaf) = match &artifact.spec {
            Spec::Cert(cert) => (cert, true),
            Spec::Ca(cert) if cert.issuer != artifact.id => (cert, false),
            _ => continue,
        };
        let Some(ca_artifact) = model.artifact(&cert.issuer) else { continue };
        let Some(ca) = ca_artifact.spec.cert() else { continue };
        let key = |rule, issuer, at: Option<Range<usize>>| (rule, issuer, at.map(|r| (r.start, r.end)), cert.validity);
        if cert.validity > ca.validity {
            // A leaf that keeps the default validity is too long because the CA is short.
            let at = artifact.spans.validity.clone().or_else(|| ca_artifact.spans.validity.clone());
            let group = groups.entry(key(RuleId::LeafOutlivesCa, Some(&cert.issuer), at)).or_default();
            group.leaves.push(&artifact.id);
            group.validity = ca.validity;
        } else if is_leaf && cert.validity > ONE_YEAR {
            let at = span_of(artifact, artifact.spans.validity.as_ref());
            groups.entry(key(RuleId::ValidityOverAYear, None, at)).or_default().leaves.push(&artifact.id);
        }
    }
    for ((rule, issuer, at, validity), group) in groups {
        let leaves = leaf_list(&group.leaves);
        let at = at.map(|(start, end)| start..end);
        let diagnostic = match issuer {
            Some(issuer) => Diagnostic::error(
                rule,
                format!(
                    "{leaves} valid for {}, longer than its CA `{issuer}` ({})",
                    length(validity),
                    length(group.validity)
                ),
            )
            .label("longer than the CA")
            .hint("shorten the leaf's `validity` or lengthen the CA's: a certificate cannot outlive its issuer"),
            None => Diagnostic::warning(rule, format!("{leaves} valid for {}, longer than a year", length(validity)))
                .label("more than a year")
                .hint("Kubernetes and kubeadm issue leaves for one year; rotate instead of lengthening"),
        };
        diagnostics.push(diagnostic.at_opt(at));
    }
    weak_key_errors(weak_keys, diagnostics);
}

fn weak_key<'m>(artifact: &'m Artifact, weak_keys: &mut WeakKeys<'m>) {
    let key = match &artifact.spec {
        Spec::Ca(c) | Spec::Cert(c) => c.key,
        Spec::Keypair(k) => k.key,
        _ => return,
    };
    if key == KeyAlgorithm::Rsa1024 {
        let at = span_of(artifact, artifact.spans.key.as_ref()).map(|r| (r.start, r.end));
        weak_keys.entry(at).or_default().push(&artifact.id);
    }
}

/// The service-account key pair signs tokens as JWTs, which kube-apiserver
/// does only with RSA or ECDSA keys: with an Ed25519 key it does not start.
fn token_signing_key(artifact: &Artifact, diagnostics: &mut Diagnostics) {
    let Spec::Keypair(pair) = &artifact.spec else { return };
    if pair.key == KeyAlgorithm::Ed25519 {
        diagnostics.push(
            Diagnostic::error(
                RuleId::ServiceAccountKey,
                format!(
                    "`{}` would be an Ed25519 key, which kube-apiserver cannot sign or verify tokens with",
                    artifact.id
                ),
            )
            .at_opt(span_of(artifact, artifact.spans.key.as_ref()))
            .label("not RSA or ECDSA")
            .hint("give the key pair its own algorithm: `[sets.service-account]` with `key = \"ecdsa-p256\"`"),
        );
    }
}

/// One error per place that chooses a 1024-bit RSA key, naming how many
/// artifacts take their key from there (`[defaults]` gives every key).
fn weak_key_errors(weak_keys: WeakKeys<'_>, diagnostics: &mut Diagnostics) {
    for (at, ids) in weak_keys {
        let message = match ids.as_slice() {
            [one] => format!("`{one}` would have a 1024-bit RSA key"),
            many => format!("{} artifacts would have a 1024-bit RSA key: {}", many.len(), id_list(many)),
        };
        diagnostics.push(
            Diagnostic::error(RuleId::RsaTooSmall, message)
                .at_opt(at.map(|(start, end)| start..end))
                .label("too weak")
                .hint("RSA keys below 2048 bits are refused by Go's crypto/tls; use `rsa-2048` or `ecdsa-p256`"),
        );
    }
}

/// "`a` is", "`a` and `b` are", "`a`, `b` and 3 more are".
fn leaf_list(ids: &[&ArtifactId]) -> String {
    let verb = if ids.len() == 1 { "is" } else { "are" };
    format!("{} {verb}", id_list(ids))
}

/// "`a`", "`a` and `b`", "`a`, `b` and 3 more".
fn id_list(ids: &[&ArtifactId]) -> String {
    match ids {
        [] => String::new(),
        [one] => format!("`{one}`"),
        [a, b] => format!("`{a}` and `{b}`"),
        [a, b, rest @ ..] => format!("`{a}`, `{b}` and {} more", rest.len()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lists_name_two_and_count_the_rest() {
        let ids: Vec<ArtifactId> =
            ["ca/a", "cert/b", "cert/c", "cert/d"].map(|s| ArtifactId::parse(s).expect("an id")).into();
        let refs: Vec<&ArtifactId> = ids.iter().collect();
        assert_eq!(leaf_list(&refs[..1]), "`ca/a` is");
        assert_eq!(leaf_list(&refs[..2]), "`ca/a` and `cert/b` are");
        assert_eq!(id_list(&refs), "`ca/a`, `cert/b` and 2 more");
    }
}

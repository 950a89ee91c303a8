//! The resolved settings lowering builds artifacts from: cluster, defaults,
//! layout, hosts, CAs, sets and users, each value checked where it is read.
//!
//! [`resolve`] is the entry; each child module resolves one part of the plan.

mod allow;
mod cas;
mod cluster;
mod defaults;
mod hosts;
mod identities;
mod layout;
mod sets;
mod users;

use std::collections::BTreeMap;
use std::ops::Range;
use std::time::Duration;

use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::values::SanValue;
use crate::model::{CertSet, Cluster, Host, Layout, Subject};
use crate::plan::{KeyAlgorithm, PlanFile};

use allow::resolve_allowed;
use cas::resolve_cas;
use cluster::resolve_cluster;
use defaults::{resolve_defaults, resolve_subject};
use hosts::resolve_hosts;
use identities::resolve_identities;
use layout::resolve_layout;
use sets::resolve_sets;
use users::resolve_users;

/// Everything artifacts are built from.
pub struct Context {
    pub cluster: Cluster,
    pub layout: Layout,
    pub hosts: Vec<Host>,
    pub base_subject: Subject,
    pub cas: Vec<CaConfig>,
    pub sets: BTreeMap<CertSet, SetConfig>,
    pub users: Vec<UserConfig>,
    pub identities: BTreeMap<&'static str, IdentityConfig>,
    pub allowed: Vec<RuleId>,
    pub templates: Option<String>,
    /// The age recipients secrets are encrypted to (`[secrets]`); empty: plaintext.
    pub recipients: Vec<String>,
}

/// A subject override of a built-in identity.
pub struct IdentityConfig {
    pub cn: Option<String>,
    pub cn_span: Option<Range<usize>>,
    pub o: Option<Vec<String>>,
    pub o_span: Option<Range<usize>>,
    pub span: Range<usize>,
}

/// A CA as configured.
pub struct CaConfig {
    pub name: String,
    pub subject: Subject,
    pub key: KeyAlgorithm,
    pub key_span: Option<Range<usize>>,
    pub validity: Duration,
    pub validity_span: Option<Range<usize>>,
    pub span: Range<usize>,
    /// The rotation step the plan asks for, where it is written.
    pub rotation: Option<(crate::plan::RotationStep, Range<usize>)>,
    /// The CA that signs it (an intermediate), where it is written.
    pub parent: Option<(String, Range<usize>)>,
    /// Whether its key is kept off the tree.
    pub offline: bool,
    /// The certificate file of a CA certplan does not hold, as written,
    /// and where.
    pub external: Option<(String, Range<usize>)>,
}

impl Context {
    /// The rotation step of a CA, if it is being rotated.
    pub fn rotation(&self, ca: &str) -> Option<crate::plan::RotationStep> {
        self.cas.iter().find(|c| c.name == ca).and_then(|c| c.rotation.as_ref().map(|(step, _)| *step))
    }

    /// The rotation step of the service-account key pair, if it is being rotated.
    pub fn key_rotation(&self) -> Option<crate::plan::RotationStep> {
        self.sets.get(&CertSet::ServiceAccount)?.rotation.as_ref().map(|(step, _)| *step)
    }
}

/// A set as configured, with its CA resolved.
pub struct SetConfig {
    pub ca: Option<String>,
    pub ca_span: Option<Range<usize>>,
    pub extra_sans: Vec<SanValue>,
    pub sans_override: Option<(Vec<SanValue>, Range<usize>)>,
    pub key: KeyAlgorithm,
    pub key_span: Option<Range<usize>>,
    pub validity: Duration,
    pub validity_span: Option<Range<usize>>,
    pub span: Option<Range<usize>>,
    /// The key pair's rotation step (`service-account` only), where it is written.
    pub rotation: Option<(crate::plan::RotationStep, Range<usize>)>,
}

/// A user as configured.
pub struct UserConfig {
    pub name: String,
    pub name_span: Range<usize>,
    pub groups: Vec<String>,
    pub groups_span: Option<Range<usize>>,
    pub key: Option<KeyAlgorithm>,
    pub key_span: Option<Range<usize>>,
    pub validity: Option<Duration>,
    pub validity_span: Option<Range<usize>>,
    pub span: Range<usize>,
    pub ca: Option<(String, Range<usize>)>,
    pub server: Option<(String, Range<usize>)>,
}

struct Defaults {
    key: KeyAlgorithm,
    key_span: Option<Range<usize>>,
    validity: Duration,
    validity_span: Option<Range<usize>>,
    ca_validity: Duration,
    ca_validity_span: Option<Range<usize>>,
}

/// Resolves the plan's settings, reporting every malformed value.
pub fn resolve(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Option<Context> {
    let defaults = resolve_defaults(plan, diagnostics);
    let cluster = resolve_cluster(plan, diagnostics);
    let layout = resolve_layout(plan, diagnostics);
    let hosts = resolve_hosts(plan, diagnostics);
    let base_subject = resolve_subject(plan, diagnostics);
    let cas = resolve_cas(plan, &defaults, &base_subject, diagnostics);
    let sets = resolve_sets(plan, &cas, &defaults, diagnostics);
    let users = resolve_users(plan, diagnostics);
    let identities = resolve_identities(plan, diagnostics);
    let allowed = resolve_allowed(plan, diagnostics);
    let recipients = resolve_recipients(plan, diagnostics);
    let templates = plan.templates.as_ref().map(|dir| dir.get_ref().clone());
    Some(Context {
        cluster: cluster?,
        layout,
        hosts,
        base_subject,
        cas,
        sets,
        users,
        identities,
        allowed,
        templates,
        recipients,
    })
}

/// `[secrets] age_recipients`, each checked to be an age recipient.
fn resolve_recipients(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<String> {
    let mut recipients = Vec::new();
    for recipient in &plan.secrets.age_recipients {
        let text = recipient.get_ref().trim();
        if crate::secrets::Recipients::parse(&[text]).is_err() {
            // An identity pasted here is a secret: never repeat it, not even
            // in the snippet of the line that holds it.
            let diagnostic = if text.to_ascii_uppercase().starts_with("AGE-SECRET-KEY-") {
                Diagnostic::error(
                    RuleId::AgeRecipientInvalid,
                    "`[secrets] age_recipients` holds an age identity, the secret half of a key pair, not a recipient: take it out of the plan (and out of its history) and keep it secret",
                )
            } else {
                Diagnostic::error(RuleId::AgeRecipientInvalid, format!("`{text}` is not an age recipient"))
                    .at(recipient.span())
                    .label("not an `age1…` recipient")
            };
            diagnostics.push(diagnostic.hint("`age-keygen` prints a recipient as `Public key: age1…`"));
        } else if !recipients.iter().any(|r| r == text) {
            recipients.push(text.to_string());
        }
    }
    recipients
}

fn empty(key: &str, span: Range<usize>) -> Diagnostic {
    Diagnostic::error(RuleId::EmptyValue, format!("`{key}` cannot be empty")).at(span).label("empty")
}

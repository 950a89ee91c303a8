//! The catalogue of rule ids: every diagnostic certplan can give, its
//! default severity and a one-line summary. The book's rule reference and
//! `[[allow]]` validation read this table.

use super::Severity;

/// One rule.
#[derive(Debug, Clone, Copy)]
pub struct Rule {
    /// The stable id.
    pub id: &'static str,
    /// Its severity.
    pub severity: Severity,
    /// What it catches.
    pub summary: &'static str,
}

const fn error(id: &'static str, summary: &'static str) -> Rule {
    Rule { id, severity: Severity::Error, summary }
}

const fn warning(id: &'static str, summary: &'static str) -> Rule {
    Rule { id, severity: Severity::Warning, summary }
}

/// Every rule, grouped by stage.
pub const RULES: &[Rule] = &[
    error("toml-syntax", "the file is not valid TOML"),
    error("unknown-key", "a key certplan does not know in this table"),
    error("unknown-value", "a value outside the allowed set (a role, key algorithm, preset)"),
    error("missing-key", "a required key is missing"),
    error("wrong-type", "a value of the wrong type"),
    error("duplicate-key", "a key defined twice"),
    error("empty-value", "a required value is empty"),
    error("invalid-duration", "a validity that is not a duration"),
    error("invalid-url", "an API server URL that is not `https://HOST[:PORT]`"),
    error("invalid-cidr", "a service network that is not a CIDR"),
    error("service-cidr-families", "more than two service networks, or two of one IP family"),
    error("service-cidr-too-large", "a service network wider than the API server allocates from"),
    error("invalid-country", "a subject `C` that is not a two-letter country code"),
    error("invalid-ip", "a host address that is not an IP address"),
    error("address-cidr", "a host address written as a network"),
    error("invalid-dns-name", "a domain that is not an RFC 1123 name"),
    error("invalid-host-name", "a host name that is not a lower-case RFC 1123 name"),
    error("invalid-name", "a CA or user name that cannot name a file"),
    error("invalid-path", "a host directory that is not an absolute path"),
    error("unknown-version", "a Kubernetes version certplan does not know the flags of"),
    error("duplicate-host", "two hosts with one name"),
    error("duplicate-address", "two hosts with one address"),
    error("duplicate-user", "two users with one name"),
    error("missing-ca", "a plan without a CA"),
    error("unknown-ca", "a set or user naming a CA the plan does not declare"),
    error("set-ca-ambiguous", "a set without `ca` in a plan with several CAs"),
    error("set-without-ca", "a `ca` on the service-account key pair"),
    error("set-split-ca", "certificates of one set signed by different CAs"),
    error("san-cidr", "a CIDR in a SAN list"),
    error("san-invalid", "a SAN that is neither an IP address nor a DNS name"),
    error("sans-on-client-set", "SANs on a set of client certificates"),
    error("sans-override-unsupported", "a complete `sans` list on a set other than `apiserver`"),
    error("missing-role", "no host runs etcd or the control plane"),
    error("apiserver-missing-san", "the API server certificate lacks a SAN every cluster needs"),
    error("url-not-covered", "a URL a consumer dials that the answering certificate's SANs do not cover"),
    error("identity-cn", "a built-in identity whose CN Kubernetes will not recognise"),
    error("identity-o", "a built-in identity without the group Kubernetes authorises it by"),
    warning("system-masters", "`system:masters` (unrestricted, unrevocable) given to a component"),
    error("user-identity-misspelt", "a user whose name looks like a misspelt built-in identity"),
    error("leaf-outlives-ca", "a certificate valid longer than its CA"),
    warning("validity-over-a-year", "a leaf certificate valid longer than a year"),
    error("rsa-too-small", "an RSA key below 2048 bits"),
    warning("service-cidr-overlap", "a service network that contains a host address"),
    error("subject-unrepresentable", "a subject the X.509 writer cannot hold faithfully"),
    error("bootstrap-without-token", "a kubelet that bootstraps but no bootstrap token in the plan"),
    error("bootstrap-group", "a bootstrap token group outside `system:bootstrappers:`"),
    warning("kubelet-serving-unverified", "kubelet serving certificates the API server cannot verify"),
    error("allow-unknown-rule", "an `[[allow]]` naming no rule, or a rule that is an error"),
    error("allow-no-reason", "an `[[allow]]` without a reason"),
    error("internal-graph", "a cycle in the artifact graph: a fault in certplan, not in the plan"),
    error("internal-missing-file", "a flag naming a file no artifact places: a fault in certplan, not in the plan"),
];

/// The rule with an id.
pub fn rule(id: &str) -> Option<&'static Rule> {
    RULES.iter().find(|r| r.id == id)
}

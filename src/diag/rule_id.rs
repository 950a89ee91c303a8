//! The catalogue of rules: every diagnostic certplan can give, as one
//! [`RuleId`] variant with its stable id, default severity and a one-line
//! summary. The table below is the only place a rule is declared; the book's
//! rule reference, the fixture corpus and `[[allow]]` validation are checked
//! against [`RuleId::ALL`].

use std::fmt;
use std::str::FromStr;

use super::Severity;

/// Declares [`RuleId`] and its catalogue from one table, so a rule cannot
/// have a variant without an id, a severity and a summary, or the reverse.
macro_rules! rule_ids {
    ($($variant:ident = $id:literal, $severity:ident, $summary:literal;)+) => {
        /// A rule: what a diagnostic is about. Its id (`san-cidr`) is what
        /// diagnostics, their JSON and `[[allow]]` entries spell.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub enum RuleId {
            $(
                #[doc = $summary]
                $variant,
            )+
        }

        impl RuleId {
            /// Every rule, grouped by stage.
            pub const ALL: &'static [RuleId] = &[$(RuleId::$variant),+];

            /// The stable id, such as `san-cidr`.
            pub const fn as_str(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $id,)+
                }
            }

            /// The severity of its diagnostics.
            pub const fn severity(self) -> Severity {
                match self {
                    $(RuleId::$variant => Severity::$severity,)+
                }
            }

            /// What it catches, in one line.
            pub const fn summary(self) -> &'static str {
                match self {
                    $(RuleId::$variant => $summary,)+
                }
            }
        }
    };
}

rule_ids! {
    TomlSyntax = "toml-syntax", Error, "the file is not valid TOML";
    UnknownKey = "unknown-key", Error, "a key certplan does not know in this table";
    UnknownValue = "unknown-value", Error, "a value outside the allowed set (a role, key algorithm, preset)";
    MissingKey = "missing-key", Error, "a required key is missing";
    WrongType = "wrong-type", Error, "a value of the wrong type";
    DuplicateKey = "duplicate-key", Error, "a key defined twice";
    EmptyValue = "empty-value", Error, "a required value is empty";
    InvalidDuration = "invalid-duration", Error, "a validity that is not a duration";
    InvalidUrl = "invalid-url", Error, "an API server URL that is not `https://HOST[:PORT]`";
    InvalidCidr = "invalid-cidr", Error, "a service network that is not a CIDR";
    ServiceCidrFamilies = "service-cidr-families", Error,
        "more than two service networks, or two of one IP family";
    ServiceCidrTooLarge = "service-cidr-too-large", Error,
        "a service network wider than the API server allocates from";
    InvalidCountry = "invalid-country", Error, "a subject `C` that is not a two-letter country code";
    InvalidIp = "invalid-ip", Error, "a host address that is not an IP address";
    AddressCidr = "address-cidr", Error, "a host address written as a network";
    InvalidDnsName = "invalid-dns-name", Error, "a domain that is not an RFC 1123 name";
    InvalidHostName = "invalid-host-name", Error, "a host name that is not a lower-case RFC 1123 name";
    InvalidName = "invalid-name", Error, "a CA or user name that cannot name a file";
    InvalidPath = "invalid-path", Error, "a host directory that is not an absolute path";
    UnknownVersion = "unknown-version", Error, "a Kubernetes version certplan does not know the flags of";
    DuplicateHost = "duplicate-host", Error, "two hosts with one name";
    DuplicateAddress = "duplicate-address", Error, "two hosts with one address";
    DuplicateUser = "duplicate-user", Error, "two users with one name";
    MissingCa = "missing-ca", Error, "a plan without a CA";
    UnknownCa = "unknown-ca", Error, "a set or user naming a CA the plan does not declare";
    SetCaAmbiguous = "set-ca-ambiguous", Error, "a set without `ca` in a plan with several CAs";
    SetWithoutCa = "set-without-ca", Error, "a `ca` on the service-account key pair";
    SetSplitCa = "set-split-ca", Error, "certificates of one set signed by different CAs";
    SanCidr = "san-cidr", Error, "a CIDR in a SAN list";
    SanInvalid = "san-invalid", Error, "a SAN that is neither an IP address nor a DNS name";
    SansOnClientSet = "sans-on-client-set", Error, "SANs on a set of client certificates";
    SansOverrideUnsupported = "sans-override-unsupported", Error,
        "a complete `sans` list on a set other than `apiserver`";
    CaParentCycle = "ca-parent-cycle", Error, "a CA whose `parent` chain leads back to itself";
    ExternalCaConflict = "external-ca-conflict", Error,
        "an external CA (its key not held) asked to do what needs its key";
    OfflineCaSigns = "offline-ca-signs", Error,
        "an offline CA the controller-manager must sign kubelet certificates with";
    RotationInHierarchy = "rotation-in-hierarchy", Error,
        "staged `rotation` of a CA that has a `parent` or signs intermediates";
    RotationUnsupported = "rotation-unsupported", Error,
        "`rotation` on a set other than `service-account` (certificates rotate with their CA)";
    MissingRole = "missing-role", Error, "no host runs etcd or the control plane";
    ApiserverMissingSan = "apiserver-missing-san", Error,
        "the API server certificate lacks a SAN every cluster needs";
    UrlNotCovered = "url-not-covered", Error,
        "a URL a consumer dials that the answering certificate's SANs do not cover";
    IdentityCn = "identity-cn", Error, "a built-in identity whose CN Kubernetes will not recognise";
    IdentityO = "identity-o", Error, "a built-in identity without the group Kubernetes authorises it by";
    SystemMasters = "system-masters", Warning,
        "`system:masters` (unrestricted, unrevocable) given to a component";
    UserIdentityMisspelt = "user-identity-misspelt", Error,
        "a user whose name looks like a misspelt built-in identity";
    LeafOutlivesCa = "leaf-outlives-ca", Error, "a certificate valid longer than its CA";
    ValidityOverAYear = "validity-over-a-year", Warning, "a leaf certificate valid longer than a year";
    RsaTooSmall = "rsa-too-small", Error, "an RSA key below 2048 bits";
    ServiceAccountKey = "service-account-key", Error, "an Ed25519 service-account key, which kube-apiserver cannot use";
    ServiceCidrOverlap = "service-cidr-overlap", Warning, "a service network that contains a host address";
    SubjectUnrepresentable = "subject-unrepresentable", Error,
        "a subject the X.509 writer cannot hold faithfully";
    BootstrapWithoutToken = "bootstrap-without-token", Error,
        "a kubelet that bootstraps but no bootstrap token in the plan";
    BootstrapGroup = "bootstrap-group", Error, "a bootstrap token group outside `system:bootstrappers:`";
    KubeletServingUnverified = "kubelet-serving-unverified", Warning,
        "kubelet serving certificates the API server cannot verify";
    RotationSkipsStep = "rotation-skips-step", Error,
        "a CA rotation step that skips the one after the output tree's (`check --out`)";
    CaRenewalDue = "ca-renewal-due", Warning,
        "a CA in the last fifth of its validity in the output tree (`check --out`)";
    AgeRecipientInvalid = "age-recipient-invalid", Error, "a `[secrets] age_recipients` entry that is not an age recipient";
    AllowUnknownRule = "allow-unknown-rule", Error, "an `[[allow]]` naming no rule, or a rule that is an error";
    AllowNoReason = "allow-no-reason", Error, "an `[[allow]]` without a reason";
    InternalGraph = "internal-graph", Error,
        "a cycle in the artifact graph: a fault in certplan, not in the plan";
    InternalMissingFile = "internal-missing-file", Error,
        "a flag naming a file no artifact places: a fault in certplan, not in the plan";
}

impl RuleId {
    /// Whether the rule reads the output tree (`check --out DIR`), so that
    /// no plan alone can provoke it.
    #[must_use]
    pub const fn needs_tree(self) -> bool {
        matches!(self, Self::RotationSkipsStep | Self::CaRenewalDue)
    }
}

impl fmt::Display for RuleId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for RuleId {
    type Err = UnknownRule;

    fn from_str(id: &str) -> Result<Self, Self::Err> {
        Self::ALL.iter().copied().find(|rule| rule.as_str() == id).ok_or_else(|| UnknownRule(id.to_string()))
    }
}

/// An id that names no rule.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a rule")]
pub struct UnknownRule(pub String);

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn every_id_parses_back_to_its_rule_and_names_one_rule() {
        let mut ids = BTreeSet::new();
        for &rule in RuleId::ALL {
            assert_eq!(rule.as_str().parse::<RuleId>(), Ok(rule));
            assert_eq!(rule.to_string(), rule.as_str());
            assert!(ids.insert(rule.as_str()), "`{rule}` names two rules");
        }
    }

    #[test]
    fn every_id_is_its_variant_in_kebab_case() {
        for &rule in RuleId::ALL {
            let camel: String = rule
                .as_str()
                .split('-')
                .map(|word| {
                    let (first, rest) = word.split_at(1);
                    first.to_ascii_uppercase() + rest
                })
                .collect();
            assert_eq!(format!("{rule:?}"), camel, "`{rule}` is declared as the variant `{rule:?}`");
            assert!(!rule.summary().is_empty(), "`{rule}` has no summary");
        }
    }

    #[test]
    fn an_unknown_id_is_no_rule() {
        assert_eq!("san-cidrs".parse::<RuleId>(), Err(UnknownRule("san-cidrs".into())));
        assert_eq!("SanCidr".parse::<RuleId>(), Err(UnknownRule("SanCidr".into())));
        assert!("".parse::<RuleId>().is_err());
        assert_eq!(UnknownRule("nope".into()).to_string(), "`nope` is not a rule");
    }
}

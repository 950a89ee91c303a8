//! [`ArtifactId`]: the stable name of an artifact, `KIND/NAME[/HOST]`, as
//! the JSON documents, the state file and `--rotate` spell it. Ids are made
//! here, one constructor per kind of artifact, and nowhere else written by
//! hand; text from outside (the state file, the command line) becomes an id
//! through [`ArtifactId::parse`].

use std::fmt;

use serde::{Deserialize, Deserializer, Serialize};

use super::CertSet;

/// A stable artifact id such as `cert/apiserver` or `cert/etcd-peer/master1`.
/// Ordered, hashed and serialized as its text.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize)]
#[serde(transparent)]
pub struct ArtifactId(String);

/// The kinds of artifact, the first segment of an id.
const KINDS: [&str; 8] = ["ca", "cert", "keypair", "kubeconfig", "token-file", "manifest", "flags", "bundle"];

/// The segment that puts users' certificates and kubeconfigs apart from the
/// built-in identities' (`cert/users/NAME`).
const USERS: &str = "users";

/// The segment of the CA that a rotation brings in (`ca/NAME/next`).
const NEXT: &str = "next";

/// The segment of the CA that a rotation's `retire` step takes out (`ca/NAME/old`).
const OLD: &str = "old";

/// The name of the bootstrap token's artifacts (its token file and kubeconfig).
const BOOTSTRAP: &str = "bootstrap";

impl ArtifactId {
    fn join(kind: &'static str, segments: &[&str]) -> Self {
        let mut id = kind.to_string();
        for segment in segments {
            id.push('/');
            id.push_str(segment);
        }
        Self(id)
    }

    /// The CA named `name` in `[cas.NAME]`: `ca/NAME`.
    #[must_use]
    pub fn ca(name: &str) -> Self {
        Self::join("ca", &[name])
    }

    /// The CA a rotation of `[cas.NAME]` brings in, during its `trust` and
    /// `issue` steps: `ca/NAME/next`. At `retire` it becomes `ca/NAME`.
    #[must_use]
    pub fn next_ca(name: &str) -> Self {
        Self::join("ca", &[name, NEXT])
    }

    /// The CA a rotation's `retire` step deletes, as `plan` names its
    /// removal: `ca/NAME/old`.
    #[must_use]
    pub fn old_ca(name: &str) -> Self {
        Self::join("ca", &[name, OLD])
    }

    /// The trust bundle of a CA under rotation (both its certificates):
    /// `bundle/NAME`.
    #[must_use]
    pub fn bundle(name: &str) -> Self {
        Self::join("bundle", &[name])
    }

    /// The key pair a rotation of `[sets.SET]` brings in during its `trust`
    /// and `issue` steps: `keypair/SET/next`.
    #[must_use]
    pub fn next_keypair(set: CertSet) -> Self {
        Self::join("keypair", &[set.as_str(), NEXT])
    }

    /// The key pair a rotation's `retire` step deletes: `keypair/SET/old`.
    #[must_use]
    pub fn old_keypair(set: CertSet) -> Self {
        Self::join("keypair", &[set.as_str(), OLD])
    }

    /// The public keys of a key pair under rotation, both in one file:
    /// `bundle/sets/SET` (apart from CAs' bundles, whatever a CA is named).
    #[must_use]
    pub fn key_bundle(set: CertSet) -> Self {
        Self::join("bundle", &["sets", set.as_str()])
    }

    /// A certificate named after its set, `cert/SET`, or one per host,
    /// `cert/SET/HOST` (`cert/apiserver`, `cert/etcd-server/master1`).
    #[must_use]
    pub fn set_cert(set: CertSet, host: Option<&str>) -> Self {
        match host {
            Some(host) => Self::join("cert", &[set.as_str(), host]),
            None => Self::join("cert", &[set.as_str()]),
        }
    }

    /// The certificate of a built-in identity (`[identities] NAME`),
    /// `cert/NAME`, or of one host, `cert/NAME/HOST` (`cert/kube-proxy`,
    /// `cert/kubelet/node1`).
    #[must_use]
    pub fn identity_cert(identity: &str, host: Option<&str>) -> Self {
        match host {
            Some(host) => Self::join("cert", &[identity, host]),
            None => Self::join("cert", &[identity]),
        }
    }

    /// The certificate of a `[[users]]` entry: `cert/users/NAME`.
    #[must_use]
    pub fn user_cert(user: &str) -> Self {
        Self::join("cert", &[USERS, user])
    }

    /// The key pair of a set: `keypair/SET` (`keypair/service-account`).
    #[must_use]
    pub fn keypair(set: CertSet) -> Self {
        Self::join("keypair", &[set.as_str()])
    }

    /// The kubeconfig of a built-in identity, `kubeconfig/NAME`, or of one
    /// host, `kubeconfig/NAME/HOST`.
    #[must_use]
    pub fn identity_kubeconfig(identity: &str, host: Option<&str>) -> Self {
        match host {
            Some(host) => Self::join("kubeconfig", &[identity, host]),
            None => Self::join("kubeconfig", &[identity]),
        }
    }

    /// The kubeconfig of a `[[users]]` entry: `kubeconfig/users/NAME`.
    #[must_use]
    pub fn user_kubeconfig(user: &str) -> Self {
        Self::join("kubeconfig", &[USERS, user])
    }

    /// The kubeconfig kubelets bootstrap with: `kubeconfig/bootstrap`.
    #[must_use]
    pub fn bootstrap_kubeconfig() -> Self {
        Self::join("kubeconfig", &[BOOTSTRAP])
    }

    /// The static token file with the bootstrap token: `token-file/bootstrap`.
    #[must_use]
    pub fn bootstrap_token_file() -> Self {
        Self::join("token-file", &[BOOTSTRAP])
    }

    /// A manifest for the cluster: `manifest/NAME`.
    #[must_use]
    pub fn manifest(name: &str) -> Self {
        Self::join("manifest", &[name])
    }

    /// A component's flag file on a host: `flags/COMPONENT/HOST`.
    #[must_use]
    pub fn flags(component: &str, host: &str) -> Self {
        Self::join("flags", &[component, host])
    }

    /// Reads an id as the constructors write it: a known kind and one or two
    /// non-empty segments. `None` for text that cannot be an id; whether an
    /// artifact has the id is the model's to answer.
    #[must_use]
    pub fn parse(text: &str) -> Option<Self> {
        let (kind, rest) = text.split_once('/')?;
        let shaped = KINDS.contains(&kind) && rest.split('/').count() <= 2 && rest.split('/').all(|s| !s.is_empty());
        shaped.then(|| Self(text.to_string()))
    }

    /// The id as text.
    #[must_use]
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// Its kind, the first segment (`ca`, `cert`, `kubeconfig`, ...).
    #[must_use]
    pub fn kind(&self) -> &str {
        self.0.split_once('/').map_or(self.0.as_str(), |(kind, _)| kind)
    }

    /// The name of the CA a `ca/NAME` id names (`ca/NAME/next` and
    /// `ca/NAME/old` too: the same `[cas.NAME]`).
    #[must_use]
    pub fn ca_name(&self) -> Option<&str> {
        let rest = self.0.strip_prefix("ca/")?;
        Some(rest.split_once('/').map_or(rest, |(name, _)| name))
    }

    /// Whether it names what a rotation's `retire` step deletes: an old CA
    /// or an old key pair.
    #[must_use]
    pub fn is_retired(&self) -> bool {
        matches!(self.kind(), "ca" | "keypair")
            && self.0.rsplit('/').next() == Some(OLD)
            && self.0.matches('/').count() == 2
    }

    /// Whether it names the certificate of a `[[users]]` entry.
    #[must_use]
    pub fn is_user_cert(&self) -> bool {
        self.0.strip_prefix("cert/").and_then(|rest| rest.strip_prefix(USERS)).is_some_and(|rest| rest.starts_with('/'))
    }

    /// Whether it names a certificate of the built-in identity `identity`,
    /// its own or one host's ([`ArtifactId::identity_cert`]).
    #[must_use]
    pub fn is_identity_cert(&self, identity: &str) -> bool {
        self.0
            .strip_prefix("cert/")
            .and_then(|rest| rest.strip_prefix(identity))
            .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
    }
}

impl fmt::Display for ArtifactId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

/// Read from the state file, whose keys are ids: one that is not an id
/// makes the file unreadable rather than name something certplan never made.
impl<'de> Deserialize<'de> for ArtifactId {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        let text = String::deserialize(deserializer)?;
        Self::parse(&text).ok_or_else(|| serde::de::Error::custom(format!("`{text}` is not an artifact id")))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn constructors_write_the_ids_of_the_contract() {
        let ids = [
            (ArtifactId::ca("etcd"), "ca/etcd"),
            (ArtifactId::set_cert(CertSet::Apiserver, None), "cert/apiserver"),
            (ArtifactId::set_cert(CertSet::EtcdServer, Some("m1")), "cert/etcd-server/m1"),
            (ArtifactId::identity_cert("kube-proxy", None), "cert/kube-proxy"),
            (ArtifactId::identity_cert("kubelet", Some("n1")), "cert/kubelet/n1"),
            (ArtifactId::user_cert("admin"), "cert/users/admin"),
            (ArtifactId::keypair(CertSet::ServiceAccount), "keypair/service-account"),
            (ArtifactId::identity_kubeconfig("kube-scheduler", None), "kubeconfig/kube-scheduler"),
            (ArtifactId::identity_kubeconfig("kubelet", Some("n1")), "kubeconfig/kubelet/n1"),
            (ArtifactId::user_kubeconfig("admin"), "kubeconfig/users/admin"),
            (ArtifactId::bootstrap_kubeconfig(), "kubeconfig/bootstrap"),
            (ArtifactId::bootstrap_token_file(), "token-file/bootstrap"),
            (ArtifactId::manifest("bootstrap-token"), "manifest/bootstrap-token"),
            (ArtifactId::flags("kube-apiserver", "m1"), "flags/kube-apiserver/m1"),
            (ArtifactId::next_ca("etcd"), "ca/etcd/next"),
            (ArtifactId::old_ca("etcd"), "ca/etcd/old"),
            (ArtifactId::bundle("etcd"), "bundle/etcd"),
            (ArtifactId::next_keypair(CertSet::ServiceAccount), "keypair/service-account/next"),
            (ArtifactId::old_keypair(CertSet::ServiceAccount), "keypair/service-account/old"),
            (ArtifactId::key_bundle(CertSet::ServiceAccount), "bundle/sets/service-account"),
        ];
        for (id, text) in ids {
            assert_eq!(id.as_str(), text);
            assert_eq!(ArtifactId::parse(text), Some(id.clone()), "{text} parses back");
            assert_eq!(serde_json::to_string(&id).expect("serializes"), format!("\"{text}\""));
        }
    }

    #[test]
    fn only_ids_parse() {
        for text in ["", "ca", "ca/", "cert//x", "cert/a/b/c", "host/m1", "cert/x/", "/cert/x"] {
            assert_eq!(ArtifactId::parse(text), None, "{text:?}");
        }
        let id = ArtifactId::parse("token-file/bootstrap").expect("an id");
        assert_eq!(id.kind(), "token-file");
    }

    #[test]
    fn what_an_id_names() {
        assert_eq!(ArtifactId::ca("lab").ca_name(), Some("lab"));
        assert_eq!(ArtifactId::next_ca("lab").ca_name(), Some("lab"));
        assert!(ArtifactId::old_ca("lab").is_retired());
        assert!(ArtifactId::old_keypair(CertSet::ServiceAccount).is_retired());
        assert!(!ArtifactId::next_ca("lab").is_retired() && !ArtifactId::ca("old").is_retired());
        assert_eq!(ArtifactId::user_cert("ops").ca_name(), None);
        assert!(ArtifactId::user_cert("ops").is_user_cert());
        assert!(!ArtifactId::identity_kubeconfig("users", None).is_user_cert());
        assert!(ArtifactId::identity_cert("kubelet", Some("n1")).is_identity_cert("kubelet"));
        assert!(!ArtifactId::set_cert(CertSet::KubeletServer, Some("n1")).is_identity_cert("kubelet"));
        assert!(!ArtifactId::user_cert("kube-proxy").is_identity_cert("kube-proxy"));
    }

    #[test]
    fn the_state_file_holds_ids() {
        let id: ArtifactId = serde_json::from_str("\"cert/apiserver\"").expect("an id");
        assert_eq!(id, ArtifactId::set_cert(CertSet::Apiserver, None));
        assert!(serde_json::from_str::<ArtifactId>("\"apiserver\"").is_err());
    }
}

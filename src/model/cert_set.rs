//! [`CertSet`]: the nine certificate sets a plan configures under
//! `[sets.NAME]`, and what each set is — serving or client, signed by a CA
//! or a bare key pair, and which of kubeadm's CAs signs it by convention.
//! Every other module names a set through this type, never by its text.

use std::cmp::Ordering;
use std::fmt;
use std::str::FromStr;

use serde::{Serialize, Serializer};

/// A certificate set. Ordered by name, as the `&str` names it replaces
/// were, so maps keyed by sets keep the order every output shows them in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CertSet {
    /// etcd's serving certificates, one per etcd host.
    EtcdServer,
    /// etcd's peer certificates, one per etcd host.
    EtcdPeer,
    /// Clients of etcd (the API server).
    EtcdClient,
    /// The API server's serving certificate.
    Apiserver,
    /// Clients of the API server: components, kubelets and users.
    ApiserverClient,
    /// The service-account signing key pair.
    ServiceAccount,
    /// Kubelets' serving certificates, one per worker.
    KubeletServer,
    /// Clients of kubelets (the API server).
    KubeletClient,
    /// The API server's client of aggregated API servers.
    FrontProxy,
}

impl CertSet {
    /// Every set, in the order of the design, plus front-proxy.
    pub const ALL: [Self; 9] = [
        Self::EtcdServer,
        Self::EtcdPeer,
        Self::EtcdClient,
        Self::Apiserver,
        Self::ApiserverClient,
        Self::ServiceAccount,
        Self::KubeletServer,
        Self::KubeletClient,
        Self::FrontProxy,
    ];

    /// Every set, in the order of [`CertSet::ALL`].
    pub fn iter() -> impl Iterator<Item = Self> {
        Self::ALL.into_iter()
    }

    /// Its name: also its section `[sets.NAME]` in the plan, and how reports
    /// and JSON documents name it.
    #[must_use]
    pub fn as_str(self) -> &'static str {
        match self {
            Self::EtcdServer => "etcd-server",
            Self::EtcdPeer => "etcd-peer",
            Self::EtcdClient => "etcd-client",
            Self::Apiserver => "apiserver",
            Self::ApiserverClient => "apiserver-client",
            Self::ServiceAccount => "service-account",
            Self::KubeletServer => "kubelet-server",
            Self::KubeletClient => "kubelet-client",
            Self::FrontProxy => "front-proxy",
        }
    }

    /// Whether it holds serving certificates, which take SANs; the others
    /// hold client certificates (or, for service-account, a key pair).
    #[must_use]
    pub fn is_serving(self) -> bool {
        matches!(self, Self::EtcdServer | Self::EtcdPeer | Self::Apiserver | Self::KubeletServer)
    }

    /// Whether it is a bare key pair that no CA signs (service-account).
    #[must_use]
    pub fn is_key_pair(self) -> bool {
        self == Self::ServiceAccount
    }

    /// The name of kubeadm's CA for the set, which signs it when the plan
    /// declares a CA of that name and the set names none; `None` for the key
    /// pair.
    #[must_use]
    pub fn conventional_ca(self) -> Option<&'static str> {
        match self {
            Self::EtcdServer | Self::EtcdPeer | Self::EtcdClient => Some("etcd"),
            Self::FrontProxy => Some("front-proxy"),
            Self::ServiceAccount => None,
            Self::Apiserver | Self::ApiserverClient | Self::KubeletServer | Self::KubeletClient => Some("kubernetes"),
        }
    }
}

impl Ord for CertSet {
    fn cmp(&self, other: &Self) -> Ordering {
        self.as_str().cmp(other.as_str())
    }
}

impl PartialOrd for CertSet {
    fn partial_cmp(&self, other: &Self) -> Option<Ordering> {
        Some(self.cmp(other))
    }
}

impl fmt::Display for CertSet {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        // `pad`, as `str` does, so widths and alignment apply to the name.
        f.pad(self.as_str())
    }
}

impl Serialize for CertSet {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        serializer.serialize_str(self.as_str())
    }
}

/// A name that is no certificate set.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("`{0}` is not a certificate set")]
pub struct UnknownCertSet(pub String);

impl FromStr for CertSet {
    type Err = UnknownCertSet;

    fn from_str(name: &str) -> Result<Self, Self::Err> {
        Self::iter().find(|set| set.as_str() == name).ok_or_else(|| UnknownCertSet(name.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_parse_back_and_serialize_as_themselves() {
        for set in CertSet::iter() {
            assert_eq!(set.as_str().parse::<CertSet>(), Ok(set));
            assert_eq!(set.to_string(), set.as_str());
            assert_eq!(serde_json::to_string(&set).expect("serializes"), format!("\"{set}\""));
        }
        assert_eq!("etcd".parse::<CertSet>(), Err(UnknownCertSet("etcd".into())));
    }

    #[test]
    fn sets_order_as_their_names() {
        let mut sets = CertSet::ALL.to_vec();
        sets.sort();
        let mut names: Vec<&str> = CertSet::iter().map(CertSet::as_str).collect();
        names.sort_unstable();
        assert_eq!(sets.into_iter().map(CertSet::as_str).collect::<Vec<_>>(), names);
    }

    #[test]
    fn what_a_set_knows() {
        let serving: Vec<&str> = CertSet::iter().filter(|s| s.is_serving()).map(CertSet::as_str).collect();
        assert_eq!(serving, ["etcd-server", "etcd-peer", "apiserver", "kubelet-server"]);
        assert_eq!(CertSet::EtcdClient.conventional_ca(), Some("etcd"));
        assert_eq!(CertSet::FrontProxy.conventional_ca(), Some("front-proxy"));
        assert_eq!(CertSet::KubeletClient.conventional_ca(), Some("kubernetes"));
        assert_eq!(CertSet::ServiceAccount.conventional_ca(), None);
        assert!(CertSet::ServiceAccount.is_key_pair());
    }
}

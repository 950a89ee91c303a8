//! What a kubeconfig found on a host embeds: its server, its CA and its
//! credential (client certificate and key, or token), read from the
//! single-line fields kubectl, kubeadm and certplan write
//! (`certificate-authority-data: <base64>`). A kubeconfig that names
//! files instead of embedding them has nothing to compare and is not
//! adopted.

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use zeroize::Zeroizing;

/// The embedded fields of a kubeconfig (the first of each).
#[derive(Default)]
pub struct Embedded {
    /// The URL it dials.
    pub server: Option<String>,
    /// The PEM of the CA it trusts.
    pub ca: Option<Vec<u8>>,
    /// The PEM of its client certificate.
    pub client_cert: Option<Vec<u8>>,
    /// The PEM of its client key.
    pub client_key: Option<Zeroizing<Vec<u8>>>,
    /// Its bearer token.
    pub token: Option<Zeroizing<String>>,
}

/// Reads the embedded fields of a kubeconfig's text.
#[must_use]
pub fn read(bytes: &[u8]) -> Embedded {
    let Ok(text) = std::str::from_utf8(bytes) else {
        return Embedded::default();
    };
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let rest = line.trim_start().trim_start_matches("- ").trim_start();
            let value = rest.strip_prefix(name)?.strip_prefix(':')?.trim().trim_matches(['"', '\'']);
            (!value.is_empty()).then_some(value)
        })
    };
    let data = |name: &str| field(name).and_then(|value| B64.decode(value).ok());
    Embedded {
        server: field("server").map(str::to_string),
        ca: data("certificate-authority-data"),
        client_cert: data("client-certificate-data"),
        client_key: data("client-key-data").map(Zeroizing::new),
        token: field("token").map(|t| Zeroizing::new(t.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_what_kubeadm_writes() {
        let ca = B64.encode("CA PEM");
        let cert = B64.encode("CERT PEM");
        let key = B64.encode("KEY PEM");
        let text = format!(
            "apiVersion: v1\nclusters:\n- cluster:\n    certificate-authority-data: {ca}\n    server: https://10.0.0.11:6443\n  name: kubernetes\nusers:\n- name: system:kube-scheduler\n  user:\n    client-certificate-data: {cert}\n    client-key-data: {key}\n"
        );
        let embedded = read(text.as_bytes());
        assert_eq!(embedded.server.as_deref(), Some("https://10.0.0.11:6443"));
        assert_eq!(embedded.ca.as_deref(), Some(b"CA PEM".as_slice()));
        assert_eq!(embedded.client_cert.as_deref(), Some(b"CERT PEM".as_slice()));
        assert_eq!(embedded.client_key.as_deref().map(Vec::as_slice), Some(b"KEY PEM".as_slice()));
        assert!(embedded.token.is_none());
    }

    #[test]
    fn file_references_embed_nothing() {
        let text = "users:\n- name: kubelet\n  user:\n    client-certificate: /var/lib/kubelet/pki/kubelet-client-current.pem\n";
        let embedded = read(text.as_bytes());
        assert!(embedded.client_cert.is_none() && embedded.client_key.is_none());
    }
}

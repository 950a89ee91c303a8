//! File names and directories: where each artifact lands on a host, by
//! layout preset (cfssl-style or kubeadm-style names).

use crate::plan::Preset;

/// The resolved `[layout]`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize)]
pub struct Layout {
    /// The naming convention.
    pub preset: Preset,
    /// Certificates and keys on the hosts.
    pub pki_dir: String,
    /// Kubeconfigs, token.csv and flag files on the hosts.
    pub config_dir: String,
}

/// What a CA is for, which decides its file name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CaRole {
    /// Signs the API server's certificate.
    Cluster,
    /// Signs etcd's serving certificates (and is not the cluster CA).
    Etcd,
    /// Signs the front-proxy client (and is neither of the above).
    FrontProxy,
    /// Anything else.
    Other,
}

impl Layout {
    /// The file stem (no extension) of a CA, relative to `pki_dir`.
    #[must_use]
    pub fn ca_stem(&self, name: &str, role: CaRole) -> String {
        match (self.preset, role) {
            (_, CaRole::Cluster) => "ca".to_string(),
            (Preset::Kubeadm, CaRole::Etcd) => "etcd/ca".to_string(),
            (Preset::Kubeadm, CaRole::FrontProxy) => "front-proxy-ca".to_string(),
            _ => format!("{name}-ca"),
        }
    }

    /// The stem of a leaf certificate, by its conventional names
    /// `(cfssl, kubeadm)`.
    #[must_use]
    pub fn leaf_stem(&self, cfssl: &str, kubeadm: &str) -> String {
        match self.preset {
            Preset::Cfssl => cfssl.to_string(),
            Preset::Kubeadm => kubeadm.to_string(),
        }
    }

    /// The certificate file name of a stem.
    #[must_use]
    pub fn cert_file(&self, stem: &str) -> String {
        match self.preset {
            Preset::Cfssl => format!("{stem}.pem"),
            Preset::Kubeadm => format!("{stem}.crt"),
        }
    }

    /// The private key file name of a stem.
    #[must_use]
    pub fn key_file(&self, stem: &str) -> String {
        match self.preset {
            Preset::Cfssl => format!("{stem}-key.pem"),
            Preset::Kubeadm => format!("{stem}.key"),
        }
    }

    /// The public key file name of a stem.
    #[must_use]
    pub fn public_key_file(&self, stem: &str) -> String {
        format!("{stem}.pub")
    }

    /// The kubeconfig file name of a component, by `(cfssl, kubeadm)` stems.
    #[must_use]
    pub fn kubeconfig_file(&self, cfssl: &str, kubeadm: &str) -> String {
        match self.preset {
            Preset::Cfssl => format!("{cfssl}.kubeconfig"),
            Preset::Kubeadm => format!("{kubeadm}.conf"),
        }
    }

    /// An absolute on-host path in `pki_dir`.
    #[must_use]
    pub fn in_pki(&self, file: &str) -> String {
        join(&self.pki_dir, file)
    }

    /// An absolute on-host path in `config_dir`.
    #[must_use]
    pub fn in_config(&self, file: &str) -> String {
        join(&self.config_dir, file)
    }
}

fn join(dir: &str, file: &str) -> String {
    format!("{}/{}", dir.trim_end_matches('/'), file)
}

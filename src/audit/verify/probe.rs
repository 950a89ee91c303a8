//! `verify --host NAME --root ROOT --probe`: whether the components running
//! on a host serve the certificates installed on it. A certificate replaced
//! on disk is not what a running component serves until it restarts.
//!
//! For each TLS endpoint the plan knows on the host (etcd's client and peer
//! ports on an etcd host, the API server's secure port on a control-plane
//! host, the kubelet's port on a worker with a static serving certificate),
//! a TLS client connects to the loopback address of the host's family,
//! records the end-entity certificate the server presents and compares its
//! DER bytes with the installed file. It trusts nothing: it compares bytes.
//! The server sends its certificate before it asks for the client's, so a
//! server that demands a client certificate (etcd) still shows it.
//!
//! A server that serves another certificate is a failure (restart it); a
//! port where nothing listens is a note: a component that is not running is
//! not serving a stale certificate.

use std::io;
use std::net::{IpAddr, SocketAddr, TcpStream};
use std::path::Path;
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Duration;

use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::crypto::{CryptoProvider, verify_tls12_signature, verify_tls13_signature};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{ClientConfig, ClientConnection, DigitallySignedStruct, SignatureScheme};
use serde::Serialize;
use time::format_description::well_known::Rfc3339;

use super::{Check, Finding, Severity, VerifyReport, x509};
use crate::model::{ArtifactId, CertSet, FileRole, Model, loopback};
use crate::plan::{Role, ServingCertMode};

/// The endpoints `--probe-port` can name.
pub const ENDPOINTS: &[&str] = &["etcd-client", "etcd-peer", "apiserver", "kubelet"];

/// How long a connection and each read may take.
const TIMEOUT: Duration = Duration::from_secs(2);

/// How many rounds of TLS reads and writes a handshake may take.
const ROUNDS: usize = 16;

/// What one endpoint serves, compared with the installed file.
#[derive(Debug, Clone, Serialize)]
pub struct Probe {
    /// The endpoint (`etcd-client`, `etcd-peer`, `apiserver`, `kubelet`).
    pub endpoint: &'static str,
    /// The component to restart (`etcd`, `kube-apiserver`, `kubelet`).
    pub component: &'static str,
    /// The address dialled.
    pub address: String,
    /// The certificate's artifact id.
    pub id: String,
    /// The installed file, its on-host path.
    pub path: Option<String>,
    /// `ok`, `stale`, `not-listening`, `no-certificate` (the server showed
    /// none) or `no-file` (the installed file is missing or unreadable).
    pub status: &'static str,
    /// What was found, for people.
    pub message: String,
}

/// One endpoint the plan knows on a host.
struct Endpoint {
    name: &'static str,
    component: &'static str,
    id: ArtifactId,
    port: u16,
}

/// The endpoints of host `name`, with `ports` overriding the default ports
/// (`(endpoint, port)`, from `--probe-port`).
fn endpoints(model: &Model, name: &str, ports: &[(String, u16)]) -> Vec<Endpoint> {
    let Some(host) = model.hosts.iter().find(|h| h.name == name) else {
        return Vec::new();
    };
    let mut found = Vec::new();
    let mut add = |endpoint: &'static str, component: &'static str, id: ArtifactId, port: u16| {
        let port = ports.iter().rev().find(|(e, _)| e == endpoint).map_or(port, |(_, p)| *p);
        found.push(Endpoint { name: endpoint, component, id, port });
    };
    if host.has(Role::Etcd) {
        add("etcd-client", "etcd", ArtifactId::set_cert(CertSet::EtcdServer, Some(name)), 2379);
        add("etcd-peer", "etcd", ArtifactId::set_cert(CertSet::EtcdPeer, Some(name)), 2380);
    }
    if host.has(Role::ControlPlane) {
        let port = model.cluster.apiserver_port;
        add("apiserver", "kube-apiserver", ArtifactId::set_cert(CertSet::Apiserver, None), port);
    }
    if host.has(Role::Worker) && host.kubelet_serving == ServingCertMode::Static {
        add("kubelet", "kubelet", ArtifactId::set_cert(CertSet::KubeletServer, Some(name)), 10250);
    }
    found
}

/// Probes every endpoint of host `name`, whose files are under `root`, and
/// adds what it finds to the report: a stale certificate as a failure.
pub fn probe_host(report: &mut VerifyReport, model: &Model, name: &str, root: &Path, ports: &[(String, u16)]) {
    let Some(host) = model.hosts.iter().find(|h| h.name == name) else {
        return;
    };
    let ip = loopback(host.address);
    for endpoint in endpoints(model, name, ports) {
        let probe = probe_endpoint(model, name, root, ip, &endpoint);
        if probe.status == "stale" {
            report.findings.push(Finding {
                id: probe.id.clone(),
                path: probe.path.clone(),
                check: Check::Serves,
                severity: Severity::Failure,
                message: probe.message.clone(),
            });
            report.summary.failures += 1;
            report.ok = false;
        }
        report.probes.push(probe);
    }
}

fn probe_endpoint(model: &Model, name: &str, root: &Path, ip: IpAddr, endpoint: &Endpoint) -> Probe {
    let address = SocketAddr::new(ip, endpoint.port);
    let placement = model.index.get(&endpoint.id).and_then(|&i| {
        model.artifacts[i].files.iter().find(|f| f.role == FileRole::Cert && f.host.as_deref() == Some(name))
    });
    let path = placement.and_then(|p| p.host_path.clone());
    let mut probe = Probe {
        endpoint: endpoint.name,
        component: endpoint.component,
        address: address.to_string(),
        id: endpoint.id.as_str().to_string(),
        path: path.clone(),
        status: "no-file",
        message: String::new(),
    };
    let installed = path
        .as_deref()
        .and_then(|p| std::fs::read(root.join(p.trim_start_matches('/'))).ok())
        .and_then(|pem| x509::cert_der(&pem));
    let Some(installed) = installed else {
        probe.message = "the installed certificate is missing or unreadable: nothing to compare".to_string();
        return probe;
    };
    (probe.status, probe.message) = match served_leaf(address, TIMEOUT) {
        Err(error) => ("not-listening", format!("not listening ({error}): is {} running?", endpoint.component)),
        Ok(None) => ("no-certificate", "the server presented no certificate".to_string()),
        Ok(Some(served)) if served == installed => ("ok", "serves the installed certificate".to_string()),
        Ok(Some(served)) => {
            let older = match (x509::parse(&served), x509::parse(&installed)) {
                (Some(s), Some(i)) => s.validity().not_before.to_datetime() <= i.validity().not_before.to_datetime(),
                _ => true,
            };
            let which = if older { "an older" } else { "another" };
            (
                "stale",
                format!(
                    "serves {which} certificate: restart {} ({address} serves {}; the file holds {})",
                    endpoint.component,
                    describe(&served),
                    describe(&installed)
                ),
            )
        }
    };
    probe
}

/// `serial S, NotAfter T` of a DER certificate.
fn describe(der: &[u8]) -> String {
    x509::parse(der).map_or_else(
        || "an unreadable certificate".to_string(),
        |cert| {
            let not_after = cert.validity().not_after.to_datetime().format(&Rfc3339).unwrap_or_default();
            format!("serial {}, NotAfter {not_after}", cert.raw_serial_as_string())
        },
    )
}

/// The end-entity certificate the TLS server at `address` presents; an
/// error when nothing accepts the connection.
fn served_leaf(address: SocketAddr, timeout: Duration) -> io::Result<Option<Vec<u8>>> {
    let provider = Arc::new(rustls::crypto::aws_lc_rs::default_provider());
    let recorder = Arc::new(Recorder { leaf: Mutex::new(None), provider: Arc::clone(&provider) });
    let config = ClientConfig::builder_with_provider(provider)
        .with_protocol_versions(rustls::ALL_VERSIONS)
        .map_err(io::Error::other)?
        .dangerous()
        .with_custom_certificate_verifier(recorder.clone())
        .with_no_client_auth();
    let name = ServerName::IpAddress(address.ip().into());
    let mut tls = ClientConnection::new(Arc::new(config), name).map_err(io::Error::other)?;
    let mut socket = TcpStream::connect_timeout(&address, timeout)?;
    socket.set_read_timeout(Some(timeout))?;
    socket.set_write_timeout(Some(timeout))?;
    let leaf = || recorder.leaf.lock().unwrap_or_else(PoisonError::into_inner).clone();
    for _ in 0..ROUNDS {
        // A handshake error after the server's certificate arrived (no client
        // certificate, where the server demands one) does not matter here.
        if leaf().is_some() || !tls.is_handshaking() || tls.complete_io(&mut socket).is_err() {
            break;
        }
    }
    Ok(leaf())
}

/// A verifier that accepts any server and records its end-entity
/// certificate: the probe compares bytes, it does not trust.
#[derive(Debug)]
struct Recorder {
    leaf: Mutex<Option<Vec<u8>>>,
    provider: Arc<CryptoProvider>,
}

impl ServerCertVerifier for Recorder {
    fn verify_server_cert(
        &self,
        end_entity: &CertificateDer<'_>,
        _intermediates: &[CertificateDer<'_>],
        _server_name: &ServerName<'_>,
        _ocsp_response: &[u8],
        _now: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        *self.leaf.lock().unwrap_or_else(PoisonError::into_inner) = Some(end_entity.to_vec());
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls12_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        verify_tls13_signature(message, cert, dss, &self.provider.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.provider.signature_verification_algorithms.supported_schemes()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn nothing_listening_is_an_error() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        drop(listener);
        assert!(served_leaf(address, Duration::from_millis(500)).is_err());
    }

    #[test]
    fn a_server_that_closes_presents_no_certificate() {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap();
        let server = std::thread::spawn(move || drop(listener.accept()));
        assert_eq!(served_leaf(address, Duration::from_millis(500)).unwrap(), None);
        server.join().unwrap();
    }
}

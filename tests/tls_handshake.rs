//! Real mutual-TLS handshakes (rustls, in memory, no sockets) between the
//! certificates certplan issues, configured the way the components are: the
//! API server trusts the CA of the `apiserver-client` set for clients, clients
//! trust the CA of the `apiserver` set and check the name they dial; etcd
//! likewise with its own sets.

use std::io::{Read as _, Write as _};
use std::net::IpAddr;
use std::path::Path;
use std::sync::Arc;

use rustls::crypto::CryptoProvider;
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use rustls::server::WebPkiClientVerifier;
use rustls::{ClientConfig, ClientConnection, Connection, RootCertStore, ServerConfig, ServerConnection};

use crate::common::applied::{Applied, apply_example};
use crate::common::cert::read_cert;
use crate::common::problems::Problems;

fn provider() -> Arc<CryptoProvider> {
    Arc::new(rustls::crypto::aws_lc_rs::default_provider())
}

/// A certificate and its key, loaded from the output tree.
struct Identity {
    id: String,
    cert: CertificateDer<'static>,
    key: PrivateKeyDer<'static>,
}

impl Identity {
    /// The certificate of artifact `id` and its key (on `host`, or the first copy).
    fn load(applied: &Applied, id: &str, host: Option<&str>) -> Identity {
        let a = applied.get(id);
        let cert_path = applied.file(a, "cert", host);
        let key_path = applied.file(a, "key", host);
        Identity {
            id: id.to_string(),
            cert: CertificateDer::from_pem_file(&cert_path)
                .unwrap_or_else(|e| panic!("{id}: {} is not a PEM certificate: {e:?}", cert_path.display())),
            key: PrivateKeyDer::from_pem_file(&key_path)
                .unwrap_or_else(|e| panic!("{id}: {} is not a PEM private key: {e:?}", key_path.display())),
        }
    }
}

fn roots(ca_file: &Path) -> Arc<RootCertStore> {
    let mut store = RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca_file).expect("read CA file") {
        store
            .add(cert.expect("CA PEM"))
            .unwrap_or_else(|e| panic!("{} is not a usable trust anchor: {e}", ca_file.display()));
    }
    Arc::new(store)
}

/// A server presenting `server`, requiring client certificates from `client_ca`.
fn server_config(server: &Identity, client_ca: &Path) -> Result<Arc<ServerConfig>, String> {
    let verifier = WebPkiClientVerifier::builder_with_provider(roots(client_ca), provider())
        .build()
        .map_err(|e| format!("client verifier for {}: {e}", client_ca.display()))?;
    let config = ServerConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_client_cert_verifier(verifier)
        .with_single_cert(vec![server.cert.clone()], server.key.clone_key())
        .map_err(|e| format!("rustls refuses {} as a server certificate and key: {e}", server.id))?;
    Ok(Arc::new(config))
}

/// A client presenting `client`, trusting `server_ca` for the server.
fn client_config(client: &Identity, server_ca: &Path) -> Result<Arc<ClientConfig>, String> {
    let config = ClientConfig::builder_with_provider(provider())
        .with_safe_default_protocol_versions()
        .map_err(|e| e.to_string())?
        .with_root_certificates(roots(server_ca))
        .with_client_auth_cert(vec![client.cert.clone()], client.key.clone_key())
        .map_err(|e| format!("rustls refuses {} as a client certificate and key: {e}", client.id))?;
    Ok(Arc::new(config))
}

/// How a handshake failed.
#[derive(Debug)]
enum Failure {
    /// The configuration could not be built.
    Setup(String),
    /// The client refused the server (or the connection).
    Client(rustls::Error),
    /// The server refused the client (or the connection).
    Server(rustls::Error),
}

impl std::fmt::Display for Failure {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Failure::Setup(e) => write!(f, "could not run the handshake: {e}"),
            Failure::Client(e) => write!(f, "the client aborted: {e}"),
            Failure::Server(e) => write!(f, "the server aborted: {e}"),
        }
    }
}

fn server_name(name: &str) -> ServerName<'static> {
    match name.parse::<IpAddr>() {
        Ok(ip) => ServerName::IpAddress(ip.into()),
        Err(_) => ServerName::try_from(name.to_string()).unwrap_or_else(|_| panic!("{name:?} is not a DNS name")),
    }
}

/// Moves everything `from` wants to send into `to` and lets `to` process it.
fn transfer(from: &mut Connection, to: &mut Connection) -> Result<(), rustls::Error> {
    let mut buf = Vec::new();
    while from.wants_write() {
        from.write_tls(&mut buf).expect("write to Vec");
    }
    let mut rd = &buf[..];
    while !rd.is_empty() {
        to.read_tls(&mut rd).expect("read from slice");
        to.process_new_packets()?;
    }
    Ok(())
}

/// A full handshake plus one request and one response, dialing `name`.
fn handshake(client: &Arc<ClientConfig>, server: &Arc<ServerConfig>, name: &str) -> Result<(), Failure> {
    let mut c = Connection::Client(
        ClientConnection::new(client.clone(), server_name(name)).map_err(|e| Failure::Setup(e.to_string()))?,
    );
    let mut s = Connection::Server(ServerConnection::new(server.clone()).map_err(|e| Failure::Setup(e.to_string()))?);
    for _ in 0..10 {
        transfer(&mut c, &mut s).map_err(Failure::Server)?;
        transfer(&mut s, &mut c).map_err(Failure::Client)?;
        if !c.is_handshaking() && !s.is_handshaking() && !c.wants_write() && !s.wants_write() {
            break;
        }
    }
    if c.is_handshaking() || s.is_handshaking() {
        return Err(Failure::Setup("handshake did not finish in 10 rounds".into()));
    }
    // application data both ways, so a late rejection (TLS 1.3 client auth) shows
    c.writer().write_all(b"GET /healthz").expect("client write");
    transfer(&mut c, &mut s).map_err(Failure::Server)?;
    let mut got = [0u8; 12];
    s.reader().read_exact(&mut got).map_err(|e| Failure::Setup(format!("server read: {e}")))?;
    s.writer().write_all(b"ok").expect("server write");
    transfer(&mut s, &mut c).map_err(Failure::Client)?;
    let mut got = [0u8; 2];
    c.reader().read_exact(&mut got).map_err(|e| Failure::Setup(format!("client read: {e}")))?;
    Ok(())
}

/// One server configured like a component.
struct Server {
    identity: Identity,
    config: Arc<ServerConfig>,
    /// The CA clients must trust to verify it.
    ca_file: std::path::PathBuf,
}

impl Server {
    fn new(applied: &Applied, id: &str, host: Option<&str>, client_set: &str) -> Server {
        let server_set = applied.get(id)["set"].as_str().unwrap_or("?").to_string();
        let identity = Identity::load(applied, id, host);
        let client_ca = applied.ca_cert_file(&applied.ca_of_set(client_set));
        let config = server_config(&identity, &client_ca).unwrap_or_else(|e| panic!("{e}"));
        Server { identity, config, ca_file: applied.ca_cert_file(&applied.ca_of_set(&server_set)) }
    }
}

/// Every client in `clients` completes a handshake with `server` dialing
/// every name in `names`.
fn expect_success(p: &mut Problems, server: &Server, clients: &[Identity], names: &[String]) {
    for client in clients {
        let config = match client_config(client, &server.ca_file) {
            Ok(c) => c,
            Err(e) => {
                p.add(e);
                continue;
            }
        };
        for name in names {
            if let Err(e) = handshake(&config, &server.config, name) {
                p.add(format!(
                    "{} dialing {} at {name:?} with {} as client certificate failed: {e}",
                    describe_client(client),
                    server.identity.id,
                    client.id
                ));
            }
        }
    }
}

fn describe_client(client: &Identity) -> &'static str {
    if client.id.starts_with("cert/users/") { "a user" } else { "a component" }
}

/// A handshake that must fail on the client's side (the server's name or CA
/// is wrong).
fn expect_client_refuses(
    p: &mut Problems,
    server: &Server,
    client: &Identity,
    server_ca: &Path,
    name: &str,
    why: &str,
) {
    let config = client_config(client, server_ca).unwrap_or_else(|e| panic!("{e}"));
    match handshake(&config, &server.config, name) {
        Err(Failure::Client(rustls::Error::InvalidCertificate(_))) => {}
        other => p.add(format!(
            "dialing {} at {name:?} ({why}) should make the client refuse the server certificate, got {}",
            server.identity.id,
            outcome(&other)
        )),
    }
}

fn outcome(result: &Result<(), Failure>) -> String {
    match result {
        Ok(()) => "a successful handshake".to_string(),
        Err(e) => e.to_string(),
    }
}

/// A handshake that must fail on the server's side (the client certificate
/// is not from the CA the server trusts for clients).
fn expect_server_refuses(p: &mut Problems, server: &Server, client: &Identity, name: &str, why: &str) {
    let config = client_config(client, &server.ca_file).unwrap_or_else(|e| panic!("{e}"));
    match handshake(&config, &server.config, name) {
        Err(Failure::Server(rustls::Error::InvalidCertificate(_))) => {}
        other => p.add(format!(
            "{} should refuse {} as a client certificate ({why}), got {}",
            server.identity.id,
            client.id,
            outcome(&other)
        )),
    }
}

/// The DNS and IP SANs of a certificate file, as names to dial.
fn sans_of(applied: &Applied, id: &str, host: Option<&str>) -> Vec<String> {
    let cert = read_cert(&applied.file(applied.get(id), "cert", host));
    cert.dns.iter().cloned().chain(cert.ips.iter().map(std::string::ToString::to_string)).collect()
}

fn apiserver_clients(applied: &Applied, kubelet_host: &str, user: &str) -> Vec<Identity> {
    vec![
        Identity::load(applied, &format!("cert/users/{user}"), None),
        Identity::load(applied, "cert/kube-proxy", None),
        Identity::load(applied, "cert/kube-scheduler", None),
        Identity::load(applied, "cert/kube-controller-manager", None),
        Identity::load(applied, &format!("cert/kubelet/{kubelet_host}"), Some(kubelet_host)),
    ]
}

/// The API server, with every client of the API, by every name it answers.
fn check_apiserver(
    p: &mut Problems,
    applied: &Applied,
    cp_host: &str,
    kubelet_host: &str,
    must_answer: &[&str],
    foreign: &Applied,
) {
    let server = Server::new(applied, "cert/apiserver", Some(cp_host), "apiserver-client");
    let clients = apiserver_clients(applied, kubelet_host, "admin");
    let mut names = sans_of(applied, "cert/apiserver", Some(cp_host));
    for name in must_answer {
        if !names.iter().any(|n| n == name) {
            p.add(format!("cert/apiserver does not answer to {name:?}, which clients dial"));
            names.push(name.to_string());
        }
    }
    expect_success(p, &server, &clients, &names);

    let admin = &clients[0];
    expect_client_refuses(p, &server, admin, &server.ca_file, "not-in-sans.example.com", "a name not in its SANs");
    expect_client_refuses(p, &server, admin, &server.ca_file, "192.0.2.1", "an address not in its SANs");

    // A client certificate from another plan's CA.
    let stranger = Identity::load(foreign, "cert/users/admin", None);
    expect_server_refuses(p, &server, &stranger, "kubernetes", "it is signed by another plan's CA");
    // A client that trusts another plan's CA refuses this API server.
    expect_client_refuses(
        p,
        &server,
        admin,
        &foreign.ca_cert_file(&foreign.ca_of_set("apiserver")),
        "kubernetes",
        "the client trusts another plan's CA",
    );
}

/// etcd serving the API server's etcd client, and etcd members with each other.
fn check_etcd(p: &mut Problems, applied: &Applied, etcd_hosts: &[(&str, &str)]) {
    let apiserver_client = Identity::load(applied, "cert/apiserver-etcd-client", None);
    for (host, addr) in etcd_hosts {
        let server = Server::new(applied, &format!("cert/etcd-server/{host}"), Some(host), "etcd-client");
        let names: Vec<String> =
            ["127.0.0.1", "localhost", addr, host].iter().map(std::string::ToString::to_string).collect();
        expect_success(p, &server, std::slice::from_ref(&apiserver_client), &names);
        expect_client_refuses(
            p,
            &server,
            &apiserver_client,
            &server.ca_file,
            "not-in-sans.example.com",
            "a name not in its SANs",
        );

        // peers: every other member's peer certificate as client
        let peer_server = Server::new(applied, &format!("cert/etcd-peer/{host}"), Some(host), "etcd-peer");
        let peers: Vec<Identity> = etcd_hosts
            .iter()
            .filter(|(h, _)| h != host)
            .map(|(h, _)| Identity::load(applied, &format!("cert/etcd-peer/{h}"), Some(h)))
            .collect();
        expect_success(p, &peer_server, &peers, &[addr.to_string()]);
    }
}

/// The kubelet's serving certificate, with the API server's kubelet client.
fn check_kubelet(p: &mut Problems, applied: &Applied, host: &str, addr: &str) {
    let server = Server::new(applied, &format!("cert/kubelet-server/{host}"), Some(host), "kubelet-client");
    let client = Identity::load(applied, "cert/apiserver-kubelet-client", None);
    expect_success(p, &server, std::slice::from_ref(&client), &[host.to_string(), addr.to_string()]);
}

#[test]
fn classic_rsa_mutual_tls() {
    let applied = apply_example("classic");
    let foreign = apply_example("minimal");
    let mut p = Problems::new("mutual TLS with the classic plan's RSA certificates");
    check_apiserver(
        &mut p,
        &applied,
        "master1",
        "node1",
        &["kubernetes.default.svc.cluster.local", "192.168.214.200", "10.254.0.1", "kube-api.example.com"],
        &foreign,
    );
    check_etcd(
        &mut p,
        &applied,
        &[("master1", "192.168.214.88"), ("master2", "192.168.214.89"), ("master3", "192.168.214.90")],
    );
    check_kubelet(&mut p, &applied, "node1", "192.168.214.201");
    p.finish();
}

/// IPv6 host addresses: rustls dials the API server, etcd and the kubelet
/// by their IPv6 addresses and the IPv6 literal kubeconfigs use.
#[test]
fn dual_stack_mutual_tls_over_ipv6_names() {
    let applied = apply_example("dual-stack");
    let foreign = apply_example("minimal");
    let mut p = Problems::new("mutual TLS with the dual-stack plan's certificates");
    check_apiserver(
        &mut p,
        &applied,
        "cp1",
        "node1",
        &["kubernetes.default.svc.cluster.local", "fd00:10::100", "10.96.0.1", "fd00:10::11", "::1"],
        &foreign,
    );
    check_etcd(&mut p, &applied, &[("cp1", "fd00:10::11"), ("cp2", "fd00:10::12"), ("cp3", "fd00:10::13")]);
    check_kubelet(&mut p, &applied, "node1", "fd00:10::21");
    p.finish();
}

#[test]
fn kubeadm_ecdsa_mutual_tls_with_three_cas() {
    three_cas_mutual_tls("kubeadm");
}

/// The same with kubeadm's three CAs as intermediates of one offline root:
/// each component trusts its own intermediate, so the split holds.
#[test]
fn hierarchy_mutual_tls_keeps_the_three_cas_apart() {
    three_cas_mutual_tls("hierarchy");
}

/// Mutual TLS with an example plan of kubeadm's hosts and three CAs.
fn three_cas_mutual_tls(plan: &str) {
    let applied = apply_example(plan);
    let foreign = apply_example("minimal");
    let mut p = Problems::new(format!("mutual TLS with the {plan} plan's ECDSA certificates"));
    check_apiserver(
        &mut p,
        &applied,
        "cp1",
        "worker1",
        &["kubernetes.default.svc.cluster.local", "k8s-api.prod.example.com", "10.96.0.1", "10.0.0.11"],
        &foreign,
    );
    check_etcd(&mut p, &applied, &[("cp1", "10.0.0.11"), ("cp2", "10.0.0.12"), ("cp3", "10.0.0.13")]);
    check_kubelet(&mut p, &applied, "worker1", "10.0.1.21");

    // Three CAs: certificates of one must not open the doors of another.
    let apiserver = Server::new(&applied, "cert/apiserver", Some("cp1"), "apiserver-client");
    let etcd_client = Identity::load(&applied, "cert/apiserver-etcd-client", None);
    expect_server_refuses(&mut p, &apiserver, &etcd_client, "kubernetes", "it is signed by the etcd CA");
    let front_proxy = Identity::load(&applied, "cert/front-proxy-client", None);
    expect_server_refuses(&mut p, &apiserver, &front_proxy, "kubernetes", "it is signed by the front-proxy CA");
    let etcd = Server::new(&applied, "cert/etcd-server/cp1", Some("cp1"), "etcd-client");
    let admin = Identity::load(&applied, "cert/users/admin", None);
    expect_server_refuses(&mut p, &etcd, &admin, "127.0.0.1", "it is signed by the cluster CA, not the etcd CA");
    let kube_ca = applied.ca_cert_file("ca/kubernetes");
    expect_client_refuses(
        &mut p,
        &etcd,
        &etcd_client,
        &kube_ca,
        "127.0.0.1",
        "etcd's certificate is not from the cluster CA",
    );
    p.finish();
}

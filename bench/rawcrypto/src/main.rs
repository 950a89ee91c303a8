//! Raw-crypto baseline for bench/run.sh.
//!
//! Generates CA keys and self-signs them, then generates one key per leaf
//! certificate and signs each leaf with a CA, then generates the bare key
//! pairs (no certificate) — nothing else: no plan, no files, no PEM. This is
//! the floor a full `certplan apply` of the same plan cannot beat.
//!
//! ```text
//! rawcrypto --key ecdsa-p256|rsa-2048 --cas 3 --leaves 224 --keypairs 1 [--threads 1]
//! rawcrypto --key ecdsa-p256 --sign-only 200      # mean time of one signature
//! ```
//!
//! `--threads 1` (the default) does the work back to back on one thread;
//! `--threads T` splits the leaves over T threads (the machine's floor).
//! Prints one line of counts and the in-process time to stderr.

use std::hint::black_box;
use std::process::ExitCode;
use std::time::Instant;

use rcgen::{
    BasicConstraints, CertificateParams, DnType, ExtendedKeyUsagePurpose, IsCa, Issuer, KeyPair,
    KeyUsagePurpose,
};

#[derive(Clone, Copy)]
enum Key {
    EcdsaP256,
    Rsa2048,
}

impl Key {
    fn parse(text: &str) -> Option<Self> {
        match text {
            "ecdsa-p256" => Some(Self::EcdsaP256),
            "rsa-2048" => Some(Self::Rsa2048),
            _ => None,
        }
    }

    fn generate(self) -> KeyPair {
        match self {
            Self::EcdsaP256 => KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256),
            Self::Rsa2048 => {
                KeyPair::generate_rsa_for(&rcgen::PKCS_RSA_SHA256, rcgen::RsaKeySize::_2048)
            }
        }
        .expect("key generation")
    }
}

struct Args {
    key: Key,
    cas: usize,
    leaves: usize,
    keypairs: usize,
    threads: usize,
    sign_only: Option<usize>,
}

fn parse_args() -> Result<Args, String> {
    let mut args = Args {
        key: Key::EcdsaP256,
        cas: 3,
        leaves: 0,
        keypairs: 0,
        threads: 1,
        sign_only: None,
    };
    let mut it = std::env::args().skip(1);
    while let Some(flag) = it.next() {
        let mut value = || it.next().ok_or_else(|| format!("{flag} needs a value"));
        let number = |v: String| v.parse::<usize>().map_err(|_| format!("`{v}` is not a count"));
        match flag.as_str() {
            "--key" => {
                let v = value()?;
                args.key = Key::parse(&v).ok_or_else(|| format!("unknown key `{v}`"))?;
            }
            "--cas" => args.cas = number(value()?)?,
            "--leaves" => args.leaves = number(value()?)?,
            "--keypairs" => args.keypairs = number(value()?)?,
            "--threads" => args.threads = number(value()?)?.max(1),
            "--sign-only" => args.sign_only = Some(number(value()?)?.max(1)),
            _ => return Err(format!("unknown argument `{flag}`")),
        }
    }
    if args.cas == 0 && args.leaves > 0 {
        return Err("leaves need at least one CA".into());
    }
    Ok(args)
}

fn ca_params(n: usize) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("bench-ca-{n}"));
    params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
    params.key_usages = vec![KeyUsagePurpose::KeyCertSign, KeyUsagePurpose::DigitalSignature];
    params
}

fn leaf_params(n: usize) -> CertificateParams {
    let mut params = CertificateParams::default();
    params
        .distinguished_name
        .push(DnType::CommonName, format!("system:node:worker{n}"));
    params.is_ca = IsCa::ExplicitNoCa;
    params.key_usages = vec![KeyUsagePurpose::DigitalSignature];
    params.extended_key_usages = vec![ExtendedKeyUsagePurpose::ClientAuth];
    params
}

/// One leaf: a fresh key and a signature by the CA.
fn leaf(key: Key, issuer: &Issuer<'_, KeyPair>, n: usize) -> usize {
    let pair = key.generate();
    let cert = leaf_params(n).signed_by(&pair, issuer).expect("sign");
    black_box(cert.der().len())
}

fn main() -> ExitCode {
    let args = match parse_args() {
        Ok(args) => args,
        Err(message) => {
            eprintln!("rawcrypto: {message}");
            return ExitCode::from(2);
        }
    };
    let start = Instant::now();

    if let Some(count) = args.sign_only {
        // Mean time of one leaf signature by an existing CA key (the key of
        // the leaf is generated outside the timed loop and reused).
        let ca_key = args.key.generate();
        let params = ca_params(0);
        black_box(params.self_signed(&ca_key).expect("self-sign"));
        let issuer = Issuer::new(params, ca_key);
        let pair = args.key.generate();
        let started = Instant::now();
        for n in 0..count {
            let cert = leaf_params(n).signed_by(&pair, &issuer).expect("sign");
            black_box(cert.der().len());
        }
        let each = started.elapsed().as_secs_f64() / count as f64;
        println!("{:.3}", each * 1000.0);
        eprintln!("rawcrypto: one signature: {:.3} ms (mean of {count})", each * 1000.0);
        return ExitCode::SUCCESS;
    }

    let issuers: Vec<Issuer<'static, KeyPair>> = (0..args.cas)
        .map(|n| {
            let key = args.key.generate();
            let params = ca_params(n);
            black_box(params.self_signed(&key).expect("self-sign"));
            Issuer::new(params, key)
        })
        .collect();

    let threads = args.threads.min(args.leaves.max(1));
    let mut bytes = 0usize;
    if threads == 1 {
        for n in 0..args.leaves {
            bytes += leaf(args.key, &issuers[n % issuers.len()], n);
        }
        for _ in 0..args.keypairs {
            black_box(args.key.generate());
        }
    } else {
        let issuers = &issuers;
        let key = args.key;
        let (leaves, keypairs) = (args.leaves, args.keypairs);
        bytes = std::thread::scope(|scope| {
            let workers: Vec<_> = (0..threads)
                .map(|t| {
                    scope.spawn(move || {
                        let mut bytes = 0;
                        for n in (t..leaves).step_by(threads) {
                            bytes += leaf(key, &issuers[n % issuers.len()], n);
                        }
                        for _ in (t..keypairs).step_by(threads) {
                            black_box(key.generate());
                        }
                        bytes
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().expect("worker")).sum()
        });
    }
    eprintln!(
        "rawcrypto: {} CA + {} leaf keys and signatures, {} bare keys, {} thread(s): {:.3} s ({} bytes of DER)",
        args.cas,
        args.leaves,
        args.keypairs,
        threads,
        start.elapsed().as_secs_f64(),
        bytes
    );
    ExitCode::SUCCESS
}

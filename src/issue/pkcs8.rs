//! Private keys in the PKCS#8 form that OpenSSL, Go and Python's
//! `cryptography` all read.
//!
//! aws-lc-rs writes Ed25519 keys as PKCS#8 v2 (RFC 5958 `OneAsymmetricKey`
//! with the public key attached), which OpenSSL 3.0 refuses as `unsupported`
//! and `cryptography` as `extra data`. They are rewritten here as the RFC
//! 8410 v1 form that `openssl genpkey -algorithm ed25519` writes: version 0,
//! the algorithm, and the 32-byte seed. RSA and ECDSA keys are already in a
//! form every consumer reads and pass through unchanged.

use base64::Engine;
use zeroize::Zeroizing;

use super::Secret;
use crate::plan::KeyAlgorithm;

/// The DER of an RFC 8410 Ed25519 `PrivateKeyInfo` up to its seed: SEQUENCE,
/// version, `AlgorithmIdentifier` { id-Ed25519 }, OCTET STRING { OCTET STRING }.
const ED25519_V1_PREFIX: [u8; 16] =
    [0x30, 0x2e, 0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

/// What follows the outer SEQUENCE header in any Ed25519 PKCS#8 (v1 or v2),
/// except the version byte at index 2.
const ED25519_BODY_PREFIX: [u8; 14] =
    [0x02, 0x01, 0x00, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x04, 0x22, 0x04, 0x20];

const SEED_LEN: usize = 32;

/// Why a generated key could not be written.
#[derive(Debug, thiserror::Error)]
#[error("the crypto library produced an Ed25519 key in a PKCS#8 shape certplan does not recognise")]
pub struct UnexpectedPkcs8;

/// The PEM (`PRIVATE KEY`) of a key's PKCS#8 DER, in the form every consumer
/// reads.
pub fn private_key_pem(algorithm: KeyAlgorithm, pkcs8_der: &[u8]) -> Result<Secret, UnexpectedPkcs8> {
    let der = match algorithm {
        KeyAlgorithm::Ed25519 => ed25519_v1(pkcs8_der)?,
        _ => Zeroizing::new(pkcs8_der.to_vec()),
    };
    Ok(Secret::new(pem("PRIVATE KEY", &der)))
}

/// The RFC 8410 v1 encoding of an Ed25519 key given as PKCS#8 v1 or v2.
fn ed25519_v1(der: &[u8]) -> Result<Zeroizing<Vec<u8>>, UnexpectedPkcs8> {
    // A short-form SEQUENCE header whose length is the rest of the input.
    let [0x30, length, body @ ..] = der else { return Err(UnexpectedPkcs8) };
    if usize::from(*length) != body.len() || body.len() < ED25519_BODY_PREFIX.len() + SEED_LEN {
        return Err(UnexpectedPkcs8);
    }
    let (head, rest) = body.split_at(ED25519_BODY_PREFIX.len());
    let version_ok = matches!(head[2], 0 | 1);
    let shape_ok = head.iter().zip(ED25519_BODY_PREFIX).enumerate().all(|(i, (a, b))| i == 2 || *a == b);
    if !version_ok || !shape_ok {
        return Err(UnexpectedPkcs8);
    }
    let mut out = Zeroizing::new(Vec::with_capacity(ED25519_V1_PREFIX.len() + SEED_LEN));
    out.extend_from_slice(&ED25519_V1_PREFIX);
    out.extend_from_slice(&rest[..SEED_LEN]);
    Ok(out)
}

/// PEM with 64-character lines, as OpenSSL writes it.
fn pem(label: &str, der: &[u8]) -> String {
    let encoded = Zeroizing::new(base64::engine::general_purpose::STANDARD.encode(der));
    let mut out = String::with_capacity(encoded.len() + encoded.len() / 64 + 2 * label.len() + 40);
    out.push_str("-----BEGIN ");
    out.push_str(label);
    out.push_str("-----\n");
    for line in encoded.as_bytes().chunks(64) {
        // Base64 output is ASCII, so every chunk is valid UTF-8.
        out.push_str(std::str::from_utf8(line).unwrap_or_default());
        out.push('\n');
    }
    out.push_str("-----END ");
    out.push_str(label);
    out.push_str("-----\n");
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn der_of(pem: &str) -> Vec<u8> {
        let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
        base64::engine::general_purpose::STANDARD.decode(body).unwrap()
    }

    #[test]
    fn ed25519_keys_are_written_as_rfc8410_v1() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ED25519).unwrap();
        let v2 = pair.serialize_der();
        assert_eq!(v2[4], 1, "aws-lc-rs writes v2; if this changes, the rewrite is a no-op");
        let pem = private_key_pem(KeyAlgorithm::Ed25519, &v2).unwrap();
        let v1 = der_of(pem.expose());
        assert_eq!(v1.len(), 48);
        assert_eq!(v1[..16], ED25519_V1_PREFIX);
        assert_eq!(v1[16..], v2[16..48], "the seed is kept");
        // The key still signs as the same key.
        let again = rcgen::KeyPair::from_pem(pem.expose()).unwrap();
        assert_eq!(again.public_key_pem(), pair.public_key_pem());
        // Rewriting v1 again is the identity.
        assert_eq!(private_key_pem(KeyAlgorithm::Ed25519, &v1).unwrap(), pem);
    }

    #[test]
    fn other_keys_pass_through() {
        let pair = rcgen::KeyPair::generate_for(&rcgen::PKCS_ECDSA_P256_SHA256).unwrap();
        let pem = private_key_pem(KeyAlgorithm::EcdsaP256, &pair.serialize_der()).unwrap();
        assert_eq!(pem.expose(), pair.serialize_pem());
    }

    #[test]
    fn a_foreign_shape_is_an_error() {
        assert!(ed25519_v1(&[0x30, 0x03, 0x02, 0x01, 0x00]).is_err());
        assert!(ed25519_v1(&[]).is_err());
        let mut bad = ED25519_V1_PREFIX.to_vec();
        bad.extend([0u8; 32]);
        bad[8] = 0x2a;
        assert!(ed25519_v1(&bad).is_err());
    }
}

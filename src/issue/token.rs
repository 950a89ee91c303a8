//! Tokens: the 128-bit hex token of `token.csv` (as the classic guides make
//! it with `head -c 16 /dev/urandom | od -An -t x`) and bootstrap tokens
//! (`[a-z0-9]{6}.[a-z0-9]{16}`, as kubeadm makes them).

use rand::Rng;
use rand::RngCore;

use super::Secret;

/// A new random `token.csv` token.
#[must_use]
pub fn new_csv_token() -> Secret {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}

/// A new random bootstrap token `id.secret`.
#[must_use]
pub fn new_bootstrap_token() -> Secret {
    const ALPHABET: &[u8] = b"abcdefghijklmnopqrstuvwxyz0123456789";
    let mut rng = rand::rngs::OsRng;
    let mut pick =
        |n: usize| -> String { (0..n).map(|_| char::from(ALPHABET[rng.gen_range(0..ALPHABET.len())])).collect() };
    let id = pick(6);
    let secret = pick(16);
    Secret::new(format!("{id}.{secret}"))
}

/// The token of the first row of a `token.csv`, if it has one.
#[must_use]
pub fn parse_token_csv(text: &str) -> Option<Secret> {
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let token = line.split(',').next()?.trim();
    (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Secret::new(token.to_string()))
}

/// The token `id.secret` of a bootstrap-token Secret manifest written by certplan.
#[must_use]
pub fn parse_bootstrap_secret(text: &str) -> Option<Secret> {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let value = line.trim().strip_prefix(name)?.strip_prefix(':')?.trim().trim_matches('"');
            (!value.is_empty()).then(|| value.to_string())
        })
    };
    let id = field("token-id")?;
    let secret = field("token-secret")?;
    let valid = |s: &str, n: usize| s.len() == n && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    (valid(&id, 6) && valid(&secret, 16)).then(|| Secret::new(format!("{id}.{secret}")))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bootstrap_tokens_have_the_documented_shape() {
        for _ in 0..100 {
            let token = new_bootstrap_token();
            let (id, secret) = token.expose().split_once('.').unwrap();
            assert_eq!(id.len(), 6);
            assert_eq!(secret.len(), 16);
            assert!(token.expose().bytes().all(|b| b == b'.' || b.is_ascii_lowercase() || b.is_ascii_digit()));
        }
    }

    #[test]
    fn reads_back_a_secret_manifest() {
        let text = "stringData:\n  token-id: \"abc123\"\n  token-secret: \"0123456789abcdef\"\n";
        assert_eq!(parse_bootstrap_secret(text).unwrap().expose(), "abc123.0123456789abcdef");
        assert!(parse_bootstrap_secret("token-id: x").is_none());
    }
}

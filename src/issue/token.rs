//! Bootstrap tokens for `token.csv`: 128 random bits, hex encoded, as the
//! classic guides make them with `head -c 16 /dev/urandom | od -An -t x`.

use rand::RngCore;

use super::Secret;

/// A new random token.
pub fn new_bootstrap_token() -> Secret {
    let mut bytes = [0u8; 16];
    rand::rngs::OsRng.fill_bytes(&mut bytes);
    Secret::new(hex::encode(bytes))
}

/// The token of the first row of a `token.csv`, if it has one.
pub fn parse_token_csv(text: &str) -> Option<Secret> {
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let token = line.split(',').next()?.trim();
    (token.len() == 32 && token.bytes().all(|b| b.is_ascii_hexdigit())).then(|| Secret::new(token.to_string()))
}

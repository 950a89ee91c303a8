//! The text files of `verify`: kubeconfigs (server, embedded CA, client
//! certificate and key, or token), `token.csv` rows, and the flags of flag
//! files. Read by line, as certplan's templates write them; secrets read
//! here are compared, never shown.

use base64::Engine;
use zeroize::Zeroizing;

use crate::model::{FlagFileSpec, TokenFileSpec};

/// The fields of a kubeconfig that `verify` checks.
#[derive(Default)]
pub struct KubeconfigFields {
    /// `server`.
    pub server: Option<String>,
    /// `certificate-authority-data`, decoded (PEM).
    pub ca: Option<Vec<u8>>,
    /// `client-certificate-data`, decoded (PEM).
    pub client_cert: Option<Vec<u8>>,
    /// `client-key-data`, decoded (PEM).
    pub client_key: Option<Zeroizing<Vec<u8>>>,
    /// `token`.
    pub token: Option<Zeroizing<String>>,
}

/// Reads the first cluster's and first user's fields of a kubeconfig.
pub fn kubeconfig(text: &str) -> KubeconfigFields {
    let field = |name: &str| {
        text.lines().find_map(|line| {
            let value = line.trim().strip_prefix(name)?.strip_prefix(':')?;
            Some(value.trim().trim_matches(['"', '\'']).to_string())
        })
    };
    let decode =
        |value: Option<String>| value.and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok());
    let key_data = field("client-key-data").map(Zeroizing::new);
    KubeconfigFields {
        server: field("server"),
        ca: decode(field("certificate-authority-data")),
        client_cert: decode(field("client-certificate-data")),
        client_key: key_data
            .and_then(|v| base64::engine::general_purpose::STANDARD.decode(v.as_bytes()).ok())
            .map(Zeroizing::new),
        token: field("token").map(Zeroizing::new),
    }
}

/// One row of `token.csv`: `token,user,uid,"group1,group2"`.
pub struct TokenRow {
    /// The token.
    pub token: Zeroizing<String>,
    /// The user.
    pub user: String,
    /// The uid.
    pub uid: String,
    /// The groups.
    pub groups: Vec<String>,
}

/// The first row of a `token.csv`.
pub fn token_row(text: &str) -> Option<TokenRow> {
    let line = text.lines().find(|l| !l.trim().is_empty())?;
    let mut parts = line.splitn(4, ',');
    let token = Zeroizing::new(parts.next()?.trim().to_string());
    let user = parts.next()?.trim().to_string();
    let uid = parts.next()?.trim().to_string();
    let groups = parts
        .next()
        .map(|g| {
            g.trim().trim_matches('"').split(',').map(str::trim).filter(|g| !g.is_empty()).map(String::from).collect()
        })
        .unwrap_or_default();
    Some(TokenRow { token, user, uid, groups })
}

/// How a token row differs from its spec (never naming the token).
pub fn token_problems(row: &TokenRow, spec: &TokenFileSpec) -> Vec<String> {
    let mut problems = Vec::new();
    if row.token.is_empty() {
        problems.push("its token is empty".to_string());
    }
    if row.user != spec.user {
        problems.push(format!("its user is `{}` but the plan says `{}`", row.user, spec.user));
    }
    if row.uid != spec.uid {
        problems.push(format!("its uid is `{}` but the plan says `{}`", row.uid, spec.uid));
    }
    if row.groups != spec.groups {
        problems.push(format!(
            "its groups are `{}` but the plan says `{}`",
            row.groups.join(","),
            spec.groups.join(",")
        ));
    }
    problems
}

/// The flags of a flag file's spec that its text lacks, as `NAME --flag=value`.
pub fn missing_flags(text: &str, spec: &FlagFileSpec) -> Vec<String> {
    let mut missing = Vec::new();
    for var in &spec.vars {
        let line = text
            .lines()
            .find(|l| l.trim_start().strip_prefix(var.name.as_str()).is_some_and(|rest| rest.starts_with('=')));
        let words: Vec<&str> = line
            .and_then(|l| l.split_once('='))
            .map(|(_, value)| value.trim().trim_matches('"').split_whitespace().collect())
            .unwrap_or_default();
        for (flag, value) in &var.flags {
            let wanted = format!("--{flag}={value}");
            if !words.contains(&wanted.as_str()) {
                missing.push(format!("{} {wanted}", var.name));
            }
        }
    }
    missing
}

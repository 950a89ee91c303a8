//! Secrets at rest: the tree's secret files (private keys, kubeconfigs that
//! embed a key, token files, the bootstrap-token Secret) encrypted with age
//! to the plan's recipients, so that a repository can commit the whole tree.
//! Encryption happens when files are written and decryption when material
//! is read back; deciding never needs either. Plaintext only ever lives in
//! memory, zeroed when dropped.

use std::io::{Read as _, Write as _};
use std::path::{Path, PathBuf};
use std::str::FromStr;

use age::secrecy::ExposeSecret as _;
use zeroize::Zeroizing;

/// The suffix of an encrypted file's name in the tree.
pub const SUFFIX: &str = ".age";

/// Where the identity comes from when `--identity` is not given: the
/// identity itself, or a file holding it.
pub const IDENTITY_ENV: &str = "CERTPLAN_AGE_IDENTITY";
/// See [`IDENTITY_ENV`].
pub const IDENTITY_FILE_ENV: &str = "CERTPLAN_AGE_IDENTITY_FILE";

/// Why a secret could not be sealed or opened.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum SecretsError {
    /// A recipient that is not an age X25519 recipient.
    #[error("`{0}` is not an age recipient (`age1…`)")]
    BadRecipient(String),
    /// The identity file cannot be read.
    #[error("cannot read the age identity file `{path}`: {source}")]
    ReadIdentity {
        /// Its path.
        path: PathBuf,
        /// The OS error.
        source: std::io::Error,
    },
    /// The identity text holds no usable identity.
    #[error("{0} holds no age identity (`AGE-SECRET-KEY-1…`)")]
    NoIdentity(String),
    /// Encryption failed.
    #[error("cannot encrypt `{path}`: {reason}")]
    Seal {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
    /// Decryption failed: the file is not for these identities, or damaged.
    #[error("cannot decrypt `{path}` with the age identity given: {reason}")]
    Open {
        /// The file.
        path: String,
        /// Why.
        reason: String,
    },
}

/// The recipients every secret is encrypted to.
#[derive(Clone)]
pub struct Recipients {
    keys: Vec<age::x25519::Recipient>,
}

impl Recipients {
    /// Parses recipients as the plan writes them (`age1…`).
    pub fn parse<S: AsRef<str>>(texts: &[S]) -> Result<Self, SecretsError> {
        let keys = texts
            .iter()
            .map(|text| {
                let text = text.as_ref().trim();
                age::x25519::Recipient::from_str(text).map_err(|_| SecretsError::BadRecipient(text.to_string()))
            })
            .collect::<Result<_, _>>()?;
        Ok(Self { keys })
    }

    /// Encrypts `plaintext` to every recipient, ASCII-armored so that the
    /// file stays text in a repository. `path` names it in errors.
    pub fn seal(&self, path: &str, plaintext: &[u8]) -> Result<Vec<u8>, SecretsError> {
        let failed = |reason: String| SecretsError::Seal { path: path.to_string(), reason };
        let encryptor = age::Encryptor::with_recipients(self.keys.iter().map(|k| k as &dyn age::Recipient))
            .map_err(|e| failed(e.to_string()))?;
        let mut sealed = Vec::with_capacity(plaintext.len() * 2 + 512);
        let armor = age::armor::ArmoredWriter::wrap_output(&mut sealed, age::armor::Format::AsciiArmor)
            .map_err(|e| failed(e.to_string()))?;
        let mut writer = encryptor.wrap_output(armor).map_err(|e| failed(e.to_string()))?;
        writer.write_all(plaintext).map_err(|e| failed(e.to_string()))?;
        writer.finish().and_then(age::armor::ArmoredWriter::finish).map_err(|e| failed(e.to_string()))?;
        Ok(sealed)
    }
}

/// The identities that open the tree's secrets.
pub struct Keyring {
    identities: Vec<age::x25519::Identity>,
}

/// Says how many identities it holds, never what they are.
impl std::fmt::Debug for Keyring {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "Keyring({} identities)", self.identities.len())
    }
}

impl Keyring {
    /// Reads identities from text as age writes them (`AGE-SECRET-KEY-1…`
    /// lines; `#` comments and blank lines ignored). `source` names the text
    /// in errors, never its content.
    pub fn parse(text: &str, source: &str) -> Result<Self, SecretsError> {
        let identities: Vec<age::x25519::Identity> = text
            .lines()
            .map(str::trim)
            .filter(|line| !line.is_empty() && !line.starts_with('#'))
            .filter_map(|line| age::x25519::Identity::from_str(line).ok())
            .collect();
        if identities.is_empty() {
            return Err(SecretsError::NoIdentity(source.to_string()));
        }
        Ok(Self { identities })
    }

    /// Reads identities from a file.
    pub fn read(path: &Path) -> Result<Self, SecretsError> {
        let text = Zeroizing::new(
            std::fs::read_to_string(path)
                .map_err(|source| SecretsError::ReadIdentity { path: path.to_path_buf(), source })?,
        );
        Self::parse(&text, &format!("`{}`", path.display()))
    }

    /// The identity from `--identity FILE`, else from the environment; `None`
    /// when none is given.
    pub fn from_args(file: Option<&Path>) -> Result<Option<Self>, SecretsError> {
        if let Some(file) = file {
            return Self::read(file).map(Some);
        }
        // An empty variable is an unset one (a CI secret that is not there).
        let set = |name| std::env::var_os(name).filter(|value| !value.is_empty());
        if let Some(text) = set(IDENTITY_ENV) {
            let text = Zeroizing::new(text.to_string_lossy().into_owned());
            return Self::parse(&text, IDENTITY_ENV).map(Some);
        }
        match set(IDENTITY_FILE_ENV) {
            Some(path) => Self::read(Path::new(&path)).map(Some),
            None => Ok(None),
        }
    }

    /// Decrypts a sealed file (armored or binary). `path` names it in errors.
    pub fn open(&self, path: &str, sealed: &[u8]) -> Result<Zeroizing<Vec<u8>>, SecretsError> {
        let failed = |reason: String| SecretsError::Open { path: path.to_string(), reason };
        let reader = age::armor::ArmoredReader::new(sealed);
        let decryptor = age::Decryptor::new(reader).map_err(|e| failed(e.to_string()))?;
        let mut reader = decryptor
            .decrypt(self.identities.iter().map(|i| i as &dyn age::Identity))
            .map_err(|e| failed(e.to_string()))?;
        let mut plaintext = Zeroizing::new(Vec::new());
        reader.read_to_end(&mut plaintext).map_err(|e| failed(e.to_string()))?;
        Ok(plaintext)
    }

    /// The recipients of these identities, as text (for tests and `init`).
    #[must_use]
    pub fn recipients(&self) -> Vec<String> {
        self.identities.iter().map(|i| i.to_public().to_string()).collect()
    }
}

/// A new identity and its recipient, as `age-keygen` prints them.
#[must_use]
pub fn generate() -> (Zeroizing<String>, String) {
    let identity = age::x25519::Identity::generate();
    (Zeroizing::new(identity.to_string().expose_secret().to_string()), identity.to_public().to_string())
}

/// Whether a tree path names an encrypted file.
#[must_use]
pub fn is_sealed(path: &str) -> bool {
    path.ends_with(SUFFIX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn what_is_sealed_opens_with_the_identity_only() {
        let (identity, recipient) = generate();
        let keyring = Keyring::parse(&identity, "test").expect("an identity");
        assert_eq!(keyring.recipients(), std::slice::from_ref(&recipient));
        let recipients = Recipients::parse(&[recipient]).expect("a recipient");
        let sealed = recipients.seal("k.age", b"-----BEGIN PRIVATE KEY-----").expect("sealed");
        assert!(sealed.starts_with(b"-----BEGIN AGE ENCRYPTED FILE-----"), "armored");
        assert!(!sealed.windows(11).any(|w| w == b"PRIVATE KEY"), "no plaintext");
        assert_eq!(keyring.open("k.age", &sealed).expect("opens").as_slice(), b"-----BEGIN PRIVATE KEY-----");
        let (other, _) = generate();
        let stranger = Keyring::parse(&other, "other").expect("an identity");
        assert!(stranger.open("k.age", &sealed).is_err());
    }

    #[test]
    fn bad_recipients_and_identities_are_named_without_their_content() {
        assert!(matches!(Recipients::parse(&["age1nope"]), Err(SecretsError::BadRecipient(_))));
        let error = Keyring::parse("AGE-SECRET-KEY-1NOTAKEY", "CERTPLAN_AGE_IDENTITY").expect_err("no identity");
        assert!(!error.to_string().contains("NOTAKEY"), "{error}");
    }
}

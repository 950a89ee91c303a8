//! The template set: the defaults embedded from `templates/`, and the errors
//! rendering can give. Errors name the template and line but never print
//! variable values, which may be keys or tokens.
//!
//! A directory of templates (`apply --templates DIR`, or `templates = "DIR"`
//! in the plan) replaces embedded templates file by file.

use std::collections::BTreeMap;

use sha2::Digest as _;
use std::path::{Path, PathBuf};

use minijinja::Environment;
use zeroize::Zeroizing;

use crate::model::{ArtifactId, FileRole};

/// The embedded templates, by name.
const EMBEDDED: [(&str, &str); 6] = [
    ("bootstrap-token-secret.yaml", include_str!("../../templates/bootstrap-token-secret.yaml")),
    ("kubeconfig.yaml", include_str!("../../templates/kubeconfig.yaml")),
    ("flags.env", include_str!("../../templates/flags.env")),
    ("token.csv", include_str!("../../templates/token.csv")),
    ("rbac-apiserver-kubelet.yaml", include_str!("../../templates/rbac-apiserver-kubelet.yaml")),
    ("rbac-kubelet-bootstrap.yaml", include_str!("../../templates/rbac-kubelet-bootstrap.yaml")),
];

/// Why rendering failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RenderError {
    /// A template failed; values are never included.
    #[error("template `{template}`{}: {kind}", line.map(|l| format!(", line {l}")).unwrap_or_default())]
    Template {
        /// The template's name.
        template: String,
        /// The line, when known.
        line: Option<usize>,
        /// What went wrong, without values.
        kind: String,
    },
    /// The templates directory cannot be read.
    #[error("cannot read the templates directory `{}`: {reason}", dir.display())]
    TemplateDir {
        /// The directory.
        dir: PathBuf,
        /// Why.
        reason: String,
    },
    /// A file in the templates directory replaces no template.
    #[error("`{}` is not a template certplan renders; the templates are {}", path.display(), known_names())]
    UnknownTemplate {
        /// The file.
        path: PathBuf,
    },
    /// Material an artifact embeds was not issued.
    #[error("`{0}` was not issued before the files that embed it were rendered")]
    MissingMaterial(ArtifactId),
    /// An artifact has a file of a role it cannot produce.
    #[error("`{artifact}` ({kind}) has no {role:?} file")]
    NoSuchFile {
        /// The artifact.
        artifact: ArtifactId,
        /// Its kind.
        kind: &'static str,
        /// The role asked for.
        role: FileRole,
    },
}

/// A set of templates to render with.
pub struct Templates {
    env: Environment<'static>,
    /// The file each overridden template was read from, by template name.
    overridden: BTreeMap<String, PathBuf>,
    /// `NAME sha256:HEX` of each overridden template's source, by name.
    digests: BTreeMap<String, String>,
}

impl Templates {
    /// The templates embedded in the binary. One that does not parse is an
    /// error naming it, never a template silently left out.
    pub fn embedded() -> Result<Self, RenderError> {
        Self::from_sources(&EMBEDDED)
    }

    fn from_sources(sources: &[(&'static str, &'static str)]) -> Result<Self, RenderError> {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("yaml", yaml_scalar);
        let mut templates = Self { env, overridden: BTreeMap::new(), digests: BTreeMap::new() };
        for &(name, source) in sources {
            if let Err(error) = templates.env.add_template(name, source) {
                return Err(templates.describe(name, &error));
            }
        }
        Ok(templates)
    }

    /// The embedded templates, each replaced by the file of the same name in
    /// `dir` when there is one. Hidden files are ignored; any other file that
    /// names no template is an error, so a misspelt name is not ignored.
    pub fn with_overrides(dir: &Path) -> Result<Self, RenderError> {
        let unreadable = |e: std::io::Error| RenderError::TemplateDir { dir: dir.to_path_buf(), reason: e.to_string() };
        let mut templates = Self::embedded()?;
        let mut entries: Vec<_> =
            std::fs::read_dir(dir).map_err(unreadable)?.collect::<Result<_, _>>().map_err(unreadable)?;
        entries.sort_by_key(std::fs::DirEntry::file_name);
        for entry in entries {
            let path = entry.path();
            let name = entry.file_name().to_string_lossy().into_owned();
            if name.starts_with('.') {
                continue;
            }
            if !EMBEDDED.iter().any(|(known, _)| *known == name) {
                return Err(RenderError::UnknownTemplate { path });
            }
            let source = std::fs::read_to_string(&path).map_err(unreadable)?;
            // Twelve hex digits name a version of a template well enough.
            let digest = hex::encode(&sha2::Sha256::digest(source.as_bytes())[..6]);
            templates.digests.insert(name.clone(), format!("{name} sha256:{digest}"));
            templates.overridden.insert(name.clone(), path);
            templates.env.add_template_owned(name.clone(), source).map_err(|e| templates.describe(&name, &e))?;
        }
        Ok(templates)
    }

    /// `NAME sha256:HEX` when the template is overridden, `None` when it is
    /// the embedded one.
    pub fn override_digest(&self, name: &str) -> Option<String> {
        self.digests.get(name).cloned()
    }

    /// `NAME sha256:HEX` of every overridden template, by name: what a saved
    /// plan records and compares.
    #[must_use]
    pub fn override_digests(&self) -> Vec<String> {
        self.digests.values().cloned().collect()
    }

    /// Renders a template.
    pub fn render(&self, name: &str, context: minijinja::Value) -> Result<Zeroizing<String>, RenderError> {
        let template = self.env.get_template(name).map_err(|e| self.describe(name, &e))?;
        template.render(context).map(Zeroizing::new).map_err(|e| self.describe(name, &e))
    }

    /// A render error naming the template (its file, when overridden), the
    /// line and the expression that failed, quoted from the template's
    /// source. Never the error's own display, which may print the values of
    /// the variables involved.
    fn describe(&self, name: &str, error: &minijinja::Error) -> RenderError {
        let name = error.name().unwrap_or(name);
        let template = self.overridden.get(name).map_or_else(|| name.to_string(), |p| p.display().to_string());
        let mut kind = match error.detail() {
            Some(detail) => format!("{} ({detail})", error.kind()),
            None => error.kind().to_string(),
        };
        let expression = error
            .template_source()
            .zip(error.range())
            .and_then(|(source, range)| source.get(range))
            .map(|text| text.split_whitespace().collect::<Vec<_>>().join(" "))
            .filter(|text| !text.is_empty());
        if let Some(expression) = expression {
            let shown: String = expression.chars().take(80).collect();
            kind = format!("{kind} in `{shown}`");
        }
        RenderError::Template { template, line: error.line(), kind }
    }
}

fn known_names() -> String {
    EMBEDDED.iter().map(|(name, _)| format!("`{name}`")).collect::<Vec<_>>().join(", ")
}

/// A YAML scalar: plain when that is unambiguous, else a double-quoted
/// (JSON) string, which YAML reads the same.
fn yaml_scalar(value: String) -> String {
    let plain = !value.is_empty()
        && value.bytes().all(|b| b.is_ascii_alphanumeric() || b"-_.:/@".contains(&b))
        && !value.starts_with(['-', ':', '@'])
        && !value.ends_with(':')
        && !matches!(
            value.to_ascii_lowercase().as_str(),
            "true" | "false" | "null" | "yes" | "no" | "on" | "off" | "~"
        )
        && value.parse::<f64>().is_err();
    if plain { value } else { serde_json::to_string(&value).unwrap_or_default() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_embedded_template_parses() {
        assert!(Templates::embedded().is_ok());
    }

    #[test]
    fn a_template_that_does_not_parse_is_an_error_naming_it() {
        let broken = [("flags.env", "{{ vars"), ("token.csv", "fine")];
        let error = Templates::from_sources(&broken).err().expect("a parse error");
        let text = error.to_string();
        assert!(text.starts_with("template `flags.env`"), "{text}");
    }
}

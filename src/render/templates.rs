//! The template set: the defaults embedded from `templates/`, and the errors
//! rendering can give. Errors name the template and line but never print
//! variable values, which may be keys or tokens.

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
}

impl Templates {
    /// The templates embedded in the binary.
    pub fn embedded() -> Self {
        let mut env = Environment::new();
        env.set_undefined_behavior(minijinja::UndefinedBehavior::Strict);
        env.add_filter("yaml", yaml_scalar);
        for (name, source) in EMBEDDED {
            // The embedded templates are tested; a syntax error here is a bug
            // caught by the test suite, reported as a render error otherwise.
            let _ = env.add_template(name, source);
        }
        Self { env }
    }

    /// Renders a template.
    pub fn render(&self, name: &str, context: minijinja::Value) -> Result<Zeroizing<String>, RenderError> {
        let template = self.env.get_template(name).map_err(|e| describe(name, &e))?;
        template.render(context).map(Zeroizing::new).map_err(|e| describe(name, &e))
    }
}

fn describe(name: &str, error: &minijinja::Error) -> RenderError {
    RenderError::Template {
        template: error.name().unwrap_or(name).to_string(),
        line: error.line(),
        kind: match error.detail() {
            Some(detail) => format!("{} ({detail})", error.kind()),
            None => error.kind().to_string(),
        },
    }
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

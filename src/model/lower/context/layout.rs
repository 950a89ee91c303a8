//! The `[layout]` section: the preset and the on-host PKI and config
//! directories.

use toml::Spanned;

use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::model::Layout;
use crate::plan::{PlanFile, Preset};

pub(super) fn resolve_layout(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Layout {
    let section = &plan.layout;
    let preset = section.preset.as_ref().map_or(Preset::Kubeadm, |p| *p.get_ref());
    let default_pki = match preset {
        Preset::Cfssl => "/etc/kubernetes/ssl",
        Preset::Kubeadm => "/etc/kubernetes/pki",
    };
    Layout {
        preset,
        pki_dir: host_dir(section.pki_dir.as_ref(), default_pki, diagnostics),
        config_dir: host_dir(section.config_dir.as_ref(), "/etc/kubernetes", diagnostics),
    }
}

fn host_dir(value: Option<&Spanned<String>>, default: &str, diagnostics: &mut Diagnostics) -> String {
    let Some(value) = value else {
        return default.to_string();
    };
    let text = value.get_ref().trim().trim_end_matches('/');
    let bad_component = text.split('/').skip(1).any(|part| part.is_empty() || part == "." || part == "..");
    if !text.starts_with('/') || text.len() < 2 || bad_component || text.contains('\0') {
        diagnostics.push(
            Diagnostic::error(RuleId::InvalidPath, format!("`{}` is not an absolute directory path", value.get_ref()))
                .at(value.span())
                .label("expected an absolute path such as `/etc/kubernetes/pki`, without `..`"),
        );
        return default.to_string();
    }
    text.to_string()
}

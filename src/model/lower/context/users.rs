//! The `[[users]]`: people and tools with client certificates, their
//! groups, keys, validities, CAs and API server URLs.

use std::collections::HashMap;
use std::ops::Range;
use std::time::Duration;

use toml::Spanned;

use super::cluster::resolve_url;
use super::defaults::duration_or;
use super::{UserConfig, empty};
use crate::diag::{Diagnostic, Diagnostics, RuleId};
use crate::plan::PlanFile;

pub(super) fn resolve_users(plan: &PlanFile, diagnostics: &mut Diagnostics) -> Vec<UserConfig> {
    let mut seen: HashMap<String, Range<usize>> = HashMap::new();
    plan.users
        .iter()
        .map(|entry| {
            let user = entry.get_ref();
            let name = user.name.get_ref().trim().to_string();
            if name.is_empty() {
                diagnostics.push(empty("users.name", user.name.span()));
            } else if name.contains(['/', '\0']) || name.starts_with('.') {
                diagnostics.push(
                    Diagnostic::error(RuleId::InvalidName, format!("the user name `{name}` cannot be a file name"))
                        .at(user.name.span())
                        .label("no `/`, and not starting with `.`"),
                );
            }
            if let Some(first) = seen.get(&name).cloned() {
                diagnostics.push(
                    Diagnostic::error(RuleId::DuplicateUser, format!("the user `{name}` is declared twice"))
                        .at(user.name.span())
                        .label("declared again here")
                        .also_at(first, "first declared here"),
                );
            } else {
                seen.insert(name.clone(), user.name.span());
            }
            let groups = user.groups.as_ref().map_or(&[][..], |g| g.get_ref().as_slice());
            for group in groups {
                if group.get_ref().trim().is_empty() {
                    diagnostics.push(empty("groups", group.span()));
                }
            }
            UserConfig {
                name,
                name_span: user.name.span(),
                groups: groups.iter().map(|g| g.get_ref().trim().to_string()).collect(),
                groups_span: user.groups.as_ref().map(Spanned::span),
                key: user.key.as_ref().map(|k| *k.get_ref()),
                key_span: user.key.as_ref().map(Spanned::span),
                ca: user.ca.as_ref().map(|ca| (ca.get_ref().trim().to_string(), ca.span())),
                server: user.server.as_ref().and_then(|server| {
                    let url = server.get_ref().trim().trim_end_matches('/').to_string();
                    resolve_url(server, diagnostics).map(|_| (url, server.span()))
                }),
                validity: user.validity.as_ref().map(|v| duration_or(Some(v), Duration::ZERO, diagnostics)),
                validity_span: user.validity.as_ref().map(Spanned::span),
                span: entry.span(),
            }
        })
        .collect()
}

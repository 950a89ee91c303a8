//! `certplan init`: writes a commented starter plan, to a file or stdout.

use std::io::Write;
use std::path::PathBuf;

use super::{Error, Outcome, global};
use crate::init::{Starter, StarterPreset, write_starter};

/// Arguments of `init`.
#[derive(Debug, clap::Args)]
pub struct InitArgs {
    /// The shape of the plan.
    #[arg(long, value_enum, default_value_t = StarterPreset::Kubeadm)]
    pub preset: StarterPreset,
    /// Control-plane host addresses (default: example addresses to replace).
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub control_plane: Vec<String>,
    /// Worker host addresses; one also given as control plane runs a kubelet there too.
    #[arg(long, value_name = "ADDR", num_args = 1..)]
    pub workers: Vec<String>,
    /// The URL kubeconfigs dial (default: `https://FIRST-CONTROL-PLANE:6443`).
    #[arg(long, value_name = "URL")]
    pub apiserver_url: Option<String>,
    /// The service network (default: one that holds no host address).
    #[arg(long, value_name = "CIDR")]
    pub service_cidr: Option<String>,
    /// The cluster's name.
    #[arg(long, default_value = "kubernetes")]
    pub name: String,
    /// Kubernetes `MAJOR.MINOR`, which selects flag names.
    #[arg(long, default_value = "1.33", value_name = "VERSION")]
    pub kubernetes_version: String,
    /// Write the plan here instead of stdout.
    #[arg(long, short, value_name = "FILE")]
    pub output: Option<PathBuf>,
    /// Replace `--output` when it exists.
    #[arg(long)]
    pub force: bool,
}

/// Runs `init`.
pub fn run(args: &InitArgs) -> Result<Outcome, Error> {
    let starter = Starter {
        preset: args.preset,
        name: args.name.clone(),
        kubernetes_version: args.kubernetes_version.clone(),
        control_plane: args.control_plane.clone(),
        workers: args.workers.clone(),
        apiserver_url: args.apiserver_url.clone(),
        service_cidr: args.service_cidr.clone(),
    };
    let plan = write_starter(&starter).map_err(Error::Init)?;
    let Some(path) = &args.output else {
        // As `outln!` does, a failed write to stdout (a closed pipe,
        // `certplan init | head`) is not an error.
        let _ = std::io::stdout().lock().write_all(plan.as_bytes());
        return Ok(Outcome::Success);
    };
    let mut options = std::fs::OpenOptions::new();
    options.write(true);
    if args.force {
        options.create(true).truncate(true);
    } else {
        options.create_new(true);
    }
    match options.open(path).and_then(|mut file| file.write_all(plan.as_bytes())) {
        Ok(()) => {
            if !global::quiet() {
                eprintln!("wrote {}; next: certplan check {}", path.display(), path.display());
            }
            Ok(Outcome::Success)
        }
        Err(error) if error.kind() == std::io::ErrorKind::AlreadyExists => Err(Error::Exists { path: path.clone() }),
        Err(source) => Err(Error::WriteFile { path: path.clone(), source }),
    }
}

//! `tofu`/`terraform` argv builders. Variables travel in a `*.tfvars.json` file; secrets only as
//! `TF_VAR_*` in the child's environment (see [`Tofu::base`]).

use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::process::{Cmd, Io};

/// The resolved tofu (or terraform) binary and what every call of it shares.
#[derive(Debug, Clone)]
pub struct Tofu {
    pub program: String,
    pub workdir: PathBuf,
    pub var_file: PathBuf,
    /// `(name, value)` environment pairs that are secret (`TF_VAR_mnemonic`, `MNEMONIC`, …).
    pub secrets: Vec<(String, String)>,
    /// Other environment, e.g. `TF_CLI_CONFIG_FILE` for the grid simulator.
    pub env: Vec<(String, String)>,
    pub timeout: Duration,
}

impl Tofu {
    fn base(&self, log: &Path) -> Cmd {
        let mut cmd = Cmd::new(&self.program)
            .arg(format!("-chdir={}", self.workdir.display()))
            .env("TF_IN_AUTOMATION", "1")
            .env("CHECKPOINT_DISABLE", "1")
            .io(Io::Log(log.to_path_buf()))
            .timeout(self.timeout);
        for (key, value) in &self.env {
            cmd = cmd.env(key, value);
        }
        for (key, value) in &self.secrets {
            cmd = cmd.secret_env(key, value);
        }
        cmd
    }

    pub fn init(&self, log: &Path) -> Cmd {
        self.base(log).args(["init", "-input=false", "-no-color"])
    }

    pub fn plan(&self, plan_file: &str, log: &Path) -> Cmd {
        self.base(log).args([
            "plan".to_string(),
            "-input=false".into(),
            "-no-color".into(),
            "-lock-timeout=60s".into(),
            format!("-var-file={}", self.var_file.display()),
            format!("-out={plan_file}"),
        ])
    }

    pub fn apply(&self, plan_file: &str, log: &Path) -> Cmd {
        self.base(log).args([
            "apply",
            "-input=false",
            "-no-color",
            "-lock-timeout=60s",
            "-auto-approve",
            plan_file,
        ])
    }

    /// `output -json`, captured. A dry run answers with `placeholder`.
    pub fn output_json(&self, log: &Path, placeholder: &str) -> Cmd {
        let mut cmd = self
            .base(log)
            .args(["output", "-json", "-no-color"])
            .dry_run_stdout(placeholder);
        cmd.io = Io::Capture(log.to_path_buf());
        cmd
    }

    pub fn destroy(&self, log: &Path) -> Cmd {
        self.base(log).args([
            "destroy".to_string(),
            "-input=false".into(),
            "-no-color".into(),
            "-lock-timeout=60s".into(),
            "-auto-approve".into(),
            format!("-var-file={}", self.var_file.display()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use std::path::PathBuf;
    use std::time::Duration;

    use super::Tofu;

    fn tofu() -> Tofu {
        Tofu {
            program: "tofu".into(),
            workdir: PathBuf::from("/s/terraform"),
            var_file: PathBuf::from("/s/terraform/tfgrid-compose.tfvars.json"),
            secrets: vec![("TF_VAR_mnemonic".into(), "secret words".into())],
            env: Vec::new(),
            timeout: Duration::from_secs(60),
        }
    }

    #[test]
    fn argv_is_exact_and_secret_free() {
        let log = PathBuf::from("/l");
        let t = tofu();
        assert_eq!(
            t.init(&log).display_line(),
            "tofu -chdir=/s/terraform init -input=false -no-color"
        );
        assert_eq!(
            t.plan("tfplan", &log).display_line(),
            "tofu -chdir=/s/terraform plan -input=false -no-color -lock-timeout=60s \
                -var-file=/s/terraform/tfgrid-compose.tfvars.json -out=tfplan"
        );
        assert_eq!(
            t.apply("tfplan", &log).display_line(),
            "tofu -chdir=/s/terraform apply -input=false -no-color -lock-timeout=60s -auto-approve \
                tfplan"
        );
        assert_eq!(
            t.destroy(&log).display_line(),
            "tofu -chdir=/s/terraform destroy -input=false -no-color -lock-timeout=60s \
                -auto-approve -var-file=/s/terraform/tfgrid-compose.tfvars.json"
        );
        for cmd in [
            t.init(&log),
            t.plan("p", &log),
            t.apply("p", &log),
            t.destroy(&log),
            t.output_json(&log, "{}"),
        ] {
            assert!(!cmd.args.iter().any(|a| a.contains("secret")));
            assert!(cmd.env.contains_key("TF_VAR_mnemonic"));
        }
    }
}

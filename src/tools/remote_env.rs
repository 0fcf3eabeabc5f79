//! The one builder of `env -C DIR KEY=VALUE… PROGRAM ARGS…`: the argv that runs a program on a
//! VM in a folder with variables (hooks, app and pattern commands). Pure data; quoting it for the
//! remote shell is `ssh::remote_command`'s, once.

/// `["env", "-C", dir, "KEY=VALUE"…, program…]`: `env` (coreutils ≥ 8.28) changes to `dir`, sets
/// the variables and runs `program` (its first word the program, the rest its arguments)
/// without a shell. Keys and values are written as given.
pub fn in_dir(
    dir: &str,
    vars: impl IntoIterator<Item = (String, String)>,
    program: impl IntoIterator<Item = String>,
) -> Vec<String> {
    let mut argv = vec!["env".to_string(), "-C".into(), dir.into()];
    argv.extend(
        vars.into_iter()
            .map(|(key, value)| format!("{key}={value}")),
    );
    argv.extend(program);
    argv
}

#[cfg(test)]
mod tests {
    use super::in_dir;

    #[test]
    fn folder_then_variables_then_the_program_each_one_argument() {
        let argv = in_dir(
            "/tmp/app deployment",
            [
                ("A".to_string(), "x y".to_string()),
                ("B".into(), String::new()),
            ],
            ["/bin/sh".to_string(), "hook.sh".into(), "--flag".into()],
        );
        assert_eq!(
            argv,
            [
                "env",
                "-C",
                "/tmp/app deployment",
                "A=x y",
                "B=",
                "/bin/sh",
                "hook.sh",
                "--flag"
            ]
        );
    }
}

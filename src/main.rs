//! The `tfgrid-compose` binary: everything lives in the library; see `cli::main`.

#[tokio::main]
async fn main() -> std::process::ExitCode {
    tfgrid_compose::cli::main().await
}

//! `dashboard`: the web view of this machine's deployments (see `dashboard`'s module).

use anyhow::Result;
use clap::Args;

use super::Ctx;
use crate::dashboard::{DEFAULT_LISTEN, Options};

#[derive(Debug, Args)]
pub struct DashboardArgs {
    /// Address and port to listen on (port 0 takes a free one); a loopback address unless
    /// --allow-remote is given
    #[arg(long, value_name = "ADDR:PORT", default_value = DEFAULT_LISTEN)]
    pub listen: std::net::SocketAddr,
    /// Accept a --listen address other machines can reach (still token-guarded, with a warning)
    #[arg(long)]
    pub allow_remote: bool,
    /// Open the sign-in URL in the desktop's browser
    #[arg(long)]
    pub open: bool,
    /// A Prometheus (`http://HOST:9090`) for the charts, instead of the AI stack's own, which the
    /// dashboard reaches through an ssh tunnel to its gateway
    #[arg(long, value_name = "URL")]
    pub prometheus: Option<String>,
}

impl DashboardArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let options = Options {
            listen: self.listen,
            allow_remote: self.allow_remote,
            open: self.open,
            prometheus: self.prometheus,
        };
        crate::dashboard::serve(cx.printer, cx.settings, options).await
    }
}

//! `pr`: the environment of one pull request, driven by the CI event (docs/pr-environments.md).

use std::path::PathBuf;
use std::time::Duration;

use anyhow::Result;
use clap::Args;

use super::Ctx;
use crate::ops::{self, pr::PrOptions};
use crate::settings::parse_duration;

#[derive(Debug, Args)]
pub struct PrArgs {
    /// The app, as `up` takes it (default: this folder's app).
    #[arg(value_name = "TARGET")]
    pub app: Option<String>,
    /// The event's name (`pull_request`, `issue_comment`), instead of GITHUB_EVENT_NAME.
    #[arg(long, value_name = "NAME", requires = "payload")]
    pub event: Option<String>,
    /// The event's JSON payload, instead of the file GITHUB_EVENT_PATH names.
    #[arg(long, value_name = "FILE", requires = "event")]
    pub payload: Option<PathBuf>,
    /// Wait this long for the environment's lock (another event of the same pull request);
    /// default 30m.
    #[arg(long, value_parser = parse_duration)]
    pub lock_wait: Option<Duration>,
}

impl PrArgs {
    pub(super) async fn run(self, cx: &Ctx<'_>) -> Result<()> {
        let options = PrOptions {
            target: self.app,
            event: self.event,
            payload: self.payload,
        };
        ops::pr::pr(cx.printer, cx.settings, &options).await
    }
}

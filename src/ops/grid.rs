//! Grid commands: `nodes`, `farms` (GridProxy), `signin`, `signin --check`, `signout`.

use std::collections::BTreeSet;
use std::io::IsTerminal as _;

use anyhow::Result;
use serde_json::json;

use crate::error::UserError;
use crate::grid::mnemonic;
use crate::grid::proxy::{GridProxy, NodeQuery};
use crate::grid::select::{self, NodeFilter, Request};
use crate::output::{Printer, plural};
use crate::settings::{Settings, Source};

/// GridProxy of the configured network (on `sim`, the simulator's, while the guard lives).
async fn proxy(settings: &Settings) -> Result<(GridProxy, Option<crate::sim::gridproxy::Running>)> {
    crate::sim::gridproxy::client(
        &settings.network,
        &settings.data_dir,
        settings.gridproxy_url.as_deref(),
    )
    .await
}

fn gib(bytes: u64) -> u64 {
    bytes >> 30
}

/// `nodes [ID]`: the candidates for a request under the filter, best first, or one node.
pub async fn nodes(
    printer: &Printer,
    settings: &Settings,
    node: Option<u64>,
    request: &Request,
    flags: &NodeFilter,
    limit: usize,
    json: bool,
) -> Result<()> {
    let (proxy, _sim) = proxy(settings).await?;
    if let Some(id) = node {
        let node = proxy.node(id).await?;
        if json {
            printer.json_line(&serde_json::to_value(&node)?);
            return Ok(());
        }
        let free = node.free();
        printer.data(format!("node        {}", node.node_id));
        printer.data(format!(
            "farm        {}{}",
            node.farm_id,
            node.farm_name
                .as_ref()
                .map(|n| format!(" ({n})"))
                .unwrap_or_default()
        ));
        printer.data(format!("location    {}, {}", node.city, node.country));
        printer.data(format!(
            "status      {}{}",
            node.status,
            if node.healthy {
                ", healthy"
            } else {
                ", NOT healthy"
            }
        ));
        printer.data(format!(
            "uptime      {:.1} days",
            node.uptime as f64 / 86_400.0
        ));
        printer.data(format!(
            "cpu         {} core{} ({} reserved)",
            node.total.cru,
            plural(node.total.cru),
            node.used.cru
        ));
        printer.data(format!(
            "memory      {} GiB free of {}",
            gib(free.mru),
            gib(node.total.mru)
        ));
        printer.data(format!(
            "ssd         {} GiB free of {}",
            gib(free.sru),
            gib(node.total.sru)
        ));
        printer.data(format!(
            "hdd         {} GiB free of {}",
            gib(free.hru),
            gib(node.total.hru)
        ));
        if !node.public_config.ipv4.is_empty() {
            printer.data(format!("public ipv4 {}", node.public_config.ipv4));
        }
        for gpu in &node.gpus {
            printer.data(format!(
                "gpu         {} ({} {})",
                gpu.id, gpu.vendor, gpu.device
            ));
        }
        printer.data(format!("rent        {}", rent_state(&node)));
        return Ok(());
    }
    let filter = flags.clone().or(&settings.node_filter);
    let query = NodeQuery {
        free_mru: request.memory_mb << 20,
        free_sru: request.ssd_gb << 30,
        has_gpu: request.gpu,
        ..NodeQuery::default()
    };
    let all = proxy.nodes(&query).await?;
    let farms =
        if select::needs_farms(&filter, request) || !all.iter().all(|n| n.farm_name.is_some()) {
            proxy.farms().await?
        } else {
            Vec::new()
        };
    let candidates = select::candidates(&all, &farms, request, &filter, &BTreeSet::new());
    let shown = &candidates[..candidates.len().min(limit)];
    if json {
        let rows: Vec<serde_json::Value> = shown
            .iter()
            .map(|c| {
                let free = c.node.free();
                json!({
                    "node_id": c.node.node_id,
                    "farm_id": c.node.farm_id,
                    "farm_name": c.farm_name,
                    "country": c.node.country,
                    "city": c.node.city,
                    "uptime_days": (c.node.uptime as f64 / 86_400.0 * 10.0).round() / 10.0,
                    "cpu": c.node.total.cru,
                    "free_memory_gib": gib(free.mru),
                    "free_ssd_gib": gib(free.sru),
                    "farm_free_ipv4": c.farm_free_ips,
                    "num_gpu": c.node.num_gpu,
                    "rented_by_twin_id": c.node.rented_by_twin_id,
                    "score": (c.score * 1000.0).round() / 1000.0,
                })
            })
            .collect();
        printer.json_line(&json!({"schema": 1, "network": settings.network, "gridproxy": proxy.base, "matched": candidates.len(), "nodes": rows}));
        return Ok(());
    }
    if candidates.is_empty() {
        return Err(UserError::new(
            format!(
                "no node on {} has {} vCPU, {} MB memory and {} GB SSD free under the node filter",
                proxy.base, request.cpu, request.memory_mb, request.ssd_gb
            ),
            "ask for less, or relax the filter (`--farm`, `--max-*-usage`, `--min-uptime-days`, \
                config `node_filter`)",
        )
        .into());
    }
    printer.data(format!(
        "{:>6}  {:<18} {:<14} {:>4} {:>8} {:>8} {:>5} {:>7} {:>5}{}",
        "NODE",
        "FARM",
        "COUNTRY",
        "CPU",
        "MEM GiB",
        "SSD GiB",
        "IPV4",
        "UPTIME",
        "SCORE",
        if request.gpu { "  GPUS, RENT" } else { "" }
    ));
    for c in shown {
        let free = c.node.free();
        let gpus = if request.gpu {
            format!("  {} GPU, {}", c.node.num_gpu, rent_state(&c.node))
        } else {
            String::new()
        };
        printer.data(format!(
            "{:>6}  {:<18} {:<14} {:>4} {:>8} {:>8} {:>5} {:>6.1}d {:>5.2}{gpus}",
            c.node.node_id,
            truncate(&c.farm_name, 18),
            truncate(&c.node.country, 14),
            c.node.total.cru,
            gib(free.mru),
            gib(free.sru),
            c.farm_free_ips.map_or("-".to_string(), |n| n.to_string()),
            c.node.uptime as f64 / 86_400.0,
            c.score
        ));
    }
    printer.status(
        "Matched",
        format!(
            "{} node{} on {} ({} shown); deploy on one with `up --node ID`",
            candidates.len(),
            plural(candidates.len()),
            settings.network,
            shown.len()
        ),
    );
    Ok(())
}

/// Who rents a node: `rented by twin N`, `rentable`, or `not rentable` (a node with
/// deployments of others on it).
fn rent_state(node: &crate::grid::proxy::Node) -> String {
    if node.rented_by_twin_id != 0 {
        format!("rented by twin {}", node.rented_by_twin_id)
    } else if node.rentable {
        "rentable".into()
    } else {
        "not rentable".into()
    }
}

fn truncate(text: &str, width: usize) -> String {
    if text.chars().count() <= width {
        text.to_string()
    } else {
        format!("{}…", text.chars().take(width - 1).collect::<String>())
    }
}

/// `farms`: every farm with its free public IPv4 count.
pub async fn farms(
    printer: &Printer,
    settings: &Settings,
    name: Option<&str>,
    json: bool,
) -> Result<()> {
    let (proxy, _sim) = proxy(settings).await?;
    let mut farms = proxy.farms().await?;
    if let Some(name) = name {
        let needle = name.to_lowercase();
        farms.retain(|f| f.name.to_lowercase().contains(&needle));
    }
    farms.sort_by_key(|f| f.farm_id);
    if json {
        let rows: Vec<serde_json::Value> = farms
            .iter()
            .map(|f| json!({"farm_id": f.farm_id, "name": f.name, "dedicated": f.dedicated, "free_ipv4": f.free_ips(), "ipv4": f.public_ips.len()}))
            .collect();
        printer.json_line(&json!({"schema": 1, "network": settings.network, "gridproxy": proxy.base, "farms": rows}));
        return Ok(());
    }
    printer.data(format!(
        "{:>6}  {:<30} {:>9} {:>9}",
        "FARM", "NAME", "FREE IPV4", "DEDICATED"
    ));
    for f in &farms {
        printer.data(format!(
            "{:>6}  {:<30} {:>9} {:>9}",
            f.farm_id,
            truncate(&f.name, 30),
            f.free_ips(),
            if f.dedicated { "yes" } else { "no" }
        ));
    }
    printer.status(
        "Listed",
        format!(
            "{} farm{} on {}",
            farms.len(),
            plural(farms.len()),
            settings.network
        ),
    );
    Ok(())
}

/// `signin`: asks for the mnemonic without echo on a terminal, else reads stdin; stores it 0600.
pub fn signin(printer: &Printer, settings: &Settings) -> Result<()> {
    let path = mnemonic::stored_file(settings);
    let interactive = std::io::stdin().is_terminal();
    let mut attempts = 0;
    let phrase = loop {
        attempts += 1;
        let text = if interactive {
            rpassword::prompt_password("ThreeFold mnemonic (12 or 24 words, not shown): ")?
        } else {
            let mut text = String::new();
            std::io::Read::read_to_string(&mut std::io::stdin(), &mut text)?;
            text
        };
        match mnemonic::validate(&text) {
            Ok(_) => break text,
            Err(problem) if interactive && attempts < 3 => printer.warn(format!(
                "that is not a valid mnemonic: {problem}; try again"
            )),
            Err(problem) => {
                return Err(UserError::new(
                    format!("not signed in: the mnemonic is not valid: {problem}"),
                    "give the 12 or 24 words of your ThreeFold account, separated by spaces \
                        (nothing was stored)",
                )
                .into());
            }
        }
    };
    mnemonic::store(&path, &phrase)?;
    printer.status(
        "Signed in",
        format!("mnemonic stored in `{}` (mode 0600)", path.display()),
    );
    if settings.env.get(mnemonic::ENV_VAR).is_some() {
        printer.warn(format!(
            "{} is set in this shell and is used before the stored mnemonic",
            mnemonic::ENV_VAR
        ));
    }
    Ok(())
}

/// `signin --check`: which mnemonic would be used, whether it is a valid phrase, and whether its
/// file is private. Exit code 1 when there is none or it is invalid.
pub fn signin_check(printer: &Printer, settings: &Settings, json: bool) -> Result<()> {
    let loaded = mnemonic::load(settings);
    let (valid, source, words, too_open, problem) = match &loaded {
        Ok(Some(l)) => (
            true,
            Some(l.source.clone()),
            l.phrase.split(' ').count(),
            l.too_open,
            None,
        ),
        Ok(None) => (false, None, 0, false, Some("no mnemonic found".to_string())),
        Err(err) => (
            false,
            mnemonic::source(settings),
            0,
            false,
            Some(err.to_string()),
        ),
    };
    if json {
        printer.json_line(&json!({"schema": 1, "signed_in": valid, "source": source, "words": words, "file_private": !too_open, "network": settings.network, "problem": problem}));
    } else if valid {
        let from = source.as_ref().map(ToString::to_string).unwrap_or_default();
        printer.status(
            "Signed in",
            format!(
                "valid {words}-word mnemonic from {from}; grid network {}",
                settings.network
            ),
        );
        if let (true, Some(Source::Config(path))) = (too_open, &source) {
            printer.warn(mnemonic::too_open_warning(path));
        }
    }
    match (valid, loaded) {
        (true, _) => Ok(()),
        (false, Err(err)) => Err(crate::error::Failed {
            message: "not signed in".into(),
            hints: Vec::new(),
            source: err.into(),
        }
        .into()),
        (false, Ok(_)) => Err(crate::error::Failed {
            message: "not signed in: no mnemonic found".into(),
            hints: vec!["run `tfgrid-compose signin`, or set TF_VAR_mnemonic".into()],
            source: anyhow::anyhow!("looked at ${}, {}", mnemonic::ENV_VAR, files_list(settings))
                .into(),
        }
        .into()),
    }
}

fn files_list(settings: &Settings) -> String {
    mnemonic::files(settings)
        .iter()
        .map(|p| format!("`{}`", p.display()))
        .collect::<Vec<_>>()
        .join(", ")
}

/// `signout`: removes the stored mnemonic; says which other source would still be used.
pub fn signout(printer: &Printer, settings: &Settings) -> Result<()> {
    let path = mnemonic::stored_file(settings);
    match std::fs::remove_file(&path) {
        Ok(()) => printer.status("Signed out", format!("removed `{}`", path.display())),
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => {
            printer.status("Signed out", "no stored mnemonic to remove")
        }
        Err(err) => {
            return Err(UserError::new(
                format!("cannot remove `{}`: {err}", path.display()),
                "remove the file by hand",
            )
            .into());
        }
    }
    if let Some(source) = mnemonic::source(settings) {
        printer.warn(format!(
            "a mnemonic is still found at {source}; remove it there to sign out completely"
        ));
    }
    Ok(())
}

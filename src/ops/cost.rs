//! What deployments cost: `cost [TARGET]`, the estimate `validate` and `up --dry-run` print,
//! the monthly cost `ps` and `contracts` show, `max_monthly_cost` (the budget `up` keeps), and
//! `sim advance` (the simulated clock moved on, contracts billed). The calculation is
//! `cost::estimate`'s; this module finds the figures, the plans and prints.

use std::collections::BTreeMap;

use anyhow::Result;
use serde_json::json;

use crate::cost::{self, Estimate, Plan, Prices};
use crate::error::UserError;
use crate::ops::deployments::JSON_SCHEMA;
use crate::output::{Printer, plural};
use crate::registry::Entry;
use crate::settings::Settings;
use crate::state::StateDir;

/// The figures for the configured network and the balance discounts are computed from: on
/// `--network sim`, the simulator's chain (the signed-in twin's balance; a twin not made yet
/// has the balance a new twin starts with); elsewhere TFChain's genesis figures and no
/// balance (no discount), since reading the chain is not supported yet.
///
/// Errors: the simulator's GridProxy cannot start or answers in another shape.
pub async fn figures(settings: &Settings) -> Result<(Prices, f64)> {
    figures_on(settings, &settings.network).await
}

/// [`figures`] of `network` (a deployment's own, which may not be the configured one).
async fn figures_on(settings: &Settings, network: &str) -> Result<(Prices, f64)> {
    if network != crate::sim::NETWORK {
        return Ok((Prices::genesis(), 0.0));
    }
    let sim = crate::sim::ledger::sim_dir(&settings.data_dir);
    let twin = crate::grid::mnemonic::load(settings)
        .ok()
        .flatten()
        .and_then(|m| sim.read().ok()?.known_twin(&m.phrase))
        .unwrap_or(0);
    let running = crate::sim::gridproxy::start(sim).await?;
    cost::prices::fetch(&running.url, Some(twin)).await
}

/// How long [`FiguresCache`] keeps a network's figures at most (the TFT price moves; the
/// pricing policy seldom does).
pub const FIGURES_KEPT: std::time::Duration = std::time::Duration::from_secs(300);

/// The figures of each network, kept for a process that prices the same deployments again and
/// again (the dashboard's list, refreshed every second): read again only after [`FIGURES_KEPT`],
/// or at once when what they come from changed (on the simulator, its ledger and the stored
/// mnemonic, by their modification times), so that a refresh when nothing changed does no
/// network work (on `--network sim`, no GridProxy started). A new, empty one per command reads
/// each network's figures once.
#[derive(Default)]
pub struct FiguresCache {
    kept: std::sync::Mutex<BTreeMap<String, KeptFigures>>,
}

struct KeptFigures {
    read: std::time::Instant,
    stamp: Vec<Option<std::time::SystemTime>>,
    figures: (Prices, f64),
}

impl FiguresCache {
    /// [`figures`] of `network`: the kept ones while still good, else read (and kept).
    ///
    /// Errors: [`figures`]'; a failure is not kept.
    pub async fn figures(&self, settings: &Settings, network: &str) -> Result<(Prices, f64)> {
        let stamp = figures_stamp(settings, network);
        if let Ok(kept) = self.kept.lock()
            && let Some(k) = kept.get(network)
            && k.stamp == stamp
            && k.read.elapsed() < FIGURES_KEPT
        {
            return Ok(k.figures.clone());
        }
        let figures = figures_on(settings, network).await?;
        if let Ok(mut kept) = self.kept.lock() {
            kept.insert(
                network.to_string(),
                KeptFigures {
                    read: std::time::Instant::now(),
                    stamp,
                    figures: figures.clone(),
                },
            );
        }
        Ok(figures)
    }
}

/// What `network`'s figures are read from, as modification times: on the simulator its ledger
/// and billing record (contracts, balances) and the mnemonic's files (whose balance); nothing
/// elsewhere (the genesis figures are constants). Bills that fall due as time passes are seen
/// within [`FIGURES_KEPT`].
fn figures_stamp(settings: &Settings, network: &str) -> Vec<Option<std::time::SystemTime>> {
    if network != crate::sim::NETWORK {
        return Vec::new();
    }
    let sim = crate::sim::ledger::sim_dir(&settings.data_dir);
    [sim.ledger(), sim.billing_path()]
        .into_iter()
        .chain(crate::grid::mnemonic::files(settings))
        .map(|f| std::fs::metadata(f).and_then(|m| m.modified()).ok())
        .collect()
}

/// The grid network a recorded deployment was made on (its `state.yaml`), else the configured
/// one: a deployment on the simulator is priced at the simulator's figures whatever `--network`
/// says now.
fn network_of(settings: &Settings, state_dir: &std::path::Path) -> String {
    StateDir::at(state_dir.to_path_buf())
        .load()
        .ok()
        .flatten()
        .and_then(|state| state.grid_network)
        .unwrap_or_else(|| settings.network.clone())
}

/// What a recorded deployment (its state folder, `<app>/.tfgrid-compose/<env>/`) costs at the
/// configured network's figures; `None` when its Terraform state holds no contract yet. The
/// estimate's `usd_per_month` is the number to show, e.g. in a pull request's comment.
///
/// Errors: [`figures`]'.
pub async fn deployment_estimate(
    settings: &Settings,
    state_dir: &std::path::Path,
) -> Result<Option<Estimate>> {
    let Some(plan) = running_plan(state_dir) else {
        return Ok(None);
    };
    let (prices, balance) = figures_on(settings, &network_of(settings, state_dir)).await?;
    Ok(Some(cost::estimate(&plan, &prices, balance)))
}

/// The plan of what a recorded deployment runs (its Terraform state), if anything.
pub fn running_plan(state_dir: &std::path::Path) -> Option<Plan> {
    cost::plan::from_tfstate(&StateDir::at(state_dir.to_path_buf()).tfstate())
}

/// The rows of an estimate: one per contract, then one per VM of a contract with several.
fn estimate_rows(estimate: &Estimate) -> Vec<Vec<String>> {
    let mut rows = Vec::new();
    for c in &estimate.contracts {
        rows.push(vec![
            format!("{} {}", c.kind, c.label),
            if c.node == 0 {
                "-".to_string()
            } else {
                c.node.to_string()
            },
            format!("{:.2}", c.cu),
            format!("{:.2}", c.su),
            c.public_ipv4.to_string(),
            c.discount.name().to_string(),
            cost::usd(c.usd_per_month),
            cost::tft(c.tft_per_month),
        ]);
        for vm in c.vms.iter().filter(|_| c.vms.len() > 1) {
            let mut row = vec![
                format!(
                    "  {} ({} CPU, {} MB, {} GB)",
                    vm.name, vm.cpu, vm.memory_mb, vm.disk_gb
                ),
                String::new(),
                format!("{:.2}", vm.cu),
                format!("{:.2}", vm.su),
            ];
            row.resize(8, String::new());
            rows.push(row);
        }
    }
    rows
}

const ESTIMATE_HEADER: [&str; 8] = [
    "CONTRACT",
    "NODE",
    "CU",
    "SU",
    "IPV4",
    "DISCOUNT",
    "MONTH",
    "TFT/MONTH",
];

/// Prints an estimate: its table (on stdout for `cost`; as status lines on stderr beside
/// `validate` and `up --dry-run`, whose stdout is for other data), then the totals and the
/// figures used with their date.
pub fn print_estimate(printer: &Printer, what: &str, estimate: &Estimate, table_on_stdout: bool) {
    let table = crate::output::table(&ESTIMATE_HEADER, &estimate_rows(estimate));
    if table_on_stdout {
        printer.raw(table.as_bytes());
    } else {
        for line in table.lines() {
            printer.status("Estimate", line.trim_end());
        }
    }
    printer.status(
        "Cost",
        format!(
            "{what}: {} a month, {} a year ({} a month, {} a year)",
            cost::usd(estimate.usd_per_month),
            cost::usd(estimate.usd_per_year),
            cost::tft(estimate.tft_per_month),
            cost::tft(estimate.tft_per_year),
        ),
    );
    printer.status(
        "Figures",
        format!(
            "{}; balance {}",
            estimate.prices.describe(),
            cost::tft(estimate.balance_tft)
        ),
    );
}

/// The estimate of a validated app: its pattern's placement with the variables `up` passes.
pub fn plan_of(valid: &crate::ops::up::Validated) -> Result<Plan> {
    cost::plan::from_pattern(&valid.pattern, &valid.variables)
}

/// The estimate `validate` and `up --dry-run` print (nothing for a pattern off the grid).
pub async fn print_planned(
    printer: &Printer,
    settings: &Settings,
    valid: &crate::ops::up::Validated,
) -> Result<()> {
    let plan = plan_of(valid)?;
    if plan.contracts.is_empty() || printer.json() {
        return Ok(());
    }
    let (prices, balance) = figures(settings).await?;
    print_estimate(
        printer,
        &format!(
            "`{}` on pattern `{}` ({} VM{})",
            valid.app.manifest.name,
            valid.pattern.manifest.name,
            plan.vm_count(),
            plural(plan.vm_count())
        ),
        &cost::estimate(&plan, &prices, balance),
        false,
    );
    Ok(())
}

/// What each recorded deployment (not missing) runs and costs a month, at `prices`.
/// Every deployment here that holds contracts, with its estimate at the figures of the network
/// it was made on ([`network_of`]), each network's figures read once.
async fn recorded(settings: &Settings, cache: &FiguresCache) -> Result<Vec<(Entry, Estimate)>> {
    let (entries, _) = crate::ops::registry(settings).list()?;
    // The configured network's figures first: when they cannot be read, that is said even if
    // nothing here holds a contract.
    let mut figures_of: BTreeMap<String, (Prices, f64)> = BTreeMap::new();
    figures_of.insert(
        settings.network.clone(),
        cache.figures(settings, &settings.network).await?,
    );
    let mut out = Vec::new();
    for e in entries.into_iter().filter(|e| !e.missing()) {
        let Some(plan) = running_plan(&e.state_dir) else {
            continue;
        };
        let network = network_of(settings, &e.state_dir);
        if !figures_of.contains_key(&network) {
            let figures = cache.figures(settings, &network).await?;
            figures_of.insert(network.clone(), figures);
        }
        let (prices, balance) = &figures_of[&network];
        let estimate = cost::estimate(&plan, prices, *balance);
        out.push((e, estimate));
    }
    Ok(out)
}

/// Monthly USD cost of each registry entry, by id, for `ps`, at the figures `cache` keeps.
pub async fn monthly_by_id(
    settings: &Settings,
    cache: &FiguresCache,
) -> Result<BTreeMap<String, f64>> {
    Ok(recorded(settings, cache)
        .await?
        .into_iter()
        .map(|(e, est)| (e.id, est.usd_per_month))
        .collect())
}

/// Monthly USD cost of each contract id: on the simulator every contract its ledger holds,
/// elsewhere those the deployments here hold (from their Terraform state); a network contract
/// costs nothing and is left out.
pub async fn monthly_by_contract(settings: &Settings) -> Result<BTreeMap<u64, f64>> {
    let (prices, balance) = figures(settings).await?;
    let mut contracts: Vec<cost::PlannedContract> = Vec::new();
    if settings.network == crate::sim::NETWORK {
        let ledger = crate::sim::ledger::sim_dir(&settings.data_dir).read()?;
        contracts.extend(ledger.contracts.values().map(crate::sim::billing::planned));
    } else {
        let (entries, _) = crate::ops::registry(settings).list()?;
        for e in entries {
            contracts.extend(
                running_plan(&e.state_dir)
                    .into_iter()
                    .flat_map(|p| p.contracts),
            );
        }
    }
    Ok(contracts
        .into_iter()
        .filter(|c| c.contract_id > 0)
        .map(|c| {
            let id = c.contract_id;
            let plan = Plan { contracts: vec![c] };
            (id, cost::estimate(&plan, &prices, balance).usd_per_month)
        })
        .filter(|(_, usd)| *usd > 0.0)
        .collect())
}

/// After `ps`'s table: the monthly cost per environment and in all, when anything costs.
pub fn print_env_totals(printer: &Printer, entries: &[Entry], monthly: &BTreeMap<String, f64>) {
    let mut per_env: BTreeMap<&str, f64> = BTreeMap::new();
    for e in entries {
        if let Some(usd) = monthly.get(&e.id) {
            *per_env.entry(e.env.as_str()).or_default() += usd;
        }
    }
    if per_env.is_empty() {
        return;
    }
    let envs: Vec<String> = per_env
        .iter()
        .map(|(env, usd)| format!("{env} {}", cost::usd(*usd)))
        .collect();
    printer.status(
        "Cost",
        format!(
            "{} a month ({})",
            cost::usd(per_env.values().sum()),
            envs.join(", ")
        ),
    );
}

/// `cost TARGET`: what the deployment runs (its Terraform state), or, before it exists, what
/// its pattern and variables will make; `cost` alone: every deployment's monthly cost and the
/// total, per environment.
pub async fn cost(
    printer: &Printer,
    settings: &Settings,
    target: Option<&str>,
    json: bool,
) -> Result<()> {
    let Some(target) = target else {
        let (prices, balance) = figures(settings).await?;
        return all(printer, settings, &prices, balance, json).await;
    };
    let target = crate::ops::resolve_app_target(printer, settings, Some(target)).await?;
    let (plan, source) = match running_plan(&target.dir.root) {
        Some(plan) => (plan, "runs"),
        None => {
            let app = target.load_app(printer, None)?;
            let pattern = crate::pattern::find(settings, &app.dir, &app.pattern_name(None)?)?;
            let (variables, _) = app.variables(&pattern)?;
            (cost::plan::from_pattern(&pattern, &variables)?, "planned")
        }
    };
    let (prices, balance) = figures_on(settings, &network_of(settings, &target.dir.root)).await?;
    let estimate = cost::estimate(&plan, &prices, balance);
    if json {
        printer.json_line(&json!({"schema": JSON_SCHEMA, "target": target.arg(), "env": target.env, "source": source, "vms": plan.vm_count(), "estimate": estimate}));
        return Ok(());
    }
    print_estimate(
        printer,
        &format!(
            "{} ({source}, {} VM{})",
            target.arg(),
            plan.vm_count(),
            plural(plan.vm_count())
        ),
        &estimate,
        true,
    );
    Ok(())
}

async fn all(
    printer: &Printer,
    settings: &Settings,
    prices: &Prices,
    balance: f64,
    json: bool,
) -> Result<()> {
    let rows = recorded(settings, &FiguresCache::default()).await?;
    let mut per_env: BTreeMap<String, f64> = BTreeMap::new();
    for (e, est) in &rows {
        *per_env.entry(e.env.clone()).or_default() += est.usd_per_month;
    }
    let total: f64 = per_env.values().sum();
    if json {
        let deployments: Vec<_> = rows
            .iter()
            .map(|(e, est)| json!({"id": e.id, "app": e.app, "env": e.env, "vms": est.contracts.iter().map(|c| c.vms.iter().filter(|v| v.cpu > 0).count()).sum::<usize>(), "usd_per_month": est.usd_per_month, "tft_per_month": est.tft_per_month}))
            .collect();
        printer.json_line(&json!({"schema": JSON_SCHEMA, "deployments": deployments, "environments": per_env, "usd_per_month": total, "usd_per_year": total * 12.0, "prices": prices, "balance_tft": balance}));
        return Ok(());
    }
    if rows.is_empty() {
        printer.status("Cost", "nothing runs: no deployment here holds a contract");
        return Ok(());
    }
    let table: Vec<Vec<String>> = rows
        .iter()
        .map(|(e, est)| {
            vec![
                e.short_id().to_string(),
                e.app.clone(),
                e.env.clone(),
                cost::usd(est.usd_per_month),
                cost::tft(est.tft_per_month),
            ]
        })
        .collect();
    printer
        .raw(crate::output::table(&["ID", "APP", "ENV", "MONTH", "TFT/MONTH"], &table).as_bytes());
    for (env, usd) in &per_env {
        printer.status("Environment", format!("{env}: {} a month", cost::usd(*usd)));
    }
    printer.status(
        "Total",
        format!(
            "{} a month, {} a year ({})",
            cost::usd(total),
            cost::usd(total * 12.0),
            prices.describe()
        ),
    );
    Ok(())
}

/// `max_monthly_cost`: refuses a new deployment whose estimate, added to what the app's other
/// environments cost (the manifest's cap) or to what every deployment here costs (the config's
/// cap), passes the cap. Runs before anything is created; the error names what runs and what
/// it costs.
pub async fn check_budget(
    settings: &Settings,
    valid: &crate::ops::up::Validated,
    env: &str,
) -> Result<()> {
    let app_cap = valid.app.manifest.max_monthly_cost;
    let total_cap = settings.max_monthly_cost;
    if app_cap.is_none() && total_cap.is_none() {
        return Ok(());
    }
    let (prices, balance) = figures(settings).await?;
    let new = cost::estimate(&plan_of(valid)?, &prices, balance).usd_per_month;
    let app_dir = crate::files::real_path(&valid.app.dir);
    let running = recorded(settings, &FiguresCache::default()).await?;
    let caps = [
        (app_cap, valid.app.file.display().to_string(), true),
        (
            total_cap,
            settings
                .sources
                .get("max_monthly_cost")
                .map(ToString::to_string)
                .unwrap_or_default(),
            false,
        ),
    ];
    for (cap, source, per_app) in caps {
        let Some(cap) = cap else { continue };
        let counted: Vec<&(Entry, Estimate)> = running
            .iter()
            .filter(|(e, _)| !(e.app_dir == app_dir && e.env == env))
            .filter(|(e, _)| !per_app || e.app_dir == app_dir)
            .collect();
        let others: f64 = counted.iter().map(|(_, est)| est.usd_per_month).sum();
        if new + others > cap + 1e-9 {
            let listed: Vec<String> = counted
                .iter()
                .map(|(e, est)| format!("{} {}", e.label(), cost::usd(est.usd_per_month)))
                .collect();
            return Err(UserError::new(
                format!(
                    "`{}:{env}` would cost {} a month; with what runs ({}: {}) that is {}, over \
                        max_monthly_cost {} ({source})",
                    valid.app.manifest.name,
                    cost::usd(new),
                    cost::usd(others),
                    if listed.is_empty() {
                        "nothing".to_string()
                    } else {
                        listed.join(", ")
                    },
                    cost::usd(new + others),
                    cost::usd(cap),
                ),
                "take an environment down (`tfgrid-compose down APP --env ENV`), make the VMs \
                    smaller, or raise `max_monthly_cost`; `tfgrid-compose cost` lists what runs",
            )
            .into());
        }
    }
    Ok(())
}

/// `sim advance --hours N`: the simulated clock moves N hours on and every running contract is
/// billed for them; prints each twin's balance.
pub fn sim_advance(printer: &Printer, settings: &Settings, hours: u64, json: bool) -> Result<()> {
    let sim = crate::sim::ledger::sim_dir(&settings.data_dir);
    let before = sim.with_billing(|b| b.spent.clone())?;
    let billing = sim.advance(hours)?;
    let mut twins: Vec<u32> = sim.read()?.twins.into_values().collect();
    twins.sort_unstable();
    let tft = |units: u64| units as f64 / cost::UNITS_PER_TFT;
    if json {
        let twins: BTreeMap<u32, serde_json::Value> = twins
            .iter()
            .map(|t| (*t, json!({"balance_tft": tft(billing.balance(*t)), "spent_tft": tft(billing.spent.get(t).copied().unwrap_or(0))})))
            .collect();
        printer.json_line(&json!({"schema": JSON_SCHEMA, "clock_offset_hours": billing.clock_offset / cost::SECS_PER_HOUR, "twins": twins}));
        return Ok(());
    }
    for twin in &twins {
        printer.status(
            "Billed",
            format!(
                "twin {twin}: {} in these {hours} h ({} in all), {} left",
                cost::tft(tft(billing.spent.get(twin).copied().unwrap_or(0)
                    - before.get(twin).copied().unwrap_or(0))),
                cost::tft(tft(billing.spent.get(twin).copied().unwrap_or(0))),
                cost::tft(tft(billing.balance(*twin)))
            ),
        );
    }
    printer.status(
        "Advanced",
        format!(
            "the simulated clock by {hours} h ({} h ahead in all)",
            billing.clock_offset / cost::SECS_PER_HOUR
        ),
    );
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::FiguresCache;
    use crate::env::Env;
    use crate::settings::{Overrides, Settings};

    /// Kept figures answer without reading the simulator again (a damaged ledger behind an
    /// unchanged modification time is not seen); a ledger that changed is read at once.
    #[tokio::test]
    async fn kept_figures_are_read_again_only_when_the_simulators_files_change() {
        let dir = tempfile::tempdir().unwrap();
        let (data, config) = (dir.path().join("data"), dir.path().join("config"));
        let env = Env::from_pairs([
            ("HOME", dir.path().to_str().unwrap()),
            ("TFGRID_COMPOSE_DATA_DIR", data.to_str().unwrap()),
            ("TFGRID_COMPOSE_CONFIG_DIR", config.to_str().unwrap()),
        ]);
        let settings = Settings::resolve(env, &Overrides::default()).unwrap();
        let sim = crate::sim::ledger::sim_dir(&settings.data_dir);
        std::fs::create_dir_all(sim.ledger().parent().unwrap()).unwrap();
        let ledger = serde_json::to_vec(&crate::sim::ledger::Ledger::default()).unwrap();
        std::fs::write(sim.ledger(), ledger).unwrap();
        let cache = FiguresCache::default();
        let first = cache.figures(&settings, "sim").await.unwrap();

        let written = std::fs::metadata(sim.ledger()).unwrap().modified().unwrap();
        std::fs::write(sim.ledger(), "damaged").unwrap();
        let file = std::fs::File::options()
            .write(true)
            .open(sim.ledger())
            .unwrap();
        file.set_modified(written).unwrap();
        let kept = cache.figures(&settings, "sim").await.unwrap();
        assert_eq!(kept, first);

        file.set_modified(written + std::time::Duration::from_secs(1))
            .unwrap();
        let err = cache.figures(&settings, "sim").await.unwrap_err();
        // (The simulator's GridProxy answers 500 for a balance its damaged ledger cannot give.)
        assert!(format!("{err:#}").contains("/chain/balance/"), "{err:#}");
        // A fresh cache (a command's) reads the figures itself.
        assert!(
            FiguresCache::default()
                .figures(&settings, "main")
                .await
                .is_ok()
        );
    }
}

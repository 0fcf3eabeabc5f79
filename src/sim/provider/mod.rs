//! The simulated `threefoldtech/grid` Terraform provider, served by this binary
//! (`tfgrid-compose sim provider`, started by Terraform through the mirror that
//! [`super::terraform_config`] writes).
//!
//! It speaks Terraform's plugin protocol 5.2 (gRPC over mutual TLS, the go-plugin handshake on
//! stdout), has the real provider's schema ([`schema`]) and defaults ([`defaults`]), runs its
//! plan-time validators, and creates, updates and cancels workloads in the simulator's
//! [`super::ledger`], with VMs made of network namespaces ([`resources`]).

pub mod defaults;
pub mod proto;
pub mod resources;
pub mod schema;
pub mod value;

use std::collections::BTreeMap;
use std::sync::Arc;

use anyhow::{Context as _, Result, bail};
use base64::Engine as _;
use tokio::sync::{Mutex, Notify};
use tonic::{Request, Response, Status};

use proto::tfplugin5 as pb;
use proto::tfplugin5::provider_server::{Provider, ProviderServer};
use schema::{Invalid, PathStep, schemas};
use value::Val;

use super::ledger::SimDir;

/// go-plugin's magic cookie for Terraform providers (hashicorp/terraform, internal/plugin).
const MAGIC_COOKIE_KEY: &str = "TF_PLUGIN_MAGIC_COOKIE";
const MAGIC_COOKIE_VALUE: &str = "d602bf8f470bc67ca7faa0386276bbdd4330efaf76d1a219cb4d6991ca9872b2";

/// What `Configure` established.
#[derive(Default, Clone)]
struct Configured {
    twin_id: u32,
    mnemonic: String,
}

/// The provider service.
pub struct GridSim {
    sim: SimDir,
    configured: Mutex<Option<Configured>>,
}

fn diag(
    summary: impl Into<String>,
    detail: impl Into<String>,
    path: &[PathStep],
) -> pb::Diagnostic {
    pb::Diagnostic {
        severity: pb::diagnostic::Severity::Error as i32,
        summary: summary.into(),
        detail: detail.into(),
        attribute: (!path.is_empty()).then(|| pb::AttributePath {
            steps: path
                .iter()
                .map(|s| pb::attribute_path::Step {
                    selector: Some(match s {
                        PathStep::Attr(a) => {
                            pb::attribute_path::step::Selector::AttributeName(a.clone())
                        }
                        PathStep::Index(i) => pb::attribute_path::step::Selector::ElementKeyInt(*i),
                    }),
                })
                .collect(),
        }),
    }
}

fn invalid_diags(problems: Vec<Invalid>) -> Vec<pb::Diagnostic> {
    problems
        .into_iter()
        .map(|p| diag(p.message, "", &p.path))
        .collect()
}

fn error_diag(err: &anyhow::Error) -> pb::Diagnostic {
    diag(format!("{err:#}"), "", &[])
}

fn dynamic(v: &Val) -> Option<pb::DynamicValue> {
    Some(pb::DynamicValue {
        msgpack: v.encode(),
        json: Vec::new(),
    })
}

fn decode(v: Option<pb::DynamicValue>) -> Result<Val, Status> {
    let Some(v) = v else { return Ok(Val::Null) };
    if !v.json.is_empty() {
        let json: serde_json::Value =
            serde_json::from_slice(&v.json).map_err(|e| Status::invalid_argument(e.to_string()))?;
        return Ok(Val::from(&json));
    }
    Val::decode(&v.msgpack).map_err(|e| Status::invalid_argument(format!("{e:#}")))
}

fn block_of(type_name: &str) -> Option<&'static schema::Block> {
    schemas().resources.get(type_name)
}

impl GridSim {
    pub fn new(sim: SimDir) -> GridSim {
        GridSim {
            sim,
            configured: Mutex::new(None),
        }
    }

    async fn configured(&self) -> Result<Configured> {
        self.configured
            .lock()
            .await
            .clone()
            .context("the provider was not configured")
    }
}

#[tonic::async_trait]
impl Provider for GridSim {
    async fn get_schema(
        &self,
        _: Request<pb::get_provider_schema::Request>,
    ) -> Result<Response<pb::get_provider_schema::Response>, Status> {
        let s = schemas();
        let from_env = crate::env::Env::from_process().get("MNEMONIC").is_some();
        let wrap = |b: &schema::Block, relax: bool| pb::Schema {
            version: 0,
            block: Some(b.to_proto(relax)),
        };
        Ok(Response::new(pb::get_provider_schema::Response {
            provider: Some(wrap(&s.provider, from_env)),
            resource_schemas: s
                .resources
                .iter()
                .map(|(k, b)| (k.clone(), wrap(b, false)))
                .collect(),
            data_source_schemas: s
                .data_sources
                .iter()
                .map(|(k, b)| (k.clone(), wrap(b, false)))
                .collect(),
            diagnostics: Vec::new(),
            provider_meta: None,
        }))
    }

    async fn prepare_provider_config(
        &self,
        req: Request<pb::prepare_provider_config::Request>,
    ) -> Result<Response<pb::prepare_provider_config::Response>, Status> {
        let config = decode(req.into_inner().config)?;
        Ok(Response::new(pb::prepare_provider_config::Response {
            prepared_config: dynamic(&config),
            diagnostics: invalid_diags(schema::validate("provider", &config)),
        }))
    }

    async fn validate_resource_type_config(
        &self,
        req: Request<pb::validate_resource_type_config::Request>,
    ) -> Result<Response<pb::validate_resource_type_config::Response>, Status> {
        let req = req.into_inner();
        let config = decode(req.config)?;
        Ok(Response::new(pb::validate_resource_type_config::Response {
            diagnostics: invalid_diags(schema::validate(&req.type_name, &config)),
        }))
    }

    async fn validate_data_source_config(
        &self,
        req: Request<pb::validate_data_source_config::Request>,
    ) -> Result<Response<pb::validate_data_source_config::Response>, Status> {
        let req = req.into_inner();
        let config = decode(req.config)?;
        Ok(Response::new(pb::validate_data_source_config::Response {
            diagnostics: invalid_diags(schema::validate(&req.type_name, &config)),
        }))
    }

    async fn upgrade_resource_state(
        &self,
        req: Request<pb::upgrade_resource_state::Request>,
    ) -> Result<Response<pb::upgrade_resource_state::Response>, Status> {
        let req = req.into_inner();
        let raw = req.raw_state.map(|r| r.json).unwrap_or_default();
        let json: serde_json::Value = if raw.is_empty() {
            serde_json::Value::Null
        } else {
            serde_json::from_slice(&raw).map_err(|e| Status::invalid_argument(e.to_string()))?
        };
        let value = Val::from(&json);
        let value = block_of(&req.type_name)
            .map(|b| b.conform(&value))
            .unwrap_or(value);
        Ok(Response::new(pb::upgrade_resource_state::Response {
            upgraded_state: dynamic(&value),
            diagnostics: Vec::new(),
        }))
    }

    async fn configure(
        &self,
        req: Request<pb::configure::Request>,
    ) -> Result<Response<pb::configure::Response>, Status> {
        let config = decode(req.into_inner().config)?;
        let process_env = crate::env::Env::from_process();
        let env = |k: &str| process_env.get(k).map(String::from);
        let mnemonic = config
            .get("mnemonic")
            .str()
            .map(String::from)
            .filter(|m| !m.is_empty())
            .or_else(|| env("MNEMONIC"))
            .or_else(|| env("MNEMONICS"));
        let answer = |diags| {
            Ok(Response::new(pb::configure::Response {
                diagnostics: diags,
            }))
        };
        let Some(mnemonic) = mnemonic else {
            return answer(vec![diag(
                "mnemonic is required: set the provider's `mnemonic` or the MNEMONIC environment \
                    variable",
                "",
                &[],
            )]);
        };
        // The real provider says `mnemonic/seed '<the phrase>' is invalid`; the simulator keeps
        // the meaning and leaves the secret out.
        if bip39::Mnemonic::parse_normalized(mnemonic.trim()).is_err() {
            return answer(vec![diag(
                "mnemonic/seed is invalid (not a BIP-39 phrase)",
                "",
                &[],
            )]);
        }
        let mnemonic = mnemonic.trim().to_string();
        let twin_id = match self.sim.with_ledger(|l| Ok(l.twin_of(&mnemonic))) {
            Ok(t) => t,
            Err(e) => return answer(vec![error_diag(&e)]),
        };
        *self.configured.lock().await = Some(Configured { twin_id, mnemonic });
        answer(Vec::new())
    }

    async fn read_resource(
        &self,
        req: Request<pb::read_resource::Request>,
    ) -> Result<Response<pb::read_resource::Response>, Status> {
        let req = req.into_inner();
        let state = decode(req.current_state)?;
        let state = block_of(&req.type_name)
            .map(|b| b.conform(&state))
            .unwrap_or(state);
        Ok(Response::new(pb::read_resource::Response {
            new_state: dynamic(&state),
            diagnostics: Vec::new(),
            private: req.private,
        }))
    }

    async fn plan_resource_change(
        &self,
        req: Request<pb::plan_resource_change::Request>,
    ) -> Result<Response<pb::plan_resource_change::Response>, Status> {
        let req = req.into_inner();
        let prior = decode(req.prior_state)?;
        let proposed = decode(req.proposed_new_state)?;
        let answer = |planned: &Val, diagnostics| {
            Ok(Response::new(pb::plan_resource_change::Response {
                planned_state: dynamic(planned),
                requires_replace: Vec::new(),
                planned_private: req.prior_private.clone(),
                diagnostics,
                legacy_type_system: true,
            }))
        };
        if proposed.is_null() {
            return answer(&Val::Null, Vec::new());
        }
        let Some(block) = block_of(&req.type_name) else {
            return answer(
                &proposed,
                vec![diag(
                    format!("unknown resource type {}", req.type_name),
                    "",
                    &[],
                )],
            );
        };
        if let Err(e) = resources::simulated(&req.type_name, &proposed) {
            return answer(&proposed, vec![error_diag(&e)]);
        }
        let mut planned = block.conform(&proposed);
        defaults::apply(&req.type_name, &mut planned);
        resources::plan(&req.type_name, &prior, &mut planned);
        block.mark_computed_unknown(&mut planned);
        answer(&planned, Vec::new())
    }

    async fn apply_resource_change(
        &self,
        req: Request<pb::apply_resource_change::Request>,
    ) -> Result<Response<pb::apply_resource_change::Response>, Status> {
        let req = req.into_inner();
        let prior = decode(req.prior_state)?;
        let planned = decode(req.planned_state)?;
        let answer = |state: &Val, diagnostics| {
            Ok(Response::new(pb::apply_resource_change::Response {
                new_state: dynamic(state),
                private: Vec::new(),
                diagnostics,
                legacy_type_system: true,
            }))
        };
        let configured = match self.configured().await {
            Ok(c) => c,
            Err(e) => return answer(&prior, vec![error_diag(&e)]),
        };
        let ctx = resources::Ctx {
            sim: &self.sim,
            twin_id: configured.twin_id,
            mnemonic: &configured.mnemonic,
        };
        match resources::apply(&ctx, &req.type_name, &prior, &planned).await {
            Ok(mut state) => {
                if let Some(block) = block_of(&req.type_name) {
                    state = block.conform(&state);
                    block.settle_unknowns(&mut state);
                }
                answer(&state, Vec::new())
            }
            // A failed create leaves nothing (the simulator cancels what it started); a failed
            // update or destroy keeps the prior state.
            Err(e) => answer(&prior, vec![error_diag(&e)]),
        }
    }

    async fn import_resource_state(
        &self,
        _: Request<pb::import_resource_state::Request>,
    ) -> Result<Response<pb::import_resource_state::Response>, Status> {
        Ok(Response::new(pb::import_resource_state::Response {
            imported_resources: Vec::new(),
            diagnostics: vec![diag(
                "resource import is not supported by this provider",
                "",
                &[],
            )],
        }))
    }

    async fn read_data_source(
        &self,
        req: Request<pb::read_data_source::Request>,
    ) -> Result<Response<pb::read_data_source::Response>, Status> {
        let req = req.into_inner();
        let config = decode(req.config)?;
        let (state, diagnostics) =
            match resources::read_data_source(&self.sim, &req.type_name, &config) {
                Ok(s) => (s, Vec::new()),
                Err(e) => (config.clone(), vec![error_diag(&e)]),
            };
        let state = schemas()
            .data_sources
            .get(&req.type_name)
            .map(|b| b.conform(&state))
            .unwrap_or(state);
        Ok(Response::new(pb::read_data_source::Response {
            state: dynamic(&state),
            diagnostics,
        }))
    }

    async fn stop(
        &self,
        _: Request<pb::stop::Request>,
    ) -> Result<Response<pb::stop::Response>, Status> {
        Ok(Response::new(pb::stop::Response {
            error: String::new(),
        }))
    }
}

/// go-plugin's controller: Terraform asks the plugin to shut down when it is done with it.
struct Controller {
    stop: Arc<Notify>,
}

#[tonic::async_trait]
impl proto::plugin::grpc_controller_server::GrpcController for Controller {
    async fn shutdown(
        &self,
        _: Request<proto::plugin::Empty>,
    ) -> Result<Response<proto::plugin::Empty>, Status> {
        self.stop.notify_one();
        Ok(Response::new(proto::plugin::Empty {}))
    }
}

/// Serves the provider until Terraform shuts it down. `handshake` receives the go-plugin line
/// (`1|5|tcp|127.0.0.1:PORT|grpc|<server certificate, base64>`), which must go to stdout.
///
/// Errors: not started by Terraform (no magic cookie), no loopback port, TLS set-up.
pub async fn serve(sim: SimDir, handshake: impl FnOnce(&str)) -> Result<()> {
    let process_env = crate::env::Env::from_process();
    if process_env.get(MAGIC_COOKIE_KEY) != Some(MAGIC_COOKIE_VALUE) {
        bail!(
            "this is the grid simulator's Terraform provider; Terraform starts it (see \
                `tfgrid-compose sim terraform-config`)"
        );
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .context("listening on 127.0.0.1")?;
    let addr = listener.local_addr()?;
    let stop = Arc::new(Notify::new());
    let mut builder = tonic::transport::Server::builder();
    let mut cert_b64 = String::new();
    if let Some(client_pem) = process_env.get("PLUGIN_CLIENT_CERT").map(String::from) {
        let mut params = rcgen::CertificateParams::new(vec!["localhost".to_string()])?;
        params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
        params.key_usages = vec![
            rcgen::KeyUsagePurpose::DigitalSignature,
            rcgen::KeyUsagePurpose::KeyEncipherment,
            rcgen::KeyUsagePurpose::KeyCertSign,
        ];
        params.extended_key_usages = vec![
            rcgen::ExtendedKeyUsagePurpose::ServerAuth,
            rcgen::ExtendedKeyUsagePurpose::ClientAuth,
        ];
        let key = rcgen::KeyPair::generate()?;
        let cert = params.self_signed(&key)?;
        cert_b64 = base64::engine::general_purpose::STANDARD_NO_PAD.encode(cert.der());
        let tls = tonic::transport::ServerTlsConfig::new()
            .identity(tonic::transport::Identity::from_pem(
                cert.pem(),
                key.serialize_pem(),
            ))
            .client_ca_root(tonic::transport::Certificate::from_pem(client_pem))
            // go-plugin's client certificate is ECDSA P-521, which rustls does not verify; the
            // server still listens on 127.0.0.1 only and is known to Terraform by its certificate
            .client_auth_optional(true);
        builder = builder
            .tls_config(tls)
            .context("TLS for the plugin protocol")?;
    }
    let incoming = tonic::transport::server::TcpIncoming::from(listener);
    handshake(&format!("1|5|tcp|{addr}|grpc|{cert_b64}"));
    let provider = GridSim::new(sim);
    let stopped = stop.clone();
    builder
        .add_service(ProviderServer::new(provider))
        .add_service(
            proto::plugin::grpc_controller_server::GrpcControllerServer::new(Controller { stop }),
        )
        .serve_with_incoming_shutdown(incoming, async move { stopped.notified().await })
        .await
        .context("serving the plugin protocol")?;
    Ok(())
}

/// A map of node id → value as the provider writes them (`{"11": …}`).
pub fn node_map<T>(entries: impl IntoIterator<Item = (u32, T)>, f: impl Fn(T) -> Val) -> Val {
    Val::Map(
        entries
            .into_iter()
            .map(|(k, v)| (k.to_string(), f(v)))
            .collect::<BTreeMap<_, _>>(),
    )
}

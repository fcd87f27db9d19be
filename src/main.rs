//! The `spares` command-line interface: server, demo, import and client commands.

use clap::Parser;
use spares::api::server::{Security, serve_with};
use spares::api::tls::ServerTls;
use spares::auth::bearer::JwtAuthenticator;
use spares::cli::{
    Cli, Command, DEFAULT_LISTEN, DbCommand, KeysCommand, MovementsCommand, PoliciesCommand,
    ServeTlsArgs, client, load, local,
};
use spares::config::{Limits, StoreLocation};
use spares::config_file::ConfigFile;
use spares::demo::DemoConfig;
use std::process::ExitCode;
use std::sync::Arc;

fn main() -> ExitCode {
    let cli = Cli::parse();
    // The guard flushes buffered log lines when main returns.
    let _log_guard = match spares::logging::init(&log_config(cli.log_format)) {
        Ok(guard) => guard,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(run(cli)) {
        Ok(output) => {
            print!("{output}");
            ExitCode::SUCCESS
        }
        Err(message) => {
            eprintln!("error: {message}");
            ExitCode::FAILURE
        }
    }
}

/// Logging from the flag and the environment: `RUST_LOG` (default `info`),
/// colours only on a terminal and never with `NO_COLOR` set.
fn log_config(format: spares::logging::LogFormat) -> spares::logging::LogConfig {
    use std::io::IsTerminal;
    spares::logging::LogConfig {
        format,
        filter: std::env::var("RUST_LOG")
            .ok()
            .filter(|f| !f.trim().is_empty())
            .unwrap_or_else(|| "info".to_string()),
        ansi: std::io::stderr().is_terminal() && std::env::var_os("NO_COLOR").is_none(),
    }
}

/// The actor of offline writes (`spares import --data-dir`): `local:` and
/// the user from `USER` (or `USERNAME`), `local:cli` when neither is set.
fn local_actor() -> spares::domain::ledger::Actor {
    let user = std::env::var("USER")
        .or_else(|_| std::env::var("USERNAME"))
        .unwrap_or_default();
    spares::domain::ledger::Actor::local(&user)
}

/// The stderr banner of a server with authentication off.
const INSECURE_BANNER: &str = "\
**********************************************************************
* WARNING: AUTHENTICATION IS OFF (--insecure-dev).                   *
* Every caller that can reach the port acts as an ADMINISTRATOR:     *
* it can change master data, record movements and read everything.   *
* Use only for development or on a private network.                  *
**********************************************************************";
/// Loads the TLS files named on the command line, if any, and starts
/// their reloading: on SIGHUP always, and every `--tls-reload-seconds`
/// (default 60) when a file changed.
fn server_tls(args: &ServeTlsArgs) -> Result<Option<Arc<ServerTls>>, String> {
    let Some(files) = args.files()? else {
        return Ok(None);
    };
    let tls = Arc::new(ServerTls::load(files).map_err(|e| format!("TLS: {e}"))?);
    let seconds = args.tls_reload_seconds.unwrap_or(60);
    if seconds > 0 {
        tokio::spawn(tls.clone().watch(std::time::Duration::from_secs(seconds)));
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            let tls = tls.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    match tls.reload() {
                        Ok(()) => tracing::info!("SIGHUP: TLS certificate reloaded"),
                        Err(error) => tracing::warn!(
                            %error,
                            "SIGHUP: cannot reload TLS; keeping the previous certificate"
                        ),
                    }
                }
            });
        }
    }
    Ok(Some(tls))
}

/// The bearer-JWT authenticator of `settings`, checked against the
/// service's clock; its key file is reloaded on SIGHUP and, when it
/// changed, every `reload_seconds` (0: only on SIGHUP).
fn jwt_authenticator(
    settings: spares::identity::jwt::JwtSettings,
    spares: &spares::service::Spares,
    reload_seconds: u64,
) -> Result<Arc<JwtAuthenticator>, String> {
    let jwt = Arc::new(
        JwtAuthenticator::load(settings, spares.clock().clone())
            .map_err(|e| format!("JWT: {e}"))?,
    );
    if reload_seconds > 0 {
        let watched = jwt.clone();
        tokio::spawn(async move {
            let mut tick = tokio::time::interval(std::time::Duration::from_secs(reload_seconds));
            tick.tick().await;
            loop {
                tick.tick().await;
                match watched.reload_if_changed() {
                    Ok(true) => tracing::info!("JWT key file changed: reloaded"),
                    Ok(false) => {}
                    Err(error) => tracing::warn!(
                        %error,
                        "JWT key file changed but cannot be used; keeping the previous keys"
                    ),
                }
            }
        });
    }
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        if let Ok(mut hangups) = signal(SignalKind::hangup()) {
            let reloaded = jwt.clone();
            tokio::spawn(async move {
                while hangups.recv().await.is_some() {
                    match reloaded.reload() {
                        Ok(()) => tracing::info!("SIGHUP: JWT keys reloaded"),
                        Err(error) => tracing::warn!(
                            %error,
                            "SIGHUP: cannot reload the JWT keys; keeping the previous ones"
                        ),
                    }
                }
            });
        }
    }
    Ok(jwt)
}

async fn serve_until_ctrl_c(
    spares: Arc<spares::service::Spares>,
    listen: std::net::SocketAddr,
    metrics_listen: Option<std::net::SocketAddr>,
    security: Security,
) -> Result<(), String> {
    // Refuse before binding anything when no caller could ever get in.
    spares::api::server::gate_settings(&spares, &security).map_err(|e| e.to_string())?;
    if security.insecure_dev {
        eprintln!("{INSECURE_BANNER}");
    }
    let listener = tokio::net::TcpListener::bind(listen)
        .await
        .map_err(|e| format!("cannot listen on {listen}: {e}"))?;
    let (stop_metrics, metrics_stopped) = tokio::sync::oneshot::channel::<()>();
    if let Some(address) = metrics_listen {
        let metrics = tokio::net::TcpListener::bind(address)
            .await
            .map_err(|e| format!("--metrics-listen: cannot listen on {address}: {e}"))?;
        let bound = metrics.local_addr().unwrap_or(address);
        eprintln!("spares serving metrics on http://{bound}/metrics");
        tokio::spawn(spares::metrics::endpoint::serve_metrics(metrics, async {
            let _ = metrics_stopped.await;
        }));
    }
    let bound = listener.local_addr().unwrap_or(listen);
    match &security.tls {
        None => eprintln!("spares serving gRPC on {bound}; Ctrl-C or SIGTERM stops it"),
        Some(tls) => eprintln!(
            "spares serving gRPC on {bound}; TLS{} with certificate {} (SIGHUP reloads it); Ctrl-C or SIGTERM stops it",
            if tls.requires_client_certificate() {
                " with client certificates required"
            } else {
                ""
            },
            tls.files().cert.display()
        ),
    }
    let served = serve_with(spares, listener, shutdown_signal(), security)
        .await
        .map_err(|e| e.to_string());
    let _ = stop_metrics.send(());
    served
}

async fn run(cli: Cli) -> Result<String, String> {
    let text = |r: Result<String, client::ClientError>| r.map_err(|e| e.to_string());
    let client_tls = cli.client_tls.settings()?;
    // Client commands connect to `--server` over TLS if asked, with the
    // caller's key or bearer token.
    let caller = client::Target::default()
        .tls(client_tls)
        .api_key(cli.api_key.clone())
        .bearer_token(cli.bearer_token.clone());
    let target = |server: &str| client::Target {
        url: server.to_string(),
        ..caller.clone()
    };
    match cli.command {
        Command::Serve {
            config,
            listen,
            data_dir,
            store,
            metrics_listen,
            insecure_dev,
            rate_limit,
            rate_burst,
            tls,
            jwt,
        } => {
            // Flags and environment variables (clap reads both) over the
            // file, over the defaults.
            let file = match &config {
                Some(path) => ConfigFile::load(path).map_err(|e| e.to_string())?,
                None => ConfigFile::default(),
            };
            let mut limits = file.rate_limit.apply(file.limits.apply(Limits::default())?);
            if let Some(rate) = rate_limit {
                if !(rate >= 0.0 && rate.is_finite()) {
                    return Err(format!(
                        "--rate-limit: {rate} is not a rate (0 = unlimited)"
                    ));
                }
                limits.rate_per_principal_per_second = rate;
            }
            if let Some(burst) = rate_burst {
                limits.rate_burst_per_principal = burst;
            }
            let listen = match listen.or(file.listen) {
                Some(listen) => listen,
                None => DEFAULT_LISTEN
                    .parse()
                    .map_err(|e| format!("{DEFAULT_LISTEN}: {e}"))?,
            };
            // --store, then --data-dir, then the file's store or data_dir.
            let location = match (store, data_dir) {
                (Some(url), _) => StoreLocation::Postgres(url),
                (None, Some(dir)) => StoreLocation::Sled(dir),
                (None, None) => match file.store {
                    Some(url) => StoreLocation::Postgres(url),
                    None => {
                        StoreLocation::Sled(file.data_dir.unwrap_or_else(|| "spares-data".into()))
                    }
                },
            };
            let metrics_listen = metrics_listen.or(file.metrics_listen);
            let tls = tls.over(&file.tls);
            let reload_seconds = tls.tls_reload_seconds.unwrap_or(60);
            let jwt = jwt.settings(&file.jwt)?;
            let tls = server_tls(&tls)?;
            let spares =
                tokio::task::spawn_blocking(move || local::open_location(&location, limits))
                    .await
                    .map_err(|e| e.to_string())??;
            let mut authenticators: Vec<Arc<dyn spares::auth::Authenticator>> = Vec::new();
            if let Some(settings) = jwt {
                authenticators.push(jwt_authenticator(settings, &spares, reload_seconds)?);
            }
            let security = Security {
                tls,
                insecure_dev,
                open_health: file.auth.open_health.unwrap_or(true),
                open_reflection: file.auth.open_reflection.unwrap_or(true),
                api_keys: file.auth.api_keys.unwrap_or(true),
                authenticators,
            };
            serve_until_ctrl_c(spares, listen, metrics_listen, security).await?;
            Ok(String::new())
        }
        Command::Keys { command } => keys(command, &caller).await,
        Command::Db {
            command: DbCommand::Upgrade { store },
        } => {
            let shown = spares::config::without_password(&store);
            let (before, after) =
                tokio::task::spawn_blocking(move || spares::store::pg::upgrade(&store))
                    .await
                    .map_err(|e| e.to_string())?
                    .map_err(|e| format!("{shown}: {e}"))?;
            Ok(if before == after {
                format!("{shown}: the schema is at version {after}; nothing to do\n")
            } else {
                format!("{shown}: upgraded the schema from version {before} to {after}\n")
            })
        }
        Command::Demo {
            seed,
            parts,
            stores,
            listen,
            data_dir,
            no_serve,
            metrics_listen,
            insecure_dev,
            tls,
        } => {
            let tls = server_tls(&tls)?;
            let config = DemoConfig {
                seed,
                parts,
                stores,
                ..DemoConfig::default()
            };
            let addr = listen.to_string();
            let (spares, report) = tokio::task::spawn_blocking(move || {
                local::prepare_demo(&config, &data_dir, &addr, insecure_dev)
            })
            .await
            .map_err(|e| e.to_string())??;
            if no_serve {
                return Ok(report);
            }
            print!("{report}");
            let security = Security {
                tls,
                insecure_dev,
                ..Security::default()
            };
            serve_until_ctrl_c(spares, listen, metrics_listen, security).await?;
            Ok(String::new())
        }
        Command::Import {
            dir,
            data_dir,
            server,
        } => match server {
            Some(url) => {
                let bundle = spares::import::load_dir(&dir).map_err(|e| e.to_string())?;
                text(load::import_remote(&target(&url), &bundle).await)
            }
            None => local::import_local(&dir, &data_dir, &local_actor()),
        },
        Command::Export { dir, data_dir } => local::export_local(&dir, &data_dir),
        Command::Backup {
            file,
            server,
            data_dir,
        } => {
            let server = server.as_deref().map(target);
            spares::cli::backup::backup(&file, server.as_ref(), data_dir.as_deref()).await
        }
        Command::Restore { file, data_dir } => {
            tokio::task::spawn_blocking(move || spares::cli::backup::restore(&file, &data_dir))
                .await
                .map_err(|e| e.to_string())?
        }
        Command::Locations { server, kind } => {
            text(client::locations(&target(&server), kind.as_deref()).await)
        }
        Command::Part { part, server } => text(client::part(&target(&server), &part).await),
        Command::Retire {
            parts,
            locations,
            lane,
            server,
        } => text(client::retire(&target(&server), parts, locations, &lane).await),
        Command::Stock {
            part,
            location,
            server,
        } => text(client::stock(&target(&server), &part, location.as_deref()).await),
        Command::Where {
            parts,
            near,
            limit,
            server,
        } => text(client::where_is(&target(&server), &parts, near.as_deref(), limit).await),
        Command::Promise {
            part,
            quantity,
            line,
            lines,
            to,
            need_by,
            critical,
            pickup,
            server,
        } => {
            let ask = client::PromiseAsk {
                to,
                need_by,
                critical,
                pickup,
            };
            text(
                match client::promise_lines(part, quantity, &line, lines.as_deref()) {
                    Ok(lines) => client::promise(&target(&server), &lines, &ask).await,
                    Err(e) => Err(e),
                },
            )
        }
        Command::Reserve {
            part,
            quantity,
            at,
            need_by,
            ttl,
            key,
            critical,
            order,
            server,
        } => {
            let args = spares::cli::operations::ReserveArgs {
                part_id: part,
                quantity,
                location_id: at,
                need_by,
                ttl_seconds: ttl,
                idempotency_key: key,
                critical,
                order_reference: order,
            };
            text(spares::cli::operations::reserve(&target(&server), args).await)
        }
        Command::Confirm {
            reservation_id,
            ship_to,
            key,
            server,
        } => text(
            spares::cli::operations::confirm(
                &target(&server),
                &reservation_id,
                ship_to.as_deref(),
                key,
            )
            .await,
        ),
        Command::Release {
            reservation_id,
            key,
            server,
        } => text(spares::cli::operations::release(&target(&server), &reservation_id, key).await),
        Command::Reservations {
            part,
            location,
            state,
            server,
        } => text(
            spares::cli::operations::reservations(
                &target(&server),
                part.as_deref(),
                location.as_deref(),
                state.as_deref(),
            )
            .await,
        ),
        Command::Watch {
            part,
            location,
            count,
            server,
        } => text(spares::cli::operations::watch(&target(&server), part, location, count).await),
        Command::Simulate {
            parts,
            replications,
            horizon_days,
            warmup_days,
            seed,
            outage,
            lead_time_shock,
            fleet_growth,
            demand_multiplier,
            csv,
            json,
            server,
        } => {
            let settings = spares::pb::SimulationSettings {
                horizon_days,
                warmup_days,
                replications,
                seed,
                part_ids: parts,
            };
            let what_if = client::WhatIfArgs {
                outages: outage,
                lead_time_shocks: lead_time_shock,
                fleet_growth,
                demand_multiplier,
            };
            text(client::simulate(&target(&server), settings, &what_if, json, csv.as_deref()).await)
        }
        Command::Optimize {
            budget,
            mode,
            alpha,
            lambda,
            model,
            backend,
            parts,
            scenarios,
            horizon_days,
            warmup_days,
            time_limit,
            critical_fill_floor,
            seed,
            compare,
            apply,
            csv,
            json,
            server,
        } => {
            let backend = match backend.to_ascii_lowercase().as_str() {
                "clarabel" => spares::pb::SolverBackend::Clarabel,
                "microlp" => spares::pb::SolverBackend::Microlp,
                "highs" => spares::pb::SolverBackend::Highs,
                other => {
                    return Err(format!(
                        "--backend: unknown `{other}` (clarabel, microlp, highs)"
                    ));
                }
            };
            let model = match model.to_ascii_lowercase().replace('_', "-").as_str() {
                "echelons" => spares::pb::TrainingModel::Echelons,
                "curves" => spares::pb::TrainingModel::Curves,
                "lead-time" | "leadtime" => spares::pb::TrainingModel::LeadTime,
                other => {
                    return Err(format!(
                        "--model: unknown `{other}` (echelons, curves, lead-time)"
                    ));
                }
            };
            let mode = match mode.to_ascii_lowercase().as_str() {
                "" => spares::pb::PlanMode::Unspecified,
                "budget" => spares::pb::PlanMode::Budget,
                "cost" => spares::pb::PlanMode::Cost,
                other => return Err(format!("--mode: unknown `{other}` (budget, cost)")),
            };
            let request = spares::pb::OptimizeRequest {
                model: model as i32,
                mode: mode as i32,
                settings: Some(spares::pb::SimulationSettings {
                    horizon_days,
                    warmup_days,
                    replications: scenarios,
                    seed,
                    part_ids: parts,
                }),
                budget_usd: budget,
                cvar_alpha: alpha,
                cvar_weight: lambda,
                backend: backend as i32,
                time_limit_seconds: time_limit,
                critical_fill_rate_floor: critical_fill_floor,
                compare,
                apply,
            };
            text(
                spares::cli::planning::optimize(&target(&server), request, json, csv.as_deref())
                    .await,
            )
        }
        Command::Frontier {
            method,
            points,
            max_investment,
            parts,
            csv,
            json,
            server,
        } => {
            let method = match method.to_ascii_lowercase().replace('_', "-").as_str() {
                "metric" => spares::pb::FrontierMethod::Metric,
                "vari-metric" | "varimetric" => spares::pb::FrontierMethod::VariMetric,
                other => return Err(format!("--method: unknown `{other}` (metric, vari-metric)")),
            };
            let request = spares::pb::FrontierRequest {
                method: method as i32,
                max_investment_usd: max_investment,
                points,
                part_ids: parts,
            };
            text(
                spares::cli::planning::frontier(&target(&server), request, json, csv.as_deref())
                    .await,
            )
        }
        Command::Report {
            job,
            output,
            server,
        } => text(spares::cli::report::report(&target(&server), &job, &output).await),
        Command::Jobs {
            kind,
            state,
            owner,
            server,
        } => text(
            spares::cli::jobs::list(
                &target(&server),
                kind.as_deref(),
                state.as_deref(),
                owner.as_deref(),
            )
            .await,
        ),
        Command::Movements { command } => match command {
            MovementsCommand::List {
                part,
                location,
                actor,
                since,
                until,
                limit,
                server,
            } => {
                let query = spares::cli::trail::MovementQuery {
                    part,
                    location,
                    actor,
                    since,
                    until,
                    limit,
                };
                text(spares::cli::trail::list_movements(&target(&server), &query).await)
            }
            MovementsCommand::Record {
                kind,
                part,
                location,
                quantity,
                key,
                to,
                shipment,
                expected_arrival,
                note,
                server,
            } => {
                let movement = spares::cli::trail::NewMovement {
                    key,
                    kind,
                    part,
                    location,
                    quantity,
                    to,
                    shipment,
                    expected_arrival,
                    note,
                };
                text(spares::cli::trail::record_movement(&target(&server), &movement).await)
            }
        },
        Command::Audit {
            principal,
            rpc,
            since,
            until,
            limit,
            server,
        } => {
            let query = spares::cli::trail::AuditQuery {
                principal,
                rpc,
                since,
                until,
                limit,
            };
            text(spares::cli::trail::list_audit_events(&target(&server), &query).await)
        }
        Command::Policies { command } => match command {
            PoliciesCommand::Get {
                part,
                location,
                server,
            } => text(
                spares::cli::policies::get(&target(&server), part.as_deref(), location.as_deref())
                    .await,
            ),
            PoliciesCommand::Set {
                part,
                location,
                kind,
                order_up_to,
                reorder_point,
                order_quantity,
                protect,
                server,
            } => {
                let edit = spares::cli::policies::PolicyEdit {
                    kind,
                    order_up_to,
                    reorder_point,
                    order_quantity,
                    protected_quantity: protect,
                };
                text(spares::cli::policies::set(&target(&server), &part, &location, &edit).await)
            }
            PoliciesCommand::History {
                plan,
                limit,
                server,
            } => {
                text(spares::cli::policies::history(&target(&server), plan.as_deref(), limit).await)
            }
            PoliciesCommand::Rollback { plan_id, server } => {
                text(spares::cli::policies::rollback(&target(&server), &plan_id).await)
            }
        },
        Command::Forecast {
            file,
            method,
            alpha,
            beta,
            lead_time,
            seed,
            csv,
            json,
        } => {
            let method = method
                .map(|m| m.parse::<spares_solver::forecast::ForecastMethod>())
                .transpose()
                .map_err(|e| format!("--method: {e}"))?;
            let settings = spares::planning::forecast::ForecastSettings {
                method,
                alpha: spares::planning::forecast::smoothing("--alpha", alpha)
                    .map_err(|e| e.to_string())?,
                beta: spares::planning::forecast::smoothing("--beta", beta)
                    .map_err(|e| e.to_string())?,
                lead_time_periods: lead_time,
                seed,
            };
            spares::cli::planning::forecast_file(&file, &settings, json, csv.as_deref())
        }
    }
}

/// `spares keys ...`.
async fn keys(command: KeysCommand, caller: &client::Target) -> Result<String, String> {
    use spares::cli::keys::{create, list, place, revoke};
    match command {
        KeysCommand::Create {
            role,
            stores,
            locations,
            name,
            data_dir,
            store,
            server,
        } => {
            let role = role.parse().map_err(|e| format!("--role: {e}"))?;
            let place = place(
                data_dir.as_deref(),
                store.as_deref(),
                server.as_deref(),
                caller,
            )?;
            let new = spares::service::keys::NewApiKey {
                role,
                stores,
                locations,
                name,
                created_by: String::new(),
            };
            create(place, new).await
        }
        KeysCommand::List {
            all,
            data_dir,
            store,
            server,
        } => {
            list(
                place(
                    data_dir.as_deref(),
                    store.as_deref(),
                    server.as_deref(),
                    caller,
                )?,
                all,
            )
            .await
        }
        KeysCommand::Revoke {
            key_id,
            data_dir,
            store,
            server,
        } => {
            revoke(
                place(
                    data_dir.as_deref(),
                    store.as_deref(),
                    server.as_deref(),
                    caller,
                )?,
                &key_id,
            )
            .await
        }
    }
}

/// Resolves on SIGINT (Ctrl-C) or SIGTERM (what service managers and
/// containers send): the server then stops accepting, ends streams and jobs,
/// lets in-flight requests finish within `Limits::shutdown_grace`, and exits 0.
async fn shutdown_signal() {
    let interrupt = async {
        // If the handler cannot be installed, this signal never stops us.
        if tokio::signal::ctrl_c().await.is_err() {
            std::future::pending::<()>().await;
        }
    };
    #[cfg(unix)]
    let terminate = async {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut stream) => {
                stream.recv().await;
            }
            Err(_) => std::future::pending::<()>().await,
        }
    };
    #[cfg(not(unix))]
    let terminate = std::future::pending::<()>();
    tokio::select! {
        () = interrupt => eprintln!("interrupted; shutting down"),
        () = terminate => eprintln!("terminated; shutting down"),
    }
}

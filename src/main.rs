//! The `spares` command-line interface: server, demo, import and client commands.

use clap::Parser;
use spares::api::server::serve;
use spares::cli::{Cli, Command, PoliciesCommand, client, load, local};
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

async fn serve_until_ctrl_c(
    spares: Arc<spares::service::Spares>,
    listen: std::net::SocketAddr,
    metrics_listen: Option<std::net::SocketAddr>,
) -> Result<(), String> {
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
    eprintln!("spares serving gRPC on {bound}; Ctrl-C or SIGTERM stops it");
    let served = serve(spares, listener, shutdown_signal())
        .await
        .map_err(|e| e.to_string());
    let _ = stop_metrics.send(());
    served
}

async fn run(cli: Cli) -> Result<String, String> {
    let text = |r: Result<String, client::ClientError>| r.map_err(|e| e.to_string());
    match cli.command {
        Command::Serve {
            listen,
            data_dir,
            metrics_listen,
        } => {
            let spares = local::open(&data_dir)?;
            serve_until_ctrl_c(spares, listen, metrics_listen).await?;
            Ok(String::new())
        }
        Command::Demo {
            seed,
            parts,
            stores,
            listen,
            data_dir,
            no_serve,
            metrics_listen,
        } => {
            let config = DemoConfig {
                seed,
                parts,
                stores,
                ..DemoConfig::default()
            };
            let addr = listen.to_string();
            let (spares, report) =
                tokio::task::spawn_blocking(move || local::prepare_demo(&config, &data_dir, &addr))
                    .await
                    .map_err(|e| e.to_string())??;
            if no_serve {
                return Ok(report);
            }
            print!("{report}");
            serve_until_ctrl_c(spares, listen, metrics_listen).await?;
            Ok(String::new())
        }
        Command::Import {
            dir,
            data_dir,
            server,
        } => match server {
            Some(url) => {
                let bundle = spares::import::load_dir(&dir).map_err(|e| e.to_string())?;
                text(load::import_remote(&url, &bundle).await)
            }
            None => local::import_local(&dir, &data_dir),
        },
        Command::Export { dir, data_dir } => local::export_local(&dir, &data_dir),
        Command::Backup {
            file,
            server,
            data_dir,
        } => spares::cli::backup::backup(&file, server.as_deref(), data_dir.as_deref()).await,
        Command::Restore { file, data_dir } => {
            tokio::task::spawn_blocking(move || spares::cli::backup::restore(&file, &data_dir))
                .await
                .map_err(|e| e.to_string())?
        }
        Command::Locations { server, kind } => {
            text(client::locations(&server, kind.as_deref()).await)
        }
        Command::Part { part, server } => text(client::part(&server, &part).await),
        Command::Retire {
            parts,
            locations,
            lane,
            server,
        } => text(client::retire(&server, parts, locations, &lane).await),
        Command::Stock {
            part,
            location,
            server,
        } => text(client::stock(&server, &part, location.as_deref()).await),
        Command::Where {
            part,
            near,
            limit,
            server,
        } => text(client::where_is(&server, &part, near.as_deref(), limit).await),
        Command::Promise {
            part,
            quantity,
            to,
            need_by,
            critical,
            pickup,
            server,
        } => text(
            client::promise(
                &server,
                &part,
                quantity,
                &to,
                need_by.as_deref(),
                critical,
                pickup,
            )
            .await,
        ),
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
            text(client::simulate(&server, settings, &what_if, json).await)
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
            text(spares::cli::planning::optimize(&server, request, json).await)
        }
        Command::Frontier {
            method,
            points,
            max_investment,
            parts,
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
            text(spares::cli::planning::frontier(&server, request, json).await)
        }
        Command::Report {
            job,
            output,
            server,
        } => text(spares::cli::report::report(&server, &job, &output).await),
        Command::Jobs {
            kind,
            state,
            server,
        } => text(spares::cli::jobs::list(&server, kind.as_deref(), state.as_deref()).await),
        Command::Policies { command } => match command {
            PoliciesCommand::History {
                plan,
                limit,
                server,
            } => text(spares::cli::policies::history(&server, plan.as_deref(), limit).await),
            PoliciesCommand::Rollback { plan_id, server } => {
                text(spares::cli::policies::rollback(&server, &plan_id).await)
            }
        },
        Command::Forecast {
            file,
            method,
            alpha,
            beta,
            lead_time,
            seed,
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
            spares::cli::planning::forecast_file(&file, &settings, json)
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

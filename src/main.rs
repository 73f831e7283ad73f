//! The kura binary: flags and config file → `Server::start` → wait for a signal → shut down.

use anyhow::Context;
use kura::{Config, Server};

fn print_help() {
    println!(
        "kura {} — a log store appliance for fluentd (Redis RESP + Fluent Forward)\n\n\
         usage: kura [--config FILE] [--<setting> <value> ...]\n\n\
         Settings use Redis's names (--port 6380, --replicaof \"HOST PORT\", --requirepass X);\n\
         --forward-port and --http-port set the other doors. See deploy/kura.toml.",
        env!("CARGO_PKG_VERSION")
    );
}

fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    if args.iter().any(|a| a == "--help" || a == "-h") {
        print_help();
        return Ok(());
    }
    if args.iter().any(|a| a == "--version" || a == "-v") {
        println!(
            "kura {} (redis {})",
            env!("CARGO_PKG_VERSION"),
            kura::REDIS_VERSION
        );
        return Ok(());
    }
    let config = Config::from_args(args).context("invalid configuration")?;
    let filter = match config.loglevel.as_str() {
        "debug" => "debug",
        "verbose" => "info",
        "warning" => "warn",
        "nothing" => "off",
        _ => "info",
    };
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(filter)),
        )
        .init();
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(config.io_threads)
        .enable_all()
        .build()?;
    runtime.block_on(async move {
        use tokio::signal::unix::{signal, SignalKind};
        // Handlers go in before the listeners: a signal that arrives as soon as kura says it
        // is ready must still mean a graceful shutdown, not the default kill.
        let mut sigterm =
            signal(SignalKind::terminate()).context("cannot install SIGTERM handler")?;
        let mut sigint =
            signal(SignalKind::interrupt()).context("cannot install SIGINT handler")?;
        let mut server = Server::start(config).await.context("cannot start kura")?;
        // Data loaded, every door bound: a Type=notify unit counts as started from here.
        kura::notify::ready(&server);
        // A signal's shutdown does what `shutdown-on-sigterm`/`-sigint` say (read when it
        // arrives: CONFIG SET applies); SHUTDOWN settled its own options.
        let flags = tokio::select! {
            _ = sigint.recv() => {
                tracing::info!("received SIGINT scheduling shutdown");
                server.state.with_config(|c| c.shutdown_on_sigint)
            }
            _ = sigterm.recv() => {
                tracing::info!("received SIGTERM scheduling shutdown");
                server.state.with_config(|c| c.shutdown_on_sigterm)
            }
            _ = server.shutdown_requested() => {
                tracing::info!("shutdown requested");
                kura::config::ShutdownFlags::default()
            }
        };
        kura::notify::notify(kura::notify::STOPPING);
        server.shutdown(flags).await;
        Ok(())
    })
}

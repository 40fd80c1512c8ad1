//! Runs the origin stub on its own, for pointing other tools at it.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use clap::Parser;
use origin_stub::{Origin, OriginConfig, SystemClock};

/// A JSON catalogue origin with ETags, Cache-Control, latency and fault injection.
///
/// Routes: /api/products, /api/products/{id}, /api/users/{id}, /api/time, /static/{name};
/// admin: GET /__origin/stats, GET|PUT /__origin/faults, POST /__origin/products/{id}/bump.
#[derive(Parser)]
#[command(version)]
struct Args {
    /// Address to listen on.
    #[arg(long, default_value = "127.0.0.1:8080")]
    listen: String,
    /// Service time added to every data response, in milliseconds.
    #[arg(long, default_value_t = 0)]
    latency_ms: u64,
    /// Name reported in the X-Origin header.
    #[arg(long, default_value = "origin")]
    name: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args = Args::parse();
    let listener = tokio::net::TcpListener::bind(&args.listen)
        .await
        .with_context(|| {
            format!(
                "cannot listen on {}; pass --listen with a free address",
                args.listen
            )
        })?;
    let origin = Origin::new(OriginConfig {
        name: args.name,
        latency: Duration::from_millis(args.latency_ms),
        clock: Arc::new(SystemClock),
        ..OriginConfig::default()
    });
    println!("origin-stub listening on http://{}", listener.local_addr()?);
    origin_stub::run(listener, origin, async {
        let _ = tokio::signal::ctrl_c().await;
    })
    .await?;
    Ok(())
}

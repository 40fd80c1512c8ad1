//! `token --emulator URL`: the time a running emulator's clock shows, so that a token minted
//! after `/__emulator/clock` moved it forward is not expired on arrival.

use std::time::{Duration, SystemTime};

use anyhow::Context;

/// Now on the emulator at `base` (its `GET /__emulator/clock`).
pub async fn emulator_now(base: &str) -> anyhow::Result<SystemTime> {
    let url = format!("{}/__emulator/clock", base.trim_end_matches('/'));
    let hint = || {
        format!(
            "cannot read the emulator's clock at {url}; is `edge-emulator serve` running there \
             (and, with --admin-token, reachable from here)?"
        )
    };
    let response = reqwest::Client::builder()
        .timeout(Duration::from_secs(5))
        .build()?
        .get(&url)
        .send()
        .await
        .with_context(hint)?;
    anyhow::ensure!(
        response.status().is_success(),
        "{}: {}",
        hint(),
        response.status()
    );
    let clock: serde_json::Value = response.json().await.with_context(hint)?;
    let now_ms = clock["now_ms"]
        .as_u64()
        .with_context(|| format!("{url} answered without now_ms: {clock}"))?;
    Ok(SystemTime::UNIX_EPOCH + Duration::from_millis(now_ms))
}

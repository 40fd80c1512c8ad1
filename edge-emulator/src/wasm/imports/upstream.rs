//! `upstream`: the PoP's way to its regional tier, hedging, and origin health.

use std::time::Duration;

use crate::bindings::edge::worker::upstream::Host;
use crate::bindings::types::{HedgedResponse, Request, Response};
use crate::cdn::pop::Hop;
use crate::wasm::convert;
use crate::wasm::state::GuestState;

impl GuestState {
    /// A hop's result as the guest receives it, with the regional hop in Server-Timing.
    fn answer(&mut self, hop: Hop, simulated: Duration) -> Result<Response, String> {
        self.request.upstream_real += hop.real;
        self.request.upstream_simulated += simulated;
        let response = hop.result?;
        let timing = format!(
            "regional;dur={:.1};desc=\"{}\"",
            hop.simulated.as_secs_f64() * 1000.0,
            self.pop.regional.name
        );
        let mut response = convert::response_to_wit(response);
        convert::prepend_server_timing(&mut response.headers, &timing);
        Ok(response)
    }
}

impl Host for GuestState {
    async fn fetch(&mut self, request: Request) -> wasmtime::Result<Result<Response, String>> {
        self.check_trap()?;
        let request = match convert::request_from_wit(request) {
            Ok(request) => request,
            Err(message) => return Ok(Err(message)),
        };
        let pop = self.pop.clone();
        let hop = pop.hop(request).await;
        let simulated = hop.simulated;
        Ok(self.answer(hop, simulated))
    }

    async fn fetch_hedged(
        &mut self,
        primary: Request,
        backup: Request,
        after_ms: u64,
    ) -> wasmtime::Result<Result<HedgedResponse, String>> {
        self.check_trap()?;
        let (primary, backup) = match (
            convert::request_from_wit(primary),
            convert::request_from_wit(backup),
        ) {
            (Ok(primary), Ok(backup)) => (primary, backup),
            (Err(message), _) | (_, Err(message)) => return Ok(Err(message)),
        };
        let pop = self.pop.clone();
        let hedged = pop
            .hop_hedged(primary, backup, Duration::from_millis(after_ms))
            .await;
        let backup_won = hedged.backup_won;
        Ok(self
            .answer(hedged.hop, hedged.simulated)
            .map(|response| HedgedResponse {
                response,
                backup_won,
            }))
    }

    fn origin_admit(&mut self, origin: String) -> wasmtime::Result<Result<(), u64>> {
        self.check_trap()?;
        Ok(self
            .pop
            .admit(&origin)
            .map_err(|wait| u64::try_from(wait.as_millis()).unwrap_or(u64::MAX)))
    }

    fn origin_report(&mut self, origin: String, ok: bool) -> wasmtime::Result<()> {
        self.check_trap()?;
        self.pop.report(&origin, ok);
        Ok(())
    }
}

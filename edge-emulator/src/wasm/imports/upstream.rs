//! `upstream`: the PoP's way to its regional tier, hedging, and origin health.

use std::time::Duration;

use crate::bindings::edge::worker::upstream::Host;
use crate::bindings::types::{HedgedResponse, Request, UpstreamResponse};
use crate::cdn::pop::Trip;
use crate::wasm::convert;
use crate::wasm::state::GuestState;

impl GuestState {
    /// A trip's result as the guest receives it: the response and the hops above.
    fn answer(&mut self, trip: Trip, simulated: Duration) -> Result<UpstreamResponse, String> {
        self.request.upstream_real += trip.real;
        self.request.upstream_simulated += simulated;
        let answer = trip.result?;
        Ok(UpstreamResponse {
            response: convert::response_to_wit(answer.response, &mut self.bodies),
            hops: answer.hops.into_iter().map(convert::hop_to_wit).collect(),
        })
    }
}

impl Host for GuestState {
    async fn fetch(
        &mut self,
        request: Request,
    ) -> wasmtime::Result<Result<UpstreamResponse, String>> {
        self.check_trap()?;
        let request = match convert::request_from_wit(request) {
            Ok(request) => request,
            Err(message) => return Ok(Err(message)),
        };
        let pop = self.pop.clone();
        let trip = pop.trip(request).await;
        let simulated = trip.simulated;
        Ok(self.answer(trip, simulated))
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
            .trip_hedged(primary, backup, Duration::from_millis(after_ms))
            .await;
        let backup_won = hedged.backup_won;
        Ok(self
            .answer(hedged.trip, hedged.simulated)
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

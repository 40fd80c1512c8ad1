//! Polls a future that is already complete.
//!
//! Why hand-written: inside the wasm component every port is a synchronous host import, so the
//! core's futures finish on their first poll and an executor would be dead weight in the guest.

use std::future::Future;
use std::pin::pin;
use std::task::{Context, Poll, Waker};

/// Returns the future's output if it completes on the first poll, `None` if it would wait.
pub fn now_or_never<F: Future>(future: F) -> Option<F::Output> {
    let mut context = Context::from_waker(Waker::noop());
    match pin!(future).poll(&mut context) {
        Poll::Ready(output) => Some(output),
        Poll::Pending => None,
    }
}

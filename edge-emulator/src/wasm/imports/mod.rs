//! The host side of the worker's imports, one file per WIT interface. Each only converts
//! types and calls the PoP (`cdn::pop`), which holds the behaviour.

mod body;
mod cache;
mod clock;
mod config;
mod log;
mod random;
mod upstream;

use crate::bindings::types;

use super::state::GuestState;

impl types::Host for GuestState {}

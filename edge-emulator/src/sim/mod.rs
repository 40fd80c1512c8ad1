//! `edge-emulator simulate`: replay a workload under a virtual clock and report what each
//! tier absorbed, what the origin still saw and what clients waited.

pub mod engine;
pub mod report;
pub mod scenario;
pub mod theory;
pub mod workload;

#[cfg(test)]
mod tests;

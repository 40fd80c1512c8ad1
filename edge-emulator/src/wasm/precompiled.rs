//! The worker component, compiled once per build rather than at every start: Cranelift takes
//! seconds on this component, loading a compiled artifact well under a millisecond (the
//! brief's figures). wasmtime's own disk cache needs its `cache` feature (zstd and a config
//! file); this is the same idea in a few lines, kept next to the component build.rs made.

use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::{Path, PathBuf};

use wasmtime::component::Component;
use wasmtime::Engine;

/// The component for `engine`: the cached artifact when one matches this component, this
/// wasmtime and this engine configuration, else compiled now (and cached when the build
/// folder is writable).
pub fn load(engine: &Engine, wasm: &[u8]) -> wasmtime::Result<Component> {
    let Some(path) = artifact_path(engine, wasm) else {
        return Component::new(engine, wasm);
    };
    if let Ok(bytes) = std::fs::read(&path) {
        if let Ok(component) = deserialize(engine, &bytes) {
            return Ok(component);
        }
    }
    let component = Component::new(engine, wasm)?;
    if let Ok(bytes) = component.serialize() {
        // Write then rename, so a concurrent start never reads half a file.
        let partial = path.with_extension(format!("{}.partial", std::process::id()));
        if std::fs::write(&partial, bytes).is_ok() && std::fs::rename(&partial, &path).is_err() {
            let _ = std::fs::remove_file(&partial);
        }
    }
    Ok(component)
}

/// `<folder of the built component>/worker-<hash>.cwasm`, the hash covering the component's
/// bytes and everything wasmtime says a compiled artifact depends on.
fn artifact_path(engine: &Engine, wasm: &[u8]) -> Option<PathBuf> {
    if std::env::var_os("EDGE_EMULATOR_NO_ARTIFACT_CACHE").is_some() {
        return None;
    }
    let folder = Path::new(env!("EDGE_WORKER_COMPONENT")).parent()?;
    if !folder.is_dir() {
        return None;
    }
    let mut hasher = DefaultHasher::new();
    wasm.hash(&mut hasher);
    engine.precompile_compatibility_hash().hash(&mut hasher);
    Some(folder.join(format!("worker-{:016x}.cwasm", hasher.finish())))
}

/// Loads an artifact this program wrote.
#[allow(unsafe_code)]
fn deserialize(engine: &Engine, bytes: &[u8]) -> wasmtime::Result<Component> {
    // SAFETY: wasmtime runs deserialized code as it is, so the bytes must come from
    // `Component::serialize` of a compatible engine. They do: the file lives in this build's
    // own target folder (as trusted as the binary built there), its name carries the hash of
    // the component and of the engine's compatibility settings, and wasmtime checks the
    // header (version, target, configuration) again before loading.
    unsafe { Component::deserialize(engine, bytes) }
}

//! Builds the edge worker's wasm component so that `cargo build -p edge-emulator` (and so
//! `cargo run` / `cargo test`) is the only command a user needs.
//!
//! The guest is built by a nested cargo into `target/guest` (its own target dir, so it does
//! not wait on the outer build's lock). The wasm target is installed with rustup when missing,
//! because `RUSTUP_AUTO_INSTALL=0` machines do not do it for a rust-toolchain file.

use std::env;
use std::path::{Path, PathBuf};
use std::process::Command;

const GUEST_TARGET: &str = "wasm32-wasip2";

fn main() {
    let manifest_dir = PathBuf::from(env::var("CARGO_MANIFEST_DIR").expect("set by cargo"));
    let root = manifest_dir
        .parent()
        .expect("edge-emulator lives in the workspace root");
    for watched in [
        "edge-worker/src",
        "edge-worker/Cargo.toml",
        "edge-worker/guest/src",
        "edge-worker/guest/Cargo.toml",
        "wit",
        "Cargo.lock",
    ] {
        println!("cargo:rerun-if-changed={}", root.join(watched).display());
    }
    println!("cargo:rerun-if-env-changed=EDGE_GUEST_SYMBOLS");
    ensure_target(GUEST_TARGET);
    // Profiling (BENCHMARKS.md): keep the guest's function names for wasmtime's perfmap.
    let strip = if env::var_os("EDGE_GUEST_SYMBOLS").is_some() {
        "false"
    } else {
        "true"
    };

    let target_dir = root.join("target").join(if strip == "true" {
        "guest"
    } else {
        "guest-symbols"
    });
    let cargo = env::var("CARGO").unwrap_or_else(|_| "cargo".into());
    let mut command = Command::new(cargo);
    command
        .current_dir(root)
        .args([
            "build",
            "--quiet",
            "--release",
            "-p",
            "edge-worker-guest",
            "--target",
            GUEST_TARGET,
        ])
        .arg("--target-dir")
        .arg(&target_dir)
        // The guest is built for speed and size whatever profile the host uses.
        .env("CARGO_PROFILE_RELEASE_DEBUG", "false")
        .env("CARGO_PROFILE_RELEASE_STRIP", strip)
        .env("CARGO_PROFILE_RELEASE_CODEGEN_UNITS", "1")
        // 64×64→128-bit multiplies and SIMD: the elliptic-curve and RSA arithmetic of JWT
        // verification is several times faster with them (the host enables both).
        .env(
            "CARGO_TARGET_WASM32_WASIP2_RUSTFLAGS",
            "-Ctarget-feature=+wide-arithmetic,+simd128",
        );
    // Flags meant for the host (coverage, clippy's wrapper, target-cpu=native) must not leak
    // into the wasm build.
    for var in [
        "RUSTFLAGS",
        "CARGO_ENCODED_RUSTFLAGS",
        "CARGO_BUILD_RUSTFLAGS",
        "RUSTC_WORKSPACE_WRAPPER",
        "RUSTC_WRAPPER",
        "CARGO_BUILD_TARGET",
        "CARGO_TARGET_DIR",
        "CARGO_LLVM_COV",
    ] {
        command.env_remove(var);
    }
    let status = command
        .status()
        .expect("could not run cargo to build the wasm guest");
    if !status.success() {
        panic!("building the edge-worker wasm component failed (see the errors above)");
    }
    let wasm = target_dir
        .join(GUEST_TARGET)
        .join("release")
        .join("edge_worker_guest.wasm");
    assert!(
        wasm.exists(),
        "the guest build did not produce {}",
        wasm.display()
    );
    println!("cargo:rustc-env=EDGE_WORKER_COMPONENT={}", wasm.display());
}

/// Installs a rustup target if the active toolchain lacks it.
fn ensure_target(target: &str) {
    let rustc = env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let sysroot = Command::new(&rustc)
        .args(["--print", "sysroot"])
        .output()
        .ok()
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string());
    let installed = sysroot
        .map(|root| {
            Path::new(&root)
                .join("lib/rustlib")
                .join(target)
                .join("lib")
                .exists()
        })
        .unwrap_or(false);
    if installed {
        return;
    }
    println!("cargo:warning=installing the {target} target with rustup (one time)");
    let status = Command::new("rustup")
        .args(["target", "add", target])
        .status();
    match status {
        Ok(s) if s.success() => {}
        _ => panic!(
            "the {target} target is missing and `rustup target add {target}` failed; \
             run it by hand (it needs access to the Rust distribution server) and build again"
        ),
    }
}

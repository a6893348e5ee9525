//! Link the `inlet` binary for a smaller resident footprint.
//!
//! The binary holds 56 MB of code, DuckDB's for the most part, of which a sync runs about
//! 6.5 MB spread over all of it. The kernel maps code 64 KB around every page a process
//! touches, so a sync used to hold 30 MB of code pages. Two linker options cut that:
//!
//! - `--symbol-ordering-file` places the functions listed in `link/hot-symbols.txt` (the ones
//!   syncs into DuckDB and PostgreSQL, `state show` and `demo` run; `scripts/hot-symbols.sh`
//!   regenerates it) next to each other, so the pages they touch are few. Symbols the list
//!   names but the build lacks are skipped: a stale list costs memory, never correctness.
//! - `-z pack-relative-relocs` stores the 94,000 relocations of a position-independent binary
//!   in a few kilobytes instead of 2.3 MB read at every start (glibc 2.36 or later).
//!
//! Both are options of rustc's default linker for x86_64 Linux, its own lld. Other targets,
//! and builds that name a linker of their own (`linker` in Cargo's configuration, `-C linker`
//! or `-fuse-ld` in `RUSTFLAGS`), link as before.

use std::env;
use std::path::Path;

fn main() {
    let list = Path::new(&env::var("CARGO_MANIFEST_DIR").expect("cargo sets CARGO_MANIFEST_DIR"))
        .join("link")
        .join("hot-symbols.txt");
    println!("cargo::rerun-if-changed={}", list.display());
    println!("cargo::rerun-if-env-changed=RUSTC_LINKER");
    let flags = env::var("CARGO_ENCODED_RUSTFLAGS").unwrap_or_default();
    let own_linker = env::var_os("RUSTC_LINKER").is_some() || flags.contains("linker") || flags.contains("fuse-ld");
    if env::var("TARGET").as_deref() != Ok("x86_64-unknown-linux-gnu") || own_linker {
        return;
    }
    for arg in [
        "-Xlinker".to_owned(),
        format!("--symbol-ordering-file={}", list.display()),
        "-Wl,--no-warn-symbol-ordering".to_owned(),
        "-Wl,-z,pack-relative-relocs".to_owned(),
    ] {
        println!("cargo::rustc-link-arg-bins={arg}");
    }
}

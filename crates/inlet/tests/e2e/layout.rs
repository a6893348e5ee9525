//! The binary is linked as `build.rs` means it to be: the functions a sync runs
//! (`link/hot-symbols.txt`) lie next to each other, so a sync maps few pages of code. Linux on
//! x86_64 only, where `build.rs` orders them.

use std::collections::HashMap;
use std::process::Command;

/// Address and size of each function the binary defines, as `nm` lists them.
fn functions(binary: &str) -> HashMap<String, (u64, u64)> {
    let out = Command::new("nm")
        .args(["--defined-only", "--print-size", binary])
        .output()
        .expect("nm (GNU binutils) lists the binary's symbols");
    assert!(out.status.success(), "nm failed: {}", String::from_utf8_lossy(&out.stderr));
    String::from_utf8(out.stdout)
        .expect("nm prints text")
        .lines()
        .filter_map(|line| match line.split_whitespace().collect::<Vec<_>>()[..] {
            [address, size, "t" | "T" | "w" | "W", name] => {
                Some((name.to_owned(), (u64::from_str_radix(address, 16).ok()?, u64::from_str_radix(size, 16).ok()?)))
            }
            _ => None,
        })
        .collect()
}

#[test]
fn the_functions_a_sync_runs_lie_together() {
    let defined = functions(env!("CARGO_BIN_EXE_inlet"));
    let listed: Vec<&str> = include_str!("../../link/hot-symbols.txt").lines().collect();

    // DuckDB's names do not depend on the build profile, Rust's hashed ones do: DuckDB's tell
    // whether the list is stale.
    let duckdb: Vec<&str> = listed.iter().copied().filter(|name| name.starts_with("_ZN6duckdb")).collect();
    let missing = duckdb.iter().filter(|name| !defined.contains_key(**name)).count();
    assert!(
        missing * 10 < duckdb.len(),
        "{missing} of the {} DuckDB functions in link/hot-symbols.txt are not in the binary: \
         regenerate the list with scripts/hot-symbols.sh",
        duckdb.len()
    );

    let placed: Vec<(u64, u64)> = listed.iter().filter_map(|name| defined.get(*name).copied()).collect();
    let size: u64 = placed.iter().map(|(_, size)| size).sum();
    let start = placed.iter().map(|(address, _)| address).min().expect("listed functions are defined");
    let end = placed.iter().map(|(address, size)| address + size).max().expect("listed functions are defined");
    assert!(
        (end - start) * 2 < size * 3,
        "the {} listed functions ({size} bytes) are spread over {} bytes: build.rs did not order them",
        placed.len(),
        end - start
    );
}

//! The `inlet` binary.

/// mimalloc instead of glibc's allocator: records are parsed on the runtime's threads and
/// freed on the writer's, which left glibc holding freed memory in per-thread arenas (a
/// 1,000,000-user sync with pages of 50 peaked at twice the memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    // mimalloc asks for transparent huge pages, and a 2 MiB page stays resident while any of
    // it is in use: without them a 1,000,000-user sync peaks 35 MB lower, no slower
    // (docs/performance.md). Failing to turn them off (an old kernel) costs only that memory.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    inlet::cli::main()
}

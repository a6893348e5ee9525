//! The `inlet` binary.

/// mimalloc instead of glibc's allocator: records are parsed on the runtime's threads and
/// freed on the writer's, which left glibc holding freed memory in per-thread arenas (a
/// 1,000,000-user sync with pages of 50 peaked at twice the memory).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    inlet::cli::main()
}

//! The `inlet` binary.

/// jemalloc instead of glibc's allocator: records are parsed on the runtime's threads and
/// freed on the writer's, which left glibc holding freed memory in per-thread arenas (a
/// 1,000,000-user sync with pages of 50 peaked at twice the memory).
#[cfg(not(target_env = "msvc"))]
#[global_allocator]
static ALLOCATOR: tikv_jemallocator::Jemalloc = tikv_jemallocator::Jemalloc;

/// jemalloc's settings, read when it starts: a thread of its own returns freed pages to the
/// system 50 ms after they fall idle, so the threads that parse and write never wait on it;
/// they are released at once (`MADV_DONTNEED`), not first marked free (`MADV_FREE`), which leaves
/// them counted as resident until the kernel needs them (docs/performance.md, thirteenth round).
#[cfg(not(target_env = "msvc"))]
#[allow(unsafe_code)] // jemalloc looks this symbol up by name; it must hold a C string.
#[unsafe(export_name = "_rjem_malloc_conf")]
static JEMALLOC_CONF: &u8 = &b"background_thread:true,dirty_decay_ms:50,muzzy_decay_ms:0\0"[0];

fn main() -> std::process::ExitCode {
    // A 2 MiB transparent huge page stays resident while any of it is in use: without them a
    // 1,000,000-user sync peaked 35 MB lower, no slower (docs/performance.md). Failing to turn
    // them off (an old kernel) costs only that memory.
    #[cfg(target_os = "linux")]
    let _ = rustix::thread::disable_transparent_huge_pages(true);
    inlet::cli::main()
}

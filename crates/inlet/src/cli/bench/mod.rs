//! `inlet bench`: benchmarks that print figures, run on this machine against the real parts.

mod playground;

use clap::Subcommand;

use super::{Exit, Failure};

/// `inlet bench …`
#[derive(Subcommand, Debug)]
pub enum BenchCommand {
    /// Records served per second over loopback (offset and keyset, pages of 50 and 1,000), and
    /// start-up time and memory for large datasets.
    Playground(playground::PlaygroundBench),
}

/// Runs a benchmark.
pub fn run(command: BenchCommand) -> Result<Exit, Failure> {
    match command {
        // One client thread: the other core is the server's.
        BenchCommand::Playground(args) => {
            let client = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .map_err(|e| Failure::from(anyhow::Error::new(e)))?;
            client.block_on(playground::run(args))
        }
    }
}

/// A small seeded generator: benchmark choices are reproducible.
pub struct Lcg(pub u64);

impl Lcg {
    /// Uniform in `0..n`.
    pub fn below(&mut self, n: u64) -> u64 {
        self.0 = self.0.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 33) % n.max(1)
    }
}

/// A TCP port free at this instant on 127.0.0.1.
pub fn free_port() -> Result<u16, Failure> {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").map_err(|e| Failure::from(anyhow::Error::new(e)))?;
    Ok(listener.local_addr().map_err(|e| Failure::from(anyhow::Error::new(e)))?.port())
}

/// Resident and peak resident memory of process `pid`, in KiB (`VmRSS`, `VmHWM`; Linux).
pub fn peak_memory(pid: u32) -> Option<(u64, u64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let field =
        |name: &str| status.lines().find(|l| l.starts_with(name))?.split_whitespace().nth(1)?.parse::<u64>().ok();
    Some((field("VmRSS:")?, field("VmHWM:")?))
}

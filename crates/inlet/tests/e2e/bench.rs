//! `inlet bench sync` runs every phase against the real playground and warehouse, checks
//! that each moved every user, and prints its table; its hidden measuring child refuses to
//! guess where to write.

use std::path::Path;
use std::process::{Command, Output};

/// `inlet <args>` run from `dir`, which is also its temporary directory.
fn inlet(dir: &Path, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_inlet"))
        .args(args)
        .current_dir(dir)
        .env("TMPDIR", dir)
        .output()
        .expect("inlet runs")
}

#[test]
fn bench_sync_prints_one_row_of_figures_per_dataset_and_warehouse() {
    let dir = tempfile::tempdir().unwrap();
    let out =
        inlet(dir.path(), &["bench", "sync", "--users", "300", "--page-sizes", "50,1000", "--destinations", "duckdb"]);
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(out.status.success(), "{stdout}\n{}", String::from_utf8_lossy(&out.stderr));
    let rows: Vec<Vec<&str>> = stdout
        .lines()
        .map(|line| line.split_whitespace().collect::<Vec<_>>())
        .filter(|fields| fields.first() == Some(&"300"))
        .collect();
    assert_eq!(rows.len(), 2, "one row per page size:\n{stdout}");
    for (fields, page) in rows.iter().zip(["50", "1000"]) {
        assert_eq!(fields[1..3], [page, "duckdb"], "{stdout}");
        // fetch r/s, MB, load r/s, MB, sync r/s, MB, sync/limit, nothing, "ms"
        assert_eq!(fields.len(), 12, "{stdout}");
        for rate in [fields[3], fields[5], fields[7]] {
            assert!(rate.replace(',', "").parse::<u64>().is_ok_and(|r| r > 0), "a rate, not {rate:?}: {stdout}");
        }
        let ratio: f64 = fields[9].parse().unwrap_or_else(|_| panic!("a ratio, not {:?}: {stdout}", fields[9]));
        assert!(ratio > 0.0, "{stdout}");
        assert!(fields[10].parse::<u64>().is_ok() && fields[11] == "ms", "{stdout}");
    }
}

#[test]
fn a_measurement_that_writes_names_the_flags_it_needs() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("offset.json");
    std::fs::write(&config, r#"{"strategy": "offset", "base_url": "http://127.0.0.1:9/pagination/offset"}"#).unwrap();
    let config = config.display().to_string();
    let args = ["bench", "measure", "--phase", "load", "--config", &config, "--users", "10", "--page-size", "5"];
    let out = inlet(dir.path(), &args);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "{stderr}");
    assert!(stderr.contains("--phase load") && stderr.contains("--warehouse FILE or --postgres URL"), "{stderr}");
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 1, "nothing written beside the configuration");
}

//! Crash safety (issue 15, item 14): a child process writing batches of customers to a SQLite
//! file is killed with SIGKILL at random moments, again and again. After each kill the file
//! opens, holds only whole batches, holds every batch the child reported committed, and its
//! audit chain verifies.
//!
//! The test binary is its own child: run with `GUANXI_CRASH_CHILD=<path>` it writes batches
//! until killed, printing the running total after each commit.

use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use guanxi::{Actor, Crm, CustomerFilter, NewContact, NewCustomer, SqliteStore};

const BATCH: u64 = 50;
const KILLS: u32 = 12;

fn crm_at(path: &str) -> Crm {
    Crm::builder().store(std::sync::Arc::new(SqliteStore::open(path).unwrap())).build()
}

fn alice() -> Actor {
    Actor::user("alice").unwrap()
}

/// The child: batches until killed.
fn child(path: &str) -> ! {
    let crm = crm_at(path);
    let mut total = crm.customers().count(&alice(), &CustomerFilter::default()).unwrap();
    loop {
        let batch: Vec<NewCustomer> = (0..BATCH)
            .map(|i| {
                let n = total + i;
                NewCustomer::new(format!("崩溃测试客户{n}"))
                    .tag("crash")
                    .contact(NewContact::new("张伟").phone(format!("139{:08}", n % 100_000_000)))
            })
            .collect();
        crm.customers().create_many(&alice(), batch).unwrap();
        total += BATCH;
        println!("{total}");
    }
}

#[test]
fn killed_mid_batch_loses_nothing_committed_and_keeps_no_partial_batch() {
    if let Ok(path) = std::env::var("GUANXI_CRASH_CHILD") {
        child(&path);
    }
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db").to_string_lossy().into_owned();
    let exe = std::env::current_exe().unwrap();
    // A deterministic spread of kill delays (no RNG crate needed): 5 ms to ~300 ms.
    let mut delay_ms = 5u64;
    for round in 0..KILLS {
        let mut child = Command::new(&exe)
            .args(["--exact", "killed_mid_batch_loses_nothing_committed_and_keeps_no_partial_batch", "--nocapture"])
            .env("GUANXI_CRASH_CHILD", &path)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .unwrap();
        let stdout = child.stdout.take().unwrap();
        // Read acknowledgements on a thread; kill after the delay (after the first commit, so
        // every round writes something).
        let (tx, rx) = std::sync::mpsc::channel::<u64>();
        let reader = std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { break };
                if let Ok(n) = line.trim().parse::<u64>() {
                    let _ = tx.send(n);
                }
            }
        });
        let mut acknowledged = rx.recv_timeout(Duration::from_secs(60)).expect("the child never committed");
        let deadline = Instant::now() + Duration::from_millis(delay_ms);
        while Instant::now() < deadline {
            if let Ok(n) = rx.recv_timeout(Duration::from_millis(1)) {
                acknowledged = n;
            }
        }
        child.kill().unwrap(); // SIGKILL on Unix
        child.wait().unwrap();
        reader.join().unwrap();
        while let Ok(n) = rx.try_recv() {
            acknowledged = n;
        }
        delay_ms = (delay_ms * 7 + 13) % 300 + 5;

        let crm = crm_at(&path);
        let stored = crm.customers().count(&alice(), &CustomerFilter::default()).unwrap();
        assert_eq!(stored % BATCH, 0, "round {round}: a partial batch survived ({stored} customers)");
        assert!(stored >= acknowledged, "round {round}: {stored} stored, but {acknowledged} were reported committed");
        let check = crm.audit().verify(&alice()).unwrap();
        assert!(check.is_intact(), "round {round}: the audit chain is broken: {check:?}");
    }
}

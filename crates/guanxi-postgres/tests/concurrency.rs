//! What only a server shows: concurrent writers keep one gap-free chain in commit order,
//! serialization failures are retried, and calls from inside a tokio runtime work.

use guanxi_core::changelog::verify_chain;
use guanxi_core::prelude::*;
use guanxi_core::testing::conformance::sample_customer;
use guanxi_core::{
    ChangeAction, ChangeLogEntry, ChangeLogQuery, Changes, CustomerFilter, Deleted, EntityKind, UserId, Write,
};

mod common;
use common::named as store;

fn entry(n: u64) -> ChangeLogEntry {
    let c = sample_customer(n);
    ChangeLogEntry {
        seq: 0,
        at: c.created_at,
        actor: UserId::new("writer").unwrap(),
        entity: EntityKind::Customer,
        entity_id: c.id.to_string(),
        customer_id: Some(c.id),
        action: ChangeAction::Create,
        changes: vec![],
        prev_hash: String::new(),
        hash: String::new(),
    }
}

#[test]
fn concurrent_writers_keep_one_gap_free_chain() {
    let Some(store) = store("chain") else { return };
    std::thread::scope(|s| {
        for t in 0..4u64 {
            let store = &store;
            s.spawn(move || {
                for i in 0..25u64 {
                    let n = 1_000 + t * 100 + i;
                    let changes = Changes {
                        customers: vec![Write::Insert(sample_customer(n))],
                        change_log: vec![entry(n), entry(n)],
                        ..Default::default()
                    };
                    store.apply(&changes).unwrap();
                }
            });
        }
    });
    let log = store.change_log(&ChangeLogQuery::default()).unwrap();
    assert_eq!(log.len(), 200);
    assert!(log.iter().enumerate().all(|(i, e)| e.seq == i as u64 + 1), "gap-free seq");
    assert!(verify_chain(&log).is_intact(), "one chain in commit order");
    assert_eq!(store.count_customers(&CustomerFilter::default().deleted(Deleted::Include)).unwrap(), 100);
    store.drop_schema().unwrap();
}

#[test]
fn serialization_failures_are_retried_invisibly() {
    let Some(store) = store("retry") else { return };
    let store = store.with_injected_serialization_failures();
    store
        .apply(&Changes {
            customers: vec![Write::Insert(sample_customer(1))],
            change_log: vec![entry(1)],
            ..Default::default()
        })
        .unwrap();
    assert_eq!(store.retries(), 1, "the first attempt failed and ran again");
    assert_eq!(store.change_log(&ChangeLogQuery::default()).unwrap().len(), 1, "written once");
    store.drop_schema().unwrap();
}

#[test]
fn calls_from_inside_a_tokio_runtime_work() {
    let Some(store) = store("tokio") else { return };
    let runtime = tokio::runtime::Builder::new_multi_thread().worker_threads(2).build().unwrap();
    let n = runtime.block_on(async {
        store.apply(&Changes { customers: vec![Write::Insert(sample_customer(1))], ..Default::default() }).unwrap();
        store.count_customers(&CustomerFilter::default().deleted(Deleted::Include)).unwrap()
    });
    assert_eq!(n, 1);
    // A write session runs its work on the caller's thread: refused there, with the way out.
    let refused = runtime.block_on(async { store.write_session(&mut |_| Ok(())) });
    assert!(
        matches!(refused, Err(guanxi_core::Error::InvalidState(ref m)) if m.contains("spawn_blocking")),
        "{refused:?}"
    );
    store.drop_schema().unwrap();
}

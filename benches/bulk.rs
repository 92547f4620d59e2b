//! Bulk loads of deals and tickets (issue 18, item 2): `opportunities().create_many` and
//! `tickets().create_many` against one `create` per record — what a loader had to do before
//! (8,800 deals of the CRM Sales data set took 23,811 calls from Python) — into a fresh SQLite
//! file per sample, in the same run. Deals are shaped like the data set's: a quarter still
//! prospecting, a quarter engaged, a quarter won and a quarter lost, so most carry past moves
//! (`PastMove`) in the batch and need `move_to` calls one by one.
//!
//! `GUANXI_BULK_ROWS` sets how many records a sample loads (default 8,800, the data set's size).
#![allow(missing_docs, clippy::unwrap_used, clippy::expect_used, clippy::print_stderr)]

use std::hint::black_box;
use std::time::Duration;

use criterion::{BatchSize, Criterion, criterion_group, criterion_main};
use guanxi::chrono::{DateTime, Duration as Days, Utc};
use guanxi::sales::{NewOpportunity, PastMove};
use guanxi::service::{Agent, AssignStrategy, NewTicket, Priority, ServiceSettings, SkillGroup, TicketKind};
use guanxi::{Actor, Crm, StageChange, UserId};
use rust_decimal::Decimal;

fn rows() -> usize {
    std::env::var("GUANXI_BULK_ROWS").ok().and_then(|v| v.parse().ok()).unwrap_or(8_800)
}

fn actor() -> Actor {
    Actor::user("loader").unwrap()
}

fn opened() -> DateTime<Utc> {
    "2024-01-01T00:00:00Z".parse().unwrap()
}

/// The moves deal `i` made: none, engaged, engaged then won, engaged then lost.
fn moves(i: usize) -> Vec<PastMove> {
    let engaged = PastMove::new("intent", opened() + Days::days(3));
    let closed = opened() + Days::days(40);
    match i % 4 {
        0 => vec![],
        1 => vec![engaged],
        2 => vec![engaged, PastMove::new("won", closed)],
        _ => vec![engaged, PastMove::new("lost", closed).lost_reason("价格偏高")],
    }
}

/// Deal `i` as it opened (its moves are the caller's).
fn deal(i: usize) -> NewOpportunity {
    NewOpportunity::new(&format!("DEAL{i:06}"))
        .currency("USD")
        .amount(Decimal::from(1_000 + i % 5_000))
        .opened_at(opened())
}

fn ticket(i: usize) -> NewTicket {
    let priority = [Priority::Low, Priority::Medium, Priority::High, Priority::Urgent][i % 4];
    NewTicket::new(&format!("Product setup {i}"), TicketKind::Fault, priority)
}

/// A fresh file with a round-robin desk of four agents, so every ticket is routed and assigned.
fn fresh() -> (tempfile::TempDir, Crm) {
    let dir = tempfile::tempdir().unwrap();
    let crm = Crm::open(dir.path().join("crm.db")).unwrap();
    let mut group = SkillGroup::new("l1", "一线", AssignStrategy::RoundRobin);
    for agent in ["amy", "bo", "chen", "dana"] {
        group = group.agent(Agent::new(UserId::new(agent).unwrap(), 0, &[]));
    }
    let settings = ServiceSettings { groups: vec![group], default_group: Some("l1".into()), ..Default::default() };
    crm.service().set_settings(&actor(), settings).unwrap();
    (dir, crm)
}

fn bench(c: &mut Criterion) {
    let n = rows();
    let mut g = c.benchmark_group(format!("bulk_{n}"));
    g.sample_size(10).measurement_time(Duration::from_secs(20)).warm_up_time(Duration::from_secs(1));
    g.bench_function("opportunities_create_many", |b| {
        b.iter_batched(
            fresh,
            |(_dir, crm)| {
                let batch = (0..n).map(|i| moves(i).into_iter().fold(deal(i), NewOpportunity::moved)).collect();
                black_box(crm.sales().opportunities().create_many(&actor(), batch).unwrap())
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("opportunities_create_one_by_one", |b| {
        b.iter_batched(
            fresh,
            |(_dir, crm)| {
                let deals = crm.sales().opportunities();
                for i in 0..n {
                    let mut o = deals.create(&actor(), deal(i)).unwrap();
                    for m in moves(i) {
                        let change = StageChange { lost_reason: m.lost_reason, at: Some(m.at) };
                        o = deals.move_to(&actor(), o.id, o.version, &m.stage, change).unwrap();
                    }
                    black_box(o);
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("tickets_create_many", |b| {
        b.iter_batched(
            fresh,
            |(_dir, crm)| {
                black_box(crm.service().tickets().create_many(&actor(), (0..n).map(ticket).collect()).unwrap())
            },
            BatchSize::PerIteration,
        )
    });
    g.bench_function("tickets_create_one_by_one", |b| {
        b.iter_batched(
            fresh,
            |(_dir, crm)| {
                for i in 0..n {
                    black_box(crm.service().tickets().create(&actor(), ticket(i)).unwrap());
                }
            },
            BatchSize::PerIteration,
        )
    });
    g.finish();
}

criterion_group!(benches, bench);
criterion_main!(benches);

//! The tickets import (the `tickets` example) against an independent calculation over the CSV
//! written here: tickets per status, CSAT per ticket type, first-response and resolution
//! times (the desk works around the clock, so business time is wall time); and a file with bad
//! rows, each reported with its line and reason while the good rows are imported.

use std::collections::BTreeMap;
use std::path::Path;
use std::sync::Arc;

use guanxi::chrono::{DateTime, NaiveDateTime, Utc};
use guanxi::rust_decimal::Decimal;
use guanxi::service::{DurationStats, ServiceQuery, TicketStatus};
use guanxi::{Actor, Crm, FixedClock};

struct Row {
    status: String,
    kind: String,
    rating: Option<u8>,
    first_response: Option<DateTime<Utc>>,
    resolved: Option<DateTime<Utc>>,
}

fn rows(path: &Path) -> Vec<Row> {
    let bytes = std::fs::read(path).unwrap();
    assert_eq!(&bytes[..3], b"\xef\xbb\xbf", "the copy keeps its byte-order mark");
    let mut r = csv::Reader::from_reader(&bytes[3..]);
    let t = |s: &str| (!s.is_empty()).then(|| NaiveDateTime::parse_from_str(s, "%m/%d/%Y %H:%M").unwrap().and_utc());
    r.records()
        .map(|rec| {
            let rec = rec.unwrap();
            Row {
                status: rec[10].to_owned(),
                kind: rec[7].to_owned(),
                rating: rec[16].parse::<f64>().ok().map(|v| v as u8),
                first_response: t(&rec[14]),
                resolved: t(&rec[15]),
            }
        })
        .collect()
}

fn stats(mut v: Vec<i64>) -> (u64, i64, i64, i64) {
    v.sort();
    let n = v.len();
    let median = if n % 2 == 1 { v[n / 2] } else { (v[n / 2 - 1] + v[n / 2]) / 2 };
    let p90 = v[((n as f64 * 0.9).ceil() as usize).max(1) - 1];
    (n as u64, v.iter().sum::<i64>() / n as i64, median, p90)
}

fn of(s: DurationStats) -> (u64, i64, i64, i64) {
    (s.count, s.mean_secs.unwrap(), s.median_secs.unwrap(), s.p90_secs.unwrap())
}

#[test]
fn import_matches_an_independent_calculation() {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tickets_first_1000.csv");
    let expected = rows(&path);
    let records = guanxi_examples::tickets::read(&path).unwrap();
    let as_of = guanxi_examples::tickets::latest_instant(&records).unwrap();
    let pg = guanxi_tests::postgres("tickets");
    let mut stores: Vec<(&str, guanxi::DynStore)> = vec![("memory", Arc::new(guanxi::MemoryStore::new()))];
    stores.extend(pg.as_ref().map(|pg| ("postgres", pg.store.clone() as guanxi::DynStore)));
    for (backend, store) in stores {
        let crm = Crm::builder().store(store).clock(Arc::new(FixedClock::at(as_of))).build();
        import_matches_on(backend, &crm, &expected, &records, as_of);
    }
}

fn import_matches_on(
    backend: &str,
    crm: &Crm,
    expected: &[Row],
    records: &[(usize, guanxi_examples::tickets::Row)],
    as_of: guanxi::chrono::DateTime<guanxi::chrono::Utc>,
) {
    let analyst = Actor::user("analyst").unwrap();
    let imported = guanxi_examples::tickets::import(crm, &analyst, records).unwrap();
    assert_eq!((imported.tickets, imported.rejected.len()), (1000, 0), "{backend}");
    let r = crm.service().report(&analyst, &ServiceQuery::default().at(as_of)).unwrap();

    // Volume by status.
    let mut by_status: BTreeMap<TicketStatus, u64> = BTreeMap::new();
    for row in expected {
        let s = match row.status.as_str() {
            "Open" => TicketStatus::Assigned,
            "Pending Customer Response" => TicketStatus::PendingCustomer,
            "Closed" => TicketStatus::Closed,
            other => panic!("status {other}"),
        };
        *by_status.entry(s).or_default() += 1;
    }
    assert_eq!(r.by_status, by_status.into_iter().collect::<Vec<_>>());

    // CSAT by ticket type: mean and the share of 4–5, to 4 places.
    let mut by_type: BTreeMap<&str, Vec<u8>> = BTreeMap::new();
    for row in expected.iter().filter(|r| r.rating.is_some()) {
        by_type.entry(&row.kind).or_default().push(row.rating.unwrap());
    }
    let got: Vec<(String, u64, Decimal, Decimal)> = r
        .csat_by_category
        .iter()
        .map(|k| (k.key.clone(), k.csat.responses, k.csat.mean.unwrap(), k.csat.satisfied_rate.unwrap()))
        .collect();
    let want: Vec<(String, u64, Decimal, Decimal)> = by_type
        .iter()
        .map(|(k, v)| {
            let n = Decimal::from(v.len());
            let sum: u32 = v.iter().map(|x| u32::from(*x)).sum();
            let good = v.iter().filter(|x| **x >= 4).count();
            (
                k.to_string(),
                v.len() as u64,
                (Decimal::from(sum) / n).round_dp(4).normalize(),
                (Decimal::from(good) / n).round_dp(4).normalize(),
            )
        })
        .collect();
    assert_eq!(got, want);
    assert_eq!(r.csat.responses, expected.iter().filter(|r| r.rating.is_some()).count() as u64);

    // Times: created at the earliest recorded instant, so first response takes
    // max(0, response − resolution) and resolution max(0, resolution − response).
    let secs = |a: DateTime<Utc>, b: DateTime<Utc>| (b - a).num_seconds().max(0);
    let fr: Vec<i64> =
        expected.iter().filter_map(|r| r.first_response.map(|f| r.resolved.map_or(0, |res| secs(res, f)))).collect();
    let res: Vec<i64> = expected.iter().filter_map(|r| Some(secs(r.first_response?, r.resolved?))).collect();
    assert_eq!(of(r.first_response), stats(fr));
    assert_eq!(of(r.resolution), stats(res));
    assert_eq!(r.resolved, expected.iter().filter(|r| r.status == "Closed").count() as u64);
    assert_eq!(r.reopen_rate, Some(Decimal::ZERO));
}

#[test]
fn bad_rows_are_reported_and_good_rows_imported() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.csv");
    let src =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("data/tickets_first_1000.csv")).unwrap();
    let mut lines = src.split("\r\n");
    let header = lines.next().unwrap();
    let good = "9001,A,a@example.com,30,Male,Dell XPS,3/22/2021,Technical issue,Network problem,It drops.,Closed,Rebooted,High,Email,6/1/2023 10:00,6/1/2023 12:30,5";
    let body = [
        good,
        "9002,B,b@example.com,30,Male,Dell XPS,3/22/2021,Technical issue,Network problem,x,Open,,Blocker,Email,,,",
        "9003,C,c@example.com,30,Male,Dell XPS,3/22/2021,Technical issue,Network problem,x,Closed,y,Low,Email,13/45/2023 10:00,6/1/2023 12:30,3",
        "9004,D,d@example.com,30,Male,Dell XPS,3/22/2021,Technical issue,Network problem,x,Closed,y,Low,Email,6/1/2023 10:00,,3",
        "9005,E,e@example.com,30,Male,Dell XPS,3/22/2021,Technical issue,Network problem,x,Closed,y,Low,Email,6/1/2023 10:00,6/1/2023 11:00,7",
        ",,,,,,,,,,,,,,,,",
    ];
    std::fs::write(&path, format!("\u{feff}{header}\r\n{}\r\n", body.join("\r\n"))).unwrap();
    let records = guanxi_examples::tickets::read(&path).unwrap();
    let clock = Arc::new(FixedClock::at("2023-06-02T00:00:00Z".parse().unwrap()));
    let crm = Crm::builder().clock(clock).build();
    let analyst = Actor::user("analyst").unwrap();
    let imported = guanxi_examples::tickets::import(&crm, &analyst, &records).unwrap();
    assert_eq!(imported.tickets, 1);
    let why: Vec<(usize, bool)> = imported
        .rejected
        .iter()
        .map(|(line, e)| {
            let named =
                ["Ticket Priority", "First Response Time", "Ticket Status", "Customer Satisfaction Rating", "row"]
                    .iter()
                    .any(|f| e.contains(f));
            (*line, named)
        })
        .collect();
    assert_eq!(why, [(3, true), (4, true), (5, true), (6, true), (7, true)], "{:?}", imported.rejected);
    // Rejected rows wrote nothing: only the good ticket exists.
    assert_eq!(crm.service().tickets().count(&analyst, &Default::default()).unwrap(), 1);
}

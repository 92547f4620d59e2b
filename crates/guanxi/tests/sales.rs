//! Sales through the facade, on both backends: stage moves follow the pipeline and refused
//! moves change nothing; the report equals a naive computation over random deals; leads are
//! graded, assigned and converted atomically; agendas; scoped reports.

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use guanxi::access::User;
use guanxi::sales::*;
use guanxi::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};
use rust_decimal::Decimal;

fn t0() -> DateTime<Utc> {
    "2025-06-01T00:00:00Z".parse().unwrap()
}

fn backends() -> Vec<common::Backend> {
    common::backends(t0())
}

fn alice() -> Actor {
    Actor::user("alice").unwrap()
}

fn d(n: i64) -> Decimal {
    Decimal::from(n)
}

#[test]
fn refused_moves_change_nothing_and_history_replays() {
    for (name, crm, _, _dir) in backends() {
        let a = alice();
        let o = crm.sales().opportunities().create(&a, NewOpportunity::new("ERP")).unwrap();
        let o = crm.sales().opportunities().move_to(&a, o.id, o.version, "intent", StageChange::default()).unwrap();
        // Leaving 意向 needs an amount.
        let err =
            crm.sales().opportunities().move_to(&a, o.id, o.version, "proposal", StageChange::default()).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("amount").is_some()), "{name}: {err}");
        let err =
            crm.sales().opportunities().move_to(&a, o.id, o.version, "nowhere", StageChange::default()).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("stage").is_some()), "{name}: {err}");
        assert_eq!(crm.sales().opportunities().get(&a, o.id).unwrap(), o, "{name}");
        assert_eq!(crm.sales().opportunities().history(&a, o.id).unwrap().len(), 2, "{name}");
        // Set the amount, then a hand-set probability survives open moves.
        let o = crm
            .sales()
            .opportunities()
            .update(
                &a,
                o.id,
                o.version,
                OpportunityPatch { amount: Some(d(90_000)), probability: Some(Some(d(45))), ..Default::default() },
            )
            .unwrap();
        assert_eq!((o.probability, o.probability_source), (d(45), ProbabilitySource::Manual));
        let o =
            crm.sales().opportunities().move_to(&a, o.id, o.version, "negotiation", StageChange::default()).unwrap();
        assert_eq!(o.probability, d(45), "{name}");
        let o = crm.sales().opportunities().move_to(&a, o.id, o.version, "won", StageChange::default()).unwrap();
        assert_eq!((o.probability, o.won_at.is_some()), (d(100), true), "{name}");
        // Closed stages go nowhere.
        let err = crm.sales().opportunities().move_to(&a, o.id, o.version, "lead", StageChange::default()).unwrap_err();
        assert!(matches!(err, Error::InvalidState(_)), "{name}: {err}");
        let h = crm.sales().opportunities().history(&a, o.id).unwrap();
        let moves: Vec<StageMove> = h.iter().map(|e| e.change.clone()).collect();
        assert_eq!(replay(&moves), Some("won"));
        assert_eq!(h[3].change.amount, d(90_000));
        assert_eq!(h.iter().map(|e| e.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        // A stale version is a conflict.
        let err = crm.sales().opportunities().move_to(&a, o.id, 1, "lost", StageChange::default()).unwrap_err();
        assert!(matches!(err, Error::Conflict { .. }), "{name}");
        // Lines set the amount exactly; money beyond 4 places is refused.
        let line = ProductLine::new("授权", d(3), Decimal::new(199_990, 2), Decimal::new(9_970, 2)).unwrap();
        let o2 =
            crm.sales().opportunities().create(&a, NewOpportunity::new("CRM").line(line.clone()).line(line)).unwrap();
        assert_eq!(o2.amount, Decimal::new(1_180_000, 2));
        let err = crm
            .sales()
            .opportunities()
            .create(&a, NewOpportunity::new("x").amount(Decimal::new(1, 5)).currency("元"))
            .unwrap_err();
        assert!(
            matches!(&err, Error::Validation(v) if v.field("amount").is_some() && v.field("currency").is_some()),
            "{err}"
        );
    }
}

/// A random deal: (owner, amount, usd?, expected close day offset, moves as (stage index, days later)).
type Deal = (usize, i64, Option<i64>, Vec<(usize, i64)>, Option<usize>);

fn arb_deals() -> impl Strategy<Value = Vec<Deal>> {
    proptest::collection::vec(
        (
            0usize..3,
            1i64..1_000_000,
            proptest::option::of(0i64..200),
            proptest::collection::vec((1usize..6, 0i64..30), 0..5),
            proptest::option::of(0usize..3),
        ),
        1..25,
    )
}

/// The figures computed naively from what the test did, without the facts reduction.
#[derive(Debug, Default)]
struct Naive {
    per_stage: BTreeMap<String, (u64, Decimal)>,
    won: Vec<i64>,
    lost: Vec<i64>,
    won_by_owner: BTreeMap<String, Decimal>,
    won_by_product: BTreeMap<String, Decimal>,
    weighted: Decimal,
    furthest: Vec<(String, String)>,
}

#[test]
fn report_equals_a_naive_computation_on_random_deals() {
    let owners = ["alice", "bob", "carol"];
    let products = ["A", "B", "C"];
    let p = Pipeline::standard();
    let mut runner = TestRunner::new(Config { cases: 12, source_file: Some(file!()), ..Config::default() });
    runner
        .run(&arb_deals(), |deals| {
            for (name, crm, clock, _dir) in backends() {
                clock.set(t0());
                let mut naive = Naive::default();
                let start = t0();
                clock.set(start + Duration::days(400));
                for (i, (owner, cents, close, moves, product)) in deals.iter().enumerate() {
                    let a = Actor::user(owners[*owner]).unwrap();
                    let amount = Decimal::new(*cents, 2);
                    let mut input =
                        NewOpportunity::new(&format!("deal {i}")).opened_at(start + Duration::days(i as i64));
                    if let Some(k) = product {
                        input =
                            input.line(ProductLine::new(products[*k], Decimal::ONE, amount, Decimal::ZERO).unwrap());
                    } else {
                        input = input.amount(amount);
                    }
                    if let Some(c) = close {
                        input = input.expected_close(NaiveDate::from_ymd_opt(2025, 1, 1).unwrap() + Duration::days(*c));
                    }
                    let mut o = crm.sales().opportunities().create(&a, input).unwrap();
                    let mut at = start + Duration::days(i as i64);
                    let mut furthest = 0usize;
                    for (stage, later) in moves {
                        let to = &p.stages[*stage];
                        at += Duration::days(*later);
                        if let Ok(next) = crm.sales().opportunities().move_to(
                            &a,
                            o.id,
                            o.version,
                            &to.key,
                            StageChange::default().lost_reason("价格偏高").at(at),
                        ) {
                            if to.kind == StageKind::Open {
                                furthest = furthest.max(*stage);
                            }
                            o = next;
                        }
                    }
                    let e = naive.per_stage.entry(o.stage.clone()).or_insert((0, Decimal::ZERO));
                    e.0 += 1;
                    e.1 += o.amount;
                    naive.furthest.push((o.stage.clone(), p.stages[furthest].key.clone()));
                    let days = |end: DateTime<Utc>| (end - (start + Duration::days(i as i64))).num_days();
                    if let Some(w) = o.won_at {
                        naive.won.push(days(w));
                        *naive.won_by_owner.entry(owners[*owner].to_owned()).or_default() += o.amount;
                        if let Some(k) = product {
                            *naive.won_by_product.entry(products[*k].to_owned()).or_default() += o.amount;
                        }
                    } else if let Some(l) = o.lost_at {
                        naive.lost.push(days(l));
                    } else {
                        naive.weighted += o.amount * o.probability / d(100);
                    }
                }
                let r = crm.sales().report(&alice(), &SalesQuery::new("standard")).unwrap();
                for s in &r.funnel {
                    let (count, amount) = naive.per_stage.get(&s.stage).cloned().unwrap_or_default();
                    prop_assert_eq!((s.count, s.amount), (count, amount), "{} stage {}", name, s.stage);
                }
                // Reached: open stage i counts deals whose furthest open stage is ≥ i, or that are won.
                for (i, s) in p.stages.iter().enumerate().filter(|(_, s)| s.kind == StageKind::Open) {
                    let reached = naive
                        .furthest
                        .iter()
                        .filter(|(now, f)| now == "won" || p.stages.iter().position(|x| &x.key == f).unwrap() >= i)
                        .count();
                    prop_assert_eq!(r.funnel[i].reached, reached as u64, "{} reached {}", name, s.key);
                }
                let (w, l) = (naive.won.len() as u64, naive.lost.len() as u64);
                prop_assert_eq!((r.won.count, r.lost.count), (w, l));
                let rate = (w + l > 0).then(|| (Decimal::from(w) / Decimal::from(w + l)).round_dp(4));
                prop_assert_eq!(r.win_rate, rate);
                let mut won = naive.won.clone();
                won.sort_unstable();
                let median = (!won.is_empty())
                    .then(|| (Decimal::from(won[(won.len() - 1) / 2]) + Decimal::from(won[won.len() / 2])) / d(2));
                prop_assert_eq!(r.won.median_days, median);
                let avg = (!won.is_empty())
                    .then(|| (Decimal::from(won.iter().sum::<i64>()) / Decimal::from(won.len())).round_dp(4));
                prop_assert_eq!(r.won.average_days, avg);
                let by_owner: BTreeMap<String, Decimal> =
                    r.won_by_owner.iter().map(|k| (k.key.clone(), k.amount)).collect();
                prop_assert_eq!(by_owner, naive.won_by_owner.clone());
                let by_product: BTreeMap<String, Decimal> =
                    r.won_by_product.iter().map(|k| (k.key.clone(), k.amount)).collect();
                prop_assert_eq!(by_product, naive.won_by_product.clone());
                prop_assert_eq!(r.weighted_pipeline, naive.weighted);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn mixed_currencies_need_a_choice() {
    for (name, crm, _, _dir) in backends() {
        let a = alice();
        crm.sales().opportunities().create(&a, NewOpportunity::new("a").amount(d(1))).unwrap();
        crm.sales().opportunities().create(&a, NewOpportunity::new("b").amount(d(2)).currency("usd")).unwrap();
        let err = crm.sales().report(&a, &SalesQuery::new("standard")).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("currency").is_some()), "{name}: {err}");
        let usd = crm.sales().report(&a, &SalesQuery::new("standard").currency("USD")).unwrap();
        assert_eq!((usd.open_count, usd.open_amount), (1, d(2)), "{name}");
    }
}

#[test]
fn leads_are_graded_assigned_and_converted_atomically() {
    for (name, crm, _, _dir) in backends() {
        let a = alice();
        let rules = LeadRules {
            assignment: vec![
                AssignmentRule::ByProvince([("广东省".to_owned(), UserId::new("zhao").unwrap())].into()),
                AssignmentRule::RoundRobin(vec![UserId::new("bob").unwrap(), UserId::new("carol").unwrap()]),
            ],
            ..LeadRules::standard()
        };
        crm.sales().set_lead_rules(&a, rules.clone()).unwrap();
        assert_eq!(crm.sales().lead_rules(&a).unwrap(), rules);
        let gd = crm.sales().leads().create(&a, NewLead::new("甲").province("广东")).unwrap();
        assert_eq!((gd.owner.as_ref().map(|u| u.as_str()), gd.grade), (Some("zhao"), LeadGrade::C), "{name}");
        let owners: Vec<String> = (0..4)
            .map(|i| crm.sales().leads().create(&a, NewLead::new(&format!("乙{i}")).qualified(true, true)).unwrap())
            .map(|l| {
                assert_eq!(l.grade, LeadGrade::B);
                l.owner.unwrap().to_string()
            })
            .collect();
        assert_eq!(owners, ["bob", "carol", "bob", "carol"], "{name}");
        // Least loaded: carol has one open lead fewer after bob gets an extra one.
        crm.sales()
            .set_lead_rules(
                &a,
                LeadRules {
                    assignment: vec![AssignmentRule::LeastLoaded(vec![
                        UserId::new("bob").unwrap(),
                        UserId::new("carol").unwrap(),
                        UserId::new("dave").unwrap(),
                    ])],
                    ..LeadRules::standard()
                },
            )
            .unwrap();
        let next = crm.sales().leads().create(&a, NewLead::new("丙")).unwrap();
        assert_eq!(next.owner.unwrap().as_str(), "dave", "{name}");

        // Conversion into a new customer + contact + opportunity.
        let summit = crm
            .sales()
            .leads()
            .create(&a, NewLead::new("王磊").company("星河科技").source("行业峰会").phone("13800138000"))
            .unwrap();
        assert_eq!(summit.grade, LeadGrade::A);
        let conv = crm
            .sales()
            .leads()
            .convert(&a, summit.id, ConvertLead { opportunity: Some(NewOpportunity::new("首单").amount(d(50_000))) })
            .unwrap();
        assert!(!conv.linked_existing);
        let customer = crm.customers().get(&a, conv.customer_id).unwrap();
        assert_eq!(customer.name, "星河科技");
        assert_eq!(crm.contacts().list(&a, customer.id).unwrap()[0].id, conv.contact_id);
        let opp = crm.sales().opportunities().get(&a, conv.opportunity_id.unwrap()).unwrap();
        assert_eq!((opp.customer_id, opp.contact_id), (Some(customer.id), Some(conv.contact_id)));
        assert_eq!(crm.sales().leads().get(&a, summit.id).unwrap().status, LeadStatus::Converted);
        assert!(matches!(
            crm.sales().leads().convert(&a, summit.id, ConvertLead::default()),
            Err(Error::InvalidState(_))
        ));

        // A second lead with the same company links the customer; a bad opportunity rolls everything back.
        let again = crm.sales().leads().create(&a, NewLead::new("李娜").company("星河科技")).unwrap();
        let customers_before = crm.customers().count(&a, &CustomerFilter::default()).unwrap();
        let bad = crm.sales().leads().convert(&a, again.id, ConvertLead { opportunity: Some(NewOpportunity::new("")) });
        assert!(matches!(&bad, Err(Error::Validation(v)) if v.field("name").is_some()), "{name}: {bad:?}");
        assert_eq!(crm.sales().leads().get(&a, again.id).unwrap().status, LeadStatus::Assigned);
        assert_eq!(crm.contacts().list(&a, customer.id).unwrap().len(), 1);
        let conv = crm.sales().leads().convert(&a, again.id, ConvertLead::default()).unwrap();
        assert!(conv.linked_existing && conv.matched_by.as_deref().unwrap().contains("same name"), "{conv:?}");
        assert_eq!(conv.customer_id, customer.id);
        assert_eq!(crm.customers().count(&a, &CustomerFilter::default()).unwrap(), customers_before);
        assert_eq!(crm.contacts().list(&a, customer.id).unwrap().len(), 2);
    }
}

/// Conversion is checked by the duplicate engine over the whole base: an exact name past the
/// first fifty that merely contain it, an e-mail, and the pairs marked not duplicate (issue 17:
/// it used to look at the first fifty `name_contains` matches and phones only).
#[test]
fn lead_conversion_checks_the_whole_base_with_the_duplicate_engine() {
    for (name, crm, _, _dir) in backends() {
        let a = alice();
        let near: Vec<NewCustomer> = (0..60).map(|i| NewCustomer::new(format!("星河科技第{i}事业部"))).collect();
        crm.customers().create_many(&a, near).unwrap();
        let exact = crm.customers().create(&a, NewCustomer::new("星河科技")).unwrap();
        let before = crm.customers().count(&a, &CustomerFilter::default()).unwrap();
        let lead = crm.sales().leads().create(&a, NewLead::new("王磊").company("星河科技")).unwrap();
        let conv = crm.sales().leads().convert(&a, lead.id, ConvertLead::default()).unwrap();
        assert_eq!((conv.customer_id, conv.linked_existing), (exact.id, true), "{name}: {conv:?}");
        assert!(conv.matched_by.as_deref().unwrap().starts_with("same name as"), "{name}: {conv:?}");
        assert_eq!(crm.customers().count(&a, &CustomerFilter::default()).unwrap(), before, "{name}");
        assert_eq!(crm.contacts().list(&a, exact.id).unwrap()[0].id, conv.contact_id, "{name}: the person was added");

        // By e-mail, with the existing contact reused rather than added again.
        let mailed = crm
            .customers()
            .create(&a, NewCustomer::new("某某贸易").contact(NewContact::new("林").email("lin@example.com")))
            .unwrap();
        let lead =
            crm.sales().leads().create(&a, NewLead::new("林").company("林氏工作室").email("LIN@example.com")).unwrap();
        let conv = crm.sales().leads().convert(&a, lead.id, ConvertLead::default()).unwrap();
        assert_eq!(conv.customer_id, mailed.id, "{name}: {conv:?}");
        assert!(conv.matched_by.as_deref().unwrap().contains("same email"), "{name}: {conv:?}");
        assert_eq!(crm.contacts().list(&a, mailed.id).unwrap().len(), 1, "{name}");

        // The match rules are the stored ones: with names not counted, the same company is new.
        let mut rules = crm.duplicates().rules(&a).unwrap();
        rules.rules.retain(|r| r.field != guanxi::dedup::MatchField::Name);
        crm.duplicates().set_rules(&a, rules).unwrap();
        let lead = crm.sales().leads().create(&a, NewLead::new("赵").company("星河科技")).unwrap();
        let conv = crm.sales().leads().convert(&a, lead.id, ConvertLead::default()).unwrap();
        assert!(!conv.linked_existing, "{name}: {conv:?}");
    }
}

/// A storage error while checking for duplicates fails the conversion; it is not read as "no
/// match" (which created the customer again).
#[test]
fn lead_conversion_reports_a_storage_error_instead_of_creating_a_duplicate() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("crm.db");
    let crm = Crm::open(&path).unwrap();
    let a = alice();
    let existing =
        crm.customers().create(&a, NewCustomer::new("甲").contact(NewContact::new("王").phone("13800138000"))).unwrap();
    let lead = crm.sales().leads().create(&a, NewLead::new("王").phone("13800138000")).unwrap();
    let raw = rusqlite::Connection::open(&path).unwrap();
    raw.execute("UPDATE customers SET kind = 'spaceship' WHERE id = ?1", [existing.id.to_string()]).unwrap();
    let err = crm.sales().leads().convert(&a, lead.id, ConvertLead::default()).unwrap_err();
    assert!(matches!(err, Error::Storage(_)), "{err:?}");
    raw.execute("UPDATE customers SET kind = 'enterprise'", []).unwrap();
    assert_eq!(crm.customers().count(&a, &CustomerFilter::default()).unwrap(), 1);
    assert_eq!(crm.sales().leads().get(&a, lead.id).unwrap().status, LeadStatus::New);
}

#[test]
fn agenda_lists_due_overdue_follow_ups_and_rotting() {
    for (name, crm, clock, _dir) in backends() {
        let a = alice();
        let o = crm.sales().opportunities().create(&a, NewOpportunity::new("ERP").cadence_days(3)).unwrap();
        let t1 =
            crm.sales().tasks().create(&a, NewTask::new("报价", t0() + Duration::hours(2)).opportunity(o.id)).unwrap();
        crm.sales().tasks().create(&a, NewTask::new("回访", t0() + Duration::days(2))).unwrap();
        let at = t0() + Duration::hours(1);
        let ag = crm.sales().agenda(&a, a.user_id(), at).unwrap();
        assert_eq!((ag.overdue.len(), ag.due_today.len(), ag.rotting.len()), (0, 1, 0), "{name}");
        let later = t0() + Duration::days(20);
        let ag = crm.sales().agenda(&a, a.user_id(), later).unwrap();
        assert_eq!(ag.overdue.len(), 3, "{name}: two tasks and the cadence follow-up");
        assert_eq!(ag.rotting, vec![o.code.clone()]);
        // Completing the task is activity: the follow-up and rotting restart from then.
        clock.set(t0() + Duration::days(19));
        crm.sales().tasks().complete(&a, t1.id, t1.version).unwrap();
        let ag = crm.sales().agenda(&a, a.user_id(), later).unwrap();
        assert_eq!((ag.overdue.len(), ag.rotting.len()), (1, 0), "{name}: {ag:?}");
    }
}

#[test]
fn reps_see_and_report_only_their_own_deals() {
    for (name, crm, clock, _dir) in backends() {
        let root = Actor::user("root").unwrap().elevated_until(t0() + Duration::hours(1));
        crm.access().set_user(&root, User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
        crm.access().set_user(&root, User::new("wang", "王").unwrap().role(BuiltinRole::SalesRep)).unwrap();
        crm.access().set_user(&root, User::new("zhao", "赵").unwrap().role(BuiltinRole::SalesRep)).unwrap();
        let (wang, zhao) = (Actor::user("wang").unwrap(), Actor::user("zhao").unwrap());
        let mine = crm.sales().opportunities().create(&wang, NewOpportunity::new("王的").amount(d(100))).unwrap();
        let theirs = crm.sales().opportunities().create(&zhao, NewOpportunity::new("赵的").amount(d(900))).unwrap();
        clock.advance(Duration::minutes(1));
        assert!(
            matches!(crm.sales().opportunities().get(&wang, theirs.id), Err(Error::PermissionDenied { .. })),
            "{name}"
        );
        let listed = crm.sales().opportunities().list_all(&wang, &OpportunityFilter::default()).unwrap();
        assert_eq!(listed.iter().map(|o| o.id).collect::<Vec<_>>(), vec![mine.id]);
        let r = crm.sales().report(&wang, &SalesQuery::new("standard")).unwrap();
        assert_eq!((r.open_count, r.open_amount), (1, d(100)), "{name}");
        let all = crm.sales().report(&root, &SalesQuery::new("standard")).unwrap();
        assert_eq!(all.open_amount, d(1000));
        // Giving a deal to someone else is assigning: reps may not.
        let err = crm
            .sales()
            .opportunities()
            .update(
                &wang,
                mine.id,
                mine.version,
                OpportunityPatch { owner: Some(UserId::new("zhao").unwrap()), ..Default::default() },
            )
            .unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{name}: {err}");
        // Pipelines are configured by administrators only.
        assert!(matches!(crm.sales().set_pipeline(&wang, Pipeline::standard()), Err(Error::PermissionDenied { .. })));
    }
}

#[test]
fn create_many_opens_every_deal_or_none() {
    for (name, crm, _, _dir) in backends() {
        let a = alice();
        let deals = crm.sales().opportunities();
        let c = crm
            .customers()
            .create(
                &a,
                NewCustomer::new("甲公司").region(Region {
                    province: "浙江".into(),
                    city: String::new(),
                    district: String::new(),
                }),
            )
            .unwrap();
        let bad = vec![
            NewOpportunity::new("ERP").customer(c.id),
            NewOpportunity { probability: Some(d(150)), ..NewOpportunity::new("CRM") },
            NewOpportunity::new(" ").currency("yuan"),
        ];
        let Err(Error::Validation(v)) = deals.create_many(&a, bad) else { panic!("{name}: refused") };
        let mut fields: Vec<&str> = v.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        let expected = ["opportunities[1].probability", "opportunities[2].currency", "opportunities[2].name"];
        assert_eq!(fields, expected, "{name}");
        // A stage that is not an open one is found while staging: still nothing written.
        let Err(Error::Validation(v)) = deals.create_many(&a, vec![NewOpportunity::new("CRM").stage("won")]) else {
            panic!("{name}: refused")
        };
        assert_eq!(v.iter().next().unwrap().field, "opportunities[0].stage", "{name}");
        assert_eq!(deals.count(&a, &OpportunityFilter::default()).unwrap(), 0, "{name}: nothing written");
        let log = crm.audit().entries(&a, &ChangeLogQuery::default()).unwrap().len();

        let inputs: Vec<NewOpportunity> = (0..30)
            .map(|i| {
                let o =
                    NewOpportunity::new(&format!("商机{i}")).amount(d(1000 + i)).opened_at(t0() - Duration::days(i));
                if i % 3 == 0 { o.customer(c.id).stage("intent") } else { o }
            })
            .collect();
        let made = deals.create_many(&a, inputs).unwrap();
        let codes: Vec<&str> = made.iter().map(|o| o.code.as_str()).collect();
        // The batch refused while staging reserved one code; the one refused on its fields none.
        let expected: Vec<String> = (2..=31).map(|n| format!("O20250601{n:03}")).collect();
        assert_eq!(codes, expected, "{name}: one block of consecutive codes");
        assert_eq!(deals.count(&a, &OpportunityFilter::default()).unwrap(), 30, "{name}");
        for (i, o) in made.iter().enumerate() {
            let stored = deals.get(&a, o.id).unwrap();
            assert_eq!(&stored, o, "{name}: what create_many returns is what is stored");
            let history = deals.history(&a, o.id).unwrap();
            assert_eq!(history.len(), 1, "{name}");
            assert_eq!(history[0].at, t0() - Duration::days(i as i64), "{name}: opened when given");
            let province = c.region.as_ref().map(|r| r.province.as_str());
            assert_eq!(o.province.as_deref(), province.filter(|_| i % 3 == 0), "{name}: the customer's province");
        }
        // One create entry per deal, no more.
        assert_eq!(crm.audit().entries(&a, &ChangeLogQuery::default()).unwrap().len(), log + 30, "{name}");
    }
}

/// A move of a test plan: the stage, how many days before t0, the lost reason.
type Step = (&'static str, i64, Option<&'static str>);

#[test]
fn past_moves_in_a_batch_record_what_moves_one_by_one_record() {
    for (name, crm, _, _dir) in backends() {
        let (a, deals) = (alice(), crm.sales().opportunities());
        let (batch, single) = (UserId::new("batch").unwrap(), UserId::new("single").unwrap());
        let at = |days: i64| t0() - Duration::days(days);
        // (opened, [(stage, days before t0, lost reason)]) — won, lost, open and moved back.
        let plans: Vec<(i64, Vec<Step>)> = vec![
            (40, vec![("intent", 30, None), ("proposal", 20, None), ("won", 10, None)]),
            (35, vec![("intent", 25, None), ("lost", 5, Some("价格偏高"))]),
            (20, vec![("intent", 15, None)]),
            (50, vec![("intent", 45, None), ("proposal", 40, None), ("intent", 30, None), ("won", 1, None)]),
            (3, vec![]),
        ];
        let input = |i: usize, owner: &UserId| {
            let o = NewOpportunity::new(&format!("商机{i}")).amount(d(10_000 * (i as i64 + 1))).owner(owner.clone());
            NewOpportunity { expected_close: NaiveDate::from_ymd_opt(2025, 7, 1), ..o.opened_at(at(plans[i].0)) }
        };
        let with_moves: Vec<NewOpportunity> = (0..plans.len())
            .map(|i| {
                plans[i].1.iter().fold(input(i, &batch), |o, (stage, days, reason)| {
                    let m = PastMove::new(stage, at(*days));
                    o.moved(match reason {
                        Some(r) => m.lost_reason(r),
                        None => m,
                    })
                })
            })
            .collect();
        let made = deals.create_many(&a, with_moves).unwrap();
        let mut moved = Vec::new();
        for (i, plan) in plans.iter().enumerate() {
            let mut o = deals.create(&a, input(i, &single)).unwrap();
            for (stage, days, reason) in &plan.1 {
                let change = StageChange { lost_reason: reason.map(str::to_owned), at: Some(at(*days)) };
                o = deals.move_to(&a, o.id, o.version, stage, change).unwrap();
            }
            moved.push(o);
        }
        for (b, s) in made.iter().zip(&moved) {
            assert_eq!(&deals.get(&a, b.id).unwrap(), b, "{name}: returned as stored");
            let same = |o: &Opportunity| {
                (o.stage.clone(), o.furthest_stage.clone(), o.probability, o.won_at, o.lost_at, o.lost_reason.clone())
            };
            assert_eq!(same(b), same(s), "{name}: {}", b.name);
            let steps = |id| {
                deals
                    .history(&a, id)
                    .unwrap()
                    .into_iter()
                    .map(|h| (h.seq, h.change, h.at, h.from_entered_at, h.lost_reason))
                    .collect::<Vec<_>>()
            };
            assert_eq!(steps(b.id), steps(s.id), "{name}: {}", b.name);
        }
        let report = |owner: &UserId| {
            let r = crm
                .sales()
                .report(&a, &SalesQuery { owner: Some(owner.clone()), ..SalesQuery::new("standard") })
                .unwrap();
            (r.funnel, r.won, r.lost, r.win_rate, r.forecast, r.open_count, r.open_amount, r.weighted_pipeline)
        };
        assert_eq!(report(&batch), report(&single), "{name}: the report reads both alike");

        // A refused move is reported under its deal and move, with every other bad field.
        let bad = vec![
            NewOpportunity::new("未知").moved(PastMove::new("signed", at(1))),
            NewOpportunity::new("无原因").amount(d(1)).moved(PastMove::new("lost", at(2))),
            NewOpportunity::new("未来").moved(PastMove::new("intent", t0() + Duration::days(1))),
            NewOpportunity::new("倒序").opened_at(at(5)).moved(PastMove::new("intent", at(9))),
        ];
        let Err(Error::Validation(v)) = deals.create_many(&a, bad) else { panic!("{name}: refused") };
        let mut fields: Vec<&str> = v.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        let expected = ["opportunities[3].moves[0].at"];
        assert_eq!(fields, expected, "{name}: the inputs' own fields first");
        let bad = vec![
            NewOpportunity::new("未知").moved(PastMove::new("signed", at(1))),
            NewOpportunity::new("无原因").amount(d(1)).moved(PastMove::new("lost", at(2))),
            NewOpportunity::new("未来").moved(PastMove::new("intent", t0() + Duration::days(1))),
        ];
        let Err(Error::Validation(v)) = deals.create_many(&a, bad) else { panic!("{name}: refused") };
        let mut fields: Vec<&str> = v.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        let expected = [
            "opportunities[0].moves[0].stage",
            "opportunities[1].moves[0].lost_reason",
            "opportunities[2].moves[0].at",
        ];
        assert_eq!(fields, expected, "{name}");
        assert_eq!(deals.count(&a, &OpportunityFilter::default()).unwrap(), 10, "{name}: nothing more written");
    }
}

//! Service through the facade, on both backends: the ticket lifecycle and its SLA in business
//! time (pauses, reopen), refused moves changing nothing, routing and assignment strategies,
//! escalation and transfer history, ratings, scopes, the knowledge base, and a proptest that
//! the SLA's used time equals an independent count over the ticket's history.

mod common;

use std::sync::Arc;

use chrono::{DateTime, Duration, NaiveDate, Utc};
use guanxi::access::User;
use guanxi::service::*;
use guanxi::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

/// Monday 2025-06-02 09:00 Beijing.
fn t0() -> DateTime<Utc> {
    "2025-06-02T01:00:00Z".parse().unwrap()
}

fn backends() -> Vec<common::Backend> {
    common::backends(t0())
}

fn u(s: &str) -> UserId {
    UserId::new(s).unwrap()
}

fn admin() -> Actor {
    Actor::user("admin").unwrap()
}

/// Two groups: l1 (round robin over amy, bo) escalating to l2 (least loaded: chen);
/// billing words route to l2 with the billing skill. Dragon Boat Festival 2025 (5/31–6/2) off.
fn desk(crm: &Crm) -> ServiceSettings {
    let mut s = ServiceSettings {
        groups: vec![
            SkillGroup::new("l1", "一线", AssignStrategy::RoundRobin)
                .agent(Agent::new(u("amy"), 2, &[]))
                .agent(Agent::new(u("bo"), 2, &[]))
                .escalate_to("l2"),
            SkillGroup::new("l2", "二线", AssignStrategy::BySkill)
                .agent(Agent::new(u("chen"), 0, &["network"]))
                .agent(Agent::new(u("dana"), 0, &["billing"])),
        ],
        routes: vec![Route::to("l2").keyword("发票").skill("billing")],
        default_group: Some("l1".into()),
        ..Default::default()
    };
    s.calendar.holidays = [NaiveDate::from_ymd_opt(2025, 6, 2).unwrap()].into();
    crm.service().set_settings(&admin(), s.clone()).unwrap();
    s
}

#[test]
fn lifecycle_in_business_time_with_pause_and_reopen() {
    for (name, crm, clock, _dir) in backends() {
        desk(&crm);
        let a = admin();
        // Raised on the holiday Monday: the clock starts Tuesday 09:00.
        let t =
            crm.service().tickets().create(&a, NewTicket::new("无法登录", TicketKind::Fault, Priority::High)).unwrap();
        assert_eq!((t.assignee.clone(), t.status), (Some(u("amy")), TicketStatus::Assigned), "{name}");
        assert!(t.code.starts_with("T20250602"), "{name}");
        let typed = format!(" {} ", t.code.to_lowercase()); // as a user types it
        assert_eq!(crm.service().tickets().get_by_code(&a, &typed).unwrap().id, t.id, "{name}");
        let sla = crm.service().tickets().sla(&a, t.id, t0() + Duration::hours(20)).unwrap().unwrap(); // Tue 05:00
        // Tuesday 09:00 + 1 business hour.
        assert_eq!(sla.first_response.deadline, Some("2025-06-03T02:00:00Z".parse().unwrap()), "{name}");
        assert_eq!(sla.first_response.used_secs, 0, "{name}: the holiday does not count");

        clock.set("2025-06-03T01:30:00Z".parse().unwrap()); // Tue 09:30
        let t = crm
            .service()
            .tickets()
            .move_to(&a, t.id, t.version, TicketStatus::InProgress, TicketMove::default())
            .unwrap();
        let t = crm.service().tickets().reply(&a, t.id, t.version, TicketReply::public("请提供截图")).unwrap();
        let t = crm
            .service()
            .tickets()
            .move_to(&a, t.id, t.version, TicketStatus::PendingCustomer, TicketMove::default())
            .unwrap();
        clock.set("2025-06-04T01:30:00Z".parse().unwrap()); // Wed 09:30: a business day paused
        let paused = crm.service().tickets().sla(&a, t.id, crm.now()).unwrap().unwrap();
        assert_eq!((paused.resolution.state, paused.resolution.used_secs), (SlaState::Paused, 1800), "{name}");
        assert_eq!(paused.first_response.state, SlaState::Met, "{name}");
        let t = crm
            .service()
            .tickets()
            .move_to(&a, t.id, t.version, TicketStatus::InProgress, TicketMove::default())
            .unwrap();
        assert_eq!(t.sla_paused_secs, 27_000, "{name}: 7.5 business hours paused");
        clock.set("2025-06-04T02:30:00Z".parse().unwrap()); // Wed 10:30
        let surveys = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = surveys.clone();
        crm.subscribe(move |e| {
            if let DomainEvent::SatisfactionSurveyDue { ticket, .. } = &e.payload {
                sink.lock().unwrap().push(*ticket);
            }
        });
        let t = crm
            .service()
            .tickets()
            .move_to(&a, t.id, t.version, TicketStatus::Resolved, TicketMove::default().resolution("已重置"))
            .unwrap();
        assert_eq!(*surveys.lock().unwrap(), [t.id], "{name}: a survey is due after resolving");
        let done = crm.service().tickets().sla(&a, t.id, crm.now()).unwrap().unwrap();
        assert_eq!((done.resolution.state, done.resolution.used_secs), (SlaState::Met, 5400), "{name}");
        // Closed, then reopened within the window; the resolved time is not counted.
        let t =
            crm.service().tickets().move_to(&a, t.id, t.version, TicketStatus::Closed, TicketMove::default()).unwrap();
        clock.advance(Duration::days(3));
        let t = crm
            .service()
            .tickets()
            .move_to(&a, t.id, t.version, TicketStatus::InProgress, TicketMove::default())
            .unwrap();
        assert_eq!((t.reopen_count, t.resolved_at), (1, None), "{name}");
        let reopened = crm.service().tickets().sla(&a, t.id, crm.now()).unwrap().unwrap();
        assert_eq!(reopened.resolution.used_secs, 5400, "{name}");
        let t = crm
            .service()
            .tickets()
            .move_to(&a, t.id, t.version, TicketStatus::Resolved, TicketMove::default().resolution("再次处理"))
            .unwrap();
        let t =
            crm.service().tickets().move_to(&a, t.id, t.version, TicketStatus::Closed, TicketMove::default()).unwrap();
        clock.advance(Duration::days(8));
        let before = crm.service().tickets().get(&a, t.id).unwrap();
        let err = crm
            .service()
            .tickets()
            .move_to(&a, t.id, t.version, TicketStatus::InProgress, TicketMove::default())
            .unwrap_err();
        assert!(matches!(err, Error::InvalidState(ref m) if m.contains("7 days")), "{name}: {err}");
        assert_eq!(crm.service().tickets().get(&a, t.id).unwrap(), before, "{name}: a refused move changes nothing");
        let t = crm.service().tickets().rate(&a, t.id, t.version, 4, Some("还行")).unwrap();
        assert!(
            matches!(crm.service().tickets().rate(&a, t.id, t.version, 5, None), Err(Error::InvalidState(_))),
            "{name}"
        );
        assert!(
            matches!(crm.service().tickets().rate(&a, t.id, t.version, 6, None), Err(Error::Validation(_))),
            "{name}"
        );
        let kinds: Vec<&str> = crm
            .service()
            .tickets()
            .entries(&a, t.id)
            .unwrap()
            .iter()
            .map(|e| match &e.change {
                TicketChange::Created => "created",
                TicketChange::Reply { .. } => "reply",
                TicketChange::Status { .. } => "status",
                TicketChange::Assigned { .. } => "assigned",
                TicketChange::Rated { .. } => "rated",
            })
            .collect();
        assert_eq!(
            kinds,
            [
                "created", "assigned", "status", "reply", "status", "status", "status", "status", "status", "status",
                "status", "rated"
            ],
            "{name}"
        );
    }
}

#[test]
fn routing_strategies_transfer_and_escalation() {
    for (name, crm, clock, _dir) in backends() {
        desk(&crm);
        let a = admin();
        let mk = |s: &str| {
            crm.service().tickets().create(&a, NewTicket::new(s, TicketKind::Inquiry, Priority::Medium)).unwrap()
        };
        // Round robin in l1, capacity 2 each: amy, bo, amy, bo, then nobody.
        let who: Vec<Option<String>> =
            (0..5).map(|i| mk(&format!("问题{i}")).assignee.map(|x| x.to_string())).collect();
        let expected: Vec<Option<String>> =
            ["amy", "bo", "amy", "bo"].iter().map(|s| Some(s.to_string())).chain([None]).collect();
        assert_eq!(who, expected, "{name}");
        // A billing word routes to l2 and the billing agent.
        let bill = mk("发票抬头错了");
        assert_eq!((bill.group.as_deref(), bill.assignee.as_ref().map(|x| x.as_str())), (Some("l2"), Some("dana")));
        // Queued ticket: nobody free; after amy resolves one, Auto assigns her.
        let queued =
            crm.service().tickets().list_all(&a, &TicketFilter::default().status(TicketStatus::New)).unwrap().remove(0);
        let amy_first =
            crm.service().tickets().list_all(&a, &TicketFilter::default().assignee(u("amy"))).unwrap().remove(0);
        crm.service()
            .tickets()
            .move_to(&a, amy_first.id, amy_first.version, TicketStatus::Cancelled, TicketMove::default())
            .unwrap();
        let q = crm.service().tickets().assign(&a, queued.id, queued.version, AssignTo::Auto, None).unwrap();
        assert_eq!((q.assignee.as_ref().map(|x| x.as_str()), q.status), (Some("amy"), TicketStatus::Assigned));
        // Transfer and escalation are recorded.
        clock.advance(Duration::minutes(5));
        let q = crm
            .service()
            .tickets()
            .assign(&a, q.id, q.version, AssignTo::Agent(u("bo")), Some("bo 熟悉此客户"))
            .unwrap();
        let q = crm.service().tickets().escalate(&a, q.id, q.version, Some("需要二线")).unwrap();
        assert_eq!((q.group.as_deref(), q.escalation_level), (Some("l2"), 1), "{name}");
        let l2 = crm.service().tickets().escalate(&a, q.id, q.version, None).unwrap_err();
        assert!(matches!(l2, Error::InvalidState(_)), "{name}: l2 has no escalation group");
        let moves: Vec<(Option<String>, AssignReason)> = crm
            .service()
            .tickets()
            .entries(&a, q.id)
            .unwrap()
            .into_iter()
            .filter_map(|e| match e.change {
                TicketChange::Assigned { to_user, reason, .. } => Some((to_user.map(|x| x.to_string()), reason)),
                _ => None,
            })
            .collect();
        assert_eq!(moves.len(), 3, "{name}: {moves:?}");
        assert_eq!(moves[1], (Some("bo".into()), AssignReason::Transfer));
        assert_eq!(moves[2].1, AssignReason::Escalation);
        // Unknown group and illegal moves are typed errors.
        assert!(matches!(
            crm.service().tickets().create(&a, NewTicket::new("x", TicketKind::Inquiry, Priority::Low).group("l9")),
            Err(Error::Validation(v)) if v.field("group").is_some()
        ));
        assert!(matches!(
            crm.service().tickets().move_to(&a, q.id, q.version, TicketStatus::Assigned, TicketMove::default()),
            Err(Error::InvalidState(_))
        ));
        // Risk keywords flag the ticket and raise an event.
        let flagged = Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = flagged.clone();
        crm.subscribe(move |e| {
            if let DomainEvent::TicketFlagged { keywords, .. } = &e.payload {
                sink.lock().unwrap().extend(keywords.clone());
            }
        });
        let q = crm.service().tickets().reply(&a, q.id, q.version, TicketReply::note("客户说要去12315投诉")).unwrap();
        assert!(q.risk_flags.contains("投诉") && q.risk_flags.contains("12315"), "{name}");
        assert_eq!(*flagged.lock().unwrap(), ["12315", "投诉"], "{name}");
    }
}

#[test]
fn agents_see_their_tickets_and_service_sees_all() {
    for (name, crm, _clock, _dir) in backends() {
        let root = Actor::user("root").unwrap().elevated_until(t0() + Duration::hours(1));
        crm.access().set_user(&root, User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
        crm.access().set_user(&root, User::new("kf", "客服").unwrap().role(BuiltinRole::CustomerService)).unwrap();
        crm.access().set_user(&root, User::new("wang", "王").unwrap().role(BuiltinRole::SalesRep)).unwrap();
        let (kf, wang) = (Actor::user("kf").unwrap(), Actor::user("wang").unwrap());
        let mut mine = NewTicket::new("王的客户反馈", TicketKind::Suggestion, Priority::Low);
        mine.assignee = Some(u("wang"));
        assert!(crm.service().tickets().create(&wang, mine.clone()).is_ok(), "{name}: assigning oneself");
        let other =
            crm.service().tickets().create(&kf, NewTicket::new("别人的", TicketKind::Inquiry, Priority::Low)).unwrap();
        assert_eq!(crm.service().tickets().count(&kf, &TicketFilter::default()).unwrap(), 2, "{name}");
        assert_eq!(crm.service().tickets().count(&wang, &TicketFilter::default()).unwrap(), 1, "{name}");
        assert!(matches!(crm.service().tickets().get(&wang, other.id), Err(Error::PermissionDenied { .. })), "{name}");
        assert!(matches!(
            crm.service().tickets().move_to(
                &wang,
                other.id,
                other.version,
                TicketStatus::Cancelled,
                TicketMove::default()
            ),
            Err(Error::PermissionDenied { .. })
        ));
        assert!(matches!(
            crm.service().set_settings(&kf, ServiceSettings::default()),
            Err(Error::PermissionDenied { .. })
        ));
        let sla =
            crm.service().sla_overview(&wang, &TicketFilter { open: Some(true), ..Default::default() }, t0()).unwrap();
        assert_eq!(sla.len(), 1, "{name}: the overview is scoped");
    }
}

#[test]
fn knowledge_base_suggests_and_hides_drafts() {
    for (name, crm, _clock, _dir) in backends() {
        let root = Actor::user("root").unwrap().elevated_until(t0() + Duration::hours(1));
        crm.access().set_user(&root, User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
        crm.access().set_user(&root, User::new("wang", "王").unwrap().role(BuiltinRole::SalesRep)).unwrap();
        let wang = Actor::user("wang").unwrap();
        let refund = crm
            .kb()
            .create(
                &root,
                NewArticle::new("退款多久到账", "退款审核通过后，原路退回，一般三个工作日内到账。").tag("退款"),
            )
            .unwrap();
        crm.kb().create(&root, NewArticle::new("Router keeps dropping Wi-Fi", "Update the router firmware.")).unwrap();
        let draft =
            crm.kb().create(&root, NewArticle::new("退款政策草稿", "内部讨论中的退款规则").published(false)).unwrap();
        let hits = crm.kb().search(&wang, &KbQuery::new("退款")).unwrap();
        assert_eq!(hits.iter().map(|h| h.article.id).collect::<Vec<_>>(), [refund.id], "{name}");
        let mut drafts = KbQuery::new("退款");
        drafts.include_unpublished = true;
        assert!(matches!(crm.kb().search(&wang, &drafts), Err(Error::PermissionDenied { .. })), "{name}");
        assert_eq!(crm.kb().search(&root, &drafts).unwrap().len(), 2, "{name}");
        assert!(matches!(crm.kb().get(&wang, draft.id), Err(Error::PermissionDenied { .. })), "{name}");
        assert!(matches!(crm.kb().create(&wang, NewArticle::new("x", "y")), Err(Error::PermissionDenied { .. })));
        let t = crm
            .service()
            .tickets()
            .create(&root, NewTicket::new("my router drops wifi", TicketKind::Fault, Priority::Medium))
            .unwrap();
        assert_eq!(crm.kb().suggest(&root, t.id, 3).unwrap()[0].article.title, "Router keeps dropping Wi-Fi");
        let edited = crm
            .kb()
            .update(&root, refund.id, refund.version, NewArticle::new("退款多久到账", "一般一个工作日到账。"))
            .unwrap();
        assert_eq!(edited.version, 2);
        assert!(crm.kb().search(&root, &KbQuery::new("三个工作日")).unwrap().is_empty(), "{name}: re-indexed");
        assert!(matches!(crm.kb().update(&root, refund.id, 1, NewArticle::new("a", "b")), Err(Error::Conflict { .. })));
        assert!(matches!(crm.kb().create(&root, NewArticle::new("", "")), Err(Error::Validation(v)) if v.0.len() == 2));
    }
}

#[derive(Debug, Clone)]
enum Step {
    Pend(i64),
    Resume(i64),
    Reply(i64),
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        (1i64..50_000).prop_map(Step::Pend),
        (1i64..50_000).prop_map(Step::Resume),
        (1i64..50_000).prop_map(Step::Reply),
    ]
}

/// Whatever the sequence of pauses, the resolution clock's used time equals the business time
/// from creation to the instant minus the business time of the pending intervals, counted
/// independently from the ticket's own entries.
#[test]
fn sla_used_time_equals_business_time_outside_pauses() {
    let mut runner = TestRunner::new(Config { cases: 64, ..Config::default() });
    runner
        .run(&(proptest::collection::vec(step(), 1..12), 0i64..200_000), |(steps, tail)| {
            let clock = Arc::new(FixedClock::at(t0()));
            let crm = Crm::builder().clock(clock.clone()).trust_asserted_elevation(true).build();
            let a = admin();
            let bclock = BusinessClock::new(&ServiceSettings::default().calendar).unwrap();
            let mut t =
                crm.service().tickets().create(&a, NewTicket::new("x", TicketKind::Fault, Priority::Low)).unwrap();
            t = crm.service().tickets().assign(&a, t.id, t.version, AssignTo::Agent(u("admin")), None).unwrap();
            t = crm
                .service()
                .tickets()
                .move_to(&a, t.id, t.version, TicketStatus::InProgress, TicketMove::default())
                .unwrap();
            for s in steps {
                let (secs, to) = match s {
                    Step::Pend(x) => (x, Some(TicketStatus::PendingCustomer)),
                    Step::Resume(x) => (x, Some(TicketStatus::InProgress)),
                    Step::Reply(x) => (x, None),
                };
                clock.advance(Duration::seconds(secs));
                t = match to {
                    Some(to) if t.status.allows(to) => {
                        crm.service().tickets().move_to(&a, t.id, t.version, to, TicketMove::default()).unwrap()
                    }
                    Some(_) => t,
                    None => crm.service().tickets().reply(&a, t.id, t.version, TicketReply::public("ok")).unwrap(),
                };
            }
            let at = crm.now() + Duration::seconds(tail);
            let mut paused = 0;
            let mut since = None;
            for e in crm.service().tickets().entries(&a, t.id).unwrap() {
                if let TicketChange::Status { from, to, .. } = e.change {
                    if to == TicketStatus::PendingCustomer {
                        since = Some(e.at);
                    } else if from == TicketStatus::PendingCustomer {
                        paused += bclock.between(since.take().unwrap(), e.at);
                    }
                }
            }
            if let Some(s) = since {
                paused += bclock.between(s, at);
            }
            let sla = crm.service().tickets().sla(&a, t.id, at).unwrap().unwrap();
            let expected = bclock.between(t.created_at, at) - paused;
            prop_assert_eq!(sla.resolution.used_secs, expected);
            prop_assert_eq!(sla.resolution.remaining_secs, sla.resolution.target_secs - expected);
            if let Some(d) = sla.resolution.deadline {
                // The deadline is the target away in business time, counting the pauses.
                prop_assert_eq!(bclock.between(t.created_at, d) - paused, sla.resolution.target_secs);
            }
            Ok(())
        })
        .unwrap();
}

#[test]
fn create_many_assigns_as_one_by_one_would() {
    for (name, crm, _, _dir) in backends() {
        desk(&crm);
        let a = admin();
        let tickets = crm.service().tickets();
        let c = crm
            .customers()
            .create(
                &a,
                NewCustomer::new("甲公司").region(Region {
                    province: "山东".into(),
                    city: String::new(),
                    district: String::new(),
                }),
            )
            .unwrap();
        let l1 = |i: usize| NewTicket::new(&format!("无法登录{i}"), TicketKind::Fault, Priority::High).customer(c.id);
        let billing = NewTicket::new("发票抬头错误", TicketKind::Inquiry, Priority::Low);
        let inputs = vec![l1(0), l1(1), billing, l1(2), l1(3), l1(4)];
        let made = tickets.create_many(&a, inputs).unwrap();
        let assignees: Vec<Option<&str>> = made.iter().map(|t| t.assignee.as_ref().map(UserId::as_str)).collect();
        // Round robin over amy and bo (2 tickets each at most); billing goes to dana by skill.
        assert_eq!(assignees, [Some("amy"), Some("bo"), Some("dana"), Some("amy"), Some("bo"), None], "{name}");
        assert_eq!(made[5].status, TicketStatus::New, "{name}: l1 is full");
        for t in &made {
            assert_eq!(&tickets.get(&a, t.id).unwrap(), t, "{name}");
            let entries = tickets.entries(&a, t.id).unwrap();
            let seqs: Vec<u32> = entries.iter().map(|e| e.seq).collect();
            assert_eq!(seqs, if t.assignee.is_some() { vec![1, 2] } else { vec![1] }, "{name}: numbered per ticket");
        }
        assert_eq!(made[0].province, c.region.as_ref().map(|r| r.province.clone()), "{name}");
        assert!(made[0].province.is_some(), "{name}");
        let codes: std::collections::BTreeSet<&str> = made.iter().map(|t| t.code.as_str()).collect();
        assert_eq!(codes.len(), 6, "{name}");
        // A one-by-one create after the batch sees the batch's load: l1 is still full.
        let after = tickets.create(&a, l1(5)).unwrap();
        assert_eq!(after.assignee, None, "{name}");

        let Err(Error::Validation(v)) =
            tickets.create_many(&a, vec![l1(6), NewTicket::new(" ", TicketKind::Inquiry, Priority::Low).group("l9")])
        else {
            panic!("{name}: refused")
        };
        let mut fields: Vec<&str> = v.iter().map(|e| e.field.as_str()).collect();
        fields.sort();
        assert_eq!(fields, ["tickets[1].subject"], "{name}");
        assert_eq!(tickets.count(&a, &TicketFilter::default()).unwrap(), 7, "{name}: nothing more written");
    }
}

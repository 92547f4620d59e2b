//! Merging through the facade, on both backends: survivorship policies and explicit choices,
//! nothing lost (every related record moves), tombstones, refusals changing nothing, undo
//! refused after a later change, and a proptest that merge then undo restores every record
//! exactly (bookkeeping aside: versions move on, `updated_*` name the undo).

mod common;

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, Utc};
use guanxi::dedup::{MergeRequest, Survivorship};
use guanxi::sales::{NewOpportunity, NewTask, OpportunityFilter, TaskFilter};
use guanxi::service::{NewTicket, Priority, TicketFilter, TicketKind};
use guanxi::*;
use proptest::prelude::*;
use proptest::test_runner::{Config, TestRunner};

fn t0() -> DateTime<Utc> {
    "2025-06-02T01:00:00Z".parse().unwrap()
}

fn alice() -> Actor {
    Actor::user("alice").unwrap()
}

/// Everything stored about a set of customers, bookkeeping left out, for comparing states.
fn snapshot(crm: &Crm, ids: &[CustomerId]) -> String {
    let store = crm.store();
    let mut out = BTreeMap::new();
    let strip = |mut v: serde_json::Value| {
        if let Some(o) = v.as_object_mut() {
            for k in ["version", "updated_at", "updated_by"] {
                o.remove(k);
            }
        }
        v
    };
    for id in ids {
        let c = store.customer(*id).unwrap().unwrap();
        let contacts: Vec<_> =
            store.contacts_of(*id).unwrap().into_iter().map(|c| strip(serde_json::to_value(c).unwrap())).collect();
        let interactions: Vec<_> = store.interactions_of(*id).unwrap();
        let events =
            store.events_of(*id, &guanxi::marketing::EventRange::default(), &PageRequest::first(1000)).unwrap();
        let opps: Vec<_> = store
            .list_opportunities(&OpportunityFilter::default().customer(*id), &PageRequest::first(1000))
            .unwrap()
            .items
            .into_iter()
            .map(|o| strip(serde_json::to_value(o).unwrap()))
            .collect();
        let tickets: Vec<_> = store
            .list_tickets(&TicketFilter { customer_id: Some(*id), ..Default::default() }, &PageRequest::first(1000))
            .unwrap()
            .items
            .into_iter()
            .map(|t| strip(serde_json::to_value(t).unwrap()))
            .collect();
        let tasks: Vec<_> = store
            .tasks(&TaskFilter::default())
            .unwrap()
            .into_iter()
            .filter(|t| t.customer_id == Some(*id))
            .map(|t| strip(serde_json::to_value(t).unwrap()))
            .collect();
        out.insert(
            id.to_string(),
            serde_json::json!({
                "customer": strip(serde_json::to_value(&c).unwrap()),
                "tags": c.tags,
                "contacts": contacts,
                "interactions": serde_json::to_value(interactions).unwrap(),
                "events": serde_json::to_value(events.items).unwrap(),
                "opportunities": opps,
                "tickets": tickets,
                "tasks": tasks,
            }),
        );
    }
    serde_json::to_string_pretty(&out).unwrap()
}

/// A customer with `n` of each related record.
fn customer_with(crm: &Crm, name: &str, n: usize, tag: &str, address: Option<&str>) -> Customer {
    let a = alice();
    let mut input = NewCustomer::new(name).tag(tag);
    if let Some(addr) = address {
        input = input.address(addr);
    }
    for i in 0..n {
        input = input
            .contact(NewContact::new(format!("{name}联系人{i}")).phone(format!("1380000{:04}", i + 10 * name.len())));
    }
    let c = crm.customers().create(&a, input).unwrap();
    for i in 0..n {
        crm.interactions().create(&a, c.id, NewInteraction::new(InteractionKind::Call, format!("电话{i}"))).unwrap();
        let view = guanxi::marketing::BehaviourEvent::new(c.id, "page_view", t0() - Duration::hours(i as i64 + 1));
        crm.marketing().events().record(&a, vec![view]).unwrap();
        crm.sales().opportunities().create(&a, NewOpportunity::new(&format!("{name}项目{i}")).customer(c.id)).unwrap();
        let mut t = NewTicket::new(&format!("{name}工单{i}"), TicketKind::Inquiry, Priority::Low);
        t.customer_id = Some(c.id);
        crm.service().tickets().create(&a, t).unwrap();
        let mut task = NewTask::new(&format!("回访{i}"), t0() + Duration::days(1));
        task.customer_id = Some(c.id);
        crm.sales().tasks().create(&a, task).unwrap();
    }
    c
}

#[test]
fn merge_moves_everything_and_leaves_tombstones() {
    for (name, crm, clock, _dir) in common::backends(t0()) {
        let a = alice();
        let x = customer_with(&crm, "华为技术有限公司", 2, "VIP", None);
        clock.advance(Duration::hours(1));
        let y = customer_with(&crm, "华为技术股份有限公司", 1, "展会", Some("深圳市龙岗区坂田"));
        let z = customer_with(&crm, "华为", 1, "VIP", None);
        let request = MergeRequest::new(x.id, [y.id, z.id]).choose("name", x.id);

        let plan = crm.duplicates().plan_merge(&a, &request).unwrap();
        assert_eq!((plan.contacts.len(), plan.interactions.len(), plan.opportunities.len()), (2, 2, 2), "{name}");
        assert_eq!((plan.tickets.len(), plan.tasks.len()), (2, 2), "{name}");
        assert_eq!(plan.tags_added, vec!["展会".to_owned()], "{name}");
        assert_eq!(plan.survivor.name, "华为技术有限公司", "{name}: the explicit choice");
        assert_eq!(plan.survivor.address.as_deref(), Some("深圳市龙岗区坂田"), "{name}: the only value");
        assert!(plan.fields.iter().any(|f| f.field == "address" && f.from == y.id), "{name}");

        let done = crm.duplicates().merge(&a, &request).unwrap();
        let survivor = crm.customers().get(&a, x.id).unwrap();
        assert_eq!(survivor.tags.iter().cloned().collect::<Vec<_>>(), vec!["VIP", "展会"], "{name}");
        let contacts = crm.contacts().list(&a, x.id).unwrap();
        assert_eq!(contacts.len(), 4, "{name}");
        assert_eq!(contacts.iter().filter(|c| c.primary).count(), 1, "{name}: one primary");
        assert_eq!(crm.interactions().list(&a, x.id).unwrap().len(), 4, "{name}");
        let events = crm.marketing().events().list(&a, x.id, &Default::default(), &PageRequest::first(10)).unwrap();
        assert_eq!(events.items.len(), 4, "{name}: the merged customers' events move too");
        let opps = crm.store().count_opportunities(&OpportunityFilter::default().customer(x.id)).unwrap();
        assert_eq!(opps, 4, "{name}");
        let tickets = crm.store().count_tickets(&TicketFilter { customer_id: Some(x.id), ..Default::default() });
        assert_eq!(tickets.unwrap(), 4, "{name}");
        for gone in [y.id, z.id] {
            assert!(matches!(crm.customers().get(&a, gone), Err(Error::NotFound { .. })), "{name}");
            assert_eq!(crm.duplicates().merged_into(&a, gone).unwrap(), Some(x.id), "{name}");
        }
        // Tombstones are no duplicates; the survivor's keys follow its contacts.
        let found = crm
            .duplicates()
            .find(&a, &NewCustomer::new("某公司").contact(NewContact::new("王").phone("13800000010")))
            .unwrap();
        assert!(found.iter().all(|c| c.id == Some(x.id)), "{name}");
        let log = crm.audit().entries(&a, &ChangeLogQuery { customer_id: Some(y.id), ..Default::default() }).unwrap();
        assert_eq!(log.last().unwrap().action, ChangeAction::Merge, "{name}");

        // A later change to a moved record makes undo refuse, changing nothing.
        let moved = contacts.iter().find(|c| c.name.starts_with("华为技术股份")).unwrap();
        let edited = crm
            .contacts()
            .update(
                &a,
                moved.id,
                moved.version,
                ContactPatch { title: Some(Some("总监".into())), ..Default::default() },
            )
            .unwrap();
        let before = snapshot(&crm, &[x.id, y.id, z.id]);
        assert!(matches!(crm.duplicates().undo_merge(&a, &done.merge_id), Err(Error::Conflict { .. })), "{name}");
        assert_eq!(snapshot(&crm, &[x.id, y.id, z.id]), before, "{name}: refused undo wrote nothing");
        let _ = edited;
    }
}

#[test]
fn bad_merges_are_refused_and_change_nothing() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let x = customer_with(&crm, "甲公司", 1, "A", None);
        let y = customer_with(&crm, "乙公司", 1, "B", None);
        let before = snapshot(&crm, &[x.id, y.id]);
        let err = crm.duplicates().merge(&a, &MergeRequest::new(x.id, [x.id])).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("merged[0]").is_some()), "{name}: {err}");
        let err = crm.duplicates().merge(&a, &MergeRequest::new(x.id, Vec::<CustomerId>::new())).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("merged").is_some()), "{name}");
        let stranger = CustomerId(uuid::Uuid::now_v7());
        let err = crm.duplicates().merge(&a, &MergeRequest::new(x.id, [y.id]).choose("name", stranger)).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("choices.name").is_some()), "{name}");
        let err = crm.duplicates().merge(&a, &MergeRequest::new(x.id, [y.id]).choose("colour", y.id)).unwrap_err();
        assert!(matches!(&err, Error::Validation(v) if v.field("choices.colour").is_some()), "{name}");
        assert!(matches!(
            crm.duplicates().merge(&a, &MergeRequest::new(x.id, [stranger])),
            Err(Error::NotFound { .. })
        ));
        assert_eq!(snapshot(&crm, &[x.id, y.id]), before, "{name}");
        let done = crm.duplicates().merge(&a, &MergeRequest::new(x.id, [y.id])).unwrap();
        crm.duplicates().undo_merge(&a, &done.merge_id).unwrap();
        assert!(
            matches!(crm.duplicates().undo_merge(&a, &done.merge_id), Err(Error::InvalidState(_))),
            "{name}: undone twice"
        );
        assert!(matches!(crm.duplicates().undo_merge(&a, "nope"), Err(Error::NotFound { .. })), "{name}");
    }
}

#[test]
fn survivorship_most_recent_and_most_complete() {
    for (name, crm, clock, _dir) in common::backends(t0()) {
        let a = alice();
        let old =
            crm.customers().create(&a, NewCustomer::new("星河科技").address("北京市海淀区").source("展会")).unwrap();
        clock.advance(Duration::hours(1));
        let new = crm.customers().create(&a, NewCustomer::new("星河科技有限公司").address("北京市朝阳区")).unwrap();
        let recent = crm.duplicates().plan_merge(&a, &MergeRequest::new(old.id, [new.id])).unwrap();
        assert_eq!(recent.survivor.name, "星河科技有限公司", "{name}");
        assert_eq!(recent.survivor.address.as_deref(), Some("北京市朝阳区"), "{name}");
        assert_eq!(recent.survivor.source.as_deref(), Some("展会"), "{name}: the only value");
        let complete = crm
            .duplicates()
            .plan_merge(&a, &MergeRequest::new(old.id, [new.id]).policy(Survivorship::MostComplete))
            .unwrap();
        assert_eq!(complete.survivor.address.as_deref(), Some("北京市海淀区"), "{name}: more fields filled");
        assert_eq!((complete.survivor.id, complete.survivor.code.as_str()), (old.id, old.code.as_str()));
    }
}

#[test]
fn merge_then_undo_restores_the_exact_prior_state() {
    for (name, crm, clock, _dir) in common::backends(t0()) {
        let cases = if name == "sqlite" { 12 } else { 24 };
        let mut runner = TestRunner::new(Config { cases, source_file: Some(file!()), ..Config::default() });
        let shape = (prop::collection::vec((0usize..3, any::<bool>(), 0usize..3), 2..5), any::<bool>(), any::<bool>());
        let round = std::cell::Cell::new(0);
        runner
            .run(&shape, |(records, complete, choose)| {
                round.set(round.get() + 1);
                clock.advance(Duration::minutes(1));
                let names = ["华为技术有限公司", "华为技术股份有限公司", "华为"];
                let customers: Vec<Customer> = records
                    .iter()
                    .enumerate()
                    .map(|(i, (n, addr, tag))| {
                        clock.advance(Duration::seconds(1));
                        let nm = format!("{}{}{i}", names[i % 3], round.get());
                        customer_with(&crm, &nm, *n, ["VIP", "展会", "老客户"][*tag], addr.then_some("深圳市南山区"))
                    })
                    .collect();
                let ids: Vec<CustomerId> = customers.iter().map(|c| c.id).collect();
                let before = snapshot(&crm, &ids);
                let policy = if complete { Survivorship::MostComplete } else { Survivorship::MostRecent };
                let mut request = MergeRequest::new(ids[0], ids[1..].to_vec()).policy(policy);
                if choose {
                    request = request.choose("name", ids[ids.len() - 1]);
                }
                let done = crm.duplicates().merge(&alice(), &request).unwrap();
                let total: usize = records.iter().map(|r| r.0).sum();
                prop_assert_eq!(crm.contacts().list(&alice(), ids[0]).unwrap().len(), total, "{}: nothing lost", name);
                prop_assert_eq!(crm.interactions().list(&alice(), ids[0]).unwrap().len(), total);
                prop_assert_ne!(snapshot(&crm, &ids), before.clone());
                crm.duplicates().undo_merge(&alice(), &done.merge_id).unwrap();
                prop_assert_eq!(snapshot(&crm, &ids), before, "{}", name);
                Ok(())
            })
            .unwrap();
    }
}

//! Behaviour events and segments through the facade, on every backend: bulk ingest checked,
//! scoped and idempotent; the seed's IELTS segment at its window's edges in the store's time
//! zone; members never outside the actor's scope; explain.

mod common;

use chrono::Duration;
use guanxi::access::User;
use guanxi::marketing::{BehaviourEvent, EventRange, Segment};
use guanxi::*;

use common::marketing::{alice, t0, view};

#[test]
fn events_are_checked_scoped_idempotent_and_read_back_in_time_order() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let c = crm.customers().create(&a, NewCustomer::new("李雷").kind(CustomerKind::Individual)).unwrap();
        let events = crm.marketing().events();
        // Every bad event named; nothing written.
        let mut bad = view(c.id, "/x", t0());
        bad.name = " ".into();
        let mut worse = view(c.id, "/y", t0());
        worse.properties.insert("no spaces".into(), CustomValue::Bool(true));
        let err = events.record(&a, vec![view(c.id, "/ok", t0()), bad, worse]).unwrap_err();
        let Error::Validation(errs) = &err else { panic!("{name}: {err}") };
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["events[1].name", "events[2].properties.no spaces"], "{name}");
        // The contact who did it, when known: one of the customer's own.
        let other = crm.customers().create(&a, NewCustomer::new("韩梅梅").contact(NewContact::new("韩梅梅"))).unwrap();
        let theirs = crm.contacts().list(&a, other.id).unwrap()[0].id;
        let err = events.record(&a, vec![view(c.id, "/x", t0()).by_contact(theirs)]).unwrap_err();
        let Error::Validation(errs) = &err else { panic!("{name}: {err}") };
        assert_eq!(errs.0[0].field, "events[0].contact_id", "{name}");
        events.record(&a, vec![view(other.id, "/mine", t0()).by_contact(theirs)]).unwrap();
        let listed = events.list(&a, other.id, &EventRange::default(), &PageRequest::first(5)).unwrap();
        assert_eq!(listed.items[0].contact_id, Some(theirs), "{name}");
        let unknown = events.record(&a, vec![view(CustomerId(uuid::Uuid::from_u128(9)), "/", t0())]).unwrap_err();
        assert!(matches!(unknown, Error::NotFound { entity: EntityKind::Customer, .. }), "{name}: {unknown}");
        let all = || events.list(&a, c.id, &EventRange::default(), &PageRequest::first(100)).unwrap().items;
        assert!(all().is_empty(), "{name}");

        // Idempotent by external id, across calls and within one.
        let tagged = |n: u32, hours: i64| {
            let mut e = view(c.id, &format!("/p/{n}"), t0() - Duration::hours(hours));
            e.external_id = Some(format!("web-{n}"));
            e
        };
        let first = events.record(&a, vec![tagged(1, 5), tagged(2, 1), tagged(1, 9)]).unwrap();
        assert_eq!((first.recorded.len(), first.duplicates.as_slice()), (2, ["web-1".to_owned()].as_slice()), "{name}");
        let again = events.record(&a, vec![tagged(2, 1), tagged(3, 3)]).unwrap();
        assert_eq!((again.recorded.len(), again.duplicates.as_slice()), (1, ["web-2".to_owned()].as_slice()), "{name}");
        let urls: Vec<String> = all().iter().map(|e| e.properties["url"].to_string()).collect();
        assert_eq!(urls, ["/p/1", "/p/3", "/p/2"], "{name}: in the order they happened");
        let recent = EventRange { from: Some(t0() - Duration::hours(4)), to: None };
        assert_eq!(events.list(&a, c.id, &recent, &PageRequest::first(10)).unwrap().items.len(), 2, "{name}");
        // One change-log entry per customer per batch, counting its events.
        let log = crm
            .audit()
            .entries(&a, &ChangeLogQuery { entity_id: Some(c.id.to_string()), ..Default::default() })
            .unwrap();
        let counted: Vec<String> = log
            .iter()
            .flat_map(|e| &e.changes)
            .filter(|ch| ch.field == "events")
            .map(|ch| format!("{:?}", ch.new))
            .collect();
        assert_eq!(counted.len(), 2, "{name}: {counted:?}");
    }
}

/// The seed's rule through the facade: opened the IELTS page 3 times in 30 days without
/// enrolling; the third view 29 days ago counts, 31 days ago does not.
#[test]
fn the_ielts_segment_finds_its_customers_and_says_why() {
    let rule = Segment::parse(
        "count(event = \"page_view\", url ~ \"ielts\", within = 30d) >= 3 AND count(event = enroll, course = ielts) = 0",
    )
    .unwrap();
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let person = |n: &str| crm.customers().create(&a, NewCustomer::new(n).kind(CustomerKind::Individual)).unwrap();
        let (in_29, out_31, enrolled) = (person("王芳"), person("李娜"), person("张伟"));
        let day = |d: i64| t0() - Duration::days(d);
        let mut batch = Vec::new();
        for c in [&in_29, &out_31, &enrolled] {
            batch.push(view(c.id, "/courses/IELTS", day(1)));
            batch.push(view(c.id, "/courses/ielts?from=ad", day(2)));
        }
        batch.push(view(in_29.id, "/ielts/fees", day(29)));
        batch.push(view(out_31.id, "/ielts/fees", day(31)));
        batch.push(view(enrolled.id, "/ielts/fees", day(3)));
        batch.push(
            BehaviourEvent::new(enrolled.id, "enroll", day(1)).property("course", CustomValue::Text("IELTS".into())),
        );
        crm.marketing().events().record(&a, batch).unwrap();
        let members: Vec<String> =
            crm.marketing().segments().members(&a, &rule).unwrap().into_iter().map(|c| c.name).collect();
        assert_eq!(members, ["王芳"], "{name}");
        let why = crm.marketing().segments().explain(&a, out_31.id, &rule).unwrap();
        assert!(!why.holds, "{name}");
        assert_eq!((why.parts[0].count, why.parts[0].holds), (Some(2), false), "{name}: {why:?}");
        let why = crm.marketing().segments().explain(&a, enrolled.id, &rule).unwrap();
        assert_eq!((why.parts[0].holds, why.parts[1].count), (true, Some(1)), "{name}: {why:?}");
    }
}

/// A segment never yields a customer the actor may not see; recording events needs the
/// right to update their customer.
#[test]
fn segments_and_events_keep_to_the_actor_s_scope() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let root = common::staff(&crm, t0(), &[("wang", BuiltinRole::SalesRep), ("zhao", BuiltinRole::SalesRep)]);
        let own = |owner: &str, n: &str| common::vip_of(&crm, &root, owner, n);
        let (wangs, zhaos) = (own("wang", "王的客户"), own("zhao", "赵的客户"));
        let wang = Actor::user("wang").unwrap();
        let vip = Segment::parse("tag:VIP").unwrap();
        let seen: Vec<CustomerId> =
            crm.marketing().segments().members(&wang, &vip).unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!(seen, [wangs.id], "{name}");
        let err = crm.marketing().segments().explain(&wang, zhaos.id, &vip).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{name}: {err}");
        let err = crm.marketing().events().record(&wang, vec![view(zhaos.id, "/", t0())]).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{name}: {err}");
        crm.marketing().events().record(&wang, vec![view(wangs.id, "/", t0())]).unwrap();
        let err = crm.marketing().events().list(&wang, zhaos.id, &EventRange::default(), &PageRequest::first(5));
        assert!(matches!(err, Err(Error::PermissionDenied { .. })), "{name}: {err:?}");
        // Counts and pages agree with the members, scope included.
        for n in 0..5 {
            own(if n % 2 == 0 { "wang" } else { "zhao" }, &format!("客户{n}"));
        }
        let segments = crm.marketing().segments();
        assert_eq!(segments.count(&wang, &vip).unwrap(), 4, "{name}");
        assert_eq!(segments.count(&root, &vip).unwrap(), 7, "{name}");
        let mut paged = Vec::new();
        let mut page = PageRequest::first(3);
        loop {
            let p = segments.members_page(&wang, &vip, page).unwrap();
            paged.extend(p.items.into_iter().map(|c| c.id));
            match p.next {
                Some(next) => page = PageRequest::after(next, 3),
                None => break,
            }
        }
        let all: Vec<CustomerId> = segments.members(&wang, &vip).unwrap().into_iter().map(|c| c.id).collect();
        assert_eq!((paged.len(), &paged), (4, &all), "{name}");
        // A purge removes every customer's events: not for a rep, not without elevation.
        let err = crm.marketing().events().purge(&wang).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{name}: {err}");
        let err = crm.marketing().events().purge(&Actor::user("root").unwrap()).unwrap_err();
        assert!(matches!(err, Error::ElevationRequired { .. }), "{name}: {err}");
        assert_eq!(crm.marketing().events().purge(&root).unwrap().purged, 0, "{name}");
    }
}

/// A segment on a custom field the actor's field rules mask or hide is refused: its members
/// would tell the value.
#[test]
fn segments_on_masked_fields_are_refused() {
    use guanxi::access::{Role, Scope, Visibility};
    for (name, crm, _, _dir) in common::backends(t0()) {
        let root = Actor::user("root").unwrap().elevated_until(t0() + Duration::minutes(10));
        crm.access().set_user(&root, User::new("root", "管理员").unwrap().role(BuiltinRole::Administrator)).unwrap();
        crm.custom_fields()
            .create(&root, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal))
            .unwrap();
        let analyst = Role::new("analyst", "分析")
            .unwrap()
            .grant(EntityKind::Customer, &[Action::Read], Scope::All)
            .field(EntityKind::Customer, "custom.budget", Visibility::Hidden);
        crm.access().set_role(&root, analyst).unwrap();
        crm.access()
            .set_user(&root, User::new("qian", "钱").unwrap().custom_role(&RoleId::new("analyst").unwrap()))
            .unwrap();
        let c = crm
            .customers()
            .create(&root, NewCustomer::new("甲").custom("budget", CustomValue::Decimal("900000".parse().unwrap())))
            .unwrap();
        let qian = Actor::user("qian").unwrap();
        let rich = Segment::parse("custom.budget > 500000").unwrap();
        assert_eq!(crm.marketing().segments().count(&root, &rich).unwrap(), 1, "{name}");
        for err in [
            crm.marketing().segments().count(&qian, &rich).unwrap_err(),
            crm.marketing().segments().members(&qian, &rich).unwrap_err(),
            crm.marketing().segments().explain(&qian, c.id, &rich).unwrap_err(),
        ] {
            assert!(
                matches!(&err, Error::PermissionDenied { reason, .. } if reason.contains("custom.budget")),
                "{name}: {err}"
            );
        }
        let visible = Segment::parse("NOT tag:x").unwrap();
        assert_eq!(crm.marketing().segments().count(&qian, &visible).unwrap(), 1, "{name}");
    }
}

/// A retention refuses older events when they are recorded and a purge removes them: elevated,
/// by an actor who may delete every customer; logged and announced.
#[test]
fn events_past_the_retention_are_refused_and_purged() {
    use guanxi::marketing::MarketingSettings;
    for (name, crm, clock, _dir) in common::backends(t0()) {
        let a = alice();
        let c = crm.customers().create(&a, NewCustomer::new("李雷").kind(CustomerKind::Individual)).unwrap();
        let day = |d: i64| t0() - Duration::days(d);
        let batch: Vec<BehaviourEvent> = [1, 10, 40, 400].iter().map(|d| view(c.id, "/", day(*d))).collect();
        crm.marketing().events().record(&a, batch).unwrap();
        assert_eq!(crm.marketing().events().purge(&a).unwrap().purged, 0, "{name}: no retention, nothing purged");
        crm.marketing().set_settings(&a, MarketingSettings { event_retention_days: Some(30) }).unwrap();
        assert_eq!(crm.marketing().settings(&a).unwrap().event_retention_days, Some(30), "{name}");
        let err =
            crm.marketing().events().record(&a, vec![view(c.id, "/", day(2)), view(c.id, "/", day(31))]).unwrap_err();
        match err {
            Error::Validation(errs) => assert_eq!(errs.0[0].field, "events[1].at", "{name}"),
            other => panic!("{name}: {other}"),
        }
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        crm.subscribe(move |e| sink.lock().unwrap().push(e.payload.name()));
        let done = crm.marketing().events().purge(&a).unwrap();
        assert_eq!((done.purged, done.before), (2, Some(t0() - Duration::days(30))), "{name}");
        let left = crm.marketing().events().list(&a, c.id, &EventRange::default(), &PageRequest::first(10)).unwrap();
        assert_eq!(left.items.len(), 2, "{name}");
        assert!(seen.lock().unwrap().contains(&"events_purged"), "{name}");
        let _ = clock;
    }
}

/// A segment past its bounds (built as a value, not parsed) is a typed validation error,
/// never a database error.
#[test]
fn oversized_segments_are_refused_before_any_query() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let wide = Segment::Or((0..1_000).map(|i| Segment::tag(format!("t{i}"))).collect());
        for err in [
            crm.marketing().segments().count(&a, &wide).unwrap_err(),
            crm.marketing().segments().members(&a, &wide).unwrap_err(),
        ] {
            match err {
                Error::Validation(errs) => assert_eq!(errs.0[0].field, "segment", "{name}"),
                other => panic!("{name}: {other}"),
            }
        }
        // At the bound, the query runs on every backend.
        let widest = Segment::parse(&vec!["tag:x"; 256].join(" OR ")).unwrap();
        assert_eq!(crm.marketing().segments().count(&a, &widest).unwrap(), 0, "{name}");
        let values = format!("status in ({})", vec!["lost"; 10_000].join(","));
        assert_eq!(crm.marketing().segments().count(&a, &Segment::parse(&values).unwrap()).unwrap(), 0, "{name}");
    }
}

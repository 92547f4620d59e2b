//! Saved segments through the facade, on every backend: membership stored with when and why,
//! kept current by the writes and events each segment depends on, by `reevaluate_due` as
//! time passes, and by manual includes and excludes; dynamic tags that follow; references
//! between segments with cycles refused; history; scope.

mod common;

use chrono::Duration;
use guanxi::marketing::{BehaviourEvent, MembershipReason, SavedSegment, Segment, SegmentMembership};
use guanxi::*;

use common::marketing::{alice, t0, view};

const IELTS: &str =
    r#"count(event = "page_view", url ~ "ielts", within = 30d) >= 3 AND count(event = enroll, course = ielts) = 0"#;

fn current(crm: &Crm, actor: &Actor, name: &str) -> Vec<(CustomerId, MembershipReason)> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(2);
    loop {
        let p = crm.marketing().segments().current(actor, name, page).unwrap();
        out.extend(p.items.iter().map(|m| (m.customer_id, m.entered_because)));
        match p.next {
            Some(next) => page = PageRequest::after(next, 2),
            None => return out,
        }
    }
}

fn history(crm: &Crm, name: &str, customer: CustomerId) -> Vec<SegmentMembership> {
    crm.marketing().segments().history(&alice(), name, Some(customer), PageRequest::first(100)).unwrap().items
}

fn region(province: &str, city: &str) -> Region {
    Region { province: province.into(), city: city.into(), district: String::new() }
}

fn tags(crm: &Crm, c: CustomerId) -> Vec<String> {
    crm.customers().get(&alice(), c).unwrap().tags.into_iter().collect()
}

/// The seed's rule, saved with its dynamic tag: the third view enters the customer (tag
/// added, logged, announced), enrolling takes it out (tag removed); time passing takes out
/// one whose views age out of the window, through `reevaluate_due`.
#[test]
fn the_ielts_segment_follows_events_and_time_with_its_tag() {
    for (name, crm, clock, _dir) in common::backends(t0()) {
        let a = alice();
        let seen = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let sink = seen.clone();
        crm.subscribe(move |e| sink.lock().unwrap().push(e.payload.clone()));
        let person = |n: &str| crm.customers().create(&a, NewCustomer::new(n).kind(CustomerKind::Individual)).unwrap();
        let (wang, li) = (person("王芳"), person("李娜"));
        let day = |d: i64| t0() - Duration::days(d);
        let segments = crm.marketing().segments();
        let saved = segments
            .save(&a, SavedSegment::new("雅思意向", Segment::parse(IELTS).unwrap()).with_tag("雅思意向", false))
            .unwrap();
        assert_eq!(saved.tag.as_ref().unwrap().tag, "雅思意向", "{name}");
        let events = crm.marketing().events();
        events.record(&a, vec![view(wang.id, "/ielts", day(2)), view(wang.id, "/IELTS/fees", day(1))]).unwrap();
        assert!(current(&crm, &a, "雅思意向").is_empty(), "{name}: two views are not enough");
        seen.lock().unwrap().clear();
        // The third view: in at once, tagged, announced.
        events.record(&a, vec![view(wang.id, "/ielts?from=ad", t0())]).unwrap();
        assert_eq!(current(&crm, &a, "雅思意向"), [(wang.id, MembershipReason::Matched)], "{name}");
        assert_eq!(tags(&crm, wang.id), ["雅思意向"], "{name}");
        let raised = seen.lock().unwrap().clone();
        assert!(
            raised.contains(&DomainEvent::SegmentEntered {
                segment: "雅思意向".into(),
                customer: wang.id,
                reason: MembershipReason::Matched
            }),
            "{name}: {raised:?}"
        );
        assert!(raised.contains(&DomainEvent::TagAdded { customer: wang.id, tag: "雅思意向".into() }), "{name}");
        // Logged in the customer's timeline, like any change.
        let timeline = crm.customers().timeline(&a, wang.id).unwrap();
        let logged = timeline.iter().any(|t| {
            matches!(&t.item, TimelineItem::Change(c) if c.entity == EntityKind::Segment && c.entity_id == "雅思意向")
        });
        assert!(logged, "{name}");
        // An event the segment does not count changes nothing; enrolling takes it out.
        events.record(&a, vec![BehaviourEvent::new(wang.id, "login", t0())]).unwrap();
        assert_eq!(current(&crm, &a, "雅思意向").len(), 1, "{name}");
        let enroll = BehaviourEvent::new(wang.id, "enroll", t0()).property("course", CustomValue::Text("IELTS".into()));
        events.record(&a, vec![enroll]).unwrap();
        assert!(current(&crm, &a, "雅思意向").is_empty(), "{name}");
        assert!(tags(&crm, wang.id).is_empty(), "{name}: the dynamic tag goes with the membership");
        let stays = history(&crm, "雅思意向", wang.id);
        assert_eq!(stays.len(), 1, "{name}");
        assert_eq!(
            (stays[0].entered_at, stays[0].exited_at, stays[0].exited_because),
            (t0(), Some(t0()), Some(MembershipReason::NoLongerMatches)),
            "{name}"
        );

        // Views on days 28, 2 and 1: in now; three days on, the first has left the window.
        events
            .record(
                &a,
                vec![view(li.id, "/ielts", day(28)), view(li.id, "/ielts", day(2)), view(li.id, "/ielts", day(1))],
            )
            .unwrap();
        assert_eq!(current(&crm, &a, "雅思意向"), [(li.id, MembershipReason::Matched)], "{name}");
        clock.advance(Duration::days(2));
        let done = segments.reevaluate_due(&a).unwrap();
        assert!(done.exited.is_empty(), "{name}: day 30 still counts: {done:?}");
        clock.advance(Duration::days(1));
        let done = segments.reevaluate_due(&a).unwrap();
        assert_eq!(done.exited.get("雅思意向"), Some(&1), "{name}: {done:?}");
        assert!(current(&crm, &a, "雅思意向").is_empty(), "{name}");
        assert!(tags(&crm, li.id).is_empty(), "{name}");
        // Nothing left to do: a second run changes nothing.
        assert_eq!(segments.reevaluate_due(&a).unwrap(), Reevaluated::default(), "{name}");
    }
}

/// Includes and excludes survive re-evaluation; a sticky tag stays; deleting a customer or
/// the segment closes the stays, whose history stays readable.
#[test]
fn manual_members_sticky_tags_and_deletions() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let vip = crm.customers().create(&a, NewCustomer::new("甲").tag("VIP")).unwrap();
        let plain = crm.customers().create(&a, NewCustomer::new("乙")).unwrap();
        let other = crm.customers().create(&a, NewCustomer::new("丙").tag("VIP")).unwrap();
        let segments = crm.marketing().segments();
        segments.save(&a, SavedSegment::new("vip", Segment::parse("tag:VIP").unwrap()).with_tag("重点", true)).unwrap();
        let mut members = current(&crm, &a, "vip");
        members.sort();
        let mut expected = vec![(vip.id, MembershipReason::Matched), (other.id, MembershipReason::Matched)];
        expected.sort();
        assert_eq!(members, expected, "{name}: evaluated when saved");

        segments.include(&a, "vip", &[plain.id]).unwrap();
        segments.exclude(&a, "vip", &[vip.id]).unwrap();
        let has =
            |m: &[(CustomerId, MembershipReason)], id: CustomerId| m.iter().find(|(c, _)| *c == id).map(|(_, r)| *r);
        let members = current(&crm, &a, "vip");
        assert_eq!(has(&members, plain.id), Some(MembershipReason::Included), "{name}");
        assert_eq!(has(&members, vip.id), None, "{name}");
        assert_eq!(history(&crm, "vip", vip.id)[0].exited_because, Some(MembershipReason::Excluded), "{name}");
        assert!(tags(&crm, vip.id).contains(&"重点".to_owned()), "{name}: a sticky tag stays");
        // A write that re-evaluates the excluded customer leaves it out.
        crm.tags().add(&a, vip.id, "其他").unwrap();
        assert_eq!(has(&current(&crm, &a, "vip"), vip.id), None, "{name}");
        assert_eq!(segments.reevaluate(&a, "vip").unwrap(), Reevaluated::default(), "{name}");
        // Back to the rule.
        segments.reset_manual(&a, "vip", &[vip.id, plain.id]).unwrap();
        let members = current(&crm, &a, "vip");
        assert_eq!(has(&members, vip.id), Some(MembershipReason::Matched), "{name}");
        assert_eq!(has(&members, plain.id), None, "{name}");
        assert_eq!(history(&crm, "vip", vip.id).len(), 2, "{name}: one stay per visit");

        let version = crm.customers().get(&a, other.id).unwrap().version;
        crm.customers().delete(&a, other.id, version).unwrap();
        let stays = crm.marketing().segments().history(&a, "vip", Some(other.id), PageRequest::first(5)).unwrap();
        assert_eq!(stays.items[0].exited_because, Some(MembershipReason::CustomerRemoved), "{name}");

        segments.delete(&a, "vip").unwrap();
        assert!(matches!(segments.get(&a, "vip"), Err(Error::NotFound { .. })), "{name}");
        assert_eq!(history(&crm, "vip", vip.id)[1].exited_because, Some(MembershipReason::SegmentDeleted), "{name}");
        // Saved again: it starts over, its old history kept.
        segments.save(&a, SavedSegment::new("vip", Segment::parse("tag:VIP").unwrap())).unwrap();
        assert_eq!(history(&crm, "vip", vip.id).len(), 3, "{name}");
    }
}

/// `segment:<name>` refers to a saved segment's rule; unknown names, cycles of references
/// and dynamic tags that feed back are refused when saved; a segment in use is not deleted.
#[test]
fn references_between_segments_and_cycles() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let a = alice();
        let both =
            crm.customers().create(&a, NewCustomer::new("甲").tag("VIP").region(region("上海市", "上海市"))).unwrap();
        crm.customers().create(&a, NewCustomer::new("乙").tag("VIP").region(region("广东省", "广州市"))).unwrap();
        let segments = crm.marketing().segments();
        let save = |n: &str, text: &str| segments.save(&a, SavedSegment::new(n, Segment::parse(text).unwrap()));
        let err = save("east_vip", "segment:vip AND region:华东").unwrap_err();
        assert!(err.to_string().contains("segment:vip, which is not saved"), "{name}: {err}");
        save("vip", "tag:VIP").unwrap();
        save("east_vip", "segment:vip AND region:华东").unwrap();
        assert_eq!(current(&crm, &a, "east_vip"), [(both.id, MembershipReason::Matched)], "{name}");
        // A live evaluation reads references too; an unknown one is refused.
        let by_reference = Segment::parse("segment:east_vip").unwrap();
        assert_eq!(segments.count(&a, &by_reference).unwrap(), 1, "{name}");
        assert_eq!(segments.members(&a, &by_reference).unwrap()[0].id, both.id, "{name}");
        assert!(segments.explain(&a, both.id, &by_reference).unwrap().holds, "{name}");
        assert!(matches!(segments.count(&a, &Segment::parse("segment:nope").unwrap()), Err(Error::Validation(_))));
        // Changing the referred segment re-evaluates the one referring to it.
        save("vip", "tag:VIP AND province = 广东").unwrap();
        assert!(current(&crm, &a, "east_vip").is_empty(), "{name}");
        let err = save("vip", "segment:east_vip").unwrap_err();
        assert!(err.to_string().contains("cycle"), "{name}: {err}");
        let err = segments.delete(&a, "vip").unwrap_err();
        assert!(err.to_string().contains("used by the saved segment east_vip"), "{name}: {err}");
        // A dynamic tag its own rule (or another's, round the loop) tests.
        let looped = SavedSegment::new("loop", Segment::parse("NOT tag:x").unwrap()).with_tag("x", false);
        let err = segments.save(&a, looped).unwrap_err();
        assert!(err.to_string().contains("feed back"), "{name}: {err}");
        segments.save(&a, SavedSegment::new("a", Segment::parse("tag:y").unwrap()).with_tag("x", false)).unwrap();
        let err = segments.save(&a, SavedSegment::new("b", Segment::parse("tag:x").unwrap()).with_tag("y", false));
        assert!(err.unwrap_err().to_string().contains("feed back"), "{name}");
        // A chain without a loop is fine, and follows within one write: y → x.
        segments.save(&a, SavedSegment::new("b", Segment::parse("tag:VIP").unwrap()).with_tag("y", false)).unwrap();
        assert!(tags(&crm, both.id).contains(&"x".to_owned()), "{name}: {:?}", tags(&crm, both.id));
        crm.tags().remove(&a, both.id, "VIP").unwrap();
        assert!(!tags(&crm, both.id).iter().any(|t| t == "x" || t == "y"), "{name}: {:?}", tags(&crm, both.id));
        // Bad definitions: every field named.
        let mut bad = SavedSegment::new("has space", Segment::parse("tag:a").unwrap()).with_tag(" ", false);
        bad.description = Some("x".repeat(2_000));
        let Error::Validation(errs) = segments.save(&a, bad).unwrap_err() else { panic!("{name}") };
        let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["name", "description", "tag.tag"], "{name}");
    }
}

/// Membership reads keep to the reader's scope; saving needs the right to configure
/// segments; a saved segment on a field the reader's rules mask is not read.
#[test]
fn saved_segments_keep_to_the_actor_s_scope() {
    for (name, crm, _, _dir) in common::backends(t0()) {
        let staff = [("wang", BuiltinRole::SalesRep), ("zhao", BuiltinRole::SalesRep), ("mei", BuiltinRole::Marketing)];
        let root = common::staff(&crm, t0(), &staff);
        let own = |owner: &str, n: &str| common::vip_of(&crm, &root, owner, n);
        let (wangs, _zhaos) = (own("wang", "王的客户"), own("zhao", "赵的客户"));
        let (wang, mei) = (Actor::user("wang").unwrap(), Actor::user("mei").unwrap());
        let vip = SavedSegment::new("vip", Segment::parse("tag:VIP").unwrap());
        let err = crm.marketing().segments().save(&wang, vip.clone()).unwrap_err();
        assert!(matches!(err, Error::PermissionDenied { .. }), "{name}: {err}");
        crm.marketing().segments().save(&mei, vip).unwrap();
        assert_eq!(current(&crm, &wang, "vip"), [(wangs.id, MembershipReason::Matched)], "{name}");
        assert_eq!(current(&crm, &mei, "vip").len(), 2, "{name}");
        assert_eq!(crm.marketing().segments().list(&wang).unwrap().len(), 1, "{name}");
    }
}

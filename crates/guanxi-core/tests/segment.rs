//! Segments: the text form reads back what it prints, errors say where, and the reference
//! evaluator follows the rules the issue sets out (the seed's IELTS rule at its window's edges).

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, Utc};
use guanxi_core::marketing::{
    BehaviourEvent, CmpOp, CountSource, EventCount, Literal, Predicate, PropertyFilter, Segment, SegmentContext,
    SegmentFacts, SegmentField,
};
use guanxi_core::testing::conformance::sample_customer;
use guanxi_core::{CustomValue, Customer, Interaction, InteractionKind, LifecycleStatus, Region};
use proptest::prelude::*;
use rust_decimal::Decimal;

fn now() -> DateTime<Utc> {
    // 2024-06-01 10:00 in UTC+8.
    "2024-06-01T02:00:00Z".parse().unwrap()
}

fn customer() -> Customer {
    let mut c = sample_customer(2);
    c.status = LifecycleStatus::Potential;
    c.region = Some(Region { province: "浙江省".into(), city: "杭州市".into(), district: String::new() });
    c.tags = ["VIP".to_owned(), "教育".to_owned()].into();
    c.custom = BTreeMap::from([
        ("spend_12m".to_owned(), CustomValue::Decimal(Decimal::new(1_500_005, 1))),
        ("since".to_owned(), CustomValue::Date(chrono::NaiveDate::from_ymd_opt(2020, 1, 2).unwrap())),
    ]);
    c
}

fn holds(text: &str, c: &Customer, facts: SegmentFacts<'_>) -> bool {
    let mut ctx = SegmentContext::at(now());
    ctx.tag_groups.insert("教育".into(), "行业".into());
    Segment::parse(text).unwrap_or_else(|e| panic!("{text}: {e}")).matches(c, facts, &ctx)
}

#[test]
fn fields_tags_regions_and_logic() {
    let c = customer();
    let none = SegmentFacts::default();
    for (text, expected) in [
        ("tag:VIP", true),
        ("tag:vip", false),
        ("tag_group:行业", true),
        ("region:华东", true),
        ("region:浙江", true),
        ("region:杭州市", true),
        ("region:华南", false),
        ("status = potential", true),
        ("status:潜在", true),
        ("status in (customer, lost)", false),
        ("custom.spend_12m >= 150000", true),
        ("custom.spend_12m > 150000.5", false),
        ("custom.since < 2021-01-01", true),
        ("custom.missing = 1", false),
        ("custom.missing != 1", true),
        ("name ~ trading", true),
        ("tag:VIP AND NOT status = lost AND custom.spend_12m >= 100000", true),
        ("tag:VIP 与 非 tag:教育", false),
        ("tag:none OR tag:VIP AND region:华东", true),
        ("(tag:none OR tag:VIP) AND region:华南", false),
        ("NOT (tag:none OR tag:VIP)", false),
    ] {
        assert_eq!(holds(text, &c, none), expected, "{text}");
    }
}

#[test]
fn dates_relative_to_today_count_the_store_s_calendar_days() {
    let mut c = customer();
    // Created 2024-05-02 20:00 UTC+8: 30 days before 2024-06-01.
    c.created_at = "2024-05-02T12:00:00Z".parse().unwrap();
    assert!(holds("created_at >= 30d ago", &c, SegmentFacts::default()));
    assert!(!holds("created_at >= 29d ago", &c, SegmentFacts::default()));
}

fn view(c: &Customer, url: &str, at: DateTime<Utc>) -> BehaviourEvent {
    BehaviourEvent::new(c.id, "page_view", at).property("url", CustomValue::Text(url.into()))
}

/// The seed's rule: opened the IELTS course page 3 times in 30 days without enrolling.
#[test]
fn the_ielts_rule_at_its_window_edges() {
    let c = customer();
    let rule = "count(event = \"page_view\", url ~ \"ielts\", within = 30d) >= 3 \
                AND count(event = \"enroll\", course = ielts) = 0";
    let day = |n: i64| now() - Duration::days(n);
    let two = [view(&c, "/courses/IELTS", day(1)), view(&c, "/courses/ielts?ref=ad", day(3))];
    let with = |third: BehaviourEvent, more: &[BehaviourEvent]| {
        let mut events = two.to_vec();
        events.push(third);
        events.extend_from_slice(more);
        events
    };
    fn facts(events: &[BehaviourEvent]) -> SegmentFacts<'_> {
        SegmentFacts { events, interactions: &[] }
    }
    assert!(holds(rule, &c, facts(&with(view(&c, "/courses/ielts", day(29)), &[]))), "day 29 counts");
    assert!(holds(rule, &c, facts(&with(view(&c, "/courses/ielts", day(30)), &[]))), "day 30 counts");
    assert!(!holds(rule, &c, facts(&with(view(&c, "/courses/ielts", day(31)), &[]))), "day 31 does not");
    assert!(!holds(rule, &c, facts(&with(view(&c, "/courses/toefl", day(2)), &[]))), "another page");
    assert!(!holds(rule, &c, facts(&two)), "two views");
    // The window is by calendar day in the store's zone: 31 days back at 23:30 UTC+8 is
    // still day 31, one minute after midnight UTC+8 of day 30 is day 30.
    let edge = |at: &str| view(&c, "/ielts", at.parse().unwrap());
    assert!(!holds(rule, &c, facts(&with(edge("2024-05-01T15:30:00Z"), &[])))); // 2024-05-01 23:30 +8
    assert!(holds(rule, &c, facts(&with(edge("2024-05-01T16:01:00Z"), &[])))); // 2024-05-02 00:01 +8
    // Enrolling takes the customer out, whenever it happened.
    let enrolled = BehaviourEvent::new(c.id, "enroll", day(200)).property("course", CustomValue::Text("IELTS".into()));
    assert!(!holds(rule, &c, facts(&with(view(&c, "/ielts", day(5)), &[enrolled]))));
    // A future event (clock skew at the sender) is not counted yet.
    assert!(!holds(rule, &c, facts(&with(view(&c, "/ielts", now() + Duration::hours(1)), &[]))));
}

#[test]
fn interactions_are_counted_by_kind_and_window() {
    let c = customer();
    let at = |days: i64| now() - Duration::days(days);
    let interactions: [Interaction; 1] = [guanxi_core::testing::conformance::interaction(1, c.id, at(100))];
    assert_eq!(interactions[0].kind, InteractionKind::Visit);
    let facts = SegmentFacts { events: &[], interactions: &interactions };
    assert!(holds("count(interaction, within = 90d) = 0", &c, facts), "no interaction in 90 days");
    assert!(!holds("count(interaction, within = 120d) = 0", &c, facts));
    assert!(holds("count(interaction = visit) >= 1", &c, facts));
    assert!(!holds("count(interaction = call) >= 1", &c, facts));
}

#[test]
fn explain_gives_every_node_s_value() {
    let c = customer();
    let s = Segment::parse("tag:VIP AND (region:华南 OR count(event = buy) < 1)").unwrap();
    let e = s.explain(&c, SegmentFacts::default(), &SegmentContext::at(now()));
    assert!(e.holds);
    assert_eq!(e.parts.len(), 2);
    assert_eq!((e.parts[1].parts[0].node.as_str(), e.parts[1].parts[0].holds), ("region:华南", false));
    assert_eq!((e.parts[1].parts[1].count, e.parts[1].parts[1].holds), (Some(0), true));
    assert_eq!(s.event_names().into_iter().collect::<Vec<_>>(), ["buy"]);
}

#[test]
fn errors_say_where_in_plain_words() {
    for (text, line, column, words) in [
        ("", 1, 1, "expected a test"),
        ("tag:VIP AND", 1, 12, "expected a test"),
        ("tag:VIP AND\n  status >", 2, 11, "expected a value"),
        ("status = lsot", 1, 10, "one of potential, customer, lost for status ('lsot' is not)"),
        ("colour = red", 1, 1, "expected a field"),
        ("tag:VIP OR (region:华东", 1, 22, "expected ) to close the ( at column 12"),
        ("count(event = view, within = 30) >= 3", 1, 32, "expected d after the number of days"),
        ("count(event = view) ~ 3", 1, 21, "a comparison of numbers"),
        ("level in a", 1, 10, "a list such as (a, b) after in"),
        ("tag:\"open", 1, 10, "expected \" to close the text at column 5"),
        ("tag:VIP tag:x", 1, 9, "expected AND, OR or the end of the text, found `tag:x`"),
        ("created_at >= 30d", 1, 18, "ago after a number of days"),
        ("custom.since < 2024-02-30", 1, 16, "a real day"),
        // chrono alone takes signed and short years, which print back differently
        ("custom.since = -023-01-01", 1, 16, "a real day"),
        ("custom.since = +2024-01-01", 1, 16, "a value"),
        ("custom.since = 02024-1-01", 1, 16, "a real day"),
    ] {
        let err = Segment::parse(text).unwrap_err();
        assert_eq!((err.line, err.column), (line, column), "{text}: {err}");
        assert!(err.to_string().contains(words), "{text}: {err}");
    }
    let deep = format!("{}tag:x{}", "(".repeat(100), ")".repeat(100));
    assert!(Segment::parse(&deep).unwrap_err().to_string().contains("levels of nesting"));
    assert!(Segment::parse(&"tag:x OR ".repeat(10_000)).is_err());
    // Bounded tests, values and list nesting (no deep recursion on `((((…`).
    let wide = vec!["tag:x"; 257].join(" OR ");
    let err = Segment::parse(&wide).unwrap_err();
    assert!(err.to_string().contains("at most 256 tests"), "{err}");
    assert!(Segment::parse(&vec!["tag:x"; 256].join(" OR ")).unwrap().validate().is_ok());
    let deep = format!("status in {}lost{}", "(".repeat(5_000), ")".repeat(5_000));
    assert!(Segment::parse(&deep).unwrap_err().to_string().contains("levels of nesting"));
    // A built segment holding a day the text cannot write is refused, naming the day.
    let far = chrono::NaiveDate::from_ymd_opt(-23, 1, 1).unwrap();
    let built = Segment::Is(Predicate::Field {
        field: SegmentField::Custom("since".into()),
        op: CmpOp::Eq,
        value: Literal::List(vec![Literal::Date(far)]),
    });
    let err = built.validate().unwrap_err();
    assert!(err.to_string().contains("-0023-01-01"), "{err}");
    let values = format!("status in ({})", vec!["lost"; 10_001].join(","));
    assert!(Segment::parse(&values).unwrap_err().to_string().contains("at most 10000 values"));
}

// ---- parse(print(s)) == s ----

fn text() -> impl Strategy<Value = String> {
    prop_oneof!["[a-zA-Z_][a-zA-Z0-9_.-]{0,8}", "[\\p{Han}]{1,4}", "[ -~]{0,10}", "[\\p{L}\\p{N} \"\\\\\n]{0,6}",]
}

fn number() -> impl Strategy<Value = Decimal> {
    (any::<i32>(), 0u32..4).prop_map(|(m, scale)| Decimal::new(i64::from(m), scale).normalize())
}

fn scalar() -> impl Strategy<Value = Literal> {
    prop_oneof![
        text().prop_map(Literal::Text),
        number().prop_map(Literal::Number),
        (0i64..40_000)
            .prop_map(|d| Literal::Date(chrono::NaiveDate::from_ymd_opt(1990, 1, 1).unwrap() + Duration::days(d))),
        (0u32..5_000).prop_map(Literal::DaysAgo),
        any::<bool>().prop_map(Literal::Bool),
    ]
}

fn op() -> impl Strategy<Value = CmpOp> {
    prop_oneof![
        Just(CmpOp::Eq),
        Just(CmpOp::Ne),
        Just(CmpOp::Lt),
        Just(CmpOp::Le),
        Just(CmpOp::Gt),
        Just(CmpOp::Ge),
        Just(CmpOp::Contains)
    ]
}

/// A comparison and a value that go together: `in` with a list, the others with one value.
fn compared(values: BoxedStrategy<Literal>) -> impl Strategy<Value = (CmpOp, Literal)> {
    prop_oneof![
        (op(), values.clone()),
        prop::collection::vec(values, 1..4).prop_map(|items| (CmpOp::In, Literal::List(items))),
    ]
}

fn predicate() -> impl Strategy<Value = Predicate> {
    let statuses = prop_oneof![Just("potential"), Just("customer"), Just("lost")]
        .prop_map(|s| Literal::Text(s.to_owned()))
        .boxed();
    let free = prop_oneof![
        Just(SegmentField::Source),
        Just(SegmentField::Owner),
        Just(SegmentField::City),
        Just(SegmentField::Name),
        Just(SegmentField::CreatedAt),
        "[a-z_][a-z0-9_]{0,6}".prop_map(SegmentField::Custom),
    ];
    prop_oneof![
        text().prop_map(Predicate::Tag),
        text().prop_map(Predicate::TagGroup),
        text().prop_map(Predicate::Segment),
        text().prop_map(Predicate::Region),
        compared(statuses).prop_map(|(op, value)| Predicate::Field { field: SegmentField::Status, op, value }),
        (free, compared(scalar().boxed())).prop_map(|(field, (op, value))| Predicate::Field { field, op, value }),
        (
            prop_oneof![
                text().prop_map(CountSource::Event),
                Just(CountSource::Interaction(None)),
                Just(CountSource::Interaction(Some(InteractionKind::Visit))),
            ],
            prop::collection::vec(("[a-z_][a-z0-9_]{0,6}", compared(scalar().boxed())), 0..3),
            prop::option::of(0u32..400),
            prop_oneof![Just(CmpOp::Eq), Just(CmpOp::Ge), Just(CmpOp::Lt), Just(CmpOp::Ne)],
            0u64..100,
        )
            .prop_map(|(source, filters, within_days, op, n)| {
                // Interactions have no properties to filter.
                let filters = match source {
                    CountSource::Event(_) => {
                        filters.into_iter().map(|(key, (op, value))| PropertyFilter { key, op, value }).collect()
                    }
                    CountSource::Interaction(_) => Vec::new(),
                };
                Predicate::Count(EventCount { source, filters, within_days, op, n })
            }),
    ]
}

fn segment() -> impl Strategy<Value = Segment> {
    predicate().prop_map(Segment::Is).prop_recursive(4, 24, 4, |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 2..4).prop_map(Segment::And),
            prop::collection::vec(inner.clone(), 2..4).prop_map(Segment::Or),
            inner.prop_map(|s| Segment::Not(Box::new(s))),
        ]
    })
}

proptest! {
    #[test]
    fn printing_then_parsing_gives_the_segment_back(s in segment()) {
        let printed = s.to_string();
        let parsed = Segment::parse(&printed).map_err(|e| TestCaseError::fail(format!("{printed}: {e}")))?;
        prop_assert_eq!(&parsed, &s, "printed as {}", printed);
        prop_assert!(parsed.validate().is_ok(), "a parsed segment is within the bounds");
        // Nested `and`s keep their parentheses; the normalized form prints without them and
        // means the same.
        let flat = s.clone().normalized();
        prop_assert_eq!(Segment::parse(&flat.to_string()).unwrap(), flat.clone());
        let c = customer();
        let ctx = SegmentContext::at(now());
        prop_assert_eq!(s.matches(&c, SegmentFacts::default(), &ctx), flat.matches(&c, SegmentFacts::default(), &ctx));
    }

    #[test]
    fn any_text_parses_or_fails_with_a_position_inside_it(text in "[ -~\\p{Han}\n]{0,60}") {
        if let Err(e) = Segment::parse(&text) {
            prop_assert!(e.line >= 1 && e.line <= text.matches('\n').count() + 1);
            prop_assert!(e.column >= 1);
        }
    }
}

#[test]
fn events_are_checked_before_they_are_recorded() {
    let c = customer();
    let mut e = BehaviourEvent::new(c.id, "page_view", now());
    e.properties.insert("bad key".into(), CustomValue::Text("x".repeat(3_000)));
    e.source = Some("a\u{0}b".into());
    let errs = e.validate().unwrap_err();
    let fields: Vec<&str> = errs.0.iter().map(|e| e.field.as_str()).collect();
    assert_eq!(fields, ["properties.bad key", "properties.bad key", "source"]);
    let ok = BehaviourEvent::new(c.id, " page_view ", now()).validate().unwrap();
    assert_eq!(ok.name, "page_view");
    let _ = FixedOffset::east_opt(0);
}

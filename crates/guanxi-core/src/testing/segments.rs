//! Random segments and random customers with events, drawn from one small vocabulary so that
//! predicates and data meet (tags, regions, typed custom values, event names and properties,
//! instants on both sides of day boundaries); and the conformance case that every store's
//! segment evaluation gives what the reference evaluator gives.

pub mod segment_data {
    //! Strategies for segments and for the customers, events and interactions they test.

    use std::collections::{BTreeMap, BTreeSet};

    use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
    use proptest::prelude::*;
    use rust_decimal::Decimal;

    use crate::marketing::{
        BehaviourEvent, CmpOp, CountSource, EventCount, Literal, Predicate, PropertyFilter, Segment, SegmentContext,
        SegmentField,
    };
    use crate::{CustomValue, InteractionKind, Level, LifecycleStatus, Region};

    /// The instant segments are evaluated at: 2024-06-01 10:00 in UTC+8.
    pub fn now() -> DateTime<Utc> {
        DateTime::from_timestamp(1_717_207_200, 0).unwrap_or_default()
    }

    /// The context the cases evaluate in: [`now`], UTC+8, two tag groups.
    pub fn context() -> SegmentContext {
        let mut ctx = SegmentContext::at(now());
        ctx.tag_groups =
            BTreeMap::from([("VIP".to_owned(), "等级".to_owned()), ("教育".to_owned(), "行业".to_owned())]);
        ctx
    }

    /// Tags customers carry and segments test.
    pub const TAGS: [&str; 3] = ["VIP", "教育", "new"];
    /// Custom field keys.
    pub const CUSTOM_KEYS: [&str; 4] = ["spend", "since", "channel", "interests"];
    /// Event names.
    pub const EVENT_NAMES: [&str; 3] = ["page_view", "purchase", "enroll"];
    const TEXTS: [&str; 9] =
        ["hello", "Hello World", "IELTS", "ielts", "/courses/IELTS?x", "toefl", "广告", "Expo", ""];

    fn day(d: i64) -> NaiveDate {
        NaiveDate::from_ymd_opt(2024, 5, 1).unwrap_or_default() + Duration::days(d)
    }

    /// An instant near now: minutes back (some ahead), or a second either side of a day's
    /// start in UTC+8.
    pub fn instant() -> impl Strategy<Value = DateTime<Utc>> {
        let offset = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("valid offset"));
        prop_oneof![
            (-300i64..60_000).prop_map(|m| now() - Duration::minutes(m)),
            (0u32..45, prop_oneof![Just(-1i64), Just(0i64)]).prop_map(move |(days, s)| {
                let mut ctx = SegmentContext::at(now());
                ctx.offset = offset;
                ctx.day_start(ctx.days_ago(days)).unwrap_or_default() + Duration::seconds(s)
            }),
        ]
    }

    /// A typed value of any type.
    pub fn custom_value() -> impl Strategy<Value = CustomValue> {
        prop_oneof![
            proptest::sample::select(TEXTS.to_vec()).prop_map(|t| CustomValue::Text(t.to_owned())),
            proptest::sample::select(TEXTS.to_vec()).prop_map(|t| CustomValue::Select(t.to_owned())),
            proptest::sample::subsequence(vec!["IELTS", "toefl", "留学"], 0..=3)
                .prop_map(|s| CustomValue::MultiSelect(s.into_iter().map(str::to_owned).collect())),
            (-5i64..15).prop_map(CustomValue::Number),
            (-200i64..200, 0u32..3).prop_map(|(m, scale)| CustomValue::Decimal(Decimal::new(m, scale))),
            (0i64..60).prop_map(|d| CustomValue::Date(day(d))),
            any::<bool>().prop_map(CustomValue::Bool),
        ]
    }

    fn literal() -> impl Strategy<Value = Literal> {
        prop_oneof![
            proptest::sample::select(TEXTS.to_vec()).prop_map(|t| Literal::Text(t.to_owned())),
            proptest::sample::select(vec!["web", "EXPO", "客户", "trading", "杭州市", "浙江", "lost", "ＩＥＬＴＳ"])
                .prop_map(|t| Literal::Text(t.to_owned())),
            (-200i64..200, 0u32..3).prop_map(|(m, scale)| Literal::Number(Decimal::new(m, scale))),
            (0i64..60).prop_map(|d| Literal::Date(day(d))),
            (0u32..45).prop_map(Literal::DaysAgo),
            any::<bool>().prop_map(Literal::Bool),
        ]
    }

    fn op() -> impl Strategy<Value = CmpOp> {
        proptest::sample::select(vec![
            CmpOp::Eq,
            CmpOp::Ne,
            CmpOp::Lt,
            CmpOp::Le,
            CmpOp::Gt,
            CmpOp::Ge,
            CmpOp::Contains,
            CmpOp::In,
        ])
    }

    /// A comparison with a value (`in` mostly with a list, sometimes with one value).
    fn compared() -> impl Strategy<Value = (CmpOp, Literal)> {
        prop_oneof![
            3 => (op(), literal()),
            1 => prop::collection::vec(literal(), 0..4).prop_map(|items| (CmpOp::In, Literal::List(items))),
        ]
    }

    fn field() -> impl Strategy<Value = SegmentField> {
        prop_oneof![
            Just(SegmentField::Status),
            Just(SegmentField::Level),
            Just(SegmentField::Source),
            Just(SegmentField::Owner),
            Just(SegmentField::Province),
            Just(SegmentField::City),
            Just(SegmentField::District),
            Just(SegmentField::Name),
            Just(SegmentField::CreatedAt),
            Just(SegmentField::UpdatedAt),
            proptest::sample::select(vec!["spend", "since", "channel", "interests", "missing"])
                .prop_map(|k| SegmentField::Custom(k.to_owned())),
        ]
    }

    fn count() -> impl Strategy<Value = EventCount> {
        let source = prop_oneof![
            3 => proptest::sample::select(EVENT_NAMES.to_vec()).prop_map(|n| CountSource::Event(n.to_owned())),
            1 => proptest::option::of(proptest::sample::select(vec![InteractionKind::Visit, InteractionKind::Call]))
                .prop_map(CountSource::Interaction),
        ];
        let filter = (proptest::sample::select(vec!["url", "amount", "course", "missing"]), compared())
            .prop_map(|(key, (op, value))| PropertyFilter { key: key.to_owned(), op, value });
        (source, prop::collection::vec(filter, 0..3), proptest::option::of(0u32..40), op(), 0u64..4).prop_map(
            |(source, filters, within_days, op, n)| {
                let filters = if matches!(source, CountSource::Event(_)) { filters } else { Vec::new() };
                EventCount { source, filters, within_days, op, n }
            },
        )
    }

    fn predicate() -> impl Strategy<Value = Predicate> {
        prop_oneof![
            1 => proptest::sample::select(vec!["VIP", "教育", "new", "vip"]).prop_map(|t| Predicate::Tag(t.to_owned())),
            1 => proptest::sample::select(vec!["行业", "等级", "none"]).prop_map(|g| Predicate::TagGroup(g.to_owned())),
            1 => proptest::sample::select(vec!["华东", "浙江", "浙江省", "杭州市", "深圳市", "华南", "山东", "西北", ""])
                .prop_map(|r| Predicate::Region(r.to_owned())),
            3 => (field(), compared()).prop_map(|(field, (op, value))| Predicate::Field { field, op, value }),
            3 => count().prop_map(Predicate::Count),
            // Unresolved: holds for no one on every backend.
            1 => Just(Predicate::Segment("nowhere".to_owned())),
        ]
    }

    /// A segment of up to four levels of `and` / `or` / `not` over the vocabulary.
    pub fn segment() -> impl Strategy<Value = Segment> {
        predicate().prop_map(Segment::Is).prop_recursive(4, 16, 3, |inner| {
            prop_oneof![
                prop::collection::vec(inner.clone(), 0..4).prop_map(Segment::And),
                prop::collection::vec(inner.clone(), 0..4).prop_map(Segment::Or),
                inner.prop_map(|s| Segment::Not(Box::new(s))),
            ]
        })
    }

    /// What a generated customer is made of, beside its sample fields.
    #[derive(Debug, Clone)]
    pub struct CustomerSpec {
        /// Lifecycle status.
        pub status: LifecycleStatus,
        /// Level.
        pub level: Option<Level>,
        /// Source.
        pub source: Option<String>,
        /// Region.
        pub region: Option<Region>,
        /// Tags.
        pub tags: BTreeSet<String>,
        /// Custom values.
        pub custom: BTreeMap<String, CustomValue>,
        /// Created (and last changed) at.
        pub created_at: DateTime<Utc>,
        /// Its events: name, instant, properties.
        pub events: Vec<(String, DateTime<Utc>, BTreeMap<String, CustomValue>)>,
        /// Its interactions: kind and instant.
        pub interactions: Vec<(InteractionKind, DateTime<Utc>)>,
    }

    /// A customer's specification.
    pub fn customer_spec() -> impl Strategy<Value = CustomerSpec> {
        let region = proptest::option::of(proptest::sample::select(vec![
            ("浙江省", "杭州市", ""),
            ("广东省", "深圳市", "南山区"),
            ("山东省", "", ""),
            ("北京市", "北京市", "朝阳区"),
        ]))
        .prop_map(|r| r.map(|(p, c, d)| Region { province: p.to_owned(), city: c.to_owned(), district: d.to_owned() }));
        let custom = proptest::sample::subsequence(CUSTOM_KEYS.to_vec(), 0..=4)
            .prop_flat_map(|keys| {
                prop::collection::vec(custom_value(), keys.len()).prop_map(move |v| (keys.clone(), v))
            })
            .prop_map(|(keys, values)| keys.into_iter().map(str::to_owned).zip(values).collect());
        let properties = (
            proptest::option::of(
                proptest::sample::select(vec!["/courses/IELTS", "/courses/ielts?ref=ad", "/toefl", "/"])
                    .prop_map(|u| CustomValue::Text(u.to_owned())),
            ),
            proptest::option::of(custom_value()),
            proptest::option::of(custom_value()),
        )
            .prop_map(|(url, amount, course)| {
                let mut p = BTreeMap::new();
                for (k, v) in [("url", url), ("amount", amount), ("course", course)] {
                    if let Some(v) = v {
                        p.insert(k.to_owned(), v);
                    }
                }
                p
            });
        let event = (proptest::sample::select(EVENT_NAMES.to_vec()), instant(), properties)
            .prop_map(|(name, at, p)| (name.to_owned(), at, p));
        let interaction = (
            proptest::sample::select(vec![InteractionKind::Visit, InteractionKind::Call, InteractionKind::Email]),
            instant(),
        );
        (
            proptest::sample::select(LifecycleStatus::ALL.to_vec()),
            proptest::option::of(proptest::sample::select(vec![Level::A, Level::B, Level::C])),
            proptest::option::of(proptest::sample::select(vec!["web", "Expo", "广告", "WEB"]).prop_map(str::to_owned)),
            region,
            proptest::sample::subsequence(TAGS.to_vec(), 0..=3),
            custom,
            instant(),
            prop::collection::vec(event, 0..6),
            prop::collection::vec(interaction, 0..3),
        )
            .prop_map(|(status, level, source, region, tags, custom, created_at, events, interactions)| {
                CustomerSpec {
                    status,
                    level,
                    source,
                    region,
                    tags: tags.into_iter().map(str::to_owned).collect(),
                    custom,
                    created_at,
                    events,
                    interactions,
                }
            })
    }

    /// A behaviour event of a spec, with an id of its instant.
    pub fn event_of(
        customer: crate::CustomerId,
        (name, at, properties): &(String, DateTime<Utc>, BTreeMap<String, CustomValue>),
    ) -> BehaviourEvent {
        let mut e = BehaviourEvent::new(customer, name, *at);
        e.properties = properties.clone();
        let secs = u64::try_from(at.timestamp()).unwrap_or(0);
        e.id = crate::EventId(uuid::Uuid::new_v7(uuid::Timestamp::from_unix(uuid::NoContext, secs, 0)));
        e
    }
}

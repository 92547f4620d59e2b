//! Segments (客群): `and` / `or` / `not` at any depth over predicates on a customer's fields,
//! custom fields, tags, tag groups, region, dates relative to now, and counts of events or
//! interactions that bind their filter, count and window to the same events:
//!
//! ```text
//! tag:VIP AND region:华东 AND NOT status = lost AND custom.spend_12m >= 100000
//! count(event = "page_view", url ~ "ielts", within = 30d) >= 3 AND NOT tag:雅思学员
//! count(interaction, within = 90d) = 0
//! ```
//!
//! [`Segment::parse`] reads the text form (errors at a line and column, in plain words),
//! `Display` prints it back (`parse(print(s)) == s` for every normalized segment), and
//! [`Segment::matches`] is the reference evaluator stores must agree with.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use super::event::BehaviourEvent;
use crate::custom_field::CustomValue;
use crate::customer::Customer;
use crate::interaction::{Interaction, InteractionKind};
use crate::region::{area_of, canonical_province};

/// A segment expression.
///
/// ```
/// use guanxi_core::marketing::Segment;
/// let s = Segment::parse("tag:VIP AND (region:华东 OR region:华南) AND NOT status = lost").unwrap();
/// assert_eq!(s.to_string(), "tag:VIP AND (region:华东 OR region:华南) AND NOT status = lost");
/// assert_eq!(Segment::parse(&s.to_string()).unwrap(), s);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Segment {
    /// Every part holds (at least two parts once normalized).
    And(Vec<Segment>),
    /// Some part holds (at least two parts once normalized).
    Or(Vec<Segment>),
    /// The part does not hold.
    Not(Box<Segment>),
    /// A single test.
    Is(Predicate),
}

/// One test on a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Predicate {
    /// Carries the tag (`tag:VIP`).
    Tag(String),
    /// Carries a tag of the group (`tag_group:行业`).
    TagGroup(String),
    /// Lies in the province, the macro-area (华东, 华南, …) or the city (`region:华东`).
    Region(String),
    /// A field compared with a value (`status = lost`, `custom.spend_12m >= 100000`,
    /// `level in (a, b)`, `created_at >= 30d ago`).
    Field {
        /// The field.
        field: SegmentField,
        /// The comparison.
        op: CmpOp,
        /// The value.
        value: Literal,
    },
    /// A count of events or interactions compared with a number.
    Count(EventCount),
    /// Is in the saved segment of that name, by its rule (`segment:ielts_intent`): the facade
    /// inlines the saved segment's expression before evaluating ([`Segment::resolve`]); an
    /// unresolved reference holds for no one.
    Segment(String),
}

/// The fields a segment may test.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum SegmentField {
    /// Lifecycle status.
    Status,
    /// Enterprise or individual.
    Kind,
    /// Level A/B/C.
    Level,
    /// Industry section.
    Industry,
    /// Size band.
    Size,
    /// Source / channel.
    Source,
    /// Owner's user id.
    Owner,
    /// Department id.
    Department,
    /// Province (full name; short names are accepted).
    Province,
    /// City.
    City,
    /// District.
    District,
    /// Name.
    Name,
    /// People-facing code.
    Code,
    /// When the customer was created.
    CreatedAt,
    /// When the customer was last changed.
    UpdatedAt,
    /// A custom field, by key.
    Custom(String),
}

impl SegmentField {
    const BUILT_IN: [(&'static str, SegmentField); 15] = [
        ("status", SegmentField::Status),
        ("kind", SegmentField::Kind),
        ("level", SegmentField::Level),
        ("industry", SegmentField::Industry),
        ("size", SegmentField::Size),
        ("source", SegmentField::Source),
        ("owner", SegmentField::Owner),
        ("department", SegmentField::Department),
        ("province", SegmentField::Province),
        ("city", SegmentField::City),
        ("district", SegmentField::District),
        ("name", SegmentField::Name),
        ("code", SegmentField::Code),
        ("created_at", SegmentField::CreatedAt),
        ("updated_at", SegmentField::UpdatedAt),
    ];

    /// The field a name stands for: a built-in name or `custom.<key>`.
    pub fn from_name(name: &str) -> Option<SegmentField> {
        if let Some(key) = name.strip_prefix("custom.") {
            return (!key.is_empty()).then(|| SegmentField::Custom(key.to_owned()));
        }
        SegmentField::BUILT_IN.iter().find(|(n, _)| *n == name).map(|(_, f)| f.clone())
    }

    /// Every name a field may be given by (`custom.<key>` for custom fields).
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> = SegmentField::BUILT_IN.iter().map(|(n, _)| (*n).to_owned()).collect();
        names.push("custom.<key>".into());
        names
    }
}

impl fmt::Display for SegmentField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            SegmentField::Custom(key) => write!(f, "custom.{key}"),
            other => {
                let name = SegmentField::BUILT_IN.iter().find(|(_, x)| x == other).map_or("", |(n, _)| *n);
                f.write_str(name)
            }
        }
    }
}

/// A comparison.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum CmpOp {
    /// `=`
    Eq,
    /// `!=`
    Ne,
    /// `<`
    Lt,
    /// `<=`
    Le,
    /// `>`
    Gt,
    /// `>=`
    Ge,
    /// `~`: the text contains the value (case folded).
    Contains,
    /// `in`: equals one of a list.
    In,
}

impl CmpOp {
    /// The operator as written.
    pub fn as_str(self) -> &'static str {
        match self {
            CmpOp::Eq => "=",
            CmpOp::Ne => "!=",
            CmpOp::Lt => "<",
            CmpOp::Le => "<=",
            CmpOp::Gt => ">",
            CmpOp::Ge => ">=",
            CmpOp::Contains => "~",
            CmpOp::In => "in",
        }
    }

    fn holds(self, ordering: std::cmp::Ordering) -> bool {
        use std::cmp::Ordering::*;
        match self {
            CmpOp::Eq | CmpOp::In => ordering == Equal,
            CmpOp::Ne => ordering != Equal,
            CmpOp::Lt => ordering == Less,
            CmpOp::Le => ordering != Greater,
            CmpOp::Gt => ordering == Greater,
            CmpOp::Ge => ordering != Less,
            CmpOp::Contains => false,
        }
    }
}

/// A value in a segment.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Literal {
    /// Text (a bare word or a quoted string).
    Text(String),
    /// A number.
    Number(Decimal),
    /// A day, `2024-05-01`.
    Date(NaiveDate),
    /// A day relative to today, `30d ago`.
    DaysAgo(u32),
    /// `true` or `false`.
    Bool(bool),
    /// A list, for `in`.
    List(Vec<Literal>),
}

/// A count of a customer's events or interactions that satisfy the filters within the window,
/// compared with a number: `count(event = "page_view", url ~ "ielts", within = 30d) >= 3`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct EventCount {
    /// What is counted.
    pub source: CountSource,
    /// Conditions on the counted events' properties; every one must hold for an event.
    pub filters: Vec<PropertyFilter>,
    /// Only events on the last `within` days (today and the `within` days before it, by the
    /// store's time zone); every event when None.
    pub within_days: Option<u32>,
    /// The comparison of the count.
    pub op: CmpOp,
    /// The number compared with.
    pub n: u64,
}

/// What a count counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum CountSource {
    /// Behaviour events of this name.
    Event(String),
    /// Interactions (of this kind, or of any).
    Interaction(Option<InteractionKind>),
}

/// A condition on one property of a counted event (`url ~ "ielts"`, `amount >= 100`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PropertyFilter {
    /// The property's key.
    pub key: String,
    /// The comparison.
    pub op: CmpOp,
    /// The value.
    pub value: Literal,
}

/// What a segment is evaluated against beyond the customer: the instant, the store's time
/// zone (day windows and `30d ago` count its calendar days) and the tag groups.
#[derive(Debug, Clone)]
pub struct SegmentContext {
    /// Now.
    pub now: DateTime<Utc>,
    /// The store's time zone.
    pub offset: FixedOffset,
    /// Tag name → its group.
    pub tag_groups: BTreeMap<String, String>,
}

impl SegmentContext {
    /// A context at `now` in China Standard Time (UTC+8), without tag groups.
    pub fn at(now: DateTime<Utc>) -> SegmentContext {
        let offset = FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| unreachable!("UTC+8 is a valid offset"));
        SegmentContext { now, offset, tag_groups: BTreeMap::new() }
    }

    fn today(&self) -> NaiveDate {
        self.now.with_timezone(&self.offset).date_naive()
    }

    fn day_of(&self, at: DateTime<Utc>) -> NaiveDate {
        at.with_timezone(&self.offset).date_naive()
    }

    /// The day `days` days before today in the store's time zone (the first day of a window
    /// of that many days; the earliest day there is when it lies further back).
    ///
    /// ```
    /// use guanxi_core::marketing::SegmentContext;
    /// let ctx = SegmentContext::at("2024-06-01T17:00:00Z".parse().unwrap()); // 01:00 on 2 June in UTC+8
    /// assert_eq!(ctx.days_ago(30).to_string(), "2024-05-03");
    /// ```
    pub fn days_ago(&self, days: u32) -> NaiveDate {
        self.today().checked_sub_signed(Duration::days(i64::from(days))).unwrap_or(NaiveDate::MIN)
    }

    /// The instant a day of the store's time zone begins (None when it lies outside the
    /// instants there are): a day compares with an instant through it.
    ///
    /// ```
    /// use guanxi_core::marketing::SegmentContext;
    /// let ctx = SegmentContext::at("2024-06-01T00:00:00Z".parse().unwrap());
    /// let day = "2024-06-01".parse().unwrap();
    /// assert_eq!(ctx.day_start(day).unwrap().to_rfc3339(), "2024-05-31T16:00:00+00:00");
    /// ```
    pub fn day_start(&self, day: NaiveDate) -> Option<DateTime<Utc>> {
        let local = day.and_time(chrono::NaiveTime::MIN);
        local.checked_sub_offset(self.offset).map(|utc| utc.and_utc())
    }
}

/// A customer's events and interactions, for the predicates that count them.
#[derive(Debug, Clone, Copy, Default)]
pub struct SegmentFacts<'a> {
    /// Behaviour events.
    pub events: &'a [BehaviourEvent],
    /// Interactions.
    pub interactions: &'a [Interaction],
}

/// Every node of a segment with its value for one customer (see [`Segment::explain`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Explained {
    /// The node, printed.
    pub node: String,
    /// Whether it holds.
    pub holds: bool,
    /// For a count, the count found.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub count: Option<u64>,
    /// The node's parts.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub parts: Vec<Explained>,
}

impl Segment {
    /// Parses the text form (see the module docs); a syntax error says where, in plain words.
    ///
    /// ```
    /// use guanxi_core::marketing::Segment;
    /// let err = Segment::parse("tag:VIP AND\n  status >").unwrap_err();
    /// assert_eq!((err.line, err.column), (2, 11));
    /// assert_eq!(err.to_string(), "line 2, column 11: expected a value, found the end of the text");
    /// ```
    pub fn parse(text: &str) -> Result<Segment, super::SegmentSyntaxError> {
        super::parse::parse(text)
    }

    /// `tag:<name>`.
    pub fn tag(name: impl Into<String>) -> Segment {
        Segment::Is(Predicate::Tag(name.into()))
    }

    /// The same segment with one-part `and`s and `or`s replaced by their part and directly
    /// nested `and`s (and `or`s) merged: what printing and parsing again gives.
    pub fn normalized(self) -> Segment {
        match self {
            Segment::And(parts) => Segment::joined(parts, true),
            Segment::Or(parts) => Segment::joined(parts, false),
            Segment::Not(inner) => Segment::Not(Box::new(inner.normalized())),
            is => is,
        }
    }

    fn joined(parts: Vec<Segment>, and: bool) -> Segment {
        let mut flat = Vec::with_capacity(parts.len());
        for p in parts.into_iter().map(Segment::normalized) {
            match p {
                Segment::And(inner) if and => flat.extend(inner),
                Segment::Or(inner) if !and => flat.extend(inner),
                other => flat.push(other),
            }
        }
        if flat.len() == 1 {
            return flat.pop().unwrap_or_else(|| unreachable!("one part"));
        }
        if and { Segment::And(flat) } else { Segment::Or(flat) }
    }

    /// Whether `customer` (with its events and interactions) is in the segment: the reference
    /// evaluator.
    ///
    /// ```
    /// use guanxi_core::marketing::{Segment, SegmentContext, SegmentFacts};
    /// use guanxi_core::testing::conformance::sample_customer;
    /// let mut c = sample_customer(1);
    /// c.status = guanxi_core::LifecycleStatus::Customer;
    /// c.region = Some(guanxi_core::Region { province: "上海市".into(), city: "上海市".into(), district: String::new() });
    /// let ctx = SegmentContext::at("2024-06-01T00:00:00Z".parse().unwrap());
    /// let s = Segment::parse("status = customer AND region:华东").unwrap();
    /// assert!(s.matches(&c, SegmentFacts::default(), &ctx));
    /// ```
    pub fn matches(&self, customer: &Customer, facts: SegmentFacts<'_>, ctx: &SegmentContext) -> bool {
        match self {
            Segment::And(parts) => parts.iter().all(|p| p.matches(customer, facts, ctx)),
            Segment::Or(parts) => parts.iter().any(|p| p.matches(customer, facts, ctx)),
            Segment::Not(inner) => !inner.matches(customer, facts, ctx),
            Segment::Is(p) => p.holds(customer, facts, ctx).0,
        }
    }

    /// Every node's value for one customer, top down: why it is (or is not) in the segment.
    pub fn explain(&self, customer: &Customer, facts: SegmentFacts<'_>, ctx: &SegmentContext) -> Explained {
        let (holds, count, parts) = match self {
            Segment::And(ps) | Segment::Or(ps) => {
                let parts: Vec<Explained> = ps.iter().map(|p| p.explain(customer, facts, ctx)).collect();
                let holds = if matches!(self, Segment::And(_)) {
                    parts.iter().all(|p| p.holds)
                } else {
                    parts.iter().any(|p| p.holds)
                };
                (holds, None, parts)
            }
            Segment::Not(inner) => {
                let part = inner.explain(customer, facts, ctx);
                (!part.holds, None, vec![part])
            }
            Segment::Is(p) => {
                let (holds, count) = p.holds(customer, facts, ctx);
                (holds, count, Vec::new())
            }
        };
        Explained { node: self.to_string(), holds, count, parts }
    }

    /// The event names the segment counts (what new events re-evaluate it).
    pub fn event_names(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.visit(&mut |p| {
            if let Predicate::Count(EventCount { source: CountSource::Event(name), .. }) = p {
                out.insert(name.as_str());
            }
        });
        out
    }

    /// Whether the segment counts interactions (what new interactions re-evaluate it).
    ///
    /// ```
    /// use guanxi_core::marketing::Segment;
    /// assert!(Segment::parse("tag:a OR count(interaction, within = 90d) = 0").unwrap().counts_interactions());
    /// assert!(!Segment::parse("tag:a").unwrap().counts_interactions());
    /// ```
    pub fn counts_interactions(&self) -> bool {
        let mut found = false;
        self.visit(&mut |p| {
            found |= matches!(p, Predicate::Count(EventCount { source: CountSource::Interaction(_), .. }))
        });
        found
    }

    /// Checks a segment built as a value (not parsed): at most
    /// [`MAX_SEGMENT_PREDICATES`](super::MAX_SEGMENT_PREDICATES) tests,
    /// [`MAX_SEGMENT_VALUES`](super::MAX_SEGMENT_VALUES) values and a tree at most 128 levels
    /// deep — within the bounds the parser keeps (64 levels of parentheses and `NOT`, each
    /// group at most one `and` / `or` level more), so a parsed segment always passes — and days
    /// within the years 0000–9999 the text form can write.
    ///
    /// ```
    /// use guanxi_core::marketing::Segment;
    /// let wide = Segment::And((0..300).map(|i| Segment::tag(format!("t{i}"))).collect());
    /// assert_eq!(wide.validate().unwrap_err().0[0].field, "segment");
    /// assert!(Segment::parse("tag:a AND NOT tag:b").unwrap().validate().is_ok());
    /// ```
    pub fn validate(&self) -> Result<(), crate::error::ValidationErrors> {
        fn walk(s: &Segment, depth: usize, size: &mut (usize, usize, usize)) {
            size.2 = size.2.max(depth);
            match s {
                Segment::And(ps) | Segment::Or(ps) => ps.iter().for_each(|p| walk(p, depth + 1, size)),
                Segment::Not(inner) => walk(inner, depth + 1, size),
                Segment::Is(p) => {
                    size.0 += 1;
                    let values = |v: &Literal| -> (usize, usize) {
                        fn count(v: &Literal, depth: usize) -> (usize, usize) {
                            match v {
                                Literal::List(items) => items.iter().fold((0, depth + 1), |(n, d), i| {
                                    let (m, e) = count(i, depth + 1);
                                    (n + m, d.max(e))
                                }),
                                _ => (1, depth),
                            }
                        }
                        count(v, 0)
                    };
                    let mut add = |v: &Literal| {
                        let (n, d) = values(v);
                        size.1 += n;
                        size.2 = size.2.max(depth + d);
                    };
                    match p {
                        Predicate::Field { value, .. } => add(value),
                        Predicate::Count(c) => c.filters.iter().for_each(|f| add(&f.value)),
                        Predicate::Tag(_) | Predicate::TagGroup(_) | Predicate::Region(_) | Predicate::Segment(_) => {}
                    }
                }
            }
        }
        let mut size = (0, 0, 0);
        walk(self, 1, &mut size);
        let (predicates, values, depth) = size;
        let mut errs = crate::error::ValidationErrors::default();
        let too_large =
            |max: usize, unit: &str| crate::error::ValidationReason::TooLarge { max: max as u64, unit: unit.into() };
        if predicates > super::MAX_SEGMENT_PREDICATES {
            errs.push("segment", too_large(super::MAX_SEGMENT_PREDICATES, "tests"));
        }
        if values > super::MAX_SEGMENT_VALUES {
            errs.push("segment", too_large(super::MAX_SEGMENT_VALUES, "values"));
        }
        if depth > 2 * super::parse::MAX_DEPTH {
            errs.push("segment", too_large(2 * super::parse::MAX_DEPTH, "levels of nesting"));
        }
        // The text form writes days as yyyy-mm-dd, so a day outside years 0–9999 has no text.
        fn out_of_text(v: &Literal) -> Option<chrono::NaiveDate> {
            match v {
                Literal::Date(d) if !(0..=9999).contains(&chrono::Datelike::year(d)) => Some(*d),
                Literal::List(items) => items.iter().find_map(out_of_text),
                _ => None,
            }
        }
        let mut far_day = None;
        self.visit(&mut |p| match p {
            Predicate::Field { value, .. } => far_day = far_day.or(out_of_text(value)),
            Predicate::Count(c) => far_day = far_day.or(c.filters.iter().find_map(|f| out_of_text(&f.value))),
            Predicate::Tag(_) | Predicate::TagGroup(_) | Predicate::Region(_) | Predicate::Segment(_) => {}
        });
        if let Some(d) = far_day {
            let detail = format!("the day {d} is outside the years 0000–9999 a segment can hold");
            errs.push("segment", crate::error::ValidationReason::Invalid { detail });
        }
        if errs.is_empty() { Ok(()) } else { Err(errs) }
    }

    /// The custom fields the segment tests, by key (what field rules that mask a field
    /// refuse: a segment on a masked field would tell its value).
    ///
    /// ```
    /// use guanxi_core::marketing::Segment;
    /// let s = Segment::parse("custom.salary > 10000 OR NOT custom.tier = gold").unwrap();
    /// assert_eq!(s.custom_fields().into_iter().collect::<Vec<_>>(), ["salary", "tier"]);
    /// ```
    pub fn custom_fields(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.visit(&mut |p| {
            if let Predicate::Field { field: SegmentField::Custom(key), .. } = p {
                out.insert(key.as_str());
            }
        });
        out
    }

    fn visit<'a>(&'a self, f: &mut impl FnMut(&'a Predicate)) {
        match self {
            Segment::And(ps) | Segment::Or(ps) => ps.iter().for_each(|p| p.visit(f)),
            Segment::Not(inner) => inner.visit(f),
            Segment::Is(p) => f(p),
        }
    }
}

impl Predicate {
    /// Whether the predicate holds, and for a count the count found.
    fn holds(&self, c: &Customer, facts: SegmentFacts<'_>, ctx: &SegmentContext) -> (bool, Option<u64>) {
        match self {
            Predicate::Tag(t) => (c.tags.contains(t), None),
            Predicate::TagGroup(g) => (c.tags.iter().any(|t| ctx.tag_groups.get(t) == Some(g)), None),
            Predicate::Region(r) => (in_region(c, r), None),
            Predicate::Field { field, op, value } => (field_holds(c, field, *op, value, ctx), None),
            Predicate::Count(count) => {
                let n = count.count(facts, ctx);
                (count.op.holds(n.cmp(&count.n)), Some(n))
            }
            Predicate::Segment(_) => (false, None),
        }
    }
}

fn in_region(c: &Customer, region: &str) -> bool {
    let Some(r) = &c.region else { return false };
    match canonical_province(region) {
        Some(province) => r.province == province,
        None => area_of(&r.province) == Some(region) || (!r.city.is_empty() && r.city == region),
    }
}

impl EventCount {
    /// How many of the customer's events (or interactions) the count takes in.
    pub fn count(&self, facts: SegmentFacts<'_>, ctx: &SegmentContext) -> u64 {
        let first = self.within_days.map(|d| ctx.days_ago(d));
        let in_window = |at: DateTime<Utc>| at <= ctx.now && first.is_none_or(|f| ctx.day_of(at) >= f);
        match &self.source {
            CountSource::Event(name) => facts
                .events
                .iter()
                .filter(|e| e.name == *name && in_window(e.at))
                .filter(|e| self.filters.iter().all(|f| f.holds(e.properties.get(&f.key), ctx)))
                .count() as u64,
            CountSource::Interaction(kind) => {
                facts.interactions.iter().filter(|i| kind.is_none_or(|k| i.kind == k) && in_window(i.at)).count() as u64
            }
        }
    }
}

impl PropertyFilter {
    fn holds(&self, value: Option<&CustomValue>, ctx: &SegmentContext) -> bool {
        match value {
            Some(v) => compare_custom(v, self.op, &self.value, ctx),
            None => self.op == CmpOp::Ne,
        }
    }
}

/// A segment's text value as compared: folded like stored text (half-width, single-spaced,
/// trimmed) and its ASCII letters lower-cased. The stored side has only its ASCII letters
/// lower-cased: what SQL's `lower()` does in every backend, so the store's
/// query and this evaluator agree to the byte.
///
/// ```
/// assert_eq!(guanxi_core::marketing::fold_literal(" ＩＥＬＴＳ  Course "), "ielts course");
/// ```
pub fn fold_literal(s: &str) -> String {
    crate::normalize::fold_text(s).to_ascii_lowercase()
}

/// A stored text as compared: its ASCII letters lower-cased, nothing else changed.
fn fold_stored(s: &str) -> String {
    s.to_ascii_lowercase()
}

fn text_holds(text: Option<&str>, op: CmpOp, value: &Literal) -> bool {
    let Some(text) = text else { return op == CmpOp::Ne };
    match (op, value) {
        (CmpOp::In, Literal::List(items)) => items.iter().any(|i| text_holds(Some(text), CmpOp::Eq, i)),
        (CmpOp::Contains, Literal::Text(v)) => fold_stored(text).contains(&fold_literal(v)),
        (op, Literal::Text(v)) => op.holds(fold_stored(text).cmp(&fold_literal(v))),
        (op, Literal::Number(n)) => op.holds(fold_stored(text).cmp(&n.to_string())),
        _ => false,
    }
}

fn date_holds(day: NaiveDate, op: CmpOp, value: &Literal, ctx: &SegmentContext) -> bool {
    match value {
        Literal::Date(d) => op.holds(day.cmp(d)),
        Literal::DaysAgo(n) => op.holds(day.cmp(&ctx.days_ago(*n))),
        Literal::List(items) if op == CmpOp::In => items.iter().any(|i| date_holds(day, CmpOp::Eq, i, ctx)),
        _ => false,
    }
}

fn number_holds(n: Decimal, op: CmpOp, value: &Literal) -> bool {
    match value {
        Literal::Number(v) => op.holds(n.cmp(v)),
        Literal::List(items) if op == CmpOp::In => items.iter().any(|i| number_holds(n, CmpOp::Eq, i)),
        _ => false,
    }
}

fn compare_custom(v: &CustomValue, op: CmpOp, value: &Literal, ctx: &SegmentContext) -> bool {
    match v {
        CustomValue::Number(n) => number_holds(Decimal::from(*n), op, value),
        CustomValue::Decimal(d) => number_holds(*d, op, value),
        CustomValue::Date(d) => date_holds(*d, op, value, ctx),
        CustomValue::Bool(b) => match (op, value) {
            (CmpOp::Eq, Literal::Bool(x)) => b == x,
            (CmpOp::Ne, Literal::Bool(x)) => b != x,
            _ => false,
        },
        CustomValue::Text(s) | CustomValue::Select(s) => text_holds(Some(s), op, value),
        // A multi-select `= x` or `~ x` holds when x is among its choices.
        CustomValue::MultiSelect(set) => match (op, value) {
            (CmpOp::Eq | CmpOp::Contains, Literal::Text(x)) => set.iter().any(|s| fold_stored(s) == fold_literal(x)),
            (CmpOp::Ne, Literal::Text(x)) => !set.iter().any(|s| fold_stored(s) == fold_literal(x)),
            (CmpOp::In, Literal::List(items)) => items
                .iter()
                .any(|i| matches!(i, Literal::Text(x) if set.iter().any(|s| fold_stored(s) == fold_literal(x)))),
            _ => false,
        },
    }
}

fn field_holds(c: &Customer, field: &SegmentField, op: CmpOp, value: &Literal, ctx: &SegmentContext) -> bool {
    let region = c.region.as_ref();
    let non_empty = |s: &str| if s.is_empty() { None } else { Some(s.to_owned()) };
    let text: Option<String> = match field {
        SegmentField::Status => Some(c.status.as_str().to_owned()),
        SegmentField::Kind => Some(c.kind.as_str().to_owned()),
        SegmentField::Level => c.level.map(|l| l.as_str().to_owned()),
        SegmentField::Industry => c.industry.map(|i| i.as_str().to_owned()),
        SegmentField::Size => c.size.map(|s| s.as_str().to_owned()),
        SegmentField::Source => c.source.clone(),
        SegmentField::Owner => c.owner.as_ref().map(|o| o.as_str().to_owned()),
        SegmentField::Department => c.department.as_ref().map(|d| d.as_str().to_owned()),
        SegmentField::Province => region.map(|r| r.province.clone()),
        SegmentField::City => region.and_then(|r| non_empty(&r.city)),
        SegmentField::District => region.and_then(|r| non_empty(&r.district)),
        SegmentField::Name => Some(c.name.clone()),
        SegmentField::Code => Some(c.code.clone()),
        SegmentField::CreatedAt => return date_holds(ctx.day_of(c.created_at), op, value, ctx),
        SegmentField::UpdatedAt => return date_holds(ctx.day_of(c.updated_at), op, value, ctx),
        SegmentField::Custom(key) => {
            return match c.custom.get(key) {
                Some(v) => compare_custom(v, op, value, ctx),
                None => op == CmpOp::Ne,
            };
        }
    };
    // A province is compared by its full name, whichever name the segment used.
    if *field == SegmentField::Province {
        return text_holds(text.as_deref(), op, &value.with_full_province_names());
    }
    text_holds(text.as_deref(), op, value)
}

impl Literal {
    /// The value with each province in it by its full name (`浙江` → `浙江省`), lists item by
    /// item: how a province is compared, whichever name the segment used.
    ///
    /// ```
    /// use guanxi_core::marketing::Literal;
    /// assert_eq!(Literal::Text("浙江".into()).with_full_province_names(), Literal::Text("浙江省".into()));
    /// ```
    pub fn with_full_province_names(&self) -> Literal {
        match self {
            Literal::Text(t) => Literal::Text(canonical_province(t).map_or_else(|| t.clone(), str::to_owned)),
            Literal::List(items) => Literal::List(items.iter().map(Literal::with_full_province_names).collect()),
            other => other.clone(),
        }
    }
}

// ---- printing ----

/// How tightly an expression binds: or < and < not / predicate.
fn precedence(s: &Segment) -> u8 {
    match s {
        Segment::Or(_) => 0,
        Segment::And(_) => 1,
        Segment::Not(_) | Segment::Is(_) => 2,
    }
}

fn write_part(f: &mut fmt::Formatter<'_>, part: &Segment, parent: u8) -> fmt::Result {
    // A part binding no tighter than its parent (an `or` in an `and`, an `and` in an `and`)
    // is parenthesized, so the structure reads back as it was.
    if precedence(part) <= parent { write!(f, "({part})") } else { write!(f, "{part}") }
}

impl fmt::Display for Segment {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Segment::And(ps) | Segment::Or(ps) => {
                let (word, own) = if matches!(self, Segment::And(_)) { (" AND ", 1) } else { (" OR ", 0) };
                if ps.is_empty() {
                    // Not a normalized segment; printed so that it still parses.
                    return f.write_str(if own == 1 {
                        "NOT (tag:\"\" AND NOT tag:\"\")"
                    } else {
                        "tag:\"\" AND NOT tag:\"\""
                    });
                }
                for (i, p) in ps.iter().enumerate() {
                    if i > 0 {
                        f.write_str(word)?;
                    }
                    if ps.len() == 1 { write!(f, "{p}")? } else { write_part(f, p, own)? }
                }
                Ok(())
            }
            Segment::Not(inner) => {
                f.write_str("NOT ")?;
                write_part(f, inner, 1)
            }
            Segment::Is(p) => write!(f, "{p}"),
        }
    }
}

impl fmt::Display for Predicate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Predicate::Tag(t) => write!(f, "tag:{}", Word(t)),
            Predicate::TagGroup(g) => write!(f, "tag_group:{}", Word(g)),
            Predicate::Region(r) => write!(f, "region:{}", Word(r)),
            Predicate::Field { field, op, value } => write!(f, "{field} {} {value}", op.as_str()),
            Predicate::Count(c) => write!(f, "{c}"),
            Predicate::Segment(name) => write!(f, "segment:{}", Word(name)),
        }
    }
}

impl fmt::Display for EventCount {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.source {
            CountSource::Event(name) => write!(f, "count(event = {}", Quoted(name))?,
            CountSource::Interaction(None) => f.write_str("count(interaction")?,
            CountSource::Interaction(Some(kind)) => write!(f, "count(interaction = {}", kind.as_str())?,
        }
        for p in &self.filters {
            write!(f, ", {} {} {}", p.key, p.op.as_str(), p.value)?;
        }
        if let Some(days) = self.within_days {
            write!(f, ", within = {days}d")?;
        }
        write!(f, ") {} {}", self.op.as_str(), self.n)
    }
}

impl fmt::Display for Literal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Literal::Text(t) => write!(f, "{}", Word(t)),
            Literal::Number(n) => write!(f, "{n}"),
            Literal::Date(d) => write!(f, "{d}"),
            Literal::DaysAgo(n) => write!(f, "{n}d ago"),
            Literal::Bool(b) => write!(f, "{b}"),
            Literal::List(items) => {
                f.write_str("(")?;
                for (i, item) in items.iter().enumerate() {
                    if i > 0 {
                        f.write_str(", ")?;
                    }
                    write!(f, "{item}")?;
                }
                f.write_str(")")
            }
        }
    }
}

/// Text printed bare when it reads back as the same word, else quoted.
struct Word<'a>(&'a str);

impl fmt::Display for Word<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if super::parse::is_bare_word(self.0) { f.write_str(self.0) } else { write!(f, "{}", Quoted(self.0)) }
    }
}

/// Text in double quotes, `"` and `\` escaped.
struct Quoted<'a>(&'a str);

impl fmt::Display for Quoted<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("\"")?;
        for c in self.0.chars() {
            match c {
                '"' => f.write_str("\\\"")?,
                '\\' => f.write_str("\\\\")?,
                '\n' => f.write_str("\\n")?,
                c => write!(f, "{c}")?,
            }
        }
        f.write_str("\"")
    }
}

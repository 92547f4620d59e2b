//! Saved segments: a segment kept under a name whose membership is stored — who entered
//! when and why, who left when and why — with manual includes and excludes that survive
//! re-evaluation, an optional dynamic tag that follows membership, and references between
//! saved segments (`segment:<name>`) inlined before evaluation, cycles refused.
//!
//! The rules live here, free of any store: which saved segments a change can affect
//! ([`SegmentDependencies`]), what a membership becomes for a customer
//! ([`SavedSegment::membership_for`]), and which definitions form a cycle
//! ([`check_references`]). The facade stores and re-evaluates.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use super::segment::{CountSource, Literal, Predicate, Segment};
use crate::error::{ValidationErrors, ValidationReason};
use crate::ids::CustomerId;

/// Saved segments are stored as configuration documents under this prefix and their name.
pub const SAVED_SEGMENT_KEY_PREFIX: &str = "segment.";

/// The longest saved segment name, in characters.
pub const MAX_SEGMENT_NAME: usize = 64;
/// The longest description, in characters.
pub const MAX_SEGMENT_DESCRIPTION: usize = 1_000;
/// At most this many manual includes, and as many excludes, per saved segment.
pub const MAX_MANUAL_MEMBERS: usize = 10_000;
/// At most this many saved segments in a store.
pub const MAX_SAVED_SEGMENTS: usize = 1_000;

/// A tag bound to a saved segment: added to a customer who enters, removed from one who
/// leaves — unless `sticky`, when it stays once given.
///
/// ```
/// use guanxi_core::marketing::DynamicTag;
/// let t = DynamicTag { tag: "雅思意向".into(), sticky: false };
/// assert!(!t.sticky);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct DynamicTag {
    /// The tag's name.
    pub tag: String,
    /// Kept when the customer leaves.
    #[serde(default)]
    pub sticky: bool,
}

/// A segment saved under a name, with its stored membership kept current by the facade.
///
/// ```
/// use guanxi_core::marketing::{SavedSegment, Segment};
/// let s = SavedSegment::new("ielts_intent", Segment::parse(r#"count(event = "page_view", url ~ "ielts", within = 30d) >= 3"#).unwrap());
/// assert!(s.validate().is_ok());
/// assert!(SavedSegment::new("", Segment::tag("x")).validate().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct SavedSegment {
    /// The name, unique in the store (what `segment:<name>` refers to).
    pub name: String,
    /// What the segment is for.
    #[serde(default)]
    pub description: Option<String>,
    /// The rule.
    pub expression: Segment,
    /// The tag that follows membership, if any.
    #[serde(default)]
    pub tag: Option<DynamicTag>,
    /// Customers kept in the segment whatever the rule says (unless also excluded).
    #[serde(default)]
    pub includes: BTreeSet<CustomerId>,
    /// Customers kept out of the segment whatever the rule says.
    #[serde(default)]
    pub excludes: BTreeSet<CustomerId>,
    /// When it was deleted (set by the facade: a deleted segment's definition stays, so its
    /// membership history does; saving the name again brings it back).
    #[serde(default)]
    pub deleted_at: Option<DateTime<Utc>>,
}

impl SavedSegment {
    /// A saved segment with no description, dynamic tag or manual members.
    pub fn new(name: impl Into<String>, expression: Segment) -> SavedSegment {
        SavedSegment {
            name: name.into(),
            description: None,
            expression,
            tag: None,
            includes: BTreeSet::new(),
            excludes: BTreeSet::new(),
            deleted_at: None,
        }
    }

    /// Binds a dynamic tag.
    pub fn with_tag(mut self, tag: impl Into<String>, sticky: bool) -> SavedSegment {
        self.tag = Some(DynamicTag { tag: tag.into(), sticky });
        self
    }

    /// Checks the definition (every bad field reported): the name (1–64 characters, no
    /// spaces or control characters), the description, the rule's bounds, the dynamic tag's
    /// name, and the manual lists' sizes. Names and tags are normalized like tag names.
    pub fn validate(mut self) -> Result<SavedSegment, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        self.name = crate::normalize::fold_text(&self.name);
        let chars = self.name.chars().count();
        if chars == 0 {
            errs.push("name", ValidationReason::Required);
        } else if chars > MAX_SEGMENT_NAME {
            errs.push("name", ValidationReason::TooLong { max: MAX_SEGMENT_NAME });
        } else if self.name.chars().any(|c| c.is_whitespace() || c.is_control()) {
            errs.push("name", ValidationReason::Invalid { detail: "has spaces or control characters".into() });
        }
        if let Some(d) = &self.description
            && d.chars().count() > MAX_SEGMENT_DESCRIPTION
        {
            errs.push("description", ValidationReason::TooLong { max: MAX_SEGMENT_DESCRIPTION });
        }
        if let Err(inner) = self.expression.validate() {
            for e in inner.0 {
                errs.push(format!("expression{}", e.field.strip_prefix("segment").unwrap_or(&e.field)), e.reason);
            }
        }
        if let Some(t) = &mut self.tag {
            match crate::tag::normalize_tag_name(&t.tag) {
                Ok(name) => t.tag = name,
                Err(reason) => errs.push("tag.tag", reason),
            }
        }
        for (field, list) in [("includes", &self.includes), ("excludes", &self.excludes)] {
            if list.len() > MAX_MANUAL_MEMBERS {
                errs.push(
                    field,
                    ValidationReason::TooLarge { max: MAX_MANUAL_MEMBERS as u64, unit: "customers".into() },
                );
            }
        }
        if errs.is_empty() { Ok(self) } else { Err(errs) }
    }

    /// What the stored membership of `customer` should be, given whether the rule holds for
    /// it (`rule_holds`) and whether it is live: in, with the reason, or out (None). Excludes
    /// win over includes, and both over the rule.
    ///
    /// ```
    /// use guanxi_core::marketing::{MembershipReason, SavedSegment, Segment};
    /// use guanxi_core::CustomerId;
    /// let c = CustomerId(uuid::Uuid::nil());
    /// let mut s = SavedSegment::new("vip", Segment::tag("VIP"));
    /// assert_eq!(s.membership_for(c, true, true), Some(MembershipReason::Matched));
    /// s.includes.insert(c);
    /// assert_eq!(s.membership_for(c, false, true), Some(MembershipReason::Included));
    /// s.excludes.insert(c);
    /// assert_eq!(s.membership_for(c, true, true), None);
    /// ```
    pub fn membership_for(&self, customer: CustomerId, rule_holds: bool, live: bool) -> Option<MembershipReason> {
        if !live || self.excludes.contains(&customer) {
            None
        } else if rule_holds {
            Some(MembershipReason::Matched)
        } else if self.includes.contains(&customer) {
            Some(MembershipReason::Included)
        } else {
            None
        }
    }

    /// Why a member that should no longer be one leaves.
    pub fn exit_reason(&self, customer: CustomerId, live: bool) -> MembershipReason {
        if !live {
            MembershipReason::CustomerRemoved
        } else if self.excludes.contains(&customer) {
            MembershipReason::Excluded
        } else {
            MembershipReason::NoLongerMatches
        }
    }
}

/// Why a customer entered or left a saved segment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum MembershipReason {
    /// Entered: the rule holds.
    Matched,
    /// Entered: included by hand.
    Included,
    /// Left: the rule no longer holds (and the customer is not included).
    NoLongerMatches,
    /// Left: excluded by hand.
    Excluded,
    /// Left: the customer was deleted or merged into another.
    CustomerRemoved,
    /// Left: the saved segment was deleted.
    SegmentDeleted,
}

impl MembershipReason {
    /// Every reason, in declaration order.
    pub const ALL: [MembershipReason; 6] = [
        MembershipReason::Matched,
        MembershipReason::Included,
        MembershipReason::NoLongerMatches,
        MembershipReason::Excluded,
        MembershipReason::CustomerRemoved,
        MembershipReason::SegmentDeleted,
    ];

    /// The stable snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            MembershipReason::Matched => "matched",
            MembershipReason::Included => "included",
            MembershipReason::NoLongerMatches => "no_longer_matches",
            MembershipReason::Excluded => "excluded",
            MembershipReason::CustomerRemoved => "customer_removed",
            MembershipReason::SegmentDeleted => "segment_deleted",
        }
    }
}

impl std::str::FromStr for MembershipReason {
    type Err = crate::error::UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        MembershipReason::ALL
            .into_iter()
            .find(|r| r.as_str() == s)
            .ok_or_else(|| crate::error::UnknownName::new(s, MembershipReason::ALL.map(MembershipReason::as_str)))
    }
}

/// One stay of a customer in a saved segment: when and why it entered, and — once it left —
/// when and why. A customer who leaves and comes back has one stay per visit.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct SegmentMembership {
    /// The stay's id (a UUIDv7 of when it began: stays sort by entry).
    pub id: uuid::Uuid,
    /// The saved segment's name.
    pub segment: String,
    /// The customer.
    pub customer_id: CustomerId,
    /// When it entered.
    pub entered_at: DateTime<Utc>,
    /// Why it entered.
    pub entered_because: MembershipReason,
    /// When it left (None: still a member).
    pub exited_at: Option<DateTime<Utc>>,
    /// Why it left.
    pub exited_because: Option<MembershipReason>,
}

/// A change to stored membership inside a write batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MembershipChange {
    /// A new stay (the customer must have no open stay in the segment).
    Enter(SegmentMembership),
    /// Closes the customer's open stay in the segment (none open: nothing happens).
    Exit {
        /// The saved segment.
        segment: String,
        /// The customer.
        customer: CustomerId,
        /// When.
        at: DateTime<Utc>,
        /// Why.
        reason: MembershipReason,
    },
}

/// Which stays a membership read returns.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct MembershipQuery {
    /// The saved segment.
    pub segment: String,
    /// One customer's stays only.
    pub customer: Option<CustomerId>,
    /// Open stays only (the current members).
    pub current_only: bool,
}

/// What a saved segment's rule depends on, once its references are inlined: which changes
/// can move a customer in or out.
///
/// ```
/// use guanxi_core::marketing::{Segment, SegmentDependencies};
/// let d = SegmentDependencies::of(&Segment::parse(r#"tag:VIP AND count(event = "page_view", within = 30d) >= 3"#).unwrap());
/// assert!(d.event_names.contains("page_view") && d.tags.contains("VIP") && d.windows);
/// assert!(!d.interactions);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SegmentDependencies {
    /// Names of the events it counts.
    pub event_names: BTreeSet<String>,
    /// Whether it counts interactions.
    pub interactions: bool,
    /// Tags it tests by name.
    pub tags: BTreeSet<String>,
    /// Whether it tests tag groups (a regrouped tag changes it for everyone).
    pub tag_groups: bool,
    /// Whether it depends on the date (windows, `30d ago`): `reevaluate_due` re-runs it.
    pub windows: bool,
}

impl SegmentDependencies {
    /// The dependencies of a (resolved) segment.
    pub fn of(segment: &Segment) -> SegmentDependencies {
        let mut d = SegmentDependencies::default();
        segment.visit_predicates(&mut |p| match p {
            Predicate::Tag(t) => {
                d.tags.insert(t.clone());
            }
            Predicate::TagGroup(_) => d.tag_groups = true,
            Predicate::Count(c) => {
                match &c.source {
                    CountSource::Event(name) => {
                        d.event_names.insert(name.clone());
                    }
                    CountSource::Interaction(_) => d.interactions = true,
                }
                // A count with no window is still relative to now: events dated in the future
                // are not counted until they happen.
                d.windows = true;
            }
            Predicate::Field { value, .. } => d.windows |= relative(value),
            Predicate::Region(_) | Predicate::Segment(_) => {}
        });
        d
    }
}

fn relative(v: &Literal) -> bool {
    match v {
        Literal::DaysAgo(_) => true,
        Literal::List(items) => items.iter().any(relative),
        _ => false,
    }
}

impl Segment {
    /// The saved segments it refers to (`segment:<name>`), by name.
    ///
    /// ```
    /// use guanxi_core::marketing::Segment;
    /// let s = Segment::parse("segment:vip AND NOT segment:lost").unwrap();
    /// assert_eq!(s.referenced_segments().into_iter().collect::<Vec<_>>(), ["lost", "vip"]);
    /// ```
    pub fn referenced_segments(&self) -> BTreeSet<&str> {
        let mut out = BTreeSet::new();
        self.visit_predicates(&mut |p| {
            if let Predicate::Segment(name) = p {
                out.insert(name.as_str());
            }
        });
        out
    }

    /// The segment with every `segment:<name>` replaced by that saved segment's rule (its
    /// own references inlined in turn), so a store can evaluate it. A name `lookup` does not
    /// know, or a reference back to a segment being inlined (a cycle), is a validation error
    /// on `expression`; so is a result past the bounds of [`Segment::validate`].
    ///
    /// ```
    /// use guanxi_core::marketing::Segment;
    /// let vip = Segment::parse("tag:VIP").unwrap();
    /// let s = Segment::parse("segment:vip AND status = customer").unwrap();
    /// let resolved = s.resolve(&|name: &str| (name == "vip").then(|| vip.clone())).unwrap();
    /// assert_eq!(resolved.to_string(), "tag:VIP AND status = customer");
    /// assert!(s.resolve(&|_: &str| None).is_err());
    /// ```
    pub fn resolve(&self, lookup: &dyn Fn(&str) -> Option<Segment>) -> Result<Segment, ValidationErrors> {
        let mut path = Vec::new();
        let mut budget = super::MAX_SEGMENT_PREDICATES;
        let out = self.inline(lookup, &mut path, &mut budget)?;
        let out = out.normalized();
        out.validate().map_err(|e| {
            e.0.into_iter().fold(ValidationErrors::default(), |mut acc, x| {
                acc.push("expression", x.reason);
                acc
            })
        })?;
        Ok(out)
    }

    fn inline(
        &self,
        lookup: &dyn Fn(&str) -> Option<Segment>,
        path: &mut Vec<String>,
        budget: &mut usize,
    ) -> Result<Segment, ValidationErrors> {
        let too_large = || {
            let unit = "tests once saved segments are inlined".to_owned();
            single("expression", ValidationReason::TooLarge { max: super::MAX_SEGMENT_PREDICATES as u64, unit })
        };
        Ok(match self {
            Segment::And(ps) => {
                Segment::And(ps.iter().map(|p| p.inline(lookup, path, budget)).collect::<Result<_, _>>()?)
            }
            Segment::Or(ps) => {
                Segment::Or(ps.iter().map(|p| p.inline(lookup, path, budget)).collect::<Result<_, _>>()?)
            }
            Segment::Not(inner) => Segment::Not(Box::new(inner.inline(lookup, path, budget)?)),
            Segment::Is(Predicate::Segment(name)) => {
                if path.iter().any(|p| p == name) {
                    let cycle = path.iter().chain(std::iter::once(name)).cloned().collect::<Vec<_>>().join(" → ");
                    let detail = format!("segments refer to each other in a cycle: {cycle}");
                    return Err(single("expression", ValidationReason::Invalid { detail }));
                }
                let Some(target) = lookup(name) else {
                    let detail = format!("refers to segment:{name}, which is not saved");
                    return Err(single("expression", ValidationReason::Invalid { detail }));
                };
                path.push(name.clone());
                let out = target.inline(lookup, path, budget)?;
                path.pop();
                out
            }
            Segment::Is(p) => {
                *budget = budget.checked_sub(1).ok_or_else(too_large)?;
                Segment::Is(p.clone())
            }
        })
    }

    /// Every predicate, in order.
    pub fn visit_predicates<'a>(&'a self, f: &mut impl FnMut(&'a Predicate)) {
        match self {
            Segment::And(ps) | Segment::Or(ps) => ps.iter().for_each(|p| p.visit_predicates(f)),
            Segment::Not(inner) => inner.visit_predicates(f),
            Segment::Is(p) => f(p),
        }
    }
}

/// Checks a set of saved segment definitions together: every `segment:<name>` names one of
/// them, no chain of references comes back to where it started, and no chain of dynamic
/// tags does either (a segment whose tag another segment tests, whose tag the first tests,
/// would add and remove tags for ever). Errors name the segment and the cycle. Returns each
/// segment's rule with its references inlined, and what it depends on, in the order given.
///
/// ```
/// use guanxi_core::marketing::{check_references, SavedSegment, Segment};
/// let a = SavedSegment::new("a", Segment::parse("segment:b").unwrap());
/// let b = SavedSegment::new("b", Segment::parse("segment:a").unwrap());
/// assert!(check_references(&[a.clone()]).is_err()); // b is not saved
/// assert!(check_references(&[a, b]).is_err()); // a → b → a
/// let tagging = SavedSegment::new("t", Segment::parse("NOT tag:x").unwrap()).with_tag("x", false);
/// assert!(check_references(&[tagging]).is_err()); // its own tag takes it out again
/// ```
pub fn check_references(segments: &[SavedSegment]) -> Result<Vec<(Segment, SegmentDependencies)>, ValidationErrors> {
    let by_name: BTreeMap<&str, &SavedSegment> = segments.iter().map(|s| (s.name.as_str(), s)).collect();
    let lookup = |name: &str| by_name.get(name).map(|s| s.expression.clone());
    let mut rules = Vec::with_capacity(segments.len());
    for s in segments {
        let r = s.expression.resolve(&lookup).map_err(|e| {
            e.0.into_iter().fold(ValidationErrors::default(), |mut acc, x| {
                acc.push(format!("segments[{}].expression", s.name), x.reason);
                acc
            })
        })?;
        let deps = SegmentDependencies::of(&r);
        rules.push((r, deps));
    }
    let resolved: BTreeMap<&str, &SegmentDependencies> =
        segments.iter().zip(&rules).map(|(s, (_, d))| (s.name.as_str(), d)).collect();
    // Tag edges: segment s → segment u when u tests the tag s gives.
    let next = |s: &str| -> Vec<&str> {
        let Some(tag) = by_name.get(s).and_then(|d| d.tag.as_ref()) else { return Vec::new() };
        resolved.iter().filter(|(_, d)| d.tags.contains(&tag.tag)).map(|(n, _)| *n).collect()
    };
    for start in by_name.keys() {
        // Depth-first from each segment; a path back to it is a cycle.
        let mut stack = vec![(*start, vec![*start])];
        let mut seen = BTreeSet::new();
        while let Some((at, path)) = stack.pop() {
            for n in next(at) {
                if n == *start {
                    let cycle = path.iter().chain(std::iter::once(&n)).copied().collect::<Vec<_>>().join(" → ");
                    let detail = format!("dynamic tags feed back into a segment that sets them: {cycle}");
                    return Err(single(format!("segments[{start}].tag"), ValidationReason::Invalid { detail }));
                }
                if seen.insert(n) {
                    let mut p = path.clone();
                    p.push(n);
                    stack.push((n, p));
                }
            }
        }
    }
    Ok(rules)
}

fn single(field: impl Into<String>, reason: ValidationReason) -> ValidationErrors {
    let mut errs = ValidationErrors::default();
    errs.push(field, reason);
    errs
}

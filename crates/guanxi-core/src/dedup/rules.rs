//! Match rules: typed, weighted comparisons of two [`MatchProfile`]s, and the scored,
//! explained [`MatchCandidate`] they produce.

use std::collections::BTreeSet;
use std::fmt;

use serde::{Deserialize, Serialize};

use super::keys::{address_key, company_key, email_key, person_key, phone_key};
use crate::contact::Contact;
use crate::customer::{Customer, CustomerKind};
use crate::error::{Result, ValidationErrors, ValidationReason};
use crate::ids::CustomerId;

/// What a customer is compared by: its normalized keys, computed once.
///
/// ```
/// use guanxi_core::dedup::MatchProfile;
/// use guanxi_core::{CustomerId, CustomerKind};
/// let p = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "C20240501001", "华为技术有限公司", CustomerKind::Enterprise)
///     .address("深圳市龙岗区坂田华为基地")
///     .phone("138-1234-5678")
///     .email("Info@Huawei.com");
/// assert_eq!(p.name_key, "华为技术");
/// assert!(p.phones.contains("+8613812345678") && p.emails.contains("info@huawei.com"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct MatchProfile {
    /// The customer.
    pub id: CustomerId,
    /// Its code (for reasons people read).
    pub code: String,
    /// Its name as written.
    pub name: String,
    /// Enterprise or individual (which name key applies).
    pub kind: CustomerKind,
    /// [`company_key`] of an enterprise's name, [`person_key`] of an individual's.
    pub name_key: String,
    /// [`address_key`] of its address.
    pub address_key: Option<String>,
    /// [`phone_key`]s of its contacts' phones.
    pub phones: BTreeSet<String>,
    /// [`email_key`]s of its contacts' e-mail addresses.
    pub emails: BTreeSet<String>,
}

impl MatchProfile {
    /// A profile with a name only.
    pub fn new(id: CustomerId, code: &str, name: &str, kind: CustomerKind) -> MatchProfile {
        let name_key = match kind {
            CustomerKind::Enterprise => company_key(name),
            CustomerKind::Individual => person_key(name),
        };
        MatchProfile {
            id,
            code: code.to_owned(),
            name: name.to_owned(),
            kind,
            name_key,
            address_key: None,
            phones: BTreeSet::new(),
            emails: BTreeSet::new(),
        }
    }

    /// Sets the address (an empty key leaves it unset).
    pub fn address(mut self, address: &str) -> Self {
        self.address_key = Some(address_key(address)).filter(|k| !k.is_empty());
        self
    }

    /// Adds a phone (one that normalizes to nothing is ignored: it cannot match).
    pub fn phone(mut self, phone: &str) -> Self {
        self.phones.extend(phone_key(phone));
        self
    }

    /// Adds an e-mail address (an invalid one is ignored: it cannot match).
    pub fn email(mut self, email: &str) -> Self {
        self.emails.extend(email_key(email));
        self
    }

    /// The profile of a stored customer and its contacts.
    pub fn of(customer: &Customer, contacts: &[Contact]) -> MatchProfile {
        let mut p = MatchProfile::new(customer.id, &customer.code, &customer.name, customer.kind);
        if let Some(a) = &customer.address {
            p = p.address(a);
        }
        for c in contacts.iter().filter(|c| c.deleted_at.is_none()) {
            p.phones.extend(c.phones.iter().map(|ph| ph.as_str().to_owned()));
            p.emails.extend(c.emails.iter().map(|e| e.as_str().to_owned()));
        }
        p
    }

    /// How the profile reads in a reason: code and name.
    pub fn label(&self) -> String {
        format!("{} {}", self.code, self.name)
    }
}

/// A field rules compare.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchField {
    /// Any phone of one equals any phone of the other.
    Phone,
    /// Any e-mail of one equals any e-mail of the other.
    Email,
    /// The name keys.
    Name,
    /// The address keys.
    Address,
}

impl MatchField {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            MatchField::Phone => "phone",
            MatchField::Email => "email",
            MatchField::Name => "name",
            MatchField::Address => "address",
        }
    }
}

/// How a field is compared.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Comparison {
    /// Equal keys (similarity 1).
    Exact,
    /// Jaro-Winkler similarity of the keys, counted from `min` up (strsim).
    JaroWinkler {
        /// Lowest similarity that counts.
        min: f64,
    },
    /// 1 − Damerau-Levenshtein distance / longer length (typos and swapped characters), from
    /// `min` up (strsim).
    Edit {
        /// Lowest similarity that counts.
        min: f64,
    },
}

/// One weighted comparison. Evidence combines as independent signals: a pair's score is
/// `1 − Π (1 − weight × similarity)` over the rules that fire, the strongest rule per field.
///
/// ```
/// use guanxi_core::dedup::{Comparison, MatchField, MatchRule};
/// let r = MatchRule::new(MatchField::Name, Comparison::JaroWinkler { min: 0.9 }, 0.8);
/// assert_eq!(r.weight, 0.8);
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct MatchRule {
    /// The field.
    pub field: MatchField,
    /// How it is compared.
    pub comparison: Comparison,
    /// Its weight, in (0, 1].
    pub weight: f64,
    /// Applies only when both records are of this kind (people share names far more often
    /// than companies do).
    #[serde(default)]
    pub only: Option<CustomerKind>,
}

impl MatchRule {
    /// A rule for every kind of customer.
    pub fn new(field: MatchField, comparison: Comparison, weight: f64) -> MatchRule {
        MatchRule { field, comparison, weight, only: None }
    }

    /// Restricts the rule to pairs of one kind.
    pub fn only(mut self, kind: CustomerKind) -> Self {
        self.only = Some(kind);
        self
    }

    /// The similarity the rule finds between two profiles, with the matching value, if it fires.
    fn similarity(&self, a: &MatchProfile, b: &MatchProfile) -> Option<(f64, String)> {
        if self.only.is_some_and(|k| a.kind != k || b.kind != k) {
            return None;
        }
        let shared = |x: &BTreeSet<String>, y: &BTreeSet<String>| x.intersection(y).next().cloned();
        let (ka, kb) = match self.field {
            MatchField::Phone => return shared(&a.phones, &b.phones).map(|v| (1.0, v)),
            MatchField::Email => return shared(&a.emails, &b.emails).map(|v| (1.0, v)),
            MatchField::Name => (a.name_key.as_str(), b.name_key.as_str()),
            MatchField::Address => (a.address_key.as_deref()?, b.address_key.as_deref()?),
        };
        if ka.is_empty() || kb.is_empty() {
            return None;
        }
        let (sim, min) = match self.comparison {
            Comparison::Exact => (if ka == kb { 1.0 } else { 0.0 }, 1.0),
            Comparison::JaroWinkler { min } => (strsim::jaro_winkler(ka, kb), min),
            Comparison::Edit { min } => {
                let longer = ka.chars().count().max(kb.chars().count());
                (1.0 - strsim::damerau_levenshtein(ka, kb) as f64 / longer as f64, min)
            }
        };
        (sim >= min).then(|| (sim, kb.to_owned()))
    }
}

/// A set of rules and the score from which a pair is a likely duplicate.
///
/// ```
/// use guanxi_core::dedup::{MatchProfile, MatchRules};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let id = |n| CustomerId(uuid::Uuid::from_u128(n));
/// let a = MatchProfile::new(id(1), "C20240501001", "华为技术有限公司", CustomerKind::Enterprise).phone("13812345678");
/// let b = MatchProfile::new(id(2), "C20240502001", "华为技术股份有限公司", CustomerKind::Enterprise);
/// let c = MatchProfile::new(id(3), "C20240503001", "星河科技", CustomerKind::Enterprise).phone("+86 138 1234 5678");
/// let rules = MatchRules::default();
/// let ab = rules.compare(&a, &b).unwrap();
/// assert!(ab.score >= rules.threshold);
/// assert_eq!(ab.reasons[0].to_string(), "same name as C20240502001 华为技术股份有限公司");
/// let ac = rules.compare(&a, &c).unwrap();
/// assert_eq!(ac.reasons[0].to_string(), "same phone as C20240503001 星河科技");
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchRules {
    /// The rules.
    pub rules: Vec<MatchRule>,
    /// A pair scoring at least this is a likely duplicate, in (0, 1].
    pub threshold: f64,
}

impl Default for MatchRules {
    /// Same phone or e-mail alone makes a duplicate, and so does a company's normalized name;
    /// a person's name, or a similar company name, needs a similar address or another match
    /// to back it.
    fn default() -> Self {
        use Comparison::*;
        use MatchField::*;
        MatchRules {
            rules: vec![
                MatchRule::new(Phone, Exact, 0.95),
                MatchRule::new(Email, Exact, 0.95),
                MatchRule::new(Name, Exact, 0.9).only(CustomerKind::Enterprise),
                MatchRule::new(Name, JaroWinkler { min: 0.85 }, 0.7),
                MatchRule::new(Address, Edit { min: 0.75 }, 0.6),
            ],
            threshold: 0.8,
        }
    }
}

impl MatchRules {
    /// Checks weights and the threshold.
    pub fn validate(&self) -> Result<()> {
        let mut errs = ValidationErrors::default();
        let unit = |v: f64| v > 0.0 && v <= 1.0;
        if self.rules.is_empty() {
            errs.push("rules", ValidationReason::Required);
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !unit(r.weight) {
                errs.push(
                    format!("rules[{i}].weight"),
                    ValidationReason::Invalid { detail: "must be in (0, 1]".into() },
                );
            }
            if let Comparison::JaroWinkler { min } | Comparison::Edit { min } = r.comparison
                && !(0.0..=1.0).contains(&min)
            {
                errs.push(format!("rules[{i}].min"), ValidationReason::Invalid { detail: "must be in [0, 1]".into() });
            }
        }
        if !unit(self.threshold) {
            errs.push("threshold", ValidationReason::Invalid { detail: "must be in (0, 1]".into() });
        }
        errs.into_result(())
    }

    /// Compares two profiles: None when no rule fires, else the score and a reason per field
    /// that matched (strongest first), whether or not the score reaches the threshold.
    pub fn compare(&self, a: &MatchProfile, b: &MatchProfile) -> Option<MatchCandidate> {
        let mut best: Vec<MatchReason> = Vec::new();
        for r in &self.rules {
            let Some((similarity, value)) = r.similarity(a, b) else { continue };
            let strength = r.weight * similarity;
            let reason = MatchReason { field: r.field, similarity, strength, value, other: b.label() };
            match best.iter_mut().find(|x| x.field == r.field) {
                Some(x) if x.strength < strength => *x = reason,
                Some(_) => {}
                None => best.push(reason),
            }
        }
        if best.is_empty() {
            return None;
        }
        best.sort_by(|x, y| y.strength.total_cmp(&x.strength).then(x.field.cmp(&y.field)));
        let miss: f64 = best.iter().map(|r| 1.0 - r.strength).product();
        Some(MatchCandidate {
            id: Some(b.id),
            code: b.code.clone(),
            name: b.name.clone(),
            score: 1.0 - miss,
            reasons: best,
        })
    }

    /// [`MatchRules::compare`] when the score reaches the threshold.
    pub fn duplicate(&self, a: &MatchProfile, b: &MatchProfile) -> Option<MatchCandidate> {
        self.compare(a, b).filter(|c| c.score >= self.threshold)
    }
}

/// Why a pair matched on one field.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchReason {
    /// The field.
    pub field: MatchField,
    /// Its similarity (1 for exact).
    pub similarity: f64,
    /// Weight × similarity: what it adds to the score.
    pub strength: f64,
    /// The other record's matching key (the shared phone, its name key, …), masked as the
    /// reader's field rules say; empty when the other record is withheld.
    pub value: String,
    /// The other record, as code and name ([`WITHHELD`] when the reader may not see it).
    pub other: String,
}

/// How a reason names a record the reader may not read.
pub const WITHHELD: &str = "a customer outside your access scope";

impl fmt::Display for MatchReason {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.similarity >= 1.0 {
            write!(f, "same {} as {}", self.field.as_str(), self.other)
        } else {
            write!(f, "similar {} to {} ({:.0}%)", self.field.as_str(), self.other, self.similarity * 100.0)
        }
    }
}

/// A likely duplicate of a record: the other record, the score and the reasons.
///
/// Every path that hands candidates to a reader (the check on create, `duplicates_of`, the
/// scan, imports, lead conversion) passes them through [`MatchCandidate::for_reader`]: one the
/// reader may read keeps its identity, with its values masked as the reader's field rules say;
/// one outside the reader's scope is *withheld*: no id, code, name or matching value, only the
/// fields that matched and the score ("a customer outside your access scope has the same
/// phone"), so a rep learns that a customer already exists elsewhere (撞单) and no phone number
/// becomes an oracle for whose customer it is.
///
/// ```
/// use guanxi_core::access::{FieldMask, FieldRule, Visibility};
/// use guanxi_core::dedup::{MatchProfile, MatchRules};
/// use guanxi_core::{CustomerId, CustomerKind, EntityKind};
/// let a = MatchProfile::new(CustomerId(uuid::Uuid::from_u128(1)), "", "甲公司", CustomerKind::Enterprise).phone("13812345678");
/// let b = MatchProfile::new(CustomerId(uuid::Uuid::from_u128(2)), "C1", "乙公司", CustomerKind::Enterprise).phone("13812345678");
/// let found = MatchRules::default().compare(&a, &b).unwrap();
/// let mask = FieldMask::of(&[FieldRule { entity: EntityKind::Contact, field: "phones".into(), visibility: Visibility::Masked }]);
/// let masked = found.clone().for_reader(true, &mask);
/// assert_eq!(masked.reasons[0].value, "138****5678");
/// let withheld = found.for_reader(false, &FieldMask::none());
/// assert_eq!((withheld.id, withheld.code.as_str(), withheld.reasons[0].value.as_str()), (None, "", ""));
/// assert_eq!(withheld.reasons[0].to_string(), "same phone as a customer outside your access scope");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct MatchCandidate {
    /// The other customer; `None` when it is withheld from the reader.
    pub id: Option<CustomerId>,
    /// Its code (empty when withheld).
    pub code: String,
    /// Its name (empty when withheld).
    pub name: String,
    /// In [0, 1].
    pub score: f64,
    /// One per matching field, strongest first.
    pub reasons: Vec<MatchReason>,
}

impl MatchCandidate {
    /// The candidate as a reader may see it: `readable` says whether the other customer is in
    /// the reader's read scope; `mask` is the reader's field mask.
    pub fn for_reader(mut self, readable: bool, mask: &crate::access::FieldMask) -> MatchCandidate {
        if !readable {
            self.id = None;
            self.code.clear();
            self.name.clear();
            for r in &mut self.reasons {
                r.value.clear();
                r.other = WITHHELD.to_owned();
            }
            return self;
        }
        for r in &mut self.reasons {
            mask.apply_match_reason(r);
        }
        self
    }

    /// Whether the other customer is withheld from the reader.
    pub fn is_withheld(&self) -> bool {
        self.id.is_none()
    }
}

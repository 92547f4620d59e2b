//! Match rules: typed comparisons of two [`MatchProfile`]s, scored by weights or by
//! Fellegi–Sunter probabilities, and the explained [`MatchCandidate`] they produce.

use std::borrow::Cow;
use std::collections::{BTreeMap, BTreeSet};
use std::fmt;

use serde::{Deserialize, Serialize};

use super::blocking::Blocking;
use super::fields::{Comparison, IdScheme, MatchField, custom_key, identifier_key, split_person_name};
use super::keys::{address_key, company_key, email_key, person_key, phone_key};
use super::probabilistic::{Agreement, MAX_PROBABILISTIC_RULES, Pattern, ProbabilisticModel, Scoring};
use crate::contact::Contact;
use crate::custom_field::CustomValue;
use crate::customer::{Customer, CustomerKind};
use crate::error::{Result, ValidationErrors, ValidationReason};
use crate::ids::CustomerId;
use crate::normalize::{Email, IdNumber, Phone};

/// What a customer is compared by: its normalized keys, computed once.
///
/// ```
/// use guanxi_core::dedup::{IdScheme, MatchProfile};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let p = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "C20240501001", "华为技术有限公司", CustomerKind::Enterprise)
///     .address("深圳市龙岗区坂田华为基地")
///     .phone("138-1234-5678")
///     .email("Info@Huawei.com")
///     .identifier(IdScheme::Uscc, "91440300-19034 9383X");
/// assert_eq!(p.name_key, "华为技术");
/// assert!(p.phones.contains("+8613812345678") && p.emails.contains("info@huawei.com"));
/// assert!(p.identifiers.contains(&(IdScheme::Uscc, "914403001903493 83X".replace(' ', ""))));
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
    /// A person's given name key (empty for companies, and when unknown).
    pub given_name: String,
    /// A person's surname key (empty for companies, and when unknown).
    pub surname: String,
    /// [`address_key`] of its address.
    pub address_key: Option<String>,
    /// [`phone_key`]s of its contacts' phones.
    pub phones: BTreeSet<String>,
    /// [`email_key`]s of its contacts' e-mail addresses.
    pub emails: BTreeSet<String>,
    /// Identifiers by scheme, as [`identifier_key`]s.
    pub identifiers: BTreeSet<(IdScheme, String)>,
    /// Custom field values (text folded and lower-cased).
    pub custom: BTreeMap<String, CustomValue>,
}

impl MatchProfile {
    /// A profile with a name only (an individual's split into given name and surname by
    /// [`split_person_name`]; an empty name is a record with other identifying fields).
    pub fn new(id: CustomerId, code: &str, name: &str, kind: CustomerKind) -> MatchProfile {
        let (name_key, (given_name, surname)) = match kind {
            CustomerKind::Enterprise => (company_key(name), Default::default()),
            CustomerKind::Individual => (person_key(name), split_person_name(name)),
        };
        MatchProfile {
            id,
            code: code.to_owned(),
            name: name.to_owned(),
            kind,
            name_key,
            given_name,
            surname,
            address_key: None,
            phones: BTreeSet::new(),
            emails: BTreeSet::new(),
            identifiers: BTreeSet::new(),
            custom: BTreeMap::new(),
        }
    }

    /// Sets a person's given name and surname as entered apart (either may be empty).
    pub fn person_name(mut self, given: &str, surname: &str) -> Self {
        let key = |s: &str| person_key(s);
        self.given_name = key(given);
        self.surname = key(surname);
        self
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

    /// Adds an identifier of any national format (one with no letter or digit is ignored).
    pub fn identifier(mut self, scheme: IdScheme, value: &str) -> Self {
        let key = identifier_key(value);
        if !key.is_empty() {
            self.identifiers.insert((scheme, key));
        }
        self
    }

    /// Sets a custom field's value.
    pub fn custom(mut self, key: &str, value: &CustomValue) -> Self {
        self.custom.insert(key.to_owned(), custom_key(value));
        self
    }

    /// The profile of a stored customer and its contacts: its name, address, custom fields,
    /// identifiers, and its live contacts' phones, e-mails and identity numbers.
    pub fn of(customer: &Customer, contacts: &[Contact]) -> MatchProfile {
        let mut p = MatchProfile::new(customer.id, &customer.code, &customer.name, customer.kind);
        if let Some(a) = &customer.address {
            p = p.address(a);
        }
        for (key, value) in &customer.custom {
            p = p.custom(key, value);
        }
        for id in &customer.identifiers {
            p = p.identifier(id.scheme, &id.value);
        }
        for c in contacts.iter().filter(|c| c.deleted_at.is_none()) {
            p = p.contact_values(&c.phones, &c.emails, c.id_number.as_ref());
        }
        p
    }

    /// Adds a validated contact's phones, e-mails and resident identity number (already
    /// normalized: kept as they are).
    pub fn contact_values(mut self, phones: &[Phone], emails: &[Email], id_number: Option<&IdNumber>) -> Self {
        self.phones.extend(phones.iter().map(|p| p.as_str().to_owned()));
        self.emails.extend(emails.iter().map(|e| e.as_str().to_owned()));
        self.identifiers.extend(id_number.map(|n| (IdScheme::CnResident, n.as_str().to_owned())));
        self
    }

    /// How the profile reads in a reason: code and name.
    pub fn label(&self) -> String {
        format!("{} {}", self.code, self.name)
    }
}

/// One comparison. Weighted scoring combines the rules that fire as independent evidence: a
/// pair's score is `1 − Π (1 − weight × similarity)`, the strongest rule per field.
/// Probabilistic scoring reads each rule as agreeing (similarity at least the comparison's
/// least), disagreeing, or missing, and ignores the weight.
///
/// ```
/// use guanxi_core::dedup::{Comparison, MatchField, MatchRule};
/// let r = MatchRule::new(MatchField::Name, Comparison::JaroWinkler { min: 0.9 }, 0.8);
/// assert_eq!(r.weight, 0.8);
/// ```
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MatchRule {
    /// The field.
    pub field: MatchField,
    /// How it is compared.
    pub comparison: Comparison,
    /// Its weight, in (0, 1] (weighted scoring only).
    #[serde(default = "full_weight")]
    pub weight: f64,
    /// Applies only when both records are of this kind (people share names far more often
    /// than companies do).
    #[serde(default)]
    pub only: Option<CustomerKind>,
}

fn full_weight() -> f64 {
    1.0
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

    /// The similarity the rule finds between two profiles, with the other's value that gave
    /// it: None when the rule does not apply or a value is missing.
    fn similarity<'b>(&self, a: &MatchProfile, b: &'b MatchProfile) -> Option<(f64, Cow<'b, str>)> {
        if !self.applies(a, b) {
            return None;
        }
        self.comparison.similarity(&self.field, a, b)
    }

    /// Whether the rule applies to the pair's kinds.
    fn applies(&self, a: &MatchProfile, b: &MatchProfile) -> bool {
        self.only.is_none_or(|k| a.kind == k && b.kind == k)
    }

    /// Whether the rule agrees, disagrees or lacks a value for a pair (no value is kept).
    fn agreement(&self, a: &MatchProfile, b: &MatchProfile) -> Agreement {
        if !self.applies(a, b) {
            return Agreement::Missing;
        }
        match self.comparison.score(&self.field, a, b) {
            None => Agreement::Missing,
            Some(s) if s >= self.comparison.min() => Agreement::Agrees,
            Some(_) => Agreement::Disagrees,
        }
    }
}

/// The match settings: rules, how they score, the score from which a pair is a likely
/// duplicate, and which pairs a scan compares (blocking).
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
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct MatchRules {
    /// The rules.
    pub rules: Vec<MatchRule>,
    /// A pair scoring at least this is a likely duplicate, in (0, 1].
    pub threshold: f64,
    /// How the rules make a score.
    #[serde(default)]
    pub scoring: Scoring,
    /// Which pairs a scan compares.
    #[serde(default)]
    pub blocking: Blocking,
}

/// The most rules a settings document may list.
pub const MAX_MATCH_RULES: usize = 64;

impl Default for MatchRules {
    /// Same phone, e-mail or identifier (a company's 统一社会信用代码, a person's identity
    /// number) alone makes a duplicate, and so does a company's normalized name; a person's
    /// name, or a similar company name, needs a similar address or another match to back it.
    fn default() -> Self {
        use Comparison::*;
        use MatchField::*;
        MatchRules {
            rules: vec![
                MatchRule::new(Phone, Exact, 0.95),
                MatchRule::new(Email, Exact, 0.95),
                MatchRule::new(Identifier(None), Exact, 0.99),
                MatchRule::new(Name, Exact, 0.9).only(CustomerKind::Enterprise),
                MatchRule::new(Name, JaroWinkler { min: 0.85 }, 0.7),
                MatchRule::new(Address, Edit { min: 0.75 }, 0.6),
            ],
            threshold: 0.8,
            scoring: Scoring::Weighted,
            blocking: Blocking::default(),
        }
    }
}

impl MatchRules {
    /// Rules for people entered by hand (given name, surname, date of birth in the custom
    /// field `date_of_birth_field`, address, identity numbers, phones, e-mails), scored by
    /// Fellegi–Sunter with m and u estimated from the data, blocked by sorted neighbourhoods
    /// of surname and date of birth, identifiers and names one edit apart, and equal phones
    /// and e-mails.
    ///
    /// ```
    /// use guanxi_core::dedup::MatchRules;
    /// let rules = MatchRules::people("date_of_birth");
    /// assert!(rules.validate().is_ok());
    /// ```
    pub fn people(date_of_birth_field: &str) -> MatchRules {
        use super::blocking::BlockingKey;
        use super::blocking::BlockingKey::{Deletions, SortedNeighbourhood};
        use Comparison::*;
        use MatchField::*;
        let dob = Custom(date_of_birth_field.to_owned());
        MatchRules {
            rules: vec![
                MatchRule::new(GivenName, JaroWinkler { min: 0.85 }, 1.0),
                MatchRule::new(Surname, JaroWinkler { min: 0.85 }, 1.0),
                MatchRule::new(dob.clone(), Date { min: 0.9 }, 1.0),
                MatchRule::new(Address, QGram { min: 0.7 }, 1.0),
                MatchRule::new(Identifier(None), Exact, 1.0),
                MatchRule::new(Phone, Exact, 1.0),
                MatchRule::new(Email, Exact, 1.0),
            ],
            threshold: 0.5,
            scoring: Scoring::Probabilistic { model: None },
            blocking: Blocking {
                keys: vec![
                    SortedNeighbourhood { field: Surname, window: 9 },
                    SortedNeighbourhood { field: dob, window: 9 },
                    Deletions { field: Identifier(None), max_len: 18 },
                    BlockingKey::Exact { field: Phone },
                    BlockingKey::Exact { field: Email },
                    Deletions { field: Name, max_len: 16 },
                ],
                max_block: 100,
            },
        }
    }

    /// Checks every rule, the threshold, the scoring and the blocking; every problem is
    /// reported together, each named by its place (`rules[2].min`, `blocking.keys[0].window`).
    pub fn validate(&self) -> Result<()> {
        let mut errs = ValidationErrors::default();
        let unit = |v: f64| v > 0.0 && v <= 1.0;
        if self.rules.is_empty() {
            errs.push("rules", ValidationReason::Required);
        }
        if self.rules.len() > MAX_MATCH_RULES {
            errs.push("rules", ValidationReason::TooLarge { max: MAX_MATCH_RULES as u64, unit: "rules".into() });
        }
        for (i, r) in self.rules.iter().enumerate() {
            if !unit(r.weight) {
                errs.push(
                    format!("rules[{i}].weight"),
                    ValidationReason::Invalid { detail: "must be in (0, 1]".into() },
                );
            }
            if let Some((name, detail)) = r.comparison.problem(&r.field) {
                errs.push(format!("rules[{i}].{name}"), ValidationReason::Invalid { detail });
            }
        }
        if !unit(self.threshold) {
            errs.push("threshold", ValidationReason::Invalid { detail: "must be in (0, 1]".into() });
        }
        if let Scoring::Probabilistic { model } = &self.scoring {
            if self.rules.len() > MAX_PROBABILISTIC_RULES {
                errs.push(
                    "rules",
                    ValidationReason::TooLarge {
                        max: MAX_PROBABILISTIC_RULES as u64,
                        unit: "rules with probabilistic scoring".into(),
                    },
                );
            }
            if let Some(model) = model {
                model.check(self.rules.len(), "scoring.model", &mut errs);
            }
        }
        self.blocking.check("blocking", &mut errs);
        errs.into_result(())
    }

    /// The model probabilistic scoring uses: the stored one, else
    /// [`ProbabilisticModel::a_priori`] (None with weighted scoring).
    pub fn model(&self) -> Option<ProbabilisticModel> {
        match &self.scoring {
            Scoring::Weighted => None,
            Scoring::Probabilistic { model } => {
                Some(model.clone().unwrap_or_else(|| ProbabilisticModel::a_priori(&self.rules)))
            }
        }
    }

    /// What every rule finds for a pair (probabilistic scoring's input).
    pub fn pattern(&self, a: &MatchProfile, b: &MatchProfile) -> Pattern {
        let mut p = Pattern::default();
        for (k, r) in self.rules.iter().enumerate().take(MAX_PROBABILISTIC_RULES) {
            p.set(k, r.agreement(a, b));
        }
        p
    }

    /// Compares two profiles: None when no rule agrees, else the score and the reasons
    /// (strongest first), whether or not the score reaches the threshold.
    pub fn compare(&self, a: &MatchProfile, b: &MatchProfile) -> Option<MatchCandidate> {
        match self.model() {
            None => self.weighted(a, b),
            Some(model) => self.explain(a, b, &model),
        }
    }

    fn weighted(&self, a: &MatchProfile, b: &MatchProfile) -> Option<MatchCandidate> {
        let mut best: Vec<MatchReason> = Vec::new();
        for r in &self.rules {
            let Some((similarity, value)) = r.similarity(a, b) else { continue };
            if similarity < r.comparison.min() {
                continue;
            }
            let strength = r.weight * similarity;
            match best.iter_mut().find(|x| x.field == r.field) {
                Some(x) if x.strength < strength => {
                    *x = MatchReason::new(r.field.clone(), similarity, strength, value.into_owned(), b)
                }
                Some(_) => {}
                None => best.push(MatchReason::new(r.field.clone(), similarity, strength, value.into_owned(), b)),
            }
        }
        if best.is_empty() {
            return None;
        }
        best.sort_by(|x, y| y.strength.total_cmp(&x.strength).then(x.field.cmp(&y.field)));
        let miss: f64 = best.iter().map(|r| 1.0 - r.strength).product();
        Some(MatchCandidate::new(b, 1.0 - miss, best))
    }

    /// Scores a pair by `model` with a reason per rule that had values to compare: what it
    /// found and the match weight it added (None when no rule agrees).
    pub fn explain(&self, a: &MatchProfile, b: &MatchProfile, model: &ProbabilisticModel) -> Option<MatchCandidate> {
        let mut pattern = Pattern::default();
        let mut reasons = Vec::new();
        for (k, r) in self.rules.iter().enumerate().take(model.fields.len()) {
            let Some((similarity, value)) = r.similarity(a, b) else { continue };
            let agrees = similarity >= r.comparison.min();
            let agreement = if agrees { Agreement::Agrees } else { Agreement::Disagrees };
            pattern.set(k, agreement);
            let mut reason =
                MatchReason::new(r.field.clone(), similarity, model.weight(k, agreement), String::new(), b);
            reason.agrees = agrees;
            reason.match_weight = Some(reason.strength);
            if agrees {
                reason.value = value.into_owned();
            }
            reasons.push(reason);
        }
        if !reasons.iter().any(|r| r.agrees) {
            return None;
        }
        reasons.sort_by(|x, y| y.strength.total_cmp(&x.strength).then(x.field.cmp(&y.field)));
        Some(MatchCandidate::new(b, model.probability(pattern), reasons))
    }

    /// [`MatchRules::compare`] when the score reaches the threshold.
    pub fn duplicate(&self, a: &MatchProfile, b: &MatchProfile) -> Option<MatchCandidate> {
        self.compare(a, b).filter(|c| c.score >= self.threshold)
    }
}

/// What one rule found for a pair: why it matched, or (probabilistic scoring) what it added.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct MatchReason {
    /// The field.
    pub field: MatchField,
    /// Its similarity (1 for exact).
    pub similarity: f64,
    /// What it adds to the score: weight × similarity (weighted scoring) or the match weight
    /// in bits (probabilistic scoring, negative for a disagreement).
    pub strength: f64,
    /// Whether the field agrees (always, with weighted scoring).
    #[serde(default = "agrees")]
    pub agrees: bool,
    /// The Fellegi–Sunter match weight (log₂ Bayes factor), with probabilistic scoring.
    #[serde(default)]
    pub match_weight: Option<f64>,
    /// The other record's matching key (the shared phone, its name key, …), masked as the
    /// reader's field rules say; empty when the other record is withheld.
    pub value: String,
    /// The other record, as code and name ([`WITHHELD`] when the reader may not see it).
    pub other: String,
}

fn agrees() -> bool {
    true
}

impl MatchReason {
    fn new(field: MatchField, similarity: f64, strength: f64, value: String, other: &MatchProfile) -> MatchReason {
        MatchReason { field, similarity, strength, agrees: true, match_weight: None, value, other: other.label() }
    }
}

/// How a reason names a record the reader may not read.
pub const WITHHELD: &str = "a customer outside your access scope";

impl fmt::Display for MatchReason {
    /// `same phone as C1 甲`, `similar name to C1 甲 (92%)`, `different surname from C1 甲`;
    /// with probabilistic scoring the match weight follows (`same custom.date_of_birth as
    /// P1 Ann Lee: +6.1`).
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.agrees, self.similarity >= 1.0) {
            (true, true) => write!(f, "same {} as {}", self.field, self.other)?,
            (true, false) => write!(f, "similar {} to {} ({:.0}%)", self.field, self.other, self.similarity * 100.0)?,
            (false, _) => write!(f, "different {} from {}", self.field, self.other)?,
        }
        match self.match_weight {
            Some(w) => write!(f, ": {w:+.1}"),
            None => Ok(()),
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
    fn new(other: &MatchProfile, score: f64, reasons: Vec<MatchReason>) -> MatchCandidate {
        MatchCandidate { id: Some(other.id), code: other.code.clone(), name: other.name.clone(), score, reasons }
    }

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

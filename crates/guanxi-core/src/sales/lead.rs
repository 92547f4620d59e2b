//! Leads (线索): grading by configurable rules, assignment rules, and what conversion produces.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{ScopeAttrs, Scoped};
use crate::changelog::Stamp;
use crate::contact::{Contact, NewContact};
use crate::customer::{CustomerKind, NewCustomer};
use crate::dedup::{MatchCandidate, MatchField};
use crate::error::{Result, ValidationErrors, ValidationReason};
use crate::ids::{ContactId, CustomerId, DepartmentId, LeadId, OpportunityId, UserId};
use crate::industry::Industry;
use crate::macros::vocabulary;
use crate::normalize::{Email, Phone, fold_text};
use crate::validate::{limits, optional_text, required_text};

vocabulary! {
    /// A lead's grade: how promising it is.
    ///
    /// ```
    /// use guanxi_core::sales::LeadGrade;
    /// assert!(LeadGrade::A < LeadGrade::C);
    /// ```
    pub enum LeadGrade {
        /// Hot.
        A = "a" / "A类",
        /// Warm.
        B = "b" / "B类",
        /// Cold.
        C = "c" / "C类",
    }
}

vocabulary! {
    /// Where a lead is in its life.
    ///
    /// ```
    /// use guanxi_core::sales::LeadStatus;
    /// assert_eq!(LeadStatus::Converted.label_zh(), "已转化");
    /// ```
    pub enum LeadStatus {
        /// Not yet assigned.
        New = "new" / "新线索",
        /// Has an owner working it.
        Assigned = "assigned" / "跟进中",
        /// Became a customer, contact and opportunity.
        Converted = "converted" / "已转化",
        /// Not worth pursuing.
        Disqualified = "disqualified" / "无效",
    }
}

/// A lead: a person or company that may buy, not yet a customer.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Lead {
    /// UUIDv7 id.
    pub id: LeadId,
    /// People-facing code, `L` + yyyymmdd + per-day sequence.
    pub code: String,
    /// Contact person.
    pub name: String,
    /// Company, if any.
    pub company: Option<String>,
    /// Phone.
    pub phone: Option<Phone>,
    /// E-mail.
    pub email: Option<Email>,
    /// Source (e.g. 行业峰会, 官网, 转介绍).
    pub source: Option<String>,
    /// Province (full official name).
    pub province: Option<String>,
    /// Industry.
    pub industry: Option<Industry>,
    /// Budget confirmed.
    pub budget_confirmed: bool,
    /// Need confirmed.
    pub need_confirmed: bool,
    /// Grade, from the grading rules.
    pub grade: LeadGrade,
    /// Status.
    pub status: LeadStatus,
    /// Owner.
    pub owner: Option<UserId>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// What it became, once converted.
    pub converted: Option<LeadConversion>,
    /// Creator.
    pub created_by: UserId,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updater.
    pub updated_by: UserId,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Lead {
    /// The code for the `seq`-th lead of `day`.
    ///
    /// ```
    /// let day = chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    /// assert_eq!(guanxi_core::sales::Lead::code_for(day, 12), "L20240501012");
    /// ```
    pub fn code_for(day: NaiveDate, seq: u64) -> String {
        crate::customer::day_code('L', day, seq)
    }

    /// Whether it is still being worked (new or assigned).
    pub fn is_open(&self) -> bool {
        matches!(self.status, LeadStatus::New | LeadStatus::Assigned)
    }

    /// The contact a conversion gives the customer: the lead's person, phone and e-mail.
    pub fn contact_input(&self) -> NewContact {
        let mut c = NewContact::new(&self.name);
        if let Some(p) = &self.phone {
            c = c.phone(p.as_str());
        }
        if let Some(e) = &self.email {
            c = c.email(e.as_str());
        }
        c
    }

    /// The customer a conversion creates when nothing matches: the company (an enterprise)
    /// or else the person (an individual), owned by `owner`, with the lead's source, industry
    /// and contact. The duplicate check runs on this same input, so what is checked is what
    /// would be written.
    ///
    /// ```
    /// # use guanxi_core::changelog::Stamp;
    /// # use guanxi_core::sales::{LeadGrade, NewLead};
    /// # use guanxi_core::{CustomerKind, LeadId, UserId};
    /// # let alice = UserId::new("alice")?;
    /// # let stamp = Stamp::new(alice.clone(), chrono::Utc::now());
    /// let v = NewLead::new("王磊").company("星河科技").phone("13800138000").validate().unwrap();
    /// let lead = v.into_lead(LeadId(uuid::Uuid::nil()), "L1".into(), LeadGrade::A, None, None, &stamp);
    /// let input = lead.customer_input(alice);
    /// assert_eq!((input.name.as_str(), input.kind), ("星河科技", CustomerKind::Enterprise));
    /// assert_eq!(input.contacts[0].phones, ["+8613800138000"]);
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn customer_input(&self, owner: UserId) -> NewCustomer {
        let kind = if self.company.is_some() { CustomerKind::Enterprise } else { CustomerKind::Individual };
        let mut input = NewCustomer::new(self.company.clone().unwrap_or_else(|| self.name.clone()))
            .kind(kind)
            .owner(owner)
            .contact(self.contact_input());
        input.source = self.source.clone();
        input.industry = self.industry;
        input
    }

    /// Of an existing customer's contacts, the one that is this lead's person: the first
    /// with the lead's phone, else the first with its e-mail. None: the conversion adds one.
    pub fn same_contact<'a>(&self, contacts: &'a [Contact]) -> Option<&'a Contact> {
        let phone = self.phone.as_ref().and_then(|p| contacts.iter().find(|c| c.phones.contains(p)));
        phone.or_else(|| self.email.as_ref().and_then(|e| contacts.iter().find(|c| c.emails.contains(e))))
    }
}

/// What converting a lead does about the customers the duplicate engine found for it.
///
/// The lead is checked by the same engine, rules and scope as a customer created by hand
/// (see [`conversion_match`]), never by a narrower lookup of its own.
#[derive(Debug, Clone, PartialEq)]
pub enum ConversionMatch {
    /// Link the lead to the candidate at this index: the best one the actor may read.
    Link(usize),
    /// Refuse: only customers outside the actor's scope match, the strongest on this field.
    /// Linking to them is not the actor's to do, and a new customer would duplicate them.
    Refuse(MatchField),
    /// Nothing matches: create the customer.
    Create,
}

/// Decides a conversion from the duplicate candidates of the lead's customer input, best
/// first, each with whether the actor may read it.
///
/// ```
/// use guanxi_core::dedup::{MatchProfile, MatchRules, MatchField};
/// use guanxi_core::sales::{ConversionMatch, conversion_match};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let rules = MatchRules::default();
/// let lead = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "", "星河科技", CustomerKind::Enterprise).phone("13800138000");
/// let stored = MatchProfile::new(CustomerId(uuid::Uuid::from_u128(7)), "C1", "另一家", CustomerKind::Enterprise).phone("13800138000");
/// let found: Vec<_> = rules.duplicate(&lead, &stored).into_iter().collect();
/// assert_eq!(conversion_match(&[(found[0].clone(), true)]), ConversionMatch::Link(0));
/// assert_eq!(conversion_match(&[(found[0].clone(), false)]), ConversionMatch::Refuse(MatchField::Phone));
/// assert_eq!(conversion_match(&[]), ConversionMatch::Create);
/// ```
pub fn conversion_match(candidates: &[(MatchCandidate, bool)]) -> ConversionMatch {
    if let Some(i) = candidates.iter().position(|(_, readable)| *readable) {
        return ConversionMatch::Link(i);
    }
    match candidates.first() {
        Some((best, _)) => ConversionMatch::Refuse(best.reasons.first().map_or(MatchField::Name, |r| r.field.clone())),
        None => ConversionMatch::Create,
    }
}

impl Scoped for Lead {
    fn scope_attrs(&self) -> ScopeAttrs<'_> {
        ScopeAttrs {
            owner: self.owner.as_ref(),
            creator: None,
            department: self.department.as_ref(),
            province: self.province.as_deref(),
        }
    }
}

/// The records a converted lead became.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LeadConversion {
    /// Customer (created, or an existing one linked).
    pub customer_id: CustomerId,
    /// Whether the customer already existed.
    pub linked_existing: bool,
    /// Why an existing customer was linked (e.g. "same phone as contact 张伟 of C20240501001").
    pub matched_by: Option<String>,
    /// Contact (created, or the existing one with the lead's phone).
    pub contact_id: ContactId,
    /// Opportunity created.
    pub opportunity_id: Option<OpportunityId>,
}

/// A new lead.
///
/// ```
/// use guanxi_core::sales::NewLead;
/// let l = NewLead::new("王磊").company("星河科技").source("行业峰会").phone("13800138000").validate().unwrap();
/// assert_eq!(l.phone.unwrap().as_str(), "+8613800138000");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewLead {
    /// Contact person.
    pub name: String,
    /// Company.
    pub company: Option<String>,
    /// Phone.
    pub phone: Option<String>,
    /// E-mail.
    pub email: Option<String>,
    /// Source.
    pub source: Option<String>,
    /// Province (full or short name).
    pub province: Option<String>,
    /// Industry.
    pub industry: Option<Industry>,
    /// Budget confirmed.
    pub budget_confirmed: bool,
    /// Need confirmed.
    pub need_confirmed: bool,
    /// Owner (default: assigned by the rules, else none).
    pub owner: Option<UserId>,
}

/// A validated lead: typed phone and e-mail, canonical province.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidLead {
    /// Contact person.
    pub name: String,
    /// Company.
    pub company: Option<String>,
    /// Phone.
    pub phone: Option<Phone>,
    /// E-mail.
    pub email: Option<Email>,
    /// Source.
    pub source: Option<String>,
    /// Province.
    pub province: Option<String>,
    /// Industry.
    pub industry: Option<Industry>,
    /// Budget confirmed.
    pub budget_confirmed: bool,
    /// Need confirmed.
    pub need_confirmed: bool,
    /// Owner.
    pub owner: Option<UserId>,
}

impl ValidLead {
    /// The lead record, as created: graded and owned as the rules decided (an owner makes
    /// it assigned), version 1, stamped.
    ///
    /// ```
    /// use guanxi_core::changelog::Stamp;
    /// use guanxi_core::sales::{LeadGrade, LeadStatus, NewLead};
    /// use guanxi_core::{LeadId, UserId};
    /// let alice = UserId::new("alice")?;
    /// let v = NewLead::new("王磊").company("星河科技").phone("138 0013 8000").validate().unwrap();
    /// let lead = v.into_lead(LeadId(uuid::Uuid::nil()), "L1".into(), LeadGrade::B, Some(alice.clone()), None, &Stamp::new(alice, chrono::Utc::now()));
    /// assert_eq!((lead.status, lead.version), (LeadStatus::Assigned, 1));
    /// assert_eq!(lead.phone.unwrap().as_str(), "+8613800138000");
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn into_lead(
        self,
        id: LeadId,
        code: String,
        grade: LeadGrade,
        owner: Option<UserId>,
        department: Option<DepartmentId>,
        stamp: &Stamp,
    ) -> Lead {
        Lead {
            id,
            code,
            name: self.name,
            company: self.company,
            phone: self.phone,
            email: self.email,
            source: self.source,
            province: self.province,
            industry: self.industry,
            budget_confirmed: self.budget_confirmed,
            need_confirmed: self.need_confirmed,
            grade,
            status: if owner.is_some() { LeadStatus::Assigned } else { LeadStatus::New },
            department,
            owner,
            converted: None,
            created_by: stamp.by.clone(),
            created_at: stamp.at,
            updated_by: stamp.by.clone(),
            updated_at: stamp.at,
            version: 1,
        }
    }
}

impl NewLead {
    /// A lead with a contact name.
    pub fn new(name: &str) -> NewLead {
        NewLead { name: name.to_owned(), ..Default::default() }
    }

    /// Sets the company.
    pub fn company(mut self, company: &str) -> Self {
        self.company = Some(company.to_owned());
        self
    }

    /// Sets the phone.
    pub fn phone(mut self, phone: &str) -> Self {
        self.phone = Some(phone.to_owned());
        self
    }

    /// Sets the e-mail.
    pub fn email(mut self, email: &str) -> Self {
        self.email = Some(email.to_owned());
        self
    }

    /// Sets the source.
    pub fn source(mut self, source: &str) -> Self {
        self.source = Some(source.to_owned());
        self
    }

    /// Sets the province.
    pub fn province(mut self, province: &str) -> Self {
        self.province = Some(province.to_owned());
        self
    }

    /// Sets the industry.
    pub fn industry(mut self, industry: Industry) -> Self {
        self.industry = Some(industry);
        self
    }

    /// Marks budget and need as confirmed (or not).
    pub fn qualified(mut self, budget: bool, need: bool) -> Self {
        self.budget_confirmed = budget;
        self.need_confirmed = need;
        self
    }

    /// Checks every field, reporting every failure.
    pub fn validate(self) -> std::result::Result<ValidLead, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let name = required_text(&mut errs, "name", &self.name, limits::NAME);
        let company = optional_text(&mut errs, "company", self.company.as_deref(), limits::NAME);
        let source = optional_text(&mut errs, "source", self.source.as_deref(), limits::SHORT);
        let phone = self
            .phone
            .as_deref()
            .map(fold_text)
            .filter(|p| !p.is_empty())
            .and_then(|p| Phone::parse(&p).map_err(|r| errs.push("phone", r)).ok());
        let email = self
            .email
            .as_deref()
            .map(fold_text)
            .filter(|e| !e.is_empty())
            .and_then(|e| Email::parse(&e).map_err(|r| errs.push("email", r)).ok());
        let province = self.province.as_deref().map(fold_text).filter(|p| !p.is_empty()).and_then(|p| {
            let c = crate::region::canonical_province(&p).map(str::to_owned);
            if c.is_none() {
                errs.push("province", ValidationReason::UnknownProvince);
            }
            c
        });
        let valid = ValidLead {
            name,
            company,
            phone,
            email,
            source,
            province,
            industry: self.industry,
            budget_confirmed: self.budget_confirmed,
            need_confirmed: self.need_confirmed,
            owner: self.owner,
        };
        if errs.is_empty() { Ok(valid) } else { Err(errs) }
    }
}

/// A condition of a grading rule.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum LeadCondition {
    /// The source is one of these (e.g. 行业峰会).
    SourceIn(Vec<String>),
    /// The industry is one of these.
    IndustryIn(Vec<Industry>),
    /// Budget confirmed.
    BudgetConfirmed,
    /// Need confirmed.
    NeedConfirmed,
    /// All of these hold.
    All(Vec<LeadCondition>),
}

impl LeadCondition {
    /// Whether the lead meets the condition.
    pub fn holds(&self, l: &ValidLead) -> bool {
        match self {
            LeadCondition::SourceIn(s) => l.source.as_ref().is_some_and(|x| s.iter().any(|y| fold_text(y) == *x)),
            LeadCondition::IndustryIn(i) => l.industry.is_some_and(|x| i.contains(&x)),
            LeadCondition::BudgetConfirmed => l.budget_confirmed,
            LeadCondition::NeedConfirmed => l.need_confirmed,
            LeadCondition::All(all) => all.iter().all(|c| c.holds(l)),
        }
    }
}

/// A grading rule: the grade a lead gets when its condition holds.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct GradeRule {
    /// Grade given.
    pub grade: LeadGrade,
    /// When.
    pub when: LeadCondition,
}

/// How a new lead finds its owner. Rules are tried in order; the first that names a
/// candidate wins.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AssignmentRule {
    /// By province.
    ByProvince(BTreeMap<String, UserId>),
    /// By industry.
    ByIndustry(BTreeMap<Industry, UserId>),
    /// Each in turn.
    RoundRobin(Vec<UserId>),
    /// The one with the fewest open leads (ties: the first listed).
    LeastLoaded(Vec<UserId>),
}

/// The lead rules: grading, then assignment. Stored in the CRM and changed by a configure call.
///
/// ```
/// use guanxi_core::sales::{LeadRules, NewLead, LeadGrade};
/// let rules = LeadRules::standard();
/// let summit = NewLead::new("王磊").source("行业峰会").validate().unwrap();
/// assert_eq!(rules.grade(&summit), LeadGrade::A);
/// let qualified = NewLead::new("李娜").qualified(true, true).validate().unwrap();
/// assert_eq!(rules.grade(&qualified), LeadGrade::B);
/// assert_eq!(rules.grade(&NewLead::new("赵六").validate().unwrap()), LeadGrade::C);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct LeadRules {
    /// Grading rules in order; no match gives C.
    pub grading: Vec<GradeRule>,
    /// Assignment rules in order; no match leaves the lead unassigned.
    pub assignment: Vec<AssignmentRule>,
}

impl LeadRules {
    /// The seeds' grading: source 行业峰会 → A; budget and need confirmed → B; else C. No assignment.
    pub fn standard() -> LeadRules {
        LeadRules {
            grading: vec![
                GradeRule { grade: LeadGrade::A, when: LeadCondition::SourceIn(vec!["行业峰会".into()]) },
                GradeRule {
                    grade: LeadGrade::B,
                    when: LeadCondition::All(vec![LeadCondition::BudgetConfirmed, LeadCondition::NeedConfirmed]),
                },
            ],
            assignment: vec![],
        }
    }

    /// The grade of the first matching rule, else C.
    pub fn grade(&self, l: &ValidLead) -> LeadGrade {
        self.grading.iter().find(|r| r.when.holds(l)).map_or(LeadGrade::C, |r| r.grade)
    }

    /// The owner the rules give: `turn` is a fresh counter value (round robin), `load` the
    /// open-lead count of a user (least loaded).
    pub fn assignee(
        &self,
        l: &ValidLead,
        mut turn: impl FnMut() -> Result<u64>,
        mut load: impl FnMut(&UserId) -> Result<u64>,
    ) -> Result<Option<UserId>> {
        for rule in &self.assignment {
            let hit = match rule {
                AssignmentRule::ByProvince(m) => l.province.as_ref().and_then(|p| m.get(p)).cloned(),
                AssignmentRule::ByIndustry(m) => l.industry.and_then(|i| m.get(&i)).cloned(),
                AssignmentRule::RoundRobin(users) if !users.is_empty() => {
                    let n = turn()?;
                    users.get(usize::try_from(n % users.len() as u64).unwrap_or(0)).cloned()
                }
                AssignmentRule::LeastLoaded(users) => {
                    let mut best: Option<(u64, &UserId)> = None;
                    for u in users {
                        let n = load(u)?;
                        if best.is_none_or(|(b, _)| n < b) {
                            best = Some((n, u));
                        }
                    }
                    best.map(|(_, u)| u.clone())
                }
                AssignmentRule::RoundRobin(_) => None,
            };
            if hit.is_some() {
                return Ok(hit);
            }
        }
        Ok(None)
    }
}

/// Conditions on a lead list.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LeadFilter {
    /// Status.
    pub status: Option<LeadStatus>,
    /// Open (new or assigned) only.
    pub open: Option<bool>,
    /// Owner.
    pub owner: Option<UserId>,
    /// Grade.
    pub grade: Option<LeadGrade>,
    /// The records the caller may see (set by the facade).
    pub scope: Option<crate::access::RecordScope>,
}

impl LeadFilter {
    /// The reference semantics.
    pub fn matches(&self, l: &Lead) -> bool {
        self.scope.as_ref().is_none_or(|s| s.admits(l.scope_attrs()))
            && self.status.is_none_or(|s| l.status == s)
            && self.open.is_none_or(|o| l.is_open() == o)
            && self.owner.as_ref().is_none_or(|u| l.owner.as_ref() == Some(u))
            && self.grade.is_none_or(|g| l.grade == g)
    }
}

//! Leads (线索): grading by configurable rules, assignment rules, and what conversion produces.

use std::collections::BTreeMap;

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::access::{ScopeAttrs, Scoped};
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

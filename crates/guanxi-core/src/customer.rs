//! The customer record (客户), its input and patch forms, and their validation.

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::contact::NewContact;
use crate::custom_field::{CustomFieldDef, CustomValue, patch_custom, validate_new_custom};
use crate::error::{ValidationErrors, ValidationReason};
use crate::identifier::{IdScheme, Identifier, validate_identifiers};
use crate::ids::{CustomerId, DepartmentId, UserId};
use crate::industry::Industry;
use crate::macros::vocabulary;
use crate::region::Region;
use crate::tag::normalize_tag_name;
use crate::validate::{limits, optional_text, required_text};

vocabulary! {
    /// Whether a customer is a company or a person.
    ///
    /// ```
    /// use guanxi_core::CustomerKind;
    /// assert_eq!("企业".parse::<CustomerKind>().unwrap(), CustomerKind::Enterprise);
    /// ```
    #[derive(Default)]
    pub enum CustomerKind {
        /// A company or organisation (企业).
        #[default]
        Enterprise = "enterprise" / "企业",
        /// A private person (个人).
        Individual = "individual" / "个人",
    }
}

vocabulary! {
    /// Company size band by head count.
    ///
    /// ```
    /// use guanxi_core::SizeBand;
    /// assert_eq!(SizeBand::for_headcount(250), SizeBand::Medium);
    /// ```
    pub enum SizeBand {
        /// Under 100 people (小型).
        Small = "small" / "小型",
        /// 100 to 500 people (中型).
        Medium = "medium" / "中型",
        /// Over 500 people (大型).
        Large = "large" / "大型",
    }
}

impl SizeBand {
    /// The band of a head count: under 100 small, 100–500 medium, above large.
    pub fn for_headcount(people: u32) -> SizeBand {
        match people {
            0..100 => SizeBand::Small,
            100..=500 => SizeBand::Medium,
            _ => SizeBand::Large,
        }
    }
}

vocabulary! {
    /// Lifecycle status of a customer.
    ///
    /// ```
    /// use guanxi_core::LifecycleStatus;
    /// assert_eq!(LifecycleStatus::default(), LifecycleStatus::Potential);
    /// assert_eq!(LifecycleStatus::Lost.label_zh(), "流失");
    /// ```
    #[derive(Default)]
    pub enum LifecycleStatus {
        /// Not yet bought (潜在).
        #[default]
        Potential = "potential" / "潜在",
        /// Has bought (成交).
        Customer = "customer" / "成交",
        /// Stopped buying (流失).
        Lost = "lost" / "流失",
    }
}

vocabulary! {
    /// Customer level (客户等级), A highest.
    ///
    /// ```
    /// use guanxi_core::Level;
    /// assert!(Level::A < Level::C);
    /// ```
    pub enum Level {
        /// Key account.
        A = "a" / "A",
        /// Regular account.
        B = "b" / "B",
        /// Small account.
        C = "c" / "C",
    }
}

/// A configurable rule that derives the level from a numeric custom field, e.g.
/// "A when trailing-12-month spend ≥ 500,000, B when ≥ 100,000, else C".
///
/// When a rule is configured the level is always derived, and setting it by hand is a
/// validation error (so the two never disagree). Once purchases are recorded, the facade keeps
/// the field at the customer's paid spend of the trailing twelve months in the rule's
/// currency, so the level follows purchases (and `refresh_levels` follows time).
///
/// ```
/// use guanxi_core::{CustomValue, Level, LevelRule};
/// use rust_decimal::Decimal;
/// let rule = LevelRule::spend_12m_default();
/// let custom = [("spend_12m".to_owned(), CustomValue::Decimal(Decimal::from(600_000)))].into();
/// assert_eq!(rule.level_for(&custom), Level::A);
/// assert_eq!(rule.level_for(&Default::default()), Level::C);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct LevelRule {
    /// The custom field (number or decimal) the rule reads.
    pub field: String,
    /// Minimum value for A.
    pub a_min: Decimal,
    /// Minimum value for B; below it the level is C.
    pub b_min: Decimal,
    /// The currency whose paid purchases of the trailing twelve months the field is kept at,
    /// when purchases are recorded (ISO 4217; purchases in other currencies do not count).
    #[serde(default = "default_level_currency")]
    pub currency: String,
}

fn default_level_currency() -> String {
    crate::sales::DEFAULT_CURRENCY.to_owned()
}

impl LevelRule {
    /// The rule of the requirement documents: A ≥ 500,000 and B ≥ 100,000 of `spend_12m`.
    pub fn spend_12m_default() -> Self {
        LevelRule {
            field: "spend_12m".into(),
            a_min: Decimal::from(500_000),
            b_min: Decimal::from(100_000),
            currency: default_level_currency(),
        }
    }

    /// The level the rule gives for a record's custom values (missing value → C).
    pub fn level_for(&self, custom: &BTreeMap<String, CustomValue>) -> Level {
        let value = match custom.get(&self.field) {
            Some(CustomValue::Decimal(d)) => *d,
            Some(CustomValue::Number(n)) => Decimal::from(*n),
            _ => return Level::C,
        };
        if value >= self.a_min {
            Level::A
        } else if value >= self.b_min {
            Level::B
        } else {
            Level::C
        }
    }
}

/// A customer (客户): a company or a person the organisation sells to or serves.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Customer {
    /// UUIDv7 id.
    pub id: CustomerId,
    /// People-facing code, `C` + yyyymmdd + per-day sequence, e.g. `C20240501001`.
    pub code: String,
    /// Name, folded to half-width and trimmed.
    pub name: String,
    /// Enterprise or individual.
    pub kind: CustomerKind,
    /// GB/T 4754 section.
    pub industry: Option<Industry>,
    /// Size band.
    pub size: Option<SizeBand>,
    /// Source / channel (展会, 官网, 转介绍, …).
    pub source: Option<String>,
    /// Lifecycle status.
    pub status: LifecycleStatus,
    /// Level A/B/C (derived when a [`LevelRule`] is configured).
    pub level: Option<Level>,
    /// Province / city / district.
    pub region: Option<Region>,
    /// Street address.
    pub address: Option<String>,
    /// Responsible sales rep.
    pub owner: Option<UserId>,
    /// Responsible department.
    pub department: Option<DepartmentId>,
    /// Tag names, sorted. Changed only through tag operations, never by an update.
    pub tags: BTreeSet<String>,
    /// Custom field values by key.
    pub custom: BTreeMap<String, CustomValue>,
    /// Identity numbers and registration codes (统一社会信用代码, passport, …), sorted by
    /// scheme and value.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub identifiers: Vec<Identifier>,
    /// Who created it.
    pub created_by: UserId,
    /// When it was created.
    pub created_at: DateTime<Utc>,
    /// Who changed it last.
    pub updated_by: UserId,
    /// When it was changed last.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version: 1 on create, +1 per update.
    pub version: u64,
    /// Set when soft-deleted.
    pub deleted_at: Option<DateTime<Utc>>,
    /// Set when the customer was merged into another (it is then also deleted): a tombstone
    /// pointing to the survivor.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub merged_into: Option<CustomerId>,
}

/// A people-facing code: a letter per record kind, the day, and the day's sequence number (at
/// least three digits). Customers, opportunities and leads share the shape.
pub(crate) fn day_code(prefix: char, day: NaiveDate, seq: u64) -> String {
    format!("{prefix}{}{seq:03}", day.format("%Y%m%d"))
}

impl Customer {
    /// The people-facing code for the `seq`-th customer created on `day`.
    ///
    /// ```
    /// use guanxi_core::Customer;
    /// let day = chrono::NaiveDate::from_ymd_opt(2024, 5, 1).unwrap();
    /// assert_eq!(Customer::code_for(day, 1), "C20240501001");
    /// assert_eq!(Customer::code_for(day, 1234), "C202405011234");
    /// ```
    pub fn code_for(day: NaiveDate, seq: u64) -> String {
        day_code('C', day, seq)
    }

    /// Whether the customer is soft-deleted.
    pub fn is_deleted(&self) -> bool {
        self.deleted_at.is_some()
    }

    /// Adds identifiers to the customer's, keeping the list sorted and without repeats (what
    /// a merge and an import's link do: a registration code is never lost).
    ///
    /// ```
    /// use guanxi_core::{IdScheme, Identifier};
    /// let mut c = guanxi_core::testing::conformance::sample_customer(1);
    /// let code = Identifier::parse(IdScheme::Passport, "E12345678").unwrap();
    /// c.add_identifiers([code.clone(), code.clone()]);
    /// assert_eq!(c.identifiers, [code]);
    /// ```
    pub fn add_identifiers(&mut self, more: impl IntoIterator<Item = Identifier>) {
        self.identifiers.extend(more);
        self.identifiers.sort();
        self.identifiers.dedup();
    }
}

/// Input for a new customer: raw values, validated and normalized by [`NewCustomer::validate`].
///
/// ```
/// use guanxi_core::{Industry, NewContact, NewCustomer, Region};
/// let input = NewCustomer::new(" 华为技术有限公司 ")
///     .industry(Industry::InformationTechnology)
///     .region(Region { province: "广东".into(), city: "深圳市".into(), district: "龙岗区".into() })
///     .tag("VIP")
///     .contact(NewContact::new("张伟").phone("138 1234 5678"));
/// let valid = input.validate(&Default::default()).unwrap();
/// assert_eq!(valid.name, "华为技术有限公司");
/// assert_eq!(valid.region.unwrap().province, "广东省");
/// assert_eq!(valid.contacts[0].phones[0].as_str(), "+8613812345678");
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct NewCustomer {
    /// Name: required, except that an individual may go without one when it has another
    /// identifying value (a contact's phone, e-mail or identity number, or a custom value).
    ///
    /// ```
    /// use guanxi_core::{CustomerKind, NewContact, NewCustomer, ValidationContext, ValidationReason};
    /// let ctx = ValidationContext::default();
    /// let nameless = || NewCustomer::new("").kind(CustomerKind::Individual);
    /// assert!(nameless().contact(NewContact::new("本人").phone("13812345678")).validate(&ctx).is_ok());
    /// let errs = nameless().validate(&ctx).unwrap_err();
    /// assert_eq!(errs.field("name").unwrap().reason, ValidationReason::Required);
    /// assert!(NewCustomer::new("").contact(NewContact::new("张伟").phone("13812345678")).validate(&ctx).is_err()); // a company needs its name
    /// ```
    pub name: String,
    /// Enterprise (default) or individual.
    pub kind: CustomerKind,
    /// Industry section.
    pub industry: Option<Industry>,
    /// Size band.
    pub size: Option<SizeBand>,
    /// Source / channel.
    pub source: Option<String>,
    /// Lifecycle status (default potential).
    pub status: LifecycleStatus,
    /// Level; must be left empty when a level rule is configured.
    pub level: Option<Level>,
    /// Region; the province is checked against the list of province-level divisions.
    pub region: Option<Region>,
    /// Street address.
    pub address: Option<String>,
    /// Owner; defaults to the acting user.
    pub owner: Option<UserId>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// Tag names; unknown tags are created (ungrouped).
    pub tags: Vec<String>,
    /// Custom field values.
    pub custom: BTreeMap<String, CustomValue>,
    /// Identity numbers and registration codes, each checked by its scheme
    /// ([`Identifier::parse`]).
    pub identifiers: Vec<Identifier>,
    /// Contacts to create with the customer; the first (or the one marked primary) is primary.
    pub contacts: Vec<NewContact>,
}

impl NewCustomer {
    /// An enterprise customer called `name`, everything else default.
    pub fn new(name: impl Into<String>) -> Self {
        NewCustomer { name: name.into(), ..Default::default() }
    }

    /// Sets the kind.
    pub fn kind(mut self, kind: CustomerKind) -> Self {
        self.kind = kind;
        self
    }

    /// Sets the industry.
    pub fn industry(mut self, industry: Industry) -> Self {
        self.industry = Some(industry);
        self
    }

    /// Sets the size band.
    pub fn size(mut self, size: SizeBand) -> Self {
        self.size = Some(size);
        self
    }

    /// Sets the source.
    pub fn source(mut self, source: impl Into<String>) -> Self {
        self.source = Some(source.into());
        self
    }

    /// Sets the lifecycle status.
    pub fn status(mut self, status: LifecycleStatus) -> Self {
        self.status = status;
        self
    }

    /// Sets the level by hand.
    pub fn level(mut self, level: Level) -> Self {
        self.level = Some(level);
        self
    }

    /// Sets the region.
    pub fn region(mut self, region: Region) -> Self {
        self.region = Some(region);
        self
    }

    /// Sets the address.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(address.into());
        self
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(owner);
        self
    }

    /// Sets the department.
    pub fn department(mut self, department: DepartmentId) -> Self {
        self.department = Some(department);
        self
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: impl Into<String>) -> Self {
        self.tags.push(tag.into());
        self
    }

    /// Sets a custom field value.
    pub fn custom(mut self, key: impl Into<String>, value: CustomValue) -> Self {
        self.custom.insert(key.into(), value);
        self
    }

    /// Adds an identifier, e.g. the company's unified social credit code.
    ///
    /// ```
    /// use guanxi_core::{IdScheme, NewCustomer};
    /// let v = NewCustomer::new("华为技术有限公司").identifier(IdScheme::Uscc, "914403001922038216")
    ///     .validate(&Default::default()).unwrap();
    /// assert_eq!(v.identifiers[0].to_string(), "uscc:914403001922038216");
    /// ```
    pub fn identifier(mut self, scheme: IdScheme, value: impl Into<String>) -> Self {
        self.identifiers.push(Identifier::new(scheme, value));
        self
    }

    /// Adds a contact.
    pub fn contact(mut self, contact: NewContact) -> Self {
        self.contacts.push(contact);
        self
    }

    /// Validates and normalizes every field, reporting all failures together.
    pub fn validate(self, ctx: &ValidationContext) -> Result<ValidCustomer, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        // A person may be known by other identifying values alone (a contact's phone, e-mail
        // or identity number, or a custom value such as a member number): such a record is
        // still stored, and found by those values.
        let identified = self.kind == CustomerKind::Individual
            && (!self.custom.is_empty()
                || !self.identifiers.is_empty()
                || self.contacts.iter().any(|c| !c.phones.is_empty() || !c.emails.is_empty() || c.id_number.is_some()));
        let name = if identified {
            optional_text(&mut errs, "name", Some(&self.name), limits::NAME).unwrap_or_default()
        } else {
            required_text(&mut errs, "name", &self.name, limits::NAME)
        };
        let source = optional_text(&mut errs, "source", self.source.as_deref(), limits::SHORT);
        let address = optional_text(&mut errs, "address", self.address.as_deref(), limits::ADDRESS);
        let region = validate_region(&mut errs, self.region);
        let custom = validate_new_custom(&ctx.customer_fields, self.custom, &mut errs);
        let level = derive_level(&mut errs, ctx, self.level, &custom);
        let tags = validate_tags(&mut errs, &self.tags);
        let identifiers = validate_identifiers(&mut errs, "identifiers", &self.identifiers);
        let mut contacts = Vec::with_capacity(self.contacts.len());
        for (i, c) in self.contacts.into_iter().enumerate() {
            match c.validate(&ctx.contact_fields) {
                Ok(v) => contacts.push(v),
                Err(e) => errs.extend_nested(&format!("contacts[{i}]"), e),
            }
        }
        if contacts.iter().filter(|c| c.primary).count() > 1 {
            errs.push("contacts", ValidationReason::Invalid { detail: "more than one primary contact".into() });
        }
        if !errs.is_empty() {
            return Err(errs);
        }
        Ok(ValidCustomer {
            name,
            kind: self.kind,
            industry: self.industry,
            size: self.size,
            source,
            status: self.status,
            level,
            region,
            address,
            owner: self.owner,
            department: self.department,
            tags,
            custom,
            identifiers,
            contacts,
        })
    }
}

fn validate_region(errs: &mut ValidationErrors, region: Option<Region>) -> Option<Region> {
    let r = region?;
    if r.province.trim().is_empty() && r.city.trim().is_empty() && r.district.trim().is_empty() {
        return None;
    }
    match Region::new(&r.province, &r.city, &r.district) {
        Ok(r) => Some(r),
        Err(ValidationReason::UnknownProvince) => {
            errs.push("region.province", ValidationReason::UnknownProvince);
            None
        }
        Err(reason) => {
            errs.push("region", reason);
            None
        }
    }
}

fn derive_level(
    errs: &mut ValidationErrors,
    ctx: &ValidationContext,
    manual: Option<Level>,
    custom: &BTreeMap<String, CustomValue>,
) -> Option<Level> {
    match (&ctx.level_rule, manual) {
        (Some(_), Some(_)) => {
            errs.push("level", ValidationReason::Invalid { detail: "is derived by the level rule".into() });
            None
        }
        (Some(rule), None) => Some(rule.level_for(custom)),
        (None, manual) => manual,
    }
}

fn validate_tags(errs: &mut ValidationErrors, tags: &[String]) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for (i, t) in tags.iter().enumerate() {
        match normalize_tag_name(t) {
            Ok(t) => {
                out.insert(t);
            }
            Err(reason) => errs.push(format!("tags[{i}]"), reason),
        }
    }
    out
}

/// What validation needs to know beyond the record itself: custom field definitions and rules.
///
/// ```
/// use guanxi_core::{LevelRule, ValidationContext};
/// let ctx = ValidationContext { level_rule: Some(LevelRule::spend_12m_default()), ..Default::default() };
/// assert!(ctx.customer_fields.is_empty());
/// ```
#[derive(Debug, Clone, Default)]
pub struct ValidationContext {
    /// Custom fields of customers.
    pub customer_fields: Vec<CustomFieldDef>,
    /// Custom fields of contacts.
    pub contact_fields: Vec<CustomFieldDef>,
    /// The level rule, if levels are derived.
    pub level_rule: Option<LevelRule>,
}

/// A validated, normalized new customer (see [`NewCustomer::validate`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ValidCustomer {
    /// Name.
    pub name: String,
    /// Kind.
    pub kind: CustomerKind,
    /// Industry.
    pub industry: Option<Industry>,
    /// Size band.
    pub size: Option<SizeBand>,
    /// Source.
    pub source: Option<String>,
    /// Status.
    pub status: LifecycleStatus,
    /// Level.
    pub level: Option<Level>,
    /// Region (province canonical).
    pub region: Option<Region>,
    /// Address.
    pub address: Option<String>,
    /// Owner (the facade defaults it to the actor).
    pub owner: Option<UserId>,
    /// Department.
    pub department: Option<DepartmentId>,
    /// Tag names.
    pub tags: BTreeSet<String>,
    /// Custom values.
    pub custom: BTreeMap<String, CustomValue>,
    /// Identifiers, checked, sorted, without repeats.
    pub identifiers: Vec<Identifier>,
    /// Contacts.
    pub contacts: Vec<crate::contact::ValidContact>,
}

impl ValidCustomer {
    /// The stored customer this input becomes: version 1, created and updated by `stamp`, owned by
    /// `owner` in `department`; and its contacts, each with whether it is the primary one (the one
    /// marked so, else the first).
    ///
    /// ```
    /// use guanxi_core::changelog::Stamp;
    /// use guanxi_core::{CustomerId, NewCustomer, NewContact, UserId, ValidationContext};
    /// let alice = UserId::new("alice")?;
    /// let v = NewCustomer::new("甲").contact(NewContact::new("张伟")).contact(NewContact::new("李娜").primary())
    ///     .validate(&ValidationContext::default()).unwrap();
    /// let (c, contacts) = v.into_customer(CustomerId(uuid::Uuid::nil()), "C1".into(), alice.clone(), None, &Stamp::new(alice.clone(), chrono::Utc::now()));
    /// assert_eq!((c.version, c.owner.as_ref(), c.created_by.as_str()), (1, Some(&alice), "alice"));
    /// assert_eq!(contacts.iter().map(|(c, primary)| (c.name.as_str(), *primary)).collect::<Vec<_>>(), [("张伟", false), ("李娜", true)]);
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn into_customer(
        self,
        id: CustomerId,
        code: String,
        owner: UserId,
        department: Option<DepartmentId>,
        stamp: &crate::changelog::Stamp,
    ) -> (Customer, Vec<(crate::contact::ValidContact, bool)>) {
        let primary = self.contacts.iter().position(|c| c.primary).unwrap_or(0);
        let contacts = self.contacts.into_iter().enumerate().map(|(i, c)| (c, i == primary)).collect();
        let customer = Customer {
            id,
            code,
            name: self.name,
            kind: self.kind,
            industry: self.industry,
            size: self.size,
            source: self.source,
            status: self.status,
            level: self.level,
            region: self.region,
            address: self.address,
            owner: Some(owner),
            department,
            tags: self.tags,
            custom: self.custom,
            identifiers: self.identifiers,
            created_by: stamp.by.clone(),
            created_at: stamp.at,
            updated_by: stamp.by.clone(),
            updated_at: stamp.at,
            version: 1,
            deleted_at: None,
            merged_into: None,
        };
        (customer, contacts)
    }
}

/// Changes to a customer. `None` leaves a field alone; `Some(None)` clears an optional field.
/// In `custom`, a `None` value removes that key.
///
/// ```
/// use guanxi_core::{CustomerPatch, LifecycleStatus};
/// let patch = CustomerPatch::default().name("新名字").status(LifecycleStatus::Customer).clear_address();
/// assert_eq!(patch.address, Some(None));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CustomerPatch {
    /// New name.
    pub name: Option<String>,
    /// New kind.
    pub kind: Option<CustomerKind>,
    /// New industry.
    pub industry: Option<Option<Industry>>,
    /// New size band.
    pub size: Option<Option<SizeBand>>,
    /// New source.
    pub source: Option<Option<String>>,
    /// New status.
    pub status: Option<LifecycleStatus>,
    /// New level (rejected when a level rule is configured).
    pub level: Option<Option<Level>>,
    /// New region.
    pub region: Option<Option<Region>>,
    /// New address.
    pub address: Option<Option<String>>,
    /// New owner.
    pub owner: Option<Option<UserId>>,
    /// New department.
    pub department: Option<Option<DepartmentId>>,
    /// Custom values to set (`Some`) or remove (`None`).
    pub custom: BTreeMap<String, Option<CustomValue>>,
    /// The new identifier list, replacing the old one whole (`Some(vec![])` clears it).
    pub identifiers: Option<Vec<Identifier>>,
}

impl CustomerPatch {
    /// Sets the name.
    pub fn name(mut self, name: impl Into<String>) -> Self {
        self.name = Some(name.into());
        self
    }

    /// Sets the status.
    pub fn status(mut self, status: LifecycleStatus) -> Self {
        self.status = Some(status);
        self
    }

    /// Sets the address.
    pub fn address(mut self, address: impl Into<String>) -> Self {
        self.address = Some(Some(address.into()));
        self
    }

    /// Clears the address.
    pub fn clear_address(mut self) -> Self {
        self.address = Some(None);
        self
    }

    /// Sets the owner.
    pub fn owner(mut self, owner: UserId) -> Self {
        self.owner = Some(Some(owner));
        self
    }

    /// Sets the region.
    pub fn region(mut self, region: Region) -> Self {
        self.region = Some(Some(region));
        self
    }

    /// Sets a custom value.
    pub fn custom(mut self, key: impl Into<String>, value: CustomValue) -> Self {
        self.custom.insert(key.into(), Some(value));
        self
    }

    /// Replaces the identifier list.
    ///
    /// ```
    /// use guanxi_core::{CustomerPatch, IdScheme, Identifier};
    /// let patch = CustomerPatch::default().identifiers(vec![Identifier::new(IdScheme::Passport, "E12345678")]);
    /// assert_eq!(patch.identifiers.unwrap().len(), 1);
    /// ```
    pub fn identifiers(mut self, identifiers: Vec<Identifier>) -> Self {
        self.identifiers = Some(identifiers);
        self
    }

    /// Removes a custom value.
    pub fn clear_custom(mut self, key: impl Into<String>) -> Self {
        self.custom.insert(key.into(), None);
        self
    }

    /// Applies the patch to `current`, validating every touched field; returns the new record
    /// with the bookkeeping fields (version, updated_*) untouched.
    ///
    /// ```
    /// # use guanxi_core::*;
    /// # let ctx = ValidationContext::default();
    /// # let valid = NewCustomer::new("甲公司").validate(&ctx).unwrap();
    /// # let user = UserId::new("u").unwrap();
    /// # let now = chrono::Utc::now();
    /// # let current = Customer { id: CustomerId(uuid::Uuid::nil()), code: "C20240501001".into(), name: valid.name,
    /// #   kind: valid.kind, industry: None, size: None, source: None, status: valid.status, level: None, region: None,
    /// #   address: None, owner: None, department: None, tags: Default::default(), custom: Default::default(), identifiers: vec![],
    /// #   created_by: user.clone(), created_at: now, updated_by: user, updated_at: now, version: 1, deleted_at: None,
    /// #   merged_into: None };
    /// let errs = CustomerPatch::default().name("  ").apply(&current, &ctx).unwrap_err();
    /// assert_eq!(errs.field("name").unwrap().reason, ValidationReason::Required);
    /// ```
    pub fn apply(self, current: &Customer, ctx: &ValidationContext) -> Result<Customer, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        let mut next = current.clone();
        if let Some(name) = self.name {
            next.name = required_text(&mut errs, "name", &name, limits::NAME);
        }
        if let Some(kind) = self.kind {
            next.kind = kind;
        }
        if let Some(industry) = self.industry {
            next.industry = industry;
        }
        if let Some(size) = self.size {
            next.size = size;
        }
        if let Some(source) = self.source {
            next.source = optional_text(&mut errs, "source", source.as_deref(), limits::SHORT);
        }
        if let Some(status) = self.status {
            next.status = status;
        }
        if let Some(region) = self.region {
            next.region = validate_region(&mut errs, region);
        }
        if let Some(address) = self.address {
            next.address = optional_text(&mut errs, "address", address.as_deref(), limits::ADDRESS);
        }
        if let Some(owner) = self.owner {
            next.owner = owner;
        }
        if let Some(department) = self.department {
            next.department = department;
        }
        next.custom = patch_custom(&ctx.customer_fields, &current.custom, self.custom, &mut errs);
        if let Some(identifiers) = self.identifiers {
            next.identifiers = validate_identifiers(&mut errs, "identifiers", &identifiers);
        }
        match (&ctx.level_rule, self.level) {
            (Some(_), Some(_)) => {
                errs.push("level", ValidationReason::Invalid { detail: "is derived by the level rule".into() })
            }
            (Some(rule), None) => next.level = Some(rule.level_for(&next.custom)),
            (None, Some(level)) => next.level = level,
            (None, None) => {}
        }
        if errs.is_empty() { Ok(next) } else { Err(errs) }
    }
}

//! Users, departments, roles, and the one policy that answers both "may user U do action A on
//! record R" ([`AccessModel::explain`]) and "which records may U list" ([`RecordScope`], which
//! every store compiles into its own query).
//!
//! The model is data: built-in roles plus the host's departments, users and custom roles,
//! stored in the database and changed through the `Crm` facade (elevated, audited). While it
//! has no users, access control is off and every actor may do everything — the single-user
//! embedded case. The first user added must be able to administer access, and no change may
//! leave a model with users but nobody able to administer it.
//!
//! ```
//! use guanxi_core::access::{AccessModel, Department, Scope, User};
//! use guanxi_core::{Action, BuiltinRole, DepartmentId, EntityKind, UserId};
//! let mut m = AccessModel::default();
//! m = m.with_department(Department::new("east", "华东大区", None)?)?;
//! m = m.with_department(Department::new("sh", "上海组", Some("east"))?)?;
//! m = m.with_user(User::new("root", "管理员")?.role(BuiltinRole::Administrator))?;
//! m = m.with_user(User::new("li", "李经理")?.department(DepartmentId::new("east")?).role(BuiltinRole::SalesManager))?;
//! m = m.with_user(User::new("wang", "王销售")?.department(DepartmentId::new("sh")?).role(BuiltinRole::SalesRep))?;
//! let li = UserId::new("li")?;
//! let scope = m.permission(&li, Action::Read, EntityKind::Customer)?.scope;
//! // The manager of 华东 sees records of the 上海组 below it, and those its members own.
//! assert!(scope.departments.contains(&DepartmentId::new("sh")?));
//! assert!(scope.owners.contains(&UserId::new("wang")?));
//! assert!(m.permission(&UserId::new("wang")?, Action::Delete, EntityKind::Customer).is_err());
//! # Ok::<(), guanxi_core::Error>(())
//! ```

use std::collections::{BTreeMap, BTreeSet};
use std::sync::LazyLock;

use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::changelog::FieldChange;
use crate::contact::Contact;
use crate::customer::Customer;
use crate::error::{EntityKind, Error, Result, ValidationErrors, ValidationReason};
use crate::identifier::Identifier;
use crate::ids::{DepartmentId, RoleId, UserId};
use crate::macros::vocabulary;
use crate::normalize::{Email, IdNumber, Phone, fold_text, mask_middle};
use crate::policy::Action;
use crate::region::{area_of, canonical_province, provinces_of_area};

vocabulary! {
    /// Which records a grant reaches. Every scope includes the records the user owns.
    ///
    /// ```
    /// use guanxi_core::access::Scope;
    /// assert_eq!("本部门".parse::<Scope>().unwrap(), Scope::Department);
    /// ```
    pub enum Scope {
        /// Records the user owns.
        Own = "own" / "本人",
        /// Records of the user's department and the departments below it, and records owned
        /// by their members.
        Department = "department" / "本部门",
        /// Records in the user's regions (provinces or macro-areas such as 华东).
        Region = "region" / "本区域",
        /// Every record.
        All = "all" / "全部",
    }
}

vocabulary! {
    /// How a restricted field is shown.
    ///
    /// ```
    /// use guanxi_core::access::Visibility;
    /// assert_eq!(Visibility::Masked.label_zh(), "脱敏");
    /// ```
    pub enum Visibility {
        /// Partly starred: phones `138****5678`, e-mail `a***@example.com`, text `张***`.
        Masked = "masked" / "脱敏",
        /// Left out entirely.
        Hidden = "hidden" / "隐藏",
    }
}

vocabulary! {
    /// The roles every guanxi database has.
    ///
    /// ```
    /// use guanxi_core::BuiltinRole;
    /// assert_eq!(BuiltinRole::SalesRep.role().id.as_str(), "sales_rep");
    /// ```
    pub enum BuiltinRole {
        /// Works their own customers.
        SalesRep = "sales_rep" / "销售代表",
        /// Leads a sales team: everything of the department tree, plus delete, export, merge, assign.
        SalesManager = "sales_manager" / "销售经理",
        /// Reads every customer and logs service interactions; sees identity numbers masked.
        CustomerService = "customer_service" / "客服",
        /// Reads and exports every customer for campaigns; sees contacts' phones masked and no
        /// identity numbers.
        Marketing = "marketing" / "市场",
        /// May do everything, including configuring users, roles and departments.
        Administrator = "administrator" / "管理员",
    }
}

/// Fields whose values are sensitive: encrypted at rest, never written to the change log in
/// clear (the log keeps them masked), and audited when read unmasked.
///
/// ```
/// assert_eq!(guanxi_core::access::SENSITIVE_CONTACT_FIELDS, ["phones", "id_number"]);
/// ```
pub const SENSITIVE_CONTACT_FIELDS: &[&str] = &["phones", "id_number"];

/// A customer's sensitive fields: its identity numbers and registration codes, encrypted at
/// rest, never written to the change log in clear (the log keeps them masked), and masked for
/// roles that mask a contact's identity number.
///
/// ```
/// assert_eq!(guanxi_core::access::SENSITIVE_CUSTOMER_FIELDS, ["identifiers"]);
/// ```
pub const SENSITIVE_CUSTOMER_FIELDS: &[&str] = &["identifiers"];

/// The fields field rules may name, per entity (plus `custom.<key>` on both).
const MASKABLE: &[(EntityKind, &[&str])] = &[
    (EntityKind::Customer, &["address", "identifiers"]),
    (EntityKind::Contact, &["name", "title", "phones", "emails", "id_number"]),
];

/// Actions `action` on `entity` at `scope`, granted by a role.
///
/// ```
/// use guanxi_core::access::{Grant, Scope};
/// use guanxi_core::{Action, EntityKind};
/// let g = Grant::new(EntityKind::Customer, &[Action::Read, Action::Update], Scope::Own);
/// assert!(g.actions.contains(&Action::Update));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Grant {
    /// The kind of record.
    pub entity: EntityKind,
    /// The actions allowed.
    pub actions: BTreeSet<Action>,
    /// The records they reach.
    pub scope: Scope,
}

impl Grant {
    /// A grant of `actions` on `entity` at `scope`.
    pub fn new(entity: EntityKind, actions: &[Action], scope: Scope) -> Grant {
        Grant { entity, actions: actions.iter().copied().collect(), scope }
    }
}

/// A field a role sees masked or not at all.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FieldRule {
    /// Customer or contact.
    pub entity: EntityKind,
    /// `phones`, `emails`, `name`, `title` (contacts), `address` (customers), or `custom.<key>`.
    pub field: String,
    /// How it is shown.
    pub visibility: Visibility,
}

/// A named set of grants and field rules.
///
/// ```
/// use guanxi_core::access::{Role, Scope, Visibility};
/// use guanxi_core::{Action, EntityKind};
/// let auditor = Role::new("auditor", "审计")?
///     .grant(EntityKind::ChangeLog, &[Action::Read], Scope::All)
///     .grant(EntityKind::Customer, &[Action::Read], Scope::All)
///     .field(EntityKind::Customer, "address", Visibility::Hidden);
/// assert_eq!(auditor.grants.len(), 2);
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Role {
    /// Id.
    pub id: RoleId,
    /// Display name.
    pub name: String,
    /// What it allows.
    pub grants: Vec<Grant>,
    /// Fields it restricts.
    pub fields: Vec<FieldRule>,
}

impl Role {
    /// A custom role with no grants yet.
    pub fn new(id: &str, name: &str) -> Result<Role> {
        Ok(Role { id: RoleId::new(id)?, name: fold_text(name), grants: Vec::new(), fields: Vec::new() })
    }

    /// Adds a grant.
    pub fn grant(mut self, entity: EntityKind, actions: &[Action], scope: Scope) -> Role {
        self.grants.push(Grant::new(entity, actions, scope));
        self
    }

    /// Adds a field rule.
    pub fn field(mut self, entity: EntityKind, field: &str, visibility: Visibility) -> Role {
        self.fields.push(FieldRule { entity, field: field.to_owned(), visibility });
        self
    }

    /// Adds a grant given by stable names, as bindings and configuration carry them; an
    /// unknown name is a validation error on `grants[i].entity`, `.actions` or `.scope`.
    ///
    /// ```
    /// use guanxi_core::access::Role;
    /// let r = Role::new("auditor", "审计")?.grant_named("change_log", &["read".into()], "all")?;
    /// assert_eq!(r.grants.len(), 1);
    /// assert!(Role::new("x", "X")?.grant_named("customer", &["fly".into()], "all").is_err());
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn grant_named(self, entity: &str, actions: &[String], scope: &str) -> Result<Role> {
        let path = format!("grants[{}]", self.grants.len());
        let mut errs = ValidationErrors::default();
        let entity = named::<EntityKind>(&mut errs, &format!("{path}.entity"), entity);
        let actions: Vec<Action> =
            actions.iter().filter_map(|a| named(&mut errs, &format!("{path}.actions"), a)).collect();
        let scope = named::<Scope>(&mut errs, &format!("{path}.scope"), scope);
        match (entity, scope) {
            (Some(e), Some(s)) if errs.is_empty() => Ok(self.grant(e, &actions, s)),
            _ => Err(Error::Validation(errs)),
        }
    }

    /// Adds a field rule given by stable names; an unknown name is a validation error on
    /// `fields[i].entity` or `.visibility`.
    pub fn field_named(self, entity: &str, field: &str, visibility: &str) -> Result<Role> {
        let path = format!("fields[{}]", self.fields.len());
        let mut errs = ValidationErrors::default();
        let entity = named::<EntityKind>(&mut errs, &format!("{path}.entity"), entity);
        let visibility = named::<Visibility>(&mut errs, &format!("{path}.visibility"), visibility);
        match (entity, visibility) {
            (Some(e), Some(v)) if errs.is_empty() => Ok(self.field(e, field, v)),
            _ => Err(Error::Validation(errs)),
        }
    }

    fn validate(&self) -> Result<()> {
        let mut errs = ValidationErrors::default();
        if BuiltinRole::ALL.iter().any(|b| b.as_str() == self.id.as_str()) {
            errs.push("id", ValidationReason::Invalid { detail: "is the id of a built-in role".into() });
        }
        if self.name.is_empty() {
            errs.push("name", ValidationReason::Required);
        }
        for (i, g) in self.grants.iter().enumerate() {
            if g.actions.is_empty() {
                errs.push(format!("grants[{i}].actions"), ValidationReason::Required);
            }
        }
        for (i, f) in self.fields.iter().enumerate() {
            let known = MASKABLE.iter().find(|(e, _)| *e == f.entity).map(|(_, fields)| *fields);
            match known {
                None => errs.push(
                    format!("fields[{i}].entity"),
                    ValidationReason::Invalid { detail: format!("{} has no maskable fields", f.entity) },
                ),
                Some(fields) if !fields.contains(&f.field.as_str()) && !is_custom_path(&f.field) => {
                    errs.push(format!("fields[{i}].field"), ValidationReason::UnknownField)
                }
                Some(_) => {}
            }
        }
        errs.into_result(())
    }
}

/// A vocabulary value from its name, or a `NotAllowed` error on `field`.
fn named<T: std::str::FromStr<Err = crate::error::UnknownName>>(
    errs: &mut ValidationErrors,
    field: &str,
    value: &str,
) -> Option<T> {
    value.parse().map_err(|e: crate::error::UnknownName| errs.push(field, e.into())).ok()
}

fn is_custom_path(field: &str) -> bool {
    field.strip_prefix("custom.").is_some_and(|k| !k.is_empty())
}

impl BuiltinRole {
    /// The role's definition.
    pub fn role(self) -> Role {
        use Action::*;
        use EntityKind as E;
        let base = Role { id: id(self.as_str()), name: self.label_zh().to_owned(), grants: vec![], fields: vec![] };
        let config_read = |r: Role| {
            r.grant(E::Tag, &[Read], Scope::All)
                .grant(E::CustomField, &[Read], Scope::All)
                .grant(E::Pipeline, &[Read], Scope::All)
                .grant(E::Article, &[Read], Scope::All)
                .grant(E::ServiceSettings, &[Read], Scope::All)
                .grant(E::MarketingSettings, &[Read], Scope::All)
                .grant(E::Segment, &[Read], Scope::All)
                .grant(E::Product, &[Read], Scope::All)
        };
        match self {
            BuiltinRole::SalesRep => config_read(base)
                .grant(E::Customer, &[Read, Create, Update], Scope::Own)
                .grant(E::Contact, &[Read, Create, Update], Scope::Own)
                .grant(E::Interaction, &[Read, Create], Scope::Own)
                .grant(E::Opportunity, &[Read, Create, Update], Scope::Own)
                .grant(E::Lead, &[Read, Create, Update], Scope::Own)
                .grant(E::Task, &[Read, Create, Update], Scope::Own)
                .grant(E::Ticket, &[Read, Create], Scope::Own)
                .grant(E::Purchase, &[Read], Scope::Own),
            BuiltinRole::SalesManager => config_read(base)
                .grant(E::Customer, &[Read, Create, Update, Delete, Export, Merge, Assign], Scope::Department)
                .grant(E::Contact, &[Read, Create, Update, Delete], Scope::Department)
                .grant(E::Interaction, &[Read, Create], Scope::Department)
                .grant(E::Opportunity, &[Read, Create, Update, Delete, Export, Assign], Scope::Department)
                .grant(E::Lead, &[Read, Create, Update, Export, Assign], Scope::Department)
                .grant(E::Task, &[Read, Create, Update, Assign], Scope::Department)
                .grant(E::Ticket, &[Read, Create], Scope::Department)
                .grant(E::Purchase, &[Read, Create, Update, Export], Scope::Department)
                .grant(E::Product, &[Create, Update], Scope::All)
                .grant(E::Tag, &[Configure], Scope::All),
            BuiltinRole::CustomerService => config_read(base)
                .grant(E::Customer, &[Read], Scope::All)
                .grant(E::Contact, &[Read, Update], Scope::All)
                .grant(E::Interaction, &[Read, Create], Scope::All)
                .grant(E::Ticket, &[Read, Create, Update, Assign, Export], Scope::All)
                .grant(E::Article, &[Create, Update], Scope::All)
                .grant(E::Purchase, &[Read], Scope::All)
                .field(E::Contact, "id_number", Visibility::Masked)
                .field(E::Customer, "identifiers", Visibility::Masked),
            BuiltinRole::Marketing => config_read(base)
                .grant(E::Customer, &[Read, Export], Scope::All)
                .grant(E::Contact, &[Read], Scope::All)
                .grant(E::Lead, &[Read, Create, Update, Export, Assign], Scope::All)
                .grant(E::Tag, &[Configure], Scope::All)
                .grant(E::Segment, &[Configure], Scope::All)
                .grant(E::Purchase, &[Read, Export], Scope::All)
                .field(E::Contact, "phones", Visibility::Masked)
                .field(E::Contact, "id_number", Visibility::Hidden)
                .field(E::Customer, "identifiers", Visibility::Hidden),
            BuiltinRole::Administrator => {
                EntityKind::ALL.iter().fold(base, |r, e| r.grant(*e, Action::ALL, Scope::All))
            }
        }
    }
}

fn id(s: &str) -> RoleId {
    // Built-in ids are short constants, always valid.
    RoleId::new(s).unwrap_or_else(|_| unreachable!("built-in role id {s} is valid"))
}

static BUILTIN_ROLES: LazyLock<BTreeMap<RoleId, Role>> =
    LazyLock::new(|| BuiltinRole::ALL.iter().map(|b| (id(b.as_str()), b.role())).collect());

/// A department; departments form a tree through `parent`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Department {
    /// Id.
    pub id: DepartmentId,
    /// Display name.
    pub name: String,
    /// The department above, if any.
    pub parent: Option<DepartmentId>,
}

impl Department {
    /// A department under `parent` (or at the top).
    pub fn new(id: &str, name: &str, parent: Option<&str>) -> Result<Department> {
        Ok(Department {
            id: DepartmentId::new(id)?,
            name: fold_text(name),
            parent: parent.map(DepartmentId::new).transpose()?,
        })
    }
}

/// A person who uses the CRM.
///
/// ```
/// use guanxi_core::access::User;
/// use guanxi_core::BuiltinRole;
/// use guanxi_core::DepartmentId;
/// let u = User::new("wang", "王伟")?.department(DepartmentId::new("sh")?).role(BuiltinRole::SalesRep).region("华东");
/// assert!(u.active);
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct User {
    /// The host's id of the user (what `Actor` carries).
    pub id: UserId,
    /// Display name.
    pub name: String,
    /// Department.
    pub department: Option<DepartmentId>,
    /// Roles (built-in or custom ids).
    pub roles: BTreeSet<RoleId>,
    /// Regions for [`Scope::Region`]: province names or macro-areas (华东, 华南, …).
    pub regions: BTreeSet<String>,
    /// An inactive user may do nothing.
    pub active: bool,
}

impl User {
    /// An active user with no department, roles or regions.
    pub fn new(id: &str, name: &str) -> Result<User> {
        Ok(User {
            id: UserId::new(id)?,
            name: fold_text(name),
            department: None,
            roles: BTreeSet::new(),
            regions: BTreeSet::new(),
            active: true,
        })
    }

    /// Sets the department (checked to exist when the user is stored).
    pub fn department(mut self, id: DepartmentId) -> User {
        self.department = Some(id);
        self
    }

    /// Adds a built-in role.
    pub fn role(mut self, role: BuiltinRole) -> User {
        self.roles.insert(id(role.as_str()));
        self
    }

    /// Adds a custom role by id.
    pub fn custom_role(mut self, role: &RoleId) -> User {
        self.roles.insert(role.clone());
        self
    }

    /// Adds a region.
    pub fn region(mut self, region: &str) -> User {
        self.regions.insert(region.to_owned());
        self
    }
}

/// The scope-relevant attributes of a record: whose it is, which department, which province.
/// Entities that hang off a customer (contacts, interactions, opportunities, tickets) use
/// their customer's attributes, optionally with their own owner.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct ScopeAttrs<'a> {
    /// Owner.
    pub owner: Option<&'a UserId>,
    /// Who opened the record, for records whose owner is someone else by design (a ticket's
    /// owner is its assignee): scopes reach it as they reach its owner, so the rep who opened
    /// a ticket can read it. `None` where the owner is the creator by default.
    pub creator: Option<&'a UserId>,
    /// Department.
    pub department: Option<&'a DepartmentId>,
    /// Province (full official name).
    pub province: Option<&'a str>,
}

/// Records that access scopes apply to. A new entity joins the policy with one impl.
pub trait Scoped {
    /// The attributes scopes look at.
    fn scope_attrs(&self) -> ScopeAttrs<'_>;
}

impl Scoped for Customer {
    fn scope_attrs(&self) -> ScopeAttrs<'_> {
        ScopeAttrs {
            owner: self.owner.as_ref(),
            creator: None,
            department: self.department.as_ref(),
            province: self.region.as_ref().map(|r| r.province.as_str()),
        }
    }
}

/// The records a permission reaches, compiled for one user: a record is in scope when `all`
/// is set, or its owner, department or province is in the matching set. Stores compile it into
/// their query (a SQL `WHERE` on SQLite); [`RecordScope::admits`] is the same rule for one record.
///
/// ```
/// use guanxi_core::access::{RecordScope, ScopeAttrs};
/// use guanxi_core::UserId;
/// let alice = UserId::new("alice").unwrap();
/// let own = RecordScope::owned_by(alice.clone());
/// assert!(own.admits(ScopeAttrs { owner: Some(&alice), ..Default::default() }));
/// assert!(!own.admits(ScopeAttrs::default()));
/// assert!(RecordScope::all().admits(ScopeAttrs::default()));
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq, Hash)]
pub struct RecordScope {
    /// Every record.
    pub all: bool,
    /// Records owned by these users.
    pub owners: BTreeSet<UserId>,
    /// Records of these departments.
    pub departments: BTreeSet<DepartmentId>,
    /// Records in these provinces.
    pub provinces: BTreeSet<String>,
}

impl RecordScope {
    /// Every record.
    pub fn all() -> RecordScope {
        RecordScope { all: true, ..Default::default() }
    }

    /// The records `user` owns.
    pub fn owned_by(user: UserId) -> RecordScope {
        RecordScope { owners: [user].into(), ..Default::default() }
    }

    /// Whether a record with these attributes is in scope.
    pub fn admits(&self, r: ScopeAttrs<'_>) -> bool {
        self.all
            || r.owner.is_some_and(|o| self.owners.contains(o))
            || r.creator.is_some_and(|c| self.owners.contains(c))
            || r.department.is_some_and(|d| self.departments.contains(d))
            || r.province.is_some_and(|p| self.provinces.contains(p))
    }

    fn union(&mut self, other: RecordScope) {
        self.all |= other.all;
        self.owners.extend(other.owners);
        self.departments.extend(other.departments);
        self.provinces.extend(other.provinces);
    }
}

/// What a user may do with one kind of record for one action.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Permission {
    /// The records it reaches.
    pub scope: RecordScope,
    /// The roles granting it.
    pub roles: Vec<RoleId>,
}

/// The answer of [`AccessModel::explain`]: allowed or not, and why, one line per role.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Decision {
    /// Whether the action is allowed.
    pub allowed: bool,
    /// Why, in words.
    pub reasons: Vec<String>,
}

/// The fields a user sees restricted, combined over their roles: a field is restricted only if
/// every role restricts it, and then as loosely as the loosest role does (masked over hidden).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FieldMask {
    rules: BTreeMap<(EntityKind, String), Visibility>,
}

impl FieldMask {
    /// No restriction.
    pub fn none() -> FieldMask {
        FieldMask::default()
    }

    /// A mask of explicit rules (what a single role with these rules would impose).
    pub fn of(rules: &[FieldRule]) -> FieldMask {
        FieldMask { rules: rules.iter().map(|r| ((r.entity, r.field.clone()), r.visibility)).collect() }
    }

    /// The mask the change log applies at rest: sensitive values are stored masked.
    pub fn at_rest() -> FieldMask {
        FieldMask {
            rules: SENSITIVE_CONTACT_FIELDS
                .iter()
                .map(|f| (EntityKind::Contact, f))
                .chain(SENSITIVE_CUSTOMER_FIELDS.iter().map(|f| (EntityKind::Customer, f)))
                .map(|(e, f)| ((e, (*f).to_owned()), Visibility::Masked))
                .collect(),
        }
    }

    /// True when nothing is restricted.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// True when some field of `entity` is restricted.
    ///
    /// ```
    /// use guanxi_core::EntityKind;
    /// use guanxi_core::access::FieldMask;
    /// assert!(FieldMask::at_rest().restricts(EntityKind::Contact));
    /// assert!(!FieldMask::none().restricts(EntityKind::Customer));
    /// ```
    pub fn restricts(&self, entity: EntityKind) -> bool {
        self.rules.keys().any(|(e, _)| *e == entity)
    }

    /// How a field of an entity is shown: `None` means in clear.
    pub fn visibility(&self, entity: EntityKind, field: &str) -> Option<Visibility> {
        self.rules.get(&(entity, field.to_owned())).copied()
    }

    /// Applies the mask to a customer.
    pub fn apply_customer(&self, c: &mut Customer) {
        for ((entity, field), vis) in &self.rules {
            if *entity != EntityKind::Customer {
                continue;
            }
            match field.as_str() {
                "address" => c.address = mask_opt(c.address.take(), *vis),
                "identifiers" => match vis {
                    Visibility::Hidden => c.identifiers.clear(),
                    Visibility::Masked => c.identifiers = c.identifiers.iter().map(Identifier::masked).collect(),
                },
                other => mask_custom(&mut c.custom, other, *vis),
            }
        }
    }

    /// Applies the mask to a contact.
    pub fn apply_contact(&self, c: &mut Contact) {
        for ((entity, field), vis) in &self.rules {
            if *entity != EntityKind::Contact {
                continue;
            }
            match (field.as_str(), vis) {
                ("phones", Visibility::Hidden) => c.phones.clear(),
                ("phones", Visibility::Masked) => c.phones = c.phones.iter().map(Phone::masked).collect(),
                ("emails", Visibility::Hidden) => c.emails.clear(),
                ("emails", Visibility::Masked) => c.emails = c.emails.iter().map(Email::masked).collect(),
                ("id_number", Visibility::Hidden) => c.id_number = None,
                ("id_number", Visibility::Masked) => c.id_number = c.id_number.as_ref().map(IdNumber::masked),
                ("name", _) => c.name = mask_text(&c.name, *vis),
                ("title", _) => c.title = mask_opt(c.title.take(), *vis),
                (other, _) => mask_custom(&mut c.custom, other, *vis),
            }
        }
    }

    /// Applies the mask to one change-log field change of an entity (values of a restricted
    /// field, or of a path under it, are masked or dropped).
    pub fn apply_change(&self, entity: EntityKind, change: &mut FieldChange) {
        for ((e, field), vis) in &self.rules {
            let under = change.field == *field
                || change.field.strip_prefix(field.as_str()).is_some_and(|rest| rest.starts_with(['.', '[']));
            if *e != entity || !under {
                continue;
            }
            for v in [&mut change.old, &mut change.new] {
                *v = match vis {
                    Visibility::Hidden => None,
                    Visibility::Masked => v.take().map(|v| mask_json(field, v)),
                };
            }
        }
    }

    /// Masks the matching value of a duplicate reason as the field it came from is masked
    /// (a shared phone as the contact's phones, an address as the customer's address).
    pub fn apply_match_reason(&self, r: &mut crate::dedup::MatchReason) {
        use crate::dedup::MatchField;
        let custom;
        let (entity, field) = match &r.field {
            MatchField::Phone => (EntityKind::Contact, "phones"),
            MatchField::Email => (EntityKind::Contact, "emails"),
            MatchField::Address => (EntityKind::Customer, "address"),
            // An identifier comes from the customer's list or a contact's identity number:
            // it is shown as the stricter of the two fields allows.
            MatchField::Identifier(_) => {
                let strictest = [(EntityKind::Customer, "identifiers"), (EntityKind::Contact, "id_number")]
                    .into_iter()
                    .max_by_key(|(e, f)| match self.visibility(*e, f) {
                        None => 0,
                        Some(Visibility::Masked) => 1,
                        Some(Visibility::Hidden) => 2,
                    });
                strictest.unwrap_or((EntityKind::Contact, "id_number"))
            }
            MatchField::Custom(key) => {
                custom = format!("custom.{key}");
                (EntityKind::Customer, custom.as_str())
            }
            MatchField::Name | MatchField::GivenName | MatchField::Surname => return,
        };
        match self.visibility(entity, field) {
            None => {}
            Some(Visibility::Hidden) => r.value.clear(),
            Some(Visibility::Masked) => {
                if let Value::String(v) = mask_json(field, Value::String(std::mem::take(&mut r.value))) {
                    r.value = v;
                }
            }
        }
    }

    /// Which of the sensitive contact fields this mask leaves in clear.
    pub fn clear_sensitive_contact_fields(&self) -> Vec<&'static str> {
        SENSITIVE_CONTACT_FIELDS.iter().copied().filter(|f| self.visibility(EntityKind::Contact, f).is_none()).collect()
    }
}

fn mask_text(s: &str, vis: Visibility) -> String {
    match vis {
        Visibility::Hidden => String::new(),
        Visibility::Masked => mask_middle(s, 1, 0),
    }
}

fn mask_opt(s: Option<String>, vis: Visibility) -> Option<String> {
    match vis {
        Visibility::Hidden => None,
        Visibility::Masked => s.map(|s| mask_middle(&s, 1, 0)),
    }
}

fn mask_custom(custom: &mut BTreeMap<String, crate::custom_field::CustomValue>, field: &str, vis: Visibility) {
    let Some(key) = field.strip_prefix("custom.") else { return };
    match vis {
        Visibility::Hidden => {
            custom.remove(key);
        }
        Visibility::Masked => {
            if let Some(v) = custom.get_mut(key) {
                *v = crate::custom_field::CustomValue::Text(mask_middle(&v.to_string(), 1, 0));
            }
        }
    }
}

/// Masks every string inside a JSON value the way its field's values are masked.
fn mask_json(field: &str, v: Value) -> Value {
    match v {
        Value::String(s) => Value::String(match field {
            "phones" => Phone::parse(&s).map(|p| p.masked().to_string()).unwrap_or_else(|_| mask_middle(&s, 3, 4)),
            "emails" => Email::parse(&s).map(|e| e.masked().to_string()).unwrap_or_else(|_| mask_middle(&s, 1, 0)),
            "id_number" | "identifiers" => mask_middle(&s, 3, 4),
            _ => mask_middle(&s, 1, 0),
        }),
        Value::Array(items) => Value::Array(items.into_iter().map(|i| mask_json(field, i)).collect()),
        // An identifier's scheme is no secret: only its value is masked.
        Value::Object(map) => Value::Object(
            map.into_iter()
                .map(|(k, v)| {
                    let keep = field == "identifiers" && k == "scheme";
                    let v = if keep { v } else { mask_json(field, v) };
                    (k, v)
                })
                .collect(),
        ),
        Value::Null | Value::Bool(_) => v,
        Value::Number(n) => Value::String(mask_middle(&n.to_string(), 1, 0)),
    }
}

/// Departments, users and custom roles: the policy of one database.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct AccessModel {
    /// Optimistic-concurrency version (0 before the first write).
    pub version: u64,
    /// Departments by id.
    pub departments: BTreeMap<DepartmentId, Department>,
    /// Users by id.
    pub users: BTreeMap<UserId, User>,
    /// Custom roles by id (built-in roles are not stored).
    pub roles: BTreeMap<RoleId, Role>,
}

impl AccessModel {
    /// Whether access control is on: the model has users.
    pub fn is_enforced(&self) -> bool {
        !self.users.is_empty()
    }

    /// A role by id, built-in or custom.
    pub fn role(&self, id: &RoleId) -> Option<&Role> {
        BUILTIN_ROLES.get(id).or_else(|| self.roles.get(id))
    }

    /// Every role, built-in first.
    pub fn all_roles(&self) -> Vec<&Role> {
        BUILTIN_ROLES.values().chain(self.roles.values()).collect()
    }

    fn active_user(&self, user: &UserId, action: Action, entity: EntityKind) -> Result<&User> {
        let denied = |reason: &str| Error::PermissionDenied {
            action: action.as_str().to_owned(),
            entity,
            reason: format!("user {user} {reason}"),
        };
        let u = self.users.get(user).ok_or_else(|| denied("is not a user of this CRM"))?;
        if !u.active {
            return Err(denied("is inactive"));
        }
        Ok(u)
    }

    /// What `user` may do for `action` on `entity`: the union of the scopes their roles grant.
    /// No grant is [`Error::PermissionDenied`] naming the action.
    pub fn permission(&self, user: &UserId, action: Action, entity: EntityKind) -> Result<Permission> {
        let u = self.active_user(user, action, entity)?;
        let mut scope = RecordScope::default();
        let mut roles = Vec::new();
        for role in u.roles.iter().filter_map(|r| self.role(r)) {
            for g in role.grants.iter().filter(|g| g.entity == entity && g.actions.contains(&action)) {
                scope.union(self.compile(u, g.scope));
                roles.push(role.id.clone());
            }
        }
        if roles.is_empty() {
            return Err(Error::PermissionDenied {
                action: action.as_str().to_owned(),
                entity,
                reason: format!("no role of user {user} grants {action} on {entity}"),
            });
        }
        roles.dedup();
        Ok(Permission { scope, roles })
    }

    fn compile(&self, u: &User, scope: Scope) -> RecordScope {
        let mut out = RecordScope::owned_by(u.id.clone());
        match scope {
            Scope::Own => {}
            Scope::All => out.all = true,
            Scope::Department => {
                if let Some(root) = &u.department {
                    let tree = self.subtree(root);
                    out.owners.extend(
                        self.users
                            .values()
                            .filter(|m| m.department.as_ref().is_some_and(|d| tree.contains(d)))
                            .map(|m| m.id.clone()),
                    );
                    out.departments = tree;
                }
            }
            Scope::Region => out.provinces = expand_regions(&u.regions),
        }
        out
    }

    /// A department and every department below it.
    fn subtree(&self, root: &DepartmentId) -> BTreeSet<DepartmentId> {
        let mut tree: BTreeSet<DepartmentId> = [root.clone()].into();
        loop {
            let before = tree.len();
            for d in self.departments.values() {
                if d.parent.as_ref().is_some_and(|p| tree.contains(p)) {
                    tree.insert(d.id.clone());
                }
            }
            if tree.len() == before {
                return tree;
            }
        }
    }

    /// Whether `dept` is `ancestor` or lies below it (walking up the parent chain).
    fn is_within(&self, dept: &DepartmentId, ancestor: &DepartmentId) -> bool {
        let mut cur = Some(dept);
        for _ in 0..=self.departments.len() {
            match cur {
                Some(d) if d == ancestor => return true,
                Some(d) => cur = self.departments.get(d).and_then(|d| d.parent.as_ref()),
                None => return false,
            }
        }
        false
    }

    /// The fields `user` sees restricted.
    pub fn field_mask(&self, user: &UserId) -> FieldMask {
        let Some(u) = self.users.get(user) else { return FieldMask::none() };
        let roles: Vec<&Role> = u.roles.iter().filter_map(|r| self.role(r)).collect();
        let mut rules = BTreeMap::new();
        let Some((first, rest)) = roles.split_first() else { return FieldMask::none() };
        for rule in &first.fields {
            let key = (rule.entity, rule.field.clone());
            // Restricted only if every role restricts it; then the loosest restriction wins.
            let mut vis = Some(rule.visibility);
            for r in rest {
                let other = r.fields.iter().find(|f| f.entity == rule.entity && f.field == rule.field);
                vis = match (vis, other) {
                    (Some(a), Some(b)) => Some(a.min(b.visibility)),
                    _ => None,
                };
            }
            if let Some(v) = vis {
                rules.insert(key, v);
            }
        }
        FieldMask { rules }
    }

    /// Whether `user` may do `action` on `entity` (on the record with `record`'s attributes,
    /// when given), and why. This walks the roles and the department tree directly, record by
    /// record; [`AccessModel::permission`] is its compiled form, and the two always agree.
    ///
    /// ```
    /// use guanxi_core::access::{AccessModel, ScopeAttrs, User};
    /// use guanxi_core::{Action, BuiltinRole, EntityKind, UserId};
    /// let m = AccessModel::default()
    ///     .with_user(User::new("root", "管理员")?.role(BuiltinRole::Administrator))?
    ///     .with_user(User::new("wang", "王伟")?.role(BuiltinRole::SalesRep))?;
    /// let (wang, li) = (UserId::new("wang")?, UserId::new("li")?);
    /// let d = m.explain(&wang, Action::Read, EntityKind::Customer, Some(ScopeAttrs { owner: Some(&li), ..Default::default() }));
    /// assert!(!d.allowed);
    /// assert_eq!(d.reasons, ["role sales_rep grants read on customer with scope own, but the record is owned by li"]);
    /// # Ok::<(), guanxi_core::Error>(())
    /// ```
    pub fn explain(
        &self,
        user: &UserId,
        action: Action,
        entity: EntityKind,
        record: Option<ScopeAttrs<'_>>,
    ) -> Decision {
        if !self.is_enforced() {
            return Decision { allowed: true, reasons: vec!["access control is off: the CRM has no users".into()] };
        }
        let u = match self.active_user(user, action, entity) {
            Ok(u) => u,
            Err(Error::PermissionDenied { reason, .. }) => return Decision { allowed: false, reasons: vec![reason] },
            Err(e) => return Decision { allowed: false, reasons: vec![e.to_string()] },
        };
        let mut reasons = Vec::new();
        let mut allowed = false;
        for rid in &u.roles {
            let Some(role) = self.role(rid) else {
                reasons.push(format!("role {rid} does not exist"));
                continue;
            };
            for g in role.grants.iter().filter(|g| g.entity == entity && g.actions.contains(&action)) {
                let head = format!("role {rid} grants {action} on {entity} with scope {}", g.scope);
                match record {
                    None => {
                        allowed = true;
                        reasons.push(head);
                    }
                    Some(r) => {
                        let (ok, why) = self.reaches(u, g.scope, r);
                        allowed |= ok;
                        reasons.push(format!("{head}{why}"));
                    }
                }
            }
        }
        if reasons.is_empty() {
            reasons.push(format!("no role of user {user} grants {action} on {entity}"));
        }
        Decision { allowed, reasons }
    }

    /// Whether one grant's scope reaches a record, and the clause saying why.
    fn reaches(&self, u: &User, scope: Scope, r: ScopeAttrs<'_>) -> (bool, String) {
        if r.owner == Some(&u.id) {
            return (true, ", and the user owns the record".into());
        }
        if r.creator == Some(&u.id) {
            return (true, ", and the user opened the record".into());
        }
        let owner = r.owner.map_or("nobody".to_owned(), |o| o.to_string());
        match scope {
            Scope::All => (true, String::new()),
            Scope::Own => (false, format!(", but the record is owned by {owner}")),
            Scope::Department => {
                let Some(home) = &u.department else {
                    return (false, ", but the user has no department".into());
                };
                if let Some(d) = r.department.filter(|d| self.is_within(d, home)) {
                    return (true, format!(", and the record's department {d} is within {home}"));
                }
                let owner_dept = r.owner.and_then(|o| self.users.get(o)).and_then(|o| o.department.as_ref());
                if let Some(d) = owner_dept.filter(|d| self.is_within(d, home)) {
                    return (true, format!(", and the record's owner {owner} belongs to {d}, within {home}"));
                }
                let creator = r.creator.and_then(|c| self.users.get(c));
                if let Some((c, d)) =
                    creator.and_then(|c| c.department.as_ref().map(|d| (c, d))).filter(|(_, d)| self.is_within(d, home))
                {
                    return (true, format!(", and the record was opened by {}, of {d}, within {home}", c.id));
                }
                (false, format!(", but neither the record's department nor its owner {owner} is within {home}"))
            }
            Scope::Region => {
                let Some(p) = r.province else { return (false, ", but the record has no province".into()) };
                let hit = u.regions.iter().find(|reg| reg.as_str() == p || area_of(p) == Some(reg.as_str()));
                match hit {
                    Some(reg) => (true, format!(", and the record's province {p} is in region {reg}")),
                    None => (false, format!(", but the record's province {p} is outside the user's regions")),
                }
            }
        }
    }

    /// Whether someone active may still change users and roles.
    fn has_administrator(&self) -> bool {
        self.users.values().any(|u| self.permission(&u.id, Action::Configure, EntityKind::Role).is_ok())
    }

    fn checked(self) -> Result<AccessModel> {
        if self.is_enforced() && !self.has_administrator() {
            return Err(Error::InvalidState(
                "the change would leave no active user able to configure roles; add an administrator first".into(),
            ));
        }
        Ok(self)
    }

    /// The model with a department added or replaced. Its parent must exist and may not lie
    /// below it.
    pub fn with_department(&self, d: Department) -> Result<AccessModel> {
        let mut errs = ValidationErrors::default();
        if d.name.is_empty() {
            errs.push("name", ValidationReason::Required);
        }
        if let Some(p) = &d.parent {
            if !self.departments.contains_key(p) {
                errs.push("parent", ValidationReason::Invalid { detail: format!("department {p} does not exist") });
            } else if self.is_within(p, &d.id) {
                errs.push("parent", ValidationReason::Invalid { detail: format!("{p} lies below {}: a cycle", d.id) });
            }
        }
        errs.into_result(())?;
        let mut m = self.clone();
        m.departments.insert(d.id.clone(), d);
        m.checked()
    }

    /// The model with a user added or replaced. Department and roles must exist; regions must
    /// be provinces or macro-areas (stored canonical).
    pub fn with_user(&self, mut u: User) -> Result<AccessModel> {
        let mut errs = ValidationErrors::default();
        if u.name.is_empty() {
            errs.push("name", ValidationReason::Required);
        }
        if let Some(d) = u.department.as_ref().filter(|d| !self.departments.contains_key(*d)) {
            errs.push("department", ValidationReason::Invalid { detail: format!("department {d} does not exist") });
        }
        for (i, r) in u.roles.iter().enumerate() {
            if self.role(r).is_none() {
                errs.push(
                    format!("roles[{i}]"),
                    ValidationReason::Invalid { detail: format!("role {r} does not exist") },
                );
            }
        }
        let mut regions = BTreeSet::new();
        for (i, r) in u.regions.iter().enumerate() {
            match canonical_region(r) {
                Some(c) => {
                    regions.insert(c);
                }
                None => errs.push(format!("regions[{i}]"), ValidationReason::UnknownProvince),
            }
        }
        errs.into_result(())?;
        u.regions = regions;
        let mut m = self.clone();
        m.users.insert(u.id.clone(), u);
        m.checked()
    }

    /// The model with a custom role added or replaced.
    pub fn with_role(&self, r: Role) -> Result<AccessModel> {
        r.validate()?;
        let mut m = self.clone();
        m.roles.insert(r.id.clone(), r);
        m.checked()
    }

    /// The model without a custom role; refused while a user holds it.
    pub fn without_role(&self, id: &RoleId) -> Result<AccessModel> {
        if !self.roles.contains_key(id) {
            return Err(Error::not_found(EntityKind::Role, id));
        }
        if let Some(u) = self.users.values().find(|u| u.roles.contains(id)) {
            return Err(Error::InvalidState(format!("role {id} is held by user {}", u.id)));
        }
        let mut m = self.clone();
        m.roles.remove(id);
        m.checked()
    }
}

/// A province (canonical full name) or a macro-area name.
fn canonical_region(r: &str) -> Option<String> {
    let r = fold_text(r);
    if !provinces_of_area(&r).is_empty() {
        return Some(r);
    }
    canonical_province(&r).map(str::to_owned)
}

fn expand_regions(regions: &BTreeSet<String>) -> BTreeSet<String> {
    let mut out = BTreeSet::new();
    for r in regions {
        let area = provinces_of_area(r);
        if area.is_empty() {
            out.insert(r.clone());
        } else {
            out.extend(area.into_iter().map(str::to_owned));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn model() -> AccessModel {
        AccessModel::default()
            .with_department(Department::new("hq", "总部", None).unwrap())
            .and_then(|m| m.with_department(Department::new("east", "华东", Some("hq")).unwrap()))
            .and_then(|m| m.with_department(Department::new("sh", "上海", Some("east")).unwrap()))
            .and_then(|m| m.with_user(User::new("root", "管理员")?.role(BuiltinRole::Administrator)))
            .and_then(|m| {
                m.with_user(
                    User::new("li", "李")?.department(DepartmentId::new("east")?).role(BuiltinRole::SalesManager),
                )
            })
            .and_then(|m| {
                m.with_user(User::new("wang", "王")?.department(DepartmentId::new("sh")?).role(BuiltinRole::SalesRep))
            })
            .and_then(|m| {
                m.with_user(User::new("zhao", "赵")?.role(BuiltinRole::Marketing).role(BuiltinRole::SalesRep))
            })
            .unwrap()
    }

    fn uid(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn department_scope_reaches_subtree_and_members() {
        let m = model();
        let p = m.permission(&uid("li"), Action::Read, EntityKind::Customer).unwrap();
        assert_eq!(p.scope.departments.len(), 2);
        assert!(p.scope.owners.contains(&uid("wang")) && p.scope.owners.contains(&uid("li")));
        assert!(!p.scope.owners.contains(&uid("root")));
    }

    #[test]
    fn cycles_and_unknown_references_are_refused_naming_the_field() -> Result<()> {
        let m = model();
        let e = m.with_department(Department::new("hq", "总部", Some("sh")).unwrap()).unwrap_err();
        assert!(matches!(&e, Error::Validation(v) if v.field("parent").is_some()), "{e}");
        let e =
            m.with_user(User::new("x", "X")?.department(DepartmentId::new("nowhere")?).region("Atlantis")).unwrap_err();
        assert!(
            matches!(&e, Error::Validation(v) if v.field("department").is_some() && v.field("regions[0]").is_some())
        );
        Ok(())
    }

    #[test]
    fn the_last_administrator_cannot_be_removed() -> Result<()> {
        let m = model();
        let mut root = m.users[&uid("root")].clone();
        root.active = false;
        assert!(matches!(m.with_user(root), Err(Error::InvalidState(_))));
        let first = AccessModel::default().with_user(User::new("wang", "王")?.role(BuiltinRole::SalesRep));
        assert!(matches!(first, Err(Error::InvalidState(_))));
        Ok(())
    }

    #[test]
    fn field_rules_restrict_only_when_every_role_does() -> Result<()> {
        let m = model();
        // zhao is marketing (phones masked) and sales rep (no rule): sees phones.
        assert!(m.field_mask(&uid("zhao")).is_empty());
        let m = m.with_user(User::new("ma", "马")?.role(BuiltinRole::Marketing)).unwrap();
        assert_eq!(m.field_mask(&uid("ma")).visibility(EntityKind::Contact, "phones"), Some(Visibility::Masked));
        Ok(())
    }

    #[test]
    fn masks_change_values_under_a_field() {
        let mask = FieldMask::at_rest();
        let mut ch = FieldChange::new("phones", None, Some(serde_json::json!(["+8613812345678"])));
        mask.apply_change(EntityKind::Contact, &mut ch);
        assert_eq!(ch.new, Some(serde_json::json!(["138****5678"])));
        let mut other = FieldChange::new("phonesx", None, Some(serde_json::json!("x")));
        mask.apply_change(EntityKind::Contact, &mut other);
        assert_eq!(other.new, Some(serde_json::json!("x")));
    }

    #[test]
    fn region_scope_expands_macro_areas() -> Result<()> {
        let m = model().with_user(User::new("sun", "孙")?.role(BuiltinRole::SalesRep)).unwrap();
        let role =
            Role::new("east_rep", "华东销售").unwrap().grant(EntityKind::Customer, &[Action::Read], Scope::Region);
        let m = m.with_role(role).unwrap();
        let sun =
            m.users[&uid("sun")].clone().custom_role(&RoleId::new("east_rep").unwrap()).region("华东").region("广东");
        let m = m.with_user(sun).unwrap();
        let p = m.permission(&uid("sun"), Action::Read, EntityKind::Customer).unwrap();
        assert!(p.scope.provinces.contains("上海市") && p.scope.provinces.contains("广东省"));
        let d = m.explain(
            &uid("sun"),
            Action::Read,
            EntityKind::Customer,
            Some(ScopeAttrs { province: Some("浙江省"), ..Default::default() }),
        );
        assert!(d.allowed, "{d:?}");
        Ok(())
    }
}

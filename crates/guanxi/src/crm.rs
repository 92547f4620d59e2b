//! The `Crm` facade: every operation runs permission check → validation → one atomic write
//! batch (records and their change-log entries together) → events after commit.

use crate::handles::{Audit, Contacts, CustomFields, Customers, Files, Interactions, Tags};
use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};
use serde_json::Value;

use guanxi_core::access::Scoped;
use guanxi_core::changelog::{created_fields, diff_json};
use guanxi_core::prelude::*;
use guanxi_core::{
    Action, Actor, ChangeAction, ChangeLogEntry, ChangeLogQuery, Changes, Clock, Contact, ContactId, ContactPatch,
    CustomFieldDef, Customer, CustomerFilter, CustomerId, CustomerPatch, DomainEvent, DynStore, EntityKind, Error,
    Event, FieldChange, IdGenerator, Interaction, InteractionId, LevelRule, MemoryStore, NewContact, NewCustomer,
    NewInteraction, Page, PageRequest, Result, SystemClock, Tag, TagLink, TagWrite, TimelineEntry, TimelineItem,
    ValidContact, ValidCustomer, ValidationContext, ValidationErrors, ValidationReason, Write,
};
use guanxi_sqlite::{SqliteOptions, SqliteStore};

use crate::access_control::{AT_REST, Allowed};
use crate::events::{EventBus, SubscriptionId};

/// Bookkeeping fields left out of change-log diffs: they change on every write.
pub(crate) const UNLOGGED: &[&str] = &["id", "version", "created_at", "created_by", "updated_at", "updated_by"];
/// Object-valued fields logged key by key.
pub(crate) const NESTED: &[&str] = &["custom"];

/// China Standard Time: the default day boundary of people-facing codes.
fn china_standard_time() -> FixedOffset {
    use chrono::Offset;
    FixedOffset::east_opt(8 * 3600).unwrap_or_else(|| Utc.fix())
}

/// Configures a [`Crm`]: store, clock and rules. (Access control is data in the store: see
/// [`Access::set_user`](crate::Access::set_user).)
///
/// ```
/// use std::sync::Arc;
/// use guanxi::{Crm, FixedClock, LevelRule, MemoryStore};
/// let crm = Crm::builder()
///     .store(Arc::new(MemoryStore::new()))
///     .clock(Arc::new(FixedClock::at("2024-05-01T08:00:00Z".parse().unwrap())))
///     .level_rule(LevelRule::spend_12m_default())
///     .build();
/// # let _ = crm;
/// ```
#[derive(Debug, Default)]
pub struct CrmBuilder {
    store: Option<DynStore>,
    clock: Option<Arc<dyn Clock>>,
    level_rule: Option<LevelRule>,
    code_offset: Option<FixedOffset>,
    elevation_window: Option<chrono::Duration>,
    trust_asserted_elevation: bool,
    elevation_verifier: Option<Arc<dyn crate::ElevationVerifier>>,
}

impl CrmBuilder {
    /// The storage backend (default: a fresh in-memory store).
    pub fn store(mut self, store: DynStore) -> Self {
        self.store = Some(store);
        self
    }

    /// The clock (default: the system clock).
    pub fn clock(mut self, clock: Arc<dyn Clock>) -> Self {
        self.clock = Some(clock);
        self
    }

    /// Derive customer levels with this rule (default: levels are set by hand).
    pub fn level_rule(mut self, rule: LevelRule) -> Self {
        self.level_rule = Some(rule);
        self
    }

    /// The UTC offset whose calendar day goes into codes such as `C20240501001`
    /// (default: +08:00, China Standard Time).
    pub fn code_offset(mut self, offset: FixedOffset) -> Self {
        self.code_offset = Some(offset);
        self
    }

    /// How long an elevation from [`Access::elevate`](crate::Access::elevate) lasts (default and recommended: 15 minutes).
    pub fn elevation_window(mut self, window: chrono::Duration) -> Self {
        self.elevation_window = Some(window);
        self
    }

    /// Accept elevations the host asserts with [`Actor::elevated_until`], without proof: for
    /// hosts that re-verify users themselves before asserting one. Off by default, when only
    /// elevations from [`Access::elevate`](crate::Access::elevate) count.
    pub fn trust_asserted_elevation(mut self, trust: bool) -> Self {
        self.trust_asserted_elevation = trust;
        self
    }

    /// The host's own check for [`crate::ElevationProof::Host`].
    pub fn elevation_verifier(mut self, verifier: Arc<dyn crate::ElevationVerifier>) -> Self {
        self.elevation_verifier = Some(verifier);
        self
    }

    /// Builds the handle.
    pub fn build(self) -> Crm {
        Crm {
            elevations: crate::elevation::Elevations::new(
                self.elevation_window,
                self.trust_asserted_elevation,
                self.elevation_verifier,
            ),
            store: self.store.unwrap_or_else(|| Arc::new(MemoryStore::new())),
            clock: self.clock.unwrap_or_else(|| Arc::new(SystemClock)),
            level_rule: self.level_rule,
            code_offset: self.code_offset.unwrap_or_else(china_standard_time),
            ids: IdGenerator::default(),
            events: EventBus::default(),
        }
    }
}

/// The handle applications hold: a store, a clock and rules, wired together. `Send + Sync`;
/// share it behind an `Arc`.
///
/// ```
/// use guanxi::{Actor, Crm, NewContact, NewCustomer};
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let c = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟")))?;
/// assert!(c.code.starts_with('C'));
/// assert_eq!(crm.contacts().list(&alice, c.id)?[0].name, "张伟");
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug)]
pub struct Crm {
    pub(crate) store: DynStore,
    pub(crate) clock: Arc<dyn Clock>,
    level_rule: Option<LevelRule>,
    pub(crate) code_offset: FixedOffset,
    pub(crate) ids: IdGenerator,
    pub(crate) events: EventBus,
    pub(crate) elevations: crate::elevation::Elevations,
}

// Handles are shared across threads (and by the language bindings): keep them Send + Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Crm>();
};

/// A record as JSON, for change-log diffs and exports. Our records always serialize; should one
/// ever fail, the failure is logged (an error event) rather than passed off silently as `null`,
/// and the value stands as `null` so the write is not lost.
pub(crate) fn to_json<T: serde::Serialize>(v: &T) -> Value {
    match serde_json::to_value(v) {
        Ok(value) => value,
        Err(e) => {
            tracing::error!(error = %e, type_name = std::any::type_name::<T>(), "record does not serialize to JSON");
            Value::Null
        }
    }
}

/// A change-log entry (sequence and hashes are assigned by the store). Sensitive values are
/// masked here, so they never reach the log in clear.
pub(crate) fn log(
    at: DateTime<Utc>,
    actor: &Actor,
    entity: EntityKind,
    entity_id: String,
    customer_id: Option<CustomerId>,
    action: ChangeAction,
    mut changes: Vec<FieldChange>,
) -> ChangeLogEntry {
    if entity == EntityKind::Contact {
        for ch in &mut changes {
            AT_REST.apply_change(entity, ch);
        }
    }
    ChangeLogEntry {
        seq: 0,
        at,
        actor: actor.user_id().clone(),
        entity,
        entity_id,
        customer_id,
        action,
        changes,
        prev_hash: String::new(),
        hash: String::new(),
    }
}

/// Whether a location names a PostgreSQL server (a `postgresql://` or `postgres://` URL, or a
/// libpq `key=value` string such as `host=/run/postgresql dbname=crm`) rather than a file.
///
/// ```
/// assert!(guanxi::is_postgres_location("postgresql://crm@db.internal/crm"));
/// assert!(guanxi::is_postgres_location("host=/run/postgresql user=crm dbname=crm"));
/// assert!(!guanxi::is_postgres_location("crm.db"));
/// assert!(!guanxi::is_postgres_location("./data/host=1.db"));
/// ```
pub fn is_postgres_location(location: &str) -> bool {
    let l = location.trim_start();
    l.starts_with("postgresql://")
        || l.starts_with("postgres://")
        || ["host=", "hostaddr=", "dbname=", "user=", "port=", "service="].iter().any(|k| l.starts_with(k))
}

/// Opens the store a location names: a PostgreSQL server ([`is_postgres_location`]) or a
/// SQLite file (created if missing), with field encryption under `field_key` if given. What the
/// bindings' `open` calls, so every language takes the same strings.
///
/// ```
/// let dir = tempfile::tempdir().unwrap();
/// let store = guanxi::open_store(dir.path().join("crm.db").to_str().unwrap(), None)?;
/// # Ok::<(), guanxi::Error>(())
/// ```
pub fn open_store(location: &str, field_key: Option<guanxi_sqlite::FieldKey>) -> Result<guanxi_core::DynStore> {
    if is_postgres_location(location) {
        let options = guanxi_postgres::PgOptions { field_key, ..Default::default() };
        return Ok(Arc::new(guanxi_postgres::PgStore::connect_with(location, options)?));
    }
    let options = SqliteOptions { field_key, ..SqliteOptions::default() };
    Ok(Arc::new(SqliteStore::open_with(location, options)?))
}

impl Crm {
    /// Opens (or creates) a SQLite database file, or connects to the PostgreSQL server a
    /// `postgresql://` URL or libpq string names ([`is_postgres_location`]; tables are created
    /// in its `guanxi` schema).
    ///
    /// ```no_run
    /// let crm = guanxi::Crm::open("crm.db")?;
    /// let shared = guanxi::Crm::open("postgresql://crm@db.internal/crm")?;
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn open(path: impl AsRef<Path>) -> Result<Crm> {
        let path = path.as_ref();
        if let Some(location) = path.to_str().filter(|l| is_postgres_location(l)) {
            return Ok(Crm::builder().store(open_store(location, None)?).build());
        }
        Ok(Crm::builder().store(Arc::new(SqliteStore::open(path)?)).build())
    }

    /// Opens a SQLite database file with explicit options (durability, busy timeout).
    pub fn open_with(path: impl AsRef<Path>, options: SqliteOptions) -> Result<Crm> {
        Ok(Crm::builder().store(Arc::new(SqliteStore::open_with(path, options)?)).build())
    }

    /// The current instant by the CRM's clock (the one every write is stamped with): the
    /// default "now" of agendas and reports in the bindings.
    ///
    /// ```
    /// # use std::sync::Arc;
    /// # use guanxi::*;
    /// let at = "2024-05-01T08:00:00Z".parse().unwrap();
    /// let crm = Crm::builder().clock(Arc::new(FixedClock::at(at))).build();
    /// assert_eq!(crm.now(), at);
    /// ```
    pub fn now(&self) -> chrono::DateTime<chrono::Utc> {
        self.clock.now()
    }

    /// A CRM kept in memory, gone when dropped.
    pub fn in_memory() -> Crm {
        Crm::builder().build()
    }

    /// Configures a CRM piece by piece.
    pub fn builder() -> CrmBuilder {
        CrmBuilder::default()
    }

    /// The store underneath (for backends' own tools such as backup).
    pub fn store(&self) -> &DynStore {
        &self.store
    }

    /// Calls `listener` with every event committed from now on, on the committing thread.
    pub fn subscribe(&self, listener: impl Fn(&Event) + Send + Sync + 'static) -> SubscriptionId {
        self.events.subscribe(Arc::new(listener))
    }

    /// Stops a subscription; false if it was not active.
    pub fn unsubscribe(&self, id: SubscriptionId) -> bool {
        self.events.unsubscribe(id)
    }

    /// The store, as the view every staging step reads through (outside a write session).
    pub(crate) fn view(&self) -> &dyn StoreView {
        &*self.store
    }

    pub(crate) fn commit(
        &self,
        actor: &Actor,
        at: DateTime<Utc>,
        changes: &Changes,
        events: Vec<DomainEvent>,
    ) -> Result<()> {
        self.store.apply(changes)?;
        self.publish(actor, at, events);
        Ok(())
    }

    /// Hands committed changes' events to the listeners.
    pub(crate) fn publish(&self, actor: &Actor, at: DateTime<Utc>, events: Vec<DomainEvent>) {
        let events: Vec<Event> =
            events.into_iter().map(|payload| Event { at, actor: actor.user_id().clone(), payload }).collect();
        self.events.publish(&events);
    }

    pub(crate) fn validation_context(&self) -> Result<ValidationContext> {
        Ok(ValidationContext {
            customer_fields: self.store.custom_fields(EntityKind::Customer)?,
            contact_fields: self.store.custom_fields(EntityKind::Contact)?,
            level_rule: self.level_rule.clone(),
        })
    }

    // ----- customers -----

    /// Writes validated customers (with their contacts, new tags, log entries) in one batch.
    /// Each must fall in the actor's create scope; one owned by someone else also needs the
    /// assign permission. The department defaults to the owner's.
    pub(crate) fn insert_customers(
        &self,
        actor: &Actor,
        allowed: &Allowed,
        valid: Vec<ValidCustomer>,
    ) -> Result<Vec<Customer>> {
        if valid.is_empty() {
            return Ok(Vec::new());
        }
        let now = self.clock.now();
        let mut changes = Changes::default();
        let mut events = Vec::new();
        self.stage_customers(self.view(), actor, allowed, now, valid, &mut changes, &mut events)?;
        self.commit(actor, now, &changes, events)?;
        Ok(changes.customers.into_iter().map(|w| allowed.show_customer(w.into_record())).collect())
    }

    /// Adds validated customers (their contacts, new tags and log entries) to a batch.
    #[allow(clippy::too_many_arguments)] // one staging step, each part named
    pub(crate) fn stage_customers(
        &self,
        store: &dyn StoreView,
        actor: &Actor,
        allowed: &Allowed,
        now: DateTime<Utc>,
        valid: Vec<ValidCustomer>,
        changes: &mut Changes,
        events: &mut Vec<DomainEvent>,
    ) -> Result<()> {
        let mut assign: Option<Allowed> = None;
        let day = now.with_timezone(&self.code_offset).date_naive();
        let first = store.reserve_sequence(&format!("C{}", day.format("%Y%m%d")), valid.len() as u64)?;
        let mut tags_seen = std::collections::BTreeSet::new();
        for (n, v) in valid.into_iter().enumerate() {
            let owner = v.owner.unwrap_or_else(|| actor.user_id().clone());
            let department = v.department.or_else(|| allowed.department_of(&owner));
            for t in &v.tags {
                if tags_seen.insert(t.clone()) && store.tag(t)?.is_none() {
                    changes.tags.push(TagWrite::Ensure(Tag { name: t.clone(), group: None, created_at: Some(now) }));
                }
            }
            let customer = Customer {
                id: CustomerId(self.ids.next(now)),
                code: Customer::code_for(day, first + n as u64),
                name: v.name,
                kind: v.kind,
                industry: v.industry,
                size: v.size,
                source: v.source,
                status: v.status,
                level: v.level,
                region: v.region,
                address: v.address,
                owner: Some(owner),
                department,
                tags: v.tags,
                custom: v.custom,
                created_by: actor.user_id().clone(),
                created_at: now,
                updated_by: actor.user_id().clone(),
                updated_at: now,
                version: 1,
                deleted_at: None,
                merged_into: None,
            };
            if allowed.enforced() {
                let what = format!("new customer {}", customer.name);
                allowed.check(actor, customer.scope_attrs(), &what)?;
                if customer.owner.as_ref() != Some(actor.user_id()) {
                    allowed.check_owner(&format!("customers[{n}].owner"), customer.owner.as_ref())?;
                    if assign.is_none() {
                        assign = Some(self.reauthorize(allowed, actor, Action::Assign, EntityKind::Customer)?);
                    }
                    if let Some(a) = &assign {
                        a.check(actor, customer.scope_attrs(), &what)?;
                    }
                }
            }
            changes.change_log.push(log(
                now,
                actor,
                EntityKind::Customer,
                customer.id.to_string(),
                Some(customer.id),
                ChangeAction::Create,
                created_fields(to_json(&customer), UNLOGGED, NESTED),
            ));
            events.push(DomainEvent::CustomerCreated { customer: customer.id, code: customer.code.clone() });
            events
                .extend(customer.tags.iter().map(|t| DomainEvent::TagAdded { customer: customer.id, tag: t.clone() }));
            let primary = v.contacts.iter().position(|c| c.primary).unwrap_or(0);
            for (i, c) in v.contacts.into_iter().enumerate() {
                let contact = self.new_contact(actor, now, customer.id, c, i == primary);
                self.stage_contact_insert(actor, now, contact, changes, events);
            }
            changes.customers.push(Write::Insert(customer));
        }
        Ok(())
    }

    /// Checks a record's `contact_id`: a live contact of the record's customer (`whose`
    /// names that customer in the error, e.g. "the ticket's customer").
    pub(crate) fn check_contact_of(&self, contact: ContactId, customer: Option<CustomerId>, whose: &str) -> Result<()> {
        let ok =
            self.store.contact(contact)?.is_some_and(|c| c.deleted_at.is_none() && Some(c.customer_id) == customer);
        if ok {
            Ok(())
        } else {
            Err(Error::invalid(
                "contact_id",
                ValidationReason::Invalid { detail: format!("is not a contact of {whose}") },
            ))
        }
    }

    pub(crate) fn live_customer(&self, id: CustomerId) -> Result<Customer> {
        self.store.customer(id)?.filter(|c| !c.is_deleted()).ok_or_else(|| Error::not_found(EntityKind::Customer, id))
    }

    /// The typed filter restricted to the permission's scope (inside the store's own query).
    pub(crate) fn scoped_filter(&self, filter: &CustomerFilter, allowed: &Allowed) -> Result<CustomerFilter> {
        let mut f = self.typed_filter(filter)?;
        f.scope = allowed.query_scope();
        Ok(f)
    }

    /// The filter with its custom-field values parsed into each field's type, as validation
    /// parses input (so `"crm"` finds multi-select values containing crm, `"12.50"` a decimal);
    /// an undefined field or a value of the wrong type is a validation error on `custom.<key>`.
    fn typed_filter(&self, filter: &CustomerFilter) -> Result<CustomerFilter> {
        if filter.custom.is_empty() {
            return Ok(filter.clone());
        }
        let defs = self.store.custom_fields(EntityKind::Customer)?;
        let mut errs = ValidationErrors::default();
        let mut typed = filter.clone();
        for f in &mut typed.custom {
            match defs.iter().find(|d| d.key == f.key) {
                None => errs.push(format!("custom.{}", f.key), ValidationReason::UnknownField),
                Some(def) => match f.value.clone().coerce(def.field_type) {
                    Ok(v) => f.value = v,
                    Err(reason) => errs.push(format!("custom.{}", f.key), reason),
                },
            }
        }
        errs.into_result(typed)
    }

    /// Records an export (its size and what it covered) in the change log.
    pub(crate) fn log_export(&self, actor: &Actor, details: Vec<FieldChange>) -> Result<()> {
        let now = self.clock.now();
        let entry = log(now, actor, EntityKind::Customer, "export".to_owned(), None, ChangeAction::Export, details);
        self.commit(actor, now, &Changes { change_log: vec![entry], ..Default::default() }, Vec::new())
    }

    fn scan_customers(&self, allowed: &Allowed, filter: &CustomerFilter) -> Result<Vec<Customer>> {
        let filter = self.scoped_filter(filter, allowed)?;
        let rows = walk_pages(|page| self.store.list_customers(&filter, page))?;
        Ok(rows.into_iter().map(|c| allowed.show_customer(c)).collect())
    }

    fn write_customer(
        &self,
        actor: &Actor,
        current: Customer,
        mut next: Customer,
        action: ChangeAction,
        diff: Vec<FieldChange>,
    ) -> Result<Customer> {
        let now = self.clock.now();
        next.version = current.version + 1;
        next.updated_at = now;
        next.updated_by = actor.user_id().clone();
        let event = match action {
            ChangeAction::Delete => DomainEvent::CustomerDeleted { customer: next.id },
            ChangeAction::Restore => DomainEvent::CustomerRestored { customer: next.id },
            _ => DomainEvent::CustomerUpdated {
                customer: next.id,
                fields: diff.iter().map(|c| c.field.clone()).collect(),
            },
        };
        let changes = Changes {
            customers: vec![Write::Update { record: next.clone(), expected_version: current.version }],
            change_log: vec![log(now, actor, EntityKind::Customer, next.id.to_string(), Some(next.id), action, diff)],
            ..Default::default()
        };
        self.commit(actor, now, &changes, vec![event])?;
        Ok(next)
    }

    // ----- tags -----

    fn set_tag(&self, actor: &Actor, id: CustomerId, tag: &str, linked: bool) -> Result<Customer> {
        let allowed = self.authorize(actor, Action::Update, EntityKind::Customer)?;
        let name = guanxi_core::tag::normalize_tag_name(tag).map_err(|r| Error::invalid("tag", r))?;
        let mut customer = self.live_customer(id)?;
        allowed.check_customer(actor, &customer)?;
        if customer.tags.contains(&name) == linked {
            return Ok(allowed.show_customer(customer));
        }
        let now = self.clock.now();
        let mut changes = Changes::default();
        if linked && self.store.tag(&name)?.is_none() {
            changes.tags.push(TagWrite::Ensure(Tag { name: name.clone(), group: None, created_at: Some(now) }));
        }
        changes.tag_links.push(TagLink { customer: id, tag: name.clone(), linked });
        let (action, event, change) = if linked {
            (
                ChangeAction::Tag,
                DomainEvent::TagAdded { customer: id, tag: name.clone() },
                FieldChange::new("tags", None, Some(name.clone().into())),
            )
        } else {
            (
                ChangeAction::Untag,
                DomainEvent::TagRemoved { customer: id, tag: name.clone() },
                FieldChange::new("tags", Some(name.clone().into()), None),
            )
        };
        changes.change_log.push(log(now, actor, EntityKind::Customer, id.to_string(), Some(id), action, vec![change]));
        self.commit(actor, now, &changes, vec![event])?;
        if linked {
            customer.tags.insert(name);
        } else {
            customer.tags.remove(&name);
        }
        Ok(allowed.show_customer(customer))
    }

    // ----- contacts -----

    pub(crate) fn new_contact(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        customer: CustomerId,
        c: ValidContact,
        primary: bool,
    ) -> Contact {
        Contact {
            id: ContactId(self.ids.next(now)),
            customer_id: customer,
            name: c.name,
            title: c.title,
            phones: c.phones,
            emails: c.emails,
            id_number: c.id_number,
            role: c.role,
            primary,
            do_not_contact: c.do_not_contact,
            custom: c.custom,
            created_by: actor.user_id().clone(),
            created_at: now,
            updated_by: actor.user_id().clone(),
            updated_at: now,
            version: 1,
            deleted_at: None,
        }
    }

    pub(crate) fn stage_contact_insert(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        contact: Contact,
        changes: &mut Changes,
        events: &mut Vec<DomainEvent>,
    ) {
        changes.change_log.push(log(
            now,
            actor,
            EntityKind::Contact,
            contact.id.to_string(),
            Some(contact.customer_id),
            ChangeAction::Create,
            created_fields(to_json(&contact), &[UNLOGGED, &["customer_id"]].concat(), NESTED),
        ));
        events.push(DomainEvent::ContactAdded { customer: contact.customer_id, contact: contact.id });
        changes.contacts.push(Write::Insert(contact));
    }

    fn stage_contact_update(
        &self,
        actor: &Actor,
        now: DateTime<Utc>,
        current: Contact,
        mut next: Contact,
        changes: &mut Changes,
        events: &mut Vec<DomainEvent>,
    ) -> Vec<FieldChange> {
        let diff = diff_json(&to_json(&current), &to_json(&next), UNLOGGED, NESTED);
        next.version = current.version + 1;
        next.updated_at = now;
        next.updated_by = actor.user_id().clone();
        let action = if next.deleted_at.is_some() && current.deleted_at.is_none() {
            ChangeAction::Delete
        } else {
            ChangeAction::Update
        };
        changes.change_log.push(log(
            now,
            actor,
            EntityKind::Contact,
            next.id.to_string(),
            Some(next.customer_id),
            action,
            diff.clone(),
        ));
        events.push(if action == ChangeAction::Delete {
            DomainEvent::ContactRemoved { customer: next.customer_id, contact: next.id }
        } else {
            DomainEvent::ContactUpdated {
                customer: next.customer_id,
                contact: next.id,
                fields: diff.iter().map(|c| c.field.clone()).collect(),
            }
        });
        changes.contacts.push(Write::Update { record: next, expected_version: current.version });
        diff
    }

    /// Checks a contact against a permission through its customer.
    fn check_contact(&self, actor: &Actor, allowed: &Allowed, c: &Contact) -> Result<()> {
        if allowed.scope.all {
            return Ok(());
        }
        let owner =
            self.store.customer(c.customer_id)?.ok_or_else(|| Error::not_found(EntityKind::Customer, c.customer_id))?;
        allowed.check(actor, owner.scope_attrs(), format_args!("contact {} of customer {}", c.name, owner.code))
    }

    /// The contacts of a lookup the actor may read, masked, their clear reads audited.
    fn readable_contacts(&self, actor: &Actor, allowed: &Allowed, found: Vec<Contact>) -> Result<Vec<Contact>> {
        let mut out = Vec::new();
        for c in found {
            if self.check_contact(actor, allowed, &c).is_ok() {
                out.push(c);
            }
        }
        self.audit_sensitive_reads(actor, allowed, &out)?;
        Ok(out.into_iter().map(|c| allowed.show_contact(c)).collect())
    }

    fn live_contact(&self, id: ContactId) -> Result<Contact> {
        self.store
            .contact(id)?
            .filter(|c| c.deleted_at.is_none())
            .ok_or_else(|| Error::not_found(EntityKind::Contact, id))
    }

    // ----- interactions -----

    // ----- custom fields -----

    // ----- history -----

    /// Restores a backup into `into` (created or overwritten; close every handle on it first),
    /// after checking the backup's audit chain: a broken chain is refused. `into` may also
    /// name a PostgreSQL server ([`is_postgres_location`]): the backup (of any backend) is then
    /// loaded into its guanxi schema in one transaction, which must hold no data yet, and the
    /// server's audit chain is checked to end on the backup's last entry and hash.
    ///
    /// ```
    /// # use guanxi::*;
    /// let dir = tempfile::tempdir().unwrap();
    /// let crm = Crm::open(dir.path().join("crm.db"))?;
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// crm.files().backup(&alice, &dir.path().join("backup.db"))?;
    /// Crm::restore(&dir.path().join("backup.db"), &dir.path().join("restored.db"))?;
    /// let restored = Crm::open(dir.path().join("restored.db"))?;
    /// assert_eq!(restored.customers().count(&alice, &CustomerFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn restore(backup: &Path, into: &Path) -> Result<guanxi_core::AuditCheck> {
        Crm::restore_with_key(backup, into, None)
    }

    /// [`Crm::restore`] of a backup whose fields are encrypted: `field_key` must be the
    /// backup's key ([`guanxi_core::EncryptionError::WrongKey`] otherwise). A file is restored
    /// as it is, still encrypted; a PostgreSQL server gets the records sealed under the same key.
    ///
    /// ```
    /// # use guanxi::*;
    /// let dir = tempfile::tempdir().unwrap();
    /// let key = FieldKey::generate();
    /// let crm = Crm::open_with(dir.path().join("crm.db"), SqliteOptions::default().field_key(key.clone()))?;
    /// let alice = Actor::user("alice")?;
    /// crm.files().backup(&alice, &dir.path().join("backup.db"))?;
    /// let wrong = Crm::restore_with_key(&dir.path().join("backup.db"), &dir.path().join("r.db"), Some(FieldKey::generate()));
    /// assert!(matches!(wrong, Err(Error::Encryption(EncryptionError::WrongKey))));
    /// Crm::restore_with_key(&dir.path().join("backup.db"), &dir.path().join("r.db"), Some(key))?;
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn restore_with_key(
        backup: &Path,
        into: &Path,
        field_key: Option<guanxi_sqlite::FieldKey>,
    ) -> Result<guanxi_core::AuditCheck> {
        if let Some(location) = into.to_str().filter(|l| is_postgres_location(l)) {
            let options = guanxi_postgres::PgOptions { field_key: field_key.clone(), ..Default::default() };
            let server = guanxi_postgres::PgStore::connect_with(location, options)?;
            return Crm::restore_into(backup, &server, field_key.as_ref());
        }
        if let Some(key) = &field_key {
            // The key is checked against the backup's before anything is written.
            SqliteStore::open_read_only_with_key(backup, Some(key))?;
        }
        let mut verified = None;
        SqliteStore::restore_checked(backup, into, |restored| {
            let check = verify_store(restored)?;
            if let (Some(seq), Some(reason)) = (check.broken_at, &check.reason) {
                return Err(Error::InvalidState(format!(
                    "the backup's audit chain is broken at entry {seq}: {reason}"
                )));
            }
            verified = Some(check);
            Ok(())
        })?;
        verified.ok_or_else(|| Error::InvalidState("the restored copy was not verified".into()))
    }

    /// Loads a backup file into `store`, which must hold no data yet: a PostgreSQL schema, or
    /// a [`guanxi_core::MemoryStore`] to work on a backup without a file. An encrypted backup
    /// is read with `field_key`. The backup is checked
    /// first (and migrated, if of an older schema) in a private copy, so it is never changed;
    /// it is then copied in one write session (all or nothing), and the store's audit chain is
    /// checked to end on the backup's last entry and hash.
    ///
    /// ```
    /// # use guanxi::*;
    /// let dir = tempfile::tempdir().unwrap();
    /// let crm = Crm::open(dir.path().join("crm.db"))?;
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// crm.files().backup(&alice, &dir.path().join("backup.db"))?;
    /// let memory = std::sync::Arc::new(MemoryStore::new());
    /// let check = Crm::restore_into(&dir.path().join("backup.db"), &*memory, None)?;
    /// assert_eq!(check.entries, 2);
    /// let loaded = Crm::builder().store(memory).build();
    /// assert_eq!(loaded.customers().count(&alice, &CustomerFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn restore_into(
        backup: &Path,
        store: &dyn CrmStore,
        field_key: Option<&guanxi_sqlite::FieldKey>,
    ) -> Result<guanxi_core::AuditCheck> {
        let staging = tempfile::tempdir()
            .map_err(|e| guanxi_core::StorageError::with_source("restore: cannot make a staging directory", e))?;
        let checked_path = staging.path().join("checked.db");
        let checked = Crm::restore(backup, &checked_path)?;
        let file = SqliteStore::open_read_only_with_key(&checked_path, field_key)?;
        store.write_session(&mut |tx| guanxi_core::store::copy_store(&file, tx).map(|_| ()))?;
        let loaded = verify_store(store)?;
        if loaded != checked {
            return Err(Error::InvalidState(format!(
                "the restored audit chain ({} entries) differs from the backup's ({} entries)",
                loaded.entries, checked.entries
            )));
        }
        Ok(loaded)
    }

    fn authorize_log(&self, actor: &Actor, action: Action) -> Result<Allowed> {
        let allowed = self.authorize(actor, action, EntityKind::ChangeLog)?;
        if !allowed.scope.all {
            return Err(Error::PermissionDenied {
                action: action.as_str().to_owned(),
                entity: EntityKind::ChangeLog,
                reason: "the audit log is granted only with scope all".into(),
            });
        }
        Ok(allowed)
    }
}

/// Verifies a store's whole change log, a page at a time.
fn verify_store(store: &dyn CrmStore) -> Result<guanxi_core::AuditCheck> {
    const PAGE: usize = 10_000;
    let mut v = guanxi_core::changelog::ChainVerifier::default();
    let mut after = None;
    loop {
        let page = store.change_log(&ChangeLogQuery { after_seq: after, limit: Some(PAGE), ..Default::default() })?;
        for e in &page {
            v.feed(e);
        }
        match page.last() {
            Some(last) if page.len() == PAGE => after = Some(last.seq),
            _ => return Ok(v.finish()),
        }
    }
}

/// Every record of a paged store list, a thousand at a time.
pub(crate) fn walk_pages<T>(mut fetch: impl FnMut(&PageRequest) -> Result<Page<T>>) -> Result<Vec<T>> {
    let mut out = Vec::new();
    let mut page = PageRequest::first(1000);
    loop {
        let p = fetch(&page)?;
        out.extend(p.items);
        match p.next {
            Some(next) => page = PageRequest::after(next, 1000),
            None => return Ok(out),
        }
    }
}

pub(crate) fn check_version(entity: EntityKind, id: impl ToString, expected: u64, actual: u64) -> Result<()> {
    if expected == actual { Ok(()) } else { Err(Error::Conflict { entity, id: id.to_string(), expected, actual }) }
}
impl Customers<'_> {
    /// Creates a customer, with its contacts and tags, in one transaction. The owner defaults
    /// to the actor; unknown tags are created; the first contact (or the one marked primary)
    /// becomes primary.
    pub fn create(&self, actor: &Actor, input: NewCustomer) -> Result<Customer> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Customer)?;
        let valid = input.validate(&self.crm.validation_context()?).map_err(Error::Validation)?;
        let mut created = self.crm.insert_customers(actor, &allowed, vec![valid])?;
        created.pop().ok_or_else(|| Error::InvalidState("no customer created".into()))
    }

    /// Creates many customers in one transaction: all of them or, on any failure, none. Every
    /// validation failure of every record is reported, under `customers[i].<field>`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let err = crm.customers().create_many(&alice, vec![NewCustomer::new("甲"), NewCustomer::new(" ")]).unwrap_err();
    /// assert!(matches!(&err, Error::Validation(v) if v.field("customers[1].name").is_some()));
    /// assert_eq!(crm.customers().count(&alice, &CustomerFilter::default())?, 0); // nothing written
    /// let created = crm.customers().create_many(&alice, vec![NewCustomer::new("甲"), NewCustomer::new("乙")])?;
    /// assert_eq!(created.len(), 2);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create_many(&self, actor: &Actor, inputs: Vec<NewCustomer>) -> Result<Vec<Customer>> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Customer)?;
        let ctx = self.crm.validation_context()?;
        let mut errs = ValidationErrors::default();
        let mut valid = Vec::with_capacity(inputs.len());
        for (i, input) in inputs.into_iter().enumerate() {
            match input.validate(&ctx) {
                Ok(v) => valid.push(v),
                Err(e) => errs.extend_nested(&format!("customers[{i}]"), e),
            }
        }
        if !errs.is_empty() {
            return Err(Error::Validation(errs));
        }
        self.crm.insert_customers(actor, &allowed, valid)
    }

    /// A live customer by id.
    pub fn get(&self, actor: &Actor, id: CustomerId) -> Result<Customer> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let c = self.crm.live_customer(id)?;
        allowed.check_customer(actor, &c)?;
        Ok(allowed.show_customer(c))
    }

    /// A live customer by its people-facing code.
    pub fn get_by_code(&self, actor: &Actor, code: &str) -> Result<Customer> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let code = guanxi_core::normalize::fold_text(code).to_uppercase();
        let c = self
            .crm
            .store
            .customer_by_code(&code)?
            .filter(|c| !c.is_deleted())
            .ok_or_else(|| Error::not_found(EntityKind::Customer, code))?;
        allowed.check_customer(actor, &c)?;
        Ok(allowed.show_customer(c))
    }

    /// One page of the customers matching `filter`, in creation order; pass `next` back for
    /// the following page.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create_many(&alice, (0..5).map(|i| NewCustomer::new(format!("客户{i}")).tag("VIP")).collect())?;
    /// let vip = CustomerFilter::default().tag("VIP");
    /// let first = crm.customers().list(&alice, &vip, PageRequest::first(3))?;
    /// let rest = crm.customers().list(&alice, &vip, PageRequest::after(first.next.unwrap(), 3))?;
    /// assert_eq!((first.items.len(), rest.items.len(), rest.next), (3, 2, None));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn list(&self, actor: &Actor, filter: &CustomerFilter, page: PageRequest) -> Result<Page<Customer>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let page = self.crm.store.list_customers(&self.crm.scoped_filter(filter, &allowed)?, &page)?;
        Ok(Page { items: page.items.into_iter().map(|c| allowed.show_customer(c)).collect(), next: page.next })
    }

    /// Every customer matching `filter`, walking all pages.
    pub fn list_all(&self, actor: &Actor, filter: &CustomerFilter) -> Result<Vec<Customer>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        self.crm.scan_customers(&allowed, filter)
    }

    /// Exports every customer matching `filter` that the actor may export: a sensitive
    /// operation (elevated, when access control is on), masked like any read, and logged with
    /// its size and filter.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create_many(&alice, vec![NewCustomer::new("甲").tag("VIP"), NewCustomer::new("乙")])?;
    /// let rows = crm.customers().export(&alice, &CustomerFilter::default().tag("VIP"))?;
    /// assert_eq!(rows.len(), 1);
    /// let log = crm.audit().entries(&alice, &ChangeLogQuery::default())?;
    /// assert_eq!(log.last().unwrap().action, ChangeAction::Export);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn export(&self, actor: &Actor, filter: &CustomerFilter) -> Result<Vec<Customer>> {
        let allowed = self.crm.authorize(actor, Action::Export, EntityKind::Customer)?;
        let rows = self.crm.scan_customers(&allowed, filter)?;
        self.crm.log_export(
            actor,
            vec![
                FieldChange::new("rows", None, Some(Value::from(rows.len()))),
                FieldChange::new("filter", None, Some(Value::from(format!("{filter:?}")))),
            ],
        )?;
        Ok(rows)
    }

    /// How many customers match `filter`.
    pub fn count(&self, actor: &Actor, filter: &CustomerFilter) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        self.crm.store.count_customers(&self.crm.scoped_filter(filter, &allowed)?)
    }

    /// Applies a patch to a customer whose current version is `expected_version`. A stale
    /// version is a [`Error::Conflict`] and changes nothing; a patch that changes nothing
    /// returns the customer as it is (no new version, no log entry, no event).
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let c2 = crm.customers().update(&alice, c.id, c.version, CustomerPatch::default().status(LifecycleStatus::Customer))?;
    /// assert_eq!(c2.version, 2);
    /// let stale = crm.customers().update(&alice, c.id, c.version, CustomerPatch::default().name("乙"));
    /// assert!(matches!(stale, Err(Error::Conflict { expected: 1, actual: 2, .. })));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn update(
        &self,
        actor: &Actor,
        id: CustomerId,
        expected_version: u64,
        patch: CustomerPatch,
    ) -> Result<Customer> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Customer)?;
        let ctx = self.crm.validation_context()?;
        let current = self.crm.live_customer(id)?;
        allowed.check_customer(actor, &current)?;
        check_version(EntityKind::Customer, id, expected_version, current.version)?;
        let next = patch.apply(&current, &ctx).map_err(Error::Validation)?;
        if allowed.enforced() && (next.owner != current.owner || next.department != current.department) {
            // Handing a record to someone else is assigning it.
            allowed.check_owner("owner", next.owner.as_ref())?;
            self.crm
                .reauthorize(&allowed, actor, Action::Assign, EntityKind::Customer)?
                .check_customer(actor, &current)?;
        }
        let diff = diff_json(&to_json(&current), &to_json(&next), UNLOGGED, NESTED);
        if diff.is_empty() {
            return Ok(allowed.show_customer(current));
        }
        Ok(allowed.show_customer(self.crm.write_customer(actor, current, next, ChangeAction::Update, diff)?))
    }

    /// Soft-deletes a customer: it disappears from reads and lists (unless asked for with
    /// [`guanxi_core::Deleted`]) and can be restored.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let gone = crm.customers().delete(&alice, c.id, c.version)?;
    /// assert!(matches!(crm.customers().get(&alice, c.id), Err(Error::NotFound { .. })));
    /// crm.customers().restore(&alice, c.id, gone.version)?;
    /// assert_eq!(crm.customers().get(&alice, c.id)?.version, 3);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn delete(&self, actor: &Actor, id: CustomerId, expected_version: u64) -> Result<Customer> {
        let allowed = self.crm.authorize(actor, Action::Delete, EntityKind::Customer)?;
        let current = self.crm.live_customer(id)?;
        allowed.check_customer(actor, &current)?;
        check_version(EntityKind::Customer, id, expected_version, current.version)?;
        let now = self.crm.clock.now();
        let next = Customer { deleted_at: Some(now), ..current.clone() };
        let diff = vec![FieldChange::new("deleted_at", None, Some(to_json(&now)))];
        Ok(allowed.show_customer(self.crm.write_customer(actor, current, next, ChangeAction::Delete, diff)?))
    }

    /// Restores a soft-deleted customer.
    pub fn restore(&self, actor: &Actor, id: CustomerId, expected_version: u64) -> Result<Customer> {
        let allowed = self.crm.authorize(actor, Action::Delete, EntityKind::Customer)?;
        let current = self.crm.store.customer(id)?.ok_or_else(|| Error::not_found(EntityKind::Customer, id))?;
        allowed.check_customer(actor, &current)?;
        if !current.is_deleted() {
            return Err(Error::InvalidState(format!("customer {} is not deleted", current.code)));
        }
        check_version(EntityKind::Customer, id, expected_version, current.version)?;
        let diff = vec![FieldChange::new("deleted_at", current.deleted_at.map(|t| to_json(&t)), None)];
        let next = Customer { deleted_at: None, ..current.clone() };
        Ok(allowed.show_customer(self.crm.write_customer(actor, current, next, ChangeAction::Restore, diff)?))
    }

    /// Everything that happened to a customer (interactions, changes to it and its contacts),
    /// oldest first.
    ///
    /// Change values are masked as the actor's field rules say; interactions are left out for
    /// an actor who may not read them.
    pub fn timeline(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<TimelineEntry>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let owner =
            self.crm.store.customer(customer)?.ok_or_else(|| Error::not_found(EntityKind::Customer, customer))?;
        allowed.check_customer(actor, &owner)?;
        let sees_interactions = self
            .crm
            .reauthorize(&allowed, actor, Action::Read, EntityKind::Interaction)
            .is_ok_and(|i| i.scope.admits(owner.scope_attrs()));
        let mut out = self.crm.store.timeline(customer)?;
        out.retain(|e| sees_interactions || !matches!(e.item, TimelineItem::Interaction(_)));
        for e in &mut out {
            if let TimelineItem::Change(c) = &mut e.item {
                allowed.show_changes(c.entity, &mut c.changes);
            }
        }
        Ok(out)
    }
}

impl Tags<'_> {
    /// Defines a tag, or moves an existing one to another group.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.tags().create(&alice, "互联网", Some("行业"))?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// assert!(crm.tags().add(&alice, c.id, "互联网")?.tags.contains("互联网"));
    /// assert_eq!(crm.tags().list(&alice)?[0].group.as_deref(), Some("行业"));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, name: &str, group: Option<&str>) -> Result<Tag> {
        self.crm.authorize(actor, Action::Configure, EntityKind::Tag)?;
        let mut tag = Tag::new(name, group)?;
        let now = self.crm.clock.now();
        let existing = self.crm.store.tag(&tag.name)?;
        if existing.as_ref().is_some_and(|t| t.group == tag.group) {
            return Ok(existing.unwrap_or(tag));
        }
        tag.created_at = existing.as_ref().and_then(|t| t.created_at).or(Some(now));
        let (action, diff) = match &existing {
            None => (ChangeAction::Create, created_fields(to_json(&tag), &["created_at"], &[])),
            Some(old) => (
                ChangeAction::Update,
                vec![FieldChange::new("group", old.group.clone().map(Value::from), tag.group.clone().map(Value::from))],
            ),
        };
        let changes = Changes {
            tags: vec![TagWrite::Put(tag.clone())],
            change_log: vec![log(now, actor, EntityKind::Tag, tag.name.clone(), None, action, diff)],
            ..Default::default()
        };
        self.crm.commit(actor, now, &changes, vec![DomainEvent::TagDefined { tag: tag.name.clone() }])?;
        Ok(tag)
    }

    /// Every tag, by group then name.
    pub fn list(&self, actor: &Actor) -> Result<Vec<Tag>> {
        self.crm.authorize(actor, Action::Read, EntityKind::Tag)?;
        self.crm.store.tags()
    }

    /// Adds a tag to a customer (creating the tag, ungrouped, if it does not exist). Adding a
    /// tag the customer already has changes nothing.
    pub fn add(&self, actor: &Actor, customer: CustomerId, tag: &str) -> Result<Customer> {
        self.crm.set_tag(actor, customer, tag, true)
    }

    /// Removes a tag from a customer. Removing a tag it does not have changes nothing.
    pub fn remove(&self, actor: &Actor, customer: CustomerId, tag: &str) -> Result<Customer> {
        self.crm.set_tag(actor, customer, tag, false)
    }
}

impl Contacts<'_> {
    /// Adds a contact to a customer. The customer's first contact becomes primary; a later
    /// one marked primary takes over from the current primary in the same transaction.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// crm.contacts().create(&alice, c.id, NewContact::new("张伟"))?;
    /// crm.contacts().create(&alice, c.id, NewContact::new("李娜").phone("139 0000 1111").primary())?;
    /// let contacts = crm.contacts().list(&alice, c.id)?;
    /// assert_eq!((contacts[0].name.as_str(), contacts[0].primary, contacts[1].primary), ("李娜", true, false));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, customer: CustomerId, input: NewContact) -> Result<Contact> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Contact)?;
        let ctx = self.crm.validation_context()?;
        let valid = input.validate(&ctx.contact_fields).map_err(Error::Validation)?;
        let owner = self.crm.live_customer(customer)?;
        allowed.check_customer(actor, &owner)?;
        let existing = self.crm.store.contacts_of(customer)?;
        let now = self.crm.clock.now();
        let primary = valid.primary || existing.is_empty();
        let contact = self.crm.new_contact(actor, now, customer, valid, primary);
        let mut changes = Changes::default();
        let mut events = Vec::new();
        if primary {
            for old in existing.into_iter().filter(|c| c.primary) {
                self.crm.stage_contact_update(
                    actor,
                    now,
                    old.clone(),
                    Contact { primary: false, ..old },
                    &mut changes,
                    &mut events,
                );
            }
        }
        self.crm.stage_contact_insert(actor, now, contact.clone(), &mut changes, &mut events);
        self.crm.commit(actor, now, &changes, events)?;
        Ok(allowed.show_contact(contact))
    }

    /// A live contact by id.
    pub fn get(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Contact)?;
        let c = self.crm.live_contact(id)?;
        self.crm.check_contact(actor, &allowed, &c)?;
        self.crm.audit_sensitive_reads(actor, &allowed, std::slice::from_ref(&c))?;
        Ok(allowed.show_contact(c))
    }

    /// The live contacts with this phone number that the actor may read: the duplicate check
    /// before adding a contact. Encrypted databases answer it from a keyed blind index.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲").contact(NewContact::new("张伟").phone("138 1234 5678")))?;
    /// let found = crm.contacts().find_by_phone(&alice, "+86 13812345678")?;
    /// assert_eq!(found[0].name, "张伟");
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn find_by_phone(&self, actor: &Actor, phone: &str) -> Result<Vec<Contact>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Contact)?;
        let phone = guanxi_core::Phone::parse(phone).map_err(|r| Error::invalid("phone", r))?;
        let found = self.crm.store.contacts_by_phone(&phone)?;
        self.crm.readable_contacts(actor, &allowed, found)
    }

    /// The live contacts with this resident identity number that the actor may read.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲").contact(NewContact::new("张伟").id_number("11010519491231002x")))?;
    /// assert_eq!(crm.contacts().find_by_id_number(&alice, "11010519491231002X")?[0].name, "张伟");
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn find_by_id_number(&self, actor: &Actor, id_number: &str) -> Result<Vec<Contact>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Contact)?;
        let id = guanxi_core::IdNumber::parse(id_number).map_err(|r| Error::invalid("id_number", r))?;
        let found = self.crm.store.contacts_by_id_number(&id)?;
        self.crm.readable_contacts(actor, &allowed, found)
    }

    /// The live contacts of a customer, primary first.
    pub fn list(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<Contact>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Contact)?;
        if !allowed.scope.all {
            let owner = self.crm.live_customer(customer)?;
            allowed.check_customer(actor, &owner)?;
        }
        let contacts = self.crm.store.contacts_of(customer)?;
        self.crm.audit_sensitive_reads(actor, &allowed, &contacts)?;
        Ok(contacts.into_iter().map(|c| allowed.show_contact(c)).collect())
    }

    /// Applies a patch to a contact whose current version is `expected_version`.
    pub fn update(&self, actor: &Actor, id: ContactId, expected_version: u64, patch: ContactPatch) -> Result<Contact> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Contact)?;
        let ctx = self.crm.validation_context()?;
        let current = self.crm.live_contact(id)?;
        self.crm.check_contact(actor, &allowed, &current)?;
        check_version(EntityKind::Contact, id, expected_version, current.version)?;
        let next = patch.apply(&current, &ctx.contact_fields).map_err(Error::Validation)?;
        let now = self.crm.clock.now();
        let (mut changes, mut events) = (Changes::default(), Vec::new());
        // Staging computes the diff once; a patch that changes nothing is dropped unwritten.
        if self.crm.stage_contact_update(actor, now, current.clone(), next, &mut changes, &mut events).is_empty() {
            return Ok(allowed.show_contact(current));
        }
        let written = changes.contacts[0].record().clone();
        self.crm.commit(actor, now, &changes, events)?;
        Ok(allowed.show_contact(written))
    }

    /// Makes a contact its customer's primary contact (the previous primary stops being one).
    pub fn set_primary(&self, actor: &Actor, id: ContactId) -> Result<Contact> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Contact)?;
        let target = self.crm.live_contact(id)?;
        self.crm.check_contact(actor, &allowed, &target)?;
        if target.primary {
            return Ok(allowed.show_contact(target));
        }
        let now = self.crm.clock.now();
        let (mut changes, mut events) = (Changes::default(), Vec::new());
        for old in self.crm.store.contacts_of(target.customer_id)?.into_iter().filter(|c| c.primary) {
            self.crm.stage_contact_update(
                actor,
                now,
                old.clone(),
                Contact { primary: false, ..old },
                &mut changes,
                &mut events,
            );
        }
        self.crm.stage_contact_update(
            actor,
            now,
            target.clone(),
            Contact { primary: true, ..target },
            &mut changes,
            &mut events,
        );
        let written = changes.contacts.last().map(|w| allowed.show_contact(w.record().clone()));
        self.crm.commit(actor, now, &changes, events)?;
        written.ok_or_else(|| Error::InvalidState("no contact written".into()))
    }

    /// Removes (soft-deletes) a contact: a delete, so elevated when access control is on. If
    /// it was primary, the oldest remaining contact becomes primary in the same transaction.
    pub fn delete(&self, actor: &Actor, id: ContactId, expected_version: u64) -> Result<()> {
        let allowed = self.crm.authorize(actor, Action::Delete, EntityKind::Contact)?;
        let current = self.crm.live_contact(id)?;
        self.crm.check_contact(actor, &allowed, &current)?;
        check_version(EntityKind::Contact, id, expected_version, current.version)?;
        let now = self.crm.clock.now();
        let (mut changes, mut events) = (Changes::default(), Vec::new());
        if current.primary {
            let successor = self
                .crm
                .store
                .contacts_of(current.customer_id)?
                .into_iter()
                .filter(|c| c.id != id)
                .min_by_key(|c| c.id);
            if let Some(s) = successor {
                self.crm.stage_contact_update(
                    actor,
                    now,
                    s.clone(),
                    Contact { primary: true, ..s },
                    &mut changes,
                    &mut events,
                );
            }
        }
        let removed = Contact { deleted_at: Some(now), primary: false, ..current.clone() };
        self.crm.stage_contact_update(actor, now, current, removed, &mut changes, &mut events);
        self.crm.commit(actor, now, &changes, events)
    }
}

impl Interactions<'_> {
    /// Logs an interaction with a customer. `at` defaults to now and the author to the actor;
    /// a contact given must be a live contact of this customer.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// let i = crm.interactions().create(&alice, c.id, NewInteraction::new(InteractionKind::Call, "确认预算").next_step("发报价"))?;
    /// assert_eq!(i.author.as_str(), "alice");
    /// assert_eq!(crm.interactions().list(&alice, c.id)?, vec![i]);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, customer: CustomerId, input: NewInteraction) -> Result<Interaction> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Interaction)?;
        let now = self.crm.clock.now();
        let input = NewInteraction { at: Some(input.at.unwrap_or(now)), ..input };
        let mut v = input.validate().map_err(Error::Validation)?;
        let owner = self.crm.live_customer(customer)?;
        allowed.check_customer(actor, &owner)?;
        if let Some(cid) = v.contact_id {
            self.crm.check_contact_of(cid, Some(customer), "this customer")?;
        }
        let interaction = Interaction {
            id: InteractionId(self.crm.ids.next(now)),
            customer_id: customer,
            contact_id: v.contact_id,
            kind: v.kind,
            at: v.at.unwrap_or(now),
            author: v.author.take().unwrap_or_else(|| actor.user_id().clone()),
            content: v.content,
            next_step: v.next_step,
            next_contact_on: v.next_contact_on,
            feedback: v.feedback,
            attachments: v.attachments,
            created_by: actor.user_id().clone(),
            created_at: now,
        };
        let diff = created_fields(to_json(&interaction), &[UNLOGGED, &["customer_id"]].concat(), &[]);
        let changes = Changes {
            interactions: vec![interaction.clone()],
            change_log: vec![log(
                now,
                actor,
                EntityKind::Interaction,
                interaction.id.to_string(),
                Some(customer),
                ChangeAction::Create,
                diff,
            )],
            ..Default::default()
        };
        let event = DomainEvent::InteractionLogged { customer, interaction: interaction.id };
        self.crm.commit(actor, now, &changes, vec![event])?;
        Ok(interaction)
    }

    /// The interactions of a customer, oldest first.
    pub fn list(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<Interaction>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Interaction)?;
        if !allowed.scope.all {
            let owner =
                self.crm.store.customer(customer)?.ok_or_else(|| Error::not_found(EntityKind::Customer, customer))?;
            allowed.check_customer(actor, &owner)?;
        }
        self.crm.store.interactions_of(customer)
    }
}

impl CustomFields<'_> {
    /// Defines a custom field. Keys are unique per entity.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.custom_fields().create(&alice, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal))?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲").custom("budget", CustomValue::Text("1,200.50".into())))?;
    /// assert_eq!(c.custom["budget"].to_string(), "1200.5");
    /// let bad = crm.customers().create(&alice, NewCustomer::new("乙").custom("budget", CustomValue::Text("lots".into())));
    /// assert!(matches!(bad, Err(Error::Validation(v)) if v.field("custom.budget").is_some()));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, def: CustomFieldDef) -> Result<CustomFieldDef> {
        self.crm.authorize(actor, Action::Configure, EntityKind::CustomField)?;
        let mut def = def.validated().map_err(Error::Validation)?;
        if !matches!(def.entity, EntityKind::Customer | EntityKind::Contact) {
            return Err(Error::invalid(
                "entity",
                ValidationReason::Invalid { detail: format!("{} records take no custom fields", def.entity) },
            ));
        }
        if self.crm.store.custom_fields(def.entity)?.iter().any(|d| d.key == def.key) {
            return Err(Error::Duplicate { entity: EntityKind::CustomField, field: "key".into(), value: def.key });
        }
        let now = self.crm.clock.now();
        def.created_at = Some(now);
        def.created_by = Some(actor.user_id().clone());
        let entity_id = format!("{}.{}", def.entity, def.key);
        let diff = created_fields(to_json(&def), &["created_at", "created_by"], &[]);
        let changes = Changes {
            custom_fields: vec![def.clone()],
            change_log: vec![log(now, actor, EntityKind::CustomField, entity_id, None, ChangeAction::Create, diff)],
            ..Default::default()
        };
        let event = DomainEvent::CustomFieldDefined { entity: def.entity, key: def.key.clone() };
        self.crm.commit(actor, now, &changes, vec![event])?;
        Ok(def)
    }

    /// The custom fields of an entity. Their definitions are part of reading the records they
    /// describe: whoever may read `entity` (or custom fields themselves) may read them, so a
    /// list, an export or a DataFrame never fails where a single read succeeds.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::access::{Role, Scope, User};
    /// let crm = Crm::builder().trust_asserted_elevation(true).build(); // the host verifies users itself
    /// let root = Actor::user("root")?.elevated_until("2999-01-01T00:00:00Z".parse().unwrap());
    /// crm.access().set_user(&root, User::new("root", "管理员")?.role(BuiltinRole::Administrator))?;
    /// crm.access().set_role(&root, Role::new("reader", "只读")?.grant(EntityKind::Customer, &[Action::Read], Scope::All))?;
    /// crm.access().set_user(&root, User::new("kim", "金")?.custom_role(&RoleId::new("reader")?))?;
    /// assert!(crm.custom_fields().list(&Actor::user("kim")?, EntityKind::Customer)?.is_empty());
    /// assert!(crm.custom_fields().list(&Actor::user("kim")?, EntityKind::Contact).is_err());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn list(&self, actor: &Actor, entity: EntityKind) -> Result<Vec<CustomFieldDef>> {
        if let Err(e) = self.crm.authorize(actor, Action::Read, entity) {
            self.crm.authorize(actor, Action::Read, EntityKind::CustomField).map_err(|_| e)?;
        }
        self.crm.store.custom_fields(entity)
    }
}

impl Files<'_> {
    /// Writes a consistent online backup to a new file `dest` (writers may keep writing), after
    /// logging the backup itself; returns the audit check of the copy.
    ///
    /// ```
    /// # use guanxi::*;
    /// let dir = tempfile::tempdir().unwrap();
    /// let crm = Crm::open(dir.path().join("crm.db"))?;
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// let check = crm.files().backup(&alice, &dir.path().join("backup.db"))?;
    /// assert!(check.is_intact());
    /// assert_eq!(check.entries, 2); // the create, and the backup itself
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn backup(&self, actor: &Actor, dest: &Path) -> Result<guanxi_core::AuditCheck> {
        self.crm.authorize_log(actor, Action::Export)?;
        // Refuse before logging, so the log never records a backup that could not be made.
        if dest.exists() {
            return Err(Error::InvalidState(format!("backup target {} already exists", dest.display())));
        }
        let now = self.crm.clock.now();
        let entry = log(
            now,
            actor,
            EntityKind::ChangeLog,
            "backup".to_owned(),
            None,
            ChangeAction::Export,
            vec![FieldChange::new("backup", None, Some(Value::from(dest.display().to_string())))],
        );
        self.crm.commit(actor, now, &Changes { change_log: vec![entry], ..Default::default() }, Vec::new())?;
        if let Err(e) = self.crm.store.backup_to(dest) {
            // The attempt is on record; so is its failure.
            let failed = log(
                self.crm.clock.now(),
                actor,
                EntityKind::ChangeLog,
                "backup".to_owned(),
                None,
                ChangeAction::Export,
                vec![FieldChange::new("failed", None, Some(Value::from(e.to_string())))],
            );
            self.crm.commit(actor, now, &Changes { change_log: vec![failed], ..Default::default() }, Vec::new())?;
            return Err(e);
        }
        verify_store(&*self.crm.store.open_backup(dest)?)
    }
}

impl Audit<'_> {
    /// Checks the change log's hash chain: every entry links to the one before it and hashes to
    /// its stored hash. Keep the returned `head` outside the database to detect truncation too.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// let check = crm.audit().verify(&alice)?;
    /// assert!(check.is_intact());
    /// assert_eq!(check.entries, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn verify(&self, actor: &Actor) -> Result<guanxi_core::AuditCheck> {
        self.crm.authorize_log(actor, Action::Read)?;
        verify_store(&*self.crm.store)
    }

    /// Change-log entries matching a query, oldest first.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let (alice, bob) = (Actor::user("alice")?, Actor::user("bob")?);
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// crm.customers().update(&bob, c.id, 1, CustomerPatch::default().name("乙"))?;
    /// let log = crm.audit().entries(&alice, &ChangeLogQuery { entity_id: Some(c.id.to_string()), ..Default::default() })?;
    /// assert_eq!(log[1].actor.as_str(), "bob");
    /// assert_eq!(log[1].changes[0].to_string(), r#"name: "甲" → "乙""#);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    ///
    /// Reading the audit log is reading everything: it needs the change-log permission with
    /// scope all (a user's own history of a customer is its [`Customers::timeline`](crate::Customers::timeline)).
    pub fn entries(&self, actor: &Actor, query: &ChangeLogQuery) -> Result<Vec<ChangeLogEntry>> {
        let allowed = self.crm.authorize_log(actor, Action::Read)?;
        let mut entries = self.crm.store.change_log(query)?;
        for e in &mut entries {
            allowed.show_changes(e.entity, &mut e.changes);
        }
        Ok(entries)
    }
}

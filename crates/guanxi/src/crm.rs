//! The `Crm` facade: every operation runs permission check → validation → one atomic write
//! batch (records and their change-log entries together) → events after commit.

use std::path::Path;
use std::sync::Arc;

use chrono::{DateTime, FixedOffset, Utc};

use guanxi_core::access::Scoped;
use guanxi_core::changelog::Stamp;
use guanxi_core::prelude::*;
use guanxi_core::scan::{CustomerView, CustomerVisit};
use guanxi_core::{
    Action, Actor, ChangeAction, Clock, Contact, ContactId, Customer, CustomerFilter, CustomerId, DomainEvent,
    DynStore, EntityKind, Error, Event, FieldChange, IdGenerator, LevelRule, MemoryStore, Result, SystemClock,
    ValidContact, ValidCustomer, ValidationContext, ValidationErrors, ValidationReason,
};
use guanxi_sqlite::{SqliteOptions, SqliteStore};

use crate::events::{EventBus, SubscriptionId};
use crate::permission::Allowed;
use crate::write::{Entry, WriteTx};

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
            segment_cache: Default::default(),
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
    pub(crate) level_rule: Option<LevelRule>,
    pub(crate) code_offset: FixedOffset,
    pub(crate) ids: IdGenerator,
    pub(crate) events: EventBus,
    pub(crate) elevations: crate::elevation::Elevations,
    /// The saved segments as last read (what every write's follow-up evaluates).
    pub(crate) segment_cache: crate::saved_segments::SegmentCache,
}

// Handles are shared across threads (and by the language bindings): keep them Send + Sync.
const _: () = {
    const fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Crm>();
};

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
/// let store = guanxi::open_store(dir.path().join("crm.db").to_str().unwrap(), None, guanxi::Durability::Normal)?;
/// # Ok::<(), guanxi::Error>(())
/// ```
///
/// `durability` is SQLite's commit durability ([`Durability`](guanxi_sqlite::Durability));
/// a PostgreSQL server keeps its own (`synchronous_commit`).
pub fn open_store(
    location: &str,
    field_key: Option<guanxi_sqlite::FieldKey>,
    durability: guanxi_sqlite::Durability,
) -> Result<guanxi_core::DynStore> {
    if is_postgres_location(location) {
        let options = guanxi_postgres::PgOptions { field_key, ..Default::default() };
        return Ok(Arc::new(guanxi_postgres::PgStore::connect_with(location, options)?));
    }
    let options = SqliteOptions { field_key, durability, ..SqliteOptions::default() };
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
            return Ok(Crm::builder().store(open_store(location, None, Default::default())?).build());
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
        let mut tx = self.begin(allowed, actor);
        self.stage_customers(&mut tx, actor, allowed, valid)?;
        Ok(tx.commit()?.customers.into_iter().map(|w| allowed.show_customer(w.into_record())).collect())
    }

    /// Adds validated customers (their contacts and new tags) to a write transaction.
    pub(crate) fn stage_customers(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Actor,
        allowed: &Allowed,
        valid: Vec<ValidCustomer>,
    ) -> Result<()> {
        let mut assign: Option<Allowed> = None;
        let now = tx.at();
        let day = now.with_timezone(&self.code_offset).date_naive();
        let first = tx.reserve_sequence(&format!("C{}", day.format("%Y%m%d")), valid.len() as u64)?;
        for (n, v) in valid.into_iter().enumerate() {
            let owner = v.owner.clone().unwrap_or_else(|| actor.user_id().clone());
            let department = v.department.clone().or_else(|| allowed.department_of(&owner));
            for t in &v.tags {
                tx.ensure_tag(t)?;
            }
            let stamp = Stamp::new(actor.user_id().clone(), now);
            let code = Customer::code_for(day, first + n as u64);
            let (customer, contacts) = v.into_customer(CustomerId(self.ids.next(now)), code, owner, department, &stamp);
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
            let id = customer.id;
            tx.insert(customer);
            for (c, primary) in contacts {
                tx.insert(self.new_contact(actor, now, id, c, primary));
            }
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
    pub(crate) fn log_export(&self, actor: &Actor, granted: &Allowed, details: Vec<FieldChange>) -> Result<()> {
        let mut tx = self.begin(granted, actor);
        tx.log(Entry::new(EntityKind::Customer, "export", ChangeAction::Export, details));
        tx.commit().map(drop)
    }

    /// Visits the customers matching `filter` within `allowed`'s scope, each masked as
    /// `allowed` says; returns how many.
    pub(crate) fn visit_customers(
        &self,
        allowed: &Allowed,
        filter: &CustomerFilter,
        visit: &mut CustomerVisit<'_>,
    ) -> Result<u64> {
        let filter = self.scoped_filter(filter, allowed)?;
        if !allowed.mask.restricts(EntityKind::Customer) {
            return self.store.scan_customers(&filter, visit);
        }
        // A masked field is rewritten on a record of the row: the one masking rule serves
        // every read path.
        self.store.scan_customers(&filter, &mut |c| visit(&CustomerView::of(&allowed.show_customer(c.to_customer()?))))
    }

    /// Writes `next` as the new version of `current` under `action`, in its own transaction.
    pub(crate) fn write_customer(
        &self,
        actor: &Actor,
        granted: &Allowed,
        current: &Customer,
        next: Customer,
        action: ChangeAction,
    ) -> Result<Customer> {
        let mut tx = self.begin(granted, actor);
        let next = tx.update(current, next, action);
        tx.commit()?;
        Ok(next)
    }

    // ----- tags -----

    pub(crate) fn set_tag(&self, actor: &Actor, id: CustomerId, tag: &str, linked: bool) -> Result<Customer> {
        let allowed = self.authorize(actor, Action::Update, EntityKind::Customer)?;
        let name = guanxi_core::tag::normalize_tag_name(tag).map_err(|r| Error::invalid("tag", r))?;
        let mut customer = self.live_customer(id)?;
        allowed.check_customer(actor, &customer)?;
        if customer.tags.contains(&name) == linked {
            return Ok(allowed.show_customer(customer));
        }
        let mut tx = self.begin(&allowed, actor);
        tx.link_tag(id, &name, linked)?;
        tx.commit()?;
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
        c.into_contact(ContactId(self.ids.next(now)), customer, primary, &Stamp::new(actor.user_id().clone(), now))
    }

    /// Stages a contact's new version (a removal when it becomes deleted); returns the diff.
    pub(crate) fn stage_contact_update(
        &self,
        tx: &mut WriteTx<'_>,
        current: &Contact,
        next: Contact,
    ) -> Vec<FieldChange> {
        let action = if next.deleted_at.is_some() && current.deleted_at.is_none() {
            ChangeAction::Delete
        } else {
            ChangeAction::Update
        };
        tx.update_logged(current, next, action, Vec::new(), None).1
    }

    /// Checks a contact against a permission through its customer.
    pub(crate) fn check_contact(&self, actor: &Actor, allowed: &Allowed, c: &Contact) -> Result<()> {
        if allowed.scope.all {
            return Ok(());
        }
        let owner =
            self.store.customer(c.customer_id)?.ok_or_else(|| Error::not_found(EntityKind::Customer, c.customer_id))?;
        allowed.check(actor, owner.scope_attrs(), format_args!("contact {} of customer {}", c.name, owner.code))
    }

    /// The contacts of a lookup the actor may read, masked, their clear reads audited.
    pub(crate) fn readable_contacts(
        &self,
        actor: &Actor,
        allowed: &Allowed,
        found: Vec<Contact>,
    ) -> Result<Vec<Contact>> {
        let mut out = Vec::new();
        for c in found {
            if self.check_contact(actor, allowed, &c).is_ok() {
                out.push(c);
            }
        }
        self.audit_sensitive_reads(actor, allowed, &out)?;
        Ok(out.into_iter().map(|c| allowed.show_contact(c)).collect())
    }

    pub(crate) fn live_contact(&self, id: ContactId) -> Result<Contact> {
        self.store
            .contact(id)?
            .filter(|c| c.deleted_at.is_none())
            .ok_or_else(|| Error::not_found(EntityKind::Contact, id))
    }

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
            let check = restored.verify_change_log()?;
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
        let loaded = store.verify_change_log()?;
        if loaded != checked {
            return Err(Error::InvalidState(format!(
                "the restored audit chain ({} entries) differs from the backup's ({} entries)",
                loaded.entries, checked.entries
            )));
        }
        Ok(loaded)
    }

    pub(crate) fn authorize_log(&self, actor: &Actor, action: Action) -> Result<Allowed> {
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

//! The customers handle (with its tags and custom fields): create, read, list, count, export,
//! update, delete and restore customers, their timeline, tag definitions and links, custom field
//! definitions.

use serde_json::Value;

use guanxi_core::access::Scoped;
use guanxi_core::changelog::created_fields;
use guanxi_core::scan::CustomerView;
use guanxi_core::{
    Action, Actor, ChangeAction, CustomFieldDef, Customer, CustomerFilter, CustomerId, CustomerPatch, DomainEvent,
    EntityKind, Error, FieldChange, NewCustomer, Page, PageRequest, Result, Tag, TagWrite, TimelineEntry, TimelineItem,
    ValidationErrors, ValidationReason,
};

use crate::handles::{CustomFields, Customers, Tags};
use crate::plumbing::{check_version, to_json};
use crate::write::Entry;

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

    /// Checks a new customer as [`create`](Self::create) would — permission and every field —
    /// and writes nothing: what a form shows before it submits, and how the bindings report a
    /// bad field of their own together with the core's.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let bad = NewCustomer::new(" ").contact(NewContact::new("张伟").phone("12345"));
    /// let Err(Error::Validation(v)) = crm.customers().check(&alice, bad) else { panic!() };
    /// assert!(v.field("name").is_some() && v.field("contacts[0].phones[0]").is_some());
    /// assert_eq!(crm.customers().count(&alice, &CustomerFilter::default())?, 0);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn check(&self, actor: &Actor, input: NewCustomer) -> Result<()> {
        self.crm.authorize(actor, Action::Create, EntityKind::Customer)?;
        input.validate(&self.crm.validation_context()?).map(drop).map_err(Error::Validation)
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
        let code = guanxi_core::normalize::code(code);
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

    /// Every customer matching `filter`: [`Customers::scan`]'s rows as records.
    pub fn list_all(&self, actor: &Actor, filter: &CustomerFilter) -> Result<Vec<Customer>> {
        collect_records(|visit| self.scan(actor, filter, visit))
    }

    /// Every customer matching `filter`, in id order, handed to `visit` one at a time as a
    /// view borrowing the stored row, masked and scoped exactly as [`Customers::list_all`]'s
    /// records are; returns how many. Nothing is collected: a columnar reader (an Arrow
    /// builder, a file writer) copies each field once. On SQLite the rows and their tags are
    /// read in one snapshot. An error `visit` returns stops the scan and is returned.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create_many(&alice, vec![NewCustomer::new("甲").tag("VIP"), NewCustomer::new("乙")])?;
    /// let mut names = Vec::new();
    /// let n = crm.customers().scan(&alice, &CustomerFilter::default(), |c| {
    ///     names.push(format!("{} {}", c.name, c.tags.iter().collect::<Vec<_>>().join(",")));
    ///     Ok(())
    /// })?;
    /// assert_eq!((n, names), (2, vec!["甲 VIP".to_owned(), "乙 ".to_owned()]));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn scan(
        &self,
        actor: &Actor,
        filter: &CustomerFilter,
        mut visit: impl FnMut(&CustomerView<'_>) -> Result<()> + Send,
    ) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        self.crm.visit_customers(&allowed, filter, &mut visit)
    }

    /// [`Customers::export`] as a scan: the same permission (elevated, when access control is
    /// on), masks and log entry, the rows handed to `visit` as in [`Customers::scan`]. The
    /// export is logged once the scan has finished, with the count of rows visited.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲"))?;
    /// let n = crm.customers().export_scan(&alice, &CustomerFilter::default(), |_| Ok(()))?;
    /// let log = crm.audit().entries(&alice, &ChangeLogQuery::default())?;
    /// assert_eq!((n, log.last().unwrap().action), (1, ChangeAction::Export));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn export_scan(
        &self,
        actor: &Actor,
        filter: &CustomerFilter,
        mut visit: impl FnMut(&CustomerView<'_>) -> Result<()> + Send,
    ) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Export, EntityKind::Customer)?;
        let n = self.crm.visit_customers(&allowed, filter, &mut visit)?;
        self.crm.log_export(
            actor,
            &allowed,
            vec![
                FieldChange::new("rows", None, Some(Value::from(n))),
                FieldChange::new("filter", None, Some(Value::from(format!("{filter:?}")))),
            ],
        )?;
        Ok(n)
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
        collect_records(|visit| self.export_scan(actor, filter, visit))
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
        let mut tx = self.crm.begin(&allowed, actor);
        let (next, diff) = tx.update_logged(&current, next, ChangeAction::Update, Vec::new(), None);
        if diff.is_empty() {
            return Ok(allowed.show_customer(current));
        }
        tx.commit()?;
        Ok(allowed.show_customer(next))
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
        Ok(allowed.show_customer(self.crm.write_customer(actor, &allowed, &current, next, ChangeAction::Delete)?))
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
        let next = Customer { deleted_at: None, ..current.clone() };
        Ok(allowed.show_customer(self.crm.write_customer(actor, &allowed, &current, next, ChangeAction::Restore)?))
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
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Tag)?;
        let mut tag = Tag::new(name, group)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let now = tx.at();
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
        tx.write(
            |c| c.tags.push(TagWrite::Put(tag.clone())),
            Entry::new(EntityKind::Tag, &tag.name, action, diff),
            [DomainEvent::TagDefined { tag: tag.name.clone() }],
        );
        tx.commit()?;
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
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::CustomField)?;
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
        let mut tx = self.crm.begin(&allowed, actor);
        def.created_at = Some(tx.at());
        def.created_by = Some(actor.user_id().clone());
        let entity_id = format!("{}.{}", def.entity, def.key);
        let diff = created_fields(to_json(&def), &["created_at", "created_by"], &[]);
        let event = DomainEvent::CustomFieldDefined { entity: def.entity, key: def.key.clone() };
        tx.write(
            |c| c.custom_fields.push(def.clone()),
            Entry::new(EntityKind::CustomField, entity_id, ChangeAction::Create, diff),
            [event],
        );
        tx.commit()?;
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

/// The rows a scan visits, as records.
fn collect_records(
    scan: impl FnOnce(&mut (dyn FnMut(&CustomerView<'_>) -> Result<()> + Send)) -> Result<u64>,
) -> Result<Vec<Customer>> {
    let mut rows = Vec::new();
    scan(&mut |c| {
        rows.push(c.to_customer()?);
        Ok(())
    })?;
    Ok(rows)
}

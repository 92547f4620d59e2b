//! Customers (客户): [`Customers`].

use crate::crm::Crm;
use crate::*;

/// Customers (客户): create (checked or not), read, list, count, export, update, delete and restore, and the timeline.
///
/// Got from [`Crm`] as `crm.customers()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// let c = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司"))?;
/// assert_eq!(crm.customers().get_by_code(&alice, &c.code)?.id, c.id);
/// assert_eq!(crm.customers().count(&alice, &CustomerFilter::default())?, 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Customers<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Customers<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Customers")
    }
}

impl<'a> Customers<'a> {
    /// Creates a customer, with its contacts and tags, in one transaction. The owner defaults
    /// to the actor; unknown tags are created; the first contact (or the one marked primary)
    /// becomes primary.
    pub fn create(&self, actor: &Actor, input: NewCustomer) -> Result<Customer> {
        self.crm.create_customer(actor, input)
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
        self.crm.create_customers(actor, inputs)
    }

    /// A live customer by id.
    pub fn get(&self, actor: &Actor, id: CustomerId) -> Result<Customer> {
        self.crm.customer(actor, id)
    }

    /// A live customer by its people-facing code.
    pub fn get_by_code(&self, actor: &Actor, code: &str) -> Result<Customer> {
        self.crm.customer_by_code(actor, code)
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
        self.crm.list_customers(actor, filter, page)
    }

    /// Every customer matching `filter`, walking all pages.
    pub fn list_all(&self, actor: &Actor, filter: &CustomerFilter) -> Result<Vec<Customer>> {
        self.crm.all_customers(actor, filter)
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
        self.crm.export_customers(actor, filter)
    }

    /// How many customers match `filter`.
    pub fn count(&self, actor: &Actor, filter: &CustomerFilter) -> Result<u64> {
        self.crm.count_customers(actor, filter)
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
        self.crm.update_customer(actor, id, expected_version, patch)
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
        self.crm.delete_customer(actor, id, expected_version)
    }

    /// Restores a soft-deleted customer.
    pub fn restore(&self, actor: &Actor, id: CustomerId, expected_version: u64) -> Result<Customer> {
        self.crm.restore_customer(actor, id, expected_version)
    }

    /// Everything that happened to a customer (interactions, changes to it and its contacts),
    /// oldest first.
    ///
    /// Change values are masked as the actor's field rules say; interactions are left out for
    /// an actor who may not read them.
    pub fn timeline(&self, actor: &Actor, customer: CustomerId) -> Result<Vec<TimelineEntry>> {
        self.crm.timeline(actor, customer)
    }

    /// Creates a customer after checking it for duplicates, doing what `on_duplicate` says
    /// when some are found. The check and the write see the same rules; a [`OnDuplicate::Block`]
    /// refusal is an [`Error::Duplicate`] on the field of the strongest reason.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let first = crm.customers().create(&alice, NewCustomer::new("星河科技有限公司").contact(NewContact::new("张伟").phone("13812345678")))?;
    /// let again = || NewCustomer::new("星河科技").tag("展会").contact(NewContact::new("李娜").phone("13900001111"));
    /// let err = crm.customers().create_checked(&alice, again(), OnDuplicate::Block).unwrap_err();
    /// assert!(matches!(err, Error::Duplicate { ref field, .. } if field == "name"));
    /// let linked = crm.customers().create_checked(&alice, again(), OnDuplicate::Link)?;
    /// assert_eq!((linked.created, linked.customer.id), (false, first.id));
    /// assert!(linked.customer.tags.contains("展会"));
    /// assert_eq!(crm.contacts().list(&alice, first.id)?.len(), 2); // 李娜 added
    /// let warned = crm.customers().create_checked(&alice, again(), OnDuplicate::Warn)?;
    /// assert!(warned.created && warned.duplicates[0].id == Some(first.id));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create_checked(
        &self,
        actor: &Actor,
        input: NewCustomer,
        on_duplicate: OnDuplicate,
    ) -> Result<CheckedCreate> {
        self.crm.create_customer_checked(actor, input, on_duplicate)
    }
}

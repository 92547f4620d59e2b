//! Audit (审计): [`Audit`].

use crate::crm::Crm;
use crate::*;

/// Audit (审计): the tamper-evident change log and its verification.
///
/// Got from [`Crm`] as `crm.audit()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
/// let check = crm.audit().verify(&alice)?;
/// assert_eq!((check.entries, check.broken_at), (1, None));
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Audit<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Audit<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Audit")
    }
}

impl<'a> Audit<'a> {
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
        self.crm.verify_audit(actor)
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
        self.crm.change_log(actor, query)
    }
}

//! The audit handle: the tamper-evident change log, read and verified.

use guanxi_core::{Action, Actor, ChangeLogEntry, ChangeLogQuery, Result};

use crate::handles::Audit;

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
        self.crm.store.verify_change_log()
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

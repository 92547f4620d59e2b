//! Duplicates (查重): [`Duplicates`].

use crate::crm::Crm;
use crate::*;
use guanxi_core::dedup::*;

/// Duplicates (查重): the match rules, the check of a new customer, the duplicates of a stored one, the whole-base scan, pairs marked not duplicate, and merging.
///
/// Got from [`Crm`] as `crm.duplicates()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// crm.customers().create(&alice, NewCustomer::new("华为技术有限公司"))?;
/// let found = crm.duplicates().find(&alice, &NewCustomer::new("华为技术股份有限公司"))?;
/// assert_eq!(found.len(), 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct Duplicates<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for Duplicates<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("Duplicates")
    }
}

impl<'a> Duplicates<'a> {
    /// The rules duplicates are judged by ([`MatchRules::default`] until others are stored).
    pub fn rules(&self, actor: &Actor) -> Result<MatchRules> {
        self.crm.match_rules(actor)
    }

    /// Stores the rules duplicates are judged by, after checking them.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let mut rules = guanxi::dedup::MatchRules::default();
    /// rules.threshold = 0.9;
    /// crm.duplicates().set_rules(&alice, rules.clone())?;
    /// assert_eq!(crm.duplicates().rules(&alice)?, rules);
    /// rules.threshold = 0.0;
    /// assert!(matches!(crm.duplicates().set_rules(&alice, rules), Err(Error::Validation(_))));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn set_rules(&self, actor: &Actor, rules: MatchRules) -> Result<MatchRules> {
        self.crm.set_match_rules(actor, rules)
    }

    /// The likely duplicates of a customer not yet created, best first: the stored customers
    /// sharing a match key with it (same phone or e-mail, same or nearly the same name), scored
    /// by the match rules, at or above the threshold. Customers the actor may not read are
    /// included, by code and name only (a rep must learn that a customer already exists
    /// elsewhere, 撞单), and so are no details of them.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟").phone("13812345678")))?;
    /// let found = crm.duplicates().find(&alice, &NewCustomer::new("华为技术股份有限公司"))?;
    /// assert_eq!(found[0].id, Some(c.id));
    /// assert_eq!(found[0].reasons[0].to_string(), format!("same name as {} 华为技术有限公司", c.code));
    /// let by_phone = crm.duplicates().find(&alice, &NewCustomer::new("某公司").contact(NewContact::new("王").phone("+86 138-1234-5678")))?;
    /// assert_eq!(by_phone[0].reasons[0].field, guanxi::dedup::MatchField::Phone);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn find(&self, actor: &Actor, input: &NewCustomer) -> Result<Vec<MatchCandidate>> {
        self.crm.find_duplicates(actor, input)
    }

    /// The likely duplicates of a stored customer, best first, leaving out pairs marked not
    /// duplicate.
    pub fn of(&self, actor: &Actor, id: CustomerId) -> Result<Vec<MatchCandidate>> {
        self.crm.duplicates_of(actor, id)
    }

    /// Scans every live customer matching `filter` that the actor may read for clusters of
    /// likely duplicates, handing each to `on_cluster` as it is found, and returns what the
    /// scan did. Pairs marked not duplicate are left out. Only pairs sharing a blocking key are
    /// compared (see `guanxi_core::dedup::scan`), never all pairs.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create_many(&alice, vec![
    ///     NewCustomer::new("华为技术有限公司"),
    ///     NewCustomer::new("华为技术股份有限公司"),
    ///     NewCustomer::new("星河科技"),
    /// ])?;
    /// let mut clusters = vec![];
    /// let stats = crm.duplicates().scan(&alice, &CustomerFilter::default(), |c| clusters.push(c))?;
    /// assert_eq!((stats.profiles, clusters.len(), clusters[0].members.len()), (3, 1, 2));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn scan(
        &self,
        actor: &Actor,
        filter: &CustomerFilter,
        on_cluster: impl FnMut(DuplicateCluster),
    ) -> Result<ScanStats> {
        self.crm.scan_duplicates(actor, filter, on_cluster)
    }

    /// Marks two customers as not duplicates of each other: neither the scan nor
    /// [`Duplicates::of`](crate::Duplicates::of) proposes the pair again. Logged on both customers.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let a = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司"))?;
    /// let b = crm.customers().create(&alice, NewCustomer::new("华为技术股份有限公司"))?;
    /// assert_eq!(crm.duplicates().of(&alice, a.id)?.len(), 1);
    /// crm.duplicates().mark_not_duplicate(&alice, a.id, b.id)?;
    /// assert!(crm.duplicates().of(&alice, a.id)?.is_empty());
    /// assert!(crm.duplicates().not_duplicates(&alice)?.contains(b.id, a.id));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn mark_not_duplicate(&self, actor: &Actor, a: CustomerId, b: CustomerId) -> Result<()> {
        self.crm.mark_not_duplicate(actor, a, b)
    }

    /// The pairs marked not duplicate.
    pub fn not_duplicates(&self, actor: &Actor) -> Result<NotDuplicates> {
        self.crm.not_duplicates(actor)
    }

    /// What merging would do, without doing it (a dry run): see [`MergePlan`]. Needs the merge
    /// permission (a sensitive operation: elevated, when access control is on) on every record.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::dedup::{MergeRequest, Survivorship};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let a = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟")))?;
    /// let b = crm.customers().create(&alice, NewCustomer::new("华为技术股份有限公司").address("深圳市龙岗区坂田").contact(NewContact::new("李娜")))?;
    /// let plan = crm.duplicates().plan_merge(&alice, &MergeRequest::new(a.id, [b.id]).policy(Survivorship::MostComplete))?;
    /// assert_eq!(plan.survivor.address.as_deref(), Some("深圳市龙岗区坂田"));
    /// assert_eq!(plan.contacts.len(), 1);
    /// assert_eq!(crm.contacts().list(&alice, a.id)?.len(), 1); // nothing written
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn plan_merge(&self, actor: &Actor, request: &MergeRequest) -> Result<MergePlan> {
        self.crm.plan_merge(actor, request)
    }

    /// Merges duplicates into a survivor in one transaction: the survivor takes the values the
    /// plan chose and the union of the tags; contacts, follow-ups, opportunities, tickets and
    /// tasks move to it; each merged record stays as a deleted tombstone whose `merged_into`
    /// names the survivor. Logged on every record, with a [`DomainEvent::CustomersMerged`].
    /// Undo with [`Duplicates::undo_merge`](crate::Duplicates::undo_merge).
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::dedup::MergeRequest;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let a = crm.customers().create(&alice, NewCustomer::new("华为技术有限公司").contact(NewContact::new("张伟")))?;
    /// let b = crm.customers().create(&alice, NewCustomer::new("华为技术股份有限公司").tag("VIP").contact(NewContact::new("李娜")))?;
    /// let done = crm.duplicates().merge(&alice, &MergeRequest::new(a.id, [b.id]))?;
    /// assert_eq!(crm.contacts().list(&alice, a.id)?.len(), 2);
    /// assert!(crm.customers().get(&alice, a.id)?.tags.contains("VIP"));
    /// assert_eq!(crm.duplicates().merged_into(&alice, b.id)?, Some(a.id));
    /// crm.duplicates().undo_merge(&alice, &done.merge_id)?;
    /// assert_eq!(crm.contacts().list(&alice, b.id)?[0].name, "李娜");
    /// assert_eq!(crm.duplicates().merged_into(&alice, b.id)?, None);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn merge(&self, actor: &Actor, request: &MergeRequest) -> Result<MergeOutcome> {
        self.crm.merge_customers(actor, request)
    }

    /// Undoes a merge: every record it changed returns to its state before the merge (with a
    /// new version), the survivor loses the tags it gained, the follow-ups move back, and the
    /// tombstones are live again. Refused with [`Error::Conflict`] when one of those records
    /// changed since the merge (undo would lose that change), and with
    /// [`Error::InvalidState`] when the merge was already undone. Records added to the
    /// survivor after the merge stay on it.
    pub fn undo_merge(&self, actor: &Actor, merge_id: &str) -> Result<()> {
        self.crm.undo_merge(actor, merge_id)
    }

    /// The survivor a merged customer (a tombstone) was merged into; None for a customer that
    /// was not merged, or whose merge was undone.
    pub fn merged_into(&self, actor: &Actor, id: CustomerId) -> Result<Option<CustomerId>> {
        self.crm.merged_into(actor, id)
    }
}

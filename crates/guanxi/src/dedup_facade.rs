//! Duplicates through the facade: the check on create, the whole-base scan, and the pairs
//! people marked "not a duplicate". The matching itself is `guanxi_core::dedup`.

use std::collections::BTreeSet;

use guanxi_core::dedup::{
    BlockingStats, DuplicateCluster, MatchCandidate, MatchProfile, MatchRules, NotDuplicates, Pairs,
    ProbabilisticModel, ScanOptions, ScanStats, Scoring, candidate_pairs, match_keys,
};
use guanxi_core::{
    Action, Actor, ChangeAction, Customer, CustomerFilter, CustomerId, DomainEvent, EntityKind, Error, FieldChange,
    NewCustomer, PageRequest, Result, ValidCustomer,
};

use crate::crm::Crm;
use crate::handles::{Customers, Duplicates};
use crate::permission::Allowed;
use crate::plumbing::decode;
use crate::write::{Entry, WriteTx};
use guanxi_core::StoreView;

const MATCH_RULES: &str = "dedup.rules";
const NOT_DUPLICATES: &str = "dedup.not_duplicates";

/// Stored profiles read during one operation, by id, with whether the reader may read the
/// customer (None: deleted).
#[derive(Debug, Default)]
pub(crate) struct ProfileCache(std::collections::HashMap<CustomerId, Option<(MatchProfile, bool)>>);

impl ProfileCache {
    /// Forgets a customer whose profile a write changed.
    pub(crate) fn forget(&mut self, id: CustomerId) {
        self.0.remove(&id);
    }

    /// A live customer's profile, with whether the reader may read it (None: deleted or
    /// absent), read from `store` once per cache.
    pub(crate) fn get(
        &mut self,
        store: &dyn StoreView,
        reader: &Reader,
        id: CustomerId,
    ) -> Result<Option<&(MatchProfile, bool)>> {
        use std::collections::hash_map::Entry;
        let kept = match self.0.entry(id) {
            Entry::Occupied(e) => e.into_mut(),
            Entry::Vacant(e) => e.insert(match store.customer(id)?.filter(|c| !c.is_deleted()) {
                Some(c) => Some((MatchProfile::of(&c, &store.contacts_of(id)?), reader.admits(&c))),
                None => None,
            }),
        };
        Ok(kept.as_ref())
    }

    /// Keeps the cache under `max` profiles (emptied when past it: bounded, and simple).
    pub(crate) fn bound(&mut self, max: usize) {
        if self.0.len() > max {
            self.0.clear();
        }
    }
}

/// Who duplicate candidates are shown to: the reader's permission to read customers (none,
/// without one). Every candidate passes through [`Reader::show`].
#[derive(Debug)]
pub(crate) struct Reader(Option<Allowed>);

impl Reader {
    /// Whether the reader may read this customer.
    pub(crate) fn admits(&self, c: &Customer) -> bool {
        use guanxi_core::access::Scoped;
        self.0.as_ref().is_some_and(|read| read.scope.admits(c.scope_attrs()))
    }

    /// A candidate as the reader may see it (withheld or masked).
    pub(crate) fn show(&self, m: MatchCandidate, readable: bool) -> MatchCandidate {
        match &self.0 {
            Some(read) => m.for_reader(readable, &read.mask),
            None => m.for_reader(false, &guanxi_core::access::FieldMask::none()),
        }
    }
}

/// What [`Customers::create_checked`](crate::Customers::create_checked) does when the new customer has likely duplicates.
///
/// ```
/// use guanxi::OnDuplicate;
/// assert_eq!(OnDuplicate::default(), OnDuplicate::Warn);
/// ```
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash)]
pub enum OnDuplicate {
    /// Create it without looking.
    Allow,
    /// Create it and report the candidates.
    #[default]
    Warn,
    /// Refuse with [`Error::Duplicate`] naming the best candidate; nothing is written.
    Block,
    /// Create nothing: add the input's tags, and the contacts the existing record lacks, to
    /// the best candidate, and return it.
    Link,
}

/// The result of [`Customers::create_checked`](crate::Customers::create_checked).
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let done = crm.customers().create_checked(&Actor::user("a")?, NewCustomer::new("甲"), OnDuplicate::Warn)?;
/// assert!(done.created && done.duplicates.is_empty());
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq)]
pub struct CheckedCreate {
    /// The new customer, or (when linked) the existing one.
    pub customer: Customer,
    /// False when the input was linked to an existing customer.
    pub created: bool,
    /// The likely duplicates found, best first (empty with [`OnDuplicate::Allow`]).
    pub duplicates: Vec<MatchCandidate>,
}

/// What [`Duplicates::blocking_report`](crate::Duplicates::blocking_report) found: of the
/// known duplicate pairs, how many blocking compares and how many then score as duplicates.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct BlockingReport {
    /// What blocking did over every live customer the actor may read.
    pub stats: BlockingStats,
    /// Known pairs counted (both customers live and readable).
    pub known: u64,
    /// Of them, compared by blocking.
    pub compared: u64,
    /// Of those, scored at or above the threshold.
    pub matched: u64,
    /// Known pairs blocking never compares: blocking loses them.
    pub missed: Vec<(CustomerId, CustomerId)>,
    /// Known pairs compared but scored below the threshold: scoring loses them.
    pub unmatched: Vec<(CustomerId, CustomerId)>,
}

impl BlockingReport {
    /// `compared / known`: the recall no rule can rise above (1 with no known pair).
    pub fn ceiling(&self) -> f64 {
        if self.known == 0 { 1.0 } else { self.compared as f64 / self.known as f64 }
    }
}

/// The profile of a validated input, before it has an id or a code.
pub(crate) fn input_profile(v: &ValidCustomer) -> MatchProfile {
    let mut p = MatchProfile::new(CustomerId(uuid::Uuid::nil()), "", &v.name, v.kind);
    if let Some(a) = &v.address {
        p = p.address(a);
    }
    for (key, value) in &v.custom {
        p = p.custom(key, value);
    }
    for id in &v.identifiers {
        p = p.identifier(id.scheme, &id.value);
    }
    for c in &v.contacts {
        p = p.contact_values(&c.phones, &c.emails, c.id_number.as_ref());
    }
    p
}

/// The stored customers the rules' blocking puts beside a profile by equal values the
/// stores can look up: a resident identity number on a contact (its lookup index) and a
/// custom field's date, number, decimal or choice, for every exact or sorted-neighbourhood
/// key on such a field. A value shared by more customers than the block cap finds none, as
/// in the scan. (Name, phone, e-mail and customer identifier keys are the stored match keys;
/// phonetic, prefix and q-gram keys, and windows beyond equal values, work in scans only.)
fn blocked_by_values(store: &dyn StoreView, profile: &MatchProfile, rules: &MatchRules) -> Result<Vec<CustomerId>> {
    use guanxi_core::dedup::{BlockingKey, IdScheme, MatchField};
    use guanxi_core::{CustomFilter, CustomValue, IdNumber};
    let cap = rules.blocking.max_block as usize;
    let mut ids = Vec::new();
    for key in &rules.blocking.keys {
        if !matches!(key, BlockingKey::Exact { .. } | BlockingKey::SortedNeighbourhood { .. }) {
            continue;
        }
        match key.field() {
            MatchField::Identifier(scheme) if scheme.is_none_or(|s| s == IdScheme::CnResident) => {
                for (s, value) in &profile.identifiers {
                    let Ok(number) = IdNumber::parse(value) else { continue };
                    if *s != IdScheme::CnResident {
                        continue;
                    }
                    let holders = store.contacts_by_id_number(&number)?;
                    if holders.len() <= cap {
                        ids.extend(holders.iter().filter(|c| c.deleted_at.is_none()).map(|c| c.customer_id));
                    }
                }
            }
            MatchField::Custom(field) => {
                let Some(value) = profile.custom.get(field) else { continue };
                // Text keys are kept folded: the stored value's case is not known.
                if matches!(value, CustomValue::Text(_) | CustomValue::Select(_) | CustomValue::MultiSelect(_)) {
                    continue;
                }
                let filter = CustomerFilter {
                    custom: vec![CustomFilter::new(field.clone(), value.clone())],
                    deleted: guanxi_core::Deleted::Exclude,
                    ..CustomerFilter::default()
                };
                let page = store.list_customers(&filter, &PageRequest::first(cap + 1))?;
                if page.items.len() <= cap {
                    ids.extend(page.items.iter().map(|c| c.id));
                }
            }
            _ => {}
        }
    }
    Ok(ids)
}

impl Crm {
    pub(crate) fn load_match_rules(&self) -> Result<MatchRules> {
        self.store.setting(MATCH_RULES)?.map_or_else(|| Ok(MatchRules::default()), |s| decode(&s))
    }

    /// The reader of duplicate candidates for a call authorized as `allowed`.
    pub(crate) fn reader(&self, allowed: &Allowed, actor: &Actor) -> Reader {
        // No read permission at all: every candidate is withheld.
        Reader(self.reauthorize(allowed, actor, Action::Read, EntityKind::Customer).ok())
    }

    pub(crate) fn candidates(
        &self,
        reader: &Reader,
        profile: &MatchProfile,
        rules: &MatchRules,
        not_duplicates: &NotDuplicates,
    ) -> Result<Vec<MatchCandidate>> {
        let found =
            self.raw_candidates(self.view(), reader, profile, rules, not_duplicates, &mut ProfileCache::default())?;
        Ok(found.into_iter().map(|(m, readable)| reader.show(m, readable)).collect())
    }

    /// The candidates of [`Crm::candidates`] as read from `store`, best first, each with
    /// whether the reader may read it, BEFORE anything is withheld: the caller passes each
    /// through [`Reader::show`] (an import first tells customers its own earlier rows created
    /// from the rest). Each stored profile is read once per `cache` (an import checks many
    /// rows against the same neighbours).
    pub(crate) fn raw_candidates(
        &self,
        store: &dyn StoreView,
        reader: &Reader,
        profile: &MatchProfile,
        rules: &MatchRules,
        not_duplicates: &NotDuplicates,
        cache: &mut ProfileCache,
    ) -> Result<Vec<(MatchCandidate, bool)>> {
        let mut ids = store.customers_by_match_keys(&match_keys(profile), ScanOptions::default().max_block)?;
        ids.extend(blocked_by_values(store, profile, rules)?);
        ids.sort();
        ids.dedup();
        let mut found = Vec::new();
        for id in ids.into_iter().filter(|id| *id != profile.id && !not_duplicates.contains(profile.id, *id)) {
            if let Some((other, readable)) = cache.get(store, reader, id)? {
                found.extend(rules.duplicate(profile, other).map(|m| (m, *readable)));
            }
        }
        // Ordered before anything is withheld, so the order says nothing about hidden codes.
        found.sort_by(|(a, _), (b, _)| b.score.total_cmp(&a.score).then_with(|| a.code.cmp(&b.code)));
        Ok(found)
    }

    /// Adds a validated input's tags, and those of its contacts the customer lacks, to an
    /// existing customer, in one transaction.
    pub(crate) fn link_into(&self, actor: &Actor, id: CustomerId, valid: ValidCustomer) -> Result<Customer> {
        let allowed = self.authorize(actor, Action::Update, EntityKind::Customer)?;
        let mut tx = self.begin(&allowed, actor);
        self.stage_link(&mut tx, actor, &allowed, id, valid, false)?;
        tx.commit()?;
        let allowed = self.reauthorize(&allowed, actor, Action::Read, EntityKind::Customer)?;
        Ok(allowed.show_customer(self.live_customer(id)?))
    }

    /// Stages the link of a validated input to an existing customer: its tags, and its
    /// contacts the customer lacks (no shared phone or e-mail, and no contact of that name
    /// without either). With `overwrite`, the input's non-empty fields also replace the
    /// customer's (the kind stays; the status only when the input says other than potential).
    pub(crate) fn stage_link(
        &self,
        tx: &mut WriteTx<'_>,
        actor: &Actor,
        allowed: &Allowed,
        id: CustomerId,
        valid: ValidCustomer,
        overwrite: bool,
    ) -> Result<CustomerId> {
        let (store, now) = (tx.view(), tx.at());
        let allowed = self.reauthorize(allowed, actor, Action::Update, EntityKind::Customer)?;
        let customer = store
            .customer(id)?
            .filter(|c| !c.is_deleted())
            .ok_or_else(|| Error::not_found(EntityKind::Customer, id))?;
        allowed.check_customer(actor, &customer)?;
        let mut next = customer.clone();
        // Identifiers are added, as tags and contacts are: a linked row's code is kept.
        next.add_identifiers(valid.identifiers.iter().cloned());
        if overwrite {
            next.industry = valid.industry.or(next.industry);
            next.size = valid.size.or(next.size);
            next.source = valid.source.clone().or(next.source);
            next.level = valid.level.or(next.level);
            next.region = valid.region.clone().or(next.region);
            next.address = valid.address.clone().or(next.address);
            next.owner = valid.owner.clone().or(next.owner);
            if valid.status != guanxi_core::LifecycleStatus::default() {
                next.status = valid.status;
            }
            for (k, v) in &valid.custom {
                next.custom.insert(k.clone(), v.clone());
            }
        }
        if next != customer {
            tx.update(&customer, next, ChangeAction::Update);
        }
        for t in valid.tags.iter().filter(|t| !customer.tags.contains(*t)) {
            tx.link_tag(id, t, true)?;
        }
        let existing = store.contacts_of(id)?;
        let phones: BTreeSet<&str> = existing.iter().flat_map(|c| c.phones.iter().map(|p| p.as_str())).collect();
        let emails: BTreeSet<&str> = existing.iter().flat_map(|c| c.emails.iter().map(|e| e.as_str())).collect();
        let mut added = 0;
        for c in valid.contacts {
            let known = c.phones.iter().any(|p| phones.contains(p.as_str()))
                || c.emails.iter().any(|e| emails.contains(e.as_str()))
                || (c.phones.is_empty() && c.emails.is_empty() && existing.iter().any(|x| x.name == c.name));
            if !known {
                let primary = existing.is_empty() && added == 0;
                tx.insert(self.new_contact(actor, now, id, c, primary));
                added += 1;
            }
        }
        Ok(id)
    }

    /// The match profiles of the customers matching `filter` (read a page at a time).
    pub(crate) fn profiles(&self, filter: &CustomerFilter) -> Result<Vec<MatchProfile>> {
        Ok(self.profiles_with(filter, |_| ())?.into_iter().map(|(p, ())| p).collect())
    }

    /// [`Crm::profiles`], each with what `tag` says of its customer.
    pub(crate) fn profiles_with<T>(
        &self,
        filter: &CustomerFilter,
        tag: impl Fn(&Customer) -> T,
    ) -> Result<Vec<(MatchProfile, T)>> {
        let mut profiles = Vec::new();
        let mut page = PageRequest::first(1000);
        loop {
            let p = self.store.list_customers(filter, &page)?;
            for c in &p.items {
                profiles.push((MatchProfile::of(c, &self.store.contacts_of(c.id)?), tag(c)));
            }
            match p.next {
                Some(next) => page = PageRequest::after(next, 1000),
                None => return Ok(profiles),
            }
        }
    }

    pub(crate) fn load_not_duplicates(&self) -> Result<NotDuplicates> {
        Ok(self.store.setting(NOT_DUPLICATES)?.as_ref().map(decode).transpose()?.unwrap_or_default())
    }
}

impl Customers<'_> {
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
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Customer)?;
        let valid = input.validate(&self.crm.validation_context()?).map_err(Error::Validation)?;
        let duplicates = match on_duplicate {
            OnDuplicate::Allow => Vec::new(),
            _ => {
                let reader = self.crm.reader(&allowed, actor);
                self.crm.candidates(
                    &reader,
                    &input_profile(&valid),
                    &self.crm.load_match_rules()?,
                    &NotDuplicates::new(),
                )?
            }
        };
        if let Some(best) = duplicates.first() {
            let refuse = |best: &MatchCandidate| {
                let field = best.reasons.first().map_or("name", |r| r.field.as_str());
                let who = if best.is_withheld() {
                    guanxi_core::dedup::WITHHELD.to_owned()
                } else {
                    format!("{} {}", best.code, best.name)
                };
                Error::Duplicate {
                    entity: EntityKind::Customer,
                    field: field.to_owned(),
                    value: format!("{who} (score {:.2})", best.score),
                }
            };
            match on_duplicate {
                OnDuplicate::Block => return Err(refuse(best)),
                OnDuplicate::Link => {
                    // The best match is outside the actor's scope: it cannot be linked to, and
                    // creating would make the duplicate the check is for.
                    let Some(id) = best.id else { return Err(refuse(best)) };
                    let customer = self.crm.link_into(actor, id, valid)?;
                    return Ok(CheckedCreate { customer, created: false, duplicates });
                }
                OnDuplicate::Allow | OnDuplicate::Warn => {}
            }
        }
        let mut created = self.crm.insert_customers(actor, &allowed, vec![valid])?;
        let customer = created.pop().ok_or_else(|| Error::InvalidState("no customer created".into()))?;
        Ok(CheckedCreate { customer, created: true, duplicates })
    }
}

impl Duplicates<'_> {
    /// The rules duplicates are judged by ([`MatchRules::default`] until others are stored).
    pub fn rules(&self, actor: &Actor) -> Result<MatchRules> {
        self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        self.crm.load_match_rules()
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
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Customer)?;
        rules.validate()?;
        let stored = self.crm.store.setting(MATCH_RULES)?;
        let before =
            stored.as_ref().map(|s| decode::<MatchRules>(s).map(|r| crate::plumbing::to_json(&r))).transpose()?;
        let event = DomainEvent::SalesConfigured { key: MATCH_RULES.to_owned() };
        self.crm.put_setting(
            actor,
            &allowed,
            MATCH_RULES.to_owned(),
            stored,
            &rules,
            before,
            EntityKind::Customer,
            event,
        )?;
        Ok(rules)
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
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Customer)?;
        let valid = input.clone().validate(&self.crm.validation_context()?).map_err(Error::Validation)?;
        let reader = self.crm.reader(&allowed, actor);
        self.crm.candidates(&reader, &input_profile(&valid), &self.crm.load_match_rules()?, &NotDuplicates::new())
    }

    /// The likely duplicates of a stored customer, best first, leaving out pairs marked not
    /// duplicate.
    pub fn of(&self, actor: &Actor, id: CustomerId) -> Result<Vec<MatchCandidate>> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let c = self.crm.live_customer(id)?;
        allowed.check_customer(actor, &c)?;
        let profile = MatchProfile::of(&c, &self.crm.store.contacts_of(id)?);
        let reader = self.crm.reader(&allowed, actor);
        self.crm.candidates(&reader, &profile, &self.crm.load_match_rules()?, &self.crm.load_not_duplicates()?)
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
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let profiles = self.scoped_profiles(&allowed, filter)?;
        self.scan_profiles(allowed, &profiles, Pairs::Within, on_cluster)
    }

    /// Links one set of customers against another (two imports, two sources, two regions):
    /// like [`Duplicates::scan`], but only pairs with one customer from `left` and one from
    /// `right` are compared, so clusters join records across the two sides. A customer
    /// matching both filters is on both sides (never paired with itself).
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create_many(&alice, vec![
    ///     NewCustomer::new("华为技术有限公司").tag("展会"),
    ///     NewCustomer::new("华为技术股份有限公司").tag("官网"),
    ///     NewCustomer::new("星河科技").tag("官网"),
    ///     NewCustomer::new("星河科技有限公司").tag("官网"),
    /// ])?;
    /// let side = |t: &str| CustomerFilter { tags: vec![t.into()], ..Default::default() };
    /// let mut clusters = vec![];
    /// let stats = crm.duplicates().link(&alice, &side("展会"), &side("官网"), |c| clusters.push(c))?;
    /// // 星河科技 twice is a pair within one side: not a link.
    /// assert_eq!((stats.profiles, clusters.len(), clusters[0].members.len()), (4, 1, 2));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn link(
        &self,
        actor: &Actor,
        left: &CustomerFilter,
        right: &CustomerFilter,
        on_cluster: impl FnMut(DuplicateCluster),
    ) -> Result<ScanStats> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let mut profiles = self.scoped_profiles(&allowed, left)?;
        let pairs = Pairs::Across { left: profiles.len() };
        profiles.extend(self.scoped_profiles(&allowed, right)?);
        self.scan_profiles(allowed, &profiles, pairs, on_cluster)
    }

    /// Estimates the probabilistic model of the stored rules from the customers matching
    /// `filter` that the actor may read (EM over the pairs their blocking compares), stores it
    /// in the rules, and returns them. The check on create, imports and lead conversion then
    /// score by it; a scan uses it instead of estimating afresh. Needs permission to configure
    /// customers, and rules with probabilistic scoring.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::dedup::{MatchRules, Scoring};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.duplicates().set_rules(&alice, MatchRules::people("date_of_birth"))?;
    /// crm.customers().create_many(&alice, vec![
    ///     NewCustomer::new("张伟").kind(CustomerKind::Individual).address("北京市朝阳区建国路1号"),
    ///     NewCustomer::new("张伟").kind(CustomerKind::Individual).address("北京市朝阳区建国路1号"),
    ///     NewCustomer::new("李娜").kind(CustomerKind::Individual).address("上海市徐汇区漕溪北路8号"),
    /// ])?;
    /// let trained = crm.duplicates().train(&alice, &CustomerFilter::default())?;
    /// assert!(matches!(trained.scoring, Scoring::Probabilistic { model: Some(_) }));
    /// assert!(matches!(crm.duplicates().train(&alice, &CustomerFilter::default()), Ok(_)));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn train(&self, actor: &Actor, filter: &CustomerFilter) -> Result<MatchRules> {
        let (read, mut rules) = self.probabilistic_rules(actor, "training")?;
        let profiles = self.scoped_profiles(&read, filter)?;
        let (pairs, _) = candidate_pairs(&profiles, &rules.blocking, Pairs::Within);
        let patterns = pairs.iter().map(|&(i, j)| rules.pattern(&profiles[i as usize], &profiles[j as usize]));
        let model = ProbabilisticModel::estimate_from(patterns, rules.rules.len());
        rules.scoring = Scoring::Probabilistic { model: Some(model) };
        self.set_rules(actor, rules)
    }

    /// Learns the probabilistic model from labelled pairs instead of estimating it: `same`
    /// lists pairs people confirmed are one customer (a reviewed sample), and the pairs marked
    /// not duplicate ([`Duplicates::mark_not_duplicate`]) are the other kind. m and u are
    /// counted from what each rule finds for them, the prior from their mix; the model is
    /// stored in the rules, which are returned. Needs permission to configure customers,
    /// rules with probabilistic scoring, and pairs of both kinds among live customers the
    /// actor may read.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::dedup::{MatchRules, Scoring};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.duplicates().set_rules(&alice, MatchRules::people("date_of_birth"))?;
    /// let p = |name: &str, address: &str| NewCustomer::new(name).kind(CustomerKind::Individual).address(address);
    /// let made = crm.customers().create_many(&alice, vec![
    ///     p("张伟", "北京市朝阳区建国路1号"), p("张玮", "北京市朝阳区建国路1号"), p("张伟", "上海市徐汇区漕溪北路8号"),
    /// ])?;
    /// crm.duplicates().mark_not_duplicate(&alice, made[0].id, made[2].id)?;
    /// let learned = crm.duplicates().learn(&alice, &[(made[0].id, made[1].id)])?;
    /// let Scoring::Probabilistic { model: Some(model) } = learned.scoring else { unreachable!() };
    /// assert!(model.fields[3].m > model.fields[3].u); // the address tells them apart
    /// assert!(crm.duplicates().learn(&alice, &[]).is_err()); // no confirmed pair
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn learn(&self, actor: &Actor, same: &[(CustomerId, CustomerId)]) -> Result<MatchRules> {
        let (read, mut rules) = self.probabilistic_rules(actor, "learning")?;
        let reader = Reader(Some(read));
        let mut cache = ProfileCache::default();
        let store = self.crm.view();
        // A pair counts when the actor may read both customers.
        let mut profile = |id| -> Result<Option<MatchProfile>> {
            Ok(cache.get(store, &reader, id)?.filter(|(_, readable)| *readable).map(|(p, _)| p.clone()))
        };
        let not_duplicates = self.crm.load_not_duplicates()?;
        let labelled_pairs = same.iter().map(|p| (*p, true)).chain(not_duplicates.pairs().map(|p| (p, false)));
        let mut labelled = Vec::new();
        for ((a, b), is_same) in labelled_pairs {
            if let (Some(pa), Some(pb)) = (profile(a)?, profile(b)?) {
                labelled.push((rules.pattern(&pa, &pb), is_same));
            }
        }
        let model = ProbabilisticModel::learn(&labelled, rules.rules.len()).ok_or_else(|| {
            Error::invalid(
                "same",
                guanxi_core::ValidationReason::Invalid {
                    detail: "learning needs pairs confirmed as one customer and pairs marked not duplicate".into(),
                },
            )
        })?;
        rules.scoring = Scoring::Probabilistic { model: Some(model) };
        self.set_rules(actor, rules)
    }

    /// How much of a set of pairs known to be duplicates (a labelled sample, pairs people
    /// confirmed) the stored rules' blocking compares at all, and how many of those score at
    /// or above the threshold: whether blocking or scoring loses a pair. Pairs with a customer
    /// the actor may not read, or not live, are left out.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let made = crm.customers().create_many(&alice, vec![
    ///     NewCustomer::new("华为技术有限公司"),
    ///     NewCustomer::new("华为技术股份有限公司"),
    ///     NewCustomer::new("Huawei Technologies"),
    /// ])?;
    /// let known = [(made[0].id, made[1].id), (made[0].id, made[2].id)];
    /// let report = crm.duplicates().blocking_report(&alice, &known)?;
    /// assert_eq!((report.known, report.compared, report.matched), (2, 1, 1));
    /// assert_eq!(report.missed, [(made[0].id, made[2].id)]); // blocking never compares them
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn blocking_report(&self, actor: &Actor, known: &[(CustomerId, CustomerId)]) -> Result<BlockingReport> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        let rules = self.crm.load_match_rules()?;
        let profiles = self.scoped_profiles(&allowed, &CustomerFilter::default())?;
        let index: std::collections::HashMap<CustomerId, u32> =
            profiles.iter().enumerate().map(|(i, p)| (p.id, i as u32)).collect();
        let (compared, stats) = candidate_pairs(&profiles, &rules.blocking, Pairs::Within);
        let mut report = BlockingReport { stats, ..BlockingReport::default() };
        for &(a, b) in known {
            let (Some(&i), Some(&j)) = (index.get(&a), index.get(&b)) else { continue };
            if i == j {
                continue;
            }
            report.known += 1;
            if compared.binary_search(&(i.min(j), i.max(j))).is_err() {
                report.missed.push((a, b));
                continue;
            }
            report.compared += 1;
            if rules.duplicate(&profiles[i as usize], &profiles[j as usize]).is_some() {
                report.matched += 1;
            } else {
                report.unmatched.push((a, b));
            }
        }
        Ok(report)
    }

    /// For a verb that fits a model: the actor's permission to read customers (after checking
    /// it may configure them) and the stored rules, which must score probabilistically.
    fn probabilistic_rules(&self, actor: &Actor, verb: &str) -> Result<(Allowed, MatchRules)> {
        let allowed = self.crm.authorize(actor, Action::Configure, EntityKind::Customer)?;
        let rules = self.crm.load_match_rules()?;
        if !matches!(rules.scoring, Scoring::Probabilistic { .. }) {
            return Err(Error::invalid(
                "scoring",
                guanxi_core::ValidationReason::Invalid {
                    detail: format!("{verb} needs probabilistic scoring (the rules are weighted)"),
                },
            ));
        }
        Ok((self.crm.reauthorize(&allowed, actor, Action::Read, EntityKind::Customer)?, rules))
    }

    /// The live customers matching `filter` within the actor's read scope, as profiles.
    fn scoped_profiles(&self, allowed: &Allowed, filter: &CustomerFilter) -> Result<Vec<MatchProfile>> {
        let mut filter = filter.clone();
        filter.deleted = guanxi_core::Deleted::Exclude;
        self.crm.profiles(&self.crm.scoped_filter(&filter, allowed)?)
    }

    /// Scans profiles the actor may read with the stored rules, masking what clusters show.
    fn scan_profiles(
        &self,
        allowed: Allowed,
        profiles: &[MatchProfile],
        pairs: Pairs,
        mut on_cluster: impl FnMut(DuplicateCluster),
    ) -> Result<ScanStats> {
        let rules = self.crm.load_match_rules()?;
        let not_duplicates = self.crm.load_not_duplicates()?;
        // Every profile is in the actor's scope; their matching values are still masked.
        let reader = Reader(Some(allowed));
        let shown = |mut cluster: DuplicateCluster| {
            for link in &mut cluster.links {
                link.to = reader.show(std::mem::take(&mut link.to), true);
            }
            on_cluster(cluster)
        };
        Ok(guanxi_core::dedup::scan(profiles, &rules, &not_duplicates, pairs, shown))
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
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Customer)?;
        if a == b {
            return Err(Error::invalid(
                "b",
                guanxi_core::ValidationReason::Invalid { detail: "is the same customer as a".into() },
            ));
        }
        for id in [a, b] {
            let c = self.crm.live_customer(id)?;
            allowed.check_customer(actor, &c)?;
        }
        let stored = self.crm.store.setting(NOT_DUPLICATES)?;
        let mut pairs: NotDuplicates = stored.as_ref().map(decode).transpose()?.unwrap_or_default();
        if pairs.contains(a, b) {
            return Ok(());
        }
        pairs.insert(a, b);
        let entry = |id: CustomerId, other: CustomerId| {
            let change = FieldChange::new("not_duplicate_of", None, Some(other.to_string().into()));
            Entry::new(EntityKind::Customer, id, ChangeAction::Update, vec![change]).of_customer(Some(id))
        };
        let mut tx = self.crm.begin(&allowed, actor);
        tx.put_setting(NOT_DUPLICATES.to_owned(), stored, &pairs, [entry(a, b), entry(b, a)], [])?;
        tx.commit().map(drop)
    }

    /// The pairs marked not duplicate.
    pub fn not_duplicates(&self, actor: &Actor) -> Result<NotDuplicates> {
        self.crm.authorize(actor, Action::Read, EntityKind::Customer)?;
        self.crm.load_not_duplicates()
    }
}

//! Commerce (交易) through the facade: the product catalog synced from an ERP, purchases
//! recorded in bulk and idempotently under their customers' permissions, and the level rule
//! kept at each buyer's paid spend of the trailing twelve months in the same transaction.

use std::collections::{BTreeSet, HashMap};

use chrono::{DateTime, Utc};
use guanxi_core::commerce::{
    NewProduct, NewPurchase, Product, ProductFilter, Purchase, PurchaseFilter, PurchaseKey, PurchaseStatus,
    SyncOutcome, SyncReport, trailing_spend_window,
};
use guanxi_core::normalize::fold_text;
use guanxi_core::sales::ProductLine;
use guanxi_core::{
    Action, Actor, ChangeAction, Changes, CustomFieldDef, CustomValue, CustomerId, DomainEvent, EntityKind, Error,
    FieldType, LevelRule, Page, PageRequest, ProductId, PurchaseId, Result, StoreView, ValidationErrors,
    ValidationReason,
};

use crate::handles::{Commerce, Products, Purchases};
use crate::permission::Allowed;
use crate::plumbing::{check_version, to_json, walk_pages};
use crate::write::Entry;

/// At most this many products or purchases in one sync call.
pub const MAX_SYNC_BATCH: usize = 10_000;

fn check_batch(field: &str, n: usize) -> Result<()> {
    if n > MAX_SYNC_BATCH {
        return Err(Error::invalid(
            field,
            ValidationReason::TooLarge { max: MAX_SYNC_BATCH as u64, unit: field.to_owned() },
        ));
    }
    Ok(())
}

impl crate::Crm {
    /// Fills in the catalog name of every line that names a product code; an unknown code is
    /// an error on `{prefix}lines[i].product_code`.
    pub(crate) fn resolve_catalog_lines(
        &self,
        view: &dyn StoreView,
        batches: &mut [(String, &mut Vec<ProductLine>)],
    ) -> Result<()> {
        let codes: BTreeSet<String> = batches
            .iter()
            .flat_map(|(_, lines)| lines.iter().filter_map(|l| l.product_code.as_deref().map(fold_text)))
            .collect();
        if codes.is_empty() {
            return Ok(());
        }
        let codes: Vec<String> = codes.into_iter().collect();
        let catalog: HashMap<String, Product> =
            view.products_by_codes(&codes)?.into_iter().map(|p| (p.code.clone(), p)).collect();
        let mut errs = ValidationErrors::default();
        for (prefix, lines) in batches.iter_mut() {
            for (i, line) in lines.iter_mut().enumerate() {
                let Some(code) = line.product_code.as_deref().map(fold_text) else { continue };
                match catalog.get(&code) {
                    Some(p) => {
                        line.product = p.name.clone();
                        line.product_code = Some(p.code.clone());
                    }
                    None => errs.push(
                        format!("{prefix}lines[{i}].product_code"),
                        ValidationReason::Invalid { detail: format!("no product of the catalog has code {code}") },
                    ),
                }
            }
        }
        errs.into_result(())
    }

    /// Keeps the level rule's field at the paid spend of the trailing twelve months (at `at`)
    /// of the customers a batch recorded purchases for, and their level with it: a follow-up
    /// of the batch inside its session, logged as updates of the customers. Defines the field
    /// (a decimal) when it is not defined yet.
    pub(crate) fn follow_levels(
        &self,
        view: &dyn StoreView,
        actor: &Actor,
        at: DateTime<Utc>,
        changes: &Changes,
        depth: usize,
    ) -> Result<Vec<DomainEvent>> {
        let Some(rule) = &self.level_rule else { return Ok(Vec::new()) };
        if changes.purchases.is_empty() {
            return Ok(Vec::new());
        }
        // The buyers, and the customers written beside their purchases: a merge (or its undo)
        // moves purchases between customers it also rewrites.
        let customers: BTreeSet<CustomerId> = changes
            .purchases
            .iter()
            .map(|w| w.record().customer_id)
            .chain(changes.customers.iter().map(|w| w.record().id))
            .collect();
        let ids: Vec<CustomerId> = customers.into_iter().collect();
        self.restate_levels(view, actor, at, rule, &ids, depth)
    }

    fn restate_levels(
        &self,
        view: &dyn StoreView,
        actor: &Actor,
        at: DateTime<Utc>,
        rule: &LevelRule,
        ids: &[CustomerId],
        depth: usize,
    ) -> Result<Vec<DomainEvent>> {
        let mut tx = self.begin_follow(view, actor, at, depth + 1);
        let field_type = match view.custom_fields(EntityKind::Customer)?.into_iter().find(|d| d.key == rule.field) {
            Some(def) => def.field_type,
            None => {
                let mut def =
                    CustomFieldDef::new(EntityKind::Customer, &rule.field, "近12个月消费", FieldType::Decimal);
                def.created_at = Some(at);
                def.created_by = Some(actor.user_id().clone());
                let diff = guanxi_core::changelog::created_fields(to_json(&def), &["created_at", "created_by"], &[]);
                let event = DomainEvent::CustomFieldDefined { entity: def.entity, key: def.key.clone() };
                let entity_id = format!("{}.{}", def.entity, def.key);
                tx.write(
                    |c| c.custom_fields.push(def),
                    Entry::new(EntityKind::CustomField, entity_id, ChangeAction::Create, diff),
                    [event],
                );
                FieldType::Decimal
            }
        };
        let (from, to) = trailing_spend_window(at);
        for chunk in ids.chunks(guanxi_core::store::MAX_FILTER_IDS) {
            let sums = view.paid_spend(chunk, &rule.currency, from, to)?;
            for (id, sum) in chunk.iter().zip(sums) {
                let Some(current) = view.customer(*id)?.filter(|c| !c.is_deleted()) else { continue };
                let next = with_spend(rule, field_type, current.clone(), sum)?;
                if next != current {
                    tx.update(&current, next, ChangeAction::Update);
                }
            }
        }
        Ok(tx.apply_in_session()?.1)
    }
}

/// The customer with the level rule's field at `spend` (as the field's type holds it) and the
/// level the rule gives for it.
pub(crate) fn with_spend(
    rule: &LevelRule,
    field_type: FieldType,
    mut customer: guanxi_core::Customer,
    spend: guanxi_core::rust_decimal::Decimal,
) -> Result<guanxi_core::Customer> {
    let value = match field_type {
        FieldType::Decimal => CustomValue::Decimal(spend.normalize()),
        FieldType::Number => CustomValue::Number(i64::try_from(spend.trunc().mantissa()).unwrap_or(i64::MAX)),
        other => {
            return Err(Error::InvalidState(format!(
                "the level rule reads {}, a {other} field: spend is kept in a decimal or number field",
                rule.field
            )));
        }
    };
    customer.custom.insert(rule.field.clone(), value);
    customer.level = Some(rule.level_for(&customer.custom));
    Ok(customer)
}

impl crate::Crm {
    /// The survivor of a merge with the spend of every party (what it will have bought once
    /// the merged customers' purchases move to it), so the merge writes it once.
    pub(crate) fn merged_spend(
        &self,
        survivor: guanxi_core::Customer,
        parties: &[CustomerId],
        at: DateTime<Utc>,
    ) -> Result<guanxi_core::Customer> {
        let Some(rule) = &self.level_rule else { return Ok(survivor) };
        let Some(def) = self.store.custom_fields(EntityKind::Customer)?.into_iter().find(|d| d.key == rule.field)
        else {
            return Ok(survivor);
        };
        let (from, to) = trailing_spend_window(at);
        let total = self.store.paid_spend(parties, &rule.currency, from, to)?.into_iter().sum();
        with_spend(rule, def.field_type, survivor, total)
    }
}

/// Checks every input, reporting all failures together under `{field}[i]`.
pub(crate) fn validate_all<T>(
    field: &str,
    inputs: Vec<T>,
    check: impl Fn(T) -> std::result::Result<T, ValidationErrors>,
) -> Result<Vec<T>> {
    let mut errs = ValidationErrors::default();
    let mut valid = Vec::with_capacity(inputs.len());
    for (i, input) in inputs.into_iter().enumerate() {
        match check(input) {
            Ok(v) => valid.push(v),
            Err(e) => errs.extend_nested(&format!("{field}[{i}]"), e),
        }
    }
    errs.into_result(valid)
}

impl crate::Crm {
    /// Creates or updates checked products inside a write session (see `Products::sync`);
    /// returns what happened and the events to publish once the session commits. Failures
    /// name `products[i]`.
    pub(crate) fn sync_products(
        &self,
        view: &dyn StoreView,
        actor: &Actor,
        allowed: &Allowed,
        valid: &[NewProduct],
        at: DateTime<Utc>,
    ) -> Result<(SyncReport, Vec<DomainEvent>)> {
        let externals: Vec<String> = valid.iter().filter_map(|p| p.external_id.clone()).collect();
        let codes: Vec<String> = valid.iter().map(|p| p.code.clone()).collect();
        let mut by_external: HashMap<String, Product> = view
            .products_by_external_ids(&externals)?
            .into_iter()
            .filter_map(|p| p.external_id.clone().map(|x| (x, p)))
            .collect();
        let by_code: HashMap<String, Product> =
            view.products_by_codes(&codes)?.into_iter().map(|p| (p.code.clone(), p)).collect();
        let mut tx = self.begin_in(view, allowed, actor, at);
        let mut report = SyncReport::default();
        let mut errs = ValidationErrors::default();
        let mut update: Option<Allowed> = None;
        // What this call already sent, by external id and by code: (input index, id).
        let mut sent: HashMap<String, (usize, ProductId)> = HashMap::new();
        for (i, p) in valid.iter().enumerate() {
            let keys = [p.external_id.as_ref().map(|x| format!("x:{x}")), Some(format!("c:{}", p.code))];
            if let Some((j, id)) = keys.iter().flatten().find_map(|k| sent.get(k)).copied() {
                if valid[j] != *p {
                    let detail = format!("differs from products[{j}], sent for the same product");
                    errs.push(format!("products[{i}]"), ValidationReason::Invalid { detail });
                } else {
                    report.push(id.0, SyncOutcome::Unchanged);
                }
                continue;
            }
            let stored = p.external_id.as_ref().and_then(|x| by_external.remove(x)).or_else(|| {
                by_code.get(&p.code).filter(|s| s.external_id.is_none() || s.external_id == p.external_id).cloned()
            });
            let (id, outcome) = match stored {
                Some(s) if s.content() == *p => (s.id, SyncOutcome::Unchanged),
                Some(s) => {
                    if update.is_none() {
                        update = Some(self.reauthorize(allowed, actor, Action::Update, EntityKind::Product)?);
                    }
                    tx.update(&s, s.with_content(p.clone()), ChangeAction::Update);
                    (s.id, SyncOutcome::Updated)
                }
                None => {
                    let new = p.clone().into_product(ProductId(tx.new_id()), actor.user_id(), at);
                    let id = new.id;
                    tx.insert(new);
                    (id, SyncOutcome::Created)
                }
            };
            for k in keys.into_iter().flatten() {
                sent.insert(k, (i, id));
            }
            report.push(id.0, outcome);
        }
        errs.into_result(())?;
        let (_, events) = tx.apply_in_session()?;
        Ok((report, events))
    }

    /// Records checked purchases inside a write session (see `Purchases::record`): resolves
    /// their catalog lines, checks their customers, matches them by key; returns what happened
    /// and the events to publish once the session commits. Failures name `purchases[i]`.
    pub(crate) fn sync_purchases(
        &self,
        view: &dyn StoreView,
        actor: &Actor,
        allowed: &Allowed,
        valid: &mut [NewPurchase],
        at: DateTime<Utc>,
    ) -> Result<(SyncReport, Vec<DomainEvent>)> {
        {
            let mut batches: Vec<(String, &mut Vec<ProductLine>)> =
                valid.iter_mut().enumerate().map(|(i, p)| (format!("purchases[{i}]."), &mut p.lines)).collect();
            self.resolve_catalog_lines(view, &mut batches)?;
        }
        // Every customer once: live, and one the actor may record purchases for.
        let customers: BTreeSet<CustomerId> = valid.iter().map(|p| p.customer_id).collect();
        for id in &customers {
            let c = view
                .customer(*id)?
                .filter(|c| !c.is_deleted())
                .ok_or_else(|| Error::not_found(EntityKind::Customer, *id))?;
            allowed.check_customer(actor, &c)?;
        }
        let keys: Vec<PurchaseKey> = valid.iter().filter_map(NewPurchase::key).collect();
        let stored: HashMap<PurchaseKey, Purchase> =
            view.purchases_by_keys(&keys)?.into_iter().filter_map(|p| p.key().map(|k| (k, p))).collect();
        let mut tx = self.begin_in(view, allowed, actor, at);
        let mut report = SyncReport::default();
        let mut errs = ValidationErrors::default();
        let mut update: Option<Allowed> = None;
        let mut sent: HashMap<PurchaseKey, (usize, PurchaseId)> = HashMap::new();
        for (i, p) in valid.iter().enumerate() {
            let key = p.key();
            if let Some((j, id)) = key.as_ref().and_then(|k| sent.get(k)).copied() {
                if valid[j] == *p {
                    report.push(id.0, SyncOutcome::Unchanged);
                } else {
                    let detail = format!("differs from purchases[{j}], sent with the same external id");
                    errs.push(format!("purchases[{i}]"), ValidationReason::Invalid { detail });
                }
                continue;
            }
            let (id, outcome) = match key.as_ref().and_then(|k| stored.get(k)) {
                Some(s) if s.content() == *p => (s.id, SyncOutcome::Unchanged),
                Some(s) if s.customer_id != p.customer_id => {
                    let detail = format!(
                        "external id {} is recorded for customer {}",
                        s.external_id.as_deref().unwrap_or_default(),
                        s.customer_id
                    );
                    errs.push(format!("purchases[{i}].customer_id"), ValidationReason::Invalid { detail });
                    continue;
                }
                Some(s) => {
                    if update.is_none() {
                        update = Some(self.reauthorize(allowed, actor, Action::Update, EntityKind::Purchase)?);
                    }
                    tx.update(s, s.with_content(p.clone()), ChangeAction::Update);
                    (s.id, SyncOutcome::Updated)
                }
                None => {
                    let new = p.clone().into_purchase(PurchaseId(tx.new_id()), actor.user_id(), at);
                    let id = new.id;
                    tx.insert(new);
                    (id, SyncOutcome::Created)
                }
            };
            if let Some(k) = key {
                sent.insert(k, (i, id));
            }
            report.push(id.0, outcome);
        }
        errs.into_result(())?;
        let (_, events) = tx.apply_in_session()?;
        Ok((report, events))
    }
}

impl<'a> Commerce<'a> {
    /// Products of the catalog (产品库).
    pub fn products(&self) -> Products<'a> {
        Products { crm: self.crm }
    }

    /// Purchases (订单 / 交易).
    pub fn purchases(&self) -> Purchases<'a> {
        Purchases { crm: self.crm }
    }
}

impl Products<'_> {
    /// Adds a product to the catalog; a code or external id already in it is an
    /// [`Error::Duplicate`] (use [`sync`](Self::sync) to create or update).
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::NewProduct;
    /// use rust_decimal::Decimal;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let p = crm.commerce().products().create(&alice, NewProduct::new("SKU-1", "CRM 授权").price("CNY", Decimal::from(1999)))?;
    /// assert_eq!(crm.commerce().products().get_by_code(&alice, "SKU-1")?.id, p.id);
    /// assert!(matches!(crm.commerce().products().create(&alice, NewProduct::new("SKU-1", "又一个")), Err(Error::Duplicate { .. })));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, input: NewProduct) -> Result<Product> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Product)?;
        let input = input.validate().map_err(Error::Validation)?;
        let mut tx = self.crm.begin(&allowed, actor);
        let p = input.into_product(ProductId(tx.new_id()), actor.user_id(), tx.at());
        tx.insert(p.clone());
        tx.commit()?;
        Ok(p)
    }

    /// Creates or updates products as an ERP sends them, all or none: each is matched to the
    /// catalog by its external id, else by its code; one found and equal is left alone, one
    /// found and different is updated (which needs the update permission), one not found is
    /// created. Every bad field is reported together (`products[3].tax_rate`); a product sent
    /// twice in one call with different content is an error, sent twice the same is written
    /// once. At most [`MAX_SYNC_BATCH`] products.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::{NewProduct, SyncOutcome};
    /// let crm = Crm::in_memory();
    /// let erp = Actor::user("erp")?;
    /// let sent = vec![NewProduct::new("SKU-1", "CRM 授权").external_id("p-1")];
    /// assert_eq!(crm.commerce().products().sync(&erp, sent.clone())?.created, 1);
    /// assert_eq!(crm.commerce().products().sync(&erp, sent)?.unchanged, 1);
    /// let renamed = vec![NewProduct::new("SKU-1A", "CRM 授权 (年)").external_id("p-1")];
    /// assert_eq!(crm.commerce().products().sync(&erp, renamed)?.outcomes, [SyncOutcome::Updated]);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn sync(&self, actor: &Actor, products: Vec<NewProduct>) -> Result<SyncReport> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Product)?;
        check_batch("products", products.len())?;
        let valid = validate_all("products", products, NewProduct::validate)?;
        let at = self.crm.clock.now();
        let mut out = (SyncReport::default(), Vec::new());
        self.crm.store.write_session(&mut |view| {
            out = self.crm.sync_products(view, actor, &allowed, &valid, at)?;
            Ok(())
        })?;
        let (report, events) = out;
        self.crm.publish(actor, at, events);
        Ok(report)
    }

    /// Replaces a product's fields at the version read; the code may change (a taken one is
    /// an [`Error::Duplicate`]). Raises `ProductSaved`.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::NewProduct;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let p = crm.commerce().products().create(&alice, NewProduct::new("SKU-1", "CRM"))?;
    /// let p = crm.commerce().products().update(&alice, p.id, 1, NewProduct::new("SKU-1", "CRM").inactive())?;
    /// assert_eq!((p.active, p.version), (false, 2));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn update(&self, actor: &Actor, id: ProductId, expected_version: u64, input: NewProduct) -> Result<Product> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Product)?;
        let input = input.validate().map_err(Error::Validation)?;
        let current = self.crm.store.product(id)?.ok_or_else(|| Error::not_found(EntityKind::Product, id))?;
        check_version(EntityKind::Product, id, expected_version, current.version)?;
        if current.content() == input {
            return Ok(current);
        }
        let mut tx = self.crm.begin(&allowed, actor);
        let next = tx.update(&current, current.with_content(input), ChangeAction::Update);
        tx.commit()?;
        Ok(next)
    }

    /// A product by id.
    pub fn get(&self, actor: &Actor, id: ProductId) -> Result<Product> {
        self.crm.authorize(actor, Action::Read, EntityKind::Product)?;
        self.crm.store.product(id)?.ok_or_else(|| Error::not_found(EntityKind::Product, id))
    }

    /// A product by code.
    pub fn get_by_code(&self, actor: &Actor, code: &str) -> Result<Product> {
        self.crm.authorize(actor, Action::Read, EntityKind::Product)?;
        let code = fold_text(code);
        self.crm
            .store
            .products_by_codes(std::slice::from_ref(&code))?
            .pop()
            .ok_or_else(|| Error::not_found(EntityKind::Product, code))
    }

    /// One page of the products matching `filter`, by id.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::{NewProduct, ProductFilter};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.commerce().products().create(&alice, NewProduct::new("SKU-1", "CRM").category("软件"))?;
    /// let soft = ProductFilter { category: Some("软件".into()), ..Default::default() };
    /// assert_eq!(crm.commerce().products().list(&alice, &soft, PageRequest::first(10))?.items.len(), 1);
    /// assert_eq!(crm.commerce().products().count(&alice, &ProductFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn list(&self, actor: &Actor, filter: &ProductFilter, page: PageRequest) -> Result<Page<Product>> {
        self.crm.authorize(actor, Action::Read, EntityKind::Product)?;
        self.crm.store.list_products(filter, &page)
    }

    /// Every product matching `filter`, by id.
    pub fn list_all(&self, actor: &Actor, filter: &ProductFilter) -> Result<Vec<Product>> {
        self.crm.authorize(actor, Action::Read, EntityKind::Product)?;
        walk_pages(|p| self.crm.store.list_products(filter, p))
    }

    /// How many products match `filter`.
    pub fn count(&self, actor: &Actor, filter: &ProductFilter) -> Result<u64> {
        self.crm.authorize(actor, Action::Read, EntityKind::Product)?;
        self.crm.store.count_products(filter)
    }
}

impl Purchases<'_> {
    /// Records purchases as an ERP or a shop sends them, all or none: each is checked (every
    /// bad field named, as `purchases[3].amount`), its customer must be live and one the actor
    /// may record purchases for, and a line naming a product code must name a product of the
    /// catalog (its name is taken from there). A purchase whose source system and external id
    /// are already recorded is left alone when equal and updated when different (a refund
    /// synced later, say; that needs the update permission) — so sending a batch twice writes
    /// it once. Raises `PurchaseRecorded` / `PurchaseUpdated`; with a level rule, the buyers'
    /// spend and level follow in the same transaction. At most [`MAX_SYNC_BATCH`] purchases.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::NewPurchase;
    /// use rust_decimal::Decimal;
    /// let crm = Crm::builder().level_rule(LevelRule::spend_12m_default()).build();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let order = NewPurchase::new(c.id, crm.now()).amount(Decimal::from(120_000)).external("erp", "SO-1");
    /// assert_eq!(crm.commerce().purchases().record(&alice, vec![order.clone()])?.created, 1);
    /// assert_eq!(crm.commerce().purchases().record(&alice, vec![order])?.unchanged, 1);
    /// assert_eq!(crm.customers().get(&alice, c.id)?.level, Some(Level::B));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn record(&self, actor: &Actor, purchases: Vec<NewPurchase>) -> Result<SyncReport> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Purchase)?;
        check_batch("purchases", purchases.len())?;
        let mut valid = validate_all("purchases", purchases, NewPurchase::validate)?;
        let at = self.crm.clock.now();
        let mut out = (SyncReport::default(), Vec::new());
        self.crm.store.write_session(&mut |view| {
            out = self.crm.sync_purchases(view, actor, &allowed, &mut valid, at)?;
            Ok(())
        })?;
        let (report, events) = out;
        self.crm.publish(actor, at, events);
        Ok(report)
    }

    /// Marks a paid purchase refunded, at the version read (it then counts towards no spend).
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::{NewPurchase, PurchaseStatus};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let r = crm.commerce().purchases().record(&alice, vec![NewPurchase::new(c.id, crm.now()).amount(100.into())])?;
    /// let p = crm.commerce().purchases().refund(&alice, r.ids[0].into(), 1)?;
    /// assert_eq!((p.status, p.version), (PurchaseStatus::Refunded, 2));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn refund(&self, actor: &Actor, id: PurchaseId, expected_version: u64) -> Result<Purchase> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Purchase)?;
        let current = self.readable(actor, &allowed, id)?;
        check_version(EntityKind::Purchase, id, expected_version, current.version)?;
        if current.status == PurchaseStatus::Refunded {
            return Err(Error::InvalidState(format!("purchase {id} is refunded already")));
        }
        let mut tx = self.crm.begin(&allowed, actor);
        let next =
            tx.update(&current, Purchase { status: PurchaseStatus::Refunded, ..current.clone() }, ChangeAction::Update);
        tx.commit()?;
        Ok(next)
    }

    fn readable(&self, actor: &Actor, allowed: &Allowed, id: PurchaseId) -> Result<Purchase> {
        let p = self.crm.store.purchase(id)?.ok_or_else(|| Error::not_found(EntityKind::Purchase, id))?;
        let c = self
            .crm
            .store
            .customer(p.customer_id)?
            .ok_or_else(|| Error::not_found(EntityKind::Customer, p.customer_id))?;
        allowed.check(
            actor,
            guanxi_core::Scoped::scope_attrs(&c),
            format_args!("purchase {id} of customer {}", c.code),
        )?;
        Ok(p)
    }

    /// A purchase by id, if its customer is in the reader's scope.
    pub fn get(&self, actor: &Actor, id: PurchaseId) -> Result<Purchase> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Purchase)?;
        self.readable(actor, &allowed, id)
    }

    /// The filter restricted to the purchases the actor may read (authorized once).
    pub(crate) fn scoped(&self, actor: &Actor, filter: &PurchaseFilter) -> Result<PurchaseFilter> {
        let allowed = self.crm.authorize(actor, Action::Read, EntityKind::Purchase)?;
        Ok(PurchaseFilter { customers: self.crm.scoped_filter(&filter.customers, &allowed)?, ..filter.clone() })
    }

    /// One page of the purchases matching `filter` whose customers the reader may see, by id
    /// (which is by when they were recorded).
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::{NewPurchase, PurchaseFilter};
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// crm.commerce().purchases().record(&alice, vec![NewPurchase::new(c.id, crm.now()).amount(100.into())])?;
    /// let mine = PurchaseFilter { customer_id: Some(c.id), ..Default::default() };
    /// assert_eq!(crm.commerce().purchases().list(&alice, &mine, PageRequest::first(10))?.items.len(), 1);
    /// assert_eq!(crm.commerce().purchases().count(&alice, &PurchaseFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn list(&self, actor: &Actor, filter: &PurchaseFilter, page: PageRequest) -> Result<Page<Purchase>> {
        let filter = self.scoped(actor, filter)?;
        self.crm.store.list_purchases(&filter, &page)
    }

    /// Every purchase [`list`](Self::list) pages through.
    pub fn list_all(&self, actor: &Actor, filter: &PurchaseFilter) -> Result<Vec<Purchase>> {
        let filter = self.scoped(actor, filter)?;
        walk_pages(|p| self.crm.store.list_purchases(&filter, p))
    }

    /// How many purchases [`list`](Self::list) pages through.
    pub fn count(&self, actor: &Actor, filter: &PurchaseFilter) -> Result<u64> {
        let filter = self.scoped(actor, filter)?;
        self.crm.store.count_purchases(&filter)
    }

    /// Re-states every buyer's spend and level at the clock's now: what a daily job calls, as
    /// purchases leave the trailing twelve months. Needs the update permission on customers
    /// for every customer (an administrator's or a system user's job); returns how many
    /// customers changed. Without a level rule nothing changes.
    ///
    /// ```
    /// # use guanxi::*;
    /// use guanxi::commerce::NewPurchase;
    /// use chrono::Duration;
    /// let clock = std::sync::Arc::new(FixedClock::at("2024-05-01T00:00:00Z".parse().unwrap()));
    /// let crm = Crm::builder().clock(clock.clone()).level_rule(LevelRule::spend_12m_default()).build();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// crm.commerce().purchases().record(&alice, vec![NewPurchase::new(c.id, crm.now()).amount(600_000.into())])?;
    /// assert_eq!(crm.customers().get(&alice, c.id)?.level, Some(Level::A));
    /// clock.advance(Duration::days(400));
    /// assert_eq!(crm.commerce().purchases().refresh_levels(&alice)?, 1);
    /// assert_eq!(crm.customers().get(&alice, c.id)?.level, Some(Level::C));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn refresh_levels(&self, actor: &Actor) -> Result<u64> {
        let allowed = self.crm.authorize(actor, Action::Update, EntityKind::Customer)?;
        if allowed.query_scope().is_some() {
            return Err(Error::PermissionDenied {
                action: Action::Update.as_str().to_owned(),
                entity: EntityKind::Customer,
                reason: format!("refreshing levels updates every buyer; user {} may update only some", actor.user_id()),
            });
        }
        let Some(rule) = self.crm.level_rule.clone() else { return Ok(0) };
        let at = self.crm.clock.now();
        let mut changed = 0u64;
        let mut after = None;
        loop {
            let ids =
                self.crm.store.customers_with_purchases(&rule.currency, after, guanxi_core::store::MAX_FILTER_IDS)?;
            let Some(last) = ids.last().copied() else { break };
            let mut events = Vec::new();
            self.crm.store.write_session(&mut |view| {
                events = self.crm.restate_levels(view, actor, at, &rule, &ids, 0)?;
                Ok(())
            })?;
            changed += events.iter().filter(|e| matches!(e, DomainEvent::CustomerUpdated { .. })).count() as u64;
            self.crm.publish(actor, at, events);
            after = Some(last);
        }
        Ok(changed)
    }
}

//! The grouped handles of [`Crm`]: one per noun, each with the same verbs (`create`, `get`,
//! `get_by_code`, `list` (one page), `list_all`, `count`, `update`, `delete` where they apply).
//!
//! This module declares the handle types and how to get them; their verbs are implemented
//! beside the facade code they run on: customers, tags and custom fields in `customers.rs`,
//! contacts and interactions in `contacts.rs`, the audit trail in `audit.rs`, sales in
//! `sales_facade.rs`, service and the knowledge base in `service_facade.rs`, duplicates in
//! `dedup_facade.rs` and `merge_facade.rs`, access in `access_control.rs`, files (imports,
//! exports, backups) in `import.rs` and `export.rs`.

use crate::crm::Crm;

/// A handle type: a `Copy` view borrowing the [`Crm`], named by its noun in `Debug`.
macro_rules! handle {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Clone, Copy)]
        pub struct $name<'a> {
            pub(crate) crm: &'a Crm,
        }

        impl std::fmt::Debug for $name<'_> {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(stringify!($name))
            }
        }
    };
}

handle! {
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
    Customers
}

handle! {
    /// Tags (标签): define them, list them, and put them on customers or take them off.
    ///
    /// Got from [`Crm`] as `crm.tags()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// crm.tags().create(&alice, "VIP", Some("等级"))?;
    /// let c = crm.tags().add(&alice, c.id, "VIP")?;
    /// assert!(c.tags.iter().any(|t| t == "VIP"));
    /// assert_eq!(crm.tags().list(&alice)?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Tags
}

handle! {
    /// Contacts (联系人): the people of a customer; add, read, find by phone or identity number, update, make primary, delete.
    ///
    /// Got from [`Crm`] as `crm.contacts()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let p = crm.contacts().create(&alice, c.id, NewContact::new("张伟").phone("13812345678"))?;
    /// assert_eq!(crm.contacts().find_by_phone(&alice, "138 1234 5678")?[0].id, p.id);
    /// assert_eq!(crm.contacts().list(&alice, c.id)?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Contacts
}

handle! {
    /// Interactions (跟进记录): calls, visits and messages logged on a customer.
    ///
    /// Got from [`Crm`] as `crm.interactions()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// crm.interactions().create(&alice, c.id, NewInteraction::new(InteractionKind::Call, "确认预算"))?;
    /// assert_eq!(crm.interactions().list(&alice, c.id)?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Interactions
}

handle! {
    /// Custom fields (自定义字段): define them per entity and list them.
    ///
    /// Got from [`Crm`] as `crm.custom_fields()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.custom_fields().create(&alice, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal))?;
    /// assert_eq!(crm.custom_fields().list(&alice, EntityKind::Customer)?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    CustomFields
}

handle! {
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
    Duplicates
}

handle! {
    /// Sales (销售): pipelines, lead rules, the report and agendas; opportunities, leads and tasks have handles of their own.
    ///
    /// Got from [`Crm`] as `crm.sales()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let stages = crm.sales().pipeline(&alice, "standard")?.stages;
    /// assert!(stages.iter().any(|s| s.key == "won"));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Sales
}

handle! {
    /// Opportunities (商机): create, read, list, count, update, move through the pipeline, stage history.
    ///
    /// Got from [`Crm`] as `crm.sales().opportunities()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let o = crm.sales().opportunities().create(&alice, NewOpportunity::new("ERP 项目"))?;
    /// assert_eq!(crm.sales().opportunities().get_by_code(&alice, &o.code)?.id, o.id);
    /// assert_eq!(crm.sales().opportunities().count(&alice, &OpportunityFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Opportunities
}

handle! {
    /// Leads (线索): create (graded and assigned by the lead rules), read, list, count, convert.
    ///
    /// Got from [`Crm`] as `crm.sales().leads()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let l = crm.sales().leads().create(&alice, NewLead::new("王磊").company("星河科技"))?;
    /// assert_eq!(crm.sales().leads().get(&alice, l.id)?.name, "王磊");
    /// assert_eq!(crm.sales().leads().count(&alice, &LeadFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Leads
}

handle! {
    /// Tasks (任务): follow-ups with a due date; create, complete, list.
    ///
    /// Got from [`Crm`] as `crm.sales().tasks()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::sales::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let t = crm.sales().tasks().create(&alice, NewTask::new("发报价", crm.now()))?;
    /// crm.sales().tasks().complete(&alice, t.id, t.version)?;
    /// assert_eq!(crm.sales().tasks().list_all(&alice, &TaskFilter::default())?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Tasks
}

handle! {
    /// Service (服务): settings, the SLA overview and the service report; tickets have a handle of their own.
    ///
    /// Got from [`Crm`] as `crm.service()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let report = crm.service().report(&alice, &ServiceQuery::default())?;
    /// assert_eq!(report.tickets, 0);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Service
}

handle! {
    /// Tickets (工单): create, read, list, count; reply, move, assign, escalate, rate, reprioritize; the SLA state.
    ///
    /// Got from [`Crm`] as `crm.service().tickets()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let t = crm.service().tickets().create(&alice, NewTicket::new("无法登录", TicketKind::Fault, Priority::High))?;
    /// assert_eq!(crm.service().tickets().get_by_code(&alice, &t.code)?.id, t.id);
    /// assert_eq!(crm.service().tickets().count(&alice, &TicketFilter::default())?, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Tickets
}

handle! {
    /// The knowledge base (知识库): articles, their search, and suggestions for a ticket.
    ///
    /// Got from [`Crm`] as `crm.kb()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::service::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.kb().create(&alice, NewArticle::new("如何重置密码", "在登录页点击“忘记密码”。"))?;
    /// assert_eq!(crm.kb().search(&alice, &KbQuery::new("密码"))?.len(), 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    KnowledgeBase
}

handle! {
    /// Files (导入导出): importing customers, exporting records, and backups.
    ///
    /// Got from [`Crm`] as `crm.files()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let mut csv = Vec::new();
    /// let n = crm.files().export_to(&alice, ExportEntity::Customers, &CustomerFilter::default(), FileFormat::Csv, &mut csv)?;
    /// assert_eq!(n, 1);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Files
}

handle! {
    /// Access (权限): departments, users and roles, explanations of a decision, credentials and elevation, the field key.
    ///
    /// Got from [`Crm`] as `crm.access()`; each call takes the acting user and is checked, validated,
    /// written, logged and announced exactly as the rest of the facade is.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let why = crm.access().explain(&alice, alice.user_id(), Action::Read, EntityKind::Customer, None)?;
    /// assert!(why.allowed);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Access
}

handle! {
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
    Audit
}

handle! {
    /// Marketing (营销): behaviour events and segments.
    ///
    /// Got from [`Crm`] as `crm.marketing()`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// assert_eq!(format!("{:?}", crm.marketing().events()), "Events");
    /// ```
    Marketing
}

handle! {
    /// Behaviour events (行为事件): recorded in bulk, idempotently by external id, and read
    /// per customer by time.
    ///
    /// Got from [`Crm`] as `crm.marketing().events()`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// assert_eq!(crm.marketing().events().record(&alice, vec![])?.recorded.len(), 0);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Events
}

handle! {
    /// Segments (客群): the customers an expression selects, and why one is or is not in it.
    ///
    /// Got from [`Crm`] as `crm.marketing().segments()`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let all = guanxi::marketing::Segment::parse("NOT tag:none")?;
    /// assert!(crm.marketing().segments().members(&alice, &all)?.is_empty());
    /// # Ok::<(), Box<dyn std::error::Error>>(())
    /// ```
    Segments
}

handle! {
    /// Customer analytics (客户分析): purchase summaries, RFM and lifetime value over the
    /// purchases the actor may read.
    ///
    /// Got from [`Crm`] as `crm.analytics()`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// assert!(crm.analytics().customer_purchases(&alice, &Default::default(), "CNY")?.is_empty());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Analytics
}

handle! {
    /// Commerce (交易): the product catalog and purchases.
    ///
    /// Got from [`Crm`] as `crm.commerce()`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// assert_eq!(format!("{:?}", crm.commerce().products()), "Products");
    /// ```
    Commerce
}

handle! {
    /// Products of the catalog (产品库): created, synced from an ERP idempotently by external
    /// id or code, updated, read and listed.
    ///
    /// Got from [`Crm`] as `crm.commerce().products()`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// assert_eq!(crm.commerce().products().count(&alice, &Default::default())?, 0);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Products
}

handle! {
    /// Purchases (订单 / 交易): recorded in bulk, idempotently by source system and external
    /// id, refunded, read and listed within the reader's scope; the level rule follows them.
    ///
    /// Got from [`Crm`] as `crm.commerce().purchases()`.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// assert_eq!(crm.commerce().purchases().count(&alice, &Default::default())?, 0);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    Purchases
}

impl<'a> Marketing<'a> {
    /// Behaviour events (行为事件): record in bulk, list per customer.
    pub fn events(&self) -> Events<'a> {
        Events { crm: self.crm }
    }

    /// Segments (客群): members and explanations.
    pub fn segments(&self) -> Segments<'a> {
        Segments { crm: self.crm }
    }
}

impl Crm {
    /// Customer analytics (客户分析): purchase summaries, RFM, lifetime value.
    pub fn analytics(&self) -> Analytics<'_> {
        Analytics { crm: self }
    }

    /// Commerce (交易): the product catalog and purchases.
    pub fn commerce(&self) -> Commerce<'_> {
        Commerce { crm: self }
    }

    /// Marketing (营销): behaviour events and segments.
    pub fn marketing(&self) -> Marketing<'_> {
        Marketing { crm: self }
    }

    /// Customers (客户): create (checked or not), read, list, count, export, update, delete and restore, and the timeline.
    pub fn customers(&self) -> Customers<'_> {
        Customers { crm: self }
    }

    /// Tags (标签): define them, list them, and put them on customers or take them off.
    pub fn tags(&self) -> Tags<'_> {
        Tags { crm: self }
    }

    /// Contacts (联系人): the people of a customer; add, read, find by phone or identity number, update, make primary, delete.
    pub fn contacts(&self) -> Contacts<'_> {
        Contacts { crm: self }
    }

    /// Interactions (跟进记录): calls, visits and messages logged on a customer.
    pub fn interactions(&self) -> Interactions<'_> {
        Interactions { crm: self }
    }

    /// Custom fields (自定义字段): define them per entity and list them.
    pub fn custom_fields(&self) -> CustomFields<'_> {
        CustomFields { crm: self }
    }

    /// Duplicates (查重): the match rules, the check of a new customer, the duplicates of a stored one, the whole-base scan, pairs marked not duplicate, and merging.
    pub fn duplicates(&self) -> Duplicates<'_> {
        Duplicates { crm: self }
    }

    /// Sales (销售): pipelines, lead rules, the report and agendas; opportunities, leads and tasks have handles of their own.
    pub fn sales(&self) -> Sales<'_> {
        Sales { crm: self }
    }

    /// Service (服务): settings, the SLA overview and the service report; tickets have a handle of their own.
    pub fn service(&self) -> Service<'_> {
        Service { crm: self }
    }

    /// The knowledge base (知识库): articles, their search, and suggestions for a ticket.
    pub fn kb(&self) -> KnowledgeBase<'_> {
        KnowledgeBase { crm: self }
    }

    /// Files (导入导出): importing customers, exporting records, and backups.
    pub fn files(&self) -> Files<'_> {
        Files { crm: self }
    }

    /// Access (权限): departments, users and roles, explanations of a decision, credentials and elevation, the field key.
    pub fn access(&self) -> Access<'_> {
        Access { crm: self }
    }

    /// Audit (审计): the tamper-evident change log and its verification.
    pub fn audit(&self) -> Audit<'_> {
        Audit { crm: self }
    }
}

impl<'a> Sales<'a> {
    /// Opportunities (商机): create, read, list, count, update, move through the pipeline, stage history.
    pub fn opportunities(&self) -> Opportunities<'a> {
        Opportunities { crm: self.crm }
    }

    /// Leads (线索): create (graded and assigned by the lead rules), read, list, count, convert.
    pub fn leads(&self) -> Leads<'a> {
        Leads { crm: self.crm }
    }

    /// Tasks (任务): follow-ups with a due date; create, complete, list.
    pub fn tasks(&self) -> Tasks<'a> {
        Tasks { crm: self.crm }
    }
}

impl<'a> Service<'a> {
    /// Tickets (工单): create, read, list, count; reply, move, assign, escalate, rate, reprioritize; the SLA state.
    pub fn tickets(&self) -> Tickets<'a> {
        Tickets { crm: self.crm }
    }
}

//! The grouped handles of [`Crm`]: one per area, each with the same verbs (`create`, `get`,
//! `get_by_code`, `list` (one page), `list_all`, `count`, `update`, `delete` where they apply),
//! named as in the Python, Kotlin and Swift bindings.

mod access;
mod audit;
mod contacts;
mod custom_fields;
mod customers;
mod duplicates;
mod files;
mod interactions;
mod kb;
mod leads;
mod opportunities;
mod sales;
mod service;
mod tags;
mod tasks;
mod tickets;

pub use access::Access;
pub use audit::Audit;
pub use contacts::Contacts;
pub use custom_fields::CustomFields;
pub use customers::Customers;
pub use duplicates::Duplicates;
pub use files::Files;
pub use interactions::Interactions;
pub use kb::KnowledgeBase;
pub use leads::Leads;
pub use opportunities::Opportunities;
pub use sales::Sales;
pub use service::Service;
pub use tags::Tags;
pub use tasks::Tasks;
pub use tickets::Tickets;

use crate::crm::Crm;

impl Crm {
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

"""guanxi (关系): an embeddable CRM core.

Customers, contacts, tags, follow-ups and an append-only change log in a SQLite file, with
validation of Chinese mobile numbers, e-mail, regions and industries built in. Every list is
an Arrow stream, so it becomes a pyarrow Table, a polars or a pandas DataFrame without
per-row Python objects::

    import guanxi
    with guanxi.Crm.open("crm.db", user="alice") as crm:
        c = crm.customers.create("华为技术有限公司", province="广东", tags=["VIP"],
                                 contacts=[{"name": "张伟", "phone": "138-1234-5678"}])
        df = crm.customers.list(tag="VIP").to_pandas()
"""

from __future__ import annotations

import enum

from guanxi._guanxi import (
    Agenda,
    AgendaItem,
    CycleStats,
    Lead,
    LeadConversion,
    Milestone,
    Opportunity,
    Pipeline,
    ProductLine,
    Sales,
    SalesReport,
    Stage,
    StageHistoryEntry,
    Table,
    Service,
    Ticket,
    TicketEntry,
    Article,
    ArticleHit,
    ServiceReport,
    Task,
    AuditCheck,
    ChangeLogEntry,
    ConflictError,
    Contact,
    Crm,
    Customer,
    Customers,
    CustomerTable,
    CustomField,
    DuplicateError,
    Duplicates,
    ElevationRequiredError,
    EncryptionError,
    FieldError,
    Files,
    GuanxiError,
    ImportReport,
    Interaction,
    InvalidStateError,
    NotFoundError,
    PermissionDeniedError,
    ScanResult,
    StorageError,
    Tag,
    ValidationError,
    generate_field_key,
    generate_totp_secret,
    hash_password,
    totp_code,
    verify_password,
    verify_totp,
)

__all__ = [
    "Agenda",
    "AgendaItem",
    "CycleStats",
    "Lead",
    "LeadConversion",
    "Milestone",
    "Opportunity",
    "Pipeline",
    "ProductLine",
    "Sales",
    "SalesReport",
    "Stage",
    "StageHistoryEntry",
    "Table",
    "Service",
    "Ticket",
    "TicketEntry",
    "Article",
    "ArticleHit",
    "ServiceReport",
    "Task",
    "AuditCheck",
    "ChangeLogEntry",
    "ConflictError",
    "Contact",
    "Crm",
    "Customer",
    "CustomerKind",
    "CustomerTable",
    "Customers",
    "CustomField",
    "DuplicateError",
    "Duplicates",
    "ElevationRequiredError",
    "EncryptionError",
    "FieldError",
    "Files",
    "GuanxiError",
    "ImportReport",
    "Interaction",
    "InvalidStateError",
    "LifecycleStatus",
    "NotFoundError",
    "PermissionDeniedError",
    "ScanResult",
    "SizeBand",
    "StorageError",
    "Tag",
    "ValidationError",
    "generate_field_key",
    "generate_totp_secret",
    "hash_password",
    "totp_code",
    "verify_password",
    "verify_totp",
]


class LifecycleStatus(str, enum.Enum):
    """Lifecycle status of a customer; compares equal to its stable name ("potential", …)."""

    POTENTIAL = "potential"
    CUSTOMER = "customer"
    LOST = "lost"


class CustomerKind(str, enum.Enum):
    """Company or person."""

    ENTERPRISE = "enterprise"
    INDIVIDUAL = "individual"


class SizeBand(str, enum.Enum):
    """Head-count band: under 100, 100–500, above."""

    SMALL = "small"
    MEDIUM = "medium"
    LARGE = "large"

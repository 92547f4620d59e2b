"""Type stubs of the native module; checked against it by mypy's stubtest in CI."""

import builtins
import datetime
import decimal
import os
import uuid
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from types import TracebackType
from typing import Any, Generic, Literal, SupportsIndex, TypeVar, final, overload

from typing_extensions import Self, Unpack

from guanxi.fields import (
    ActionName,
    ChangeAction,
    Channel,
    CustomerKind,
    DecisionRole,
    FieldType,
    BehaviourEvent,
    Identifier,
    NewBehaviourEvent,
    NewProduct,
    NewPurchase,
    RecordedEvents,
    SegmentLike,
    MarketingSettings,
    PurgedEvents,
    Reevaluated,
    SavedSegment,
    SegmentExplanation,
    Industry,
    InteractionKind,
    LeadGrade,
    LeadStatus,
    Level,
    LifecycleStatus,
    Priority,
    ProbabilitySource,
    SizeBand,
    StageKind,
    StageKindName,
    TicketKind,
    TicketStatus,
    ChannelName,
    ContactChanges,
    ContactFields,
    CustomerChanges,
    CustomerFields,
    BlockingKind,
    BlockingReport,
    ComparisonName,
    CustomerFilters,
    MatchFieldName,
    EntityKind,
    EntityKindName,
    FieldTypeName,
    IdLike,
    IndustryName,
    InteractionKindName,
    LeadGradeName,
    LeadStatusName,
    Money,
    NewCustomer,
    NewOpportunity,
    NewTicket,
    OpportunityChanges,
    OpportunityFields,
    OpportunityFilters,
    PeriodName,
    PriorityName,
    TicketFilters,
    TicketKindName,
    TicketStatusName,
)

__all__ = [
    "Crm",
    "Analytics",
    "LifetimeValue",
    "Commerce",
    "Products",
    "Purchases",
    "Product",
    "Purchase",
    "SyncReport",
    "CommerceImportReport",
    "LevelRule",
    "Customers",
    "Duplicates",
    "Files",
    "ScanResult",
    "ImportReport",
    "MatchRule",
    "BlockingKey",
    "FieldProbabilities",
    "ProbabilisticModel",
    "MatchRules",
    "Customer",
    "Contact",
    "Interaction",
    "Tag",
    "CustomField",
    "ChangeLogEntry",
    "FieldError",
    "AuditCheck",
    "hash_password",
    "verify_password",
    "generate_totp_secret",
    "generate_field_key",
    "totp_code",
    "verify_totp",
    "Tags",
    "Contacts",
    "Interactions",
    "CustomFields",
    "Opportunities",
    "Leads",
    "Tasks",
    "Tickets",
    "KnowledgeBase",
    "Access",
    "Audit",
    "vocabularies",
    "Sales",
    "Stage",
    "Pipeline",
    "ProductLine",
    "Milestone",
    "Opportunity",
    "StageHistoryEntry",
    "Lead",
    "LeadConversion",
    "Task",
    "AgendaItem",
    "Agenda",
    "CycleStats",
    "SalesReport",
    "Table",
    "Marketing",
    "Events",
    "Segments",
    "Service",
    "Ticket",
    "TicketEntry",
    "Article",
    "ArticleHit",
    "ServiceReport",
    "GuanxiError",
    "NotFoundError",
    "ValidationError",
    "ConflictError",
    "DuplicateError",
    "PermissionDeniedError",
    "InvalidStateError",
    "ElevationRequiredError",
    "EncryptionError",
    "StorageError",
]

_CustomValue = str | int | bool | decimal.Decimal | datetime.date | list[str]
_IdLike = IdLike
_Money = Money

class GuanxiError(Exception): ...
class NotFoundError(GuanxiError): ...

class ValidationError(GuanxiError):
    errors: list[FieldError]
    field: str | None
    reason: str | None

class ConflictError(GuanxiError):
    expected: int
    actual: int

class DuplicateError(GuanxiError): ...

class PermissionDeniedError(GuanxiError):
    action: str

class ElevationRequiredError(PermissionDeniedError): ...

class EncryptionError(GuanxiError):
    kind: Literal["wrong_key", "key_required", "bad_key_length", "corrupt"]

class InvalidStateError(GuanxiError): ...
class StorageError(GuanxiError): ...

@final
class FieldError:
    @property
    def field(self) -> str:
        """Path of the field, e.g. "name", "contacts[0].phones[1]", "custom.budget"."""
    @property
    def reason(self) -> str:
        """Why, as a sentence."""
    @property
    def code(self) -> str:
        """Why, as a stable code ("required", "invalid_phone", "not_allowed", …)."""
    @property
    def allowed(self) -> list[str]:
        """For a value outside a vocabulary, the values that are allowed there (else empty)."""

@final
class AuditCheck:
    @property
    def entries(self) -> int: ...
    @property
    def head(self) -> str | None: ...
    @property
    def intact(self) -> bool: ...
    @property
    def broken_at(self) -> int | None: ...
    @property
    def reason(self) -> str | None: ...
    def __bool__(self) -> bool: ...

@final
class Customer:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> CustomerKind: ...
    @property
    def industry(self) -> Industry | None: ...
    @property
    def size(self) -> SizeBand | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def status(self) -> LifecycleStatus: ...
    @property
    def level(self) -> Level | None: ...
    @property
    def province(self) -> str | None: ...
    @property
    def city(self) -> str | None: ...
    @property
    def district(self) -> str | None: ...
    @property
    def address(self) -> str | None: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def tags(self) -> list[str]: ...
    @property
    def identifiers(self) -> list[Identifier]: ...
    @property
    def custom(self) -> dict[str, _CustomValue]: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...
    @property
    def deleted_at(self) -> datetime.datetime | None: ...

@final
class Contact:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def customer_id(self) -> uuid.UUID: ...
    @property
    def name(self) -> str: ...
    @property
    def title(self) -> str | None: ...
    @property
    def phones(self) -> list[str]: ...
    @property
    def emails(self) -> list[str]: ...
    @property
    def id_number(self) -> str | None: ...
    @property
    def role(self) -> DecisionRole | None: ...
    @property
    def primary(self) -> bool: ...
    @property
    def do_not_contact(self) -> bool: ...
    @property
    def custom(self) -> dict[str, _CustomValue]: ...
    @property
    def version(self) -> int: ...

@final
class Interaction:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def customer_id(self) -> uuid.UUID: ...
    @property
    def kind(self) -> InteractionKind: ...
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def author(self) -> str: ...
    @property
    def content(self) -> str: ...
    @property
    def next_step(self) -> str | None: ...
    @property
    def next_contact_on(self) -> datetime.date | None: ...
    @property
    def feedback(self) -> str | None: ...

@final
class Tag:
    @property
    def name(self) -> str: ...
    @property
    def group(self) -> str | None: ...

@final
class CustomField:
    @property
    def entity(self) -> EntityKind: ...
    @property
    def key(self) -> str: ...
    @property
    def label(self) -> str: ...
    @property
    def field_type(self) -> FieldType: ...
    @property
    def required(self) -> bool: ...
    @property
    def allowed_values(self) -> list[str]: ...

@final
class ChangeLogEntry:
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def user(self) -> str: ...
    @property
    def entity(self) -> EntityKind: ...
    @property
    def entity_id(self) -> str: ...
    @property
    def action(self) -> ChangeAction: ...
    @property
    def changes(self) -> list[tuple[str, str | None, str | None]]: ...

_R = TypeVar("_R")

@final
class Table(Generic[_R]):
    """Every list and report: Arrow columns (``pyarrow.table(t)``, ``polars.DataFrame(t)``,
    ``t.to_pandas()``) and a sequence of its rows — records for lists, dicts for report rows."""

    def __len__(self) -> int: ...
    @overload
    def __getitem__(self, key: SupportsIndex, /) -> _R:
        """Row ``key`` (negative counts from the end)."""
    @overload
    def __getitem__(self, key: slice, /) -> Table[_R]:
        """The rows of a slice (step 1), as a table."""
    def __iter__(self) -> Iterator[_R]: ...
    def to_list(self) -> builtins.list[_R]:
        """The rows as a list."""
    @property
    def next(self) -> str | None:
        """The cursor of the next page (pass it as ``after=``); None on the last page."""
    @property
    def column_names(self) -> builtins.list[str]:
        """The column names, in order."""
    def __arrow_c_stream__(self, requested_schema: object | None = None) -> object:
        """The Arrow PyCapsule stream protocol."""
    def to_arrow(self) -> Any:
        """A ``pyarrow.Table`` (needs pyarrow)."""
    def to_pandas(self) -> Any:
        """A ``pandas.DataFrame`` (needs pyarrow and pandas)."""
    def to_polars(self) -> Any:
        """A ``polars.DataFrame`` (needs polars)."""
    def __class_getitem__(cls, item: object) -> Any: ...

_Row = dict[str, Any]

@final
class Customers:
    """``crm.customers``: create, read, list, count, update, delete and restore customers."""

    def create(self, name: str, **fields: Unpack[CustomerFields]) -> Customer:
        """Creates a customer (with its contacts) and returns it; every bad field raises together."""
    def create_many(self, rows: Iterable[NewCustomer]) -> builtins.list[Customer]:
        """Creates many customers in one transaction, all or none; errors name their row (``customers[3].industry``)."""
    def create_checked(
        self,
        name: str,
        *,
        on_duplicate: Literal["allow", "warn", "block", "link"] = "warn",
        **fields: Unpack[CustomerFields],
    ) -> dict[str, Any]:
        """Creates a customer after the duplicate check: {"customer", "created", "duplicates"}."""
    def check(self, name: str, **fields: Unpack[CustomerFields]) -> None:
        """Checks a new customer as ``create`` would, writing nothing; every bad field raises together."""
    def get(self, id: IdLike) -> Customer:
        """A customer by id; NotFoundError when there is none the user may read."""
    def get_by_code(self, code: str) -> Customer:
        """A customer by its code, e.g. "C20240501001"."""
    def update(self, id: IdLike, version: int, **changes: Unpack[CustomerChanges]) -> Customer:
        """Changes the fields given; a stale ``version`` raises ConflictError."""
    def delete(self, id: IdLike, version: int) -> Customer:
        """Soft-deletes a customer."""
    def restore(self, id: IdLike, version: int) -> Customer:
        """Restores a soft-deleted customer."""
    def list(self, *, after: str | None = None, limit: int = 100, **filters: Unpack[CustomerFilters]) -> Table[Customer]:
        """One page of the matching customers, oldest first; ``.next`` is the cursor of the next."""
    def list_all(self, **filters: Unpack[CustomerFilters]) -> Table[Customer]:
        """Every matching customer, as one table."""
    def count(self, **filters: Unpack[CustomerFilters]) -> int:
        """How many customers match."""
    def export(self, **filters: Unpack[CustomerFilters]) -> Table[Customer]:
        """The matching customers the user may export (masked, logged; needs elevation under access control)."""
    def timeline(self, id: IdLike) -> builtins.list[dict[str, Any]]:
        """The customer's changes and interactions, oldest first: {"at", "type", "change" | "interaction"}."""

@final
class Tags:
    """``crm.tags``: define tags and put them on customers."""

    def create(self, name: str, group: str | None = None) -> Tag:
        """Defines a tag (or moves it to another group)."""
    def list(self) -> builtins.list[Tag]:
        """Every tag, by group then name."""
    def add(self, customer_id: IdLike, tag: str) -> Customer:
        """Puts a tag on a customer (created if new)."""
    def remove(self, customer_id: IdLike, tag: str) -> Customer:
        """Takes a tag off a customer."""

@final
class Contacts:
    """``crm.contacts``: the people of each customer."""

    def create(self, customer_id: IdLike, name: str, **fields: Unpack[ContactFields]) -> Contact:
        """Adds a contact to a customer."""
    def get(self, id: IdLike) -> Contact:
        """A contact by id."""
    def list(self, customer_id: IdLike) -> builtins.list[Contact]:
        """The live contacts of a customer, primary first."""
    def find_by_phone(self, phone: str) -> builtins.list[Contact]:
        """The live contacts with this phone number the user may read."""
    def find_by_id_number(self, id_number: str) -> builtins.list[Contact]:
        """The live contacts with this resident identity number the user may read."""
    def update(self, id: IdLike, version: int, **changes: Unpack[ContactChanges]) -> Contact:
        """Changes the fields given; a stale ``version`` raises ConflictError."""
    def set_primary(self, id: IdLike) -> Contact:
        """Makes a contact its customer's primary contact."""
    def delete(self, id: IdLike, version: int) -> None:
        """Removes a contact."""

@final
class Interactions:
    """``crm.interactions``: calls, visits and other follow-ups."""

    def create(
        self,
        customer_id: IdLike,
        kind: InteractionKindName,
        content: str,
        *,
        at: datetime.datetime | None = None,
        contact_id: IdLike | None = None,
        next_step: str | None = None,
        next_contact_on: datetime.date | None = None,
        feedback: str | None = None,
    ) -> Interaction:
        """Logs an interaction with a customer."""
    def list(self, customer_id: IdLike) -> builtins.list[Interaction]:
        """The interactions of a customer, oldest first."""

@final
class CustomFields:
    """``crm.custom_fields``: the fields a deployment adds to customers and contacts."""

    def create(
        self,
        entity: Literal["customer", "contact"] | EntityKind,
        key: str,
        label: str,
        field_type: FieldTypeName,
        *,
        required: bool = False,
        allowed_values: Sequence[str] | None = None,
    ) -> CustomField:
        """Defines a custom field."""
    def list(self, entity: Literal["customer", "contact"] | EntityKind = "customer") -> builtins.list[CustomField]:
        """The custom fields of customers or contacts."""

@final
class ScanResult:
    """The duplicate scan: ``pairs`` (a row per scored link), ``members`` (a row per customer of a cluster), ``stats``."""

    @property
    def pairs(self) -> Table[_Row]: ...
    @property
    def members(self) -> Table[_Row]: ...
    @property
    def stats(self) -> dict[str, Any]: ...

@final
class MatchRule:
    """One comparison of a field: ``MatchRule("surname", "jaro_winkler", min=0.85)``.

    ``min`` is required by ``jaro_winkler``, ``edit``, ``q_gram``, ``token_set`` and ``date``;
    ``tolerance`` by ``number``; ``weight`` counts with weighted scoring; ``only``
    ("enterprise" / "individual") limits the rule to pairs of that kind."""

    def __new__(
        cls,
        field: MatchFieldName,
        comparison: ComparisonName,
        *,
        min: float | None = None,
        tolerance: decimal.Decimal | int | str | None = None,
        weight: float = 1.0,
        only: Literal["enterprise", "individual"] | None = None,
    ) -> MatchRule: ...
    @property
    def field(self) -> str:
        """The field's stable name."""
    @property
    def comparison(self) -> ComparisonName:
        """The comparison's name."""
    @property
    def min(self) -> float | None:
        """The least similarity that counts (None for ``exact``, ``phonetic``, ``number``)."""
    @property
    def tolerance(self) -> decimal.Decimal | None:
        """The largest difference that counts (``number`` only)."""
    @property
    def weight(self) -> float:
        """The weight (weighted scoring)."""
    @property
    def only(self) -> str | None:
        """The kind of customer the rule is limited to."""

@final
class BlockingKey:
    """One blocking key: ``BlockingKey("sorted_neighbourhood", "surname", window=9)``.

    ``window`` is required by ``sorted_neighbourhood``, ``max_len`` by ``deletions``,
    ``length`` by ``prefix``, ``q`` by ``q_grams``."""

    def __new__(
        cls,
        kind: BlockingKind,
        field: MatchFieldName,
        *,
        window: int | None = None,
        max_len: int | None = None,
        length: int | None = None,
        q: int | None = None,
    ) -> BlockingKey: ...
    @property
    def kind(self) -> BlockingKind:
        """The kind of key."""
    @property
    def field(self) -> str:
        """The field's stable name."""
    @property
    def window(self) -> int | None:
        """Records a sorted-neighbourhood window spans."""
    @property
    def max_len(self) -> int | None:
        """Leading characters deletions are taken from."""
    @property
    def length(self) -> int | None:
        """A prefix key's length in characters."""
    @property
    def q(self) -> int | None:
        """Characters per q-gram."""

@final
class FieldProbabilities:
    """One rule's Fellegi–Sunter probabilities: ``m`` (agrees for a true pair), ``u`` (for a false one)."""

    def __new__(cls, m: float, u: float) -> FieldProbabilities: ...
    @property
    def m(self) -> float: ...
    @property
    def u(self) -> float: ...

@final
class ProbabilisticModel:
    """A Fellegi–Sunter model: the prior share of compared pairs that are one record, m and u per rule."""

    def __new__(cls, prior: float, fields: Sequence[FieldProbabilities]) -> ProbabilisticModel: ...
    @property
    def prior(self) -> float: ...
    @property
    def fields(self) -> list[FieldProbabilities]: ...

@final
class MatchRules:
    """The match settings: rules, threshold, scoring (``"weighted"`` or ``"probabilistic"``,
    with an optional ``model``) and blocking (keys combined by union, the block-size cap).
    Every bad rule, key or value is reported together in one ValidationError."""

    def __new__(
        cls,
        rules: Sequence[MatchRule],
        *,
        threshold: float = 0.8,
        scoring: Literal["weighted", "probabilistic"] = "weighted",
        model: ProbabilisticModel | None = None,
        blocking: Sequence[BlockingKey] | None = None,
        max_block: int = 100,
    ) -> MatchRules: ...
    @staticmethod
    def default() -> MatchRules:
        """The rules for Chinese B2B customers (weighted)."""
    @staticmethod
    def people(date_of_birth_field: str = "date_of_birth") -> MatchRules:
        """The rules for hand-entered people (Fellegi–Sunter, m and u estimated from the data)."""
    @property
    def rules(self) -> list[MatchRule]: ...
    @property
    def threshold(self) -> float: ...
    @property
    def scoring(self) -> Literal["weighted", "probabilistic"]: ...
    @property
    def model(self) -> ProbabilisticModel | None:
        """The probabilistic model, once estimated (``duplicates.train``) or given."""
    @property
    def blocking(self) -> list[BlockingKey]: ...
    @property
    def max_block(self) -> int: ...

@final
class Duplicates:
    """``crm.duplicates``: the check, the scan, not-duplicate marks, merge and undo."""

    def find(self, name: str, **fields: Unpack[CustomerFields]) -> builtins.list[dict[str, Any]]:
        """The likely duplicates of a customer not yet created, best first."""
    def of(self, id: IdLike) -> builtins.list[dict[str, Any]]:
        """The likely duplicates of a stored customer, best first."""
    def scan(self, **filters: Unpack[CustomerFilters]) -> ScanResult:
        """Clusters of likely duplicates among the matching customers."""
    def link(self, left: CustomerFilters, right: CustomerFilters) -> ScanResult:
        """Links the customers matching ``left`` against those matching ``right`` (pairs across the two only)."""
    def rules(self) -> MatchRules:
        """The match rules, scoring and blocking duplicates are judged by."""
    def set_rules(self, rules: MatchRules) -> MatchRules:
        """Replaces the match rules (checked first: every bad rule is named); returns them."""
    def train(self, **filters: Unpack[CustomerFilters]) -> MatchRules:
        """Estimates the probabilistic model from the matching customers, stores it, returns the rules."""
    def learn(self, same: Sequence[tuple[IdLike, IdLike]]) -> MatchRules:
        """Learns the probabilistic model from pairs confirmed as one customer and the pairs marked not duplicate."""
    def blocking_report(self, known: Sequence[tuple[IdLike, IdLike]]) -> BlockingReport:
        """Of pairs known to be duplicates, how many blocking compares and scoring then matches."""
    def not_duplicates(self) -> builtins.list[tuple[uuid.UUID, uuid.UUID]]:
        """The pairs marked as not duplicates, each once."""
    def mark_not_duplicate(self, a: IdLike, b: IdLike) -> None:
        """Marks two customers as not duplicates: never proposed again."""
    def plan_merge(
        self,
        survivor: IdLike,
        merged: Sequence[IdLike],
        *,
        policy: Literal["most_recent", "most_complete"] = "most_recent",
        choose: Mapping[str, IdLike] | None = None,
    ) -> dict[str, Any]:
        """What merging would do; nothing is written."""
    def merge(
        self,
        survivor: IdLike,
        merged: Sequence[IdLike],
        *,
        policy: Literal["most_recent", "most_complete"] = "most_recent",
        choose: Mapping[str, IdLike] | None = None,
    ) -> dict[str, Any]:
        """Merges; the plan with "merge_id" added (for ``undo_merge``)."""
    def undo_merge(self, merge_id: str) -> None:
        """Undoes a merge: every record back as it was."""
    def merged_into(self, id: IdLike) -> uuid.UUID | None:
        """The survivor a merged customer now lives on."""

@final
class ImportReport:
    """What an import did."""

    @property
    def rows(self) -> int: ...
    @property
    def created(self) -> builtins.list[uuid.UUID]: ...
    @property
    def updated(self) -> builtins.list[uuid.UUID]: ...
    @property
    def linked(self) -> builtins.list[uuid.UUID]: ...
    @property
    def skipped(self) -> Table[_Row]: ...
    @property
    def rejected(self) -> Table[_Row]: ...
    @property
    def ignored_columns(self) -> builtins.list[str]: ...
    @property
    def committed(self) -> bool: ...

@final
class Files:
    """``crm.files``: import templates, import, streamed export, backups."""

    @staticmethod
    def import_template(format: Literal["csv", "xlsx"] = "csv") -> bytes:
        """An import template with Chinese headers and one example row."""
    def import_products(
        self,
        data: bytes,
        *,
        mode: Literal["all_or_nothing", "keep_good"] = "all_or_nothing",
        source_system: str | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> CommerceImportReport:
        """Imports a catalog from the bytes of an ERP's CSV or .xlsx export (synced by external id, else code)."""
    def import_purchases(
        self,
        data: bytes,
        *,
        mode: Literal["all_or_nothing", "keep_good"] = "all_or_nothing",
        source_system: str | None = None,
        columns: Mapping[str, str] | None = None,
    ) -> CommerceImportReport:
        """Imports purchases, one a row, from the bytes of a CSV or .xlsx export (recorded once by source and order number)."""
    def import_customers(
        self,
        data: bytes,
        *,
        columns: Mapping[str, str] | None = None,
        on_duplicate: Literal["skip", "update", "create", "link"] = "skip",
        mode: Literal["all_or_nothing", "keep_good"] = "all_or_nothing",
        progress: Callable[[int, int], object] | None = None,
    ) -> ImportReport:
        """Imports customers from the bytes of a CSV or .xlsx file."""
    def export_to_path(
        self,
        path: str | os.PathLike[str],
        *,
        entity: Literal["customers", "contacts", "interactions"] = "customers",
        format: Literal["csv", "xlsx", "jsonl"] = "csv",
        **filters: Unpack[CustomerFilters],
    ) -> int:
        """Streams records of the matching customers into a new file; returns the row count."""
    def backup(self, path: str | os.PathLike[str]) -> AuditCheck:
        """Writes a consistent online backup to the new file ``path``."""

@final
class Stage:
    def __new__(
        cls,
        key: str,
        name: str,
        kind: StageKindName,
        probability: decimal.Decimal,
        *,
        exit_requirements: set[str] = ...,
        rotting_days: int | None = None,
    ) -> Stage: ...
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def kind(self) -> StageKind: ...
    @property
    def probability(self) -> decimal.Decimal: ...
    @property
    def exit_requirements(self) -> set[str]: ...
    @property
    def rotting_days(self) -> int | None: ...

@final
class Pipeline:
    def __new__(
        cls,
        key: str,
        name: str,
        stages: Sequence[Stage],
        *,
        transitions: Mapping[str, set[str]] = ...,
        lost_reasons: Sequence[str] = ...,
    ) -> Pipeline: ...
    @property
    def key(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def stages(self) -> list[Stage]: ...
    @property
    def transitions(self) -> dict[str, set[str]]: ...
    @property
    def lost_reasons(self) -> list[str]: ...

@final
class ProductLine:
    def __new__(
        cls, product: str, quantity: decimal.Decimal | int | str, unit_price: decimal.Decimal | int | str, discount: decimal.Decimal | int | str = ...
    ) -> ProductLine: ...
    @staticmethod
    def of_product(
        code: str, quantity: decimal.Decimal | int | str, unit_price: decimal.Decimal | int | str, discount: decimal.Decimal | int | str = ...
    ) -> ProductLine:
        """A line of the catalog product ``code`` (named from the catalog when written)."""
    @property
    def product(self) -> str: ...
    @property
    def product_code(self) -> str | None: ...
    @property
    def quantity(self) -> decimal.Decimal: ...
    @property
    def unit_price(self) -> decimal.Decimal: ...
    @property
    def discount(self) -> decimal.Decimal: ...
    @property
    def total(self) -> decimal.Decimal: ...

@final
class Milestone:
    def __new__(cls, name: str, due_on: datetime.date | None = None, done_on: datetime.date | None = None) -> Milestone: ...
    @property
    def name(self) -> str: ...
    @property
    def due_on(self) -> datetime.date | None: ...
    @property
    def done_on(self) -> datetime.date | None: ...

@final
class Opportunity:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def code(self) -> str: ...
    @property
    def customer_id(self) -> uuid.UUID | None: ...
    @property
    def contact_id(self) -> uuid.UUID | None: ...
    @property
    def name(self) -> str: ...
    @property
    def pipeline(self) -> str: ...
    @property
    def stage(self) -> str: ...
    @property
    def furthest_stage(self) -> str: ...
    @property
    def probability(self) -> decimal.Decimal: ...
    @property
    def probability_source(self) -> ProbabilitySource: ...
    @property
    def amount(self) -> decimal.Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def expected_close(self) -> datetime.date | None: ...
    @property
    def lines(self) -> list[ProductLine]: ...
    @property
    def milestones(self) -> list[Milestone]: ...
    @property
    def cadence_days(self) -> int | None: ...
    @property
    def lost_reason(self) -> str | None: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def province(self) -> str | None: ...
    @property
    def opened_at(self) -> datetime.datetime: ...
    @property
    def won_at(self) -> datetime.datetime | None: ...
    @property
    def lost_at(self) -> datetime.datetime | None: ...
    @property
    def last_activity_at(self) -> datetime.datetime: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...
    @property
    def is_open(self) -> bool: ...

@final
class StageHistoryEntry:
    @property
    def opportunity_id(self) -> uuid.UUID: ...
    @property
    def seq(self) -> int: ...
    @property
    def from_stage(self) -> str | None: ...
    @property
    def to_stage(self) -> str: ...
    @property
    def amount(self) -> decimal.Decimal: ...
    @property
    def probability(self) -> decimal.Decimal: ...
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def by(self) -> str: ...
    @property
    def from_entered_at(self) -> datetime.datetime | None: ...
    @property
    def lost_reason(self) -> str | None: ...

@final
class LeadConversion:
    @property
    def customer_id(self) -> uuid.UUID: ...
    @property
    def linked_existing(self) -> bool: ...
    @property
    def matched_by(self) -> str | None: ...
    @property
    def contact_id(self) -> uuid.UUID: ...
    @property
    def opportunity_id(self) -> uuid.UUID | None: ...

@final
class Lead:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def company(self) -> str | None: ...
    @property
    def phone(self) -> str | None: ...
    @property
    def email(self) -> str | None: ...
    @property
    def source(self) -> str | None: ...
    @property
    def province(self) -> str | None: ...
    @property
    def industry(self) -> Industry | None: ...
    @property
    def budget_confirmed(self) -> bool: ...
    @property
    def need_confirmed(self) -> bool: ...
    @property
    def grade(self) -> LeadGrade: ...
    @property
    def status(self) -> LeadStatus: ...
    @property
    def owner(self) -> str | None: ...
    @property
    def department(self) -> str | None: ...
    @property
    def converted(self) -> LeadConversion | None: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...

@final
class Task:
    @property
    def id(self) -> uuid.UUID: ...
    @property
    def title(self) -> str: ...
    @property
    def notes(self) -> str | None: ...
    @property
    def due_at(self) -> datetime.datetime: ...
    @property
    def owner(self) -> str: ...
    @property
    def department(self) -> str | None: ...
    @property
    def opportunity_id(self) -> uuid.UUID | None: ...
    @property
    def customer_id(self) -> uuid.UUID | None: ...
    @property
    def done_at(self) -> datetime.datetime | None: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...

@final
class AgendaItem:
    @property
    def kind(self) -> Literal["task", "follow_up"]: ...
    @property
    def due_at(self) -> datetime.datetime: ...
    @property
    def task(self) -> Task | None: ...
    @property
    def opportunity_id(self) -> uuid.UUID | None: ...
    @property
    def code(self) -> str | None: ...

@final
class Agenda:
    @property
    def overdue(self) -> list[AgendaItem]: ...
    @property
    def due_today(self) -> list[AgendaItem]: ...
    @property
    def rotting(self) -> list[str]: ...

@final
class CycleStats:
    @property
    def count(self) -> int: ...
    @property
    def amount(self) -> decimal.Decimal: ...
    @property
    def average_days(self) -> decimal.Decimal | None: ...
    @property
    def median_days(self) -> decimal.Decimal | None: ...

@final
class SalesReport:
    @property
    def pipeline(self) -> str: ...
    @property
    def currency(self) -> str: ...
    @property
    def funnel(self) -> Table: ...
    @property
    def loss_reasons(self) -> Table: ...
    @property
    def won(self) -> CycleStats: ...
    @property
    def lost(self) -> CycleStats: ...
    @property
    def win_rate(self) -> decimal.Decimal | None: ...
    @property
    def won_by_owner(self) -> Table: ...
    @property
    def won_by_product(self) -> Table: ...
    @property
    def forecast(self) -> Table: ...
    @property
    def open_count(self) -> int: ...
    @property
    def open_amount(self) -> decimal.Decimal: ...
    @property
    def weighted_pipeline(self) -> decimal.Decimal: ...
    @property
    def velocity_per_day(self) -> decimal.Decimal | None: ...

@final
class Sales:
    """``crm.sales``: pipelines, lead rules, the sales report and the agenda."""

    @property
    def opportunities(self) -> Opportunities:
        """Opportunities: create, get, list, count, update, move between stages."""
    @property
    def leads(self) -> Leads:
        """Leads: create (graded and assigned), get, list, count, convert."""
    @property
    def tasks(self) -> Tasks:
        """Tasks: create, complete, list."""
    def pipeline(self, key: str = "standard") -> Pipeline:
        """A pipeline by key (the built-in "standard" one until another of that key is stored)."""
    def set_pipeline(self, pipeline: Pipeline) -> Pipeline:
        """Stores a pipeline (new, or replacing the one of its key)."""
    def lead_rules(self) -> dict[str, Any]:
        """The lead rules: {"grading": [...], "assignment": [...]}."""
    def set_lead_rules(self, rules: Mapping[str, Any]) -> dict[str, Any]:
        """Replaces the lead rules; returns them."""
    def report(
        self,
        pipeline: str = "standard",
        *,
        start: datetime.datetime | None = None,
        end: datetime.datetime | None = None,
        currency: str | None = None,
        owner: str | None = None,
        department: str | None = None,
    ) -> SalesReport:
        """The funnel, win rate, cycle times, won amounts and forecast of a pipeline."""
    def agenda(self, user: str | None = None, *, at: datetime.datetime | None = None) -> Agenda:
        """A user's agenda (default: the acting user) at ``at`` (default: now)."""

@final
class Opportunities:
    """``crm.sales.opportunities``: deals through the stages of a pipeline."""

    def create(self, name: str, **fields: Unpack[OpportunityFields]) -> Opportunity:
        """Creates an opportunity."""
    def create_many(self, rows: Iterable[NewOpportunity]) -> builtins.list[Opportunity]:
        """Creates many opportunities in one transaction, all or none; errors name their row (``opportunities[3].currency``)."""
    def get(self, id: IdLike) -> Opportunity:
        """An opportunity by id."""
    def get_by_code(self, code: str) -> Opportunity:
        """An opportunity by code, e.g. "O20240501001"."""
    def update(self, id: IdLike, version: int, **changes: Unpack[OpportunityChanges]) -> Opportunity:
        """Changes the fields given; a stale ``version`` raises ConflictError."""
    def move_to(
        self,
        id: IdLike,
        version: int,
        stage: str,
        *,
        lost_reason: str | None = None,
        at: datetime.datetime | None = None,
    ) -> Opportunity:
        """Moves an opportunity to ``stage``; a disallowed move raises and changes nothing."""
    def history(self, id: IdLike) -> builtins.list[StageHistoryEntry]:
        """An opportunity's stage history, oldest first."""
    def list(
        self, *, after: str | None = None, limit: int = 100, **filters: Unpack[OpportunityFilters]
    ) -> Table[Opportunity]:
        """One page of the matching opportunities, oldest first; ``.next`` is the cursor of the next."""
    def list_all(self, **filters: Unpack[OpportunityFilters]) -> Table[Opportunity]:
        """Every matching opportunity, as one table."""
    def count(self, **filters: Unpack[OpportunityFilters]) -> int:
        """How many opportunities match."""

@final
class Leads:
    """``crm.sales.leads``: prospects before they are customers."""

    def create(
        self,
        name: str,
        *,
        company: str | None = None,
        phone: str | None = None,
        email: str | None = None,
        source: str | None = None,
        province: str | None = None,
        industry: IndustryName | None = None,
        budget_confirmed: bool = False,
        need_confirmed: bool = False,
        owner: str | None = None,
    ) -> Lead:
        """Creates a lead, graded and assigned by the lead rules."""
    def get(self, id: IdLike) -> Lead:
        """A lead by id."""
    def list(
        self,
        *,
        after: str | None = None,
        limit: int = 100,
        status: LeadStatusName | None = None,
        open: bool | None = None,
        owner: str | None = None,
        grade: LeadGradeName | None = None,
    ) -> Table[Lead]:
        """One page of the matching leads, oldest first."""
    def list_all(
        self,
        *,
        status: LeadStatusName | None = None,
        open: bool | None = None,
        owner: str | None = None,
        grade: LeadGradeName | None = None,
    ) -> Table[Lead]:
        """Every matching lead, as one table."""
    def count(
        self,
        *,
        status: LeadStatusName | None = None,
        open: bool | None = None,
        owner: str | None = None,
        grade: LeadGradeName | None = None,
    ) -> int:
        """How many leads match."""
    def convert(self, id: IdLike, *, opportunity: NewOpportunity | None = None) -> LeadConversion:
        """Converts a lead into a customer, contact and (given ``opportunity``) opportunity, in one transaction."""

@final
class Tasks:
    """``crm.sales.tasks``: to-dos with a due instant."""

    def create(
        self,
        title: str,
        due_at: datetime.datetime,
        *,
        notes: str | None = None,
        owner: str | None = None,
        opportunity_id: IdLike | None = None,
        customer_id: IdLike | None = None,
    ) -> Task:
        """Creates a task due at ``due_at``."""
    def complete(self, id: IdLike, version: int) -> Task:
        """Marks a task done."""
    def get(self, id: IdLike) -> Task:
        """A task by id."""
    def list(
        self,
        *,
        after: str | None = None,
        limit: int = 100,
        owner: str | None = None,
        opportunity_id: IdLike | None = None,
        open: bool | None = None,
    ) -> Table[Task]:
        """One page of the matching tasks, oldest first (``.next`` is the cursor of the next)."""
    def list_all(
        self, *, owner: str | None = None, opportunity_id: IdLike | None = None, open: bool | None = None
    ) -> Table[Task]:
        """Every matching task, by due instant."""
    def count(
        self, *, owner: str | None = None, opportunity_id: IdLike | None = None, open: bool | None = None
    ) -> int:
        """How many tasks match."""


@final
class Ticket:
    @property
    def id(self) -> str: ...
    @property
    def code(self) -> str: ...
    @property
    def customer_id(self) -> str | None: ...
    @property
    def contact_id(self) -> str | None: ...
    @property
    def kind(self) -> TicketKind: ...
    @property
    def priority(self) -> Priority: ...
    @property
    def channel(self) -> Channel: ...
    @property
    def category(self) -> str | None: ...
    @property
    def subject(self) -> str: ...
    @property
    def description(self) -> str | None: ...
    @property
    def status(self) -> TicketStatus: ...
    @property
    def assignee(self) -> str | None: ...
    @property
    def group(self) -> str | None: ...
    @property
    def skill(self) -> str | None: ...
    @property
    def escalation_level(self) -> int: ...
    @property
    def resolution(self) -> str | None: ...
    @property
    def satisfaction(self) -> int | None: ...
    @property
    def satisfaction_comment(self) -> str | None: ...
    @property
    def risk_flags(self) -> set[str]: ...
    @property
    def sla_policy(self) -> str | None: ...
    @property
    def sla_paused_secs(self) -> int: ...
    @property
    def pending_since(self) -> datetime.datetime | None: ...
    @property
    def reopen_count(self) -> int: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def first_response_at(self) -> datetime.datetime | None: ...
    @property
    def resolved_at(self) -> datetime.datetime | None: ...
    @property
    def closed_at(self) -> datetime.datetime | None: ...
    @property
    def version(self) -> int: ...

@final
class TicketEntry:
    @property
    def seq(self) -> int: ...
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def by(self) -> str: ...
    @property
    def type(self) -> Literal["created", "reply", "status", "assigned", "rated"]: ...
    @property
    def details(self) -> dict[str, Any]: ...

@final
class Article:
    @property
    def id(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def body(self) -> str: ...
    @property
    def tags(self) -> set[str]: ...
    @property
    def category(self) -> str | None: ...
    @property
    def published(self) -> bool: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...

@final
class ArticleHit:
    @property
    def article(self) -> Article: ...
    @property
    def score(self) -> float: ...

@final
class ServiceReport:
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def tickets(self) -> int: ...
    @property
    def by_status(self) -> Table: ...
    @property
    def volume(self) -> Table: ...
    @property
    def times(self) -> Table: ...
    @property
    def sla(self) -> Table: ...
    @property
    def resolved(self) -> int: ...
    @property
    def reopened(self) -> int: ...
    @property
    def reopen_rate(self) -> decimal.Decimal | None: ...
    @property
    def csat_responses(self) -> int: ...
    @property
    def csat_mean(self) -> decimal.Decimal | None: ...
    @property
    def csat_satisfied_rate(self) -> decimal.Decimal | None: ...
    @property
    def csat(self) -> Table: ...
    @property
    def backlog(self) -> Table: ...
    @property
    def flagged(self) -> int: ...

@final
class Marketing:
    """``crm.marketing``: behaviour events and segments."""

    @property
    def events(self) -> Events:
        """Behaviour events: record in bulk (idempotent by external id), list per customer."""
    @property
    def segments(self) -> Segments:
        """Segments: the customers an expression selects, and why one is or is not in it."""
    def settings(self) -> MarketingSettings:
        """The marketing settings."""
    def set_settings(self, *, event_retention_days: int | None = None) -> MarketingSettings:
        """Replaces the settings: a retention (1–36,500 days, None: for ever) refuses older events and lets ``events.purge`` remove them."""

@final
class Events:
    """``crm.marketing.events``: what customers did (page views, enquiries, purchases)."""

    def record(self, events: Sequence[NewBehaviourEvent]) -> RecordedEvents:
        """Records a batch, all or none: every bad field together (``events[2].name``); each customer must be one the user may update."""
    def purge(self) -> PurgedEvents:
        """Removes every event older than the retention (elevated, by a user who may delete every customer)."""
    def list(
        self, customer_id: IdLike, *, since: datetime.datetime | None = None, until: datetime.datetime | None = None
    ) -> builtins.list[BehaviourEvent]:
        """A customer's events in the order they happened, at or after ``since`` and before ``until``."""

@final
class Segments:
    """``crm.marketing.segments``: customers selected by an expression such as ``tag:VIP AND NOT status = lost``."""

    def parse(self, text: str) -> dict[str, Any]:
        """The segment's tree as plain dicts and lists (``{"and": [...]}``, ``{"is": {"tag": "VIP"}}``); pass it wherever a segment goes."""
    def to_text(self, segment: SegmentLike) -> str:
        """The text form of a segment (text or tree), normalized."""
    def members(self, segment: SegmentLike) -> Table[Customer]:
        """The customers in the segment the user may read, as a table; a syntax error is a ValidationError saying where."""
    def members_page(self, segment: SegmentLike, *, after: str | None = None, limit: int = 100) -> Table[Customer]:
        """One page of the segment's members: ``limit`` after the cursor ``after`` (a page's ``next``)."""
    def count(self, segment: SegmentLike) -> int:
        """How many customers the user may read are in the segment."""
    def explain(self, customer_id: IdLike, segment: SegmentLike) -> SegmentExplanation:
        """Every node of the segment with its value for one customer."""
    def save(
        self,
        name: str,
        segment: SegmentLike,
        *,
        description: str | None = None,
        tag: str | None = None,
        sticky: bool = False,
        includes: Iterable[IdLike] | None = None,
        excludes: Iterable[IdLike] | None = None,
    ) -> SavedSegment:
        """Saves a segment under ``name`` and evaluates it; its stored membership then follows every write. ``tag``: a dynamic tag; ``includes``/``excludes`` replace the manual lists (None keeps them)."""
    def get(self, name: str) -> SavedSegment:
        """A saved segment by name."""
    def list(self) -> builtins.list[SavedSegment]:
        """Every saved segment, by name."""
    def delete(self, name: str) -> None:
        """Deletes a saved segment (its members leave; its history stays)."""
    def include(self, name: str, customer_ids: Iterable[IdLike]) -> SavedSegment:
        """Keeps these customers in the saved segment whatever its rule says."""
    def exclude(self, name: str, customer_ids: Iterable[IdLike]) -> SavedSegment:
        """Keeps these customers out of the saved segment whatever its rule says."""
    def reset_manual(self, name: str, customer_ids: Iterable[IdLike]) -> SavedSegment:
        """Takes these customers off the includes and excludes: the rule decides again."""
    def reevaluate(self, name: str) -> Reevaluated:
        """Re-evaluates one saved segment whole."""
    def reevaluate_due(self) -> Reevaluated:
        """Re-evaluates every saved segment that depends on the date, at the CRM's now."""
    def current(self, name: str, *, after: str | None = None, limit: int | None = None) -> Table[_Row]:
        """The current members' stays (``customer_id``, ``entered_at``, ``entered_because``, …) the user may read; with ``limit``, one page."""
    def history(
        self,
        name: str,
        *,
        customer_id: IdLike | None = None,
        after: str | None = None,
        limit: int | None = None,
    ) -> Table[_Row]:
        """Every stay, open or closed (of one customer with ``customer_id``), the user may read; with ``limit``, one page."""

@final
class Service:
    """``crm.service``: the service settings, the SLA overview and the service report."""

    @property
    def tickets(self) -> Tickets:
        """Tickets: create, get, list, count, reply, move, assign, escalate, rate."""
    def settings(self) -> dict[str, Any]:
        """The service settings (calendar, SLA policies, groups, routes, …)."""
    def set_settings(self, settings: Mapping[str, Any]) -> dict[str, Any]:
        """Replaces the settings; returns them."""
    def sla_overview(self, *, at: datetime.datetime | None = None, **filters: Unpack[TicketFilters]) -> Table[_Row]:
        """The SLA of the matching tickets at ``at`` (default now), a row per ticket."""
    def report(
        self,
        *,
        period: PeriodName = "day",
        at: datetime.datetime | None = None,
        **filters: Unpack[TicketFilters],
    ) -> ServiceReport:
        """The service report over the matching tickets."""

@final
class Tickets:
    """``crm.service.tickets``: service tickets, their SLAs and their history."""

    def create(
        self,
        subject: str,
        *,
        kind: TicketKindName,
        priority: PriorityName,
        description: str | None = None,
        channel: ChannelName = "web",
        category: str | None = None,
        customer_id: IdLike | None = None,
        contact_id: IdLike | None = None,
        group: str | None = None,
        skill: str | None = None,
        assignee: str | None = None,
        created_at: datetime.datetime | None = None,
    ) -> Ticket:
        """Raises a ticket (routed, assigned, flagged and given SLA targets by the settings)."""
    def create_many(self, rows: Iterable[NewTicket]) -> builtins.list[Ticket]:
        """Raises many tickets in one transaction, all or none; errors name their row (``tickets[3].priority``)."""
    def get(self, id: IdLike) -> Ticket:
        """A ticket by id."""
    def get_by_code(self, code: str) -> Ticket:
        """A ticket by code, e.g. "T20240501001"."""
    def list(self, *, after: str | None = None, limit: int = 100, **filters: Unpack[TicketFilters]) -> Table[Ticket]:
        """One page of the matching tickets, oldest first; ``.next`` is the cursor of the next."""
    def list_all(self, **filters: Unpack[TicketFilters]) -> Table[Ticket]:
        """Every matching ticket, as one table."""
    def count(self, **filters: Unpack[TicketFilters]) -> int:
        """How many tickets match."""
    def entries(self, id: IdLike) -> builtins.list[TicketEntry]:
        """A ticket's history, oldest first."""
    def reply(
        self, id: IdLike, version: int, body: str, *, public: bool = True, at: datetime.datetime | None = None
    ) -> Ticket:
        """Adds a public reply or (public=False) an internal note."""
    def move_to(
        self,
        id: IdLike,
        version: int,
        status: TicketStatusName,
        *,
        resolution: str | None = None,
        at: datetime.datetime | None = None,
    ) -> Ticket:
        """Moves a ticket's status; an illegal move raises InvalidStateError."""
    def assign(
        self,
        id: IdLike,
        version: int,
        *,
        agent: str | None = None,
        group: str | None = None,
        note: str | None = None,
    ) -> Ticket:
        """Gives a ticket to an agent, a group, or an agent of its group."""
    def escalate(self, id: IdLike, version: int, *, note: str | None = None) -> Ticket:
        """Escalates a ticket to its group's escalation group."""
    def rate(self, id: IdLike, version: int, score: int, *, comment: str | None = None) -> Ticket:
        """Records the customer's rating (1–5, once, after resolution)."""
    def set_priority(self, id: IdLike, version: int, priority: PriorityName) -> Ticket:
        """Changes a ticket's priority (its SLA targets are chosen again)."""
    def sla(self, id: IdLike, *, at: datetime.datetime | None = None) -> Table[_Row]:
        """The SLA state of one ticket at ``at`` (default now)."""

@final
class KnowledgeBase:
    """``crm.kb``: articles, ranked search, suggestions for a ticket."""

    def create(
        self,
        title: str,
        body: str,
        *,
        tags: Sequence[str] = ...,
        category: str | None = None,
        published: bool = True,
    ) -> Article:
        """Adds an article."""
    def update(
        self,
        id: IdLike,
        version: int,
        title: str,
        body: str,
        *,
        tags: Sequence[str] = ...,
        category: str | None = None,
        published: bool = True,
    ) -> Article:
        """Replaces an article's content."""
    def get(self, id: IdLike) -> Article:
        """An article by id."""
    def search(
        self,
        text: str,
        *,
        limit: int | None = None,
        match: Literal["all", "any"] = "all",
        category: str | None = None,
        tag: str | None = None,
        include_unpublished: bool = False,
    ) -> builtins.list[ArticleHit]:
        """Ranked search in Chinese or English."""
    def suggest(self, id: IdLike, *, limit: int | None = None) -> builtins.list[ArticleHit]:
        """Published articles that may answer a ticket."""

@final
class Access:
    """``crm.access``: departments, users, roles, credentials, elevation, ``explain``, the field key."""

    def set_department(self, id: str, name: str, parent: str | None = None) -> None:
        """Adds or replaces a department. Needs elevation."""
    def set_user(
        self,
        id: str,
        name: str,
        *,
        department: str | None = None,
        roles: Sequence[str] = ...,
        regions: Sequence[str] = ...,
        active: bool = True,
    ) -> None:
        """Adds or replaces a user; the first turns access control on and must be an administrator."""
    def set_role(
        self,
        id: str,
        name: str,
        *,
        grants: Sequence[tuple[str, Sequence[str], str]],
        fields: Sequence[tuple[str, str, str]] = ...,
    ) -> None:
        """Adds or replaces a custom role: (entity, [actions], scope) grants, (entity, field, visibility) rules."""
    def remove_role(self, id: str) -> None:
        """Removes a custom role nobody holds. Needs elevation."""
    def model(self) -> dict[str, Any]:
        """The access model: departments, users, custom roles."""
    def explain(
        self,
        action: ActionName,
        entity: EntityKindName,
        *,
        record_id: IdLike | None = None,
        user: str | None = None,
    ) -> dict[str, Any]:
        """Whether a user may do ``action`` on ``entity`` (or one record of it), and why."""
    def rotate_field_key(self, key: bytes) -> int:
        """Re-encrypts every sensitive field under a new 32-byte key. Needs elevation."""
    def set_password(self, user: str, password: str) -> None:
        """Sets a user's password (argon2id)."""
    def enroll_totp(self, user: str) -> str:
        """Enrolls a user's TOTP authenticator; returns its base32 secret."""
    def credentials(self, user: str) -> dict[str, bool]:
        """Which credentials a user has: {"password": bool, "totp": bool}."""
    def elevate(self, *, password: str | None = None, totp: str | None = None, host_proof: str | None = None) -> Crm:
        """The same CRM, re-verified by exactly one proof: elevated for 15 minutes."""

@final
class Audit:
    """``crm.audit``: the change log and the check of its hash chain."""

    def verify(self) -> AuditCheck:
        """Checks the change log's hash chain."""
    def entries(
        self,
        *,
        entity_id: str | None = None,
        customer_id: IdLike | None = None,
        user: str | None = None,
        after_seq: int | None = None,
        limit: int | None = None,
    ) -> builtins.list[ChangeLogEntry]:
        """Change-log entries, oldest first."""

@final
class LevelRule:
    """Derives a customer's level from a numeric custom field (by default ``spend_12m``, kept at
    the paid spend of the trailing twelve months in ``currency`` once purchases are recorded):
    A from ``a_min``, B from ``b_min``, else C."""

    def __new__(
        cls,
        *,
        field: str = ...,
        a_min: decimal.Decimal | int = ...,
        b_min: decimal.Decimal | int = ...,
        currency: str = ...,
    ) -> LevelRule: ...
    @property
    def field(self) -> str: ...
    @property
    def a_min(self) -> decimal.Decimal: ...
    @property
    def b_min(self) -> decimal.Decimal: ...
    @property
    def currency(self) -> str: ...

@final
class Product:
    """A product of the catalog (read-only)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def code(self) -> str: ...
    @property
    def name(self) -> str: ...
    @property
    def category(self) -> str | None: ...
    @property
    def unit(self) -> str | None: ...
    @property
    def prices(self) -> dict[str, decimal.Decimal]:
        """The list price per currency."""
    @property
    def tax_rate(self) -> decimal.Decimal:
        """In percent."""
    @property
    def active(self) -> bool: ...
    @property
    def stock(self) -> decimal.Decimal | None: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_by(self) -> str: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...

@final
class Purchase:
    """A purchase: an order or a transaction (read-only)."""

    @property
    def id(self) -> uuid.UUID: ...
    @property
    def customer_id(self) -> uuid.UUID: ...
    @property
    def at(self) -> datetime.datetime: ...
    @property
    def amount(self) -> decimal.Decimal: ...
    @property
    def currency(self) -> str: ...
    @property
    def lines(self) -> builtins.list[ProductLine]: ...
    @property
    def channel(self) -> str | None: ...
    @property
    def source_system(self) -> str | None: ...
    @property
    def external_id(self) -> str | None: ...
    @property
    def status(self) -> Literal["paid", "refunded"]: ...
    @property
    def created_by(self) -> str: ...
    @property
    def created_at(self) -> datetime.datetime: ...
    @property
    def updated_at(self) -> datetime.datetime: ...
    @property
    def version(self) -> int: ...

@final
class SyncReport:
    """What a sync did: each input's id and outcome, in input order, and the counts."""

    @property
    def ids(self) -> builtins.list[uuid.UUID]: ...
    @property
    def outcomes(self) -> builtins.list[Literal["created", "updated", "unchanged"]]: ...
    @property
    def created(self) -> int: ...
    @property
    def updated(self) -> int: ...
    @property
    def unchanged(self) -> int: ...

@final
class CommerceImportReport:
    """What a catalog or purchase import did."""

    @property
    def rows(self) -> int: ...
    @property
    def sync(self) -> SyncReport: ...
    @property
    def rejected(self) -> Table[_Row]:
        """row, column, value, reason."""
    @property
    def ignored_columns(self) -> builtins.list[str]: ...
    @property
    def committed(self) -> bool: ...

@final
class LifetimeValue:
    """What ``crm.analytics.lifetime_value`` fitted and predicted."""

    @property
    def purchases_model(self) -> dict[str, float]:
        """BG/NBD: r, alpha (days), a, b."""
    @property
    def spend_model(self) -> dict[str, float] | None:
        """Gamma-Gamma: p, q, v (none without repeat buyers)."""
    @property
    def log_likelihood(self) -> float: ...
    @property
    def customers(self) -> Table[_Row]:
        """customer_id, frequency, recency_days, age_days, p_alive, churn_probability, expected_purchases, expected_value, clv."""

@final
class Analytics:
    """``crm.analytics``: purchase summaries, RFM and lifetime value over the purchases the user may read."""

    def customer_purchases(
        self,
        *,
        currency: str = "CNY",
        customer_id: IdLike | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> Table[_Row]:
        """customer_id, first_day, last_day, days, purchases, total, repeat_total, last_at."""
    def rfm(
        self,
        *,
        currency: str = "CNY",
        bins: int = 5,
        segments: Sequence[Mapping[str, object]] | None = None,
        customer_id: IdLike | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> Table[_Row]:
        """customer_id, recency_days, frequency, monetary, r, f, m, segment."""
    def lifetime_value(
        self,
        *,
        currency: str = "CNY",
        months: int = 12,
        monthly_discount: float = 0.01,
        horizon_days: int = 90,
        customer_id: IdLike | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
    ) -> LifetimeValue:
        """Fits BG/NBD and Gamma-Gamma and predicts P(alive), churn, expected purchases and CLV per customer."""

@final
class Commerce:
    """``crm.commerce``: the product catalog and purchases."""

    @property
    def products(self) -> Products: ...
    @property
    def purchases(self) -> Purchases: ...

@final
class Products:
    """``crm.commerce.products``: the catalog (产品库)."""

    def create(
        self,
        code: str,
        name: str,
        *,
        category: str | None = None,
        unit: str | None = None,
        prices: Mapping[str, decimal.Decimal | int | str] | None = None,
        tax_rate: decimal.Decimal | int | str | None = None,
        active: bool = True,
        stock: decimal.Decimal | int | str | None = None,
        external_id: str | None = None,
    ) -> Product:
        """Adds a product; a taken code or external id raises DuplicateError."""
    def sync(self, products: Iterable[NewProduct]) -> SyncReport:
        """Creates or updates products as an ERP sends them, all or none (by external id, else code)."""
    def update(
        self,
        id: IdLike,
        version: int,
        code: str,
        name: str,
        *,
        category: str | None = None,
        unit: str | None = None,
        prices: Mapping[str, decimal.Decimal | int | str] | None = None,
        tax_rate: decimal.Decimal | int | str | None = None,
        active: bool = True,
        stock: decimal.Decimal | int | str | None = None,
        external_id: str | None = None,
    ) -> Product:
        """Replaces the fields of the product at ``version``."""
    def get(self, id: IdLike) -> Product: ...
    def get_by_code(self, code: str) -> Product: ...
    def list(
        self, *, active: bool | None = None, category: str | None = None, after: str | None = None, limit: int = 100
    ) -> Table[Product]:
        """One page of products, oldest first."""
    def list_all(self, *, active: bool | None = None, category: str | None = None) -> Table[Product]: ...
    def count(self, *, active: bool | None = None, category: str | None = None) -> int: ...

@final
class Purchases:
    """``crm.commerce.purchases``: orders and transactions."""

    def record(self, purchases: Iterable[NewPurchase]) -> SyncReport:
        """Records purchases, all or none, once per (source_system, external_id); with a level rule, levels follow."""
    def refund(self, id: IdLike, version: int) -> Purchase:
        """Marks the purchase at ``version`` refunded."""
    def get(self, id: IdLike) -> Purchase: ...
    def list(
        self,
        *,
        customer_id: IdLike | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        status: Literal["paid", "refunded"] | None = None,
        currency: str | None = None,
        source_system: str | None = None,
        after: str | None = None,
        limit: int = 100,
    ) -> Table[Purchase]:
        """One page of the purchases the user may see, oldest first."""
    def list_all(
        self,
        *,
        customer_id: IdLike | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        status: Literal["paid", "refunded"] | None = None,
        currency: str | None = None,
        source_system: str | None = None,
    ) -> Table[Purchase]: ...
    def count(
        self,
        *,
        customer_id: IdLike | None = None,
        since: datetime.datetime | None = None,
        until: datetime.datetime | None = None,
        status: Literal["paid", "refunded"] | None = None,
        currency: str | None = None,
        source_system: str | None = None,
    ) -> int: ...
    def refresh_levels(self) -> int:
        """Re-states every buyer's trailing-12-month spend and level now; how many changed."""

@final
class Crm:
    """An open CRM acting as one user; a context manager. Its calls are grouped by noun."""

    @staticmethod
    def open(
        path: str | os.PathLike[str],
        *,
        user: str,
        field_key: bytes | None = None,
        durability: Literal["full", "normal"] = "full",
        trust_asserted_elevation: bool = False,
        elevation_verifier: Callable[[str, str], bool] | None = None,
        level_rule: LevelRule | None = None,
    ) -> Crm:
        """Opens (or creates) a SQLite file, or connects to PostgreSQL given a URL or libpq string.

        ``durability``: "full" (a commit is on disk when it returns) or "normal" (survives an
        application crash; the last commits may be lost on power failure; faster writes).
        """
    @staticmethod
    def in_memory(
        *,
        user: str,
        trust_asserted_elevation: bool = False,
        elevation_verifier: Callable[[str, str], bool] | None = None,
        level_rule: LevelRule | None = None,
    ) -> Crm:
        """A CRM kept in memory."""
    @staticmethod
    def restore(
        backup: str | os.PathLike[str], into: str | os.PathLike[str], *, field_key: bytes | None = None
    ) -> AuditCheck:
        """Restores a backup into a new SQLite file or an empty PostgreSQL schema."""
    @property
    def user(self) -> str:
        """The acting user."""
    @property
    def customers(self) -> Customers: ...
    @property
    def tags(self) -> Tags: ...
    @property
    def contacts(self) -> Contacts: ...
    @property
    def interactions(self) -> Interactions: ...
    @property
    def custom_fields(self) -> CustomFields: ...
    @property
    def sales(self) -> Sales: ...
    @property
    def marketing(self) -> Marketing: ...
    @property
    def commerce(self) -> Commerce: ...
    @property
    def analytics(self) -> Analytics: ...
    @property
    def service(self) -> Service: ...
    @property
    def kb(self) -> KnowledgeBase: ...
    @property
    def duplicates(self) -> Duplicates: ...
    @property
    def files(self) -> Files: ...
    @property
    def access(self) -> Access: ...
    @property
    def audit(self) -> Audit: ...
    @property
    def closed(self) -> bool:
        """Whether ``close()`` was called."""
    def as_user(self, user: str) -> Crm:
        """The same CRM acting as another user."""
    def elevated(self, until: datetime.datetime) -> Crm:
        """The same CRM with an elevation the host asserts (only in a CRM that trusts it)."""
    def close(self) -> None:
        """Closes this handle."""
    def __enter__(self) -> Self: ...
    def __exit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
        /,
    ) -> None: ...
    def subscribe(self, callback: Callable[[dict[str, Any]], object]) -> int:
        """Calls ``callback(event)`` after every committed change; returns an id for ``unsubscribe``."""
    def unsubscribe(self, id: int) -> bool:
        """Stops a subscription."""

def vocabularies() -> dict[str, builtins.list[str]]:
    """Every closed vocabulary (LifecycleStatus, Industry, TicketStatus, …) with its stable names."""

def hash_password(password: str) -> str: ...
def verify_password(password: str, password_hash: str) -> bool: ...
def generate_totp_secret() -> str: ...
def generate_field_key() -> bytes: ...
def totp_code(
    secret: str, at: datetime.datetime, *, digits: int = 6, algorithm: Literal["sha1", "sha256", "sha512"] = "sha1"
) -> str: ...
def verify_totp(
    secret: str,
    code: str,
    at: datetime.datetime,
    *,
    digits: int = 6,
    algorithm: Literal["sha1", "sha256", "sha512"] = "sha1",
    drift_steps: int = 1,
) -> bool: ...

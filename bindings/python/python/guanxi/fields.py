"""The closed vocabularies of guanxi as `str` enums, and the keyword arguments of its calls as
typed dicts, so that IDEs complete them and mypy --strict catches a misspelt keyword or value.

Every enum member compares equal to its stable name (``LifecycleStatus.CUSTOMER == "customer"``),
so a call takes either; the ``...Name`` aliases list what a call accepts as text (the stable names
and, where there are any, the Chinese labels). ``guanxi.vocabularies()`` returns the same names
from the native library, and the test suite checks that the two agree.
"""

from __future__ import annotations

import datetime
import decimal
import enum
import sys
import uuid
from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Union

if sys.version_info >= (3, 11):
    from typing import Required, TypedDict
else:
    from typing_extensions import Required, TypedDict

if TYPE_CHECKING:
    from guanxi._guanxi import Milestone, ProductLine


class Action(str, enum.Enum):
    """What an operation does, for permission checks."""

    READ = "read"  # 查看
    CREATE = "create"  # 新建
    UPDATE = "update"  # 修改
    DELETE = "delete"  # 删除
    EXPORT = "export"  # 导出
    MERGE = "merge"  # 合并
    ASSIGN = "assign"  # 分配
    CONFIGURE = "configure"  # 配置


ActionName = Union[Action, Literal["read", "create", "update", "delete", "export", "merge", "assign", "configure", "查看", "新建", "修改", "删除", "导出", "合并", "分配", "配置"]]
"""Action, or one of its names."""


class ChangeAction(str, enum.Enum):
    """What a mutation did."""

    CREATE = "create"  # 新建
    UPDATE = "update"  # 修改
    DELETE = "delete"  # 删除
    RESTORE = "restore"  # 恢复
    TAG = "tag"  # 添加标签
    UNTAG = "untag"  # 移除标签
    EXPORT = "export"  # 导出
    READ = "read"  # 查看
    MERGE = "merge"  # 合并
    UNMERGE = "unmerge"  # 撤销合并
    ELEVATE = "elevate"  # 提权验证


ChangeActionName = Union[ChangeAction, Literal["create", "update", "delete", "restore", "tag", "untag", "export", "read", "merge", "unmerge", "elevate", "新建", "修改", "删除", "恢复", "添加标签", "移除标签", "导出", "查看", "合并", "撤销合并", "提权验证"]]
"""ChangeAction, or one of its names."""


class Channel(str, enum.Enum):
    """Where a ticket came in."""

    WEB = "web"  # 网页
    PHONE = "phone"  # 电话
    EMAIL = "email"  # 邮件
    SOCIAL = "social"  # 社交媒体
    CHAT = "chat"  # 在线客服
    APP = "app"  # 应用
    OTHER = "other"  # 其他


ChannelName = Union[Channel, Literal["web", "phone", "email", "social", "chat", "app", "other", "网页", "电话", "邮件", "社交媒体", "在线客服", "应用", "其他"]]
"""Channel, or one of its names."""


class CustomerKind(str, enum.Enum):
    """Whether a customer is a company or a person."""

    ENTERPRISE = "enterprise"  # 企业
    INDIVIDUAL = "individual"  # 个人


CustomerKindName = Union[CustomerKind, Literal["enterprise", "individual", "企业", "个人"]]
"""CustomerKind, or one of its names."""


class DecisionRole(str, enum.Enum):
    """A contact's role in the customer's buying decision."""

    DECISION_MAKER = "decision_maker"  # 决策者
    EVALUATOR = "evaluator"  # 评估者
    INFLUENCER = "influencer"  # 影响者
    USER = "user"  # 使用者


DecisionRoleName = Union[DecisionRole, Literal["decision_maker", "evaluator", "influencer", "user", "决策者", "评估者", "影响者", "使用者"]]
"""DecisionRole, or one of its names."""


class EntityKind(str, enum.Enum):
    """A kind of record: what permissions, the change log and events name."""

    CUSTOMER = "customer"
    CONTACT = "contact"
    TAG = "tag"
    INTERACTION = "interaction"
    CUSTOM_FIELD = "custom_field"
    CHANGE_LOG = "change_log"
    USER = "user"
    DEPARTMENT = "department"
    ROLE = "role"
    PIPELINE = "pipeline"
    OPPORTUNITY = "opportunity"
    LEAD = "lead"
    TASK = "task"
    TICKET = "ticket"
    ARTICLE = "article"
    SERVICE_SETTINGS = "service_settings"
    MARKETING_SETTINGS = "marketing_settings"
    SEGMENT = "segment"
    PRODUCT = "product"
    PURCHASE = "purchase"


EntityKindName = Union[EntityKind, Literal["customer", "contact", "tag", "interaction", "custom_field", "change_log", "user", "department", "role", "pipeline", "opportunity", "lead", "task", "ticket", "article", "service_settings", "marketing_settings", "segment", "product", "purchase"]]
"""EntityKind, or one of its names."""


class FieldType(str, enum.Enum):
    """The type of a custom field."""

    TEXT = "text"
    NUMBER = "number"
    DECIMAL = "decimal"
    DATE = "date"
    BOOL = "bool"
    SINGLE_SELECT = "single_select"
    MULTI_SELECT = "multi_select"


FieldTypeName = Union[FieldType, Literal["text", "number", "decimal", "date", "bool", "single_select", "multi_select"]]
"""FieldType, or one of its names."""


class IdScheme(str, enum.Enum):
    """The kind of an identity number or registration code on a customer."""

    CN_RESIDENT = "cn_resident"
    USCC = "uscc"
    PASSPORT = "passport"
    OTHER = "other"


IdSchemeName = Union[IdScheme, Literal["cn_resident", "uscc", "passport", "other"]]
"""IdScheme, or one of its names."""


class Identifier(TypedDict):
    """One identifier of a customer: a Chinese resident identity number (``cn_resident``, GB 11643
    check character), a unified social credit code (``uscc``, 统一社会信用代码, GB 32100 check
    character), a passport number, or any ``other`` identifier, kept as written. A customer's
    ``identifiers`` come back as these dicts, their scheme an :class:`IdScheme`."""

    scheme: IdSchemeName
    value: str


class Industry(str, enum.Enum):
    """An industry section of GB/T 4754-2017 (国民经济行业分类)."""

    AGRICULTURE = "agriculture"  # 农、林、牧、渔业
    MINING = "mining"  # 采矿业
    MANUFACTURING = "manufacturing"  # 制造业
    UTILITIES = "utilities"  # 电力、热力、燃气及水生产和供应业
    CONSTRUCTION = "construction"  # 建筑业
    WHOLESALE_RETAIL = "wholesale_retail"  # 批发和零售业
    TRANSPORT_LOGISTICS = "transport_logistics"  # 交通运输、仓储和邮政业
    HOSPITALITY_CATERING = "hospitality_catering"  # 住宿和餐饮业
    INFORMATION_TECHNOLOGY = "information_technology"  # 信息传输、软件和信息技术服务业
    FINANCE = "finance"  # 金融业
    REAL_ESTATE = "real_estate"  # 房地产业
    LEASING_BUSINESS_SERVICES = "leasing_business_services"  # 租赁和商务服务业
    SCIENCE_TECHNOLOGY = "science_technology"  # 科学研究和技术服务业
    WATER_ENVIRONMENT = "water_environment"  # 水利、环境和公共设施管理业
    RESIDENT_SERVICES = "resident_services"  # 居民服务、修理和其他服务业
    EDUCATION = "education"  # 教育
    HEALTH_SOCIAL_WORK = "health_social_work"  # 卫生和社会工作
    CULTURE_SPORTS_ENTERTAINMENT = "culture_sports_entertainment"  # 文化、体育和娱乐业
    PUBLIC_ADMINISTRATION = "public_administration"  # 公共管理、社会保障和社会组织
    INTERNATIONAL_ORGANIZATIONS = "international_organizations"  # 国际组织


IndustryName = Union[Industry, Literal["agriculture", "mining", "manufacturing", "utilities", "construction", "wholesale_retail", "transport_logistics", "hospitality_catering", "information_technology", "finance", "real_estate", "leasing_business_services", "science_technology", "water_environment", "resident_services", "education", "health_social_work", "culture_sports_entertainment", "public_administration", "international_organizations", "农、林、牧、渔业", "采矿业", "制造业", "电力、热力、燃气及水生产和供应业", "建筑业", "批发和零售业", "交通运输、仓储和邮政业", "住宿和餐饮业", "信息传输、软件和信息技术服务业", "金融业", "房地产业", "租赁和商务服务业", "科学研究和技术服务业", "水利、环境和公共设施管理业", "居民服务、修理和其他服务业", "教育", "卫生和社会工作", "文化、体育和娱乐业", "公共管理、社会保障和社会组织", "国际组织"]]
"""Industry, or one of its names."""


class InteractionKind(str, enum.Enum):
    """How the interaction happened."""

    CALL = "call"  # 电话
    VISIT = "visit"  # 拜访
    EMAIL = "email"  # 邮件
    MEETING = "meeting"  # 会议
    MESSAGE = "message"  # 消息
    OTHER = "other"  # 其他


InteractionKindName = Union[InteractionKind, Literal["call", "visit", "email", "meeting", "message", "other", "电话", "拜访", "邮件", "会议", "消息", "其他"]]
"""InteractionKind, or one of its names."""


class LeadGrade(str, enum.Enum):
    """A lead's grade: how promising it is."""

    A = "a"  # A类
    B = "b"  # B类
    C = "c"  # C类


LeadGradeName = Union[LeadGrade, Literal["a", "b", "c", "A类", "B类", "C类"]]
"""LeadGrade, or one of its names."""


class LeadStatus(str, enum.Enum):
    """Where a lead is in its life."""

    NEW = "new"  # 新线索
    ASSIGNED = "assigned"  # 跟进中
    CONVERTED = "converted"  # 已转化
    DISQUALIFIED = "disqualified"  # 无效


LeadStatusName = Union[LeadStatus, Literal["new", "assigned", "converted", "disqualified", "新线索", "跟进中", "已转化", "无效"]]
"""LeadStatus, or one of its names."""


class Level(str, enum.Enum):
    """Customer level (客户等级), A highest."""

    A = "a"  # A
    B = "b"  # B
    C = "c"  # C


LevelName = Union[Level, Literal["a", "b", "c", "A", "B", "C"]]
"""Level, or one of its names."""


class LifecycleStatus(str, enum.Enum):
    """Lifecycle status of a customer."""

    POTENTIAL = "potential"  # 潜在
    CUSTOMER = "customer"  # 成交
    LOST = "lost"  # 流失


LifecycleStatusName = Union[LifecycleStatus, Literal["potential", "customer", "lost", "潜在", "成交", "流失"]]
"""LifecycleStatus, or one of its names."""


class Period(str, enum.Enum):
    """The length of the periods volume is counted in."""

    DAY = "day"  # 日
    WEEK = "week"  # 周
    MONTH = "month"  # 月


PeriodName = Union[Period, Literal["day", "week", "month", "日", "周", "月"]]
"""Period, or one of its names."""


class Priority(str, enum.Enum):
    """How urgent a ticket is; SLA policies are chosen by it."""

    LOW = "low"  # 低
    MEDIUM = "medium"  # 中
    HIGH = "high"  # 高
    URGENT = "urgent"  # 紧急


PriorityName = Union[Priority, Literal["low", "medium", "high", "urgent", "低", "中", "高", "紧急"]]
"""Priority, or one of its names."""


class ProbabilitySource(str, enum.Enum):
    """Where an opportunity's probability comes from: the explicit, recorded rule."""

    STAGE_DEFAULT = "stage_default"  # 阶段默认
    MANUAL = "manual"  # 手动


ProbabilitySourceName = Union[ProbabilitySource, Literal["stage_default", "manual", "阶段默认", "手动"]]
"""ProbabilitySource, or one of its names."""


class Scope(str, enum.Enum):
    """Which records a grant reaches. Every scope includes the records the user owns."""

    OWN = "own"  # 本人
    DEPARTMENT = "department"  # 本部门
    REGION = "region"  # 本区域
    ALL = "all"  # 全部


ScopeName = Union[Scope, Literal["own", "department", "region", "all", "本人", "本部门", "本区域", "全部"]]
"""Scope, or one of its names."""


class SizeBand(str, enum.Enum):
    """Company size band by head count."""

    SMALL = "small"  # 小型
    MEDIUM = "medium"  # 中型
    LARGE = "large"  # 大型


SizeBandName = Union[SizeBand, Literal["small", "medium", "large", "小型", "中型", "大型"]]
"""SizeBand, or one of its names."""


class StageKind(str, enum.Enum):
    """Whether a stage is still in play or closes the opportunity."""

    OPEN = "open"  # 进行中
    WON = "won"  # 赢单
    LOST = "lost"  # 丢单


StageKindName = Union[StageKind, Literal["open", "won", "lost", "进行中", "赢单", "丢单"]]
"""StageKind, or one of its names."""


class TicketKind(str, enum.Enum):
    """What a ticket is about."""

    INQUIRY = "inquiry"  # 咨询
    COMPLAINT = "complaint"  # 投诉
    SUGGESTION = "suggestion"  # 建议
    FAULT = "fault"  # 故障


TicketKindName = Union[TicketKind, Literal["inquiry", "complaint", "suggestion", "fault", "咨询", "投诉", "建议", "故障"]]
"""TicketKind, or one of its names."""


class TicketStatus(str, enum.Enum):
    """A ticket's status. Moves follow [`TicketStatus::allows`]; a ticket becomes `assigned`"""

    NEW = "new"  # 新建
    ASSIGNED = "assigned"  # 已分配
    IN_PROGRESS = "in_progress"  # 处理中
    PENDING_CUSTOMER = "pending_customer"  # 待客户反馈
    RESOLVED = "resolved"  # 已解决
    CLOSED = "closed"  # 已关闭
    CANCELLED = "cancelled"  # 已取消


TicketStatusName = Union[TicketStatus, Literal["new", "assigned", "in_progress", "pending_customer", "resolved", "closed", "cancelled", "新建", "已分配", "处理中", "待客户反馈", "已解决", "已关闭", "已取消"]]
"""TicketStatus, or one of its names."""


class Visibility(str, enum.Enum):
    """How a restricted field is shown."""

    MASKED = "masked"  # 脱敏
    HIDDEN = "hidden"  # 隐藏


VisibilityName = Union[Visibility, Literal["masked", "hidden", "脱敏", "隐藏"]]
"""Visibility, or one of its names."""


CustomValue = Union[str, int, bool, decimal.Decimal, datetime.date, Sequence[str]]
"""A custom field value: text, whole number, exact decimal, date, yes/no, or options (never float)."""

IdLike = Union[uuid.UUID, str]
"""A record id: a UUID, or its text."""

SegmentLike = Union[str, Mapping[str, Any]]
"""A segment: its text (``tag:VIP AND NOT status = lost``), or its tree as
``crm.marketing.segments.parse`` gives it (``{"and": [{"is": {"tag": "VIP"}}, …]}``)."""

Money = Union[decimal.Decimal, int, str]
"""An exact amount: a Decimal, an int or its text (never float)."""


class ContactFields(TypedDict, total=False):
    """The keyword arguments of ``crm.contacts.create`` after the name.

    ``phone`` / ``phones`` and ``email`` / ``emails`` take one value or a list. The first contact
    of a customer is primary unless another is given ``primary=True``.
    """

    title: str | None
    phone: str | Sequence[str]
    phones: str | Sequence[str]
    email: str | Sequence[str]
    emails: str | Sequence[str]
    id_number: str | None
    role: DecisionRoleName | None
    primary: bool
    do_not_contact: bool
    custom: Mapping[str, CustomValue]


class NewContact(ContactFields, total=False):
    """A contact given inside ``crm.customers.create(contacts=[...])``: the contact fields and its name."""

    name: Required[str]


class ContactChanges(TypedDict, total=False):
    """The keyword arguments of ``crm.contacts.update``: only the fields given change; None
    clears ``title``, ``id_number`` or ``role``; ``custom={"key": None}`` removes a value."""

    name: str
    title: str | None
    phones: Sequence[str]
    emails: Sequence[str]
    id_number: str | None
    role: DecisionRoleName | None
    do_not_contact: bool
    custom: Mapping[str, CustomValue | None]


class CustomerFields(TypedDict, total=False):
    """The keyword arguments of ``crm.customers.create`` after the name.

    ``industry`` is a GB/T 4754 section (its name, Chinese name or letter); ``province``,
    ``city`` and ``district`` are checked against the administrative divisions; each of the
    ``identifiers`` is checked by its scheme; ``contacts`` are created with the customer, in
    the same transaction.
    """

    kind: CustomerKindName
    industry: IndustryName | None
    size: SizeBandName | None
    source: str | None
    status: LifecycleStatusName
    level: LevelName | None
    province: str | None
    city: str | None
    district: str | None
    address: str | None
    owner: str | None
    department: str | None
    tags: str | Sequence[str]
    custom: Mapping[str, CustomValue]
    identifiers: Sequence[Identifier]
    contacts: Sequence[NewContact]


class NewCustomer(CustomerFields, total=False):
    """One row of ``crm.customers.create_many``: the customer fields and its name."""

    name: Required[str]


class CustomerChanges(TypedDict, total=False):
    """The keyword arguments of ``crm.customers.update``: only the fields given change; None
    clears an optional field; ``custom={"key": None}`` removes a value."""

    name: str
    kind: CustomerKindName
    status: LifecycleStatusName
    industry: IndustryName | None
    size: SizeBandName | None
    level: LevelName | None
    source: str | None
    address: str | None
    owner: str | None
    department: str | None
    province: str | None
    city: str | None
    district: str | None
    custom: Mapping[str, CustomValue | None]
    identifiers: Sequence[Identifier] | None
    """The new identifier list, replacing the old one whole (None or ``[]`` clears it)."""


class CustomerFilters(TypedDict, total=False):
    """The keyword filters of customer lists, counts, exports and the duplicate scan; every
    filter given must hold (``tags``: every tag). None is the same as not given."""

    status: LifecycleStatusName | None
    kind: CustomerKindName | None
    level: LevelName | None
    industry: IndustryName | None
    size: SizeBandName | None
    owner: str | None
    department: str | None
    tag: str | None
    tags: str | Sequence[str] | None
    province: str | None
    city: str | None
    district: str | None
    name_contains: str | None
    deleted: Literal["exclude", "only", "include"] | None
    custom: Mapping[str, CustomValue] | None


class PastMove(TypedDict, total=False):
    """A stage move made before the deal reached guanxi (``moves=[...]`` of a new opportunity):
    applied in order at creation, each recorded in the stage history at ``at``."""

    stage: Required[str]
    at: Required[datetime.datetime]
    lost_reason: str | None


class OpportunityFields(TypedDict, total=False):
    """The keyword arguments of ``crm.sales.opportunities.create`` after the name.

    ``stage`` defaults to the pipeline's first; ``probability`` (0–100) to the stage's;
    ``currency`` to "CNY"; ``opened_at`` to now; ``moves`` (an imported deal's history) to none.
    """

    customer_id: IdLike | None
    contact_id: IdLike | None
    pipeline: str | None
    stage: str | None
    amount: Money | None
    currency: str
    probability: Money | None
    expected_close: datetime.date | None
    lines: Sequence[ProductLine]
    milestones: Sequence[Milestone]
    cadence_days: int | None
    owner: str | None
    opened_at: datetime.datetime | None
    moves: Sequence[PastMove]


class NewOpportunity(OpportunityFields, total=False):
    """The opportunity of ``crm.sales.leads.convert(opportunity=...)``: its fields and its name."""

    name: Required[str]


class OpportunityChanges(TypedDict, total=False):
    """The keyword arguments of ``crm.sales.opportunities.update``; ``probability=None``
    returns to the stage's default, ``contact_id=None`` clears the contact."""

    name: str
    amount: Money
    currency: str
    probability: Money | None
    expected_close: datetime.date | None
    lines: Sequence[ProductLine]
    milestones: Sequence[Milestone]
    cadence_days: int | None
    contact_id: IdLike | None
    owner: str


class OpportunityFilters(TypedDict, total=False):
    """The keyword filters of opportunity lists and counts."""

    pipeline: str | None
    stage: str | None
    open: bool | None
    customer_id: IdLike | None
    owner: str | None
    department: str | None


class NewTicket(TypedDict, total=False):
    """One row of ``crm.service.tickets.create_many``: the arguments of ``create``."""

    subject: Required[str]
    kind: Required[TicketKindName]
    priority: Required[PriorityName]
    description: str | None
    channel: ChannelName
    category: str | None
    customer_id: IdLike | None
    contact_id: IdLike | None
    group: str | None
    skill: str | None
    assignee: str | None
    created_at: datetime.datetime | None


class TicketFilters(TypedDict, total=False):
    """The keyword filters of ticket lists, counts, the SLA overview and the service report;
    ``start`` / ``end`` bound the creation instant (end exclusive)."""

    status: TicketStatusName | None
    open: bool | None
    assignee: str | None
    group: str | None
    customer_id: IdLike | None
    kind: TicketKindName | None
    priority: PriorityName | None
    channel: ChannelName | None
    start: datetime.datetime | None
    end: datetime.datetime | None


MatchFieldName = str
"""A match field's stable name: ``phone``, ``email``, ``name``, ``given_name``, ``surname``,
``address``, ``identifier``, ``identifier.<scheme>`` (``cn_resident``, ``uscc``, ``passport``,
``other``) or ``custom.<key>``."""

ComparisonName = Literal["exact", "jaro_winkler", "edit", "q_gram", "token_set", "phonetic", "date", "number"]
"""How a match rule compares a field."""

BlockingKind = Literal["exact", "deletions", "phonetic", "prefix", "q_grams", "sorted_neighbourhood"]
"""The kind of a blocking key."""


class BlockingReport(TypedDict):
    """What ``crm.duplicates.blocking_report`` found: of the known duplicate pairs, how many
    blocking compares (``missed`` lists the rest: blocking loses them) and how many of those
    score as duplicates (``unmatched`` lists the rest: scoring loses them)."""

    known: int
    compared: int
    matched: int
    ceiling: float
    missed: list[tuple[uuid.UUID, uuid.UUID]]
    unmatched: list[tuple[uuid.UUID, uuid.UUID]]
    stats: dict[str, int]


class NewBehaviourEvent(TypedDict, total=False):
    """One event of ``crm.marketing.events.record``: what a customer did, when, with typed
    properties; sending one ``external_id`` twice records it once."""

    customer_id: Required[IdLike]
    contact_id: IdLike | None
    name: Required[str]
    at: Required[datetime.datetime]
    properties: Mapping[str, CustomValue]
    source: str | None
    external_id: str | None


class NewProduct(TypedDict, total=False):
    """One product of ``crm.commerce.products.sync``: matched to the catalog by
    ``external_id``, else ``code``; ``prices`` maps a currency to the list price in it;
    ``tax_rate`` is a percentage (13 for 13%)."""

    code: Required[str]
    name: Required[str]
    category: str | None
    unit: str | None
    prices: Mapping[str, decimal.Decimal | int | str]
    tax_rate: decimal.Decimal | int | str
    active: bool
    stock: decimal.Decimal | int | str | None
    external_id: str | None


class NewPurchase(TypedDict, total=False):
    """One purchase of ``crm.commerce.purchases.record``: ``amount`` or ``lines`` (the lines'
    total is the amount when none is given); one ``(source_system, external_id)`` sent twice
    is recorded once; ``status`` is "paid" (the default) or "refunded"."""

    customer_id: Required[IdLike]
    at: Required[datetime.datetime]
    amount: decimal.Decimal | int | str | None
    currency: str
    lines: Sequence[ProductLine]
    channel: str | None
    source_system: str | None
    external_id: str | None
    status: Literal["paid", "refunded", "已支付", "已退款"]


class BehaviourEvent(TypedDict):
    """A recorded event, as ``crm.marketing.events.list`` returns it."""

    id: uuid.UUID
    customer_id: uuid.UUID
    contact_id: uuid.UUID | None
    name: str
    at: datetime.datetime
    properties: dict[str, CustomValue]
    source: str | None
    external_id: str | None


class MarketingSettings(TypedDict):
    """``crm.marketing.settings()``: how long behaviour events are kept (None: for ever)."""

    event_retention_days: int | None


class SavedSegment(TypedDict):
    """A saved segment (``crm.marketing.segments.save`` / ``get`` / ``list``): its rule as
    text, its dynamic tag (None: none) and whether that tag stays when a customer leaves, and
    the customers included and excluded by hand."""

    name: str
    description: str | None
    expression: str
    tag: str | None
    sticky: bool
    includes: list[uuid.UUID]
    excludes: list[uuid.UUID]


class Reevaluated(TypedDict):
    """What a re-evaluation changed: how many customers entered and left, by segment name."""

    entered: dict[str, int]
    exited: dict[str, int]


class PurgedEvents(TypedDict):
    """What ``crm.marketing.events.purge`` did: events before ``before`` were removed."""

    before: datetime.datetime | None
    purged: int


class RecordedEvents(TypedDict):
    """What ``crm.marketing.events.record`` did: the ids written, and the external ids left
    out because an event already carried them."""

    recorded: list[uuid.UUID]
    duplicates: list[str]


class SegmentExplanation(TypedDict):
    """One node of a segment with its value for a customer (``crm.marketing.segments.explain``);
    ``count`` is the count a ``count(...)`` found."""

    node: str
    holds: bool
    count: int | None
    parts: list[SegmentExplanation]

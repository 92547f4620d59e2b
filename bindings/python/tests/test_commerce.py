"""The product catalog and purchases from Python: an ERP sync that writes once, purchases
that move the level rule, exact decimals in the DataFrames, scoped reads, and imports of the
real sales data set with every bad row named."""

from __future__ import annotations

import datetime
from decimal import Decimal
from pathlib import Path

import pytest

import guanxi
from guanxi.fields import NewProduct, NewPurchase

NOW = datetime.datetime.now(datetime.timezone.utc)
DATA = Path(__file__).resolve().parents[3] / "tests" / "data"

CATALOG: list[NewProduct] = [
    {"code": "SKU-1", "name": "CRM 授权", "category": "软件", "prices": {"CNY": Decimal("1999")}, "external_id": "p-1"},
    {"code": "SKU-2", "name": "实施服务", "category": "服务", "unit": "人天", "prices": {"CNY": 3000, "USD": "420.5"}},
]


def test_the_catalog_syncs_once_and_reports_every_bad_field(crm: guanxi.Crm) -> None:
    products = crm.commerce.products
    first = products.sync(CATALOG)
    assert (first.created, first.outcomes) == (2, ["created", "created"])
    again = products.sync(CATALOG)
    assert (again.unchanged, again.ids) == (2, first.ids)
    p = products.get_by_code("SKU-2")
    assert p.prices == {"CNY": Decimal("3000"), "USD": Decimal("420.5")} and p.unit == "人天"
    with pytest.raises(guanxi.ValidationError) as info:
        products.sync([
            {"code": "", "name": "无编码", "tax_rate": 120},
            {"code": "SKU-3", "name": "x", "prices": {"CNY": 1.5}},  # type: ignore[dict-item]
            {"code": "SKU-4", "name": "y", "colour": "red"},  # type: ignore[typeddict-unknown-key]
        ])
    assert sorted(e.field for e in info.value.errors) == [
        "products[0].code", "products[0].tax_rate", "products[1].prices.CNY", "products[2].colour",
    ]
    assert products.count() == 2
    made = products.create("SKU-5", "服务器", category="硬件", tax_rate=13, stock=Decimal("7.5"))
    with pytest.raises(guanxi.DuplicateError):
        products.create("SKU-5", "又一个")
    off = products.update(made.id, made.version, "SKU-5", "服务器", category="硬件", active=False)
    assert (off.active, off.version) == (False, 2)
    table = products.list_all(active=True)
    df = table.to_pandas()
    assert list(df["code"]) == ["SKU-1", "SKU-2"]
    assert df["price_cny"][0] == Decimal("1999")  # exact, not a float
    page = products.list(limit=2)
    assert len(page) == 2 and page.next is not None
    assert len(products.list(after=page.next, limit=2)) == 1


def test_purchases_are_recorded_once_and_the_level_follows() -> None:
    crm = guanxi.Crm.in_memory(user="alice", level_rule=guanxi.LevelRule())
    crm.commerce.products.sync(CATALOG)
    c = crm.customers.create("甲公司")
    assert c.level == "c"
    orders: list[NewPurchase] = [
        {"customer_id": c.id, "at": NOW - datetime.timedelta(days=30),
         "lines": [guanxi.ProductLine.of_product("SKU-2", 40, 3000)], "channel": "电话",
         "source_system": "erp", "external_id": "SO-1"},
        {"customer_id": str(c.id), "at": NOW - datetime.timedelta(days=400), "amount": Decimal("900000"),
         "source_system": "erp", "external_id": "SO-0"},
    ]
    r = crm.commerce.purchases.record(orders)
    assert r.created == 2
    c1 = crm.customers.get(c.id)
    assert (c1.level, c1.custom["spend_12m"]) == ("b", Decimal("120000"))
    assert crm.commerce.purchases.record(orders).unchanged == 2
    p = crm.commerce.purchases.get(r.ids[0])
    assert (p.lines[0].product, p.lines[0].product_code, p.amount) == ("实施服务", "SKU-2", Decimal("120000"))
    refunded = crm.commerce.purchases.refund(p.id, p.version)
    assert refunded.status == "refunded"
    assert crm.customers.get(c.id).level == "c"
    df = crm.commerce.purchases.list_all(customer_id=c.id).to_pandas()
    assert sorted(df["status"]) == ["paid", "refunded"] and df["amount"].sum() == Decimal("1020000")
    assert crm.commerce.purchases.count(status="paid") == 1
    assert crm.commerce.purchases.refresh_levels() == 0
    with pytest.raises(guanxi.ValidationError) as info:
        crm.commerce.purchases.record([
            {"customer_id": c.id, "at": NOW, "amount": -5, "currency": "元"},
            {"customer_id": c.id, "at": NOW, "lines": [guanxi.ProductLine.of_product("SKU-404", 1, 1)]},
            {"at": NOW, "amount": 1},  # type: ignore[typeddict-item]
        ])
    fields = sorted(e.field for e in info.value.errors)
    assert fields == ["purchases[0].amount", "purchases[0].currency", "purchases[2].customer_id"]
    with pytest.raises(guanxi.ValidationError) as info:
        crm.commerce.purchases.record([{"customer_id": c.id, "at": NOW, "lines": [guanxi.ProductLine.of_product("SKU-404", 1, 1)]}])
    assert [e.field for e in info.value.errors] == ["purchases[0].lines[0].product_code"]


def test_purchases_follow_the_readers_scope(crm: guanxi.Crm) -> None:
    root = crm.as_user("root")
    root.access.set_password("root", "correct horse battery")
    root = root.access.elevate(password="correct horse battery")
    root.access.set_user("root", "管理员", roles=["administrator"])
    root.access.set_user("rep", "Rep", roles=["sales_rep"])
    mine = root.customers.create("甲公司", owner="rep")
    theirs = root.customers.create("乙公司", owner="root")
    root.commerce.purchases.record([
        {"customer_id": mine.id, "at": NOW, "amount": 100},
        {"customer_id": theirs.id, "at": NOW, "amount": 200},
    ])
    rep = crm.as_user("rep")
    assert rep.commerce.purchases.count() == 1
    assert [p.amount for p in rep.commerce.purchases.list_all()] == [Decimal("100")]
    with pytest.raises(guanxi.PermissionDeniedError):
        rep.commerce.purchases.record([{"customer_id": mine.id, "at": NOW, "amount": 1}])


def test_the_real_sales_data_imports_once_with_every_bad_row_named(crm: guanxi.Crm) -> None:
    products = (DATA / "crm_sales_products.csv").read_bytes()
    r = crm.files.import_products(products, columns={"product": "code", "series": "category", "sales_price": "price"})
    assert (r.rows, r.sync.created, r.committed) == (7, 7, True)
    accounts = [line.split(",")[0] for line in (DATA / "crm_sales_accounts.csv").read_text().splitlines()[1:]]
    made = crm.customers.create_many([{"name": a} for a in accounts])
    code = {c.name: c.code for c in made}
    rows = ["订单号,客户编号,产品编码,下单时间,金额"]
    for line in (DATA / "crm_sales_pipeline.csv").read_text().splitlines()[1:]:
        f = line.split(",")
        if f[4] == "Won":
            rows.append(f"{f[0]},{code[f[3]]},{f[2]},{f[6]},{f[7]}")
    file = ("\n".join(rows) + "\n").encode()
    r = crm.files.import_purchases(file, mode="keep_good", source_system="maven")
    assert (r.rows, len(r.rejected), r.sync.created) == (4238, 729, 3509)
    rejected = r.rejected.to_pandas()
    assert set(rejected["value"]) == {"GTXPro"} and set(rejected["column"]) == {"产品编码"}
    assert crm.files.import_purchases(file, mode="keep_good", source_system="maven").sync.unchanged == 3509
    df = crm.commerce.purchases.list_all(source_system="maven").to_pandas()
    assert len(df) == 3509 and df["amount"].map(type).eq(Decimal).all()
    with pytest.raises(guanxi.ValidationError):
        crm.files.import_purchases(file, mode="sometimes")  # type: ignore[arg-type]


def test_rfm_and_lifetime_value_are_tables(crm: guanxi.Crm) -> None:
    day = datetime.timedelta(days=1)
    for i in range(30):
        c = crm.customers.create(f"客户{i}")
        crm.commerce.purchases.record([
            {"customer_id": c.id, "at": NOW - day * (3 * i + 11 * k + 1), "amount": Decimal(100 + 10 * i)}
            for k in range(i % 4 + 1)
        ])
    summaries = crm.analytics.customer_purchases().to_pandas()
    assert len(summaries) == 30 and summaries["total"].map(type).eq(Decimal).all()
    rfm = crm.analytics.rfm(bins=3, segments=[{"name": "best", "r": (3, 3), "f": (3, 3), "m": (1, 3)}]).to_pandas()
    assert set(rfm["r"]) <= {1, 2, 3} and "best" in set(rfm["segment"]) and "others" in set(rfm["segment"])
    ltv = crm.analytics.lifetime_value(months=6)
    df = ltv.customers.to_pandas()
    assert len(df) == 30 and df["p_alive"].between(0, 1).all()
    assert set(ltv.purchases_model) == {"r", "alpha", "a", "b"} and ltv.spend_model is not None
    with pytest.raises(guanxi.ValidationError) as info:
        crm.analytics.lifetime_value(months=0, monthly_discount=2.0)
    assert sorted(e.field for e in info.value.errors) == ["monthly_discount", "months"]
    with pytest.raises(guanxi.ValidationError):
        crm.analytics.rfm(bins=1)

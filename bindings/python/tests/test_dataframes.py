"""Lists become pyarrow, polars and pandas frames through the Arrow C stream interface."""

from __future__ import annotations

import csv
import datetime
import decimal
from pathlib import Path

import pandas as pd
import polars as pl
import pyarrow as pa

import guanxi


def define_one_custom_field_of_each_type(crm: guanxi.Crm) -> None:
    crm.custom_fields.create("customer", "budget", "预算", "decimal")
    crm.custom_fields.create("customer", "since", "起始", "date")
    crm.custom_fields.create("customer", "vip", "贵宾", "bool")
    crm.custom_fields.create("customer", "employees", "员工", "number")
    crm.custom_fields.create("customer", "products", "产品", "multi_select", allowed_values=["crm", "erp"])
    crm.custom_fields.create("customer", "tier", "档次", "single_select", allowed_values=["gold", "silver"])
    crm.custom_fields.create("customer", "note", "备注", "text")


def test_arrow_schema_has_typed_nested_columns(crm: guanxi.Crm) -> None:
    define_one_custom_field_of_each_type(crm)
    crm.customers.create(
        "甲",
        tags=["VIP", "重点"],
        custom={"budget": "12.5", "since": "2020-01-02", "vip": True, "employees": 250, "products": ["erp", "crm"]},
    )
    crm.customers.create("乙", custom={"budget": decimal.Decimal("3")})
    table = pa.table(crm.customers.list_all())
    assert table.num_rows == 2
    assert table.schema.field("tags").type == pa.list_(pa.string())
    scheme_and_value = pa.struct([pa.field("scheme", pa.string(), False), pa.field("value", pa.string(), False)])
    assert table.schema.field("identifiers").type == pa.list_(scheme_and_value)
    custom = table.schema.field("custom").type
    assert custom.field("budget").type == pa.decimal128(38, 10)
    assert custom.field("since").type == pa.date32()
    assert custom.field("vip").type == pa.bool_()
    assert custom.field("employees").type == pa.int64()
    assert custom.field("products").type == pa.list_(pa.string())
    assert table.schema.field("created_at").type == pa.timestamp("us", tz="UTC")
    rows = table.to_pylist()
    assert rows[0]["tags"] == ["VIP", "重点"]
    assert rows[0]["custom"] == {
        "budget": decimal.Decimal("12.5"),
        "since": datetime.date(2020, 1, 2),
        "vip": True,
        "employees": 250,
        "products": ["crm", "erp"],
        "tier": None,
        "note": None,
    }
    assert rows[1]["custom"]["budget"] == decimal.Decimal("3.0") and rows[1]["custom"]["vip"] is None


ATTRIBUTES = ("id", "code", "name", "kind", "industry", "size", "source", "status", "level", "province", "city",
              "district", "address", "owner", "department", "tags", "identifiers", "custom", "created_by", "created_at",
              "updated_by",
              "updated_at", "version", "deleted_at")


def test_a_listed_customer_is_the_customer_get_returns(crm: guanxi.Crm) -> None:
    # A whole list is scanned straight into Arrow columns; the Customer a row hands out is
    # read back from them and must equal the stored record in every attribute.
    define_one_custom_field_of_each_type(crm)
    full = crm.customers.create(
        "华为技术有限公司",
        kind="enterprise",
        industry="information_technology",
        size="large",
        source="展会",
        status="customer",
        level="A",
        province="广东",
        city="深圳市",
        district="龙岗区",
        address="坂田华为基地",
        owner="li",
        department="south",
        tags=["VIP", "重点"],
        identifiers=[{"scheme": "uscc", "value": "914403001922038216"}, {"scheme": "passport", "value": "E12345678"}],
        custom={"budget": "1250000.50", "since": "2020-01-02", "vip": True, "employees": 250,
                "products": ["erp", "crm"], "tier": "gold", "note": "年度框架"},
    )
    bare = crm.customers.create("个体户", kind="individual", province="北京", custom={"budget": "0.0000000001"})
    gone = crm.customers.create("已删除")
    crm.customers.delete(gone.id, gone.version)
    listed = {c.id: c for c in crm.customers.list_all(deleted="include")}
    assert set(listed) == {full.id, bare.id, gone.id}
    for stored in (crm.customers.get(full.id), crm.customers.get(bare.id)):
        for attribute in ATTRIBUTES:
            assert getattr(listed[stored.id], attribute) == getattr(stored, attribute), attribute
    assert listed[gone.id].deleted_at is not None and listed[gone.id].version == gone.version + 1
    # The export is a scan too, logged with its size.
    exported = crm.customers.export(status="customer")
    assert [c.id for c in exported] == [full.id] and exported[0].custom == listed[full.id].custom
    # A merged customer's survivor is a column of the table.
    crm.duplicates.merge(full.id, [bare.id])
    table = pa.table(crm.customers.list_all(deleted="include"))
    merged_into = dict(zip(table.column("id").to_pylist(), table.column("merged_into").to_pylist()))
    assert merged_into[str(bare.id)] == str(full.id) and merged_into[str(full.id)] is None


def test_pandas_and_polars_agree_with_objects(crm: guanxi.Crm) -> None:
    for i in range(30):
        crm.customers.create(f"客户{i}", province=["山东", "广东", "浙江"][i % 3], status=["potential", "customer"][i % 2])
    listing = crm.customers.list_all()
    df = listing.to_pandas()
    pl_df = listing.to_polars()
    objects = listing.to_list()
    assert list(df["code"]) == [c.code for c in objects] == pl_df["code"].to_list()
    assert df.groupby("province").size().to_dict() == {"山东省": 10, "广东省": 10, "浙江省": 10}
    assert pl_df.filter(pl.col("status") == "customer").height == 15
    assert isinstance(df["created_at"].dtype, pd.DatetimeTZDtype)


def test_empty_list_is_an_empty_table(crm: guanxi.Crm) -> None:
    table = pa.table(crm.customers.list_all(tag="nothing"))
    assert table.num_rows == 0 and "code" in table.column_names


def test_real_telco_data_round_trips_into_pandas(crm: guanxi.Crm, telco_csv: Path) -> None:
    crm.custom_fields.create("customer", "contract", "合约", "single_select", allowed_values=["Month-to-month", "One year", "Two year"])
    crm.custom_fields.create("customer", "monthly_charges", "月费", "decimal")
    with telco_csv.open(newline="", encoding="utf-8") as f:
        source = list(csv.DictReader(f))
    crm.customers.create_many(
        {
            "name": f"Telco {r['customerID']}",
            "kind": "individual",
            "status": "lost" if r["Churn"] == "Yes" else "customer",
            "tags": [f"网络-{r['InternetService']}"],
            "custom": {"contract": r["Contract"], "monthly_charges": r["MonthlyCharges"]},
        }
        for r in source
    )
    df = crm.customers.list_all().to_pandas()
    assert len(df) == len(source)
    assert (df["status"] == "lost").sum() == sum(r["Churn"] == "Yes" for r in source)
    contracts = df["custom"].map(lambda c: c["contract"]).value_counts().to_dict()
    expected: dict[str, int] = {}
    for r in source:
        expected[r["Contract"]] = expected.get(r["Contract"], 0) + 1
    assert contracts == expected
    total = sum((c["monthly_charges"] for c in df["custom"]), decimal.Decimal(0))
    assert total == sum((decimal.Decimal(r["MonthlyCharges"]) for r in source), decimal.Decimal(0))

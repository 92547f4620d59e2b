"""Duplicates and files from Python: the check on create and its policies, the scan as Arrow
tables checked against a pure-Python pairing, not-duplicate marks, merge and undo, import
(encodings, per-row errors, policies, re-runs, progress) and streamed export that imports back."""

from __future__ import annotations

import csv
import datetime
import decimal
import io
import json
from pathlib import Path

import polars as pl
import pyarrow as pa
import pytest

import guanxi


def test_find_and_create_policies(crm: guanxi.Crm) -> None:
    first = crm.customers.create("深圳市星河科技有限公司", contacts=[{"name": "张伟", "phone": "13812345678"}])
    found = crm.duplicates.find("星河", contacts=[{"name": "王", "phone": "138 1234 5678"}])
    assert [c["id"] for c in found] == [first.id]
    assert found[0]["explanation"] == [f"same phone as {first.code} 深圳市星河科技有限公司"]
    assert found[0]["reasons"][0]["field"] == "phone" and found[0]["score"] >= 0.9

    same_phone = [{"name": "王", "phone": "+86 138-1234-5678"}]
    with pytest.raises(guanxi.DuplicateError):
        crm.customers.create_checked("星河", on_duplicate="block", contacts=same_phone)
    assert len(crm.customers.list_all()) == 1
    linked = crm.customers.create_checked("星河", on_duplicate="link", tags=["展会"], contacts=same_phone)
    assert linked["created"] is False and linked["customer"].id == first.id
    assert "展会" in crm.customers.get(first.id).tags
    warned = crm.customers.create_checked("深圳市星河科技有限公司", on_duplicate="warn")
    assert warned["created"] and warned["duplicates"][0]["id"] == first.id
    with pytest.raises(guanxi.ValidationError):
        crm.customers.create_checked("x", on_duplicate="sometimes")


def test_scan_tables_match_a_pure_python_pairing(crm: guanxi.Crm) -> None:
    names = ["华为技术有限公司", "华为技术股份有限公司", "华为技术集团", "星河科技", "星河科技有限公司", "北辰集团"]
    rows = crm.customers.create_many([{"name": n} for n in names])
    result = crm.duplicates.scan()
    pairs = pa.table(result.pairs)
    members = pl.DataFrame(result.members)
    assert result.stats["profiles"] == 6 and result.stats["clusters"] == 2
    # Reference: customers whose names agree once the legal form is dropped.
    def key(n: str) -> str:
        for suffix in ["股份有限公司", "有限公司", "集团"]:
            n = n.removesuffix(suffix)
        return n

    groups: dict[str, set[str]] = {}
    for r in rows:
        groups.setdefault(key(r.name), set()).add(str(r.id))
    expected = {frozenset(g) for g in groups.values() if len(g) > 1}
    got = {frozenset(g["customer_id"].to_list()) for _, g in members.group_by("cluster")}
    assert got == expected
    assert set(pairs.column_names) >= {"cluster", "customer_id", "other_id", "score", "reasons"}
    assert all(s >= 0.8 for s in pairs.column("score").to_pylist())

    a, b = rows[0].id, rows[1].id
    crm.duplicates.mark_not_duplicate(a, b)
    assert b not in [c["id"] for c in crm.duplicates.of(a)]
    assert crm.duplicates.scan().stats["excluded_pairs"] == 1


def test_merge_plan_apply_and_undo(crm: guanxi.Crm) -> None:
    a = crm.customers.create("华为技术有限公司", contacts=[{"name": "张伟"}])
    b = crm.customers.create("华为技术股份有限公司", address="深圳市龙岗区坂田", tags=["VIP"], contacts=[{"name": "李娜"}])
    crm.interactions.create(b.id, "call", "电话回访")
    plan = crm.duplicates.plan_merge(a.id, [b.id], policy="most_complete")
    assert plan["survivor"].address == "深圳市龙岗区坂田" and plan["tags_added"] == ["VIP"]
    assert len(plan["contacts"]) == 1 and len(plan["interactions"]) == 1
    assert len(crm.contacts.list(a.id)) == 1  # a plan writes nothing

    done = crm.duplicates.merge(a.id, [b.id], choose={"name": b.id})
    assert done["survivor"].name == "华为技术股份有限公司"
    assert len(crm.contacts.list(a.id)) == 2 and len(crm.interactions.list(a.id)) == 1
    assert crm.duplicates.merged_into(b.id) == a.id
    with pytest.raises(guanxi.NotFoundError):
        crm.customers.get(b.id)

    crm.duplicates.undo_merge(done["merge_id"])
    assert crm.duplicates.merged_into(b.id) is None
    assert [c.name for c in crm.contacts.list(b.id)] == ["李娜"]
    assert crm.customers.get(a.id).name == "华为技术有限公司" and "VIP" not in crm.customers.get(a.id).tags
    with pytest.raises(guanxi.InvalidStateError):
        crm.duplicates.undo_merge(done["merge_id"])


def test_import_errors_policies_and_reruns(crm: guanxi.Crm) -> None:
    text = "客户名称,手机,省份,备注\n好公司,13800000001,广东,x\n坏电话,12345,,\n坏省份,,火星,\n"
    gbk = text.encode("gbk")
    report = crm.files.import_customers(gbk)
    assert not report.committed and len(crm.customers.list_all()) == 0
    rejected = pa.table(report.rejected).to_pylist()
    assert [(r["row"], r["column"], r["value"]) for r in rejected] == [(3, "手机", "12345"), (4, "省份", "火星")]
    assert report.ignored_columns == ["备注"]

    seen: list[tuple[int, int]] = []
    report = crm.files.import_customers(gbk, mode="keep_good", progress=lambda done, total: seen.append((done, total)))
    assert report.committed and len(report.created) == 1 and seen[-1] == (3, 3)
    again = crm.files.import_customers(gbk, mode="keep_good")
    assert again.created == [] and "already imported" in pa.table(again.skipped).column("reason")[0].as_py()

    # A mapped header, and the update policy against the stored customer.
    update = "公司,来源\n好公司有限公司,官网\n".encode()
    report = crm.files.import_customers(update, columns={"公司": "name"}, on_duplicate="update")
    assert len(report.updated) == 1 and crm.customers.get(report.updated[0]).source == "官网"
    with pytest.raises(guanxi.ValidationError):
        crm.files.import_customers(b"\xff\xfe\x00\xd8")
    with pytest.raises(guanxi.ValidationError):
        crm.files.import_customers(update, on_duplicate="merge")


def test_templates_and_exports_round_trip(crm: guanxi.Crm, tmp_path: Path) -> None:
    csv_template = guanxi.Files.import_template("csv")
    assert csv_template.decode("utf-8-sig").startswith("客户编号,客户名称")
    report = crm.files.import_customers(csv_template)
    assert len(report.rejected) == 0 and len(report.created) == 1
    xlsx_template = guanxi.Files.import_template("xlsx")
    assert xlsx_template[:2] == b"PK"
    report = crm.files.import_customers(xlsx_template)
    assert len(report.created) == 0 and len(report.skipped) == 1  # the same example row
    for i in range(20):
        crm.customers.create(f"客户{i:02}", tags=["VIP"] if i % 2 else [], contacts=[{"name": f"人{i}", "phone": f"1390000{i:04}"}])
    out = tmp_path / "vip.csv"
    assert crm.files.export_to_path(out, tag="VIP") == 11  # ten, and the template's example
    rows = list(csv.DictReader(io.StringIO(out.read_text(encoding="utf-8-sig"))))
    assert len(rows) == 11 and all(r["客户编号"].startswith("C") for r in rows)
    report = crm.files.import_customers(out.read_bytes())
    assert report.created == [] and len(report.skipped) == 11
    jsonl = tmp_path / "contacts.jsonl"
    assert crm.files.export_to_path(jsonl, entity="contacts", format="jsonl") == 21
    assert all("customer_id" in json.loads(line) for line in jsonl.read_text().splitlines())
    xlsx = tmp_path / "all.xlsx"
    assert crm.files.export_to_path(xlsx, format="xlsx") == 21
    report = crm.files.import_customers(xlsx.read_bytes())
    assert report.created == [] and len(report.skipped) == 21


def test_a_tiny_workbook_with_far_apart_cells_is_a_typed_error(crm: guanxi.Crm, tmp_path: Path) -> None:
    """Issue 15, item 8: two cells, A1 and XFD1048576, used to abort the interpreter."""
    import zipfile

    sheet = (
        '<?xml version="1.0" encoding="UTF-8" standalone="yes"?>'
        '<worksheet xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main">'
        '<dimension ref="A1:XFD1048576"/><sheetData>'
        '<row r="1"><c r="A1" t="inlineStr"><is><t>客户名称</t></is></c></row>'
        '<row r="1048576"><c r="XFD1048576" t="inlineStr"><is><t>x</t></is></c></row>'
        "</sheetData></worksheet>"
    )
    parts = {
        "[Content_Types].xml": '<?xml version="1.0" encoding="UTF-8"?><Types xmlns="http://schemas.openxmlformats.org/package/2006/content-types">'
        '<Default Extension="rels" ContentType="application/vnd.openxmlformats-package.relationships+xml"/>'
        '<Default Extension="xml" ContentType="application/xml"/>'
        '<Override PartName="/xl/workbook.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.sheet.main+xml"/>'
        '<Override PartName="/xl/worksheets/sheet1.xml" ContentType="application/vnd.openxmlformats-officedocument.spreadsheetml.worksheet+xml"/></Types>',
        "_rels/.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/officeDocument" Target="xl/workbook.xml"/></Relationships>',
        "xl/workbook.xml": '<?xml version="1.0" encoding="UTF-8"?><workbook xmlns="http://schemas.openxmlformats.org/spreadsheetml/2006/main" '
        'xmlns:r="http://schemas.openxmlformats.org/officeDocument/2006/relationships"><sheets><sheet name="Sheet1" sheetId="1" r:id="rId1"/></sheets></workbook>',
        "xl/_rels/workbook.xml.rels": '<?xml version="1.0" encoding="UTF-8"?><Relationships xmlns="http://schemas.openxmlformats.org/package/2006/relationships">'
        '<Relationship Id="rId1" Type="http://schemas.openxmlformats.org/officeDocument/2006/relationships/worksheet" Target="worksheets/sheet1.xml"/></Relationships>',
        "xl/worksheets/sheet1.xml": sheet,
    }
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", zipfile.ZIP_DEFLATED) as z:
        for name, text in parts.items():
            z.writestr(name, text)
    data = buf.getvalue()
    assert len(data) < 2048
    with pytest.raises(guanxi.ValidationError) as err:
        crm.files.import_customers(data)
    assert "file.columns" in str(err.value)
    assert crm.customers.count() == 0


def test_match_rules_are_typed_and_every_bad_part_is_named() -> None:
    people = guanxi.MatchRules.people("date_of_birth")
    assert people.scoring == "probabilistic" and people.model is None
    assert [r.field for r in people.rules][:3] == ["given_name", "surname", "custom.date_of_birth"]
    assert people.blocking[0].kind == "sorted_neighbourhood" and people.blocking[0].window == 9
    rule = guanxi.MatchRule("identifier.uscc", "exact", weight=0.99, only="enterprise")
    assert (rule.field, rule.comparison, rule.min, rule.only) == ("identifier.uscc", "exact", None, "enterprise")
    assert guanxi.MatchRule("custom.budget", "number", tolerance=decimal.Decimal("100")).tolerance == 100

    with pytest.raises(guanxi.ValidationError) as bad_rule:
        guanxi.MatchRule("fax", "jaro_winkler")
    assert {e.field for e in bad_rule.value.errors} == {"field", "min"}
    with pytest.raises(guanxi.ValidationError) as bad_key:
        guanxi.BlockingKey("soundex", "surname")
    assert [e.field for e in bad_key.value.errors] == ["kind"]
    with pytest.raises(guanxi.ValidationError) as bad_rules:
        guanxi.MatchRules(
            [guanxi.MatchRule("surname", "jaro_winkler", min=1.5), guanxi.MatchRule("phone", "date", min=0.9)],
            threshold=0,
            scoring="probabilistic",
            blocking=[guanxi.BlockingKey("sorted_neighbourhood", "surname", window=1)],
        )
    assert {e.field for e in bad_rules.value.errors} == {
        "rules[0].min",
        "rules[1].comparison",
        "threshold",
        "blocking.keys[0].window",
    }


def test_people_are_linked_across_two_sources_with_explained_weights(crm: guanxi.Crm) -> None:
    crm.custom_fields.create("customer", "date_of_birth", "出生日期", "date")
    rules = crm.duplicates.set_rules(guanxi.MatchRules.people("date_of_birth"))
    assert crm.duplicates.rules() == rules and rules.scoring == "probabilistic"
    born = datetime.date
    rows = [
        ("Ann Lee", born(1980, 3, 7), "12 Ocean Street Sydney", "crm"),
        ("Anne Lee", born(1980, 7, 3), "12 Ocean St Sydney", "shop"),
        ("Bob Stone", born(1975, 1, 2), "9 Hill Road Perth", "crm"),
        ("Bob Stone", born(1975, 1, 2), "9 Hill Road Perth", "shop"),
        ("Carl Wu", born(1990, 5, 5), "1 King Street Hobart", "crm"),
        ("Dora Wu", born(1991, 8, 9), "4 Queen Street Darwin", "crm"),
        ("Eve Hart", born(1968, 2, 2), "7 Bay Road Cairns", "shop"),
    ]
    made = [
        crm.customers.create(name, kind="individual", address=addr, tags=[src], custom={"date_of_birth": dob})
        for name, dob, addr, src in rows
    ]
    linked = crm.duplicates.link({"tag": "crm"}, {"tag": "shop"})
    clusters: dict[int, set[str]] = {}
    for row in pa.table(linked.members).to_pylist():
        clusters.setdefault(row["cluster"], set()).add(row["customer_id"])
    assert sorted(map(sorted, clusters.values())) == sorted(
        [sorted([str(made[0].id), str(made[1].id)]), sorted([str(made[2].id), str(made[3].id)])]
    )
    assert linked.stats["estimated"] is not None and linked.stats["profiles"] == 7
    reasons = " ".join(pa.table(linked.pairs).column("reasons").to_pylist())
    assert "same custom.date_of_birth" in reasons or "similar custom.date_of_birth" in reasons
    assert ": +" in reasons  # match weights in bits

    trained = crm.duplicates.train()
    assert trained.model is not None and len(trained.model.fields) == len(rules.rules)
    assert all(0 < f.m < 1 and 0 < f.u < 1 for f in trained.model.fields)
    crm.duplicates.mark_not_duplicate(made[4].id, made[5].id)
    learned = crm.duplicates.learn([(made[0].id, made[1].id), (made[2].id, made[3].id)])
    assert learned.model is not None and learned.model.fields[1].m > learned.model.fields[1].u  # surname
    # Blocking by equal surname alone: Carl Wu and Eve Hart are never compared.
    narrow = guanxi.MatchRules(
        trained.rules,
        threshold=trained.threshold,
        scoring="probabilistic",
        model=trained.model,
        blocking=[guanxi.BlockingKey("exact", "surname")],
    )
    assert crm.duplicates.set_rules(narrow).model == trained.model
    report = crm.duplicates.blocking_report([(made[0].id, made[1].id), (made[4].id, made[6].id)])
    assert (report["known"], report["compared"]) == (2, 1)
    assert report["missed"] == [(made[4].id, made[6].id)]


def test_a_person_without_a_name_is_stored_and_found_by_phone(crm: guanxi.Crm) -> None:
    me = [{"name": "本人", "phone": "13812345678"}]
    first = crm.customers.create("", kind="individual", contacts=me)
    assert first.name == ""
    assert [c["id"] for c in crm.duplicates.find("", kind="individual", contacts=me)] == [first.id]
    with pytest.raises(guanxi.ValidationError) as refused:
        crm.customers.create("", kind="individual")
    assert [e.field for e in refused.value.errors] == ["name"]

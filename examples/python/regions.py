"""Open a database, add customers, load them into pandas and summarize by region and status.

    pip install guanxi pandas pyarrow      # or: maturin develop -m bindings/python/Cargo.toml
    python examples/python/regions.py
"""

from __future__ import annotations

import getpass

import guanxi
from guanxi import LifecycleStatus
from guanxi.fields import NewCustomer

CUSTOMERS: list[tuple[str, str, str, LifecycleStatus]] = [
    ("华为技术有限公司", "广东", "深圳市", LifecycleStatus.CUSTOMER),
    ("腾讯科技", "广东", "深圳市", LifecycleStatus.CUSTOMER),
    ("聊城鲁西化工", "山东", "聊城市", LifecycleStatus.POTENTIAL),
    ("海尔集团", "山东", "青岛市", LifecycleStatus.CUSTOMER),
    ("阿里巴巴", "浙江", "杭州市", LifecycleStatus.LOST),
    ("网易", "浙江", "杭州市", LifecycleStatus.POTENTIAL),
]

with guanxi.Crm.open("crm_python_example.db", user=getpass.getuser()) as crm:
    if crm.customers.count() == 0:
        rows: list[NewCustomer] = [
            {"name": name, "province": province, "city": city, "status": status, "tags": ["示例"]}
            for name, province, city, status in CUSTOMERS
        ]
        crm.customers.create_many(rows)
    df = crm.customers.list_all().to_pandas()
    summary = df.pivot_table(index="province", columns="status", values="code", aggfunc="count", fill_value=0)
    print(f"{len(df)} customers\n")
    print(summary)

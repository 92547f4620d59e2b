"""Open a database, add customers, load them into pandas and summarize by region and status.

    pip install guanxi pandas pyarrow      # or: maturin develop -m bindings/python/Cargo.toml
    python examples/python/regions.py
"""

from __future__ import annotations

import getpass

import guanxi

CUSTOMERS = [
    ("华为技术有限公司", "广东", "深圳市", "customer"),
    ("腾讯科技", "广东", "深圳市", "customer"),
    ("聊城鲁西化工", "山东", "聊城市", "potential"),
    ("海尔集团", "山东", "青岛市", "customer"),
    ("阿里巴巴", "浙江", "杭州市", "lost"),
    ("网易", "浙江", "杭州市", "potential"),
]

with guanxi.Crm.open("crm_python_example.db", user=getpass.getuser()) as crm:
    if crm.customers.count() == 0:
        crm.customers.create_many(
            {"name": name, "province": province, "city": city, "status": status, "tags": ["示例"]}
            for name, province, city, status in CUSTOMERS
        )
    df = crm.customers.list().to_pandas()
    summary = df.pivot_table(index="province", columns="status", values="code", aggfunc="count", fill_value=0)
    print(f"{len(df)} customers\n")
    print(summary)

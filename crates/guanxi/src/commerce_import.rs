//! Importing the catalog and purchases from an ERP's CSV or .xlsx export: streamed a chunk
//! of 1,000 rows at a time inside one write session (memory holds a chunk, never the file),
//! every bad cell reported with its row, column, value and reason, and synced exactly as the
//! API syncs them — so the same file imported twice writes once.

use std::collections::HashMap;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, TimeZone, Utc};
use guanxi_core::commerce::{NewProduct, NewPurchase, Price, PurchaseStatus, SyncReport};
use guanxi_core::rust_decimal::Decimal;
use guanxi_core::sales::ProductLine;
use guanxi_core::{Action, Actor, Customer, CustomerId, DomainEvent, EntityKind, Error, Result, StoreView};

use crate::handles::Files;
use crate::import::{ImportMode, RowError};
use crate::table::{ImportLimits, read_rows};

/// How a catalog or purchase file is imported.
///
/// ```
/// use guanxi::CommerceImportOptions;
/// let o = CommerceImportOptions::default();
/// assert_eq!(o.mode, guanxi::ImportMode::AllOrNothing);
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommerceImportOptions {
    /// Size limits of the file.
    pub limits: ImportLimits,
    /// All or nothing (default), or keep the good rows.
    pub mode: ImportMode,
    /// The source system of rows that name none (an ERP's name).
    pub source_system: Option<String>,
    /// Headers mapped to field keys by hand (`("sales_price", "price")`), over the built-in
    /// names.
    pub columns: Vec<(String, String)>,
}

impl CommerceImportOptions {
    /// Maps a header to a field key (`code`, `name`, `price`, `amount`, `customer_code`, …).
    ///
    /// ```
    /// let o = guanxi::CommerceImportOptions::default().column("sales_price", "price");
    /// assert_eq!(o.columns, [("sales_price".to_owned(), "price".to_owned())]);
    /// ```
    pub fn column(mut self, header: &str, field: &str) -> Self {
        self.columns.push((header.to_owned(), field.to_owned()));
        self
    }
}

/// What a catalog or purchase import did. Every data row is counted once: synced (created,
/// updated or unchanged, in `sync`) or rejected.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let file = "产品编码,产品名称,单价\nSKU-1,CRM 授权,1999\n,无编码,x\n";
/// let r = crm.files().import_products(&Actor::user("a")?, file.as_bytes(), &CommerceImportOptions::default())?;
/// assert_eq!((r.rows, r.rejected.len(), r.committed), (2, 2, false));
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CommerceImportReport {
    /// Data rows read.
    pub rows: u64,
    /// The rows synced, in file order.
    pub sync: SyncReport,
    /// The rejected rows' errors.
    pub rejected: Vec<RowError>,
    /// Headers that map to no field.
    pub ignored_columns: Vec<String>,
    /// Whether anything was written.
    pub committed: bool,
}

/// The columns of a commerce file: each field's key, and the headers naming it.
struct Columns {
    /// field key → column index.
    at: HashMap<&'static str, usize>,
    headers: Vec<String>,
}

const PRODUCT_FIELDS: &[(&str, &[&str])] = &[
    ("code", &["code", "sku", "产品编码", "编码", "物料编码", "商品编码"]),
    ("name", &["name", "产品名称", "名称", "商品名称", "物料名称"]),
    ("category", &["category", "类别", "产品类别", "分类"]),
    ("unit", &["unit", "单位"]),
    ("price", &["price", "list_price", "单价", "价格", "标准价", "销售价"]),
    ("currency", &["currency", "币种", "货币"]),
    ("tax_rate", &["tax_rate", "税率"]),
    ("active", &["active", "状态", "启用"]),
    ("stock", &["stock", "库存", "库存数量"]),
    ("external_id", &["external_id", "外部id", "erp编号", "erp id"]),
];

const PURCHASE_FIELDS: &[(&str, &[&str])] = &[
    ("customer_code", &["customer_code", "客户编号", "客户编码"]),
    ("customer_id", &["customer_id", "客户id"]),
    ("at", &["at", "time", "date", "下单时间", "订单日期", "日期", "时间", "交易时间"]),
    ("amount", &["amount", "金额", "订单金额", "实付金额"]),
    ("currency", &["currency", "币种", "货币"]),
    ("product_code", &["product_code", "sku", "产品编码", "商品编码"]),
    ("product", &["product", "产品", "产品名称", "商品名称"]),
    ("quantity", &["quantity", "数量"]),
    ("unit_price", &["unit_price", "单价"]),
    ("discount", &["discount", "折扣", "优惠"]),
    ("channel", &["channel", "渠道", "销售渠道"]),
    ("source_system", &["source_system", "来源系统", "来源"]),
    ("external_id", &["external_id", "订单号", "订单编号", "外部id"]),
    ("status", &["status", "状态", "订单状态"]),
];

impl Columns {
    fn resolve(
        headers: &[String],
        fields: &[(&'static str, &[&str])],
        manual: &[(String, String)],
    ) -> Result<(Columns, Vec<String>)> {
        for (i, (_, key)) in manual.iter().enumerate() {
            let value = key.clone();
            if !fields.iter().any(|(k, _)| k == key) {
                let allowed: Vec<&str> = fields.iter().map(|(k, _)| *k).collect();
                return Err(Error::invalid(
                    format!("columns[{i}]"),
                    guanxi_core::ValidationReason::NotAllowed {
                        value,
                        allowed: allowed.iter().map(|s| s.to_string()).collect(),
                    },
                ));
            }
        }
        let mut at = HashMap::new();
        let mut ignored = Vec::new();
        for (i, h) in headers.iter().enumerate() {
            let folded = guanxi_core::normalize::fold_text(h).to_lowercase();
            let by_hand = manual.iter().find(|(header, _)| header.trim() == h.trim()).map(|(_, k)| k.as_str());
            let found = match by_hand {
                Some(k) => fields.iter().find(|(key, _)| *key == k),
                None => fields.iter().find(|(_, names)| names.contains(&folded.as_str())),
            };
            match found {
                Some((key, _)) if !at.contains_key(key) => {
                    at.insert(*key, i);
                }
                _ if !h.trim().is_empty() => ignored.push(h.clone()),
                _ => {}
            }
        }
        Ok((Columns { at, headers: headers.to_vec() }, ignored))
    }

    /// A required column's absence, as a file-level error.
    fn require(&self, any_of: &[&str], what: &str) -> Result<()> {
        if any_of.iter().any(|k| self.at.contains_key(k)) {
            return Ok(());
        }
        Err(Error::invalid(
            "file.columns",
            guanxi_core::ValidationReason::Invalid {
                detail: format!("a {what} column is required ({})", any_of.join(" or ")),
            },
        ))
    }

    fn cell<'c>(&self, cells: &'c [String], key: &str) -> Option<&'c str> {
        self.at.get(key).and_then(|i| cells.get(*i)).map(|s| s.trim()).filter(|s| !s.is_empty())
    }

    fn header(&self, key: &str) -> Option<String> {
        self.at.get(key).map(|i| self.headers[*i].clone())
    }

    /// The error of a row at field `key` (its column when the file has one).
    fn error(&self, row: u64, cells: &[String], key: &str, reason: impl Into<String>) -> RowError {
        RowError {
            row,
            column: self.header(key),
            value: self.cell(cells, key).map(str::to_owned),
            reason: reason.into(),
        }
    }
}

/// Parses a cell, or records why not.
fn parsed<T>(
    cols: &Columns,
    row: u64,
    cells: &[String],
    key: &str,
    errors: &mut Vec<RowError>,
    parse: impl Fn(&str) -> std::result::Result<T, String>,
) -> Option<T> {
    let text = cols.cell(cells, key)?;
    match parse(text) {
        Ok(v) => Some(v),
        Err(why) => {
            errors.push(cols.error(row, cells, key, why));
            None
        }
    }
}

fn decimal(s: &str) -> std::result::Result<Decimal, String> {
    let t = s.replace([',', '，', ' '], "");
    let t = t.trim_start_matches(['¥', '￥', '$']);
    t.parse::<Decimal>().map_err(|_| format!("'{s}' is not a number"))
}

fn percent(s: &str) -> std::result::Result<Decimal, String> {
    match s.strip_suffix('%') {
        Some(p) => decimal(p),
        // A fraction as spreadsheets keep percentages (0.13 = 13%).
        None => decimal(s).map(|d| if d < Decimal::ONE && d > Decimal::ZERO { d * Decimal::ONE_HUNDRED } else { d }),
    }
}

fn flag(s: &str) -> std::result::Result<bool, String> {
    match s.trim().to_lowercase().as_str() {
        "1" | "true" | "yes" | "y" | "是" | "启用" | "在售" | "有效" | "active" => Ok(true),
        "0" | "false" | "no" | "n" | "否" | "停用" | "停售" | "无效" | "inactive" => Ok(false),
        _ => Err(format!("'{s}' is not one of 是/否, 启用/停用, true/false, 1/0")),
    }
}

/// An instant from an RFC 3339 text, a date-time or a day (in the store's zone `offset`).
fn instant(s: &str, offset: FixedOffset) -> std::result::Result<DateTime<Utc>, String> {
    if let Ok(t) = DateTime::parse_from_rfc3339(s) {
        return Ok(t.with_timezone(&Utc));
    }
    let local = |t: NaiveDateTime| offset.from_local_datetime(&t).single().map(|t| t.with_timezone(&Utc));
    for f in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y/%m/%d %H:%M:%S", "%Y/%m/%d %H:%M", "%Y-%m-%dT%H:%M:%S%.f"] {
        if let Some(t) = NaiveDateTime::parse_from_str(s, f).ok().and_then(local) {
            return Ok(t);
        }
    }
    for f in ["%Y-%m-%d", "%Y/%m/%d", "%Y%m%d", "%Y年%m月%d日"] {
        if let Some(t) = NaiveDate::parse_from_str(s, f).ok().and_then(|d| local(d.and_time(chrono::NaiveTime::MIN))) {
            return Ok(t);
        }
    }
    // An Excel serial date (days since 1899-12-30) in a cell without a date format.
    if let Ok(serial) = s.parse::<f64>()
        && (1.0..2_958_466.0).contains(&serial)
    {
        let epoch = NaiveDate::from_ymd_opt(1899, 12, 30).and_then(|d| d.and_hms_opt(0, 0, 0));
        let seconds = (serial * 86_400.0).round() as i64;
        if let Some(t) = epoch.map(|e| e + chrono::Duration::seconds(seconds)).and_then(local) {
            return Ok(t);
        }
    }
    Err(format!("'{s}' is not a date or time (2024-05-06, 2024-05-06 10:30, RFC 3339, an Excel date)"))
}

/// Maps a validation error's field (`purchases[3].lines[0].quantity`, `code`) to the column
/// key it came from.
fn column_of(field: &str) -> &str {
    let last = field.rsplit('.').next().unwrap_or(field);
    let last = last.split('[').next().unwrap_or(last);
    match last {
        "prices" => "price",
        "amount" if field.contains("prices") => "price",
        other => other,
    }
}

/// Rows parsed and waiting to be synced, with their row numbers.
struct Chunk<T> {
    rows: Vec<(u64, Vec<String>, T)>,
}

impl<T> Default for Chunk<T> {
    fn default() -> Self {
        Chunk { rows: Vec::new() }
    }
}

const CHUNK: usize = 1_000;

/// Syncs one chunk of checked rows inside the import's session.
type SyncChunk<'a, T> =
    dyn FnMut(&dyn StoreView, &mut Vec<T>, DateTime<Utc>) -> Result<(SyncReport, Vec<DomainEvent>)> + 'a;

impl Files<'_> {
    /// Imports a catalog from an ERP's CSV or .xlsx export (headers such as 产品编码, 产品名称,
    /// 类别, 单位, 单价, 币种, 税率, 状态, 库存, 外部ID — or their English keys, or any header
    /// mapped by [`CommerceImportOptions::column`]; a product without a name is named by its
    /// code), synced as
    /// [`Products::sync`](crate::Products::sync) syncs: by external id, else code; equal rows
    /// change nothing, so the same file imported twice writes once. Every bad cell is reported
    /// with its row, column, value and reason; with [`ImportMode::AllOrNothing`] any bad row
    /// means nothing is written.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let erp = Actor::user("erp")?;
    /// let file = "产品编码,产品名称,类别,单价,税率,状态\nSKU-1,CRM 授权,软件,1999,13%,启用\nSKU-2,服务器,硬件,\"12,000\",0.13,停用\n";
    /// let r = crm.files().import_products(&erp, file.as_bytes(), &CommerceImportOptions::default())?;
    /// assert_eq!((r.sync.created, r.committed), (2, true));
    /// let p = crm.commerce().products().get_by_code(&erp, "SKU-2")?;
    /// assert_eq!((p.prices[0].amount, p.tax_rate, p.active), (12_000.into(), 13.into(), false));
    /// let again = crm.files().import_products(&erp, file.as_bytes(), &CommerceImportOptions::default())?;
    /// assert_eq!(again.sync.unchanged, 2);
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn import_products(
        &self,
        actor: &Actor,
        bytes: &[u8],
        options: &CommerceImportOptions,
    ) -> Result<CommerceImportReport> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Product)?;
        let (headers, total) = read_rows(bytes, &options.limits, &mut |_, _| Ok(()))?;
        let (cols, ignored_columns) = Columns::resolve(&headers, PRODUCT_FIELDS, &options.columns)?;
        cols.require(&["code"], "product code")?;
        let parse = |row: u64, cells: &[String], errors: &mut Vec<RowError>| -> Option<NewProduct> {
            // A catalog without names names its products by code.
            let code = cols.cell(cells, "code").unwrap_or_default();
            let mut p = NewProduct::new(code, cols.cell(cells, "name").unwrap_or(code));
            p.category = cols.cell(cells, "category").map(str::to_owned);
            p.unit = cols.cell(cells, "unit").map(str::to_owned);
            p.external_id = cols.cell(cells, "external_id").map(str::to_owned);
            let currency = cols.cell(cells, "currency").unwrap_or(guanxi_core::sales::DEFAULT_CURRENCY);
            if let Some(price) = parsed(&cols, row, cells, "price", errors, decimal) {
                p.prices.push(Price::new(currency, price));
            }
            if let Some(t) = parsed(&cols, row, cells, "tax_rate", errors, percent) {
                p.tax_rate = t;
            }
            if let Some(a) = parsed(&cols, row, cells, "active", errors, flag) {
                p.active = a;
            }
            p.stock = parsed(&cols, row, cells, "stock", errors, decimal);
            Some(p)
        };
        self.import_rows(
            actor,
            bytes,
            options,
            total,
            ignored_columns,
            &cols,
            parse,
            &mut |view, valid: &mut Vec<NewProduct>, at| self.crm.sync_products(view, actor, &allowed, valid, at),
            NewProduct::validate,
            "products",
        )
    }

    /// Imports purchases from an ERP's or a shop's CSV or .xlsx export, one purchase a row
    /// (headers such as 客户编号 or 客户ID, 下单时间, 金额, 币种, 产品编码, 数量, 单价, 渠道,
    /// 订单号, 状态 — or their English keys), recorded as
    /// [`Purchases::record`](crate::Purchases::record) records them: by source system and
    /// order number, so the same file imported twice writes once, and a later export carrying a
    /// refund updates the order. A row's customer must be live and one the actor may record
    /// purchases for; a product code must be in the catalog. Every bad cell is reported with
    /// its row, column, value and reason.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲公司"))?;
    /// let file = format!("客户编号,下单时间,金额,订单号\n{},2024-05-06 10:30,1999.00,SO-1\n{},2024-05-07,abc,SO-2\n", c.code, c.code);
    /// let options = CommerceImportOptions { mode: ImportMode::KeepGood, source_system: Some("erp".into()), ..Default::default() };
    /// let r = crm.files().import_purchases(&alice, file.as_bytes(), &options)?;
    /// assert_eq!((r.sync.created, r.rejected.len()), (1, 1));
    /// assert_eq!((r.rejected[0].row, r.rejected[0].column.as_deref()), (3, Some("金额")));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn import_purchases(
        &self,
        actor: &Actor,
        bytes: &[u8],
        options: &CommerceImportOptions,
    ) -> Result<CommerceImportReport> {
        let allowed = self.crm.authorize(actor, Action::Create, EntityKind::Purchase)?;
        let (headers, total) = read_rows(bytes, &options.limits, &mut |_, _| Ok(()))?;
        let (cols, ignored_columns) = Columns::resolve(&headers, PURCHASE_FIELDS, &options.columns)?;
        cols.require(&["customer_code", "customer_id"], "customer")?;
        cols.require(&["at"], "purchase time")?;
        cols.require(&["amount", "unit_price"], "amount")?;
        let offset = self.crm.code_offset;
        let customers: std::cell::RefCell<HashMap<String, Option<Customer>>> = Default::default();
        let store = self.crm.view();
        let parse = |row: u64, cells: &[String], errors: &mut Vec<RowError>| -> Option<NewPurchase> {
            let (key, text) = match (cols.cell(cells, "customer_code"), cols.cell(cells, "customer_id")) {
                (Some(code), _) => ("customer_code", code),
                (None, Some(id)) => ("customer_id", id),
                (None, None) => {
                    errors.push(cols.error(row, cells, "customer_code", "a customer is required"));
                    return None;
                }
            };
            let found = customers
                .borrow_mut()
                .entry(text.to_owned())
                .or_insert_with(|| {
                    let c = if key == "customer_code" {
                        store.customer_by_code(text).ok().flatten()
                    } else {
                        text.parse().ok().and_then(|id| store.customer(CustomerId(id)).ok().flatten())
                    };
                    c.filter(|c| !c.is_deleted())
                })
                .clone();
            let customer = match found {
                Some(c) => match allowed.check_customer(actor, &c) {
                    Ok(()) => Some(c.id),
                    Err(e) => {
                        errors.push(cols.error(row, cells, key, e.to_string()));
                        None
                    }
                },
                None => {
                    errors.push(cols.error(row, cells, key, format!("no live customer {text}")));
                    None
                }
            };
            let at = match cols.cell(cells, "at") {
                None => {
                    errors.push(cols.error(row, cells, "at", "is required"));
                    None
                }
                Some(t) => instant(t, offset).map_err(|why| errors.push(cols.error(row, cells, "at", why))).ok(),
            };
            let mut p = NewPurchase::new(customer.unwrap_or(CustomerId(uuid::Uuid::nil())), at.unwrap_or_default());
            p.amount = parsed(&cols, row, cells, "amount", errors, decimal);
            if let Some(c) = cols.cell(cells, "currency") {
                p.currency = c.to_owned();
            }
            p.channel = cols.cell(cells, "channel").map(str::to_owned);
            p.external_id = cols.cell(cells, "external_id").map(str::to_owned);
            p.source_system =
                cols.cell(cells, "source_system").map(str::to_owned).or_else(|| options.source_system.clone());
            if p.external_id.is_none() {
                p.source_system = None;
            }
            if let Some(s) =
                parsed(&cols, row, cells, "status", errors, |s| s.parse::<PurchaseStatus>().map_err(|e| e.to_string()))
            {
                p.status = s;
            }
            let code = cols.cell(cells, "product_code");
            let unit_price = parsed(&cols, row, cells, "unit_price", errors, decimal);
            if code.is_some() || unit_price.is_some() {
                let quantity = parsed(&cols, row, cells, "quantity", errors, decimal).unwrap_or(Decimal::ONE);
                let discount = parsed(&cols, row, cells, "discount", errors, decimal).unwrap_or_default();
                let product = cols.cell(cells, "product").or(code).unwrap_or("(未命名)");
                p.lines.push(ProductLine {
                    product: product.to_owned(),
                    product_code: code.map(str::to_owned),
                    quantity,
                    unit_price: unit_price.unwrap_or_default(),
                    discount,
                });
            }
            (customer.is_some() && at.is_some()).then_some(p)
        };
        self.import_rows(
            actor,
            bytes,
            options,
            total,
            ignored_columns,
            &cols,
            parse,
            &mut |view, valid: &mut Vec<NewPurchase>, at| self.crm.sync_purchases(view, actor, &allowed, valid, at),
            NewPurchase::validate,
            "purchases",
        )
    }

    /// The shared run of a commerce import: reads rows in one write session, parses and
    /// checks each, syncs them a chunk at a time (in [`ImportMode::KeepGood`], leaving out the
    /// rows a chunk's sync refuses and syncing the rest), and commits or rolls back.
    #[allow(clippy::too_many_arguments)] // one shared loop, each part named
    fn import_rows<T: Clone>(
        &self,
        actor: &Actor,
        bytes: &[u8],
        options: &CommerceImportOptions,
        total: u64,
        ignored_columns: Vec<String>,
        cols: &Columns,
        parse: impl Fn(u64, &[String], &mut Vec<RowError>) -> Option<T>,
        sync: &mut SyncChunk<'_, T>,
        validate: fn(T) -> std::result::Result<T, guanxi_core::ValidationErrors>,
        field: &str,
    ) -> Result<CommerceImportReport> {
        let at = self.crm.clock.now();
        let mut report = CommerceImportReport { rows: total, ignored_columns, ..Default::default() };
        let mut events = Vec::new();
        let mut rolled_back = false;
        let outcome = self.crm.store.write_session(&mut |view| {
            let mut chunk: Chunk<T> = Chunk::default();
            let mut flush = |chunk: &mut Chunk<T>, report: &mut CommerceImportReport| -> Result<()> {
                let mut rows = std::mem::take(&mut chunk.rows);
                loop {
                    if rows.is_empty() {
                        return Ok(());
                    }
                    let mut inputs: Vec<T> = rows.iter().map(|(_, _, t)| t.clone()).collect();
                    match sync(view, &mut inputs, at) {
                        Ok((r, ev)) => {
                            for (id, outcome) in r.ids.into_iter().zip(r.outcomes) {
                                report.sync.push(id, outcome);
                            }
                            events.extend(ev);
                            return Ok(());
                        }
                        Err(Error::Validation(errs)) => {
                            // Each failure names `{field}[i]`: its row is rejected.
                            let mut bad = std::collections::BTreeSet::new();
                            for e in &errs.0 {
                                let Some(i) = e
                                    .field
                                    .strip_prefix(&format!("{field}["))
                                    .and_then(|r| r.split(']').next())
                                    .and_then(|n| n.parse::<usize>().ok())
                                else {
                                    return Err(Error::Validation(errs));
                                };
                                let (row, cells, _) = &rows[i];
                                report.rejected.push(cols.error(
                                    *row,
                                    cells,
                                    column_of(&e.field),
                                    e.reason.to_string(),
                                ));
                                bad.insert(i);
                            }
                            if options.mode == ImportMode::AllOrNothing {
                                return Ok(());
                            }
                            rows = rows
                                .into_iter()
                                .enumerate()
                                .filter(|(i, _)| !bad.contains(i))
                                .map(|(_, r)| r)
                                .collect();
                        }
                        Err(e) => return Err(e),
                    }
                }
            };
            read_rows(bytes, &options.limits, &mut |row, cells| {
                let mut errors = Vec::new();
                let parsed = parse(row, &cells, &mut errors);
                let checked = parsed.and_then(|t| match validate(t) {
                    Ok(t) if errors.is_empty() => Some(t),
                    Ok(_) => None,
                    Err(errs) => {
                        // A cell that did not parse is reported once: not again as missing.
                        let unparsed: Vec<Option<String>> = errors.iter().map(|e| e.column.clone()).collect();
                        for e in errs.0 {
                            let err = cols.error(row, &cells, column_of(&e.field), e.reason.to_string());
                            if err.column.is_none() || !unparsed.contains(&err.column) {
                                errors.push(err);
                            }
                        }
                        None
                    }
                });
                report.rejected.extend(errors);
                if let Some(t) = checked {
                    chunk.rows.push((row, cells, t));
                    if chunk.rows.len() >= CHUNK {
                        flush(&mut chunk, &mut report)?;
                    }
                }
                Ok(())
            })?;
            flush(&mut chunk, &mut report)?;
            if options.mode == ImportMode::AllOrNothing && !report.rejected.is_empty() {
                rolled_back = true;
                return Err(Error::InvalidState("a rejected row rolls the import back".into()));
            }
            Ok(())
        });
        match outcome {
            Err(_) if rolled_back => {
                report.sync = SyncReport::default();
                report.rejected.sort_by_key(|e| e.row);
                Ok(report)
            }
            Err(e) => Err(e),
            Ok(()) => {
                report.rejected.sort_by_key(|e| e.row);
                self.crm.publish(actor, at, events);
                report.committed = true;
                Ok(report)
            }
        }
    }
}

//! Custom fields defined at run time per entity, and the validation of their values.

use std::collections::{BTreeMap, BTreeSet};
use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, NaiveDate, Utc};
use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};

use crate::error::{EntityKind, UnknownName, ValidationErrors, ValidationReason};
use crate::ids::UserId;
use crate::normalize::fold_text;

/// The type of a custom field.
///
/// ```
/// use guanxi_core::FieldType;
/// assert_eq!("multi_select".parse::<FieldType>().unwrap(), FieldType::MultiSelect);
/// assert_eq!(FieldType::Decimal.as_str(), "decimal");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum FieldType {
    /// Free text.
    Text,
    /// A whole number (i64).
    Number,
    /// An exact decimal number (money, ratios).
    Decimal,
    /// A calendar day.
    Date,
    /// Yes / no.
    Bool,
    /// One value out of the allowed list.
    SingleSelect,
    /// Any subset of the allowed list.
    MultiSelect,
}

impl FieldType {
    /// Every type.
    pub const ALL: [FieldType; 7] = [
        FieldType::Text,
        FieldType::Number,
        FieldType::Decimal,
        FieldType::Date,
        FieldType::Bool,
        FieldType::SingleSelect,
        FieldType::MultiSelect,
    ];

    /// Stable snake-case name.
    pub fn as_str(self) -> &'static str {
        match self {
            FieldType::Text => "text",
            FieldType::Number => "number",
            FieldType::Decimal => "decimal",
            FieldType::Date => "date",
            FieldType::Bool => "bool",
            FieldType::SingleSelect => "single_select",
            FieldType::MultiSelect => "multi_select",
        }
    }

    fn is_select(self) -> bool {
        matches!(self, FieldType::SingleSelect | FieldType::MultiSelect)
    }
}

impl FromStr for FieldType {
    type Err = UnknownName;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        FieldType::ALL
            .into_iter()
            .find(|t| t.as_str() == s)
            .ok_or_else(|| UnknownName::new(s, FieldType::ALL.map(FieldType::as_str)))
    }
}

impl fmt::Display for FieldType {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A custom field value. Text given for a typed field is parsed into that type on validation
/// (so imports and bindings may pass strings).
///
/// ```
/// use guanxi_core::CustomValue;
/// use rust_decimal::Decimal;
/// let v = CustomValue::Decimal(Decimal::new(125, 1));
/// assert_eq!(v.to_string(), "12.5");
/// assert_eq!(serde_json::to_string(&v).unwrap(), r#"{"type":"decimal","value":"12.5"}"#);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", content = "value", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum CustomValue {
    /// Text (also accepted as input for any type and parsed).
    Text(#[cfg_attr(feature = "uniffi", uniffi(name = "value"))] String),
    /// Whole number.
    Number(#[cfg_attr(feature = "uniffi", uniffi(name = "value"))] i64),
    /// Exact decimal, normalized (no trailing zeros) when validated.
    Decimal(#[cfg_attr(feature = "uniffi", uniffi(name = "value"))] Decimal),
    /// Calendar day.
    Date(#[cfg_attr(feature = "uniffi", uniffi(name = "value"))] NaiveDate),
    /// Yes / no.
    Bool(#[cfg_attr(feature = "uniffi", uniffi(name = "value"))] bool),
    /// The chosen value of a single-select field.
    Select(#[cfg_attr(feature = "uniffi", uniffi(name = "value"))] String),
    /// The chosen values of a multi-select field.
    MultiSelect(#[cfg_attr(feature = "uniffi", uniffi(name = "values"))] BTreeSet<String>),
}

impl CustomValue {
    /// The field type this value belongs to (`Text` for plain text).
    pub fn field_type(&self) -> FieldType {
        match self {
            CustomValue::Text(_) => FieldType::Text,
            CustomValue::Number(_) => FieldType::Number,
            CustomValue::Decimal(_) => FieldType::Decimal,
            CustomValue::Date(_) => FieldType::Date,
            CustomValue::Bool(_) => FieldType::Bool,
            CustomValue::Select(_) => FieldType::SingleSelect,
            CustomValue::MultiSelect(_) => FieldType::MultiSelect,
        }
    }

    /// Whether a stored value satisfies a filter value: equality, except that a multi-select
    /// matches when it contains the filter's single value (or all of the filter's values).
    ///
    /// ```
    /// use guanxi_core::CustomValue;
    /// let stored = CustomValue::MultiSelect(["erp".into(), "crm".into()].into());
    /// assert!(stored.matches(&CustomValue::Select("crm".into())));
    /// assert!(!stored.matches(&CustomValue::Select("oa".into())));
    /// ```
    pub fn matches(&self, wanted: &CustomValue) -> bool {
        match (self, wanted) {
            (CustomValue::MultiSelect(have), CustomValue::Select(w)) => have.contains(w),
            (CustomValue::MultiSelect(have), CustomValue::MultiSelect(w)) => w.is_subset(have),
            _ => self == wanted,
        }
    }

    /// Converts (and checks) this value for a field of type `ty`, parsing text input.
    pub fn coerce(self, ty: FieldType) -> Result<CustomValue, ValidationReason> {
        let wrong = || ValidationReason::WrongType { expected: ty.as_str().replace('_', "-") };
        Ok(match (ty, self) {
            (FieldType::Text, CustomValue::Text(s)) => CustomValue::Text(s),
            (FieldType::Number, CustomValue::Number(n)) => CustomValue::Number(n),
            (FieldType::Number, CustomValue::Text(s)) => {
                CustomValue::Number(fold_text(&s).parse().map_err(|_| wrong())?)
            }
            (FieldType::Decimal, CustomValue::Decimal(d)) => CustomValue::Decimal(bounded_decimal(d)?),
            (FieldType::Decimal, CustomValue::Number(n)) => CustomValue::Decimal(bounded_decimal(Decimal::from(n))?),
            (FieldType::Decimal, CustomValue::Text(s)) => CustomValue::Decimal(bounded_decimal(
                Decimal::from_str_exact(&fold_text(&s).replace(',', "")).map_err(|_| wrong())?,
            )?),
            (FieldType::Date, CustomValue::Date(d)) => CustomValue::Date(d),
            (FieldType::Date, CustomValue::Text(s)) => {
                CustomValue::Date(NaiveDate::parse_from_str(&fold_text(&s), "%Y-%m-%d").map_err(|_| wrong())?)
            }
            (FieldType::Bool, CustomValue::Bool(b)) => CustomValue::Bool(b),
            (FieldType::Bool, CustomValue::Text(s)) => CustomValue::Bool(parse_bool(&s).ok_or_else(wrong)?),
            (FieldType::SingleSelect, CustomValue::Select(s) | CustomValue::Text(s)) => {
                CustomValue::Select(fold_text(&s))
            }
            (FieldType::MultiSelect, CustomValue::MultiSelect(set)) => {
                CustomValue::MultiSelect(set.iter().map(|s| fold_text(s)).collect())
            }
            (FieldType::MultiSelect, CustomValue::Select(s)) => {
                CustomValue::MultiSelect(BTreeSet::from([fold_text(&s)]))
            }
            (FieldType::MultiSelect, CustomValue::Text(s)) => CustomValue::MultiSelect(
                s.split([',', '，', ';', '；']).map(fold_text).filter(|v| !v.is_empty()).collect(),
            ),
            _ => return Err(wrong()),
        })
    }

    fn is_blank(&self) -> bool {
        match self {
            CustomValue::Text(s) | CustomValue::Select(s) => s.trim().is_empty(),
            CustomValue::MultiSelect(set) => set.is_empty(),
            _ => false,
        }
    }
}

/// The most decimal places a decimal custom value may have (so every table of them has one
/// Arrow type, `decimal128(38, 10)`).
pub const MAX_DECIMAL_SCALE: u32 = 10;

/// A decimal custom value, normalized: at most [`MAX_DECIMAL_SCALE`] places and below 10²⁷ in
/// magnitude.
fn bounded_decimal(d: Decimal) -> Result<Decimal, ValidationReason> {
    let d = d.normalize();
    if d.scale() > MAX_DECIMAL_SCALE {
        return Err(ValidationReason::Invalid { detail: format!("has more than {MAX_DECIMAL_SCALE} decimal places") });
    }
    if d.abs() >= Decimal::from_i128_with_scale(10i128.pow(27), 0) {
        return Err(ValidationReason::Invalid { detail: "must be below 10^27 in magnitude".into() });
    }
    Ok(d)
}

fn parse_bool(s: &str) -> Option<bool> {
    match fold_text(s).to_lowercase().as_str() {
        "true" | "yes" | "y" | "1" | "是" | "对" => Some(true),
        "false" | "no" | "n" | "0" | "否" | "不是" => Some(false),
        _ => None,
    }
}

impl fmt::Display for CustomValue {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            CustomValue::Text(s) | CustomValue::Select(s) => f.write_str(s),
            CustomValue::Number(n) => write!(f, "{n}"),
            CustomValue::Decimal(d) => write!(f, "{d}"),
            CustomValue::Date(d) => write!(f, "{d}"),
            CustomValue::Bool(b) => write!(f, "{b}"),
            CustomValue::MultiSelect(set) => f.write_str(&set.iter().map(String::as_str).collect::<Vec<_>>().join(",")),
        }
    }
}

/// The definition of a custom field of one entity.
///
/// ```
/// use guanxi_core::{CustomFieldDef, EntityKind, FieldType};
/// let def = CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal).required();
/// assert!(def.required);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct CustomFieldDef {
    /// The entity the field belongs to.
    pub entity: EntityKind,
    /// Key used in data and filters: lower-case ASCII letters, digits and `_`, starting with a letter.
    pub key: String,
    /// Label shown to people.
    pub label: String,
    /// Value type.
    pub field_type: FieldType,
    /// Whether every new record must carry a value.
    pub required: bool,
    /// For select types: the allowed values (at least one). Empty for other types.
    pub allowed_values: Vec<String>,
    /// Who defined it (set by the facade).
    pub created_by: Option<UserId>,
    /// When it was defined (set by the facade).
    pub created_at: Option<DateTime<Utc>>,
}

impl CustomFieldDef {
    /// Longest key accepted.
    pub const MAX_KEY_LEN: usize = 64;

    /// An optional field with no allowed-values list.
    pub fn new(entity: EntityKind, key: &str, label: &str, field_type: FieldType) -> Self {
        CustomFieldDef {
            entity,
            key: key.to_owned(),
            label: label.to_owned(),
            field_type,
            required: false,
            allowed_values: Vec::new(),
            created_by: None,
            created_at: None,
        }
    }

    /// Marks the field required.
    pub fn required(mut self) -> Self {
        self.required = true;
        self
    }

    /// Sets the allowed values of a select field.
    pub fn allowed<I: IntoIterator<Item = S>, S: Into<String>>(mut self, values: I) -> Self {
        self.allowed_values = values.into_iter().map(Into::into).collect();
        self
    }

    /// Checks and normalizes the definition itself.
    ///
    /// ```
    /// use guanxi_core::{CustomFieldDef, EntityKind, FieldType};
    /// let bad = CustomFieldDef::new(EntityKind::Customer, "Bad Key", "", FieldType::SingleSelect);
    /// let errs = bad.validated().unwrap_err();
    /// assert!(errs.field("key").is_some());
    /// assert!(errs.field("allowed_values").is_some());
    /// ```
    pub fn validated(mut self) -> Result<Self, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        self.key = self.key.trim().to_owned();
        let key_ok = self.key.chars().next().is_some_and(|c| c.is_ascii_lowercase())
            && self.key.chars().all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_');
        if self.key.is_empty() {
            errs.push("key", ValidationReason::Required);
        } else if self.key.len() > Self::MAX_KEY_LEN {
            errs.push("key", ValidationReason::TooLong { max: Self::MAX_KEY_LEN });
        } else if !key_ok {
            errs.push(
                "key",
                ValidationReason::Invalid { detail: "must start with a-z and hold only a-z, 0-9 and _".into() },
            );
        }
        self.label = fold_text(&self.label);
        if self.label.is_empty() {
            self.label = self.key.clone();
        }
        let mut seen = BTreeSet::new();
        self.allowed_values = self.allowed_values.iter().map(|v| fold_text(v)).filter(|v| !v.is_empty()).collect();
        self.allowed_values.retain(|v| seen.insert(v.clone()));
        if self.field_type.is_select() && self.allowed_values.is_empty() {
            errs.push("allowed_values", ValidationReason::Required);
        }
        if !self.field_type.is_select() && !self.allowed_values.is_empty() {
            errs.push(
                "allowed_values",
                ValidationReason::Invalid { detail: "only select fields take allowed values".into() },
            );
        }
        if errs.is_empty() { Ok(self) } else { Err(errs) }
    }

    fn check_value(&self, value: CustomValue) -> Result<CustomValue, ValidationReason> {
        let value = value.coerce(self.field_type)?;
        let allowed = |v: &String| self.allowed_values.iter().any(|a| a == v);
        match &value {
            CustomValue::Select(v) if !allowed(v) => Err(ValidationReason::not_allowed(v, &self.allowed_values)),
            CustomValue::MultiSelect(set) => match set.iter().find(|v| !allowed(v)) {
                Some(v) => Err(ValidationReason::not_allowed(v, &self.allowed_values)),
                None => Ok(value),
            },
            CustomValue::Text(s) => Ok(CustomValue::Text(fold_text(s))),
            _ => Ok(value),
        }
    }
}

/// Validates the custom values of a new record against the definitions: unknown keys, wrong
/// types, values outside the allowed list and missing required fields are all reported under
/// `custom.<key>`. Blank values are dropped (a blank is "no value").
pub fn validate_new_custom(
    defs: &[CustomFieldDef],
    values: BTreeMap<String, CustomValue>,
    errs: &mut ValidationErrors,
) -> BTreeMap<String, CustomValue> {
    let out = check_values(defs, values.into_iter().map(|(k, v)| (k, Some(v))), errs);
    for def in defs.iter().filter(|d| d.required) {
        if !out.contains_key(&def.key) {
            errs.push(format!("custom.{}", def.key), ValidationReason::Required);
        }
    }
    out.into_iter().filter_map(|(k, v)| v.map(|v| (k, v))).collect()
}

/// Applies a patch of custom values (`None` clears a value) to `current`, validating each
/// changed key; clearing a required field is an error.
pub fn patch_custom(
    defs: &[CustomFieldDef],
    current: &BTreeMap<String, CustomValue>,
    patch: BTreeMap<String, Option<CustomValue>>,
    errs: &mut ValidationErrors,
) -> BTreeMap<String, CustomValue> {
    let mut out = current.clone();
    for (key, value) in check_values(defs, patch.into_iter(), errs) {
        match value {
            Some(v) => {
                out.insert(key, v);
            }
            None => {
                if defs.iter().any(|d| d.key == key && d.required) {
                    errs.push(format!("custom.{key}"), ValidationReason::Required);
                }
                out.remove(&key);
            }
        }
    }
    out
}

fn check_values(
    defs: &[CustomFieldDef],
    values: impl Iterator<Item = (String, Option<CustomValue>)>,
    errs: &mut ValidationErrors,
) -> BTreeMap<String, Option<CustomValue>> {
    let mut out = BTreeMap::new();
    for (key, value) in values {
        let path = format!("custom.{key}");
        let Some(def) = defs.iter().find(|d| d.key == key) else {
            errs.push(path, ValidationReason::UnknownField);
            continue;
        };
        match value.filter(|v| !v.is_blank()).map(|v| def.check_value(v)).transpose() {
            Ok(v) => {
                out.insert(key, v);
            }
            Err(reason) => errs.push(path, reason),
        }
    }
    out
}

/// A filter on one custom field: equality, or containment for multi-select fields.
///
/// ```
/// use guanxi_core::{CustomFilter, CustomValue};
/// let f = CustomFilter::new("budget_confirmed", CustomValue::Bool(true));
/// assert_eq!(f.key, "budget_confirmed");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CustomFilter {
    /// Field key.
    pub key: String,
    /// Value to match (see [`CustomValue::matches`]).
    pub value: CustomValue,
}

impl CustomFilter {
    /// A filter on `key`.
    pub fn new(key: impl Into<String>, value: CustomValue) -> Self {
        CustomFilter { key: key.into(), value }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn defs() -> Vec<CustomFieldDef> {
        vec![
            CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal).required(),
            CustomFieldDef::new(EntityKind::Customer, "products", "产品", FieldType::MultiSelect)
                .allowed(["erp", "crm"]),
            CustomFieldDef::new(EntityKind::Customer, "employees", "员工数", FieldType::Number),
        ]
    }

    #[test]
    fn reports_every_custom_failure_together() {
        let mut errs = ValidationErrors::default();
        let values = BTreeMap::from([
            ("products".to_owned(), CustomValue::Text("erp, oa".into())),
            ("employees".to_owned(), CustomValue::Text("many".into())),
            ("nope".to_owned(), CustomValue::Bool(true)),
        ]);
        let out = validate_new_custom(&defs(), values, &mut errs);
        assert!(out.is_empty());
        assert_eq!(
            errs.field("custom.products").map(|e| &e.reason),
            Some(&ValidationReason::not_allowed("oa", ["erp", "crm"]))
        );
        assert_eq!(
            errs.field("custom.employees").map(|e| &e.reason),
            Some(&ValidationReason::WrongType { expected: "number".into() })
        );
        assert_eq!(errs.field("custom.nope").map(|e| &e.reason), Some(&ValidationReason::UnknownField));
        assert_eq!(errs.field("custom.budget").map(|e| &e.reason), Some(&ValidationReason::Required));
        assert_eq!(errs.len(), 4);
    }

    #[test]
    fn decimals_are_bounded_in_places_and_magnitude() {
        let d = |s: &str| CustomValue::Text(s.into()).coerce(FieldType::Decimal);
        assert_eq!(d("1.2500000000000"), Ok(CustomValue::Decimal(Decimal::new(125, 2))));
        assert!(
            matches!(d("0.00000000001"), Err(ValidationReason::Invalid { detail }) if detail.contains("10 decimal"))
        );
        assert!(matches!(d("1000000000000000000000000000"), Err(ValidationReason::Invalid { .. })));
        assert!(d("999999999999999999999999999").is_ok());
    }

    #[test]
    fn text_input_is_parsed_into_the_field_type() {
        let mut errs = ValidationErrors::default();
        let values = BTreeMap::from([
            ("budget".to_owned(), CustomValue::Text("１,２００.５０".into())),
            ("products".to_owned(), CustomValue::Text("crm，erp".into())),
        ]);
        let out = validate_new_custom(&defs(), values, &mut errs);
        assert!(errs.is_empty(), "{errs}");
        assert_eq!(out["budget"], CustomValue::Decimal(Decimal::new(12005, 1)));
        assert_eq!(out["products"], CustomValue::MultiSelect(["crm".into(), "erp".into()].into()));
    }

    #[test]
    fn clearing_a_required_field_is_rejected() {
        let mut errs = ValidationErrors::default();
        let current = BTreeMap::from([("budget".to_owned(), CustomValue::Decimal(Decimal::ONE))]);
        let out = patch_custom(&defs(), &current, BTreeMap::from([("budget".to_owned(), None)]), &mut errs);
        assert!(!out.contains_key("budget"));
        assert_eq!(errs.field("custom.budget").map(|e| &e.reason), Some(&ValidationReason::Required));
    }
}

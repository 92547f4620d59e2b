//! Helpers shared by the validation of every record: text fields with limits, phones, e-mails.

use crate::error::{ValidationErrors, ValidationReason};
use crate::normalize::{Email, IdNumber, Phone, clean_multiline, fold_text, forbidden_char, forbidden_reason};

/// Length limits (in characters) of free-text fields.
pub mod limits {
    /// Names of customers, contacts and tags' groups.
    pub const NAME: usize = 200;
    /// Short labels: source, title, tag name.
    pub const SHORT: usize = 100;
    /// Addresses.
    pub const ADDRESS: usize = 500;
    /// Long text: interaction content, feedback.
    pub const LONG: usize = 20_000;
}

/// A required single-line text field: folded, trimmed, not empty, at most `max` characters.
pub(crate) fn required_text(errs: &mut ValidationErrors, field: &str, value: &str, max: usize) -> String {
    // Checked before folding: folding turns some control characters into spaces.
    if let Some(c) = forbidden_char(value, false) {
        errs.push(field, forbidden_reason(c));
        return fold_text(value);
    }
    let v = fold_text(value);
    if v.is_empty() {
        errs.push(field, ValidationReason::Required);
    } else if v.chars().count() > max {
        errs.push(field, ValidationReason::TooLong { max });
    }
    v
}

/// An optional single-line text field: blank becomes `None`.
pub(crate) fn optional_text(
    errs: &mut ValidationErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let value = value?;
    if let Some(c) = forbidden_char(value, false) {
        errs.push(field, forbidden_reason(c));
    }
    let v = fold_text(value);
    if v.chars().count() > max {
        errs.push(field, ValidationReason::TooLong { max });
    }
    (!v.is_empty()).then_some(v)
}

/// An optional multi-line text field: blank becomes `None`.
pub(crate) fn optional_long_text(
    errs: &mut ValidationErrors,
    field: &str,
    value: Option<&str>,
    max: usize,
) -> Option<String> {
    let value = value?;
    if let Some(c) = forbidden_char(value, true) {
        errs.push(field, forbidden_reason(c));
    }
    let v = clean_multiline(value);
    if v.chars().count() > max {
        errs.push(field, ValidationReason::TooLong { max });
    }
    (!v.is_empty()).then_some(v)
}

/// A list of phone numbers, each validated under `field[i]`; duplicates after normalization are merged.
pub(crate) fn phones(errs: &mut ValidationErrors, field: &str, values: &[String]) -> Vec<Phone> {
    let mut out: Vec<Phone> = Vec::new();
    for (i, raw) in values.iter().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        match Phone::parse(raw) {
            Ok(p) if !out.contains(&p) => out.push(p),
            Ok(_) => {}
            Err(reason) => errs.push(format!("{field}[{i}]"), reason),
        }
    }
    out
}

/// An optional identity number, validated under `field` (blank means none).
pub(crate) fn id_number(errs: &mut ValidationErrors, field: &str, value: Option<&str>) -> Option<IdNumber> {
    let raw = value.filter(|v| !v.trim().is_empty())?;
    IdNumber::parse(raw).map_err(|reason| errs.push(field, reason)).ok()
}

/// A list of e-mail addresses, each validated under `field[i]`; duplicates are merged.
pub(crate) fn emails(errs: &mut ValidationErrors, field: &str, values: &[String]) -> Vec<Email> {
    let mut out: Vec<Email> = Vec::new();
    for (i, raw) in values.iter().enumerate() {
        if raw.trim().is_empty() {
            continue;
        }
        match Email::parse(raw) {
            Ok(e) if !out.contains(&e) => out.push(e),
            Ok(_) => {}
            Err(reason) => errs.push(format!("{field}[{i}]"), reason),
        }
    }
    out
}

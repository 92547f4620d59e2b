//! Identity numbers and registration codes of any national format (证件号码 / 统一社会信用代码):
//! a typed list on each customer, each value checked by its scheme.
//!
//! A Chinese resident identity number and a unified social credit code carry check
//! characters (GB 11643, GB 32100), so a mistyped one is rejected at the door; a passport
//! number or any other identifier is kept as written (folded, upper-cased), never rejected
//! for its national format.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::{ValidationErrors, ValidationReason};
use crate::normalize::{IdNumber, fold_text, forbidden_char, forbidden_reason, mask_middle};

/// The kind of an identity number or registration code.
///
/// ```
/// use guanxi_core::IdScheme;
/// assert_eq!("uscc".parse::<IdScheme>(), Ok(IdScheme::Uscc));
/// assert_eq!(IdScheme::CnResident.as_str(), "cn_resident");
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum IdScheme {
    /// A Chinese resident identity number (居民身份证号码, GB 11643).
    CnResident,
    /// A unified social credit code (统一社会信用代码, GB 32100): a Chinese organisation's.
    Uscc,
    /// A passport number.
    Passport,
    /// Any other national or internal identifier (a social security number, a tax number).
    Other,
}

impl IdScheme {
    /// Every scheme.
    pub const ALL: [IdScheme; 4] = [IdScheme::CnResident, IdScheme::Uscc, IdScheme::Passport, IdScheme::Other];

    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            IdScheme::CnResident => "cn_resident",
            IdScheme::Uscc => "uscc",
            IdScheme::Passport => "passport",
            IdScheme::Other => "other",
        }
    }

    /// The allowed names, for errors.
    pub fn names() -> Vec<String> {
        IdScheme::ALL.iter().map(|s| s.as_str().to_owned()).collect()
    }
}

impl fmt::Display for IdScheme {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for IdScheme {
    type Err = ValidationReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        IdScheme::ALL
            .into_iter()
            .find(|x| x.as_str() == s)
            .ok_or_else(|| ValidationReason::NotAllowed { value: s.to_owned(), allowed: IdScheme::names() })
    }
}

/// One identifier of a customer: its scheme and its value.
///
/// Built raw (by hand or from input) and checked by [`Identifier::parse`]; a stored customer's
/// identifiers are always parsed ones, sorted by scheme and value, without repeats.
///
/// ```
/// use guanxi_core::{IdScheme, Identifier};
/// let code = Identifier::parse(IdScheme::Uscc, "9135 0100 m000 100y43").unwrap();
/// assert_eq!(code.value, "91350100M000100Y43");
/// assert_eq!(code.to_string(), "uscc:91350100M000100Y43");
/// assert!(Identifier::parse(IdScheme::Uscc, "91350100M000100Y44").is_err()); // wrong check character
/// assert_eq!(Identifier::parse(IdScheme::Passport, "e 1234-5678").unwrap().value, "E12345678");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Identifier {
    /// The scheme.
    pub scheme: IdScheme,
    /// The value, normalized for its scheme.
    pub value: String,
}

/// At most this many identifiers on one customer.
pub const MAX_IDENTIFIERS: usize = 16;

/// Characters of an identifier of scheme `other`, at most.
pub const MAX_OTHER_IDENTIFIER: usize = 64;

/// The 31 characters of a unified social credit code, by value (GB 32100: no I, O, S, V, Z).
const USCC_CHARS: &[u8; 31] = b"0123456789ABCDEFGHJKLMNPQRTUWXY";

impl Identifier {
    /// An identifier as given, not yet checked (see [`Identifier::parse`]).
    pub fn new(scheme: IdScheme, value: impl Into<String>) -> Identifier {
        Identifier { scheme, value: value.into() }
    }

    /// Checks and normalizes `raw` as an identifier of `scheme`:
    /// - `cn_resident`: 18 characters with the GB 11643 check character and a real birth date;
    /// - `uscc`: 18 characters of the GB 32100 alphabet with its check character;
    /// - `passport`: 5–20 letters and digits (spaces and hyphens dropped), upper-cased;
    /// - `other`: any single-line text up to 64 characters, folded and trimmed.
    ///
    /// ```
    /// use guanxi_core::{IdScheme, Identifier, ValidationReason};
    /// assert_eq!(Identifier::parse(IdScheme::CnResident, "11010519491231002x").unwrap().value, "11010519491231002X");
    /// assert_eq!(Identifier::parse(IdScheme::CnResident, "110105194912310021"), Err(ValidationReason::InvalidIdNumber));
    /// assert_eq!(Identifier::parse(IdScheme::Other, " SSN 078-05-1120 ").unwrap().value, "SSN 078-05-1120");
    /// assert!(Identifier::parse(IdScheme::Other, " ").is_err());
    /// ```
    pub fn parse(scheme: IdScheme, raw: &str) -> Result<Identifier, ValidationReason> {
        if let Some(c) = forbidden_char(raw, false) {
            return Err(forbidden_reason(c));
        }
        let value = match scheme {
            IdScheme::CnResident => IdNumber::parse(raw)?.as_str().to_owned(),
            IdScheme::Uscc => parse_uscc(raw)?,
            IdScheme::Passport => parse_passport(raw)?,
            IdScheme::Other => {
                let v = fold_text(raw);
                if v.is_empty() {
                    return Err(ValidationReason::Required);
                }
                if v.chars().count() > MAX_OTHER_IDENTIFIER {
                    return Err(ValidationReason::TooLong { max: MAX_OTHER_IDENTIFIER });
                }
                v
            }
        };
        Ok(Identifier { scheme, value })
    }

    /// As people with a masking rule see it: the first three and last four characters
    /// (a registration code and a personal number alike).
    ///
    /// ```
    /// use guanxi_core::{IdScheme, Identifier};
    /// let id = Identifier::parse(IdScheme::Passport, "E12345678").unwrap();
    /// assert_eq!(id.masked().value, "E12**5678");
    /// ```
    pub fn masked(&self) -> Identifier {
        Identifier { scheme: self.scheme, value: mask_middle(&self.value, 3, 4) }
    }

    /// The GB 32100 check character of a unified social credit code's first 17 characters,
    /// or `None` when one of them is outside the code's alphabet.
    ///
    /// ```
    /// use guanxi_core::Identifier;
    /// assert_eq!(Identifier::uscc_check_char("91350100M000100Y4"), Some('3'));
    /// assert_eq!(Identifier::uscc_check_char("91350100M000100YI"), None); // no I in the alphabet
    /// ```
    pub fn uscc_check_char(first17: &str) -> Option<char> {
        const WEIGHTS: [u32; 17] = [1, 3, 9, 27, 19, 26, 16, 17, 20, 29, 25, 13, 8, 24, 10, 30, 28];
        let bytes = first17.as_bytes();
        if bytes.len() != 17 {
            return None;
        }
        let mut sum = 0;
        for (b, w) in bytes.iter().zip(WEIGHTS) {
            let value = USCC_CHARS.iter().position(|c| c == b)?;
            sum += value as u32 * w;
        }
        Some(char::from(USCC_CHARS[((31 - sum % 31) % 31) as usize]))
    }
}

impl fmt::Display for Identifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:{}", self.scheme, self.value)
    }
}

/// A code with its separators (spaces, hyphens, dots) dropped and upper-cased.
fn compact(raw: &str) -> String {
    fold_text(raw)
        .chars()
        .filter(|c| !c.is_whitespace() && !matches!(c, '-' | '.'))
        .flat_map(char::to_uppercase)
        .collect()
}

fn parse_uscc(raw: &str) -> Result<String, ValidationReason> {
    let code = compact(raw);
    let invalid = |detail: &str| ValidationReason::Invalid {
        detail: format!(
            "not a unified social credit code: {detail} (GB 32100: 18 characters of 0-9 and A-Y without I, O, S, V, Z)"
        ),
    };
    if code.chars().count() != 18 {
        return Err(invalid(&format!("{} characters", code.chars().count())));
    }
    let Some(check) = Identifier::uscc_check_char(&code[..17]) else {
        return Err(invalid("a character outside the code's alphabet"));
    };
    if !code.ends_with(check) {
        return Err(invalid(&format!("the check character should be {check}")));
    }
    Ok(code)
}

fn parse_passport(raw: &str) -> Result<String, ValidationReason> {
    let number = compact(raw);
    if !(5..=20).contains(&number.len()) || !number.bytes().all(|b| b.is_ascii_alphanumeric()) {
        return Err(ValidationReason::Invalid { detail: "not a passport number: 5-20 letters and digits".into() });
    }
    Ok(number)
}

/// Checks a list of identifiers, each under `field[i]`; the valid ones come back sorted by
/// scheme and value, without repeats. More than [`MAX_IDENTIFIERS`] is an error on `field`.
pub(crate) fn validate_identifiers(errs: &mut ValidationErrors, field: &str, raw: &[Identifier]) -> Vec<Identifier> {
    if raw.len() > MAX_IDENTIFIERS {
        errs.push(field, ValidationReason::TooLarge { max: MAX_IDENTIFIERS as u64, unit: "identifiers".into() });
        return Vec::new();
    }
    let mut out = Vec::with_capacity(raw.len());
    for (i, id) in raw.iter().enumerate() {
        match Identifier::parse(id.scheme, &id.value) {
            Ok(id) => out.push(id),
            Err(reason) => errs.push(format!("{field}[{i}]"), reason),
        }
    }
    out.sort();
    out.dedup();
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn published_codes_pass_their_check_and_one_changed_character_fails_it() {
        // Codes as printed on business licences (Huawei, Tencent's Shenzhen company, a Fuzhou sample).
        for code in ["914403001922038216", "9144030071526726XG", "91350100M000100Y43"] {
            let id = Identifier::parse(IdScheme::Uscc, code).unwrap();
            assert_eq!(id.value, code);
            let mut wrong = code.as_bytes().to_vec();
            wrong[5] = if wrong[5] == b'1' { b'2' } else { b'1' };
            assert!(Identifier::parse(IdScheme::Uscc, std::str::from_utf8(&wrong).unwrap()).is_err(), "{code}");
        }
    }

    #[test]
    fn every_bad_identifier_is_named_and_the_good_ones_are_sorted_without_repeats() {
        let mut errs = ValidationErrors::default();
        let raw = [
            Identifier::new(IdScheme::Passport, "x"),
            Identifier::new(IdScheme::Uscc, "91350100M000100Y43"),
            Identifier::new(IdScheme::Other, "会员 7"),
            Identifier::new(IdScheme::Uscc, "9135 0100 M000 100Y43"),
            Identifier::new(IdScheme::CnResident, "123"),
        ];
        let ok = validate_identifiers(&mut errs, "identifiers", &raw);
        assert_eq!(ok.iter().map(ToString::to_string).collect::<Vec<_>>(), ["uscc:91350100M000100Y43", "other:会员 7"]);
        let fields: Vec<_> = errs.0.iter().map(|e| e.field.as_str()).collect();
        assert_eq!(fields, ["identifiers[0]", "identifiers[4]"]);
        let too_many = vec![Identifier::new(IdScheme::Other, "a"); MAX_IDENTIFIERS + 1];
        let mut errs = ValidationErrors::default();
        assert!(validate_identifiers(&mut errs, "identifiers", &too_many).is_empty());
        assert_eq!(errs.0[0].field, "identifiers");
    }
}

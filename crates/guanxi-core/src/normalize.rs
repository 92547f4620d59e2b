//! Normalization of free text, phone numbers and e-mail addresses.
//!
//! All functions are pure and idempotent: normalizing a normalized value returns it unchanged
//! (checked by property tests).

use std::fmt;

use serde::{Deserialize, Serialize};
use unicode_normalization::UnicodeNormalization;

use crate::error::ValidationReason;

/// The first character of `text` that is a control character (other than the line breaks and
/// tabs `multiline` allows) or a bidirectional embedding, override or isolate (U+202A–U+202E,
/// U+2066–U+2069), which can make a stored name display as another (an override can show "txt.exe" as
/// "exe.txt"). Names, identifiers and prose refuse them.
///
/// ```
/// use guanxi_core::normalize::forbidden_char;
/// assert_eq!(forbidden_char("华为\u{202E}技术", false), Some('\u{202E}'));
/// assert_eq!(forbidden_char("a\0b", false), Some('\0'));
/// assert_eq!(forbidden_char("第一行\n第二行", true), None);
/// assert_eq!(forbidden_char("华为技术有限公司", false), None);
/// ```
pub fn forbidden_char(text: &str, multiline: bool) -> Option<char> {
    text.chars().find(|&c| {
        matches!(c, '\u{202A}'..='\u{202E}' | '\u{2066}'..='\u{2069}')
            || (c.is_control() && !(multiline && matches!(c, '\n' | '\r' | '\t')))
    })
}

/// The validation reason for a forbidden character.
pub(crate) fn forbidden_reason(c: char) -> crate::ValidationReason {
    crate::ValidationReason::Invalid {
        detail: format!("contains the control or bidirectional-override character U+{:04X}", u32::from(c)),
    }
}

/// A people-facing code (`C20240501001`, `T…`, `O…`) as a user may type it — full-width,
/// lower case, with stray spaces — in the form codes are stored in.
///
/// ```
/// use guanxi_core::normalize::code;
/// assert_eq!(code(" ｃ２０２４０５０１００１ "), "C20240501001");
/// ```
pub fn code(input: &str) -> String {
    fold_text(input).to_uppercase()
}

/// Folds full-width forms to half-width (NFKC: `ＡＢＣ１２３` → `ABC123`, `（` → `(`, the
/// ideographic space → a space), trims, and collapses runs of whitespace into one space.
///
/// ```
/// use guanxi_core::normalize::fold_text;
/// assert_eq!(fold_text("  华为技术（深圳）　有限公司 "), "华为技术(深圳) 有限公司");
/// assert_eq!(fold_text("ＡＢＣ\t\n１２３"), "ABC 123");
/// ```
pub fn fold_text(input: &str) -> String {
    // Fast path: most input is already normalized, single-spaced and trimmed.
    let single_spaced = !input.contains(|c: char| c.is_whitespace() && c != ' ') && !input.contains("  ");
    if single_spaced
        && input.trim().len() == input.len()
        && unicode_normalization::is_nfkc_quick(input.chars()) == unicode_normalization::IsNormalized::Yes
    {
        return input.to_owned();
    }
    let folded: String = input.nfkc().collect();
    let mut out = String::with_capacity(folded.len());
    for word in folded.split_whitespace() {
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(word);
    }
    out
}

/// Tidies long-form text (notes, follow-up content): NFC, `\r\n` → `\n`, trailing whitespace
/// of each line and surrounding blank space removed. Unlike [`fold_text`] it keeps full-width
/// punctuation and indentation: it is the user's prose, not an identifier.
///
/// ```
/// use guanxi_core::normalize::clean_multiline;
/// assert_eq!(clean_multiline("\n  现场演示，客户关注价格。  \r\n    - 下周报价\n\n"), "现场演示，客户关注价格。\n    - 下周报价");
/// ```
pub fn clean_multiline(input: &str) -> String {
    let composed: String = input.nfc().collect();
    let lines: Vec<&str> = composed.lines().map(str::trim_end).collect();
    lines.join("\n").trim().to_owned()
}

/// A phone number in E.164 form (`+8613812345678`). Chinese numbers must be mobiles
/// (11 digits, `1[3-9]…`); other countries are accepted in international form.
///
/// ```
/// use guanxi_core::Phone;
/// let p = Phone::parse("+86 138-1234-5678").unwrap();
/// assert_eq!(p.as_str(), "+8613812345678");
/// assert_eq!(Phone::parse("138 1234 5678").unwrap(), p);
/// assert_eq!(p.national(), "13812345678");
/// assert!(Phone::parse("12812345678").is_err()); // second digit must be 3-9
/// assert!(Phone::parse("010-12345678").is_err()); // a landline, not a mobile
/// assert_eq!(Phone::parse("+44 20 7946 0958").unwrap().as_str(), "+442079460958");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Phone(String);

// Kotlin and Swift see it as its text, checked as `try_from` does on the way in.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Phone, String, {
    lower: |v| v.0,
    try_lift: |s| Ok(Phone::try_from(s).map_err(|r| crate::Error::invalid("phone", r))?)
});

impl Phone {
    /// Parses a phone number written with optional `+86` / `0086` prefix, spaces, dashes, dots
    /// or parentheses, and full-width digits.
    pub fn parse(input: &str) -> Result<Phone, ValidationReason> {
        let folded = fold_text(input);
        let mut digits = String::with_capacity(folded.len());
        let mut plus = false;
        for ch in folded.chars() {
            match ch {
                '0'..='9' => digits.push(ch),
                // A leading plus may sit inside parentheses: "(+86) 138…".
                '+' if digits.is_empty() && !plus => plus = true,
                ' ' | '-' | '.' | '(' | ')' => {}
                _ => return Err(ValidationReason::InvalidPhone),
            }
        }
        let international = if plus { Some(digits.as_str()) } else { digits.strip_prefix("00") };
        let national = match international {
            Some(rest) => match rest.strip_prefix("86") {
                Some(cn) => cn,
                None => return Self::foreign(rest),
            },
            None => digits.as_str(),
        };
        if is_chinese_mobile(national) {
            Ok(Phone(format!("+86{national}")))
        } else {
            Err(ValidationReason::InvalidPhone)
        }
    }

    // E.164 allows at most 15 digits including the country code; country codes never start with 0.
    fn foreign(digits: &str) -> Result<Phone, ValidationReason> {
        if (8..=15).contains(&digits.len()) && !digits.starts_with('0') {
            Ok(Phone(format!("+{digits}")))
        } else {
            Err(ValidationReason::InvalidPhone)
        }
    }

    /// The E.164 text.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The number without the `+86` prefix for Chinese numbers; the E.164 text otherwise.
    pub fn national(&self) -> &str {
        self.0.strip_prefix("+86").unwrap_or(&self.0)
    }

    /// The number as people with a masking rule see it: the national number's first three and
    /// last four digits, the rest starred (`138****5678`).
    ///
    /// ```
    /// use guanxi_core::Phone;
    /// assert_eq!(Phone::parse("13812345678").unwrap().masked().as_str(), "138****5678");
    /// assert_eq!(Phone::parse("+44 20 7946 0958").unwrap().masked().as_str(), "+44******0958");
    /// ```
    pub fn masked(&self) -> Phone {
        Phone(mask_middle(self.national(), 3, 4))
    }
}

/// Keeps the first `head` and last `tail` characters and stars the rest (at least one star;
/// short text keeps only its first character).
pub(crate) fn mask_middle(text: &str, head: usize, tail: usize) -> String {
    let chars: Vec<char> = text.chars().collect();
    if chars.len() <= head + tail {
        let first: String = chars.iter().take(1).collect();
        return format!("{first}***");
    }
    let starred = chars.len() - head - tail;
    let mut out: String = chars[..head].iter().collect();
    out.extend(std::iter::repeat_n('*', starred));
    out.extend(&chars[chars.len() - tail..]);
    out
}

fn is_chinese_mobile(n: &str) -> bool {
    let b = n.as_bytes();
    b.len() == 11 && b[0] == b'1' && (b'3'..=b'9').contains(&b[1]) && b.iter().all(u8::is_ascii_digit)
}

impl fmt::Display for Phone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Phone {
    type Error = ValidationReason;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Phone::parse(&s)
    }
}

impl From<Phone> for String {
    fn from(p: Phone) -> String {
        p.0
    }
}

/// A well-formed, lower-cased e-mail address.
///
/// ```
/// use guanxi_core::Email;
/// assert_eq!(Email::parse("  Zhang.Wei@Example.COM ").unwrap().as_str(), "zhang.wei@example.com");
/// assert_eq!(Email::parse("ｚｈａｎｇ＠ｅｘａｍｐｌｅ．ｃｏｍ").unwrap().as_str(), "zhang@example.com");
/// assert!(Email::parse("zhang@localhost").is_err()); // a domain needs a dot
/// assert!(Email::parse("not an email").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct Email(String);

// Kotlin and Swift see it as its text, checked as `try_from` does on the way in.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(Email, String, {
    lower: |v| v.0,
    try_lift: |s| Ok(Email::try_from(s).map_err(|r| crate::Error::invalid("email", r))?)
});

impl Email {
    /// Longest address accepted (RFC 5321).
    pub const MAX_LEN: usize = 254;

    /// Parses and lower-cases an address; full-width characters are folded first.
    pub fn parse(input: &str) -> Result<Email, ValidationReason> {
        let folded = fold_text(input).to_lowercase();
        if folded.len() > Self::MAX_LEN {
            return Err(ValidationReason::TooLong { max: Self::MAX_LEN });
        }
        // Domain rule on top of the RFC parser: a CRM address must reach the internet, so the
        // domain is a dotted host name, not an IP literal or a bare local name.
        let domain_ok = folded.rsplit_once('@').is_some_and(|(local, domain)| {
            !local.is_empty()
                && domain.contains('.')
                && !domain.starts_with('.')
                && !domain.ends_with('.')
                && !domain.starts_with('[')
        });
        if domain_ok && email_address::EmailAddress::is_valid(&folded) {
            Ok(Email(folded))
        } else {
            Err(ValidationReason::InvalidEmail)
        }
    }

    /// The address.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The address as people with a masking rule see it: the first character of the local
    /// part, then `***`, then the domain.
    ///
    /// ```
    /// use guanxi_core::Email;
    /// assert_eq!(Email::parse("alice@example.com").unwrap().masked().as_str(), "a***@example.com");
    /// ```
    pub fn masked(&self) -> Email {
        let (local, domain) = self.0.split_once('@').unwrap_or((&self.0, ""));
        let first = local.chars().next().unwrap_or('*');
        Email(format!("{first}***@{domain}"))
    }
}

impl fmt::Display for Email {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for Email {
    type Error = ValidationReason;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        Email::parse(&s)
    }
}

impl From<Email> for String {
    fn from(e: Email) -> String {
        e.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn accepts_common_chinese_mobile_spellings() {
        for s in [
            "13812345678",
            "138 1234 5678",
            "138-1234-5678",
            "+86 13812345678",
            "+86-138-1234-5678",
            "0086 13812345678",
            "(+86) 138.1234.5678",
            "１３８１２３４５６７８",
        ] {
            assert_eq!(Phone::parse(s).map(|p| p.0), Ok("+8613812345678".to_owned()), "{s}");
        }
    }

    #[test]
    fn country_code_without_plus_is_ambiguous_and_rejected() {
        assert_eq!(Phone::parse("8613812345678"), Err(ValidationReason::InvalidPhone));
    }

    #[test]
    fn rejects_malformed_phones() {
        for s in [
            "",
            "1381234567",
            "138123456789",
            "12012345678",
            "+86 010 12345678",
            "phone",
            "138x12345678",
            "+0123456789",
            "+1",
        ] {
            assert_eq!(Phone::parse(s), Err(ValidationReason::InvalidPhone), "{s:?}");
        }
    }

    #[test]
    fn email_rejects_missing_parts() {
        for s in ["", "@example.com", "a@", "a@.com", "a@example.", "a b@example.com", "a@[127.0.0.1]"] {
            assert!(Email::parse(s).is_err(), "{s:?}");
        }
    }

    proptest! {
        #[test]
        fn phone_parse_never_panics_and_is_idempotent(s in "\\PC{0,40}") {
            if let Ok(p) = Phone::parse(&s) {
                prop_assert_eq!(Phone::parse(p.as_str()), Ok(p.clone()));
            }
        }

        #[test]
        fn mobile_numbers_with_separators_normalize(second in 3u8..=9, rest in "[0-9]{9}", sep in "[ -]?", prefix in "(\\+86|0086|)") {
            let national = format!("1{second}{rest}");
            let written = format!("{prefix}{}{sep}{}{sep}{}", &national[..3], &national[3..7], &national[7..]);
            prop_assert_eq!(Phone::parse(&written).map(|p| p.0), Ok(format!("+86{national}")));
        }

        #[test]
        fn email_parse_never_panics_and_is_idempotent(s in "\\PC{0,60}") {
            if let Ok(e) = Email::parse(&s) {
                prop_assert_eq!(Email::parse(e.as_str()), Ok(e.clone()));
            }
        }

        #[test]
        fn fold_text_is_idempotent(s in "\\PC{0,60}") {
            let once = fold_text(&s);
            prop_assert_eq!(fold_text(&once), once.clone());
            prop_assert_eq!(once.trim(), once.as_str());
        }

        #[test]
        fn clean_multiline_is_idempotent(s in "(\\PC|\n){0,60}") {
            let once = clean_multiline(&s);
            prop_assert_eq!(clean_multiline(&once), once);
        }
    }
}

/// A Chinese resident identity number (居民身份证号码, GB 11643-1999): 17 digits and an
/// ISO 7064 MOD 11-2 check character (`0`–`9` or `X`), with a real birth date in positions 7–14.
/// A sensitive value: encrypted at rest, masked in the change log.
///
/// ```
/// use guanxi_core::IdNumber;
/// let id = IdNumber::parse("11010519491231002x").unwrap();
/// assert_eq!(id.as_str(), "11010519491231002X");
/// assert_eq!(id.masked().as_str(), "110***********002X");
/// assert!(IdNumber::parse("110105194912310021").is_err()); // wrong check digit
/// assert!(IdNumber::parse("110105194902300027").is_err()); // 30 February
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(try_from = "String", into = "String")]
pub struct IdNumber(String);

// Kotlin and Swift see it as its text, checked as `try_from` does on the way in.
#[cfg(feature = "uniffi")]
uniffi::custom_type!(IdNumber, String, {
    lower: |v| v.0,
    try_lift: |s| Ok(IdNumber::try_from(s).map_err(|r| crate::Error::invalid("id_number", r))?)
});

impl IdNumber {
    /// Parses an identity number; full-width characters and spaces are folded away first.
    pub fn parse(input: &str) -> Result<IdNumber, ValidationReason> {
        let folded: String = fold_text(input).chars().filter(|c| !c.is_whitespace()).collect::<String>().to_uppercase();
        let b = folded.as_bytes();
        if b.len() != 18 || !b[..17].iter().all(u8::is_ascii_digit) {
            return Err(ValidationReason::InvalidIdNumber);
        }
        let check = IdNumber::check_char(&b[..17]);
        let birth = chrono::NaiveDate::parse_from_str(&folded[6..14], "%Y%m%d");
        if b[17] != check || birth.is_err() {
            return Err(ValidationReason::InvalidIdNumber);
        }
        Ok(IdNumber(folded))
    }

    /// The 18 characters.
    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The GB 11643 check character of the first 17 digits (ASCII digits).
    pub(crate) fn check_char(digits: &[u8]) -> u8 {
        const WEIGHTS: [u32; 17] = [7, 9, 10, 5, 8, 4, 2, 1, 6, 3, 7, 9, 10, 5, 8, 4, 2];
        let sum: u32 = digits.iter().zip(WEIGHTS).map(|(d, w)| u32::from(d.wrapping_sub(b'0')) * w).sum();
        b"10X98765432"[(sum % 11) as usize]
    }

    /// As people with a masking rule see it: the first three and last four characters.
    pub fn masked(&self) -> IdNumber {
        IdNumber(mask_middle(&self.0, 3, 4))
    }
}

impl fmt::Display for IdNumber {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

impl TryFrom<String> for IdNumber {
    type Error = ValidationReason;
    fn try_from(s: String) -> Result<Self, Self::Error> {
        IdNumber::parse(&s)
    }
}

impl From<IdNumber> for String {
    fn from(p: IdNumber) -> String {
        p.0
    }
}

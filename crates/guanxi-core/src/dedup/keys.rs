//! Match keys: what two spellings of the same company, person, address, phone or e-mail
//! normalize to. Every function is pure and idempotent (`key(key(x)) == key(x)`, property-tested).

use crate::normalize::{Email, Phone, fold_text};

/// Chinese legal-form suffixes, longest first so that 股份有限公司 goes before 有限公司.
const CJK_SUFFIXES: &[&str] = &[
    "集团股份有限公司",
    "集团有限公司",
    "股份有限公司",
    "有限责任公司",
    "有限公司",
    "分公司",
    "总公司",
    "集团",
    "公司",
];

/// Latin legal-form words, removed from the end of a name word by word (so `Costco` keeps its
/// `co`, while `Costco Co., Ltd.` loses `co` and `ltd`).
const LATIN_SUFFIXES: &[&str] = &[
    "co",
    "ltd",
    "limited",
    "inc",
    "incorporated",
    "corp",
    "corporation",
    "company",
    "gmbh",
    "llc",
    "llp",
    "lp",
    "plc",
    "ag",
    "sa",
    "srl",
    "bv",
    "kk",
];

/// Folded (NFKC: full-width → half-width) and lower-cased, split at every character that is
/// not a letter or digit (spaces, punctuation, symbols, the middle dot of transliterations).
fn words(input: &str) -> Vec<String> {
    fold_text(input)
        .to_lowercase()
        .split(|c: char| !c.is_alphanumeric())
        .filter(|w| !w.is_empty())
        .map(str::to_owned)
        .collect()
}

/// One pass of [`company_key`].
fn strip_legal_form(name: &str) -> String {
    let mut w = words(name);
    while let Some(last) = w.last() {
        let whole = LATIN_SUFFIXES.contains(&last.as_str()) || CJK_SUFFIXES.contains(&last.as_str());
        if whole {
            if w.len() == 1 {
                break; // the name is nothing but a legal form: keep it
            }
            w.pop();
            continue;
        }
        let Some(rest) = CJK_SUFFIXES.iter().find_map(|s| last.strip_suffix(s).filter(|r| !r.is_empty())) else {
            break;
        };
        let rest = rest.to_owned();
        w.pop();
        w.push(rest);
    }
    w.concat()
}

/// The comparison key of a company name: full-width folded, lower-cased, legal-form suffixes
/// (有限公司, 股份有限公司, 集团, Co., Ltd., Inc., GmbH, …) stripped from the end, and
/// punctuation and spaces removed. A name that is nothing but a legal form keeps it.
///
/// ```
/// use guanxi_core::dedup::company_key;
/// assert_eq!(company_key("华为技术有限公司"), "华为技术");
/// assert_eq!(company_key("华为技术股份有限公司"), company_key("华为技术（有限公司）"));
/// assert_eq!(company_key("ＡＢＣ Trading Co., Ltd."), "abctrading");
/// assert_eq!(company_key("Acme GmbH"), company_key("ACME Inc."));
/// assert_eq!(company_key("Costco"), "costco");
/// assert_eq!(company_key("有限公司"), "有限公司");
/// ```
pub fn company_key(name: &str) -> String {
    // To a fixed point: a pass can expose another suffix once words are joined.
    let mut key = strip_legal_form(name);
    loop {
        let next = strip_legal_form(&key);
        if next == key {
            return key;
        }
        key = next;
    }
}

/// The comparison key of a person's name: folded, lower-cased, spaces, dots and punctuation
/// removed; a Latin name written "Family, Given" is turned around first.
///
/// ```
/// use guanxi_core::dedup::person_key;
/// assert_eq!(person_key(" 张　三 "), "张三");
/// assert_eq!(person_key("Smith, John"), person_key("john smith"));
/// assert_eq!(person_key("阿卜杜·热合曼"), "阿卜杜热合曼");
/// ```
pub fn person_key(name: &str) -> String {
    let folded = fold_text(name);
    let ordered = match folded.split_once(',') {
        Some((family, given)) if !given.trim().is_empty() => format!("{} {}", given.trim(), family.trim()),
        _ => folded,
    };
    words(&ordered).concat()
}

/// Address words that vary between spellings of one address without changing it.
const ADDRESS_NOISE: &[&str] = &["中华人民共和国", "中国"];

/// The comparison key of a street address: folded, lower-cased, punctuation and spaces
/// removed, a leading 中国 dropped. Province and city suffixes are kept: 山东省 and 山东
/// differ in the key, and fuzzy matching absorbs it.
///
/// ```
/// use guanxi_core::dedup::address_key;
/// assert_eq!(address_key("中国 深圳市南山区 科技园（北区）１号"), "深圳市南山区科技园北区1号");
/// ```
pub fn address_key(address: &str) -> String {
    let mut key = words(address).concat();
    while let Some(rest) = ADDRESS_NOISE.iter().find_map(|n| key.strip_prefix(n).filter(|r| !r.is_empty())) {
        key = rest.to_owned();
    }
    key
}

/// The comparison key of a phone number: E.164 when it parses (`138-1234-5678` →
/// `+8613812345678`), otherwise its digits (a landline such as `010-12345678`); None when it
/// has fewer than 6 digits.
///
/// ```
/// use guanxi_core::dedup::phone_key;
/// assert_eq!(phone_key("+86 138 1234 5678").as_deref(), Some("+8613812345678"));
/// assert_eq!(phone_key("0086-13812345678"), phone_key("138１２３４５６７８"));
/// assert_eq!(phone_key("010-1234 5678").as_deref(), Some("01012345678"));
/// assert_eq!(phone_key("n/a"), None);
/// ```
pub fn phone_key(phone: &str) -> Option<String> {
    if let Ok(p) = Phone::parse(phone) {
        return Some(p.as_str().to_owned());
    }
    let digits: String = fold_text(phone).chars().filter(char::is_ascii_digit).collect();
    match Phone::parse(&digits) {
        Ok(p) => Some(p.as_str().to_owned()),
        Err(_) => (digits.len() >= 6).then_some(digits),
    }
}

/// The comparison key of an e-mail address: lower-cased and folded when valid, None otherwise.
///
/// ```
/// use guanxi_core::dedup::email_key;
/// assert_eq!(email_key(" Wang.Lei@Example.COM ").as_deref(), Some("wang.lei@example.com"));
/// assert_eq!(email_key("not an address"), None);
/// ```
pub fn email_key(email: &str) -> Option<String> {
    Email::parse(email).ok().map(|e| e.as_str().to_owned())
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;

    use super::*;

    fn text() -> impl Strategy<Value = String> {
        prop_oneof![
            "[a-zA-Z0-9 ,.()&-]{0,24}",
            "[\\u{4e00}-\\u{4e40}（）　 ]{0,12}(有限公司|股份有限公司|集团|)",
            "[ -~]{0,20}( Co., Ltd.| Inc.| GmbH|)",
            any::<String>(),
        ]
    }

    proptest! {
        #[test]
        fn keys_are_idempotent(s in text()) {
            prop_assert_eq!(company_key(&company_key(&s)), company_key(&s));
            prop_assert_eq!(person_key(&person_key(&s)), person_key(&s));
            prop_assert_eq!(address_key(&address_key(&s)), address_key(&s));
            if let Some(p) = phone_key(&s) {
                prop_assert_eq!(phone_key(&p), Some(p.clone()));
            }
            if let Some(e) = email_key(&s) {
                prop_assert_eq!(email_key(&e), Some(e.clone()));
            }
        }

        #[test]
        fn company_key_ignores_width_case_and_legal_form(base in "[\\u{4e00}-\\u{4e40}a-z]{2,8}") {
            let k = company_key(&base);
            prop_assert_eq!(company_key(&format!("{base}有限公司")), k.clone());
            prop_assert_eq!(company_key(&format!("{}股份有限公司", base.to_uppercase())), k.clone());
            prop_assert_eq!(company_key(&format!(" {base} Co., Ltd.")), k);
        }

        #[test]
        fn phone_formats_agree(n in 3u8..10, rest in "[0-9]{9}") {
            let national = format!("1{n}{rest}");
            let k = phone_key(&national);
            prop_assert!(k.is_some());
            prop_assert_eq!(phone_key(&format!("+86 {national}")), k.clone());
            prop_assert_eq!(phone_key(&format!("{}-{}-{}", &national[..3], &national[3..7], &national[7..])), k);
        }
    }
}

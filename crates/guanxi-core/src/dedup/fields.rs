//! What match rules and blocking keys are made of: the fields of a [`MatchProfile`], the
//! identifier schemes, and the comparators that turn two values into a similarity.

use std::borrow::Cow;
use std::fmt;
use std::str::FromStr;

use chrono::{Datelike, NaiveDate};
use rust_decimal::Decimal;
use rust_decimal::prelude::ToPrimitive;
use serde::{Deserialize, Serialize};

use super::rules::MatchProfile;
use crate::custom_field::CustomValue;
use crate::error::ValidationReason;
pub use crate::identifier::IdScheme;
use crate::normalize::fold_text;

/// The comparison key of an identifier: folded, upper-cased, with spaces, hyphens and dots
/// removed (`91350100-M000100Y43` and `91350100m000100y43` are one code). Identifiers of any
/// national format are kept as written otherwise: nothing is rejected.
///
/// ```
/// use guanxi_core::dedup::identifier_key;
/// assert_eq!(identifier_key(" 9135 0100-m000.100Y43 "), "91350100M000100Y43");
/// ```
pub fn identifier_key(value: &str) -> String {
    fold_text(value).chars().filter(|c| c.is_alphanumeric()).flat_map(char::to_uppercase).collect()
}

/// A field rules compare and blocking keys are made of. Its stable name (what settings
/// documents and every language use) is its `Display` form: `phone`, `email`, `name`,
/// `given_name`, `surname`, `address`, `identifier` (every scheme), `identifier.<scheme>`
/// and `custom.<key>`.
///
/// ```
/// use guanxi_core::dedup::{IdScheme, MatchField};
/// assert_eq!("identifier.uscc".parse::<MatchField>().unwrap(), MatchField::Identifier(Some(IdScheme::Uscc)));
/// assert_eq!(MatchField::Custom("date_of_birth".into()).to_string(), "custom.date_of_birth");
/// assert!("fax".parse::<MatchField>().is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
#[serde(into = "String", try_from = "String")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum MatchField {
    /// Any phone of one equals any phone of the other.
    Phone,
    /// Any e-mail of one equals any e-mail of the other.
    Email,
    /// The name keys.
    Name,
    /// A person's given name (split from the name unless given apart).
    GivenName,
    /// A person's surname (family name).
    Surname,
    /// The address keys.
    Address,
    /// Identifiers of one scheme, or (`None`) of the same scheme, whichever it is (one of
    /// scheme `other` meets any scheme).
    Identifier(#[cfg_attr(feature = "uniffi", uniffi(name = "scheme"))] Option<IdScheme>),
    /// A custom field, by key, of any type.
    Custom(#[cfg_attr(feature = "uniffi", uniffi(name = "key"))] String),
}

impl MatchField {
    /// The built-in fields' names, for errors.
    pub fn names() -> Vec<String> {
        let mut names: Vec<String> =
            ["phone", "email", "name", "given_name", "surname", "address", "identifier"].map(String::from).into();
        names.extend(IdScheme::ALL.iter().map(|s| format!("identifier.{}", s.as_str())));
        names.push("custom.<key>".into());
        names
    }

    /// The stable name of a built-in field without a parameter (`identifier` for every
    /// identifier, `custom` for every custom field).
    pub fn as_str(&self) -> &'static str {
        match self {
            MatchField::Phone => "phone",
            MatchField::Email => "email",
            MatchField::Name => "name",
            MatchField::GivenName => "given_name",
            MatchField::Surname => "surname",
            MatchField::Address => "address",
            MatchField::Identifier(_) => "identifier",
            MatchField::Custom(_) => "custom",
        }
    }

    /// Whether the field holds text (every field but a custom field, whose type the stored
    /// values say).
    fn is_text(&self) -> bool {
        !matches!(self, MatchField::Custom(_))
    }
}

impl fmt::Display for MatchField {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            MatchField::Identifier(Some(s)) => write!(f, "identifier.{}", s.as_str()),
            MatchField::Custom(key) => write!(f, "custom.{key}"),
            other => f.write_str(other.as_str()),
        }
    }
}

impl FromStr for MatchField {
    type Err = ValidationReason;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let unknown = || ValidationReason::NotAllowed { value: s.to_owned(), allowed: MatchField::names() };
        Ok(match s {
            "phone" => MatchField::Phone,
            "email" => MatchField::Email,
            "name" => MatchField::Name,
            "given_name" => MatchField::GivenName,
            "surname" => MatchField::Surname,
            "address" => MatchField::Address,
            "identifier" => MatchField::Identifier(None),
            _ => {
                if let Some(scheme) = s.strip_prefix("identifier.") {
                    MatchField::Identifier(Some(scheme.parse().map_err(|_| unknown())?))
                } else if let Some(key) = s.strip_prefix("custom.").filter(|k| !k.is_empty()) {
                    MatchField::Custom(key.to_owned())
                } else {
                    return Err(unknown());
                }
            }
        })
    }
}

impl From<MatchField> for String {
    fn from(f: MatchField) -> String {
        f.to_string()
    }
}

impl TryFrom<String> for MatchField {
    type Error = String;

    fn try_from(s: String) -> Result<Self, Self::Error> {
        s.parse().map_err(|r: ValidationReason| format!("unknown match field {s:?}: {r}"))
    }
}

/// How a field is compared. Text comparators read the field's comparison keys; `Date` and
/// `Number` read custom fields of those types.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum Comparison {
    /// Equal keys (similarity 1).
    Exact,
    /// Jaro-Winkler similarity of the keys, counted from `min` up (strsim).
    JaroWinkler {
        /// Lowest similarity that counts.
        min: f64,
    },
    /// 1 − edit distance / longer length, the distance counting insertions, deletions,
    /// substitutions and swaps of neighbours (optimal string alignment, the restricted
    /// Damerau-Levenshtein; strsim), from `min` up.
    Edit {
        /// Lowest similarity that counts.
        min: f64,
    },
    /// Dice coefficient of the keys' character bigrams (addresses with words moved, dropped
    /// or misspelt), from `min` up.
    QGram {
        /// Lowest similarity that counts.
        min: f64,
    },
    /// Share of words in common (Jaccard of the word sets: word order does not matter), from
    /// `min` up.
    TokenSet {
        /// Lowest similarity that counts.
        min: f64,
    },
    /// Equal phonetic codes: Double Metaphone of Latin words (rphonetic), toneless pinyin of
    /// Chinese characters (pinyin), so `Smyth` meets `Smith` and 张 meets 章.
    Phonetic,
    /// Dates: 1 when equal, 0.9 for day and month swapped or the year off by one, 0.7 when
    /// one of year, month and day differs otherwise, else 0; counted from `min` up.
    Date {
        /// Lowest similarity that counts.
        min: f64,
    },
    /// Numbers: 1 − |a − b| / (2 × `tolerance`), so equal numbers give 1 and numbers
    /// `tolerance` apart give 0.5 (the least that counts).
    Number {
        /// The largest difference that counts (> 0).
        tolerance: Decimal,
    },
}

impl Comparison {
    /// The least similarity that counts as agreement.
    pub fn min(&self) -> f64 {
        match *self {
            Comparison::Exact | Comparison::Phonetic => 1.0,
            Comparison::JaroWinkler { min }
            | Comparison::Edit { min }
            | Comparison::QGram { min }
            | Comparison::TokenSet { min }
            | Comparison::Date { min } => min,
            Comparison::Number { .. } => 0.5,
        }
    }

    /// What is wrong with comparing `field` this way, if anything.
    pub(crate) fn problem(&self, field: &MatchField) -> Option<(&'static str, String)> {
        let min = self.min();
        if !(0.0..=1.0).contains(&min) {
            return Some(("min", "must be in [0, 1]".into()));
        }
        match self {
            Comparison::Date { .. } | Comparison::Number { .. } if field.is_text() => Some((
                "comparison",
                format!("{} holds text: a date or number comparison needs a custom field of that type", field),
            )),
            Comparison::Number { tolerance } if *tolerance <= Decimal::ZERO => {
                Some(("tolerance", "must be greater than 0".into()))
            }
            _ => None,
        }
    }

    /// The similarity of two profiles on `field`: None when either lacks a value (missing
    /// says nothing), else the best similarity over their values. What every compared pair
    /// costs; [`Comparison::similarity`] adds the value, for the pairs that are explained.
    pub(crate) fn score(&self, field: &MatchField, a: &MatchProfile, b: &MatchProfile) -> Option<f64> {
        match field {
            MatchField::Custom(key) => self.values(a.custom.get(key)?, b.custom.get(key)?),
            _ => self.best_key(field, a, b).map(|(s, _)| s),
        }
    }

    /// [`Comparison::score`] with the other's value that gave it.
    pub(crate) fn similarity<'b>(
        &self,
        field: &MatchField,
        a: &MatchProfile,
        b: &'b MatchProfile,
    ) -> Option<(f64, Cow<'b, str>)> {
        if let MatchField::Custom(key) = field {
            let (va, vb) = (a.custom.get(key)?, b.custom.get(key)?);
            return self.values(va, vb).map(|s| (s, custom_text(vb)));
        }
        self.best_key(field, a, b)
    }

    /// The best similarity over the two profiles' keys of `field` (not a custom field), with
    /// the other's key that gave it; identifiers meet keys of their own scheme, and an
    /// identifier of scheme `other` (the scheme not known) meets every scheme.
    fn best_key<'b>(&self, field: &MatchField, a: &MatchProfile, b: &'b MatchProfile) -> Option<(f64, Cow<'b, str>)> {
        let mut best: Option<(f64, Cow<'b, str>)> = None;
        let meet = |x: Option<IdScheme>, y: Option<IdScheme>| {
            x == y || x == Some(IdScheme::Other) || y == Some(IdScheme::Other)
        };
        for_each_key(a, field, |ka, scheme_a| {
            for_each_key(b, field, |kb, scheme_b| {
                if !meet(scheme_a, scheme_b) {
                    return;
                }
                let s = self.texts(&ka, &kb);
                if best.as_ref().is_none_or(|(x, _)| s > *x) {
                    best = Some((s, kb));
                }
            });
        });
        best
    }

    /// The similarity of two comparison keys.
    pub(crate) fn texts(&self, a: &str, b: &str) -> f64 {
        match self {
            Comparison::Exact => f64::from(u8::from(a == b)),
            Comparison::JaroWinkler { .. } => strsim::jaro_winkler(a, b),
            Comparison::Edit { min } => {
                let (la, lb) = (a.chars().count(), b.chars().count());
                let longer = la.max(lb);
                if longer == 0 {
                    return 1.0;
                }
                // The length difference alone is a lower bound on the distance: a pair it
                // already puts below `min` needs no alignment (most pairs a block holds).
                let bound = 1.0 - la.abs_diff(lb) as f64 / longer as f64;
                if bound < *min {
                    return bound;
                }
                // Optimal string alignment (Damerau with adjacent transpositions, each
                // substring edited once): what typos are, without the full Damerau's alphabet map.
                1.0 - strsim::osa_distance(a, b) as f64 / longer as f64
            }
            Comparison::QGram { .. } => bigram_dice(a, b),
            Comparison::TokenSet { .. } => token_jaccard(a, b),
            Comparison::Phonetic => f64::from(u8::from(a == b || phonetic_key(a) == phonetic_key(b))),
            Comparison::Date { .. } => match (parse_day(a), parse_day(b)) {
                (Some(x), Some(y)) => date_similarity(x, y),
                _ => f64::from(u8::from(a == b)),
            },
            Comparison::Number { .. } => f64::from(u8::from(a == b)),
        }
    }

    /// The similarity of two custom values (text comparators read them as text).
    fn values(&self, a: &CustomValue, b: &CustomValue) -> Option<f64> {
        Some(match (self, a, b) {
            (Comparison::Date { .. }, CustomValue::Date(x), CustomValue::Date(y)) => date_similarity(*x, *y),
            (Comparison::Number { tolerance }, x, y) => {
                let (x, y) = (number(x)?, number(y)?);
                let d = ((x - y).abs() / (*tolerance * Decimal::TWO)).to_f64().unwrap_or(f64::MAX);
                (1.0 - d).max(0.0)
            }
            (Comparison::Exact, CustomValue::MultiSelect(x), CustomValue::MultiSelect(y)) => {
                f64::from(u8::from(x.intersection(y).next().is_some()))
            }
            (_, x, y) => self.texts(&custom_text(x), &custom_text(y)),
        })
    }
}

fn number(v: &CustomValue) -> Option<Decimal> {
    match v {
        CustomValue::Number(n) => Some(Decimal::from(*n)),
        CustomValue::Decimal(d) => Some(*d),
        _ => None,
    }
}

/// A custom value as comparison text: text as the profile keeps it (folded, lower-cased),
/// dates `YYYYMMDD`.
pub(crate) fn custom_text(v: &CustomValue) -> Cow<'_, str> {
    match v {
        CustomValue::Text(t) | CustomValue::Select(t) => Cow::Borrowed(t),
        CustomValue::Number(n) => Cow::Owned(n.to_string()),
        CustomValue::Decimal(d) => Cow::Owned(d.normalize().to_string()),
        CustomValue::Date(d) => Cow::Owned(d.format("%Y%m%d").to_string()),
        CustomValue::Bool(b) => Cow::Owned(b.to_string()),
        CustomValue::MultiSelect(s) => Cow::Owned(s.iter().cloned().collect::<Vec<_>>().join(" ")),
    }
}

/// A custom value as a profile keeps it: text folded and lower-cased once.
pub(crate) fn custom_key(v: &CustomValue) -> CustomValue {
    match v {
        CustomValue::Text(t) => CustomValue::Text(fold_text(t).to_lowercase()),
        CustomValue::Select(t) => CustomValue::Select(fold_text(t).to_lowercase()),
        other => other.clone(),
    }
}

fn parse_day(s: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(s, "%Y%m%d").ok()
}

/// The similarity of two dates of birth, as people get them wrong.
///
/// ```
/// use chrono::NaiveDate;
/// use guanxi_core::dedup::date_similarity;
/// let d = |y, m, day| NaiveDate::from_ymd_opt(y, m, day).unwrap();
/// assert_eq!(date_similarity(d(1980, 3, 7), d(1980, 3, 7)), 1.0);
/// assert_eq!(date_similarity(d(1980, 3, 7), d(1980, 7, 3)), 0.9); // day and month swapped
/// assert_eq!(date_similarity(d(1980, 3, 7), d(1981, 3, 7)), 0.9); // year off by one
/// assert_eq!(date_similarity(d(1980, 3, 7), d(1980, 3, 17)), 0.7); // one part differs
/// assert_eq!(date_similarity(d(1980, 3, 7), d(1975, 9, 17)), 0.0);
/// ```
pub fn date_similarity(a: NaiveDate, b: NaiveDate) -> f64 {
    let same = [a.year() == b.year(), a.month() == b.month(), a.day() == b.day()];
    match same {
        [true, true, true] => 1.0,
        [true, false, false] if a.month() == b.day() && a.day() == b.month() => 0.9,
        [false, true, true] if (a.year() - b.year()).abs() == 1 => 0.9,
        _ if same.iter().filter(|s| **s).count() == 2 => 0.7,
        _ => 0.0,
    }
}

/// Dice coefficient of character bigrams (as multisets), 1 for two equal keys.
fn bigram_dice(a: &str, b: &str) -> f64 {
    if a == b {
        return 1.0;
    }
    let grams = |s: &str| {
        let chars: Vec<char> = s.chars().collect();
        let mut g: Vec<(char, char)> = chars.windows(2).map(|w| (w[0], w[1])).collect();
        g.sort_unstable();
        g
    };
    let (x, y) = (grams(a), grams(b));
    if x.is_empty() || y.is_empty() {
        return 0.0;
    }
    let (mut i, mut j, mut common) = (0, 0, 0usize);
    while i < x.len() && j < y.len() {
        match x[i].cmp(&y[j]) {
            std::cmp::Ordering::Less => i += 1,
            std::cmp::Ordering::Greater => j += 1,
            std::cmp::Ordering::Equal => {
                common += 1;
                i += 1;
                j += 1;
            }
        }
    }
    2.0 * common as f64 / (x.len() + y.len()) as f64
}

/// Jaccard similarity of the word sets (words split at spaces).
fn token_jaccard(a: &str, b: &str) -> f64 {
    let x: std::collections::BTreeSet<&str> = a.split_whitespace().collect();
    let y: std::collections::BTreeSet<&str> = b.split_whitespace().collect();
    let union = x.union(&y).count();
    if union == 0 { 1.0 } else { x.intersection(&y).count() as f64 / union as f64 }
}

/// The phonetic code of a name: toneless pinyin of each Chinese character, the Double
/// Metaphone primary code of each Latin word, other characters kept.
///
/// ```
/// use guanxi_core::dedup::phonetic_key;
/// assert_eq!(phonetic_key("smith"), phonetic_key("smyth"));
/// assert_eq!(phonetic_key("张伟"), "zhangwei");
/// assert_eq!(phonetic_key("张伟"), phonetic_key("章伟"));
/// ```
pub fn phonetic_key(s: &str) -> String {
    use pinyin::ToPinyin;
    use rphonetic::Encoder;
    let mut out = String::with_capacity(s.len() * 2);
    let mut word = String::new();
    let flush = |word: &mut String, out: &mut String| {
        if !word.is_empty() {
            let code = rphonetic::DoubleMetaphone::default().encode(word);
            out.push_str(if code.is_empty() { word } else { &code });
            word.clear();
        }
    };
    for (c, py) in s.chars().zip(s.to_pinyin()) {
        match py {
            Some(p) => {
                flush(&mut word, &mut out);
                out.push_str(p.plain());
            }
            None if c.is_alphabetic() => word.push(c),
            None => {
                flush(&mut word, &mut out);
                if !c.is_whitespace() {
                    out.push(c);
                }
            }
        }
    }
    flush(&mut word, &mut out);
    out
}

/// Calls `f` with each comparison key of `field` in a profile (and, for identifiers, its
/// scheme; `None` for every other field). Custom fields give their text (a date as
/// `YYYYMMDD`, made for the call: the only key not borrowed from the profile).
pub(crate) fn for_each_key<'p>(
    p: &'p MatchProfile,
    field: &MatchField,
    mut f: impl FnMut(Cow<'p, str>, Option<IdScheme>),
) {
    let mut text = |s: &'p str| {
        if !s.is_empty() {
            f(Cow::Borrowed(s), None)
        }
    };
    match field {
        MatchField::Phone => p.phones.iter().for_each(|k| text(k)),
        MatchField::Email => p.emails.iter().for_each(|k| text(k)),
        MatchField::Name => text(&p.name_key),
        MatchField::GivenName => text(&p.given_name),
        MatchField::Surname => text(&p.surname),
        MatchField::Address => p.address_key.as_deref().into_iter().for_each(text),
        MatchField::Identifier(scheme) => {
            for (s, k) in &p.identifiers {
                if scheme.is_none_or(|x| x == *s) {
                    f(Cow::Borrowed(k), Some(*s));
                }
            }
        }
        MatchField::Custom(key) => {
            if let Some(v) = p.custom.get(key) {
                let t = custom_text(v);
                if !t.is_empty() {
                    f(t, None);
                }
            }
        }
    }
}

/// Chinese compound surnames (复姓), split off whole.
const COMPOUND_SURNAMES: &[&str] = &[
    "欧阳", "司马", "诸葛", "上官", "东方", "皇甫", "令狐", "慕容", "公孙", "夏侯", "尉迟", "长孙", "宇文", "司徒",
    "端木", "轩辕", "南宫", "独孤", "澹台", "万俟", "闻人", "西门", "呼延", "申屠", "太史", "公羊", "赫连", "濮阳",
    "钟离", "百里",
];

/// A person's name split into given name and surname comparison keys: a Chinese name's
/// surname is its first character (or a compound surname); a Latin name's is its last word,
/// or what comes before a comma ("Family, Given").
///
/// ```
/// use guanxi_core::dedup::split_person_name;
/// assert_eq!(split_person_name("张 伟"), ("伟".into(), "张".into()));
/// assert_eq!(split_person_name("欧阳修"), ("修".into(), "欧阳".into()));
/// assert_eq!(split_person_name("Mary Ann O'Brien"), ("maryann".into(), "obrien".into()));
/// assert_eq!(split_person_name("Smith, John"), ("john".into(), "smith".into()));
/// ```
pub fn split_person_name(name: &str) -> (String, String) {
    let folded = fold_text(name).to_lowercase();
    let key = |s: &str| s.chars().filter(|c| c.is_alphanumeric()).collect::<String>();
    if let Some((family, given)) = folded.split_once(',') {
        return (key(given), key(family));
    }
    let compact = key(&folded);
    if compact.chars().next().is_some_and(is_han) {
        let surname = COMPOUND_SURNAMES
            .iter()
            .find(|s| compact.starts_with(**s) && compact.len() > s.len())
            .map_or_else(|| compact.chars().next().map(String::from).unwrap_or_default(), |s| (*s).to_owned());
        let given = compact[surname.len()..].to_owned();
        return (given, surname);
    }
    match folded.trim().rsplit_once(char::is_whitespace) {
        Some((given, family)) => (key(given), key(family)),
        None => (String::new(), compact),
    }
}

fn is_han(c: char) -> bool {
    matches!(c, '\u{4e00}'..='\u{9fff}' | '\u{3400}'..='\u{4dbf}' | '\u{20000}'..='\u{2ebef}')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comparators_rank_what_people_mistype() {
        let jw = Comparison::JaroWinkler { min: 0.85 };
        assert!(jw.texts("catherine", "katherine") > 0.85);
        let q = Comparison::QGram { min: 0.7 };
        assert!(q.texts("12 ocean street", "12 ocaen street") > 0.7);
        assert!(q.texts("12 ocean street", "9 hill road") < 0.3);
        let t = Comparison::TokenSet { min: 0.9 };
        assert_eq!(t.texts("john smith", "smith john"), 1.0);
        assert_eq!(Comparison::Phonetic.texts("catherine", "kathryn"), 1.0);
        assert_eq!(Comparison::Date { min: 0.9 }.texts("19800307", "19800703"), 0.9);
    }

    #[test]
    fn field_names_round_trip() {
        for f in [
            MatchField::Phone,
            MatchField::GivenName,
            MatchField::Identifier(None),
            MatchField::Identifier(Some(IdScheme::Passport)),
            MatchField::Custom("会员号".into()),
        ] {
            assert_eq!(f.to_string().parse::<MatchField>(), Ok(f.clone()));
            let json = serde_json::to_string(&f).unwrap();
            assert_eq!(serde_json::from_str::<MatchField>(&json).unwrap(), f);
        }
        assert!(matches!("identifier.ssn".parse::<MatchField>(), Err(ValidationReason::NotAllowed { .. })));
    }

    #[test]
    fn numbers_and_dates_compare_by_distance() {
        let n = Comparison::Number { tolerance: Decimal::TEN };
        assert_eq!(n.values(&CustomValue::Number(100), &CustomValue::Decimal(Decimal::from(110))), Some(0.5));
        assert_eq!(n.values(&CustomValue::Number(100), &CustomValue::Number(100)), Some(1.0));
        assert_eq!(n.values(&CustomValue::Number(100), &CustomValue::Text("x".into())), None);
        let d = |s| CustomValue::Date(NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap());
        assert_eq!(Comparison::Date { min: 0.9 }.values(&d("1980-03-07"), &d("1979-03-07")), Some(0.9));
    }
}

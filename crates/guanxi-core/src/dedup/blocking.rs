//! Blocking as configuration: which pairs a scan compares at all. Several keys combine by
//! union: a pair is compared when any key puts both records in one block (or one window).
//!
//! Key kinds: the field's comparison key itself, its one-character deletions (as in SymSpell:
//! two keys one edit apart share a deleted form, or one is a deleted form of the other), its
//! phonetic code, its prefix, its character q-grams, and sorted-
//! neighbourhood windows (records sorted by the key; each compared with the next
//! `window − 1`). Hashed keys are 64-bit: a collision only adds a pair that is scored and
//! dropped. Blocks over [`Blocking::max_block`] are skipped and counted: a call-centre number
//! shared by thousands of customers says nothing about any pair.

use std::hash::{Hash, Hasher};

use rustc_hash::FxHasher;
use serde::{Deserialize, Serialize};

use super::fields::{MatchField, for_each_key, phonetic_key};
use super::rules::MatchProfile;
use crate::error::{ValidationErrors, ValidationReason};

/// One blocking key.
///
/// ```
/// use guanxi_core::dedup::{BlockingKey, MatchField};
/// let k: BlockingKey = serde_json::from_str(r#"{"type": "sorted_neighbourhood", "field": "surname", "window": 9}"#).unwrap();
/// assert_eq!(k, BlockingKey::SortedNeighbourhood { field: MatchField::Surname, window: 9 });
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum BlockingKey {
    /// Records with an equal key.
    Exact {
        /// The field.
        field: MatchField,
    },
    /// Records whose keys are equal or one edit apart (a substituted, inserted or dropped
    /// character, or a swap of neighbours): the key and its one-character deletions (of its
    /// first `max_len` characters; keys under 3 characters get none) share blocks.
    Deletions {
        /// The field.
        field: MatchField,
        /// Deletions are taken from this many leading characters.
        max_len: u32,
    },
    /// Records whose keys sound alike ([`phonetic_key`](super::phonetic_key)).
    Phonetic {
        /// The field.
        field: MatchField,
    },
    /// Records whose keys start with the same `len` characters.
    Prefix {
        /// The field.
        field: MatchField,
        /// Characters.
        len: u32,
    },
    /// Records sharing a character q-gram of the key (many keys a record: mind the cap).
    QGrams {
        /// The field.
        field: MatchField,
        /// Characters per gram (2 or more).
        q: u32,
    },
    /// Records sorted by the key, each compared with the next `window − 1`.
    SortedNeighbourhood {
        /// The field.
        field: MatchField,
        /// Records a window spans (2 or more).
        window: u32,
    },
}

impl BlockingKey {
    /// The field the key is made of.
    pub fn field(&self) -> &MatchField {
        match self {
            BlockingKey::Exact { field }
            | BlockingKey::Deletions { field, .. }
            | BlockingKey::Phonetic { field }
            | BlockingKey::Prefix { field, .. }
            | BlockingKey::QGrams { field, .. }
            | BlockingKey::SortedNeighbourhood { field, .. } => field,
        }
    }

    /// Calls `f` with every hashed block key of a profile (`tag` keeps keys apart).
    fn hashes(&self, tag: u8, p: &MatchProfile, f: &mut impl FnMut(u64)) {
        let hash = |tag: u8, s: &str| {
            let mut h = FxHasher::default();
            tag.hash(&mut h);
            s.hash(&mut h);
            h.finish()
        };
        let mut buf = String::new();
        for_each_key(p, self.field(), |key, _| {
            // Equal identifiers block together whatever their schemes: one kept as `other`
            // must meet its typed twin, and the comparison tells schemes apart.
            let mut emit_as = |tag: u8, s: &str| f(hash(tag, s));
            // A deletion key's value blocks twice: among the deleted forms (where a value one
            // character longer or shorter meets it) and alone, so that equal values still meet
            // when the shared block passes the cap (measured at a million records: F1 0.932
            // weighted, 0.953 probabilistic with the shared block alone; 0.936 and 0.958 with
            // both; the value alone loses the person sets' inserted characters).
            if let BlockingKey::Deletions { .. } = self {
                emit_as(tag | 0x80, &key);
            }
            let mut emit = |s: &str| emit_as(tag, s);
            match self {
                BlockingKey::Exact { .. } | BlockingKey::SortedNeighbourhood { .. } => emit(&key),
                BlockingKey::Phonetic { .. } => emit(&phonetic_key(&key)),
                BlockingKey::Prefix { len, .. } => {
                    let end = key.char_indices().nth(*len as usize).map_or(key.len(), |(i, _)| i);
                    emit(&key[..end]);
                }
                BlockingKey::QGrams { q, .. } => {
                    let chars: Vec<char> = key.chars().collect();
                    let q = *q as usize;
                    if chars.len() <= q {
                        emit(&key);
                    }
                    for w in chars.windows(q) {
                        buf.clear();
                        buf.extend(w);
                        emit(&buf);
                    }
                }
                BlockingKey::Deletions { max_len, .. } => {
                    emit(&key);
                    for_each_deletion(&key, *max_len as usize, &mut buf, &mut emit);
                }
            }
        });
    }
}

/// Calls `f` with each one-character deletion of `key`'s first `max_len` characters (the
/// rest dropped); keys under 3 characters have none (their deletions, one character long,
/// would be shared by everything). `buf` is scratch space.
pub(crate) fn for_each_deletion(key: &str, max_len: usize, buf: &mut String, f: &mut impl FnMut(&str)) {
    let chars: Vec<char> = key.chars().collect();
    if chars.len() < 3 {
        return;
    }
    let head = &chars[..chars.len().min(max_len)];
    for skip in 0..head.len() {
        buf.clear();
        buf.extend(head.iter().enumerate().filter(|(i, _)| *i != skip).map(|(_, c)| c));
        f(buf);
    }
}

/// Which pairs a scan compares: blocking keys combined by union, and the block-size cap.
///
/// The default blocks as the check on create does: same phone, same e-mail, same identifier
/// of one scheme, and a name one edit apart.
///
/// ```
/// use guanxi_core::dedup::{Blocking, BlockingKey, MatchField};
/// let b = Blocking::default();
/// assert!(b.keys.contains(&BlockingKey::Deletions { field: MatchField::Name, max_len: 16 }));
/// assert!(b.validate().is_ok());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Blocking {
    /// The keys; a pair sharing any one is compared.
    pub keys: Vec<BlockingKey>,
    /// Blocks with more records are skipped, and counted.
    pub max_block: u32,
}

impl Default for Blocking {
    fn default() -> Self {
        Blocking {
            keys: vec![
                BlockingKey::Exact { field: MatchField::Phone },
                BlockingKey::Exact { field: MatchField::Email },
                BlockingKey::Exact { field: MatchField::Identifier(None) },
                BlockingKey::Deletions { field: MatchField::Name, max_len: 16 },
            ],
            max_block: 100,
        }
    }
}

/// The most blocking keys a document may list (each is a pass over the records).
pub const MAX_BLOCKING_KEYS: u32 = 32;

impl Blocking {
    /// Checks the keys and the cap, every problem named by its place (`keys[2].window`).
    pub fn validate(&self) -> crate::Result<()> {
        let mut errs = ValidationErrors::default();
        self.check("blocking", &mut errs);
        errs.into_result(())
    }

    pub(crate) fn check(&self, at: &str, errs: &mut ValidationErrors) {
        if self.keys.is_empty() {
            errs.push(format!("{at}.keys"), ValidationReason::Required);
        }
        if self.keys.len() > MAX_BLOCKING_KEYS as usize {
            errs.push(
                format!("{at}.keys"),
                ValidationReason::TooLarge { max: MAX_BLOCKING_KEYS as u64, unit: "keys".into() },
            );
        }
        if !(2..=100_000).contains(&self.max_block) {
            errs.push(
                format!("{at}.max_block"),
                ValidationReason::Invalid { detail: "must be from 2 to 100000".into() },
            );
        }
        for (i, k) in self.keys.iter().enumerate() {
            let bad = |name: &str, detail: &str, errs: &mut ValidationErrors| {
                errs.push(format!("{at}.keys[{i}].{name}"), ValidationReason::Invalid { detail: detail.into() })
            };
            match *k {
                BlockingKey::SortedNeighbourhood { window, .. } if !(2..=1000).contains(&window) => {
                    bad("window", "must be from 2 to 1000", errs)
                }
                BlockingKey::QGrams { q, .. } if !(2..=8).contains(&q) => bad("q", "must be from 2 to 8", errs),
                BlockingKey::Prefix { len: 0, .. } => bad("len", "must be at least 1", errs),
                BlockingKey::Deletions { max_len, .. } if !(1..=64).contains(&max_len) => {
                    bad("max_len", "must be from 1 to 64", errs)
                }
                _ => {}
            }
        }
    }
}

impl Blocking {
    /// The hashed block keys of one profile, for looking one record up among others kept in
    /// memory (an import's earlier rows): every key's blocks, a sorted-neighbourhood key as
    /// its exact value (a window needs the whole sorted set). Sorted, distinct.
    ///
    /// ```
    /// use guanxi_core::dedup::{Blocking, MatchProfile};
    /// use guanxi_core::{CustomerId, CustomerKind};
    /// let p = |name: &str| MatchProfile::new(CustomerId(uuid::Uuid::nil()), "", name, CustomerKind::Enterprise);
    /// let b = Blocking::default();
    /// let (x, y) = (b.lookup_keys(&p("华为技术")), b.lookup_keys(&p("华技为术")));
    /// assert!(x.iter().any(|k| y.binary_search(k).is_ok()));
    /// ```
    pub fn lookup_keys(&self, p: &MatchProfile) -> Vec<u64> {
        let mut keys = Vec::with_capacity(24);
        for (tag, key) in self.keys.iter().enumerate() {
            key.hashes(tag as u8, p, &mut |h| keys.push(h));
        }
        keys.sort_unstable();
        keys.dedup();
        keys
    }
}

/// Which pairs are wanted: within one set of records, or across two (linking one file
/// against another: the first `left` records are one side, the rest the other).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Pairs {
    /// Every pair of the records.
    #[default]
    Within,
    /// Only pairs with one record from each side.
    Across {
        /// Records on the first side (they come first).
        left: usize,
    },
}

impl Pairs {
    /// Whether the pair of record positions `i < j` is wanted.
    pub fn wants(self, i: u32, j: u32) -> bool {
        match self {
            Pairs::Within => true,
            Pairs::Across { left } => ((i as usize) < left) != ((j as usize) < left),
        }
    }
}

/// What blocking did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct BlockingStats {
    /// Distinct pairs it proposes.
    pub pairs: u64,
    /// Blocks over the cap, skipped.
    pub skipped_blocks: u64,
    /// The largest block compared.
    pub largest_block: u64,
}

/// The distinct pairs blocking proposes, as record positions `(i, j)` with `i < j`, sorted.
///
/// ```
/// use guanxi_core::dedup::{Blocking, MatchProfile, Pairs, candidate_pairs};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let p = |n, name: &str| MatchProfile::new(CustomerId(uuid::Uuid::from_u128(n)), "", name, CustomerKind::Enterprise);
/// let profiles = [p(1, "华为技术"), p(2, "华技为术"), p(3, "星河科技")];
/// let (pairs, stats) = candidate_pairs(&profiles, &Blocking::default(), Pairs::Within);
/// assert_eq!(pairs, [(0, 1)]); // a swap shares a deleted form
/// assert_eq!(stats.pairs, 1);
/// ```
pub fn candidate_pairs(
    profiles: &[MatchProfile],
    blocking: &Blocking,
    pairs: Pairs,
) -> (Vec<(u32, u32)>, BlockingStats) {
    let mut stats = BlockingStats::default();
    let mut found: Vec<u64> = Vec::new();
    let push = |i: u32, j: u32, found: &mut Vec<u64>| {
        let (i, j) = if i < j { (i, j) } else { (j, i) };
        if i != j && pairs.wants(i, j) {
            found.push((u64::from(i) << 32) | u64::from(j));
        }
    };
    let mut entries: Vec<(u64, u32)> = Vec::with_capacity(profiles.len() * 4);
    for (tag, key) in blocking.keys.iter().enumerate() {
        match key {
            BlockingKey::SortedNeighbourhood { field, window } => {
                let mut sorted: Vec<(std::borrow::Cow<'_, str>, u32)> = Vec::with_capacity(profiles.len());
                for (i, p) in profiles.iter().enumerate() {
                    for_each_key(p, field, |k, _| sorted.push((k, i as u32)));
                }
                sorted.sort_unstable();
                let window = *window as usize;
                for (x, &(_, i)) in sorted.iter().enumerate() {
                    for &(_, j) in &sorted[x + 1..(x + window).min(sorted.len())] {
                        push(i, j, &mut found);
                    }
                }
                if sorted.len() > 1 {
                    stats.largest_block = stats.largest_block.max(window.min(sorted.len()) as u64);
                }
            }
            _ => {
                for (i, p) in profiles.iter().enumerate() {
                    key.hashes(tag as u8, p, &mut |h| entries.push((h, i as u32)));
                }
            }
        }
    }
    entries.sort_unstable();
    entries.dedup();
    for block in entries.chunk_by(|a, b| a.0 == b.0) {
        if block.len() < 2 {
            continue;
        }
        if block.len() > blocking.max_block as usize {
            stats.skipped_blocks += 1;
            continue;
        }
        stats.largest_block = stats.largest_block.max(block.len() as u64);
        for (x, &(_, i)) in block.iter().enumerate() {
            for &(_, j) in &block[x + 1..] {
                push(i, j, &mut found);
            }
        }
    }
    drop(entries);
    found.sort_unstable();
    found.dedup();
    stats.pairs = found.len() as u64;
    let pairs = found.into_iter().map(|k| ((k >> 32) as u32, k as u32)).collect();
    (pairs, stats)
}

/// How much of a known set of true pairs blocking compares: the recall ceiling no rule can
/// rise above. `known` lists record positions; pairs blocking would not want (same side when
/// linking) are not counted.
///
/// ```
/// use guanxi_core::dedup::{Blocking, MatchProfile, Pairs, recall_ceiling};
/// use guanxi_core::{CustomerId, CustomerKind};
/// let p = |n, name: &str| MatchProfile::new(CustomerId(uuid::Uuid::from_u128(n)), "", name, CustomerKind::Enterprise);
/// let profiles = [p(1, "华为技术"), p(2, "华技为术"), p(3, "Huawei")];
/// let ceiling = recall_ceiling(&profiles, &Blocking::default(), Pairs::Within, &[(0, 1), (0, 2)]);
/// assert_eq!((ceiling.known, ceiling.compared), (2, 1)); // the romanised name shares no key
/// ```
pub fn recall_ceiling(profiles: &[MatchProfile], blocking: &Blocking, pairs: Pairs, known: &[(u32, u32)]) -> Ceiling {
    let (compared, _) = candidate_pairs(profiles, blocking, pairs);
    let mut c = Ceiling::default();
    for &(i, j) in known {
        let (i, j) = if i < j { (i, j) } else { (j, i) };
        if i == j || !pairs.wants(i, j) {
            continue;
        }
        c.known += 1;
        c.compared += u64::from(compared.binary_search(&(i, j)).is_ok());
    }
    c
}

/// Known true pairs, and how many of them blocking compares.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Ceiling {
    /// Known pairs.
    pub known: u64,
    /// Of them, compared.
    pub compared: u64,
}

impl Ceiling {
    /// `compared / known` (1 with no known pair).
    pub fn share(&self) -> f64 {
        if self.known == 0 { 1.0 } else { self.compared as f64 / self.known as f64 }
    }
}

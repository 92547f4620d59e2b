//! The knowledge base: articles, the tokenizer that makes Chinese searchable, and the BM25
//! ranking every backend reproduces.
//!
//! Chinese is written without spaces, so a word index cannot find 退款 in 如何申请退款. The
//! tokenizer indexes runs of CJK characters as overlapping character bigrams (退款流程 → 退款,
//! 款流, 流程), the approach of Lucene's CJK analyzer, and Latin text as lower-cased words.
//! Bigrams rather than the trigrams of SQLite's `trigram` tokenizer: most Chinese words are two
//! characters, and a trigram index cannot answer a two-character query from the index.
//! A query is tokenized the same way; [`MatchMode::All`] needs every query term (for a Chinese
//! phrase: every bigram of it), [`MatchMode::Any`] ranks by whichever terms occur (for
//! suggestions from a ticket's text).

use std::collections::{BTreeMap, BTreeSet};

use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{Result, ValidationErrors, ValidationReason};
use crate::ids::{ArticleId, UserId};
use crate::normalize::fold_text;
use crate::validate::{limits, optional_text, required_text};

/// A knowledge-base article (FAQ, manual page, known issue).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Article {
    /// UUIDv7 id.
    pub id: ArticleId,
    /// Title.
    pub title: String,
    /// Body (plain text or Markdown).
    pub body: String,
    /// Tags.
    pub tags: BTreeSet<String>,
    /// Category.
    pub category: Option<String>,
    /// Visible to searches that only want published articles.
    pub published: bool,
    /// Creator.
    pub created_by: UserId,
    /// Created.
    pub created_at: DateTime<Utc>,
    /// Last updater.
    pub updated_by: UserId,
    /// Last updated.
    pub updated_at: DateTime<Utc>,
    /// Optimistic-concurrency version.
    pub version: u64,
}

impl Article {
    /// The article's index: title, body and tag terms (see [`tokenize`]).
    pub fn terms(&self) -> [Vec<String>; 3] {
        let tags: Vec<&str> = self.tags.iter().map(String::as_str).collect();
        [tokenize(&self.title), tokenize(&self.body), tokenize(&tags.join(" "))]
    }
}

/// A new article, or the full new content of an existing one.
///
/// ```
/// use guanxi_core::service::NewArticle;
/// let a = NewArticle::new("如何申请退款", "在订单页点击“申请退款”。").tag("退款").validate()?;
/// assert!(a.published);
/// assert!(NewArticle::new("", "x").validate().is_err());
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewArticle {
    /// Title.
    pub title: String,
    /// Body.
    pub body: String,
    /// Tags.
    pub tags: Vec<String>,
    /// Category.
    pub category: Option<String>,
    /// Published (default true).
    pub published: bool,
}

impl NewArticle {
    /// A published article.
    pub fn new(title: &str, body: &str) -> NewArticle {
        NewArticle { title: title.to_owned(), body: body.to_owned(), tags: vec![], category: None, published: true }
    }

    /// Adds a tag.
    pub fn tag(mut self, tag: &str) -> Self {
        self.tags.push(tag.to_owned());
        self
    }

    /// Sets the category.
    pub fn category(mut self, category: &str) -> Self {
        self.category = Some(category.to_owned());
        self
    }

    /// Sets whether it is published.
    pub fn published(mut self, published: bool) -> Self {
        self.published = published;
        self
    }

    /// Normalizes and checks every field.
    pub fn validate(self) -> Result<NewArticle> {
        let mut errs = ValidationErrors::default();
        let title = required_text(&mut errs, "title", &self.title, limits::NAME);
        let body = crate::normalize::clean_multiline(&self.body);
        if body.is_empty() {
            errs.push("body", ValidationReason::Required);
        } else if body.chars().count() > MAX_BODY {
            errs.push("body", ValidationReason::TooLong { max: MAX_BODY });
        }
        let tags = self
            .tags
            .iter()
            .enumerate()
            .map(|(i, t)| required_text(&mut errs, &format!("tags[{i}]"), t, limits::SHORT))
            .collect();
        let category = optional_text(&mut errs, "category", self.category.as_deref(), limits::SHORT);
        errs.into_result(NewArticle { title, body, tags, category, published: self.published })
    }
}

/// Longest article body, in characters.
pub const MAX_BODY: usize = 200_000;

/// How query terms combine.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum MatchMode {
    /// Every term must occur.
    #[default]
    All,
    /// Any term may occur; more and rarer terms rank higher.
    Any,
}

/// A knowledge-base search.
///
/// ```
/// use guanxi_core::service::KbQuery;
/// let q = KbQuery::new("退款 流程").limit(5);
/// assert_eq!(q.terms(), ["退款", "流程"]);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KbQuery {
    /// The words to look for.
    pub text: String,
    /// All or any of them.
    pub mode: MatchMode,
    /// Most hits returned.
    pub limit: usize,
    /// Only this category.
    pub category: Option<String>,
    /// Only articles with this tag.
    pub tag: Option<String>,
    /// Unpublished articles too.
    pub include_unpublished: bool,
}

impl KbQuery {
    /// Published articles with all the words, 10 at most.
    pub fn new(text: &str) -> KbQuery {
        KbQuery {
            text: text.to_owned(),
            mode: MatchMode::All,
            limit: 10,
            category: None,
            tag: None,
            include_unpublished: false,
        }
    }

    /// Sets the limit.
    pub fn limit(mut self, limit: usize) -> Self {
        self.limit = limit;
        self
    }

    /// Sets the mode.
    pub fn mode(mut self, mode: MatchMode) -> Self {
        self.mode = mode;
        self
    }

    /// The distinct query terms, in order of appearance (at most [`MAX_QUERY_TERMS`]).
    pub fn terms(&self) -> Vec<String> {
        let mut seen = BTreeSet::new();
        tokenize(&self.text).into_iter().filter(|t| seen.insert(t.clone())).take(MAX_QUERY_TERMS).collect()
    }

    /// The terms the search ranks by, given each term's document frequency and the number of
    /// indexed articles: every term for [`MatchMode::All`]; for [`MatchMode::Any`] the
    /// [`MAX_ANY_TERMS`] rarest terms that occur at all and are not common — in more than
    /// [`COMMON_TERM_SHARE`] of the articles and more than [`COMMON_TERM_MIN_DOCS`] of them
    /// (only the rarest when all are common; ties in query order).
    ///
    /// ```
    /// use guanxi_core::service::{KbQuery, MatchMode};
    /// let q = KbQuery::new("refund order status the").mode(MatchMode::Any);
    /// let df = |t: &str| match t { "refund" => 3, "order" => 90, "the" => 800, _ => 0 };
    /// assert_eq!(q.search_terms(df, 1000), ["refund", "order"]);
    /// assert_eq!(KbQuery::new("the").mode(MatchMode::Any).search_terms(df, 1000), ["the"]);
    /// // In a small base no term is common.
    /// let small = |t: &str| match t { "refund" => 1, "the" => 3, _ => 0 };
    /// assert_eq!(q.search_terms(small, 4), ["refund", "the"]);
    /// ```
    pub fn search_terms(&self, doc_freq: impl Fn(&str) -> u64, articles: u64) -> Vec<String> {
        let terms = self.terms();
        if self.mode == MatchMode::All {
            return terms;
        }
        let mut counted: Vec<(u64, String)> =
            terms.into_iter().map(|t| (doc_freq(&t), t)).filter(|(n, _)| *n > 0).collect();
        counted.sort_by_key(|(n, _)| *n);
        let common = |n: u64| n > COMMON_TERM_MIN_DOCS && n as f64 > COMMON_TERM_SHARE * articles as f64;
        let informative = counted.iter().filter(|(n, _)| !common(*n)).count().max(counted.len().min(1));
        counted.into_iter().take(informative.min(MAX_ANY_TERMS)).map(|(_, t)| t).collect()
    }

    /// Whether an article passes the non-text conditions.
    pub fn admits(&self, a: &Article) -> bool {
        (self.include_unpublished || a.published)
            && self.category.as_ref().is_none_or(|c| a.category.as_ref() == Some(c))
            && self.tag.as_ref().is_none_or(|t| a.tags.contains(t))
    }
}

/// Most distinct terms a query uses (a ticket's whole description can be a query).
pub const MAX_QUERY_TERMS: usize = 64;

/// Most terms an any-term query ranks by: the rarest ones. Common terms add little to BM25
/// (their idf is small) but each makes thousands of documents candidates that FTS5 scores one
/// by one, so a ticket's long text searches by its four most telling words.
pub const MAX_ANY_TERMS: usize = 4;

/// An any-term query leaves out terms found in more than this share of the articles (like
/// Lucene's cutoff frequency), unless every term is that common; then it keeps the rarest.
pub const COMMON_TERM_SHARE: f64 = 0.25;

/// A term in fewer articles than this is never common: a small knowledge base searches by
/// every term (the cutoff exists because a common term makes thousands of candidates).
pub const COMMON_TERM_MIN_DOCS: u64 = 500;

/// A search hit.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct ArticleHit {
    /// The article.
    pub article: Article,
    /// BM25 relevance (higher is better).
    pub score: f64,
}

/// Whether a character is written without spaces between words (CJK ideographs, kana, hangul).
fn is_cjk(c: char) -> bool {
    matches!(c as u32,
        0x3040..=0x30FF | 0x3400..=0x4DBF | 0x4E00..=0x9FFF | 0xF900..=0xFAFF | 0xAC00..=0xD7AF | 0x20000..=0x2FA1F)
}

/// Longest Latin term kept (longer words are cut).
const MAX_WORD: usize = 40;

/// The search terms of a text: NFKC-folded and lower-cased; Latin letters and digits as words,
/// runs of CJK characters as overlapping bigrams (a lone character as itself).
///
/// ```
/// use guanxi_core::service::tokenize;
/// assert_eq!(tokenize("退款流程 Refund-Policy v2"), ["退款", "款流", "流程", "refund", "policy", "v2"]);
/// assert_eq!(tokenize("票"), ["票"]);
/// ```
pub fn tokenize(text: &str) -> Vec<String> {
    let folded = fold_text(text).to_lowercase();
    let mut out = Vec::new();
    let mut word = String::new();
    let mut run: Vec<char> = Vec::new();
    let flush_run = |run: &mut Vec<char>, out: &mut Vec<String>| {
        match run.len() {
            0 => {}
            1 => out.push(run[0].to_string()),
            _ => out.extend(run.windows(2).map(|w| w.iter().collect::<String>())),
        }
        run.clear();
    };
    let flush_word = |word: &mut String, out: &mut Vec<String>| {
        if !word.is_empty() {
            out.push(word.chars().take(MAX_WORD).collect());
            word.clear();
        }
    };
    for c in folded.chars() {
        if is_cjk(c) {
            flush_word(&mut word, &mut out);
            run.push(c);
        } else if c.is_alphanumeric() {
            flush_run(&mut run, &mut out);
            word.push(c);
        } else {
            flush_run(&mut run, &mut out);
            flush_word(&mut word, &mut out);
        }
    }
    flush_run(&mut run, &mut out);
    flush_word(&mut word, &mut out);
    out
}

/// Column weights of the ranking: title, body, tags.
pub const COLUMN_WEIGHTS: [f64; 3] = [4.0, 1.0, 2.0];

/// BM25 as SQLite FTS5 computes it (k1 = 1.2, b = 0.75; per term `idf = ln((N − n + 0.5) /
/// (n + 0.5))`, at least 1e-6; term frequency summed over columns with [`COLUMN_WEIGHTS`];
/// document length over all columns), over every indexed article: the reference the
/// in-memory store ranks with and the SQLite store's FTS5 query reproduces.
///
/// ```
/// use guanxi_core::service::{tokenize, Bm25};
/// let docs = [[tokenize("退款"), tokenize("如何申请退款"), vec![]], [tokenize("发票"), tokenize("开发票"), vec![]]];
/// let bm = Bm25::new(docs.iter().map(|d| d.as_slice()));
/// let q = tokenize("退款");
/// assert!(bm.score(&docs[0], &q).unwrap() > 0.0);
/// assert!(bm.score(&docs[1], &q).is_none());
/// ```
#[derive(Debug, Clone)]
pub struct Bm25 {
    rows: f64,
    avg_len: f64,
    doc_freq: BTreeMap<String, u64>,
}

impl Bm25 {
    /// Statistics over the indexed documents (each its columns' terms).
    pub fn new<'a>(docs: impl Iterator<Item = &'a [Vec<String>]>) -> Bm25 {
        let (mut rows, mut tokens) = (0u64, 0u64);
        let mut doc_freq: BTreeMap<String, u64> = BTreeMap::new();
        for d in docs {
            rows += 1;
            let mut distinct = BTreeSet::new();
            for col in d {
                tokens += col.len() as u64;
                distinct.extend(col.iter());
            }
            for t in distinct {
                *doc_freq.entry(t.clone()).or_default() += 1;
            }
        }
        let avg_len = if rows == 0 { 1.0 } else { tokens as f64 / rows as f64 };
        Bm25 { rows: rows as f64, avg_len, doc_freq }
    }

    /// The score of a document for `terms` under any-term matching (None when no term occurs).
    pub fn score(&self, doc: &[Vec<String>], terms: &[String]) -> Option<f64> {
        const K1: f64 = 1.2;
        const B: f64 = 0.75;
        let len: usize = doc.iter().map(Vec::len).sum();
        let mut score = 0.0;
        let mut any = false;
        for t in terms {
            let tf: f64 =
                doc.iter().zip(COLUMN_WEIGHTS).map(|(col, w)| w * col.iter().filter(|x| *x == t).count() as f64).sum();
            if tf > 0.0 {
                any = true;
            }
            let n = self.doc_freq.get(t).copied().unwrap_or(0) as f64;
            let idf = (((self.rows - n + 0.5) / (n + 0.5)).ln()).max(1e-6);
            score += idf * (tf * (K1 + 1.0)) / (tf + K1 * (1.0 - B + B * len as f64 / self.avg_len));
        }
        any.then_some(score)
    }

    /// In how many documents a term occurs.
    pub fn doc_freq(&self, term: &str) -> u64 {
        self.doc_freq.get(term).copied().unwrap_or(0)
    }

    /// Whether a document contains every term.
    pub fn contains_all(doc: &[Vec<String>], terms: &[String]) -> bool {
        terms.iter().all(|t| doc.iter().any(|col| col.contains(t)))
    }
}

/// Ranks articles for a query by the reference rule: admitted articles matching the mode on
/// the query's [`KbQuery::search_terms`], best first (ties by id), at most `limit`.
/// Statistics cover every article given.
pub fn rank_articles(articles: &[Article], q: &KbQuery) -> Vec<ArticleHit> {
    if q.terms().is_empty() || q.limit == 0 {
        return vec![];
    }
    let indexed: Vec<[Vec<String>; 3]> = articles.iter().map(Article::terms).collect();
    let bm = Bm25::new(indexed.iter().map(|d| d.as_slice()));
    let terms = q.search_terms(|t| bm.doc_freq(t), articles.len() as u64);
    if terms.is_empty() {
        return vec![];
    }
    let mut hits: Vec<ArticleHit> = articles
        .iter()
        .zip(&indexed)
        .filter(|(a, d)| q.admits(a) && (q.mode == MatchMode::Any || Bm25::contains_all(d.as_slice(), &terms)))
        .filter_map(|(a, d)| bm.score(d, &terms).map(|score| ArticleHit { article: a.clone(), score }))
        .collect();
    hits.sort_by(|a, b| b.score.total_cmp(&a.score).then(a.article.id.cmp(&b.article.id)));
    hits.truncate(q.limit);
    hits
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokenizer_mixes_scripts() {
        assert_eq!(tokenize("ＶＩＰ客户，请联系客服。"), ["vip", "客户", "请联", "联系", "系客", "客服"]);
        assert_eq!(tokenize("  "), Vec::<String>::new());
        assert_eq!(tokenize("Wi-Fi 6E 路由器"), ["wi", "fi", "6e", "路由", "由器"]);
    }
}

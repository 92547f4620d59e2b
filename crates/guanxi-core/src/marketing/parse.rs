//! The text form of segments: a recursive-descent parser over winnow's token parsers, with
//! errors at a line and column in plain words.
//!
//! ```text
//! or        := and (OR and)*                       OR, or, 或
//! and       := unary (AND unary)*                  AND, and, 与
//! unary     := NOT unary | "(" or ")" | predicate  NOT, not, 非
//! predicate := (tag | tag_group | region) ":" word
//!            | field (":" | op) value              field: status, level, …, custom.<key>
//!            | count "(" source ("," filter)* ("," within "=" N "d")? ")" op N
//! source    := event "=" text | interaction ("=" kind)?
//! op        := = | != | < | <= | > | >= | ~ | in
//! value     := word | "quoted" | number | yyyy-mm-dd | N "d ago" | true | false | "(" value, … ")"
//! ```

use std::fmt;

use rust_decimal::Decimal;
use winnow::prelude::*;
use winnow::token::take_while;

use super::segment::{CmpOp, CountSource, EventCount, Literal, Predicate, PropertyFilter, Segment, SegmentField};
use crate::customer::{CustomerKind, Level, LifecycleStatus, SizeBand};
use crate::industry::Industry;
use crate::interaction::InteractionKind;

/// A segment that does not parse: where, and what was expected there.
///
/// ```
/// use guanxi_core::marketing::Segment;
/// let err = Segment::parse("tag:VIP AND (status = lost").unwrap_err();
/// assert_eq!(err.to_string(), "line 1, column 27: expected ) to close the ( at column 13, found the end of the text");
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SegmentSyntaxError {
    /// Line, from 1.
    pub line: usize,
    /// Column (in characters), from 1.
    pub column: usize,
    /// What was expected, in words.
    pub expected: String,
    /// What was found instead.
    pub found: String,
}

impl fmt::Display for SegmentSyntaxError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}, column {}: expected {}, found {}", self.line, self.column, self.expected, self.found)
    }
}

impl std::error::Error for SegmentSyntaxError {}

/// A syntax error as a validation error on the field `segment`, its line and column in the
/// reason: what a call that takes a segment's text reports.
///
/// ```
/// use guanxi_core::{Error, marketing::Segment};
/// let e: Error = Segment::parse("tag:").unwrap_err().into();
/// assert!(matches!(&e, Error::Validation(v) if v.field("segment").is_some()));
/// ```
impl From<SegmentSyntaxError> for crate::Error {
    fn from(e: SegmentSyntaxError) -> Self {
        crate::Error::invalid("segment", crate::ValidationReason::Invalid { detail: e.to_string() })
    }
}

/// Longest segment text accepted, in bytes.
pub const MAX_SEGMENT_TEXT: usize = 64 * 1024;

/// Deepest nesting of parentheses and NOTs accepted.
pub(crate) const MAX_DEPTH: usize = 64;

/// At most this many tests (predicates) in one segment: what a query of it stays well within
/// every database's limits for.
pub const MAX_SEGMENT_PREDICATES: usize = 256;

/// At most this many values (list items included) in one segment.
pub const MAX_SEGMENT_VALUES: usize = 10_000;

const AND: &[&str] = &["and", "与"];
const OR: &[&str] = &["or", "或"];
const NOT: &[&str] = &["not", "非"];
const RESERVED: &[&str] = &["and", "or", "not", "in", "true", "false", "ago", "与", "或", "非"];

/// Whether `s` reads back as one bare word (else it is printed quoted).
/// A day literal is exactly `yyyy-mm-dd` in ASCII digits: chrono alone would also take a signed
/// or short year (`-023-01-01`), which the printer writes back differently.
fn is_day_shaped(token: &str) -> bool {
    let b = token.as_bytes();
    b.len() == 10
        && b[4] == b'-'
        && b[7] == b'-'
        && b.iter().enumerate().all(|(i, c)| i == 4 || i == 7 || c.is_ascii_digit())
}

pub(crate) fn is_bare_word(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c.is_alphabetic() || c == '_')
        && s.chars().all(word_char)
        && !RESERVED.iter().any(|r| s.eq_ignore_ascii_case(r))
}

fn word_char(c: char) -> bool {
    c.is_alphanumeric() || matches!(c, '_' | '-' | '.')
}

pub(crate) fn parse(text: &str) -> Result<Segment, SegmentSyntaxError> {
    let mut p = Reader { src: text, rest: text, depth: 0, predicates: 0, values: 0 };
    if text.len() > MAX_SEGMENT_TEXT {
        return Err(p.error_at(0, &format!("a segment of at most {MAX_SEGMENT_TEXT} bytes")));
    }
    p.ws();
    let segment = p.or()?;
    p.ws();
    if !p.rest.is_empty() {
        return Err(p.error("AND, OR or the end of the text"));
    }
    Ok(segment)
}

struct Reader<'a> {
    src: &'a str,
    rest: &'a str,
    depth: usize,
    /// Tests read so far (bounded by `MAX_SEGMENT_PREDICATES`).
    predicates: usize,
    /// Values read so far (bounded by `MAX_SEGMENT_VALUES`).
    values: usize,
}

impl<'a> Reader<'a> {
    fn offset(&self) -> usize {
        self.src.len() - self.rest.len()
    }

    fn error(&self, expected: &str) -> SegmentSyntaxError {
        self.error_at(self.offset(), expected)
    }

    fn error_at(&self, offset: usize, expected: &str) -> SegmentSyntaxError {
        let before = &self.src[..offset];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        let rest = self.src[offset..].trim_start();
        let found = match rest.chars().next() {
            None => "the end of the text".to_owned(),
            Some(_) => {
                let token: String = rest.chars().take_while(|c| !c.is_whitespace()).take(20).collect();
                format!("`{token}`")
            }
        };
        SegmentSyntaxError { line, column, expected: expected.to_owned(), found }
    }

    fn column_of(&self, offset: usize) -> usize {
        self.src[..offset].rsplit('\n').next().unwrap_or("").chars().count() + 1
    }

    /// Skips whitespace: every Unicode space, as `str::trim_start` (which the word lookahead
    /// uses) does.
    fn ws(&mut self) {
        let _: winnow::Result<&str> = take_while(0.., char::is_whitespace).parse_next(&mut self.rest);
    }

    /// Consumes `lit` (after whitespace) if it is next.
    fn eat(&mut self, lit: &str) -> bool {
        self.ws();
        match self.rest.strip_prefix(lit) {
            Some(after) => {
                self.rest = after;
                true
            }
            None => false,
        }
    }

    /// The next word, not consumed.
    fn peek_word(&self) -> &'a str {
        let mut rest = self.rest.trim_start();
        let word: winnow::Result<&str> = take_while(0.., word_char).parse_next(&mut rest);
        word.unwrap_or("")
    }

    /// Consumes a keyword (any case) if it is the next whole word.
    fn keyword(&mut self, words: &[&str]) -> bool {
        let w = self.peek_word();
        if !w.is_empty() && words.iter().any(|k| w.eq_ignore_ascii_case(k)) {
            self.ws();
            self.rest = &self.rest[w.len()..];
            return true;
        }
        false
    }

    fn word(&mut self, what: &str) -> Result<&'a str, SegmentSyntaxError> {
        self.ws();
        let w = self.peek_word();
        if w.is_empty() || !w.chars().next().is_some_and(|c| c.is_alphabetic() || c == '_') {
            return Err(self.error(what));
        }
        self.rest = &self.rest[w.len()..];
        Ok(w)
    }

    fn or(&mut self) -> Result<Segment, SegmentSyntaxError> {
        let mut parts = vec![self.and()?];
        while self.keyword(OR) {
            parts.push(self.and()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Segment::Or(parts) })
    }

    fn and(&mut self) -> Result<Segment, SegmentSyntaxError> {
        let mut parts = vec![self.unary()?];
        while self.keyword(AND) {
            parts.push(self.unary()?);
        }
        Ok(if parts.len() == 1 { parts.remove(0) } else { Segment::And(parts) })
    }

    fn unary(&mut self) -> Result<Segment, SegmentSyntaxError> {
        self.depth += 1;
        if self.depth > MAX_DEPTH {
            return Err(self.error(&format!("at most {MAX_DEPTH} levels of nesting")));
        }
        let out = if self.keyword(NOT) {
            Segment::Not(Box::new(self.unary()?))
        } else if self.eat("(") {
            let open = self.offset() - 1;
            let inner = self.or()?;
            if !self.eat(")") {
                self.ws();
                return Err(self.error(&format!(") to close the ( at column {}", self.column_of(open))));
            }
            inner
        } else {
            Segment::Is(self.predicate()?)
        };
        self.depth -= 1;
        Ok(out)
    }

    fn predicate(&mut self) -> Result<Predicate, SegmentSyntaxError> {
        self.ws();
        self.predicates += 1;
        if self.predicates > MAX_SEGMENT_PREDICATES {
            return Err(self.error(&format!("the end of the segment: at most {MAX_SEGMENT_PREDICATES} tests")));
        }
        let start = self.offset();
        let name = self.word("a test: tag:…, region:…, segment:…, a field such as status = lost, or count(…)")?;
        match name {
            "count" if self.rest.trim_start().starts_with('(') => return self.count(),
            "tag" | "tag_group" | "region" | "segment" if self.eat(":") => {
                let value = self.text("a name after :")?;
                return Ok(match name {
                    "tag" => Predicate::Tag(value),
                    "tag_group" => Predicate::TagGroup(value),
                    "segment" => Predicate::Segment(value),
                    _ => Predicate::Region(value),
                });
            }
            _ => {}
        }
        let Some(field) = SegmentField::from_name(name) else {
            let allowed = SegmentField::names().join(", ");
            return Err(self
                .error_at(start, &format!("a field (one of tag:, tag_group:, region:, segment:, count(, {allowed})")));
        };
        let op = if self.eat(":") { CmpOp::Eq } else { self.op()? };
        self.ws();
        let at = self.offset();
        let value = self.value()?;
        if (op == CmpOp::In) != matches!(value, Literal::List(_)) {
            let expected = if op == CmpOp::In { "a list such as (a, b) after in" } else { "a single value" };
            return Err(self.error_at(at, expected));
        }
        let value = self.vocabulary(&field, value, at)?;
        Ok(Predicate::Field { field, op, value })
    }

    /// A vocabulary field's values as their stable names (a Chinese label is accepted), or an
    /// error listing the allowed values.
    fn vocabulary(&self, field: &SegmentField, value: Literal, at: usize) -> Result<Literal, SegmentSyntaxError> {
        let canonical: fn(&str) -> Result<&'static str, Vec<String>> = match field {
            SegmentField::Status => |s| vocab::<LifecycleStatus>(s, LifecycleStatus::ALL, LifecycleStatus::as_str),
            SegmentField::Kind => |s| vocab::<CustomerKind>(s, CustomerKind::ALL, CustomerKind::as_str),
            SegmentField::Level => |s| vocab::<Level>(s, Level::ALL, Level::as_str),
            SegmentField::Size => |s| vocab::<SizeBand>(s, SizeBand::ALL, SizeBand::as_str),
            SegmentField::Industry => |s| vocab::<Industry>(s, Industry::ALL, Industry::as_str),
            _ => return Ok(value),
        };
        let one = |v: Literal| match v {
            Literal::Text(t) => canonical(&t).map(|s| Literal::Text(s.to_owned())).map_err(|allowed| (t, allowed)),
            other => Err((other.to_string(), canonical("").err().unwrap_or_default())),
        };
        let result = match value {
            Literal::List(items) => items.into_iter().map(one).collect::<Result<Vec<_>, _>>().map(Literal::List),
            v => one(v),
        };
        result.map_err(|(bad, allowed)| {
            self.error_at(at, &format!("one of {} for {field} ('{bad}' is not)", allowed.join(", ")))
        })
    }

    fn op(&mut self) -> Result<CmpOp, SegmentSyntaxError> {
        self.ws();
        for (lit, op) in [
            ("!=", CmpOp::Ne),
            ("<=", CmpOp::Le),
            (">=", CmpOp::Ge),
            ("=", CmpOp::Eq),
            ("<", CmpOp::Lt),
            (">", CmpOp::Gt),
            ("~", CmpOp::Contains),
        ] {
            if self.eat(lit) {
                return Ok(op);
            }
        }
        if self.keyword(&["in"]) {
            return Ok(CmpOp::In);
        }
        Err(self.error("a comparison: =, !=, <, <=, >, >=, ~ or in"))
    }

    /// A name: a bare word or a quoted string.
    fn text(&mut self, what: &str) -> Result<String, SegmentSyntaxError> {
        self.ws();
        if self.rest.starts_with('"') {
            return self.quoted();
        }
        let w = self.peek_word();
        if w.is_empty() {
            return Err(self.error(what));
        }
        self.rest = &self.rest[w.len()..];
        Ok(w.to_owned())
    }

    fn quoted(&mut self) -> Result<String, SegmentSyntaxError> {
        let start = self.offset();
        let mut out = String::new();
        let mut chars = self.rest.char_indices().skip(1);
        while let Some((i, c)) = chars.next() {
            match c {
                '"' => {
                    self.rest = &self.rest[i + 1..];
                    return Ok(out);
                }
                '\\' => match chars.next() {
                    Some((_, '"')) => out.push('"'),
                    Some((_, '\\')) => out.push('\\'),
                    Some((_, 'n')) => out.push('\n'),
                    _ => return Err(self.error_at(start + i, "an escape: \\\" \\\\ or \\n")),
                },
                c => out.push(c),
            }
        }
        Err(self.error_at(self.src.len(), &format!("\" to close the text at column {}", self.column_of(start))))
    }

    fn value(&mut self) -> Result<Literal, SegmentSyntaxError> {
        self.ws();
        if self.rest.starts_with('(') {
            self.depth += 1;
            if self.depth > MAX_DEPTH {
                return Err(self.error(&format!("at most {MAX_DEPTH} levels of nesting")));
            }
            self.rest = &self.rest[1..];
            let mut items = vec![self.value()?];
            while self.eat(",") {
                items.push(self.value()?);
            }
            if !self.eat(")") {
                self.ws();
                return Err(self.error(", or ) to end the list"));
            }
            self.depth -= 1;
            return Ok(Literal::List(items));
        }
        // A list is its items: each value outside a list's parentheses counts once.
        self.values += 1;
        if self.values > MAX_SEGMENT_VALUES {
            return Err(self.error(&format!("the end of the segment: at most {MAX_SEGMENT_VALUES} values")));
        }
        if self.rest.starts_with('"') {
            return self.quoted().map(Literal::Text);
        }
        let first = self.rest.chars().next();
        if first.is_some_and(|c| c.is_ascii_digit() || c == '-') {
            return self.number_or_date();
        }
        if self.keyword(&["true"]) {
            return Ok(Literal::Bool(true));
        }
        if self.keyword(&["false"]) {
            return Ok(Literal::Bool(false));
        }
        let w = self.peek_word();
        if w.is_empty() || RESERVED.iter().any(|r| w.eq_ignore_ascii_case(r)) {
            return Err(self.error("a value"));
        }
        self.rest = &self.rest[w.len()..];
        Ok(Literal::Text(w.to_owned()))
    }

    fn number_or_date(&mut self) -> Result<Literal, SegmentSyntaxError> {
        let start = self.offset();
        let token: &str = {
            let mut rest = self.rest;
            let t: winnow::Result<&str> =
                take_while(1.., |c: char| c.is_ascii_digit() || matches!(c, '-' | '.')).parse_next(&mut rest);
            t.unwrap_or("")
        };
        self.rest = &self.rest[token.len()..];
        if let Some(days) = self.rest.strip_prefix('d') {
            let n: u32 = token.parse().map_err(|_| self.error_at(start, "a whole number of days"))?;
            self.rest = days;
            if !self.keyword(&["ago"]) {
                return Err(self.error("ago after a number of days (30d ago)"));
            }
            return Ok(Literal::DaysAgo(n));
        }
        if is_day_shaped(token) {
            return chrono::NaiveDate::parse_from_str(token, "%Y-%m-%d")
                .map(Literal::Date)
                .map_err(|_| self.error_at(start, "a real day, yyyy-mm-dd"));
        }
        if token.get(1..).is_some_and(|t| t.contains('-')) {
            return Err(self.error_at(start, "a real day, yyyy-mm-dd"));
        }
        token.parse::<Decimal>().map(|d| Literal::Number(d.normalize())).map_err(|_| self.error_at(start, "a number"))
    }

    fn integer(&mut self, what: &str) -> Result<u64, SegmentSyntaxError> {
        self.ws();
        let mut rest = self.rest;
        let digits: winnow::Result<&str> = take_while(1.., |c: char| c.is_ascii_digit()).parse_next(&mut rest);
        let n = digits.ok().and_then(|d| d.parse().ok()).ok_or_else(|| self.error(what))?;
        self.rest = rest;
        Ok(n)
    }

    fn count(&mut self) -> Result<Predicate, SegmentSyntaxError> {
        self.eat("(");
        let source = if self.keyword(&["event"]) {
            if !self.eat("=") {
                return Err(self.error("= and the event's name after event"));
            }
            CountSource::Event(self.text("the event's name")?)
        } else if self.keyword(&["interaction"]) {
            if self.eat("=") {
                self.ws();
                let at = self.offset();
                let kind = self.text("an interaction kind")?;
                let kind = kind.parse::<InteractionKind>().map_err(|_| {
                    let allowed: Vec<&str> = InteractionKind::ALL.iter().map(|k| k.as_str()).collect();
                    self.error_at(at, &format!("one of {}", allowed.join(", ")))
                })?;
                CountSource::Interaction(Some(kind))
            } else {
                CountSource::Interaction(None)
            }
        } else {
            return Err(self.error("event = \"name\" or interaction"));
        };
        let (mut filters, mut within_days) = (Vec::new(), None);
        while self.eat(",") {
            if self.keyword(&["within"]) {
                if !self.eat("=") {
                    return Err(self.error("= after within"));
                }
                let n = self.integer("a number of days (within = 30d)")?;
                if !self.eat("d") {
                    return Err(self.error("d after the number of days (within = 30d)"));
                }
                within_days = Some(u32::try_from(n).map_err(|_| self.error("fewer days"))?);
                continue;
            }
            if matches!(source, CountSource::Interaction(_)) {
                return Err(self.error("within = …d (interactions have no properties to filter)"));
            }
            let key = self.word("a property filter such as url ~ \"ielts\", or within = 30d")?.to_owned();
            let op = self.op()?;
            let value = self.value()?;
            filters.push(PropertyFilter { key, op, value });
        }
        if !self.eat(")") {
            self.ws();
            return Err(self.error(", or ) to end the count"));
        }
        self.ws();
        let at = self.offset();
        let op = self.op()?;
        if matches!(op, CmpOp::Contains | CmpOp::In) {
            return Err(self.error_at(at, "a comparison of numbers: =, !=, <, <=, > or >="));
        }
        let n = self.integer("a whole number to compare the count with")?;
        Ok(Predicate::Count(EventCount { source, filters, within_days, op, n }))
    }
}

/// A vocabulary value's stable name, or the allowed names.
fn vocab<T: std::str::FromStr + Copy>(
    s: &str,
    all: &[T],
    name: fn(T) -> &'static str,
) -> Result<&'static str, Vec<String>> {
    s.parse::<T>().map(name).map_err(|_| all.iter().map(|v| name(*v).to_owned()).collect())
}

//! Interactions / follow-ups (跟进记录).

use chrono::{DateTime, NaiveDate, Utc};
use serde::{Deserialize, Serialize};

use crate::error::{ValidationErrors, ValidationReason};
use crate::ids::{ContactId, CustomerId, InteractionId, UserId};
use crate::macros::vocabulary;
use crate::validate::{limits, optional_long_text, optional_text};

vocabulary! {
    /// How the interaction happened.
    ///
    /// ```
    /// use guanxi_core::InteractionKind;
    /// assert_eq!("拜访".parse::<InteractionKind>().unwrap(), InteractionKind::Visit);
    /// ```
    pub enum InteractionKind {
        /// Phone call (电话).
        Call = "call" / "电话",
        /// On-site visit (拜访).
        Visit = "visit" / "拜访",
        /// E-mail (邮件).
        Email = "email" / "邮件",
        /// Meeting (会议).
        Meeting = "meeting" / "会议",
        /// Chat message (消息).
        Message = "message" / "消息",
        /// Anything else (其他).
        Other = "other" / "其他",
    }
}

/// Metadata of a file attached to an interaction (the file itself lives with the host).
///
/// ```
/// use guanxi_core::Attachment;
/// let a = Attachment { name: "方案.pdf".into(), size: 1024, sha256: "ab".repeat(32), uri: "s3://b/k".into() };
/// assert_eq!(a.sha256.len(), 64);
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Attachment {
    /// File name.
    pub name: String,
    /// Size in bytes.
    pub size: u64,
    /// SHA-256 of the content, 64 lower-case hex digits.
    pub sha256: String,
    /// Where the host keeps the file.
    pub uri: String,
}

/// An interaction with a customer: a call, a visit, a message…
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Interaction {
    /// UUIDv7 id.
    pub id: InteractionId,
    /// Customer.
    pub customer_id: CustomerId,
    /// The contact spoken to, if any.
    pub contact_id: Option<ContactId>,
    /// Kind.
    pub kind: InteractionKind,
    /// When it happened.
    pub at: DateTime<Utc>,
    /// Who had it.
    pub author: UserId,
    /// What was said or done.
    pub content: String,
    /// Agreed next step.
    pub next_step: Option<String>,
    /// Day of the next planned contact.
    pub next_contact_on: Option<NaiveDate>,
    /// The customer's feedback.
    pub feedback: Option<String>,
    /// Attached files.
    pub attachments: Vec<Attachment>,
    /// Who recorded it.
    pub created_by: UserId,
    /// When it was recorded.
    pub created_at: DateTime<Utc>,
}

/// Input for a new interaction.
///
/// ```
/// use guanxi_core::{InteractionKind, NewInteraction};
/// let i = NewInteraction::new(InteractionKind::Call, "电话沟通需求，客户关注价格");
/// let v = i.validate().unwrap();
/// assert_eq!(v.kind, InteractionKind::Call);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewInteraction {
    /// Kind.
    pub kind: InteractionKind,
    /// When it happened; defaults to now.
    pub at: Option<DateTime<Utc>>,
    /// Who had it; defaults to the acting user.
    pub author: Option<UserId>,
    /// The contact spoken to.
    pub contact_id: Option<ContactId>,
    /// Content (required).
    pub content: String,
    /// Next step.
    pub next_step: Option<String>,
    /// Next contact day (not before the interaction's day).
    pub next_contact_on: Option<NaiveDate>,
    /// Feedback.
    pub feedback: Option<String>,
    /// Attachments.
    pub attachments: Vec<Attachment>,
}

impl NewInteraction {
    /// An interaction of `kind` with `content`, happening now.
    pub fn new(kind: InteractionKind, content: impl Into<String>) -> Self {
        NewInteraction {
            kind,
            at: None,
            author: None,
            contact_id: None,
            content: content.into(),
            next_step: None,
            next_contact_on: None,
            feedback: None,
            attachments: Vec::new(),
        }
    }

    /// Sets when it happened.
    pub fn at(mut self, at: DateTime<Utc>) -> Self {
        self.at = Some(at);
        self
    }

    /// Sets the contact.
    pub fn with_contact(mut self, contact: ContactId) -> Self {
        self.contact_id = Some(contact);
        self
    }

    /// Sets the next step.
    pub fn next_step(mut self, step: impl Into<String>) -> Self {
        self.next_step = Some(step.into());
        self
    }

    /// Sets the next contact day.
    pub fn next_contact_on(mut self, day: NaiveDate) -> Self {
        self.next_contact_on = Some(day);
        self
    }

    /// Sets the feedback.
    pub fn feedback(mut self, feedback: impl Into<String>) -> Self {
        self.feedback = Some(feedback.into());
        self
    }

    /// Adds an attachment.
    pub fn attachment(mut self, a: Attachment) -> Self {
        self.attachments.push(a);
        self
    }

    /// Validates and normalizes every field.
    pub fn validate(mut self) -> Result<NewInteraction, ValidationErrors> {
        let mut errs = ValidationErrors::default();
        match optional_long_text(&mut errs, "content", Some(&self.content), limits::LONG) {
            Some(c) => self.content = c,
            None => errs.push("content", ValidationReason::Required),
        }
        self.next_step = optional_long_text(&mut errs, "next_step", self.next_step.as_deref(), limits::LONG);
        self.feedback = optional_long_text(&mut errs, "feedback", self.feedback.as_deref(), limits::LONG);
        if let (Some(at), Some(next)) = (self.at, self.next_contact_on)
            && next < at.date_naive()
        {
            errs.push("next_contact_on", ValidationReason::Invalid { detail: "is before the interaction".into() });
        }
        for (i, a) in self.attachments.iter_mut().enumerate() {
            let path = format!("attachments[{i}]");
            match optional_text(&mut errs, &format!("{path}.name"), Some(&a.name), limits::NAME) {
                Some(n) => a.name = n,
                None => errs.push(format!("{path}.name"), ValidationReason::Required),
            }
            a.sha256 = a.sha256.trim().to_ascii_lowercase();
            if a.sha256.len() != 64 || !a.sha256.bytes().all(|b| b.is_ascii_hexdigit()) {
                errs.push(
                    format!("{path}.sha256"),
                    ValidationReason::Invalid { detail: "must be 64 hexadecimal digits".into() },
                );
            }
            a.uri = a.uri.trim().to_owned();
            if a.uri.is_empty() {
                errs.push(format!("{path}.uri"), ValidationReason::Required);
            }
        }
        if errs.is_empty() { Ok(self) } else { Err(errs) }
    }
}

//! Identifiers: UUIDv7 record ids and the host's user and department ids.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use crate::error::{Error, ValidationReason};

macro_rules! uuid_id {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        // Kotlin and Swift see the id as a UUID.
        #[cfg(feature = "uniffi")]
        uniffi::custom_type!($name, Uuid, { lower: |id| id.0, try_lift: |u| Ok($name(u)) });

        impl $name {
            /// The underlying UUID.
            pub fn as_uuid(&self) -> Uuid {
                self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }

        impl From<Uuid> for $name {
            fn from(u: Uuid) -> Self {
                $name(u)
            }
        }
    };
}

uuid_id!(
    /// Id of a customer (UUIDv7, so ids sort by creation time).
    ///
    /// ```
    /// use guanxi_core::CustomerId;
    /// let id: CustomerId = "01890a5d-ac96-774b-bcce-b302099a8057".parse().unwrap();
    /// assert_eq!(id.to_string(), "01890a5d-ac96-774b-bcce-b302099a8057");
    /// ```
    CustomerId
);
uuid_id!(
    /// Id of a contact (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::ContactId;
    /// assert!("not-a-uuid".parse::<ContactId>().is_err());
    /// ```
    ContactId
);
uuid_id!(
    /// Id of an interaction / follow-up record (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::InteractionId;
    /// let id = InteractionId(uuid::Uuid::nil());
    /// assert_eq!(id.as_uuid(), uuid::Uuid::nil());
    /// ```
    InteractionId
);

uuid_id!(
    /// Id of a sales opportunity (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::OpportunityId;
    /// assert!("01890a5d-ac96-774b-bcce-b302099a8057".parse::<OpportunityId>().is_ok());
    /// ```
    OpportunityId
);
uuid_id!(
    /// Id of a sales lead (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::LeadId;
    /// assert!("lead".parse::<LeadId>().is_err());
    /// ```
    LeadId
);
uuid_id!(
    /// Id of a service ticket (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::TicketId;
    /// assert!("01890a5d-ac96-774b-bcce-b302099a8057".parse::<TicketId>().is_ok());
    /// ```
    TicketId
);
uuid_id!(
    /// Id of a knowledge-base article (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::ArticleId;
    /// assert!("faq".parse::<ArticleId>().is_err());
    /// ```
    ArticleId
);
uuid_id!(
    /// Id of a behaviour event: a UUIDv7 of the event's own instant, so ids sort by when
    /// events happened.
    ///
    /// ```
    /// use guanxi_core::EventId;
    /// assert!("01890a5d-ac96-774b-bcce-b302099a8057".parse::<EventId>().is_ok());
    /// ```
    EventId
);
uuid_id!(
    /// Id of a catalog product (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::ProductId;
    /// assert!("01890a5d-ac96-774b-bcce-b302099a8057".parse::<ProductId>().is_ok());
    /// ```
    ProductId
);
uuid_id!(
    /// Id of a purchase (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::PurchaseId;
    /// assert!("01890a5d-ac96-774b-bcce-b302099a8057".parse::<PurchaseId>().is_ok());
    /// ```
    PurchaseId
);
uuid_id!(
    /// Id of a task (UUIDv7).
    ///
    /// ```
    /// use guanxi_core::TaskId;
    /// assert_eq!(TaskId(uuid::Uuid::nil()).to_string(), "00000000-0000-0000-0000-000000000000");
    /// ```
    TaskId
);

macro_rules! host_id {
    ($(#[$doc:meta])* $name:ident, $field:literal) => {
        $(#[$doc])*
        #[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(String);

        // Kotlin and Swift see the id as text, validated as `new` does on the way in.
        #[cfg(feature = "uniffi")]
        uniffi::custom_type!($name, String, { lower: |id| id.0, try_lift: |s| Ok($name::new(s)?) });

        impl $name {
            /// Longest id accepted, in characters.
            pub const MAX_LEN: usize = 128;

            /// Validates and wraps a host-side id: trimmed, not empty, at most 128 characters.
            pub fn new(id: impl AsRef<str>) -> Result<Self, Error> {
                let id = id.as_ref().trim();
                if id.is_empty() {
                    return Err(Error::invalid($field, ValidationReason::Required));
                }
                if id.chars().count() > Self::MAX_LEN {
                    return Err(Error::invalid($field, ValidationReason::TooLong { max: Self::MAX_LEN }));
                }
                if let Some(c) = crate::normalize::forbidden_char(id, false) {
                    return Err(Error::invalid($field, crate::normalize::forbidden_reason(c)));
                }
                Ok($name(id.to_owned()))
            }

            /// The id as text.
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }

        impl FromStr for $name {
            type Err = Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                $name::new(s)
            }
        }
    };
}

host_id!(
    /// The host application's id of a user (an employee using the CRM). guanxi does not mint
    /// user ids: it records whatever stable id the host uses.
    ///
    /// ```
    /// use guanxi_core::UserId;
    /// assert_eq!(UserId::new("  alice ").unwrap().as_str(), "alice");
    /// assert!(UserId::new("").is_err());
    /// ```
    UserId,
    "user"
);
host_id!(
    /// The host application's id of a department (sales team, region office).
    ///
    /// ```
    /// use guanxi_core::DepartmentId;
    /// assert_eq!(DepartmentId::new("east-china").unwrap().to_string(), "east-china");
    /// ```
    DepartmentId,
    "department"
);
host_id!(
    /// Id of a role: a built-in one (`sales_rep`, `sales_manager`, `customer_service`,
    /// `marketing`, `administrator`) or one the host defines.
    ///
    /// ```
    /// use guanxi_core::RoleId;
    /// assert_eq!(RoleId::new("auditor").unwrap().as_str(), "auditor");
    /// ```
    RoleId,
    "role"
);

//! Declares the closed vocabularies of the domain (kinds, statuses, roles) with one shape:
//! a stable snake-case name for storage and bindings, a Chinese label for people, `FromStr`
//! accepting either, and `ALL`.

macro_rules! vocabulary {
    (
        $(#[$meta:meta])*
        pub enum $name:ident {
            $( $(#[$vmeta:meta])* $variant:ident = $str:literal / $zh:literal, )*
        }
    ) => {
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, serde::Serialize, serde::Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        pub enum $name {
            $( $(#[$vmeta])* $variant, )*
        }

        impl $name {
            /// Every value, in declaration order.
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            /// The stable snake-case name used in storage and across bindings.
            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $str,)* }
            }

            /// The value whose stable name is exactly `name` (no folding: for decoding stored data).
            pub fn from_name(name: &str) -> Option<Self> {
                match name { $($str => Some($name::$variant),)* _ => None }
            }

            /// The Chinese label shown to people.
            pub fn label_zh(self) -> &'static str {
                match self { $($name::$variant => $zh,)* }
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl std::str::FromStr for $name {
            type Err = $crate::error::UnknownName;

            /// Accepts the stable name (any case) or the Chinese label.
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                let t = $crate::normalize::fold_text(s);
                $name::ALL
                    .iter()
                    .copied()
                    .find(|v| v.as_str().eq_ignore_ascii_case(&t) || v.label_zh() == t)
                    .ok_or_else(|| $crate::error::UnknownName::new(t, $name::ALL.iter().map(|v| v.as_str())))
            }
        }
    };
}

pub(crate) use vocabulary;

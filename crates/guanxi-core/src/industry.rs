//! Industry classification: the 20 sections of GB/T 4754-2017 (国民经济行业分类).

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

use crate::error::UnknownName;

macro_rules! sections {
    ($($variant:ident = $letter:literal, $zh:literal, $en:literal, $divs:expr;)*) => {
        /// A section of GB/T 4754-2017, the national industry classification.
        ///
        /// Parses from the section letter, the English variant name or the Chinese name.
        ///
        /// ```
        /// use guanxi_core::Industry;
        /// let i: Industry = "信息传输、软件和信息技术服务业".parse().unwrap();
        /// assert_eq!(i, Industry::InformationTechnology);
        /// assert_eq!(i.code(), 'I');
        /// assert_eq!("I".parse::<Industry>().unwrap(), i);
        /// assert_eq!(i.divisions(), 63..=65);
        /// assert_eq!(Industry::from_division(65), Some(Industry::InformationTechnology));
        /// ```
        #[non_exhaustive]
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        #[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
        pub enum Industry {
            $(
                #[doc = $zh]
                #[doc = ""]
                #[doc = $en]
                $variant,
            )*
        }

        impl Industry {
            /// Every section, A to T.
            pub const ALL: &'static [Industry] = &[$(Industry::$variant),*];

            /// The section letter, A to T.
            pub fn code(self) -> char {
                match self { $(Industry::$variant => $letter,)* }
            }

            /// The official Chinese name.
            pub fn name_zh(self) -> &'static str {
                match self { $(Industry::$variant => $zh,)* }
            }

            /// The stable snake-case name used in storage and bindings.
            pub fn as_str(self) -> &'static str {
                match self { $(Industry::$variant => $en,)* }
            }

            /// The section of a stable name exactly as [`Industry::as_str`] writes it (what
            /// stores and columns hold); `parse` also accepts labels and letters.
            ///
            /// ```
            /// use guanxi_core::Industry;
            /// assert_eq!(Industry::from_name("finance"), Some(Industry::Finance));
            /// assert_eq!(Industry::from_name("金融业"), None);
            /// ```
            pub fn from_name(name: &str) -> Option<Industry> {
                match name { $($en => Some(Industry::$variant),)* _ => None }
            }

            /// The two-digit division codes (大类) this section contains.
            pub fn divisions(self) -> std::ops::RangeInclusive<u8> {
                match self { $(Industry::$variant => $divs,)* }
            }
        }
    };
}

sections! {
    Agriculture = 'A', "农、林、牧、渔业", "agriculture", 1..=5;
    Mining = 'B', "采矿业", "mining", 6..=12;
    Manufacturing = 'C', "制造业", "manufacturing", 13..=43;
    Utilities = 'D', "电力、热力、燃气及水生产和供应业", "utilities", 44..=46;
    Construction = 'E', "建筑业", "construction", 47..=50;
    WholesaleRetail = 'F', "批发和零售业", "wholesale_retail", 51..=52;
    TransportLogistics = 'G', "交通运输、仓储和邮政业", "transport_logistics", 53..=60;
    HospitalityCatering = 'H', "住宿和餐饮业", "hospitality_catering", 61..=62;
    InformationTechnology = 'I', "信息传输、软件和信息技术服务业", "information_technology", 63..=65;
    Finance = 'J', "金融业", "finance", 66..=69;
    RealEstate = 'K', "房地产业", "real_estate", 70..=70;
    LeasingBusinessServices = 'L', "租赁和商务服务业", "leasing_business_services", 71..=72;
    ScienceTechnology = 'M', "科学研究和技术服务业", "science_technology", 73..=75;
    WaterEnvironment = 'N', "水利、环境和公共设施管理业", "water_environment", 76..=79;
    ResidentServices = 'O', "居民服务、修理和其他服务业", "resident_services", 80..=82;
    Education = 'P', "教育", "education", 83..=83;
    HealthSocialWork = 'Q', "卫生和社会工作", "health_social_work", 84..=85;
    CultureSportsEntertainment = 'R', "文化、体育和娱乐业", "culture_sports_entertainment", 86..=90;
    PublicAdministration = 'S', "公共管理、社会保障和社会组织", "public_administration", 91..=96;
    InternationalOrganizations = 'T', "国际组织", "international_organizations", 97..=97;
}

impl Industry {
    /// The section that holds a two-digit division code (e.g. 65 软件和信息技术服务业 → I).
    pub fn from_division(division: u8) -> Option<Industry> {
        Industry::ALL.iter().copied().find(|s| s.divisions().contains(&division))
    }
}

impl fmt::Display for Industry {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name_zh())
    }
}

impl FromStr for Industry {
    type Err = UnknownName;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        let t = crate::normalize::fold_text(s);
        Industry::ALL
            .iter()
            .copied()
            .find(|i| {
                t == i.as_str() || t == i.name_zh() || (t.len() == 1 && t.eq_ignore_ascii_case(&i.code().to_string()))
            })
            .ok_or_else(|| UnknownName::new(t, Industry::ALL.iter().map(|i| i.as_str())))
    }
}

//! Chinese administrative regions: province-level divisions with their short forms and the
//! conventional macro-areas (华东, 华南, …).

use std::fmt;

use serde::{Deserialize, Serialize};

use crate::error::ValidationReason;
use crate::normalize::fold_text;

/// The 34 province-level divisions: (full name, short name, macro-area).
const PROVINCES: [(&str, &str, &str); 34] = [
    ("北京市", "北京", "华北"),
    ("天津市", "天津", "华北"),
    ("河北省", "河北", "华北"),
    ("山西省", "山西", "华北"),
    ("内蒙古自治区", "内蒙古", "华北"),
    ("辽宁省", "辽宁", "东北"),
    ("吉林省", "吉林", "东北"),
    ("黑龙江省", "黑龙江", "东北"),
    ("上海市", "上海", "华东"),
    ("江苏省", "江苏", "华东"),
    ("浙江省", "浙江", "华东"),
    ("安徽省", "安徽", "华东"),
    ("福建省", "福建", "华东"),
    ("江西省", "江西", "华东"),
    ("山东省", "山东", "华东"),
    ("台湾省", "台湾", "华东"),
    ("河南省", "河南", "华中"),
    ("湖北省", "湖北", "华中"),
    ("湖南省", "湖南", "华中"),
    ("广东省", "广东", "华南"),
    ("广西壮族自治区", "广西", "华南"),
    ("海南省", "海南", "华南"),
    ("香港特别行政区", "香港", "华南"),
    ("澳门特别行政区", "澳门", "华南"),
    ("重庆市", "重庆", "西南"),
    ("四川省", "四川", "西南"),
    ("贵州省", "贵州", "西南"),
    ("云南省", "云南", "西南"),
    ("西藏自治区", "西藏", "西南"),
    ("陕西省", "陕西", "西北"),
    ("甘肃省", "甘肃", "西北"),
    ("青海省", "青海", "西北"),
    ("宁夏回族自治区", "宁夏", "西北"),
    ("新疆维吾尔自治区", "新疆", "西北"),
];

/// The official full name of a province-level division, given its full or short name.
///
/// ```
/// use guanxi_core::region::canonical_province;
/// assert_eq!(canonical_province("山东"), Some("山东省"));
/// assert_eq!(canonical_province("新疆维吾尔自治区"), Some("新疆维吾尔自治区"));
/// assert_eq!(canonical_province("Atlantis"), None);
/// ```
pub fn canonical_province(name: &str) -> Option<&'static str> {
    let name = fold_text(name);
    PROVINCES.iter().find(|(full, short, _)| *full == name || *short == name).map(|(full, _, _)| *full)
}

/// The macro-area (华北, 东北, 华东, 华中, 华南, 西南, 西北) of a province.
///
/// ```
/// use guanxi_core::region::area_of;
/// assert_eq!(area_of("浙江省"), Some("华东"));
/// assert_eq!(area_of("广东"), Some("华南"));
/// ```
pub fn area_of(province: &str) -> Option<&'static str> {
    let full = canonical_province(province)?;
    PROVINCES.iter().find(|(f, _, _)| *f == full).map(|(_, _, area)| *area)
}

/// The provinces of a macro-area (华东, 华南, …); empty for any other name.
///
/// ```
/// use guanxi_core::region::provinces_of_area;
/// assert!(provinces_of_area("华南").contains(&"广东省"));
/// assert!(provinces_of_area("火星").is_empty());
/// ```
pub fn provinces_of_area(area: &str) -> Vec<&'static str> {
    PROVINCES.iter().filter(|(_, _, a)| *a == area).map(|(full, _, _)| *full).collect()
}

/// Province / city / district of a customer (省 / 市 / 区县). The province is validated and
/// stored under its full official name; city and district are trimmed free text.
///
/// ```
/// use guanxi_core::Region;
/// let r = Region::new("山东", "聊城市", "东昌府区").unwrap();
/// assert_eq!(r.province, "山东省");
/// assert_eq!(r.to_string(), "山东省 聊城市 东昌府区");
/// assert_eq!(r.area(), Some("华东"));
/// assert!(Region::new("Atlantis", "", "").is_err());
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Region {
    /// Full official province name, e.g. 山东省.
    pub province: String,
    /// City (地级市), may be empty.
    pub city: String,
    /// District or county (区县), may be empty.
    pub district: String,
}

/// A change to parts of a region, as forms and keyword arguments give it: each of `province`,
/// `city` and `district` is not given (`None`), cleared (`Some(None)`) or set. A part given
/// replaces the parts under it, and a part not given keeps its current value, so changing only
/// the city keeps the province and clears the district.
///
/// ```
/// use guanxi_core::{Region, RegionChange};
/// let current = Region { province: "广东省".into(), city: "广州市".into(), district: "天河区".into() };
/// let city = RegionChange { city: Some(Some("深圳市".into())), ..Default::default() };
/// assert_eq!(city.apply(Some(&current)), Some(Region { city: "深圳市".into(), district: String::new(), ..current.clone() }));
/// let cleared = RegionChange { province: Some(None), ..Default::default() };
/// assert_eq!(cleared.apply(Some(&current)), None);
/// assert!(RegionChange::default().is_empty());
/// ```
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct RegionChange {
    /// The province: not given, cleared (which clears the whole region) or set.
    pub province: Option<Option<String>>,
    /// The city: not given, cleared or set.
    pub city: Option<Option<String>>,
    /// The district: not given, cleared or set.
    pub district: Option<Option<String>>,
}

impl RegionChange {
    /// Whether no part is given.
    pub fn is_empty(&self) -> bool {
        self.province.is_none() && self.city.is_none() && self.district.is_none()
    }

    /// Whether [`apply`](Self::apply) reads the current region (a part is kept from it).
    pub fn keeps_current(&self) -> bool {
        !self.is_empty() && self.province.is_none()
    }

    /// The region after the change (None: no region), to validate like any new region.
    pub fn apply(&self, current: Option<&Region>) -> Option<Region> {
        if matches!(self.province, Some(None)) {
            return None;
        }
        let given = |part: &Option<Option<String>>| part.clone().map(Option::unwrap_or_default);
        let current = current.cloned().unwrap_or_default();
        let district = given(&self.district);
        Some(match (given(&self.province), given(&self.city)) {
            (Some(province), city) => {
                Region { province, city: city.unwrap_or_default(), district: district.unwrap_or_default() }
            }
            (None, Some(city)) => Region { province: current.province, city, district: district.unwrap_or_default() },
            (None, None) => Region { district: district.unwrap_or_default(), ..current },
        })
    }
}

impl Region {
    /// Validates a region. Returns the reason the province was rejected, if it was.
    pub fn new(province: &str, city: &str, district: &str) -> Result<Region, ValidationReason> {
        let province = canonical_province(province).ok_or(ValidationReason::UnknownProvince)?;
        let (city, district) = (fold_text(city), fold_text(district));
        if city.is_empty() && !district.is_empty() {
            return Err(ValidationReason::Invalid { detail: "has a district but no city".into() });
        }
        Ok(Region { province: province.to_owned(), city, district })
    }

    /// The macro-area of the province.
    pub fn area(&self) -> Option<&'static str> {
        area_of(&self.province)
    }
}

impl fmt::Display for Region {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.province)?;
        for part in [&self.city, &self.district] {
            if !part.is_empty() {
                write!(f, " {part}")?;
            }
        }
        Ok(())
    }
}

//! The customer columns of import and export files: each field's key, its Chinese header and
//! the other headers an import recognises for it.

use serde::{Deserialize, Serialize};

macro_rules! import_fields {
    ($($variant:ident = $key:literal / $label:literal $(| $alias:literal)*),* $(,)?) => {
        /// A customer field a column can fill.
        ///
        /// ```
        /// use guanxi::ImportField;
        /// assert_eq!(ImportField::for_header("手机号"), Some(ImportField::ContactPhone));
        /// assert_eq!(ImportField::for_header("Name"), Some(ImportField::Name));
        /// assert_eq!(ImportField::ContactPhone.label(), "手机");
        /// ```
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Serialize, Deserialize)]
        #[serde(rename_all = "snake_case")]
        pub enum ImportField {
            $(#[doc = $label] $variant,)*
        }

        impl ImportField {
            /// Every field, in template order.
            pub const ALL: &'static [ImportField] = &[$(ImportField::$variant),*];

            /// The stable key (`contact_phone`), also accepted as a header.
            pub fn key(self) -> &'static str {
                match self { $(ImportField::$variant => $key,)* }
            }

            /// The Chinese header the template uses (`手机`).
            pub fn label(self) -> &'static str {
                match self { $(ImportField::$variant => $label,)* }
            }

            /// The field a header names: its key, its label or a common alias, ignoring case,
            /// spaces and full-width forms.
            pub fn for_header(header: &str) -> Option<ImportField> {
                let h = guanxi_core::normalize::fold_text(header).to_lowercase().replace([' ', '_', '-'], "");
                $(
                    if h == $key.replace('_', "") || h == $label $(|| h == $alias)* {
                        return Some(ImportField::$variant);
                    }
                )*
                None
            }
        }
    };
}

import_fields! {
    Code = "code" / "客户编号" | "编号" | "客户编码",
    Name = "name" / "客户名称" | "名称" | "客户名" | "公司名称" | "企业名称" | "客户" | "company",
    Kind = "kind" / "客户类型" | "类型",
    Industry = "industry" / "行业",
    Size = "size" / "规模" | "企业规模",
    Source = "source" / "来源" | "客户来源" | "渠道",
    Status = "status" / "状态" | "客户状态",
    Level = "level" / "等级" | "客户等级",
    Province = "province" / "省份" | "省",
    City = "city" / "城市" | "市",
    District = "district" / "区县" | "区",
    Address = "address" / "地址" | "详细地址",
    Uscc = "uscc" / "统一社会信用代码" | "信用代码" | "社会信用代码" | "uscc",
    Identifiers = "identifiers" / "证件号码" | "证件" | "证件号" | "identifier",
    Tags = "tags" / "标签",
    Owner = "owner" / "负责人" | "销售",
    ContactName = "contact_name" / "联系人" | "联系人姓名" | "contact",
    ContactTitle = "contact_title" / "职务" | "职位" | "title",
    ContactPhone = "contact_phone" / "手机" | "手机号" | "电话" | "联系电话" | "phone" | "mobile",
    ContactEmail = "contact_email" / "邮箱" | "电子邮箱" | "email" | "e-mail" | "mail",
}

//! Custom fields (自定义字段): [`CustomFields`].

use crate::crm::Crm;
use crate::*;

/// Custom fields (自定义字段): define them per entity and list them.
///
/// Got from [`Crm`] as `crm.custom_fields()`; each call takes the acting user and is checked, validated,
/// written, logged and announced exactly as the rest of the facade is.
///
/// ```
/// # use guanxi::*;
/// let crm = Crm::in_memory();
/// let alice = Actor::user("alice")?;
/// crm.custom_fields().create(&alice, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal))?;
/// assert_eq!(crm.custom_fields().list(&alice, EntityKind::Customer)?.len(), 1);
/// # Ok::<(), guanxi::Error>(())
/// ```
#[derive(Clone, Copy)]
pub struct CustomFields<'a> {
    pub(crate) crm: &'a Crm,
}

impl std::fmt::Debug for CustomFields<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("CustomFields")
    }
}

impl<'a> CustomFields<'a> {
    /// Defines a custom field. Keys are unique per entity.
    ///
    /// ```
    /// # use guanxi::*;
    /// let crm = Crm::in_memory();
    /// let alice = Actor::user("alice")?;
    /// crm.custom_fields().create(&alice, CustomFieldDef::new(EntityKind::Customer, "budget", "预算", FieldType::Decimal))?;
    /// let c = crm.customers().create(&alice, NewCustomer::new("甲").custom("budget", CustomValue::Text("1,200.50".into())))?;
    /// assert_eq!(c.custom["budget"].to_string(), "1200.5");
    /// let bad = crm.customers().create(&alice, NewCustomer::new("乙").custom("budget", CustomValue::Text("lots".into())));
    /// assert!(matches!(bad, Err(Error::Validation(v)) if v.field("custom.budget").is_some()));
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn create(&self, actor: &Actor, def: CustomFieldDef) -> Result<CustomFieldDef> {
        self.crm.define_custom_field(actor, def)
    }

    /// The custom fields of an entity. Their definitions are part of reading the records they
    /// describe: whoever may read `entity` (or custom fields themselves) may read them, so a
    /// list, an export or a DataFrame never fails where a single read succeeds.
    ///
    /// ```
    /// # use guanxi::*;
    /// # use guanxi::access::{Role, Scope, User};
    /// let crm = Crm::builder().trust_asserted_elevation(true).build(); // the host verifies users itself
    /// let root = Actor::user("root")?.elevated_until("2999-01-01T00:00:00Z".parse().unwrap());
    /// crm.access().set_user(&root, User::new("root", "管理员")?.role(BuiltinRole::Administrator))?;
    /// crm.access().set_role(&root, Role::new("reader", "只读")?.grant(EntityKind::Customer, &[Action::Read], Scope::All))?;
    /// crm.access().set_user(&root, User::new("kim", "金")?.custom_role(&RoleId::new("reader")?))?;
    /// assert!(crm.custom_fields().list(&Actor::user("kim")?, EntityKind::Customer)?.is_empty());
    /// assert!(crm.custom_fields().list(&Actor::user("kim")?, EntityKind::Contact).is_err());
    /// # Ok::<(), guanxi::Error>(())
    /// ```
    pub fn list(&self, actor: &Actor, entity: EntityKind) -> Result<Vec<CustomFieldDef>> {
        self.crm.list_custom_fields(actor, entity)
    }
}

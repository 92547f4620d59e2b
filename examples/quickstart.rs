//! Quickstart: opens (or creates) `crm.db` in the working directory, adds customers with
//! contacts, tags and follow-ups, lists them by tag and prints a customer's timeline.
//!
//! Run it with `cargo run --example quickstart`; run it again and it adds to the same file.
#![allow(clippy::print_stderr)]

use chrono::{Duration, Utc};
use guanxi::{
    Actor, Crm, CustomerFilter, DecisionRole, Industry, InteractionKind, NewContact, NewCustomer, NewInteraction,
    Region, SizeBand, TimelineItem, chrono,
};

fn main() -> Result<(), guanxi::Error> {
    let crm = Crm::open("crm.db")?;
    let alice = Actor::user("alice")?; // the sales rep using the app
    let before = crm.customers().count(&alice, &CustomerFilter::default())?;
    println!("crm.db holds {before} customers");

    crm.tags().create(&alice, "VIP", Some("等级"))?;
    let created = crm.customers().create_many(
        &alice,
        vec![
            NewCustomer::new("华为技术有限公司")
                .industry(Industry::InformationTechnology)
                .size(SizeBand::Large)
                .source("展会")
                .region(Region { province: "广东".into(), city: "深圳市".into(), district: "龙岗区".into() })
                .tag("VIP")
                .contact(
                    NewContact::new("张伟")
                        .title("采购总监")
                        .phone("+86 138-1234-5678")
                        .email("zhang.wei@example.com")
                        .role(DecisionRole::DecisionMaker),
                ),
            NewCustomer::new("聊城鲁西化工")
                .industry(Industry::Manufacturing)
                .region(Region { province: "山东".into(), city: "聊城市".into(), district: "东昌府区".into() })
                .tag("VIP")
                .tag("行业-化工")
                .contact(NewContact::new("李娜").phone("139 0000 1111")),
            NewCustomer::new("王先生")
                .kind(guanxi::CustomerKind::Individual)
                .source("官网")
                .contact(NewContact::new("王先生").phone("13700001111")),
        ],
    )?;

    let huawei = &created[0];
    crm.interactions().create(
        &alice,
        huawei.id,
        NewInteraction::new(InteractionKind::Visit, "现场演示，客户关注价格和交付周期")
            .next_step("发送报价单")
            .next_contact_on((Utc::now() + Duration::days(3)).date_naive())
            .feedback("希望下周给出方案"),
    )?;
    crm.interactions().create(&alice, huawei.id, NewInteraction::new(InteractionKind::Call, "电话确认预算范围"))?;

    println!("\nVIP customers:");
    for c in crm.customers().list_all(&alice, &CustomerFilter::default().tag("VIP"))? {
        let region = c.region.map(|r| r.to_string()).unwrap_or_default();
        let contacts = crm.contacts().list(&alice, c.id)?;
        let primary = contacts.first().map(|p| format!("{} {}", p.name, p.phones.first().map_or("", |p| p.as_str())));
        println!("  {}  {:<12} {:<18} {}", c.code, c.name, region, primary.unwrap_or_default());
    }

    println!("\nTimeline of {} {}:", huawei.code, huawei.name);
    for entry in crm.customers().timeline(&alice, huawei.id)? {
        let what = match entry.item {
            TimelineItem::Interaction(i) => format!("{} ({}): {}", i.kind.label_zh(), i.author, i.content),
            TimelineItem::Change(c) => {
                let fields: Vec<&str> = c.changes.iter().map(|f| f.field.as_str()).collect();
                format!("{} {} by {} [{}]", c.entity, c.action.label_zh(), c.actor, fields.join(", "))
            }
            _ => "…".to_owned(),
        };
        println!("  {}  {what}", entry.at.format("%Y-%m-%d %H:%M:%S"));
    }

    let after = crm.customers().count(&alice, &CustomerFilter::default())?;
    println!("\ncrm.db now holds {after} customers");
    Ok(())
}

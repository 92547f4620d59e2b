//! A labelled duplicate set and the quality measure of the scan over it.

pub mod dedup_data {
    //! Deterministic customers in the style of Faker's zh_CN provider (company names of city +
    //! brand + trade + legal form, people's names, mobile numbers, e-mail addresses, street
    //! addresses), a share of them written again the ways people re-enter a record: another
    //! legal form, a typo, two characters swapped, full-width characters or spaces, another
    //! phone format, missing fields. Every record carries the label of the entity it stands
    //! for, so a scan's precision, recall and F1 can be measured.
    //!
    //! Distinct companies often differ in one character (北京华为科技 and 北京华夏科技 are two
    //! firms), and distinct people share names: the set is hard in the ways real data is.

    use std::collections::HashMap;

    use uuid::Uuid;

    use crate::dedup::{MatchProfile, MatchRules, NotDuplicates, Pairs, scan};
    use crate::testing::sales_data::Rng;
    use crate::{CustomerId, CustomerKind};

    const CITIES: [&str; 16] = [
        "北京", "上海", "深圳", "广州", "杭州", "成都", "武汉", "南京", "西安", "苏州", "天津", "重庆", "青岛", "济南",
        "长沙", "厦门",
    ];
    const BRAND: &str = "华为腾讯阿里百度京东美团小米联想海尔格力比亚迪宁德时代中兴新浪网易搜狐携程奇瑞吉利长城万科恒大碧桂园顺丰圆通申通韵达蓝月亮宝洁立白娃哈哈农夫山泉伊利蒙牛光明三元汇源康师傅统一星河天宇鑫源瑞丰博远恒信宏达金鼎泰东方明珠盛世嘉禾永安泰和鸿运昌隆兴旺富贵祥锦绣龙凤麒麟松柏桃李春秋冬夏晨曦朝旭日星辰月云海川江湖湘楚燕齐鲁吴越闽粤滇黔蜀秦晋豫皖赣浙苏沪津渝港澳琼藏甘辽黑";
    const TRADES: [&str; 12] = [
        "科技",
        "贸易",
        "电子",
        "信息技术",
        "机械",
        "食品",
        "医药",
        "物流",
        "建筑工程",
        "文化传媒",
        "新能源",
        "网络科技",
    ];
    const LEGAL: [&str; 5] = ["有限公司", "股份有限公司", "有限责任公司", "集团有限公司", "有限公司"];
    pub(crate) const SURNAMES: &str =
        "王李张刘陈杨黄赵吴周徐孙马朱胡郭何高林罗郑梁谢宋唐许韩冯邓曹彭曾肖田董袁潘于蒋蔡余杜叶程苏魏吕丁任沈姚卢";
    pub(crate) const GIVEN: &str =
        "伟芳娜秀英敏静丽强磊军洋勇艳杰娟涛明超兰霞平刚桂华建国玉红飞鹏辉波斌宇浩凯健俊帆晨鑫磊欣怡梓涵子轩雨泽";
    pub(crate) const ROADS: [&str; 12] = [
        "人民路",
        "中山路",
        "解放大道",
        "建设路",
        "和平街",
        "科技园路",
        "长江路",
        "黄河路",
        "新华街",
        "滨江大道",
        "学院路",
        "工业大道",
    ];
    const DISTRICTS: [&str; 8] = ["朝阳区", "海淀区", "南山区", "福田区", "西湖区", "高新区", "江北区", "历下区"];
    const MAIL: [&str; 5] = ["qq.com", "163.com", "126.com", "sina.com", "foxmail.com"];

    pub(crate) fn pick<'a>(rng: &mut Rng, v: &[&'a str]) -> &'a str {
        v[rng.below(v.len() as u64) as usize]
    }

    pub(crate) fn chars(s: &str) -> Vec<char> {
        s.chars().collect()
    }

    pub(crate) fn pick_char(rng: &mut Rng, pool: &[char]) -> char {
        pool[rng.below(pool.len() as u64) as usize]
    }

    /// One entity as first entered.
    #[derive(Debug, Clone)]
    struct Entity {
        kind: CustomerKind,
        /// Name without legal form (companies) or the full name (people).
        stem: String,
        legal: &'static str,
        phone: Option<String>,
        email: Option<String>,
        address: Option<String>,
    }

    fn entity(rng: &mut Rng, brand: &[char], surnames: &[char], given: &[char]) -> Entity {
        let phone = format!("1{}{:09}", 3 + rng.below(7), rng.below(1_000_000_000));
        let address =
            format!("{}市{}{}{}号", pick(rng, &CITIES), pick(rng, &DISTRICTS), pick(rng, &ROADS), 1 + rng.below(3000));
        if rng.below(10) < 7 {
            // Brands of two or three characters: enough distinct firms that equal names are rare.
            let b: String = (0..2 + rng.below(2)).map(|_| pick_char(rng, brand)).collect();
            let stem = format!("{}{}{}", pick(rng, &CITIES), b, pick(rng, &TRADES));
            let email = format!("info{}@c{}.com", rng.below(1_000_000), rng.below(1_000_000));
            Entity {
                kind: CustomerKind::Enterprise,
                stem,
                legal: LEGAL[rng.below(LEGAL.len() as u64) as usize],
                phone: (rng.below(10) < 8).then_some(phone),
                email: (rng.below(10) < 5).then_some(email),
                address: (rng.below(10) < 8).then_some(address),
            }
        } else {
            let n = 1 + rng.below(2);
            let name: String =
                std::iter::once(pick_char(rng, surnames)).chain((0..n).map(|_| pick_char(rng, given))).collect();
            let email = format!("u{}@{}", rng.below(10_000_000), pick(rng, &MAIL));
            Entity {
                kind: CustomerKind::Individual,
                stem: name,
                legal: "",
                phone: (rng.below(10) < 9).then_some(phone),
                email: (rng.below(10) < 4).then_some(email),
                address: (rng.below(10) < 5).then_some(address),
            }
        }
    }

    /// The phone written another way.
    fn reformat_phone(rng: &mut Rng, p: &str) -> String {
        match rng.below(5) {
            0 => format!("+86 {} {} {}", &p[..3], &p[3..7], &p[7..]),
            1 => format!("{}-{}-{}", &p[..3], &p[3..7], &p[7..]),
            2 => format!("0086{p}"),
            3 => p.chars().map(|c| char::from_u32(c as u32 - '0' as u32 + '０' as u32).unwrap_or(c)).collect(),
            _ => format!("{} {} {}", &p[..3], &p[3..7], &p[7..]),
        }
    }

    /// A typo: one character of the name's distinctive part replaced.
    fn typo(rng: &mut Rng, name: &str, pool: &[char], skip_head: usize) -> String {
        let mut c = chars(name);
        if c.len() <= skip_head {
            return name.to_owned();
        }
        let i = skip_head + rng.below((c.len() - skip_head) as u64) as usize;
        c[i] = pick_char(rng, pool);
        c.into_iter().collect()
    }

    /// Two neighbouring characters swapped.
    fn swap(rng: &mut Rng, name: &str, skip_head: usize) -> String {
        let mut c = chars(name);
        if c.len() < skip_head + 2 {
            return name.to_owned();
        }
        let i = skip_head + rng.below((c.len() - skip_head - 1) as u64) as usize;
        c.swap(i, i + 1);
        c.into_iter().collect()
    }

    fn full_width(s: &str) -> String {
        s.chars()
            .map(|c| if c.is_ascii_alphanumeric() { char::from_u32(c as u32 + 0xFEE0).unwrap_or(c) } else { c })
            .collect()
    }

    /// `entities` entities, about a third of them entered two or three times; each profile with
    /// its entity's label. Ids follow the order of the profiles.
    pub fn labelled(entities: u64, seed: u64) -> (Vec<MatchProfile>, Vec<u64>) {
        let mut rng = Rng::new(seed);
        let (brand, surnames, given) = (chars(BRAND), chars(SURNAMES), chars(GIVEN));
        let mut profiles = Vec::new();
        let mut labels = Vec::new();
        let mut push = |e: &Entity, name: String, label: u64, profiles: &mut Vec<MatchProfile>| {
            let n = profiles.len() as u128;
            let mut p = MatchProfile::new(CustomerId(Uuid::from_u128(n + 1)), &format!("C{:08}", n + 1), &name, e.kind);
            if let Some(a) = &e.address {
                p = p.address(a);
            }
            if let Some(ph) = &e.phone {
                p = p.phone(ph);
            }
            if let Some(m) = &e.email {
                p = p.email(m);
            }
            profiles.push(p);
            labels.push(label);
        };
        for label in 0..entities {
            let e = entity(&mut rng, &brand, &surnames, &given);
            push(&e, format!("{}{}", e.stem, e.legal), label, &mut profiles);
            let copies = match rng.below(10) {
                0..=6 => 0,
                7 | 8 => 1,
                _ => 2,
            };
            for _ in 0..copies {
                let mut d = e.clone();
                // The city prefix of a company is rarely mistyped; people's names are short.
                let head = if e.kind == CustomerKind::Enterprise { 2 } else { 0 };
                let pool = if e.kind == CustomerKind::Enterprise { &brand } else { &given };
                let mut stem = d.stem.clone();
                match rng.below(10) {
                    0 | 1 => stem = typo(&mut rng, &stem, pool, head.max(1)),
                    2 => stem = swap(&mut rng, &stem, head),
                    3 => stem = full_width(&stem),
                    4 if e.kind == CustomerKind::Individual => {
                        stem = stem.chars().map(String::from).collect::<Vec<_>>().join(" ")
                    }
                    _ => {}
                }
                let legal = if e.kind == CustomerKind::Enterprise && rng.below(2) == 0 {
                    ["有限公司", "股份有限公司", "(有限公司)", " Co., Ltd.", "集团", ""][rng.below(6) as usize]
                } else {
                    e.legal
                };
                d.phone = match (rng.below(10), &e.phone) {
                    (0..=5, Some(p)) => Some(reformat_phone(&mut rng, p)),
                    (6 | 7, Some(_)) => None,
                    (_, p) => p.clone(),
                };
                d.email = match (rng.below(10), &e.email) {
                    (0..=3, Some(m)) => Some(m.to_uppercase()),
                    (4..=6, Some(_)) => None,
                    (_, m) => m.clone(),
                };
                d.address = match (rng.below(10), &e.address) {
                    (0..=2, Some(a)) => Some(format!("中国 {}", full_width(a))),
                    (3 | 4, Some(_)) => None,
                    (_, a) => a.clone(),
                };
                push(&d, format!("{stem}{legal}"), label, &mut profiles);
            }
        }
        (profiles, labels)
    }

    /// Precision, recall and F1 of a scan, over pairs: a pair is found when both records end
    /// in one cluster, true when both carry one label.
    #[derive(Debug, Clone, Copy, PartialEq)]
    pub struct Quality {
        /// Pairs with one label.
        pub true_pairs: u64,
        /// Pairs in one cluster.
        pub found_pairs: u64,
        /// Pairs both.
        pub correct_pairs: u64,
        /// correct / found.
        pub precision: f64,
        /// correct / true.
        pub recall: f64,
        /// Their harmonic mean.
        pub f1: f64,
    }

    fn pairs(n: u64) -> u64 {
        n * n.saturating_sub(1) / 2
    }

    /// Scans the profiles with `rules` and measures the clusters against the labels.
    pub fn quality(profiles: &[MatchProfile], labels: &[u64], rules: &MatchRules) -> Quality {
        quality_of(profiles, labels, rules, Pairs::Within)
    }

    /// [`quality`] of a scan wanting `pairs`: linking two sides counts only pairs across them,
    /// true and found alike (two records of one side in one cluster are not a link).
    pub fn quality_of(profiles: &[MatchProfile], labels: &[u64], rules: &MatchRules, pairs: Pairs) -> Quality {
        let index: HashMap<CustomerId, usize> = profiles.iter().enumerate().map(|(i, p)| (p.id, i)).collect();
        // Pairs of one group wanted: all of them within one set, left × right across two.
        let wanted = |members: &[usize]| -> u64 {
            match pairs {
                Pairs::Within => self::pairs(members.len() as u64),
                Pairs::Across { left } => {
                    let l = members.iter().filter(|i| **i < left).count() as u64;
                    l * (members.len() as u64 - l)
                }
            }
        };
        let mut per_label: HashMap<u64, Vec<usize>> = HashMap::new();
        for (i, l) in labels.iter().enumerate() {
            per_label.entry(*l).or_default().push(i);
        }
        let true_pairs: u64 = per_label.values().map(|m| wanted(m)).sum();
        let (mut found_pairs, mut correct_pairs) = (0, 0);
        scan(profiles, rules, &NotDuplicates::new(), pairs, |c| {
            let members: Vec<usize> = c.members.iter().map(|m| index[m]).collect();
            found_pairs += wanted(&members);
            let mut by_label: HashMap<u64, Vec<usize>> = HashMap::new();
            for m in members {
                by_label.entry(labels[m]).or_default().push(m);
            }
            correct_pairs += by_label.values().map(|m| wanted(m)).sum::<u64>();
        });
        let precision = if found_pairs == 0 { 1.0 } else { correct_pairs as f64 / found_pairs as f64 };
        let recall = if true_pairs == 0 { 1.0 } else { correct_pairs as f64 / true_pairs as f64 };
        let f1 = if precision + recall == 0.0 { 0.0 } else { 2.0 * precision * recall / (precision + recall) };
        Quality { true_pairs, found_pairs, correct_pairs, precision, recall, f1 }
    }
}

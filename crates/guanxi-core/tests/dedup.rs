//! The duplicate scan: its quality on the labelled set, and its agreement with an all-pairs
//! reference.
#![allow(missing_docs, clippy::unwrap_used, clippy::print_stderr)]

use std::collections::{BTreeMap, BTreeSet};

use guanxi_core::dedup::{MatchProfile, MatchRules, NotDuplicates, Pairs, scan};
use guanxi_core::testing::dedup_data::{labelled, quality};
use guanxi_core::{CustomerId, CustomerKind};
use proptest::prelude::*;

/// The goal of the issue: F1 ≥ 0.95 at the default threshold on the labelled set.
#[test]
fn scan_quality_on_the_labelled_set() {
    let (profiles, labels) = labelled(20_000, 7);
    let q = quality(&profiles, &labels, &MatchRules::default());
    eprintln!(
        "{} profiles, {} true pairs, {} found, {} correct: precision {:.4}, recall {:.4}, F1 {:.4}",
        profiles.len(),
        q.true_pairs,
        q.found_pairs,
        q.correct_pairs,
        q.precision,
        q.recall,
        q.f1
    );
    assert!(q.true_pairs > 5_000, "the set has duplicates to find");
    assert!(q.f1 >= 0.95, "F1 {:.4} below 0.95: {q:?}", q.f1);
}

/// Clusters as sets of ids.
fn partition(clusters: impl IntoIterator<Item = Vec<CustomerId>>) -> BTreeMap<CustomerId, BTreeSet<CustomerId>> {
    let mut out = BTreeMap::new();
    for c in clusters {
        let set: BTreeSet<CustomerId> = c.iter().copied().collect();
        for m in c {
            out.insert(m, set.clone());
        }
    }
    out
}

/// Union-find over all pairs scoring at least the threshold: the reference the blocked scan
/// must refine.
fn all_pairs(profiles: &[MatchProfile], rules: &MatchRules, not: &NotDuplicates) -> Vec<Vec<CustomerId>> {
    let mut root: Vec<usize> = (0..profiles.len()).collect();
    fn find(r: &mut [usize], mut x: usize) -> usize {
        while r[x] != x {
            x = r[x];
        }
        x
    }
    for i in 0..profiles.len() {
        for j in i + 1..profiles.len() {
            if rules.duplicate(&profiles[i], &profiles[j]).is_some() && !not.contains(profiles[i].id, profiles[j].id) {
                let (a, b) = (find(&mut root, i), find(&mut root, j));
                root[a.max(b)] = a.min(b);
            }
        }
    }
    let mut groups: BTreeMap<usize, Vec<CustomerId>> = BTreeMap::new();
    for (i, p) in profiles.iter().enumerate() {
        let r = find(&mut root, i);
        groups.entry(r).or_default().push(p.id);
    }
    groups.into_values().filter(|g| g.len() > 1).collect()
}

fn small_profiles() -> impl Strategy<Value = Vec<MatchProfile>> {
    let name = prop_oneof![
        Just("华为技术"),
        Just("华为技朮"),
        Just("华技为术"),
        Just("华夏技术"),
        Just("星河科技"),
        Just("星河科枝"),
        Just("王伟"),
    ];
    let legal = prop_oneof![Just(""), Just("有限公司"), Just("股份有限公司"), Just(" Co., Ltd.")];
    let phone = proptest::option::of(prop_oneof![Just("13812345678"), Just("+86 139 0000 1111"), Just("13900001111")]);
    let address = proptest::option::of(prop_oneof![
        Just("深圳市南山区科技园1号"),
        Just("中国 深圳市南山区科技园１号"),
        Just("北京市海淀区学院路3号")
    ]);
    proptest::collection::vec((name, legal, phone, address, any::<bool>()), 0..14).prop_map(|v| {
        v.into_iter()
            .enumerate()
            .map(|(i, (n, l, ph, a, person))| {
                let kind = if person { CustomerKind::Individual } else { CustomerKind::Enterprise };
                let mut p = MatchProfile::new(
                    CustomerId(uuid::Uuid::from_u128(i as u128 + 1)),
                    &format!("C{i}"),
                    &format!("{n}{l}"),
                    kind,
                );
                if let Some(ph) = ph {
                    p = p.phone(ph);
                }
                if let Some(a) = a {
                    p = p.address(a);
                }
                p
            })
            .collect()
    })
}

proptest! {
    /// Every scan cluster lies inside one all-pairs cluster, every link it reports reaches the
    /// threshold and is not marked, and pairs sharing a phone or a company name key (the
    /// blocking keys themselves) always end together.
    #[test]
    fn scan_refines_the_all_pairs_reference(profiles in small_profiles(), marks in proptest::collection::vec((0usize..14, 0usize..14), 0..4)) {
        let rules = MatchRules::default();
        let not: NotDuplicates = marks
            .iter()
            .filter(|(a, b)| *a < profiles.len() && *b < profiles.len() && a != b)
            .map(|(a, b)| (profiles[*a].id, profiles[*b].id))
            .collect();
        let mut clusters = vec![];
        scan(&profiles, &rules, &not, Pairs::Within, |c| clusters.push(c));
        let reference = partition(all_pairs(&profiles, &rules, &not));
        for c in &clusters {
            let first = reference.get(&c.members[0]).cloned().unwrap_or_default();
            for m in &c.members {
                prop_assert!(first.contains(m), "{m:?} outside the reference cluster");
            }
            for l in &c.links {
                prop_assert!(l.to.score >= rules.threshold);
                prop_assert!(!not.contains(l.from, l.to.id.unwrap()));
            }
        }
        let found = partition(clusters.iter().map(|c| c.members.clone()));
        for (i, a) in profiles.iter().enumerate() {
            for b in &profiles[i + 1..] {
                let shares_key = a.phones.intersection(&b.phones).next().is_some()
                    || (a.kind == CustomerKind::Enterprise && b.kind == CustomerKind::Enterprise && a.name_key == b.name_key);
                if shares_key && !not.contains(a.id, b.id) && rules.duplicate(a, b).is_some() {
                    prop_assert!(found.get(&a.id).is_some_and(|s| s.contains(&b.id)), "{} and {} apart", a.name, b.name);
                }
            }
        }
    }
}

//! Assignment: skill groups of agents with capacities, routing rules that queue a ticket in a
//! group, and the strategies that pick an agent.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};

use super::ticket::{Channel, Priority, TicketKind};
use crate::error::{ValidationErrors, ValidationReason};
use crate::ids::UserId;

/// How a group picks an agent.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
#[cfg_attr(feature = "uniffi", derive(uniffi::Enum))]
pub enum AssignStrategy {
    /// In turn, skipping agents at capacity.
    #[default]
    RoundRobin,
    /// The agent with the fewest open tickets (ties: the first listed).
    LeastLoaded,
    /// Among the agents with the ticket's skill (all, when none has it), the least loaded.
    BySkill,
}

impl AssignStrategy {
    /// The stable name.
    pub fn as_str(self) -> &'static str {
        match self {
            AssignStrategy::RoundRobin => "round_robin",
            AssignStrategy::LeastLoaded => "least_loaded",
            AssignStrategy::BySkill => "by_skill",
        }
    }
}

/// An agent in a skill group.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Agent {
    /// The user.
    pub user: UserId,
    /// Most open tickets at once (0: no limit).
    #[serde(default)]
    pub capacity: u32,
    /// Skills (lower case), e.g. `billing`, `network`.
    #[serde(default)]
    pub skills: BTreeSet<String>,
}

impl Agent {
    /// An agent with a capacity and skills.
    pub fn new(user: UserId, capacity: u32, skills: &[&str]) -> Agent {
        Agent { user, capacity, skills: skills.iter().map(|s| s.to_lowercase()).collect() }
    }
}

/// A group of agents tickets are queued in (一线, 二线, 技术支持, …).
///
/// ```
/// use guanxi_core::service::{Agent, AssignStrategy, SkillGroup};
/// use guanxi_core::UserId;
/// let g = SkillGroup::new("l1", "一线客服", AssignStrategy::LeastLoaded)
///     .agent(Agent::new(UserId::new("amy")?, 2, &[]))
///     .agent(Agent::new(UserId::new("bo")?, 2, &[]));
/// // amy has 2 open (full), bo 1: bo gets it.
/// let loads = |u: &UserId| if u.as_str() == "amy" { 2 } else { 1 };
/// assert_eq!(g.pick(None, loads, 0).unwrap().as_str(), "bo");
/// # Ok::<(), guanxi_core::Error>(())
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct SkillGroup {
    /// Key.
    pub key: String,
    /// Display name.
    pub name: String,
    /// Agents, in round-robin order.
    pub agents: Vec<Agent>,
    /// How an agent is picked.
    #[serde(default)]
    pub strategy: AssignStrategy,
    /// The group escalation moves tickets to.
    #[serde(default)]
    pub escalate_to: Option<String>,
}

impl SkillGroup {
    /// An empty group.
    pub fn new(key: &str, name: &str, strategy: AssignStrategy) -> SkillGroup {
        SkillGroup { key: key.to_owned(), name: name.to_owned(), agents: vec![], strategy, escalate_to: None }
    }

    /// Adds an agent.
    pub fn agent(mut self, agent: Agent) -> Self {
        self.agents.push(agent);
        self
    }

    /// Sets the escalation group.
    pub fn escalate_to(mut self, key: &str) -> Self {
        self.escalate_to = Some(key.to_owned());
        self
    }

    /// Whether a user is an agent of the group.
    pub fn has(&self, user: &UserId) -> bool {
        self.agents.iter().any(|a| &a.user == user)
    }

    /// Picks an agent: `load` gives a user's open tickets, `turn` is this group's round-robin
    /// counter (any increasing number). None when every agent is at capacity.
    pub fn pick(&self, skill: Option<&str>, load: impl Fn(&UserId) -> u64, turn: u64) -> Option<UserId> {
        let loads: Vec<u64> = self.agents.iter().map(|a| load(&a.user)).collect();
        let free = |i: usize| self.agents[i].capacity == 0 || loads[i] < u64::from(self.agents[i].capacity);
        let n = self.agents.len();
        if n == 0 {
            return None;
        }
        let least = |candidates: &mut dyn Iterator<Item = usize>| candidates.min_by_key(|&i| (loads[i], i));
        let chosen = match self.strategy {
            AssignStrategy::RoundRobin => {
                let first = usize::try_from(turn % n as u64).unwrap_or(0);
                (0..n).map(|k| (first + k) % n).find(|&i| free(i))
            }
            AssignStrategy::LeastLoaded => least(&mut (0..n).filter(|&i| free(i))),
            AssignStrategy::BySkill => {
                let skilled = |i: &usize| skill.is_none_or(|s| self.agents[*i].skills.contains(s));
                let any_skilled = (0..n).any(|i| skilled(&i));
                least(&mut (0..n).filter(|&i| free(i) && (!any_skilled || skilled(&i))))
            }
        };
        chosen.map(|i| self.agents[i].user.clone())
    }
}

/// Queues matching tickets in a group (first matching route wins; unset conditions match all).
///
/// ```
/// use guanxi_core::service::{Route, TicketKind};
/// let r = Route::to("billing").kind(TicketKind::Complaint).keyword("发票");
/// assert!(r.matches(TicketKind::Complaint, guanxi_core::service::Channel::Web, guanxi_core::service::Priority::Low, "发票开错了"));
/// ```
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[cfg_attr(feature = "uniffi", derive(uniffi::Record))]
pub struct Route {
    /// Kind.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub kind: Option<TicketKind>,
    /// Channel.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub channel: Option<Channel>,
    /// Priority.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub priority: Option<Priority>,
    /// A word the subject or description contains (case-insensitive).
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub keyword: Option<String>,
    /// Group to queue in.
    pub group: String,
    /// Skill the ticket needs.
    #[serde(default)]
    #[cfg_attr(feature = "uniffi", uniffi(default = None))]
    pub skill: Option<String>,
}

impl Route {
    /// A route to a group matching everything.
    pub fn to(group: &str) -> Route {
        Route { kind: None, channel: None, priority: None, keyword: None, group: group.to_owned(), skill: None }
    }

    /// Only this kind.
    pub fn kind(mut self, kind: TicketKind) -> Self {
        self.kind = Some(kind);
        self
    }

    /// Only texts with this word.
    pub fn keyword(mut self, word: &str) -> Self {
        self.keyword = Some(word.to_owned());
        self
    }

    /// Sets the skill.
    pub fn skill(mut self, skill: &str) -> Self {
        self.skill = Some(skill.to_lowercase());
        self
    }

    /// Whether a ticket with these attributes and text takes this route.
    pub fn matches(&self, kind: TicketKind, channel: Channel, priority: Priority, text: &str) -> bool {
        self.kind.is_none_or(|k| k == kind)
            && self.channel.is_none_or(|c| c == channel)
            && self.priority.is_none_or(|p| p == priority)
            && self.keyword.as_ref().is_none_or(|w| text.to_lowercase().contains(&w.to_lowercase()))
    }
}

/// Checks groups and routes: unique keys, known references, no escalation cycle.
pub(crate) fn validate(
    groups: &[SkillGroup],
    routes: &[Route],
    default_group: Option<&str>,
    errs: &mut ValidationErrors,
) {
    let known = |k: &str| groups.iter().any(|g| g.key == k);
    let group_keys = || groups.iter().map(|g| g.key.as_str());
    for (i, g) in groups.iter().enumerate() {
        if g.key.trim().is_empty() {
            errs.push(format!("groups[{i}].key"), ValidationReason::Required);
        }
        if groups[..i].iter().any(|o| o.key == g.key) {
            errs.push(
                format!("groups[{i}].key"),
                ValidationReason::Invalid { detail: format!("{} is repeated", g.key) },
            );
        }
        if let Some(e) = g.escalate_to.as_deref().filter(|e| !known(e)) {
            errs.push(format!("groups[{i}].escalate_to"), ValidationReason::not_allowed(e, group_keys()));
        }
        // Follow the escalation chain: it must end.
        let mut seen = vec![g.key.as_str()];
        let mut next = g.escalate_to.as_deref();
        while let Some(k) = next {
            if seen.contains(&k) {
                errs.push(
                    format!("groups[{i}].escalate_to"),
                    ValidationReason::Invalid { detail: "escalation loops".into() },
                );
                break;
            }
            seen.push(k);
            next = groups.iter().find(|x| x.key == k).and_then(|x| x.escalate_to.as_deref());
        }
    }
    for (i, r) in routes.iter().enumerate().filter(|(_, r)| !known(&r.group)) {
        errs.push(format!("routes[{i}].group"), ValidationReason::not_allowed(&r.group, group_keys()));
    }
    if let Some(d) = default_group.filter(|d| !known(d)) {
        errs.push("default_group", ValidationReason::not_allowed(d, group_keys()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn u(s: &str) -> UserId {
        UserId::new(s).unwrap()
    }

    #[test]
    fn strategies() {
        let mut g = SkillGroup::new("l1", "L1", AssignStrategy::RoundRobin)
            .agent(Agent::new(u("a"), 0, &["billing"]))
            .agent(Agent::new(u("b"), 1, &[]))
            .agent(Agent::new(u("c"), 0, &["network"]));
        let loads = |x: &UserId| match x.as_str() {
            "a" => 5,
            "b" => 1,
            _ => 2,
        };
        // Round robin skips b (at capacity).
        let picks: Vec<String> = (0..4).map(|t| g.pick(None, loads, t).unwrap().to_string()).collect();
        assert_eq!(picks, ["a", "c", "c", "a"]);
        g.strategy = AssignStrategy::LeastLoaded;
        assert_eq!(g.pick(None, loads, 0).unwrap().as_str(), "c");
        g.strategy = AssignStrategy::BySkill;
        assert_eq!(g.pick(Some("billing"), loads, 0).unwrap().as_str(), "a");
        assert_eq!(g.pick(Some("legal"), loads, 0).unwrap().as_str(), "c"); // nobody has it: all
        let full = SkillGroup::new("x", "X", AssignStrategy::LeastLoaded).agent(Agent::new(u("b"), 1, &[]));
        assert!(full.pick(None, loads, 0).is_none());
    }

    #[test]
    fn escalation_loops_are_refused() {
        let groups = vec![
            SkillGroup::new("l1", "L1", AssignStrategy::RoundRobin).escalate_to("l2"),
            SkillGroup::new("l2", "L2", AssignStrategy::RoundRobin).escalate_to("l1"),
        ];
        let mut errs = ValidationErrors::default();
        validate(&groups, &[Route::to("nope")], None, &mut errs);
        assert!(errs.field("groups[0].escalate_to").is_some() && errs.field("routes[0].group").is_some());
    }
}

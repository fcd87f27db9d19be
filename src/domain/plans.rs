//! The policy history: applying a plan (the levels an optimisation decided,
//! at every echelon) as a versioned record of what each policy was before and
//! after, and rolling a plan back to exactly the policies it replaced.
//!
//! A plan record is immutable. A rollback is itself a plan (its `rolls_back`
//! names the plan it undoes), so the history only grows and a rollback can be
//! rolled back too. A rollback is refused while any policy the plan set has
//! changed since (by hand, an import or a later plan): restoring the old
//! level there would silently undo a decision made after the plan.

use super::DomainError;
use super::network::{LocationId, Network, PartId, Policy, PolicyKind, Qty};
use jiff::Timestamp;
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// Most policies one plan may change: one apply is one storage transaction
/// held in memory until it commits (about 300 bytes a change, so 300 MB at the
/// limit), and 2,000,000 is twice the largest network the planner targets
/// (1e6 SKU-locations).
pub const MAX_PLAN_CHANGES: usize = 2_000_000;

/// The policy of one part-location before and after a plan. `None` means no
/// policy (the part-location held to the network's default).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PolicyChange {
    /// The part.
    pub part_id: PartId,
    /// The location.
    pub location_id: LocationId,
    /// The policy in force before the plan.
    pub before: Option<Policy>,
    /// The policy the plan set.
    pub after: Option<Policy>,
}

/// What the history lists about one applied plan.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanHeader {
    /// Id, `plan-000001` and up, in the order plans were applied.
    pub plan_id: String,
    /// When it was applied (the server's clock).
    pub applied_at: Timestamp,
    /// Who or what applied it: `optimize:job-000042`, `rollback:plan-000003`.
    pub source: String,
    /// The plan this one undoes, for a rollback.
    pub rolls_back: Option<String>,
    /// How many policies it changed.
    pub changes: usize,
}

/// One applied plan with every policy it changed.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct PlanRecord {
    /// Id, time, source.
    pub header: PlanHeader,
    /// Every policy it changed, ordered by (part, location).
    pub changes: Vec<PolicyChange>,
}

/// The id of the `n`th plan (1-based).
pub fn plan_id(n: usize) -> String {
    format!("plan-{n:06}")
}

/// The policy a plan sets for a decided level: base stock (S-1, S) at
/// `level`, keeping as much of the current protected quantity as the level
/// holds (protection is a threshold on available stock and cannot exceed it).
pub fn planned_policy(
    current: Option<&Policy>,
    part_id: &str,
    location_id: &str,
    level: Qty,
    source: &str,
) -> Policy {
    Policy {
        part_id: part_id.to_string(),
        location_id: location_id.to_string(),
        kind: PolicyKind::BaseStock,
        order_up_to: level,
        reorder_point: level.saturating_sub(1),
        order_quantity: 1,
        protected_quantity: current.map_or(0, |p| p.protected_quantity).min(level),
        source: source.to_string(),
    }
}

/// The changes that set `levels` (part, location, level; any echelon) as
/// base-stock policies with `source`, against the policies in force in
/// `network`. A level whose policy would not change is left out.
///
/// Errors: an unknown part or location is `NotFound` naming `levels[i]`; a
/// part-location given twice is `InvalidArgument`; more than
/// [`MAX_PLAN_CHANGES`] is `OutOfRange`.
pub fn plan_changes(
    network: &Network,
    levels: &[(PartId, LocationId, Qty)],
    source: &str,
) -> Result<Vec<PolicyChange>, DomainError> {
    if levels.len() > MAX_PLAN_CHANGES {
        return Err(DomainError::OutOfRange {
            field: "levels".into(),
            reason: format!(
                "{} levels; one plan may set at most {MAX_PLAN_CHANGES}",
                levels.len()
            ),
        });
    }
    let mut seen = BTreeSet::new();
    let mut changes = Vec::with_capacity(levels.len());
    for (i, (part_id, location_id, level)) in levels.iter().enumerate() {
        if !network.parts.contains_key(part_id) {
            return Err(DomainError::not_found(
                "part",
                format!("{part_id} (levels[{i}])"),
            ));
        }
        if !network.locations.contains_key(location_id) {
            return Err(DomainError::not_found(
                "location",
                format!("{location_id} (levels[{i}])"),
            ));
        }
        if !seen.insert((part_id, location_id)) {
            return Err(DomainError::invalid(
                format!("levels[{i}]"),
                format!("{part_id} at {location_id} is given twice"),
            ));
        }
        let current = network
            .policies
            .get(&(part_id.clone(), location_id.clone()));
        let after = planned_policy(current, part_id, location_id, *level, source);
        if current != Some(&after) {
            changes.push(PolicyChange {
                part_id: part_id.clone(),
                location_id: location_id.clone(),
                before: current.cloned(),
                after: Some(after),
            });
        }
    }
    changes.sort_by(|a, b| (&a.part_id, &a.location_id).cmp(&(&b.part_id, &b.location_id)));
    Ok(changes)
}

/// The changes that undo `plan`: every policy it set goes back to what it
/// replaced (removed where there was none).
///
/// Errors: `FailedPrecondition` naming the first part-location whose policy
/// is no longer the one the plan set, and how many differ.
pub fn rollback_changes(
    network: &Network,
    plan: &PlanRecord,
) -> Result<Vec<PolicyChange>, DomainError> {
    let changed: Vec<&PolicyChange> = plan
        .changes
        .iter()
        .filter(|c| {
            network
                .policies
                .get(&(c.part_id.clone(), c.location_id.clone()))
                != c.after.as_ref()
        })
        .collect();
    if let Some(first) = changed.first() {
        return Err(DomainError::FailedPrecondition(format!(
            "plan_id: {} cannot be rolled back exactly: the policy of {} at {} (and {} more) changed after it was applied; roll back the later plan first or set those policies by hand",
            plan.header.plan_id,
            first.part_id,
            first.location_id,
            changed.len() - 1
        )));
    }
    Ok(plan
        .changes
        .iter()
        .map(|c| PolicyChange {
            part_id: c.part_id.clone(),
            location_id: c.location_id.clone(),
            before: c.after.clone(),
            after: c.before.clone(),
        })
        .collect())
}

/// Applies changes to the network's policies (the in-memory snapshot; the
/// store writes the same).
pub fn apply_changes(network: &mut Network, changes: &[PolicyChange]) {
    for change in changes {
        let key = (change.part_id.clone(), change.location_id.clone());
        match &change.after {
            Some(policy) => {
                network.policies.insert(key, policy.clone());
            }
            None => {
                network.policies.remove(&key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::network::{
        BusinessCalendar, Criticality, Interchangeability, Location, LocationKind, Part,
    };

    fn network() -> Network {
        let mut network = Network::default();
        for (id, kind) in [
            ("DEP", LocationKind::FactoryDepot),
            ("RWH", LocationKind::RegionalWarehouse),
            ("STR", LocationKind::Store),
        ] {
            let location = Location {
                id: id.into(),
                name: id.into(),
                kind,
                latitude_deg: 41.88,
                longitude_deg: -87.63,
                time_zone: "America/Chicago".into(),
                calendar: BusinessCalendar::weekdays_8_to_17(),
                order_cutoff_local: jiff::civil::Time::constant(16, 0, 0, 0),
                handling_minutes: 30,
                replenishment_source: None,
                country_code: "US".into(),
            };
            network.locations.insert(id.into(), location);
        }
        let part = Part {
            id: "P1".into(),
            description: "pump".into(),
            unit_cost_usd: 10.0,
            criticality: Criticality::Routine,
            repairable: false,
            successor: None,
            interchangeability: Interchangeability::ForwardOnly,
            supplier_lead_time: None,
            downtime_cost_usd_per_hour: None,
        };
        network.parts.insert("P1".into(), part);
        network
    }

    fn levels(rows: &[(&str, u64)]) -> Vec<(PartId, LocationId, Qty)> {
        rows.iter()
            .map(|(l, q)| ("P1".to_string(), l.to_string(), *q))
            .collect()
    }

    fn record(id: &str, changes: Vec<PolicyChange>) -> PlanRecord {
        PlanRecord {
            header: PlanHeader {
                plan_id: id.into(),
                applied_at: Timestamp::UNIX_EPOCH,
                source: "test".into(),
                rolls_back: None,
                changes: changes.len(),
            },
            changes,
        }
    }

    #[test]
    fn a_plan_sets_every_echelon_and_a_rollback_restores_exactly() {
        let mut network = network();
        let old = planned_policy(None, "P1", "STR", 2, "import");
        let old = Policy {
            protected_quantity: 1,
            ..old
        };
        apply_changes(
            &mut network,
            &[PolicyChange {
                part_id: "P1".into(),
                location_id: "STR".into(),
                before: None,
                after: Some(old.clone()),
            }],
        );
        let before = network.policies.clone();
        let changes = plan_changes(
            &network,
            &levels(&[("DEP", 5), ("RWH", 3), ("STR", 0)]),
            "optimize:job-1",
        )
        .unwrap();
        assert_eq!(changes.len(), 3);
        let plan = record("plan-000001", changes.clone());
        apply_changes(&mut network, &changes);
        let at = |l: &str| network.policies[&("P1".to_string(), l.to_string())].clone();
        assert_eq!(at("DEP").order_up_to, 5);
        assert_eq!(at("RWH").order_up_to, 3);
        assert_eq!(at("STR").order_up_to, 0);
        assert_eq!(
            at("STR").protected_quantity,
            0,
            "protection never exceeds the level"
        );
        let undo = rollback_changes(&network, &plan).unwrap();
        apply_changes(&mut network, &undo);
        assert_eq!(network.policies, before, "the rollback restores exactly");
        // Rolled back once, the plan's policies are gone: a second rollback is refused.
        let again = rollback_changes(&network, &plan).unwrap_err();
        assert!(
            matches!(again, DomainError::FailedPrecondition(_)),
            "{again}"
        );
    }

    #[test]
    fn a_rollback_is_refused_when_a_policy_changed_since() {
        let mut network = network();
        let changes = plan_changes(&network, &levels(&[("STR", 2)]), "optimize:job-1").unwrap();
        let plan = record("plan-000001", changes.clone());
        apply_changes(&mut network, &changes);
        let later = plan_changes(&network, &levels(&[("STR", 4)]), "by hand").unwrap();
        apply_changes(&mut network, &later);
        let error = rollback_changes(&network, &plan).unwrap_err().to_string();
        assert!(
            error.contains("P1 at STR") && error.contains("plan-000001"),
            "{error}"
        );
    }

    #[test]
    fn unknown_ids_and_repeats_name_the_level() {
        let network = network();
        let error =
            plan_changes(&network, &levels(&[("STR", 1), ("NOWHERE", 1)]), "x").unwrap_err();
        assert!(error.to_string().contains("levels[1]"), "{error}");
        let error = plan_changes(&network, &levels(&[("STR", 1), ("STR", 2)]), "x").unwrap_err();
        assert!(error.to_string().contains("levels[1]"), "{error}");
        let same = plan_changes(&network, &levels(&[("STR", 0)]), "x").unwrap();
        assert_eq!(
            same.len(),
            1,
            "no policy before, so a level-0 policy is a change"
        );
    }
}

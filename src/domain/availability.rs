//! The availability engine: the routed network plus the parts' supersession
//! data, and the read-only stock view that WhereIs and Promise read through.
//!
//! Build one [`Availability`] per network version with [`Availability::new`]
//! and share it (the service holds it in an `Arc` and swaps it when the network
//! changes). Queries are pure functions of the engine, a [`StockView`] and the
//! request, including the order time: nothing here reads a clock.

use super::error::DomainError;
use super::ledger::Balance;
use super::network::{Interchangeability, LocationId, Network, Part, PartId, Qty};
use super::routing::Router;
use std::collections::{BTreeMap, HashMap};

/// Read access to stock balances, backed by the ledger's in-memory index in
/// the service and by a [`MemoryStock`] in tests.
pub trait StockView {
    /// Calls `visit` with every balance of `part_id` (any location; locations
    /// with nothing may be skipped).
    fn visit_balances(&self, part_id: &str, visit: &mut dyn FnMut(&Balance));

    /// Units of available stock of `part_id` at `location_id` that only
    /// critical demand may take (from the policy in force).
    fn protected_quantity(&self, part_id: &str, location_id: &str) -> Qty;
}

/// A [`StockView`] over plain maps, for tests, benches and the CLI.
#[derive(Debug, Clone, Default)]
pub struct MemoryStock {
    /// Balances by part, then location.
    pub balances: HashMap<PartId, BTreeMap<LocationId, Balance>>,
    /// Protected units by (part, location).
    pub protected: HashMap<(PartId, LocationId), Qty>,
}

impl MemoryStock {
    /// Adds or replaces a balance.
    pub fn put(&mut self, balance: Balance) {
        self.balances
            .entry(balance.part_id.clone())
            .or_default()
            .insert(balance.location_id.clone(), balance);
    }

    /// Sets the protected quantity of a part at a location.
    pub fn protect(&mut self, part_id: &str, location_id: &str, quantity: Qty) {
        self.protected
            .insert((part_id.to_string(), location_id.to_string()), quantity);
    }
}

impl StockView for MemoryStock {
    fn visit_balances(&self, part_id: &str, visit: &mut dyn FnMut(&Balance)) {
        if let Some(balances) = self.balances.get(part_id) {
            balances.values().for_each(visit);
        }
    }

    fn protected_quantity(&self, part_id: &str, location_id: &str) -> Qty {
        // Allocating the key is fine for a test double.
        self.protected
            .get(&(part_id.to_string(), location_id.to_string()))
            .copied()
            .unwrap_or(0)
    }
}

/// Balances of a few parts copied from the ledger at one cut (a ledger
/// sequence), with the protection of the engine they are read through: the
/// [`StockView`] a batch of WhereIs or Promise lines is answered from, so
/// every line sees the same stock. Balances keep the order they were copied
/// in, so a line reads them exactly as it would read the live ledger.
#[derive(Debug)]
pub struct StockSnapshot<'a> {
    engine: &'a Availability,
    sequence: u64,
    balances: HashMap<PartId, Vec<Balance>>,
}

impl<'a> StockSnapshot<'a> {
    /// A snapshot of `balances` (by part, each in location order) taken at
    /// ledger `sequence`, with `engine`'s protection.
    pub fn new(
        engine: &'a Availability,
        sequence: u64,
        balances: HashMap<PartId, Vec<Balance>>,
    ) -> Self {
        Self {
            engine,
            sequence,
            balances,
        }
    }

    /// The ledger sequence the balances were read at.
    pub fn sequence(&self) -> u64 {
        self.sequence
    }
}

impl StockView for StockSnapshot<'_> {
    fn visit_balances(&self, part_id: &str, visit: &mut dyn FnMut(&Balance)) {
        if let Some(balances) = self.balances.get(part_id) {
            balances.iter().for_each(visit);
        }
    }

    fn protected_quantity(&self, part_id: &str, location_id: &str) -> Qty {
        self.engine.protected_quantity(part_id, location_id)
    }
}

/// How a supplied part number relates to the one asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum PartRelation {
    /// The part asked for.
    Same,
    /// A newer part number that supersedes it (always allowed).
    Successor,
    /// An older part number that is two-way interchangeable with it.
    Predecessor,
}

/// A part number that may be supplied for the one asked for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CandidatePart {
    /// The part number.
    pub part_id: PartId,
    /// Its relation to the part asked for.
    pub relation: PartRelation,
}

/// The routed network and part master data, prepared for availability queries.
#[derive(Debug, Clone)]
pub struct Availability {
    /// Earliest-arrival routing.
    pub router: Router,
    /// Part master records, hashed (a lookup per query and per candidate).
    parts: rustc_hash::FxHashMap<PartId, Part>,
    /// Older part numbers by the part that supersedes them.
    predecessors: rustc_hash::FxHashMap<PartId, Vec<PartId>>,
    /// Protected units by part, then location (non-zero only): nested so a
    /// lookup by `&str` needs no key allocation.
    protection: rustc_hash::FxHashMap<PartId, rustc_hash::FxHashMap<LocationId, Qty>>,
}

impl Availability {
    /// Prepares a network for queries (see [`Router::new`] for the errors).
    pub fn new(network: &Network) -> Result<Self, DomainError> {
        let mut predecessors: rustc_hash::FxHashMap<PartId, Vec<PartId>> =
            rustc_hash::FxHashMap::default();
        for part in network.parts.values() {
            if let Some(successor) = &part.successor {
                predecessors
                    .entry(successor.clone())
                    .or_default()
                    .push(part.id.clone());
            }
        }
        let mut protection: rustc_hash::FxHashMap<PartId, rustc_hash::FxHashMap<LocationId, Qty>> =
            rustc_hash::FxHashMap::default();
        for ((part_id, location_id), policy) in &network.policies {
            if policy.protected_quantity > 0 {
                protection
                    .entry(part_id.clone())
                    .or_default()
                    .insert(location_id.clone(), policy.protected_quantity);
            }
        }
        Ok(Self {
            router: Router::new(network)?,
            parts: network
                .parts
                .iter()
                .map(|(id, part)| (id.clone(), part.clone()))
                .collect(),
            predecessors,
            protection,
        })
    }

    /// Units of `part_id` at `location_id` that only critical demand may
    /// take, from the policies of the network this engine was built for.
    pub fn protected_quantity(&self, part_id: &str, location_id: &str) -> Qty {
        self.protection
            .get(part_id)
            .and_then(|locations| locations.get(location_id))
            .copied()
            .unwrap_or(0)
    }

    /// The part master record.
    pub fn part(&self, part_id: &str) -> Option<&Part> {
        self.parts.get(part_id)
    }

    /// Part numbers that may be supplied for `part_id`, in the order they are
    /// offered: the part itself; then each successor in supersession order
    /// (a newer part may always replace an older one); then older part numbers
    /// reached backwards through links that are all two-way interchangeable.
    /// A forward-only predecessor is never offered for its successor.
    ///
    /// Errors with `NotFound` for an unknown part.
    pub fn candidate_parts(
        &self,
        part_id: &str,
        exact_part_only: bool,
    ) -> Result<Vec<CandidatePart>, DomainError> {
        if !self.parts.contains_key(part_id) {
            return Err(DomainError::not_found("part", part_id));
        }
        let mut candidates = vec![CandidatePart {
            part_id: part_id.to_string(),
            relation: PartRelation::Same,
        }];
        if exact_part_only {
            return Ok(candidates);
        }
        let mut current = part_id;
        while let Some(next) = self.parts.get(current).and_then(|p| p.successor.as_deref()) {
            if candidates.iter().any(|c| c.part_id == next) {
                break; // Cycles are rejected on write; this guards a corrupt store.
            }
            candidates.push(CandidatePart {
                part_id: next.to_string(),
                relation: PartRelation::Successor,
            });
            current = next;
        }
        if !self.predecessors.contains_key(part_id) {
            // Nothing older to reach (most parts): no search.
            return Ok(candidates);
        }
        let mut stack = vec![part_id.to_string()];
        while let Some(newer) = stack.pop() {
            for older in self.predecessors.get(&newer).into_iter().flatten() {
                let two_way = self
                    .parts
                    .get(older)
                    .is_some_and(|p| p.interchangeability == Interchangeability::TwoWay);
                if two_way && !candidates.iter().any(|c| &c.part_id == older) {
                    candidates.push(CandidatePart {
                        part_id: older.clone(),
                        relation: PartRelation::Predecessor,
                    });
                    stack.push(older.clone());
                }
            }
        }
        Ok(candidates)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::network::Criticality;

    fn part(id: &str, successor: Option<&str>, interchangeability: Interchangeability) -> Part {
        Part {
            id: id.into(),
            description: id.into(),
            unit_cost_usd: 1.0,
            criticality: Criticality::Routine,
            repairable: false,
            successor: successor.map(str::to_string),
            interchangeability,
            supplier_lead_time: None,
            downtime_cost_usd_per_hour: None,
        }
    }

    #[test]
    fn candidates_follow_successors_forward_and_two_way_links_back() {
        // A -> B forward-only, B -> C two-way.
        let mut network = Network::default();
        for p in [
            part("A", Some("B"), Interchangeability::ForwardOnly),
            part("B", Some("C"), Interchangeability::TwoWay),
            part("C", None, Interchangeability::ForwardOnly),
        ] {
            network.parts.insert(p.id.clone(), p);
        }
        let engine = Availability::new(&network).unwrap();
        let ids = |part: &str| -> Vec<(String, PartRelation)> {
            engine
                .candidate_parts(part, false)
                .unwrap()
                .into_iter()
                .map(|c| (c.part_id, c.relation))
                .collect()
        };
        assert_eq!(
            ids("A"),
            [
                ("A".to_string(), PartRelation::Same),
                ("B".to_string(), PartRelation::Successor),
                ("C".to_string(), PartRelation::Successor),
            ]
        );
        // C may take B (two-way) but not A (A -> B is forward-only).
        assert_eq!(
            ids("C"),
            [
                ("C".to_string(), PartRelation::Same),
                ("B".to_string(), PartRelation::Predecessor),
            ]
        );
        assert_eq!(engine.candidate_parts("C", true).unwrap().len(), 1);
        assert!(matches!(
            engine.candidate_parts("Z", false),
            Err(DomainError::NotFound { .. })
        ));
    }
}

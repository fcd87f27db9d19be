//! Retiring master data: a part, a location or a lane taken out of service.
//!
//! A retired record leaves the network's active maps, so it disappears from
//! every list, promise and plan (they all read those maps), but it stays in the
//! store, in [`RetiredRecords`] and in the ledger's history. Retiring is refused
//! while stock, reservations or units in transit remain, naming them; a
//! location that still replenishes an active one is refused too, and a
//! location's lanes retire with it. Upserting a retired id makes it active
//! again.

use super::error::DomainError;
use super::ledger::Balance;
use super::network::{Lane, LaneKey, Location, LocationId, Network, Part, PartId};
use serde::{Deserialize, Serialize};
use std::collections::{BTreeMap, BTreeSet};

/// Most blockers named in one refusal; the message says how many more.
pub const MAX_BLOCKERS_NAMED: usize = 20;

/// One record taken out of service.
#[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Serialize, Deserialize)]
pub enum Retirement {
    /// A part, by id.
    Part(PartId),
    /// A location, by id.
    Location(LocationId),
    /// A lane, by its key.
    Lane(LaneKey),
}

/// Retired records, kept as they were when retired.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct RetiredRecords {
    /// Retired parts.
    pub parts: BTreeMap<PartId, Part>,
    /// Retired locations.
    pub locations: BTreeMap<LocationId, Location>,
    /// Retired lanes.
    pub lanes: BTreeMap<LaneKey, Lane>,
}

/// What a caller asks to retire.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct RetireRequest {
    /// Parts.
    pub part_ids: Vec<PartId>,
    /// Locations (their lanes retire with them).
    pub location_ids: Vec<LocationId>,
    /// Lanes.
    pub lanes: Vec<LaneKey>,
}

impl Network {
    /// Moves a record from the active maps to [`Network::retired`]; a record
    /// that is not active is left alone.
    pub fn retire(&mut self, retirement: &Retirement) {
        match retirement {
            Retirement::Part(id) => {
                if let Some(part) = self.parts.remove(id) {
                    self.retired.parts.insert(id.clone(), part);
                }
            }
            Retirement::Location(id) => {
                if let Some(location) = self.locations.remove(id) {
                    self.retired.locations.insert(id.clone(), location);
                }
            }
            Retirement::Lane(key) => {
                if let Some(lane) = self.lanes.remove(key) {
                    self.retired.lanes.insert(key.clone(), lane);
                }
            }
        }
    }

    /// The retirements a request makes, its locations' lanes included, after
    /// checking every id is known (active or already retired) and that no
    /// active location would be left without its replenishment source.
    /// Already-retired records are left out.
    ///
    /// Errors: an unknown id is `NotFound` naming `part_ids[i]`,
    /// `location_ids[i]` or `lanes[i]`; a location that still replenishes an
    /// active one is `FailedPrecondition` naming both.
    pub fn plan_retirement(&self, request: &RetireRequest) -> Result<Vec<Retirement>, DomainError> {
        let mut out = BTreeSet::new();
        for (i, id) in request.part_ids.iter().enumerate() {
            if self.parts.contains_key(id) {
                out.insert(Retirement::Part(id.clone()));
            } else if !self.retired.parts.contains_key(id) {
                return Err(DomainError::not_found(
                    "part",
                    format!("{id} (part_ids[{i}])"),
                ));
            }
        }
        let leaving: BTreeSet<&str> = request.location_ids.iter().map(String::as_str).collect();
        for (i, id) in request.location_ids.iter().enumerate() {
            if self.locations.contains_key(id) {
                self.check_no_active_children(id, &leaving)?;
                out.insert(Retirement::Location(id.clone()));
                out.extend(
                    self.lanes
                        .values()
                        .filter(|l| &l.from == id || &l.to == id)
                        .map(|l| Retirement::Lane(l.key())),
                );
            } else if !self.retired.locations.contains_key(id) {
                return Err(DomainError::not_found(
                    "location",
                    format!("{id} (location_ids[{i}])"),
                ));
            }
        }
        for (i, key) in request.lanes.iter().enumerate() {
            if self.lanes.contains_key(key) {
                out.insert(Retirement::Lane(key.clone()));
            } else if !self.retired.lanes.contains_key(key) {
                let (from, to, mode, kind) = key;
                return Err(DomainError::not_found(
                    "lane",
                    format!("{from} -> {to} {mode:?} {kind:?} (lanes[{i}])"),
                ));
            }
        }
        Ok(out.into_iter().collect())
    }

    fn check_no_active_children(
        &self,
        id: &str,
        leaving: &BTreeSet<&str>,
    ) -> Result<(), DomainError> {
        let children: Vec<&str> = self
            .locations
            .values()
            .filter(|l| l.replenishment_source.as_deref() == Some(id))
            .filter(|l| !leaving.contains(l.id.as_str()))
            .map(|l| l.id.as_str())
            .collect();
        if children.is_empty() {
            return Ok(());
        }
        Err(DomainError::FailedPrecondition(format!(
            "cannot retire location {id}: it replenishes {}; give them another source first",
            name_some(&children)
        )))
    }
}

fn name_some(items: &[impl std::fmt::Display]) -> String {
    let shown: Vec<String> = items
        .iter()
        .take(MAX_BLOCKERS_NAMED)
        .map(ToString::to_string)
        .collect();
    match items.len().saturating_sub(MAX_BLOCKERS_NAMED) {
        0 => shown.join(", "),
        more => format!("{} and {more} more", shown.join(", ")),
    }
}

/// What still holds stock, reservations or units in transit in `balances`,
/// one phrase per item (`3 on hand of P-1 at DEP-A`, `2 in transit of P-1 to
/// STR-1 (shipment S7)`); `in_transit_from` keeps only shipments from that
/// location (for a lane), `None` keeps every stock figure.
pub fn stock_blockers(balances: &[Balance], in_transit_from: Option<&str>) -> Vec<String> {
    let mut out = Vec::new();
    for b in balances {
        if in_transit_from.is_none() && b.on_hand() > 0 {
            out.push(format!(
                "{} on hand of {} at {} ({} reserved)",
                b.on_hand(),
                b.part_id,
                b.location_id,
                b.reserved
            ));
        }
        for s in &b.inbound {
            if in_transit_from.is_none_or(|from| s.from_location_id == from) && s.quantity > 0 {
                out.push(format!(
                    "{} in transit of {} from {} to {} (shipment {})",
                    s.quantity, b.part_id, s.from_location_id, b.location_id, s.shipment_id
                ));
            }
        }
    }
    out
}

/// The refusal for `what` while `blockers` remain; `None` when there are none.
pub fn refusal(what: &str, blockers: &[String]) -> Option<DomainError> {
    (!blockers.is_empty()).then(|| {
        DomainError::FailedPrecondition(format!(
            "cannot retire {what} while stock remains: {}",
            name_some(blockers)
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::ledger::InboundShipment;

    #[test]
    fn blockers_name_stock_and_shipments() {
        let balance = Balance {
            part_id: "P".into(),
            location_id: "S".into(),
            available: 2,
            reserved: 1,
            inbound: vec![InboundShipment {
                shipment_id: "S7".into(),
                from_location_id: "D".into(),
                quantity: 4,
                expected_arrival: None,
            }],
        };
        let all = stock_blockers(std::slice::from_ref(&balance), None);
        assert_eq!(
            all,
            [
                "3 on hand of P at S (1 reserved)",
                "4 in transit of P from D to S (shipment S7)"
            ]
        );
        assert!(stock_blockers(std::slice::from_ref(&balance), Some("X")).is_empty());
        let err = refusal("part P", &all).unwrap();
        assert!(err.to_string().contains("3 on hand of P at S"), "{err}");
    }
}

//! WhereIs: stock of a part and its interchangeable part numbers at every
//! location, nearest first.

use super::availability::{Availability, PartRelation, StockView};
use super::error::DomainError;
use super::ledger::InboundShipment;
use super::network::{LocationId, LocationKind, PartId, Qty, great_circle_km};

/// Most locations one WhereIs answer may list when the caller sets no limit:
/// every location for a chain of a few part numbers fits well under a 4 MiB message.
pub const MAX_WHERE_IS_LOCATIONS: usize = 10_000;

/// Most rows one WhereIsBatch answer may hold over all its lines: about 150
/// bytes a row, 50,000 rows stay well inside the 16 MiB message limit. A
/// line that would pass it is refused on its own (`OUT_OF_RANGE` naming its
/// `max_locations`), so the caller can ask for fewer rows per line.
pub const MAX_WHERE_IS_BATCH_ROWS: usize = 50_000;

/// A WhereIs request.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct WhereIsQuery {
    /// The part asked for.
    pub part_id: PartId,
    /// Sort by great-circle distance from here; without it rows go in part offer
    /// order, then by location id.
    pub near_location_id: Option<LocationId>,
    /// Only the asked part number, no successors or two-way predecessors.
    pub exact_part_only: bool,
    /// Skip locations with nothing on hand or inbound.
    pub only_with_stock: bool,
    /// At most this many rows; 0 means [`MAX_WHERE_IS_LOCATIONS`].
    pub max_locations: usize,
}

/// Stock of one part number at one location.
#[derive(Debug, Clone, PartialEq)]
pub struct LocationStock {
    /// The part number held.
    pub part_id: PartId,
    /// Its relation to the part asked for.
    pub relation: PartRelation,
    /// The location.
    pub location_id: LocationId,
    /// Display name.
    pub location_name: String,
    /// Echelon.
    pub location_kind: LocationKind,
    /// Great-circle distance from `near_location_id`, when given.
    pub distance_km: Option<f64>,
    /// available + reserved.
    pub on_hand: Qty,
    /// Held by pending reservations.
    pub reserved: Qty,
    /// Free stock (includes protected units).
    pub available: Qty,
    /// Units of `available` only critical demand may take.
    pub protected: Qty,
    /// Units in transit to this location.
    pub in_transit: Qty,
    /// The shipments on their way, with expected arrivals.
    pub inbound: Vec<InboundShipment>,
}

/// A WhereIs answer.
#[derive(Debug, Clone, PartialEq)]
pub struct WhereIsAnswer {
    /// The part numbers considered, in offer order (same, successors, two-way predecessors).
    pub part_ids: Vec<PartId>,
    /// Rows, nearest first (ties: part offer order, then location id).
    pub locations: Vec<LocationStock>,
}

impl Availability {
    /// Lists stock of the part and its interchangeable part numbers per location.
    ///
    /// Errors with `NotFound` for an unknown part or near location.
    pub fn where_is(
        &self,
        query: &WhereIsQuery,
        stock: &dyn StockView,
    ) -> Result<WhereIsAnswer, DomainError> {
        let candidates = self.candidate_parts(&query.part_id, query.exact_part_only)?;
        let near = match &query.near_location_id {
            Some(id) => Some(
                self.router
                    .node(id)
                    .ok_or_else(|| DomainError::not_found("location", id.clone()))?,
            ),
            None => None,
        };
        let near_site = near.map(|node| self.router.site(node));
        let mut rows = Vec::new();
        for (rank, candidate) in candidates.iter().enumerate() {
            let mut present = vec![false; self.router.location_count()];
            stock.visit_balances(&candidate.part_id, &mut |balance| {
                let Some(node) = self.router.node(&balance.location_id) else {
                    return; // A ledger row for a location the network no longer has.
                };
                present[node.index()] = true;
                let in_transit = balance.in_transit();
                if query.only_with_stock && balance.on_hand() == 0 && in_transit == 0 {
                    return;
                }
                let site = self.router.site(node);
                let row = LocationStock {
                    part_id: candidate.part_id.clone(),
                    relation: candidate.relation,
                    location_id: site.id.clone(),
                    location_name: site.name.clone(),
                    location_kind: site.kind,
                    distance_km: near_site.map(|near| {
                        great_circle_km(
                            near.latitude_deg,
                            near.longitude_deg,
                            site.latitude_deg,
                            site.longitude_deg,
                        )
                    }),
                    on_hand: balance.on_hand(),
                    reserved: balance.reserved,
                    available: balance.available,
                    protected: stock
                        .protected_quantity(&candidate.part_id, &balance.location_id)
                        .min(balance.available),
                    in_transit,
                    inbound: balance.inbound.clone(),
                };
                rows.push((rank, row));
            });
            if !query.only_with_stock {
                let missing = self
                    .router
                    .sites()
                    .filter(|(node, _)| !present[node.index()])
                    .map(|(_, site)| (rank, empty_row(candidate, site, near_site)));
                rows.extend(missing);
            }
        }
        rows.sort_by(|(rank_a, a), (rank_b, b)| {
            let distance_a = a.distance_km.unwrap_or(0.0);
            let distance_b = b.distance_km.unwrap_or(0.0);
            distance_a
                .total_cmp(&distance_b)
                .then(rank_a.cmp(rank_b))
                .then_with(|| a.location_id.cmp(&b.location_id))
        });
        let limit = match query.max_locations {
            0 => MAX_WHERE_IS_LOCATIONS,
            n => n.min(MAX_WHERE_IS_LOCATIONS),
        };
        Ok(WhereIsAnswer {
            part_ids: candidates.into_iter().map(|c| c.part_id).collect(),
            locations: rows.into_iter().take(limit).map(|(_, row)| row).collect(),
        })
    }
}

fn empty_row(
    candidate: &super::availability::CandidatePart,
    site: &super::routing::Site,
    near: Option<&super::routing::Site>,
) -> LocationStock {
    LocationStock {
        part_id: candidate.part_id.clone(),
        relation: candidate.relation,
        location_id: site.id.clone(),
        location_name: site.name.clone(),
        location_kind: site.kind,
        distance_km: near.map(|near| {
            great_circle_km(
                near.latitude_deg,
                near.longitude_deg,
                site.latitude_deg,
                site.longitude_deg,
            )
        }),
        on_hand: 0,
        reserved: 0,
        available: 0,
        protected: 0,
        in_transit: 0,
        inbound: Vec::new(),
    }
}

//! `spares demo`: a realistic, seeded network built from real cities.
//!
//! About 3 factory depots, 12 regional warehouses and 300 stores in North America
//! and Europe (cities from a vendored GeoNames subset, CC BY 4.0, see `NOTICE`);
//! lanes with transit times from great-circle distance and mode; local time
//! zones, national public holidays for the current and next year, cut-offs; an
//! installed base per store; about 20,000 parts with intermittent demand,
//! criticality classes and supersession chains; base-stock policies; and seeded
//! stock as ledger movements.
//!
//! [`build_demo`] is pure: the same config, seed and `now` give the same network.
//! All randomness comes from one `StdRng` (ChaCha12, portable across platforms)
//! seeded with `DemoConfig::seed`, drawn in a fixed order.

mod catalog;
mod geography;
mod holidays;
mod stock;

pub use geography::{DEPOTS, REGIONALS};
pub use holidays::{COUNTRIES, easter_sunday, public_holidays};
pub use stock::{DEMAND_SERIES_LIMIT, HISTORY_MONTHS, TRANSFERS_IN_TRANSIT, poisson_base_stock};

use crate::domain::DomainError;
use crate::domain::ledger::{MovementCommand, MovementKind};
use crate::domain::network::{
    Criticality, DemandSeries, Fleet, Lane, LaneKind, Location, LocationKind, MachineModel,
    Network, Part, Policy,
};
use crate::import::{ImportBundle, StockRow};
use crate::store::NetworkRecord;
use jiff::Timestamp;
use jiff::tz::TimeZone;
use rand::SeedableRng;
use rand::rngs::StdRng;
use std::collections::BTreeMap;

/// Most parts a demo may have: 200,000 builds in well under a minute and fits in
/// memory several times over; beyond that a demo stops being a demo.
pub const MAX_DEMO_PARTS: usize = 200_000;

/// What to build.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DemoConfig {
    /// Seed of every random draw; print it so a run can be replayed.
    pub seed: u64,
    /// Number of parts (default 20,000; at most [`MAX_DEMO_PARTS`]).
    pub parts: usize,
    /// Number of stores (default 300; limited by the vendored cities, about 380).
    pub stores: usize,
    /// Number of regional warehouses (default 12, at most 12).
    pub regionals: usize,
    /// Number of factory depots (default 3, at most 3).
    pub depots: usize,
}

impl Default for DemoConfig {
    fn default() -> Self {
        Self {
            seed: 1,
            parts: 20_000,
            stores: 300,
            regionals: REGIONALS.len(),
            depots: DEPOTS.len(),
        }
    }
}

/// Why a demo could not be built.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DemoError {
    /// A config value is out of range.
    #[error("demo config {field}: {reason}")]
    Config {
        /// The offending field.
        field: &'static str,
        /// The allowed range.
        reason: String,
    },
    /// The vendored city file is unreadable (a build problem, not a user error).
    #[error("vendored city data: {0}")]
    CityData(String),
    /// Date arithmetic left jiff's range (only with an absurd `now`).
    #[error("demo dates: {0}")]
    Time(String),
    /// The built network failed validation: a bug in the generator.
    #[error("demo network failed validation: {0}")]
    Invalid(#[from] DomainError),
}

/// A built demo: master data, policies and the movements that seed the ledger.
#[derive(Debug, Clone, PartialEq)]
pub struct DemoNetwork {
    /// The seed it was built from.
    pub seed: u64,
    /// Depots, then regionals, then stores.
    pub locations: Vec<Location>,
    /// All lanes.
    pub lanes: Vec<Lane>,
    /// The part catalogue.
    pub parts: Vec<Part>,
    /// Machine models with their parts.
    pub machine_models: Vec<MachineModel>,
    /// Installed base per store.
    pub fleets: Vec<Fleet>,
    /// Monthly demand history for a sample of part-stores.
    pub demand: Vec<DemandSeries>,
    /// Base-stock policies per part and location.
    pub policies: Vec<Policy>,
    /// Receipts first, then transfers in transit; record them in this order.
    pub movements: Vec<MovementCommand>,
}

fn check_config(config: &DemoConfig) -> Result<(), DemoError> {
    let limits = [
        ("depots", config.depots, 1, DEPOTS.len()),
        ("regionals", config.regionals, 1, REGIONALS.len()),
        ("parts", config.parts, 1, MAX_DEMO_PARTS),
        ("stores", config.stores, 1, usize::MAX),
    ];
    for (field, value, low, high) in limits {
        if !(low..=high).contains(&value) {
            return Err(DemoError::Config {
                field,
                reason: format!("{value} is not in {low}..={high}"),
            });
        }
    }
    Ok(())
}

/// Builds the demo network for `config`, with holidays for the year of `now` (UTC)
/// and the next, demand history for the 24 months before `now`'s month, and
/// transfers arriving after `now`. The result passes every `Network::check_*`.
///
/// Errors: [`DemoError::Config`] for a value out of range (e.g. more stores than
/// the vendored cities allow); the other variants indicate a bug or a `now`
/// outside jiff's range.
pub fn build_demo(config: &DemoConfig, now: Timestamp) -> Result<DemoNetwork, DemoError> {
    check_config(config)?;
    let mut rng = StdRng::seed_from_u64(config.seed);
    let year = now.to_zoned(TimeZone::UTC).year();
    let sites = geography::sites(
        &mut rng,
        config.depots,
        config.regionals,
        config.stores,
        (year, year.saturating_add(1)),
    )?;
    let lanes = geography::lanes(&mut rng, &sites);
    let parts = catalog::parts(&mut rng, config.parts)?;
    let machine_models = catalog::machine_models(&mut rng, &parts)?;
    let store_ids: Vec<String> = sites
        .stores()
        .map(|s| sites.locations[s].id.clone())
        .collect();
    let fleets = catalog::fleets(&mut rng, &store_ids, &machine_models);
    let rates = stock::rates(&mut rng, &sites, &parts, &machine_models, &fleets)?;
    let demand = stock::demand(&mut rng, &sites, &parts, &rates, now)?;
    let policies = stock::policies(&mut rng, &sites, &parts, &lanes, &rates);
    let movements = stock::movements(&mut rng, config.seed, &sites, &lanes, &policies, now)?;
    let demo = DemoNetwork {
        seed: config.seed,
        locations: sites.locations,
        lanes,
        parts,
        machine_models,
        fleets,
        demand,
        policies,
        movements,
    };
    demo.network()?;
    Ok(demo)
}

impl DemoNetwork {
    /// Runs every `Network::check_*` on the demo's batches in dependency order and
    /// returns the resulting network.
    ///
    /// Errors: the first validation failure, naming the batch field.
    pub fn network(&self) -> Result<Network, DomainError> {
        let mut network = Network::default();
        network.check_locations(&self.locations)?;
        network.locations = self
            .locations
            .iter()
            .map(|l| (l.id.clone(), l.clone()))
            .collect();
        network.check_lanes(&self.lanes)?;
        network.lanes = self.lanes.iter().map(|l| (l.key(), l.clone())).collect();
        network.check_parts(&self.parts)?;
        network.parts = self
            .parts
            .iter()
            .map(|p| (p.id.clone(), p.clone()))
            .collect();
        network.check_installed_base(&self.machine_models, &self.fleets)?;
        network.machine_models = self
            .machine_models
            .iter()
            .map(|m| (m.id.clone(), m.clone()))
            .collect();
        network.fleets = self
            .fleets
            .iter()
            .map(|f| {
                (
                    (f.store_location_id.clone(), f.machine_model_id.clone()),
                    f.clone(),
                )
            })
            .collect();
        network.check_demand(&self.demand)?;
        network.demand = self
            .demand
            .iter()
            .map(|d| ((d.part_id.clone(), d.location_id.clone()), d.clone()))
            .collect();
        network.check_policies(&self.policies)?;
        network.policies = self
            .policies
            .iter()
            .map(|p| ((p.part_id.clone(), p.location_id.clone()), p.clone()))
            .collect();
        Ok(network)
    }

    /// The master data as store records, in the order they must be saved
    /// (locations before the lanes and fleets that refer to them, and so on).
    pub fn records(&self) -> Vec<NetworkRecord> {
        let mut records = Vec::new();
        records.extend(self.locations.iter().cloned().map(NetworkRecord::Location));
        records.extend(self.lanes.iter().cloned().map(NetworkRecord::Lane));
        records.extend(self.parts.iter().cloned().map(NetworkRecord::Part));
        records.extend(
            self.machine_models
                .iter()
                .cloned()
                .map(NetworkRecord::MachineModel),
        );
        records.extend(self.fleets.iter().cloned().map(NetworkRecord::Fleet));
        records.extend(self.demand.iter().cloned().map(NetworkRecord::Demand));
        records.extend(self.policies.iter().cloned().map(NetworkRecord::Policy));
        records
    }

    /// Units on hand (available) per part and location once every movement is
    /// recorded; stock in transit is not on hand anywhere. Sorted by (part, location).
    pub fn stock_on_hand(&self) -> Vec<StockRow> {
        let mut on_hand: BTreeMap<(&str, &str), i64> = BTreeMap::new();
        for m in &self.movements {
            let sign = match m.kind {
                MovementKind::Receipt
                | MovementKind::TransferReceive
                | MovementKind::Adjustment => 1,
                MovementKind::Issue | MovementKind::TransferShip | MovementKind::Scrap => -1,
                // The demo seeds stock by movements only; it records no counts.
                MovementKind::Count => 0,
            };
            *on_hand.entry((&m.part_id, &m.location_id)).or_insert(0) += sign * m.quantity;
        }
        on_hand
            .into_iter()
            .filter(|(_, q)| *q > 0)
            .map(|((part, location), q)| StockRow {
                at: (0, 0),
                part_id: part.to_string(),
                location_id: location.to_string(),
                on_hand: q.unsigned_abs(),
            })
            .collect()
    }

    /// The demo as an import bundle (for `export_dir`); stock is on hand only.
    pub fn bundle(&self) -> ImportBundle {
        ImportBundle {
            locations: self.locations.clone(),
            lanes: self.lanes.clone(),
            parts: self.parts.clone(),
            machine_models: self.machine_models.clone(),
            fleets: self.fleets.clone(),
            demand: self.demand.clone(),
            policies: self.policies.clone(),
            stock: self.stock_on_hand(),
            stock_file: "stock.csv".into(),
            ..ImportBundle::default()
        }
    }

    /// A part and a store to show off: a critical part stocked at the store's
    /// regional warehouse and at a lateral neighbour of the store, else any part
    /// stocked at a store's regional warehouse. Returns (part id, store id).
    pub fn showcase(&self) -> Option<(String, String)> {
        let on_hand: std::collections::HashSet<(String, String)> = self
            .stock_on_hand()
            .into_iter()
            .map(|s| (s.part_id, s.location_id))
            .collect();
        let has = |part: &str, location: &str| {
            on_hand.contains(&(part.to_string(), location.to_string()))
        };
        let critical: std::collections::HashSet<&str> = self
            .parts
            .iter()
            .filter(|p| p.criticality == Criticality::Critical)
            .map(|p| p.id.as_str())
            .collect();
        let mut fallback = None;
        for store in self
            .locations
            .iter()
            .filter(|l| l.kind == LocationKind::Store)
        {
            let Some(regional) = store.replenishment_source.as_deref() else {
                continue;
            };
            let neighbours: Vec<&str> = self
                .lanes
                .iter()
                .filter(|l| l.kind == LaneKind::Lateral && l.to == store.id)
                .map(|l| l.from.as_str())
                .collect();
            for policy in self.policies.iter().filter(|p| p.location_id == regional) {
                let part = policy.part_id.as_str();
                if !has(part, regional) {
                    continue;
                }
                fallback.get_or_insert_with(|| (part.to_string(), store.id.clone()));
                if critical.contains(part) && neighbours.iter().any(|n| has(part, n)) {
                    return Some((part.to_string(), store.id.clone()));
                }
            }
        }
        fallback
    }
}

/// Commands a user can paste to explore a running demo at `addr` (host:port),
/// using real ids from the demo: a part stocked near a store.
pub fn example_calls(demo: &DemoNetwork, addr: &str) -> String {
    let (part, store) = demo
        .showcase()
        .unwrap_or_else(|| ("P-100000".to_string(), "STR-0001".to_string()));
    let regional = demo
        .locations
        .iter()
        .find(|l| l.id == store)
        .and_then(|l| l.replenishment_source.as_deref())
        .unwrap_or("RWH-ATL");
    format!(
        "# Demo network (seed {seed}): {locations} locations, {parts} parts, {movements} stock movements.\n\
         # gRPC (server reflection is on):\n\
         grpcurl -plaintext {addr} list\n\
         grpcurl -plaintext {addr} describe spares.v1.AvailabilityService\n\
         grpcurl -plaintext -H \"x-api-key: $SPARES_API_KEY\" -d '{{\"part_id\":\"{part}\",\"near_location_id\":\"{store}\"}}' {addr} spares.v1.AvailabilityService/WhereIs\n\
         # CLI (reads the key from SPARES_API_KEY, or pass --api-key):\n\
         spares stock {part}\n\
         spares stock {part} --at {regional}\n\
         spares where {part} --near {store}\n\
         spares promise {part} 2 --to {store}\n",
        seed = demo.seed,
        locations = demo.locations.len(),
        parts = demo.parts.len(),
        movements = demo.movements.len(),
    )
}

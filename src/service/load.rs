//! Bulk loading of a whole network (from files or the demo) through the same
//! validated upserts the API uses, in batches within the named limits, ordered
//! so references always point at records already loaded.

use super::Spares;
use crate::domain::ledger::MovementCommand;
use crate::domain::network::{Location, Part};
use crate::import::ImportBundle;
use crate::store::StoreError;
use std::collections::HashMap;

/// What a load did.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LoadReport {
    /// Locations upserted.
    pub locations: usize,
    /// Lanes upserted.
    pub lanes: usize,
    /// Parts upserted.
    pub parts: usize,
    /// Machine models and fleets upserted.
    pub installed_base: usize,
    /// Demand series upserted.
    pub demand_series: usize,
    /// Policies upserted.
    pub policies: usize,
    /// Supplier lead times, class costs and demand rates upserted.
    pub planning_inputs: usize,
    /// Movements recorded (replays of earlier loads included).
    pub movements: usize,
}

/// Depth of each location in the supply tree (0 at the top), so sources load first.
fn by_supply_depth(locations: &[Location]) -> Vec<Location> {
    let source: HashMap<&str, Option<&str>> = locations
        .iter()
        .map(|l| (l.id.as_str(), l.replenishment_source.as_deref()))
        .collect();
    let depth = |id: &str| {
        let mut d = 0usize;
        let mut current = source.get(id).copied().flatten();
        while let Some(next) = current {
            d += 1;
            if d > locations.len() {
                break; // A cycle; validation will name it.
            }
            current = source.get(next).copied().flatten();
        }
        d
    };
    let mut sorted = locations.to_vec();
    sorted.sort_by_cached_key(|l| depth(&l.id));
    sorted
}

/// Parts ordered so every successor loads before the parts it supersedes.
fn successors_first(parts: &[Part]) -> Vec<Part> {
    let successor: HashMap<&str, Option<&str>> = parts
        .iter()
        .map(|p| (p.id.as_str(), p.successor.as_deref()))
        .collect();
    let chain = |id: &str| {
        let mut n = 0usize;
        let mut current = successor.get(id).copied().flatten();
        while let Some(next) = current {
            n += 1;
            if n > parts.len() {
                break;
            }
            current = successor.get(next).copied().flatten();
        }
        n
    };
    let mut sorted = parts.to_vec();
    sorted.sort_by_cached_key(|p| chain(&p.id));
    sorted
}

impl Spares {
    /// Loads master data in dependency order and batches. Each batch is
    /// validated and applied atomically; an error names the batch's record.
    pub fn load_master_data(&self, bundle: &ImportBundle) -> Result<LoadReport, StoreError> {
        let size = self.limits().max_batch_items.max(1);
        let mut report = LoadReport::default();
        for chunk in by_supply_depth(&bundle.locations).chunks(size) {
            report.locations += self.upsert_locations(chunk.to_vec())?;
        }
        for chunk in bundle.lanes.chunks(size) {
            report.lanes += self.upsert_lanes(chunk.to_vec())?;
        }
        for chunk in successors_first(&bundle.parts).chunks(size) {
            report.parts += self.upsert_parts(chunk.to_vec())?;
        }
        report.installed_base +=
            self.upsert_installed_base(bundle.machine_models.clone(), Vec::new())?;
        for chunk in bundle.fleets.chunks(size) {
            report.installed_base += self.upsert_installed_base(Vec::new(), chunk.to_vec())?;
        }
        for chunk in bundle.demand.chunks(size) {
            report.demand_series += self.upsert_demand(chunk.to_vec())?;
        }
        for chunk in bundle.policies.chunks(size) {
            report.policies += self.set_policies(chunk.to_vec())?;
        }
        for chunk in bundle.supplier_lead_times.chunks(size) {
            report.planning_inputs += self.upsert_supplier_lead_times(chunk.to_vec())?;
        }
        report.planning_inputs +=
            self.upsert_criticality_costs(bundle.criticality_costs.clone())?;
        for chunk in bundle.demand_rates.chunks(size) {
            report.planning_inputs += self.upsert_demand_rates(chunk.to_vec())?;
        }
        Ok(report)
    }

    /// Records movements in batches (one flush per batch).
    pub fn load_movements(&self, movements: &[MovementCommand]) -> Result<usize, StoreError> {
        let size = self.limits().max_batch_items.clamp(1, 10_000);
        let mut count = 0;
        for chunk in movements.chunks(size) {
            count += self.record_movements(chunk.to_vec())?.len();
        }
        Ok(count)
    }

    /// Records the bundle's stock rows as receipts keyed by a hash of the rows,
    /// so loading the same file twice replays instead of adding twice.
    pub fn load_stock(&self, bundle: &ImportBundle) -> Result<usize, StoreError> {
        self.load_movements(&bundle.stock_receipts(&stock_key_prefix(bundle)))
    }
}

/// `import-<hash>`: FNV-1a over the stock rows, stable across runs and platforms.
pub fn stock_key_prefix(bundle: &ImportBundle) -> String {
    let mut hash: u64 = 0xcbf2_9ce4_8422_2325;
    for row in &bundle.stock {
        for byte in format!(
            "{}\u{1f}{}\u{1f}{}\n",
            row.part_id, row.location_id, row.on_hand
        )
        .bytes()
        {
            hash ^= u64::from(byte);
            hash = hash.wrapping_mul(0x0100_0000_01b3);
        }
    }
    format!("import-{hash:016x}")
}

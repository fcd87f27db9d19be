//! Bulk loading of a whole network (from files or the demo) through the same
//! validated upserts the API uses, in batches within the named limits, ordered
//! so references always point at records already loaded.

use super::Spares;
use crate::domain::audit::{AuditEvent, AuditFilter, MovementFilter};
use crate::domain::ledger::{
    Actor, AuditReport, Balance, LedgerEntry, MovementCommand, MovementOutcome, PostCommand,
    Reservation, ReservationFilter, ReserveCommand, VoidCommand,
};
use crate::domain::network::{Location, Network, Part};
use crate::import::{ImportBundle, ImportError};
use crate::store::{NetworkRecord, Store, StoreError};
use jiff::Timestamp;
use std::collections::HashMap;
use std::sync::Arc;

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

    /// Records movements by `actor` in batches (one flush per batch).
    pub fn load_movements(
        &self,
        actor: &Actor,
        movements: &[MovementCommand],
    ) -> Result<usize, StoreError> {
        let size = self.limits().max_batch_items.clamp(1, 10_000);
        let mut count = 0;
        for chunk in movements.chunks(size) {
            count += self.record_movements(actor, chunk.to_vec())?.len();
        }
        Ok(count)
    }

    /// Imports a validated bundle: checks it whole against the data already
    /// there (master data by a dry run of the very same upserts on a scratch
    /// copy of the network, stock counts against the units reserved now), and
    /// only then writes master data and the counts. Returns what was loaded
    /// and the number of counts that changed stock.
    ///
    /// Errors: [`ImportFailure::Invalid`] with every problem found, file, line
    /// and column, and nothing written; [`ImportFailure::Store`] if storage
    /// fails part-way. Every step is idempotent (upserts replace, counts set a
    /// figure, and a retried count replays its key), so running the same
    /// import again after a failure completes it without doubling anything.
    pub fn import(
        &self,
        actor: &Actor,
        bundle: &ImportBundle,
    ) -> Result<(LoadReport, usize), ImportFailure> {
        self.check_master_data(bundle)?;
        let counts = self.stock_counts(bundle)?;
        let report = self.load_master_data(bundle)?;
        let counted = self.load_movements(actor, &counts)?;
        Ok((report, counted))
    }

    /// The bundle's stock rows as count commands against the stock now (see
    /// [`ImportBundle::stock_counts`]). Errors: every count below the units
    /// reserved there, with its file, line and column.
    pub fn stock_counts(&self, bundle: &ImportBundle) -> Result<Vec<MovementCommand>, ImportError> {
        let store = self.store().clone();
        let mut failure = None;
        let counts = bundle.stock_counts(|part, location| match store.balance(part, location) {
            Ok(balance) => (balance.on_hand(), balance.reserved),
            Err(error) => {
                failure.get_or_insert(error);
                (0, 0)
            }
        })?;
        match failure {
            Some(error) => Err(ImportError::whole_file(
                &bundle.stock_file,
                format!("reading stock on hand: {error}"),
            )),
            None => Ok(counts),
        }
    }

    /// Runs the master-data load on a scratch copy of the network that writes
    /// nothing, so every validation the real load does runs before anything
    /// is written. Errors name the file kind of the refused batch.
    pub fn check_master_data(&self, bundle: &ImportBundle) -> Result<(), ImportError> {
        let scratch = DryRunStore::new((*self.network()).clone());
        let dry = Spares::new(
            Arc::new(scratch),
            self.clock().clone(),
            self.limits().clone(),
        )
        .map_err(|e| ImportError::whole_file("import", e.to_string()))?;
        dry.load_master_data(bundle).map(|_| ()).map_err(|error| {
            let message = error.to_string();
            let kind = message
                .split(['[', ' ', ':'])
                .next()
                .filter(|k| k.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
                .unwrap_or("import")
                .to_string();
            ImportError::whole_file(
                &kind,
                format!("refused against the data already there: {message}"),
            )
        })
    }
}

/// Why an import did not complete.
#[derive(Debug, thiserror::Error)]
pub enum ImportFailure {
    /// The files, or their fit with the data already there, are wrong; nothing
    /// was written.
    #[error(transparent)]
    Invalid(#[from] ImportError),
    /// Storage failed part-way; run the import again to complete it.
    #[error("{0}; nothing is doubled by running the same import again to complete it")]
    Store(#[from] StoreError),
}

/// A store for dry runs: it holds a network, accepts master-data writes and
/// keeps none of them (the dry-run [`Spares`] keeps its own network in memory);
/// it has no ledger.
struct DryRunStore {
    network: Network,
}

impl DryRunStore {
    fn new(network: Network) -> Self {
        Self { network }
    }

    fn no_ledger<T>() -> Result<T, StoreError> {
        Err(StoreError::Storage("a dry run has no ledger".into()))
    }
}

impl Store for DryRunStore {
    fn load_network(&self) -> Result<Network, StoreError> {
        Ok(self.network.clone())
    }
    fn save_network_records(&self, _: &[NetworkRecord]) -> Result<(), StoreError> {
        Ok(())
    }
    fn record_movements(
        &self,
        _: &Actor,
        _: &[MovementCommand],
        _: Timestamp,
    ) -> Result<Vec<MovementOutcome>, StoreError> {
        Self::no_ledger()
    }
    fn reserve(
        &self,
        _: &Actor,
        _: &[ReserveCommand],
        _: Timestamp,
    ) -> Result<Vec<Reservation>, StoreError> {
        Self::no_ledger()
    }
    fn post_reservation(
        &self,
        _: &Actor,
        _: &PostCommand,
        _: Timestamp,
    ) -> Result<Reservation, StoreError> {
        Self::no_ledger()
    }
    fn void_reservation(
        &self,
        _: &Actor,
        _: &VoidCommand,
        _: Timestamp,
    ) -> Result<Reservation, StoreError> {
        Self::no_ledger()
    }
    fn movements(&self, _: &MovementFilter) -> Result<(Vec<LedgerEntry>, Option<u64>), StoreError> {
        Ok((Vec::new(), None))
    }
    fn append_audit_event(&self, _: AuditEvent) -> Result<AuditEvent, StoreError> {
        Self::no_ledger()
    }
    fn audit_events(&self, _: &AuditFilter) -> Result<(Vec<AuditEvent>, Option<u64>), StoreError> {
        Ok((Vec::new(), None))
    }
    fn expire_reservations(&self, _: Timestamp) -> Result<Vec<Reservation>, StoreError> {
        Ok(Vec::new())
    }
    fn reservation(&self, _: &str) -> Result<Option<Reservation>, StoreError> {
        Ok(None)
    }
    fn reservations(&self, _: &ReservationFilter) -> Result<Vec<Reservation>, StoreError> {
        Ok(Vec::new())
    }
    fn balance(&self, part_id: &str, location_id: &str) -> Result<Balance, StoreError> {
        Ok(Balance {
            part_id: part_id.to_string(),
            location_id: location_id.to_string(),
            ..Balance::default()
        })
    }
    fn balances(&self, _: Option<&str>, _: Option<&str>) -> Result<Vec<Balance>, StoreError> {
        Ok(Vec::new())
    }
    fn read_ledger(
        &self,
        read: &mut dyn FnMut(&crate::domain::ledger::LedgerState),
    ) -> Result<u64, StoreError> {
        // Nothing was ever recorded: an empty ledger at sequence 0.
        read(&crate::domain::ledger::LedgerState::default());
        Ok(0)
    }
    fn audit(&self) -> Result<AuditReport, StoreError> {
        Ok(AuditReport::default())
    }
    fn put_record(&self, _: &str, _: &str, _: &[u8]) -> Result<(), StoreError> {
        Ok(())
    }
    fn records(&self, _: &str) -> Result<Vec<(String, Vec<u8>)>, StoreError> {
        Ok(Vec::new())
    }
    fn snapshot(
        &self,
        _: &mut dyn FnMut(crate::store::SnapshotItem) -> Result<(), StoreError>,
    ) -> Result<u64, StoreError> {
        Self::no_ledger()
    }
    fn restore(&self, _: Vec<crate::store::SnapshotItem>) -> Result<(), StoreError> {
        Self::no_ledger()
    }
    fn apply_plan(&self, _: &crate::domain::plans::PlanRecord) -> Result<(), StoreError> {
        Err(StoreError::Storage(
            "a dry run has no policy history".into(),
        ))
    }
    fn plan_history(&self) -> Result<Vec<crate::domain::plans::PlanHeader>, StoreError> {
        Ok(Vec::new())
    }
    fn plan(&self, _: &str) -> Result<Option<crate::domain::plans::PlanRecord>, StoreError> {
        Ok(None)
    }
}

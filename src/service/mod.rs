//! The application layer: the one place that combines the network, the ledger
//! and the clock. The gRPC handlers and the CLI both call it; it knows nothing
//! of protobuf.
//!
//! Writes to master data are serialised by one mutex (validate against the
//! current network, persist, then swap in the new `Arc<Network>`), so readers
//! never see a half-applied batch. Ledger writes go straight to the [`Store`],
//! which serialises and flushes them; the network check before them only reads.

pub mod availability;
pub mod backup;
mod followed;
pub mod jobs;
pub mod keys;
pub mod load;
mod plans;
pub mod work;

use crate::clock::Clock;
use crate::config::Limits;
use crate::domain::DomainError;
use crate::domain::ledger::{
    Actor, Balance, MovementCommand, MovementOutcome, PostCommand, Reservation, ReservationFilter,
    ReserveCommand, VoidCommand,
};
use crate::domain::network::{
    CriticalityCost, DemandRate, DemandSeries, Fleet, Lane, Location, MachineModel, Network, Part,
    Policy, Qty, SupplierLeadTime,
};
use crate::domain::retire::{RetireRequest, Retirement, refusal, stock_blockers};
use crate::store::{NetworkRecord, Store, StoreError};
use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, RwLock};
use tokio::sync::broadcast;

/// A change of stock at one part-location, published after the write is durable.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StockChanged {
    /// The part.
    pub part_id: String,
    /// The location.
    pub location_id: String,
    /// The reservation whose reserve, confirm, release or expiry made the
    /// change, as it stands after it (availability streams tell the
    /// principals who see it).
    pub reservation: Option<Arc<crate::domain::ledger::Reservation>>,
}

/// The protection thresholds of one network version (see
/// [`Spares::protection`]).
pub enum Protection {
    /// The availability engine's index: a lookup allocates nothing.
    Indexed(Arc<crate::domain::availability::Availability>),
    /// The network's policies, when the engine cannot be built for it.
    Policies(Arc<Network>),
}

impl Protection {
    /// Units of `part_id`'s available stock at `location_id` that routine
    /// demand may not take (0 without a policy).
    pub fn quantity(&self, part_id: &str, location_id: &str) -> Qty {
        match self {
            Self::Indexed(engine) => engine.protected_quantity(part_id, location_id),
            Self::Policies(network) => network
                .policies
                .get(&(part_id.to_string(), location_id.to_string()))
                .map_or(0, |p| p.protected_quantity),
        }
    }
}

/// The routing engine and the network snapshot it was built from.
type AvailabilityCache =
    Mutex<Option<(Arc<Network>, Arc<crate::domain::availability::Availability>)>>;

/// The running application: network, ledger, clock and change feed.
pub struct Spares {
    availability_cache: AvailabilityCache,
    jobs: Arc<jobs::Jobs>,
    work: Arc<work::WorkPool>,
    store: Arc<dyn Store>,
    network: RwLock<Arc<Network>>,
    master_data_writer: Mutex<()>,
    clock: Arc<dyn Clock>,
    changes: broadcast::Sender<StockChanged>,
    closing: tokio::sync::watch::Sender<bool>,
    limits: Limits,
    key_ring: Arc<crate::auth::keys::KeyRing>,
    keys_writer: Mutex<()>,
    /// The store's change counters as of the state held in memory
    /// ([`Store::change_counters`]; empty for a store only this process
    /// opens).
    seen_counters: Mutex<BTreeMap<String, u64>>,
}

/// What [`Spares::refresh_shared_state`] reloaded.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Refreshed {
    /// The master data and policies (another server changed them).
    pub network: bool,
    /// The API keys (another server created or revoked one).
    pub api_keys: bool,
}

impl Spares {
    /// Opens the application over a store, loading the network into memory.
    pub fn new(
        store: Arc<dyn Store>,
        clock: Arc<dyn Clock>,
        limits: Limits,
    ) -> Result<Self, StoreError> {
        // The counters are read before what they count, so a change made in
        // between is reloaded by the next refresh rather than missed.
        let seen_counters = store.change_counters()?.into_iter().collect();
        let network = store.load_network()?;
        let (changes, _) = broadcast::channel(limits.watch_buffer.max(16));
        let pool = jobs::JobPoolLimits {
            workers: limits.job_workers,
            queue: limits.job_queue,
        };
        // A store several servers share leases each job to the server
        // running it; otherwise a restart fails the jobs it cut off.
        let sharing = store.job_leases().map(|leases| jobs::JobSharing {
            leases,
            lease: limits.work_lease,
            poll: limits.work_poll,
        });
        let jobs = Arc::new(jobs::Jobs::open(
            store.clone(),
            clock.clone(),
            pool,
            sharing,
        )?);
        // A store several servers share hands out its own queue; otherwise
        // this process keeps its units in memory and computes them itself.
        let queue = store.work_queue().unwrap_or_else(|| {
            Arc::new(crate::store::work::LocalWorkQueue::new())
                as Arc<dyn crate::store::work::WorkQueue>
        });
        let work = work::WorkPool::start(
            queue,
            work::WorkSettings {
                threads: limits.work_threads,
                lease: limits.work_lease,
                poll: limits.work_poll,
            },
        )?;
        let key_ring = Arc::new(crate::auth::keys::KeyRing::new(keys::load_keys(
            store.as_ref(),
        )?));
        // Other servers sharing the store publish their own writes; this
        // one's watch streams learn of them from its ledger follower.
        store.observe_other_writers(followed::observer(Arc::downgrade(&store), changes.clone()));
        Ok(Self {
            availability_cache: Mutex::new(None),
            jobs,
            work,
            store,
            network: RwLock::new(Arc::new(network)),
            master_data_writer: Mutex::new(()),
            clock,
            changes,
            closing: tokio::sync::watch::Sender::new(false),
            limits,
            key_ring,
            keys_writer: Mutex::new(()),
            seen_counters: Mutex::new(seen_counters),
        })
    }

    /// Reloads the shared state another server on the same store changed
    /// since this one last looked: the master data and policies, and the
    /// API keys (so a key revoked through any server stops working on
    /// every one). Cheap when nothing moved: one read of the store's change
    /// counters. Does nothing on a store only this process opens.
    ///
    /// Errors: the store's (the state held stays as it was, and the next
    /// call tries again).
    pub fn refresh_shared_state(&self) -> Result<Refreshed, StoreError> {
        let counters: BTreeMap<String, u64> = self.store.change_counters()?.into_iter().collect();
        let key_counter = crate::store::records_counter(crate::auth::keys::COLLECTION);
        let (network_moved, keys_moved) = {
            let seen = self.seen_counters.lock().unwrap_or_else(|e| e.into_inner());
            let moved = |name: &str| counters.get(name) != seen.get(name);
            (moved(crate::store::NETWORK_COUNTER), moved(&key_counter))
        };
        if network_moved {
            let _writer = self
                .master_data_writer
                .lock()
                .unwrap_or_else(|e| e.into_inner());
            self.reload_network()?;
        }
        if keys_moved {
            let _writer = self.keys_writer.lock().unwrap_or_else(|e| e.into_inner());
            self.key_ring.replace(keys::load_keys(self.store.as_ref())?);
        }
        *self.seen_counters.lock().unwrap_or_else(|e| e.into_inner()) = counters;
        Ok(Refreshed {
            network: network_moved,
            api_keys: keys_moved,
        })
    }

    /// Calls [`Self::refresh_shared_state`] every `poll` on a thread of its
    /// own, for a server sharing its store with others; the thread ends
    /// within `poll` of the application being dropped.
    pub fn follow_shared_state(self: &Arc<Self>, poll: std::time::Duration) -> std::io::Result<()> {
        let spares = Arc::downgrade(self);
        std::thread::Builder::new()
            .name("spares-shared-state".into())
            .spawn(move || {
                loop {
                    std::thread::sleep(poll);
                    let Some(spares) = spares.upgrade() else {
                        break;
                    };
                    if let Err(error) = spares.refresh_shared_state() {
                        tracing::warn!(%error, "cannot read what other servers changed; retrying");
                    }
                }
            })
            .map(drop)
    }

    /// Loads the master data again from the store and swaps it in. The
    /// caller holds the master-data writer lock.
    fn reload_network(&self) -> Result<Arc<Network>, StoreError> {
        let network = Arc::new(self.store.load_network()?);
        *self.network.write().unwrap_or_else(|e| e.into_inner()) = network.clone();
        Ok(network)
    }

    /// The network a master-data write checks against and builds on: the
    /// one in memory, reloaded first if another server changed the store's
    /// (so a write here never undoes one made there). The caller holds the
    /// master-data writer lock.
    fn network_for_write(&self) -> Result<Arc<Network>, StoreError> {
        let counters = self.store.change_counters()?;
        let name = crate::store::NETWORK_COUNTER;
        let now = counters.iter().find(|(n, _)| n == name).map(|(_, v)| *v);
        let mut seen = self.seen_counters.lock().unwrap_or_else(|e| e.into_inner());
        if now == seen.get(name).copied() {
            return Ok(self.network());
        }
        let network = self.reload_network()?;
        match now {
            Some(value) => seen.insert(name.to_string(), value),
            None => seen.remove(name),
        };
        Ok(network)
    }

    /// The network as of now (a cheap snapshot).
    pub fn network(&self) -> Arc<Network> {
        self.network
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// The store.
    pub fn store(&self) -> &Arc<dyn Store> {
        &self.store
    }

    /// The job registry.
    pub fn jobs(&self) -> &Arc<jobs::Jobs> {
        &self.jobs
    }

    /// This server's workers of shared planning work.
    pub fn work(&self) -> &Arc<work::WorkPool> {
        &self.work
    }

    /// Scoring of candidates for the optimiser's job `job_id` through the
    /// shared work queue (every server's workers on a shared store; this
    /// server's otherwise). Errors: `Storage` if the queue cannot be
    /// reached.
    pub fn shared_scoring(&self, job_id: &str) -> Result<work::SharedScoring, StoreError> {
        work::SharedScoring::new(self.work.clone(), job_id)
    }

    /// The clock.
    pub fn clock(&self) -> &Arc<dyn Clock> {
        &self.clock
    }

    /// The API keys authentication checks, in memory.
    pub fn key_ring(&self) -> &Arc<crate::auth::keys::KeyRing> {
        &self.key_ring
    }

    /// Named limits.
    pub fn limits(&self) -> &Limits {
        &self.limits
    }

    /// A signal that turns true when the server shuts down; streams end on it,
    /// so a graceful shutdown never waits on a client that keeps watching.
    pub fn closing(&self) -> tokio::sync::watch::Receiver<bool> {
        self.closing.subscribe()
    }

    /// Ends every open stream (called when the server begins to shut down).
    pub fn close_streams(&self) {
        self.closing.send_replace(true);
    }

    /// Subscribes to stock changes.
    pub fn subscribe(&self) -> broadcast::Receiver<StockChanged> {
        self.changes.subscribe()
    }

    fn check_batch_size(&self, field: &str, len: usize) -> Result<(), DomainError> {
        if len > self.limits.max_batch_items {
            return Err(DomainError::OutOfRange {
                field: field.into(),
                reason: format!(
                    "{len} items; at most {} per request (split the load)",
                    self.limits.max_batch_items
                ),
            });
        }
        Ok(())
    }

    /// Validates, persists and applies a master-data batch under the writer lock.
    fn upsert<F>(&self, check: F, records: Vec<NetworkRecord>) -> Result<usize, StoreError>
    where
        F: FnOnce(&Network) -> Result<(), DomainError>,
    {
        let _writer = self
            .master_data_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = self.network_for_write()?;
        check(&current)?;
        let count = records.len();
        let mut records = records;
        let revived: Vec<NetworkRecord> = records
            .iter()
            .filter_map(|r| revival(&current, r))
            .collect();
        records.extend(revived);
        self.store.save_network_records(&records)?;
        let mut next = (*current).clone();
        for record in records {
            apply_record(&mut next, record);
        }
        *self.network.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(count)
    }

    /// Creates or replaces locations.
    pub fn upsert_locations(&self, batch: Vec<Location>) -> Result<usize, StoreError> {
        self.check_batch_size("locations", batch.len())?;
        let records = batch.iter().cloned().map(NetworkRecord::Location).collect();
        self.upsert(|n| n.check_locations(&batch), records)
    }

    /// Creates or replaces lanes.
    pub fn upsert_lanes(&self, batch: Vec<Lane>) -> Result<usize, StoreError> {
        self.check_batch_size("lanes", batch.len())?;
        let records = batch.iter().cloned().map(NetworkRecord::Lane).collect();
        self.upsert(|n| n.check_lanes(&batch), records)
    }

    /// Creates or replaces parts.
    pub fn upsert_parts(&self, batch: Vec<Part>) -> Result<usize, StoreError> {
        self.check_batch_size("parts", batch.len())?;
        let records = batch.iter().cloned().map(NetworkRecord::Part).collect();
        self.upsert(|n| n.check_parts(&batch), records)
    }

    /// Creates or replaces machine models and fleets.
    pub fn upsert_installed_base(
        &self,
        models: Vec<MachineModel>,
        fleets: Vec<Fleet>,
    ) -> Result<usize, StoreError> {
        self.check_batch_size("fleets", models.len() + fleets.len())?;
        let records = models
            .iter()
            .cloned()
            .map(NetworkRecord::MachineModel)
            .chain(fleets.iter().cloned().map(NetworkRecord::Fleet))
            .collect();
        self.upsert(|n| n.check_installed_base(&models, &fleets), records)
    }

    /// Creates or replaces demand series.
    pub fn upsert_demand(&self, batch: Vec<DemandSeries>) -> Result<usize, StoreError> {
        self.check_batch_size("series", batch.len())?;
        let records = batch.iter().cloned().map(NetworkRecord::Demand).collect();
        self.upsert(|n| n.check_demand(&batch), records)
    }

    /// Replaces the policies of the given part-locations.
    pub fn set_policies(&self, batch: Vec<Policy>) -> Result<usize, StoreError> {
        self.check_batch_size("policies", batch.len())?;
        let records = batch.iter().cloned().map(NetworkRecord::Policy).collect();
        self.upsert(|n| n.check_policies(&batch), records)
    }

    /// Creates or replaces supplier lead-time overrides per (part, depot).
    pub fn upsert_supplier_lead_times(
        &self,
        batch: Vec<SupplierLeadTime>,
    ) -> Result<usize, StoreError> {
        self.check_batch_size("supplier_lead_times", batch.len())?;
        let records = batch
            .iter()
            .cloned()
            .map(NetworkRecord::SupplierLeadTime)
            .collect();
        self.upsert(|n| n.check_supplier_lead_times(&batch), records)
    }

    /// Creates or replaces the downtime cost per hour of criticality classes.
    pub fn upsert_criticality_costs(
        &self,
        batch: Vec<CriticalityCost>,
    ) -> Result<usize, StoreError> {
        self.check_batch_size("criticality_costs", batch.len())?;
        let records = batch
            .iter()
            .cloned()
            .map(NetworkRecord::CriticalityCost)
            .collect();
        self.upsert(|n| n.check_criticality_costs(&batch), records)
    }

    /// Creates or replaces demand rates per (part, location).
    pub fn upsert_demand_rates(&self, batch: Vec<DemandRate>) -> Result<usize, StoreError> {
        self.check_batch_size("rates", batch.len())?;
        let records = batch
            .iter()
            .cloned()
            .map(NetworkRecord::DemandRate)
            .collect();
        self.upsert(|n| n.check_demand_rates(&batch), records)
    }

    /// Retires parts, locations and lanes (see [`crate::domain::retire`]) and
    /// returns what was retired, the locations' lanes included; retiring what
    /// is already retired does nothing.
    ///
    /// Errors: an unknown id is `NotFound`; stock, reservations or units in
    /// transit left, or a location still replenishing an active one, are
    /// `FailedPrecondition` naming them.
    pub fn retire(&self, request: &RetireRequest) -> Result<Vec<Retirement>, StoreError> {
        let _writer = self
            .master_data_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = self.network_for_write()?;
        let plan = current.plan_retirement(request)?;
        self.check_nothing_held(&current, &plan)?;
        let records: Vec<NetworkRecord> = plan.iter().cloned().map(NetworkRecord::Retire).collect();
        self.store.save_network_records(&records)?;
        let mut next = (*current).clone();
        plan.iter().for_each(|r| next.retire(r));
        *self.network.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(plan)
    }

    /// Refuses a retirement while stock is held: any on hand (reserved
    /// included) or in transit for a part or at a location, and units in
    /// transit between a lane's ends when it is the last active lane there.
    fn check_nothing_held(&self, network: &Network, plan: &[Retirement]) -> Result<(), StoreError> {
        for retirement in plan {
            let (what, blockers) = match retirement {
                Retirement::Part(id) => (
                    format!("part {id}"),
                    stock_blockers(&self.store.balances(Some(id), None)?, None),
                ),
                Retirement::Location(id) => (
                    format!("location {id}"),
                    stock_blockers(&self.store.balances(None, Some(id))?, None),
                ),
                Retirement::Lane((from, to, ..)) => {
                    let others = network.lanes.keys().any(|k| {
                        &k.0 == from && &k.1 == to && !plan.contains(&Retirement::Lane(k.clone()))
                    });
                    if others {
                        continue;
                    }
                    let inbound = self.store.balances(None, Some(to))?;
                    (
                        format!("the last lane {from} -> {to}"),
                        stock_blockers(&inbound, Some(from)),
                    )
                }
            };
            if let Some(error) = refusal(&what, &blockers) {
                return Err(error.into());
            }
        }
        Ok(())
    }

    /// The protection thresholds in force, read once for many positions (a
    /// page of stock): the availability engine's index, built once per
    /// network version, when the engine builds; else the network's policies.
    pub fn protection(&self) -> Protection {
        match self.availability() {
            Ok(engine) => Protection::Indexed(engine),
            Err(_) => Protection::Policies(self.network()),
        }
    }

    /// Units of available stock that routine demand may not take.
    pub fn protected_quantity(&self, part_id: &str, location_id: &str) -> Qty {
        self.network()
            .policies
            .get(&(part_id.to_string(), location_id.to_string()))
            .map_or(0, |p| p.protected_quantity)
    }

    /// Records movements by `actor` after checking every id against the network.
    pub fn record_movements(
        &self,
        actor: &Actor,
        commands: Vec<MovementCommand>,
    ) -> Result<Vec<MovementOutcome>, StoreError> {
        self.check_batch_size("movements", commands.len())?;
        let network = self.network();
        for (i, command) in commands.iter().enumerate() {
            // The field prefix is written only for a refusal.
            let known = network.parts.contains_key(&command.part_id)
                && network.locations.contains_key(&command.location_id);
            if !known {
                let prefix = format!("movements[{i}]");
                network.check_part_location(&prefix, &command.part_id, &command.location_id)?;
            }
            if let Some(to) = &command.to_location_id
                && !network.locations.contains_key(to)
            {
                return Err(DomainError::not_found(
                    "location",
                    format!("{to} (movements[{i}].to_location_id)"),
                )
                .into());
            }
        }
        let outcomes = self
            .store
            .record_movements(actor, &commands, self.clock.now())?;
        for command in &commands {
            self.publish(&command.part_id, &command.location_id);
            if let Some(to) = &command.to_location_id {
                self.publish(&command.part_id, to);
            }
        }
        Ok(outcomes)
    }

    /// Reserves every command or none for `actor`, reading protection from
    /// the policy in force.
    pub fn reserve(
        &self,
        actor: &Actor,
        mut commands: Vec<ReserveCommand>,
    ) -> Result<Vec<Reservation>, StoreError> {
        let network = self.network();
        let batch = commands.len() > 1;
        for (i, command) in commands.iter_mut().enumerate() {
            // One command names plain fields; a batch names `lines[i].field`, as the ledger does.
            let prefix = if batch {
                format!("lines[{i}].")
            } else {
                String::new()
            };
            network.check_part_location(
                prefix.trim_end_matches('.'),
                &command.part_id,
                &command.location_id,
            )?;
            if command.quantity == 0 {
                return Err(
                    DomainError::invalid(format!("{prefix}quantity"), "must be > 0").into(),
                );
            }
            command.ttl_seconds = self.ttl(command.ttl_seconds, &format!("{prefix}ttl_seconds"))?;
            command.protected_quantity =
                self.protected_quantity(&command.part_id, &command.location_id);
        }
        let reservations = self.store.reserve(actor, &commands, self.clock.now())?;
        for r in &reservations {
            self.publish_reservation(r);
        }
        Ok(reservations)
    }

    fn ttl(&self, requested: u32, field: &str) -> Result<u32, DomainError> {
        match requested {
            0 => Ok(self.limits.default_reservation_ttl_seconds),
            t if t > self.limits.max_reservation_ttl_seconds => Err(DomainError::OutOfRange {
                field: field.into(),
                reason: format!(
                    "at most {} seconds (7 days)",
                    self.limits.max_reservation_ttl_seconds
                ),
            }),
            t => Ok(t),
        }
    }

    /// Confirms (posts) a pending reservation.
    pub fn confirm(&self, actor: &Actor, command: PostCommand) -> Result<Reservation, StoreError> {
        if let Some(to) = &command.ship_to_location_id
            && !self.network().locations.contains_key(to)
        {
            return Err(
                DomainError::not_found("location", format!("{to} (ship_to_location_id)")).into(),
            );
        }
        let reservation = self
            .store
            .post_reservation(actor, &command, self.clock.now())?;
        self.publish_reservation(&reservation);
        if let Some(to) = &reservation.ship_to_location_id {
            self.publish(&reservation.part_id, to);
        }
        Ok(reservation)
    }

    /// Releases (voids) a pending reservation.
    pub fn release(&self, actor: &Actor, command: VoidCommand) -> Result<Reservation, StoreError> {
        let reservation = self
            .store
            .void_reservation(actor, &command, self.clock.now())?;
        self.publish_reservation(&reservation);
        Ok(reservation)
    }

    /// Expires due reservations; called by a background task and before reads.
    pub fn expire_due(&self) -> Result<Vec<Reservation>, StoreError> {
        let expired = self.store.expire_reservations(self.clock.now())?;
        for r in &expired {
            self.publish_reservation(r);
        }
        Ok(expired)
    }

    /// One reservation, or `NotFound`.
    pub fn reservation(&self, reservation_id: &str) -> Result<Reservation, StoreError> {
        self.store
            .reservation(reservation_id)?
            .ok_or_else(|| DomainError::not_found("reservation", reservation_id).into())
    }

    /// Reservations matching a filter.
    pub fn reservations(&self, filter: &ReservationFilter) -> Result<Vec<Reservation>, StoreError> {
        self.store.reservations(filter)
    }

    /// Balances by part and/or location; unknown ids are `NotFound`.
    pub fn stock(
        &self,
        part_id: Option<&str>,
        location_id: Option<&str>,
    ) -> Result<Vec<Balance>, StoreError> {
        let network = self.network();
        if let Some(part) = part_id
            && !network.parts.contains_key(part)
        {
            return Err(DomainError::not_found("part", part).into());
        }
        if let Some(location) = location_id
            && !network.locations.contains_key(location)
        {
            return Err(DomainError::not_found("location", location).into());
        }
        if let (Some(part), Some(location)) = (part_id, location_id) {
            return Ok(vec![self.store.balance(part, location)?]);
        }
        self.store.balances(part_id, location_id)
    }

    /// Up to `limit` balances at one location, ordered by part, after
    /// `after_part_id`: a page of the location's stock from the ledger's
    /// location index. An unknown location is `NotFound`.
    pub fn stock_at_location(
        &self,
        location_id: &str,
        after_part_id: Option<&str>,
        limit: usize,
    ) -> Result<Vec<Balance>, StoreError> {
        if !self.network().locations.contains_key(location_id) {
            return Err(DomainError::not_found("location", location_id).into());
        }
        self.store
            .balances_at_location(location_id, after_part_id, limit)
    }

    fn publish(&self, part_id: &str, location_id: &str) {
        // No subscribers is not an error: the change is durable either way.
        // Without any, the event is not even built (a batch of movements
        // would otherwise copy two ids per movement for nobody).
        if self.changes.receiver_count() == 0 {
            return;
        }
        let _ = self.changes.send(StockChanged {
            part_id: part_id.to_string(),
            location_id: location_id.to_string(),
            reservation: None,
        });
    }

    /// Publishes the stock change a reservation's step made where its
    /// stock is held, with the reservation attached.
    fn publish_reservation(&self, reservation: &crate::domain::ledger::Reservation) {
        let _ = self.changes.send(StockChanged {
            part_id: reservation.part_id.clone(),
            location_id: reservation.location_id.clone(),
            reservation: Some(Arc::new(reservation.clone())),
        });
    }
}

/// The revival an upsert of a retired part, location or lane makes: upserting
/// its id makes it active again.
fn revival(network: &Network, record: &NetworkRecord) -> Option<NetworkRecord> {
    let retired = &network.retired;
    let retirement = match record {
        NetworkRecord::Location(l) if retired.locations.contains_key(&l.id) => {
            Retirement::Location(l.id.clone())
        }
        NetworkRecord::Lane(l) if retired.lanes.contains_key(&l.key()) => Retirement::Lane(l.key()),
        NetworkRecord::Part(p) if retired.parts.contains_key(&p.id) => {
            Retirement::Part(p.id.clone())
        }
        _ => return None,
    };
    Some(NetworkRecord::Revive(retirement))
}

fn apply_record(network: &mut Network, record: NetworkRecord) {
    match record {
        NetworkRecord::Location(l) => {
            network.retired.locations.remove(&l.id);
            network.locations.insert(l.id.clone(), l);
        }
        NetworkRecord::Lane(l) => {
            network.retired.lanes.remove(&l.key());
            network.lanes.insert(l.key(), l);
        }
        NetworkRecord::Part(p) => {
            network.retired.parts.remove(&p.id);
            network.parts.insert(p.id.clone(), p);
        }
        NetworkRecord::Retire(r) => network.retire(&r),
        NetworkRecord::Revive(_) => {}
        NetworkRecord::MachineModel(m) => {
            network.machine_models.insert(m.id.clone(), m);
        }
        NetworkRecord::Fleet(f) => {
            network
                .fleets
                .insert((f.store_location_id.clone(), f.machine_model_id.clone()), f);
        }
        NetworkRecord::Demand(d) => {
            network
                .demand
                .insert((d.part_id.clone(), d.location_id.clone()), d);
        }
        NetworkRecord::Policy(p) => {
            network
                .policies
                .insert((p.part_id.clone(), p.location_id.clone()), p);
        }
        NetworkRecord::SupplierLeadTime(s) => {
            network.supplier_lead_times.insert(s.key(), s);
        }
        NetworkRecord::CriticalityCost(c) => {
            network.criticality_costs.insert(c.criticality, c);
        }
        NetworkRecord::DemandRate(r) => {
            network.demand_rates.insert(r.key(), r);
        }
    }
}

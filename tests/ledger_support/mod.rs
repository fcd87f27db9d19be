//! Shared test support for the ledger tests: request builders, a simple
//! in-memory model of the ledger, and a harness that runs the same operation
//! against a store (sled or PostgreSQL, see `backend`) and the model and
//! compares every observable answer.
#![allow(dead_code, unused_macros, clippy::unwrap_used, clippy::expect_used)]

#[macro_use]
mod backend;
pub use backend::*;

use jiff::Timestamp;
use spares::domain::DomainError;
use spares::domain::ledger::{
    MovementCommand, MovementKind, PostCommand, Priority, ReservationFilter, ReservationState,
    ReserveCommand, VoidCommand, reservation_id_for, shipment_id_for,
};
use spares::store::{Store, StoreError};
use std::collections::{BTreeMap, HashMap};

/// Parts and locations the generated workloads use.
pub const PARTS: [&str; 2] = ["P1", "P2"];
/// Locations the generated workloads use.
pub const LOCATIONS: [&str; 3] = ["A", "B", "C"];

/// A fixed instant plus `seconds`.
pub fn at(seconds: i64) -> Timestamp {
    Timestamp::from_second(1_800_000_000 + seconds).unwrap()
}

/// A movement command.
pub fn movement(
    key: &str,
    kind: MovementKind,
    part: &str,
    location: &str,
    quantity: i64,
) -> MovementCommand {
    MovementCommand {
        idempotency_key: key.into(),
        kind,
        part_id: part.into(),
        location_id: location.into(),
        quantity,
        to_location_id: None,
        shipment_id: None,
        expected_arrival: None,
        note: String::new(),
    }
}

/// A transfer ship command.
pub fn ship(
    key: &str,
    part: &str,
    from: &str,
    to: &str,
    quantity: i64,
    shipment: Option<&str>,
) -> MovementCommand {
    MovementCommand {
        to_location_id: Some(to.into()),
        shipment_id: shipment.map(str::to_string),
        ..movement(key, MovementKind::TransferShip, part, from, quantity)
    }
}

/// A transfer receive command.
pub fn receive(
    key: &str,
    part: &str,
    at_location: &str,
    quantity: i64,
    shipment: &str,
) -> MovementCommand {
    MovementCommand {
        shipment_id: Some(shipment.into()),
        ..movement(
            key,
            MovementKind::TransferReceive,
            part,
            at_location,
            quantity,
        )
    }
}

/// A reserve command.
pub fn reserve_command(key: &str, part: &str, location: &str, quantity: u64) -> ReserveCommand {
    ReserveCommand {
        idempotency_key: key.into(),
        part_id: part.into(),
        location_id: location.into(),
        quantity,
        ttl_seconds: 60,
        priority: Priority::Routine,
        protected_quantity: 0,
        order_reference: "order".into(),
        for_location_id: None,
    }
}

/// Panics with the problems if the audit is not clean.
pub fn assert_audit_clean(store: &dyn Store) -> u64 {
    let report = store.audit().unwrap();
    assert!(report.problems.is_empty(), "audit: {:?}", report.problems);
    report.movements
}

/// The kind of an error, with the field where the contract names one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ErrorKind {
    /// `InvalidArgument` naming this field.
    Invalid(String),
    /// `NotFound`.
    NotFound,
    /// `FailedPrecondition`.
    Failed,
    /// `IdempotencyConflict` naming this field.
    Conflict(String),
    /// Anything else (never expected).
    Other(String),
}

/// Classifies a store error.
pub fn kind_of(error: &StoreError) -> ErrorKind {
    match error {
        StoreError::Rejected(DomainError::InvalidArgument { field, .. }) => {
            ErrorKind::Invalid(field.clone())
        }
        StoreError::Rejected(DomainError::NotFound { .. }) => ErrorKind::NotFound,
        StoreError::Rejected(DomainError::FailedPrecondition(_)) => ErrorKind::Failed,
        StoreError::Rejected(DomainError::IdempotencyConflict { field, .. }) => {
            ErrorKind::Conflict(field.clone())
        }
        other => ErrorKind::Other(format!("{other:?}")),
    }
}

/// A store answer reduced to what the model predicts.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// (sequence, replayed, shipment) per movement.
    Movements(Vec<(u64, bool, Option<String>)>),
    /// (id, state) per reservation.
    Reservations(Vec<(String, ReservationState)>),
    /// Rejected.
    Error(ErrorKind),
}

/// A concrete request, kept so that it can be sent again.
#[derive(Debug, Clone, PartialEq)]
pub enum Request {
    /// `record_movements`.
    Movements(Vec<MovementCommand>),
    /// `reserve`.
    Reserve(Vec<ReserveCommand>),
    /// `post_reservation`.
    Post(PostCommand),
    /// `void_reservation`.
    Void(VoidCommand),
}

impl Request {
    /// The same request with a different payload under the same first key.
    pub fn altered(&self) -> Request {
        let mut altered = self.clone();
        match &mut altered {
            Request::Movements(c) => c[0].note.push_str(" (changed)"),
            Request::Reserve(c) => c[0].order_reference.push_str(" (changed)"),
            Request::Post(c) => c.reservation_id.push('x'),
            Request::Void(c) => c.reservation_id.push('x'),
        }
        altered
    }
}

#[derive(Debug, Clone, PartialEq)]
struct ModelReservation {
    part: String,
    location: String,
    quantity: u64,
    state: ReservationState,
    expires_at: Timestamp,
}

/// The ledger as plain maps: the oracle for the property and simulation tests.
#[derive(Debug, Clone, Default)]
pub struct Model {
    available: BTreeMap<(String, String), i64>,
    reserved: BTreeMap<(String, String), i64>,
    /// shipment -> (from, to)
    shipments: BTreeMap<String, (String, String)>,
    /// (part, shipment) -> units
    in_transit: BTreeMap<(String, String), i64>,
    reservations: BTreeMap<String, ModelReservation>,
    movement_keys: HashMap<String, (MovementCommand, (u64, Option<String>))>,
    reserve_keys: HashMap<String, (ReserveCommand, String)>,
    post_keys: HashMap<String, (PostCommand, String)>,
    void_keys: HashMap<String, (VoidCommand, String)>,
    next_sequence: u64,
}

fn get(map: &BTreeMap<(String, String), i64>, a: &str, b: &str) -> i64 {
    map.get(&(a.to_string(), b.to_string()))
        .copied()
        .unwrap_or(0)
}

fn add(map: &mut BTreeMap<(String, String), i64>, a: &str, b: &str, delta: i64) {
    *map.entry((a.to_string(), b.to_string())).or_default() += delta;
}

fn invalid(field: String) -> Reply {
    Reply::Error(ErrorKind::Invalid(field))
}

impl Model {
    /// An empty ledger.
    pub fn new() -> Self {
        Self {
            next_sequence: 1,
            ..Self::default()
        }
    }

    /// Entries in the log so far.
    pub fn movements(&self) -> u64 {
        self.next_sequence - 1
    }

    /// Known reservation ids.
    pub fn reservation_ids(&self) -> Vec<String> {
        self.reservations.keys().cloned().collect()
    }

    /// Known shipment ids.
    pub fn shipment_ids(&self) -> Vec<String> {
        self.shipments.keys().cloned().collect()
    }

    /// Applies a request; returns the predicted reply.
    pub fn apply(&mut self, request: &Request, now: Timestamp) -> Reply {
        let mut next = self.clone();
        let reply = match request {
            Request::Movements(c) => next.movements_request(c),
            Request::Reserve(c) => next.reserve_request(c, now),
            Request::Post(c) => next.post_request(c, now),
            Request::Void(c) => next.void_request(c),
        };
        if !matches!(reply, Reply::Error(_)) {
            *self = next;
        }
        reply
    }

    fn movements_request(&mut self, commands: &[MovementCommand]) -> Reply {
        for (i, c) in commands.iter().enumerate() {
            let field = |f: &str| format!("movements[{i}].{f}");
            let quantity_ok = match c.kind {
                MovementKind::Adjustment => c.quantity != 0,
                MovementKind::Count => c.quantity >= 0,
                _ => c.quantity > 0,
            };
            if !quantity_ok {
                return invalid(field("quantity"));
            }
            if c.kind == MovementKind::TransferShip
                && c.to_location_id.as_deref() == Some(&c.location_id)
            {
                return invalid(field("to_location_id"));
            }
        }
        let mut out = Vec::new();
        let mut in_batch: HashMap<String, (MovementCommand, (u64, Option<String>))> =
            HashMap::new();
        for (i, c) in commands.iter().enumerate() {
            let earlier = in_batch
                .get(&c.idempotency_key)
                .or(self.movement_keys.get(&c.idempotency_key));
            if let Some((stored, (sequence, shipment))) = earlier {
                if stored != c {
                    return Reply::Error(ErrorKind::Conflict(format!(
                        "movements[{i}].idempotency_key"
                    )));
                }
                out.push((*sequence, true, shipment.clone()));
                continue;
            }
            let sequence = self.next_sequence;
            let written = match self.movement_rule(c, sequence) {
                Ok(s) => s,
                Err(kind) => return Reply::Error(kind),
            };
            // A count equal to on hand writes nothing and reports sequence 0.
            let Some(shipment) = written else {
                in_batch.insert(c.idempotency_key.clone(), (c.clone(), (0, None)));
                out.push((0, false, None));
                continue;
            };
            self.next_sequence += 1;
            in_batch.insert(
                c.idempotency_key.clone(),
                (c.clone(), (sequence, shipment.clone())),
            );
            out.push((sequence, false, shipment));
        }
        self.movement_keys.extend(in_batch);
        Reply::Movements(out)
    }

    fn take_available(
        &mut self,
        part: &str,
        location: &str,
        quantity: i64,
    ) -> Result<(), ErrorKind> {
        if get(&self.available, part, location) < quantity {
            return Err(ErrorKind::Failed);
        }
        add(&mut self.available, part, location, -quantity);
        Ok(())
    }

    /// Applies one movement: `None` when it writes nothing (a count equal to
    /// on hand), else the shipment it opened, if any.
    #[allow(clippy::option_option)]
    fn movement_rule(
        &mut self,
        c: &MovementCommand,
        sequence: u64,
    ) -> Result<Option<Option<String>>, ErrorKind> {
        let (p, l, q) = (c.part_id.as_str(), c.location_id.as_str(), c.quantity);
        match c.kind {
            MovementKind::Count => {
                let reserved = get(&self.reserved, p, l);
                if q < reserved {
                    return Err(ErrorKind::Failed);
                }
                let difference = q - reserved - get(&self.available, p, l);
                if difference == 0 {
                    return Ok(None);
                }
                add(&mut self.available, p, l, difference);
            }
            MovementKind::Receipt => add(&mut self.available, p, l, q),
            MovementKind::Issue | MovementKind::Scrap => self.take_available(p, l, q)?,
            MovementKind::Adjustment if q > 0 => add(&mut self.available, p, l, q),
            MovementKind::Adjustment => self.take_available(p, l, -q)?,
            MovementKind::TransferShip => {
                let to = c.to_location_id.clone().unwrap();
                if get(&self.available, p, l) < q {
                    return Err(ErrorKind::Failed);
                }
                let id = c
                    .shipment_id
                    .clone()
                    .unwrap_or_else(|| shipment_id_for(sequence));
                match self.shipments.get(&id) {
                    Some((from, dest)) if from != l || *dest != to => {
                        return Err(ErrorKind::Failed);
                    }
                    _ => {}
                }
                add(&mut self.available, p, l, -q);
                self.shipments.insert(id.clone(), (l.to_string(), to));
                add(&mut self.in_transit, p, &id, q);
                return Ok(Some(Some(id)));
            }
            MovementKind::TransferReceive => {
                let id = c.shipment_id.clone().unwrap();
                let Some((_, to)) = self.shipments.get(&id) else {
                    return Err(ErrorKind::NotFound);
                };
                if to != l || get(&self.in_transit, p, &id) < q {
                    return Err(ErrorKind::Failed);
                }
                add(&mut self.in_transit, p, &id, -q);
                add(&mut self.available, p, l, q);
            }
        }
        Ok(Some(None))
    }

    fn reserve_request(&mut self, commands: &[ReserveCommand], now: Timestamp) -> Reply {
        let mut out = Vec::new();
        let mut in_batch: HashMap<String, (ReserveCommand, String)> = HashMap::new();
        for (i, c) in commands.iter().enumerate() {
            let prefix = if commands.len() == 1 {
                String::new()
            } else {
                format!("lines[{i}].")
            };
            if let Some((stored, id)) = in_batch
                .get(&c.idempotency_key)
                .or(self.reserve_keys.get(&c.idempotency_key))
            {
                if stored != c {
                    return Reply::Error(ErrorKind::Conflict(format!("{prefix}idempotency_key")));
                }
                out.push((id.clone(), self.reservations[id].state));
                continue;
            }
            if c.quantity == 0 {
                return invalid(format!("{prefix}quantity"));
            }
            if c.ttl_seconds == 0 {
                return invalid(format!("{prefix}ttl_seconds"));
            }
            let protected = if c.priority == Priority::Routine {
                c.protected_quantity as i64
            } else {
                0
            };
            let available = get(&self.available, &c.part_id, &c.location_id);
            if available - protected < c.quantity as i64 {
                return Reply::Error(ErrorKind::Failed);
            }
            let q = c.quantity as i64;
            add(&mut self.available, &c.part_id, &c.location_id, -q);
            add(&mut self.reserved, &c.part_id, &c.location_id, q);
            let id = reservation_id_for(self.next_sequence);
            self.next_sequence += 1;
            self.reservations.insert(
                id.clone(),
                ModelReservation {
                    part: c.part_id.clone(),
                    location: c.location_id.clone(),
                    quantity: c.quantity,
                    state: ReservationState::Pending,
                    expires_at: now + jiff::SignedDuration::from_secs(i64::from(c.ttl_seconds)),
                },
            );
            in_batch.insert(c.idempotency_key.clone(), (c.clone(), id.clone()));
            out.push((id, ReservationState::Pending));
        }
        self.reserve_keys.extend(in_batch);
        Reply::Reservations(out)
    }

    /// Looks up a pending reservation for a settlement.
    fn pending(&self, id: &str) -> Result<ModelReservation, ErrorKind> {
        let r = self.reservations.get(id).ok_or(ErrorKind::NotFound)?;
        if r.state != ReservationState::Pending {
            return Err(ErrorKind::Failed);
        }
        Ok(r.clone())
    }

    fn post_request(&mut self, c: &PostCommand, now: Timestamp) -> Reply {
        if let Some((stored, id)) = self.post_keys.get(&c.idempotency_key) {
            if stored != c {
                return Reply::Error(ErrorKind::Conflict("idempotency_key".into()));
            }
            return Reply::Reservations(vec![(id.clone(), self.reservations[id].state)]);
        }
        let r = match self.pending(&c.reservation_id) {
            Ok(r) => r,
            Err(kind) => return Reply::Error(kind),
        };
        if now >= r.expires_at {
            return Reply::Error(ErrorKind::Failed);
        }
        if c.ship_to_location_id.as_deref() == Some(&r.location) {
            return invalid("ship_to_location_id".into());
        }
        let q = r.quantity as i64;
        add(&mut self.reserved, &r.part, &r.location, -q);
        if let Some(to) = &c.ship_to_location_id {
            let id = shipment_id_for(self.next_sequence);
            self.shipments
                .insert(id.clone(), (r.location.clone(), to.clone()));
            add(&mut self.in_transit, &r.part, &id, q);
        }
        self.settle(&c.reservation_id, ReservationState::Posted);
        self.post_keys.insert(
            c.idempotency_key.clone(),
            (c.clone(), c.reservation_id.clone()),
        );
        Reply::Reservations(vec![(c.reservation_id.clone(), ReservationState::Posted)])
    }

    fn void_request(&mut self, c: &VoidCommand) -> Reply {
        if let Some((stored, id)) = self.void_keys.get(&c.idempotency_key) {
            if stored != c {
                return Reply::Error(ErrorKind::Conflict("idempotency_key".into()));
            }
            return Reply::Reservations(vec![(id.clone(), self.reservations[id].state)]);
        }
        let r = match self.pending(&c.reservation_id) {
            Ok(r) => r,
            Err(kind) => return Reply::Error(kind),
        };
        let q = r.quantity as i64;
        add(&mut self.reserved, &r.part, &r.location, -q);
        add(&mut self.available, &r.part, &r.location, q);
        self.settle(&c.reservation_id, ReservationState::Voided);
        self.void_keys.insert(
            c.idempotency_key.clone(),
            (c.clone(), c.reservation_id.clone()),
        );
        Reply::Reservations(vec![(c.reservation_id.clone(), ReservationState::Voided)])
    }

    fn settle(&mut self, id: &str, state: ReservationState) {
        if let Some(r) = self.reservations.get_mut(id) {
            r.state = state;
        }
        self.next_sequence += 1;
    }

    /// Expires due reservations; returns their ids in (expires_at, id) order.
    pub fn expire(&mut self, now: Timestamp) -> Vec<String> {
        let mut due: Vec<(Timestamp, String)> = self
            .reservations
            .iter()
            .filter(|(_, r)| r.state == ReservationState::Pending && r.expires_at <= now)
            .map(|(id, r)| (r.expires_at, id.clone()))
            .collect();
        due.sort();
        for (_, id) in &due {
            let r = self.reservations[id].clone();
            let q = r.quantity as i64;
            add(&mut self.reserved, &r.part, &r.location, -q);
            add(&mut self.available, &r.part, &r.location, q);
            self.settle(id, ReservationState::Expired);
        }
        due.into_iter().map(|(_, id)| id).collect()
    }

    /// (available, reserved, inbound (shipment, from, units)) of a part at a location.
    #[allow(clippy::type_complexity)]
    pub fn position(&self, part: &str, location: &str) -> (u64, u64, Vec<(String, String, u64)>) {
        let inbound = self
            .in_transit
            .iter()
            .filter(|((p, id), q)| p == part && **q > 0 && self.shipments[id].1 == location)
            .map(|((_, id), q)| (id.clone(), self.shipments[id].0.clone(), *q as u64))
            .collect();
        (
            get(&self.available, part, location) as u64,
            get(&self.reserved, part, location) as u64,
            inbound,
        )
    }

    /// The state of a reservation.
    pub fn reservation_state(&self, id: &str) -> Option<ReservationState> {
        self.reservations.get(id).map(|r| r.state)
    }
}

/// Sends a request to the store and reduces the answer.
pub fn send(store: &dyn Store, request: &Request, now: Timestamp) -> Reply {
    // One client: the model's idempotency keys are one principal's keys.
    let actor = spares::domain::ledger::Actor::principal("sim-client", "admin");
    let reservations = |r: Vec<spares::domain::ledger::Reservation>| {
        Reply::Reservations(r.into_iter().map(|r| (r.reservation_id, r.state)).collect())
    };
    let result = match request {
        Request::Movements(c) => store.record_movements(&actor, c, now).map(|outcomes| {
            Reply::Movements(
                outcomes
                    .into_iter()
                    .map(|o| (o.sequence, o.replayed, o.shipment_id))
                    .collect(),
            )
        }),
        Request::Reserve(c) => store.reserve(&actor, c, now).map(reservations),
        Request::Post(c) => store
            .post_reservation(&actor, c, now)
            .map(|r| reservations(vec![r])),
        Request::Void(c) => store
            .void_reservation(&actor, c, now)
            .map(|r| reservations(vec![r])),
    };
    result.unwrap_or_else(|e| Reply::Error(kind_of(&e)))
}

/// The store and the model side by side, with the clock and the last request.
pub struct Harness {
    /// The store under test (None only while reopening).
    pub store: Option<Box<dyn Store>>,
    /// The oracle.
    pub model: Model,
    /// The injected clock.
    pub now: Timestamp,
    /// The last mutating request, for duplicates.
    pub last: Option<Request>,
    place: Place,
}

impl Harness {
    /// A fresh store on `backend` (for PostgreSQL, check
    /// [`Backend::available`] first).
    pub fn new(backend: Backend) -> Self {
        let place = Place::new(backend);
        let store = place.open();
        Self {
            store: Some(store),
            model: Model::new(),
            now: at(0),
            last: None,
            place,
        }
    }

    /// The store.
    pub fn store(&self) -> &dyn Store {
        self.store.as_deref().unwrap()
    }

    /// Sends a request to both and asserts the replies agree.
    pub fn request(&mut self, request: Request, context: &str) -> Reply {
        let expected = self.model.apply(&request, self.now);
        let actual = send(self.store(), &request, self.now);
        assert_eq!(actual, expected, "{context}: reply to {request:?}");
        self.last = Some(request);
        actual
    }

    /// Moves the clock and runs the expiry sweep on both.
    pub fn advance(&mut self, seconds: i64, context: &str) {
        self.now += jiff::SignedDuration::from_secs(seconds);
        let expected = self.model.expire(self.now);
        let actual: Vec<String> = self
            .store()
            .expire_reservations(self.now)
            .unwrap()
            .into_iter()
            .map(|r| {
                assert_eq!(r.state, ReservationState::Expired);
                r.reservation_id
            })
            .collect();
        assert_eq!(actual, expected, "{context}: expired");
    }

    /// Closes and reopens the store.
    pub fn reopen(&mut self) {
        drop(self.store.take());
        self.store = Some(self.place.open());
    }

    /// Where the store lives.
    pub fn place(&self) -> &Place {
        &self.place
    }

    /// The location index and the in-place part visit agree with the model:
    /// a location's stock read whole and one part per page lists exactly the
    /// parts the model has there, and visiting a part's balances sees what
    /// `balances` returns.
    fn check_indexes(&self, context: &str) {
        let store = self.store();
        for location in LOCATIONS {
            let expected: Vec<&str> = PARTS
                .iter()
                .copied()
                .filter(|part| self.model.position(part, location) != (0, 0, Vec::new()))
                .collect();
            let whole = store
                .balances_at_location(location, None, usize::MAX)
                .unwrap();
            let parts: Vec<&str> = whole.iter().map(|b| b.part_id.as_str()).collect();
            assert_eq!(parts, expected, "{context}: stock at {location}");
            let mut paged = Vec::new();
            let mut after: Option<String> = None;
            loop {
                let page = store
                    .balances_at_location(location, after.as_deref(), 1)
                    .unwrap();
                let Some(last) = page.last() else { break };
                after = Some(last.part_id.clone());
                paged.extend(page);
            }
            assert_eq!(paged, whole, "{context}: stock at {location} in pages of 1");
        }
        for part in PARTS {
            let mut visited = Vec::new();
            store
                .visit_part_balances(part, &mut |b| visited.push(b.clone()))
                .unwrap();
            assert_eq!(
                visited,
                store.balances(Some(part), None).unwrap(),
                "{context}: visit of {part}"
            );
        }
    }

    /// Compares every balance and reservation with the model and audits.
    pub fn check(&self, context: &str) {
        let store = self.store();
        let mut expected_nonzero = 0;
        for part in PARTS {
            for location in LOCATIONS {
                let b = store.balance(part, location).unwrap();
                let inbound: Vec<(String, String, u64)> = b
                    .inbound
                    .iter()
                    .map(|s| {
                        (
                            s.shipment_id.clone(),
                            s.from_location_id.clone(),
                            s.quantity,
                        )
                    })
                    .collect();
                let expected = self.model.position(part, location);
                assert_eq!(
                    (b.available, b.reserved, inbound),
                    expected,
                    "{context}: {part}@{location}"
                );
                if expected != (0, 0, Vec::new()) {
                    expected_nonzero += 1;
                }
            }
        }
        assert_eq!(
            store.balances(None, None).unwrap().len(),
            expected_nonzero,
            "{context}: balances()"
        );
        self.check_indexes(context);
        for id in self.model.reservation_ids() {
            let stored = store.reservation(&id).unwrap().map(|r| r.state);
            assert_eq!(stored, self.model.reservation_state(&id), "{context}: {id}");
        }
        let pending = store
            .reservations(&ReservationFilter {
                state: Some(ReservationState::Pending),
                ..Default::default()
            })
            .unwrap()
            .len();
        let model_pending = self
            .model
            .reservation_ids()
            .iter()
            .filter(|id| self.model.reservation_state(id) == Some(ReservationState::Pending))
            .count();
        assert_eq!(pending, model_pending, "{context}: pending reservations");
        let movements = assert_audit_clean(store);
        assert_eq!(movements, self.model.movements(), "{context}: log length");
    }
}

/// One step of a generated workload, resolved against the current state by [`Harness::step`].
#[derive(Debug, Clone)]
pub enum Op {
    /// `record_movements` with these specs.
    Move(Vec<MoveSpec>),
    /// `reserve` with these specs.
    Reserve(Vec<ReserveSpec>),
    /// Post the `pick`-th known reservation, optionally shipping to a location.
    Post { pick: usize, ship_to: Option<usize> },
    /// Void the `pick`-th known reservation.
    Void { pick: usize },
    /// Step the clock and expire.
    Advance { seconds: i64 },
    /// Send the last request again.
    Duplicate,
    /// Send the last request's key with a different payload.
    Conflict,
    /// Close and reopen the store.
    Reopen,
}

/// A generated movement.
#[derive(Debug, Clone)]
pub struct MoveSpec {
    /// 0 receipt, 1 issue, 2 ship, 3 receive, 4 adjustment, 5 scrap, 6 count.
    pub kind: u8,
    /// Index into [`PARTS`].
    pub part: usize,
    /// Index into [`LOCATIONS`].
    pub location: usize,
    /// Units (may be zero or negative).
    pub quantity: i64,
    /// Destination index for ships.
    pub to: usize,
    /// Pick of a known shipment (None: a new one on ship, an unknown one on receive).
    pub shipment: Option<usize>,
}

/// A generated reservation.
#[derive(Debug, Clone)]
pub struct ReserveSpec {
    /// Index into [`PARTS`].
    pub part: usize,
    /// Index into [`LOCATIONS`].
    pub location: usize,
    /// Units.
    pub quantity: u64,
    /// Critical priority.
    pub critical: bool,
    /// Protected units.
    pub protected: u64,
    /// Time to live.
    pub ttl_seconds: u32,
}

fn pick<T: Clone>(items: &[T], index: usize) -> Option<T> {
    (!items.is_empty()).then(|| items[index % items.len()].clone())
}

impl Harness {
    /// Receives `units` of every part at every location in one batch (a starting stock).
    pub fn seed_stock(&mut self, units: i64) {
        let mut commands = Vec::new();
        for part in PARTS {
            for location in LOCATIONS {
                let key = format!("seed-{part}-{location}");
                commands.push(movement(&key, MovementKind::Receipt, part, location, units));
            }
        }
        self.request(Request::Movements(commands), "seed stock");
        self.check("seed stock");
    }

    /// Runs one generated step with fresh keys `k{step}-{i}` and checks everything.
    pub fn step(&mut self, step: usize, op: &Op) {
        let context = format!("step {step} {op:?}");
        match op {
            Op::Move(specs) => {
                let shipments = self.model.shipment_ids();
                let commands = specs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| self.movement_of(&format!("k{step}-{i}"), s, &shipments))
                    .collect();
                self.request(Request::Movements(commands), &context);
            }
            Op::Reserve(specs) => {
                let commands = specs
                    .iter()
                    .enumerate()
                    .map(|(i, s)| ReserveCommand {
                        priority: if s.critical {
                            Priority::Critical
                        } else {
                            Priority::Routine
                        },
                        protected_quantity: s.protected,
                        ttl_seconds: s.ttl_seconds,
                        ..reserve_command(
                            &format!("k{step}-{i}"),
                            PARTS[s.part],
                            LOCATIONS[s.location],
                            s.quantity,
                        )
                    })
                    .collect();
                self.request(Request::Reserve(commands), &context);
            }
            Op::Post { pick: p, ship_to } => {
                let id =
                    pick(&self.model.reservation_ids(), *p).unwrap_or_else(|| "R-unknown".into());
                let command = PostCommand {
                    reservation_id: id,
                    idempotency_key: format!("k{step}"),
                    ship_to_location_id: ship_to.map(|t| LOCATIONS[t].to_string()),
                    expected_arrival: None,
                };
                self.request(Request::Post(command), &context);
            }
            Op::Void { pick: p } => {
                let id =
                    pick(&self.model.reservation_ids(), *p).unwrap_or_else(|| "R-unknown".into());
                let command = VoidCommand {
                    reservation_id: id,
                    idempotency_key: format!("k{step}"),
                };
                self.request(Request::Void(command), &context);
            }
            Op::Advance { seconds } => self.advance(*seconds, &context),
            Op::Duplicate => {
                if let Some(last) = self.last.clone() {
                    self.request(last, &context);
                }
            }
            Op::Conflict => {
                if let Some(last) = self.last.clone() {
                    self.request(last.altered(), &context);
                }
            }
            Op::Reopen => self.reopen(),
        }
        self.check(&context);
    }

    fn movement_of(&self, key: &str, s: &MoveSpec, shipments: &[String]) -> MovementCommand {
        let (part, location) = (PARTS[s.part], LOCATIONS[s.location]);
        let kind = match s.kind % 7 {
            0 => MovementKind::Receipt,
            1 => MovementKind::Issue,
            2 => MovementKind::TransferShip,
            3 => MovementKind::TransferReceive,
            4 => MovementKind::Adjustment,
            5 => MovementKind::Scrap,
            _ => MovementKind::Count,
        };
        match kind {
            MovementKind::TransferShip => {
                let shipment = s.shipment.and_then(|i| pick(shipments, i));
                ship(
                    key,
                    part,
                    location,
                    LOCATIONS[s.to],
                    s.quantity,
                    shipment.as_deref(),
                )
            }
            MovementKind::TransferReceive => {
                let shipment = s
                    .shipment
                    .and_then(|i| pick(shipments, i))
                    .unwrap_or_else(|| "S-unknown".into());
                receive(key, part, location, s.quantity, &shipment)
            }
            _ => movement(key, kind, part, location, s.quantity),
        }
    }
}

//! The one authorisation table: for every RPC the server answers, who may
//! call it. A test builds the list of RPCs from the descriptor set the server
//! serves and fails for any RPC without a row, and the gate refuses a path
//! with no row to everyone but administrators, so a new RPC is closed until
//! it is given one.
//!
//! Rows say which roles may call an RPC at all; scope (a dealer's own
//! stores, a warehouse's own locations, a job's owner) is checked by the
//! handler, because it depends on the request's content.

use super::principal::Role;
use std::collections::HashMap;
use std::sync::OnceLock;

/// Who may call an RPC.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Access {
    /// The health service: open when the server is configured so (the
    /// default), otherwise any authenticated caller.
    Health,
    /// The reflection service: like [`Access::Health`], with its own switch.
    Reflection,
    /// These roles.
    Roles(&'static [Role]),
}

use Role::{Admin, Dealer, OrderingApp, Planner, Warehouse};

/// Whether an RPC changes anything: every row decides, so a new RPC cannot
/// join the table without saying whether the audit trail records it
/// (`api::audit` records every call of a writing RPC, after it answers).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Effect {
    /// Reads only: never in the audit trail.
    Reads,
    /// Changes state (ledger, master data, policies, keys, jobs) or, like
    /// a backup, hands out everything: every call is in the audit trail.
    Writes,
    /// Writes only when the request asks it to (`PromiseOrder` with
    /// `reserve`): in the audit trail when the handler notes that it does
    /// (`api::audit::note_keys`).
    WritesWhenNoted,
}

use Effect::{Reads, Writes, WritesWhenNoted};

/// Administrators only: master data, keys, backups.
const ADMIN: &[Role] = &[Admin];
/// Planning: simulations, optimisation, frontiers, forecasts, policies, jobs.
const PLANNING: &[Role] = &[Planner, Admin];
/// Availability and promises: everyone who asks where a part is.
const AVAILABILITY: &[Role] = &[Dealer, OrderingApp, Planner, Admin];
/// Reservation writes: dealers (their own stores) and administrators.
const RESERVE: &[Role] = &[Dealer, Admin];
/// Reservation reads: dealers (their own), planners and administrators.
const RESERVATIONS: &[Role] = &[Dealer, Planner, Admin];
/// Stock reads.
const STOCK: &[Role] = &[Dealer, OrderingApp, Planner, Warehouse, Admin];
/// Movements: warehouses (their own locations) and administrators.
const MOVEMENTS: &[Role] = &[Warehouse, Admin];
/// The movement log: planners and administrators, warehouses at their own
/// locations (scope checked by the handler).
const MOVEMENT_LOG: &[Role] = &[Planner, Warehouse, Admin];
/// The stock feed of every location: planners, warehouses, administrators.
const STOCK_FEED: &[Role] = &[Planner, Warehouse, Admin];

/// The table: full RPC path -> who may call it, and whether it writes.
pub const TABLE: &[(&str, Access, Effect)] = &[
    ("/grpc.health.v1.Health/Check", Access::Health, Reads),
    ("/grpc.health.v1.Health/Watch", Access::Health, Reads),
    (
        "/grpc.reflection.v1.ServerReflection/ServerReflectionInfo",
        Access::Reflection,
        Reads,
    ),
    (
        "/grpc.reflection.v1alpha.ServerReflection/ServerReflectionInfo",
        Access::Reflection,
        Reads,
    ),
    (
        "/spares.v1.AdminService/Backup",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.AdminService/CreateApiKey",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.AdminService/RevokeApiKey",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.AdminService/ListApiKeys",
        Access::Roles(ADMIN),
        Reads,
    ),
    (
        "/spares.v1.AdminService/ListAuditEvents",
        Access::Roles(ADMIN),
        Reads,
    ),
    (
        "/spares.v1.AvailabilityService/WhereIs",
        Access::Roles(AVAILABILITY),
        Reads,
    ),
    (
        "/spares.v1.AvailabilityService/Promise",
        Access::Roles(AVAILABILITY),
        Reads,
    ),
    (
        "/spares.v1.AvailabilityService/PromiseOrder",
        Access::Roles(AVAILABILITY),
        WritesWhenNoted,
    ),
    (
        "/spares.v1.AvailabilityService/WhereIsBatch",
        Access::Roles(AVAILABILITY),
        Reads,
    ),
    (
        "/spares.v1.AvailabilityService/PromiseBatch",
        Access::Roles(AVAILABILITY),
        Reads,
    ),
    (
        "/spares.v1.AvailabilityService/Reserve",
        Access::Roles(RESERVE),
        Writes,
    ),
    (
        "/spares.v1.AvailabilityService/ConfirmReservation",
        Access::Roles(RESERVE),
        Writes,
    ),
    (
        "/spares.v1.AvailabilityService/ReleaseReservation",
        Access::Roles(RESERVE),
        Writes,
    ),
    (
        "/spares.v1.AvailabilityService/GetReservation",
        Access::Roles(RESERVATIONS),
        Reads,
    ),
    (
        "/spares.v1.AvailabilityService/ListReservations",
        Access::Roles(RESERVATIONS),
        Reads,
    ),
    (
        "/spares.v1.AvailabilityService/WatchAvailability",
        Access::Roles(AVAILABILITY),
        Reads,
    ),
    (
        "/spares.v1.InventoryService/RecordMovements",
        Access::Roles(MOVEMENTS),
        Writes,
    ),
    (
        "/spares.v1.InventoryService/GetStock",
        Access::Roles(STOCK),
        Reads,
    ),
    (
        "/spares.v1.InventoryService/WatchStock",
        Access::Roles(STOCK_FEED),
        Reads,
    ),
    (
        "/spares.v1.InventoryService/ListMovements",
        Access::Roles(MOVEMENT_LOG),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/UpsertLocations",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/ListLocations",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/UpsertLanes",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/ListLanes",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/UpsertParts",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/GetPart",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/ListParts",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/UpsertInstalledBase",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/UpsertDemandHistory",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/UpsertSupplierLeadTimes",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/ListSupplierLeadTimes",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/UpsertCriticalityCosts",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/ListCriticalityCosts",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/UpsertDemandRates",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.NetworkService/ListDemandRates",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.NetworkService/Retire",
        Access::Roles(ADMIN),
        Writes,
    ),
    (
        "/spares.v1.PlanningService/SetPolicies",
        Access::Roles(PLANNING),
        Writes,
    ),
    (
        "/spares.v1.PlanningService/GetPolicies",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/Simulate",
        Access::Roles(PLANNING),
        Writes,
    ),
    (
        "/spares.v1.PlanningService/Optimize",
        Access::Roles(PLANNING),
        Writes,
    ),
    (
        "/spares.v1.PlanningService/Frontier",
        Access::Roles(PLANNING),
        Writes,
    ),
    (
        "/spares.v1.PlanningService/Forecast",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/GetJob",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/WatchJob",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/CancelJob",
        Access::Roles(PLANNING),
        Writes,
    ),
    (
        "/spares.v1.PlanningService/GetJobResult",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/ListJobs",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/GetJobReport",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/GetPolicyHistory",
        Access::Roles(PLANNING),
        Reads,
    ),
    (
        "/spares.v1.PlanningService/RollbackPlan",
        Access::Roles(PLANNING),
        Writes,
    ),
];

/// Who may call the RPC at `path` (`/package.Service/Method`); `None` for a
/// path with no row (the gate lets only administrators through, to get
/// `UNIMPLEMENTED` or whatever the server answers).
pub fn access(path: &str) -> Option<Access> {
    row(path).map(|(access, _)| access)
}

/// Whether the RPC at `path` writes; a path with no row counts as
/// [`Effect::Writes`] (only administrators reach it, and what it does is
/// unknown, so it is recorded).
pub fn effect(path: &str) -> Effect {
    row(path).map_or(Effect::Writes, |(_, effect)| effect)
}

fn row(path: &str) -> Option<(Access, Effect)> {
    static INDEX: OnceLock<HashMap<&'static str, (Access, Effect)>> = OnceLock::new();
    INDEX
        .get_or_init(|| TABLE.iter().map(|(p, a, e)| (*p, (*a, *e))).collect())
        .get(path)
        .copied()
}

/// Whether `role` may call the RPC at `path` according to the table (health
/// and reflection count as allowed: they are open or need only a caller).
pub fn allows(path: &str, role: Role) -> bool {
    match access(path) {
        Some(Access::Health | Access::Reflection) => true,
        Some(Access::Roles(roles)) => roles.contains(&role),
        None => role == Role::Admin,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::collections::HashSet;

    #[test]
    fn rows_are_unique_and_administrators_may_call_every_rpc() {
        let mut seen = HashSet::new();
        for (path, access, _) in TABLE {
            assert!(seen.insert(*path), "{path} has two rows");
            assert!(
                path.starts_with('/') && path.matches('/').count() == 2,
                "{path}"
            );
            if let Access::Roles(roles) = access {
                assert!(roles.contains(&Role::Admin), "{path} excludes admins");
            }
        }
    }

    #[test]
    fn a_path_without_a_row_is_for_administrators_only() {
        assert!(allows("/spares.v1.NetworkService/Nope", Role::Admin));
        assert!(!allows("/spares.v1.NetworkService/Nope", Role::Planner));
        assert!(allows(
            "/spares.v1.AvailabilityService/Reserve",
            Role::Dealer
        ));
        assert!(!allows(
            "/spares.v1.AvailabilityService/Reserve",
            Role::OrderingApp
        ));
    }
}

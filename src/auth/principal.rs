//! Who is calling: the principal every authenticated request carries, the
//! same whatever the credential (API key, bearer JWT, client certificate).

use serde::{Deserialize, Serialize};
use std::fmt;
use std::str::FromStr;

/// What a principal may do, as a class; the authorisation table
/// (`auth::table`) maps every RPC to the roles allowed to call it, and scope
/// (a dealer's stores, a warehouse's locations) narrows it per request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum Role {
    /// A dealer's system, bound to one or more stores: availability,
    /// promises, and reservations for its own stores only.
    Dealer,
    /// An ordering application: read-only availability and promises.
    OrderingApp,
    /// A planner: simulations, optimisation, frontiers, forecasts and
    /// policies; reads everything; no master-data or ledger writes.
    Planner,
    /// A warehouse system: records movements at its own locations.
    Warehouse,
    /// An administrator: everything, including master data and keys.
    Admin,
}

impl Role {
    /// Every role, in a fixed order (tests iterate over it).
    pub const ALL: [Role; 5] = [
        Role::Dealer,
        Role::OrderingApp,
        Role::Planner,
        Role::Warehouse,
        Role::Admin,
    ];

    /// The role's name as written in keys, flags and messages (`ordering_app`).
    pub fn name(self) -> &'static str {
        match self {
            Role::Dealer => "dealer",
            Role::OrderingApp => "ordering_app",
            Role::Planner => "planner",
            Role::Warehouse => "warehouse",
            Role::Admin => "admin",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

/// A role name that is not one of [`Role::ALL`].
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown role `{0}` (dealer, ordering_app, planner, warehouse, admin)")]
pub struct UnknownRole(pub String);

impl FromStr for Role {
    type Err = UnknownRole;

    /// Accepts the names of [`Role::name`], case-insensitive, with `-` for `_`.
    fn from_str(text: &str) -> Result<Self, UnknownRole> {
        let wanted = text.trim().to_ascii_lowercase().replace('-', "_");
        Role::ALL
            .into_iter()
            .find(|role| role.name() == wanted)
            .ok_or_else(|| UnknownRole(text.to_string()))
    }
}

/// An authenticated caller: an id (the API key id, a JWT subject, a
/// certificate subject), its role and its scope.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Principal {
    /// Stable id of the caller, shown in the access log and audit trail.
    pub id: String,
    /// What the caller may do.
    pub role: Role,
    /// The stores a dealer acts for (empty for other roles).
    #[serde(default)]
    pub stores: Vec<String>,
    /// The locations a warehouse records movements at (empty for other roles).
    #[serde(default)]
    pub locations: Vec<String>,
}

/// The principal id of every request served with `--insecure-dev`.
pub const INSECURE_DEV_ID: &str = "insecure-dev";

impl Principal {
    /// The principal every request gets when authentication is off
    /// (`--insecure-dev`): an administrator.
    pub fn insecure_dev() -> Self {
        Self {
            id: INSECURE_DEV_ID.into(),
            role: Role::Admin,
            stores: Vec::new(),
            locations: Vec::new(),
        }
    }

    /// Whether this principal may reserve, confirm, release and see
    /// reservations for `store_id`: administrators for every store, dealers
    /// for their own.
    pub fn acts_for_store(&self, store_id: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Dealer => self.stores.iter().any(|s| s == store_id),
            _ => false,
        }
    }

    /// Whether this principal may record movements at `location_id`:
    /// administrators everywhere, warehouses at their own locations.
    pub fn acts_at_location(&self, location_id: &str) -> bool {
        match self.role {
            Role::Admin => true,
            Role::Warehouse => self.locations.iter().any(|l| l == location_id),
            _ => false,
        }
    }

    /// The actor this principal's ledger writes carry: its id and role.
    pub fn actor(&self) -> crate::domain::ledger::Actor {
        crate::domain::ledger::Actor::principal(&self.id, self.role.name())
    }

    /// Whether this principal reads everything (administrators and planners).
    pub fn reads_everything(&self) -> bool {
        matches!(self.role, Role::Admin | Role::Planner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn role_names_round_trip() {
        for role in Role::ALL {
            assert_eq!(role.name().parse::<Role>(), Ok(role));
        }
        assert_eq!("Ordering-App".parse::<Role>(), Ok(Role::OrderingApp));
        assert!("root".parse::<Role>().is_err());
    }

    #[test]
    fn scope_binds_dealers_to_their_stores_and_warehouses_to_their_locations() {
        let dealer = Principal {
            id: "d".into(),
            role: Role::Dealer,
            stores: vec!["S1".into()],
            locations: vec!["S2".into()],
        };
        assert!(dealer.acts_for_store("S1"));
        assert!(!dealer.acts_for_store("S2"));
        assert!(!dealer.acts_at_location("S2"));
        let warehouse = Principal {
            id: "w".into(),
            role: Role::Warehouse,
            stores: vec!["S1".into()],
            locations: vec!["W1".into()],
        };
        assert!(warehouse.acts_at_location("W1"));
        assert!(!warehouse.acts_for_store("S1"));
        assert!(Principal::insecure_dev().acts_for_store("any"));
        assert!(!dealer.reads_everything());
    }
}

//! API keys: created, revoked and listed by administrators (over gRPC or,
//! for the first key, offline with `spares keys create`). A key is written
//! to the store (flushed) before the in-memory ring that authentication
//! reads learns of it.

use super::Spares;
use crate::auth::Role;
use crate::auth::keys::{self, ApiKeyRecord, COLLECTION};
use crate::domain::DomainError;
use crate::domain::network::{LocationKind, validate_id};
use crate::store::StoreError;

/// What a new key is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewApiKey {
    /// The role it grants.
    pub role: Role,
    /// A dealer's stores (required for dealers, refused otherwise).
    pub stores: Vec<String>,
    /// A warehouse's locations (required for warehouses, refused otherwise).
    pub locations: Vec<String>,
    /// A label for people.
    pub name: String,
    /// The principal creating it (`offline` from the command line).
    pub created_by: String,
}

/// The principal id recorded as the creator of keys made offline.
pub const OFFLINE_CREATOR: &str = "offline";

impl Spares {
    /// Creates an API key; returns its record and the whole key, which is
    /// stored nowhere (only its SHA-256 is).
    ///
    /// # Errors
    /// `Rejected(InvalidArgument)` naming `store_ids` or `location_ids` when
    /// the scope does not fit the role or names an unknown (or, for a
    /// dealer, non-store) location; `Storage` if it could not be written or
    /// no random bytes were available.
    pub fn create_api_key(&self, new: NewApiKey) -> Result<(ApiKeyRecord, String), StoreError> {
        self.check_key_scope(&new)?;
        let generated = keys::generate()
            .map_err(|e| StoreError::Storage(format!("no random bytes for a key: {e}")))?;
        let record = ApiKeyRecord {
            key_id: generated.key_id,
            role: new.role,
            stores: new.stores,
            locations: new.locations,
            name: new.name,
            created_at: self.clock.now(),
            created_by: new.created_by,
            revoked_at: None,
            sha256: generated.sha256,
        };
        self.put_key(&record)?;
        Ok((record, generated.key))
    }

    /// Revokes the key `key_id` (a revoked key is answered as it is).
    ///
    /// # Errors
    /// `Rejected(NotFound)` for an unknown id; `Storage`.
    pub fn revoke_api_key(&self, key_id: &str) -> Result<ApiKeyRecord, StoreError> {
        let _writer = self.keys_writer.lock().unwrap_or_else(|e| e.into_inner());
        let mut record = self
            .api_keys()?
            .into_iter()
            .find(|r| r.key_id == key_id)
            .ok_or_else(|| DomainError::not_found("api key", key_id))?;
        if record.revoked_at.is_none() {
            record.revoked_at = Some(self.clock.now());
            self.put_key(&record)?;
        }
        Ok(record)
    }

    /// Every API key record, ordered by key id.
    ///
    /// # Errors
    /// `Storage`; `Corruption` if a record does not decode.
    pub fn api_keys(&self) -> Result<Vec<ApiKeyRecord>, StoreError> {
        load_keys(self.store.as_ref())
    }

    fn put_key(&self, record: &ApiKeyRecord) -> Result<(), StoreError> {
        let bytes = serde_json::to_vec(record)
            .map_err(|e| StoreError::Storage(format!("encoding an api key: {e}")))?;
        self.store.put_record(COLLECTION, &record.key_id, &bytes)?;
        self.key_ring.upsert(record);
        Ok(())
    }

    fn check_key_scope(&self, new: &NewApiKey) -> Result<(), DomainError> {
        let network = self.network();
        let check = |field: &str, ids: &[String], required: bool, stores_only: bool| {
            if required && ids.is_empty() {
                return Err(DomainError::invalid(
                    field,
                    format!("a {} key needs at least one", new.role),
                ));
            }
            if !required && !ids.is_empty() {
                return Err(DomainError::invalid(
                    field,
                    format!("a {} key has no {field}", new.role),
                ));
            }
            for (i, id) in ids.iter().enumerate() {
                let field = format!("{field}[{i}]");
                validate_id(&field, id)?;
                match network.locations.get(id) {
                    None => return Err(DomainError::invalid(field, "unknown location")),
                    Some(l) if stores_only && l.kind != LocationKind::Store => {
                        return Err(DomainError::invalid(field, "not a store"));
                    }
                    Some(_) => {}
                }
            }
            Ok(())
        };
        check("store_ids", &new.stores, new.role == Role::Dealer, true)?;
        check(
            "location_ids",
            &new.locations,
            new.role == Role::Warehouse,
            false,
        )
    }
}

/// Every API key record of a store, ordered by key id.
///
/// # Errors
/// `Storage`; `Corruption` if a record does not decode.
pub fn load_keys(store: &dyn crate::store::Store) -> Result<Vec<ApiKeyRecord>, StoreError> {
    store
        .records(COLLECTION)?
        .into_iter()
        .map(|(key, bytes)| {
            serde_json::from_slice(&bytes)
                .map_err(|e| StoreError::Corruption(format!("api key {key}: {e}")))
        })
        .collect()
}

//! `spares keys create|list|revoke`: API keys, offline on a data directory
//! no server is using or on a PostgreSQL store (how the first administrator
//! key is made) or over
//! gRPC through a running server with an administrator key.

use super::client::{ClientError, Target, connect};
use super::table::Table;
use crate::api::admin::{api_key_to_pb, role_to_pb};
use crate::auth::Role;
use crate::pb;
use crate::service::keys::{NewApiKey, OFFLINE_CREATOR};
use std::path::Path;

/// Where a keys command works.
#[derive(Debug, Clone)]
pub enum KeysPlace<'a> {
    /// Offline, on this data directory.
    DataDir(&'a Path),
    /// Directly on this PostgreSQL store (servers may be running on it).
    Database(&'a str),
    /// Through this running server.
    Server(Target),
}

/// The place of a keys command from its flags; through a server, the
/// call presents `caller`'s credentials and TLS settings.
///
/// # Errors
/// A usage message unless exactly one of them is given.
pub fn place<'a>(
    data_dir: Option<&'a Path>,
    store: Option<&'a str>,
    server: Option<&str>,
    caller: &Target,
) -> Result<KeysPlace<'a>, String> {
    match (data_dir, store, server) {
        (Some(dir), None, None) => Ok(KeysPlace::DataDir(dir)),
        (None, Some(url), None) => Ok(KeysPlace::Database(url)),
        (None, None, Some(url)) => Ok(KeysPlace::Server(Target {
            url: url.to_string(),
            ..caller.clone()
        })),
        _ => Err(
            "give --data-dir DIR (offline; no server may be using it), --store URL (a PostgreSQL store) or --server URL (with an admin --api-key or --bearer-token)"
                .into(),
        ),
    }
}

fn status(error: ClientError) -> String {
    error.to_string()
}

/// Runs `f` on the application opened offline at `place` (a data
/// directory or a PostgreSQL store), off the async runtime.
async fn offline<T: Send + 'static>(
    place: &KeysPlace<'_>,
    f: impl FnOnce(&crate::service::Spares) -> Result<T, String> + Send + 'static,
) -> Result<T, String> {
    let location = match place {
        KeysPlace::DataDir(dir) => crate::config::StoreLocation::Sled(dir.to_path_buf()),
        KeysPlace::Database(url) => crate::config::StoreLocation::Postgres(url.to_string()),
        KeysPlace::Server(_) => return Err("not an offline place".into()),
    };
    tokio::task::spawn_blocking(move || {
        let spares = super::local::open_location(&location, crate::config::Limits::default())?;
        f(&spares)
    })
    .await
    .map_err(|e| e.to_string())?
}

/// `spares keys create`: prints the new key once, with how to use it.
///
/// # Errors
/// A message naming the bad flag, the data directory's or the server's error.
pub async fn create(place: KeysPlace<'_>, new: NewApiKey) -> Result<String, String> {
    let (key, secret) = match place {
        KeysPlace::DataDir(_) | KeysPlace::Database(_) => {
            let new = NewApiKey {
                created_by: OFFLINE_CREATOR.into(),
                ..new
            };
            let (record, secret) = offline(&place, move |spares| {
                spares.create_api_key(new).map_err(|e| e.to_string())
            })
            .await?;
            (api_key_to_pb(&record), secret)
        }
        KeysPlace::Server(target) => {
            let mut clients = connect(&target).await.map_err(status)?;
            let answer = clients
                .admin
                .create_api_key(pb::CreateApiKeyRequest {
                    role: role_to_pb(new.role) as i32,
                    store_ids: new.stores,
                    location_ids: new.locations,
                    name: new.name,
                })
                .await
                .map_err(|s| status(s.into()))?
                .into_inner();
            (answer.key.unwrap_or_default(), answer.secret)
        }
    };
    Ok(format!(
        "created API key {} (role {}{}). The key is shown this once; only its SHA-256 is stored:\n\n  {secret}\n\nUse it with `--api-key {secret}` or `export SPARES_API_KEY={secret}`; revoke it with `spares keys revoke {}`.\n",
        key.key_id,
        role_name(key.role),
        scope(&key),
        key.key_id,
    ))
}

fn role_name(role: i32) -> &'static str {
    match pb::Role::try_from(role) {
        Ok(pb::Role::Dealer) => Role::Dealer.name(),
        Ok(pb::Role::OrderingApp) => Role::OrderingApp.name(),
        Ok(pb::Role::Planner) => Role::Planner.name(),
        Ok(pb::Role::Warehouse) => Role::Warehouse.name(),
        Ok(pb::Role::Admin) => Role::Admin.name(),
        _ => "?",
    }
}

fn scope(key: &pb::ApiKey) -> String {
    let mut parts = Vec::new();
    if !key.store_ids.is_empty() {
        parts.push(format!("stores {}", key.store_ids.join(",")));
    }
    if !key.location_ids.is_empty() {
        parts.push(format!("locations {}", key.location_ids.join(",")));
    }
    if parts.is_empty() {
        String::new()
    } else {
        format!("; {}", parts.join("; "))
    }
}

/// `spares keys list`: every key (never a secret), oldest id order.
///
/// # Errors
/// The data directory's or the server's error.
pub async fn list(place: KeysPlace<'_>, include_revoked: bool) -> Result<String, String> {
    let keys: Vec<pb::ApiKey> = match place {
        KeysPlace::DataDir(_) | KeysPlace::Database(_) => {
            offline(&place, move |spares| {
                Ok(spares
                    .api_keys()
                    .map_err(|e| e.to_string())?
                    .iter()
                    .filter(|r| include_revoked || r.revoked_at.is_none())
                    .map(api_key_to_pb)
                    .collect())
            })
            .await?
        }
        KeysPlace::Server(target) => {
            let mut clients = connect(&target).await.map_err(status)?;
            super::client::fetch_all(0, async |page| {
                let reply = clients
                    .admin
                    .list_api_keys(pb::ListApiKeysRequest {
                        page: Some(page),
                        include_revoked,
                    })
                    .await
                    .map_err(|s| status(s.into()))?
                    .into_inner();
                Ok::<_, String>((reply.keys, reply.next_page_token))
            })
            .await?
        }
    };
    let mut table = Table::new(&[
        "key id", "role", "scope", "name", "created", "by", "revoked",
    ]);
    let time = |t: Option<&prost_types::Timestamp>| {
        t.map(|t| {
            jiff::Timestamp::new(t.seconds, 0)
                .map(|t| t.to_string())
                .unwrap_or_default()
        })
        .unwrap_or_default()
    };
    for key in &keys {
        table.row(vec![
            key.key_id.clone(),
            role_name(key.role).into(),
            scope(key).trim_start_matches("; ").to_string(),
            key.name.clone(),
            time(key.created_at.as_ref()),
            key.created_by.clone(),
            time(key.revoked_at.as_ref()),
        ]);
    }
    if table.is_empty() {
        return Ok("no API keys\n".into());
    }
    Ok(table.render())
}

/// `spares keys revoke ID`.
///
/// # Errors
/// Unknown id; the data directory's or the server's error.
pub async fn revoke(place: KeysPlace<'_>, key_id: &str) -> Result<String, String> {
    match place {
        KeysPlace::DataDir(_) | KeysPlace::Database(_) => {
            let key_id = key_id.to_string();
            offline(&place, move |spares| {
                spares.revoke_api_key(&key_id).map_err(|e| e.to_string())
            })
            .await?;
        }
        KeysPlace::Server(target) => {
            let mut clients = connect(&target).await.map_err(status)?;
            clients
                .admin
                .revoke_api_key(pb::RevokeApiKeyRequest {
                    key_id: key_id.to_string(),
                })
                .await
                .map_err(|s| status(s.into()))?;
        }
    }
    Ok(format!(
        "revoked API key {key_id}: it authenticates nothing from now on\n"
    ))
}

//! The policy history in sled: a plan's header in `records/plan_history`
//! (key: the plan id), each of its changes in `records/plan_changes` (key:
//! `<plan id>/<index, 9 digits>`, so one plan's changes are one prefix scan,
//! in order), and its policies in `network/policies`, all written in one
//! transaction. They are ordinary record collections, so a backup carries them
//! as `record` lines and a restore puts them back with no special case.

use super::{SledStore, corrupt, from_json, storage, to_json};
use crate::domain::plans::{PlanHeader, PlanRecord, PolicyChange};
use crate::store::StoreError;
use sled::Transactional;
use sled::transaction::{ConflictableTransactionError, TransactionalTree};

/// The collection of plan headers.
pub const PLAN_HISTORY: &str = "plan_history";
/// The collection of plan changes.
pub const PLAN_CHANGES: &str = "plan_changes";
/// Index of the policies tree in `NETWORK_COLLECTIONS`.
const POLICIES: usize = 6;

fn change_key(plan_id: &str, index: usize) -> String {
    format!("{plan_id}/{index:09}")
}

impl SledStore {
    fn records_tree(&self, collection: &str) -> Result<sled::Tree, StoreError> {
        self.db
            .open_tree(format!("records/{collection}"))
            .map_err(storage)
    }

    /// See [`crate::store::Store::apply_plan`].
    pub(super) fn write_plan(&self, plan: &PlanRecord) -> Result<(), StoreError> {
        let policies = self
            .network
            .get(POLICIES)
            .ok_or_else(|| corrupt("no policies tree"))?
            .clone();
        let mut policy_writes = Vec::with_capacity(plan.changes.len());
        let mut change_writes = Vec::with_capacity(plan.changes.len());
        for (i, change) in plan.changes.iter().enumerate() {
            let key = to_json(&(&change.part_id, &change.location_id))?;
            let value = change.after.as_ref().map(to_json).transpose()?;
            policy_writes.push((key, value));
            change_writes.push((change_key(&plan.header.plan_id, i), to_json(change)?));
        }
        let header = to_json(&plan.header)?;
        let trees = [
            policies,
            self.records_tree(PLAN_HISTORY)?,
            self.records_tree(PLAN_CHANGES)?,
        ];
        trees[..]
            .transaction(|trees: &Vec<TransactionalTree>| {
                let [policies, history, changes] = &trees[..] else {
                    return Ok(());
                };
                if history.get(plan.header.plan_id.as_bytes())?.is_some() {
                    return Err(ConflictableTransactionError::Abort(()));
                }
                for (key, value) in &policy_writes {
                    match value {
                        Some(value) => policies.insert(key.as_slice(), value.as_slice())?,
                        None => policies.remove(key.as_slice())?,
                    };
                }
                for (key, value) in &change_writes {
                    changes.insert(key.as_bytes(), value.as_slice())?;
                }
                history.insert(plan.header.plan_id.as_bytes(), header.as_slice())?;
                Ok(())
            })
            .map_err(|e| match e {
                sled::transaction::TransactionError::Abort(()) => {
                    StoreError::Rejected(crate::domain::DomainError::FailedPrecondition(format!(
                        "{} is already in the policy history",
                        plan.header.plan_id
                    )))
                }
                other => storage(format!("{other:?}")),
            })?;
        self.flush()
    }

    /// See [`crate::store::Store::plan_history`].
    pub(super) fn read_plan_history(&self) -> Result<Vec<PlanHeader>, StoreError> {
        let mut out = Vec::new();
        for item in self.records_tree(PLAN_HISTORY)?.iter() {
            let (_, value) = item.map_err(storage)?;
            out.push(from_json(&value, PLAN_HISTORY)?);
        }
        Ok(out)
    }

    /// See [`crate::store::Store::plan`].
    pub(super) fn read_plan(&self, plan_id: &str) -> Result<Option<PlanRecord>, StoreError> {
        let Some(header) = self
            .records_tree(PLAN_HISTORY)?
            .get(plan_id.as_bytes())
            .map_err(storage)?
        else {
            return Ok(None);
        };
        let header: PlanHeader = from_json(&header, PLAN_HISTORY)?;
        let mut changes: Vec<PolicyChange> = Vec::with_capacity(header.changes);
        let prefix = format!("{plan_id}/");
        for item in self
            .records_tree(PLAN_CHANGES)?
            .scan_prefix(prefix.as_bytes())
        {
            let (_, value) = item.map_err(storage)?;
            changes.push(from_json(&value, PLAN_CHANGES)?);
        }
        if changes.len() != header.changes {
            return Err(corrupt(format!(
                "{plan_id} lists {} changes, {} are stored",
                header.changes,
                changes.len()
            )));
        }
        Ok(Some(PlanRecord { header, changes }))
    }
}

//! Applying plans and rolling them back: the policy history of
//! [`crate::domain::plans`] kept through the [`crate::store::Store`]. Both run
//! under the master-data writer lock, so the history's order is the order in
//! which the policies in force changed, and the network snapshot is swapped
//! only after the store has committed and flushed the plan.

use super::Spares;
use crate::domain::DomainError;
use crate::domain::network::{LocationId, PartId, Qty};
use crate::domain::plans::{
    PlanHeader, PlanRecord, PolicyChange, apply_changes, plan_changes, plan_id, rollback_changes,
};
use crate::store::StoreError;
use std::sync::Arc;

impl Spares {
    /// Makes `levels` (part, location, level at any echelon) the policies in
    /// force as base stock, recording the policies they replace as a new plan
    /// of the history, with `source` (e.g. `optimize:job-000042`). Returns
    /// the plan's header; a plan that changes nothing is still recorded, so
    /// every apply has an id.
    ///
    /// Errors: an unknown part or location is `NotFound`, a repeated
    /// part-location `InvalidArgument` (both naming `levels[i]`); storage
    /// failures (then nothing changed).
    pub fn apply_plan(
        &self,
        levels: &[(PartId, LocationId, Qty)],
        source: &str,
    ) -> Result<PlanHeader, StoreError> {
        self.record_plan(source, None, |network| {
            plan_changes(network, levels, source)
        })
    }

    /// [`Self::apply_plan`], unless a plan from `source` is already in the
    /// history: then that plan and `false`, and nothing changes. An
    /// optimisation job applies its plan under the source
    /// `optimize:<job id>`; a job taken over from a server that died after
    /// applying its plan but before storing its outcome runs again from the
    /// start, and must not add the plan a second time.
    ///
    /// Errors: those of [`Self::apply_plan`].
    pub fn apply_plan_once(
        &self,
        levels: &[(PartId, LocationId, Qty)],
        source: &str,
    ) -> Result<(PlanHeader, bool), StoreError> {
        if let Some(applied) = self
            .store
            .plan_history()?
            .into_iter()
            .find(|plan| plan.source == source)
        {
            return Ok((applied, false));
        }
        Ok((self.apply_plan(levels, source)?, true))
    }

    /// Undoes the plan `plan_id`: every policy it set goes back exactly to
    /// what it replaced (removed where there was none). The rollback is a new
    /// plan of the history (`rollback:<plan_id>`), so it can be undone too.
    ///
    /// Errors: an unknown plan is `NotFound`; a plan whose policies changed
    /// since it was applied is `FailedPrecondition` naming the first one.
    pub fn rollback_plan(&self, plan_id: &str) -> Result<PlanHeader, StoreError> {
        let plan = self
            .store
            .plan(plan_id)?
            .ok_or_else(|| DomainError::not_found("plan", plan_id))?;
        let source = format!("rollback:{plan_id}");
        self.record_plan(&source, Some(plan_id.to_string()), |network| {
            rollback_changes(network, &plan)
        })
    }

    /// The policy history, oldest first.
    pub fn plan_history(&self) -> Result<Vec<PlanHeader>, StoreError> {
        self.store.plan_history()
    }

    /// One plan of the history with every change it made.
    ///
    /// Errors: an unknown plan is `NotFound`.
    pub fn plan(&self, plan_id: &str) -> Result<PlanRecord, StoreError> {
        Ok(self
            .store
            .plan(plan_id)?
            .ok_or_else(|| DomainError::not_found("plan", plan_id))?)
    }

    /// Computes a plan's changes against the network in force (under the
    /// writer lock, so nothing changes in between), stores it, then swaps in
    /// the network with its policies.
    fn record_plan(
        &self,
        source: &str,
        rolls_back: Option<String>,
        changes: impl FnOnce(&crate::domain::network::Network) -> Result<Vec<PolicyChange>, DomainError>,
    ) -> Result<PlanHeader, StoreError> {
        let _writer = self
            .master_data_writer
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let current = self.network_for_write()?;
        let changes = changes(&current)?;
        let header = PlanHeader {
            plan_id: plan_id(self.store.plan_history()?.len() + 1),
            applied_at: self.clock.now(),
            source: source.to_string(),
            rolls_back,
            changes: changes.len(),
        };
        let plan = PlanRecord { header, changes };
        self.store.apply_plan(&plan)?;
        let mut next = (*current).clone();
        apply_changes(&mut next, &plan.changes);
        *self.network.write().unwrap_or_else(|e| e.into_inner()) = Arc::new(next);
        Ok(plan.header)
    }
}

//! `spares policies get | set | history | rollback`: the policies in force,
//! setting one by hand, the history of applied plans, and undoing one.

use super::client::{ClientError, Target, connect};
use super::table::Table;
use crate::pb;

/// Most changes of one plan printed unless asked for more.
pub const DEFAULT_CHANGE_ROWS: usize = 100;

fn when(ts: Option<&prost_types::Timestamp>) -> String {
    ts.and_then(|t| jiff::Timestamp::new(t.seconds, t.nanos).ok())
        .map_or_else(
            || "-".into(),
            |t| t.strftime("%Y-%m-%d %H:%M:%SZ").to_string(),
        )
}

fn or_dash(text: &str) -> String {
    if text.is_empty() {
        "-".into()
    } else {
        text.to_string()
    }
}

/// A policy as its level: `S=4` (base stock), `s=2 S=6`, `R=2 Q=3`, or `-`.
fn level(policy: Option<&pb::Policy>) -> String {
    let Some(p) = policy else {
        return "-".into();
    };
    let protected = if p.protected_quantity > 0 {
        format!(" protect {}", p.protected_quantity)
    } else {
        String::new()
    };
    let rule = match pb::PolicyKind::try_from(p.kind) {
        Ok(pb::PolicyKind::MinMax) => format!("s={} S={}", p.reorder_point, p.order_up_to),
        Ok(pb::PolicyKind::ReorderPointQuantity) => {
            format!("R={} Q={}", p.reorder_point, p.order_quantity)
        }
        _ => format!("S={}", p.order_up_to),
    };
    format!("{rule}{protected}")
}

/// Renders the list of plans.
pub fn plans_table(plans: &[pb::PolicyPlan]) -> String {
    if plans.is_empty() {
        return "no plan has been applied yet (spares optimize --apply)\n".into();
    }
    let mut table = Table::new(&["plan", "applied", "source", "changes", "rolled back by"]);
    for p in plans {
        table.row(vec![
            p.plan_id.clone(),
            when(p.applied_at.as_ref()),
            p.source.clone(),
            p.changes.to_string(),
            or_dash(&p.rolled_back_by_plan_id),
        ]);
    }
    table.render()
}

/// Renders one plan's changes (at most `limit` of `total`).
pub fn changes_table(changes: &[pb::PolicyChange], total: u64) -> String {
    let mut table = Table::new(&["part", "location", "before", "after"]);
    for c in changes {
        table.row(vec![
            c.part_id.clone(),
            c.location_id.clone(),
            level(c.before.as_ref()),
            level(c.after.as_ref()),
        ]);
    }
    let mut out = table.render();
    let shown = changes.len() as u64;
    if shown < total {
        out.push_str(&format!(
            "... {} more (--limit to show more)\n",
            total - shown
        ));
    }
    out
}

/// `spares policies history [--plan ID]`: the plans applied, or one plan's changes.
pub async fn history(
    server: &Target,
    plan_id: Option<&str>,
    limit: usize,
) -> Result<String, ClientError> {
    let mut clients = connect(server).await?;
    let mut plans = Vec::new();
    // The changes of one plan, up to the limit; without a plan, every plan.
    let change_limit = if plan_id.is_some() { limit } else { usize::MAX };
    let (mut changes, _) = super::client::fetch_pages(0, change_limit, async |page| {
        let reply = clients
            .planning
            .get_policy_history(pb::GetPolicyHistoryRequest {
                plan_id: plan_id.unwrap_or_default().to_string(),
                page: Some(page),
            })
            .await?
            .into_inner();
        if plan_id.is_none() {
            plans.extend(reply.plans);
        } else if plans.is_empty() {
            plans = reply.plans;
        }
        Ok::<_, ClientError>((reply.changes, reply.next_page_token))
    })
    .await?;
    let Some(plan_id) = plan_id else {
        return Ok(plans_table(&plans));
    };
    changes.truncate(limit);
    let total = plans.first().map_or(0, |p| p.changes);
    Ok(format!(
        "{}\n{}",
        plans_table(&plans),
        if total == 0 {
            format!("{plan_id} changed no policy\n")
        } else {
            changes_table(&changes, total)
        }
    ))
}

/// `spares policies rollback PLAN_ID`: restores the policies the plan replaced.
pub async fn rollback(server: &Target, plan_id: &str) -> Result<String, ClientError> {
    let mut clients = connect(server).await?;
    let plan = clients
        .planning
        .rollback_plan(pb::RollbackPlanRequest {
            plan_id: plan_id.to_string(),
        })
        .await?
        .into_inner();
    Ok(format!(
        "rolled back {plan_id} as {}: {} policies restored to what they were before it\n",
        plan.plan_id, plan.changes
    ))
}

/// `spares policies get [--part P] [--location L]`: the policies in force.
///
/// # Errors
/// The server's refusal.
pub async fn get(
    server: &Target,
    part: Option<&str>,
    location: Option<&str>,
) -> Result<String, ClientError> {
    let mut clients = connect(server).await?;
    let policies = fetch(
        &mut clients,
        part.unwrap_or_default(),
        location.unwrap_or_default(),
    )
    .await?;
    if policies.is_empty() {
        return Ok("no policy matches\n".into());
    }
    let mut table = Table::new(&["part", "location", "policy", "source", "updated"]);
    for p in &policies {
        table.row(vec![
            p.part_id.clone(),
            p.location_id.clone(),
            level(Some(p)),
            or_dash(&p.source),
            when(p.updated_at.as_ref()),
        ]);
    }
    Ok(table.render())
}

/// Every policy matching `part` and `location` (empty: any), page by page.
async fn fetch(
    clients: &mut super::client::Clients,
    part: &str,
    location: &str,
) -> Result<Vec<pb::Policy>, ClientError> {
    super::client::fetch_all(0, async |page| {
        let reply = clients
            .planning
            .get_policies(pb::GetPoliciesRequest {
                part_id: part.into(),
                location_id: location.into(),
                page: Some(page),
            })
            .await?
            .into_inner();
        Ok((reply.policies, reply.next_page_token))
    })
    .await
}

/// What `spares policies set` changes; fields left `None` keep the value
/// of the policy in force (or 0 when there is none).
#[derive(Debug, Clone, Default)]
pub struct PolicyEdit {
    /// `base-stock`, `min-max` or `rq`.
    pub kind: Option<String>,
    /// S.
    pub order_up_to: Option<u64>,
    /// s (min-max) or R (R, Q).
    pub reorder_point: Option<u64>,
    /// Q.
    pub order_quantity: Option<u64>,
    /// Units only critical demand may take.
    pub protected_quantity: Option<u64>,
}

/// Parses `--kind`.
fn policy_kind(text: &str) -> Result<pb::PolicyKind, ClientError> {
    match text.to_ascii_lowercase().replace('_', "-").as_str() {
        "base-stock" | "s" => Ok(pb::PolicyKind::BaseStock),
        "min-max" | "ss" => Ok(pb::PolicyKind::MinMax),
        "rq" | "r-q" | "reorder-point-quantity" => Ok(pb::PolicyKind::ReorderPointQuantity),
        other => Err(ClientError::Usage(format!(
            "--kind: unknown `{other}` (base-stock, min-max, rq)"
        ))),
    }
}

/// `before` with `edit` applied, for `part` at `location`, sourced `cli`.
///
/// # Errors
/// [`ClientError::Usage`] for a bad kind or nothing to change.
pub fn edited(
    part: &str,
    location: &str,
    before: Option<&pb::Policy>,
    edit: &PolicyEdit,
) -> Result<pb::Policy, ClientError> {
    let unchanged = edit.kind.is_none()
        && edit.order_up_to.is_none()
        && edit.reorder_point.is_none()
        && edit.order_quantity.is_none()
        && edit.protected_quantity.is_none();
    if unchanged {
        return Err(ClientError::Usage(
            "nothing to set: give --order-up-to, --reorder-point, --order-quantity, --protect or --kind"
                .into(),
        ));
    }
    let mut policy = before.cloned().unwrap_or_else(|| pb::Policy {
        kind: pb::PolicyKind::BaseStock as i32,
        ..Default::default()
    });
    policy.part_id = part.into();
    policy.location_id = location.into();
    if let Some(kind) = &edit.kind {
        policy.kind = policy_kind(kind)? as i32;
    }
    policy.order_up_to = edit.order_up_to.unwrap_or(policy.order_up_to);
    policy.reorder_point = edit.reorder_point.unwrap_or(policy.reorder_point);
    policy.order_quantity = edit.order_quantity.unwrap_or(policy.order_quantity);
    policy.protected_quantity = edit.protected_quantity.unwrap_or(policy.protected_quantity);
    policy.source = "cli".into();
    policy.updated_at = None;
    Ok(policy)
}

/// `spares policies set PART LOCATION ...`: changes the given fields of the
/// policy in force (read, change, write with SetPolicies) and prints it
/// before and after. A hand-set policy is not a plan: it does not enter the
/// history `spares policies history` shows.
///
/// # Errors
/// Bad flags; the server's refusal (e.g. an unknown part or location).
pub async fn set(
    server: &Target,
    part: &str,
    location: &str,
    edit: &PolicyEdit,
) -> Result<String, ClientError> {
    let mut clients = connect(server).await?;
    let before = fetch(&mut clients, part, location)
        .await?
        .into_iter()
        .find(|p| p.part_id == part && p.location_id == location);
    let policy = edited(part, location, before.as_ref(), edit)?;
    clients
        .planning
        .set_policies(pb::SetPoliciesRequest {
            policies: vec![policy.clone()],
        })
        .await?;
    Ok(format!(
        "{part} at {location}: {} -> {}\n",
        level(before.as_ref()),
        level(Some(&policy))
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn levels_read_as_their_rule() {
        let base = pb::Policy {
            kind: pb::PolicyKind::BaseStock as i32,
            order_up_to: 4,
            reorder_point: 3,
            protected_quantity: 1,
            ..Default::default()
        };
        assert_eq!(level(Some(&base)), "S=4 protect 1");
        assert_eq!(level(None), "-");
        let table = changes_table(
            &[pb::PolicyChange {
                part_id: "P1".into(),
                location_id: "RWH".into(),
                before: None,
                after: Some(base),
            }],
            3,
        );
        assert!(table.contains("RWH") && table.contains("2 more"), "{table}");
    }

    #[test]
    fn set_changes_only_the_given_fields() {
        let before = pb::Policy {
            part_id: "P1".into(),
            location_id: "STR".into(),
            kind: pb::PolicyKind::MinMax as i32,
            order_up_to: 6,
            reorder_point: 2,
            protected_quantity: 1,
            source: "import".into(),
            ..Default::default()
        };
        let edit = PolicyEdit {
            protected_quantity: Some(3),
            ..Default::default()
        };
        let after = edited("P1", "STR", Some(&before), &edit).unwrap();
        assert_eq!(level(Some(&after)), "s=2 S=6 protect 3");
        assert_eq!(after.source, "cli");
        let fresh = edited(
            "P2",
            "STR",
            None,
            &PolicyEdit {
                order_up_to: Some(4),
                ..Default::default()
            },
        )
        .unwrap();
        assert_eq!(level(Some(&fresh)), "S=4");
        assert!(edited("P1", "STR", Some(&before), &PolicyEdit::default()).is_err());
        let bad = PolicyEdit {
            kind: Some("fifo".into()),
            ..Default::default()
        };
        assert!(edited("P1", "STR", None, &bad).is_err());
    }
}

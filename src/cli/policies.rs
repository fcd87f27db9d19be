//! `spares policies history` and `spares policies rollback`: the policy
//! history of applied plans, and undoing one.

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
    let mut token = String::new();
    let mut plans = Vec::new();
    let mut changes = Vec::new();
    loop {
        let page = clients
            .planning
            .get_policy_history(pb::GetPolicyHistoryRequest {
                plan_id: plan_id.unwrap_or_default().to_string(),
                page: Some(pb::PageRequest {
                    page_size: 0,
                    page_token: token,
                }),
            })
            .await?
            .into_inner();
        if plan_id.is_none() {
            plans.extend(page.plans);
        } else {
            if plans.is_empty() {
                plans = page.plans;
            }
            changes.extend(page.changes);
        }
        token = page.next_page_token;
        if token.is_empty() || (plan_id.is_some() && changes.len() >= limit) {
            break;
        }
    }
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
}

//! Explanations in numbers: why each recommended level, against the averages plan.

use crate::error::{Result, invalid};
use crate::scenario::{CurveModel, ScenarioModel, evaluate};
use crate::tail::cvar;
use serde::{Deserialize, Serialize};

/// Why one part-location holds what it holds.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub struct Explanation {
    /// Index into the model's part-locations.
    pub part_location: usize,
    /// Recommended units.
    pub stock: u64,
    /// Units the averages plan would hold, if given.
    pub averages_stock: Option<u64>,
    /// The unit explained: the last one held, or a first one not bought when stock is 0.
    pub unit: u64,
    /// Units in the step explained: 1, or more where a curve was simulated on a coarser
    /// grid of levels (then `unit` is the top of the step); 0 when no step was simulated.
    #[serde(default)]
    pub step_units: u64,
    /// CVaR_alpha of this part's downtime cost (over its lane group) without that unit.
    pub cvar_without_unit: f64,
    /// The same with that unit.
    pub cvar_with_unit: f64,
    /// Expected downtime cost of this part without that unit.
    pub expected_without_unit: f64,
    /// The same with that unit.
    pub expected_with_unit: f64,
    /// Money tied up in that unit (or step).
    pub unit_cost: f64,
    /// Change of the network objective from adding that unit (negative: it pays).
    pub objective_change: f64,
    /// One sentence for planners.
    pub text: String,
}

/// Explains every part-location of `stock`. `averages` (units per part-location from the
/// averages baseline) is quoted when given. Errors if the lengths do not match the model.
pub fn explain(
    model: &ScenarioModel,
    stock: &[u64],
    averages: Option<&[u64]>,
) -> Result<Vec<Explanation>> {
    let prepared = model.prepare()?;
    let n = model.part_locations.len();
    if stock.len() != n || averages.is_some_and(|a| a.len() != n) {
        return Err(invalid("stock", format!("needs {n} entries")));
    }
    let base = evaluate(model, stock)?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let unit = stock[i].max(1);
        let mut with = stock.to_vec();
        with[i] = unit;
        let mut without = stock.to_vec();
        without[i] = unit - 1;
        let group = prepared.group_of[i];
        let (loss_with, loss_without) = (
            crate::scenario::evaluate_group(&prepared, group, &with),
            crate::scenario::evaluate_group(&prepared, group, &without),
        );
        let current = if stock[i] == unit {
            &loss_with
        } else {
            &loss_without
        };
        let change = objective_shift_with(
            &base.scenario_losses,
            current,
            &loss_with,
            &loss_without,
            model.cvar_weight,
            model.cvar_alpha,
        )? + model.part_locations[i].holding_cost;
        let alpha = model.cvar_alpha;
        let q = &model.part_locations[i];
        let mut e = Explanation {
            part_location: i,
            stock: stock[i],
            averages_stock: averages.map(|a| a[i]),
            unit,
            step_units: 1,
            cvar_without_unit: cvar(&loss_without, alpha)?,
            cvar_with_unit: cvar(&loss_with, alpha)?,
            expected_without_unit: mean(&loss_without),
            expected_with_unit: mean(&loss_with),
            unit_cost: q.unit_cost,
            objective_change: change,
            text: String::new(),
        };
        e.text = sentence(&e, &q.part, &q.location, alpha);
        out.push(e);
    }
    Ok(out)
}

/// Explains every item of a curve plan: the CVaR and mean of the item's own simulated
/// downtime cost with and without its last unit (or a first unit when it holds none), and
/// the change of the network objective. Errors if the lengths do not match the model or a
/// level is past an item's curve.
pub fn explain_curves(
    model: &CurveModel,
    stock: &[u64],
    averages: Option<&[u64]>,
) -> Result<Vec<Explanation>> {
    let n = model.items.len();
    if stock.len() != n || averages.is_some_and(|a| a.len() != n) {
        return Err(invalid("stock", format!("needs {n} entries")));
    }
    let base = model.evaluate(stock)?;
    let alpha = model.cvar_alpha;
    let mut out = Vec::with_capacity(n);
    for (i, item) in model.items.iter().enumerate() {
        let Ok(j) = item.levels.binary_search(&stock[i]) else {
            return Err(invalid(
                format!("stock[{i}]"),
                "is not one of the item's levels",
            ));
        };
        // The step into the held level, or the first step up when the item holds none.
        let (from, to) = if stock[i] == 0 {
            (j, (j + 1).min(item.levels.len() - 1))
        } else {
            (j.saturating_sub(1), j)
        };
        let (without, with) = (&item.losses[from], &item.losses[to]);
        let current = &item.losses[j];
        let step = item.levels[to] - item.levels[from];
        let change = objective_shift_with(
            &base.scenario_losses,
            current,
            with,
            without,
            model.cvar_weight,
            alpha,
        )? + item.holding_cost * step as f64;
        let mut e = Explanation {
            part_location: i,
            stock: stock[i],
            averages_stock: averages.map(|a| a[i]),
            unit: item.levels[to],
            step_units: step,
            cvar_without_unit: cvar(without, alpha)?,
            cvar_with_unit: cvar(with, alpha)?,
            expected_without_unit: mean(without),
            expected_with_unit: mean(with),
            unit_cost: item.unit_cost * step as f64,
            objective_change: change,
            text: String::new(),
        };
        e.text = sentence(&e, &item.part, &item.location, alpha);
        out.push(e);
    }
    Ok(out)
}

/// Objective (mean + weight x CVaR, no holding) with `with` in place of `current` minus
/// the same with `without`.
fn objective_shift_with(
    total: &[f64],
    current: &[f64],
    with: &[f64],
    without: &[f64],
    weight: f64,
    alpha: f64,
) -> Result<f64> {
    let shifted = |group: &[f64]| -> Result<f64> {
        let losses: Vec<f64> = total
            .iter()
            .zip(current)
            .zip(group)
            .map(|((t, c), g)| t - c + g)
            .collect();
        Ok(mean(&losses) + weight * cvar(&losses, alpha)?)
    };
    Ok(shifted(with)? - shifted(without)?)
}

/// Mean of a non-empty slice.
fn mean(values: &[f64]) -> f64 {
    values.iter().sum::<f64>() / values.len().max(1) as f64
}

/// Money for people: $950, $2.1k, $1.3M.
pub fn money(amount: f64) -> String {
    let a = amount.abs();
    let sign = if amount < 0.0 { "-" } else { "" };
    if a >= 1e6 {
        format!("{sign}${:.1}M", a / 1e6)
    } else if a >= 1e3 {
        format!("{sign}${:.1}k", a / 1e3)
    } else {
        format!("{sign}${a:.0}")
    }
}

/// 1st, 2nd, 3rd, 4th, 11th, 21st.
fn ordinal(n: u64) -> String {
    let suffix = match (n % 10, n % 100) {
        (_, 11..=13) => "th",
        (1, _) => "st",
        (2, _) => "nd",
        (3, _) => "rd",
        _ => "th",
    };
    format!("{n}{suffix}")
}

/// The planner-facing sentence.
fn sentence(e: &Explanation, part: &str, location: &str, alpha: f64) -> String {
    let level = format!("CVaR{:.0}", alpha * 100.0);
    let averages = e
        .averages_stock
        .map(|a| format!("; averages would hold {a}"))
        .unwrap_or_default();
    let cvar = |v: f64| money(v);
    if e.step_units == 0 {
        return format!(
            "{} units of {part} at {location}: simulated {level} downtime cost is {} and no further unit could pay{averages}",
            e.stock,
            cvar(e.cvar_with_unit),
        );
    }
    let units = if e.step_units == 1 {
        format!("the {} unit", ordinal(e.unit))
    } else {
        format!("units {} to {}", e.unit + 1 - e.step_units, e.unit)
    };
    if e.stock == 0 {
        let units = if e.step_units == 1 {
            format!("a {} unit", ordinal(e.unit))
        } else {
            format!("{} units", e.step_units)
        };
        return format!(
            "0 units of {part} at {location}: {units} would lower simulated {level} downtime cost from {} to {} for {} of stock, which does not pay{averages}",
            cvar(e.cvar_without_unit),
            cvar(e.cvar_with_unit),
            money(e.unit_cost)
        );
    }
    let verb = if e.step_units == 1 { "lowers" } else { "lower" };
    format!(
        "{} units of {part} at {location}: {units} {verb} simulated {level} downtime cost from {} to {} for {} of stock{averages}",
        e.stock,
        cvar(e.cvar_without_unit),
        cvar(e.cvar_with_unit),
        money(e.unit_cost)
    )
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::scenario::PartLocation;

    #[test]
    fn explains_a_curve_level_in_numbers() {
        use crate::scenario::CurveItem;
        // 20 scenarios; one loses $24k at 2 units and $12k at 3, the rest nothing.
        let row = |worst: f64| {
            let mut r = vec![0.0; 20];
            r[7] = worst;
            r
        };
        let model = CurveModel {
            items: vec![CurveItem {
                part: "P1".into(),
                location: "Store 117".into(),
                unit_cost: 2100.0,
                holding_cost: 50.0,
                min_stock: 0,
                levels: vec![0, 1, 2, 3, 5],
                losses: vec![
                    row(48_000.0),
                    row(36_000.0),
                    row(24_000.0),
                    row(12_000.0),
                    row(0.0),
                ],
            }],
            scenarios: 20,
            budget: None,
            cvar_alpha: 0.95,
            cvar_weight: 1.0,
        };
        let e = &explain_curves(&model, &[3], Some(&[1])).unwrap()[0];
        assert!((e.cvar_without_unit - 24_000.0).abs() < 1e-9);
        assert!((e.cvar_with_unit - 12_000.0).abs() < 1e-9);
        assert!((e.expected_with_unit - 600.0).abs() < 1e-9);
        assert_eq!(
            e.text,
            "3 units of P1 at Store 117: the 3rd unit lowers simulated CVaR95 downtime cost from $24.0k to $12.0k for $2.1k of stock; averages would hold 1"
        );
        // Mean falls by 600 and CVaR by 12,000 for 50 of holding.
        assert!((e.objective_change - (50.0 - 600.0 - 12_000.0)).abs() < 1e-6);
        let zero = &explain_curves(&model, &[0], None).unwrap()[0];
        assert_eq!(zero.unit, 1);
        assert!(
            zero.text
                .starts_with("0 units of P1 at Store 117: a 1st unit would lower")
        );
        let five = &explain_curves(&model, &[5], None).unwrap()[0];
        assert_eq!(five.step_units, 2);
        assert_eq!(
            five.text,
            "5 units of P1 at Store 117: units 4 to 5 lower simulated CVaR95 downtime cost from $12.0k to $0 for $4.2k of stock"
        );
        assert!(explain_curves(&model, &[4], None).is_err());
    }

    #[test]
    fn explains_the_last_unit_in_numbers() {
        let pl = PartLocation {
            part: "P1".into(),
            location: "Store 117".into(),
            unit_cost: 2100.0,
            holding_cost: 50.0,
            downtime_cost_per_hour: 1000.0,
            emergency_delay_hours: 12.0,
            emergency_cost_per_unit: 0.0,
            fill_rate_floor: None,
            max_stock: None,
        };
        let demand = (0..20u64).map(|k| vec![k % 5]).collect();
        let model = ScenarioModel {
            part_locations: vec![pl],
            lanes: vec![],
            capacities: vec![],
            demand,
            budget: None,
            cvar_alpha: 0.95,
            cvar_weight: 1.0,
        };
        let e = &explain(&model, &[3], Some(&[1])).unwrap()[0];
        // Demand 0..4 uniformly; with 2 units the worst 5% short 2 units (24k), with 3 one (12k).
        assert!((e.cvar_without_unit - 24_000.0).abs() < 1e-9);
        assert!((e.cvar_with_unit - 12_000.0).abs() < 1e-9);
        assert_eq!(
            e.text,
            "3 units of P1 at Store 117: the 3rd unit lowers simulated CVaR95 downtime cost from $24.0k to $12.0k for $2.1k of stock; averages would hold 1"
        );
        assert!(e.objective_change < 0.0);
        assert_eq!(ordinal(22), "22nd");
        assert_eq!(money(950.0), "$950");
    }
}

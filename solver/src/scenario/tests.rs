//! Scenario LP tests: brute force on tiny instances, metamorphic checks, decomposition gap.

use super::*;
use proptest::prelude::*;
use rand::{RngExt, SeedableRng, rngs::StdRng};

fn part_location(part: &str, location: &str, rng: &mut StdRng) -> PartLocation {
    PartLocation {
        part: part.into(),
        location: location.into(),
        unit_cost: rng.random_range(1.0..5.0),
        holding_cost: rng.random_range(0.1..1.0),
        downtime_cost_per_hour: rng.random_range(0.05..0.5),
        emergency_delay_hours: rng.random_range(5.0..30.0),
        emergency_cost_per_unit: rng.random_range(0.0..2.0),
        fill_rate_floor: None,
        max_stock: None,
    }
}

/// A tiny random model: three part-locations (two of one part joined by a lane), a few
/// scenarios, a budget, one capacity, sometimes a fill floor.
fn tiny(seed: u64) -> ScenarioModel {
    let mut rng = StdRng::seed_from_u64(seed);
    let mut part_locations = vec![
        part_location("A", "store1", &mut rng),
        part_location("A", "store2", &mut rng),
        part_location("B", "store1", &mut rng),
    ];
    if rng.random::<f64>() < 0.4 {
        part_locations[2].fill_rate_floor = Some(0.5);
    }
    let scenarios = rng.random_range(4..9);
    let demand = (0..scenarios)
        .map(|_| (0..3).map(|_| rng.random_range(0..4u64)).collect())
        .collect();
    ScenarioModel {
        part_locations,
        lanes: vec![LateralLane {
            from: 0,
            to: 1,
            delay_hours: rng.random_range(1.0..4.0),
            cost_per_unit: 0.5,
        }],
        capacities: vec![LocationCapacity {
            location: "store1".into(),
            max_units: rng.random_range(2..6),
        }],
        demand,
        budget: Some(rng.random_range(4.0..20.0)),
        cvar_alpha: 0.8,
        cvar_weight: rng.random_range(0.0..2.0),
    }
}

/// Best feasible objective by enumerating every stock vector up to the useful bounds.
fn exhaustive(model: &ScenarioModel) -> Option<(Vec<u64>, f64)> {
    let prepared = model.prepare().unwrap();
    let upper = prepared.upper.clone();
    let mut best: Option<(Vec<u64>, f64)> = None;
    let mut stock = vec![0u64; upper.len()];
    loop {
        let e = evaluate(model, &stock).unwrap();
        if e.is_feasible() && best.as_ref().is_none_or(|(_, o)| e.objective < *o - 1e-12) {
            best = Some((stock.clone(), e.objective));
        }
        let mut i = 0;
        loop {
            if i == stock.len() {
                return best;
            }
            if stock[i] < upper[i] {
                stock[i] += 1;
                break;
            }
            stock[i] = 0;
            i += 1;
        }
    }
}

fn options(method: Method, backend: Backend) -> OptimizeOptions {
    OptimizeOptions {
        backend,
        method,
        time_limit_seconds: 30.0,
        gap_tolerance: 1e-6,
        max_iterations: 300,
    }
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    #[test]
    fn exact_milp_equals_exhaustive_search(seed in any::<u64>()) {
        let model = tiny(seed);
        let brute = exhaustive(&model);
        let plan = optimize(&model, &options(Method::Exact, Backend::Microlp));
        match brute {
            None => prop_assert!(plan.is_err()),
            Some((_, best)) => {
                let plan = plan.unwrap();
                prop_assert!(plan.evaluation.is_feasible());
                prop_assert!((plan.evaluation.objective - best).abs() < 1e-6 * best.max(1.0), "{} vs {best}", plan.evaluation.objective);
                prop_assert_eq!(plan.status, PlanStatus::Optimal);
            }
        }
    }

    #[test]
    fn relaxations_bound_and_repairs_stay_feasible(seed in any::<u64>()) {
        let model = tiny(seed);
        let Some((_, best)) = exhaustive(&model) else { return Ok(()) };
        for method in [Method::Joint, Method::Decomposed] {
            let plan = optimize(&model, &options(method, Backend::Clarabel)).unwrap();
            prop_assert!(plan.evaluation.is_feasible(), "{method:?}: {:?}", plan.evaluation.violations);
            prop_assert!(plan.evaluation.objective >= best - 1e-6 * best.max(1.0));
            prop_assert!(plan.lower_bound <= best + 1e-5 * best.max(1.0), "{method:?}: bound {} > {best}", plan.lower_bound);
        }
    }
}

#[cfg(feature = "highs")]
proptest! {
    #![proptest_config(ProptestConfig::with_cases(24))]

    /// The exact MILP on HiGHS finds the exhaustive optimum, like microlp does.
    #[test]
    fn highs_exact_milp_equals_exhaustive_search(seed in any::<u64>()) {
        let model = tiny(seed);
        let brute = exhaustive(&model);
        let plan = optimize(&model, &options(Method::Exact, Backend::Highs));
        match brute {
            None => prop_assert!(plan.is_err(), "{plan:?}"),
            Some((_, best)) => {
                let plan = plan.unwrap();
                prop_assert_eq!(plan.backend, Some(Backend::Highs));
                prop_assert!(plan.evaluation.is_feasible());
                prop_assert!((plan.evaluation.objective - best).abs() < 1e-6 * best.max(1.0), "{} vs {best}", plan.evaluation.objective);
                prop_assert!(plan.lower_bound <= best + 1e-6 * best.max(1.0), "bound {} > {best}", plan.lower_bound);
                prop_assert_eq!(plan.status, PlanStatus::Optimal);
            }
        }
    }

    /// The joint LP relaxation solved by HiGHS has the same optimum as Clarabel's and
    /// microlp's, and bounds the exhaustive integer optimum from below.
    #[test]
    fn highs_scenario_lp_agrees_with_clarabel_and_microlp(seed in any::<u64>()) {
        let model = tiny(seed);
        let lp = build_lp(&model, false).unwrap();
        let highs = lp.solve(Backend::Highs, 30.0);
        let Some((_, best)) = exhaustive(&model) else {
            // No integer plan; the relaxation may still be feasible, so only check agreement.
            if let (Ok(h), Ok(c)) = (&highs, lp.solve(Backend::Clarabel, 30.0)) {
                prop_assert!((h.objective - c.objective).abs() < 1e-6 * c.objective.abs().max(1.0));
            }
            return Ok(());
        };
        let highs = highs.unwrap();
        prop_assert_eq!(highs.status, crate::lp::LpStatus::Optimal);
        for backend in [Backend::Clarabel, Backend::Microlp] {
            let other = lp.solve(backend, 30.0).unwrap();
            prop_assert!((highs.objective - other.objective).abs() < 1e-6 * other.objective.abs().max(1.0), "{backend}: {} vs highs {}", other.objective, highs.objective);
        }
        prop_assert!(highs.objective <= best + 1e-6 * best.max(1.0), "LP {} > integer {best}", highs.objective);
        let plan = optimize(&model, &options(Method::Joint, Backend::Highs)).unwrap();
        prop_assert!(plan.evaluation.is_feasible(), "{:?}", plan.evaluation.violations);
        prop_assert!(plan.evaluation.objective >= best - 1e-6 * best.max(1.0));
    }
}

#[test]
fn risk_neutral_single_site_is_the_sample_newsvendor() {
    // Cost h x + w E[(D - x)+]: optimal x is the smallest with P(D <= x) >= 1 - h / w.
    let mut rng = StdRng::seed_from_u64(5);
    let demand: Vec<Vec<u64>> = (0..41).map(|_| vec![rng.random_range(0..10u64)]).collect();
    let mut pl = part_location("A", "s", &mut rng);
    pl.holding_cost = 1.0;
    pl.downtime_cost_per_hour = 0.0;
    pl.emergency_cost_per_unit = 4.0; // w = 4, critical ratio 0.75
    let model = ScenarioModel {
        part_locations: vec![pl],
        lanes: vec![],
        capacities: vec![],
        demand: demand.clone(),
        budget: None,
        cvar_alpha: 0.9,
        cvar_weight: 0.0,
    };
    let samples: Vec<u64> = demand.iter().map(|r| r[0]).collect();
    let costs = crate::newsvendor::NewsvendorCosts {
        holding_cost: 1.0,
        shortage_cost: 3.0,
    };
    let expected = crate::newsvendor::from_samples(&samples, costs).unwrap();
    for method in [Method::Exact, Method::Joint, Method::Decomposed] {
        let plan = optimize(&model, &options(method, Backend::Microlp)).unwrap();
        let brute = exhaustive(&model).unwrap();
        assert!(
            (plan.evaluation.objective - brute.1).abs() < 1e-9,
            "{method:?}"
        );
        assert_eq!(plan.stock[0], expected.quantity, "{method:?}");
    }
}

#[test]
fn a_larger_budget_never_raises_the_optimum() {
    for seed in 0..8 {
        let mut model = tiny(seed);
        let mut last = f64::INFINITY;
        for budget in [0.0, 3.0, 6.0, 10.0, 20.0, 50.0] {
            model.budget = Some(budget);
            if let Ok(plan) = optimize(&model, &options(Method::Exact, Backend::Microlp)) {
                assert!(
                    plan.evaluation.objective <= last + 1e-7,
                    "seed {seed} budget {budget}"
                );
                last = plan.evaluation.objective;
            }
        }
    }
}

#[test]
fn duplicating_every_scenario_changes_nothing() {
    for seed in 0..6 {
        let model = tiny(seed);
        let mut doubled = model.clone();
        doubled.demand.extend(model.demand.clone());
        for method in [Method::Exact, Method::Joint] {
            let backend = if method == Method::Exact {
                Backend::Microlp
            } else {
                Backend::Clarabel
            };
            let (a, b) = (
                optimize(&model, &options(method, backend)),
                optimize(&doubled, &options(method, backend)),
            );
            match (a, b) {
                (Ok(a), Ok(b)) => {
                    assert!(
                        (a.evaluation.objective - b.evaluation.objective).abs() < 1e-6,
                        "seed {seed} {method:?}"
                    );
                    assert!(
                        (a.lower_bound - b.lower_bound).abs() < 1e-5,
                        "seed {seed} {method:?}"
                    );
                }
                (Err(_), Err(_)) => {}
                other => panic!("seed {seed}: {other:?}"),
            }
        }
    }
}

#[test]
fn lateral_recourse_uses_peer_surplus() {
    let mut rng = StdRng::seed_from_u64(1);
    let mut a = part_location("A", "s1", &mut rng);
    let mut b = part_location("A", "s2", &mut rng);
    for p in [&mut a, &mut b] {
        p.downtime_cost_per_hour = 1.0;
        p.emergency_delay_hours = 10.0;
        p.emergency_cost_per_unit = 0.0;
    }
    let model = ScenarioModel {
        part_locations: vec![a, b],
        lanes: vec![LateralLane {
            from: 0,
            to: 1,
            delay_hours: 2.0,
            cost_per_unit: 1.0,
        }],
        capacities: vec![],
        demand: vec![vec![0, 3]],
        budget: None,
        cvar_alpha: 0.9,
        cvar_weight: 0.0,
    };
    // Two units at s1 ship to s2 at 1 + 2 = 3 each; the third goes emergency at 10.
    let e = evaluate(&model, &[2, 0]).unwrap();
    assert!((e.expected_downtime_cost - 16.0).abs() < 1e-12);
    assert!((e.fill_rates[1]).abs() < 1e-12);
}

#[test]
fn rejects_bad_models() {
    let mut model = tiny(3);
    model.part_locations[1].unit_cost = f64::NAN;
    assert!(
        matches!(model.validate(), Err(SolverError::InvalidInput { field, .. }) if field.contains("unit_cost"))
    );
    let mut model = tiny(3);
    model.demand[0].pop();
    assert!(model.validate().is_err());
    let mut model = tiny(3);
    model.lanes[0].to = 2;
    assert!(model.validate().is_err());
    let mut model = tiny(3);
    model.cvar_alpha = 1.0;
    assert!(model.validate().is_err());
}

/// A moderate random model without lanes (singletons), for the decomposition gap.
pub(crate) fn moderate(parts: usize, scenarios: usize, seed: u64) -> ScenarioModel {
    let mut rng = StdRng::seed_from_u64(seed);
    let part_locations: Vec<PartLocation> = (0..parts)
        .map(|i| part_location(&format!("P{i}"), &format!("L{}", i % 4), &mut rng))
        .collect();
    let rates: Vec<f64> = (0..parts).map(|_| rng.random_range(0.2..3.0)).collect();
    let demand = (0..scenarios)
        .map(|_| {
            rates
                .iter()
                .map(|r| {
                    rand_distr::Distribution::sample(
                        &rand_distr::Poisson::new(*r).unwrap(),
                        &mut rng,
                    ) as u64
                })
                .collect()
        })
        .collect();
    let total: f64 = part_locations
        .iter()
        .zip(&rates)
        .map(|(p, r)| p.unit_cost * r)
        .sum();
    ScenarioModel {
        part_locations,
        lanes: vec![],
        capacities: vec![],
        demand,
        budget: Some(total),
        cvar_alpha: 0.95,
        cvar_weight: 1.0,
    }
}

#[test]
fn decomposition_is_close_to_the_joint_lp_bound() {
    let mut model = moderate(30, 200, 11);
    model.capacities = vec![LocationCapacity {
        location: "L0".into(),
        max_units: 10,
    }];
    let joint = optimize(&model, &options(Method::Joint, Backend::Clarabel)).unwrap();
    let decomposed = optimize(
        &model,
        &OptimizeOptions {
            gap_tolerance: 1e-3,
            ..options(Method::Decomposed, Backend::Clarabel)
        },
    )
    .unwrap();
    assert!(joint.evaluation.is_feasible() && decomposed.evaluation.is_feasible());
    // Both are feasible integer plans; each is bounded below by the LP relaxation.
    assert!(decomposed.evaluation.objective >= joint.lower_bound - 1e-6 * joint.lower_bound.abs());
    assert!(decomposed.lower_bound <= joint.evaluation.objective + 1e-6);
    let gap_to_lp = (decomposed.evaluation.objective - joint.lower_bound) / joint.lower_bound;
    assert!(
        gap_to_lp < 0.02,
        "decomposed {} vs LP bound {}",
        decomposed.evaluation.objective,
        joint.lower_bound
    );
}

//! Property tests on small random networks: the engine's books balance after every event
//! (checked by debug assertions inside the engine), reports hold no NaN, probabilities stay
//! in range, and more stock never lowers the fill rate under common random numbers.

mod common;

use common::*;
use proptest::prelude::*;
use spares_simulations::{
    Echelon, LaneKind, Model, Policy, RepairSpec, StockingPolicy, TimeDistribution,
};

/// Depot -> warehouse -> two stores with a lateral lane and an emergency lane, with the
/// given policies, demand rates and part type.
fn small_network(
    levels: [u32; 4],
    rates: [f64; 2],
    batch: Option<(i64, u32)>,
    repairable: bool,
) -> Model {
    let mut model = Model {
        locations: vec![
            location(
                "D",
                Echelon::Depot,
                Some(TimeDistribution::Exponential { mean_days: 6.0 }),
            ),
            location("W", Echelon::Regional, None),
            location("A", Echelon::Store, None),
            location("B", Echelon::Store, None),
        ],
        lanes: vec![
            lane(
                "D",
                "W",
                LaneKind::Replenishment,
                TimeDistribution::Uniform {
                    min_days: 1.0,
                    max_days: 3.0,
                },
                0.0,
            ),
            lane("W", "A", LaneKind::Replenishment, deterministic(1.0), 0.0),
            lane("W", "B", LaneKind::Replenishment, deterministic(1.5), 0.0),
            lane("A", "B", LaneKind::Lateral, deterministic(0.5), 20.0),
            lane("W", "A", LaneKind::Emergency, deterministic(0.3), 80.0),
        ],
        parts: vec![part("P")],
        ..Model::default()
    };
    if repairable {
        model.parts[0].repair = Some(RepairSpec {
            local_repair_probability: 0.25,
            local_repair_days: TimeDistribution::Exponential { mean_days: 3.0 },
            depot_repair_days: TimeDistribution::LogNormal {
                mean_days: 10.0,
                std_dev_days: 4.0,
            },
        });
    }
    for (location, level) in ["D", "W", "A", "B"].into_iter().zip(levels) {
        model.policies.push(base_stock("P", location, level));
    }
    if let (Some((reorder_point, quantity)), false) = (batch, repairable) {
        model.policies[1] = StockingPolicy {
            part: "P".into(),
            location: "W".into(),
            policy: Policy::ReorderPointQuantity {
                reorder_point,
                quantity,
            },
        };
        model.policies[2].policy = Policy::MinMax {
            reorder_point: reorder_point.min(2),
            order_up_to: reorder_point.min(2) + i64::from(quantity),
        };
    }
    poisson_demand(&mut model, "P", "A", rates[0]);
    poisson_demand(&mut model, "P", "B", rates[1]);
    model
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 24, ..ProptestConfig::default() })]

    #[test]
    fn reports_are_finite_and_probabilities_in_range(
        levels in prop::array::uniform4(0u32..6),
        rates in prop::array::uniform2(0.0f64..1.5),
        batch in prop::option::of((-1i64..4, 1u32..5)),
        repairable in any::<bool>(),
        seed in any::<u64>(),
    ) {
        let model = small_network(levels, rates, batch, repairable);
        let report = run(&model, &config(seed, 3, 200.0, 20.0));
        prop_assert_eq!(&report, &report.clone());
        for measures in std::iter::once(&report.network.measures).chain(report.part_locations.iter().map(|pl| &pl.measures)) {
            let mut previous = 0.0;
            for point in &measures.wait_time_distribution {
                if let Some(probability) = point.probability {
                    prop_assert!((0.0..=1.0 + 1e-12).contains(&probability.mean));
                    prop_assert!(probability.mean + 1e-12 >= previous);
                    previous = probability.mean;
                }
            }
            if let Some(fill) = measures.first_time_fill_rate {
                prop_assert!((0.0..=1.0).contains(&fill.mean));
            }
            prop_assert!(measures.expected_backorders.mean >= 0.0);
        }
    }

    #[test]
    fn one_more_unit_at_a_store_never_lowers_its_fill_rate(
        level in 0u32..5,
        rate in 0.1f64..2.0,
        lead_time in 0.5f64..6.0,
        seed in any::<u64>(),
    ) {
        let settings = config(seed, 4, 150.0, 10.0);
        let base = run(&single_site(rate, deterministic(lead_time), level), &settings);
        let more = run(&single_site(rate, deterministic(lead_time), level + 1), &settings);
        for (b, m) in base.replication_totals.iter().zip(&more.replication_totals) {
            prop_assert_eq!(b.demand_units, m.demand_units);
            prop_assert!(m.first_time_fills >= b.first_time_fills);
        }
    }
}

//! Oracle tests for METRIC and VARI-METRIC (ORACLES.md).

use super::*;

/// Sherbrooke's chapter-3 item. Rates are per year and times in years: the models only
/// need the two to agree.
fn sherbrooke() -> MetricItem {
    let depot = MetricNode {
        parent: None,
        demand_per_day: 0.0,
        local_repair_probability: 1.0,
        local_repair_days: 0.02531,
        order_and_ship_days: 0.0,
    };
    let base = MetricNode {
        parent: Some(0),
        demand_per_day: 23.2,
        local_repair_probability: 0.2,
        local_repair_days: 0.01,
        order_and_ship_days: 0.01,
    };
    let mut nodes = vec![depot];
    nodes.extend(std::iter::repeat_n(base, 5));
    MetricItem {
        name: "sherbrooke".into(),
        unit_cost: 1.0,
        units_per_machine: 1,
        nodes,
    }
}

fn options(model: MetricModel) -> MetricOptions {
    MetricOptions {
        model,
        ebo_tolerance: 1e-9,
    }
}

#[test]
fn depot_backorders_and_base_pipelines_match_oracle() {
    let depot = Pipeline::poisson(92.8 * 0.02531).unwrap();
    let expect_depot = [2.3488, 1.4443, 0.7640, 0.3472, 0.1365, 0.0470];
    let expect_base = [0.7018, 0.5209, 0.3848, 0.3014, 0.2593, 0.2414];
    for s0 in 0..6u64 {
        let ebo = depot.at(s0).expected_backorders;
        assert!(
            (ebo - expect_depot[s0 as usize]).abs() < 1e-4,
            "s0 {s0}: {ebo}"
        );
        let base_mean = 23.2 * (0.2 * 0.01 + 0.8 * (0.01 + ebo / 92.8));
        assert!(
            (base_mean - expect_base[s0 as usize]).abs() < 1e-4,
            "s0 {s0}: {base_mean}"
        );
    }
}

#[test]
fn metric_best_base_backorders_by_total_stock() {
    let curve = item_curve(&sherbrooke(), &options(MetricModel::Metric)).unwrap();
    let table = [
        (0, 0, 3.5088),
        (1, 1, 2.6043),
        (2, 2, 1.9240),
        (3, 3, 1.5072),
        (4, 3, 1.2469),
        (5, 2, 0.9658),
        (6, 1, 0.5743),
        (7, 2, 0.3269),
        (8, 3, 0.2060),
        (9, 4, 0.1545),
        (10, 4, 0.1261),
        (12, 2, 0.0393),
        (15, 4, 0.0104),
    ];
    for (total, s0, ebo) in table {
        let got = curve.expected_backorders[total];
        assert!((got - ebo).abs() < 1e-4, "S {total}: {got} vs {ebo}");
        assert_eq!(curve.root_stock[total], s0, "S {total}");
    }
}

#[test]
fn vari_metric_is_never_below_metric() {
    let metric = item_curve(&sherbrooke(), &options(MetricModel::Metric)).unwrap();
    let vari = item_curve(&sherbrooke(), &options(MetricModel::VariMetric)).unwrap();
    for total in 0..=15 {
        assert!(
            vari.expected_backorders[total] >= metric.expected_backorders[total] - 1e-9,
            "S {total}"
        );
    }
    assert!((vari.expected_backorders[6] - 0.6058).abs() < 1e-4);
    assert_eq!(vari.root_stock[6], 1);
    assert!((vari.expected_backorders[10] - 0.1336).abs() < 1e-4);
    assert_eq!(vari.root_stock[10], 4);
    // With no base stock the two models agree: only the base pipeline means matter.
    for s0 in 0..6u64 {
        let stock = [s0, 0, 0, 0, 0, 0];
        let m = expected_backorders(&sherbrooke(), &options(MetricModel::Metric), &stock).unwrap();
        let v =
            expected_backorders(&sherbrooke(), &options(MetricModel::VariMetric), &stock).unwrap();
        assert!((m - v).abs() < 1e-12);
    }
}

#[test]
fn allocation_reproduces_the_curve() {
    let item = sherbrooke();
    for model in [MetricModel::Metric, MetricModel::VariMetric] {
        let curve = item_curve(&item, &options(model)).unwrap();
        for total in [0u64, 3, 5, 6, 10, 15] {
            let stock = allocate(&item, &options(model), total).unwrap();
            assert_eq!(stock.iter().sum::<u64>(), total);
            assert_eq!(stock[0], curve.root_stock[total as usize]);
            let ebo = expected_backorders(&item, &options(model), &stock).unwrap();
            assert!((ebo - curve.expected_backorders[total as usize]).abs() < 1e-9);
        }
    }
}

#[test]
fn two_outlet_example() {
    let depot = MetricNode {
        parent: None,
        demand_per_day: 0.0,
        local_repair_probability: 1.0,
        local_repair_days: 14.0,
        order_and_ship_days: 0.0,
    };
    let outlet = MetricNode {
        parent: Some(0),
        demand_per_day: 0.1,
        local_repair_probability: 0.0,
        local_repair_days: 0.0,
        order_and_ship_days: 2.0,
    };
    let item = MetricItem {
        name: "two".into(),
        unit_cost: 1.0,
        units_per_machine: 1,
        nodes: vec![depot, outlet.clone(), outlet],
    };
    for (d, o, ebo) in [
        (0, 0, 3.2000),
        (0, 1, 1.6038),
        (1, 1, 0.9066),
        (2, 2, 0.0966),
        (3, 3, 0.0033),
    ] {
        let got = expected_backorders(&item, &options(MetricModel::Metric), &[d, o, o]).unwrap();
        assert!((got - ebo).abs() < 1e-4, "({d},{o}): {got}");
    }
}

#[test]
fn barlow_proschan_frontier() {
    let data = [
        (0.01, 100.0, 200.0),
        (0.02, 150.0, 100.0),
        (0.03, 60.0, 300.0),
        (0.01, 200.0, 250.0),
    ];
    let items: Vec<MetricItem> = data
        .iter()
        .enumerate()
        .map(|(i, &(rate, turnaround, cost))| MetricItem {
            name: format!("item{i}"),
            unit_cost: cost,
            units_per_machine: 1,
            nodes: vec![MetricNode {
                parent: None,
                demand_per_day: rate,
                local_repair_probability: 1.0,
                local_repair_days: turnaround,
                order_and_ship_days: 0.0,
            }],
        })
        .collect();
    let frontier = frontier(&items, &options(MetricModel::Metric), Some(10)).unwrap();
    let expect: [(f64, [u64; 4], f64); 6] = [
        (0.0, [0, 0, 0, 0], 7.8),
        (400.0, [0, 4, 0, 0], 5.1194),
        (1150.0, [1, 4, 1, 1], 2.7879),
        (2000.0, [2, 5, 2, 2], 1.2077),
        (2550.0, [2, 5, 3, 3], 0.6150),
        (3500.0, [3, 7, 4, 4], 0.1657),
    ];
    for (cost, stock, ebo) in expect {
        let point = frontier
            .points
            .iter()
            .rev()
            .find(|p| (p.investment - cost).abs() < 1e-9)
            .unwrap_or_else(|| panic!("no frontier point at cost {cost}"));
        assert!(
            (point.expected_backorders - ebo).abs() < 1e-4,
            "cost {cost}: {}",
            point.expected_backorders
        );
        assert_eq!(frontier.stock_within(cost), stock.to_vec(), "cost {cost}");
    }
    let availability: Vec<f64> = frontier
        .points
        .iter()
        .filter_map(|p| p.availability)
        .collect();
    assert!(availability.windows(2).all(|w| w[1] >= w[0] - 1e-12));
}

#[test]
fn rejects_bad_trees() {
    let mut item = sherbrooke();
    item.nodes[3].parent = Some(4);
    assert!(item_curve(&item, &MetricOptions::default()).is_err());
    let mut item = sherbrooke();
    item.nodes[2].demand_per_day = f64::NAN;
    assert!(item_curve(&item, &MetricOptions::default()).is_err());
    assert!("vari-metric".parse::<MetricModel>().is_ok());
}

/// Every float of a frontier (points and curves) as bits, so -0.0 and 0.0 differ.
fn frontier_bits(frontier: &Frontier) -> Vec<u64> {
    let mut bits = Vec::new();
    for p in &frontier.points {
        bits.extend([p.investment.to_bits(), p.expected_backorders.to_bits()]);
        bits.push(p.availability.map_or(u64::MAX, f64::to_bits));
        bits.push(p.item.map_or(u64::MAX, |i| i as u64));
        bits.push(p.item_total_stock);
    }
    for curve in &frontier.curves {
        bits.extend(curve_bits(curve));
    }
    bits
}

/// An item curve as bits.
fn curve_bits(curve: &ItemCurve) -> Vec<u64> {
    let mut bits: Vec<u64> = curve
        .expected_backorders
        .iter()
        .map(|x| x.to_bits())
        .collect();
    bits.push(u64::MAX);
    bits.extend(&curve.root_stock);
    bits.push(u64::MAX);
    bits.extend(&curve.hull);
    bits
}

/// The benchmark's shape in small: a depot, `regionals` regional warehouses without demand
/// of their own, and `stores` stores under each, with seeded rates.
fn bench_like_items(count: usize, regionals: usize, stores: usize, seed: u64) -> Vec<MetricItem> {
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(seed);
    (0..count)
        .map(|i| {
            let mut nodes = vec![MetricNode {
                parent: None,
                demand_per_day: 0.0,
                local_repair_probability: 1.0,
                local_repair_days: rng.random_range(10.0..40.0),
                order_and_ship_days: 0.0,
            }];
            for _ in 0..regionals {
                let regional = nodes.len();
                nodes.push(MetricNode {
                    parent: Some(0),
                    demand_per_day: 0.0,
                    local_repair_probability: 0.0,
                    local_repair_days: 0.0,
                    order_and_ship_days: rng.random_range(2.0..6.0),
                });
                for _ in 0..stores {
                    nodes.push(MetricNode {
                        parent: Some(regional),
                        demand_per_day: rng.random_range(0.001..0.05),
                        local_repair_probability: rng.random_range(0.0..0.3),
                        local_repair_days: rng.random_range(1.0..3.0),
                        order_and_ship_days: rng.random_range(1.0..3.0),
                    });
                }
            }
            MetricItem {
                name: format!("part{i}"),
                unit_cost: rng.random_range(10.0..5_000.0),
                units_per_machine: 1,
                nodes,
            }
        })
        .collect()
}

#[test]
fn fast_frontier_is_bit_for_bit_the_straightforward_one_on_the_bench_shape() {
    let items = bench_like_items(6, 3, 4, 7);
    for model in [MetricModel::Metric, MetricModel::VariMetric] {
        let options = MetricOptions {
            model,
            ebo_tolerance: 1e-4,
        };
        let fast = frontier(&items, &options, Some(50)).unwrap();
        let slow = reference::frontier(&items, &options, Some(50)).unwrap();
        assert!(fast.points.len() > 100, "{model:?}: a real frontier");
        assert_eq!(frontier_bits(&fast), frontier_bits(&slow), "{model:?}");
    }
}

#[test]
fn frontier_is_the_same_on_one_and_two_threads() {
    let items = bench_like_items(24, 2, 3, 11);
    let options = MetricOptions {
        model: MetricModel::VariMetric,
        ebo_tolerance: 1e-4,
    };
    let run = |threads: usize| {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .unwrap();
        pool.install(|| frontier(&items, &options, Some(100)).unwrap())
    };
    assert_eq!(frontier_bits(&run(1)), frontier_bits(&run(2)));
}

#[test]
fn four_echelon_chain_matches_the_straightforward_curve() {
    // Depot -> hub -> warehouse -> two stores, plus a store straight under the hub and
    // demand at the warehouse: deeper trees and mixed leaf / non-leaf children.
    let node = |parent: Option<usize>, demand: f64, days: f64| MetricNode {
        parent,
        demand_per_day: demand,
        local_repair_probability: 0.1,
        local_repair_days: days,
        order_and_ship_days: 1.5,
    };
    let item = MetricItem {
        name: "chain".into(),
        unit_cost: 3.0,
        units_per_machine: 2,
        nodes: vec![
            node(None, 0.0, 12.0),
            node(Some(0), 0.0, 0.0),
            node(Some(1), 0.05, 2.0),
            node(Some(2), 0.2, 1.0),
            node(Some(2), 0.1, 1.0),
            node(Some(1), 0.3, 1.0),
        ],
    };
    for model in [MetricModel::Metric, MetricModel::VariMetric] {
        let options = options(model);
        let fast = item_curve(&item, &options).unwrap();
        let slow = reference::item_curve(&item, &options).unwrap();
        assert_eq!(curve_bits(&fast), curve_bits(&slow), "{model:?}");
    }
}

#[test]
fn falling_keys_round_trip_and_sort_like_total_cmp_reversed() {
    let values = [
        1.0,
        0.5,
        1e-300,
        f64::MIN_POSITIVE / 4.0,
        0.0,
        -0.0,
        -1e-300,
        -2.5,
        f64::INFINITY,
        f64::NEG_INFINITY,
        f64::NAN,
        -f64::NAN,
        0.5,
    ];
    for &a in &values {
        assert_eq!(from_falling_key(falling_key(a)).to_bits(), a.to_bits());
        for &b in &values {
            assert_eq!(
                falling_key(a).cmp(&falling_key(b)),
                b.total_cmp(&a),
                "{a} {b}"
            );
        }
    }
}

#[test]
fn merging_sorted_runs_is_a_stable_sort() {
    use rand::{RngExt, SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(5);
    for _ in 0..200 {
        let mut blocks = Vec::new();
        let mut run_ends = Vec::new();
        for _ in 0..rng.random_range(1..7) {
            // Few distinct rates, so ties across runs are common.
            let mut run: Vec<Block> = (0..rng.random_range(1..6))
                .map(|_| Block::new(rng.random_range(1..3), f64::from(rng.random_range(0..4))))
                .collect();
            run.sort_by(Block::order);
            blocks.extend(run);
            run_ends.push(blocks.len());
        }
        let mut expect: Vec<(usize, Block)> = blocks.iter().copied().enumerate().collect();
        expect.sort_by(|a, b| Block::order(&a.1, &b.1));
        // Tag each block with its place so the check sees which of two equal blocks won.
        let tagged: Vec<Block> = blocks
            .iter()
            .enumerate()
            .map(|(i, b)| Block {
                units: i as u64,
                ..*b
            })
            .collect();
        let mut merged = tagged;
        merge_runs(&mut merged, &mut Vec::new(), &mut run_ends);
        let got: Vec<u64> = merged.iter().map(|b| b.units).collect();
        let want: Vec<u64> = expect.iter().map(|(i, _)| *i as u64).collect();
        assert_eq!(got, want);
    }
}

mod equivalence {
    //! Property test: on small random trees the fast path gives bit for bit the curves and
    //! frontier of the straightforward computation in `reference.rs`.

    use super::*;
    use proptest::prelude::*;

    /// One node's rates; `parent` is repaired below so trees stay at most four deep.
    fn node() -> impl Strategy<Value = (usize, f64, f64, f64, f64)> {
        (
            0usize..64,
            prop_oneof![Just(0.0), 0.001..0.4f64],
            prop_oneof![Just(0.0), Just(1.0), 0.0..1.0f64],
            0.0..10.0f64,
            0.0..4.0f64,
        )
    }

    /// A tree of 1..=7 nodes where node i's parent is one of the nodes before it.
    fn item() -> impl Strategy<Value = MetricItem> {
        (
            proptest::collection::vec(node(), 1..=7),
            prop_oneof![Just(0.0), 1.0..500.0f64],
            1u64..3,
        )
            .prop_map(|(raw, unit_cost, units_per_machine)| {
                let mut depth = Vec::new();
                let mut nodes: Vec<MetricNode> = Vec::new();
                for (index, (pick, demand, repair, repair_days, ship_days)) in
                    raw.into_iter().enumerate()
                {
                    let parent = (index > 0).then(|| {
                        let mut p = pick % index;
                        while depth[p] >= 3 {
                            p = nodes[p].parent.unwrap_or(0);
                        }
                        p
                    });
                    depth.push(parent.map_or(0, |p| depth[p] + 1));
                    nodes.push(MetricNode {
                        parent,
                        demand_per_day: demand,
                        local_repair_probability: repair,
                        local_repair_days: repair_days,
                        order_and_ship_days: ship_days,
                    });
                }
                MetricItem {
                    name: "random".into(),
                    unit_cost,
                    units_per_machine,
                    nodes,
                }
            })
    }

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(96))]

        #[test]
        fn fast_path_matches_the_straightforward_frontier(
            items in proptest::collection::vec(item(), 1..4),
            vari in any::<bool>(),
            machines in prop_oneof![Just(None), (1u64..40).prop_map(Some)],
        ) {
            let options = MetricOptions {
                model: if vari { MetricModel::VariMetric } else { MetricModel::Metric },
                ebo_tolerance: 1e-4,
            };
            for item in &items {
                let fast = item_curve(item, &options).unwrap();
                let slow = reference::item_curve(item, &options).unwrap();
                prop_assert_eq!(curve_bits(&fast), curve_bits(&slow));
            }
            let fast = frontier(&items, &options, machines).unwrap();
            let slow = reference::frontier(&items, &options, machines).unwrap();
            prop_assert_eq!(frontier_bits(&fast), frontier_bits(&slow));
        }

        #[test]
        fn one_enumeration_allocates_every_total_as_the_straightforward_walk(
            item in item(),
            vari in any::<bool>(),
        ) {
            let options = MetricOptions {
                model: if vari { MetricModel::VariMetric } else { MetricModel::Metric },
                ebo_tolerance: 1e-4,
            };
            let enumerated = Enumerated::new(&item, &options).unwrap();
            let curve = enumerated.curve();
            prop_assert_eq!(curve_bits(&curve), curve_bits(&reference::item_curve(&item, &options).unwrap()));
            // Every total, and one past the enumerated range (clamped alike).
            for total in 0..=curve.expected_backorders.len() as u64 {
                let fast = enumerated.allocate(total).unwrap();
                let slow = reference::allocate(&item, &options, total).unwrap();
                prop_assert_eq!(&fast, &slow, "total {}", total);
                prop_assert_eq!(allocate(&item, &options, total).unwrap(), fast);
            }
        }
    }
}

#[test]
fn weighted_plan_with_equal_weights_buys_the_frontier_within_the_budget() {
    let items = bench_like_items(6, 2, 3, 5);
    let opts = options(MetricModel::Metric);
    let frontier = frontier(&items, &opts, None).unwrap();
    let budget = frontier.points[frontier.points.len() / 3].investment;
    let plan = weighted_plan(&items, &[1.0; 6], &opts, budget).unwrap();
    assert!(plan.investment <= budget + 1e-9);
    // Until the first step that does not fit, the walk is the frontier's.
    let frontier_stock = frontier.stock_within(budget);
    for (i, (&t, &f)) in plan.total_stock.iter().zip(&frontier_stock).enumerate() {
        assert!(t >= f, "item {i}: {t} < frontier {f}");
    }
    for (item, stock) in items.iter().zip(&plan.stock) {
        assert_eq!(stock.len(), item.nodes.len());
    }
}

#[test]
fn weighted_plan_puts_money_where_a_backorder_day_costs_most() {
    let mut items = bench_like_items(2, 2, 3, 9);
    items[1] = items[0].clone();
    let opts = options(MetricModel::Metric);
    let budget = 4.0 * items[0].unit_cost;
    let light_first = weighted_plan(&items, &[1.0, 50.0], &opts, budget).unwrap();
    let heavy_first = weighted_plan(&items, &[50.0, 1.0], &opts, budget).unwrap();
    assert!(light_first.total_stock[1] > light_first.total_stock[0]);
    assert_eq!(
        (heavy_first.total_stock[0], heavy_first.total_stock[1]),
        (light_first.total_stock[1], light_first.total_stock[0])
    );
    assert!(weighted_plan(&items, &[1.0], &opts, budget).is_err());
    assert!(weighted_plan(&items, &[1.0, f64::NAN], &opts, budget).is_err());
}

#[test]
fn curves_built_once_give_the_same_plan_at_every_budget() {
    let items = bench_like_items(5, 2, 3, 11);
    let opts = options(MetricModel::Metric);
    let weights = [1.0, 3.0, 0.5, 8.0, 2.0];
    let curves = WeightedCurves::new(&items, &weights, &opts).unwrap();
    let unit = items[0].unit_cost;
    let mut last = 0.0;
    for budget in [0.0, 2.0 * unit, 5.0 * unit, 12.0 * unit, 40.0 * unit] {
        let once = curves.plan(&items, &opts, budget).unwrap();
        assert_eq!(
            once,
            weighted_plan(&items, &weights, &opts, budget).unwrap()
        );
        // The kept enumerations allocate as a fresh one-shot allocation does.
        for (i, item) in items.iter().enumerate() {
            assert_eq!(
                once.stock[i],
                allocate(item, &opts, once.total_stock[i]).unwrap(),
                "item {i} at budget {budget}"
            );
        }
        assert!(once.investment <= budget + 1e-9);
        assert!(once.investment >= last, "more money never buys less");
        last = once.investment;
    }
    assert!(last > 0.0);
    assert!(curves.plan(&items[1..], &opts, unit).is_err());
    assert!(curves.plan(&items, &opts, -1.0).is_err());
}

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

//! Builders of small models shared by the integration tests.
#![allow(dead_code)]

use std::sync::atomic::AtomicBool;

use spares_simulations::{
    Echelon, FailureModel, Fleet, Lane, LaneKind, Life, Location, MachineModel, Model, Part,
    Policy, Progress, Report, SimConfig, StockingPolicy, TimeDistribution, simulate,
};

/// Hours in a day, for turning daily rates into per-operating-hour rates.
pub const HOURS: f64 = 24.0;

pub fn location(id: &str, echelon: Echelon, external: Option<TimeDistribution>) -> Location {
    Location {
        id: id.into(),
        name: id.into(),
        echelon,
        external_supply_days: external,
    }
}

pub fn lane(from: &str, to: &str, kind: LaneKind, transit: TimeDistribution, cost: f64) -> Lane {
    Lane {
        from: from.into(),
        to: to.into(),
        kind,
        transit_days: transit,
        cost_per_shipment: cost,
    }
}

pub fn deterministic(days: f64) -> TimeDistribution {
    TimeDistribution::Deterministic { days }
}

pub fn part(id: &str) -> Part {
    Part {
        id: id.into(),
        name: id.into(),
        unit_cost: 100.0,
        criticality: 1.0,
        repair: None,
        supplier_lead_time_days: None,
        downtime_cost_per_hour: None,
    }
}

pub fn base_stock(part: &str, location: &str, level: u32) -> StockingPolicy {
    StockingPolicy {
        part: part.into(),
        location: location.into(),
        policy: Policy::BaseStock { level },
    }
}

/// A fleet of one always-running machine whose part fails at `rate_per_day`.
pub fn poisson_demand(model: &mut Model, part: &str, store: &str, rate_per_day: f64) {
    let machine_model = format!("M-{part}-{store}");
    model.machine_models.push(MachineModel {
        id: machine_model.clone(),
        downtime_cost_per_hour: 10.0,
    });
    model.fleets.push(Fleet {
        id: format!("F-{part}-{store}"),
        location: store.into(),
        machine_model: machine_model.clone(),
        machines: 1,
        usage_hours_per_day: HOURS,
        age_operating_hours: 0.0,
    });
    model.failure_models.push(FailureModel {
        part: part.into(),
        machine_model,
        units_per_machine: 1,
        attach_rate: 1.0,
        life: Life::Exponential {
            failures_per_operating_hour: rate_per_day / HOURS,
        },
    });
}

/// One store supplied from outside with the given lead time, Poisson demand, base stock.
pub fn single_site(rate_per_day: f64, lead_time: TimeDistribution, level: u32) -> Model {
    let mut model = Model {
        locations: vec![location("S", Echelon::Store, Some(lead_time))],
        parts: vec![part("P")],
        policies: vec![base_stock("P", "S", level)],
        ..Model::default()
    };
    poisson_demand(&mut model, "P", "S", rate_per_day);
    model
}

pub fn config(seed: u64, replications: u32, horizon_days: f64, warm_up_days: f64) -> SimConfig {
    SimConfig {
        seed,
        replications,
        horizon_days,
        warm_up_days,
        ..SimConfig::default()
    }
}

pub fn no_progress(_: Progress) {}

pub fn run(model: &Model, config: &SimConfig) -> Report {
    simulate(model, config, &no_progress, &AtomicBool::new(false)).expect("simulation runs")
}

/// Asserts |simulated - analytic| <= 4 half-widths of the simulation's own 95% interval,
/// and that the interval is narrow enough for the check to mean something.
pub fn assert_within_ci(
    name: &str,
    simulated: spares_simulations::Estimate,
    analytic: f64,
    max_half_width: f64,
) {
    let half_width = simulated.half_width_95.expect("at least two replications");
    println!(
        "{name}: simulated {:.5} +/- {:.5}, analytic {analytic:.5}",
        simulated.mean, half_width
    );
    assert!(
        half_width <= max_half_width,
        "{name}: interval too wide to test ({half_width})"
    );
    assert!(
        (simulated.mean - analytic).abs() <= 4.0 * half_width + 1e-12,
        "{name}: simulated {} +/- {half_width}, analytic {analytic}",
        simulated.mean
    );
}

/// Depot -> 2 regional warehouses -> 4 stores, with lateral and emergency lanes, three parts
/// (base stock, (s, S) and repairable), exponential and Weibull fleets, a shock, a demand
/// history and an outage: every feature of the engine at once.
pub fn rich_network() -> Model {
    use spares_simulations::{CommonCauseShock, DemandHistory, Outage, RepairSpec};
    let exponential = |mean_days| TimeDistribution::Exponential { mean_days };
    let mut model = Model {
        locations: vec![
            location(
                "DEPOT",
                Echelon::Depot,
                Some(TimeDistribution::LogNormal {
                    mean_days: 20.0,
                    std_dev_days: 6.0,
                }),
            ),
            location("R1", Echelon::Regional, None),
            location("R2", Echelon::Regional, None),
        ],
        ..Model::default()
    };
    model.lanes.push(lane(
        "DEPOT",
        "R1",
        LaneKind::Replenishment,
        exponential(3.0),
        0.0,
    ));
    model.lanes.push(lane(
        "DEPOT",
        "R2",
        LaneKind::Replenishment,
        TimeDistribution::Uniform {
            min_days: 2.0,
            max_days: 4.0,
        },
        0.0,
    ));
    let stores = [("S1", "R1"), ("S2", "R1"), ("S3", "R2"), ("S4", "R2")];
    for (store, region) in stores {
        model.locations.push(location(store, Echelon::Store, None));
        model.lanes.push(lane(
            region,
            store,
            LaneKind::Replenishment,
            deterministic(1.0),
            0.0,
        ));
        model.lanes.push(lane(
            region,
            store,
            LaneKind::Emergency,
            deterministic(0.25),
            120.0,
        ));
        model.lanes.push(lane(
            "DEPOT",
            store,
            LaneKind::Emergency,
            deterministic(1.0),
            400.0,
        ));
    }
    model.lanes.push(lane(
        "S1",
        "S2",
        LaneKind::Lateral,
        deterministic(0.5),
        60.0,
    ));
    model.lanes.push(lane(
        "S2",
        "S1",
        LaneKind::Lateral,
        deterministic(0.5),
        60.0,
    ));
    model.lanes.push(lane(
        "S3",
        "S4",
        LaneKind::Lateral,
        deterministic(0.4),
        50.0,
    ));
    model.parts = vec![
        Part {
            criticality: 1.0,
            ..part("PUMP")
        },
        Part {
            criticality: 0.5,
            ..part("FILTER")
        },
        Part {
            criticality: 1.0,
            repair: Some(RepairSpec {
                local_repair_probability: 0.3,
                local_repair_days: exponential(4.0),
                depot_repair_days: TimeDistribution::LogNormal {
                    mean_days: 15.0,
                    std_dev_days: 5.0,
                },
            }),
            ..part("BOARD")
        },
    ];
    model.machine_models = vec![
        MachineModel {
            id: "EXCAVATOR".into(),
            downtime_cost_per_hour: 250.0,
        },
        MachineModel {
            id: "LOADER".into(),
            downtime_cost_per_hour: 90.0,
        },
    ];
    for (index, (store, _)) in stores.iter().enumerate() {
        model.fleets.push(Fleet {
            id: format!("EX-{store}"),
            location: (*store).into(),
            machine_model: "EXCAVATOR".into(),
            machines: 20 + 10 * index as u32,
            usage_hours_per_day: 10.0,
            age_operating_hours: 2_000.0 * index as f64,
        });
        model.fleets.push(Fleet {
            id: format!("LD-{store}"),
            location: (*store).into(),
            machine_model: "LOADER".into(),
            machines: 15,
            usage_hours_per_day: 6.0,
            age_operating_hours: 500.0,
        });
    }
    let exponential_life = |per_hour| Life::Exponential {
        failures_per_operating_hour: per_hour,
    };
    model.failure_models = vec![
        FailureModel {
            part: "PUMP".into(),
            machine_model: "EXCAVATOR".into(),
            units_per_machine: 1,
            attach_rate: 0.8,
            life: exponential_life(1.0 / 4_000.0),
        },
        FailureModel {
            part: "PUMP".into(),
            machine_model: "LOADER".into(),
            units_per_machine: 2,
            attach_rate: 0.5,
            life: exponential_life(1.0 / 6_000.0),
        },
        FailureModel {
            part: "FILTER".into(),
            machine_model: "EXCAVATOR".into(),
            units_per_machine: 2,
            attach_rate: 1.0,
            life: Life::Weibull {
                shape: 2.5,
                scale_operating_hours: 3_000.0,
            },
        },
        FailureModel {
            part: "BOARD".into(),
            machine_model: "LOADER".into(),
            units_per_machine: 1,
            attach_rate: 0.9,
            life: exponential_life(1.0 / 3_000.0),
        },
    ];
    model.shocks.push(CommonCauseShock {
        fleet: "EX-S3".into(),
        start_day: 150.0,
        end_day: 180.0,
        failure_rate_multiplier: 5.0,
    });
    model.demand_histories.push(DemandHistory {
        part: "PUMP".into(),
        location: "S4".into(),
        period_days: 7.0,
        quantities: vec![0, 1, 0, 0, 2, 0, 0, 0, 1, 3, 0, 0, 1, 0],
        machine_model: Some("EXCAVATOR".into()),
        demand_multiplier: 1.0,
        jitter: true,
    });
    model.outages.push(Outage {
        location: "S2".into(),
        start_day: 200.0,
        end_day: 210.0,
    });
    for (store, _) in stores {
        model.policies.push(base_stock("PUMP", store, 2));
        model.policies.push(StockingPolicy {
            part: "FILTER".into(),
            location: store.into(),
            policy: Policy::MinMax {
                reorder_point: 1,
                order_up_to: 6,
            },
        });
        model.policies.push(base_stock("BOARD", store, 1));
    }
    for region in ["R1", "R2"] {
        model.policies.push(base_stock("PUMP", region, 2));
        model.policies.push(StockingPolicy {
            part: "FILTER".into(),
            location: region.into(),
            policy: Policy::ReorderPointQuantity {
                reorder_point: 4,
                quantity: 10,
            },
        });
    }
    model.policies.push(base_stock("PUMP", "DEPOT", 4));
    model.policies.push(base_stock("FILTER", "DEPOT", 20));
    model.policies.push(base_stock("BOARD", "DEPOT", 3));
    model
}

//! The planning inputs reach the simulation: a part's own supplier lead time
//! (and a per-depot override) sets its depot pipeline by Little's law and its
//! downtime; an emergency lane and a replenishment lane of the same mode
//! coexist and each is used where the rules say.
#![allow(clippy::unwrap_used)]

use jiff::civil::Time;
use spares::domain::availability::{Availability, MemoryStock};
use spares::domain::ledger::{Balance, Priority};
use spares::domain::network::{
    BusinessCalendar, Criticality, DemandRate, Interchangeability, Lane, LaneKind, LeadTime,
    Location, LocationKind, Network, Part, SupplierLeadTime, TransitTime, TransportMode,
};
use spares::domain::promise::{FulfilmentMode, PromiseQuery};
use spares::planning::model::build_model;
use spares_simulations as sim;
use std::sync::atomic::AtomicBool;

fn location(id: &str, kind: LocationKind, source: Option<&str>) -> Location {
    Location {
        id: id.into(),
        name: id.into(),
        kind,
        latitude_deg: 41.85,
        longitude_deg: -87.65,
        time_zone: "America/Chicago".into(),
        calendar: BusinessCalendar::weekdays_8_to_17(),
        order_cutoff_local: Time::constant(16, 0, 0, 0),
        handling_minutes: 30,
        replenishment_source: source.map(str::to_string),
        country_code: "US".into(),
    }
}

fn lane(kind: LaneKind, hours: f64, cost: f64) -> Lane {
    Lane {
        from: "DEP".into(),
        to: "STR".into(),
        mode: TransportMode::Road,
        kind,
        transit: TransitTime::Fixed {
            transit_hours: hours,
        },
        schedule: None,
        cost_per_unit_usd: cost,
    }
}

fn part(id: &str, lead_days: Option<f64>) -> Part {
    Part {
        id: id.into(),
        description: id.into(),
        unit_cost_usd: 100.0,
        criticality: Criticality::Critical,
        repairable: false,
        successor: None,
        interchangeability: Interchangeability::ForwardOnly,
        supplier_lead_time: lead_days.map(|days| LeadTime::Fixed {
            lead_time_days: days,
        }),
        downtime_cost_usd_per_hour: Some(100.0),
    }
}

/// A depot feeding a store by road (1 day), parts demanded at the store at
/// `rate` per day, nothing stocked anywhere.
fn network(parts: &[Part], rate: f64) -> Network {
    let mut network = Network::default();
    for l in [
        location("DEP", LocationKind::FactoryDepot, None),
        location("STR", LocationKind::Store, Some("DEP")),
    ] {
        network.locations.insert(l.id.clone(), l);
    }
    let road = lane(LaneKind::Replenishment, 24.0, 5.0);
    network.lanes.insert(road.key(), road);
    for p in parts {
        network.parts.insert(p.id.clone(), p.clone());
        let demand = DemandRate {
            part_id: p.id.clone(),
            location_id: "STR".into(),
            failures_per_day: rate,
            variance_to_mean_ratio: 1.0,
        };
        network.demand_rates.insert(demand.key(), demand);
    }
    network
}

fn simulate(network: &Network, parts: &[&str], warm_up: f64) -> sim::Report {
    let ids: Vec<String> = parts.iter().map(|p| p.to_string()).collect();
    let model = build_model(network, &ids).unwrap();
    let config = sim::SimConfig {
        seed: 9,
        replications: 200,
        horizon_days: warm_up + 365.0,
        warm_up_days: warm_up,
        ..sim::SimConfig::default()
    };
    sim::simulate(&model, &config, &|_| {}, &AtomicBool::new(false)).unwrap()
}

fn row<'a>(report: &'a sim::Report, part: &str, location: &str) -> &'a sim::Measures {
    &report
        .part_locations
        .iter()
        .find(|r| r.part == part && r.location == location)
        .unwrap()
        .measures
}

#[test]
fn each_part_s_depot_pipeline_is_its_rate_times_its_own_lead_time() {
    let rate = 0.2;
    let parts = [
        part("P-10", Some(10.0)),
        part("P-80", Some(80.0)),
        part("P-OVR", Some(10.0)),
    ];
    let mut network = network(&parts, rate);
    // P-OVR's own 10 days are overridden at this depot by 40.
    let override_40 = SupplierLeadTime {
        part_id: "P-OVR".into(),
        location_id: "DEP".into(),
        lead_time: LeadTime::Fixed {
            lead_time_days: 40.0,
        },
    };
    network
        .supplier_lead_times
        .insert(override_40.key(), override_40);
    let report = simulate(&network, &["P-10", "P-80", "P-OVR"], 200.0);
    for (part, lead) in [("P-10", 10.0), ("P-80", 80.0), ("P-OVR", 40.0)] {
        // With no depot stock every store order waits at the depot for the
        // supplier, so the depot's backorders are its pipeline on order:
        // Little's law, rate x lead time.
        let pipeline = &row(&report, part, "DEP").expected_backorders;
        let expected = rate * lead;
        let half_width = pipeline.half_width_95.unwrap();
        assert!(
            (pipeline.mean - expected).abs() <= 2.0 * half_width,
            "{part}: pipeline {} +- {half_width}, Little's law says {expected}",
            pipeline.mean
        );
    }
    let downtime = |part: &str| row(&report, part, "STR").downtime_cost.mean;
    assert!(downtime("P-80") > downtime("P-OVR") && downtime("P-OVR") > downtime("P-10"));
    // A store customer waits supplier lead time + one day of transit, priced at
    // the part's own 100 USD per waiting hour.
    let wait = row(&report, "P-80", "STR").mean_wait_days.unwrap().mean;
    assert!((wait - 81.0).abs() < 1.0, "{wait}");
    let per_unit = downtime("P-80") / row(&report, "P-80", "STR").demand_units.mean;
    assert!(
        (per_unit - 81.0 * 24.0 * 100.0).abs() / per_unit < 0.05,
        "{per_unit}"
    );
}

#[test]
fn without_its_own_lead_time_a_part_takes_the_documented_default() {
    let network = network(&[part("P-DEF", None)], 0.2);
    let report = simulate(&network, &["P-DEF"], 200.0);
    let pipeline = &row(&report, "P-DEF", "DEP").expected_backorders;
    let expected = 0.2 * spares::planning::model::FACTORY_LEAD_TIME_DAYS_MEAN;
    assert!(
        (pipeline.mean - expected).abs() <= 2.0 * pipeline.half_width_95.unwrap(),
        "{} vs {expected}",
        pipeline.mean
    );
}

#[test]
fn emergency_and_replenishment_lanes_of_one_mode_coexist_and_each_does_its_job() {
    let mut network = network(&[part("P", Some(5.0))], 0.5);
    let emergency = lane(LaneKind::Emergency, 6.0, 250.0);
    network.lanes.insert(emergency.key(), emergency);
    assert_eq!(network.lanes.len(), 2, "same (from, to, mode), two kinds");

    // The simulation: the replenishment lane is the store's supply, the
    // emergency lane ships to waiting customers when the depot has stock.
    let model = build_model(&network, &["P".to_string()]).unwrap();
    let kinds: Vec<sim::LaneKind> = model.lanes.iter().map(|l| l.kind).collect();
    assert_eq!(kinds.len(), 2);
    assert!(
        kinds.contains(&sim::LaneKind::Replenishment) && kinds.contains(&sim::LaneKind::Emergency)
    );
    let mut stocked = network.clone();
    let policy = spares::domain::network::Policy {
        part_id: "P".into(),
        location_id: "DEP".into(),
        kind: spares::domain::network::PolicyKind::BaseStock,
        order_up_to: 20,
        reorder_point: 0,
        order_quantity: 0,
        protected_quantity: 0,
        source: "test".into(),
    };
    stocked
        .policies
        .insert((policy.part_id.clone(), policy.location_id.clone()), policy);
    let report = simulate(&stocked, &["P"], 60.0);
    let store = row(&report, "P", "STR");
    assert!(
        store.emergency_shipments.mean > 100.0,
        "{:?}",
        store.emergency_shipments
    );
    // Each emergency shipment costs the emergency lane's 250, not the road's 5.
    let per_shipment = store.emergency_cost.mean / store.emergency_shipments.mean;
    assert!((per_shipment - 250.0).abs() < 1e-6, "{per_shipment}");

    // Promises use every lane and take the earliest arrival: the 6 h emergency
    // lane here, the replenishment lane once the emergency lane is the slower.
    let mut stock = MemoryStock::default();
    stock.put(Balance {
        part_id: "P".into(),
        location_id: "DEP".into(),
        available: 3,
        reserved: 0,
        inbound: Vec::new(),
    });
    let query = PromiseQuery {
        part_id: "P".into(),
        quantity: 1,
        destination_location_id: "STR".into(),
        need_by: None,
        mode: FulfilmentMode::Delivery,
        order_time: "2025-07-09T14:00:00Z".parse().unwrap(),
        transit_quantile: 0.0,
        priority: Priority::Routine,
        exact_part_only: false,
        max_options: 0,
    };
    let kind_used = |network: &Network| {
        let outcome = Availability::new(network)
            .unwrap()
            .promise(&query, &stock)
            .unwrap();
        outcome.options[0].sources[0].legs[0].kind
    };
    assert_eq!(kind_used(&network), LaneKind::Emergency);
    let mut slow = network.clone();
    let slow_emergency = lane(LaneKind::Emergency, 72.0, 250.0);
    slow.lanes.insert(slow_emergency.key(), slow_emergency);
    assert_eq!(
        slow.lanes.len(),
        2,
        "the upsert replaced the emergency lane only"
    );
    assert_eq!(kind_used(&slow), LaneKind::Replenishment);
}

#[test]
fn warm_up_is_derived_from_the_longest_supply_chain_and_stated_in_the_result() {
    use spares::planning::simulate::{Settings, SimulationRequest, run_simulation, summarize};
    // A 90-day supplier lead time and a 1-day road: 91 days at p99 (both fixed).
    let network = network(&[part("P-90", Some(90.0))], 0.2);
    let (days, chain) =
        spares::planning::model::derived_warmup_days(&network, &["P-90".to_string()]);
    assert_eq!(days, 91);
    assert_eq!(chain.unwrap().locations, ["DEP", "STR"]);
    let mut request = SimulationRequest {
        settings: Settings {
            horizon_days: 30,
            warmup_days: 0,
            replications: 20,
            seed: 3,
            part_ids: vec!["P-90".into()],
        },
        scenarios: Vec::new(),
    };
    let cancel = AtomicBool::new(false);
    let result = run_simulation(&network, &request, &|_| {}, &cancel).unwrap();
    assert_eq!(result.baseline.warm_up_days, 91.0);
    let summary = summarize(&result);
    println!("{summary}");
    assert!(
        summary.contains("warm-up 91 days, derived: the longest supply chain at p99 is 91.0 days (part P-90, supplier -> DEP -> STR)"),
        "{summary}"
    );
    // A log-normal 90-day median with p90 = 120 days: p99 = 90 (4/3)^(z99/z90).
    let mut lognormal = network.clone();
    lognormal.parts.get_mut("P-90").unwrap().supplier_lead_time = Some(LeadTime::Lognormal {
        lead_time_days_p50: 90.0,
        lead_time_days_p90: 120.0,
    });
    let p99 = 90.0 * (4.0f64 / 3.0).powf(2.326_347_874_040_841 / 1.281_551_565_544_600_4);
    let (days, _) = spares::planning::model::derived_warmup_days(&lognormal, &["P-90".into()]);
    assert_eq!(days, (p99 + 1.0).ceil() as u32, "p99 {p99}");
    // A warm-up the request gives is kept, and said to be.
    request.settings.warmup_days = 45;
    let result = run_simulation(&network, &request, &|_| {}, &cancel).unwrap();
    assert_eq!(result.baseline.warm_up_days, 45.0);
    assert!(summarize(&result).contains("warm-up 45 days, as asked"));
}

#[test]
fn warm_up_on_the_demo_covers_the_default_supplier_lead_time_and_its_transits() {
    use spares::demo::{DemoConfig, build_demo};
    use spares::planning::model::{derived_warmup_days, select_parts, transit_p99_days};
    let config = DemoConfig {
        parts: 300,
        ..DemoConfig::default()
    };
    let demo = build_demo(&config, "2026-11-22T12:00:00Z".parse().unwrap()).unwrap();
    let network = demo.network().unwrap();
    let parts = select_parts(&network, &[]).unwrap();
    let (days, chain) = derived_warmup_days(&network, &parts);
    let chain = chain.unwrap();
    println!(
        "demo: derived warm-up {days} days from {:.2} days along {}",
        chain.p99_days,
        chain.locations.join(" -> ")
    );
    // The demo gives no supplier lead times: the default log-normal (mean 21,
    // sd 7: sigma^2 = ln(1 + 1/9), mu = ln 21 - sigma^2 / 2) has p99
    // exp(mu + z99 sigma) = 42.39 days; the chain adds the p99 of each lane on it (the
    // lane the simulation uses: the replenishment lane of least median).
    let lane_p99: f64 = chain
        .locations
        .windows(2)
        .map(|pair| {
            let lane = network
                .lanes
                .values()
                .filter(|l| {
                    l.kind == LaneKind::Replenishment && l.from == pair[0] && l.to == pair[1]
                })
                .min_by(|a, b| {
                    a.transit
                        .median_hours()
                        .total_cmp(&b.transit.median_hours())
                })
                .unwrap();
            transit_p99_days(&lane.transit)
        })
        .sum();
    assert_eq!(chain.locations.len(), 3, "depot -> regional -> store");
    let sigma = (1.0f64 + 1.0 / 9.0).ln().sqrt();
    let supplier_p99 = (21.0f64.ln() - sigma * sigma / 2.0 + 2.326_347_874_040_841 * sigma).exp();
    assert!((supplier_p99 - 42.39).abs() < 0.01, "{supplier_p99}");
    assert!(
        (chain.p99_days - (supplier_p99 + lane_p99)).abs() < 1e-9,
        "{chain:?}"
    );
    assert_eq!(days, chain.p99_days.ceil() as u32);
    assert!(days > 42);
}

//! The demo's parts catalogue, machine models and installed base.

use super::DemoError;
use crate::domain::network::{
    Criticality, Fleet, Interchangeability, MachineModel, ModelPart, Part,
};
use rand::RngExt;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use rand_distr::{Distribution, LogNormal};
use std::collections::HashSet;

/// First part number; ids run `P-100000`, `P-100001`, ...
const FIRST_PART_NUMBER: usize = 100_000;

/// What parts are called: a noun and the specs it comes in.
const VOCABULARY: &[(&str, &[&str])] = &[
    ("Hydraulic pump", &["28cc", "45cc", "60cc", "90cc"]),
    ("Fuel injector", &["common rail", "unit"]),
    ("Air filter element", &["primary", "secondary"]),
    ("Oil filter", &["engine", "hydraulic return"]),
    ("Fuel filter", &["primary", "water separator"]),
    ("Bearing", &["6204-2RS", "6306-ZZ", "32210", "22220 E"]),
    (
        "Seal kit",
        &[
            "boom cylinder",
            "arm cylinder",
            "bucket cylinder",
            "steering cylinder",
        ],
    ),
    ("Alternator", &["24V 80A", "12V 120A"]),
    ("Starter motor", &["24V 7kW", "12V 4kW"]),
    ("Turbocharger", &["GT35", "HX40"]),
    ("Water pump", &["engine", "auxiliary"]),
    ("V-belt", &["AX38", "BX52", "SPB 1800"]),
    ("Hydraulic hose", &["1/2in 1.2m", "3/4in 2m", "1in 0.8m"]),
    ("Track roller", &["single flange", "double flange"]),
    ("Bucket tooth", &["standard", "rock"]),
    ("Cutting edge", &["2.4m", "3.0m"]),
    ("Brake pad set", &["front", "rear"]),
    ("Clutch disc", &["PTO", "main"]),
    ("Final drive", &["left", "right"]),
    (
        "Sensor",
        &[
            "oil pressure",
            "coolant temperature",
            "wheel speed",
            "boom angle",
        ],
    ),
    ("Solenoid valve", &["pilot", "proportional"]),
    (
        "Control module",
        &["engine ECU", "transmission", "cab display"],
    ),
    ("Radiator", &["engine", "charge air cooler"]),
    ("Belt tensioner", &["automatic"]),
    ("Glow plug", &["11V"]),
    ("Knife section", &["serrated", "smooth"]),
    ("Sieve", &["upper", "lower"]),
    ("Voltage regulator", &["24V"]),
    (
        "Gasket",
        &["cylinder head", "exhaust manifold", "valve cover"],
    ),
    ("Injector nozzle", &["5-hole", "7-hole"]),
];

/// The machine models: (id, name, downtime cost per hour).
const MODELS: [(&str, &str, f64); 8] = [
    ("EX-320", "Excavator 20 t", 450.0),
    ("EX-750", "Excavator 75 t", 1600.0),
    ("WL-950", "Wheel loader 950", 600.0),
    ("DZ-D6", "Dozer D6", 800.0),
    ("TR-8R", "Tractor 8R 340 hp", 300.0),
    ("CB-S790", "Combine harvester S790", 2000.0),
    ("GN-500", "Diesel generator 500 kVA", 150.0),
    ("TH-1055", "Telehandler 10 m", 120.0),
];

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

fn distribution_error(e: impl std::fmt::Display) -> DemoError {
    DemoError::Config {
        field: "seed",
        reason: format!("distribution: {e}"),
    }
}

/// The part catalogue: log-normal unit costs ($2 to $20,000, median about $80),
/// 10% critical, 30% essential, 60% routine, repairables mostly among the
/// expensive parts (about 15% overall), and supersession chains of 2 or 3 parts
/// covering about 3% of the catalogue.
pub fn parts(rng: &mut StdRng, count: usize) -> Result<Vec<Part>, DemoError> {
    let cost = LogNormal::new(80f64.ln(), 1.8).map_err(distribution_error)?;
    let mut parts: Vec<Part> = (0..count)
        .map(|i| {
            let (noun, specs) = VOCABULARY[rng.random_range(0..VOCABULARY.len())];
            let spec = specs[rng.random_range(0..specs.len())];
            let unit_cost_usd = round_to(cost.sample(rng).clamp(2.0, 20_000.0), 2);
            let repairable_share = match unit_cost_usd {
                c if c > 2000.0 => 0.8,
                c if c > 500.0 => 0.5,
                c if c > 100.0 => 0.15,
                _ => 0.03,
            };
            let draw: f64 = rng.random();
            Part {
                id: format!("P-{}", FIRST_PART_NUMBER + i),
                description: format!("{noun} {spec}"),
                unit_cost_usd,
                criticality: if draw < 0.1 {
                    Criticality::Critical
                } else if draw < 0.4 {
                    Criticality::Essential
                } else {
                    Criticality::Routine
                },
                repairable: rng.random_bool(repairable_share),
                successor: None,
                interchangeability: Interchangeability::ForwardOnly,
                supplier_lead_time: None,
                downtime_cost_usd_per_hour: None,
            }
        })
        .collect();
    supersede(rng, &mut parts);
    Ok(parts)
}

/// Links disjoint runs of 2 or 3 distinct parts into chains (old -> newer), so no
/// cycle can form. The newer part takes the older one's description and
/// criticality, at a slightly different price.
fn supersede(rng: &mut StdRng, parts: &mut [Part]) {
    let mut order: Vec<usize> = (0..parts.len()).collect();
    order.shuffle(rng);
    let linked_target = parts.len() * 3 / 100;
    let (mut linked, mut next) = (0, 0);
    while linked < linked_target {
        let length = if rng.random_bool(0.8) { 2 } else { 3 };
        let Some(chain) = order.get(next..next + length) else {
            break;
        };
        for pair in chain.windows(2) {
            let (old, new) = (pair[0], pair[1]);
            parts[new].description = parts[old].description.clone();
            parts[new].criticality = parts[old].criticality;
            parts[new].unit_cost_usd =
                round_to(parts[old].unit_cost_usd * rng.random_range(0.95..1.2), 2);
            parts[old].successor = Some(parts[new].id.clone());
            parts[old].interchangeability = if rng.random_bool(0.6) {
                Interchangeability::ForwardOnly
            } else {
                Interchangeability::TwoWay
            };
            linked += 1;
        }
        next += length;
    }
}

/// Eight machine models, each carrying 50 to 300 current (not superseded) parts,
/// a third of them from a pool of common parts (filters, belts) shared by models.
/// Failure rates have a median of 10 per million operating hours, so most
/// part-stores see well under one unit a month.
pub fn machine_models(rng: &mut StdRng, parts: &[Part]) -> Result<Vec<MachineModel>, DemoError> {
    let failures = LogNormal::new(10f64.ln(), 1.0).map_err(distribution_error)?;
    let mut current: Vec<usize> = (0..parts.len())
        .filter(|&i| parts[i].successor.is_none())
        .collect();
    current.shuffle(rng);
    let common = &current[..current.len().min(400)];
    let mut models = Vec::with_capacity(MODELS.len());
    for (id, name, downtime_cost) in MODELS {
        let wanted = rng.random_range(50..=300).min(current.len());
        let mut chosen = HashSet::new();
        let mut model_parts = Vec::with_capacity(wanted);
        let mut attempts = 0;
        while model_parts.len() < wanted && attempts < wanted * 20 {
            attempts += 1;
            let pool = if rng.random_bool(0.33) {
                common
            } else {
                &current[..]
            };
            let Some(&part) = pool.get(rng.random_range(0..pool.len().max(1))) else {
                break;
            };
            if !chosen.insert(part) {
                continue;
            }
            let units_draw: f64 = rng.random();
            model_parts.push(ModelPart {
                part_id: parts[part].id.clone(),
                units_per_machine: match units_draw {
                    d if d < 0.6 => 1,
                    d if d < 0.8 => 2,
                    d if d < 0.95 => 4,
                    _ => 8,
                },
                attach_rate: if rng.random_bool(0.7) {
                    1.0
                } else {
                    round_to(rng.random_range(0.2..0.9), 2)
                },
                failures_per_million_operating_hours: round_to(
                    failures.sample(rng).clamp(0.5, 1000.0),
                    2,
                ),
                weibull_shape: if rng.random_bool(0.5) {
                    1.0
                } else {
                    round_to(rng.random_range(1.2..3.0), 1)
                },
            });
        }
        models.push(MachineModel {
            id: id.to_string(),
            name: name.to_string(),
            downtime_cost_usd_per_hour: downtime_cost,
            parts: model_parts,
        });
    }
    Ok(models)
}

/// Two to four machine models per store, 5 to 80 machines each, used 6 to 16 hours a day.
pub fn fleets(rng: &mut StdRng, store_ids: &[String], models: &[MachineModel]) -> Vec<Fleet> {
    let mut fleets = Vec::new();
    let mut order: Vec<usize> = (0..models.len()).collect();
    for store in store_ids {
        order.shuffle(rng);
        let count = rng.random_range(2..=4).min(models.len());
        let mut mine: Vec<usize> = order[..count].to_vec();
        mine.sort_unstable();
        for m in mine {
            fleets.push(Fleet {
                store_location_id: store.clone(),
                machine_model_id: models[m].id.clone(),
                machine_count: rng.random_range(5..=80),
                usage_hours_per_day: f64::from(rng.random_range(12..=32u32)) / 2.0,
                average_age_hours: f64::from(rng.random_range(500..=20_000u32)),
            });
        }
    }
    fleets
}

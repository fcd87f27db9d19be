//! Checks a [`Model`] and turns it into indexed form for the engine.
//!
//! Validation names the entity and field of the first bad input it finds. The compiled
//! network refers to locations, lanes and sources by position, but every random stream is
//! keyed by ids, so positions never leak into the draws.

use std::collections::{HashMap, HashSet};

use crate::demand::{Bootstrap, RateProfile, WeibullLife};
use crate::error::SimError;
use crate::model::{
    DemandRate, Echelon, LaneKind, Life, Model, Policy, RepairSpec, TimeDistribution,
};
use crate::random::entity_key;

/// Most locations in one model: per-part state is allocated per location.
pub const MAX_LOCATIONS: usize = 100_000;
/// Most installed units under Weibull wear-out: each is its own renewal process in memory.
pub const MAX_RENEWAL_UNITS: u64 = 5_000_000;
/// Highest stock level of a policy: far above any spare-parts stock, catches unit mistakes.
pub const MAX_STOCK_LEVEL: i64 = 1_000_000;

/// A location in indexed form.
#[derive(Debug, Clone)]
pub(crate) struct LocationNode {
    pub(crate) id: String,
    pub(crate) key: u64,
    pub(crate) is_store: bool,
    /// (parent location, replenishment lane from it).
    pub(crate) parent: Option<(usize, usize)>,
    /// Top of this location's supply tree.
    pub(crate) root: usize,
    pub(crate) external_supply: Option<TimeDistribution>,
    /// Machines installed at this location (all models).
    pub(crate) machines: u64,
    /// (lender, lane), nearest first by mean transit.
    pub(crate) lateral_sources: Vec<(usize, usize)>,
    /// (warehouse or depot, lane), nearest first by mean transit.
    pub(crate) emergency_sources: Vec<(usize, usize)>,
    /// Out-of-service periods [start, end).
    pub(crate) outages: Vec<(f64, f64)>,
}

/// A lane in indexed form.
#[derive(Debug, Clone)]
pub(crate) struct LaneNode {
    pub(crate) key: u64,
    pub(crate) transit: TimeDistribution,
    pub(crate) cost_per_shipment: f64,
}

/// How one demand source generates demand.
#[derive(Debug, Clone)]
pub(crate) enum Process {
    /// Poisson failures of a fleet with exponential lives.
    Poisson {
        rate_per_day: f64,
        profile: RateProfile,
    },
    /// Weibull renewals of every installed unit of a fleet.
    Weibull {
        life: WeibullLife,
        units: u32,
        start_age_hours: f64,
        attach_rate: f64,
        profile: RateProfile,
    },
    /// Bootstrap of a demand history.
    Bootstrap(Bootstrap),
    /// A demand rate with extra variance: Poisson batches of logarithmic size, so counts over
    /// any window are negative binomial.
    Batches {
        batches_per_day: f64,
        /// Parameter p of the logarithmic batch size, in (0, 1).
        logarithmic_p: f64,
    },
}

/// One stream of demand for one part at one location.
#[derive(Debug, Clone)]
pub(crate) struct Source {
    pub(crate) location: usize,
    pub(crate) key: u64,
    pub(crate) downtime_cost_per_hour: f64,
    pub(crate) process: Process,
}

/// One part in indexed form.
#[derive(Debug, Clone)]
pub(crate) struct PartPlan {
    pub(crate) id: String,
    pub(crate) key: u64,
    pub(crate) criticality: f64,
    pub(crate) repair: Option<RepairSpec>,
    /// Policy per location (base stock 0 where none was given).
    pub(crate) policies: Vec<Policy>,
    /// Whether the (part, location) pair is reported.
    pub(crate) reported: Vec<bool>,
    /// The reported locations, in location order: the only ones the engine can touch.
    pub(crate) slots: Vec<usize>,
    pub(crate) sources: Vec<Source>,
    /// Mean replenishment lead time per location, for lead-time demand samples.
    pub(crate) lead_time_days: Vec<f64>,
    /// Outside supply of this part per location: its override there, else (where the
    /// location has outside supply) the part's own lead time, else the location's.
    pub(crate) external_supply: Vec<Option<TimeDistribution>>,
    /// The part's own cost per waiting hour, replacing the sources' machine cost.
    pub(crate) waiting_cost_per_hour: Option<f64>,
}

/// The compiled model.
#[derive(Debug, Clone)]
pub(crate) struct Network {
    pub(crate) locations: Vec<LocationNode>,
    pub(crate) lanes: Vec<LaneNode>,
    pub(crate) parts: Vec<PartPlan>,
    pub(crate) total_machines: u64,
    pub(crate) fulfilment_lateral: bool,
    pub(crate) fulfilment_emergency: bool,
}

fn check_number(
    entity: &str,
    field: &str,
    value: f64,
    low: f64,
    high: f64,
) -> Result<(), SimError> {
    if value.is_finite() && value >= low && value <= high {
        Ok(())
    } else {
        let reason = format!("must be finite and within [{low}, {high}]");
        Err(SimError::invalid(entity, field, value, &reason))
    }
}

fn check_duration(
    entity: &str,
    field: &str,
    distribution: &TimeDistribution,
) -> Result<(), SimError> {
    let max = f64::MAX;
    match *distribution {
        TimeDistribution::Deterministic { days } => check_number(entity, field, days, 0.0, max),
        TimeDistribution::Exponential { mean_days } => {
            check_number(entity, field, mean_days, 0.0, max)
        }
        TimeDistribution::Uniform { min_days, max_days } => {
            check_number(entity, field, min_days, 0.0, max)?;
            check_number(entity, field, max_days, min_days, max)
        }
        TimeDistribution::LogNormal {
            mean_days,
            std_dev_days,
        } => {
            check_number(entity, field, mean_days, 0.0, max)?;
            check_number(entity, field, std_dev_days, 0.0, max)
        }
    }
}

fn index_ids<'a>(
    kind: &str,
    ids: impl Iterator<Item = &'a str>,
) -> Result<HashMap<&'a str, usize>, SimError> {
    let mut index = HashMap::new();
    for (position, id) in ids.enumerate() {
        if index.insert(id, position).is_some() {
            return Err(SimError::DuplicateId {
                kind: kind.into(),
                id: id.into(),
            });
        }
    }
    Ok(index)
}

fn lookup(
    index: &HashMap<&str, usize>,
    kind: &str,
    id: &str,
    referenced_by: &str,
) -> Result<usize, SimError> {
    index
        .get(id)
        .copied()
        .ok_or_else(|| SimError::UnknownReference {
            kind: kind.into(),
            id: id.into(),
            referenced_by: referenced_by.into(),
        })
}

/// Ids of the model's entities, by kind.
struct Indexes<'a> {
    locations: HashMap<&'a str, usize>,
    parts: HashMap<&'a str, usize>,
    machine_models: HashMap<&'a str, usize>,
    fleets: HashMap<&'a str, usize>,
    /// Supplier lead-time overrides by (part, location).
    supplier_lead_times: HashMap<(usize, usize), TimeDistribution>,
}

/// Validates `model` and compiles it.
///
/// # Errors
/// The first bad input found, as a [`SimError`] naming the entity and field.
pub(crate) fn compile(model: &Model) -> Result<Network, SimError> {
    if model.locations.len() > MAX_LOCATIONS {
        return Err(SimError::LimitExceeded {
            what: "locations".into(),
            value: model.locations.len() as u64,
            limit: MAX_LOCATIONS as u64,
        });
    }
    let indexes = Indexes {
        locations: index_ids("location", model.locations.iter().map(|l| l.id.as_str()))?,
        parts: index_ids("part", model.parts.iter().map(|p| p.id.as_str()))?,
        machine_models: index_ids(
            "machine model",
            model.machine_models.iter().map(|m| m.id.as_str()),
        )?,
        fleets: index_ids("fleet", model.fleets.iter().map(|f| f.id.as_str()))?,
        supplier_lead_times: HashMap::new(),
    };
    let indexes = Indexes {
        supplier_lead_times: supplier_overrides(model, &indexes)?,
        ..indexes
    };
    let mut network = Network {
        locations: compile_locations(model)?,
        lanes: Vec::with_capacity(model.lanes.len()),
        parts: Vec::with_capacity(model.parts.len()),
        total_machines: 0,
        fulfilment_lateral: model.fulfilment.lateral,
        fulfilment_emergency: model.fulfilment.emergency,
    };
    compile_lanes(model, &indexes, &mut network)?;
    find_roots(&mut network)?;
    compile_installed_base(model, &indexes, &mut network)?;
    for part_index in 0..model.parts.len() {
        let plan = compile_part(model, &indexes, &network, part_index)?;
        network.parts.push(plan);
    }
    check_policies(model, &indexes, &mut network)?;
    mark_reported(model, &mut network);
    for plan in &network.parts {
        check_supply(model, &network, plan)?;
    }
    Ok(network)
}

fn compile_locations(model: &Model) -> Result<Vec<LocationNode>, SimError> {
    model
        .locations
        .iter()
        .enumerate()
        .map(|(position, location)| {
            let entity = format!("location `{}`", location.id);
            if let Some(supply) = &location.external_supply_days {
                check_duration(&entity, "external_supply_days", supply)?;
            }
            Ok(LocationNode {
                id: location.id.clone(),
                key: entity_key(&["location", &location.id]),
                is_store: location.echelon == Echelon::Store,
                parent: None,
                root: position,
                external_supply: location.external_supply_days,
                machines: 0,
                lateral_sources: Vec::new(),
                emergency_sources: Vec::new(),
                outages: Vec::new(),
            })
        })
        .collect()
}

fn compile_lanes(model: &Model, indexes: &Indexes, network: &mut Network) -> Result<(), SimError> {
    for lane in &model.lanes {
        let entity = format!("lane `{}` -> `{}`", lane.from, lane.to);
        let from = lookup(&indexes.locations, "location", &lane.from, &entity)?;
        let to = lookup(&indexes.locations, "location", &lane.to, &entity)?;
        if from == to {
            return Err(SimError::invalid(
                &entity,
                "to",
                &lane.to,
                "a lane must join two locations",
            ));
        }
        check_duration(&entity, "transit_days", &lane.transit_days)?;
        check_number(
            &entity,
            "cost_per_shipment",
            lane.cost_per_shipment,
            0.0,
            f64::MAX,
        )?;
        let lane_index = network.lanes.len();
        let kind = format!("{:?}", lane.kind);
        network.lanes.push(LaneNode {
            key: entity_key(&["lane", &kind, &lane.from, &lane.to]),
            transit: lane.transit_days,
            cost_per_shipment: lane.cost_per_shipment,
        });
        let node = &mut network.locations[to];
        match lane.kind {
            LaneKind::Replenishment => {
                if node.parent.is_some() {
                    return Err(SimError::AmbiguousSupply {
                        location: lane.to.clone(),
                    });
                }
                node.parent = Some((from, lane_index));
            }
            LaneKind::Lateral => node.lateral_sources.push((from, lane_index)),
            LaneKind::Emergency => node.emergency_sources.push((from, lane_index)),
        }
    }
    let lanes = &network.lanes;
    let nearest = |sources: &mut Vec<(usize, usize)>| {
        sources.sort_by(|a, b| {
            lanes[a.1]
                .transit
                .mean_days()
                .total_cmp(&lanes[b.1].transit.mean_days())
        });
    };
    for node in &mut network.locations {
        nearest(&mut node.lateral_sources);
        nearest(&mut node.emergency_sources);
    }
    for outage in &model.outages {
        let entity = format!("outage of `{}`", outage.location);
        let location = lookup(&indexes.locations, "location", &outage.location, &entity)?;
        check_number(&entity, "start_day", outage.start_day, 0.0, f64::MAX)?;
        check_number(
            &entity,
            "end_day",
            outage.end_day,
            outage.start_day,
            f64::MAX,
        )?;
        network.locations[location]
            .outages
            .push((outage.start_day, outage.end_day));
    }
    Ok(())
}

fn find_roots(network: &mut Network) -> Result<(), SimError> {
    let count = network.locations.len();
    for start in 0..count {
        let mut current = start;
        let mut steps = 0;
        while let Some((parent, _)) = network.locations[current].parent {
            current = parent;
            steps += 1;
            if steps > count {
                return Err(SimError::SupplyCycle {
                    location: network.locations[start].id.clone(),
                });
            }
        }
        network.locations[start].root = current;
    }
    Ok(())
}

fn compile_installed_base(
    model: &Model,
    indexes: &Indexes,
    network: &mut Network,
) -> Result<(), SimError> {
    for machine_model in &model.machine_models {
        let entity = format!("machine model `{}`", machine_model.id);
        check_number(
            &entity,
            "downtime_cost_per_hour",
            machine_model.downtime_cost_per_hour,
            0.0,
            f64::MAX,
        )?;
    }
    for fleet in &model.fleets {
        let entity = format!("fleet `{}`", fleet.id);
        let location = lookup(&indexes.locations, "location", &fleet.location, &entity)?;
        lookup(
            &indexes.machine_models,
            "machine model",
            &fleet.machine_model,
            &entity,
        )?;
        check_number(
            &entity,
            "usage_hours_per_day",
            fleet.usage_hours_per_day,
            0.0,
            24.0,
        )?;
        check_number(
            &entity,
            "age_operating_hours",
            fleet.age_operating_hours,
            0.0,
            f64::MAX,
        )?;
        network.locations[location].machines += u64::from(fleet.machines);
        network.total_machines += u64::from(fleet.machines);
    }
    for shock in &model.shocks {
        let entity = format!("shock on fleet `{}`", shock.fleet);
        lookup(&indexes.fleets, "fleet", &shock.fleet, &entity)?;
        check_number(&entity, "start_day", shock.start_day, 0.0, f64::MAX)?;
        check_number(&entity, "end_day", shock.end_day, shock.start_day, f64::MAX)?;
        check_number(
            &entity,
            "failure_rate_multiplier",
            shock.failure_rate_multiplier,
            0.0,
            f64::MAX,
        )?;
    }
    for failure in &model.failure_models {
        let entity = format!(
            "failure model of part `{}` on `{}`",
            failure.part, failure.machine_model
        );
        lookup(&indexes.parts, "part", &failure.part, &entity)?;
        lookup(
            &indexes.machine_models,
            "machine model",
            &failure.machine_model,
            &entity,
        )?;
        check_number(&entity, "attach_rate", failure.attach_rate, 0.0, 1.0)?;
        match failure.life {
            Life::Exponential {
                failures_per_operating_hour,
            } => {
                check_number(
                    &entity,
                    "failures_per_operating_hour",
                    failures_per_operating_hour,
                    0.0,
                    f64::MAX,
                )?;
            }
            Life::Weibull {
                shape,
                scale_operating_hours,
            } => {
                check_number(&entity, "shape", shape, f64::MIN_POSITIVE, 1e3)?;
                check_number(
                    &entity,
                    "scale_operating_hours",
                    scale_operating_hours,
                    f64::MIN_POSITIVE,
                    f64::MAX,
                )?;
            }
        }
    }
    Ok(())
}

fn fleet_sources(
    model: &Model,
    indexes: &Indexes,
    part_id: &str,
    histories: &HashSet<(&str, &str)>,
) -> Result<Vec<Source>, SimError> {
    let mut sources = Vec::new();
    let mut renewal_units: u64 = 0;
    for failure in model.failure_models.iter().filter(|f| f.part == part_id) {
        for fleet in model
            .fleets
            .iter()
            .filter(|f| f.machine_model == failure.machine_model)
        {
            if histories.contains(&(part_id, fleet.location.as_str())) {
                continue;
            }
            let location = lookup(&indexes.locations, "location", &fleet.location, "fleet")?;
            let machine_model = lookup(
                &indexes.machine_models,
                "machine model",
                &fleet.machine_model,
                "fleet",
            )?;
            let shocks: Vec<(f64, f64, f64)> = model
                .shocks
                .iter()
                .filter(|s| s.fleet == fleet.id)
                .map(|s| (s.start_day, s.end_day, s.failure_rate_multiplier))
                .collect();
            let profile = RateProfile::from_shocks(&shocks);
            let units = u64::from(fleet.machines) * u64::from(failure.units_per_machine);
            let process = match failure.life {
                Life::Exponential {
                    failures_per_operating_hour,
                } => Process::Poisson {
                    rate_per_day: units as f64
                        * failure.attach_rate
                        * failures_per_operating_hour
                        * fleet.usage_hours_per_day,
                    profile,
                },
                Life::Weibull {
                    shape,
                    scale_operating_hours,
                } => {
                    renewal_units += units;
                    if renewal_units > MAX_RENEWAL_UNITS {
                        return Err(SimError::LimitExceeded {
                            what: format!(
                                "installed units under Weibull wear-out for part `{part_id}`"
                            ),
                            value: renewal_units,
                            limit: MAX_RENEWAL_UNITS,
                        });
                    }
                    Process::Weibull {
                        life: WeibullLife {
                            shape,
                            scale_hours: scale_operating_hours,
                            hours_per_day: fleet.usage_hours_per_day,
                        },
                        units: units as u32,
                        start_age_hours: fleet.age_operating_hours,
                        attach_rate: failure.attach_rate,
                        profile,
                    }
                }
            };
            sources.push(Source {
                location,
                key: entity_key(&["fleet", &fleet.id, part_id]),
                downtime_cost_per_hour: model.machine_models[machine_model].downtime_cost_per_hour,
                process,
            });
        }
    }
    Ok(sources)
}

fn history_sources(
    model: &Model,
    indexes: &Indexes,
    part_id: &str,
    rated: &HashSet<&str>,
) -> Result<Vec<Source>, SimError> {
    let mut sources = Vec::new();
    for history in model
        .demand_histories
        .iter()
        .filter(|h| h.part == part_id && !rated.contains(h.location.as_str()))
    {
        let entity = format!(
            "demand history of part `{}` at `{}`",
            history.part, history.location
        );
        let location = lookup(&indexes.locations, "location", &history.location, &entity)?;
        check_number(
            &entity,
            "period_days",
            history.period_days,
            f64::MIN_POSITIVE,
            f64::MAX,
        )?;
        check_number(
            &entity,
            "demand_multiplier",
            history.demand_multiplier,
            0.0,
            1e6,
        )?;
        if history.quantities.is_empty() {
            return Err(SimError::invalid(
                &entity,
                "quantities",
                "[]",
                "needs at least one period",
            ));
        }
        let downtime_cost_per_hour = match &history.machine_model {
            Some(id) => {
                let index = lookup(&indexes.machine_models, "machine model", id, &entity)?;
                model.machine_models[index].downtime_cost_per_hour
            }
            None => 0.0,
        };
        sources.push(Source {
            location,
            key: entity_key(&["history", part_id, &history.location]),
            downtime_cost_per_hour,
            process: Process::Bootstrap(Bootstrap::fit(history)),
        });
    }
    Ok(sources)
}

fn compile_part(
    model: &Model,
    indexes: &Indexes,
    network: &Network,
    part_index: usize,
) -> Result<PartPlan, SimError> {
    let part = &model.parts[part_index];
    let entity = format!("part `{}`", part.id);
    check_number(&entity, "unit_cost", part.unit_cost, 0.0, f64::MAX)?;
    check_number(&entity, "criticality", part.criticality, 0.0, 1.0)?;
    if let Some(repair) = &part.repair {
        check_number(
            &entity,
            "local_repair_probability",
            repair.local_repair_probability,
            0.0,
            1.0,
        )?;
        check_duration(&entity, "local_repair_days", &repair.local_repair_days)?;
        check_duration(&entity, "depot_repair_days", &repair.depot_repair_days)?;
    }
    if let Some(supply) = &part.supplier_lead_time_days {
        check_duration(&entity, "supplier_lead_time_days", supply)?;
    }
    if let Some(cost) = part.downtime_cost_per_hour {
        check_number(&entity, "downtime_cost_per_hour", cost, 0.0, f64::MAX)?;
    }
    let sources = part_sources(model, indexes, &part.id)?;
    let count = network.locations.len();
    let mut reported = vec![false; count];
    for source in &sources {
        reported[source.location] = true;
    }
    let external_supply: Vec<Option<TimeDistribution>> = network
        .locations
        .iter()
        .enumerate()
        .map(|(location, node)| {
            let overridden = indexes.supplier_lead_times.get(&(part_index, location));
            overridden.copied().or_else(|| {
                node.external_supply
                    .map(|own| part.supplier_lead_time_days.unwrap_or(own))
            })
        })
        .collect();
    let lead_time_days = (0..count)
        .map(|location| mean_lead_time(network, part.repair.as_ref(), &external_supply, location))
        .collect();
    Ok(PartPlan {
        id: part.id.clone(),
        key: entity_key(&["part", &part.id]),
        criticality: part.criticality,
        repair: part.repair.clone(),
        policies: vec![Policy::BaseStock { level: 0 }; count],
        reported,
        slots: Vec::new(),
        sources,
        lead_time_days,
        external_supply,
        waiting_cost_per_hour: part.downtime_cost_per_hour,
    })
}

/// Demand sources of one part. At each location exactly one kind drives demand: the demand
/// rate if there is one, else the demand history, else the installed base.
fn part_sources(model: &Model, indexes: &Indexes, part_id: &str) -> Result<Vec<Source>, SimError> {
    let rated: HashSet<&str> = model
        .demand_rates
        .iter()
        .filter(|r| r.part == part_id)
        .map(|r| r.location.as_str())
        .collect();
    let mut replaced: HashSet<(&str, &str)> = model
        .demand_histories
        .iter()
        .filter(|h| h.part == part_id)
        .map(|h| (h.part.as_str(), h.location.as_str()))
        .collect();
    replaced.extend(rated.iter().map(|&location| (part_id, location)));
    let mut sources = rate_sources(model, indexes, part_id)?;
    sources.extend(fleet_sources(model, indexes, part_id, &replaced)?);
    sources.extend(history_sources(model, indexes, part_id, &rated)?);
    Ok(sources)
}

/// Checks the supplier lead-time overrides and indexes them by (part, location).
fn supplier_overrides(
    model: &Model,
    indexes: &Indexes,
) -> Result<HashMap<(usize, usize), TimeDistribution>, SimError> {
    let mut overrides = HashMap::new();
    for supply in &model.supplier_lead_times {
        let entity = format!(
            "supplier lead time of part `{}` at `{}`",
            supply.part, supply.location
        );
        let part = lookup(&indexes.parts, "part", &supply.part, &entity)?;
        let location = lookup(&indexes.locations, "location", &supply.location, &entity)?;
        check_duration(&entity, "lead_time_days", &supply.lead_time_days)?;
        if overrides
            .insert((part, location), supply.lead_time_days)
            .is_some()
        {
            return Err(SimError::DuplicateId {
                kind: "supplier lead time".into(),
                id: format!("{}@{}", supply.part, supply.location),
            });
        }
    }
    Ok(overrides)
}

/// Highest demand rate of one part at one location, per day: catches a yearly figure
/// entered as daily long before it allocates events without end.
pub const MAX_UNITS_PER_DAY: f64 = 1e6;

fn rate_process(rate: &DemandRate, entity: &str) -> Result<Process, SimError> {
    check_number(
        entity,
        "units_per_day",
        rate.units_per_day,
        0.0,
        MAX_UNITS_PER_DAY,
    )?;
    let ratio = rate.variance_to_mean_ratio;
    check_number(entity, "variance_to_mean_ratio", ratio, 1.0, 1e6)?;
    if ratio - 1.0 < 1e-9 {
        return Ok(Process::Poisson {
            rate_per_day: rate.units_per_day,
            profile: RateProfile::from_shocks(&[]),
        });
    }
    // Logarithmic batches with p = 1 - 1/ratio have mean (ratio - 1) / ln ratio; Poisson
    // batches at units / that mean give the rate, and the count variance is ratio x mean.
    let mean_batch = (ratio - 1.0) / ratio.ln();
    Ok(Process::Batches {
        batches_per_day: rate.units_per_day / mean_batch,
        logarithmic_p: 1.0 - 1.0 / ratio,
    })
}

fn rate_sources(model: &Model, indexes: &Indexes, part_id: &str) -> Result<Vec<Source>, SimError> {
    let mut sources = Vec::new();
    let mut seen = HashSet::new();
    for rate in model.demand_rates.iter().filter(|r| r.part == part_id) {
        let entity = format!("demand rate of part `{}` at `{}`", rate.part, rate.location);
        let location = lookup(&indexes.locations, "location", &rate.location, &entity)?;
        if !seen.insert(location) {
            return Err(SimError::DuplicateId {
                kind: "demand rate".into(),
                id: format!("{}@{}", rate.part, rate.location),
            });
        }
        let downtime_cost_per_hour = match &rate.machine_model {
            Some(id) => {
                let index = lookup(&indexes.machine_models, "machine model", id, &entity)?;
                model.machine_models[index].downtime_cost_per_hour
            }
            None => 0.0,
        };
        sources.push(Source {
            location,
            key: entity_key(&["rate", part_id, &rate.location]),
            downtime_cost_per_hour,
            process: rate_process(rate, &entity)?,
        });
    }
    Ok(sources)
}

fn mean_lead_time(
    network: &Network,
    repair: Option<&RepairSpec>,
    external_supply: &[Option<TimeDistribution>],
    location: usize,
) -> f64 {
    let node = &network.locations[location];
    let resupply = match node.parent {
        Some((_, lane)) => network.lanes[lane].transit.mean_days(),
        None => match (repair, &external_supply[location]) {
            (Some(repair), _) => repair.depot_repair_days.mean_days(),
            (None, Some(supply)) => supply.mean_days(),
            (None, None) => 0.0,
        },
    };
    match repair {
        Some(repair) if node.is_store => {
            let local = repair.local_repair_probability;
            local * repair.local_repair_days.mean_days() + (1.0 - local) * resupply
        }
        _ => resupply,
    }
}

fn check_policies(model: &Model, indexes: &Indexes, network: &mut Network) -> Result<(), SimError> {
    let mut seen = HashSet::new();
    for stocking in &model.policies {
        let entity = format!(
            "policy of part `{}` at `{}`",
            stocking.part, stocking.location
        );
        let part = lookup(&indexes.parts, "part", &stocking.part, &entity)?;
        let location = lookup(&indexes.locations, "location", &stocking.location, &entity)?;
        if !seen.insert((part, location)) {
            return Err(SimError::DuplicateId {
                kind: "policy".into(),
                id: format!("{}@{}", stocking.part, stocking.location),
            });
        }
        check_policy(&entity, &stocking.policy)?;
        if model.parts[part].repair.is_some()
            && !matches!(stocking.policy, Policy::BaseStock { .. })
        {
            return Err(SimError::PolicyNotSupported {
                part: stocking.part.clone(),
                location: stocking.location.clone(),
                reason: "repairable parts are replenished one for one: use a base-stock policy"
                    .into(),
            });
        }
        network.parts[part].policies[location] = stocking.policy;
        network.parts[part].reported[location] = true;
    }
    Ok(())
}

fn check_policy(entity: &str, policy: &Policy) -> Result<(), SimError> {
    let limit = MAX_STOCK_LEVEL as f64;
    match *policy {
        Policy::BaseStock { level } => check_number(entity, "level", f64::from(level), 0.0, limit),
        Policy::MinMax {
            reorder_point,
            order_up_to,
        } => {
            check_number(entity, "reorder_point", reorder_point as f64, -1.0, limit)?;
            check_number(
                entity,
                "order_up_to",
                order_up_to as f64,
                reorder_point as f64 + 1.0,
                limit,
            )
        }
        Policy::ReorderPointQuantity {
            reorder_point,
            quantity,
        } => {
            check_number(entity, "reorder_point", reorder_point as f64, -1.0, limit)?;
            check_number(entity, "quantity", f64::from(quantity), 1.0, limit)
        }
    }
}

/// Reports every location a part's demand can reach: where it arises, the lenders it may
/// borrow from, and all their suppliers up the tree.
fn mark_reported(model: &Model, network: &mut Network) {
    let locations = &network.locations;
    for plan in &mut network.parts {
        let mut pending: Vec<usize> = plan.sources.iter().map(|s| s.location).collect();
        for source in &plan.sources {
            let node = &locations[source.location];
            if model.fulfilment.lateral {
                pending.extend(node.lateral_sources.iter().map(|&(lender, _)| lender));
            }
            if model.fulfilment.emergency {
                pending.extend(node.emergency_sources.iter().map(|&(lender, _)| lender));
            }
        }
        for start in pending {
            plan.reported[start] = true;
            let mut current = start;
            while let Some((parent, _)) = locations[current].parent {
                plan.reported[parent] = true;
                current = parent;
            }
        }
        plan.slots = (0..locations.len()).filter(|&l| plan.reported[l]).collect();
    }
}

/// Every location that may have to reorder a consumable part (it has demand, or lends to a
/// location with demand) must lead up to a location with outside supply.
fn check_supply(model: &Model, network: &Network, plan: &PartPlan) -> Result<(), SimError> {
    if plan.repair.is_some() {
        return Ok(());
    }
    let mut active: Vec<usize> = plan.sources.iter().map(|s| s.location).collect();
    for source in &plan.sources {
        let node = &network.locations[source.location];
        if model.fulfilment.lateral {
            active.extend(node.lateral_sources.iter().map(|&(lender, _)| lender));
        }
        if model.fulfilment.emergency {
            active.extend(node.emergency_sources.iter().map(|&(lender, _)| lender));
        }
    }
    for location in active {
        let root = network.locations[location].root;
        if plan.external_supply[root].is_none() {
            return Err(SimError::NoSupplyPath {
                location: network.locations[location].id.clone(),
                part: plan.id.clone(),
            });
        }
    }
    Ok(())
}

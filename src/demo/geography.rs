//! The demo's geography: real cities from the vendored GeoNames subset become
//! factory depots, regional warehouses and stores, joined by lanes whose transit
//! times follow from great-circle distance and mode.

use super::DemoError;
use super::holidays::{COUNTRIES, public_holidays};
use crate::domain::network::{
    BusinessCalendar, DepartureSchedule, Lane, LaneKind, Location, LocationKind, TransitTime,
    TransportMode, WeekdayName, great_circle_km,
};
use jiff::civil::Time;
use rand::RngExt;
use rand::rngs::StdRng;
use std::collections::{BTreeSet, HashMap, HashSet};

/// The vendored subset of GeoNames cities15000 (CC BY 4.0, see `NOTICE`).
const CITIES_CSV: &str = include_str!("../../data/cities_demo.csv");

/// Factory depots in the order `DemoConfig::depots` takes them: (code, GeoNames id).
pub const DEPOTS: [(&str, u32); 3] = [("ROT", 2_747_891), ("PIA", 4_905_687), ("MTY", 3_995_465)];

/// Regional warehouses in the order `DemoConfig::regionals` takes them, alternating
/// continents so a smaller demo still spans both.
pub const REGIONALS: [(&str, u32); 12] = [
    ("ATL", 4_180_439),
    ("FRA", 2_925_533),
    ("DAL", 4_684_888),
    ("LYS", 2_996_944),
    ("YYZ", 6_167_865),
    ("BHX", 2_655_603),
    ("LAX", 5_368_361),
    ("MIL", 3_173_435),
    ("MEX", 3_530_597),
    ("MAD", 3_117_735),
    ("PHL", 4_560_349),
    ("WAW", 756_135),
];

/// Truck speed times daily driving hours: 60 km/h for 10 h.
const ROAD_KM_PER_DAY: f64 = 600.0;
/// Roads are longer than the great circle.
const ROAD_CIRCUITY: f64 = 1.25;
/// Lateral lanes join stores of one region closer than this.
const LATERAL_MAX_KM: f64 = 300.0;
/// Each store gets lateral lanes to at most this many neighbours.
const LATERAL_NEIGHBOURS: usize = 3;

/// A row of the vendored city file.
#[derive(Debug, Clone)]
pub struct City {
    /// GeoNames id.
    pub geonameid: u32,
    /// Name.
    pub name: String,
    /// ISO country code.
    pub country_code: String,
    /// Latitude in degrees.
    pub latitude_deg: f64,
    /// Longitude in degrees.
    pub longitude_deg: f64,
    /// Population.
    pub population: u64,
    /// IANA time zone.
    pub time_zone: String,
}

#[derive(serde::Deserialize)]
struct CityRow {
    geonameid: u32,
    name: String,
    countrycode: String,
    latitude: f64,
    longitude: f64,
    population: u64,
    timezone: String,
}

/// Parses the vendored cities.
pub fn cities() -> Result<Vec<City>, DemoError> {
    let mut reader = csv::Reader::from_reader(CITIES_CSV.as_bytes());
    reader
        .deserialize::<CityRow>()
        .map(|row| {
            let row = row.map_err(|e| DemoError::CityData(e.to_string()))?;
            Ok(City {
                geonameid: row.geonameid,
                name: row.name,
                country_code: row.countrycode,
                latitude_deg: row.latitude,
                longitude_deg: row.longitude,
                population: row.population,
                time_zone: row.timezone,
            })
        })
        .collect()
}

/// North America or Europe, by country.
pub fn in_north_america(country_code: &str) -> bool {
    matches!(country_code, "US" | "CA" | "MX")
}

fn km(a: &Location, b: &Location) -> f64 {
    great_circle_km(
        a.latitude_deg,
        a.longitude_deg,
        b.latitude_deg,
        b.longitude_deg,
    )
}

fn city_km(a: &City, b: &City) -> f64 {
    great_circle_km(
        a.latitude_deg,
        a.longitude_deg,
        b.latitude_deg,
        b.longitude_deg,
    )
}

fn round_to(value: f64, decimals: i32) -> f64 {
    let scale = 10f64.powi(decimals);
    (value * scale).round() / scale
}

/// A random local time between `earliest` and `latest` hours, on the half hour.
fn half_hour(rng: &mut StdRng, earliest: i8, latest: i8) -> Time {
    let slot = rng.random_range(0..=(latest - earliest) * 2);
    Time::constant(earliest + slot / 2, (slot % 2) * 30, 0, 0)
}

/// The picked sites and their locations.
pub struct Sites {
    /// All locations: depots, then regionals, then stores.
    pub locations: Vec<Location>,
    /// Index of each store's regional in `locations`.
    pub store_regional: Vec<usize>,
    /// Number of depots (they come first).
    pub depots: usize,
    /// Number of regionals (they follow the depots).
    pub regionals: usize,
}

fn find(cities: &[City], geonameid: u32) -> Result<&City, DemoError> {
    cities
        .iter()
        .find(|c| c.geonameid == geonameid)
        .ok_or_else(|| DemoError::CityData(format!("GeoNames id {geonameid} is missing")))
}

struct Site<'a> {
    id: String,
    name: String,
    kind: LocationKind,
    city: &'a City,
}

fn location(
    site: &Site<'_>,
    rng: &mut StdRng,
    years: (i16, i16),
    source: Option<String>,
) -> Result<Location, DemoError> {
    let city = site.city;
    let holidays = public_holidays(&city.country_code, years.0, years.1)
        .map_err(|e| DemoError::Time(e.to_string()))?;
    let (working_days, opens, closes, cutoff, handling) = match site.kind {
        LocationKind::FactoryDepot => (
            WeekdayName::monday_to_friday(),
            Time::constant(6, 0, 0, 0),
            Time::constant(22, 0, 0, 0),
            half_hour(rng, 17, 18),
            rng.random_range(90..=120),
        ),
        LocationKind::RegionalWarehouse => (
            WeekdayName::monday_to_friday(),
            Time::constant(7, 0, 0, 0),
            Time::constant(19, 0, 0, 0),
            half_hour(rng, 16, 18),
            rng.random_range(45..=90),
        ),
        LocationKind::Store => {
            let mut days = WeekdayName::monday_to_friday();
            if rng.random_bool(0.3) {
                days.insert(WeekdayName::Saturday);
            }
            let cutoff = Time::constant(17, 0, 0, 0);
            (
                days,
                Time::constant(7, 30, 0, 0),
                Time::constant(17, 30, 0, 0),
                cutoff,
                rng.random_range(30..=60),
            )
        }
    };
    Ok(Location {
        id: site.id.clone(),
        name: site.name.clone(),
        kind: site.kind,
        latitude_deg: city.latitude_deg,
        longitude_deg: city.longitude_deg,
        time_zone: city.time_zone.clone(),
        calendar: BusinessCalendar {
            working_days,
            opens_local: opens,
            closes_local: closes,
            holidays,
        },
        order_cutoff_local: cutoff,
        handling_minutes: handling,
        replenishment_source: source,
        country_code: city.country_code.clone(),
    })
}

/// Index of the closest location among `candidates`, preferring the same continent.
fn nearest(from: &Location, candidates: &[Location]) -> usize {
    let continent = in_north_america(&from.country_code);
    let same: Vec<usize> = (0..candidates.len())
        .filter(|&i| in_north_america(&candidates[i].country_code) == continent)
        .collect();
    let pool: Vec<usize> = if same.is_empty() {
        (0..candidates.len()).collect()
    } else {
        same
    };
    pool.into_iter()
        .min_by(|&a, &b| km(from, &candidates[a]).total_cmp(&km(from, &candidates[b])))
        .unwrap_or(0)
}

/// Stores picked round-robin over the regionals, the largest cities of each
/// regional's catchment first, so every region gets its share.
fn pick_stores<'a>(
    cities: &'a [City],
    regional_cities: &[&City],
    excluded: &HashSet<u32>,
    count: usize,
) -> Result<Vec<(&'a City, usize)>, DemoError> {
    let mut catchments: Vec<Vec<&City>> = vec![Vec::new(); regional_cities.len()];
    for city in cities {
        if excluded.contains(&city.geonameid) || !COUNTRIES.contains(&city.country_code.as_str()) {
            continue;
        }
        let closest = (0..regional_cities.len()).min_by(|&a, &b| {
            city_km(city, regional_cities[a]).total_cmp(&city_km(city, regional_cities[b]))
        });
        if let Some(r) = closest {
            catchments[r].push(city);
        }
    }
    for catchment in &mut catchments {
        catchment.sort_by_key(|c| (std::cmp::Reverse(c.population), c.geonameid));
    }
    let available: usize = catchments.iter().map(Vec::len).sum();
    if count > available {
        return Err(DemoError::Config {
            field: "stores",
            reason: format!("at most {available} stores with this many regionals"),
        });
    }
    let mut picked = Vec::with_capacity(count);
    let mut rank = 0;
    while picked.len() < count {
        for (r, catchment) in catchments.iter().enumerate() {
            if let Some(city) = catchment.get(rank)
                && picked.len() < count
            {
                picked.push((*city, r));
            }
        }
        rank += 1;
    }
    // Number stores region by region, largest city first, so ids read naturally.
    picked.sort_by_key(|(c, r)| (*r, std::cmp::Reverse(c.population), c.geonameid));
    Ok(picked)
}

/// Builds depots, regionals and stores with calendars for `years` (first, last).
pub fn sites(
    rng: &mut StdRng,
    depots: usize,
    regionals: usize,
    stores: usize,
    years: (i16, i16),
) -> Result<Sites, DemoError> {
    let cities = cities()?;
    let mut locations = Vec::with_capacity(depots + regionals + stores);
    for (code, geonameid) in &DEPOTS[..depots] {
        let city = find(&cities, *geonameid)?;
        let site = Site {
            id: format!("DEP-{code}"),
            name: format!("{} factory depot", city.name),
            kind: LocationKind::FactoryDepot,
            city,
        };
        locations.push(location(&site, rng, years, None)?);
    }
    let mut regional_cities = Vec::with_capacity(regionals);
    for (code, geonameid) in &REGIONALS[..regionals] {
        let city = find(&cities, *geonameid)?;
        let site = Site {
            id: format!("RWH-{code}"),
            name: format!("{} regional warehouse", city.name),
            kind: LocationKind::RegionalWarehouse,
            city,
        };
        let mut regional = location(&site, rng, years, None)?;
        let depot = nearest(&regional, &locations[..depots]);
        regional.replenishment_source = Some(locations[depot].id.clone());
        locations.push(regional);
        regional_cities.push(city);
    }
    let excluded: HashSet<u32> = DEPOTS
        .iter()
        .chain(REGIONALS.iter())
        .map(|(_, g)| *g)
        .collect();
    let picked = pick_stores(&cities, &regional_cities, &excluded, stores)?;
    let mut store_regional = Vec::with_capacity(stores);
    for (n, (city, r)) in picked.into_iter().enumerate() {
        let regional_index = depots + r;
        let site = Site {
            id: format!("STR-{:04}", n + 1),
            name: format!("{} store", city.name),
            kind: LocationKind::Store,
            city,
        };
        let source = Some(locations[regional_index].id.clone());
        locations.push(location(&site, rng, years, source)?);
        store_regional.push(regional_index);
    }
    Ok(Sites {
        locations,
        store_regional,
        depots,
        regionals,
    })
}

/// Median road transit: driving days at 600 km/day plus a 4-hour loading buffer.
fn road_hours(km: f64) -> f64 {
    km * ROAD_CIRCUITY / ROAD_KM_PER_DAY * 24.0 + 4.0
}

fn lane(
    rng: &mut StdRng,
    from: &Location,
    to: &Location,
    mode: TransportMode,
    kind: LaneKind,
) -> Lane {
    let distance = km(from, to);
    let (p50, cost) = match mode {
        TransportMode::Road | TransportMode::Rail => {
            (road_hours(distance), 1.5 + 0.004 * distance * ROAD_CIRCUITY)
        }
        // A van driving through at 80 km/h after an 8-hour pick-up window.
        TransportMode::Courier => (
            8.0 + distance * ROAD_CIRCUITY / 80.0,
            15.0 + 0.02 * distance,
        ),
        // Pick-up, flight at 800 km/h, hub and last mile.
        TransportMode::Air => (20.0 + distance / 800.0, 40.0 + 0.01 * distance),
        // 20 knots (37 km/h) plus four days in ports and customs.
        TransportMode::Sea => (distance * 1.15 / 37.0 + 96.0, 4.0 + 0.0008 * distance),
    };
    let p50 = round_to(p50, 1);
    let p90 = round_to(p50 * rng.random_range(1.2..1.5), 1).max(p50 + 0.1);
    Lane {
        from: from.id.clone(),
        to: to.id.clone(),
        mode,
        kind,
        transit: TransitTime::Lognormal {
            transit_hours_p50: p50,
            transit_hours_p90: p90,
        },
        schedule: None,
        cost_per_unit_usd: round_to(cost, 2),
    }
}

/// Replenishment lanes along the tree, lateral lanes between nearby stores of a
/// region and between depots, and emergency lanes from depots to stores.
pub fn lanes(rng: &mut StdRng, sites: &Sites) -> Vec<Lane> {
    let locations = &sites.locations;
    let index: HashMap<&str, usize> = locations
        .iter()
        .enumerate()
        .map(|(i, l)| (l.id.as_str(), i))
        .collect();
    let mut lanes = Vec::new();
    // Depot to depot: road on one continent; sea (weekly) and air across the Atlantic.
    for a in 0..sites.depots {
        for b in 0..sites.depots {
            let (from, to) = (&locations[a], &locations[b]);
            if a == b {
                continue;
            }
            if in_north_america(&from.country_code) == in_north_america(&to.country_code) {
                lanes.push(lane(rng, from, to, TransportMode::Road, LaneKind::Lateral));
            } else {
                let mut sea = lane(rng, from, to, TransportMode::Sea, LaneKind::Lateral);
                sea.schedule = Some(DepartureSchedule {
                    days: [WeekdayName::Wednesday].into_iter().collect(),
                    departures_local: vec![Time::constant(12, 0, 0, 0)],
                });
                lanes.push(sea);
                lanes.push(lane(rng, from, to, TransportMode::Air, LaneKind::Lateral));
            }
        }
    }
    for (i, location) in locations.iter().enumerate().skip(sites.depots) {
        let Some(&source) = location
            .replenishment_source
            .as_deref()
            .and_then(|s| index.get(s))
        else {
            continue;
        };
        let from = &locations[source];
        let crosses =
            in_north_america(&from.country_code) != in_north_america(&location.country_code);
        let mode = if crosses {
            TransportMode::Sea
        } else {
            TransportMode::Road
        };
        let mut replenishment = lane(rng, from, location, mode, LaneKind::Replenishment);
        if location.kind == LocationKind::RegionalWarehouse && !crosses {
            // Depot trucks leave on a timetable after the evening cut-off.
            replenishment.schedule = Some(DepartureSchedule {
                days: WeekdayName::monday_to_friday(),
                departures_local: vec![Time::constant(19, 0, 0, 0)],
            });
        }
        lanes.push(replenishment);
        if location.kind == LocationKind::Store {
            let depot = &locations[sites.store_depot(i)];
            let mode = if km(depot, location) < 800.0 && !crosses_continent(depot, location) {
                TransportMode::Courier
            } else {
                TransportMode::Air
            };
            lanes.push(lane(rng, depot, location, mode, LaneKind::Emergency));
        }
    }
    lanes.extend(lateral_store_lanes(rng, sites));
    lanes
}

fn crosses_continent(a: &Location, b: &Location) -> bool {
    in_north_america(&a.country_code) != in_north_america(&b.country_code)
}

fn lateral_store_lanes(rng: &mut StdRng, sites: &Sites) -> Vec<Lane> {
    let locations = &sites.locations;
    let first_store = sites.depots + sites.regionals;
    let mut pairs: BTreeSet<(usize, usize)> = BTreeSet::new();
    for (s, &regional) in sites.store_regional.iter().enumerate() {
        let me = first_store + s;
        let mut neighbours: Vec<(f64, usize)> = sites
            .store_regional
            .iter()
            .enumerate()
            .filter(|&(t, &r)| r == regional && t != s)
            .map(|(t, _)| {
                (
                    km(&locations[me], &locations[first_store + t]),
                    first_store + t,
                )
            })
            .filter(|(d, _)| *d < LATERAL_MAX_KM)
            .collect();
        neighbours.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.cmp(&b.1)));
        for (_, other) in neighbours.into_iter().take(LATERAL_NEIGHBOURS) {
            pairs.insert((me.min(other), me.max(other)));
        }
    }
    let mut lanes = Vec::with_capacity(pairs.len() * 2);
    for (a, b) in pairs {
        lanes.push(lane(
            rng,
            &locations[a],
            &locations[b],
            TransportMode::Road,
            LaneKind::Lateral,
        ));
        lanes.push(lane(
            rng,
            &locations[b],
            &locations[a],
            TransportMode::Road,
            LaneKind::Lateral,
        ));
    }
    lanes
}

impl Sites {
    /// Index of the depot that feeds a location (walking up the tree).
    pub fn store_depot(&self, mut i: usize) -> usize {
        for _ in 0..4 {
            if i < self.depots {
                return i;
            }
            let source = self.locations[i].replenishment_source.as_deref();
            match source.and_then(|s| self.locations.iter().position(|l| l.id == s)) {
                Some(next) => i = next,
                None => break,
            }
        }
        0
    }

    /// Index range of the stores.
    pub fn stores(&self) -> std::ops::Range<usize> {
        self.depots + self.regionals..self.locations.len()
    }
}

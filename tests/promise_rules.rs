//! Hand-checkable tests of the promise rules: cut-offs, weekends, holidays, time
//! zones, DST, multi-leg routes, supersession, split fills, probabilities,
//! inbound stock, stock protection and consistent order promises.
//!
//! The network: a Rotterdam depot (Europe/Amsterdam, cut-off 16:00, handling
//! 60 min), a Chicago regional warehouse (America/Chicago, cut-off 15:00,
//! handling 30 min) and two Chicago-zone stores (cut-off 16:00, handling 30 min),
//! all open Monday to Friday 08:00-17:00 local. Lanes: depot -> regional by air
//! (20 h), regional -> each store by road (4 h, 3 h), Milwaukee -> Chicago
//! lateral (2 h).

#![allow(clippy::unwrap_used)]

use jiff::Timestamp;
use jiff::civil::{Time, date};
use spares::domain::availability::{Availability, MemoryStock, PartRelation};
use spares::domain::ledger::{Balance, InboundShipment, Priority};
use spares::domain::network::{
    BusinessCalendar, Interchangeability, Lane, LaneKind, Location, LocationKind, Network, Part,
    TransitTime, TransportMode,
};
use spares::domain::promise::{
    FulfilmentMode, NoPromiseReason, OrderLine, OrderQuery, PromiseOutcome, PromiseQuery,
};
use spares::domain::transit::TransitQuantile;
use spares::domain::where_is::WhereIsQuery;

const ROTTERDAM: &str = "DEP-ROT";
const REGIONAL: &str = "REG-CHI";
const CHICAGO: &str = "STR-CHI";
const MILWAUKEE: &str = "STR-MIL";

fn ts(text: &str) -> Timestamp {
    text.parse().unwrap()
}

#[allow(clippy::too_many_arguments)]
fn location(
    id: &str,
    kind: LocationKind,
    zone: &str,
    lat: f64,
    lon: f64,
    cutoff_hour: i8,
    handling_minutes: u32,
    source: Option<&str>,
) -> Location {
    Location {
        id: id.into(),
        name: id.into(),
        kind,
        latitude_deg: lat,
        longitude_deg: lon,
        time_zone: zone.into(),
        calendar: BusinessCalendar::weekdays_8_to_17(),
        order_cutoff_local: Time::constant(cutoff_hour, 0, 0, 0),
        handling_minutes,
        replenishment_source: source.map(str::to_string),
        country_code: "US".into(),
    }
}

fn lane(from: &str, to: &str, kind: LaneKind, transit: TransitTime, cost: f64) -> Lane {
    Lane {
        from: from.into(),
        to: to.into(),
        mode: TransportMode::Road,
        kind,
        transit,
        schedule: None,
        cost_per_unit_usd: cost,
    }
}

fn fixed(hours: f64) -> TransitTime {
    TransitTime::Fixed {
        transit_hours: hours,
    }
}

fn part(id: &str, successor: Option<&str>, interchangeability: Interchangeability) -> Part {
    Part {
        id: id.into(),
        description: id.into(),
        unit_cost_usd: 100.0,
        criticality: spares::domain::network::Criticality::Critical,
        repairable: false,
        successor: successor.map(str::to_string),
        interchangeability,
        supplier_lead_time: None,
        downtime_cost_usd_per_hour: None,
    }
}

fn network() -> Network {
    let mut network = Network::default();
    for location in [
        location(
            ROTTERDAM,
            LocationKind::FactoryDepot,
            "Europe/Amsterdam",
            51.9225,
            4.47917,
            16,
            60,
            None,
        ),
        location(
            REGIONAL,
            LocationKind::RegionalWarehouse,
            "America/Chicago",
            41.98,
            -87.90,
            15,
            30,
            Some(ROTTERDAM),
        ),
        location(
            CHICAGO,
            LocationKind::Store,
            "America/Chicago",
            41.85,
            -87.65,
            16,
            30,
            Some(REGIONAL),
        ),
        location(
            MILWAUKEE,
            LocationKind::Store,
            "America/Chicago",
            43.04,
            -87.91,
            16,
            30,
            Some(REGIONAL),
        ),
    ] {
        network.locations.insert(location.id.clone(), location);
    }
    let mut air = lane(
        ROTTERDAM,
        REGIONAL,
        LaneKind::Replenishment,
        fixed(20.0),
        50.0,
    );
    air.mode = TransportMode::Air;
    for lane in [
        air,
        lane(REGIONAL, CHICAGO, LaneKind::Replenishment, fixed(4.0), 5.0),
        lane(
            REGIONAL,
            MILWAUKEE,
            LaneKind::Replenishment,
            fixed(3.0),
            5.0,
        ),
        lane(MILWAUKEE, CHICAGO, LaneKind::Lateral, fixed(2.0), 10.0),
    ] {
        network.lanes.insert(lane.key(), lane);
    }
    for part in [
        part("OLD", Some("NEW"), Interchangeability::ForwardOnly),
        part("NEW", None, Interchangeability::ForwardOnly),
        part("P", None, Interchangeability::ForwardOnly),
    ] {
        network.parts.insert(part.id.clone(), part);
    }
    network
}

fn balance(part: &str, location: &str, available: u64, reserved: u64) -> Balance {
    Balance {
        part_id: part.into(),
        location_id: location.into(),
        available,
        reserved,
        inbound: Vec::new(),
    }
}

fn stock_at(part: &str, location: &str, available: u64) -> MemoryStock {
    let mut stock = MemoryStock::default();
    stock.put(balance(part, location, available, 0));
    stock
}

fn query(part: &str, quantity: u64, destination: &str, order_time: &str) -> PromiseQuery {
    PromiseQuery {
        part_id: part.into(),
        quantity,
        destination_location_id: destination.into(),
        need_by: None,
        mode: FulfilmentMode::Delivery,
        order_time: ts(order_time),
        transit_quantile: 0.0,
        priority: Priority::Routine,
        exact_part_only: false,
        max_options: 0,
    }
}

fn promise(network: &Network, stock: &MemoryStock, query: &PromiseQuery) -> PromiseOutcome {
    Availability::new(network)
        .unwrap()
        .promise(query, stock)
        .unwrap()
}

#[test]
fn order_one_minute_before_the_cutoff_ships_today_one_minute_after_tomorrow() {
    let network = network();
    let stock = stock_at("P", REGIONAL, 5);
    // Wednesday 9 July 2025, Chicago is UTC-5 (CDT). 14:29 + 30 min handling
    // = 14:59 <= 15:00 cut-off: departs 15:00 CDT (20:00Z), 4 h road, arrives
    // 19:00 CDT after the store closed, so available Thursday 08:00 CDT.
    let before = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-07-09T19:29:00Z"),
    );
    let best = &before.options[0];
    assert_eq!(
        best.sources[0].legs[0].departs_at,
        ts("2025-07-09T20:00:00Z")
    );
    assert_eq!(best.promised_at, ts("2025-07-10T13:00:00Z"));
    // 14:31 + 30 min = 15:01: Thursday's truck, Friday 08:00 CDT.
    let after = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-07-09T19:31:00Z"),
    );
    let best = &after.options[0];
    assert_eq!(
        best.sources[0].legs[0].departs_at,
        ts("2025-07-10T20:00:00Z")
    );
    assert_eq!(best.promised_at, ts("2025-07-11T13:00:00Z"));
}

#[test]
fn exactly_at_the_cutoff_makes_it_and_one_second_later_does_not() {
    let network = network();
    let stock = stock_at("P", REGIONAL, 5);
    let exact = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-07-09T19:30:00Z"),
    );
    assert_eq!(
        exact.options[0].sources[0].legs[0].departs_at,
        ts("2025-07-09T20:00:00Z")
    );
    let late = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-07-09T19:30:01Z"),
    );
    assert_eq!(
        late.options[0].sources[0].legs[0].departs_at,
        ts("2025-07-10T20:00:00Z")
    );
}

#[test]
fn friday_evening_order_ships_monday_and_a_holiday_pushes_it_to_tuesday() {
    let mut network = network();
    let stock = stock_at("P", REGIONAL, 5);
    // Friday 11 July 2025 18:00 CDT.
    let friday = query("P", 1, CHICAGO, "2025-07-11T23:00:00Z");
    let outcome = promise(&network, &stock, &friday);
    assert_eq!(
        outcome.options[0].sources[0].legs[0].departs_at,
        ts("2025-07-14T20:00:00Z")
    );
    assert_eq!(outcome.options[0].promised_at, ts("2025-07-15T13:00:00Z"));
    // Next business day after Friday is Monday (close 17:00 CDT): missed.
    assert!(!outcome.options[0].next_business_day);

    network
        .locations
        .get_mut(REGIONAL)
        .unwrap()
        .calendar
        .holidays
        .insert(date(2025, 7, 14));
    let outcome = promise(&network, &stock, &friday);
    assert_eq!(
        outcome.options[0].sources[0].legs[0].departs_at,
        ts("2025-07-15T20:00:00Z")
    );
    assert_eq!(outcome.options[0].promised_at, ts("2025-07-16T13:00:00Z"));
}

#[test]
fn rotterdam_to_chicago_crosses_time_zones_and_meets_next_business_day() {
    let network = network();
    let stock = stock_at("P", ROTTERDAM, 5);
    // Wednesday 9 July 2025 09:00 CEST (07:00Z): handling to 10:00, cut-off
    // 16:00 CEST = 14:00Z, 20 h air -> Thursday 10:00Z = 05:00 CDT, before the
    // regional opens: available 08:00 CDT = 13:00Z. The order's Chicago date is
    // Wednesday, so next business day is Thursday by 17:00 CDT: met.
    let outcome = promise(
        &network,
        &stock,
        &query("P", 1, REGIONAL, "2025-07-09T07:00:00Z"),
    );
    let best = &outcome.options[0];
    assert_eq!(
        best.sources[0].legs[0].departs_at,
        ts("2025-07-09T14:00:00Z")
    );
    assert_eq!(
        best.sources[0].legs[0].arrives_at,
        ts("2025-07-10T10:00:00Z")
    );
    assert_eq!(best.promised_at, ts("2025-07-10T13:00:00Z"));
    assert!(best.next_business_day);
    assert_eq!(best.cost_usd, 50.0);
}

#[test]
fn multi_leg_route_applies_handling_and_cutoff_at_each_hop() {
    let network = network();
    let stock = stock_at("P", ROTTERDAM, 5);
    // As above to the regional (Thursday 05:00 CDT), + 30 min handling, the
    // regional's 15:00 CDT cut-off (20:00Z), 4 h road -> 19:00 CDT, closed:
    // Friday 08:00 CDT = 13:00Z.
    let outcome = promise(
        &network,
        &stock,
        &query("P", 2, CHICAGO, "2025-07-09T07:00:00Z"),
    );
    let source = &outcome.options[0].sources[0];
    let hops: Vec<_> = source
        .legs
        .iter()
        .map(|l| (l.from_location_id.as_str(), l.to_location_id.as_str()))
        .collect();
    assert_eq!(hops, [(ROTTERDAM, REGIONAL), (REGIONAL, CHICAGO)]);
    assert_eq!(source.legs[1].departs_at, ts("2025-07-10T20:00:00Z"));
    assert_eq!(source.available_at, ts("2025-07-11T13:00:00Z"));
    assert_eq!(source.cost_usd, 2.0 * (50.0 + 5.0));
}

#[test]
fn dst_change_moves_the_cutoff_instant() {
    let network = network();
    let stock = stock_at("P", REGIONAL, 5);
    // Friday 31 October 2025 16:00 CDT (21:00Z), past the cut-off. US clocks go
    // back on Sunday 2 November, so Monday's 15:00 is CST = 21:00Z (not 20:00Z);
    // 4 h road -> 19:00 CST, closed; Tuesday 08:00 CST = 14:00Z.
    let outcome = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-10-31T21:00:00Z"),
    );
    let source = &outcome.options[0].sources[0];
    assert_eq!(source.legs[0].departs_at, ts("2025-11-03T21:00:00Z"));
    assert_eq!(source.available_at, ts("2025-11-04T14:00:00Z"));
}

#[test]
fn supersession_is_forward_only_unless_two_way() {
    let mut network = network();
    // Only the old part number is in stock. Asked for NEW: OLD may not replace it.
    let stock = stock_at("OLD", REGIONAL, 5);
    let outcome = promise(
        &network,
        &stock,
        &query("NEW", 1, CHICAGO, "2025-07-09T15:00:00Z"),
    );
    assert!(outcome.options.is_empty());
    assert_eq!(outcome.reason, Some(NoPromiseReason::NoStockAnywhere));
    // Only the new one in stock, asked for OLD: NEW supersedes it and is offered.
    let stock_new = stock_at("NEW", REGIONAL, 5);
    let outcome = promise(
        &network,
        &stock_new,
        &query("OLD", 1, CHICAGO, "2025-07-09T15:00:00Z"),
    );
    assert_eq!(outcome.options[0].sources[0].part_id, "NEW");
    // Two-way: OLD may now be supplied for NEW.
    network.parts.get_mut("OLD").unwrap().interchangeability = Interchangeability::TwoWay;
    let outcome = promise(
        &network,
        &stock,
        &query("NEW", 1, CHICAGO, "2025-07-09T15:00:00Z"),
    );
    assert_eq!(outcome.options[0].sources[0].part_id, "OLD");
    let engine = Availability::new(&network).unwrap();
    let answer = engine
        .where_is(
            &WhereIsQuery {
                part_id: "NEW".into(),
                only_with_stock: true,
                ..WhereIsQuery::default()
            },
            &stock,
        )
        .unwrap();
    assert_eq!(answer.part_ids, ["NEW", "OLD"]);
    assert_eq!(answer.locations[0].relation, PartRelation::Predecessor);
}

#[test]
fn superseded_part_with_no_stock_anywhere_says_so() {
    let network = network();
    let outcome = promise(
        &network,
        &MemoryStock::default(),
        &query("OLD", 1, CHICAGO, "2025-07-09T15:00:00Z"),
    );
    assert_eq!(
        outcome.reason,
        Some(NoPromiseReason::SupersededNoSuccessorStock)
    );
}

#[test]
fn split_fill_covers_the_quantity_from_two_locations() {
    let network = network();
    let mut stock = MemoryStock::default();
    stock.put(balance("P", MILWAUKEE, 2, 0));
    stock.put(balance("P", REGIONAL, 3, 0));
    // Wednesday 9 July 2025 09:00 CDT. Milwaukee: handling to 09:30, cut-off
    // 16:00, lateral 2 h -> 18:00, closed: Thursday 08:00. Regional: cut-off
    // 15:00, 4 h -> 19:00: Thursday 08:00 too. Neither has 4 alone.
    let outcome = promise(
        &network,
        &stock,
        &query("P", 4, CHICAGO, "2025-07-09T14:00:00Z"),
    );
    assert_eq!(outcome.options.len(), 1);
    let split = &outcome.options[0];
    assert!(split.split);
    assert_eq!(split.sources.iter().map(|s| s.quantity).sum::<u64>(), 4);
    assert_eq!(split.promised_at, ts("2025-07-10T13:00:00Z"));
    // Equal times: the cheaper regional lane (5 $) is taken first, 3 units.
    assert_eq!(split.sources[0].location_id, REGIONAL);
    assert_eq!(split.sources[0].quantity, 3);
    // Three units: the regional alone can do it; single-source ranks first.
    let outcome = promise(
        &network,
        &stock,
        &query("P", 3, CHICAGO, "2025-07-09T14:00:00Z"),
    );
    assert!(!outcome.options[0].split);
}

#[test]
fn single_leg_probability_matches_the_lognormal_by_hand() {
    let mut network = network();
    let key = (
        REGIONAL.to_string(),
        CHICAGO.to_string(),
        TransportMode::Road,
        LaneKind::Replenishment,
    );
    network.lanes.get_mut(&key).unwrap().transit = TransitTime::Lognormal {
        transit_hours_p50: 4.0,
        transit_hours_p90: 8.0,
    };
    let stock = stock_at("P", REGIONAL, 5);
    // Departs Wednesday 15:00 CDT. The store closes at 17:00, so to be available
    // by 19:00 CDT it must arrive within 2 h = p50 / 2. With sigma = ln 2 / z_0.9,
    // P(T <= 2) = Phi(-z_0.9) = 0.1.
    let mut q = query("P", 1, CHICAGO, "2025-07-09T14:00:00Z");
    q.need_by = Some(ts("2025-07-10T00:00:00Z"));
    let outcome = promise(&network, &stock, &q);
    let source = &outcome.options[0].sources[0];
    assert!(
        (source.probability_by_need_by - 0.1).abs() < 1e-9,
        "{source:?}"
    );
    // The promised arrival uses the 0.9 quantile, 8 h -> 23:00 CDT, so Thursday 08:00.
    assert_eq!(source.available_at, ts("2025-07-10T13:00:00Z"));
    assert!(!outcome.options[0].meets_need_by);
}

/// SplitMix64: a tiny seeded generator so the simulation needs no extra API.
fn uniform(state: &mut u64) -> f64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^= z >> 31;
    (z >> 11) as f64 / (1u64 << 53) as f64
}

#[test]
fn multi_leg_probability_matches_a_seeded_simulation() {
    let mut network = network();
    let air = (
        ROTTERDAM.to_string(),
        REGIONAL.to_string(),
        TransportMode::Air,
        LaneKind::Replenishment,
    );
    network.lanes.get_mut(&air).unwrap().transit = TransitTime::Lognormal {
        transit_hours_p50: 20.0,
        transit_hours_p90: 30.0,
    };
    let road = (
        REGIONAL.to_string(),
        CHICAGO.to_string(),
        TransportMode::Road,
        LaneKind::Replenishment,
    );
    network.lanes.get_mut(&road).unwrap().transit = TransitTime::Lognormal {
        transit_hours_p50: 4.0,
        transit_hours_p90: 10.0,
    };
    let engine = Availability::new(&network).unwrap();
    let router = &engine.router;
    let (from, to) = (
        router.node(ROTTERDAM).unwrap(),
        router.node(CHICAGO).unwrap(),
    );
    let ready = ts("2025-07-09T07:00:00Z");
    let route = router
        .route(from, ready, to, TransitQuantile::new(0.9).unwrap())
        .unwrap();
    assert_eq!(route.legs.len(), 2);
    let seed = 20_250_709_u64;
    println!("simulation seed {seed}");
    for need_by in ["2025-07-10T22:00:00Z", "2025-07-11T17:00:00Z"] {
        let need_by = ts(need_by);
        let exact = router.probability_by(&route, to, need_by);
        let mut state = seed;
        let draws = 20_000;
        let mut hits = 0;
        for _ in 0..draws {
            let mut at = route.legs[0].departs_at;
            for (i, leg) in route.legs.iter().enumerate() {
                if i > 0 {
                    let site = &router.site(leg.from).calendar;
                    at = site
                        .dispatch(at, &router.lane(leg.lane).departures)
                        .unwrap();
                }
                let hours = router
                    .lane(leg.lane)
                    .transit
                    .sample_hours(uniform(&mut state));
                at = at
                    .checked_add(jiff::SignedDuration::from_secs_f64(hours * 3600.0))
                    .unwrap();
            }
            let available = router.site(to).calendar.available_from(at).unwrap();
            if available <= need_by {
                hits += 1;
            }
        }
        let simulated = f64::from(hits) / f64::from(draws);
        let standard_error = (exact * (1.0 - exact) / f64::from(draws)).sqrt();
        println!("need_by {need_by}: exact {exact:.5}, simulated {simulated:.5}");
        assert!(
            (simulated - exact).abs() <= 4.0 * standard_error + 1e-3,
            "need_by {need_by}: exact {exact}, simulated {simulated} (seed {seed})"
        );
        assert!(exact > 0.05 && exact < 0.999, "{exact}");
    }
}

#[test]
fn inbound_stock_is_promised_from_its_expected_arrival() {
    let network = network();
    let mut stock = MemoryStock::default();
    let mut inbound = balance("P", REGIONAL, 0, 0);
    inbound.inbound.push(InboundShipment {
        shipment_id: "SH-1".into(),
        from_location_id: ROTTERDAM.into(),
        quantity: 4,
        // Thursday 10 July 07:00 CDT.
        expected_arrival: Some(ts("2025-07-10T12:00:00Z")),
    });
    stock.put(inbound);
    // Ordered Wednesday; ready at the regional Thursday 07:00, + 30 min, 15:00
    // CDT cut-off, 4 h -> 19:00, closed: Friday 08:00 CDT.
    let mut q = query("P", 3, CHICAGO, "2025-07-09T14:00:00Z");
    q.need_by = Some(ts("2025-07-10T22:00:00Z"));
    let outcome = promise(&network, &stock, &q);
    let option = &outcome.options[0];
    assert_eq!(
        option.sources[0].inbound_shipment_id.as_deref(),
        Some("SH-1")
    );
    assert_eq!(option.sources[0].ready_at, ts("2025-07-10T12:00:00Z"));
    assert_eq!(option.promised_at, ts("2025-07-11T13:00:00Z"));
    assert!(!option.meets_need_by);
    assert_eq!(option.probability_by_need_by, 0.0);
    assert_eq!(outcome.reason, None);
    assert_eq!(
        outcome.late_reason,
        Some(NoPromiseReason::OnlyInboundAfterNeedBy)
    );
}

#[test]
fn protected_stock_is_only_for_critical_and_reservations_are_never_taken() {
    let network = network();
    let mut stock = MemoryStock::default();
    stock.put(balance("P", REGIONAL, 2, 3));
    stock.protect("P", REGIONAL, 2);
    let mut q = query("P", 2, CHICAGO, "2025-07-09T14:00:00Z");
    let routine = promise(&network, &stock, &q);
    assert_eq!(routine.reason, Some(NoPromiseReason::ProtectedForCritical));
    q.priority = Priority::Critical;
    let critical = promise(&network, &stock, &q);
    assert_eq!(critical.options[0].sources[0].quantity, 2);
    // Three units: only two are free even for critical demand; three are reserved.
    q.quantity = 3;
    let held = promise(&network, &stock, &q);
    assert_eq!(held.reason, Some(NoPromiseReason::HeldByReservations));
    q.quantity = 6;
    let short = promise(&network, &stock, &q);
    assert_eq!(short.reason, Some(NoPromiseReason::InsufficientQuantity));
}

#[test]
fn pickup_from_the_destinations_own_stock() {
    let network = network();
    let stock = stock_at("P", CHICAGO, 1);
    // Wednesday 10:00 CDT, open: pick-up at once; delivery after 30 min handling.
    let mut q = query("P", 1, CHICAGO, "2025-07-09T15:00:00Z");
    q.mode = FulfilmentMode::Pickup;
    assert_eq!(
        promise(&network, &stock, &q).options[0].promised_at,
        ts("2025-07-09T15:00:00Z")
    );
    q.mode = FulfilmentMode::Delivery;
    assert_eq!(
        promise(&network, &stock, &q).options[0].promised_at,
        ts("2025-07-09T15:30:00Z")
    );
    // Saturday 12 July 10:00 CDT, closed: Monday 08:00 CDT.
    q.mode = FulfilmentMode::Pickup;
    q.order_time = ts("2025-07-12T15:00:00Z");
    assert_eq!(
        promise(&network, &stock, &q).options[0].promised_at,
        ts("2025-07-14T13:00:00Z")
    );
}

#[test]
fn no_route_when_stock_cannot_reach_the_destination() {
    let network = network();
    let stock = stock_at("P", CHICAGO, 3);
    let outcome = promise(
        &network,
        &stock,
        &query("P", 1, ROTTERDAM, "2025-07-09T14:00:00Z"),
    );
    assert_eq!(outcome.reason, Some(NoPromiseReason::NoRoute));
}

#[test]
fn promise_order_never_promises_the_same_unit_twice() {
    let network = network();
    let mut stock = MemoryStock::default();
    stock.put(balance("P", REGIONAL, 3, 0));
    stock.put(balance("P", MILWAUKEE, 2, 0));
    let line = |id: &str, quantity| OrderLine {
        line_id: id.into(),
        part_id: "P".into(),
        quantity,
    };
    let mut order = OrderQuery {
        lines: vec![line("a", 2), line("b", 2)],
        destination_location_id: CHICAGO.into(),
        need_by: None,
        mode: FulfilmentMode::Delivery,
        order_time: ts("2025-07-09T14:00:00Z"),
        transit_quantile: 0.0,
        priority: Priority::Routine,
    };
    let engine = Availability::new(&network).unwrap();
    let answer = engine.promise_order(&order, &stock).unwrap();
    assert!(answer.complete);
    let claimed_at = |location: &str| -> u64 {
        answer
            .claims
            .iter()
            .filter(|c| c.location_id == location)
            .map(|c| c.quantity)
            .sum()
    };
    assert!(claimed_at(REGIONAL) <= 3);
    assert!(claimed_at(MILWAUKEE) <= 2);
    assert_eq!(claimed_at(REGIONAL) + claimed_at(MILWAUKEE), 4);
    // A third line of 2 finds only one unit left.
    order.lines.push(line("c", 2));
    let answer = engine.promise_order(&order, &stock).unwrap();
    assert!(!answer.complete);
    assert_eq!(
        answer.lines[2].reason,
        Some(NoPromiseReason::InsufficientQuantity)
    );
    assert_eq!(answer.claims.iter().map(|c| c.quantity).sum::<u64>(), 4);
}

#[test]
fn where_is_lists_nearest_first_with_successors() {
    let network = network();
    let mut stock = MemoryStock::default();
    stock.put(balance("OLD", ROTTERDAM, 4, 1));
    stock.put(balance("NEW", MILWAUKEE, 2, 0));
    stock.put(balance("OLD", CHICAGO, 1, 0));
    let engine = Availability::new(&network).unwrap();
    let answer = engine
        .where_is(
            &WhereIsQuery {
                part_id: "OLD".into(),
                near_location_id: Some(CHICAGO.into()),
                only_with_stock: true,
                ..WhereIsQuery::default()
            },
            &stock,
        )
        .unwrap();
    assert_eq!(answer.part_ids, ["OLD", "NEW"]);
    let rows: Vec<_> = answer
        .locations
        .iter()
        .map(|r| (r.location_id.as_str(), r.part_id.as_str(), r.relation))
        .collect();
    assert_eq!(
        rows,
        [
            (CHICAGO, "OLD", PartRelation::Same),
            (MILWAUKEE, "NEW", PartRelation::Successor),
            (ROTTERDAM, "OLD", PartRelation::Same),
        ]
    );
    assert_eq!(answer.locations[2].on_hand, 5);
    // Without only_with_stock every location appears for each part number.
    let all = engine
        .where_is(
            &WhereIsQuery {
                part_id: "OLD".into(),
                ..WhereIsQuery::default()
            },
            &stock,
        )
        .unwrap();
    assert_eq!(all.locations.len(), 8);
}

#[test]
fn scheduled_lane_departs_at_its_times_on_origin_working_days_only() {
    use spares::domain::network::{DepartureSchedule, WeekdayName};
    let mut network = network();
    let key = (
        REGIONAL.to_string(),
        CHICAGO.to_string(),
        TransportMode::Road,
        LaneKind::Replenishment,
    );
    // Departures at 07:00 and 11:00 on Mondays, Wednesdays and Saturdays. The
    // regional does not work on Saturdays, so Saturday's trucks do not count.
    network.lanes.get_mut(&key).unwrap().schedule = Some(DepartureSchedule {
        days: [
            WeekdayName::Monday,
            WeekdayName::Wednesday,
            WeekdayName::Saturday,
        ]
        .into_iter()
        .collect(),
        departures_local: vec![Time::constant(7, 0, 0, 0), Time::constant(11, 0, 0, 0)],
    });
    // Without the Milwaukee lateral the scheduled lane is the only way in.
    network.lanes.remove(&(
        MILWAUKEE.to_string(),
        CHICAGO.to_string(),
        TransportMode::Road,
        LaneKind::Lateral,
    ));
    let stock = stock_at("P", REGIONAL, 5);
    // Wednesday 9 July 10:30 CDT + 30 min handling = 11:00: catches the 11:00 truck.
    let on_time = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-07-09T15:30:00Z"),
    );
    assert_eq!(
        on_time.options[0].sources[0].legs[0].departs_at,
        ts("2025-07-09T16:00:00Z")
    );
    // One second later: no Thursday/Friday trucks, Saturday closed: Monday 07:00 CDT.
    let late = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-07-09T15:30:01Z"),
    );
    assert_eq!(
        late.options[0].sources[0].legs[0].departs_at,
        ts("2025-07-14T12:00:00Z")
    );
}

#[test]
fn an_emergency_lane_beats_the_two_leg_route_when_it_is_faster() {
    let mut network = network();
    let mut emergency = lane(ROTTERDAM, CHICAGO, LaneKind::Emergency, fixed(12.0), 300.0);
    emergency.mode = TransportMode::Courier;
    network.lanes.insert(emergency.key(), emergency);
    let stock = stock_at("P", ROTTERDAM, 1);
    // Departs 16:00 CEST (14:00Z) Wednesday, 12 h -> Thursday 02:00Z = Wednesday
    // 21:00 CDT, closed: Thursday 08:00 CDT (13:00Z), a day before the two-leg route.
    let outcome = promise(
        &network,
        &stock,
        &query("P", 1, CHICAGO, "2025-07-09T07:00:00Z"),
    );
    let source = &outcome.options[0].sources[0];
    assert_eq!(source.legs.len(), 1);
    assert_eq!(source.legs[0].mode, TransportMode::Courier);
    assert_eq!(source.available_at, ts("2025-07-10T13:00:00Z"));
}

proptest::proptest! {
    /// Arrival functions are non-decreasing: ordering later never promises
    /// earlier, across a weekend and the US DST change (1-5 November 2025).
    #[test]
    fn ordering_later_never_promises_earlier(a in 0i64..(5 * 86_400), b in 0i64..(5 * 86_400)) {
        let network = network();
        let stock = stock_at("P", ROTTERDAM, 1);
        let start = 1_761_955_200; // 2025-11-01T00:00:00Z
        let (early, late) = (start + a.min(b), start + a.max(b));
        let at = |second: i64| Timestamp::from_second(second).unwrap().to_string();
        let first = promise(&network, &stock, &query("P", 1, CHICAGO, &at(early)));
        let second = promise(&network, &stock, &query("P", 1, CHICAGO, &at(late)));
        proptest::prop_assert!(first.options[0].promised_at <= second.options[0].promised_at);
    }
}

#[test]
fn availability_modules_stay_pure() {
    // The pure-core rule for the modules this suite covers: no I/O, async
    // runtime, protobuf, storage, wall clock or global random generator, and no
    // unwrap/expect outside their unit tests.
    let modules = [
        "availability",
        "calendar",
        "promise",
        "routing",
        "transit",
        "where_is",
    ];
    let forbidden = [
        "tokio",
        "tonic",
        "prost",
        "sled",
        "std::fs",
        "SystemTime",
        "thread_rng",
        "Timestamp::now",
        "Zoned::now",
        ".unwrap()",
        ".expect(",
    ];
    for module in modules {
        let path = format!("{}/src/domain/{module}.rs", env!("CARGO_MANIFEST_DIR"));
        let text = std::fs::read_to_string(&path).unwrap();
        assert!(text.starts_with("//!"), "{path} must start with a //! line");
        let code = text.split("#[cfg(test)]").next().unwrap();
        for word in forbidden {
            assert!(!code.contains(word), "{path} uses {word}");
        }
    }
}

#[test]
fn split_sources_on_one_route_count_their_probability_once() {
    let mut network = network();
    let key = (
        REGIONAL.to_string(),
        CHICAGO.to_string(),
        TransportMode::Road,
        LaneKind::Replenishment,
    );
    network.lanes.get_mut(&key).unwrap().transit = TransitTime::Lognormal {
        transit_hours_p50: 4.0,
        transit_hours_p90: 8.0,
    };
    network.lanes.remove(&(
        MILWAUKEE.to_string(),
        CHICAGO.to_string(),
        TransportMode::Road,
        LaneKind::Lateral,
    ));
    let mut stock = MemoryStock::default();
    stock.put(balance("OLD", REGIONAL, 2, 0));
    stock.put(balance("NEW", REGIONAL, 2, 0));
    // As in the single-leg test, P(by Wednesday 19:00 CDT) = 0.1 per truck; the
    // four units ride the same truck, so the split is 0.1, not 0.1 * 0.1.
    let mut q = query("OLD", 4, CHICAGO, "2025-07-09T14:00:00Z");
    q.need_by = Some(ts("2025-07-10T00:00:00Z"));
    let outcome = promise(&network, &stock, &q);
    let split = &outcome.options[0];
    assert!(split.split);
    assert_eq!(split.sources[0].part_id, "OLD");
    assert_eq!(split.sources[1].part_id, "NEW");
    assert!(
        (split.probability_by_need_by - 0.1).abs() < 1e-9,
        "{split:?}"
    );
}

proptest::proptest! {
    /// More stock never makes the best promise later (or takes it away).
    #[test]
    fn more_stock_never_promises_later(
        location in 0usize..4,
        extra in 1u64..4,
        quantity in 1u64..5,
        hour in 0i64..(7 * 24),
    ) {
        let network = network();
        let ids = [ROTTERDAM, REGIONAL, CHICAGO, MILWAUKEE];
        let mut stock = MemoryStock::default();
        stock.put(balance("P", REGIONAL, 2, 1));
        stock.put(balance("P", ROTTERDAM, 3, 0));
        let order_time = Timestamp::from_second(1_752_019_200 + 3600 * hour).unwrap().to_string();
        let q = query("P", quantity, CHICAGO, &order_time);
        let before = promise(&network, &stock, &q);
        let id = ids[location];
        let mut more = stock.clone();
        let current = stock
            .balances
            .get("P")
            .and_then(|b| b.get(id))
            .map_or(0, |b| b.available);
        more.put(balance("P", id, current + extra, 0));
        let after = promise(&network, &more, &q);
        if let Some(best_before) = before.options.first() {
            let best_after = after.options.first();
            proptest::prop_assert!(best_after.is_some_and(|a| a.promised_at <= best_before.promised_at));
        }
    }
}

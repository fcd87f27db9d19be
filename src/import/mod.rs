//! Import and export of the files a planner already has: locations, lanes, parts,
//! stock on hand, installed base and demand history, as CSV or JSON.
//!
//! # Files
//!
//! A directory holds up to twelve files, each `NAME.csv` or `NAME.json` (not both);
//! an absent file is empty. CSV files have a header row; columns are matched by
//! name, in any order; an unknown column is an error (it is usually a typo).
//! Optional columns may be left out or left empty, and take the default shown.
//! Lists inside a cell are separated by `;`. Enum values are written in
//! snake_case and read ignoring case, `_`, `-` and spaces.
//!
//! | file | columns (required in **bold**) |
//! |---|---|
//! | `locations` | **id**, name, **kind** (`factory_depot`, `regional_warehouse`, `store`), **latitude_deg**, **longitude_deg**, **time_zone** (IANA), working_days (`Mon-Fri`, or `Mon,Tue,Sat`; default Mon-Fri), opens_local (`08:00`), closes_local (`17:00`), holidays (`2026-12-25;2027-01-01`), order_cutoff_local (`16:00`), handling_minutes (0), replenishment_source_id, country_code |
//! | `lanes` | **from**, **to**, **mode** (`road`, `air`, `sea`, `rail`, `courier`), **kind** (`replenishment`, `lateral`, `emergency`), transit_hours_p50, transit_hours_p90 (p50 = p90, or p90 empty, gives a fixed time; otherwise log-normal), transit_hours_samples (`20;24;31`, empirical; then leave p50/p90 empty), **cost_per_unit_usd**, departure_days (empty = every day), departures_local (`08:00;18:30`; a schedule exists when this is set) |
//! | `parts` | **id**, description, **unit_cost_usd**, **criticality** (`critical`, `essential`, `routine`), **kind** (`repairable`, `consumable`), successor_part_id, interchangeability (`forward_only` default, `two_way`), supplier_lead_time_days_p50, supplier_lead_time_days_p90, supplier_lead_time_days_samples (as a lane's transit, in days; all empty = the documented default), downtime_cost_usd_per_hour (empty = the class cost, else the machine's rate x share) |
//! | `supplier_lead_times` | **part_id**, **location_id** (a location supplied from outside the network), lead_time_days_p50, lead_time_days_p90, lead_time_days_samples (one of p50 or samples is required) |
//! | `criticality_costs` | **criticality**, **downtime_cost_usd_per_hour** |
//! | `demand_rates` | **part_id**, **location_id**, **failures_per_day**, variance_to_mean_ratio (1 = Poisson; above 1 negative binomial; below 1 is an error) |
//! | `stock` | **part_id**, **location_id**, **on_hand** |
//! | `machine_models` | **id**, name, **downtime_cost_usd_per_hour** |
//! | `model_parts` | **machine_model_id**, **part_id**, **units_per_machine**, attach_rate (1), **failures_per_million_operating_hours**, weibull_shape (1) |
//! | `fleets` | **store_location_id**, **machine_model_id**, **machine_count**, **usage_hours_per_day**, average_age_hours (0) |
//! | `demand` | **part_id**, **location_id**, **period** (`day`, `week`, `month`), **period_start** (`2026-01-01`), **quantity** — long format, one row per period; missing periods inside a series are zero |
//! | `policies` | **part_id**, **location_id**, **kind** (`base_stock`, `min_max`, `reorder_point_quantity`), **order_up_to**, reorder_point (0), order_quantity (0), protected_quantity (0), source |
//!
//! JSON files carry the same data as a JSON array of row objects whose keys are the
//! column names above; values are strings, numbers, booleans or null (null or a
//! missing key is an empty cell). For example
//! `[{"part_id": "P-100234", "location_id": "STR-0117", "on_hand": 3}]`.
//!
//! # Errors
//!
//! Every error is an [`ImportError`] naming the file, the 1-based line and the
//! 1-based column (by header position), shown as `file:line:column: message`; the
//! message starts with the column name. JSON has no columns, so there the column
//! is 0 and the line is where the row's object starts. After parsing, the rows go
//! through the same `Network::check_*` validation as a gRPC upsert, and an error
//! on batch item `i` is reported at the line of row `i`.

mod export;
mod inputs;
mod parse;
mod scan;
mod table;
mod values;

pub use export::{FileFormat, export_dir, to_csv_files, to_json_files};
pub use parse::MAX_DEMAND_PERIODS;

use crate::domain::DomainError;
use crate::domain::ledger::{MovementCommand, MovementKind};
use crate::domain::network::{
    CriticalityCost, DemandRate, DemandSeries, Fleet, Lane, Location, LocationId, MachineModel,
    Network, Part, PartId, Policy, Qty, SupplierLeadTime,
};
use std::collections::HashSet;
use std::fmt;
use std::path::Path;
use table::{Columns, Table};

/// Largest file read: files are read whole into memory, and 256 MiB holds several
/// million rows, far beyond a planner's network.
pub const MAX_FILE_BYTES: u64 = 256 * 1024 * 1024;

/// Most errors one import reports: enough to fix a file in one pass, few
/// enough that a file of garbage gives a readable answer.
pub const MAX_IMPORT_ERRORS: usize = 100;

/// Why an import failed, and where. Line and column are 1-based; 0 means "not
/// applicable" (a whole-file problem, or a column in JSON). An import reports
/// every error it finds in a file (up to [`MAX_IMPORT_ERRORS`]): the first is
/// this value, the rest are in `also`, in file order.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub struct ImportError {
    /// File name, e.g. `locations.csv`.
    pub file: String,
    /// Line in the file.
    pub line: u64,
    /// Column by header position.
    pub column: u64,
    /// What is wrong; starts with the column name for value errors.
    pub message: String,
    /// Further errors found in the same pass, in order (at most
    /// [`MAX_IMPORT_ERRORS`] in all).
    pub also: Vec<ImportError>,
}

impl ImportError {
    fn new(file: &str, line: u64, column: u64, message: impl Into<String>) -> Self {
        Self {
            file: file.to_string(),
            line,
            column,
            message: message.into(),
            also: Vec::new(),
        }
    }

    /// A problem with a whole file (no line or column).
    pub fn whole_file(file: &str, message: impl Into<String>) -> Self {
        Self::new(file, 0, 0, message)
    }

    /// Every error: this one, then the others found with it.
    pub fn all(&self) -> impl Iterator<Item = &ImportError> {
        std::iter::once(self).chain(self.also.iter())
    }

    /// Joins errors into one value (the first, with the rest in `also`), at
    /// most [`MAX_IMPORT_ERRORS`]; `None` when there are none.
    pub fn collect(errors: Vec<ImportError>) -> Option<ImportError> {
        let mut flat = errors.into_iter().flat_map(|mut e| {
            let also = std::mem::take(&mut e.also);
            std::iter::once(e).chain(also)
        });
        let mut first = flat.next()?;
        first.also = flat.take(MAX_IMPORT_ERRORS - 1).collect();
        Some(first)
    }

    fn fmt_one(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match (self.line, self.column) {
            (0, _) => write!(f, "{}: {}", self.file, self.message),
            (line, 0) => write!(f, "{}:{line}: {}", self.file, self.message),
            (line, column) => write!(f, "{}:{line}:{column}: {}", self.file, self.message),
        }
    }
}

impl fmt::Display for ImportError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.fmt_one(f)?;
        for other in &self.also {
            writeln!(f)?;
            other.fmt_one(f)?;
        }
        if self.also.len() + 1 >= MAX_IMPORT_ERRORS {
            write!(
                f,
                "\n(stopped after {MAX_IMPORT_ERRORS} errors; fix these and import again)"
            )?;
        }
        Ok(())
    }
}

/// Units on hand of one part at one location (a row of `stock.csv`): a count.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct StockRow {
    /// The part.
    pub part_id: PartId,
    /// The location.
    pub location_id: LocationId,
    /// Units on hand.
    pub on_hand: Qty,
    /// Where the count is in its file: 1-based line and column of `on_hand`
    /// (0, 0 when it did not come from a file).
    #[serde(default)]
    pub at: (u64, u64),
}

/// Everything read from a directory, validated. Absent files give empty vectors.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct ImportBundle {
    /// Locations, in file order.
    pub locations: Vec<Location>,
    /// Lanes, in file order.
    pub lanes: Vec<Lane>,
    /// Parts, in file order.
    pub parts: Vec<Part>,
    /// Machine models with their parts, in file order.
    pub machine_models: Vec<MachineModel>,
    /// Fleets, in file order.
    pub fleets: Vec<Fleet>,
    /// Demand series, sorted by (part, location).
    pub demand: Vec<DemandSeries>,
    /// Policies, in file order.
    pub policies: Vec<Policy>,
    /// Stock on hand, in file order.
    pub stock: Vec<StockRow>,
    /// Supplier lead-time overrides per (part, depot), in file order.
    pub supplier_lead_times: Vec<SupplierLeadTime>,
    /// Downtime cost per criticality class, in file order.
    pub criticality_costs: Vec<CriticalityCost>,
    /// Demand rates per (part, location), in file order.
    pub demand_rates: Vec<DemandRate>,
    /// The file the stock rows came from (`stock.csv` or `stock.json`).
    pub stock_file: String,
}

impl ImportBundle {
    /// The bundle's master data as a network (stock is not part of it).
    pub fn to_network(&self) -> Network {
        Network {
            locations: self
                .locations
                .iter()
                .map(|l| (l.id.clone(), l.clone()))
                .collect(),
            lanes: self.lanes.iter().map(|l| (l.key(), l.clone())).collect(),
            parts: self
                .parts
                .iter()
                .map(|p| (p.id.clone(), p.clone()))
                .collect(),
            machine_models: self
                .machine_models
                .iter()
                .map(|m| (m.id.clone(), m.clone()))
                .collect(),
            fleets: self
                .fleets
                .iter()
                .map(|f| {
                    (
                        (f.store_location_id.clone(), f.machine_model_id.clone()),
                        f.clone(),
                    )
                })
                .collect(),
            demand: self
                .demand
                .iter()
                .map(|d| ((d.part_id.clone(), d.location_id.clone()), d.clone()))
                .collect(),
            policies: self
                .policies
                .iter()
                .map(|p| ((p.part_id.clone(), p.location_id.clone()), p.clone()))
                .collect(),
            supplier_lead_times: self
                .supplier_lead_times
                .iter()
                .map(|s| (s.key(), s.clone()))
                .collect(),
            criticality_costs: self
                .criticality_costs
                .iter()
                .map(|c| (c.criticality, c.clone()))
                .collect(),
            demand_rates: self
                .demand_rates
                .iter()
                .map(|r| (r.key(), r.clone()))
                .collect(),
        }
    }

    /// A bundle holding a network's master data and the given stock.
    pub fn from_network(network: &Network, stock: Vec<StockRow>) -> Self {
        Self {
            locations: network.locations.values().cloned().collect(),
            lanes: network.lanes.values().cloned().collect(),
            parts: network.parts.values().cloned().collect(),
            machine_models: network.machine_models.values().cloned().collect(),
            fleets: network.fleets.values().cloned().collect(),
            demand: network.demand.values().cloned().collect(),
            policies: network.policies.values().cloned().collect(),
            stock,
            supplier_lead_times: network.supplier_lead_times.values().cloned().collect(),
            criticality_costs: network.criticality_costs.values().cloned().collect(),
            demand_rates: network.demand_rates.values().cloned().collect(),
            stock_file: "stock.csv".into(),
        }
    }

    /// The stock rows as counts into the ledger, given what is there now
    /// (`now(part, location)` = (on hand, reserved)). Each row sets on hand to
    /// the file's figure; a row that already matches gives no command, so the
    /// same file imported twice writes nothing the second time. The key names
    /// the file, the row, the part-location, and the change from the on hand
    /// read now to the count: a retried import (same reading) replays, while a
    /// later import of the same figure after the stock moved is a new count.
    ///
    /// Errors: every row whose count is below the units reserved there
    /// (`FailedPrecondition` in the ledger), at the file, line and column of
    /// its `on_hand`; nothing should be written when any row fails.
    pub fn stock_counts(
        &self,
        mut now: impl FnMut(&str, &str) -> (Qty, Qty),
    ) -> Result<Vec<MovementCommand>, ImportError> {
        let mut commands = Vec::new();
        let mut errors = Vec::new();
        for row in &self.stock {
            let (on_hand, reserved) = now(&row.part_id, &row.location_id);
            if row.on_hand < reserved {
                let (line, column) = row.at;
                errors.push(ImportError::new(
                    &self.stock_file,
                    line,
                    column,
                    format!(
                        "on_hand: a count of {} of {} at {} is below the {reserved} units reserved there; settle or release those reservations first",
                        row.on_hand, row.part_id, row.location_id
                    ),
                ));
                continue;
            }
            if row.on_hand == on_hand {
                continue;
            }
            commands.push(MovementCommand {
                idempotency_key: format!(
                    "import {}:{} {}@{} {on_hand}->{}",
                    self.stock_file, row.at.0, row.part_id, row.location_id, row.on_hand
                ),
                kind: MovementKind::Count,
                part_id: row.part_id.clone(),
                location_id: row.location_id.clone(),
                // Counts are within MAX_QUANTITY (checked when parsed), so this fits.
                quantity: i64::try_from(row.on_hand).unwrap_or(i64::MAX),
                to_location_id: None,
                shipment_id: None,
                expected_arrival: None,
                note: format!("import of {}", self.stock_file),
            });
        }
        match ImportError::collect(errors) {
            Some(error) => Err(error),
            None => Ok(commands),
        }
    }
}

/// The file kinds, by base name, with their columns.
pub(crate) const FILES: [(&str, Columns); 12] = [
    (
        "locations",
        Columns {
            required: &["id", "kind", "latitude_deg", "longitude_deg", "time_zone"],
            optional: &[
                "name",
                "working_days",
                "opens_local",
                "closes_local",
                "holidays",
                "order_cutoff_local",
                "handling_minutes",
                "replenishment_source_id",
                "country_code",
            ],
        },
    ),
    (
        "lanes",
        Columns {
            required: &["from", "to", "mode", "kind", "cost_per_unit_usd"],
            optional: &[
                "transit_hours_p50",
                "transit_hours_p90",
                "transit_hours_samples",
                "departure_days",
                "departures_local",
            ],
        },
    ),
    (
        "parts",
        Columns {
            required: &["id", "unit_cost_usd", "criticality", "kind"],
            optional: &[
                "description",
                "successor_part_id",
                "interchangeability",
                "supplier_lead_time_days_p50",
                "supplier_lead_time_days_p90",
                "supplier_lead_time_days_samples",
                "downtime_cost_usd_per_hour",
            ],
        },
    ),
    (
        "stock",
        Columns {
            required: &["part_id", "location_id", "on_hand"],
            optional: &[],
        },
    ),
    (
        "machine_models",
        Columns {
            required: &["id", "downtime_cost_usd_per_hour"],
            optional: &["name"],
        },
    ),
    (
        "model_parts",
        Columns {
            required: &[
                "machine_model_id",
                "part_id",
                "units_per_machine",
                "failures_per_million_operating_hours",
            ],
            optional: &["attach_rate", "weibull_shape"],
        },
    ),
    (
        "fleets",
        Columns {
            required: &[
                "store_location_id",
                "machine_model_id",
                "machine_count",
                "usage_hours_per_day",
            ],
            optional: &["average_age_hours"],
        },
    ),
    (
        "demand",
        Columns {
            required: &[
                "part_id",
                "location_id",
                "period",
                "period_start",
                "quantity",
            ],
            optional: &[],
        },
    ),
    (
        "policies",
        Columns {
            required: &["part_id", "location_id", "kind", "order_up_to"],
            optional: &[
                "reorder_point",
                "order_quantity",
                "protected_quantity",
                "source",
            ],
        },
    ),
    (
        "supplier_lead_times",
        Columns {
            required: &["part_id", "location_id"],
            optional: &[
                "lead_time_days_p50",
                "lead_time_days_p90",
                "lead_time_days_samples",
            ],
        },
    ),
    (
        "criticality_costs",
        Columns {
            required: &["criticality", "downtime_cost_usd_per_hour"],
            optional: &[],
        },
    ),
    (
        "demand_rates",
        Columns {
            required: &["part_id", "location_id", "failures_per_day"],
            optional: &["variance_to_mean_ratio"],
        },
    ),
];

/// Parses one file from its text. `file_name` ends in `.csv` or `.json` and its
/// stem is one of the file kinds above.
fn table(file_name: &str, text: &str) -> Result<(&'static str, Table), ImportError> {
    let (stem, extension) = file_name
        .rsplit_once('.')
        .ok_or_else(|| ImportError::new(file_name, 0, 0, "expected a .csv or .json file"))?;
    let (kind, columns) = FILES
        .iter()
        .find(|(name, _)| *name == stem)
        .ok_or_else(|| {
            let names: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
            ImportError::new(
                file_name,
                0,
                0,
                format!("unknown file; expected one of {}", names.join(", ")),
            )
        })?;
    let table = match extension {
        "csv" => Table::from_csv(file_name, text, *columns)?,
        "json" => Table::from_json(file_name, text, *columns)?,
        _ => {
            return Err(ImportError::new(
                file_name,
                0,
                0,
                "expected a .csv or .json file",
            ));
        }
    };
    Ok((kind, table))
}

/// Parses and validates a set of files given as `(file name, text)`, e.g. from a
/// bulk-load request. Names are like `locations.csv` or `stock.json`.
///
/// Errors: a malformed value, an unknown or missing column, a reference to an
/// unknown id, or a failed network validation, each with its file, line and column.
pub fn parse_files(files: &[(String, String)]) -> Result<ImportBundle, ImportError> {
    let mut tables: Vec<Option<Table>> = vec![None; FILES.len()];
    for (name, text) in files {
        let (kind, parsed) = table(name, text)?;
        let slot = FILES.iter().position(|(n, _)| *n == kind).unwrap_or(0);
        if let Some(previous) = &tables[slot] {
            return Err(ImportError::new(
                name,
                0,
                0,
                format!("{} holds the same data", previous.file),
            ));
        }
        tables[slot] = Some(parsed);
    }
    let empty = |i: usize| {
        Table::from_csv(
            &format!("{}.csv", FILES[i].0),
            "",
            Columns {
                required: &[],
                optional: &[],
            },
        )
    };
    let mut get = |i: usize| -> Result<Table, ImportError> {
        match tables[i].take() {
            Some(t) => Ok(t),
            None => empty(i),
        }
    };
    let all: Vec<Table> = (0..FILES.len()).map(&mut get).collect::<Result<_, _>>()?;
    build(&all)
}

/// Reads every file in `dir` and validates the lot. Each must be a known
/// `NAME.csv` or `NAME.json`; any other file (say `fleet.csv` for
/// `fleets.csv`, or `parts.xlsx`) is an error, so a misnamed file is never
/// skipped silently. Notes (`*.md`, `*.txt`), hidden files (`.name`) and
/// subdirectories are ignored.
///
/// Errors: as [`parse_files`], plus unknown, unreadable or oversized files
/// and invalid UTF-8 (at its line and column); every such problem in the
/// directory is reported, not only the first.
pub fn load_dir(dir: &Path) -> Result<ImportBundle, ImportError> {
    let listing = std::fs::read_dir(dir)
        .map_err(|e| ImportError::whole_file(&dir.display().to_string(), e.to_string()))?;
    let mut names = Vec::new();
    for entry in listing {
        let entry = entry
            .map_err(|e| ImportError::whole_file(&dir.display().to_string(), e.to_string()))?;
        if entry.file_type().is_ok_and(|t| t.is_dir()) {
            continue;
        }
        names.push(entry.file_name().to_string_lossy().into_owned());
    }
    names.sort();
    let mut files = Vec::new();
    let mut errors = Vec::new();
    let is_note = |n: &str| n.starts_with('.') || n.ends_with(".md") || n.ends_with(".txt");
    for name in names.into_iter().filter(|n| !is_note(n)) {
        match read_file(dir, &name) {
            Ok(text) => files.push((name, text)),
            Err(error) => errors.push(error),
        }
    }
    if let Some(error) = ImportError::collect(errors) {
        return Err(error);
    }
    parse_files(&files)
}

/// Reads one file of an import directory: a known name, within the size
/// limit, valid UTF-8.
fn read_file(dir: &Path, name: &str) -> Result<String, ImportError> {
    let known = name.rsplit_once('.').is_some_and(|(stem, extension)| {
        matches!(extension, "csv" | "json") && FILES.iter().any(|(n, _)| *n == stem)
    });
    if !known {
        return Err(ImportError::whole_file(name, unknown_file_message(name)));
    }
    let path = dir.join(name);
    let size = std::fs::metadata(&path)
        .map_err(|e| ImportError::whole_file(name, e.to_string()))?
        .len();
    if size > MAX_FILE_BYTES {
        return Err(ImportError::whole_file(
            name,
            format!("larger than the {MAX_FILE_BYTES}-byte limit"),
        ));
    }
    let bytes = std::fs::read(&path).map_err(|e| ImportError::whole_file(name, e.to_string()))?;
    scan::decode(name, &bytes)
}

/// "unknown file", the names expected and, for a near miss, the likely one.
fn unknown_file_message(name: &str) -> String {
    let stem = name.rsplit_once('.').map_or(name, |(stem, _)| stem);
    let names: Vec<&str> = FILES.iter().map(|(n, _)| *n).collect();
    let nearest = names
        .iter()
        .map(|n| (edit_distance(stem, n), *n))
        .min()
        .filter(|(distance, _)| *distance <= 2);
    let mut message = format!(
        "unknown file; an import directory holds only {}, each as NAME.csv or NAME.json",
        names.join(", ")
    );
    if let Some((_, near)) = nearest {
        message.push_str(&format!(" (did you mean {near}?)"));
    }
    message
}

/// Levenshtein distance, for suggesting a file name.
fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut previous = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = previous + usize::from(ca != *cb);
            previous = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(previous + 1);
        }
    }
    row[b.len()]
}

/// Parses the tables in dependency order, checking references as it goes, then
/// runs the network validations.
fn build(t: &[Table]) -> Result<ImportBundle, ImportError> {
    let [
        locations,
        lanes,
        parts,
        stock,
        models,
        model_parts,
        fleets,
        demand,
        policies,
        supplier_lead_times,
        criticality_costs,
        demand_rates,
    ] = t
    else {
        return Err(ImportError::new(
            "",
            0,
            0,
            "internal: wrong number of tables",
        ));
    };
    let mut network = Network::default();
    let locations_rows = parse::locations(locations)?;
    let batch: Vec<Location> = locations_rows.iter().map(|(_, l)| l.clone()).collect();
    network
        .check_locations(&batch)
        .map_err(|e| locate(e, locations, &lines(&locations_rows)))?;
    network.locations = batch.iter().map(|l| (l.id.clone(), l.clone())).collect();

    let lanes_rows = parse::lanes(lanes)?;
    let lane_batch: Vec<Lane> = lanes_rows.iter().map(|(_, l)| l.clone()).collect();
    network
        .check_lanes(&lane_batch)
        .map_err(|e| locate(e, lanes, &lines(&lanes_rows)))?;

    let parts_rows = parse::parts(parts)?;
    let part_batch: Vec<Part> = parts_rows.iter().map(|(_, p)| p.clone()).collect();
    network
        .check_parts(&part_batch)
        .map_err(|e| locate(e, parts, &lines(&parts_rows)))?;
    network.parts = part_batch
        .iter()
        .map(|p| (p.id.clone(), p.clone()))
        .collect();

    let part_ids: HashSet<&str> = part_batch.iter().map(|p| p.id.as_str()).collect();
    let location_ids: HashSet<&str> = batch.iter().map(|l| l.id.as_str()).collect();
    let (model_rows, model_part_lines) = parse::machine_models(models, model_parts, &part_ids)?;
    let fleet_rows = parse::fleets(fleets)?;
    let model_batch: Vec<MachineModel> = model_rows.iter().map(|(_, m)| m.clone()).collect();
    let fleet_batch: Vec<Fleet> = fleet_rows.iter().map(|(_, f)| f.clone()).collect();
    network
        .check_installed_base(&model_batch, &fleet_batch)
        .map_err(|e| {
            locate_installed_base(
                e,
                models,
                model_parts,
                fleets,
                &lines(&model_rows),
                &model_part_lines,
                &lines(&fleet_rows),
            )
        })?;

    let stock_rows = parse::stock(stock, &part_ids, &location_ids)?;
    let demand_rows = parse::demand(demand, &part_ids, &location_ids)?;
    let demand_batch: Vec<DemandSeries> = demand_rows.iter().map(|(_, d)| d.clone()).collect();
    network
        .check_demand(&demand_batch)
        .map_err(|e| locate(e, demand, &lines(&demand_rows)))?;
    let policy_rows = parse::policies(policies, &part_ids, &location_ids)?;
    let policy_batch: Vec<Policy> = policy_rows.iter().map(|(_, p)| p.clone()).collect();
    network
        .check_policies(&policy_batch)
        .map_err(|e| locate(e, policies, &lines(&policy_rows)))?;

    let inputs = build_inputs(
        &network,
        [supplier_lead_times, criticality_costs, demand_rates],
        &part_ids,
        &location_ids,
    )?;
    Ok(ImportBundle {
        locations: batch,
        lanes: lane_batch,
        parts: part_batch,
        machine_models: model_batch,
        fleets: fleet_batch,
        demand: demand_batch,
        policies: policy_batch,
        stock: stock_rows.into_iter().map(|(_, s)| s).collect(),
        supplier_lead_times: inputs.supplier_lead_times,
        criticality_costs: inputs.criticality_costs,
        demand_rates: inputs.demand_rates,
        stock_file: stock.file.clone(),
    })
}

/// Parses and checks the planning-input files against the network read so far
/// (locations and parts); the bundle's other fields are left empty.
fn build_inputs(
    network: &Network,
    [lead_times, class_costs, rates]: [&Table; 3],
    part_ids: &HashSet<&str>,
    location_ids: &HashSet<&str>,
) -> Result<ImportBundle, ImportError> {
    let lead_rows = inputs::supplier_lead_times(lead_times, part_ids, location_ids)?;
    let lead_batch: Vec<SupplierLeadTime> = lead_rows.iter().map(|(_, s)| s.clone()).collect();
    network
        .check_supplier_lead_times(&lead_batch)
        .map_err(|e| locate(e, lead_times, &lines(&lead_rows)))?;
    let cost_rows = inputs::criticality_costs(class_costs)?;
    let rate_rows = inputs::demand_rates(rates, part_ids, location_ids)?;
    Ok(ImportBundle {
        supplier_lead_times: lead_batch,
        criticality_costs: cost_rows.into_iter().map(|(_, c)| c).collect(),
        demand_rates: rate_rows.into_iter().map(|(_, r)| r).collect(),
        ..ImportBundle::default()
    })
}

fn lines<T>(rows: &[(u64, T)]) -> Vec<u64> {
    rows.iter().map(|(line, _)| *line).collect()
}

/// The batch indices in a field path such as `machine_models[2].parts[5].part_id`.
fn indices(field: &str) -> Vec<usize> {
    field
        .split('[')
        .skip(1)
        .filter_map(|s| s.split(']').next()?.parse().ok())
        .collect()
}

/// The CSV column a domain field path refers to (its last segment, renamed where
/// the file's column differs from the domain's field).
fn column_for(field: &str) -> &str {
    let leaf = field.rsplit('.').next().unwrap_or(field);
    let leaf = leaf.split('[').next().unwrap_or(leaf);
    match leaf {
        "from_location_id" => "from",
        "to_location_id" => "to",
        "transit_hours" => "transit_hours_p50",
        other => other,
    }
}

fn split_error(error: DomainError) -> (String, String) {
    match error {
        DomainError::InvalidArgument { field, reason } => (field, reason),
        DomainError::OutOfRange { field, reason } => (field, format!("out of range: {reason}")),
        other => (String::new(), other.to_string()),
    }
}

/// Maps a validation error on batch item `i` to the line of row `i` of `table`.
fn locate(error: DomainError, table: &Table, lines: &[u64]) -> ImportError {
    let (field, reason) = split_error(error);
    let line = indices(&field)
        .first()
        .and_then(|&i| lines.get(i))
        .copied()
        .unwrap_or(0);
    if field.is_empty() {
        return ImportError::new(&table.file, line, 0, reason);
    }
    table.error_at(line, column_for(&field), reason)
}

fn locate_installed_base(
    error: DomainError,
    models: &Table,
    model_parts: &Table,
    fleets: &Table,
    model_lines: &[u64],
    model_part_lines: &[Vec<u64>],
    fleet_lines: &[u64],
) -> ImportError {
    let field = match &error {
        DomainError::InvalidArgument { field, .. } | DomainError::OutOfRange { field, .. } => {
            field.clone()
        }
        _ => String::new(),
    };
    if field.starts_with("fleets[") {
        return locate(error, fleets, fleet_lines);
    }
    let index = indices(&field);
    if let [model, part, ..] = index[..] {
        let line = model_part_lines
            .get(model)
            .and_then(|l| l.get(part))
            .copied()
            .unwrap_or(0);
        let (field, reason) = split_error(error);
        return model_parts.error_at(line, column_for(&field), reason);
    }
    locate(error, models, model_lines)
}

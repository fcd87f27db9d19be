//! `--csv DIR`: a job's full JSON result as CSV tables a spreadsheet opens,
//! one file per table, each with a header row.
//!
//! The tables follow the result's shape, so every level, series and row is
//! kept whatever the result type: every array of records becomes a table
//! named by its path (`parts`, `comparisons.parts`), nested objects become
//! dotted columns (`measures.fill_rate`), arrays of plain values become one
//! `;`-joined cell, and a record inside another array carries the indexes
//! of its parents (`comparisons_index`) so it can be joined back. The
//! result's top-level fields go to `summary.csv` as `field,value` rows.

use serde_json::Value;
use std::collections::HashMap;
use std::path::{Path, PathBuf};

/// One table: a name (the file is `NAME.csv`), a header and rows.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct CsvTable {
    /// The table's path in the result, e.g. `comparisons.parts`.
    pub name: String,
    /// Column names, parents' indexes first, then in the order first seen.
    pub header: Vec<String>,
    /// Rows; a cell a record did not have is empty.
    pub rows: Vec<Vec<String>>,
}

/// A table being built: columns by first appearance, sparse rows.
#[derive(Default)]
struct Builder {
    columns: Vec<String>,
    column_of: HashMap<String, usize>,
    rows: Vec<Vec<(usize, String)>>,
}

/// Cells of one row by column name, in the order set.
type Row = Vec<(String, String)>;

/// Tables by name in the order first seen.
#[derive(Default)]
struct Tables {
    order: Vec<String>,
    builders: HashMap<String, Builder>,
}

impl Tables {
    fn push(&mut self, name: &str, row: Row) {
        if !self.builders.contains_key(name) {
            self.order.push(name.to_string());
        }
        let builder = self.builders.entry(name.to_string()).or_default();
        let mut cells = Vec::with_capacity(row.len());
        for (column, value) in row {
            let index = match builder.column_of.get(&column) {
                Some(&index) => index,
                None => {
                    builder.columns.push(column.clone());
                    builder.column_of.insert(column, builder.columns.len() - 1);
                    builder.columns.len() - 1
                }
            };
            cells.push((index, value));
        }
        builder.rows.push(cells);
    }

    fn finish(mut self) -> Vec<CsvTable> {
        self.order
            .iter()
            .filter_map(|name| {
                let builder = self.builders.remove(name)?;
                let width = builder.columns.len();
                let rows = builder
                    .rows
                    .into_iter()
                    .map(|cells| {
                        let mut row = vec![String::new(); width];
                        for (index, value) in cells {
                            row[index] = value;
                        }
                        row
                    })
                    .collect();
                Some(CsvTable {
                    name: name.clone(),
                    header: builder.columns,
                    rows,
                })
            })
            .collect()
    }
}

/// A plain value as a cell (`None` for objects and arrays).
fn scalar(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::String(s) => Some(s.clone()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The last segment of a table name, for its index column.
fn segment(name: &str) -> &str {
    name.rsplit('.').next().unwrap_or(name)
}

/// Adds `map`'s fields to `row` under `prefix`; arrays of records become
/// tables under `table` carrying `parents`.
fn flatten(
    map: &serde_json::Map<String, Value>,
    prefix: &str,
    row: &mut Row,
    table: &str,
    parents: &Row,
    out: &mut Tables,
) {
    for (key, value) in map {
        let column = format!("{prefix}{key}");
        match value {
            Value::Object(inner) => {
                flatten(inner, &format!("{column}."), row, table, parents, out);
            }
            // An empty array could be values or records: it adds nothing
            // (its column or table comes from the records that have items).
            Value::Array(items) if items.is_empty() => {}
            Value::Array(items) => {
                let cells: Option<Vec<String>> = items.iter().map(scalar).collect();
                match cells {
                    Some(cells) => row.push((column, cells.join(";"))),
                    None => {
                        let name = if table.is_empty() {
                            column
                        } else {
                            format!("{table}.{column}")
                        };
                        visit_array(&name, items, parents, out);
                    }
                }
            }
            plain => row.push((column, scalar(plain).unwrap_or_default())),
        }
    }
}

/// The index column of table `name` under `parents`: `parts_index`, and
/// `parts_index_2` for an array inside an array.
fn index_column(name: &str, parents: &Row) -> String {
    let base = format!("{}_index", segment(name));
    let mut column = base.clone();
    let mut level = 1;
    while parents.iter().any(|(k, _)| *k == column) {
        level += 1;
        column = format!("{base}_{level}");
    }
    column
}

/// Rows of table `name` from `items`, each carrying `parents` and its own index.
fn visit_array(name: &str, items: &[Value], parents: &Row, out: &mut Tables) {
    for (i, item) in items.iter().enumerate() {
        let mut keys = parents.clone();
        keys.push((index_column(name, parents), i.to_string()));
        match item {
            Value::Object(map) => {
                let mut row = keys.clone();
                flatten(map, "", &mut row, name, &keys, out);
                out.push(name, row);
            }
            // An array of arrays: one table, one index column per level.
            Value::Array(inner) => visit_array(name, inner, &keys, out),
            plain => {
                let mut row = keys;
                row.push(("value".into(), scalar(plain).unwrap_or_default()));
                out.push(name, row);
            }
        }
    }
}

/// The tables of a result: `summary` (top-level fields as `field,value`)
/// and one per array of records. A result that is an array is one table
/// named `root`.
pub fn tables(root: &str, result: &Value) -> Vec<CsvTable> {
    let mut out = Tables::default();
    match result {
        Value::Object(map) => {
            let mut fields = Row::new();
            flatten(map, "", &mut fields, "", &Row::new(), &mut out);
            let summary = CsvTable {
                name: "summary".into(),
                header: vec!["field".into(), "value".into()],
                rows: fields.into_iter().map(|(k, v)| vec![k, v]).collect(),
            };
            std::iter::once(summary).chain(out.finish()).collect()
        }
        Value::Array(items) => {
            visit_array(root, items, &Row::new(), &mut out);
            out.finish()
        }
        plain => vec![CsvTable {
            name: root.into(),
            header: vec!["value".into()],
            rows: vec![vec![scalar(plain).unwrap_or_default()]],
        }],
    }
}

/// A table name as a file name: letters, digits, `.`, `_` and `-` kept.
fn file_name(name: &str) -> String {
    let safe: String = name
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || "._-".contains(c) {
                c
            } else {
                '_'
            }
        })
        .collect();
    format!("{safe}.csv")
}

/// Writes every table into `dir` (created if missing) as `NAME.csv` with
/// its header row; returns each file with its row count.
///
/// # Errors
/// The directory or a file cannot be written.
pub fn write(dir: &Path, tables: &[CsvTable]) -> Result<Vec<(PathBuf, usize)>, String> {
    std::fs::create_dir_all(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
    let mut written = Vec::with_capacity(tables.len());
    for table in tables {
        let path = dir.join(file_name(&table.name));
        let error = |e: csv::Error| format!("{}: {e}", path.display());
        let mut writer = csv::Writer::from_path(&path).map_err(error)?;
        writer.write_record(&table.header).map_err(error)?;
        for row in &table.rows {
            writer.write_record(row).map_err(error)?;
        }
        writer
            .flush()
            .map_err(|e| format!("{}: {e}", path.display()))?;
        written.push((path, table.rows.len()));
    }
    Ok(written)
}

/// Parses `json` and writes its tables into `dir`; returns what it wrote,
/// one line per file (`  parts.csv: 40 rows`).
///
/// # Errors
/// Unreadable JSON, or as [`write`].
pub fn save(dir: &Path, root: &str, json: &str) -> Result<String, String> {
    let value: Value =
        serde_json::from_str(json).map_err(|e| format!("the result is not JSON: {e}"))?;
    let written = write(dir, &tables(root, &value))?;
    let mut out = format!("wrote {} CSV files to {}:\n", written.len(), dir.display());
    for (path, rows) in written {
        let name = path.file_name().map_or_else(
            || path.display().to_string(),
            |n| n.to_string_lossy().into_owned(),
        );
        out.push_str(&format!("  {name}: {rows} rows\n"));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn arrays_of_records_become_tables_with_their_parents_indexes() {
        let result = serde_json::json!({
            "seed": 7,
            "totals": {"mean": 1.5, "p95": 3},
            "part_ids": ["P1", "P2"],
            "parts": [
                {"part_id": "P1", "measures": {"fill_rate": 0.9}, "waits": [{"days": 1}, {"days": 2}]},
                {"part_id": "P2", "extra": true, "waits": []}
            ],
            "samples": [[{"cost": 1}], [{"cost": 2}, {"cost": 3}]]
        });
        let tables = tables("result", &result);
        let names: Vec<&str> = tables.iter().map(|t| t.name.as_str()).collect();
        assert_eq!(names, ["summary", "parts.waits", "parts", "samples"]);
        let summary = &tables[0];
        assert!(
            summary
                .rows
                .contains(&vec!["totals.p95".into(), "3".into()])
        );
        assert!(
            summary
                .rows
                .contains(&vec!["part_ids".into(), "P1;P2".into()])
        );
        let parts = &tables[2];
        assert_eq!(
            parts.header,
            ["parts_index", "measures.fill_rate", "part_id", "extra"]
        );
        assert_eq!(parts.rows[1], ["1", "", "P2", "true"]);
        let waits = &tables[1];
        assert_eq!(waits.header, ["parts_index", "waits_index", "days"]);
        assert_eq!(waits.rows, [["0", "0", "1"], ["0", "1", "2"]]);
        let samples = &tables[3];
        assert_eq!(samples.rows.len(), 3);
        assert_eq!(samples.rows[2], ["1", "1", "3"]);
    }

    #[test]
    fn written_files_read_back_with_their_rows() {
        let dir = tempfile::tempdir().unwrap();
        let result = serde_json::json!([{"a": "x,\"y\"", "b": 1}, {"a": "z"}]);
        let text = save(dir.path(), "forecasts", &result.to_string()).unwrap();
        assert!(text.contains("forecasts.csv: 2 rows"), "{text}");
        let mut reader = csv::Reader::from_path(dir.path().join("forecasts.csv")).unwrap();
        let rows: Vec<csv::StringRecord> = reader.records().map(Result::unwrap).collect();
        assert_eq!(rows.len(), 2);
        assert_eq!(&rows[0][1], "x,\"y\"");
        assert_eq!(&rows[1][2], "");
    }
}

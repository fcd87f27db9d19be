//! Reads one CSV or JSON file into uniform rows of text cells, so every file
//! kind is parsed by the same code whichever format it came in.

use super::ImportError;
use crate::domain::ledger::MAX_QUANTITY;
use csv::{ErrorKind, ReaderBuilder, Trim};
use serde_json::{Map, Value};
use std::str::FromStr;

/// The columns a file kind accepts.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Columns {
    /// Columns that must be present in the header (CSV) and non-empty in every row.
    pub required: &'static [&'static str],
    /// Columns that may be absent or empty.
    pub optional: &'static [&'static str],
}

impl Columns {
    fn knows(&self, name: &str) -> bool {
        self.required.contains(&name) || self.optional.contains(&name)
    }

    fn all(&self) -> Vec<String> {
        self.required
            .iter()
            .chain(self.optional)
            .map(|c| (*c).to_string())
            .collect()
    }
}

/// One data row: its line in the file and its cells, aligned with the table's headers.
#[derive(Debug, Clone)]
pub(crate) struct Row {
    /// 1-based line where the row starts (CSV) or where its object starts (JSON).
    pub line: u64,
    cells: Vec<String>,
}

/// A parsed file: headers and rows of trimmed text.
#[derive(Debug, Clone)]
pub(crate) struct Table {
    /// The file name used in errors.
    pub file: String,
    headers: Vec<String>,
    /// JSON has no column numbers; errors then carry column 0 and name the field.
    has_columns: bool,
    /// The data rows in file order.
    pub rows: Vec<Row>,
}

impl Table {
    /// Reads CSV text with a header row. Headers are matched by name, in any order.
    pub fn from_csv(file: &str, text: &str, columns: Columns) -> Result<Self, ImportError> {
        if let Some(error) = super::scan::unterminated_quote(file, text) {
            return Err(error);
        }
        let mut reader = ReaderBuilder::new()
            .trim(Trim::All)
            .from_reader(text.as_bytes());
        let headers: Vec<String> = reader
            .headers()
            .map_err(|e| csv_error(file, &e))?
            .iter()
            .map(str::to_string)
            .collect();
        check_headers(file, &headers, columns)?;
        let mut rows = Vec::new();
        let mut errors = Vec::new();
        for record in reader.records() {
            let record = match record {
                Ok(record) => record,
                Err(error) => {
                    errors.push(csv_error(file, &error));
                    if errors.len() >= super::MAX_IMPORT_ERRORS {
                        break;
                    }
                    continue;
                }
            };
            let line = record.position().map_or(0, |p| p.line());
            rows.push(Row {
                line,
                cells: record.iter().map(str::to_string).collect(),
            });
        }
        if let Some(error) = ImportError::collect(errors) {
            return Err(error);
        }
        Ok(Self {
            file: file.to_string(),
            headers,
            has_columns: true,
            rows,
        })
    }

    /// Reads a JSON array of objects whose keys are the CSV column names. Values may
    /// be strings, numbers, booleans or null (null and a missing key mean empty).
    pub fn from_json(file: &str, text: &str, columns: Columns) -> Result<Self, ImportError> {
        let objects: Vec<Map<String, Value>> = serde_json::from_str(text).map_err(|e| {
            ImportError::new(
                file,
                e.line() as u64,
                e.column() as u64,
                format!("invalid JSON: {e}"),
            )
        })?;
        let starts = object_start_lines(text);
        let headers = columns.all();
        let mut rows = Vec::with_capacity(objects.len());
        for (index, object) in objects.iter().enumerate() {
            let line = starts.get(index).copied().unwrap_or(0);
            let mut cells = vec![String::new(); headers.len()];
            for (key, value) in object {
                let Some(position) = headers.iter().position(|h| h == key) else {
                    return Err(ImportError::new(
                        file,
                        line,
                        0,
                        format!("{key}: unknown field"),
                    ));
                };
                cells[position] = json_cell(value).ok_or_else(|| {
                    ImportError::new(
                        file,
                        line,
                        0,
                        format!("{key}: expected a string, number, boolean or null"),
                    )
                })?;
            }
            rows.push(Row { line, cells });
        }
        Ok(Self {
            file: file.to_string(),
            headers,
            has_columns: false,
            rows,
        })
    }

    /// The 1-based column number of a header, or 0 when absent or in JSON.
    pub fn column_of(&self, name: &str) -> u64 {
        if !self.has_columns {
            return 0;
        }
        self.headers
            .iter()
            .position(|h| h == name)
            .map_or(0, |i| i as u64 + 1)
    }

    /// Accessor for the cells of one row.
    pub fn cells<'a>(&'a self, row: &'a Row) -> Cells<'a> {
        Cells { table: self, row }
    }

    /// An error at a row and named column.
    pub fn error_at(
        &self,
        line: u64,
        column: &str,
        message: impl std::fmt::Display,
    ) -> ImportError {
        ImportError::new(
            &self.file,
            line,
            self.column_of(column),
            format!("{column}: {message}"),
        )
    }
}

/// The cells of one row, looked up by column name.
pub(crate) struct Cells<'a> {
    table: &'a Table,
    row: &'a Row,
}

impl<'a> Cells<'a> {
    /// The 1-based line of this row.
    pub fn line(&self) -> u64 {
        self.row.line
    }

    /// An error at this row and the named column.
    pub fn error(&self, column: &str, message: impl std::fmt::Display) -> ImportError {
        self.table.error_at(self.row.line, column, message)
    }

    /// The trimmed cell, or `None` when the column is absent or the cell empty.
    pub fn optional(&self, column: &str) -> Option<&'a str> {
        let position = self.table.headers.iter().position(|h| h == column)?;
        self.row
            .cells
            .get(position)
            .map(String::as_str)
            .filter(|s| !s.is_empty())
    }

    /// The trimmed cell; empty is an error.
    pub fn required(&self, column: &str) -> Result<&'a str, ImportError> {
        self.optional(column)
            .ok_or_else(|| self.error(column, "a value is required"))
    }

    /// A finite number.
    pub fn number(&self, column: &str) -> Result<f64, ImportError> {
        let text = self.required(column)?;
        match text.parse::<f64>() {
            Ok(value) if value.is_finite() => Ok(value),
            _ => Err(self.error(column, format!("expected a number, got {text:?}"))),
        }
    }

    /// A finite number, or `None` when empty.
    pub fn optional_number(&self, column: &str) -> Result<Option<f64>, ImportError> {
        match self.optional(column) {
            Some(_) => self.number(column).map(Some),
            None => Ok(None),
        }
    }

    /// A whole number >= 0 (u32, u64, ...).
    pub fn whole<T: FromStr>(&self, column: &str) -> Result<T, ImportError> {
        let text = self.required(column)?;
        text.parse::<T>().map_err(|_| {
            self.error(
                column,
                format!("expected a whole number >= 0, got {text:?}"),
            )
        })
    }

    /// A stock quantity: a whole number from 0 to [`MAX_QUANTITY`] units.
    pub fn quantity(&self, column: &str) -> Result<u64, ImportError> {
        let value: u64 = self.whole(column)?;
        if value > MAX_QUANTITY {
            return Err(self.error(
                column,
                format!("{value} is above the limit of {MAX_QUANTITY} units"),
            ));
        }
        Ok(value)
    }

    /// A whole number, or `default` when empty.
    pub fn whole_or<T: FromStr>(&self, column: &str, default: T) -> Result<T, ImportError> {
        match self.optional(column) {
            Some(_) => self.whole(column),
            None => Ok(default),
        }
    }

    /// A cell parsed by `parse`, whose error message is used as is.
    pub fn with<T>(
        &self,
        column: &str,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ImportError> {
        let text = self.required(column)?;
        parse(text).map_err(|message| self.error(column, message))
    }

    /// Like [`Cells::with`], with `default` when empty.
    pub fn with_or<T>(
        &self,
        column: &str,
        default: T,
        parse: impl FnOnce(&str) -> Result<T, String>,
    ) -> Result<T, ImportError> {
        match self.optional(column) {
            Some(text) => parse(text).map_err(|message| self.error(column, message)),
            None => Ok(default),
        }
    }
}

fn check_headers(file: &str, headers: &[String], columns: Columns) -> Result<(), ImportError> {
    for (i, header) in headers.iter().enumerate() {
        let column = i as u64 + 1;
        if !columns.knows(header) {
            return Err(ImportError::new(
                file,
                1,
                column,
                format!(
                    "unknown column {header:?}; expected {}",
                    columns.all().join(", ")
                ),
            ));
        }
        if headers[..i].contains(header) {
            return Err(ImportError::new(
                file,
                1,
                column,
                format!("column {header:?} appears twice"),
            ));
        }
    }
    for required in columns.required {
        if !headers.iter().any(|h| h == required) {
            return Err(ImportError::new(
                file,
                1,
                0,
                format!("missing required column {required:?}"),
            ));
        }
    }
    Ok(())
}

/// Maps a csv error to the file, line and (for ragged rows) the first missing or extra column.
fn csv_error(file: &str, error: &csv::Error) -> ImportError {
    let line = error.position().map_or(0, |p| p.line());
    match error.kind() {
        ErrorKind::UnequalLengths {
            expected_len, len, ..
        } => ImportError::new(
            file,
            line,
            (*len).min(*expected_len) + 1,
            format!("row has {len} fields but the header has {expected_len}"),
        ),
        ErrorKind::Utf8 { .. } => ImportError::new(file, line, 0, "invalid UTF-8"),
        _ => ImportError::new(file, line, 0, format!("invalid CSV: {error}")),
    }
}

fn json_cell(value: &Value) -> Option<String> {
    match value {
        Value::Null => Some(String::new()),
        Value::String(s) => Some(s.trim().to_string()),
        Value::Number(n) => Some(n.to_string()),
        Value::Bool(b) => Some(b.to_string()),
        Value::Array(_) | Value::Object(_) => None,
    }
}

/// The 1-based line on which each element of a top-level JSON array starts. The
/// text has already parsed, so a small scanner that tracks strings and nesting is
/// enough.
fn object_start_lines(text: &str) -> Vec<u64> {
    let mut starts = Vec::new();
    let (mut line, mut depth) = (1u64, 0usize);
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if c == '\n' {
            line += 1;
        }
        if in_string {
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
            continue;
        }
        match c {
            '"' => in_string = true,
            '{' | '[' => {
                if depth == 1 {
                    starts.push(line);
                }
                depth += 1;
            }
            '}' | ']' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    starts
}

#[cfg(test)]
mod tests {
    use super::*;

    const COLUMNS: Columns = Columns {
        required: &["id", "qty"],
        optional: &["note"],
    };

    #[test]
    fn json_rows_keep_the_line_of_each_object() {
        let text = "[\n  {\"id\": \"a{\", \"qty\": 1},\n\n  {\"id\": \"b\", \"qty\": 2.5}\n]";
        let table = Table::from_json("x.json", text, COLUMNS).unwrap();
        let lines: Vec<u64> = table.rows.iter().map(|r| r.line).collect();
        assert_eq!(lines, vec![2, 4]);
        assert_eq!(table.cells(&table.rows[1]).number("qty").unwrap(), 2.5);
    }

    #[test]
    fn excel_byte_order_mark_and_padding_are_ignored() {
        let table = Table::from_csv("x.csv", "\u{feff}id , qty\n a , 3 \n", COLUMNS).unwrap();
        let cells = table.cells(&table.rows[0]);
        assert_eq!(cells.required("id").unwrap(), "a");
        assert_eq!(cells.whole::<u64>("qty").unwrap(), 3);
        assert_eq!(table.column_of("qty"), 2);
    }

    #[test]
    fn unknown_csv_column_is_named_with_its_position() {
        let err = Table::from_csv("x.csv", "id,qty,colour\n", COLUMNS).unwrap_err();
        assert_eq!((err.line, err.column), (1, 3));
    }
}

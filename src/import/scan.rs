//! Checks a file's bytes before it is parsed: invalid UTF-8 and unterminated
//! CSV quotes, each reported at its file, line and column. A CSV column is the
//! field's position in its record (as for value errors); in JSON it is the
//! character position in the line.
//!
//! The CSV scan follows the reader's rules (RFC 4180 as the `csv` crate reads
//! it): a field is quoted when its first byte is `"`, and inside it `""` is a
//! quote. A quote left open runs to the end of the file, which the reader
//! would report as a field-count mismatch far from the cause; the scan names
//! the line and column where the quote opened instead.

use super::{ImportError, MAX_IMPORT_ERRORS};

/// Decodes a file as UTF-8, or reports every invalid byte sequence (up to the
/// import's error bound) at its line and column.
pub(crate) fn decode(file: &str, bytes: &[u8]) -> Result<String, ImportError> {
    let Err(_) = std::str::from_utf8(bytes) else {
        return Ok(String::from_utf8_lossy(bytes).into_owned());
    };
    let mut offsets = Vec::new();
    let mut offset = 0;
    for chunk in bytes.utf8_chunks() {
        offset += chunk.valid().len();
        if !chunk.invalid().is_empty() {
            offsets.push(offset);
            offset += chunk.invalid().len();
            if offsets.len() >= MAX_IMPORT_ERRORS {
                break;
            }
        }
    }
    let csv = file.ends_with(".csv");
    let errors = positions(bytes, &offsets, csv)
        .into_iter()
        .map(|(line, column)| {
            ImportError::new(file, line, column, "invalid UTF-8 (save the file as UTF-8)")
        })
        .collect();
    Err(ImportError::collect(errors)
        .unwrap_or_else(|| ImportError::new(file, 0, 0, "invalid UTF-8")))
}

/// Reports a CSV quote left open at the end of the text, at the line and
/// column where it opened.
pub(crate) fn unterminated_quote(file: &str, text: &str) -> Option<ImportError> {
    let mut scanner = Scanner::default();
    for (i, &byte) in text.as_bytes().iter().enumerate() {
        scanner.step(byte, text.as_bytes().get(i + 1).copied());
    }
    scanner.open_quote.map(|(line, column)| {
        ImportError::new(
            file,
            line,
            column,
            "unterminated quote: the quoted field that starts here runs to the end of the file (close it with \")",
        )
    })
}

/// The (line, column) of each byte offset (sorted) in `bytes`.
fn positions(bytes: &[u8], offsets: &[usize], csv: bool) -> Vec<(u64, u64)> {
    let mut out = Vec::with_capacity(offsets.len());
    let mut wanted = offsets.iter().peekable();
    let mut scanner = Scanner::default();
    let mut line_start = 0;
    for (i, &byte) in bytes.iter().enumerate() {
        while wanted.next_if(|&&o| o == i).is_some() {
            let column = if csv {
                scanner.field
            } else {
                String::from_utf8_lossy(&bytes[line_start..i])
                    .chars()
                    .count() as u64
                    + 1
            };
            out.push((scanner.line, column));
        }
        if wanted.peek().is_none() {
            break;
        }
        scanner.step(byte, bytes.get(i + 1).copied());
        if byte == b'\n' {
            line_start = i + 1;
        }
    }
    out
}

/// Where a CSV reader is: line, field, and an open quote.
#[derive(Debug)]
struct Scanner {
    line: u64,
    field: u64,
    at_field_start: bool,
    /// (line, column) where the quote now open started.
    open_quote: Option<(u64, u64)>,
    /// The next byte is the second quote of an escaped `""`.
    skip_next: bool,
}

impl Default for Scanner {
    fn default() -> Self {
        Self {
            line: 1,
            field: 1,
            at_field_start: true,
            open_quote: None,
            skip_next: false,
        }
    }
}

impl Scanner {
    fn step(&mut self, byte: u8, next: Option<u8>) {
        if byte == b'\n' {
            self.line += 1;
        }
        if self.skip_next {
            self.skip_next = false;
            return;
        }
        if self.open_quote.is_some() {
            if byte == b'"' {
                if next == Some(b'"') {
                    self.skip_next = true;
                } else {
                    self.open_quote = None;
                }
            }
            return;
        }
        match byte {
            b'"' if self.at_field_start => {
                self.open_quote = Some((self.line, self.field));
                self.at_field_start = false;
            }
            b',' => {
                self.field += 1;
                self.at_field_start = true;
            }
            b'\n' => {
                self.field = 1;
                self.at_field_start = true;
            }
            b'\r' => {}
            _ => self.at_field_start = false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn invalid_utf8_is_placed_by_line_and_field() {
        let bytes = b"id,name\nA,ok\nB,bad\xff here\nC,\xc3\n";
        let error = decode("x.csv", bytes).unwrap_err();
        let places: Vec<(u64, u64)> = error.all().map(|e| (e.line, e.column)).collect();
        assert_eq!(places, vec![(3, 2), (4, 2)]);
        let error = decode("x.json", b"[\n  {\"id\": \"\xff\"}]").unwrap_err();
        assert_eq!((error.line, error.column), (2, 11));
    }

    #[test]
    fn an_open_quote_is_named_where_it_opens() {
        let text = "id,name\nA,\"fine, \"\"quoted\"\"\"\nB,\"never closed\nC,x\n";
        let error = unterminated_quote("x.csv", text).unwrap();
        assert_eq!((error.line, error.column), (3, 2), "{error}");
        assert!(unterminated_quote("x.csv", "a,\"b\"\n\"c\nd\",e\n").is_none());
    }
}

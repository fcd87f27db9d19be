//! The page around a report: one self-contained HTML document (inline CSS,
//! inline SVG, one small inline script that sorts tables), and a table
//! builder whose cells carry a sort key.

use super::svg::escape;
use std::fmt::Write;

/// Sorts a table by the clicked column (numbers by their `data-sort` value),
/// toggling the direction. Inline, so the page needs nothing from outside.
const SORT_SCRIPT: &str = r#"
document.querySelectorAll('table.sortable').forEach(function (table) {
  table.querySelectorAll('th').forEach(function (th, column) {
    th.addEventListener('click', function () {
      var body = table.tBodies[0];
      var rows = Array.prototype.slice.call(body.rows);
      var down = th.getAttribute('data-dir') !== 'desc';
      table.querySelectorAll('th').forEach(function (h) { h.removeAttribute('data-dir'); });
      th.setAttribute('data-dir', down ? 'desc' : 'asc');
      rows.sort(function (a, b) {
        var x = a.cells[column].getAttribute('data-sort');
        var y = b.cells[column].getAttribute('data-sort');
        var nx = parseFloat(x), ny = parseFloat(y);
        var order = (!isNaN(nx) && !isNaN(ny)) ? nx - ny : String(x).localeCompare(String(y));
        return down ? -order : order;
      });
      rows.forEach(function (row) { body.appendChild(row); });
    });
  });
});
"#;

const STYLE: &str = r#"
body { font-family: sans-serif; margin: 24px auto; max-width: 1000px; color: #222; }
h1 { font-size: 22px; margin-bottom: 4px; }
h2 { font-size: 17px; margin-top: 28px; border-bottom: 1px solid #ddd; padding-bottom: 4px; }
p.meta, p.note { color: #555; font-size: 13px; }
table { border-collapse: collapse; font-size: 13px; margin: 8px 0; }
th, td { padding: 3px 10px; border-bottom: 1px solid #eee; text-align: right; }
th:first-child, td:first-child { text-align: left; }
th { cursor: pointer; background: #f5f5f5; user-select: none; }
th[data-dir=desc]::after { content: " \25BC"; }
th[data-dir=asc]::after { content: " \25B2"; }
svg.chart { display: block; margin: 8px 0; border: 1px solid #eee; }
"#;

/// A report page being built.
pub struct Page {
    title: String,
    meta: String,
    body: String,
}

impl Page {
    /// Starts a page with a title and a line of facts under it.
    pub fn new(title: &str, meta: &str) -> Self {
        Self {
            title: title.to_string(),
            meta: meta.to_string(),
            body: String::new(),
        }
    }

    /// Adds a section heading with an id.
    pub fn heading(&mut self, id: &str, text: &str) {
        let _ = write!(self.body, "<h2 id=\"{}\">{}</h2>", escape(id), escape(text));
    }

    /// Adds a paragraph of plain text.
    pub fn note(&mut self, text: &str) {
        let _ = write!(self.body, "<p class=\"note\">{}</p>", escape(text));
    }

    /// Adds markup made by this crate (an SVG chart or a table).
    pub fn raw(&mut self, markup: &str) {
        self.body.push_str(markup);
    }

    /// The finished document.
    pub fn finish(self) -> String {
        format!(
            "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{}</title><style>{STYLE}</style></head><body><h1>{}</h1><p class=\"meta\">{}</p>{}<script>{SORT_SCRIPT}</script></body></html>\n",
            escape(&self.title),
            escape(&self.title),
            escape(&self.meta),
            self.body
        )
    }
}

/// A table cell: what it shows and what it sorts by.
pub struct Cell {
    text: String,
    sort: String,
}

impl Cell {
    /// A text cell sorted by its text.
    pub fn text(text: impl Into<String>) -> Self {
        let text = text.into();
        Self {
            sort: text.clone(),
            text,
        }
    }

    /// A number shown as `text`, sorted by `value`.
    pub fn number(value: f64, text: impl Into<String>) -> Self {
        Self {
            text: text.into(),
            sort: if value.is_finite() {
                format!("{value}")
            } else {
                String::new()
            },
        }
    }
}

/// A sortable table with an id, column headers and rows of cells.
pub fn table(id: &str, headers: &[&str], rows: Vec<Vec<Cell>>) -> String {
    let mut out = format!(
        "<table class=\"sortable\" id=\"{}\"><thead><tr>",
        escape(id)
    );
    for h in headers {
        let _ = write!(out, "<th>{}</th>", escape(h));
    }
    out.push_str("</tr></thead><tbody>");
    for row in rows {
        out.push_str("<tr>");
        for cell in row {
            let _ = write!(
                out,
                "<td data-sort=\"{}\">{}</td>",
                escape(&cell.sort),
                escape(&cell.text)
            );
        }
        out.push_str("</tr>");
    }
    out.push_str("</tbody></table>");
    out
}

/// Money for people: $1.23M, $45.6k, $789.
pub fn money(value: f64) -> String {
    if !value.is_finite() {
        return "-".into();
    }
    let sign = if value < 0.0 { "-" } else { "" };
    let v = value.abs();
    if v >= 1e9 {
        format!("{sign}${:.2}B", v / 1e9)
    } else if v >= 1e6 {
        format!("{sign}${:.2}M", v / 1e6)
    } else if v >= 1e3 {
        format!("{sign}${:.1}k", v / 1e3)
    } else {
        format!("{sign}${v:.0}")
    }
}

/// A share as a percentage with `digits` decimals.
pub fn percent(value: f64, digits: usize) -> String {
    if value.is_finite() {
        format!("{:.*}%", digits, value * 100.0)
    } else {
        "-".into()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_page_is_one_document_without_links() {
        let mut page = Page::new("A <b> report", "job-1");
        page.heading("s", "Section");
        page.raw(&table(
            "t",
            &["name", "cost"],
            vec![vec![Cell::text("x&y"), Cell::number(1500.0, money(1500.0))]],
        ));
        let html = page.finish();
        assert!(html.starts_with("<!DOCTYPE html>"));
        assert!(html.contains("A &lt;b&gt; report"));
        assert!(html.contains("<td data-sort=\"1500\">$1.5k</td>"));
        assert!(!html.contains("http"));
        assert!(!html.contains(" src="));
    }

    #[test]
    fn money_reads_well() {
        assert_eq!(money(88_000_000.0), "$88.00M");
        assert_eq!(money(-1500.0), "-$1.5k");
        assert_eq!(money(12.4), "$12");
        assert_eq!(money(f64::NAN), "-");
    }
}

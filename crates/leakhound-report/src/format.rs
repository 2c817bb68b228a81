//! Number formatting for people: sizes, counts, percentages.

/// Bytes in DevTools' style (decimal units): `512 B`, `1.2 kB`, `34 MB`, `1.50 GB`.
pub fn bytes(n: u64) -> String {
    let f = n as f64;
    if n < 1000 {
        format!("{n} B")
    } else if f < 1e6 {
        format!("{:.1} kB", f / 1e3)
    } else if f < 1e9 {
        format!("{:.1} MB", f / 1e6)
    } else {
        format!("{:.2} GB", f / 1e9)
    }
}

/// A signed byte delta: `+1.2 MB`, `−340 B`.
pub fn signed_bytes(n: i64) -> String {
    if n < 0 {
        format!("−{}", bytes(n.unsigned_abs()))
    } else {
        format!("+{}", bytes(n as u64))
    }
}

/// A count with thousands separators: `1 234 567`.
pub fn count(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::with_capacity(s.len() + s.len() / 3);
    for (i, c) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push('\u{202f}');
        }
        out.push(c);
    }
    out
}

/// `part / whole` as a percentage with no decimals below 10 % shown with one.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return "–".into();
    }
    let p = part as f64 * 100.0 / whole as f64;
    if p < 10.0 {
        format!("{p:.1} %")
    } else {
        format!("{p:.0} %")
    }
}

/// A distance as DevTools shows it: `–` for unreachable and system-only nodes.
pub fn distance(d: i32) -> String {
    if !(0..leakhound_heap::BASE_SYSTEM_DISTANCE).contains(&d) {
        "–".into()
    } else {
        d.to_string()
    }
}

/// Cuts `s` to at most `max` characters, ending with `…` when cut.
pub fn truncate(s: &str, max: usize) -> String {
    if s.chars().count() <= max {
        return s.to_owned();
    }
    let mut out: String = s.chars().take(max.saturating_sub(1)).collect();
    out.push('…');
    out
}

/// A plain text table: left-aligned first column, right-aligned others.
pub struct Table {
    header: Vec<String>,
    rows: Vec<Vec<String>>,
}

impl Table {
    /// A table with these column titles.
    pub fn new(header: &[&str]) -> Table {
        Table {
            header: header.iter().map(|s| (*s).to_owned()).collect(),
            rows: Vec::new(),
        }
    }
    /// Adds a row (as many cells as columns).
    pub fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }
    /// Renders with two spaces between columns.
    pub fn render(&self) -> String {
        let cols = self.header.len();
        let width = |s: &str| s.chars().count();
        let mut widths: Vec<usize> = self.header.iter().map(|h| width(h)).collect();
        for r in &self.rows {
            for (i, c) in r.iter().enumerate().take(cols) {
                widths[i] = widths[i].max(width(c));
            }
        }
        let mut out = String::new();
        let line = |cells: &[String], out: &mut String| {
            for (i, c) in cells.iter().enumerate().take(cols) {
                let pad = widths[i] - width(c);
                if i == 0 {
                    out.push_str(c);
                    if cols > 1 {
                        out.push_str(&" ".repeat(pad));
                    }
                } else {
                    out.push_str("  ");
                    out.push_str(&" ".repeat(pad));
                    out.push_str(c);
                }
            }
            out.push('\n');
        };
        line(&self.header, &mut out);
        for r in &self.rows {
            line(r, &mut out);
        }
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_use_decimal_units_like_devtools() {
        assert_eq!(bytes(999), "999 B");
        assert_eq!(bytes(1234), "1.2 kB");
        assert_eq!(bytes(3_400_000), "3.4 MB");
        assert_eq!(bytes(1_500_000_000), "1.50 GB");
        assert_eq!(signed_bytes(-2048), "−2.0 kB");
        assert_eq!(count(1234567), "1\u{202f}234\u{202f}567");
        assert_eq!(distance(-5), "–");
        assert_eq!(distance(100_000_001), "–");
        assert_eq!(distance(3), "3");
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["Class", "Count"]);
        t.row(vec!["Quote".into(), "12".into()]);
        t.row(vec!["(string)".into(), "1200".into()]);
        assert_eq!(t.render(), "Class     Count\nQuote        12\n(string)   1200\n");
    }
}

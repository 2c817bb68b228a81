//! Every number the reports show, formatted in one place: sizes and signed byte deltas
//! and rates, counts, percentages, distances, durations and latencies for people, and the
//! rounding of the figures the JSON documents carry. Also text cutting and the terminal
//! table. The text, JSON and HTML reports all format through here, so one figure reads
//! the same everywhere.

/// What a figure that does not exist reads as (no floor points, an unreachable node, an
/// empty whole): an en dash.
pub const DASH: &str = "–";

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

/// `n` and the words after it in its number: `1 more class`, `2 more classes`.
pub fn plural(n: u64, one: &str, many: &str) -> String {
    format!("{n} {}", if n == 1 { one } else { many })
}

/// A signed byte delta: `+1.2 MB`, `−340 B`.
pub fn signed_bytes(n: i64) -> String {
    if n < 0 {
        format!("−{}", bytes(n.unsigned_abs()))
    } else {
        format!("+{}", bytes(n as u64))
    }
}

/// A signed byte delta given as a float, cut toward zero: `+1.2 MB`, `−340 B` (a small
/// negative value keeps its sign: `−0 B`). For slopes and their confidence bounds.
pub fn signed_bytes_f64(x: f64) -> String {
    let b = bytes(x.abs() as u64);
    if x < 0.0 { format!("−{b}") } else { format!("+{b}") }
}

/// A signed byte rate (bytes per request, per hour), with decimals where the value is
/// small: `+400 B`, `−1.2 MB`, `+0.25 B`; [`DASH`] when not finite.
pub fn byte_rate(x: f64) -> String {
    if !x.is_finite() {
        return DASH.into();
    }
    let sign = if x < 0.0 { "−" } else { "+" };
    let a = x.abs();
    if a >= 1000.0 {
        format!("{sign}{}", bytes(a.round() as u64))
    } else if a >= 10.0 {
        format!("{sign}{a:.0} B")
    } else {
        format!("{sign}{a:.2} B")
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

/// A signed count delta: `+3`, `-2`, `+0` (ASCII signs).
pub fn signed_count(n: i64) -> String {
    format!("{n:+}")
}

/// Counts across snapshots, oldest first: `51 → 351 → 651`.
pub fn counts_across(counts: &[u64]) -> String {
    counts.iter().map(|n| count(*n)).collect::<Vec<_>>().join(" → ")
}

/// `part / whole` as a percentage with no decimals below 10 % shown with one.
pub fn percent(part: u64, whole: u64) -> String {
    if whole == 0 {
        return DASH.into();
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
        DASH.into()
    } else {
        d.to_string()
    }
}

/// A duration given in ms: `850 ms`, `1.5 s`, `42 s`, `3 min 05 s`, `1 h 02 min`;
/// [`DASH`] when not finite.
pub fn duration_ms(ms: f64) -> String {
    let s = ms / 1000.0;
    if !s.is_finite() {
        DASH.into()
    } else if s.abs() < 1.0 {
        format!("{ms:.0} ms")
    } else if s.abs() < 100.0 {
        format!("{s:.1} s")
    } else if s.abs() < 600.0 {
        format!("{s:.0} s")
    } else if s.abs() < 3600.0 {
        let t = s.round() as i64;
        format!("{} min {:02} s", t / 60, t % 60)
    } else {
        let t = (s / 60.0).round() as i64;
        format!("{} h {:02} min", t / 60, t % 60)
    }
}

/// A latency in ms with three significant digits or more: `1.50 ms`, `17.4 ms`, `250 ms`.
pub fn latency_ms(ms: f64) -> String {
    if ms < 10.0 {
        format!("{ms:.2} ms")
    } else if ms < 100.0 {
        format!("{ms:.1} ms")
    } else {
        format!("{ms:.0} ms")
    }
}

/// `part / whole` in percent rounded to two decimals, for JSON (`0.0` when `whole` is 0).
pub fn percent_json(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        0.0
    } else {
        (part as f64 * 10000.0 / whole as f64).round() / 100.0
    }
}

/// `x` rounded to three decimals, for JSON (rates and shares).
pub fn round3(x: f64) -> f64 {
    (x * 1000.0).round() / 1000.0
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
    #[test]
    fn plurals_agree_with_their_number() {
        assert_eq!(plural(1, "class", "classes"), "1 class");
        assert_eq!(plural(0, "class", "classes"), "0 classes");
        assert_eq!(plural(2, "more retainer", "more retainers"), "2 more retainers");
    }

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
        assert_eq!(signed_count(-2), "-2");
        assert_eq!(signed_count(0), "+0");
        assert_eq!(counts_across(&[51, 1351]), "51 → 1\u{202f}351");
        assert_eq!(counts_across(&[]), "");
    }

    #[test]
    fn signed_floats_keep_their_sign() {
        assert_eq!(signed_bytes_f64(-2048.9), "−2.0 kB");
        assert_eq!(signed_bytes_f64(-0.5), "−0 B");
        assert_eq!(signed_bytes_f64(999.9), "+999 B");
        assert_eq!(byte_rate(400.0), "+400 B");
        assert_eq!(byte_rate(-3.1e9), "−3.10 GB");
        assert_eq!(byte_rate(0.25), "+0.25 B");
        assert_eq!(byte_rate(-12.4), "−12 B");
        assert_eq!(byte_rate(f64::NAN), "–");
    }

    #[test]
    fn durations_and_latencies_read_well() {
        assert_eq!(duration_ms(850.0), "850 ms");
        assert_eq!(duration_ms(11_900.0), "11.9 s");
        assert_eq!(duration_ms(185_000.0), "185 s");
        assert_eq!(duration_ms(725_000.0), "12 min 05 s");
        assert_eq!(duration_ms(3_725_000.0), "1 h 02 min");
        assert_eq!(duration_ms(f64::INFINITY), "–");
        assert_eq!(latency_ms(1.5), "1.50 ms");
        assert_eq!(latency_ms(17.36), "17.4 ms");
        assert_eq!(latency_ms(250.2), "250 ms");
    }

    #[test]
    fn json_figures_are_rounded() {
        assert_eq!(percent_json(1, 3), 33.33);
        assert_eq!(percent_json(5, 0), 0.0);
        assert_eq!(round3(2.0 / 3.0), 0.667);
    }

    #[test]
    fn table_aligns_columns() {
        let mut t = Table::new(&["Class", "Count"]);
        t.row(vec!["Quote".into(), "12".into()]);
        t.row(vec!["(string)".into(), "1200".into()]);
        assert_eq!(t.render(), "Class     Count\nQuote        12\n(string)   1200\n");
    }
}

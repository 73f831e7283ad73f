//! A Prometheus text-format (0.0.4) writer for families built at scrape time.
//!
//! The `redis_*` families are made from the INFO text on each scrape, with labels only known
//! then (`cmd`, `db`, `slave_ip`), so they are written here rather than registered once in
//! the `prometheus` crate's registry; kura's own families use the registry.

/// A metric family's type line.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    /// Goes up and down.
    Gauge,
    /// Only goes up (until a restart or `CONFIG RESETSTAT`).
    Counter,
    /// Quantiles with `_sum` and `_count`.
    Summary,
    /// Cumulative `le` buckets with `_sum` and `_count`.
    Histogram,
}

impl Kind {
    fn word(self) -> &'static str {
        match self {
            Kind::Gauge => "gauge",
            Kind::Counter => "counter",
            Kind::Summary => "summary",
            Kind::Histogram => "histogram",
        }
    }
}

/// One family: its samples are written together under one HELP/TYPE header, as the format
/// requires.
#[derive(Debug)]
struct Family {
    name: String,
    kind: Kind,
    help: String,
    /// Rendered sample lines.
    lines: String,
}

/// Families in first-seen order.
#[derive(Debug, Default)]
pub struct Exposition {
    families: Vec<Family>,
    /// Family name → its place in `families` (a scrape adds hundreds of samples).
    index: std::collections::HashMap<String, usize>,
}

impl Exposition {
    /// Adds a sample to family `name` (created with `kind` and `help` on first use);
    /// `suffix` is `""`, `"_sum"`, `"_count"` or `"_bucket"`.
    pub fn sample(
        &mut self,
        name: &str,
        kind: Kind,
        help: &str,
        suffix: &str,
        labels: &[(&str, &str)],
        value: f64,
    ) {
        let i = match self.index.get(name) {
            Some(&i) => i,
            None => {
                self.families.push(Family {
                    name: name.to_string(),
                    kind,
                    help: help.to_string(),
                    lines: String::new(),
                });
                self.index.insert(name.to_string(), self.families.len() - 1);
                self.families.len() - 1
            }
        };
        let f = &mut self.families[i];
        f.lines.push_str(name);
        f.lines.push_str(suffix);
        if !labels.is_empty() {
            f.lines.push('{');
            for (n, (k, v)) in labels.iter().enumerate() {
                if n > 0 {
                    f.lines.push(',');
                }
                f.lines.push_str(k);
                f.lines.push_str("=\"");
                escape_label(&mut f.lines, v);
                f.lines.push('"');
            }
            f.lines.push('}');
        }
        f.lines.push(' ');
        push_value(&mut f.lines, value);
        f.lines.push('\n');
    }

    /// Adds an unlabelled gauge or counter.
    pub fn single(&mut self, name: &str, kind: Kind, help: &str, value: f64) {
        self.sample(name, kind, help, "", &[], value);
    }

    /// Writes every family.
    pub fn render(&self, out: &mut String) {
        for f in &self.families {
            out.push_str("# HELP ");
            out.push_str(&f.name);
            out.push(' ');
            escape_help(out, &f.help);
            out.push_str("\n# TYPE ");
            out.push_str(&f.name);
            out.push(' ');
            out.push_str(f.kind.word());
            out.push('\n');
            out.push_str(&f.lines);
        }
    }
}

/// Writes a sample value as the text format spells it (`+Inf`, `NaN`, shortest float).
fn push_value(out: &mut String, v: f64) {
    if v.is_nan() {
        out.push_str("NaN");
    } else if v.is_infinite() {
        out.push_str(if v > 0.0 { "+Inf" } else { "-Inf" });
    } else if v.fract() == 0.0 && v.abs() < 1e15 {
        // Integral values print without a fraction, like the Go client (`1`, not `1.0`).
        out.push_str(&(v as i64).to_string());
    } else {
        out.push_str(&v.to_string());
    }
}

/// Label values escape `\`, `"` and newlines (text format spec).
fn escape_label(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

/// HELP text escapes `\` and newlines.
fn escape_help(out: &mut String, v: &str) {
    for c in v.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn families_group_their_samples_under_one_header() {
        let mut e = Exposition::default();
        e.sample(
            "redis_db_keys",
            Kind::Gauge,
            "keys",
            "",
            &[("db", "db0")],
            3.0,
        );
        e.single("redis_up", Kind::Gauge, "up", 1.0);
        e.sample(
            "redis_db_keys",
            Kind::Gauge,
            "keys",
            "",
            &[("db", "d\"b\\1\n")],
            0.5,
        );
        let mut out = String::new();
        e.render(&mut out);
        assert_eq!(
            out,
            "# HELP redis_db_keys keys\n# TYPE redis_db_keys gauge\n\
             redis_db_keys{db=\"db0\"} 3\nredis_db_keys{db=\"d\\\"b\\\\1\\n\"} 0.5\n\
             # HELP redis_up up\n# TYPE redis_up gauge\nredis_up 1\n"
        );
    }

    #[test]
    fn special_values_use_the_format_spelling() {
        let mut s = String::new();
        push_value(&mut s, f64::INFINITY);
        s.push(' ');
        push_value(&mut s, f64::NAN);
        s.push(' ');
        push_value(&mut s, 1.795528616e9);
        s.push(' ');
        push_value(&mut s, 6.7e-5);
        assert_eq!(s, "+Inf NaN 1795528616 0.000067");
    }
}

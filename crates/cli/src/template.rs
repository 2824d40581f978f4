//! `--format` strings in the spirit of Docker's Go templates: `{{.Field}}`, `{{.A.B}}`,
//! `{{json .}}`, `{{json .Field}}`, `{{upper .F}}`, `{{lower .F}}`; a `table` prefix prints a
//! header row and aligns columns at tabs (as Docker's tabwriter does); `json` alone prints one
//! JSON object per line; `\t` and `\n` in the text are a tab and a newline.

use anyhow::{Result, bail};
use serde_json::Value;

#[derive(Clone, Debug, PartialEq)]
enum Func {
    Plain,
    Json,
    Upper,
    Lower,
}

#[derive(Clone, Debug, PartialEq)]
enum Part {
    Text(String),
    Field { path: Vec<String>, func: Func },
}

/// A parsed format.
#[derive(Clone, Debug)]
pub struct Format {
    table: bool,
    parts: Vec<Part>,
}

impl Format {
    /// Parses a format string.
    pub fn parse(spec: &str) -> Result<Self> {
        let (table, body) = match spec.strip_prefix("table") {
            Some(rest) if rest.is_empty() || rest.starts_with(char::is_whitespace) => {
                (true, rest.trim_start())
            }
            _ => (false, spec),
        };
        let body = if body.trim() == "json" {
            "{{json .}}"
        } else {
            body
        };
        let body = body.replace("\\t", "\t").replace("\\n", "\n");
        let mut parts = Vec::new();
        let mut rest = body.as_str();
        while let Some(open) = rest.find("{{") {
            if open > 0 {
                parts.push(Part::Text(rest[..open].to_string()));
            }
            let Some(close) = rest[open..].find("}}") else {
                bail!("--format {spec:?}: unclosed {{{{");
            };
            let action = rest[open + 2..open + close].trim();
            parts.push(parse_action(action, spec)?);
            rest = &rest[open + close + 2..];
        }
        if !rest.is_empty() {
            parts.push(Part::Text(rest.to_string()));
        }
        Ok(Format { table, parts })
    }

    /// Renders one value.
    fn line(&self, v: &Value) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Field { path, func } => {
                    let mut cur = v;
                    for k in path {
                        cur = cur.get(k).unwrap_or(&Value::Null);
                    }
                    match func {
                        Func::Json => serde_json::to_string(cur).unwrap_or_default(),
                        Func::Plain => go_print(cur),
                        Func::Upper => go_print(cur).to_uppercase(),
                        Func::Lower => go_print(cur).to_lowercase(),
                    }
                }
            })
            .collect()
    }

    /// The header row of a table: each field's name from `headers`, else upper-cased.
    fn header(&self, headers: &[(&str, &str)]) -> String {
        self.parts
            .iter()
            .map(|p| match p {
                Part::Text(t) => t.clone(),
                Part::Field { path, .. } => {
                    let name = path.join(".");
                    headers
                        .iter()
                        .find(|(k, _)| *k == name)
                        .map(|(_, h)| h.to_string())
                        .unwrap_or_else(|| name.to_uppercase())
                }
            })
            .collect()
    }

    /// Renders every row (with a header row for a table), aligned when a table.
    pub fn render(&self, rows: &[Value], headers: &[(&str, &str)]) -> String {
        let mut lines: Vec<String> = Vec::new();
        if self.table {
            lines.push(self.header(headers));
        }
        lines.extend(rows.iter().map(|r| self.line(r)));
        if self.table {
            align(&lines)
        } else {
            lines
                .into_iter()
                .map(|mut l| {
                    l.push('\n');
                    l
                })
                .collect()
        }
    }
}

fn parse_action(action: &str, spec: &str) -> Result<Part> {
    let (func, arg) = match action.split_once(char::is_whitespace) {
        Some((f, a)) => (f, a.trim()),
        None => ("", action),
    };
    let func = match func {
        "" => Func::Plain,
        "json" => Func::Json,
        "upper" => Func::Upper,
        "lower" => Func::Lower,
        other => {
            bail!("--format {spec:?}: function {other:?} is not supported (json, upper, lower)")
        }
    };
    let Some(path) = arg.strip_prefix('.') else {
        bail!("--format {spec:?}: {{{{{action}}}}} must name a field, like {{{{.ID}}}}");
    };
    let path = if path.is_empty() {
        vec![]
    } else {
        path.split('.').map(str::to_string).collect()
    };
    Ok(Part::Field { path, func })
}

/// How Go's templates print a value: strings bare, lists as `[a b]`, maps as `map[k:v]`.
fn go_print(v: &Value) -> String {
    match v {
        Value::Null => "<no value>".into(),
        Value::String(s) => s.clone(),
        Value::Bool(b) => b.to_string(),
        Value::Number(n) => n.to_string(),
        Value::Array(a) => format!("[{}]", a.iter().map(go_print).collect::<Vec<_>>().join(" ")),
        Value::Object(m) => format!(
            "map[{}]",
            m.iter()
                .map(|(k, v)| format!("{k}:{}", go_print(v)))
                .collect::<Vec<_>>()
                .join(" ")
        ),
    }
}

/// Aligns tab-separated cells as Docker's tabwriter (minimum width 10, padding 3).
fn align(lines: &[String]) -> String {
    let rows: Vec<Vec<&str>> = lines.iter().map(|l| l.split('\t').collect()).collect();
    let cols = rows.iter().map(Vec::len).max().unwrap_or(0);
    let mut widths = vec![0usize; cols];
    for r in &rows {
        for (i, c) in r.iter().enumerate() {
            if i + 1 < r.len() {
                widths[i] = widths[i].max(c.chars().count() + 3).max(10);
            }
        }
    }
    let mut out = String::new();
    for r in rows {
        let mut line = String::new();
        for (i, c) in r.iter().enumerate() {
            line.push_str(c);
            if i + 1 < r.len() {
                let pad = widths[i].saturating_sub(c.chars().count());
                line.extend(std::iter::repeat_n(' ', pad));
            }
        }
        out.push_str(line.trim_end());
        out.push('\n');
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fields_json_and_tables() {
        let rows = vec![
            json!({"ID": "abc", "Repository": "busybox", "Tag": "local", "Labels": {"a": "1"}}),
            json!({"ID": "def", "Repository": "<none>", "Tag": "<none>", "Labels": {}}),
        ];
        let f = Format::parse("{{.Repository}}:{{.Tag}}").unwrap();
        assert_eq!(f.render(&rows, &[]), "busybox:local\n<none>:<none>\n");
        let f = Format::parse("{{json .Labels}} {{upper .Tag}} {{.Labels}}").unwrap();
        assert_eq!(f.render(&rows[..1], &[]), "{\"a\":\"1\"} LOCAL map[a:1]\n");
        let f = Format::parse("json").unwrap();
        let line = f.render(&rows[..1], &[]);
        assert_eq!(serde_json::from_str::<Value>(line.trim()).unwrap(), rows[0]);
        let f = Format::parse("table {{.ID}}\\t{{.Repository}}").unwrap();
        assert_eq!(
            f.render(&rows, &[("ID", "IMAGE ID")]),
            "IMAGE ID   REPOSITORY\nabc        busybox\ndef        <none>\n"
        );
        assert!(Format::parse("{{.ID").is_err());
        assert!(Format::parse("{{printf .ID}}").is_err());
        assert!(Format::parse("{{ID}}").is_err());
    }
}

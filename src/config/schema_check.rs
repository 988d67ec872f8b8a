//! Structural checks of a parsed `release.toml` against the JSON Schema of the `Raw*` types.
//!
//! serde stops at the first problem; users want all of them at once. So before deserializing, the
//! spanned TOML tree is walked alongside the schema that schemars derives from `raw.rs`, and every
//! unknown key, missing key, wrong type and out-of-range integer is collected with its position.
//! The schema is the same one committed as `release.schema.json`, so the checks cannot drift from
//! the types. Only the schema features schemars emits for our types are understood.

use serde_json::{Map, Value};
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use super::source::{Source, join_key};
use super::validate::{Located, Sink, did_you_mean};

/// Walks `root` against `schema` (a schemars document with `$defs`).
pub(super) fn check(root: &Spanned<DeTable<'_>>, schema: &Value, source: &Source, sink: &mut Sink) {
    let walker = Walker {
        defs: schema.get("$defs").and_then(Value::as_object),
        source,
    };
    walker.table(root.get_ref(), schema, "", sink);
}

struct Walker<'a> {
    defs: Option<&'a Map<String, Value>>,
    source: &'a Source,
}

impl<'a> Walker<'a> {
    /// Follows `$ref` to the definition it names.
    fn resolve(&self, schema: &'a Value) -> &'a Value {
        let mut schema = schema;
        for _ in 0..16 {
            let Some(target) = schema.get("$ref").and_then(Value::as_str) else {
                return schema;
            };
            let name = target.trim_start_matches("#/$defs/");
            match self.defs.and_then(|defs| defs.get(name)) {
                Some(next) => schema = next,
                None => return schema,
            }
        }
        schema
    }

    fn value(&self, value: &Spanned<DeValue<'_>>, schema: &'a Value, path: &str, sink: &mut Sink) {
        let schema = self.resolve(schema);
        if schema == &Value::Bool(true) || schema.as_object().is_some_and(Map::is_empty) {
            return;
        }
        if let Some(alternatives) = schema
            .get("anyOf")
            .or_else(|| schema.get("oneOf"))
            .and_then(Value::as_array)
        {
            self.alternatives(value, alternatives, path, sink);
            return;
        }
        if let Some(allowed) = allowed_strings(schema) {
            self.one_of(value, &allowed, path, sink);
            return;
        }
        let found = kind_of(value.get_ref());
        let expected = types_of(schema);
        if !expected.is_empty() && !expected.iter().any(|t| accepts(t, found)) {
            sink.push(Located::at_value(
                self.source,
                path,
                format!(
                    "`{path}` must be {}, found {}",
                    describe_types(&expected),
                    describe_value(value.get_ref())
                ),
            ));
            return;
        }
        match value.get_ref() {
            DeValue::Table(table) => self.table(table, schema, path, sink),
            DeValue::Array(items) => {
                if let Some(item_schema) = schema.get("items") {
                    for (i, item) in items.iter().enumerate() {
                        self.value(item, item_schema, &format!("{path}[{i}]"), sink);
                    }
                }
            }
            DeValue::Integer(int) => {
                let Some(number) = i128::from_str_radix(int.as_str(), int.radix()).ok() else {
                    sink.push(Located::at_value(
                        self.source,
                        path,
                        format!("`{path}` is not a valid integer"),
                    ));
                    return;
                };
                let (low, high) = integer_range(schema);
                if number < low || number > high {
                    sink.push(Located::at_value(
                        self.source,
                        path,
                        format!("`{path}` must be within {low}..={high}, found `{number}`"),
                    ));
                }
            }
            _ => {}
        }
    }

    fn table(&self, table: &DeTable<'_>, schema: &'a Value, path: &str, sink: &mut Sink) {
        let schema = self.resolve(schema);
        let properties = schema.get("properties").and_then(Value::as_object);
        let additional = schema.get("additionalProperties");
        for (key, value) in table {
            let key = key.get_ref().as_ref();
            let child = join_key(path, key);
            if let Some(property) = properties.and_then(|p| p.get(key)) {
                self.value(value, property, &child, sink);
            } else if let Some(extra) = additional.filter(|a| *a != &Value::Bool(false)) {
                self.value(value, extra, &child, sink);
            } else {
                let known: Vec<&str> = properties
                    .map(|p| p.keys().map(String::as_str).collect())
                    .unwrap_or_default();
                let mut problem = Located::at_key(
                    self.source,
                    &child,
                    format!("unknown key `{key}` in {}", describe_table(path)),
                );
                problem.hint = Some(match did_you_mean(key, &known) {
                    Some(guess) => format!("did you mean `{guess}`?"),
                    None if known.is_empty() => "remove it".to_owned(),
                    None => format!("allowed keys here: {}", quote_list(&known)),
                });
                sink.push(problem);
            }
        }
        if let Some(required) = schema.get("required").and_then(Value::as_array) {
            for name in required.iter().filter_map(Value::as_str) {
                if !table.iter().any(|(key, _)| key.get_ref().as_ref() == name) {
                    sink.push(Located::at_value(
                        self.source,
                        path,
                        format!("missing required key `{name}` in {}", describe_table(path)),
                    ));
                }
            }
        }
    }

    fn alternatives(
        &self,
        value: &Spanned<DeValue<'_>>,
        alternatives: &'a [Value],
        path: &str,
        sink: &mut Sink,
    ) {
        let options: Vec<&Value> = alternatives
            .iter()
            .map(|alt| self.resolve(alt))
            .filter(|alt| alt.get("type").and_then(Value::as_str) != Some("null"))
            .collect();
        let consts: Option<Vec<String>> = options
            .iter()
            .map(|alt| allowed_strings(alt))
            .collect::<Option<Vec<_>>>()
            .map(|lists| lists.concat());
        if let Some(allowed) = consts {
            self.one_of(value, &allowed, path, sink);
            return;
        }
        let mut best: Option<Sink> = None;
        for option in &options {
            let mut attempt = Sink::default();
            self.value(value, option, path, &mut attempt);
            if attempt.is_empty() {
                return;
            }
            if best.as_ref().is_none_or(|b| attempt.len() < b.len()) {
                best = Some(attempt);
            }
        }
        if let Some(best) = best {
            sink.extend(best);
        }
    }

    fn one_of(
        &self,
        value: &Spanned<DeValue<'_>>,
        allowed: &[String],
        path: &str,
        sink: &mut Sink,
    ) {
        let names: Vec<&str> = allowed.iter().map(String::as_str).collect();
        if let DeValue::String(found) = value.get_ref() {
            if names.contains(&found.as_ref()) {
                return;
            }
            let mut problem = Located::at_value(
                self.source,
                path,
                format!(
                    "`{path}` must be one of {}, found `{found}`",
                    quote_list(&names)
                ),
            );
            problem.hint = did_you_mean(found, &names).map(|g| format!("did you mean `{g}`?"));
            sink.push(problem);
        } else {
            sink.push(Located::at_value(
                self.source,
                path,
                format!(
                    "`{path}` must be one of {}, found {}",
                    quote_list(&names),
                    describe_value(value.get_ref())
                ),
            ));
        }
    }
}

/// The string values a schema allows, when it is an enum of strings.
fn allowed_strings(schema: &Value) -> Option<Vec<String>> {
    if let Some(constant) = schema.get("const").and_then(Value::as_str) {
        return Some(vec![constant.to_owned()]);
    }
    let values = schema.get("enum")?.as_array()?;
    values
        .iter()
        .map(|v| v.as_str().map(str::to_owned))
        .collect()
}

fn types_of(schema: &Value) -> Vec<&str> {
    match schema.get("type") {
        Some(Value::String(t)) => vec![t.as_str()],
        Some(Value::Array(ts)) => ts.iter().filter_map(Value::as_str).collect(),
        _ => Vec::new(),
    }
    .into_iter()
    .filter(|t| *t != "null")
    .collect()
}

fn accepts(expected: &str, found: &str) -> bool {
    expected == found || (expected == "number" && found == "integer")
}

fn kind_of(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "string",
        DeValue::Integer(_) => "integer",
        DeValue::Float(_) => "number",
        DeValue::Boolean(_) => "boolean",
        DeValue::Datetime(_) => "datetime",
        DeValue::Array(_) => "array",
        DeValue::Table(_) => "object",
    }
}

fn describe_types(types: &[&str]) -> String {
    let words: Vec<&str> = types
        .iter()
        .map(|t| match *t {
            "string" => "a string",
            "integer" => "an integer",
            "number" => "a number",
            "boolean" => "`true` or `false`",
            "array" => "an array",
            "object" => "a table",
            other => other,
        })
        .collect();
    words.join(" or ")
}

fn describe_value(value: &DeValue<'_>) -> String {
    match value {
        DeValue::String(s) => format!("the string `\"{s}\"`"),
        DeValue::Integer(i) => format!("the integer `{i}`"),
        DeValue::Float(f) => format!("the number `{f}`"),
        DeValue::Boolean(b) => format!("`{b}`"),
        DeValue::Datetime(d) => format!("the date `{d}`"),
        DeValue::Array(_) => "an array".to_owned(),
        DeValue::Table(_) => "a table".to_owned(),
    }
}

fn describe_table(path: &str) -> String {
    if path.is_empty() {
        "the top level".to_owned()
    } else {
        format!("`{path}`")
    }
}

fn quote_list(names: &[&str]) -> String {
    names
        .iter()
        .map(|n| format!("`{n}`"))
        .collect::<Vec<_>>()
        .join(", ")
}

/// The range an integer must lie in, from the schema's `format` and `minimum`/`maximum`.
fn integer_range(schema: &Value) -> (i128, i128) {
    let (mut low, mut high) = match schema.get("format").and_then(Value::as_str) {
        Some("uint8") => (0, i128::from(u8::MAX)),
        Some("uint16") => (0, i128::from(u16::MAX)),
        Some("uint32") => (0, i128::from(u32::MAX)),
        Some("uint64" | "uint") => (0, i128::from(u64::MAX)),
        Some("int32") => (i128::from(i32::MIN), i128::from(i32::MAX)),
        _ => (i128::from(i64::MIN), i128::from(i64::MAX)),
    };
    if let Some(min) = schema.get("minimum").and_then(Value::as_i64) {
        low = low.max(i128::from(min));
    }
    if let Some(max) = schema.get("maximum").and_then(Value::as_i64) {
        high = high.min(i128::from(max));
    }
    (low, high)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn problems(text: &str) -> Vec<String> {
        let root = DeTable::parse(text).expect("valid toml");
        let source = Source::index(text, &root);
        let mut sink = Sink::default();
        check(&root, &crate::config::schema(), &source, &mut sink);
        sink.into_sorted()
            .into_iter()
            .map(|p| format!("{}:{}: {}", p.line, p.column, p.message))
            .collect()
    }

    #[test]
    fn enum_values_are_checked_through_optional_refs() {
        let found =
            problems("[model]\nname = \"x\"\nhub-repo = \"a/b\"\n[version]\nfrom = \"tga\"\n");
        assert_eq!(
            found,
            ["5:8: `version.from` must be one of `tag`, `config`, found `tga`"]
        );
    }
}

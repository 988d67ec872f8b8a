//! The text of a configuration file and where each key and value sits in it.
//!
//! Validation speaks in key paths (`gate[1].min`); this module turns them into `line:col`
//! positions so every problem points at the exact spot the user must edit.

use std::collections::HashMap;
use std::ops::Range;

use toml::Spanned;
use toml::de::{DeTable, DeValue};

/// A parsed document plus an index from key path to source span.
#[derive(Debug)]
pub struct Source {
    text: String,
    /// Key path -> (span of the key, span of the value). The root has path `""`.
    spans: HashMap<String, (Range<usize>, Range<usize>)>,
}

impl Source {
    /// Indexes every key and array element of a parsed document.
    pub fn index(text: &str, root: &Spanned<DeTable<'_>>) -> Self {
        let mut spans = HashMap::new();
        let root_span = root.span();
        spans.insert(String::new(), (root_span.clone(), root_span));
        index_table(root.get_ref(), "", &mut spans);
        Self {
            text: text.to_owned(),
            spans,
        }
    }

    /// The `(line, column)` of a key path's value, 1-based, falling back to the closest parent.
    pub fn value_position(&self, path: &str) -> (usize, usize) {
        self.position_of(path, |(_, value)| value.start)
    }

    /// The `(line, column)` of a key path's key, 1-based, falling back to the closest parent.
    pub fn key_position(&self, path: &str) -> (usize, usize) {
        self.position_of(path, |(key, _)| key.start)
    }

    fn position_of(
        &self,
        path: &str,
        pick: impl Fn(&(Range<usize>, Range<usize>)) -> usize,
    ) -> (usize, usize) {
        let mut path = path;
        loop {
            if let Some(spans) = self.spans.get(path) {
                return self.line_col(pick(spans));
            }
            match parent_path(path) {
                Some(parent) => path = parent,
                None => return (1, 1),
            }
        }
    }

    /// 1-based line and column (in characters) of a byte offset; an offset inside a character
    /// counts as that character's.
    pub fn line_col(&self, offset: usize) -> (usize, usize) {
        let offset = self.text.floor_char_boundary(offset);
        let before = &self.text[..offset];
        let line = before.matches('\n').count() + 1;
        let line_start = before.rfind('\n').map_or(0, |i| i + 1);
        let column = before[line_start..].chars().count() + 1;
        (line, column)
    }
}

/// `a.b[2].c` -> `a.b[2]` -> `a.b` -> `a` -> `` -> none.
fn parent_path(path: &str) -> Option<&str> {
    if path.is_empty() {
        return None;
    }
    let cut = path.rfind(['.', '[']).unwrap_or(0);
    Some(&path[..cut])
}

/// Joins a key onto a path, quoting keys that are not plain identifiers.
pub fn join_key(parent: &str, key: &str) -> String {
    let plain = !key.is_empty()
        && key
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
    let key = if plain {
        key.to_owned()
    } else {
        format!("\"{key}\"")
    };
    if parent.is_empty() {
        key
    } else {
        format!("{parent}.{key}")
    }
}

fn index_table(
    table: &DeTable<'_>,
    path: &str,
    spans: &mut HashMap<String, (Range<usize>, Range<usize>)>,
) {
    for (key, value) in table {
        let child = join_key(path, key.get_ref());
        spans.insert(child.clone(), (key.span(), value.span()));
        index_value(value, &child, spans);
    }
}

fn index_value(
    value: &Spanned<DeValue<'_>>,
    path: &str,
    spans: &mut HashMap<String, (Range<usize>, Range<usize>)>,
) {
    match value.get_ref() {
        DeValue::Table(table) => index_table(table, path, spans),
        DeValue::Array(items) => {
            for (i, item) in items.iter().enumerate() {
                let child = format!("{path}[{i}]");
                spans.insert(child.clone(), (item.span(), item.span()));
                index_value(item, &child, spans);
            }
        }
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn positions_follow_lines_and_fall_back_to_parents() {
        let text = "[model]\nname = \"x\"\n\n[[gate]]\nmetric = \"fid\"\nmax = 1\n";
        let root = DeTable::parse(text).expect("valid toml");
        let source = Source::index(text, &root);
        assert_eq!(source.value_position("model.name"), (2, 8));
        assert_eq!(source.key_position("model.name"), (2, 1));
        assert_eq!(source.value_position("gate[0].max"), (6, 7));
        // An absent key points at its closest parent that exists.
        assert_eq!(
            source.key_position("gate[0].min"),
            source.value_position("gate[0]")
        );
    }

    #[test]
    fn an_offset_inside_a_character_is_that_characters_column() {
        let text = "[model]\nname = \"猫\"\n";
        let root = DeTable::parse(text).expect("valid toml");
        let source = Source::index(text, &root);
        let cat = text.find('猫').expect("cat");
        for offset in cat..cat + 3 {
            assert_eq!(source.line_col(offset), (2, 9));
        }
        assert_eq!(source.line_col(cat + 3), (2, 10));
        assert_eq!(source.line_col(usize::MAX), (3, 1));
    }

    #[test]
    fn odd_keys_are_quoted() {
        assert_eq!(join_key("metrics", "a.b"), "metrics.\"a.b\"");
        assert_eq!(join_key("", "model"), "model");
    }
}

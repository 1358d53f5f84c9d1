//! Source positions of the values in a manifest, by field path.
//!
//! serde_yaml reports positions only for errors it raises itself. Errors found afterwards (a
//! dangling link, a duplicate name) know the field path of the offending value, so this module
//! walks the document once with an event parser and records where each path starts.

use std::collections::HashMap;
use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;

/// 1-based line and column of every node, keyed by field path (`spec.components[0].name`).
///
/// A mapping value is recorded at its key, because that is the line a reader looks for; a
/// sequence item at the item itself.
#[derive(Debug, Default)]
pub(crate) struct Positions {
    by_path: HashMap<String, (usize, usize)>,
}

impl Positions {
    /// Indexes `source`. A document the event parser cannot read yields an empty index, so
    /// errors are still reported, only without a line.
    pub(crate) fn index(source: &str) -> Self {
        let mut walker = Walker::default();
        match Parser::new_from_str(source).load(&mut walker, false) {
            Ok(()) => Self {
                by_path: walker.by_path,
            },
            Err(_) => Self::default(),
        }
    }

    /// The line and column of `path`, or of its nearest ancestor the index knows (a value
    /// behind a YAML alias, say).
    pub(crate) fn find(&self, path: &str) -> Option<(usize, usize)> {
        let mut path = path;
        loop {
            if let Some(pos) = self.by_path.get(path) {
                return Some(*pos);
            }
            if path.is_empty() {
                return None;
            }
            path = parent(path);
        }
    }

    /// The line and column of exactly `path`, if the index has it.
    pub(crate) fn exact(&self, path: &str) -> Option<(usize, usize)> {
        self.by_path.get(path).copied()
    }

    /// Just the line of `path` (see [`Positions::find`]).
    pub(crate) fn line(&self, path: &str) -> Option<usize> {
        self.find(path).map(|(line, _)| line)
    }
}

/// `a.b[2]` → `a.b`, `a.b` → `a`, `a` → ``.
fn parent(path: &str) -> &str {
    match path.rfind(['.', '[']) {
        Some(i) => &path[..i],
        None => "",
    }
}

enum Frame {
    Map {
        path: String,
        key: Option<(String, Marker)>,
        /// Set for a mapping that is a sequence item: the parser marks a block mapping after
        /// its first key, so the item's position is taken from that key instead.
        item_position_pending: bool,
    },
    Seq {
        path: String,
        next: usize,
    },
}

#[derive(Default)]
struct Walker {
    stack: Vec<Frame>,
    by_path: HashMap<String, (usize, usize)>,
    /// Depth inside a complex (non-scalar) mapping key, whose contents have no field path.
    in_complex_key: usize,
}

impl Walker {
    /// Records a node that starts at `mark` and returns its path, or `None` when the node is
    /// a mapping key rather than a value.
    fn enter_node(&mut self, mark: Marker, key_text: Option<&str>) -> Option<String> {
        let record = |by_path: &mut HashMap<_, _>, path: &String, m: Marker| {
            // Marker columns are 0-based in practice; report 1-based like serde_yaml.
            by_path
                .entry(path.clone())
                .or_insert((m.line(), m.col() + 1));
        };
        match self.stack.last_mut() {
            None => {
                let path = String::new();
                record(&mut self.by_path, &path, mark);
                Some(path)
            }
            Some(Frame::Seq { path, next }) => {
                let child = format!("{path}[{next}]");
                *next += 1;
                record(&mut self.by_path, &child, mark);
                Some(child)
            }
            Some(Frame::Map {
                path,
                key,
                item_position_pending,
            }) => match key.take() {
                None => {
                    if std::mem::take(item_position_pending) {
                        self.by_path
                            .insert(path.clone(), (mark.line(), mark.col() + 1));
                    }
                    // A complex key gets a placeholder so that its value is still consumed
                    // as a value.
                    *key = Some((key_text.unwrap_or("?").to_owned(), mark));
                    None
                }
                Some((k, key_mark)) => {
                    let child = if path.is_empty() {
                        k
                    } else {
                        format!("{path}.{k}")
                    };
                    record(&mut self.by_path, &child, key_mark);
                    Some(child)
                }
            },
        }
    }
}

impl MarkedEventReceiver for Walker {
    fn on_event(&mut self, ev: Event, mark: Marker) {
        if self.in_complex_key > 0 {
            match ev {
                Event::MappingStart(..) | Event::SequenceStart(..) => self.in_complex_key += 1,
                Event::MappingEnd | Event::SequenceEnd => self.in_complex_key -= 1,
                _ => {}
            }
            return;
        }
        match ev {
            Event::Scalar(text, ..) => {
                self.enter_node(mark, Some(&text));
            }
            Event::Alias(_) => {
                self.enter_node(mark, Some("?"));
            }
            Event::MappingStart(..) | Event::SequenceStart(..) => {
                let is_map = matches!(ev, Event::MappingStart(..));
                let is_item = matches!(self.stack.last(), Some(Frame::Seq { .. }));
                match self.enter_node(mark, None) {
                    Some(path) if is_map => self.stack.push(Frame::Map {
                        path,
                        key: None,
                        item_position_pending: is_item,
                    }),
                    Some(path) => self.stack.push(Frame::Seq { path, next: 0 }),
                    None => self.in_complex_key = 1,
                }
            }
            Event::MappingEnd | Event::SequenceEnd => {
                self.stack.pop();
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const DOC: &str = "\
apiVersion: core.oam.dev/v1beta1
spec:
  components:
    - name: a
      traits:
        - type: link
          properties:
            target:
              name: b
    - name: b
      properties: {image: 'x', config: [{name: c}]}
";

    #[test]
    fn finds_keys_and_items() {
        let p = Positions::index(DOC);
        assert_eq!(p.find("apiVersion"), Some((1, 1)));
        assert_eq!(p.find("spec.components"), Some((3, 3)));
        assert_eq!(p.find("spec.components[0]"), Some((4, 7)));
        assert_eq!(p.find("spec.components[0].traits[0]"), Some((6, 11)));
        assert_eq!(
            p.find("spec.components[0].traits[0].properties.target.name"),
            Some((9, 15))
        );
        assert_eq!(p.line("spec.components[1].name"), Some(10));
        assert_eq!(
            p.line("spec.components[1].properties.config[0].name"),
            Some(11)
        );
    }

    #[test]
    fn falls_back_to_the_nearest_ancestor() {
        let p = Positions::index(DOC);
        assert_eq!(p.line("spec.components[1].properties.secrets[3]"), Some(11));
        assert_eq!(p.line("nothing.here"), Some(1));
    }

    #[test]
    fn indexes_json() {
        let p = Positions::index(
            "{\n  \"spec\": {\n    \"components\": [\n      {\"name\": \"a\"}\n    ]\n  }\n}\n",
        );
        assert_eq!(p.line("spec.components[0].name"), Some(4));
    }

    #[test]
    fn survives_complex_keys_and_bad_input() {
        let p = Positions::index("? [a, b]\n: 1\nc: 2\n");
        assert_eq!(p.line("c"), Some(3));
        assert!(Positions::index("a: [").find("a").is_none());
    }
}

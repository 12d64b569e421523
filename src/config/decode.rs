//! YAML text → raw structs, and the [`ConfigError`] a bad file gives.
//!
//! [`decode`] runs serde-saphyr under `serde_path_to_error`, so that an error
//! names the file, the line and column, and the key path (`a.b[0].c`). The
//! helpers here ([`OrderedMap`], [`parse_str`]) are what the raw structs and
//! leaf types decode with. This module knows no config key: the structs it
//! fills are in `raw`, the rules that span keys in `validate`.

use std::cell::RefCell;
use std::fmt;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};
use serde_saphyr::MessageFormatter;

/// A config file that could not be loaded. The message names the file and,
/// for content errors, the line, column and key path.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// The file could not be read. (The OS error is in the message, not a
    /// `source`: printing the chain would say it twice.)
    #[error("cannot read {what} {file}: {error}")]
    Read {
        /// Which file: `config file`, `web config file`.
        what: &'static str,
        /// The file.
        file: String,
        /// What the OS said.
        error: std::io::Error,
    },
    /// The file is larger than [`super::MAX_CONFIG_BYTES`].
    #[error("config file {file} is {bytes} bytes: more than the 16 MiB a config may be")]
    TooLarge {
        /// The config file.
        file: String,
        /// Its size.
        bytes: u64,
    },
    /// The file is not UTF-8 text.
    #[error(
        "config file {file} is not UTF-8 text (invalid byte at offset {offset}): is it the right file?"
    )]
    NotText {
        /// The config file.
        file: String,
        /// Offset of the first invalid byte.
        offset: usize,
    },
    /// The content is invalid: `file:line:column: key.path: message` (the
    /// position is left out when the problem is a missing key).
    #[error("{}", invalid_message(file, *line, *column, path, message))]
    Invalid {
        /// The config file.
        file: String,
        /// 1-based line (0 when unknown).
        line: usize,
        /// 1-based column (0 when unknown).
        column: usize,
        /// Key path, e.g. `services.whatsapp.tls[1].timeout`.
        path: String,
        /// What rule was broken.
        message: String,
    },
}

fn invalid_message(file: &str, line: usize, column: usize, path: &str, message: &str) -> String {
    let at = if line == 0 {
        file.to_string()
    } else {
        format!("{file}:{line}:{column}")
    };
    if path.is_empty() {
        format!("{at}: {message}")
    } else {
        format!("{at}: {path}: {message}")
    }
}

/// Decodes YAML `text` read from `file` into `T`.
pub(super) fn decode<T: serde::de::DeserializeOwned>(
    text: &str,
    file: &str,
) -> Result<T, ConfigError> {
    let path = RefCell::new(String::new());
    let res = serde_saphyr::with_deserializer_from_str(text, |de| {
        serde_path_to_error::deserialize(de).map_err(|e| {
            *path.borrow_mut() = format_path(e.path());
            e.into_inner()
        })
    });
    res.map_err(|e| {
        let (line, column) = e
            .location()
            .map(|l| (l.line() as usize, l.column() as usize))
            .unwrap_or((0, 0));
        let mut path = path.into_inner();
        let said = match e.without_snippet() {
            serde_saphyr::Error::DuplicateMappingKey { key: Some(key), .. } => {
                // serde_path_to_error ends the path with `?` here: name the key.
                path = match path.strip_suffix('?') {
                    Some(parent) => format!("{parent}{key}"),
                    None => path,
                };
                format!("duplicate key `{key}`")
            }
            other => serde_saphyr::DefaultMessageFormatter
                .format_message(other)
                .into_owned(),
        };
        // A key the parser could not name (`?`) is left out of the path.
        let path = path
            .split('.')
            .filter(|s| *s != "?")
            .collect::<Vec<_>>()
            .join(".");
        let source_line = line.checked_sub(1).and_then(|l| text.lines().nth(l));
        let said = super::words::explain(&path, &said, source_line);
        // The message may quote the file's text: keep it on one line.
        let mut message = String::new();
        for c in said.chars() {
            if c.is_control() {
                message.extend(c.escape_default());
            } else {
                message.push(c);
            }
        }
        ConfigError::Invalid {
            file: file.to_string(),
            line,
            column,
            path,
            message,
        }
    })
}

/// Formats a serde path as `a.b[0].c`, dropping the `value` segment that
/// [`serde_saphyr::Spanned`] inserts under a service, resolver, module or
/// label, the `regime:` and `locate:` blocks, the web config's two blocks,
/// each list entry and a spanned leaf value.
fn format_path(path: &serde_path_to_error::Path) -> String {
    use serde_path_to_error::Segment;
    let segs: Vec<&Segment> = path.iter().collect();
    let mut out = String::new();
    for (i, seg) in segs.iter().enumerate() {
        let name = match seg {
            Segment::Seq { index } => {
                out.push_str(&format!("[{index}]"));
                continue;
            }
            Segment::Map { key } => {
                let spanned_value = key == "value"
                    && (matches!(segs.get(i.wrapping_sub(1)), Some(Segment::Seq { .. }))
                        // A Spanned leaf value (no key is named `value`; a
                        // label may be, directly under `labels`).
                        || (i + 1 == segs.len()
                            && i >= 1
                            && !matches!(segs[i - 1], Segment::Map { key } if key == "labels"))
                        || (i == 2
                            && matches!(segs[0], Segment::Map { key } if matches!(key.as_str(), "services" | "resolvers" | "modules" | "labels")))
                        // A spanned `locate:` block, and the regime's
                        // spanned `foreign:` list.
                        || (i >= 1 && matches!(segs[i - 1], Segment::Map { key } if key == "locate"))
                        // `remote_write:` and its spanned `basic_auth:`
                        // and `tls:` blocks.
                        || (i == 1 && matches!(segs[0], Segment::Map { key } if key == "remote_write"))
                        || (i == 3 && matches!(segs[0], Segment::Map { key } if key == "remote_write")
                            && matches!(segs[2], Segment::Map { key } if matches!(key.as_str(), "basic_auth" | "tls")))
                        || (i >= 1 && matches!(segs[0], Segment::Map { key } if key == "regime")
                            && matches!(segs[i - 1], Segment::Map { key } if key == "foreign"))
                        // Spanned blocks: `regime:`, and the web config's.
                        || (i == 1 && matches!(segs[0], Segment::Map { key } if matches!(key.as_str(), "regime" | "tls_server_config" | "http_server_config"))));
                if spanned_value {
                    continue;
                }
                key.as_str()
            }
            Segment::Enum { variant } => variant.as_str(),
            Segment::Unknown => "?",
        };
        if !out.is_empty() {
            out.push('.');
        }
        out.push_str(name);
    }
    out
}

/// A YAML mapping decoded in file order (keys are unique: serde-saphyr
/// rejects duplicates).
#[derive(Debug)]
pub(super) struct OrderedMap<V>(pub Vec<(String, V)>);

impl<'de, V: Deserialize<'de>> Deserialize<'de> for OrderedMap<V> {
    fn deserialize<D: Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct V2<V>(std::marker::PhantomData<V>);
        impl<'de, V: Deserialize<'de>> Visitor<'de> for V2<V> {
            type Value = OrderedMap<V>;
            fn expecting(&self, f: &mut fmt::Formatter) -> fmt::Result {
                f.write_str("a mapping")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut m: A) -> Result<Self::Value, A::Error> {
                let mut out = Vec::new();
                while let Some((k, v)) = m.next_entry::<String, V>()? {
                    out.push((k, v));
                }
                Ok(OrderedMap(out))
            }
        }
        d.deserialize_map(V2(std::marker::PhantomData))
    }
}

impl<V> Default for OrderedMap<V> {
    fn default() -> Self {
        OrderedMap(Vec::new())
    }
}

/// Deserializes a scalar string and validates it with `parse`; the error
/// message then carries serde-saphyr's location.
pub(super) fn parse_str<'de, D, T>(
    d: D,
    parse: impl FnOnce(&str) -> Result<T, String>,
) -> Result<T, D::Error>
where
    D: Deserializer<'de>,
{
    let s = String::deserialize(d)?;
    parse(&s).map_err(de::Error::custom)
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    /// The key path of an error keeps every key the user wrote, even one
    /// named `value` (the word serde-saphyr's spans put in the path), and
    /// only those.
    #[test]
    fn a_key_named_value_stays_in_the_path() {
        let rw = "remote_write:\n  url: \"http://127.0.0.1:9/\"\n";
        for (yaml, want) in [
            (
                "value: 1\n".to_string(),
                "1:1: value: unknown field `value`",
            ),
            (
                "services:\n  value:\n    tcpp: []\n".to_string(),
                "3:5: services.value.tcpp: unknown field `tcpp`",
            ),
            (
                format!("{rw}  headers: {{ value: [1] }}\n"),
                "3:21: remote_write.headers.value: ",
            ),
            (
                format!("{rw}  tls: {{ insecure: [1] }}\n"),
                "3:20: remote_write.tls.insecure: ",
            ),
        ] {
            let e = Config::parse(&yaml, Path::new("t.yaml"))
                .unwrap_err()
                .to_string();
            assert!(e.starts_with(&format!("t.yaml:{want}")), "{yaml}: {e}");
        }
    }
}

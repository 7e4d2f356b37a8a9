//! [`SourceMap`]: one parsed map (regular or index map with `sections`) and what a frame's
//! runtime position maps to in it.

use sourcemap::DecodedMap;

/// Lines of source shown before and after a frame's line.
pub const CONTEXT_LINES: usize = 5;
/// A source line longer than this (in characters) is cut to this many around the column.
pub const MAX_CONTEXT_LINE_CHARS: usize = 200;

/// Why a map could not be parsed: the parser's reason, as the upload API's 400 says it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct MapError(pub String);

/// What an upload learns from parsing a map.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MapSummary {
    /// Original sources it names (over all sections of an index map).
    pub sources: u32,
    /// Whether every source has its content (`sourcesContent`).
    pub sources_content: bool,
}

/// A parsed source map.
#[derive(Debug)]
pub struct SourceMap {
    decoded: DecodedMap,
    /// Roughly the memory it holds, for the cache.
    size: usize,
}

/// Where a runtime position lies in the original source.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Mapped {
    /// The original file (`sourceRoot` applied).
    pub source: String,
    /// 1-based line.
    pub line: u32,
    /// 1-based column.
    pub column: u32,
    /// The original name of the identifier at the position (`names`), if the map has one.
    pub name: Option<String>,
    /// Whether the token starts on the line asked for (a name from another line says
    /// nothing about this one).
    pub same_line: bool,
    /// Up to [`CONTEXT_LINES`] lines before the line.
    pub pre_context: Vec<String>,
    /// The line itself, when the map has the source's content.
    pub context_line: Option<String>,
    /// Up to [`CONTEXT_LINES`] lines after it.
    pub post_context: Vec<String>,
}

impl SourceMap {
    /// Parses a map (JSON, optionally after a `)]}'` header). An index map's sections must
    /// embed their maps (`map`), not refer to them by `url`.
    pub fn parse(bytes: &[u8]) -> Result<SourceMap, MapError> {
        let decoded = sourcemap::decode_slice(bytes).map_err(|e| MapError(e.to_string()))?;
        if let DecodedMap::Index(index) = &decoded {
            check_sections(index)?;
        }
        let tokens = token_count(&decoded);
        Ok(SourceMap {
            decoded,
            size: bytes.len().saturating_add(tokens.saturating_mul(24)),
        })
    }

    /// Roughly the bytes of memory it holds.
    pub fn size(&self) -> usize {
        self.size
    }

    /// Its sources and whether they have content.
    pub fn summary(&self) -> MapSummary {
        let mut summary = MapSummary {
            sources: 0,
            sources_content: true,
        };
        visit_regular(&self.decoded, &mut |sm| {
            summary.sources = summary.sources.saturating_add(sm.get_source_count());
            summary.sources_content &=
                (0..sm.get_source_count()).all(|i| sm.get_source_contents(i).is_some());
        });
        summary.sources_content &= summary.sources > 0;
        summary
    }

    /// What the 1-based runtime `line` and `column` map to, `None` when the map has no
    /// token there or the token names no source.
    pub fn lookup(&self, line: u32, column: u32) -> Option<Mapped> {
        let (line0, col0) = (line.checked_sub(1)?, column.checked_sub(1)?);
        let token = self.decoded.lookup_token(line0, col0)?;
        let source = token.get_source()?;
        let (src_line, src_col) = (token.get_src_line(), token.get_src_col());
        let mut mapped = Mapped {
            source: source.to_owned(),
            line: src_line.saturating_add(1),
            column: src_col.saturating_add(1),
            name: token.get_name().map(str::to_owned),
            same_line: token.get_dst_line() == line0,
            ..Mapped::default()
        };
        if let Some(view) = token.get_source_view() {
            let at = src_line as usize;
            let first = at.saturating_sub(CONTEXT_LINES);
            mapped.pre_context = (first..at)
                .filter_map(|i| view.get_line(i as u32))
                .map(|l| trim_line(l, 0))
                .collect();
            mapped.context_line = view.get_line(src_line).map(|l| trim_line(l, src_col));
            if mapped.context_line.is_some() {
                mapped.post_context = (at + 1..=at + CONTEXT_LINES)
                    .map_while(|i| view.get_line(i as u32))
                    .map(|l| trim_line(l, 0))
                    .collect();
            }
        }
        Some(mapped)
    }
}

/// `line` without its line ending, at most [`MAX_CONTEXT_LINE_CHARS`] characters: a longer
/// one is cut to a window around `column` (0-based), with `…` where it was cut.
fn trim_line(line: &str, column: u32) -> String {
    let line = line.trim_end_matches(['\n', '\r']);
    let count = line.chars().count();
    if count <= MAX_CONTEXT_LINE_CHARS {
        return line.to_owned();
    }
    let half = MAX_CONTEXT_LINE_CHARS / 2;
    let start = (column as usize)
        .saturating_sub(half)
        .min(count - MAX_CONTEXT_LINE_CHARS);
    let window: String = line
        .chars()
        .skip(start)
        .take(MAX_CONTEXT_LINE_CHARS)
        .collect();
    let head = if start > 0 { "…" } else { "" };
    let tail = if start + MAX_CONTEXT_LINE_CHARS < count {
        "…"
    } else {
        ""
    };
    format!("{head}{window}{tail}")
}

fn check_sections(index: &sourcemap::SourceMapIndex) -> Result<(), MapError> {
    for (i, section) in index.sections().enumerate() {
        match section.get_sourcemap() {
            Some(DecodedMap::Index(inner)) => check_sections(inner)?,
            Some(_) => {}
            None => {
                return Err(MapError(format!(
                    "section {i} of the index map refers to {:?} instead of embedding its \
                     map: upload a map with every section's \"map\" inline",
                    section.get_url().unwrap_or("")
                )));
            }
        }
    }
    Ok(())
}

/// Calls `f` with every regular map inside `decoded` (itself, or each section's).
fn visit_regular(decoded: &DecodedMap, f: &mut dyn FnMut(&sourcemap::SourceMap)) {
    match decoded {
        DecodedMap::Regular(sm) => f(sm),
        DecodedMap::Hermes(h) => f(h),
        DecodedMap::Index(index) => {
            for section in index.sections() {
                if let Some(inner) = section.get_sourcemap() {
                    visit_regular(inner, f);
                }
            }
        }
    }
}

fn token_count(decoded: &DecodedMap) -> usize {
    let mut n = 0usize;
    visit_regular(decoded, &mut |sm| {
        n = n.saturating_add(sm.get_token_count() as usize);
    });
    n
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn long_lines_are_cut_around_the_column() {
        let line = "x".repeat(1000) + "HERE" + &"y".repeat(1000);
        let cut = trim_line(&line, 1000);
        assert!(cut.starts_with('…') && cut.ends_with('…') && cut.contains("HERE"));
        assert_eq!(cut.chars().count(), MAX_CONTEXT_LINE_CHARS + 2);
        assert_eq!(trim_line("short\r\n", 3), "short");
    }

    #[test]
    fn bad_maps_say_why() {
        assert!(
            SourceMap::parse(b"not json")
                .unwrap_err()
                .0
                .contains("json")
        );
        let broken_vlq = br#"{"version":3,"sources":["a.js"],"names":[],"mappings":"AAAA,+/+/"}"#;
        assert!(SourceMap::parse(broken_vlq).is_err());
        let by_url =
            br#"{"version":3,"sections":[{"offset":{"line":0,"column":0},"url":"a.map"}]}"#;
        assert!(
            SourceMap::parse(by_url)
                .unwrap_err()
                .0
                .contains("embedding")
        );
    }
}

//! Bytes to lines, keeping the byte offset where each line starts.

/// The longest line kept whole; a longer one is cut into pieces of this size (its
/// message would be truncated at 8 KiB anyway).
pub(crate) const MAX_LINE_BYTES: usize = 1024 * 1024;

/// One line of input, without its `\n`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Line {
    pub(crate) bytes: Vec<u8>,
    /// Where the line starts in the input.
    pub(crate) start: u64,
    /// Where the next line starts.
    pub(crate) end: u64,
}

/// Splits a stream of byte chunks into lines; a line without its `\n` yet waits for more.
#[derive(Debug)]
pub(crate) struct Splitter {
    partial: Vec<u8>,
    /// Where `partial` starts.
    start: u64,
}

impl Splitter {
    /// Lines will be numbered from byte `offset` on.
    pub(crate) fn at(offset: u64) -> Splitter {
        Splitter {
            partial: Vec::new(),
            start: offset,
        }
    }

    /// Appends the complete lines in `chunk` to `out`.
    pub(crate) fn push(&mut self, mut chunk: &[u8], out: &mut Vec<Line>) {
        while let Some(i) = memchr(chunk) {
            self.partial.extend_from_slice(&chunk[..i]);
            chunk = &chunk[i + 1..];
            self.emit(1, out);
        }
        self.partial.extend_from_slice(chunk);
        while self.partial.len() >= MAX_LINE_BYTES {
            let rest = self.partial.split_off(MAX_LINE_BYTES);
            self.emit(0, out);
            self.partial = rest;
        }
    }

    /// The unfinished last line as a line of its own (the input ended or moved on without
    /// a final `\n`).
    pub(crate) fn finish(&mut self, out: &mut Vec<Line>) {
        if !self.partial.is_empty() {
            self.emit(0, out);
        }
    }

    /// Where the next complete line will start: everything before it was returned.
    pub(crate) fn position(&self) -> u64 {
        self.start
    }

    fn emit(&mut self, newline: u64, out: &mut Vec<Line>) {
        let bytes = std::mem::take(&mut self.partial);
        let end = self.start + bytes.len() as u64 + newline;
        out.push(Line {
            bytes,
            start: self.start,
            end,
        });
        self.start = end;
    }
}

fn memchr(b: &[u8]) -> Option<usize> {
    b.iter().position(|&c| c == b'\n')
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_across_chunks_with_offsets() {
        let mut s = Splitter::at(100);
        let mut out = Vec::new();
        s.push(b"ab\ncd", &mut out);
        s.push(b"e\n\nf", &mut out);
        let got: Vec<(&[u8], u64, u64)> =
            out.iter().map(|l| (&l.bytes[..], l.start, l.end)).collect();
        assert_eq!(
            got,
            [
                (&b"ab"[..], 100, 103),
                (&b"cde"[..], 103, 107),
                (&b""[..], 107, 108)
            ]
        );
        assert_eq!(s.position(), 108);
        s.finish(&mut out);
        assert_eq!((&out[3].bytes[..], out[3].end), (&b"f"[..], 109));
    }

    #[test]
    fn an_endless_line_is_cut() {
        let mut s = Splitter::at(0);
        let mut out = Vec::new();
        s.push(&vec![b'x'; MAX_LINE_BYTES + 10], &mut out);
        assert_eq!(out.len(), 1);
        assert_eq!(out[0].end, MAX_LINE_BYTES as u64);
        assert_eq!(s.position(), MAX_LINE_BYTES as u64);
    }
}

//! Turns query text into tokens that carry their line, column and source text.

use super::{QueryError, SYNTAX_ERROR};
use chrono::TimeDelta;

#[derive(Clone, Debug, PartialEq)]
pub(super) enum Tok {
    /// Identifiers and keywords, including `project-away`-style names and `!contains`-style operators.
    Ident(String),
    Str(String),
    Long(i64),
    Real(f64),
    Span(TimeDelta),
    /// The raw text inside `datetime(...)`.
    Datetime(String),
    /// The raw text inside `dynamic(...)`.
    Dynamic(String),
    Sym(&'static str),
    /// A character that starts no token; the parser reports it where it is found, so that an
    /// unsupported construct such as `join ... on $left.x` is named before its syntax is judged.
    Unknown,
    Eof,
}

#[derive(Clone, Debug)]
pub(super) struct Token {
    pub tok: Tok,
    pub text: String,
    pub line: usize,
    pub col: usize,
}

const SYMS: [&str; 27] = [
    "==", "!=", "<>", "<=", ">=", "=~", "!~", "..", "|", "(", ")", "[", "]", "{", "}", ",", "=",
    "<", ">", "+", "-", "*", "/", "%", ".", ":", ";",
];

/// Kusto operator names with a hyphen; anything else with a `-` is a subtraction.
const HYPHENATED: &str =
    "project-away project-rename project-keep project-reorder mv-expand mv-apply \
                          make-series top-nested top-hitters parse-where parse-kv sample-distinct";

/// Nanoseconds per timespan-literal unit.
fn unit_nanos(unit: &str) -> Option<f64> {
    Some(match unit {
        "d" | "day" | "days" => 86_400e9,
        "h" | "hr" | "hrs" | "hour" | "hours" => 3_600e9,
        "m" | "min" | "minute" | "minutes" => 60e9,
        "s" | "sec" | "second" | "seconds" => 1e9,
        "ms" | "milli" | "millis" | "millisecond" | "milliseconds" => 1e6,
        "microsecond" | "microseconds" => 1e3,
        "tick" | "ticks" => 100.0,
        _ => return None,
    })
}

/// A syntax error pointing at `near` (a token's text) at `line:col`.
pub(super) fn syntax_error(near: &str, line: usize, col: usize, msg: &str) -> QueryError {
    let near = if near.is_empty() {
        "<end of query>"
    } else {
        near
    };
    QueryError::new(
        SYNTAX_ERROR,
        format!("Query could not be parsed at '{near}' on line [{line},{col}]: {msg}"),
    )
}

fn is_word(c: char) -> bool {
    c.is_alphanumeric() || c == '_'
}

struct Lexer {
    chars: Vec<char>,
    i: usize,
    line: usize,
    col: usize,
}

impl Lexer {
    fn peek(&self, k: usize) -> Option<char> {
        self.chars.get(self.i + k).copied()
    }

    fn bump(&mut self) -> Option<char> {
        let c = self.peek(0)?;
        self.i += 1;
        if c == '\n' {
            self.line += 1;
            self.col = 1;
        } else {
            self.col += 1;
        }
        Some(c)
    }

    fn take_while(&mut self, f: impl Fn(char) -> bool) -> String {
        let mut s = String::new();
        while let Some(c) = self.peek(0).filter(|&c| f(c)) {
            s.push(c);
            self.bump();
        }
        s
    }

    fn err(&self, msg: &str) -> QueryError {
        let near = self.peek(0).map(String::from).unwrap_or_default();
        syntax_error(&near, self.line, self.col, msg)
    }

    fn skip_trivia(&mut self) {
        loop {
            match (self.peek(0), self.peek(1)) {
                (Some(c), _) if c.is_whitespace() => {
                    self.bump();
                }
                (Some('/'), Some('/')) => {
                    self.take_while(|c| c != '\n');
                }
                _ => return,
            }
        }
    }

    fn number(&mut self) -> Result<Tok, QueryError> {
        let mut text = self.take_while(|c| c.is_ascii_digit());
        let mut real = false;
        if self.peek(0) == Some('.') && self.peek(1).is_some_and(|c| c.is_ascii_digit()) {
            self.bump();
            text.push('.');
            text += &self.take_while(|c| c.is_ascii_digit());
            real = true;
        }
        let exp_digit = |k: usize| self.peek(k).is_some_and(|c| c.is_ascii_digit());
        if matches!(self.peek(0), Some('e' | 'E'))
            && (exp_digit(1) || matches!(self.peek(1), Some('+' | '-')) && exp_digit(2))
        {
            for _ in 0..2 {
                text.extend(self.bump());
            }
            text += &self.take_while(|c| c.is_ascii_digit());
            real = true;
        }
        let unit = self.take_while(|c| c.is_alphabetic());
        if !unit.is_empty() {
            let Some(per) = unit_nanos(&unit) else {
                return Err(self.err(&format!("unknown timespan unit '{unit}' in '{text}{unit}'")));
            };
            let ns = text.parse::<f64>().unwrap_or(f64::NAN) * per;
            if !ns.is_finite() || ns.abs() > 9e18 {
                return Err(self.err(&format!("timespan literal '{text}{unit}' is out of range")));
            }
            return Ok(Tok::Span(TimeDelta::nanoseconds(ns.round() as i64)));
        }
        if real {
            text.parse()
                .map(Tok::Real)
                .map_err(|_| self.err("invalid real literal"))
        } else {
            text.parse()
                .map(Tok::Long)
                .map_err(|_| self.err(&format!("integer literal '{text}' is too large")))
        }
    }

    fn string(&mut self, quote: char, verbatim: bool) -> Result<String, QueryError> {
        let mut s = String::new();
        loop {
            let c = match self.bump() {
                None | Some('\n') => return Err(self.err("unterminated string literal")),
                Some(c) if c == quote => {
                    if verbatim && self.peek(0) == Some(quote) {
                        self.bump();
                        s.push(quote);
                        continue;
                    }
                    return Ok(s);
                }
                Some('\\') if !verbatim => match self.bump() {
                    Some('n') => '\n',
                    Some('r') => '\r',
                    Some('t') => '\t',
                    Some('0') => '\0',
                    Some('u') => {
                        let hex: String = (0..4).filter_map(|_| self.bump()).collect();
                        u32::from_str_radix(&hex, 16)
                            .ok()
                            .and_then(char::from_u32)
                            .ok_or_else(|| self.err("invalid \\u escape in string literal"))?
                    }
                    Some(c @ ('\\' | '\'' | '"')) => c,
                    _ => return Err(self.err("invalid escape sequence in string literal")),
                },
                Some(c) => c,
            };
            s.push(c);
        }
    }

    /// After a `(`: the raw text up to the matching `)`, skipping over quoted parts.
    fn raw_parens(&mut self, what: &str) -> Result<String, QueryError> {
        let mut depth = 1;
        let mut quote = None;
        let mut s = String::new();
        loop {
            let Some(c) = self.bump() else {
                return Err(self.err(&format!("unterminated {what}(...) literal")));
            };
            match (quote, c) {
                (Some(_), '\\') => {
                    s.push(c);
                    s.extend(self.bump());
                    continue;
                }
                (Some(q), c) if c == q => quote = None,
                (Some(_), _) => {}
                (None, '\'' | '"') => quote = Some(c),
                (None, '(') => depth += 1,
                (None, ')') => {
                    depth -= 1;
                    if depth == 0 {
                        return Ok(s.trim().to_string());
                    }
                }
                _ => {}
            }
            s.push(c);
        }
    }

    fn word(&mut self) -> Result<Tok, QueryError> {
        let mut w = String::new();
        if self.peek(0) == Some('!') {
            self.bump();
            w.push('!');
        }
        w += &self.take_while(is_word);
        if self.peek(0) == Some('-') {
            let rest: String = self
                .chars
                .iter()
                .skip(self.i + 1)
                .take_while(|&&c| is_word(c))
                .collect();
            let joined = format!("{w}-{rest}");
            if HYPHENATED.split_whitespace().any(|h| h == joined) {
                for _ in 0..=rest.chars().count() {
                    self.bump();
                }
                return Ok(Tok::Ident(joined));
            }
        }
        if (w == "in" || w == "!in") && self.peek(0) == Some('~') {
            self.bump();
            w.push('~');
        }
        if w == "datetime" || w == "dynamic" {
            let save = (self.i, self.line, self.col);
            self.take_while(|c| c == ' ' || c == '\t');
            if self.peek(0) == Some('(') {
                self.bump();
                let raw = self.raw_parens(&w)?;
                return Ok(if w == "datetime" {
                    Tok::Datetime(raw)
                } else {
                    Tok::Dynamic(raw)
                });
            }
            (self.i, self.line, self.col) = save;
        }
        Ok(Tok::Ident(w))
    }
}

pub(super) fn lex(src: &str) -> Result<Vec<Token>, QueryError> {
    let mut lx = Lexer {
        chars: src.chars().collect(),
        i: 0,
        line: 1,
        col: 1,
    };
    let mut out = Vec::new();
    loop {
        lx.skip_trivia();
        let (start, line, col) = (lx.i, lx.line, lx.col);
        let Some(c) = lx.peek(0) else {
            out.push(Token {
                tok: Tok::Eof,
                text: String::new(),
                line,
                col,
            });
            return Ok(out);
        };
        let tok = if c.is_ascii_digit() {
            lx.number()?
        } else if c == '\'' || c == '"' {
            lx.bump();
            Tok::Str(lx.string(c, false)?)
        } else if c == '@' && matches!(lx.peek(1), Some('\'' | '"')) {
            lx.bump();
            let q = lx.bump().unwrap_or('"');
            Tok::Str(lx.string(q, true)?)
        } else if c.is_alphabetic()
            || c == '_'
            || (c == '!' && lx.peek(1).is_some_and(char::is_alphabetic))
        {
            lx.word()?
        } else {
            let two: String = [Some(c), lx.peek(1)].into_iter().flatten().collect();
            match SYMS.iter().find(|s| two.starts_with(**s)) {
                Some(sym) => {
                    for _ in 0..sym.len() {
                        lx.bump();
                    }
                    Tok::Sym(sym)
                }
                None => {
                    lx.bump();
                    Tok::Unknown
                }
            }
        };
        let text = lx
            .chars
            .get(start..lx.i)
            .unwrap_or_default()
            .iter()
            .collect();
        out.push(Token {
            tok,
            text,
            line,
            col,
        });
    }
}

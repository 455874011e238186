//! The query AST and a recursive-descent parser for it.

use super::lexer::{lex, syntax_error, Tok, Token};
use super::value::{parse_datetime, Ty, Value};
use super::{QueryError, UNSUPPORTED};
use serde_json::Value as Json;

/// `Table | op | op ...`
#[derive(Clone, Debug)]
pub(super) struct Query {
    pub table: String,
    pub ops: Vec<Op>,
}

#[derive(Clone, Debug)]
pub(super) enum Op {
    Where(Expr),
    Project(Vec<Item>),
    ProjectAway(Vec<String>),
    /// `(new, old)` pairs.
    ProjectRename(Vec<(String, String)>),
    Extend(Vec<Item>),
    Summarize {
        aggs: Vec<Item>,
        by: Vec<Item>,
    },
    Sort(Vec<SortKey>),
    Top(u64, SortKey),
    Take(u64),
    Count,
    /// `None` for `distinct *`.
    Distinct(Option<Vec<String>>),
    Render(String),
}

/// `expr`, `name = expr` or `(a, b) = expr`; `names` is empty when no name was given.
#[derive(Clone, Debug)]
pub(super) struct Item {
    pub names: Vec<String>,
    pub expr: Expr,
}

#[derive(Clone, Debug)]
pub(super) struct SortKey {
    pub expr: Expr,
    pub desc: bool,
    pub nulls_first: bool,
}

#[derive(Clone, Debug)]
pub(super) enum Expr {
    Lit(Value, Ty),
    Col(String),
    Neg(Box<Expr>),
    Bin(BinOp, Box<Expr>, Box<Expr>),
    Call(String, Vec<Expr>),
    In {
        expr: Box<Expr>,
        list: Vec<Expr>,
        neg: bool,
        ci: bool,
    },
    Between {
        expr: Box<Expr>,
        lo: Box<Expr>,
        hi: Box<Expr>,
        neg: bool,
    },
    /// `d.key`, `d['key']` (a string) or `d[0]` (a long).
    Member(Box<Expr>, Value),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum StrOp {
    Contains,
    Has,
    StartsWith,
    EndsWith,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(super) enum BinOp {
    Add,
    Sub,
    Mul,
    Div,
    Mod,
    Eq,
    Ne,
    Lt,
    Le,
    Gt,
    Ge,
    EqCi,
    NeCi,
    And,
    Or,
    /// A string operator, negated (`!has`) and/or case-sensitive (`has_cs`).
    Str {
        op: StrOp,
        neg: bool,
        cs: bool,
    },
}

impl BinOp {
    pub(super) fn text(self) -> String {
        let s = match self {
            BinOp::Add => "+",
            BinOp::Sub => "-",
            BinOp::Mul => "*",
            BinOp::Div => "/",
            BinOp::Mod => "%",
            BinOp::Eq => "==",
            BinOp::Ne => "!=",
            BinOp::Lt => "<",
            BinOp::Le => "<=",
            BinOp::Gt => ">",
            BinOp::Ge => ">=",
            BinOp::EqCi => "=~",
            BinOp::NeCi => "!~",
            BinOp::And => "and",
            BinOp::Or => "or",
            BinOp::Str { op, neg, cs } => {
                let base = match op {
                    StrOp::Contains => "contains",
                    StrOp::Has => "has",
                    StrOp::StartsWith => "startswith",
                    StrOp::EndsWith => "endswith",
                };
                return format!(
                    "{}{base}{}",
                    if neg { "!" } else { "" },
                    if cs { "_cs" } else { "" }
                );
            }
        };
        s.to_string()
    }
}

/// Real Kusto tabular operators this subset rejects by name.
const UNSUPPORTED_OPS: &str = "join union lookup mv-expand mv-apply parse parse-where parse-kv make-series \
    evaluate search find sample sample-distinct serialize as invoke facet fork partition scan reduce getschema \
    top-nested top-hitters project-keep project-reorder externaldata range print datatable consume let";

/// Real Kusto infix string operators this subset rejects by name.
const UNSUPPORTED_INFIX: &str = "hasprefix hassuffix has_any has_all matches contains_any regex";

/// Real Kusto aggregation functions this subset rejects by name (some take `*`, which would otherwise
/// surface as a syntax error).
const UNSUPPORTED_AGGS: &str = "arg_max arg_min make_list make_set make_bag make_list_if make_set_if any \
    take_any anyif take_anyif stdev stdevif stdevp variance varianceif variancep avgif minif maxif dcountif \
    count_distinct count_distinctif percentilew percentilesw hll hll_merge tdigest tdigest_merge buildschema";

fn listed(list: &str, word: &str) -> bool {
    list.split_whitespace().any(|w| w == word)
}

fn unsupported(what: &str) -> QueryError {
    QueryError::new(
        UNSUPPORTED,
        format!("{what} is not supported by this KQL emulator"),
    )
}

fn str_op(word: &str) -> Option<BinOp> {
    let (neg, w) = word.strip_prefix('!').map_or((false, word), |w| (true, w));
    let (cs, w) = w.strip_suffix("_cs").map_or((false, w), |w| (true, w));
    let op = match w {
        "contains" => StrOp::Contains,
        "has" => StrOp::Has,
        "startswith" => StrOp::StartsWith,
        "endswith" => StrOp::EndsWith,
        _ => return None,
    };
    Some(BinOp::Str { op, neg, cs })
}

fn lit_from_json(j: &Json) -> Option<Expr> {
    Some(match j {
        Json::Bool(b) => Expr::Lit(Value::Bool(*b), Ty::Bool),
        Json::Number(n) => match n.as_i64() {
            Some(i) => Expr::Lit(Value::Long(i), Ty::Long),
            None => Expr::Lit(Value::Real(n.as_f64()?), Ty::Real),
        },
        Json::String(s) => Expr::Lit(Value::String(s.clone()), Ty::String),
        _ => return None,
    })
}

/// Kusto's `dynamic(...)` also accepts '...' strings; JSON wants "...".
fn single_to_double_quotes(raw: &str) -> String {
    let mut out = String::with_capacity(raw.len());
    let mut quote = None;
    let mut chars = raw.chars();
    while let Some(c) = chars.next() {
        match (quote, c) {
            (None, '\'' | '"') => {
                quote = Some(c);
                out.push('"');
            }
            (Some(q), c) if c == q => {
                quote = None;
                out.push('"');
            }
            (Some(_), '\\') => match chars.next() {
                Some('\'') => out.push('\''),
                Some(n) => out.extend(['\\', n]),
                None => out.push('\\'),
            },
            (Some('\''), '"') => out.push_str("\\\""),
            _ => out.push(c),
        }
    }
    out
}

#[derive(Clone, Copy)]
enum Infix {
    Bin(BinOp),
    In { neg: bool, ci: bool },
    Between { neg: bool },
}

struct Parser {
    toks: Vec<Token>,
    pos: usize,
    depth: usize,
    nest: usize,
    eof: Token,
}

type Res<T> = Result<T, QueryError>;

/// The deepest expression tree accepted (nesting plus operator-chain length).
const MAX_DEPTH: usize = 200;
/// The deepest nesting of parentheses, call arguments and unary operators accepted.
const MAX_NEST: usize = 32;

impl Parser {
    fn cur(&self) -> &Token {
        self.toks.get(self.pos).unwrap_or(&self.eof)
    }

    fn peek(&self) -> &Tok {
        &self.cur().tok
    }

    fn peek_at(&self, k: usize) -> &Tok {
        &self.toks.get(self.pos + k).unwrap_or(&self.eof).tok
    }

    fn advance(&mut self) -> Token {
        let t = self.cur().clone();
        if self.pos < self.toks.len() {
            self.pos += 1;
        }
        t
    }

    fn err_at(t: &Token, msg: &str) -> QueryError {
        syntax_error(&t.text, t.line, t.col, msg)
    }

    fn err(&self, msg: &str) -> QueryError {
        Self::err_at(self.cur(), msg)
    }

    fn is_sym(&self, s: &str) -> bool {
        matches!(self.peek(), Tok::Sym(x) if *x == s)
    }

    fn eat_sym(&mut self, s: &str) -> bool {
        let hit = self.is_sym(s);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_sym(&mut self, s: &str) -> Res<()> {
        if self.eat_sym(s) {
            Ok(())
        } else {
            Err(self.err(&format!("expected '{s}'")))
        }
    }

    fn is_kw(&self, k: &str) -> bool {
        matches!(self.peek(), Tok::Ident(w) if w == k)
    }

    fn eat_kw(&mut self, k: &str) -> bool {
        let hit = self.is_kw(k);
        if hit {
            self.pos += 1;
        }
        hit
    }

    fn expect_kw(&mut self, k: &str) -> Res<()> {
        if self.eat_kw(k) {
            Ok(())
        } else {
            Err(self.err(&format!("expected '{k}'")))
        }
    }

    /// A table or column name: an identifier or `['quoted name']`.
    fn name(&mut self, what: &str) -> Res<String> {
        match (self.peek(), self.peek_at(1), self.peek_at(2)) {
            (Tok::Ident(w), _, _) if !w.starts_with('!') => {
                let w = w.clone();
                self.pos += 1;
                Ok(w)
            }
            (Tok::Sym("["), Tok::Str(s), Tok::Sym("]")) => {
                let s = s.clone();
                self.pos += 3;
                Ok(s)
            }
            _ => Err(self.err(&format!("expected {what}"))),
        }
    }

    fn list<T>(&mut self, mut f: impl FnMut(&mut Self) -> Res<T>) -> Res<Vec<T>> {
        let mut v = vec![f(self)?];
        while self.eat_sym(",") {
            v.push(f(self)?);
        }
        Ok(v)
    }

    /// Counts one more level of expression depth (a nesting or one more link of an operator chain), so
    /// that binding, evaluating and dropping the tree cannot exhaust the stack.
    fn deepen(&mut self) -> Res<()> {
        if self.depth >= MAX_DEPTH {
            return Err(self.err(&format!(
                "expression is nested too deeply or too long (limit {MAX_DEPTH})"
            )));
        }
        self.depth += 1;
        Ok(())
    }

    /// Runs `f`, then restores the depth counter.
    fn scoped<T>(&mut self, f: impl FnOnce(&mut Self) -> Res<T>) -> Res<T> {
        let base = self.depth;
        let r = f(self);
        self.depth = base;
        r
    }

    /// Parses a nested expression (parentheses, arguments, unary operands), at most [`MAX_NEST`] deep.
    fn nest<T>(&mut self, f: impl FnOnce(&mut Self) -> Res<T>) -> Res<T> {
        if self.nest >= MAX_NEST {
            return Err(self.err(&format!(
                "expression is nested too deeply (limit {MAX_NEST})"
            )));
        }
        self.nest += 1;
        let r = self.scoped(|p| {
            p.deepen()?;
            f(p)
        });
        self.nest -= 1;
        r
    }

    fn query(&mut self) -> Res<Query> {
        if let Some(w) = match self.peek() {
            Tok::Ident(w) if listed(UNSUPPORTED_OPS, w) => Some(w),
            _ => None,
        } {
            return Err(unsupported(&format!("The '{w}' operator")));
        }
        let table = self.name("a table name")?;
        let mut ops = Vec::new();
        while self.eat_sym("|") {
            let op = self.operator()?;
            let render = matches!(op, Op::Render(_));
            ops.push(op);
            if render && self.is_sym("|") {
                return Err(self.err("'render' must be the last operator"));
            }
        }
        self.eat_sym(";");
        match self.peek() {
            Tok::Eof => Ok(Query { table, ops }),
            _ => Err(self.err("expected '|' or the end of the query")),
        }
    }

    fn operator(&mut self) -> Res<Op> {
        let t = self.advance();
        let Tok::Ident(name) = &t.tok else {
            return Err(Self::err_at(&t, "expected a query operator"));
        };
        Ok(match name.as_str() {
            "where" | "filter" => Op::Where(self.expr()?),
            "project" => Op::Project(self.list(|p| p.item(false))?),
            "project-away" => Op::ProjectAway(self.list(|p| p.name("a column name"))?),
            "project-rename" => Op::ProjectRename(self.list(|p| {
                let new = p.name("a column name")?;
                p.expect_sym("=")?;
                Ok((new, p.name("a column name")?))
            })?),
            "extend" => Op::Extend(self.list(|p| p.item(false))?),
            "summarize" => {
                let aggs = if self.is_kw("by") {
                    Vec::new()
                } else {
                    self.list(|p| p.item(true))?
                };
                let by = if self.eat_kw("by") {
                    self.list(|p| p.item(false))?
                } else {
                    Vec::new()
                };
                Op::Summarize { aggs, by }
            }
            "order" | "sort" => {
                self.expect_kw("by")?;
                Op::Sort(self.list(Self::sort_key)?)
            }
            "top" => {
                let n = self.count_arg()?;
                self.expect_kw("by")?;
                Op::Top(n, self.sort_key()?)
            }
            "take" | "limit" => Op::Take(self.count_arg()?),
            "count" => Op::Count,
            "distinct" => Op::Distinct(if self.eat_sym("*") {
                None
            } else {
                Some(self.list(|p| p.name("a column name"))?)
            }),
            "render" => {
                let chart = self.name("a chart type")?;
                if self.eat_kw("with") {
                    self.skip_parens()?;
                }
                Op::Render(chart)
            }
            w if listed(UNSUPPORTED_OPS, w) => {
                return Err(unsupported(&format!("The '{w}' operator")));
            }
            w => return Err(Self::err_at(&t, &format!("unknown query operator '{w}'"))),
        })
    }

    fn skip_parens(&mut self) -> Res<()> {
        self.expect_sym("(")?;
        let mut depth = 1;
        while depth > 0 {
            match self.advance().tok {
                Tok::Sym("(") => depth += 1,
                Tok::Sym(")") => depth -= 1,
                Tok::Eof => return Err(self.err("expected ')'")),
                _ => {}
            }
        }
        Ok(())
    }

    fn count_arg(&mut self) -> Res<u64> {
        match *self.peek() {
            Tok::Long(n) if n >= 0 => {
                self.pos += 1;
                Ok(n.unsigned_abs())
            }
            _ => Err(self.err("expected a non-negative integer literal")),
        }
    }

    fn item(&mut self, allow_tuple: bool) -> Res<Item> {
        let mut names = Vec::new();
        let simple = matches!(
            (self.peek(), self.peek_at(1)),
            (Tok::Ident(_), Tok::Sym("="))
        ) || matches!(
            (
                self.peek(),
                self.peek_at(1),
                self.peek_at(2),
                self.peek_at(3)
            ),
            (Tok::Sym("["), Tok::Str(_), Tok::Sym("]"), Tok::Sym("="))
        );
        if simple {
            names.push(self.name("a column name")?);
            self.expect_sym("=")?;
        } else if allow_tuple && self.is_sym("(") && self.tuple_ahead() {
            self.pos += 1;
            names = self.list(|p| p.name("a column name"))?;
            self.expect_sym(")")?;
            self.expect_sym("=")?;
        }
        Ok(Item {
            names,
            expr: self.expr()?,
        })
    }

    /// At `(`: is this `(a, b, ...) =`?
    fn tuple_ahead(&self) -> bool {
        let mut k = 1;
        loop {
            if !matches!(self.peek_at(k), Tok::Ident(_)) {
                return false;
            }
            match self.peek_at(k + 1) {
                Tok::Sym(",") => k += 2,
                Tok::Sym(")") => return matches!(self.peek_at(k + 2), Tok::Sym("=")),
                _ => return false,
            }
        }
    }

    fn sort_key(&mut self) -> Res<SortKey> {
        let expr = self.expr()?;
        let desc = !self.eat_kw("asc");
        if desc {
            self.eat_kw("desc");
        }
        let nulls_first = if self.eat_kw("nulls") {
            if self.eat_kw("first") {
                true
            } else {
                self.expect_kw("last")?;
                false
            }
        } else {
            !desc
        };
        Ok(SortKey {
            expr,
            desc,
            nulls_first,
        })
    }

    pub(super) fn expr(&mut self) -> Res<Expr> {
        self.nest(|p| p.binary(0))
    }

    /// The infix operator at the cursor and its precedence: `or` 1, `and` 2, comparisons and string and
    /// set operators 3, `+ -` 4, `* / %` 5.
    fn infix(&self) -> Res<Option<(u8, Infix)>> {
        let op = match self.peek() {
            Tok::Sym(s) => match *s {
                "==" => BinOp::Eq,
                "!=" | "<>" => BinOp::Ne,
                "<" => BinOp::Lt,
                "<=" => BinOp::Le,
                ">" => BinOp::Gt,
                ">=" => BinOp::Ge,
                "=~" => BinOp::EqCi,
                "!~" => BinOp::NeCi,
                "+" => return Ok(Some((4, Infix::Bin(BinOp::Add)))),
                "-" => return Ok(Some((4, Infix::Bin(BinOp::Sub)))),
                "*" => return Ok(Some((5, Infix::Bin(BinOp::Mul)))),
                "/" => return Ok(Some((5, Infix::Bin(BinOp::Div)))),
                "%" => return Ok(Some((5, Infix::Bin(BinOp::Mod)))),
                _ => return Ok(None),
            },
            Tok::Ident(w) => {
                let (neg, bare) = w
                    .strip_prefix('!')
                    .map_or((false, w.as_str()), |b| (true, b));
                match bare {
                    "or" if !neg => return Ok(Some((1, Infix::Bin(BinOp::Or)))),
                    "and" if !neg => return Ok(Some((2, Infix::Bin(BinOp::And)))),
                    "in" | "in~" => {
                        return Ok(Some((
                            3,
                            Infix::In {
                                neg,
                                ci: bare.ends_with('~'),
                            },
                        )));
                    }
                    "between" => return Ok(Some((3, Infix::Between { neg }))),
                    _ if listed(UNSUPPORTED_INFIX, bare.trim_end_matches("_cs")) => {
                        return Err(unsupported(&format!("The '{w}' operator")));
                    }
                    _ => match str_op(w) {
                        Some(op) => op,
                        None => return Ok(None),
                    },
                }
            }
            _ => return Ok(None),
        };
        Ok(Some((3, Infix::Bin(op))))
    }

    /// Precedence climbing: operands joined by operators binding at least as tightly as `min`.
    /// Left-associative chains loop here rather than recurse.
    fn binary(&mut self, min: u8) -> Res<Expr> {
        self.scoped(|p| {
            let mut lhs = p.unary()?;
            while let Some((prec, infix)) = p.infix()? {
                if prec < min {
                    break;
                }
                p.deepen()?;
                p.pos += 1;
                let lhs_box = Box::new(lhs);
                lhs = match infix {
                    Infix::Bin(op) => Expr::Bin(op, lhs_box, Box::new(p.binary(prec + 1)?)),
                    Infix::In { neg, ci } => Expr::In {
                        expr: lhs_box,
                        list: p.in_list()?,
                        neg,
                        ci,
                    },
                    Infix::Between { neg } => {
                        p.expect_sym("(")?;
                        let lo = Box::new(p.expr()?);
                        p.expect_sym("..")?;
                        let hi = Box::new(p.expr()?);
                        p.expect_sym(")")?;
                        Expr::Between {
                            expr: lhs_box,
                            lo,
                            hi,
                            neg,
                        }
                    }
                };
            }
            Ok(lhs)
        })
    }

    fn in_list(&mut self) -> Res<Vec<Expr>> {
        self.expect_sym("(")?;
        let list = self.list(Self::expr)?;
        self.expect_sym(")")?;
        match list.as_slice() {
            [Expr::Lit(Value::Dynamic(Json::Array(items)), _)] => items
                .iter()
                .map(|j| {
                    lit_from_json(j)
                        .ok_or_else(|| self.err("dynamic array in 'in' must hold only scalars"))
                })
                .collect(),
            _ => Ok(list),
        }
    }

    /// Unary `-`/`+`, then a primary with any `.key` / `[index]` suffixes.
    fn unary(&mut self) -> Res<Expr> {
        if self.eat_sym("+") {
            return self.nest(Self::unary);
        }
        if self.eat_sym("-") {
            return Ok(match self.nest(Self::unary)? {
                Expr::Lit(Value::Long(n), ty) => Expr::Lit(Value::Long(n.wrapping_neg()), ty),
                Expr::Lit(Value::Real(f), ty) => Expr::Lit(Value::Real(-f), ty),
                Expr::Lit(Value::Timespan(t), ty) => Expr::Lit(Value::Timespan(-t), ty),
                e => Expr::Neg(Box::new(e)),
            });
        }
        self.scoped(|p| {
            let mut e = p.primary()?;
            loop {
                let key = if p.is_sym(".") && matches!(p.peek_at(1), Tok::Ident(_)) {
                    p.pos += 1;
                    Value::String(p.name("a property name")?)
                } else if p.eat_sym("[") {
                    let neg = p.eat_sym("-");
                    let key = match p.advance().tok {
                        Tok::Str(s) if !neg => Value::String(s),
                        Tok::Long(n) => Value::Long(if neg { -n } else { n }),
                        _ => return Err(p.err("expected a string or integer index")),
                    };
                    p.expect_sym("]")?;
                    key
                } else {
                    return Ok(e);
                };
                p.deepen()?;
                e = Expr::Member(Box::new(e), key);
            }
        })
    }

    fn primary(&mut self) -> Res<Expr> {
        if let (Tok::Sym("["), Tok::Str(_)) = (self.peek(), self.peek_at(1)) {
            return Ok(Expr::Col(self.name("a column name")?));
        }
        let t = self.advance();
        Ok(match t.tok {
            Tok::Long(n) => Expr::Lit(Value::Long(n), Ty::Long),
            Tok::Real(f) => Expr::Lit(Value::Real(f), Ty::Real),
            Tok::Str(s) => Expr::Lit(Value::String(s), Ty::String),
            Tok::Span(d) => Expr::Lit(Value::Timespan(d), Ty::Timespan),
            Tok::Datetime(ref raw) => {
                let raw = raw.trim_matches(|c| c == '\'' || c == '"');
                let v = if raw == "null" {
                    Value::Null
                } else {
                    parse_datetime(raw)
                        .map(Value::Datetime)
                        .ok_or_else(|| Self::err_at(&t, "invalid datetime literal"))?
                };
                Expr::Lit(v, Ty::Datetime)
            }
            Tok::Dynamic(ref raw) => match serde_json::from_str(&single_to_double_quotes(raw)) {
                Ok(j) => Expr::Lit(Value::Dynamic(j), Ty::Dynamic),
                Err(e) => return Err(Self::err_at(&t, &format!("invalid dynamic literal: {e}"))),
            },
            Tok::Ident(ref w) if matches!(w.as_str(), "true" | "True" | "TRUE") => {
                Expr::Lit(Value::Bool(true), Ty::Bool)
            }
            Tok::Ident(ref w) if matches!(w.as_str(), "false" | "False" | "FALSE") => {
                Expr::Lit(Value::Bool(false), Ty::Bool)
            }
            Tok::Ident(w) if !w.starts_with('!') => {
                if !self.eat_sym("(") {
                    return Ok(Expr::Col(w));
                }
                if listed(UNSUPPORTED_AGGS, &w) {
                    return Err(unsupported(&format!("The '{w}' aggregation function")));
                }
                let typed_null = match w.as_str() {
                    "bool" | "boolean" => Some(Ty::Bool),
                    "int" => Some(Ty::Int),
                    "long" => Some(Ty::Long),
                    "real" | "double" => Some(Ty::Real),
                    "string" => Some(Ty::String),
                    "timespan" | "time" => Some(Ty::Timespan),
                    "guid" => Some(Ty::Guid),
                    _ => None,
                };
                if let Some(ty) = typed_null
                    .filter(|_| self.is_kw("null") && matches!(self.peek_at(1), Tok::Sym(")")))
                {
                    self.pos += 2;
                    return Ok(Expr::Lit(Value::Null, ty));
                }
                let args = if self.eat_sym(")") {
                    Vec::new()
                } else {
                    let args = self.list(Self::expr)?;
                    self.expect_sym(")")?;
                    args
                };
                Expr::Call(w, args)
            }
            Tok::Sym("(") => {
                let e = self.expr()?;
                self.expect_sym(")")?;
                e
            }
            _ => return Err(Self::err_at(&t, "expected an expression")),
        })
    }
}

pub(super) fn parse(src: &str) -> Result<Query, QueryError> {
    let toks = lex(src)?;
    let eof = toks.last().cloned().unwrap_or(Token {
        tok: Tok::Eof,
        text: String::new(),
        line: 1,
        col: 1,
    });
    Parser {
        toks,
        pos: 0,
        depth: 0,
        nest: 0,
        eof,
    }
    .query()
}

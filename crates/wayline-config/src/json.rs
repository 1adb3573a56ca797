//! HCL's JSON syntax, translated to native HCL text so that both forms decode through the same
//! code and give the same result. Which keys are blocks is decided by the schema, as the HCL
//! JSON spec requires; every emitted line maps back to the JSON position it came from.

use crate::diag::{Diagnostic, Diagnostics, SourceFile};

#[derive(Debug)]
enum J {
    Null,
    Bool(bool),
    Num(String),
    Str(String),
    Arr(Vec<(usize, J)>),
    Obj(Vec<(usize, String, usize, J)>),
}

struct P<'a> {
    s: &'a [u8],
    i: usize,
    depth: usize,
}

type PResult<T> = Result<T, (usize, String)>;

impl P<'_> {
    fn ws(&mut self) {
        while self.i < self.s.len() && matches!(self.s[self.i], b' ' | b'\t' | b'\n' | b'\r') {
            self.i += 1;
        }
    }

    fn value(&mut self) -> PResult<(usize, J)> {
        self.ws();
        let at = self.i;
        self.depth += 1;
        if self.depth > 128 {
            return Err((at, "nesting is too deep".to_owned()));
        }
        let v = match self.s.get(self.i) {
            None => return Err((at, "unexpected end of input".to_owned())),
            Some(b'{') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b'}') {
                    self.i += 1;
                } else {
                    loop {
                        self.ws();
                        let kat = self.i;
                        if self.s.get(self.i) != Some(&b'"') {
                            return Err((kat, "expected a string key".to_owned()));
                        }
                        let k = self.string()?;
                        self.ws();
                        if self.s.get(self.i) != Some(&b':') {
                            return Err((self.i, "expected `:`".to_owned()));
                        }
                        self.i += 1;
                        let (vat, v) = self.value()?;
                        items.push((kat, k, vat, v));
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b'}') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err((self.i, "expected `,` or `}`".to_owned())),
                        }
                    }
                }
                J::Obj(items)
            }
            Some(b'[') => {
                self.i += 1;
                let mut items = Vec::new();
                self.ws();
                if self.s.get(self.i) == Some(&b']') {
                    self.i += 1;
                } else {
                    loop {
                        items.push(self.value()?);
                        self.ws();
                        match self.s.get(self.i) {
                            Some(b',') => self.i += 1,
                            Some(b']') => {
                                self.i += 1;
                                break;
                            }
                            _ => return Err((self.i, "expected `,` or `]`".to_owned())),
                        }
                    }
                }
                J::Arr(items)
            }
            Some(b'"') => J::Str(self.string()?),
            Some(_) if self.s[self.i..].starts_with(b"true") => {
                self.i += 4;
                J::Bool(true)
            }
            Some(_) if self.s[self.i..].starts_with(b"false") => {
                self.i += 5;
                J::Bool(false)
            }
            Some(_) if self.s[self.i..].starts_with(b"null") => {
                self.i += 4;
                J::Null
            }
            Some(c) if c.is_ascii_digit() || *c == b'-' => {
                let start = self.i;
                self.i += 1;
                while self.i < self.s.len()
                    && matches!(
                        self.s[self.i],
                        b'0'..=b'9' | b'.' | b'e' | b'E' | b'+' | b'-'
                    )
                {
                    self.i += 1;
                }
                let text = String::from_utf8_lossy(&self.s[start..self.i]).into_owned();
                if text.parse::<f64>().is_err() {
                    return Err((start, format!("invalid number `{text}`")));
                }
                J::Num(text)
            }
            Some(_) => return Err((at, "expected a JSON value".to_owned())),
        };
        self.depth -= 1;
        Ok((at, v))
    }

    fn string(&mut self) -> PResult<String> {
        let start = self.i;
        self.i += 1;
        let mut buf = Vec::new();
        loop {
            match self.s.get(self.i) {
                None => return Err((start, "unterminated string".to_owned())),
                Some(b'"') => {
                    self.i += 1;
                    break;
                }
                Some(b'\\') => {
                    let e = *self
                        .s
                        .get(self.i + 1)
                        .ok_or((self.i, "unterminated string".to_owned()))?;
                    self.i += 2;
                    match e {
                        b'"' => buf.push(b'"'),
                        b'\\' => buf.push(b'\\'),
                        b'/' => buf.push(b'/'),
                        b'n' => buf.push(b'\n'),
                        b't' => buf.push(b'\t'),
                        b'r' => buf.push(b'\r'),
                        b'b' => buf.push(8),
                        b'f' => buf.push(12),
                        b'u' => {
                            let hex = self
                                .s
                                .get(self.i..self.i + 4)
                                .ok_or((self.i, "bad \\u escape".to_owned()))?;
                            let code = u32::from_str_radix(&String::from_utf8_lossy(hex), 16)
                                .map_err(|_| (self.i, "bad \\u escape".to_owned()))?;
                            self.i += 4;
                            let c = char::from_u32(code).unwrap_or('\u{fffd}');
                            buf.extend(c.to_string().bytes());
                        }
                        _ => return Err((self.i - 1, "invalid escape".to_owned())),
                    }
                }
                Some(c) if *c < 0x20 => {
                    return Err((self.i, "control character in string".to_owned()));
                }
                Some(c) => {
                    buf.push(*c);
                    self.i += 1;
                }
            }
        }
        String::from_utf8(buf).map_err(|_| (start, "string is not UTF-8".to_owned()))
    }
}

fn parse(src: &str, name: &str) -> Result<(usize, J), Diagnostics> {
    let mut p = P {
        s: src.as_bytes(),
        i: 0,
        depth: 0,
    };
    let fail = |at: usize, msg: String| -> Diagnostics {
        let file = SourceFile::new(name, src);
        let at = at.min(src.len());
        Diagnostic::at(
            &file,
            at..at + 1,
            format!("syntax error: invalid JSON: {msg}"),
        )
        .into()
    };
    let v = p.value().map_err(|(at, m)| fail(at, m))?;
    p.ws();
    if p.i != src.len() {
        return Err(fail(p.i, "unexpected text after the JSON value".to_owned()));
    }
    Ok(v)
}

/// Which keys are blocks in each context, and how many labels they take.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Ctx {
    Top,
    Var,
    Runner,
    Plugin,
    Config,
    App,
    Stage,
    Use,
    Pipeline,
    Step,
    Leaf,
}

fn block(ctx: Ctx, key: &str) -> Option<(usize, Ctx)> {
    Some(match (ctx, key) {
        (Ctx::Top, "variable") => (1, Ctx::Var),
        (Ctx::Top | Ctx::App, "runner") => (0, Ctx::Runner),
        (Ctx::Top, "plugin") => (1, Ctx::Plugin),
        (Ctx::Top | Ctx::App, "config") | (Ctx::Config, "runner") => (0, Ctx::Config),
        (Ctx::Config, "workspace" | "label") => (1, Ctx::Config),
        (Ctx::Top, "app") => (1, Ctx::App),
        (Ctx::Top | Ctx::Step, "pipeline") => (1, Ctx::Pipeline),
        (Ctx::Runner, "data_source") => (1, Ctx::Leaf),
        (Ctx::Runner, "poll")
        | (Ctx::Plugin, "type")
        | (Ctx::App, "url")
        | (Ctx::Stage, "hook") => (0, Ctx::Leaf),
        (Ctx::App, "build" | "deploy" | "release") | (Ctx::Stage, "registry") => (0, Ctx::Stage),
        (Ctx::Stage, "workspace" | "label") => (1, Ctx::Stage),
        (Ctx::Stage | Ctx::Step, "use") => (1, Ctx::Use),
        (Ctx::Pipeline, "step") => (1, Ctx::Step),
        _ => return None,
    })
}

struct Out {
    text: String,
    map: Vec<(usize, usize)>,
}

impl Out {
    fn mark(&mut self, json_at: usize) {
        self.map.push((self.text.len(), json_at));
    }
}

/// A JSON string as a native quoted template: text outside `${...}`/`%{...}` is escaped, the
/// interpolations themselves are HCL expressions and are copied as they are.
fn quote(s: &str) -> String {
    let chars: Vec<char> = s.chars().collect();
    let mut o = String::with_capacity(s.len() + 2);
    o.push('"');
    let mut i = 0;
    while i < chars.len() {
        let c = chars[i];
        let next = chars.get(i + 1).copied();
        if (c == '$' || c == '%') && next == Some('{') {
            if chars.get(i + 2) == Some(&c) {
                // `$${` is an escaped literal `${`.
                o.extend([c, '{', c]);
                i += 3;
                continue;
            }
            // Copy the interpolation up to its matching brace, skipping over strings.
            let mut depth = 0usize;
            let mut in_str = false;
            let mut j = i + 1;
            while j < chars.len() {
                let d = chars[j];
                if in_str {
                    if d == '\\' {
                        j += 1;
                    } else if d == '"' {
                        in_str = false;
                    }
                } else if d == '"' {
                    in_str = true;
                } else if d == '{' {
                    depth += 1;
                } else if d == '}' {
                    depth -= 1;
                    if depth == 0 {
                        break;
                    }
                }
                j += 1;
            }
            let end = j.min(chars.len() - 1);
            o.extend(
                chars[i..=end]
                    .iter()
                    .map(|&x| if x == '\n' { ' ' } else { x }),
            );
            i = end + 1;
            continue;
        }
        match c {
            '"' => o.push_str("\\\""),
            '\\' => o.push_str("\\\\"),
            '\n' => o.push_str("\\n"),
            '\r' => o.push_str("\\r"),
            '\t' => o.push_str("\\t"),
            c if (c as u32) < 0x20 => o.push_str(&format!("\\u{:04x}", c as u32)),
            c => o.push(c),
        }
        i += 1;
    }
    o.push('"');
    o
}

/// A block label: a plain quoted string, no templates.
fn quote_label(s: &str) -> String {
    serde_json::to_string(s).unwrap_or_default()
}

fn expr(out: &mut Out, at: usize, v: &J, raw_string: bool) {
    out.mark(at);
    match v {
        J::Null => out.text.push_str("null"),
        J::Bool(b) => out.text.push_str(if *b { "true" } else { "false" }),
        J::Num(n) => out.text.push_str(n),
        // `type = "list(string)"` is an expression written as a string.
        J::Str(s) if raw_string => out.text.push_str(s),
        J::Str(s) => out.text.push_str(&quote(s)),
        J::Arr(items) => {
            out.text.push('[');
            for (i, (iat, item)) in items.iter().enumerate() {
                if i > 0 {
                    out.text.push_str(", ");
                }
                expr(out, *iat, item, false);
            }
            out.text.push(']');
        }
        J::Obj(items) => {
            out.text.push('{');
            for (i, (kat, k, vat, item)) in
                items.iter().filter(|(_, k, _, _)| k != "//").enumerate()
            {
                if i > 0 {
                    out.text.push_str(", ");
                }
                out.mark(*kat);
                out.text.push_str(&quote(k));
                out.text.push_str(" = ");
                expr(out, *vat, item, false);
            }
            out.text.push('}');
        }
    }
}

fn body(out: &mut Out, items: &[(usize, String, usize, J)], ctx: Ctx, depth: usize) {
    for (kat, key, vat, v) in items {
        if key == "//" {
            continue;
        }
        match block(ctx, key) {
            Some((labels, inner)) => blocks(
                out,
                *kat,
                key,
                *vat,
                v,
                labels,
                inner,
                &mut Vec::new(),
                depth,
            ),
            None => {
                out.text.push_str(&"  ".repeat(depth));
                out.mark(*kat);
                let ident_ok = key
                    .chars()
                    .next()
                    .is_some_and(|c| c.is_alphabetic() || c == '_')
                    && key
                        .chars()
                        .all(|c| c.is_alphanumeric() || c == '_' || c == '-');
                out.text
                    .push_str(if ident_ok { key } else { "invalid_key" });
                out.text.push_str(" = ");
                expr(out, *vat, v, ctx == Ctx::Var && key == "type");
                out.text.push('\n');
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn blocks(
    out: &mut Out,
    kat: usize,
    key: &str,
    vat: usize,
    v: &J,
    labels: usize,
    inner: Ctx,
    path: &mut Vec<String>,
    depth: usize,
) {
    if path.len() < labels
        && let J::Obj(items) = v
    {
        for (lat, label, iat, item) in items {
            path.push(label.clone());
            blocks(out, *lat, key, *iat, item, labels, inner, path, depth);
            path.pop();
        }
        return;
    }
    // `"variable": [{"a": {...}}, {"b": {...}}]` is the same as one object with both labels.
    if path.len() < labels
        && let J::Arr(items) = v
    {
        for (iat, item) in items {
            blocks(out, kat, key, *iat, item, labels, inner, path, depth);
        }
        return;
    }
    let bodies: Vec<(usize, &J)> = match v {
        J::Arr(items) => items.iter().map(|(a, j)| (*a, j)).collect(),
        other => vec![(vat, other)],
    };
    for (bat, b) in bodies {
        out.text.push_str(&"  ".repeat(depth));
        out.mark(kat);
        out.text.push_str(key);
        for l in path.iter() {
            out.text.push(' ');
            out.text.push_str(&quote_label(l));
        }
        out.text.push_str(" {\n");
        match b {
            J::Obj(items) => body(out, items, inner, depth + 1),
            _ => {
                // Not an object: emit an attribute that the decoder rejects with a location.
                out.text.push_str(&"  ".repeat(depth + 1));
                out.mark(bat);
                out.text.push_str("__block_must_be_an_object = true\n");
            }
        }
        out.text.push_str(&"  ".repeat(depth));
        out.text.push_str("}\n");
    }
}

/// Translates a `*.hcl.json` file.
pub(crate) fn translate(src: &str, name: &str) -> Result<SourceFile, Diagnostics> {
    translate_in(src, name, Ctx::Top)
}

/// Translates a JSON variable file (`*.wlvars.json`): every key is an attribute.
pub(crate) fn translate_values(src: &str, name: &str) -> Result<SourceFile, Diagnostics> {
    translate_in(src, name, Ctx::Leaf)
}

fn translate_in(src: &str, name: &str, ctx: Ctx) -> Result<SourceFile, Diagnostics> {
    let (at, root) = parse(src, name)?;
    let J::Obj(items) = root else {
        let file = SourceFile::new(name, src);
        return Err(Diagnostic::at(
            &file,
            at..at + 1,
            "the JSON configuration must be an object",
        )
        .into());
    };
    let mut out = Out {
        text: String::new(),
        map: Vec::new(),
    };
    body(&mut out, &items, ctx, 0);
    Ok(SourceFile::translated(
        name,
        out.text,
        src.to_owned(),
        out.map,
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn translates_blocks_by_schema_and_keeps_templates() {
        let src = r#"{"project": "p", "variable": [{"a": {"default": "x"}}, {"b": {"type": "list(string)"}}],
            "app": {"web": {"labels": {"k": "${var.a}-\"q\""}, "build": {"use": {"docker": {"hook": [{"when": "before"}, {"when": "after"}]}}}}}}"#;
        let f = translate(src, "w.hcl.json").unwrap();
        assert_eq!(
            f.text,
            "project = \"p\"\nvariable \"a\" {\n  default = \"x\"\n}\nvariable \"b\" {\n  type = list(string)\n}\napp \"web\" {\n  labels = {\"k\" = \"${var.a}-\\\"q\\\"\"}\n  build {\n    use \"docker\" {\n      hook = [{\"when\" = \"before\"}, {\"when\" = \"after\"}]\n    }\n  }\n}\n"
        );
        // Positions map back to the JSON key.
        let loc = f.location(f.text.find("labels").unwrap()..f.text.find("labels").unwrap() + 1);
        assert_eq!((loc.line, loc.column), (2, 29));
    }
}

//! String functions: `format` (Go's verbs), `replace`, `substr`, `indent`, `regex`, ...

use super::*;

pub(super) fn title(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    let mut start = true;
    for c in s.chars() {
        if start && c.is_alphabetic() {
            out.extend(c.to_uppercase());
        } else {
            out.push(c);
        }
        start = c.is_whitespace();
    }
    out
}

/// cty's `join(separator, lists...)`: the elements of every list, in order.
pub(super) fn join(a: FuncArgs) -> Result<Value, String> {
    let v = a.into_values();
    let sep = st(&v[0]);
    let mut items = Vec::new();
    for list in &v[1..] {
        items.extend(arr(list)?.iter().map(st));
    }
    Ok(Value::String(items.join(&sep)))
}

pub(super) fn replace(a: FuncArgs) -> Result<Value, String> {
    let (s, from, to) = (st(&a[0]), st(&a[1]), st(&a[2]));
    if from.len() > 1 && from.starts_with('/') && from.ends_with('/') {
        let re = regex::Regex::new(&from[1..from.len() - 1])
            .map_err(|e| format!("invalid regex: {e}"))?;
        let size = re.find_iter(&s).count() as u128 * to.len() as u128 + s.len() as u128;
        if size > MAX_RESULT_BYTES as u128 {
            return Err(too_big("replace", size as usize));
        }
        return Ok(Value::String(re.replace_all(&s, to.as_str()).into_owned()));
    }
    // An empty `from` matches between every character.
    let matches = if from.is_empty() {
        s.chars().count() + 1
    } else {
        s.matches(from.as_str()).count()
    };
    let size = matches as u128 * to.len() as u128 + s.len() as u128;
    if size > MAX_RESULT_BYTES as u128 {
        return Err(too_big("replace", size.min(usize::MAX as u128) as usize));
    }
    Ok(Value::String(s.replace(&from, &to)))
}

/// cty's `parseint(string, base)`: bases 2 to 62 (Go's `big.Int` digits: 0-9, a-z, then A-Z
/// above base 36; letters are case-insensitive up to 36), an optional sign.
pub(super) fn parseint(a: &FuncArgs) -> Result<Value, String> {
    let (text, base) = (st(&a[0]), num(&a[1])?);
    if !(2.0..=62.0).contains(&base) || base.fract() != 0.0 {
        return Err(format!(
            "base must be a whole number between 2 and 62 inclusive, found {base}"
        ));
    }
    let base = base as u32;
    let bad = || format!("cannot parse {text:?} as a base {base} integer");
    let (neg, digits) = match text.as_bytes().first() {
        Some(b'-') => (true, &text[1..]),
        Some(b'+') => (false, &text[1..]),
        _ => (false, text.as_str()),
    };
    if digits.is_empty() {
        return Err(bad());
    }
    let mut n: i64 = 0;
    for c in digits.chars() {
        let d = match c {
            '0'..='9' => c as u32 - '0' as u32,
            'a'..='z' => c as u32 - 'a' as u32 + 10,
            'A'..='Z' if base <= 36 => c as u32 - 'A' as u32 + 10,
            'A'..='Z' => c as u32 - 'A' as u32 + 36,
            _ => return Err(bad()),
        };
        if d >= base {
            return Err(bad());
        }
        n = n
            .checked_mul(i64::from(base))
            .and_then(|n| n.checked_add(i64::from(d)))
            .ok_or_else(|| format!("{text:?} does not fit in a 64-bit integer"))?;
    }
    Ok(Value::Number((if neg { -n } else { n }).into()))
}

pub(super) fn substr(a: FuncArgs) -> Result<Value, String> {
    let chars: Vec<char> = st(&a[0]).chars().collect();
    let len = chars.len() as i64;
    let mut off = num(&a[1])? as i64;
    if off < 0 {
        off += len;
    }
    let off = off.clamp(0, len) as usize;
    let n = num(&a[2])? as i64;
    let end = if n < 0 {
        chars.len()
    } else {
        off.saturating_add(n as usize).min(chars.len())
    };
    Ok(Value::String(chars[off..end].iter().collect()))
}

/// Most characters a `format` width or precision may ask for.
pub(super) const MAX_WIDTH: usize = 4096;

/// One `%…` directive: flags, width, precision.
#[derive(Default)]
pub(super) struct Spec {
    minus: bool,
    plus: bool,
    space: bool,
    zero: bool,
    sharp: bool,
    width: Option<usize>,
    prec: Option<usize>,
}

/// `format` as HCL has it (Go's verbs): `%v %#v %t %s %q %d %b %o %x %X %e %E %f %g %G %%`
/// with the flags `-+ 0#`, a width, a precision and `%[n]` argument indexes.
pub(super) fn format(spec: &str, args: &[Value]) -> Result<String, String> {
    let mut out = String::new();
    let mut it = spec.chars().peekable();
    let mut next_arg = 0;
    let mut reordered = false;
    while let Some(c) = it.next() {
        if c != '%' {
            out.push(c);
            continue;
        }
        let mut sp = Spec::default();
        while let Some(&f) = it.peek() {
            match f {
                '-' => sp.minus = true,
                '+' => sp.plus = true,
                ' ' => sp.space = true,
                '0' => sp.zero = true,
                '#' => sp.sharp = true,
                _ => break,
            }
            it.next();
        }
        if it.peek() == Some(&'[') {
            it.next();
            let n = digits(&mut it).ok_or("`%[` needs an argument number, e.g. `%[1]s`")?;
            if it.next() != Some(']') || n == 0 {
                return Err("an argument index is written `%[1]s` (1-based)".to_owned());
            }
            next_arg = n - 1;
            reordered = true;
        }
        sp.width = digits(&mut it);
        if it.peek() == Some(&'.') {
            it.next();
            sp.prec = Some(digits(&mut it).unwrap_or(0));
        }
        if sp.width.max(sp.prec).is_some_and(|w| w > MAX_WIDTH) {
            return Err(format!(
                "a width or precision in the format string is larger than the limit of {MAX_WIDTH}"
            ));
        }
        let verb = it.next().ok_or("format string ends with `%`")?;
        if verb == '%' {
            out.push('%');
            continue;
        }
        let arg = args.get(next_arg).ok_or_else(|| {
            format!(
                "not enough arguments for format {spec:?}: it needs at least {}",
                next_arg + 1
            )
        })?;
        next_arg += 1;
        let text = format_one(verb, &sp, arg)?;
        pad(
            &mut out,
            &text,
            &sp,
            matches!(
                verb,
                'd' | 'b' | 'o' | 'x' | 'X' | 'e' | 'E' | 'f' | 'g' | 'G'
            ),
        );
        if out.len() > MAX_RESULT_BYTES {
            return Err(too_big("format", out.len()));
        }
    }
    // As Go: with explicit argument indexes, unused arguments are not an error.
    if next_arg < args.len() && !reordered {
        return Err(format!(
            "too many arguments for format {spec:?}: {} given, {next_arg} used",
            args.len()
        ));
    }
    Ok(out)
}

pub(super) fn digits(it: &mut std::iter::Peekable<std::str::Chars<'_>>) -> Option<usize> {
    let mut n: Option<usize> = None;
    while let Some(d) = it.peek().and_then(|c| c.to_digit(10)) {
        n = Some(n.unwrap_or(0).saturating_mul(10).saturating_add(d as usize));
        it.next();
    }
    n
}

/// One formatted argument, before padding.
pub(super) fn format_one(verb: char, sp: &Spec, arg: &Value) -> Result<String, String> {
    let sign = |neg: bool| {
        if neg {
            "-"
        } else if sp.plus {
            "+"
        } else if sp.space {
            " "
        } else {
            ""
        }
    };
    let int = |v: &Value| -> Result<i128, String> {
        let x = num(v)?;
        if x.fract() != 0.0 {
            return Err(format!("`%{verb}` needs a whole number, found {x}"));
        }
        Ok(x as i128)
    };
    Ok(match verb {
        'v' if sp.sharp => serde_json::to_string(&to_json(arg)).map_err(|e| e.to_string())?,
        'v' => match arg {
            Value::Number(_) => {
                let x = num(arg)?;
                format!("{}{}", sign(x < 0.0), st(&number(x.abs())?))
            }
            Value::Array(_) | Value::Object(_) => {
                serde_json::to_string(&to_json(arg)).map_err(|e| e.to_string())?
            }
            other => st(other),
        },
        's' => match arg {
            Value::Array(_) | Value::Object(_) => {
                return Err(format!("`%s` cannot format a {}", type_name(arg)));
            }
            other => truncate(&st(other), sp.prec),
        },
        'q' => serde_json::to_string(&truncate(&st(arg), sp.prec)).map_err(|e| e.to_string())?,
        't' => match crate::value::convert(arg.clone(), &crate::schema::VarType::Bool)? {
            Value::Bool(b) => b.to_string(),
            _ => return Err("`%t` needs a bool".to_owned()),
        },
        'd' | 'b' | 'o' | 'x' | 'X' => {
            let n = int(arg)?;
            let digits = match verb {
                'd' => n.unsigned_abs().to_string(),
                'b' => format!("{:b}", n.unsigned_abs()),
                'o' => format!("{:o}", n.unsigned_abs()),
                'x' => format!("{:x}", n.unsigned_abs()),
                _ => format!("{:X}", n.unsigned_abs()),
            };
            let prefix = match (sp.sharp, verb) {
                (true, 'b') => "0b",
                (true, 'o') => "0",
                (true, 'x') => "0x",
                (true, 'X') => "0X",
                _ => "",
            };
            format!("{}{prefix}{digits}", sign(n < 0))
        }
        'e' | 'E' | 'f' | 'g' | 'G' => {
            let x = num(arg)?;
            let body = match verb {
                'f' => format!("{:.*}", sp.prec.unwrap_or(6), x.abs()),
                'e' | 'E' => go_exp(x.abs(), sp.prec.unwrap_or(6)),
                _ => match sp.prec {
                    Some(p) => format!("{:.*}", p, x.abs()),
                    None => format!("{}", x.abs()),
                },
            };
            let body = if verb == 'E' || verb == 'G' {
                body.to_uppercase()
            } else {
                body
            };
            format!("{}{body}", sign(x < 0.0))
        }
        other => return Err(format!("unsupported format verb `%{other}`")),
    })
}

/// Go's `%e`: `1.234560e+03`.
pub(super) fn go_exp(x: f64, prec: usize) -> String {
    let s = format!("{x:.prec$e}");
    match s.split_once('e') {
        Some((m, e)) => {
            let (sign, digits) = e.strip_prefix('-').map_or(("+", e), |d| ("-", d));
            format!("{m}e{sign}{digits:0>2}")
        }
        None => s,
    }
}

pub(super) fn truncate(s: &str, prec: Option<usize>) -> String {
    match prec {
        Some(p) => s.chars().take(p).collect(),
        None => s.to_owned(),
    }
}

/// Pads to the width: left with `-`, with zeros after the sign for numbers with `0`.
pub(super) fn pad(out: &mut String, text: &str, sp: &Spec, numeric: bool) {
    let len = text.chars().count();
    let fill = sp.width.unwrap_or(0).saturating_sub(len);
    if sp.minus {
        out.push_str(text);
        out.extend(std::iter::repeat_n(' ', fill));
    } else if sp.zero && numeric {
        let split = text.find(|c: char| c.is_ascii_digit()).unwrap_or(0);
        out.push_str(&text[..split]);
        out.extend(std::iter::repeat_n('0', fill));
        out.push_str(&text[split..]);
    } else {
        out.extend(std::iter::repeat_n(' ', fill));
        out.push_str(text);
    }
}

/// `indent(n, s)`: `n` spaces after every newline, bounded before anything is allocated.
pub(super) fn indent(a: &FuncArgs) -> Result<Value, String> {
    let n = num(&a[0])?;
    let s = st(&a[1]);
    if n < 0.0 || n.fract() != 0.0 {
        return Err(format!(
            "the number of spaces must be a whole number >= 0, found {n}"
        ));
    }
    let lines = s.matches('\n').count();
    let size = (n as u128) * (lines as u128) + s.len() as u128;
    if size > MAX_RESULT_BYTES as u128 || n > MAX_RESULT_BYTES as f64 {
        return Err(format!(
            "indenting by {n} spaces would build a result of {size} bytes, more than the limit of {MAX_RESULT_BYTES} bytes (16 MiB)"
        ));
    }
    let pad = " ".repeat(n as usize);
    Ok(Value::String(s.replace('\n', &format!("\n{pad}"))))
}

pub(super) fn formatlist(a: FuncArgs) -> Result<Value, String> {
    let v = a.into_values();
    let spec = st(&v[0]);
    let n = v[1..]
        .iter()
        .filter_map(|x| {
            if let Value::Array(a) = x {
                Some(a.len())
            } else {
                None
            }
        })
        .max()
        .unwrap_or(1);
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let row: Vec<Value> = v[1..]
            .iter()
            .map(|x| match x {
                Value::Array(a) => a.get(i).cloned().unwrap_or(Value::Null),
                other => other.clone(),
            })
            .collect();
        out.push(Value::String(format(&spec, &row)?));
    }
    Ok(Value::Array(out))
}

pub(super) fn regex_fn(a: &FuncArgs, all: bool) -> Result<Value, String> {
    let re = regex::Regex::new(&st(&a[0])).map_err(|e| format!("invalid regex: {e}"))?;
    let s = st(&a[1]);
    let one = |caps: regex::Captures<'_>| -> Value {
        let named: Vec<&str> = re.capture_names().flatten().collect();
        if !named.is_empty() {
            Value::Object(
                named
                    .iter()
                    .map(|n| {
                        (
                            (*n).to_owned(),
                            Value::String(caps.name(n).map_or("", |m| m.as_str()).to_owned()),
                        )
                    })
                    .collect(),
            )
        } else if caps.len() > 1 {
            Value::Array(
                caps.iter()
                    .skip(1)
                    .map(|m| Value::String(m.map_or("", |m| m.as_str()).to_owned()))
                    .collect(),
            )
        } else {
            Value::String(caps.get(0).map_or("", |m| m.as_str()).to_owned())
        }
    };
    if all {
        return Ok(Value::Array(re.captures_iter(&s).map(one).collect()));
    }
    re.captures(&s)
        .map(one)
        .ok_or_else(|| "pattern did not match".to_owned())
}

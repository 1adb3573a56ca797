//! hclog's JSON log lines (what a go-plugin plugin writes on stderr) turned into our logs:
//! `{"@level":"info","@message":"…","@module":"…","@timestamp":"…", key: value…}`.

use std::fmt;

/// One hclog record.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Record {
    pub(crate) level: String,
    pub(crate) module: String,
    pub(crate) message: String,
    /// The other keys, in the order they came.
    pub(crate) fields: Vec<(String, String)>,
}

/// The record in an hclog JSON line; `None` for any other line.
pub(crate) fn parse(line: &str) -> Option<Record> {
    let t = line.trim();
    if !t.starts_with('{') {
        return None;
    }
    let serde_json::Value::Object(map) = serde_json::from_str(t).ok()? else {
        return None;
    };
    let text = |v: &serde_json::Value| match v {
        serde_json::Value::String(s) => s.clone(),
        v => v.to_string(),
    };
    let level = map.get("@level").map(text)?;
    let mut rec = Record {
        level,
        module: map.get("@module").map(text).unwrap_or_default(),
        message: map.get("@message").map(text).unwrap_or_default(),
        fields: Vec::new(),
    };
    for (k, v) in &map {
        if !k.starts_with('@') {
            rec.fields.push((k.clone(), text(v)));
        }
    }
    Some(rec)
}

impl Record {
    /// Logs the record through `tracing` at its level, naming the plugin.
    pub(crate) fn log(&self, plugin: &str) {
        let fields = self
            .fields
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join(" ");
        let (module, msg) = (self.module.as_str(), self.message.as_str());
        match self.level.as_str() {
            "trace" => tracing::trace!(plugin, module, fields, "{msg}"),
            "debug" => tracing::debug!(plugin, module, fields, "{msg}"),
            "warn" => tracing::warn!(plugin, module, fields, "{msg}"),
            "error" => tracing::error!(plugin, module, fields, "{msg}"),
            _ => tracing::info!(plugin, module, fields, "{msg}"),
        }
    }
}

impl fmt::Display for Record {
    /// `[ERROR] module: message: key=value`, as hclog prints it for people.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "[{}]", self.level.to_ascii_uppercase())?;
        if !self.module.is_empty() {
            write!(f, " {}:", self.module)?;
        }
        write!(f, " {}", self.message)?;
        for (i, (k, v)) in self.fields.iter().enumerate() {
            write!(f, "{}{k}={v}", if i == 0 { ": " } else { " " })?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_lines_become_records_and_others_do_not() {
        let r = parse(r#"{"@level":"error","@message":"deploy failed","@module":"kubernetes","@timestamp":"2026-01-01T00:00:00Z","err":"no cluster","attempt":2}"#).unwrap();
        assert_eq!(r.level, "error");
        assert_eq!(
            r.to_string(),
            "[ERROR] kubernetes: deploy failed: attempt=2 err=no cluster"
        );
        assert_eq!(parse("panic: runtime error"), None);
        assert_eq!(parse(r#"{"no":"level"}"#), None);
        assert_eq!(parse("{not json"), None);
    }
}

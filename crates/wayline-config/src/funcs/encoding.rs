//! Encodings, each through a maintained crate rather than by hand: YAML (`serde_yaml_ng`, the
//! maintained fork of `serde_yaml`, through serde's data model so values map one to one), CSV
//! (`csv`), gzip (`flate2`, so `base64gzip` really compresses) and URL encoding
//! (`percent-encoding`, with Go's `url.QueryEscape` rules that HCL's `urlencode` follows).

use std::io::Write as _;

use super::*;

/// `base64gzip`: gzip at the default level.
pub(super) fn gzip(data: &[u8]) -> Result<Vec<u8>, String> {
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(data).map_err(|e| e.to_string())?;
    enc.finish().map_err(|e| e.to_string())
}

/// `yamlencode`: a YAML document.
pub(super) fn yaml_encode(v: &Value) -> Result<Value, String> {
    serde_yaml_ng::to_string(&to_json(v))
        .map(Value::String)
        .map_err(|e| format!("cannot encode as YAML: {e}"))
}

/// `yamldecode`: one YAML document to a value (numbers, bools and nulls typed as YAML says).
pub(super) fn yaml_decode(src: &str) -> Result<Value, String> {
    serde_yaml_ng::from_str::<serde_json::Value>(src)
        .map(|j| from_json(&j))
        .map_err(|e| format!("invalid YAML: {e}"))
}

/// `csvdecode`: a list of objects, one per record, keyed by the header line.
pub(super) fn csv_decode(s: &str) -> Result<Value, String> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .from_reader(s.as_bytes());
    let header: Vec<String> = reader
        .headers()
        .map_err(|e| e.to_string())?
        .iter()
        .map(str::to_owned)
        .collect();
    if header.is_empty() {
        return Err("missing header line".to_owned());
    }
    let mut out = Vec::new();
    for (i, record) in reader.records().enumerate() {
        let record = record.map_err(|e| match e.kind() {
            csv::ErrorKind::UnequalLengths { len, .. } => format!(
                "line {}: expected {} fields, found {len}",
                i + 2,
                header.len()
            ),
            _ => e.to_string(),
        })?;
        if out.len() >= MAX_RESULT_ITEMS {
            return Err(format!("more than {MAX_RESULT_ITEMS} records (the limit)"));
        }
        out.push(Value::Object(
            header
                .iter()
                .cloned()
                .zip(record.iter().map(|f| Value::String(f.to_owned())))
                .collect(),
        ));
    }
    Ok(Value::Array(out))
}

/// Everything but letters, digits and `-_.~` is escaped (Go's `url.QueryEscape`).
const QUERY: &percent_encoding::AsciiSet = &percent_encoding::NON_ALPHANUMERIC
    .remove(b'-')
    .remove(b'_')
    .remove(b'.')
    .remove(b'~');

/// `urlencode`: like Go's `url.QueryEscape`, a space is `+`.
pub(super) fn urlencode(s: &str) -> String {
    s.split(' ')
        .map(|part| percent_encoding::utf8_percent_encode(part, QUERY).to_string())
        .collect::<Vec<_>>()
        .join("+")
}

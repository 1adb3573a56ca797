//! The tunnel's first bytes, before HTTP/2 starts: the entrypoint says who it is, the URL
//! service answers `OK` or why not. One line each way, bounded.
//!
//! ```text
//! entrypoint → WLTUN/1 <deployment id> <instance id> <token>\n
//! service    → OK\n            (then HTTP/2: the service is the client)
//!            | ERR <reason>\n  (then the connection closes)
//! ```

use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};

/// The protocol word and version.
pub const MAGIC: &str = "WLTUN/1";

/// Longest preface line (the token is the long part).
pub const MAX_LINE: usize = 4096;

/// Who is opening a tunnel.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Hello {
    /// The deployment the tunnel serves.
    pub deployment_id: String,
    /// The instance (one entrypoint process).
    pub instance_id: String,
    /// The URL-service token of that deployment.
    pub token: String,
}

/// A preface that could not be read or was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
pub enum PrefaceError {
    /// The peer sent something else.
    #[error("bad tunnel preface: {0}")]
    Malformed(String),
    /// The URL service refused the tunnel.
    #[error("the URL service refused the tunnel: {0}")]
    Refused(String),
    /// The connection failed.
    #[error("tunnel connection: {0}")]
    Io(String),
}

fn io(e: std::io::Error) -> PrefaceError {
    PrefaceError::Io(e.to_string())
}

fn word_ok(w: &str) -> bool {
    !w.is_empty() && w.bytes().all(|b| b.is_ascii_graphic())
}

impl Hello {
    /// The line the entrypoint sends.
    pub fn line(&self) -> Result<String, PrefaceError> {
        for (what, w) in [
            ("deployment id", &self.deployment_id),
            ("instance id", &self.instance_id),
            ("token", &self.token),
        ] {
            if !word_ok(w) {
                return Err(PrefaceError::Malformed(format!(
                    "the {what} is empty or has spaces or control characters"
                )));
            }
        }
        let line = format!(
            "{MAGIC} {} {} {}\n",
            self.deployment_id, self.instance_id, self.token
        );
        if line.len() > MAX_LINE {
            return Err(PrefaceError::Malformed(format!(
                "longer than {MAX_LINE} bytes"
            )));
        }
        Ok(line)
    }

    /// Parses the entrypoint's line (without its newline).
    pub fn parse(line: &str) -> Result<Self, PrefaceError> {
        let mut words = line.split(' ');
        let bad = || {
            PrefaceError::Malformed(format!(
                "expected `{MAGIC} <deployment> <instance> <token>`"
            ))
        };
        if words.next() != Some(MAGIC) {
            return Err(bad());
        }
        let (Some(d), Some(i), Some(t), None) =
            (words.next(), words.next(), words.next(), words.next())
        else {
            return Err(bad());
        };
        if ![d, i, t].iter().all(|w| word_ok(w)) {
            return Err(bad());
        }
        Ok(Self {
            deployment_id: d.to_owned(),
            instance_id: i.to_owned(),
            token: t.to_owned(),
        })
    }
}

/// Reads one `\n`-terminated line of at most [`MAX_LINE`] bytes, byte by byte so nothing of
/// the HTTP/2 stream after it is consumed.
pub async fn read_line<R: AsyncRead + Unpin>(r: &mut R) -> Result<String, PrefaceError> {
    let mut buf = Vec::with_capacity(256);
    loop {
        let b = r.read_u8().await.map_err(io)?;
        if b == b'\n' {
            break;
        }
        if buf.len() >= MAX_LINE {
            return Err(PrefaceError::Malformed(format!(
                "longer than {MAX_LINE} bytes"
            )));
        }
        buf.push(b);
    }
    String::from_utf8(buf).map_err(|_| PrefaceError::Malformed("not UTF-8".into()))
}

/// The entrypoint's side: sends the hello, waits for the verdict.
pub async fn greet<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    hello: &Hello,
) -> Result<(), PrefaceError> {
    s.write_all(hello.line()?.as_bytes()).await.map_err(io)?;
    s.flush().await.map_err(io)?;
    let answer = read_line(s).await?;
    if answer == "OK" {
        return Ok(());
    }
    match answer.strip_prefix("ERR ") {
        Some(reason) => Err(PrefaceError::Refused(reason.to_owned())),
        None => Err(PrefaceError::Malformed(format!(
            "unexpected answer {answer:?}"
        ))),
    }
}

/// The service's answer.
pub async fn answer<S: AsyncWrite + Unpin>(
    s: &mut S,
    verdict: Result<(), &str>,
) -> Result<(), PrefaceError> {
    let line = match verdict {
        Ok(()) => "OK\n".to_owned(),
        Err(reason) => format!("ERR {}\n", reason.replace(['\n', '\r'], " ")),
    };
    s.write_all(line.as_bytes()).await.map_err(io)?;
    s.flush().await.map_err(io)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hello_round_trips_and_bad_ones_are_named() {
        let h = Hello {
            deployment_id: "01D".into(),
            instance_id: "01I".into(),
            token: "wl1.a.b".into(),
        };
        let line = h.line().unwrap();
        assert_eq!(line, "WLTUN/1 01D 01I wl1.a.b\n");
        assert_eq!(Hello::parse(line.trim_end()).unwrap(), h);
        let err = Hello::parse("GET / HTTP/1.1").unwrap_err();
        assert_eq!(
            err.to_string(),
            "bad tunnel preface: expected `WLTUN/1 <deployment> <instance> <token>`"
        );
        assert!(Hello::parse("WLTUN/1 a b c d").is_err());
        let spaced = Hello {
            token: "a b".into(),
            ..h
        };
        assert_eq!(
            spaced.line().unwrap_err().to_string(),
            "bad tunnel preface: the token is empty or has spaces or control characters"
        );
    }

    #[tokio::test]
    async fn lines_are_bounded_and_refusals_carry_the_reason() {
        let long = vec![b'a'; MAX_LINE + 10];
        let mut r: &[u8] = &long;
        assert_eq!(
            read_line(&mut r).await.unwrap_err().to_string(),
            "bad tunnel preface: longer than 4096 bytes"
        );
        let (mut a, mut b) = tokio::io::duplex(8192);
        let hello = Hello {
            deployment_id: "d".into(),
            instance_id: "i".into(),
            token: "t".into(),
        };
        let client = tokio::spawn(async move { greet(&mut a, &hello).await });
        let got = read_line(&mut b).await.unwrap();
        assert_eq!(got, "WLTUN/1 d i t");
        answer(&mut b, Err("no\nway")).await.unwrap();
        assert_eq!(
            client.await.unwrap().unwrap_err().to_string(),
            "the URL service refused the tunnel: no way"
        );
    }
}

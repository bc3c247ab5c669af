//! Spool file names: `{seq:020}-{instance}-{kind}-{spans}.{pb|pb.gz}`. The
//! instance (process id and a random number, fixed per `Spool`) keeps the
//! names of several providers and processes sharing one directory apart;
//! `seq` orders one instance's files. Names without an instance, written by
//! earlier versions, are still read.

use super::Kind;
use crate::export::config::Compression;

/// What a file name says about the request it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub seq: u64,
    pub instance: String,
    pub kind: Kind,
    /// The span count the writer put in the name; the body is what counts.
    pub spans: u64,
    pub compression: Compression,
}

/// Suffix of a file being written; never a request.
pub(crate) const TEMPORARY: &str = "tmp";
/// Suffix of a file set aside because its body does not decode.
pub(crate) const UNREADABLE: &str = "unreadable";

/// A name no other live `Spool` uses: this process's id and 64 random bits.
pub(crate) fn new_instance() -> String {
    format!("{:x}{:016x}", std::process::id(), rand::random::<u64>())
}

impl Name {
    pub fn render(&self) -> String {
        let encoding = match self.compression {
            Compression::Gzip => "pb.gz",
            Compression::None => "pb",
        };
        format!(
            "{:020}-{}-{}-{}.{encoding}",
            self.seq,
            self.instance,
            self.kind.as_str(),
            self.spans
        )
    }

    /// The inverse of `render`; `None` for any other file.
    pub fn parse(name: &str) -> Option<Self> {
        let (stem, compression) = if let Some(stem) = name.strip_suffix(".pb.gz") {
            (stem, Compression::Gzip)
        } else {
            (name.strip_suffix(".pb")?, Compression::None)
        };
        let parts: Vec<&str> = stem.split('-').collect();
        let (seq, instance, kind, spans) = match parts[..] {
            [seq, instance, kind, spans] => (seq, instance, kind, spans),
            [seq, kind, spans] => (seq, "", kind, spans),
            _ => return None,
        };
        let kind = match kind {
            "traces" => Kind::Traces,
            "metrics" => Kind::Metrics,
            _ => return None,
        };
        Some(Self {
            seq: seq.parse().ok()?,
            instance: instance.to_owned(),
            kind,
            spans: spans.parse().ok()?,
            compression,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_round_trip_and_old_names_still_parse() {
        let name = Name {
            seq: 7,
            instance: "1f2a".into(),
            kind: Kind::Metrics,
            spans: 0,
            compression: Compression::Gzip,
        };
        assert_eq!(
            name.render(),
            "00000000000000000007-1f2a-metrics-0.pb.gz".to_string()
        );
        assert_eq!(Name::parse(&name.render()), Some(name));
        assert_eq!(
            Name::parse("00000000000000000003-traces-12.pb"),
            Some(Name {
                seq: 3,
                instance: String::new(),
                kind: Kind::Traces,
                spans: 12,
                compression: Compression::None,
            })
        );
        for other in [
            "x.pb",
            "1-a-logs-2.pb",
            "1-a-traces-2.pb.gz.tmp",
            "1-a-traces-2.pb.unreadable",
        ] {
            assert_eq!(Name::parse(other), None, "{other}");
        }
    }

    #[test]
    fn instances_differ() {
        assert_ne!(new_instance(), new_instance());
    }
}

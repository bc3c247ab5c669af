//! Spool file names: `{seq:020}-{instance}-{owner}-{kind}-{spans}.{pb|pb.gz}`.
//! The instance (process id and a random number, fixed per `Spool`) keeps
//! the names of several providers and processes sharing one directory
//! apart; `seq` orders one instance's files; the owner (a hash of the
//! service name) says whose next run sends the file, so that the spans it
//! delivers count for the service that made them. Names of earlier
//! versions (`{seq}-{kind}-{spans}`) are still read, and sent by anyone.

use super::Kind;
use crate::export::config::Compression;

/// What a file name says about the request it holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Name {
    pub seq: u64,
    pub instance: String,
    /// `owner_of(service name)`; empty in names of earlier versions.
    pub owner: String,
    pub kind: Kind,
    /// The span count the writer put in the name; the body is what counts.
    pub spans: u64,
    pub compression: Compression,
}

/// Suffix of a file being written; never a request.
pub(crate) const TEMPORARY: &str = "tmp";
/// Suffix of a file set aside because its body does not decode.
pub(crate) const UNREADABLE: &str = "unreadable";

/// The owner part of a name for a service: FNV-1a (32 bits) of its name,
/// in hex, so that any name fits a file name and stays the same across
/// runs and builds.
pub(crate) fn owner_of(service: &str) -> String {
    let hash = service.bytes().fold(0x811c_9dc5_u32, |hash, byte| {
        (hash ^ u32::from(byte)).wrapping_mul(0x0100_0193)
    });
    format!("{hash:08x}")
}

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
            "{:020}-{}-{}-{}-{}.{encoding}",
            self.seq,
            self.instance,
            self.owner,
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
        let (seq, instance, owner, kind, spans) = match parts[..] {
            [seq, instance, owner, kind, spans] => (seq, instance, owner, kind, spans),
            [seq, kind, spans] => (seq, "", "", kind, spans),
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
            owner: owner.to_owned(),
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
            owner: owner_of("shop"),
            kind: Kind::Metrics,
            spans: 0,
            compression: Compression::Gzip,
        };
        assert_eq!(
            name.render(),
            "00000000000000000007-1f2a-a847e0a9-metrics-0.pb.gz".to_string()
        );
        assert_eq!(Name::parse(&name.render()), Some(name));
        assert_eq!(
            Name::parse("00000000000000000003-traces-12.pb"),
            Some(Name {
                seq: 3,
                instance: String::new(),
                owner: String::new(),
                kind: Kind::Traces,
                spans: 12,
                compression: Compression::None,
            })
        );
        for other in [
            "x.pb",
            "1-a-b-logs-2.pb",
            "1-a-traces-2.pb",
            "1-a-traces-2.pb.gz.tmp",
            "1-a-traces-2.pb.unreadable",
        ] {
            assert_eq!(Name::parse(other), None, "{other}");
        }
    }

    #[test]
    fn owners_are_stable_hashes_of_the_service_name() {
        // FNV-1a reference values: the empty input is the offset basis.
        assert_eq!(owner_of(""), "811c9dc5");
        assert_eq!(owner_of("a"), "e40c292c");
        assert_ne!(owner_of("shop-frontend"), owner_of("shop-checkout"));
    }

    #[test]
    fn instances_differ() {
        assert_ne!(new_instance(), new_instance());
    }
}

//! The outbound policy: which addresses and host names the server may reach for a URL that
//! arrived through the API (plan checks and webhook gates, notification targets, a guardrail's
//! `prometheus_url`). Pure: no I/O; [`crate::outbound::Guard`] applies it when resolving names,
//! before sending to a literal address, and to every redirect.
//!
//! **Refused by default** (issue 16, item 11), because a URL an environment-scoped admin writes
//! into a plan must not turn the server into a probe of its own host or its cloud account:
//!
//! - loopback: `127.0.0.0/8`, `::1`, and the names `localhost` and `*.localhost`;
//! - link-local: `169.254.0.0/16`, `fe80::/10`;
//! - cloud metadata: `169.254.169.254` (AWS, GCP, Azure, OCI…), `fd00:ec2::254` (AWS),
//!   `100.100.100.200` (Alibaba), and the names `metadata.google.internal` and `metadata.goog`;
//! - unspecified: `0.0.0.0/8` and `::` (a connection to `0.0.0.0` reaches this host);
//!
//! and the same addresses written as IPv4-mapped (`::ffff:127.0.0.1`), IPv4-compatible
//! (`::127.0.0.1`) or NAT64 (`64:ff9b::7f00:1`) IPv6. Everything else is allowed, private
//! ranges (RFC 1918, `fc00::/7`) included: webhooks and Prometheus commonly live there, and the
//! issue asks for loopback, link-local and metadata only. An operator who wants those refused
//! too puts the server behind an egress firewall.
//!
//! **Allowed on request**: `serve --allow-outbound` takes CIDRs (`10.1.2.0/24`), addresses
//! (`127.0.0.1`, an address being its own /32 or /128) and host names (`prometheus.internal`,
//! or `*.svc.cluster.local` for every name under a suffix). An address inside an allowed CIDR is
//! allowed whatever its kind; a listed host name is reached whatever it resolves to.

use std::fmt;
use std::net::{IpAddr, Ipv4Addr, Ipv6Addr};

/// Why an address or name is refused by default.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    /// `127.0.0.0/8`, `::1`, `localhost`.
    Loopback,
    /// `169.254.0.0/16`, `fe80::/10`.
    LinkLocal,
    /// A cloud provider's instance metadata service.
    Metadata,
    /// `0.0.0.0/8`, `::`.
    Unspecified,
}

impl Refused {
    fn describe(self) -> &'static str {
        match self {
            Refused::Loopback => "a loopback address",
            Refused::LinkLocal => "a link-local address",
            Refused::Metadata => "a cloud metadata address",
            Refused::Unspecified => "an unspecified address (this host)",
        }
    }
}

/// A refusal: what was refused and why, in words that checks' evidence, verdicts, the delivery
/// log and `…/test` answers show (to every reader: it quotes nothing from a response).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Refusal {
    /// The address or host name refused.
    pub what: String,
    /// The host name it was resolved from, when it was.
    pub resolved_from: Option<String>,
    /// Why.
    pub why: Refused,
}

impl fmt::Display for Refusal {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "refused by the outbound policy: ")?;
        match &self.resolved_from {
            Some(host) => write!(f, "{host} resolves to {}", self.what)?,
            None => write!(f, "{}", self.what)?,
        }
        let allow = self.resolved_from.as_deref().unwrap_or(&self.what);
        write!(f, ", {}; `serve --allow-outbound {allow}` allows it", self.why.describe())
    }
}

impl std::error::Error for Refusal {}

/// Why an `--allow-outbound` entry does not parse.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum PolicyError {
    /// An empty entry (`a,,b`).
    #[error("an empty entry; write a CIDR (10.0.0.0/8), an address (127.0.0.1) or a host name")]
    Empty,
    /// A URL rather than a host.
    #[error("{0:?} is a URL; write only its host (e.g. prometheus.internal)")]
    Url(String),
    /// A port after the host.
    #[error("{0:?} has a port; an entry allows a host or network on every port")]
    Port(String),
    /// A CIDR whose prefix length is not a number up to the family's width.
    #[error("{entry:?}: the prefix length must be 0 to {max}")]
    Prefix {
        /// The entry.
        entry: String,
        /// 32 or 128.
        max: u8,
    },
    /// A CIDR with bits set beyond its prefix (`10.0.0.1/8`), most likely a typo.
    #[error("{entry:?} has bits set beyond its /{prefix} prefix; write {network}/{prefix}")]
    HostBits {
        /// The entry.
        entry: String,
        /// Its network address.
        network: IpAddr,
        /// Its prefix length.
        prefix: u8,
    },
    /// Neither an address, a CIDR nor a host name.
    #[error(
        "{0:?} is not a CIDR (10.0.0.0/8), an address (127.0.0.1) or a host name (prometheus.internal, *.svc.cluster.local)"
    )]
    Invalid(String),
}

/// An IP network: an address and a prefix length, host bits clear.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Net {
    addr: IpAddr,
    prefix: u8,
}

impl Net {
    /// Whether `ip` lies inside (an IPv4 network never holds an IPv6 address, nor the reverse).
    pub fn contains(&self, ip: IpAddr) -> bool {
        match (self.addr, ip) {
            (IpAddr::V4(n), IpAddr::V4(a)) => {
                mask32(u32::from(a), self.prefix) == mask32(u32::from(n), self.prefix)
            }
            (IpAddr::V6(n), IpAddr::V6(a)) => {
                mask128(u128::from(a), self.prefix) == mask128(u128::from(n), self.prefix)
            }
            _ => false,
        }
    }
}

impl fmt::Display for Net {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}/{}", self.addr, self.prefix)
    }
}

fn mask32(v: u32, prefix: u8) -> u32 {
    if prefix == 0 { 0 } else { v & (u32::MAX << (32 - u32::from(prefix))) }
}

fn mask128(v: u128, prefix: u8) -> u128 {
    if prefix == 0 { 0 } else { v & (u128::MAX << (128 - u32::from(prefix))) }
}

/// A host name rule: one name, or every name under a suffix (`*.example.com`).
#[derive(Debug, Clone, PartialEq, Eq)]
enum HostRule {
    Exact(String),
    /// The suffix with its leading dot (`.example.com`).
    Under(String),
}

impl HostRule {
    fn matches(&self, host: &str) -> bool {
        match self {
            HostRule::Exact(h) => h == host,
            HostRule::Under(suffix) => host.len() > suffix.len() && host.ends_with(suffix.as_str()),
        }
    }
}

/// What the server may reach for URLs that arrived through the API. The default refuses
/// loopback, link-local, metadata and unspecified addresses; [`Policy::parse`] reads the
/// exceptions `serve --allow-outbound` gives.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Policy {
    nets: Vec<Net>,
    hosts: Vec<HostRule>,
}

/// Host names refused by default, with why.
const REFUSED_NAMES: [(&str, Refused); 3] = [
    ("localhost", Refused::Loopback),
    ("metadata.google.internal", Refused::Metadata),
    ("metadata.goog", Refused::Metadata),
];

impl Policy {
    /// The policy with the exceptions in `entries`, each one entry or several separated by
    /// commas (as `--allow-outbound` takes them, repeated or comma-separated).
    pub fn parse<'a>(entries: impl IntoIterator<Item = &'a str>) -> Result<Policy, PolicyError> {
        let mut policy = Policy::default();
        for list in entries {
            for entry in list.split(',') {
                policy.add(entry.trim())?;
            }
        }
        Ok(policy)
    }

    fn add(&mut self, entry: &str) -> Result<(), PolicyError> {
        if entry.is_empty() {
            return Err(PolicyError::Empty);
        }
        if entry.contains("://") {
            return Err(PolicyError::Url(entry.to_owned()));
        }
        if let Some((addr, prefix)) = entry.split_once('/') {
            let addr = parse_ip(addr).ok_or_else(|| PolicyError::Invalid(entry.to_owned()))?;
            let max = if addr.is_ipv4() { 32 } else { 128 };
            let prefix = prefix
                .parse::<u8>()
                .ok()
                .filter(|p| *p <= max && !prefix.starts_with('+'))
                .ok_or_else(|| PolicyError::Prefix { entry: entry.to_owned(), max })?;
            let network = match addr {
                IpAddr::V4(a) => IpAddr::V4(Ipv4Addr::from(mask32(u32::from(a), prefix))),
                IpAddr::V6(a) => IpAddr::V6(Ipv6Addr::from(mask128(u128::from(a), prefix))),
            };
            if network != addr {
                return Err(PolicyError::HostBits { entry: entry.to_owned(), network, prefix });
            }
            self.nets.push(Net { addr, prefix });
            return Ok(());
        }
        if let Some(ip) = parse_ip(entry) {
            let prefix = if ip.is_ipv4() { 32 } else { 128 };
            self.nets.push(Net { addr: ip, prefix });
            return Ok(());
        }
        let (wildcard, name) = match entry.strip_prefix("*.") {
            Some(rest) => (true, rest),
            None => (false, entry),
        };
        let name = name.strip_suffix('.').unwrap_or(name).to_ascii_lowercase();
        if !is_host_name(&name) {
            // `host:port` reads better as its own mistake.
            let port = entry.rsplit_once(':').is_some_and(|(h, p)| {
                !p.is_empty()
                    && p.bytes().all(|b| b.is_ascii_digit())
                    && (parse_ip(h).is_some() || is_host_name(h))
            });
            return Err(if port {
                PolicyError::Port(entry.to_owned())
            } else {
                PolicyError::Invalid(entry.to_owned())
            });
        }
        self.hosts.push(if wildcard {
            HostRule::Under(format!(".{name}"))
        } else {
            HostRule::Exact(name)
        });
        Ok(())
    }

    /// Whether nothing is allowed beyond the default.
    pub fn is_default(&self) -> bool {
        self.nets.is_empty() && self.hosts.is_empty()
    }

    /// The entries, as `--allow-outbound` would take them (for the start-up log).
    pub fn entries(&self) -> Vec<String> {
        let nets = self.nets.iter().map(Net::to_string);
        let hosts = self.hosts.iter().map(|h| match h {
            HostRule::Exact(h) => h.clone(),
            HostRule::Under(s) => format!("*{s}"),
        });
        nets.chain(hosts).collect()
    }

    /// Whether `host` (a name, not an address) is listed: it is then reached whatever it
    /// resolves to.
    pub fn lists_host(&self, host: &str) -> bool {
        let host = normalize_name(host);
        self.hosts.iter().any(|rule| rule.matches(&host))
    }

    /// Whether the server may connect to `ip`.
    pub fn check_ip(&self, ip: IpAddr) -> Result<(), Refusal> {
        let plain = canonical(ip);
        if self.nets.iter().any(|n| n.contains(ip) || n.contains(plain)) {
            return Ok(());
        }
        match classify(ip) {
            None => Ok(()),
            Some(why) => Err(Refusal { what: plain.to_string(), resolved_from: None, why }),
        }
    }

    /// Whether the server may look up and reach host name `host` (its addresses are checked
    /// again when it resolves, unless the name is listed).
    pub fn check_name(&self, host: &str) -> Result<(), Refusal> {
        let name = normalize_name(host);
        if self.lists_host(&name) {
            return Ok(());
        }
        let refused = REFUSED_NAMES
            .iter()
            .find(|(n, _)| *n == name)
            .map(|(_, why)| *why)
            .or_else(|| name.ends_with(".localhost").then_some(Refused::Loopback));
        match refused {
            None => Ok(()),
            Some(why) => Err(Refusal { what: name, resolved_from: None, why }),
        }
    }

    /// Whether the server may send to `host` as a URL gives it: an address (IPv6 with or without
    /// brackets), checked as such, or a name, checked by name (its addresses are checked when
    /// it resolves).
    pub fn check_host(&self, host: &str) -> Result<(), Refusal> {
        let bare = host.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(host);
        match parse_ip(bare) {
            Some(ip) => self.check_ip(ip),
            None => self.check_name(bare),
        }
    }
}

/// A name lowercased and without its trailing dot (`LocalHost.` is `localhost`).
fn normalize_name(host: &str) -> String {
    host.strip_suffix('.').unwrap_or(host).to_ascii_lowercase()
}

/// An address as written in an entry or a URL's host (IPv6 may come in brackets).
fn parse_ip(s: &str) -> Option<IpAddr> {
    let s = s.strip_prefix('[').and_then(|h| h.strip_suffix(']')).unwrap_or(s);
    s.parse().ok()
}

/// A DNS name: dot-separated labels of letters, digits, `-` and `_`, at most 63 bytes each and
/// 253 in all, not all digits (a numeric "name" is a mistyped address).
fn is_host_name(s: &str) -> bool {
    !s.is_empty()
        && s.len() <= 253
        && s.split('.').all(|label| {
            !label.is_empty()
                && label.len() <= 63
                && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
                && !label.starts_with('-')
                && !label.ends_with('-')
        })
        && !s.split('.').all(|label| label.bytes().all(|b| b.is_ascii_digit()))
}

/// The IPv4 address an IPv6 address stands for, where it stands for one: IPv4-mapped
/// (`::ffff:a.b.c.d`), IPv4-compatible (`::a.b.c.d` from `::1.0.0.0` up, so `::` and `::1`
/// stay IPv6's own) and NAT64 (`64:ff9b::a.b.c.d`); otherwise the address itself.
pub fn canonical(ip: IpAddr) -> IpAddr {
    let IpAddr::V6(v6) = ip else { return ip };
    if let Some(v4) = v6.to_ipv4_mapped() {
        return IpAddr::V4(v4);
    }
    let bits = u128::from(v6);
    let low = Ipv4Addr::from((bits & 0xffff_ffff) as u32);
    // `::a.b.c.d` from 1.0.0.0 up: below that, `::`, `::1` and friends are IPv6's own.
    let compatible = bits >> 32 == 0 && bits >= 0x0100_0000;
    let nat64 = bits >> 32 == 0x0064_ff9b_0000_0000_0000_0000;
    if compatible || nat64 { IpAddr::V4(low) } else { ip }
}

/// Why `ip` is refused by default, if it is.
pub fn classify(ip: IpAddr) -> Option<Refused> {
    match canonical(ip) {
        IpAddr::V4(v4) => {
            let o = v4.octets();
            if v4 == Ipv4Addr::new(169, 254, 169, 254) || v4 == Ipv4Addr::new(100, 100, 100, 200) {
                Some(Refused::Metadata)
            } else if o[0] == 127 {
                Some(Refused::Loopback)
            } else if o[0] == 169 && o[1] == 254 {
                Some(Refused::LinkLocal)
            } else if o[0] == 0 {
                Some(Refused::Unspecified)
            } else {
                None
            }
        }
        IpAddr::V6(v6) => {
            if v6 == Ipv6Addr::new(0xfd00, 0x0ec2, 0, 0, 0, 0, 0, 0x0254) {
                Some(Refused::Metadata)
            } else if v6.is_loopback() {
                Some(Refused::Loopback)
            } else if v6.is_unspecified() {
                Some(Refused::Unspecified)
            } else if v6.segments()[0] & 0xffc0 == 0xfe80 {
                Some(Refused::LinkLocal)
            } else {
                None
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ip(s: &str) -> IpAddr {
        s.parse().unwrap()
    }

    /// `(address, refused by default as)`.
    #[test]
    fn the_default_refuses_loopback_link_local_metadata_and_unspecified() {
        let cases: &[(&str, Option<Refused>)] = &[
            ("127.0.0.1", Some(Refused::Loopback)),
            ("127.255.3.4", Some(Refused::Loopback)),
            ("::1", Some(Refused::Loopback)),
            ("169.254.1.1", Some(Refused::LinkLocal)),
            ("fe80::1", Some(Refused::LinkLocal)),
            ("febf:ffff::1", Some(Refused::LinkLocal)),
            ("169.254.169.254", Some(Refused::Metadata)),
            ("fd00:ec2::254", Some(Refused::Metadata)),
            ("100.100.100.200", Some(Refused::Metadata)),
            ("0.0.0.0", Some(Refused::Unspecified)),
            ("0.1.2.3", Some(Refused::Unspecified)),
            ("::", Some(Refused::Unspecified)),
            // Other spellings of the same addresses.
            ("::ffff:127.0.0.1", Some(Refused::Loopback)),
            ("::ffff:169.254.169.254", Some(Refused::Metadata)),
            ("::ffff:0.0.0.0", Some(Refused::Unspecified)),
            ("::127.0.0.1", Some(Refused::Loopback)),
            ("64:ff9b::7f00:1", Some(Refused::Loopback)),
            ("64:ff9b::a9fe:a9fe", Some(Refused::Metadata)),
            // Allowed: public and private ranges alike.
            ("8.8.8.8", None),
            ("10.0.0.1", None),
            ("192.168.1.1", None),
            ("172.16.0.1", None),
            ("100.64.0.1", None),
            ("fd00::1", None),
            ("fec0::1", None),
            ("2001:db8::1", None),
            ("::ffff:10.0.0.1", None),
            ("::2", None),
        ];
        let policy = Policy::default();
        for (addr, want) in cases {
            assert_eq!(classify(ip(addr)), *want, "{addr}");
            assert_eq!(policy.check_ip(ip(addr)).err().map(|r| r.why), *want, "{addr}");
        }
    }

    #[test]
    fn refusals_say_what_why_and_how_to_allow_it() {
        let r = Policy::default().check_ip(ip("::ffff:127.0.0.1")).unwrap_err();
        assert_eq!(
            r.to_string(),
            "refused by the outbound policy: 127.0.0.1, a loopback address; \
             `serve --allow-outbound 127.0.0.1` allows it"
        );
        let r = Refusal { resolved_from: Some("db.internal".into()), ..r };
        assert_eq!(
            r.to_string(),
            "refused by the outbound policy: db.internal resolves to 127.0.0.1, a loopback \
             address; `serve --allow-outbound db.internal` allows it"
        );
    }

    #[test]
    fn names_are_refused_by_name_unless_listed() {
        let policy = Policy::default();
        for (host, why) in [
            ("localhost", Refused::Loopback),
            ("LOCALHOST.", Refused::Loopback),
            ("api.localhost", Refused::Loopback),
            ("metadata.google.internal", Refused::Metadata),
            ("metadata.goog", Refused::Metadata),
        ] {
            assert_eq!(policy.check_host(host).unwrap_err().why, why, "{host}");
        }
        assert!(policy.check_host("example.com").is_ok());
        assert!(policy.check_host("notlocalhost").is_ok());
        assert_eq!(policy.check_host("[::1]").unwrap_err().why, Refused::Loopback);
        assert_eq!(policy.check_host("127.0.0.1").unwrap_err().why, Refused::Loopback);
        let allowed = Policy::parse(["localhost", "metadata.google.internal"]).unwrap();
        assert!(allowed.check_host("localhost").is_ok());
        assert!(allowed.check_host("metadata.google.internal").is_ok());
        assert!(allowed.check_host("api.localhost").is_err(), "only the name listed");
    }

    #[test]
    fn entries_allow_networks_addresses_and_names() {
        let p = Policy::parse(["127.0.0.1/32", "10.0.0.0/8, ::1", "*.svc.cluster.local"]).unwrap();
        assert!(p.check_ip(ip("127.0.0.1")).is_ok());
        assert!(p.check_ip(ip("::ffff:127.0.0.1")).is_ok(), "IPv4-mapped form of an allowed one");
        assert!(p.check_ip(ip("127.0.0.2")).is_err());
        assert!(p.check_ip(ip("::1")).is_ok());
        assert!(p.check_ip(ip("169.254.169.254")).is_err());
        assert!(p.lists_host("prometheus.monitoring.svc.cluster.local"));
        assert!(p.lists_host("Prometheus.SVC.cluster.local."));
        assert!(!p.lists_host("svc.cluster.local"), "a wildcard needs a label before it");
        let all = Policy::parse(["0.0.0.0/0", "::/0"]).unwrap();
        assert!(all.check_ip(ip("169.254.169.254")).is_ok());
        assert!(all.check_ip(ip("fe80::1")).is_ok());
        let link = Policy::parse(["169.254.0.0/16"]).unwrap();
        assert!(link.check_ip(ip("169.254.169.254")).is_ok(), "an allowed CIDR holds metadata too");
        assert_eq!(
            p.entries(),
            ["127.0.0.1/32", "10.0.0.0/8", "::1/128", "*.svc.cluster.local"].map(String::from)
        );
        assert!(Policy::default().is_default() && !p.is_default());
    }

    #[test]
    fn bad_entries_say_what_is_wrong() {
        let err = |s: &str| Policy::parse([s]).unwrap_err().to_string();
        assert_eq!(
            err("10.0.0.1/8"),
            "\"10.0.0.1/8\" has bits set beyond its /8 prefix; write 10.0.0.0/8"
        );
        assert_eq!(err("10.0.0.0/33"), "\"10.0.0.0/33\": the prefix length must be 0 to 32");
        assert_eq!(err("::/129"), "\"::/129\": the prefix length must be 0 to 128");
        assert_eq!(err("10.0.0.0/x"), "\"10.0.0.0/x\": the prefix length must be 0 to 32");
        assert_eq!(err("10.0.0.0/+8"), "\"10.0.0.0/+8\": the prefix length must be 0 to 32");
        assert!(err("http://prometheus:9090").contains("is a URL"));
        assert!(err("127.0.0.1:9090").contains("has a port"));
        assert!(err("prometheus:9090").contains("has a port"));
        assert!(err("a,,b").contains("an empty entry"));
        assert!(err("1.2.3").contains("is not a CIDR"));
        assert!(err("300.1.1.1").contains("is not a CIDR"));
        assert!(err("*").contains("is not a CIDR"));
        assert!(err("bad host").contains("is not a CIDR"));
        assert!(err("10.0.0.0.0/8").contains("is not a CIDR"));
        assert!(Policy::parse(["[::1]", "prometheus", "a-b.c_d.example."]).is_ok());
    }

    proptest::proptest! {
        /// Whatever an operator types, parsing answers (never panics), and whatever a URL
        /// holds, checking it answers.
        #[test]
        fn parsing_and_checking_never_panic(s in "\\PC{0,64}", t in "[0-9a-f:./\\[\\]*,-]{0,48}") {
            let _ = Policy::parse([s.as_str()]);
            let _ = Policy::parse([t.as_str()]);
            let _ = Policy::default().check_host(&s);
            let _ = Policy::default().check_host(&t);
            if let Ok(p) = Policy::parse([t.as_str()]) {
                let _ = p.check_host(&s);
                let _ = p.entries();
            }
        }

        /// Every IPv4 address and its IPv4-mapped IPv6 form are judged alike.
        #[test]
        fn mapped_addresses_are_judged_as_their_ipv4(a in proptest::prelude::any::<u32>()) {
            let v4 = Ipv4Addr::from(a);
            let mapped = IpAddr::V6(v4.to_ipv6_mapped());
            proptest::prop_assert_eq!(classify(IpAddr::V4(v4)), classify(mapped));
        }
    }
}

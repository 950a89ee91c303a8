//! Checked values of a plan: DNS names, SANs, durations, versions, URLs.
//! Each parser returns a message fit for a diagnostic on failure.

use std::net::IpAddr;
use std::time::Duration;

use crate::diag::RuleId;

/// A SAN as written in a plan, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanValue {
    /// An IP address SAN.
    Ip(IpAddr),
    /// A DNS name SAN (possibly a wildcard).
    Dns(String),
}

/// Why a SAN was rejected.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SanError {
    /// A network, not an address.
    Cidr,
    /// Neither an IP address nor a valid DNS name.
    Invalid(String),
}

/// Classifies a SAN: IP addresses become IP SANs, names DNS SANs; a CIDR is
/// neither.
pub fn parse_san(text: &str) -> Result<SanValue, SanError> {
    let trimmed = text.trim();
    if let Ok(ip) = trimmed.parse::<IpAddr>() {
        return Ok(SanValue::Ip(ip));
    }
    if trimmed.parse::<ipnet::IpNet>().is_ok() {
        return Err(SanError::Cidr);
    }
    match check_dns_name(trimmed, true) {
        Ok(()) => Ok(SanValue::Dns(trimmed.to_ascii_lowercase())),
        Err(reason) => Err(SanError::Invalid(reason)),
    }
}

/// Checks a DNS name by RFC 1123; a wildcard is allowed only as the whole
/// leftmost label and only when `allow_wildcard`.
pub fn check_dns_name(name: &str, allow_wildcard: bool) -> Result<(), String> {
    if name.is_empty() {
        return Err("a DNS name cannot be empty".into());
    }
    if name.len() > 253 {
        return Err("a DNS name is at most 253 characters".into());
    }
    for (index, label) in name.split('.').enumerate() {
        if label == "*" {
            if !allow_wildcard {
                return Err("a wildcard is not allowed here".into());
            }
            if index != 0 {
                return Err("a wildcard may only be the leftmost label".into());
            }
            if name.split('.').count() < 3 {
                return Err("a wildcard needs at least two labels after it".into());
            }
            continue;
        }
        check_label(label)?;
    }
    if name.rsplit('.').next().is_some_and(|tld| tld.bytes().all(|b| b.is_ascii_digit())) {
        return Err("the last label of a DNS name cannot be all digits".into());
    }
    Ok(())
}

fn check_label(label: &str) -> Result<(), String> {
    if label.is_empty() {
        return Err("a DNS name cannot have an empty label".into());
    }
    if label.len() > 63 {
        return Err(format!("the label `{label}` is longer than 63 characters"));
    }
    if label.contains('*') {
        return Err("a wildcard must be a whole label".into());
    }
    if !label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-') {
        return Err(format!("the label `{label}` has a character other than a-z, 0-9 and `-`"));
    }
    if label.starts_with('-') || label.ends_with('-') {
        return Err(format!("the label `{label}` starts or ends with `-`"));
    }
    Ok(())
}

/// Checks a subject's `C`: RFC 5280 takes a two-letter ISO 3166 code,
/// written as a `PrintableString`.
pub fn check_country(text: &str) -> Result<(), String> {
    let code = text.trim();
    if code.len() == 2 && code.bytes().all(|b| b.is_ascii_alphabetic()) {
        Ok(())
    } else {
        Err(format!("`{text}` is not a country code: `C` is two letters (RFC 5280, ISO 3166)"))
    }
}

/// Parses a humantime duration (`8760h`, `1y`, `90d`); zero is rejected.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let duration = humantime::parse_duration(text.trim())
        .map_err(|error| format!("`{text}` is not a duration ({error}); write for example `8760h`, `365d` or `1y`"))?;
    if duration.is_zero() {
        return Err("a validity must be longer than zero".into());
    }
    if duration > Duration::from_hours(878_400) {
        return Err("a validity longer than 100 years is not supported".into());
    }
    Ok(duration)
}

/// What is wrong with a list of service networks, and which range (by
/// position) it is about, when it is about one.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServiceCidrError {
    /// The rule it breaks.
    pub rule: RuleId,
    /// What is wrong.
    pub message: String,
    /// The position of the range at fault, if one is.
    pub index: Option<usize>,
}

impl ServiceCidrError {
    fn new(rule: RuleId, index: Option<usize>, message: String) -> Self {
        Self { rule, message, index }
    }
}

/// The first Kubernetes minor whose API server allocates Service addresses
/// with the `IPAddress` allocator alone (`MultiCIDRServiceAllocator` and
/// `DisableAllocatorDualWrite` on by default), dropping the bitmap's limit of
/// 20 host bits.
const IPADDRESS_ALLOCATOR_MINOR: u32 = 34;

/// The shortest prefix the API server of `minor` accepts for a service
/// network: the bitmap allocator holds 20 host bits (`/12`, `/108`); the
/// `IPAddress` allocator spans at most a `/64` of IPv6. An IPv4 range wider
/// than `/12` is refused for every version, as kubeadm does.
#[must_use]
pub fn shortest_service_prefix(net: &ipnet::IpNet, minor: u32) -> u8 {
    match net {
        ipnet::IpNet::V4(_) => 12,
        ipnet::IpNet::V6(_) if minor >= IPADDRESS_ALLOCATOR_MINOR => 64,
        ipnet::IpNet::V6(_) => 108,
    }
}

/// Parses the service networks (`--service-cluster-ip-range`): one range, or
/// two of different IP families, each no wider than the API server of
/// Kubernetes 1.`minor` accepts (unchecked without a version) and with a
/// first address for the `kubernetes` Service.
pub fn parse_service_cidrs(ranges: &[&str], minor: Option<u32>) -> Result<Vec<ipnet::IpNet>, ServiceCidrError> {
    if ranges.is_empty() {
        return Err(ServiceCidrError::new(RuleId::InvalidCidr, None, "no service network is given".into()));
    }
    if ranges.len() > 2 {
        return Err(ServiceCidrError::new(
            RuleId::ServiceCidrFamilies,
            Some(2),
            format!("{} service networks are given; a cluster has one, or two of different IP families", ranges.len()),
        ));
    }
    let mut nets = Vec::with_capacity(ranges.len());
    for (index, text) in ranges.iter().enumerate() {
        let text = text.trim();
        let net = text
            .parse::<ipnet::IpNet>()
            .map_err(|_| ServiceCidrError::new(RuleId::InvalidCidr, Some(index), format!("`{text}` is not a CIDR")))?
            .trunc();
        if first_service_address(&net).is_none() {
            return Err(ServiceCidrError::new(
                RuleId::InvalidCidr,
                Some(index),
                format!("the service network `{net}` has no usable first address"),
            ));
        }
        if let Some(minor) = minor
            && net.prefix_len() < shortest_service_prefix(&net, minor)
        {
            let shortest = shortest_service_prefix(&net, minor);
            return Err(ServiceCidrError::new(
                RuleId::ServiceCidrTooLarge,
                Some(index),
                format!(
                    "the service network `{net}` is too large: the API server of Kubernetes 1.{minor} takes at most a /{shortest} of {}",
                    family(&net)
                ),
            ));
        }
        nets.push(net);
    }
    if let [first, second] = nets.as_slice()
        && family(first) == family(second)
    {
        return Err(ServiceCidrError::new(
            RuleId::ServiceCidrFamilies,
            Some(1),
            format!(
                "both service networks, `{first}` and `{second}`, are {}; a dual-stack cluster has one of each family",
                family(first)
            ),
        ));
    }
    Ok(nets)
}

fn family(net: &ipnet::IpNet) -> &'static str {
    match net {
        ipnet::IpNet::V4(_) => "IPv4",
        ipnet::IpNet::V6(_) => "IPv6",
    }
}

/// The first address of a service network, the one after the network
/// address: the `kubernetes` Service's. An IPv4 network too small to have
/// one that is not its broadcast address has none.
#[must_use]
pub fn first_service_address(net: &ipnet::IpNet) -> Option<IpAddr> {
    match net {
        ipnet::IpNet::V4(net) => {
            let first = std::net::Ipv4Addr::from(u32::from(net.network()).checked_add(1)?);
            (net.contains(&first) && first != net.broadcast()).then_some(first.into())
        }
        ipnet::IpNet::V6(net) => {
            let first = std::net::Ipv6Addr::from(u128::from(net.network()).checked_add(1)?);
            net.contains(&first).then_some(first.into())
        }
    }
}

/// The Kubernetes versions certplan knows the flags of.
pub const SUPPORTED_MINORS: std::ops::RangeInclusive<u32> = 16..=35;

/// Parses `MAJOR.MINOR` (a patch is allowed and ignored) and checks it is known.
pub fn parse_version(text: &str) -> Result<(u32, u32), String> {
    let trimmed = text.trim().trim_start_matches('v');
    let mut parts = trimmed.split('.');
    let major = parts.next().and_then(|p| p.parse::<u32>().ok());
    let minor = parts.next().and_then(|p| p.parse::<u32>().ok());
    match (major, minor) {
        (Some(1), Some(minor)) if SUPPORTED_MINORS.contains(&minor) => Ok((1, minor)),
        (Some(major), Some(minor)) => Err(format!(
            "Kubernetes {major}.{minor} is not a version certplan knows the flags of (1.{}–1.{})",
            SUPPORTED_MINORS.start(),
            SUPPORTED_MINORS.end()
        )),
        _ => Err(format!("`{text}` is not a Kubernetes version; write `MAJOR.MINOR`, for example `1.31`")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn classifies_sans() {
        assert_eq!(parse_san("10.0.0.1"), Ok(SanValue::Ip("10.0.0.1".parse().unwrap())));
        assert_eq!(parse_san("::1"), Ok(SanValue::Ip("::1".parse().unwrap())));
        assert_eq!(parse_san("Kube-API.example.com"), Ok(SanValue::Dns("kube-api.example.com".into())));
        assert_eq!(parse_san("192.168.214.1/24"), Err(SanError::Cidr));
        assert!(matches!(parse_san("bad_name.example.com"), Err(SanError::Invalid(_))));
        assert!(matches!(parse_san("a.*.example.com"), Err(SanError::Invalid(_))));
        assert!(parse_san("*.apps.example.com").is_ok());
        assert!(matches!(parse_san("*.com"), Err(SanError::Invalid(_))));
        assert!(matches!(parse_san("10.0.0.300"), Err(SanError::Invalid(_))));
    }

    #[test]
    fn parses_service_networks() {
        let nets = parse_service_cidrs(&["10.96.0.0/12", "fd00:10:96::/112"], Some(31)).unwrap();
        assert_eq!(nets.len(), 2);
        assert_eq!(first_service_address(&nets[0]), Some("10.96.0.1".parse().unwrap()));
        assert_eq!(first_service_address(&nets[1]), Some("fd00:10:96::1".parse().unwrap()));
        assert_eq!(
            parse_service_cidrs(&["fd00:10:96::/112", "10.96.0.0/12"], Some(31)).unwrap()[0].to_string(),
            "fd00:10:96::/112"
        );
        assert_eq!(parse_service_cidrs(&["10.96.0.5/12"], Some(31)).unwrap()[0].to_string(), "10.96.0.0/12");
        let v6 = parse_service_cidrs(&["fd00:10:96::/112"], Some(31)).unwrap();
        assert_eq!(first_service_address(&v6[0]), Some("fd00:10:96::1".parse().unwrap()));
        let rule = |ranges: &[&str], minor| parse_service_cidrs(ranges, Some(minor)).map_err(|e| (e.rule, e.index));
        assert_eq!(rule(&["10.96.0.0/31"], 31), Err((RuleId::InvalidCidr, Some(0))));
        assert_eq!(rule(&["fd00::1/128"], 31), Err((RuleId::InvalidCidr, Some(0))));
        assert_eq!(rule(&["10.96.0.0/12", "10.100.0.0/16"], 31), Err((RuleId::ServiceCidrFamilies, Some(1))));
        assert_eq!(
            rule(&["10.96.0.0/12", "fd00::/112", "fd01::/112"], 31),
            Err((RuleId::ServiceCidrFamilies, Some(2)))
        );
        assert_eq!(rule(&["10.0.0.0/8"], 31), Err((RuleId::ServiceCidrTooLarge, Some(0))));
        assert_eq!(rule(&["10.96.0.0/12", "fd00::/64"], 33), Err((RuleId::ServiceCidrTooLarge, Some(1))));
        assert!(parse_service_cidrs(&["10.96.0.0/12", "fd00::/64"], Some(34)).is_ok());
        assert_eq!(rule(&["fd00::/48"], 35), Err((RuleId::ServiceCidrTooLarge, Some(0))));
        assert_eq!(rule(&["10.96.0.1/32"], 31), Err((RuleId::InvalidCidr, Some(0))));
        assert_eq!(rule(&["10.96.0.0/12", "nonsense"], 31), Err((RuleId::InvalidCidr, Some(1))));
    }

    #[test]
    fn parses_durations_and_versions() {
        assert_eq!(parse_duration("8760h"), Ok(Duration::from_hours(8760)));
        assert!(parse_duration("forever").is_err());
        assert!(parse_duration("0s").is_err());
        assert_eq!(parse_version("1.31"), Ok((1, 31)));
        assert_eq!(parse_version("v1.29.3"), Ok((1, 29)));
        assert!(parse_version("1.8").is_err());
        assert!(parse_version("1.15").is_err());
        assert_eq!(parse_version("1.16"), Ok((1, 16)));
        assert!(parse_version("latest").is_err());
    }

    #[test]
    fn country_codes_are_two_letters() {
        assert!(check_country("CN").is_ok());
        assert!(check_country("de").is_ok());
        assert!(check_country("China").is_err());
        assert!(check_country("C").is_err());
        assert!(check_country("C1").is_err());
        assert!(check_country("ÄÖ").is_err());
    }
}

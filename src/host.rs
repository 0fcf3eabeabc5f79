//! Facts about this machine that more than one layer needs.

use std::net::Ipv4Addr;

/// The IPv4 routes of this machine's main table, as (destination, prefix length), read from
/// `/proc/net/route` (none when it cannot be read).
pub fn ipv4_routes() -> Vec<(Ipv4Addr, u32)> {
    parse_routes(&std::fs::read_to_string("/proc/net/route").unwrap_or_default())
}

/// `/proc/net/route`'s table: a header line, then hex little-endian Destination (2nd field) and
/// Mask (8th field) per route.
fn parse_routes(text: &str) -> Vec<(Ipv4Addr, u32)> {
    text.lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split_whitespace().collect();
            let dest = u32::from_str_radix(fields.get(1)?, 16).ok()?;
            let mask = u32::from_str_radix(fields.get(7)?, 16).ok()?;
            Some((Ipv4Addr::from(dest.to_le_bytes()), mask.count_ones()))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::net::Ipv4Addr;

    #[test]
    fn routes_are_read_with_their_prefix() {
        let table = "Iface\tDestination\tGateway \tFlags\tRefCnt\tUse\tMetric\tMask\t\tMTU\tWindow\tIRTT\n\
                     eth0\t00000000\t010200C0\t0003\t0\t0\t0\t00000000\t0\t0\t0\n\
                     gsh-1\t00000A0A\t00000000\t0001\t0\t0\t0\t0000FFFF\t0\t0\t0\n\
                     gsh-1\t646433C6\t021201C6\t0007\t0\t0\t0\tFFFFFFFF\t0\t0\t0\n";
        assert_eq!(
            super::parse_routes(table),
            vec![
                (Ipv4Addr::new(0, 0, 0, 0), 0),
                (Ipv4Addr::new(10, 10, 0, 0), 16),
                (Ipv4Addr::new(198, 51, 100, 100), 32)
            ]
        );
    }
}

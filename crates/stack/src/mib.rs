//! SNMP counters under Linux's names: the `Ip:`, `Icmp:` and `IcmpMsg:`
//! lines of `/proc/net/snmp` (and `nstat`), DESIGN.md §6.

macro_rules! mib {
    ($(#[$doc:meta])* $name:ident, $prefix:literal { $($field:ident = $lname:literal,)* }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
        pub struct $name {
            $(pub $field: u64,)*
        }

        impl $name {
            /// `(Linux name, value)` for every counter, in `/proc/net/snmp` order.
            pub fn fields(&self) -> impl Iterator<Item = (&'static str, u64)> + '_ {
                [$(($lname, self.$field),)*].into_iter()
            }

            /// The two lines `/proc/net/snmp` prints.
            pub fn render(&self) -> String {
                let names: Vec<&str> = self.fields().map(|(n, _)| n).collect();
                let vals: Vec<String> = self.fields().map(|(_, v)| v.to_string()).collect();
                format!("{p}: {}\n{p}: {}", names.join(" "), vals.join(" "), p = $prefix)
            }
        }
    };
}

mib!(
    /// `Ip:` (RFC 4293 ipSystemStats as Linux names them).
    IpMib, "Ip" {
        forwarding = "Forwarding",
        default_ttl = "DefaultTTL",
        in_receives = "InReceives",
        in_hdr_errors = "InHdrErrors",
        in_addr_errors = "InAddrErrors",
        forw_datagrams = "ForwDatagrams",
        in_unknown_protos = "InUnknownProtos",
        in_discards = "InDiscards",
        in_delivers = "InDelivers",
        out_requests = "OutRequests",
        out_discards = "OutDiscards",
        out_no_routes = "OutNoRoutes",
        reasm_timeout = "ReasmTimeout",
        reasm_reqds = "ReasmReqds",
        reasm_oks = "ReasmOKs",
        reasm_fails = "ReasmFails",
        frag_oks = "FragOKs",
        frag_fails = "FragFails",
        frag_creates = "FragCreates",
        out_transmits = "OutTransmits",
    }
);

mib!(
    /// `Icmp:`.
    IcmpMib, "Icmp" {
        in_msgs = "InMsgs",
        in_errors = "InErrors",
        in_csum_errors = "InCsumErrors",
        in_dest_unreachs = "InDestUnreachs",
        in_time_excds = "InTimeExcds",
        in_parm_probs = "InParmProbs",
        in_src_quenchs = "InSrcQuenchs",
        in_redirects = "InRedirects",
        in_echos = "InEchos",
        in_echo_reps = "InEchoReps",
        in_timestamps = "InTimestamps",
        in_timestamp_reps = "InTimestampReps",
        in_addr_masks = "InAddrMasks",
        in_addr_mask_reps = "InAddrMaskReps",
        out_msgs = "OutMsgs",
        out_errors = "OutErrors",
        out_rate_limit_global = "OutRateLimitGlobal",
        out_rate_limit_host = "OutRateLimitHost",
        out_dest_unreachs = "OutDestUnreachs",
        out_time_excds = "OutTimeExcds",
        out_parm_probs = "OutParmProbs",
        out_src_quenchs = "OutSrcQuenchs",
        out_redirects = "OutRedirects",
        out_echos = "OutEchos",
        out_echo_reps = "OutEchoReps",
        out_timestamps = "OutTimestamps",
        out_timestamp_reps = "OutTimestampReps",
        out_addr_masks = "OutAddrMasks",
        out_addr_mask_reps = "OutAddrMaskReps",
    }
);

impl IcmpMib {
    /// The `In…`/`Out…` pair counting ICMP type `t` (Linux's
    /// `icmp_pointers[].{in,out}` table), if it has one.
    fn per_type(&mut self, t: u8) -> Option<(&mut u64, &mut u64)> {
        Some(match t {
            0 => (&mut self.in_echo_reps, &mut self.out_echo_reps),
            3 => (&mut self.in_dest_unreachs, &mut self.out_dest_unreachs),
            4 => (&mut self.in_src_quenchs, &mut self.out_src_quenchs),
            5 => (&mut self.in_redirects, &mut self.out_redirects),
            8 => (&mut self.in_echos, &mut self.out_echos),
            11 => (&mut self.in_time_excds, &mut self.out_time_excds),
            12 => (&mut self.in_parm_probs, &mut self.out_parm_probs),
            13 => (&mut self.in_timestamps, &mut self.out_timestamps),
            14 => (&mut self.in_timestamp_reps, &mut self.out_timestamp_reps),
            17 => (&mut self.in_addr_masks, &mut self.out_addr_masks),
            18 => (&mut self.in_addr_mask_reps, &mut self.out_addr_mask_reps),
            _ => return None,
        })
    }

    /// Counts a received message of type `t` (`InMsgs` is counted apart).
    pub fn count_in(&mut self, t: u8) {
        if let Some((i, _)) = self.per_type(t) {
            *i += 1;
        }
    }

    /// Counts a sent message of type `t`, and `OutMsgs`.
    pub fn count_out(&mut self, t: u8) {
        self.out_msgs += 1;
        if let Some((_, o)) = self.per_type(t) {
            *o += 1;
        }
    }
}

/// `IcmpMsg:`: per-type counts, `InTypeN` / `OutTypeN`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IcmpMsgMib {
    pub in_type: [u64; 256],
    pub out_type: [u64; 256],
}

impl Default for IcmpMsgMib {
    fn default() -> Self {
        IcmpMsgMib {
            in_type: [0; 256],
            out_type: [0; 256],
        }
    }
}

impl IcmpMsgMib {
    /// The non-zero counters as `/proc/net/snmp` names them (`InType8`, …).
    pub fn fields(&self) -> Vec<(String, u64)> {
        let mut v = Vec::new();
        for (t, &n) in self.in_type.iter().enumerate().filter(|(_, n)| **n > 0) {
            v.push((format!("InType{t}"), n));
        }
        for (t, &n) in self.out_type.iter().enumerate().filter(|(_, n)| **n > 0) {
            v.push((format!("OutType{t}"), n));
        }
        v
    }
}

/// All the IPv4 MIBs of one stack.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Ipv4Mibs {
    pub ip: IpMib,
    pub icmp: IcmpMib,
    pub icmp_msg: IcmpMsgMib,
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renders_like_proc_net_snmp() {
        let m = IpMib {
            in_receives: 3,
            forw_datagrams: 1,
            ..IpMib::default()
        };
        let r = m.render();
        let mut lines = r.lines();
        let names = lines.next().unwrap();
        let vals = lines.next().unwrap();
        assert!(names.starts_with("Ip: Forwarding DefaultTTL InReceives InHdrErrors"));
        assert!(vals.starts_with("Ip: 0 0 3 0 0 1"));
        let mut msg = IcmpMsgMib::default();
        msg.in_type[8] = 2;
        msg.out_type[0] = 2;
        assert_eq!(
            msg.fields(),
            vec![("InType8".to_string(), 2), ("OutType0".to_string(), 2)]
        );
    }
}

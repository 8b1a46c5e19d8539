//! TCP authentication options on input, for a stack that holds no keys:
//! Linux's `tcp_do_parse_auth_options` (`tcp_input.c`), `tcp_inbound_hash`
//! (`include/net/tcp.h`), `tcp_inbound_md5_hash` (`tcp.c`) and the first
//! check of `tcp_inbound_ao_hash` (`tcp_ao.c`), as `tcp_v4_rcv` runs them
//! after the socket lookup; and the part of `tcp_v4_send_reset` that keeps
//! a segment carrying a signature from being answered with a RST when no
//! socket took it.
//!
//! netpath implements no `TCP_MD5SIG` / `TCP_AO_ADD_KEY` keys, so no
//! socket ever expects a signature and no segment is ever signed: a
//! segment carrying the RFC 2385 MD5 option (kind 19) is dropped
//! (`TcpExt: TCPMD5Unexpected`, drop reason `TCP_MD5UNEXPECTED`), one
//! carrying the RFC 5925 TCP-AO option (kind 29) likewise
//! (`TCPAOKeyNotFound`, `TCP_AOUNEXPECTED`; `TCPAOBad`, `TCP_AOFAILURE` at
//! a request in SYN_RECV), and a malformed or repeated authentication
//! option drops the segment as `TCP_AUTH_HDR` (no counter). Signing and
//! verifying digests (the keys, `tcp_v4_md5_hash_skb`) are not
//! implemented.

use netpath_wire::tcp::options::{kind, LEN_MD5SIG};

use super::input::Seg;
use super::sock::{TcpSock, TcpState};
use crate::drop::DropReason;
use crate::stack::Stack;

/// `TCPOPT_AO`: the TCP Authentication Option (RFC 5925).
const KIND_AO: u8 = 29;
/// `sizeof(struct tcp_ao_hdr)`: kind, length, key id, rnext key id.
const AO_HDR_LEN: usize = 4;
/// The walk stops when fewer bytes than the shortest authentication option
/// remain: `sizeof(struct tcp_ao_hdr) + 1` in a Linux built with TCP-AO (as
/// distributions build 6.18), `TCPOLEN_MD5SIG` without it.
const AUTH_MIN_LEN: usize = AO_HDR_LEN + 1;

/// The authentication options of a segment (`tcp_parse_auth_options`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub(crate) enum AuthOpt {
    /// Neither MD5 nor TCP-AO.
    #[default]
    None,
    /// One well-formed MD5 signature option.
    Md5,
    /// One TCP-AO option.
    Ao,
    /// A badly framed option, an MD5 option of the wrong length, a TCP-AO
    /// option too short, or two authentication options (`-EINVAL`,
    /// `-EEXIST`).
    Bad,
}

/// `tcp_do_parse_auth_options()`: walks a header's option bytes for the
/// MD5 and TCP-AO options. Unlike `tcp_parse_options`, an option whose
/// length is below 2 or runs past the end makes the whole header bad.
pub(crate) fn tcp_parse_auth_options(opts: &[u8]) -> AuthOpt {
    let mut found = AuthOpt::None;
    let mut at = 0;
    while opts.len() - at >= AUTH_MIN_LEN {
        let left = opts.len() - at;
        match opts[at] {
            kind::EOL => return found,
            kind::NOP => {
                at += 1;
                continue;
            }
            k => {
                let len = usize::from(opts[at + 1]);
                if len < 2 || len > left {
                    return AuthOpt::Bad;
                }
                let this = match k {
                    kind::MD5SIG if len != LEN_MD5SIG => return AuthOpt::Bad,
                    kind::MD5SIG => Some(AuthOpt::Md5),
                    KIND_AO if len <= AO_HDR_LEN => return AuthOpt::Bad,
                    KIND_AO => Some(AuthOpt::Ao),
                    _ => None,
                };
                if let Some(t) = this {
                    if found != AuthOpt::None {
                        return AuthOpt::Bad;
                    }
                    found = t;
                }
                at += len;
            }
        }
    }
    found
}

impl Stack {
    /// `tcp_inbound_hash()` for the socket a segment was looked up to (a
    /// listener, or a connection in any state but TIME-WAIT): `Some(reason)`
    /// when the segment must be dropped. With no keys anywhere, an unsigned
    /// segment always passes.
    pub(crate) fn tcp_inbound_hash(&mut self, sk: &TcpSock, seg: &Seg) -> Option<DropReason> {
        match seg.auth {
            AuthOpt::None => None,
            AuthOpt::Bad => Some(DropReason::TcpAuthHdr),
            // A request that did not use TCP-AO meets it (tcp_rsk_used_ao).
            AuthOpt::Ao if sk.state == TcpState::SynRecv && sk.parent.is_some() => {
                self.tcp.ext.tcp_ao_bad += 1;
                Some(DropReason::TcpAofailure)
            }
            // tcp_inbound_ao_hash: the socket has no TCP-AO keys.
            AuthOpt::Ao => {
                self.tcp.ext.tcp_ao_key_not_found += 1;
                Some(DropReason::TcpAounexpected)
            }
            // tcp_inbound_md5_hash: a signature and no key for the peer.
            AuthOpt::Md5 => {
                self.tcp.ext.tcp_md5_unexpected += 1;
                Some(DropReason::TcpMd5unexpected)
            }
        }
    }
}

/// `tcp_v4_send_reset()` without a socket: a segment with a bad
/// authentication option, or with an MD5 signature that no listener holds
/// a key to check, is not answered.
pub(crate) fn reset_suppressed(seg: &Seg) -> bool {
    matches!(seg.auth, AuthOpt::Bad | AuthOpt::Md5)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn md5(digest_byte: u8) -> Vec<u8> {
        let mut v = vec![kind::MD5SIG, 18];
        v.extend([digest_byte; 16]);
        v
    }

    #[test]
    fn parse_auth_options() {
        assert_eq!(tcp_parse_auth_options(&[]), AuthOpt::None);
        // Timestamps only (nop, nop, TS).
        let ts = [1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 2];
        assert_eq!(tcp_parse_auth_options(&ts), AuthOpt::None);
        // `<md5 …,nop,nop>` as the md5 scripts send it.
        let mut o = md5(7);
        o.extend([1, 1]);
        assert_eq!(tcp_parse_auth_options(&o), AuthOpt::Md5);
        // After timestamps.
        let mut o = ts.to_vec();
        o.extend(md5(1));
        assert_eq!(tcp_parse_auth_options(&o), AuthOpt::Md5);
        // Twice.
        let mut o = md5(1);
        o.extend(md5(2));
        assert_eq!(tcp_parse_auth_options(&o), AuthOpt::Bad);
        // MD5 of the wrong length.
        assert_eq!(
            tcp_parse_auth_options(&[19, 10, 0, 0, 0, 0, 0, 0, 0, 0]),
            AuthOpt::Bad
        );
        // A length past the end, or below 2, in any option.
        assert_eq!(
            tcp_parse_auth_options(&[2, 4, 5, 0xb4, 3, 9, 0, 0, 0]),
            AuthOpt::Bad
        );
        assert_eq!(tcp_parse_auth_options(&[3, 1, 0, 0, 0, 0]), AuthOpt::Bad);
        // ... unless fewer than 5 bytes are left when the walk gets there.
        assert_eq!(
            tcp_parse_auth_options(&[1, 1, 1, 1, 3, 9, 0, 0]),
            AuthOpt::None
        );
        // EOL ends the walk.
        assert_eq!(
            tcp_parse_auth_options(&[0, 3, 1, 0, 0, 0, 0]),
            AuthOpt::None
        );
        // TCP-AO: a header and at least one byte of MAC.
        assert_eq!(
            tcp_parse_auth_options(&[29, 5, 1, 1, 9, 1, 1, 1]),
            AuthOpt::Ao
        );
        assert_eq!(
            tcp_parse_auth_options(&[29, 4, 1, 1, 1, 1, 1, 1]),
            AuthOpt::Bad
        );
        let mut o = vec![29, 6, 1, 1, 9, 9];
        o.extend(md5(0));
        assert_eq!(tcp_parse_auth_options(&o), AuthOpt::Bad);
    }
}

//! Typed errors for every parser in `netpath-wire`.
//!
//! Seed stages served: every parsing step of ingress (3, 7–11), whose drops
//! these errors explain.
//!
//! Malformed input never panics: each view's `new_checked` (and each repr's
//! `parse`) returns a [`WireError`] naming the layer and what was wrong, so the
//! stack can map it to a Linux drop reason (e.g. `PKT_TOO_SMALL`, `IP_CSUM`,
//! `IP_INHDR`).

use core::fmt;

/// The header (or container format) a [`WireError`] was found in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Layer {
    Ethernet,
    Vlan,
    Arp,
    Ipv4,
    Ipv4Option,
    Icmpv4,
    Udp,
    Tcp,
    TcpOption,
    Pcap,
}

/// What was wrong.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorKind {
    /// The buffer ends before the header (or a field it declares) does.
    Truncated { needed: usize, available: usize },
    /// A length field is impossible (too small, or larger than the buffer).
    BadLength { field: &'static str, value: usize },
    /// The IP version is not 4.
    BadVersion(u8),
    /// The checksum does not verify.
    Checksum,
    /// The Ethernet frame check sequence (CRC-32) does not verify.
    Fcs,
    /// A field holds a value this format does not allow.
    Invalid { field: &'static str },
    /// Well-formed, but not something this parser handles (e.g. ARP for a
    /// hardware type other than Ethernet).
    Unsupported { field: &'static str },
}

/// A parse or emit failure: which layer, and what.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct WireError {
    pub layer: Layer,
    pub kind: ErrorKind,
}

impl WireError {
    pub const fn new(layer: Layer, kind: ErrorKind) -> Self {
        WireError { layer, kind }
    }

    /// `Truncated` for `layer` when `available < needed`.
    pub const fn truncated(layer: Layer, needed: usize, available: usize) -> Self {
        WireError::new(layer, ErrorKind::Truncated { needed, available })
    }

    pub const fn bad_length(layer: Layer, field: &'static str, value: usize) -> Self {
        WireError::new(layer, ErrorKind::BadLength { field, value })
    }

    pub const fn invalid(layer: Layer, field: &'static str) -> Self {
        WireError::new(layer, ErrorKind::Invalid { field })
    }

    pub const fn unsupported(layer: Layer, field: &'static str) -> Self {
        WireError::new(layer, ErrorKind::Unsupported { field })
    }

    pub const fn checksum(layer: Layer) -> Self {
        WireError::new(layer, ErrorKind::Checksum)
    }
}

/// Returns `Err(Truncated)` unless `buf_len >= needed`.
#[inline]
pub(crate) const fn check_len(layer: Layer, buf_len: usize, needed: usize) -> Result<()> {
    if buf_len < needed {
        Err(WireError::truncated(layer, needed, buf_len))
    } else {
        Ok(())
    }
}

impl fmt::Display for WireError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:?}: ", self.layer)?;
        match self.kind {
            ErrorKind::Truncated { needed, available } => {
                write!(f, "truncated: need {needed} bytes, have {available}")
            }
            ErrorKind::BadLength { field, value } => write!(f, "bad {field}: {value}"),
            ErrorKind::BadVersion(v) => write!(f, "bad version {v}"),
            ErrorKind::Checksum => write!(f, "checksum does not verify"),
            ErrorKind::Fcs => write!(f, "frame check sequence does not verify"),
            ErrorKind::Invalid { field } => write!(f, "invalid {field}"),
            ErrorKind::Unsupported { field } => write!(f, "unsupported {field}"),
        }
    }
}

impl std::error::Error for WireError {}

pub type Result<T> = core::result::Result<T, WireError>;

//! dnstap's wire forms: the `Dnstap` protobuf message (dnstap.proto, the fields a server
//! fills) and Frame Streams frames (fstrm: data frames, and the control frames of the
//! bidirectional handshake). Small enough to write by hand; `prost` would need `protoc`.

use std::net::IpAddr;
use std::time::SystemTime;

/// The content type both sides of the stream agree on.
pub const CONTENT_TYPE: &[u8] = b"protobuf:dnstap.Dnstap";

/// dnstap `Message.Type` values used here.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    AuthQuery = 1,
    AuthResponse = 2,
    ClientQuery = 5,
    ClientResponse = 6,
}

/// Frame Streams control frame types.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Control {
    Accept = 1,
    Start = 2,
    Stop = 3,
    Ready = 4,
    Finish = 5,
}

/// One observed message.
pub struct Observed<'a> {
    pub kind: Kind,
    pub client: IpAddr,
    pub server: Option<IpAddr>,
    pub tcp: bool,
    /// When the query arrived.
    pub query_time: SystemTime,
    pub query: &'a [u8],
    /// When the response left (`None` for a query message).
    pub response: Option<(&'a [u8], SystemTime)>,
}

fn varint(out: &mut Vec<u8>, mut v: u64) {
    while v >= 0x80 {
        out.push((v as u8) | 0x80);
        v >>= 7;
    }
    out.push(v as u8);
}

fn key(out: &mut Vec<u8>, field: u32, wire_type: u8) {
    varint(out, u64::from(field << 3) | u64::from(wire_type));
}

fn bytes_field(out: &mut Vec<u8>, field: u32, bytes: &[u8]) {
    key(out, field, 2);
    varint(out, bytes.len() as u64);
    out.extend_from_slice(bytes);
}

fn varint_field(out: &mut Vec<u8>, field: u32, v: u64) {
    key(out, field, 0);
    varint(out, v);
}

fn fixed32_field(out: &mut Vec<u8>, field: u32, v: u32) {
    key(out, field, 5);
    out.extend_from_slice(&v.to_le_bytes());
}

fn address(ip: IpAddr) -> Vec<u8> {
    match ip.to_canonical() {
        IpAddr::V4(a) => a.octets().to_vec(),
        IpAddr::V6(a) => a.octets().to_vec(),
    }
}

fn time(t: SystemTime) -> (u64, u32) {
    let d = t.duration_since(SystemTime::UNIX_EPOCH).unwrap_or_default();
    (d.as_secs(), d.subsec_nanos())
}

/// A `Dnstap` message (type MESSAGE) holding `m`, from the server `identity`.
pub fn dnstap(identity: &[u8], version: &[u8], m: &Observed<'_>) -> Vec<u8> {
    let mut msg = Vec::with_capacity(64 + m.query.len() * 2);
    varint_field(&mut msg, 1, m.kind as u64);
    let v6 = m.client.to_canonical().is_ipv6();
    varint_field(&mut msg, 2, if v6 { 2 } else { 1 }); // socket_family: INET, INET6
    varint_field(&mut msg, 3, if m.tcp { 2 } else { 1 }); // socket_protocol: UDP, TCP
    bytes_field(&mut msg, 4, &address(m.client)); // query_address: the client
    if let Some(server) = m.server {
        bytes_field(&mut msg, 5, &address(server)); // response_address: us
    }
    let (secs, nanos) = time(m.query_time);
    varint_field(&mut msg, 8, secs); // query_time_sec
    fixed32_field(&mut msg, 9, nanos); // query_time_nsec
    if !m.query.is_empty() && m.response.is_none() {
        bytes_field(&mut msg, 10, m.query); // query_message
    }
    if let Some((response, at)) = m.response {
        let (secs, nanos) = time(at);
        varint_field(&mut msg, 12, secs); // response_time_sec
        fixed32_field(&mut msg, 13, nanos); // response_time_nsec
        bytes_field(&mut msg, 14, response); // response_message
    }
    let mut out = Vec::with_capacity(msg.len() + identity.len() + version.len() + 16);
    bytes_field(&mut out, 1, identity);
    bytes_field(&mut out, 2, version);
    bytes_field(&mut out, 14, &msg);
    varint_field(&mut out, 15, 1); // type: MESSAGE
    out
}

/// A data frame: its length, then its bytes.
#[cfg(test)]
pub fn data_frame(payload: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(payload.len() + 4);
    out.extend_from_slice(&(payload.len() as u32).to_be_bytes());
    out.extend_from_slice(payload);
    out
}

/// A control frame of `kind` carrying the content type (none for FINISH).
pub fn control_frame(kind: Control) -> Vec<u8> {
    let mut body = (kind as u32).to_be_bytes().to_vec();
    if kind != Control::Finish {
        body.extend_from_slice(&1u32.to_be_bytes()); // CONTENT_TYPE
        body.extend_from_slice(&(CONTENT_TYPE.len() as u32).to_be_bytes());
        body.extend_from_slice(CONTENT_TYPE);
    }
    let mut out = vec![0, 0, 0, 0];
    out.extend_from_slice(&(body.len() as u32).to_be_bytes());
    out.extend_from_slice(&body);
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn varints_and_frames() {
        let mut v = Vec::new();
        varint(&mut v, 300);
        assert_eq!(v, [0xac, 0x02]);
        let ready = control_frame(Control::Ready);
        assert_eq!(&ready[..4], &[0, 0, 0, 0]);
        assert_eq!(
            u32::from_be_bytes(ready[4..8].try_into().unwrap()) as usize,
            ready.len() - 8
        );
        assert_eq!(&ready[8..12], &4u32.to_be_bytes());
        assert_eq!(data_frame(b"ab"), [0, 0, 0, 2, b'a', b'b']);
    }

    #[test]
    fn a_message_holds_its_fields() {
        let m = Observed {
            kind: Kind::AuthResponse,
            client: "10.0.0.1".parse().unwrap(),
            server: Some("10.0.0.2".parse().unwrap()),
            tcp: false,
            query_time: SystemTime::UNIX_EPOCH,
            query: b"q",
            response: Some((b"resp", SystemTime::UNIX_EPOCH)),
        };
        let out = dnstap(b"host", b"v1", &m);
        // identity, version, then the message (field 14), then type MESSAGE.
        assert_eq!(&out[..6], &[0x0a, 4, b'h', b'o', b's', b't']);
        assert_eq!(&out[out.len() - 2..], &[0x78, 1]);
        assert!(out
            .windows(6)
            .any(|w| w == [0x72, 4, b'r', b'e', b's', b'p']));
        assert!(out.windows(6).any(|w| w == [0x22, 4, 10, 0, 0, 1]));
    }
}

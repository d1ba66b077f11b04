//! Received messages, read as plain values: the fixed header's lengths
//! (bounded by `MAX_MESSAGE` before anything is allocated), the header
//! fields umm needs, and the body by its signature.

use anyhow::{bail, Context, Result};
use serde::de::DeserializeOwned;
use zbus::zvariant::serialized::{Context as WireContext, Data};
use zbus::zvariant::{Signature, Type, Value, BE, LE};

/// The largest message umm accepts. The specification allows 128 MiB; the
/// largest answer umm asks for (ListUnits on a big host) is a few MiB.
pub const MAX_MESSAGE: usize = 32 << 20;

/// Message types (D-Bus specification, "Message Format").
pub(super) const METHOD_RETURN: u8 = 2;

pub(super) const ERROR: u8 = 3;

/// Header field codes.
pub(super) const FIELD_ERROR_NAME: u8 = 4;

pub(super) const FIELD_REPLY_SERIAL: u8 = 5;

pub(super) const FIELD_SIGNATURE: u8 = 8;

fn wire_context(endian: u8) -> Result<WireContext> {
    match endian {
        b'l' => Ok(WireContext::new_dbus(LE, 0)),
        b'B' => Ok(WireContext::new_dbus(BE, 0)),
        other => bail!("not a D-Bus message (endianness byte {other:#x})"),
    }
}

/// The whole message's length from its first 16 bytes, refused when it is
/// over `MAX_MESSAGE`.
pub fn message_length(fixed: &[u8]) -> Result<usize> {
    let [endian, _, _, version, b0, b1, b2, b3, _, _, _, _, f0, f1, f2, f3, ..] = *fixed else {
        bail!("a D-Bus message is at least 16 bytes");
    };
    wire_context(endian)?;
    if version != 1 {
        bail!("D-Bus protocol version {version} (expected 1)");
    }
    let word = |b: [u8; 4]| {
        u64::from(if endian == b'B' {
            u32::from_be_bytes(b)
        } else {
            u32::from_le_bytes(b)
        })
    };
    let (body, fields) = (word([b0, b1, b2, b3]), word([f0, f1, f2, f3]));
    // u64: two announced u32 lengths cannot overflow it.
    let total = 16 + fields.div_ceil(8) * 8 + body;
    match usize::try_from(total) {
        Ok(n) if n <= MAX_MESSAGE => Ok(n),
        _ => bail!("a message of {total} bytes is over umm's limit of {MAX_MESSAGE}"),
    }
}

/// A received message, its header read as plain values (no name checks).
#[derive(Debug)]
pub struct Received {
    pub(super) msg_type: u8,
    pub(super) reply_serial: Option<u32>,
    pub(super) error_name: Option<String>,
    signature: Signature,
    bytes: Vec<u8>,
    body_offset: usize,
}

/// The header as the specification lays it out: endianness, type, flags,
/// version, body length, serial, then the `a(yv)` field array.
pub(super) type RawHeader<'a> = (u8, u8, u8, u8, u32, u32, Vec<(u8, Value<'a>)>);

impl Received {
    pub fn parse(bytes: Vec<u8>) -> Result<Received> {
        let total = message_length(&bytes)?;
        if bytes.len() != total {
            bail!(
                "the message is {} bytes, its header says {total}",
                bytes.len()
            );
        }
        let endian = bytes.first().copied().unwrap_or_default();
        let data = Data::new(bytes.as_slice(), wire_context(endian)?);
        let ((_, msg_type, _, _, body_len, _, fields), header_len): (RawHeader, usize) = data
            .deserialize()
            .context("the message header does not parse")?;
        let mut reply_serial = None;
        let mut error_name = None;
        let mut signature = Signature::Unit;
        for (code, value) in fields {
            match (code, value) {
                (FIELD_REPLY_SERIAL, Value::U32(n)) => reply_serial = Some(n),
                (FIELD_ERROR_NAME, Value::Str(s)) => error_name = Some(s.to_string()),
                (FIELD_SIGNATURE, Value::Signature(s)) => signature = s,
                _ => {}
            }
        }
        let body_offset = header_len.div_ceil(8) * 8;
        if body_offset.checked_add(body_len as usize) != Some(total) {
            bail!("the message's header and body lengths do not add up");
        }
        Ok(Received {
            msg_type,
            reply_serial,
            error_name,
            signature,
            bytes,
            body_offset,
        })
    }

    /// The body, deserialized by its signature as `zbus::message::Body`
    /// does it.
    pub fn body<R: DeserializeOwned + Type>(&self) -> Result<R> {
        let endian = self.bytes.first().copied().unwrap_or_default();
        let data = Data::new(self.bytes.as_slice(), wire_context(endian)?);
        if self.body_offset > self.bytes.len() {
            bail!("the message body is missing");
        }
        let (value, _) = data
            .slice(self.body_offset..)
            .deserialize_for_dynamic_signature(&self.signature)?;
        Ok(value)
    }
}

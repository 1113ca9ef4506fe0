//! The small enumerations of the live protocol (connection type, seek, reply statuses) and the
//! reply flag bits.
//!
//! Every enumeration travels as a big-endian `u32`. Converting a wire value with `TryFrom<u32>`
//! yields [`DecodeError::InvalidValue`] naming the field when the value is outside the domain, so a
//! peer can never make a decoder panic with an unexpected status.

use crate::codec::DecodeError;

/// Declares a `u32`-valued wire enumeration with `TryFrom<u32>` (unknown value → typed error),
/// `From<Self> for u32` and a list of all variants.
macro_rules! wire_enum {
    (
        $(#[$doc:meta])*
        $name:ident, field = $field:literal {
            $($(#[$vdoc:meta])* $variant:ident = $value:literal),+ $(,)?
        }
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name {
            $($(#[$vdoc])* $variant = $value),+
        }

        impl $name {
            /// Every variant, in increasing wire value.
            pub const ALL: &'static [$name] = &[$($name::$variant),+];

            /// The value sent on the wire.
            pub fn to_u32(self) -> u32 {
                self as u32
            }
        }

        impl TryFrom<u32> for $name {
            type Error = DecodeError;

            fn try_from(value: u32) -> Result<Self, DecodeError> {
                match value {
                    $($value => Ok($name::$variant),)+
                    _ => Err(DecodeError::InvalidValue { field: $field, value: u64::from(value) }),
                }
            }
        }

        impl From<$name> for u32 {
            fn from(v: $name) -> u32 {
                v.to_u32()
            }
        }
    };
}

wire_enum!(
    /// Kind of live connection a viewer opens (CONNECT request `type`).
    ConnectionType, field = "connect.type" {
        /// A command connection: the only kind viewers use.
        Command = 1,
        /// A notification connection (declared by the ABI, unused).
        Notification = 2,
    }
);

wire_enum!(
    /// Where a viewer starts reading the streams of a session it attaches to.
    Seek, field = "attach.seek" {
        /// From the oldest available packet.
        Beginning = 1,
        /// From the packets written after the attach.
        Last = 2,
    }
);

wire_enum!(
    /// ATTACH_SESSION reply status.
    AttachStatus, field = "attach.status" {
        /// Attached; the stream records follow.
        Ok = 1,
        /// Another viewer is already attached to this session.
        Already = 2,
        /// No such session (or it is closing).
        Unknown = 3,
        /// The session is not a live session.
        NotLive = 4,
        /// The seek value was invalid.
        SeekError = 5,
        /// The connection has no viewer session (CREATE_SESSION was not issued).
        NoSession = 6,
    }
);

wire_enum!(
    /// GET_NEXT_INDEX reply status.
    NextIndexStatus, field = "index.status" {
        /// A packet is available; the index fields describe it.
        Ok = 1,
        /// Nothing yet; ask again later.
        Retry = 2,
        /// The stream has ended and is fully read.
        Hup = 3,
        /// Error (unknown stream, read failure).
        Error = 4,
        /// Nothing new; the stream is quiet until `timestamp_end`.
        Inactive = 5,
        /// End of file (declared, never sent by 2.13).
        Eof = 6,
    }
);

wire_enum!(
    /// GET_PACKET reply status.
    GetPacketStatus, field = "packet.status" {
        /// `len` bytes of packet data follow.
        Ok = 1,
        /// Try again later.
        Retry = 2,
        /// Error; `len` is 0.
        Error = 3,
        /// End of file.
        Eof = 4,
    }
);

wire_enum!(
    /// GET_METADATA reply status.
    GetMetadataStatus, field = "metadata.status" {
        /// `len` bytes of metadata follow.
        Ok = 1,
        /// Everything received so far was already sent.
        NoNewMetadata = 2,
        /// Error (unknown or closed metadata stream).
        Error = 3,
    }
);

wire_enum!(
    /// GET_NEW_STREAMS reply status.
    NewStreamsStatus, field = "new_streams.status" {
        /// The stream records follow (possibly none).
        Ok = 1,
        /// No new stream (rotation in progress).
        NoNew = 2,
        /// Error (unknown session or not attached).
        Error = 3,
        /// The session has ended and nothing is left to read.
        Hup = 4,
    }
);

wire_enum!(
    /// CREATE_SESSION (viewer session) reply status.
    CreateSessionStatus, field = "create_session.status" {
        /// Created.
        Ok = 1,
        /// Failed.
        Error = 2,
    }
);

wire_enum!(
    /// DETACH_SESSION reply status.
    DetachStatus, field = "detach.status" {
        /// Detached.
        Ok = 1,
        /// No such session.
        Unknown = 2,
        /// Not attached, or no viewer session.
        Error = 3,
    }
);

/// The flag word of GET_NEXT_INDEX and GET_PACKET replies. Bits are kept as received (unknown bits
/// included) so a reply re-encodes byte for byte.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct ViewerFlags(pub u32);

impl ViewerFlags {
    /// No flag.
    pub const NONE: ViewerFlags = ViewerFlags(0);
    /// The stream's trace has metadata the viewer has not fetched yet.
    pub const NEW_METADATA: ViewerFlags = ViewerFlags(1);
    /// A session this viewer follows has streams it has not been told about yet.
    pub const NEW_STREAM: ViewerFlags = ViewerFlags(2);

    /// Whether every bit of `other` is set.
    pub fn contains(self, other: ViewerFlags) -> bool {
        self.0 & other.0 == other.0
    }

    /// The union of both flag sets.
    #[must_use]
    pub fn with(self, other: ViewerFlags) -> ViewerFlags {
        ViewerFlags(self.0 | other.0)
    }
}

/// The 4-byte code lttng-relayd sends before dropping a connection that issued an unknown command
/// (`LTTNG_ERR_UNK`).
pub const ERR_UNKNOWN_COMMAND: u32 = 11;

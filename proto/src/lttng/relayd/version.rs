//! The negotiated protocol minor and what it selects.
//!
//! Both peers send their own version in VERSION and keep `min(own minor, peer minor)` (majors must
//! be equal, 2). Every layout that changed over LTTng's history is chosen from that minor; the
//! bands that matter are `< 4`, `4..=7`, `8..=10`, `11` and `>= 12` (see [`Era`]), and from 15 on
//! CREATE_SESSION carries the session's trace format (LTTng 2.14 changed nothing on the wire: it
//! announces 14 and speaks as 2.13 does).

/// Protocol major spoken by LTTng 2.x and by trelay.
pub const RELAYD_MAJOR: u32 = 2;
/// Protocol minor advertised by trelay (the one of LTTng 2.15).
pub const RELAYD_MINOR: u32 = 15;
/// First minor whose CREATE_SESSION carries the trace format (LTTng 2.15).
pub const TRACE_FORMAT_MINOR: u32 = 15;

/// A band of protocol minors sharing the same set of layouts.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Era {
    /// `minor < 4`: no indexes, no STREAMS_SENT, old CREATE_SESSION (empty) and ADD_STREAM.
    Legacy,
    /// `4..=7`: 64-byte SEND_INDEX (index v1.0), 327-byte CREATE_SESSION, STREAMS_SENT.
    Index64,
    /// `8..=10`: 80-byte SEND_INDEX (index v1.1), RESET_METADATA.
    Index80,
    /// `11`: trace chunks, rotation, counted-string CREATE_SESSION and ADD_STREAM.
    Chunks,
    /// `>= 12`: GET_CONFIGURATION as well.
    Configuration,
}

/// Layout of the CREATE_SESSION request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum CreateSessionLayout {
    /// `minor < 4`: no payload at all.
    Empty,
    /// `4..=10`: 327-byte fixed structure.
    V2_4,
    /// `11..=14`: 59-byte fixed part, then counted strings.
    V2_11,
    /// `>= 15`: the 59-byte fixed part of 2.11, `trace_format u32`, then counted strings.
    V2_15,
}

/// Layout of the ADD_STREAM request.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddStreamLayout {
    /// `minor == 1`: 4360 bytes (names only).
    V2_1,
    /// `minor == 0` or `2..=10`: 4376 bytes (names, tracefile size and count).
    V2_2,
    /// `>= 11`: 32-byte fixed part, then counted strings.
    V2_11,
}

/// The protocol minor negotiated on a control connection (0 before VERSION).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
pub struct ProtocolMinor(pub u32);

impl ProtocolMinor {
    /// The minor trelay and LTTng 2.15 speak.
    pub const CURRENT: ProtocolMinor = ProtocolMinor(RELAYD_MINOR);

    /// The minor two peers settle on: the smaller of the two.
    pub fn negotiate(own: u32, peer: u32) -> ProtocolMinor {
        ProtocolMinor(own.min(peer))
    }

    /// The band of layouts this minor selects.
    pub fn era(self) -> Era {
        match self.0 {
            0..=3 => Era::Legacy,
            4..=7 => Era::Index64,
            8..=10 => Era::Index80,
            11 => Era::Chunks,
            _ => Era::Configuration,
        }
    }

    /// Layout of CREATE_SESSION.
    pub fn create_session_layout(self) -> CreateSessionLayout {
        match self.0 {
            0..=3 => CreateSessionLayout::Empty,
            4..=10 => CreateSessionLayout::V2_4,
            11..=14 => CreateSessionLayout::V2_11,
            _ => CreateSessionLayout::V2_15,
        }
    }

    /// Layout of ADD_STREAM.
    pub fn add_stream_layout(self) -> AddStreamLayout {
        match self.0 {
            1 => AddStreamLayout::V2_1,
            0 | 2..=10 => AddStreamLayout::V2_2,
            _ => AddStreamLayout::V2_11,
        }
    }

    /// Whether SEND_INDEX, STREAMS_SENT and index files exist (`>= 4`).
    pub fn has_indexes(self) -> bool {
        self.0 >= 4
    }

    /// Whether indexes carry the stream instance id and packet sequence number, 80 bytes on the
    /// wire and index v1.1 on disk (`>= 8`); RESET_METADATA exists from the same minor.
    pub fn has_extended_index(self) -> bool {
        self.0 >= 8
    }

    /// Size of a SEND_INDEX payload (64 or 80 bytes), `None` before indexes existed.
    pub fn index_len(self) -> Option<usize> {
        match self.era() {
            Era::Legacy => None,
            Era::Index64 => Some(64),
            _ => Some(80),
        }
    }

    /// Whether trace chunks and rotation exist, and CREATE_SESSION's reply carries the output
    /// path (`>= 11`).
    pub fn has_trace_chunks(self) -> bool {
        self.0 >= 11
    }

    /// Whether senders ask GET_CONFIGURATION (`>= 12`).
    pub fn has_configuration(self) -> bool {
        self.0 >= 12
    }

    /// Whether CREATE_SESSION carries the trace format, so CTF 2 sessions can be created
    /// (`>= 15`); below, every session is CTF 1.8.
    pub fn has_trace_format(self) -> bool {
        self.0 >= TRACE_FORMAT_MINOR
    }
}

impl std::fmt::Display for ProtocolMinor {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{RELAYD_MAJOR}.{}", self.0)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bands() {
        let era = |m| ProtocolMinor(m).era();
        assert_eq!([era(0), era(3)], [Era::Legacy; 2]);
        assert_eq!([era(4), era(7)], [Era::Index64; 2]);
        assert_eq!([era(8), era(10)], [Era::Index80; 2]);
        assert_eq!(era(11), Era::Chunks);
        assert_eq!([era(12), era(13), era(u32::MAX)], [Era::Configuration; 3]);
        assert_eq!(ProtocolMinor::negotiate(13, 15), ProtocolMinor(13));
        assert_eq!(ProtocolMinor::negotiate(15, 14), ProtocolMinor(14));
        assert_eq!(ProtocolMinor::negotiate(15, 16), ProtocolMinor(15));
        assert_eq!(ProtocolMinor::CURRENT, ProtocolMinor(15));
        assert_eq!(ProtocolMinor::negotiate(13, 9), ProtocolMinor(9));
    }

    #[test]
    fn layouts() {
        let m = ProtocolMinor;
        assert_eq!(m(1).add_stream_layout(), AddStreamLayout::V2_1);
        assert_eq!(m(0).add_stream_layout(), AddStreamLayout::V2_2);
        assert_eq!(m(10).add_stream_layout(), AddStreamLayout::V2_2);
        assert_eq!(m(11).add_stream_layout(), AddStreamLayout::V2_11);
        assert_eq!(m(3).create_session_layout(), CreateSessionLayout::Empty);
        assert_eq!(m(4).create_session_layout(), CreateSessionLayout::V2_4);
        assert_eq!(m(11).create_session_layout(), CreateSessionLayout::V2_11);
        assert_eq!(m(14).create_session_layout(), CreateSessionLayout::V2_11);
        assert_eq!(m(15).create_session_layout(), CreateSessionLayout::V2_15);
        assert_eq!(
            m(u32::MAX).create_session_layout(),
            CreateSessionLayout::V2_15
        );
        assert!(!m(14).has_trace_format() && m(15).has_trace_format());
        assert_eq!(m(15).add_stream_layout(), AddStreamLayout::V2_11);
        assert_eq!(m(15).index_len(), Some(80));
        assert_eq!(m(3).index_len(), None);
        assert_eq!(m(7).index_len(), Some(64));
        assert_eq!(m(8).index_len(), Some(80));
        assert!(!m(10).has_trace_chunks() && m(11).has_trace_chunks());
        assert!(!m(11).has_configuration() && m(12).has_configuration());
    }
}

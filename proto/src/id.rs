//! Newtypes for the identifiers that travel on the wire, so one kind of id is never passed where
//! another is expected.

macro_rules! id_type {
    ($(#[$doc:meta])* $name:ident) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash, Default)]
        pub struct $name(pub u64);

        impl $name {
            /// The all-ones value the protocols use for "unset" / "none yet".
            pub const UNSET: $name = $name(u64::MAX);

            /// Whether this is the all-ones "unset" value.
            pub fn is_unset(self) -> bool {
                self.0 == u64::MAX
            }
        }

        impl std::fmt::Display for $name {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                self.0.fmt(f)
            }
        }

        impl From<u64> for $name {
            fn from(v: u64) -> Self {
                $name(v)
            }
        }
    };
}

id_type!(
    /// A relay session id, assigned by the relay at CREATE_SESSION (global counter from 1).
    SessionId
);
id_type!(
    /// A relay stream handle, assigned by the relay at ADD_STREAM (global counter from 1); also
    /// the live viewer's stream id.
    StreamId
);
id_type!(
    /// A per-stream data packet counter set by the sender (0, 1, 2, …); all-ones means "none yet".
    NetSeq
);
id_type!(
    /// A CTF trace id: one per (relay session, trace directory), assigned by the relay.
    CtfTraceId
);
id_type!(
    /// A live viewer session id, assigned at CONNECT.
    ViewerSessionId
);

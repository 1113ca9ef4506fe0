//! LTTng's relay protocols: the control and data ports ([`relayd`]) and the live port ([`live`]),
//! and the session's [`TraceFormat`] both carry from minor 15 on.

pub mod live;
pub mod relayd;
pub mod trace_format;

pub use trace_format::TraceFormat;

//! LTTng's relay protocols: the control and data ports ([`relayd`]) and the live port ([`live`]).

pub mod live;
pub mod relayd;

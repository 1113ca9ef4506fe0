//! Rendering decoded messages as the fields part of a line. Bulk bytes (metadata, packet data)
//! are summarised by their length; everything else shows every field.

use trelay_proto::lttng::live::{Command as LiveCommand, ViewerReply, ViewerRequest};
use trelay_proto::lttng::relayd::{Command, Reply};

/// The fields of a control command.
pub fn control_command(cmd: &Command<'_>) -> String {
    match cmd {
        Command::SendMetadata(m) => format!(
            "{{ stream_id: {}, padding_size: {}, data: {} bytes }}",
            m.stream_id.0,
            m.padding_size,
            m.data.len()
        ),
        other => fields(&format!("{other:?}")),
    }
}

/// The fields of a control reply.
pub fn control_reply(reply: &Reply) -> String {
    match reply {
        Reply::Generic(code) => format!("{{ ret_code: {code} }}"),
        other => fields(&format!("{other:?}")),
    }
}

/// The LTTng name of a live command.
pub fn live_command_name(cmd: LiveCommand) -> &'static str {
    match cmd {
        LiveCommand::Connect => "CONNECT",
        LiveCommand::ListSessions => "LIST_SESSIONS",
        LiveCommand::AttachSession => "ATTACH_SESSION",
        LiveCommand::GetNextIndex => "GET_NEXT_INDEX",
        LiveCommand::GetPacket => "GET_PACKET",
        LiveCommand::GetMetadata => "GET_METADATA",
        LiveCommand::GetNewStreams => "GET_NEW_STREAMS",
        LiveCommand::CreateSession => "CREATE_SESSION",
        LiveCommand::DetachSession => "DETACH_SESSION",
    }
}

/// The fields of a live request.
pub fn live_request(req: &ViewerRequest) -> String {
    fields(&format!("{req:?}"))
}

/// The fields of a live reply.
pub fn live_reply(reply: &ViewerReply<'_>) -> String {
    match reply {
        ViewerReply::Packet {
            status,
            flags,
            data,
        } => format!(
            "{{ status: {status:?}, flags: {}, data: {} bytes }}",
            flags.0,
            data.len()
        ),
        ViewerReply::Metadata { status, data } => {
            format!("{{ status: {status:?}, data: {} bytes }}", data.len())
        }
        other => fields(&format!("{other:?}")),
    }
}

/// Strips the enum variant wrapper and the struct name from a `Debug` rendering:
/// `AddStream(AddStream { a: 1 })` becomes `{ a: 1 }`, `StartData` becomes nothing.
fn fields(debug: &str) -> String {
    let inner = match debug.split_once('(') {
        Some((_, rest)) if rest.ends_with(')') => rest.strip_suffix(')').unwrap_or(rest),
        Some(_) => debug,
        None => match debug.split_once(" {") {
            Some((_, rest)) => return format!("{{{rest}"),
            None => return String::new(),
        },
    };
    match inner.split_once(" {") {
        Some((name, rest)) if name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_') => {
            format!("{{{rest}")
        }
        _ => inner.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use super::fields;

    #[test]
    fn strips_wrappers() {
        assert_eq!(fields("AddStream(AddStream { a: 1 })"), "{ a: 1 }");
        assert_eq!(fields("StartData"), "");
        assert_eq!(fields("L([R { a: 1 }])"), "[R { a: 1 }]");
        assert_eq!(fields("QuiescentControl(StreamId(3))"), "StreamId(3)");
        assert_eq!(
            fields("GetNextIndex { stream_id: StreamId(1) }"),
            "{ stream_id: StreamId(1) }"
        );
    }
}
